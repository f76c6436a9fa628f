//! What the admin console keeps and reads: its sessions, and usage in the shapes its pages
//! draw (series over time, status counts, latency histograms). The SQL is in each engine
//! (`sqlite/console.rs`, `postgres/console.rs`); these are the types, what a batch of usage
//! records adds to the tables (the same for every engine), and the [`Store`] methods.

use std::collections::HashMap;

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::rows::to_u64;
use super::{Engine, Store, StoreError, UsageRecord};

/// A console session as stored: the digest of its token, never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session token (the cookie's value).
    pub digest: [u8; 32],
    /// SHA-256 of the admin key the session was opened with.
    pub key_digest: [u8; 32],
    /// That key's name, for the page header and the audit line.
    pub key_name: String,
    /// The client address that logged in.
    pub client: Option<String>,
    /// Unix milliseconds.
    pub created: i64,
    /// Unix milliseconds; the session is refused from then on.
    pub expires: i64,
}

/// What a usage series is split by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeriesBy {
    Key,
    Model,
}

/// One bucket of one series: tokens and requests of one key (or model) in one time bucket,
/// from the hourly or daily totals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeriesPoint {
    /// Unix seconds at the bucket's start.
    pub start: i64,
    /// The key's name (with its id, for stored keys) or the model.
    pub label: String,
    /// The stored key's id, when split by key.
    pub key_id: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub requests: u64,
    pub errors: u64,
}

/// What a row of `usage_stats` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatKind {
    /// Requests by status (bucket = the status; [`STREAM_FAILED`] for a stream that failed
    /// after its 200).
    Status = 0,
    /// Total time, bucketed by [`time_bucket`] (microseconds).
    Latency = 1,
    /// Time to first token, bucketed the same way.
    Ttft = 2,
}

impl StatKind {
    pub(super) fn from_i64(n: i64) -> Option<Self> {
        match n {
            0 => Some(Self::Status),
            1 => Some(Self::Latency),
            2 => Some(Self::Ttft),
            _ => None,
        }
    }
}

/// The status bucket of a stream that ended with an error after its 200.
pub const STREAM_FAILED: u64 = 1;

/// The status bucket a record counts in.
pub fn status_bucket(record: &super::UsageRecord) -> u64 {
    if record.error.is_some() && record.status < 400 {
        STREAM_FAILED
    } else {
        u64::from(record.status)
    }
}

/// One row of counts: `count` requests fell in `bucket` of `kind` (in the bucket `start` when
/// read as a series).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatCount {
    pub start: i64,
    pub kind: StatKind,
    pub bucket: u64,
    pub count: u64,
}

/// The stats' two resolutions, in seconds.
pub const HOUR: i64 = 3600;
/// A day.
pub const DAY: i64 = 86_400;

/// A time in microseconds to two significant digits (`1234` -> `1200`; below 100 as is): the
/// histogram bucket the migration and the writer both use.
pub fn time_bucket(micros: u64) -> u64 {
    if micros < 100 {
        return micros;
    }
    let mut scale = 1;
    let mut lead = micros;
    while lead >= 100 {
        lead /= 10;
        scale *= 10;
    }
    lead * scale
}

/// The middle of a bucket, in milliseconds (what a percentile read from it reports).
pub fn bucket_middle_ms(bucket: u64) -> f64 {
    if bucket < 100 {
        return bucket as f64 / 1000.0;
    }
    let mut scale = 1;
    let mut lead = bucket;
    while lead >= 100 {
        lead /= 10;
        scale *= 10;
    }
    (bucket as f64 + scale as f64 / 2.0) / 1000.0
}

/// The columns [`session`] reads.
pub(super) const SESSION_COLUMNS: &str = "digest, key_digest, key_name, client, created, expires";

/// A row of `usage_stats`: (period, start, kind, bucket) and the count to add.
pub(super) type StatRow = ((i64, i64, i64, u64), u64);

/// What a batch adds to `usage_stats`: per hour and per day, requests by status, by total time
/// and by time to first token.
pub(super) fn stat_rows(batch: &[UsageRecord]) -> Vec<StatRow> {
    let mut counts: HashMap<(i64, i64, i64, u64), u64> = HashMap::new();
    for r in batch {
        let micros = |ms: f64| time_bucket((ms.max(0.0) * 1000.0) as u64);
        for period in [HOUR, DAY] {
            let start = r.at.div_euclid(period * 1000) * period;
            *counts
                .entry((period, start, StatKind::Status as i64, status_bucket(r)))
                .or_default() += 1;
            *counts
                .entry((period, start, StatKind::Latency as i64, micros(r.total_ms)))
                .or_default() += 1;
            if let Some(ttft) = r.ttft_ms {
                *counts
                    .entry((period, start, StatKind::Ttft as i64, micros(ttft)))
                    .or_default() += 1;
            }
        }
    }
    counts.into_iter().collect()
}

/// A day's row of `usage_daily`: (day, key id, key name, model).
pub(super) type DayKey<'a> = (i64, &'a str, &'a str, &'a str);
/// Its totals: requests, errors, prompt and completion tokens.
pub(super) type DayTotals = (u64, u64, u64, u64);

/// What a batch adds to `usage_daily`: the day's rows are the sums of its hours' rows, by key
/// and model.
pub(super) fn daily_rows(batch: &[UsageRecord]) -> Vec<(DayKey<'_>, DayTotals)> {
    let mut daily: HashMap<DayKey<'_>, DayTotals> = HashMap::new();
    for r in batch {
        let day = r.at.div_euclid(DAY * 1000) * DAY;
        let totals = daily
            .entry((
                day,
                r.key_id.as_deref().unwrap_or_default(),
                r.key_name.as_str(),
                r.model.as_deref().unwrap_or_default(),
            ))
            .or_default();
        totals.0 += 1;
        totals.1 += u64::from(r.is_error());
        totals.2 += r.prompt_tokens;
        totals.3 += r.completion_tokens;
    }
    daily.into_iter().collect()
}

