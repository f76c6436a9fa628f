//! A fake Ollama server for tests, client suites and benchmarks.
//!
//! It speaks Ollama's native wire format (NDJSON streams, `{"error":"..."}` bodies,
//! nanosecond durations) and replays recorded fixtures from `fixtures/`. Besides the happy
//! paths it can fail the ways a real Ollama fails: errors before the first byte, an error
//! line in the middle of a stream, a stream cut without its `done` line, a corrupt line, a
//! slow first byte and a stalled stream; and it can hang as a whole, like a machine that froze
//! with its sockets open ([`FakeOllama::hang`]). It records every request and counts streams that
//! finished or were abandoned by the client, so tests can check what the gateway sent and
//! that it closes upstream streams when its own client goes away.
//!
//! In-process use:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use fake_ollama::{FakeConfig, FakeOllama};
//! let fake = FakeOllama::start(FakeConfig::default()).await?;
//! let base_url = fake.url(); // point the gateway here
//! # let _ = base_url;
//! assert_eq!(fake.cancelled_streams(), 0);
//! # Ok(()) }
//! ```
//!
//! External test suites use the binary and the control endpoints `GET /_fake/requests`,
//! `GET /_fake/stats` and `POST /_fake/reset`.

mod admin;
mod control;
mod embed;
mod fixtures;
mod models;
mod native;
mod openai;
mod reply;
mod request;
mod scenario;
mod server;
mod state;
mod stop;
mod stream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use fixtures::Fixtures;
pub use server::FakeOllama;
pub use state::{FakeState, RecordedRequest, Stats};

/// How the fake behaves. Every field has a default, so tests usually write
/// `FakeConfig { chunk_gap: Duration::from_millis(5), ..Default::default() }`.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// Directory holding `tags.json`, `show/`, `chat/` and `generate/`.
    /// Default: the workspace's `fixtures/` directory.
    pub fixtures_dir: PathBuf,
    /// Time from the request's arrival to the first streamed line (and to the response
    /// head, which Ollama only sends together with the first line). Default 0.
    pub first_token_delay: Duration,
    /// Time between two consecutive streamed lines. Line `i` is due at
    /// `arrival + first_token_delay + i * chunk_gap`. Default 0.
    pub chunk_gap: Duration,
    /// Make `GET /api/tags` (and `/api/ps`) answer `{"models":[]}`. Models still answer chat.
    pub empty_tags: bool,
    /// When set, the only models this fake has (one of several Ollama servers): `/api/tags`
    /// lists only these (those of them in `tags.json`), and any other model is not found.
    pub models: Option<Vec<String>>,
    /// When set, the models `/api/ps` shows as loaded (entries of `tags.json`); default:
    /// `llama3.2` (or the first model).
    pub loaded: Option<Vec<String>>,
    /// Answer every chat and generate request with the 500 of `fail-500` before any byte,
    /// whatever the model, while everything else (`/api/version`, the listings) answers: a
    /// machine whose runner keeps crashing. Default false.
    pub failing: bool,
}

impl FakeConfig {
    /// The fixtures directory shipped with the workspace.
    #[must_use]
    pub fn default_fixtures_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("fixtures")
    }
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            fixtures_dir: Self::default_fixtures_dir(),
            first_token_delay: Duration::ZERO,
            chunk_gap: Duration::ZERO,
            empty_tags: false,
            models: None,
            loaded: None,
            failing: false,
        }
    }
}

/// Build the fake's router over an existing state. `FakeOllama::start` uses this; it is
/// public so a test can serve the fake in its own way (e.g. `tower::ServiceExt::oneshot`).
pub fn router(state: FakeState) -> axum::Router {
    server::build_router(state)
}

/// Load the fixtures named by `config` and build the state the router serves.
///
/// # Errors
/// When a fixture file is missing or is not valid JSON / NDJSON.
pub fn load_state(config: FakeConfig) -> std::io::Result<FakeState> {
    let mut fixtures = Fixtures::load(&config.fixtures_dir)?;
    if let Some(models) = &config.models {
        fixtures.restrict(models);
    }
    Ok(FakeState::new(config, fixtures))
}

/// Convenience for callers that only hold a [`SocketAddr`].
#[must_use]
pub fn url_for(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
