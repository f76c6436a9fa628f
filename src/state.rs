//! The state every handler can reach: cheap to clone (one `Arc`).

use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;
use crate::gate::Gate;
use crate::shutdown::Shutdown;
use crate::upstream::{Upstream, UpstreamProbe};

/// Shared state.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

/// What the state holds.
#[derive(Debug)]
pub struct Inner {
    /// The settings the gateway started with.
    pub config: Config,
    /// The Ollama client.
    pub upstream: Upstream,
    /// Whether Ollama answers (cached for `/health` and `/ready`).
    pub probe: UpstreamProbe,
    /// Keys, allowlists, limits.
    pub gate: Gate,
    /// HTTPS for the accept loop, when enabled.
    pub tls: Option<crate::tls::ServerTls>,
    /// Tells long streams that the shutdown grace period is over.
    pub shutdown: Shutdown,
    /// Renders `/metrics` (absent if the recorder could not be installed).
    pub metrics: Option<PrometheusHandle>,
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
