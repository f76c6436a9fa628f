//! The state every handler can reach: cheap to clone (one `Arc`).

use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;
use crate::gate::Gate;
use crate::gate::reload::Reloader;
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::usage::Usage;

/// Shared state.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

/// What the state holds.
#[derive(Debug)]
pub struct Inner {
    /// The settings the gateway started with.
    pub config: Config,
    /// The Ollama servers, and which one each request goes to.
    pub backends: crate::backends::Backends,
    /// Keys, allowlists, limits.
    pub gate: Gate,
    /// HTTPS for the accept loop, when enabled.
    pub tls: Option<crate::tls::ServerTls>,
    /// Tells long streams that the shutdown grace period is over.
    pub shutdown: Shutdown,
    /// Renders `/metrics` (absent if the recorder could not be installed).
    pub metrics: Option<PrometheusHandle>,
    /// The database (admin API, key reloads and the usage writer; never the request path).
    pub store: Store,
    /// The usage recorder and the token quota counters.
    pub usage: Usage,
    /// Brings stored key changes into `gate.keys`.
    pub reloader: Reloader,
    /// Responses kept for `GET`/`DELETE /v1/responses/{id}` and `previous_response_id`.
    pub responses: crate::responses::stored::StoredResponses,
}

impl AppState {
    /// Wrap the parts.
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
