//! Whether a backend is in or out, and the watcher that keeps asking.
//!
//! Passive checks: a connection that cannot be made takes a backend out at once; three failed
//! answers in a row (5xx, or no answer head within the upstream timeout) take it out too (one
//! failing model should not, a failing machine should).
//! Active checks: each backend's watcher asks `/api/version` (two-second timeout) every
//! [`CHECK_EVERY`] while it is in, and while it is out after a wait that starts at
//! [`FIRST_BACKOFF`] and doubles up to [`MAX_BACKOFF`]; the first answer puts it back, and its
//! model listings are refreshed at once then. A backend taken out by failed answers still answers
//! `/api/version`, so that answer proves nothing: it stays out for a cooldown first
//! ([`FIRST_COOLDOWN`], doubling with each such take-out in a row up to [`MAX_COOLDOWN`], back to
//! the first once a request succeeds on it). The watcher also refreshes the listings every
//! [`LIST_EVERY`], or at once when asked (after a pull or delete through the gateway).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
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
/// Failed answers in a row that take a backend out.
const FAILURES_TO_TAKE_OUT: u32 = 3;
/// How long a backend taken out by failed answers stays out before a probe may put it back.
pub const FIRST_COOLDOWN: Duration = Duration::from_secs(10);
/// The longest such cooldown (a backend that keeps failing after each return).
pub const MAX_COOLDOWN: Duration = Duration::from_secs(160);

/// One backend's health.
#[derive(Debug)]
pub struct Health {
    up: AtomicBool,
    failures: AtomicU32,
    cooldown: Mutex<Cooldown>,
    /// The cooldown is not the default one (a take-out by failed answers set it): only then
    /// does a successful request need its lock, not on every answer.
    cooled: AtomicBool,
}

/// The cooldown after take-outs by failed answers.
#[derive(Debug, Default)]
struct Cooldown {
    /// No probe puts the backend back before this.
    until: Option<Instant>,
    /// The next cooldown's length (`None`: the first).
    next: Option<Duration>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            up: AtomicBool::new(true),
            failures: AtomicU32::new(0),
            cooldown: Mutex::new(Cooldown::default()),
            cooled: AtomicBool::new(false),
        }
    }
}

impl Health {
    /// Not known to be down.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn cooldown(&self) -> std::sync::MutexGuard<'_, Cooldown> {
        self.cooldown.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Set the state; whether that changed it. A request that succeeded puts the backend back
    /// whatever the cooldown (it is the proof the probe cannot give) and ends the streak.
    pub fn set(&self, up: bool) -> bool {
        if up {
            self.failures.store(0, Ordering::Relaxed);
            if self.cooled.swap(false, Ordering::AcqRel) {
                *self.cooldown() = Cooldown::default();
            }
        }
        self.up.swap(up, Ordering::Relaxed) != up
    }

    /// What a probe's answer says: whether the backend may be (put) in now. Not before the
    /// cooldown of a take-out by failed answers is over; a probe that may put it back ends the
    /// cooldown (the next take-out starts a longer one).
    pub fn probe_says(&self, answered: bool) -> bool {
        if !answered {
            return false;
        }
        let mut cooldown = self.cooldown();
        match cooldown.until {
            Some(until) if Instant::now() < until => false,
            _ => {
                cooldown.until = None;
                true
            }
        }
    }

    /// How long until a probe may put the backend back (zero when it may now).
    pub fn cooling_for(&self) -> Duration {
        self.cooldown().until.map_or(Duration::ZERO, |until| {
            until.saturating_duration_since(Instant::now())
        })
    }

    /// An answer with `status` came back; whether that took the backend out.
    pub fn answered(&self, status: StatusCode) -> bool {
        if status.is_server_error() {
            self.failed()
        } else {
            self.failures.store(0, Ordering::Relaxed);
            false
        }
    }

    /// An answer failed (a 5xx, or no answer within the upstream timeout); whether that took
    /// the backend out, for a cooldown.
    pub fn failed(&self) -> bool {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures < FAILURES_TO_TAKE_OUT || !self.set(false) {
            return false;
        }
        let mut cooldown = self.cooldown();
        let length = cooldown.next.unwrap_or(FIRST_COOLDOWN);
        cooldown.until = Some(Instant::now() + length);
        cooldown.next = Some((length * 2).min(MAX_COOLDOWN));
        self.cooled.store(true, Ordering::Release);
        true
    }
}

/// Watch backend `index` of the pool for as long as the pool exists.
pub async fn watch(pool: Weak<Pool>, index: usize) {
    let Some(backend) = pool.upgrade().and_then(|p| p.backends.get(index).cloned()) else {
        return;
    };
    let mut backoff = FIRST_BACKOFF;
    let mut listed: Option<Instant> = None;
    let mut was_up = backend.is_healthy();
    loop {
        let answered = backend.probe.probe_now(&backend.upstream).await.is_up();
        let up = backend.health.probe_says(answered);
        let Some(strong) = pool.upgrade() else { return };
        strong.set_health(&backend, up);
        // Back from an outage (whoever put it back): what it has may have changed meanwhile.
        let came_back = up && !was_up;
        was_up = up;
        let refresh = backend.refresh.swap(false, Ordering::Relaxed) || came_back;
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
            // No probe can put it back before its cooldown is over: the first comes then.
            wait.max(backend.health.cooling_for())
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
        assert!(health.set(true), "a request's answer puts it back");
        assert!(
            !health.answered(StatusCode::INTERNAL_SERVER_ERROR),
            "counted from zero again"
        );
    }

    #[test]
    fn a_probe_puts_back_a_backend_taken_out_by_failures_only_after_its_cooldown() {
        let health = Health::default();
        assert!(!health.failed());
        assert!(!health.failed());
        assert!(health.failed(), "timeouts count like 5xx");
        assert!(!health.probe_says(true), "cooling down");
        assert!(health.cooling_for() > FIRST_COOLDOWN - Duration::from_secs(1));
        health.cooldown().until = Some(Instant::now());
        assert!(health.probe_says(true), "over: the probe's answer counts");
        assert!(!health.probe_says(false));
        assert!(health.set(true));
        for _ in 0..3 {
            health.failed();
        }
        assert!(
            health.cooling_for() <= FIRST_COOLDOWN,
            "a request's success ended the streak"
        );
        health.cooldown().until = Some(Instant::now());
        assert!(health.probe_says(true));
        health.up.store(true, Ordering::Relaxed);
        health.failures.store(0, Ordering::Relaxed);
        for _ in 0..3 {
            health.failed();
        }
        assert!(
            health.cooling_for() > FIRST_COOLDOWN,
            "a second take-out in a row cools down longer"
        );
    }
}
