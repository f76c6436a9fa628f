//! Token quotas, counted in memory: the request path reads these counters and never the
//! database. They are seeded from the store's hourly totals at start, and every finished
//! request adds its tokens as its usage record is queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

use super::clock::Clock;
use crate::error::GatewayError;
use crate::gate::keys::Caller;

/// Tokens a key used in the current day and month.
#[derive(Clone, Copy, Debug, Default)]
struct Used {
    day: i64,
    day_tokens: u64,
    month: i64,
    month_tokens: u64,
}

/// One period's budget, as the `x-quota-*` headers report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the period starts again.
    pub reset: u64,
}

/// A key's budgets at admission.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaStatus {
    pub daily: Option<Budget>,
    pub monthly: Option<Budget>,
}

impl QuotaStatus {
    /// The smaller of what is left today and this month, if any quota applies.
    pub fn remaining(&self) -> Option<u64> {
        [self.daily, self.monthly]
            .iter()
            .flatten()
            .map(|b| b.remaining)
            .min()
    }

    /// The budget that runs out first, as a stream's hard limit.
    pub fn hard_budget(&self) -> Option<crate::http::audit::HardBudget> {
        [("daily", self.daily), ("monthly", self.monthly)]
            .into_iter()
            .filter_map(|(period, b)| b.map(|b| (period, b)))
            .min_by_key(|(_, b)| b.remaining)
            .map(|(period, b)| crate::http::audit::HardBudget {
                tokens: b.remaining,
                period,
                limit: b.limit,
                reset: b.reset,
            })
    }

    /// Add the `x-quota-*` headers.
    pub fn write_headers(&self, headers: &mut http::HeaderMap) {
        for (name, budget) in [("daily", self.daily), ("monthly", self.monthly)] {
            if let Some(b) = budget {
                for (what, value) in [
                    ("limit", b.limit),
                    ("remaining", b.remaining),
                    ("reset", b.reset),
                ] {
                    if let Ok(header) = http::HeaderName::try_from(format!("x-quota-{name}-{what}"))
                    {
                        headers.insert(header, http::HeaderValue::from(value));
                    }
                }
            }
        }
    }
}

/// The counters of every stored key.
#[derive(Debug)]
pub struct Quotas {
    clock: Arc<dyn Clock>,
    used: Mutex<HashMap<String, Used>>,
}

fn day_index(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(86_400)
}

fn month_index(at: DateTime<Utc>) -> i64 {
    i64::from(at.year()) * 12 + i64::from(at.month0())
}

/// The number of `at`'s UTC day (days since 1970-01-01).
pub fn day_number(at: DateTime<Utc>) -> i64 {
    day_index(at)
}

/// The number of `at`'s UTC month (year * 12 + month - 1).
pub fn month_number(at: DateTime<Utc>) -> i64 {
    month_index(at)
}

/// Midnight UTC at the start of `at`'s day.
pub fn day_start(at: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_opt(day_index(at) * 86_400, 0)
        .single()
        .unwrap_or(at)
}

/// Midnight UTC on the first of `at`'s month.
pub fn month_start(at: DateTime<Utc>) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(at.year(), at.month(), 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(at, |d| d.and_utc())
}

