//! Reading rows into the store's types, and mapping engine errors, for every engine: the column
//! names and meanings are the same in each engine's schema, only the SQL types differ (SQLite
//! `INTEGER` 0/1 and PostgreSQL `BOOLEAN` both decode as `bool`, `BLOB` and `BYTEA` as bytes).

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{
    HourlyTotals, KeyRecord, KeySettings, Role, StoreError, StoredResponse, UsageRecord, User,
};

/// The columns [`key`] reads, in `SELECT` order.
pub const KEY_COLUMNS: &str = "id, name, user_name, prefix, digest, created, last_used, expires, enabled, revoked, models, rate_limit, burst, max_concurrent, admin, daily_token_quota, monthly_token_quota, hard_quota";

/// The columns [`usage`] reads.
pub const USAGE_COLUMNS: &str = "at, key_id, key_name, user_name, model, route, status, error, prompt_tokens, completion_tokens, total_ms, upstream_ms, ttft_ms, load_ms";

/// The columns [`hourly`] reads.
pub const HOURLY_COLUMNS: &str = "hour, key_id, key_name, user_name, model, route, requests, errors, prompt_tokens, completion_tokens, total_ms";

/// The columns [`response`] reads.
pub const RESPONSE_COLUMNS: &str = "id, owner, created, expires, input, response";

/// A database that is away, locked, read-only or broken.
pub fn unavailable(err: sqlx::Error) -> StoreError {
    StoreError::Unavailable(match &err {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    })
}

/// A failed insert or update: a unique index means a taken name, anything else is the
/// database's trouble.
pub fn write_error(err: sqlx::Error, what: &str) -> StoreError {
    if let sqlx::Error::Database(db) = &err
        && db.is_unique_violation()
    {
        return StoreError::Conflict(format!("{what} already exists"));
    }
    unavailable(err)
}

pub fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

fn opt_u32(n: Option<i64>) -> Option<u32> {
    n.map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// A key's model patterns as stored (a JSON array of strings).
pub fn models_text(models: &[String]) -> String {
    serde_json::to_string(models).unwrap_or_else(|_| "[]".into())
}

/// One `keys` row ([`KEY_COLUMNS`]).
pub fn key<R>(row: &R) -> Result<KeyRecord, sqlx::Error>
where
    R: Row,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
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

/// One `users` row (`name, role, created`).
pub fn user<R>(row: &R) -> Result<User, sqlx::Error>
where
    R: Row,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let role: String = row.try_get("role")?;
    Ok(User {
        name: row.try_get("name")?,
        role: Role::parse(&role),
        created: row.try_get("created")?,
    })
}

/// One `usage` row ([`USAGE_COLUMNS`]).
pub fn usage<R>(row: &R) -> Result<UsageRecord, sqlx::Error>
where
    R: Row,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> f64: Decode<'r, R::Database> + Type<R::Database>,
{
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
}

/// One `usage_hourly` row ([`HOURLY_COLUMNS`]); the empty strings that stand for "none" in its
/// primary key come back as `None`.
pub fn hourly<R>(row: &R) -> Result<HourlyTotals, sqlx::Error>
where
    R: Row,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> f64: Decode<'r, R::Database> + Type<R::Database>,
{
    let empty_none = |s: String| (!s.is_empty()).then_some(s);
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
}

/// One `responses` row ([`RESPONSE_COLUMNS`]).
pub fn response<R>(row: &R) -> Result<StoredResponse, sqlx::Error>
where
    R: Row,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(StoredResponse {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        created: row.try_get("created")?,
        expires: row.try_get("expires")?,
        input: row.try_get("input")?,
        response: row.try_get("response")?,
    })
}
