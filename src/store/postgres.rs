//! The PostgreSQL engine: for several gateway replicas on one database. The same tables and
//! behaviour as the SQLite engine, in PostgreSQL's SQL (numbered parameters, `BOOLEAN`, `BYTEA`,
//! `GREATEST`).

mod console;
mod responses;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use super::batch::{
    self, HOURLY_COLUMNS, HOURLY_UPSERT_HEAD, HOURLY_UPSERT_TAIL, MultiRowInsert, Placeholders,
    USAGE_COLUMNS, USAGE_INSERT_HEAD, statement_pieces,
};
use super::rows::{self, to_i64, to_u64, unavailable, write_error};
use super::{HourlyTotals, KeyPatch, KeyRecord, NewKey, Role, StoreError, UsageRecord, User};

static USAGE_INSERT: MultiRowInsert =
    MultiRowInsert::new(USAGE_INSERT_HEAD, USAGE_COLUMNS, "", Placeholders::Numbered);

static HOURLY_UPSERT: MultiRowInsert = MultiRowInsert::new(
    HOURLY_UPSERT_HEAD,
    HOURLY_COLUMNS,
    HOURLY_UPSERT_TAIL,
    Placeholders::Numbered,
);

/// How long taking a connection from the pool (or making one) may take before the store
/// reports the database unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a statement waits for a lock another session holds (PostgreSQL's spelling).
const LOCK_TIMEOUT: &str = "2s";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/postgres");

/// A PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

/// Bump the change counter inside a transaction.
async fn bump(tx: &mut sqlx::PgConnection) -> Result<(), StoreError> {
    sqlx::query("UPDATE meta SET generation = generation + 1 WHERE id = 1")
        .execute(tx)
        .await
        .map(|_| ())
        .map_err(unavailable)
}

