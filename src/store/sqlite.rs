//! The SQLite engine: one file, WAL journal (readers never wait on the writer), a short busy
//! timeout (a locked file turns into an error, not a hang).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use super::{
    HourlyTotals, KeyPatch, KeyRecord, KeySettings, NewKey, Role, StoreError, UsageRecord, User,
};

/// Usage rows per INSERT: 14 parameters each, well under SQLite's limit of 32,766 per statement.
const RECORDS_PER_STATEMENT: usize = 500;

/// How long a statement waits for a lock another connection or process holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/sqlite");

/// An SQLite database.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
}

pub(super) fn unavailable(err: sqlx::Error) -> StoreError {
    StoreError::Unavailable(match &err {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    })
}

/// A failed insert or update: a unique index means a taken name, anything else is the
/// database's trouble.
fn write_error(err: sqlx::Error, what: &str) -> StoreError {
    if let sqlx::Error::Database(db) = &err
        && db.is_unique_violation()
    {
        return StoreError::Conflict(format!("{what} already exists"));
    }
    unavailable(err)
}

pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

fn opt_u32(n: Option<i64>) -> Option<u32> {
    n.map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

const KEY_COLUMNS: &str = "id, name, user_name, prefix, digest, created, last_used, expires, enabled, revoked, models, rate_limit, burst, max_concurrent, admin, daily_token_quota, monthly_token_quota, hard_quota";

fn key_from_row(row: &SqliteRow) -> Result<KeyRecord, sqlx::Error> {
    let digest: Vec<u8> = row.try_get("digest")?;
    let models: String = row.try_get("models")?;
    Ok(KeyRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        user: row.try_get("user_name")?,
        prefix: row.try_get("prefix")?,
        digest: digest.try_into().unwrap_or([0; 32]),
        created: row.try_get("created")?,
        last_used: row.try_get("last_used")?,
        expires: row.try_get("expires")?,
        enabled: row.try_get("enabled")?,
        revoked: row.try_get("revoked")?,
        settings: KeySettings {
            models: serde_json::from_str(&models).unwrap_or_default(),
            rate_limit: opt_u32(row.try_get("rate_limit")?),
            burst: opt_u32(row.try_get("burst")?),
            max_concurrent: opt_u32(row.try_get("max_concurrent")?),
            admin: row.try_get("admin")?,
            daily_token_quota: row
                .try_get::<Option<i64>, _>("daily_token_quota")?
                .map(to_u64),
            monthly_token_quota: row
                .try_get::<Option<i64>, _>("monthly_token_quota")?
                .map(to_u64),
            hard_quota: row.try_get("hard_quota")?,
        },
    })
}

fn user_from_row(row: &SqliteRow) -> Result<User, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(User {
        name: row.try_get("name")?,
        role: Role::parse(&role),
        created: row.try_get("created")?,
    })
}

/// Bump the change counter inside a transaction.
async fn bump(tx: &mut sqlx::SqliteConnection) -> Result<(), StoreError> {
    sqlx::query("UPDATE meta SET generation = generation + 1 WHERE id = 1")
        .execute(tx)
        .await
        .map(|_| ())
        .map_err(unavailable)
}

