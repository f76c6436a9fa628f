//! The SQLite side of [`super::console`]: console sessions, the `usage_stats` rows the usage
//! writer adds, and the grouped reads of the usage pages.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::console::{
    DAY, HOUR, SeriesBy, SeriesPoint, SessionRecord, StatCount, StatKind, status_bucket,
    time_bucket,
};
use super::sqlite::{SqliteStore, to_i64, to_u64, unavailable};
use super::{StoreError, UsageRecord};

/// Rows per INSERT of stats (5 parameters each).
const STATS_PER_STATEMENT: usize = 1000;

/// Add a batch's counts to `usage_stats` (per hour and per day), inside the batch's
/// transaction.
pub(super) async fn insert_stats(
    tx: &mut SqliteConnection,
    batch: &[UsageRecord],
) -> Result<(), StoreError> {
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
    let rows: Vec<_> = counts.into_iter().collect();
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

fn session_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<SessionRecord, sqlx::Error> {
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

fn stat_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Option<StatCount>, sqlx::Error> {
    let kind: i64 = row.try_get("kind")?;
    Ok(StatKind::from_i64(kind).map(|kind| StatCount {
        start: row.try_get("start").unwrap_or_default(),
        kind,
        bucket: to_u64(row.try_get("bucket").unwrap_or_default()),
        count: to_u64(row.try_get("count").unwrap_or_default()),
    }))
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
        let row = sqlx::query(
            "SELECT digest, key_digest, key_name, client, created, expires FROM console_sessions WHERE digest = ? AND expires > ?",
        )
        .bind(digest.as_slice())
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref()
            .map(session_from_row)
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
        // Each query reads only its covering index (usage_hourly_by_key / _by_model).
        let sql = match by {
            SeriesBy::Key => {
                "SELECT (hour / ?1) * ?1 AS start, key_id, key_name AS label, SUM(prompt_tokens) AS prompt, \
                 SUM(completion_tokens) AS completion, SUM(requests) AS requests, SUM(errors) AS errors \
                 FROM usage_hourly INDEXED BY usage_hourly_by_key WHERE hour >= ?2 AND hour < ?3 \
                 GROUP BY start, key_id, key_name"
            }
            SeriesBy::Model => {
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
            .map(|row| {
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
            })
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
            .filter_map(|row| stat_from_row(row).transpose())
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
            .filter_map(|row| stat_from_row(row).transpose())
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }
}
