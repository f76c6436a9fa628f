//! ollama-gateway: an authenticating, validating, OpenAI-compatible gateway in front of a
//! local Ollama server.
//!
//! Layout: [`config`] (every setting), [`state`] (what handlers share), [`error`] (one error
//! type, three shapes), [`gate`] (keys, allowlist, limits, paths), [`upstream`] (the Ollama
//! client), [`ollama`], [`openai`], [`responses`] and [`anthropic`] (wire types and the pure
//! translation between them),
//! [`routes`] (one module per surface), [`http`] (extractors, audit, the middleware stack),
//! [`metrics`], [`server`] (with HTTPS from [`tls`]) and [`shutdown`].

pub mod anthropic;
pub mod config;
pub mod error;
pub mod gate;
pub mod http;
pub mod metrics;
pub mod ollama;
pub mod openai;
pub mod responses;
pub mod routes;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod tls;
pub mod upstream;

use config::Config;
use gate::Gate;
use gate::keys::KeyStore;
use shutdown::Shutdown;
use state::{AppState, Inner};
use upstream::{Upstream, UpstreamProbe};

pub use http::stack::GatewayService;
pub use routes::openapi;

/// A gateway ready to serve, and the key generated at start (when none was configured).
#[derive(Debug)]
pub struct Gateway {
    /// Shared state.
    pub state: AppState,
    /// The full service (router and middleware).
    pub service: GatewayService,
    /// A key made up because none was configured; print it once.
    pub generated_key: Option<String>,
}

/// Check the configuration, load the keys and build the service.
pub fn build(config: Config) -> Result<Gateway, String> {
    let loaded = KeyStore::load(&config)?;
    let upstream = Upstream::new(&config.ollama_url, config.upstream_timeout)
        .map_err(|e| format!("OLLAMA_URL: {e}"))?;
    let gate = Gate::new(&config, loaded.store);
    let tls = tls::ServerTls::from_config(&config)?;
    let state = AppState::new(Inner {
        upstream,
        probe: UpstreamProbe::new(),
        tls,
        gate,
        shutdown: Shutdown::new(),
        metrics: metrics::install(),
        config,
    });
    Ok(Gateway {
        service: http::stack::build(state.clone()),
        state,
        generated_key: loaded.generated,
    })
}
