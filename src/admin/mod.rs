//! Managing keys and users: the admin API ([`api`], `/admin/api/...`) and the CLI ([`cli`]),
//! both on the same store and through the same functions here, so a key made either way is
//! validated the same and looks the same.
//!
//! Only admin keys may use the API: a key marked `admin`, or any key of a user whose role is
//! `admin`. Every change is written to the audit log (`target: "audit"`).

pub mod api;
pub mod cli;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::config::Config;
use crate::error::GatewayError;
use crate::gate::key_format;
use crate::gate::keys::{ConfigKey, digest};
use crate::store::{
    KeyPatch, KeyRecord, KeySettings, NewKey, Role, Store, User, from_millis, millis,
};

/// The id a configured key is listed under.
pub const CONFIG_ID_PREFIX: &str = "config:";

/// `POST /admin/api/keys`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Unique among working keys; appears in logs and metrics.
    #[schema(example = "alice-laptop")]
    pub name: String,
    /// The owner (created with role `user` if new).
    #[schema(example = "alice")]
    pub user: Option<String>,
    /// Model patterns with `*`, on top of `GATEWAY_ALLOWED_MODELS` (default: all).
    pub models: Option<Vec<String>>,
    /// Requests per minute (default `GATEWAY_RATE_LIMIT`).
    pub rate_limit: Option<u32>,
    /// Burst (default `GATEWAY_RATE_BURST`).
    pub burst: Option<u32>,
    /// Concurrent requests (default `GATEWAY_MAX_CONCURRENT`).
    pub max_concurrent: Option<u32>,
    /// When the key stops working (RFC 3339).
    pub expires: Option<DateTime<Utc>>,
    /// Prompt + completion tokens per UTC day.
    pub daily_token_quota: Option<u64>,
    /// Prompt + completion tokens per UTC month.
    pub monthly_token_quota: Option<u64>,
    /// End a stream at the budget instead of letting it finish.
    pub hard_quota: Option<bool>,
    /// May use the admin API (and Ollama's administrative endpoints when enabled).
    pub admin: Option<bool>,
    /// Whether the key works (default true).
    pub enabled: Option<bool>,
}

/// `PATCH /admin/api/keys/{id}`: only the fields sent change; `null` clears an optional one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKey {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires: Option<Option<DateTime<Utc>>>,
    pub models: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    pub rate_limit: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    pub burst: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    pub max_concurrent: Option<Option<u32>>,
    pub admin: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>)]
    pub daily_token_quota: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>)]
    pub monthly_token_quota: Option<Option<u64>>,
    pub hard_quota: Option<bool>,
}

/// A field that was sent (perhaps as `null`) is `Some`; one left out stays `None`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A key's settings as listed: the values in force (defaults filled in).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeySettingsView {
    pub models: Vec<String>,
    pub rate_limit: u32,
    pub burst: u32,
    pub max_concurrent: u32,
    pub admin: bool,
    pub daily_token_quota: Option<u64>,
    pub monthly_token_quota: Option<u64>,
    pub hard_quota: bool,
}

/// A key as the admin API lists it: never the key itself (except `key`, once, at creation).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// Stored keys: a random id; configured keys: `config:<name>`.
    #[schema(example = "3f9a1c2b7d4e8f60")]
    pub id: String,
    pub name: String,
    pub user: Option<String>,
    /// The key's first characters (stored keys only).
    #[schema(example = "og_4Tq9Zk1")]
    pub prefix: Option<String>,
    /// `db` (managed here) or `config` (environment or key file; read-only).
    #[schema(example = "db")]
    pub source: &'static str,
    pub enabled: bool,
    pub revoked: bool,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created: Option<DateTime<Utc>>,
    pub last_used: Option<DateTime<Utc>>,
    pub expires: Option<DateTime<Utc>>,
    pub settings: KeySettingsView,
    /// Prompt + completion tokens today (UTC), from the in-memory counters.
    pub tokens_today: u64,
    /// Prompt + completion tokens this month (UTC).
    pub tokens_this_month: u64,
    /// The key itself: only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A user as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub name: String,
    pub role: Role,
    pub created: DateTime<Utc>,
    /// Keys of this user that are not revoked.
    pub keys: usize,
}

/// `POST /admin/api/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(example = "alice")]
    pub name: String,
    /// Default `user`.
    pub role: Option<Role>,
}

/// `PATCH /admin/api/users/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub role: Role,
}

/// A name for a key or user: 1 to 64 letters, digits, `.`, `_`, `-`, `@`.
pub fn check_name(field: &str, name: &str) -> Result<(), GatewayError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(GatewayError::invalid(
            field,
            format!("{field}: 1 to 64 letters, digits, '.', '_', '-' or '@'"),
        ))
    }
}

fn check_models(models: &[String]) -> Result<(), GatewayError> {
    for (i, pattern) in models.iter().enumerate() {
        if pattern.trim().is_empty() || pattern.len() > 200 {
            return Err(GatewayError::invalid(
                format!("models[{i}]"),
                format!("models[{i}]: a model name or pattern with `*`"),
            ));
        }
    }
    Ok(())
}

fn check_not_config_name(config_keys: &[ConfigKey], name: &str) -> Result<(), GatewayError> {
    if config_keys.iter().any(|k| k.name == name) {
        return Err(GatewayError::Conflict(format!(
            "a configured key is named '{name}'"
        )));
    }
    Ok(())
}