impl SqliteStore {
    /// Open, create if missing, migrate, and prove the file can be written.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unsupported(format!("not an SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(BUSY_TIMEOUT + Duration::from_secs(1))
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        MIGRATOR.run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(err) => unavailable(err),
            other => StoreError::Unavailable(other.to_string()),
        })?;
        // Migrations write nothing to a database that is already up to date: this does, so a
        // read-only or locked file is found now rather than at the first admin change.
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
            .map(user_from_row)
            .collect::<Result<_, _>>()
            .map_err(unavailable)
    }

    pub async fn create_user(&self, name: &str, role: Role, now: i64) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("INSERT INTO users (name, role, created) VALUES (?, ?, ?)")
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
        let row = sqlx::query("SELECT name, role, created FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| StoreError::NotFound(format!("no user named '{name}'")))?;
        user_from_row(&row).map_err(unavailable)
    }

    pub async fn update_user(&self, name: &str, role: Role) -> Result<User, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let done = sqlx::query("UPDATE users SET role = ? WHERE name = ?")
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
        let done = sqlx::query("DELETE FROM users WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no user named '{name}'")));
        }
        let revoked: Vec<String> = sqlx::query_scalar(
            "UPDATE keys SET revoked = ?, enabled = 0 WHERE user_name = ? AND revoked IS NULL RETURNING id",
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
            "SELECT {KEY_COLUMNS} FROM keys ORDER BY created, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(key_from_row)
            .collect::<Result<_, _>>()
            .map_err(unavailable)
    }

    pub async fn key(&self, id: &str) -> Result<KeyRecord, StoreError> {
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM keys WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| StoreError::NotFound(format!("no key with id '{id}'")))?;
        key_from_row(&row).map_err(unavailable)
    }

    pub async fn create_key(&self, key: &NewKey, now: i64) -> Result<KeyRecord, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        if let Some(user) = &key.user {
            sqlx::query(
                "INSERT INTO users (name, role, created) VALUES (?, 'user', ?) ON CONFLICT (name) DO NOTHING",
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.user)
        .bind(&key.prefix)
        .bind(key.digest.as_slice())
        .bind(now)
        .bind(key.expires)
        .bind(key.enabled)
        .bind(serde_json::to_string(&s.models).unwrap_or_else(|_| "[]".into()))
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
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM keys WHERE id = ?"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| StoreError::NotFound(format!("no key with id '{id}'")))?;
        let mut key = key_from_row(&row).map_err(unavailable)?;
        if key.revoked.is_some() {
            return Err(StoreError::Conflict(format!(
                "key '{id}' is revoked and cannot be changed"
            )));
        }
        let s = &mut key.settings;
        if let Some(name) = &patch.name {
            key.name.clone_from(name);
        }
        if let Some(enabled) = patch.enabled {
            key.enabled = enabled;
        }
        if let Some(expires) = patch.expires {
            key.expires = expires;
        }
        if let Some(models) = &patch.models {
            s.models.clone_from(models);
        }
        if let Some(v) = patch.rate_limit {
            s.rate_limit = v;
        }
        if let Some(v) = patch.burst {
            s.burst = v;
        }
        if let Some(v) = patch.max_concurrent {
            s.max_concurrent = v;
        }
        if let Some(v) = patch.admin {
            s.admin = v;
        }
        if let Some(v) = patch.daily_token_quota {
            s.daily_token_quota = v;
        }
        if let Some(v) = patch.monthly_token_quota {
            s.monthly_token_quota = v;
        }
        if let Some(v) = patch.hard_quota {
            s.hard_quota = v;
        }
        sqlx::query(
            "UPDATE keys SET name = ?, enabled = ?, expires = ?, models = ?, rate_limit = ?, burst = ?, max_concurrent = ?, admin = ?, daily_token_quota = ?, monthly_token_quota = ?, hard_quota = ? WHERE id = ?",
        )
        .bind(&key.name)
        .bind(key.enabled)
        .bind(key.expires)
        .bind(serde_json::to_string(&s.models).unwrap_or_else(|_| "[]".into()))
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
        let done =
            sqlx::query("UPDATE keys SET revoked = COALESCE(revoked, ?), enabled = 0 WHERE id = ?")
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
        for rows in batch.chunks(RECORDS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO usage (at, key_id, key_name, user_name, model, route, status, error, prompt_tokens, completion_tokens, total_ms, upstream_ms, ttft_ms, load_ms) ",
            );
            insert.push_values(rows, |mut row, r| {
                row.push_bind(r.at)
                    .push_bind(r.key_id.as_deref())
                    .push_bind(r.key_name.as_str())
                    .push_bind(r.user.as_deref())
                    .push_bind(r.model.as_deref())
                    .push_bind(r.route.as_str())
                    .push_bind(i64::from(r.status))
                    .push_bind(r.error.as_deref())
                    .push_bind(to_i64(r.prompt_tokens))
                    .push_bind(to_i64(r.completion_tokens))
                    .push_bind(r.total_ms)
                    .push_bind(r.upstream_ms)
                    .push_bind(r.ttft_ms)
                    .push_bind(r.load_ms);
            });
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        // The batch's hourly totals, summed here first: one row per hour and dimensions.
        let mut hourly: Vec<HourlyTotals> = Vec::new();
        for r in batch {
            let hour = r.at.div_euclid(3_600_000) * 3600;
            let found = hourly.iter().position(|h| {
                h.hour == hour
                    && h.key_id == r.key_id
                    && h.key_name == r.key_name
                    && h.user == r.user
                    && h.model == r.model
                    && h.route == r.route
            });
            let at = found.unwrap_or_else(|| {
                hourly.push(HourlyTotals {
                    hour,
                    key_id: r.key_id.clone(),
                    key_name: r.key_name.clone(),
                    user: r.user.clone(),
                    model: r.model.clone(),
                    route: r.route.clone(),
                    ..HourlyTotals::default()
                });
                hourly.len() - 1
            });
            let Some(totals) = hourly.get_mut(at) else {
                continue;
            };
            totals.requests += 1;
            totals.errors += u64::from(r.is_error());
            totals.prompt_tokens += r.prompt_tokens;
            totals.completion_tokens += r.completion_tokens;
            totals.total_ms += r.total_ms;
        }
        for rows in hourly.chunks(RECORDS_PER_STATEMENT) {
            let mut upsert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO usage_hourly (hour, key_id, key_name, user_name, model, route, requests, errors, prompt_tokens, completion_tokens, total_ms) ",
            );
            upsert.push_values(rows, |mut row, h| {
                row.push_bind(h.hour)
                    .push_bind(h.key_id.as_deref().unwrap_or_default())
                    .push_bind(h.key_name.as_str())
                    .push_bind(h.user.as_deref().unwrap_or_default())
                    .push_bind(h.model.as_deref().unwrap_or_default())
                    .push_bind(h.route.as_str())
                    .push_bind(to_i64(h.requests))
                    .push_bind(to_i64(h.errors))
                    .push_bind(to_i64(h.prompt_tokens))
                    .push_bind(to_i64(h.completion_tokens))
                    .push_bind(h.total_ms);
            });
            upsert.push(
                " ON CONFLICT (hour, key_id, key_name, user_name, model, route) DO UPDATE SET \
                 requests = requests + excluded.requests, errors = errors + excluded.errors, \
                 prompt_tokens = prompt_tokens + excluded.prompt_tokens, \
                 completion_tokens = completion_tokens + excluded.completion_tokens, \
                 total_ms = total_ms + excluded.total_ms",
            );
            upsert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        // The same totals per day (what the usage page reads for ranges of several days), and
        // the status and latency counts, in this transaction: they never disagree with it.
        super::sqlite_console::insert_daily(&mut tx, batch).await?;
        super::sqlite_console::insert_stats(&mut tx, batch).await?;
        let mut last_used: Vec<(&str, i64)> = Vec::new();
        for r in batch {
            if let Some(id) = r.key_id.as_deref() {
                match last_used.iter_mut().find(|(k, _)| *k == id) {
                    Some(entry) => entry.1 = entry.1.max(r.at),
                    None => last_used.push((id, r.at)),
                }
            }
        }
        for (id, at) in last_used {
            sqlx::query("UPDATE keys SET last_used = MAX(COALESCE(last_used, 0), ?) WHERE id = ?")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    pub async fn usage(&self, from: i64, to: i64) -> Result<Vec<UsageRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, key_id, key_name, user_name, model, route, status, error, prompt_tokens, completion_tokens, total_ms, upstream_ms, ttft_ms, load_ms \
             FROM usage WHERE at >= ? AND at < ? ORDER BY at, id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                Ok(UsageRecord {
                    at: row.try_get("at")?,
                    key_id: row.try_get("key_id")?,
                    key_name: row.try_get("key_name")?,
                    user: row.try_get("user_name")?,
                    model: row.try_get("model")?,
                    route: row.try_get("route")?,
                    status: u16::try_from(row.try_get::<i64, _>("status")?).unwrap_or_default(),
                    error: row.try_get("error")?,
                    prompt_tokens: to_u64(row.try_get("prompt_tokens")?),
                    completion_tokens: to_u64(row.try_get("completion_tokens")?),
                    total_ms: row.try_get("total_ms")?,
                    upstream_ms: row.try_get("upstream_ms")?,
                    ttft_ms: row.try_get("ttft_ms")?,
                    load_ms: row.try_get("load_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    pub async fn hourly(&self, from: i64, to: i64) -> Result<Vec<HourlyTotals>, StoreError> {
        let rows = sqlx::query(
            "SELECT hour, key_id, key_name, user_name, model, route, requests, errors, prompt_tokens, completion_tokens, total_ms \
             FROM usage_hourly WHERE hour >= ? AND hour < ? ORDER BY hour",
        )
        .bind(from.div_euclid(1000))
        .bind(to.div_euclid(1000))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let empty_none = |s: String| (!s.is_empty()).then_some(s);
        rows.iter()
            .map(|row| {
                Ok(HourlyTotals {
                    hour: row.try_get("hour")?,
                    key_id: empty_none(row.try_get("key_id")?),
                    key_name: row.try_get("key_name")?,
                    user: empty_none(row.try_get("user_name")?),
                    model: empty_none(row.try_get("model")?),
                    route: row.try_get("route")?,
                    requests: to_u64(row.try_get("requests")?),
                    errors: to_u64(row.try_get("errors")?),
                    prompt_tokens: to_u64(row.try_get("prompt_tokens")?),
                    completion_tokens: to_u64(row.try_get("completion_tokens")?),
                    total_ms: row.try_get("total_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    pub async fn tokens_since(&self, since: i64) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT CASE WHEN key_id = '' THEN 'config:' || key_name ELSE key_id END AS counter, \
             SUM(prompt_tokens + completion_tokens) FROM usage_hourly \
             WHERE hour >= ? GROUP BY counter",
        )
        .bind(since.div_euclid(1000))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows.into_iter().map(|(k, n)| (k, to_u64(n))).collect())
    }

    pub async fn prune_usage(&self, before: i64) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM usage WHERE at < ?")
            .bind(before)
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(unavailable)
    }
}
