//! The PostgreSQL side of [`crate::store::console`]: the same tables and reads as the SQLite
//! side, in PostgreSQL's SQL (numbered parameters, sums cast back to `BIGINT`).

use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::{PostgresStore, to_i64, unavailable};
use crate::store::console::{
    self, SESSION_COLUMNS, SeriesBy, SeriesPoint, SessionRecord, StatCount, daily_rows,
    reads_daily, stat_rows,
};
use crate::store::{StoreError, UsageRecord};

/// Rows per INSERT of stats (5 or 8 parameters each), far under PostgreSQL's 65,535.
const STATS_PER_STATEMENT: usize = 1000;

/// Add a batch's counts to `usage_stats` (per hour and per day), inside the batch's
/// transaction.
pub(super) async fn insert_stats(
    tx: &mut PgConnection,
    batch: &[UsageRecord],
) -> Result<(), StoreError> {
    let rows = stat_rows(batch);
    for chunk in rows.chunks(STATS_PER_STATEMENT) {
        let mut upsert = QueryBuilder::<Postgres>::new(
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
            " ON CONFLICT (period, start, kind, bucket) DO UPDATE SET \
             count = usage_stats.count + EXCLUDED.count",
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
    tx: &mut PgConnection,
    batch: &[UsageRecord],
) -> Result<(), StoreError> {
    let rows = daily_rows(batch);
    for chunk in rows.chunks(STATS_PER_STATEMENT) {
        let mut upsert = QueryBuilder::<Postgres>::new(
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
             requests = usage_daily.requests + EXCLUDED.requests, \
             errors = usage_daily.errors + EXCLUDED.errors, \
             prompt_tokens = usage_daily.prompt_tokens + EXCLUDED.prompt_tokens, \
             completion_tokens = usage_daily.completion_tokens + EXCLUDED.completion_tokens",
        );
        upsert
            .build()
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// The sums of a series row, as `BIGINT` (PostgreSQL sums `BIGINT`s into `NUMERIC`).
const SERIES_SUMS: &str = "SUM(prompt_tokens)::BIGINT AS prompt, SUM(completion_tokens)::BIGINT AS completion, \
                           SUM(requests)::BIGINT AS requests, SUM(errors)::BIGINT AS errors";

impl PostgresStore {
    pub async fn create_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO console_sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
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
            "SELECT {SESSION_COLUMNS} FROM console_sessions WHERE digest = $1 AND expires > $2"
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
        sqlx::query("DELETE FROM console_sessions WHERE digest = $1")
            .bind(digest.as_slice())
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected() > 0)
            .map_err(unavailable)
    }

    pub async fn prune_sessions(&self, now: i64) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE expires <= $1")
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
        let (table, time) = if reads_daily(from, to, bucket) {
            ("usage_daily", "day")
        } else {
            ("usage_hourly", "hour")
        };
        let (columns, group) = match by {
            SeriesBy::Key => ("key_id, key_name AS label", "key_id, key_name"),
            SeriesBy::Model => ("'' AS key_id, model AS label", "model"),
        };
        let sql = format!(
            "SELECT ({time} / $1) * $1 AS start, {columns}, {SERIES_SUMS} FROM {table} \
             WHERE {time} >= $2 AND {time} < $3 GROUP BY 1, {group}"
        );
        let rows = sqlx::query(&sql)
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
            "SELECT 0::BIGINT AS start, kind, bucket, SUM(count)::BIGINT AS count FROM usage_stats \
             WHERE period = $1 AND start >= $2 AND start < $3 GROUP BY kind, bucket",
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
             WHERE period = $1 AND start >= $2 AND start < $3 AND kind = 0 ORDER BY start",
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