/// Validate and store a new key; returns the record and the key itself (shown once).
pub async fn create_key(
    store: &Store,
    config_keys: &[ConfigKey],
    body: CreateKey,
    now: DateTime<Utc>,
) -> Result<(KeyRecord, String), GatewayError> {
    check_name("name", &body.name)?;
    if let Some(user) = &body.user {
        check_name("user", user)?;
    }
    let models = body.models.unwrap_or_default();
    check_models(&models)?;
    check_not_config_name(config_keys, &body.name)?;
    let key = key_format::generate().map_err(|e| {
        tracing::error!(error = %e, "cannot generate a key");
        GatewayError::Internal
    })?;
    let record = store
        .create_key(
            &NewKey {
                id: uuid::Uuid::new_v4().simple().to_string()[..16].to_owned(),
                name: body.name,
                user: body.user,
                prefix: key_format::shown_prefix(&key),
                digest: digest(&key),
                expires: body.expires.map(millis),
                enabled: body.enabled.unwrap_or(true),
                settings: KeySettings {
                    models,
                    rate_limit: body.rate_limit,
                    burst: body.burst,
                    max_concurrent: body.max_concurrent,
                    admin: body.admin.unwrap_or(false),
                    daily_token_quota: body.daily_token_quota,
                    monthly_token_quota: body.monthly_token_quota,
                    hard_quota: body.hard_quota.unwrap_or(false),
                },
            },
            millis(now),
        )
        .await?;
    Ok((record, key))
}

/// Validate and apply a change to a stored key.
pub async fn update_key(
    store: &Store,
    config_keys: &[ConfigKey],
    id: &str,
    body: UpdateKey,
) -> Result<KeyRecord, GatewayError> {
    refuse_config_id(id)?;
    if let Some(name) = &body.name {
        check_name("name", name)?;
        check_not_config_name(config_keys, name)?;
    }
    if let Some(models) = &body.models {
        check_models(models)?;
    }
    let patch = KeyPatch {
        name: body.name,
        enabled: body.enabled,
        expires: body.expires.map(|e| e.map(millis)),
        models: body.models,
        rate_limit: body.rate_limit,
        burst: body.burst,
        max_concurrent: body.max_concurrent,
        admin: body.admin,
        daily_token_quota: body.daily_token_quota,
        monthly_token_quota: body.monthly_token_quota,
        hard_quota: body.hard_quota,
    };
    Ok(store.update_key(id, &patch).await?)
}

/// Configured keys cannot be changed here.
pub fn refuse_config_id(id: &str) -> Result<(), GatewayError> {
    if id.starts_with(CONFIG_ID_PREFIX) {
        return Err(GatewayError::Conflict(
            "keys from the configuration are read-only: change GATEWAY_API_KEYS, OLLAMA_API_KEY or GATEWAY_CONFIG".into(),
        ));
    }
    Ok(())
}

/// A stored key as listed.
pub fn stored_view(config: &Config, record: &KeyRecord, used: (u64, u64)) -> KeyView {
    let s = &record.settings;
    KeyView {
        id: record.id.clone(),
        name: record.name.clone(),
        user: record.user.clone(),
        prefix: Some(record.prefix.clone()),
        source: "db",
        enabled: record.enabled && record.revoked.is_none(),
        revoked: record.revoked.is_some(),
        revoked_at: record.revoked.map(from_millis),
        created: Some(from_millis(record.created)),
        last_used: record.last_used.map(from_millis),
        expires: record.expires.map(from_millis),
        settings: KeySettingsView {
            models: s.models.clone(),
            rate_limit: s.rate_limit.unwrap_or(config.rate_limit),
            burst: s.burst.unwrap_or(config.rate_burst),
            max_concurrent: s.max_concurrent.unwrap_or(config.max_concurrent),
            admin: s.admin,
            daily_token_quota: s.daily_token_quota,
            monthly_token_quota: s.monthly_token_quota,
            hard_quota: s.hard_quota,
        },
        tokens_today: used.0,
        tokens_this_month: used.1,
        key: None,
    }
}

/// A configured key as listed.
pub fn config_view(key: &ConfigKey, used: (u64, u64)) -> KeyView {
    KeyView {
        id: format!("{CONFIG_ID_PREFIX}{}", key.name),
        name: key.name.clone(),
        user: None,
        prefix: None,
        source: "config",
        enabled: true,
        revoked: false,
        revoked_at: None,
        created: None,
        last_used: None,
        expires: key.expires,
        settings: KeySettingsView {
            models: key.models.clone(),
            rate_limit: key.rate_limit,
            burst: key.burst,
            max_concurrent: key.max_concurrent,
            admin: key.admin,
            daily_token_quota: None,
            monthly_token_quota: None,
            hard_quota: false,
        },
        tokens_today: used.0,
        tokens_this_month: used.1,
        key: None,
    }
}

/// A user as listed.
pub fn user_view(user: &User, keys: &[KeyRecord]) -> UserView {
    UserView {
        name: user.name.clone(),
        role: user.role,
        created: from_millis(user.created),
        keys: keys
            .iter()
            .filter(|k| k.revoked.is_none() && k.user.as_deref() == Some(user.name.as_str()))
            .count(),
    }
}

/// Write the audit line of an admin change: who (the admin key's name and id, or `cli`), what,
/// and on which key id or user name.
pub fn audit_change(admin: &str, admin_key_id: Option<&str>, action: &str, target: &str) {
    tracing::info!(
        target: "audit",
        admin,
        admin_key_id = admin_key_id.unwrap_or("-"),
        action,
        target,
        "admin change"
    );
}

/// The quota counter's name for a configured key (stored keys count under their id).
pub fn config_counter(name: &str) -> String {
    format!("{CONFIG_ID_PREFIX}{name}")
}