fn next_month_start(at: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) = if at.month() == 12 {
        (at.year() + 1, 1)
    } else {
        (at.year(), at.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(at, |d| d.and_utc())
}

fn seconds_until(now: DateTime<Utc>, then: DateTime<Utc>) -> u64 {
    u64::try_from((then - now).num_seconds())
        .unwrap_or_default()
        .max(1)
}

impl Quotas {
    /// Empty counters on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            used: Mutex::default(),
        }
    }

    /// The clock the periods are counted in.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Set the counters from the store: tokens per key today and this month.
    pub fn seed(&self, today: &[(String, u64)], this_month: &[(String, u64)]) {
        let now = self.clock.now();
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        for (id, tokens) in this_month {
            let entry = used.entry(id.clone()).or_default();
            *entry = Used {
                day: day_index(now),
                day_tokens: 0,
                month: month_index(now),
                month_tokens: *tokens,
            };
        }
        for (id, tokens) in today {
            let entry = used.entry(id.clone()).or_insert(Used {
                day: day_index(now),
                month: month_index(now),
                ..Used::default()
            });
            entry.day_tokens = *tokens;
        }
    }

    fn rolled(&self, used: &mut Used, now: DateTime<Utc>) {
        if used.day != day_index(now) {
            used.day = day_index(now);
            used.day_tokens = 0;
        }
        if used.month != month_index(now) {
            used.month = month_index(now);
            used.month_tokens = 0;
        }
    }

    /// Count `tokens` for the key `id`.
    pub fn add(&self, id: &str, tokens: u64) {
        if tokens == 0 {
            return;
        }
        let now = self.clock.now();
        let mut all = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        // A key's entry exists after its first request: look it up without allocating.
        if !all.contains_key(id) {
            all.insert(
                id.to_owned(),
                Used {
                    day: day_index(now),
                    month: month_index(now),
                    ..Used::default()
                },
            );
        }
        let Some(used) = all.get_mut(id) else { return };
        self.rolled(used, now);
        used.day_tokens = used.day_tokens.saturating_add(tokens);
        used.month_tokens = used.month_tokens.saturating_add(tokens);
    }

    /// Tokens the key `id` used today and this month.
    pub fn used(&self, id: &str) -> (u64, u64) {
        let now = self.clock.now();
        let mut all = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        match all.get_mut(id) {
            Some(used) => {
                self.rolled(used, now);
                (used.day_tokens, used.month_tokens)
            }
            None => (0, 0),
        }
    }

    /// The current day and month, as the counters number them (Redis keys carry them).
    pub fn periods(&self) -> (i64, i64) {
        let now = self.clock.now();
        (day_number(now), month_number(now))
    }

    /// The caller's budgets, or the 429 if one is spent. Keys without quotas: nothing.
    pub fn check(&self, caller: &Caller) -> Result<QuotaStatus, (GatewayError, QuotaStatus)> {
        let (Some(id), true) = (caller.id.as_deref(), caller.quota.is_set()) else {
            return Ok(QuotaStatus::default());
        };
        let (today, month) = self.used(id);
        self.judge(caller, today, month)
    }

    /// [`check`](Self::check) with the tokens used `today` and this `month` counted elsewhere
    /// (in Redis, across replicas).
    pub fn judge(
        &self,
        caller: &Caller,
        today: u64,
        month: u64,
    ) -> Result<QuotaStatus, (GatewayError, QuotaStatus)> {
        if !caller.quota.is_set() {
            return Ok(QuotaStatus::default());
        }
        let now = self.clock.now();
        let budget = |limit: u64, used: u64, reset: DateTime<Utc>| Budget {
            limit,
            remaining: limit.saturating_sub(used),
            reset: seconds_until(now, reset),
        };
        let tomorrow = day_start(now) + chrono::Duration::days(1);
        let status = QuotaStatus {
            daily: caller.quota.daily.map(|l| budget(l, today, tomorrow)),
            monthly: caller
                .quota
                .monthly
                .map(|l| budget(l, month, next_month_start(now))),
        };
        let spent = [("monthly", status.monthly), ("daily", status.daily)]
            .into_iter()
            .find_map(|(period, b)| b.filter(|b| b.remaining == 0).map(|b| (period, b)));
        match spent {
            None => Ok(status),
            Some((period, b)) => Err((
                GatewayError::QuotaExceeded {
                    period,
                    limit: b.limit,
                    retry_after: Duration::from_secs(b.reset),
                },
                status,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::clock::ManualClock;

    #[test]
    fn periods_start_at_utc_midnight_and_on_the_first() {
        let at = Utc
            .with_ymd_and_hms(2026, 12, 31, 23, 30, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(day_start(at).to_rfc3339(), "2026-12-31T00:00:00+00:00");
        assert_eq!(month_start(at).to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(
            next_month_start(at).to_rfc3339(),
            "2027-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn counters_roll_over_with_the_clock() {
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 1, 31, 12, 0, 0)
                .single()
                .unwrap_or_default(),
        ));
        let quotas = Quotas::new(clock.clone());
        quotas.seed(&[("k".into(), 5)], &[("k".into(), 50)]);
        quotas.add("k", 10);
        assert_eq!(quotas.used("k"), (15, 60));
        clock.advance(chrono::Duration::hours(13));
        assert_eq!(quotas.used("k"), (0, 0), "a new day in a new month");
        quotas.add("k", 3);
        clock.advance(chrono::Duration::days(1));
        assert_eq!(quotas.used("k"), (0, 3), "same month, next day");
    }
}