/// One `console_sessions` row ([`SESSION_COLUMNS`]).
pub(super) fn session<R>(row: &R) -> Result<SessionRecord, sqlx::Error>
where
    R: Row,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let digest: Vec<u8> = row.try_get("digest")?;
    let key_digest: Vec<u8> = row.try_get("key_digest")?;
    Ok(SessionRecord {
        digest: digest.try_into().unwrap_or([0; 32]),
        key_digest: key_digest.try_into().unwrap_or([0; 32]),
        key_name: row.try_get("key_name")?,
        client: row.try_get("client")?,
        created: row.try_get("created")?,
        expires: row.try_get("expires")?,
    })
}

/// One row of stats (`start, kind, bucket, count`); none for a kind this build does not know.
pub(super) fn stat<R>(row: &R) -> Result<Option<StatCount>, sqlx::Error>
where
    R: Row,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let kind: i64 = row.try_get("kind")?;
    Ok(StatKind::from_i64(kind).map(|kind| StatCount {
        start: row.try_get("start").unwrap_or_default(),
        kind,
        bucket: to_u64(row.try_get("bucket").unwrap_or_default()),
        count: to_u64(row.try_get("count").unwrap_or_default()),
    }))
}

/// One point of a usage series (`start, key_id, label, prompt, completion, requests, errors`).
pub(super) fn series_point<R>(row: &R) -> Result<SeriesPoint, sqlx::Error>
where
    R: Row,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let key_id: String = row.try_get("key_id")?;
    Ok(SeriesPoint {
        start: row.try_get("start")?,
        label: row.try_get("label")?,
        key_id: (!key_id.is_empty()).then_some(key_id),
        prompt_tokens: to_u64(row.try_get("prompt")?),
        completion_tokens: to_u64(row.try_get("completion")?),
        requests: to_u64(row.try_get("requests")?),
        errors: to_u64(row.try_get("errors")?),
    })
}

/// Whether a series is read from the daily totals: the range and the buckets are whole days,
/// so the daily rows give the same numbers as the hourly ones, from a 24th of the rows.
pub(super) fn reads_daily(from: i64, to: i64, bucket: i64) -> bool {
    bucket > 0 && bucket % DAY == 0 && from % DAY == 0 && to % DAY == 0
}

impl Store {
    /// Store a new console session.
    pub async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(s) => s.create_session(session).await,
            Engine::Postgres(s) => s.create_session(session).await,
        }
    }

    /// The session with this token digest, if it exists and has not expired at `now`.
    pub async fn session(
        &self,
        digest: &[u8; 32],
        now: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        match &self.engine {
            Engine::Sqlite(s) => s.session(digest, now).await,
            Engine::Postgres(s) => s.session(digest, now).await,
        }
    }

    /// End a session (logout); true if it existed.
    pub async fn delete_session(&self, digest: &[u8; 32]) -> Result<bool, StoreError> {
        match &self.engine {
            Engine::Sqlite(s) => s.delete_session(digest).await,
            Engine::Postgres(s) => s.delete_session(digest).await,
        }
    }

    /// Delete the sessions expired at `now`; how many.
    pub async fn prune_sessions(&self, now: i64) -> Result<u64, StoreError> {
        match &self.engine {
            Engine::Sqlite(s) => s.prune_sessions(now).await,
            Engine::Postgres(s) => s.prune_sessions(now).await,
        }
    }

    /// Tokens and requests per `bucket` seconds and per key or model, for hours in
    /// `[from, to)` (Unix seconds): from the daily totals when the range and the buckets are
    /// whole days, from the hourly totals otherwise (the same numbers, from fewer rows).
    pub async fn usage_series(
        &self,
        by: SeriesBy,
        from: i64,
        to: i64,
        bucket: i64,
    ) -> Result<Vec<SeriesPoint>, StoreError> {
        match &self.engine {
            Engine::Sqlite(s) => s.usage_series(by, from, to, bucket).await,
            Engine::Postgres(s) => s.usage_series(by, from, to, bucket).await,
        }
    }

    /// Counts by kind and bucket, summed over `period` rows starting in `[from, to)`.
    pub async fn stat_totals(
        &self,
        period: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<StatCount>, StoreError> {
        match &self.engine {
            Engine::Sqlite(s) => s.stat_totals(period, from, to).await,
            Engine::Postgres(s) => s.stat_totals(period, from, to).await,
        }
    }

    /// Requests by status per `period` row starting in `[from, to)`.
    pub async fn status_series(
        &self,
        period: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<StatCount>, StoreError> {
        match &self.engine {
            Engine::Sqlite(s) => s.status_series(period, from, to).await,
            Engine::Postgres(s) => s.status_series(period, from, to).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_two_significant_digits() {
        assert_eq!(time_bucket(0), 0);
        assert_eq!(time_bucket(99), 99);
        assert_eq!(time_bucket(100), 100);
        assert_eq!(time_bucket(1234), 1200);
        assert_eq!(time_bucket(98_765_432), 98_000_000);
        assert!((bucket_middle_ms(1200) - 1.25).abs() < 1e-9);
        // The middle of a bucket is within 5 % of anything in it.
        for micros in [150u64, 999, 1000, 1099, 45_678, 9_999_999] {
            let middle = bucket_middle_ms(time_bucket(micros)) * 1000.0;
            let error = (middle - micros as f64).abs() / micros as f64;
            assert!(error <= 0.05, "{micros}: {middle} is {error}");
        }
    }
}
