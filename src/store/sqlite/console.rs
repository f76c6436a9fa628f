//! The SQLite side of [`crate::store::console`]: console sessions, the `usage_stats` and
//! `usage_daily` rows the usage writer adds, and the grouped reads of the usage pages.

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{SqliteStore, to_i64, unavailable};
use crate::store::console::{
    self, SESSION_COLUMNS, SeriesBy, SeriesPoint, SessionRecord, StatCount, daily_rows,
    reads_daily, stat_rows,
};
use crate::store::{StoreError, UsageRecord};

/// Rows per INSERT of stats (5 or 8 parameters each), under SQLite's parameter limit.
const STATS_PER_STATEMENT: usize = 1000;

/// Add a batch's counts to `usage_stats` (per hour and per day), inside the batch's
/// transaction.
pub(super) async fn insert_stats(
    tx: &mut SqliteConnection,
    batch: &[UsageRecord],
) -> Result<(), StoreError> {
    let rows = stat_rows(batch);
    for chunk in rows.chunks(STATS_PER_STATEMENT) {
        let mut upsert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO usage_stats (period, start, kind, bucket, count) ",
        );
        upsert.push_values(chunk, |mut row, ((period, start, kind, bucket), count)| {
            row.push_bind(*period)
                .push_bind(*start)
                .push_bind(*kind)
                .push_bind(to_i64(*bucket))
                .push_bind(to_i64(*count));
        });
        upsert.push(
            " ON CONFLICT (period, start, kind, bucket) DO UPDATE SET count = count + excluded.count",
        );
        upsert
            .build()
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Add a batch's totals to `usage_daily`, inside the batch's transaction (the one that adds
/// them to `usage_hourly`).
pub(super) async fn insert_daily(
    tx: &mut SqliteConnection,
    batch: &[UsageRecord],
) -> Result<(), StoreError> {
    let rows = daily_rows(batch);
    for chunk in rows.chunks(STATS_PER_STATEMENT) {
        let mut upsert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO usage_daily (day, key_id, key_name, model, requests, errors, prompt_tokens, completion_tokens) ",
        );
        upsert.push_values(chunk, |mut row, ((day, key_id, key_name, model), t)| {
            row.push_bind(*day)
                .push_bind(*key_id)
                .push_bind(*key_name)
                .push_bind(*model)
                .push_bind(to_i64(t.0))
                .push_bind(to_i64(t.1))
                .push_bind(to_i64(t.2))
                .push_bind(to_i64(t.3));
        });
        upsert.push(
            " ON CONFLICT (day, key_id, key_name, model) DO UPDATE SET \
             requests = requests + excluded.requests, errors = errors + excluded.errors, \
             prompt_tokens = prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = completion_tokens + excluded.completion_tokens",
        );
        upsert
            .build()
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

impl SqliteStore {
    pub async fn create_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_sessions (digest, key_digest, key_name, client, created, expires) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(s.digest.as_slice())
        .bind(s.key_digest.as_slice())
        .bind(&s.key_name)
        .bind(&s.client)
        .bind(s.created)
        .bind(s.expires)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(unavailable)
    }

    pub async fn session(
        &self,
        digest: &[u8; 32],
        now: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM console_sessions WHERE digest = ? AND expires > ?"
        ))
        .bind(digest.as_slice())
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref()
            .map(console::session)
            .transpose()
            .map_err(unavailable)
    }

    pub async fn delete_session(&self, digest: &[u8; 32]) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE digest = ?")
            .bind(digest.as_slice())
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected() > 0)
            .map_err(unavailable)
    }

    pub async fn prune_sessions(&self, now: i64) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE expires <= ?")
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(unavailable)
    }

    pub async fn usage_series(
        &self,
        by: SeriesBy,
        from: i64,
        to: i64,
        bucket: i64,
    ) -> Result<Vec<SeriesPoint>, StoreError> {
        // Whole days come from the daily totals (see `reads_daily`); anything else reads the
        // hourly totals, each query only its covering index (usage_hourly_by_key / _by_model).
        let daily = reads_daily(from, to, bucket);
        let sql = match (by, daily) {
            (SeriesBy::Key, true) => {
                "SELECT (day / ?1) * ?1 AS start, key_id, key_name AS label, SUM(prompt_tokens) AS prompt, \
                 SUM(completion_tokens) AS completion, SUM(requests) AS requests, SUM(errors) AS errors \
                 FROM usage_daily WHERE day >= ?2 AND day < ?3 GROUP BY start, key_id, key_name"
            }
            (SeriesBy::Model, true) => {
                "SELECT (day / ?1) * ?1 AS start, '' AS key_id, model AS label, SUM(prompt_tokens) AS prompt, \
                 SUM(completion_tokens) AS completion, SUM(requests) AS requests, SUM(errors) AS errors \
                 FROM usage_daily WHERE day >= ?2 AND day < ?3 GROUP BY start, model"
            }
            (SeriesBy::Key, false) => {
                "SELECT (hour / ?1) * ?1 AS start, key_id, key_name AS label, SUM(prompt_tokens) AS prompt, \
                 SUM(completion_tokens) AS completion, SUM(requests) AS requests, SUM(errors) AS errors \
                 FROM usage_hourly INDEXED BY usage_hourly_by_key WHERE hour >= ?2 AND hour < ?3 \
                 GROUP BY start, key_id, key_name"
            }
            (SeriesBy::Model, false) => {
                "SELECT (hour / ?1) * ?1 AS start, '' AS key_id, model AS label, SUM(prompt_tokens) AS prompt, \
                 SUM(completion_tokens) AS completion, SUM(requests) AS requests, SUM(errors) AS errors \
                 FROM usage_hourly INDEXED BY usage_hourly_by_model WHERE hour >= ?2 AND hour < ?3 \
                 GROUP BY start, model"
            }
        };
        let rows = sqlx::query(sql)
            .bind(bucket.max(1))
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(console::series_point)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    pub async fn stat_totals(
        &self,
        period: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<StatCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT 0 AS start, kind, bucket, SUM(count) AS count FROM usage_stats \
             WHERE period = ? AND start >= ? AND start < ? GROUP BY kind, bucket",
        )
        .bind(period)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .filter_map(|row| console::stat(row).transpose())
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    pub async fn status_series(
        &self,
        period: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<StatCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT start, kind, bucket, count FROM usage_stats \
             WHERE period = ? AND start >= ? AND start < ? AND kind = 0 ORDER BY start",
        )
        .bind(period)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .filter_map(|row| console::stat(row).transpose())
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::store::console::{DAY, HOUR};

    /// Day 0 of the test: 2026-03-01T00:00:00Z, in Unix seconds.
    const DAY0: i64 = 1_772_323_200;

    /// 300 records over five days: stored and configured keys, models and none, errors and
    /// broken streams, and records on both sides of midnight.
    fn records() -> Vec<UsageRecord> {
        let keys = [
            (Some("k1"), "alice-key"),
            (Some("k2"), "bob-key"),
            (None, "config-key"),
        ];
        let models = [Some("llama3.2"), Some("qwen3"), None, Some("llama3.2")];
        let mut out: Vec<UsageRecord> = (0..300i64)
            .map(|i| {
                let (key_id, key_name) = keys[(i % 3) as usize];
                UsageRecord {
                    // About every 23 minutes, so that the records cross five midnights.
                    at: DAY0 * 1000 + i * 1_397_000,
                    key_id: key_id.map(str::to_owned),
                    key_name: key_name.to_owned(),
                    model: models[(i % 4) as usize].map(str::to_owned),
                    route: if i % 5 == 0 {
                        "/api/chat"
                    } else {
                        "/v1/chat/completions"
                    }
                    .into(),
                    status: if i % 11 == 0 { 500 } else { 200 },
                    error: (i % 13 == 0).then(|| "stream_cut".to_owned()),
                    prompt_tokens: (i % 17 + 1) as u64,
                    completion_tokens: (i % 7) as u64,
                    total_ms: 10.0 + i as f64,
                    ..UsageRecord::default()
                }
            })
            .collect();
        for at in [DAY0 + DAY, DAY0 + 2 * DAY] {
            for ms in [at * 1000 - 1, at * 1000] {
                out.push(UsageRecord {
                    at: ms,
                    key_id: Some("k1".into()),
                    key_name: "alice-key".into(),
                    model: Some("qwen3".into()),
                    route: "/v1/chat/completions".into(),
                    status: 200,
                    prompt_tokens: 1000,
                    completion_tokens: 1,
                    ..UsageRecord::default()
                });
            }
        }
        out
    }

    /// Points summed into buckets of `bucket` seconds, in a fixed order.
    fn rebucket(points: Vec<SeriesPoint>, bucket: i64) -> Vec<SeriesPoint> {
        let mut sums: HashMap<(i64, String, Option<String>), SeriesPoint> = HashMap::new();
        for p in points {
            let start = p.start.div_euclid(bucket) * bucket;
            let sum = sums
                .entry((start, p.label.clone(), p.key_id.clone()))
                .or_insert_with(|| SeriesPoint {
                    start,
                    label: p.label.clone(),
                    key_id: p.key_id.clone(),
                    ..SeriesPoint::default()
                });
            sum.prompt_tokens += p.prompt_tokens;
            sum.completion_tokens += p.completion_tokens;
            sum.requests += p.requests;
            sum.errors += p.errors;
        }
        let mut out: Vec<SeriesPoint> = sums.into_values().collect();
        out.sort_by(|a, b| (a.start, &a.label, &a.key_id).cmp(&(b.start, &b.label, &b.key_id)));
        out
    }

    type DailyRow = (i64, String, String, String, i64, i64, i64, i64);

    #[tokio::test]
    async fn daily_totals_are_the_sums_of_the_hourly_ones_and_read_the_same() {
        let dir = std::env::temp_dir().join(format!("gw-daily-{}", uuid::Uuid::new_v4().simple()));
        assert!(std::fs::create_dir_all(&dir).is_ok());
        let url = format!("sqlite://{}", dir.join("gateway.db").display());
        let Ok(store) = SqliteStore::open(&url).await else {
            panic!("cannot open {url}");
        };
        // In batches of 37, so that days and hours are added to across batches too.
        let all = records();
        for batch in all.chunks(37) {
            assert!(store.insert_usage(batch).await.is_ok());
        }

        // The table itself: each day's row is the sum of its hours' rows.
        let daily: Option<Vec<DailyRow>> = sqlx::query_as(
            "SELECT day, key_id, key_name, model, requests, errors, prompt_tokens, completion_tokens \
             FROM usage_daily ORDER BY 1, 2, 3, 4",
        )
        .fetch_all(&store.pool)
        .await
        .ok();
        let from_hours: Option<Vec<DailyRow>> = sqlx::query_as(
            "SELECT (hour / 86400) * 86400, key_id, key_name, model, SUM(requests), SUM(errors), \
             SUM(prompt_tokens), SUM(completion_tokens) FROM usage_hourly GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
        )
        .fetch_all(&store.pool)
        .await
        .ok();
        assert_eq!(daily, from_hours);
        let daily = daily.unwrap_or_default();
        let days: std::collections::HashSet<i64> = daily.iter().map(|r| r.0).collect();
        assert_eq!(days.len(), 5, "{days:?}");
        let requests: i64 = daily.iter().map(|r| r.4).sum();
        assert_eq!(usize::try_from(requests).ok(), Some(all.len()));
        let errors: i64 = daily.iter().map(|r| r.5).sum();
        let expected_errors = all.iter().filter(|r| r.is_error()).count();
        assert_eq!(usize::try_from(errors).ok(), Some(expected_errors));

        // The usage page's reads: whole days from the daily rows give what the hourly rows
        // give summed per day (or per week), over the whole range and over a part of it.
        let mut day_reads = Vec::new();
        for (from, to) in [(DAY0, DAY0 + 7 * DAY), (DAY0 + DAY, DAY0 + 3 * DAY)] {
            for by in [SeriesBy::Key, SeriesBy::Model] {
                for bucket in [DAY, 7 * DAY] {
                    let days = store.usage_series(by, from, to, bucket).await.ok();
                    let hours = store.usage_series(by, from, to, HOUR).await.ok();
                    let days = days.map(|d| rebucket(d, bucket));
                    let hours = hours.map(|h| rebucket(h, bucket));
                    assert!(days.as_ref().is_some_and(|d| !d.is_empty()));
                    assert_eq!(days, hours, "{by:?} every {bucket} s in [{from}, {to})");
                    day_reads.push(((from, to, by, bucket), days));
                }
            }
        }

        // And they are read from the daily rows: without the hourly ones they are unchanged.
        assert!(
            sqlx::query("DELETE FROM usage_hourly")
                .execute(&store.pool)
                .await
                .is_ok()
        );
        for ((from, to, by, bucket), before) in day_reads {
            let after = store.usage_series(by, from, to, bucket).await.ok();
            assert_eq!(after.map(|a| rebucket(a, bucket)), before);
        }
        store.pool.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
