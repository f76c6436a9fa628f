//! Failed authentication, limited per client address: after `GATEWAY_AUTH_FAILURES` failures
//! within a minute, that address gets 429 (with `Retry-After`) on every route that needs a key
//! for the next minute, whatever key it sends, so keys cannot be guessed at speed. Other
//! addresses are not affected, and loopback addresses are never blocked (as fail2ban's default
//! `ignoreip`): the operator's own tools and health checks on the machine keep working.
//!
//! The request path pays one atomic load while no address is blocked; the map is only locked
//! when a key was refused or some address is blocked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The window failures are counted in, and how long an address stays blocked.
const WINDOW: Duration = Duration::from_secs(60);
/// Most addresses tracked at once; beyond that, finished entries are dropped first.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug)]
struct Entry {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
}

/// The per-address failure counts.
#[derive(Debug)]
pub struct AuthFailures {
    limit: u32,
    entries: Mutex<HashMap<IpAddr, Entry>>,
    /// How many addresses are blocked now (or were, until their entry is next looked at).
    blocked: AtomicUsize,
}

impl AuthFailures {
    /// At most `limit` failures a minute per address (0 = no limit).
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            entries: Mutex::default(),
            blocked: AtomicUsize::new(0),
        }
    }

    /// The failures allowed per minute.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long `client` is still blocked, if it is.
    pub fn blocked_for(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        if self.blocked.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut entries = self.lock();
        let entry = entries.get_mut(&client)?;
        let until = entry.blocked_until?;
        if until > now {
            return Some(until - now);
        }
        entry.blocked_until = None;
        entry.failures = 0;
        entry.window_start = now;
        self.blocked.fetch_sub(1, Ordering::Relaxed);
        None
    }

    /// Count one refused key from `client`; true when that blocks it.
    pub fn record(&self, client: IpAddr, now: Instant) -> bool {
        if self.limit == 0 || client.is_loopback() {
            return false;
        }
        let mut entries = self.lock();
        if entries.len() >= MAX_TRACKED && !entries.contains_key(&client) {
            entries.retain(|_, e| e.blocked_until.is_some() || now - e.window_start < WINDOW);
            if entries.len() >= MAX_TRACKED {
                return false;
            }
        }
        let entry = entries.entry(client).or_insert(Entry {
            window_start: now,
            failures: 0,
            blocked_until: None,
        });
        if now - entry.window_start >= WINDOW {
            entry.window_start = now;
            entry.failures = 0;
        }
        entry.failures += 1;
        if entry.failures >= self.limit && entry.blocked_until.is_none() {
            entry.blocked_until = Some(now + WINDOW);
            self.blocked.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_the_limit_and_released_after_the_window() {
        let failures = AuthFailures::new(3);
        let (a, b) = (IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2]));
        let t0 = Instant::now();
        assert!(!failures.record(a, t0));
        assert!(!failures.record(a, t0));
        assert_eq!(failures.blocked_for(a, t0), None);
        assert!(failures.record(a, t0));
        assert_eq!(failures.blocked_for(a, t0), Some(WINDOW));
        assert_eq!(
            failures.blocked_for(b, t0),
            None,
            "another address is not affected"
        );
        let later = t0 + WINDOW + Duration::from_secs(1);
        assert_eq!(failures.blocked_for(a, later), None);
        assert!(!failures.record(a, later), "counting starts again");
    }

    #[test]
    fn loopback_is_never_blocked() {
        let failures = AuthFailures::new(1);
        for ip in [
            IpAddr::from([127, 0, 0, 1]),
            "::1".parse().unwrap_or(IpAddr::from([127, 0, 0, 2])),
        ] {
            assert!(!failures.record(ip, Instant::now()));
            assert_eq!(failures.blocked_for(ip, Instant::now()), None);
        }
    }

    #[test]
    fn a_zero_limit_never_blocks() {
        let failures = AuthFailures::new(0);
        let ip = IpAddr::from([192, 0, 2, 1]);
        for _ in 0..100 {
            assert!(!failures.record(ip, Instant::now()));
        }
    }
}