impl PostgresStore {
    /// Connect, migrate, and prove the database can be written.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unsupported(format!("not a PostgreSQL URL: {e}")))?
            // A locked table turns into an error after this long, not a wait without end (the
            // SQLite engine's busy timeout): the admin API answers 503, the usage writer retries.
            .options([("lock_timeout", LOCK_TIMEOUT)]);
        // One connection by hand first: the pool retries until its timeout and then reports
        // only that it timed out, where this reports why (refused, unknown host, bad password).
        let first = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "no connection within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })?
            .map_err(unavailable)?;
        let _ = first.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        // Replicas starting together each try to migrate: the migrator takes an advisory lock,
        // so one migrates and the others wait and then find nothing to do.
        MIGRATOR.run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(err) => unavailable(err),
            other => StoreError::Unavailable(other.to_string()),
        })?;
        // A read-only role or a read-only standby is found now, not at the first admin change.
        sqlx::query("UPDATE meta SET generation = generation WHERE id = 1")
            .execute(&pool)
            .await
            .map_err(unavailable)?;
        Ok(Self { pool })
    }

    pub async fn generation(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT generation FROM meta WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query("SELECT name, role, created FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(rows::user)
            .collect::<Result<_, _>>()
            .map_err(unavailable)
    }

    pub async fn create_user(&self, name: &str, role: Role, now: i64) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("INSERT INTO users (name, role, created) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(role.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| write_error(e, &format!("a user named '{name}'")))?;
        bump(&mut tx).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(User {
            name: name.to_owned(),
            role,
            created: now,
        })
    }

    async fn user(&self, name: &str) -> Result<User, StoreError> {
        let row = sqlx::query("SELECT name, role, created FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| StoreError::NotFound(format!("no user named '{name}'")))?;
        rows::user(&row).map_err(unavailable)
    }

    pub async fn update_user(&self, name: &str, role: Role) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let done = sqlx::query("UPDATE users SET role = $1 WHERE name = $2")
            .bind(role.as_str())
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no user named '{name}'")));
        }
        bump(&mut tx).await?;
        tx.commit().await.map_err(unavailable)?;
        self.user(name).await
    }

    pub async fn delete_user(&self, name: &str, now: i64) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let done = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no user named '{name}'")));
        }
        let revoked: Vec<String> = sqlx::query_scalar(
            "UPDATE keys SET revoked = $1, enabled = FALSE WHERE user_name = $2 AND revoked IS NULL RETURNING id",
        )
        .bind(now)
        .bind(name)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        bump(&mut tx).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(revoked)
    }

    pub async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM keys ORDER BY created, id",
            rows::KEY_COLUMNS
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(rows::key)
            .collect::<Result<_, _>>()
            .map_err(unavailable)
    }

    pub async fn key(&self, id: &str) -> Result<KeyRecord, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM keys WHERE id = $1",
            rows::KEY_COLUMNS
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| StoreError::NotFound(format!("no key with id '{id}'")))?;
        rows::key(&row).map_err(unavailable)
    }

    pub async fn create_key(&self, key: &NewKey, now: i64) -> Result<KeyRecord, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        if let Some(user) = &key.user {
            sqlx::query(
                "INSERT INTO users (name, role, created) VALUES ($1, 'user', $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(user)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        let s = &key.settings;
        sqlx::query(
            "INSERT INTO keys (id, name, user_name, prefix, digest, created, expires, enabled, models, rate_limit, burst, max_concurrent, admin, daily_token_quota, monthly_token_quota, hard_quota) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.user)
        .bind(&key.prefix)
        .bind(key.digest.as_slice())
        .bind(now)
        .bind(key.expires)
        .bind(key.enabled)
        .bind(rows::models_text(&s.models))
        .bind(s.rate_limit.map(i64::from))
        .bind(s.burst.map(i64::from))
        .bind(s.max_concurrent.map(i64::from))
        .bind(s.admin)
        .bind(s.daily_token_quota.map(to_i64))
        .bind(s.monthly_token_quota.map(to_i64))
        .bind(s.hard_quota)
        .execute(&mut *tx)
        .await
        .map_err(|e| write_error(e, &format!("a key named '{}'", key.name)))?;
        bump(&mut tx).await?;
        tx.commit().await.map_err(unavailable)?;
        self.key(&key.id).await
    }

    pub async fn update_key(&self, id: &str, patch: &KeyPatch) -> Result<KeyRecord, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let row = sqlx::query(&format!(
            "SELECT {} FROM keys WHERE id = $1",
            rows::KEY_COLUMNS
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| StoreError::NotFound(format!("no key with id '{id}'")))?;
        let mut key = rows::key(&row).map_err(unavailable)?;
        if key.revoked.is_some() {
            return Err(StoreError::Conflict(format!(
                "key '{id}' is revoked and cannot be changed"
            )));
        }
        patch.apply(&mut key);
        let s = &key.settings;
        sqlx::query(
            "UPDATE keys SET name = $1, enabled = $2, expires = $3, models = $4, rate_limit = $5, burst = $6, max_concurrent = $7, admin = $8, daily_token_quota = $9, monthly_token_quota = $10, hard_quota = $11 WHERE id = $12",
        )
        .bind(&key.name)
        .bind(key.enabled)
        .bind(key.expires)
        .bind(rows::models_text(&s.models))
        .bind(s.rate_limit.map(i64::from))
        .bind(s.burst.map(i64::from))
        .bind(s.max_concurrent.map(i64::from))
        .bind(s.admin)
        .bind(s.daily_token_quota.map(to_i64))
        .bind(s.monthly_token_quota.map(to_i64))
        .bind(s.hard_quota)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| write_error(e, &format!("a key named '{}'", key.name)))?;
        bump(&mut tx).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(key)
    }

    pub async fn revoke_key(&self, id: &str, now: i64) -> Result<KeyRecord, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let done = sqlx::query(
            "UPDATE keys SET revoked = COALESCE(revoked, $1), enabled = FALSE WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no key with id '{id}'")));
        }
        bump(&mut tx).await?;
        tx.commit().await.map_err(unavailable)?;
        self.key(id).await
    }

    /// A batch is written with a handful of statements, not two per record: each statement
    /// is a round trip to sqlx's SQLite worker thread, and those dominated the cost.
    pub async fn insert_usage(&self, batch: &[UsageRecord]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        for rows in statement_pieces(batch) {
            let mut insert = sqlx::query(USAGE_INSERT.sql(rows.len())?);
            for r in rows {
                insert = insert
                    .bind(r.at)
                    .bind(r.key_id.as_deref())
                    .bind(r.key_name.as_str())
                    .bind(r.user.as_deref())
                    .bind(r.model.as_deref())
                    .bind(r.route.as_str())
                    .bind(i64::from(r.status))
                    .bind(r.error.as_deref())
                    .bind(to_i64(r.prompt_tokens))
                    .bind(to_i64(r.completion_tokens))
                    .bind(r.total_ms)
                    .bind(r.upstream_ms)
                    .bind(r.ttft_ms)
                    .bind(r.load_ms);
            }
            insert.execute(&mut *tx).await.map_err(unavailable)?;
        }
        let hourly = batch::hourly_totals(batch);
        for rows in statement_pieces(&hourly) {
            let mut upsert = sqlx::query(HOURLY_UPSERT.sql(rows.len())?);
            for h in rows {
                upsert = upsert
                    .bind(h.hour)
                    .bind(h.key_id.as_deref().unwrap_or_default())
                    .bind(h.key_name.as_str())
                    .bind(h.user.as_deref().unwrap_or_default())
                    .bind(h.model.as_deref().unwrap_or_default())
                    .bind(h.route.as_str())
                    .bind(to_i64(h.requests))
                    .bind(to_i64(h.errors))
                    .bind(to_i64(h.prompt_tokens))
                    .bind(to_i64(h.completion_tokens))
                    .bind(h.total_ms);
            }
            upsert.execute(&mut *tx).await.map_err(unavailable)?;
        }
        // The same totals per day and the console's status and latency counts, in this
        // transaction: they never disagree with it.
        console::insert_daily(&mut tx, batch).await?;
        console::insert_stats(&mut tx, batch).await?;
        for (id, at) in batch::last_used(batch) {
            sqlx::query(
                "UPDATE keys SET last_used = GREATEST(COALESCE(last_used, 0), $1) WHERE id = $2",
            )
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    pub async fn usage(&self, from: i64, to: i64) -> Result<Vec<UsageRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM usage WHERE at >= $1 AND at < $2 ORDER BY at, id",
            rows::USAGE_COLUMNS
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(rows::usage)
            .collect::<Result<_, _>>()
            .map_err(unavailable)
    }

    pub async fn hourly(&self, from: i64, to: i64) -> Result<Vec<HourlyTotals>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM usage_hourly WHERE hour >= $1 AND hour < $2 ORDER BY hour",
            rows::HOURLY_COLUMNS
        ))
        .bind(from.div_euclid(1000))
        .bind(to.div_euclid(1000))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(rows::hourly)
            .collect::<Result<_, _>>()
            .map_err(unavailable)
    }

    pub async fn tokens_since(&self, since: i64) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT CASE WHEN key_id = '' THEN 'config:' || key_name ELSE key_id END AS counter, \
             SUM(prompt_tokens + completion_tokens)::BIGINT FROM usage_hourly \
             WHERE hour >= $1 GROUP BY counter",
        )
        .bind(since.div_euclid(1000))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows.into_iter().map(|(k, n)| (k, to_u64(n))).collect())
    }

    pub async fn prune_usage(&self, before: i64) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM usage WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(unavailable)
    }
}
