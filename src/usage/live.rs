//! What is happening now, for the console's Live page: the requests in flight (and which of
//! them are open streams), and the refusals of the last minutes by reason.
//!
//! Fed by the audit middleware: a request is added when it arrives, marked when its answer
//! turns out to be a stream, and removed when its answer ends; a refusal adds one to its
//! reason's count for the current minute. Each step is one short uncontended lock and no
//! allocation beyond the entry; nothing here touches the database.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::http::audit::Audit;

/// How many minutes of refusals are kept.
pub const REFUSAL_MINUTES: usize = 15;

#[derive(Debug)]
struct Entry {
    started: Instant,
    route: String,
    audit: Audit,
    streaming: bool,
}

/// The tracker.
#[derive(Debug, Default)]
pub struct Live {
    next: AtomicU64,
    in_flight: Mutex<HashMap<u64, Entry>>,
    /// (Unix minute, counts by reason), oldest first.
    refusals: Mutex<VecDeque<(i64, HashMap<&'static str, u64>)>>,
}

/// A request in flight, as the page lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct InFlight {
    pub key: String,
    pub model: String,
    pub route: String,
    pub streaming: bool,
    pub seconds: f64,
}

/// Refusals of one reason, per minute (oldest first, [`REFUSAL_MINUTES`] of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusals {
    pub reason: &'static str,
    pub per_minute: Vec<u64>,
    pub total: u64,
}

impl Live {
    /// A request arrived; the id to pass to [`Live::streaming`] and [`Live::finish`].
    pub fn start(&self, route: &str, audit: &Audit) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            started: Instant::now(),
            route: route.to_owned(),
            audit: audit.clone(),
            streaming: false,
        };
        self.lock_in_flight().insert(id, entry);
        id
    }

    /// Its answer is a stream.
    pub fn streaming(&self, id: u64) {
        if let Some(entry) = self.lock_in_flight().get_mut(&id) {
            entry.streaming = true;
        }
    }

    /// Its answer ended (or the client left).
    pub fn finish(&self, id: u64) {
        self.lock_in_flight().remove(&id);
    }

    /// A request was refused for `reason` at Unix minute `minute`.
    pub fn refused(&self, reason: &'static str, minute: i64) {
        let mut minutes = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        if minutes.back().is_none_or(|(m, _)| *m != minute) {
            minutes.push_back((minute, HashMap::new()));
            while minutes.len() > REFUSAL_MINUTES {
                minutes.pop_front();
            }
        }
        if let Some((_, counts)) = minutes.back_mut() {
            *counts.entry(reason).or_default() += 1;
        }
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The requests in flight, except those whose route starts with `skip` (the console's
    /// own), longest running first.
    pub fn in_flight(&self, skip: &str) -> Vec<InFlight> {
        let entries: Vec<(Instant, String, Audit, bool)> = self
            .lock_in_flight()
            .values()
            .filter(|e| !e.route.starts_with(skip))
            .map(|e| (e.started, e.route.clone(), e.audit.clone(), e.streaming))
            .collect();
        let mut out: Vec<InFlight> = entries
            .into_iter()
            .map(|(started, route, audit, streaming)| {
                let (key, model) = audit.key_and_model();
                InFlight {
                    key: key.unwrap_or_else(|| "-".into()),
                    model: model.unwrap_or_else(|| "-".into()),
                    route,
                    streaming,
                    seconds: started.elapsed().as_secs_f64(),
                }
            })
            .collect();
        out.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        out
    }

    /// Refusals by reason over the last [`REFUSAL_MINUTES`] minutes up to `now_minute`, most
    /// frequent first.
    pub fn refusals(&self, now_minute: i64) -> Vec<Refusals> {
        let minutes = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        let first = now_minute - REFUSAL_MINUTES as i64 + 1;
        let mut by_reason: HashMap<&'static str, Vec<u64>> = HashMap::new();
        for (minute, counts) in minutes.iter() {
            let Ok(slot) = usize::try_from(minute - first) else {
                continue;
            };
            if slot >= REFUSAL_MINUTES {
                continue;
            }
            for (reason, n) in counts {
                by_reason
                    .entry(reason)
                    .or_insert_with(|| vec![0; REFUSAL_MINUTES])[slot] += n;
            }
        }
        let mut out: Vec<Refusals> = by_reason
            .into_iter()
            .map(|(reason, per_minute)| Refusals {
                reason,
                total: per_minute.iter().sum(),
                per_minute,
            })
            .collect();
        out.sort_by(|a, b| b.total.cmp(&a.total).then(a.reason.cmp(b.reason)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_per_minute_and_forgotten_after_the_window() {
        let live = Live::default();
        live.refused("invalid_api_key", 100);
        live.refused("invalid_api_key", 100);
        live.refused("rate_limited_key", 101);
        let now = live.refusals(101);
        assert_eq!(now[0].reason, "invalid_api_key");
        assert_eq!(now[0].total, 2);
        assert_eq!(now[0].per_minute[REFUSAL_MINUTES - 2], 2);
        assert_eq!(now[1].per_minute[REFUSAL_MINUTES - 1], 1);
        assert!(live.refusals(100 + REFUSAL_MINUTES as i64 + 1).is_empty());
    }
}
