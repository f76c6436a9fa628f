//! Is Ollama there? One cached answer, shared by `/health`, `/ready` and the start-up watcher.
//!
//! `/health` and `/ready` are open routes, so anybody can call them as often as they like. Each
//! call used to cost a request to Ollama's `/api/version`; now a probe's answer is reused for
//! [`FRESH_FOR`], and callers arriving while a probe is running wait for that one instead of
//! starting their own. So however many clients ask, Ollama sees at most about one probe per
//! second from us.
//!
//! The watcher ([`UpstreamProbe::watch`]) runs for the life of the gateway: it probes at start and
//! logs, once per change, when Ollama becomes unreachable at the configured URL and when it is
//! back. Requests never wait for it: each request connects on its own, so a gateway started
//! before Ollama serves as soon as Ollama answers.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use http::Method;

use super::Upstream;

/// How long one probe's answer is reused.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// How long a probe may take before Ollama counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the watcher probes while Ollama answers, and while it does not.
const WATCH_WHILE_UP: Duration = Duration::from_secs(10);
const WATCH_WHILE_DOWN: Duration = Duration::from_secs(1);

/// What the last probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reachability {
    /// Ollama answered `/api/version` with this version.
    Up { version: String },
    /// It did not answer (refused, timed out, or not Ollama's answer).
    Down,
}

impl Reachability {
    /// Whether Ollama answered.
    pub fn is_up(&self) -> bool {
        matches!(self, Self::Up { .. })
    }

    /// The version Ollama reported, when it answered.
    pub fn version(&self) -> Option<&str> {
        match self {
            Self::Up { version } => Some(version),
            Self::Down => None,
        }
    }
}

/// The last probe and when it was made.
#[derive(Debug)]
struct Last {
    at: Instant,
    found: Reachability,
}

/// Cached reachability of the upstream.
#[derive(Debug, Default)]
pub struct UpstreamProbe {
    /// Held across a probe, so concurrent callers share one upstream call.
    last: Mutex<Option<Last>>,
}

impl UpstreamProbe {
    /// A probe that has not asked yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reachability, from the cache when it is fresh, else from a new probe.
    pub async fn check(&self, upstream: &Upstream) -> Reachability {
        let mut last = self.last.lock().await;
        if let Some(last) = last.as_ref().filter(|l| l.at.elapsed() < FRESH_FOR) {
            return last.found.clone();
        }
        let found = probe(upstream).await;
        let previous = last.replace(Last {
            at: Instant::now(),
            found: found.clone(),
        });
        log_change(upstream, previous.map(|p| p.found).as_ref(), &found);
        found
    }

    /// A new probe now, whatever the cache holds, and not logged: for the backend pool's
    /// watchers (a backend just taken out must not be put back by an answer from before), which
    /// log changes themselves, naming the backend.
    pub async fn probe_now(&self, upstream: &Upstream) -> Reachability {
        let mut last = self.last.lock().await;
        let found = probe(upstream).await;
        last.replace(Last {
            at: Instant::now(),
            found: found.clone(),
        });
        found
    }

    /// Probe at start and then now and again for as long as the gateway runs, so the log says
    /// when Ollama is not reachable and when it comes back.
    pub async fn watch(&self, upstream: &Upstream) {
        loop {
            let up = self.check(upstream).await.is_up();
            tokio::time::sleep(if up { WATCH_WHILE_UP } else { WATCH_WHILE_DOWN }).await;
        }
    }
}

async fn probe(upstream: &Upstream) -> Reachability {
    #[derive(Deserialize)]
    struct Version {
        version: String,
    }
    // A plain request rather than `Upstream::get_json`, which logs every failure as a warning:
    // while Ollama is down the watcher would repeat that every second. `log_change` says it once.
    let call = async {
        let response = upstream
            .request(Method::GET, "/api/version")
            .send()
            .await?
            .error_for_status()?;
        response.json::<Version>().await
    };
    match tokio::time::timeout(PROBE_TIMEOUT, call).await {
        Ok(Ok(answer)) => Reachability::Up {
            version: answer.version,
        },
        Ok(Err(err)) => {
            tracing::debug!(error = %err, "upstream probe failed");
            Reachability::Down
        }
        Err(_) => Reachability::Down,
    }
}

/// One log line when reachability changes (and for the first probe).
fn log_change(upstream: &Upstream, previous: Option<&Reachability>, found: &Reachability) {
    let url = upstream.base_url();
    match (previous.map(Reachability::is_up), found) {
        (Some(true), Reachability::Up { .. }) | (Some(false), Reachability::Down) => {}
        (_, Reachability::Up { version }) => {
            tracing::info!(ollama_url = %url, version = %version, "Ollama is reachable");
        }
        (_, Reachability::Down) => tracing::warn!(
            ollama_url = %url,
            "Ollama is not reachable at {url}: requests are answered with 502 and /ready with 503 until it is (check OLLAMA_URL)"
        ),
    }
}
