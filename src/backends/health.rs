//! Whether a backend is in or out, and the watcher that keeps asking.
//!
//! Passive checks: a connection that cannot be made takes a backend out at once; three 5xx
//! answers in a row take it out too (one failing model should not, a failing machine should).
//! Active checks: each backend's watcher asks `/api/version` (two-second timeout) every
//! [`CHECK_EVERY`] while it is in, and while it is out after a wait that starts at
//! [`FIRST_BACKOFF`] and doubles up to [`MAX_BACKOFF`]; the first answer puts it back, and its
//! model listings are refreshed then. The watcher also refreshes the listings every
//! [`LIST_EVERY`], or at once when asked (after a pull or delete through the gateway).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use http::StatusCode;

use super::{Backend, Pool};

/// Active check interval while a backend is in.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// Listing refresh interval.
pub const LIST_EVERY: Duration = Duration::from_secs(5);
/// First wait before probing a backend that is out again.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between probes of a backend that is out.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// 5xx answers in a row that take a backend out.
const FAILURES_TO_TAKE_OUT: u32 = 3;

/// One backend's health.
#[derive(Debug)]
pub struct Health {
    up: AtomicBool,
    failures: AtomicU32,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            up: AtomicBool::new(true),
            failures: AtomicU32::new(0),
        }
    }
}

impl Health {
    /// Not known to be down.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Set the state; whether that changed it.
    pub fn set(&self, up: bool) -> bool {
        if up {
            self.failures.store(0, Ordering::Relaxed);
        }
        self.up.swap(up, Ordering::Relaxed) != up
    }

    /// An answer with `status` came back; whether that took the backend out.
    pub fn answered(&self, status: StatusCode) -> bool {
        if status.is_server_error() {
            let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            failures >= FAILURES_TO_TAKE_OUT && self.set(false)
        } else {
            self.failures.store(0, Ordering::Relaxed);
            false
        }
    }
}

/// Watch backend `index` of the pool for as long as the pool exists.
pub async fn watch(pool: Weak<Pool>, index: usize) {
    let Some(backend) = pool.upgrade().and_then(|p| p.backends.get(index).cloned()) else {
        return;
    };
    let mut backoff = FIRST_BACKOFF;
    let mut listed: Option<Instant> = None;
    loop {
        let up = backend.probe.probe_now(&backend.upstream).await.is_up();
        let Some(strong) = pool.upgrade() else { return };
        strong.set_health(&backend, up);
        let refresh = backend.refresh.swap(false, Ordering::Relaxed);
        let due = listed.is_none_or(|at| at.elapsed() >= LIST_EVERY);
        if up && (refresh || due) {
            if let Some(models) = super::discovery::list(&backend.upstream).await {
                backend.models.store(Arc::new(models));
                strong.dispatch();
            }
            listed = Some(Instant::now());
        }
        drop(strong);
        let wait = if up {
            backoff = FIRST_BACKOFF;
            CHECK_EVERY
        } else {
            let wait = backoff;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            wait
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = backend.wake.notified() => {}
        }
    }
}

/// Probe and list every backend once (at start, so a backend that is down is known to be).
pub async fn first_look(pool: &Arc<Pool>) {
    let looks = pool.backends.iter().map(|backend| async move {
        let found = backend.probe.probe_now(&backend.upstream).await;
        // One that does not answer is logged as taken out by `set_health`.
        if let Some(version) = found.version() {
            tracing::info!(
                backend = %backend.name,
                ollama_url = %backend.upstream.base_url(),
                version,
                "backend is reachable"
            );
        }
        let up = found.is_up();
        pool.set_health(backend, up);
        if up && let Some(models) = super::discovery::list(&backend.upstream).await {
            backend.models.store(Arc::new(models));
        }
    });
    futures::future::join_all(looks).await;
}

/// Ask the watcher of `backend` to look again now.
pub fn wake(backend: &Backend, relist: bool) {
    if relist {
        backend.refresh.store(true, Ordering::Relaxed);
    }
    backend.wake.notify_one();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_5xx_in_a_row_take_a_backend_out_and_an_answer_resets_the_count() {
        let health = Health::default();
        assert!(health.is_up());
        assert!(!health.answered(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!health.answered(StatusCode::BAD_GATEWAY));
        assert!(
            !health.answered(StatusCode::NOT_FOUND),
            "a 404 is an answer"
        );
        assert!(!health.answered(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!health.answered(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(health.is_up());
        assert!(
            health.answered(StatusCode::SERVICE_UNAVAILABLE),
            "the third in a row"
        );
        assert!(!health.is_up());
        assert!(health.set(true), "a probe's answer puts it back");
        assert!(
            !health.answered(StatusCode::INTERNAL_SERVER_ERROR),
            "counted from zero again"
        );
    }
}
