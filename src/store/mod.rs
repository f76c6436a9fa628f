//! The database: users, keys, usage records and their hourly totals. Nothing else in the gateway
//! runs SQL.
//!
//! [`Store`] is one type over every engine, chosen by the scheme of `GATEWAY_DB`: `sqlite://`
//! (one file, the default) or `postgres://` (one database for several replicas). Each engine
//! is one [`Engine`] variant with its own SQL and its own versioned migrations beside its code
//! (`migrations/<engine>/`), the way atuin keeps one implementation per engine behind one
//! interface; what the engines share is in [`rows`] (reading rows) and [`batch`] (summing and
//! cutting a batch of usage records).
//!
//! The request path never calls into the store: keys are read into memory (and re-read when
//! [`Store::generation`] changes), usage is written in batches by the usage recorder, stored
//! responses by their own writer ([`crate::responses::stored`]).

mod batch;
pub mod console;
mod postgres;
mod rows;
mod sqlite;

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};

/// A failure of the store, in terms the admin API and the CLI can answer with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row.
    #[error("{0}")]
    NotFound(String),
    /// A name (or digest) is taken.
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached, is locked, read-only or broken.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The URL names an engine this build cannot use.
    #[error("{0}")]
    Unsupported(String),
}

/// A user's role: `admin` keys may use the admin API.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "admin" {
            Self::Admin
        } else {
            Self::User
        }
    }
}

/// A person or device that keys belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// Unix milliseconds.
    pub created: i64,
}

/// What a key may do: the settings the TOML file has, plus token quotas.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySettings {
    /// Model patterns on top of `GATEWAY_ALLOWED_MODELS` (empty: all).
    pub models: Vec<String>,
    /// Requests per minute (`None`: `GATEWAY_RATE_LIMIT`).
    pub rate_limit: Option<u32>,
    /// Burst (`None`: `GATEWAY_RATE_BURST`).
    pub burst: Option<u32>,
    /// Concurrent requests (`None`: `GATEWAY_MAX_CONCURRENT`).
    pub max_concurrent: Option<u32>,
    /// May use the admin API and (when enabled) Ollama's administrative endpoints.
    pub admin: bool,
    /// Prompt + completion tokens per UTC day.
    pub daily_token_quota: Option<u64>,
    /// Prompt + completion tokens per UTC month.
    pub monthly_token_quota: Option<u64>,
    /// End a stream at the budget instead of letting it finish.
    pub hard_quota: bool,
}

/// A stored key (never the key itself: its SHA-256 digest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub user: Option<String>,
    /// The key's first characters, shown in listings.
    pub prefix: String,
    pub digest: [u8; 32],
    /// Unix milliseconds, like every time below.
    pub created: i64,
    pub last_used: Option<i64>,
    pub expires: Option<i64>,
    pub enabled: bool,
    pub revoked: Option<i64>,
    pub settings: KeySettings,
}

/// A key to store.
#[derive(Clone, Debug)]
pub struct NewKey {
    pub id: String,
    pub name: String,
    /// Created as a `user` if it does not exist yet.
    pub user: Option<String>,
    pub prefix: String,
    pub digest: [u8; 32],
    pub expires: Option<i64>,
    pub enabled: bool,
    pub settings: KeySettings,
}

/// A change to a key: `None` leaves a field alone, `Some(None)` clears an optional one.
#[derive(Clone, Debug, Default)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub expires: Option<Option<i64>>,
    pub models: Option<Vec<String>>,
    pub rate_limit: Option<Option<u32>>,
    pub burst: Option<Option<u32>>,
    pub max_concurrent: Option<Option<u32>>,
    pub admin: Option<bool>,
    pub daily_token_quota: Option<Option<u64>>,
    pub monthly_token_quota: Option<Option<u64>>,
    pub hard_quota: Option<bool>,
}

/// One finished request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageRecord {
    /// Unix milliseconds when it finished.
    pub at: i64,
    /// The stored key's id; `None` for keys from the configuration.
    pub key_id: Option<String>,
    pub key_name: String,
    pub user: Option<String>,
    pub model: Option<String>,
    pub route: String,
    pub status: u16,
    /// A stream that failed after its 200 (the error code).
    pub error: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_ms: f64,
    pub upstream_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    /// Ollama's model load time.
    pub load_ms: Option<f64>,
}

impl UsageRecord {
    /// Whether the request failed (an error status, or a stream that broke off).
    pub fn is_error(&self) -> bool {
        self.status >= 400 || self.error.is_some()
    }
}

impl KeyPatch {
    /// Make the change to `key` (in memory; the engine writes the result).
    pub fn apply(&self, key: &mut KeyRecord) {
        let s = &mut key.settings;
        if let Some(name) = &self.name {
            key.name.clone_from(name);
        }
        if let Some(enabled) = self.enabled {
            key.enabled = enabled;
        }
        if let Some(expires) = self.expires {
            key.expires = expires;
        }
        if let Some(models) = &self.models {
            s.models.clone_from(models);
        }
        if let Some(v) = self.rate_limit {
            s.rate_limit = v;
        }
        if let Some(v) = self.burst {
            s.burst = v;
        }
        if let Some(v) = self.max_concurrent {
            s.max_concurrent = v;
        }
        if let Some(v) = self.admin {
            s.admin = v;
        }
        if let Some(v) = self.daily_token_quota {
            s.daily_token_quota = v;
        }
        if let Some(v) = self.monthly_token_quota {
            s.monthly_token_quota = v;
        }
        if let Some(v) = self.hard_quota {
            s.hard_quota = v;
        }
    }
}

/// Hourly totals, kept after the records themselves are deleted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HourlyTotals {
    /// Unix seconds at the start of the hour.
    pub hour: i64,
    pub key_id: Option<String>,
    pub key_name: String,
    pub user: Option<String>,
    pub model: Option<String>,
    pub route: String,
    pub requests: u64,
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_ms: f64,
}

/// A response of `POST /v1/responses` kept for `GET`/`DELETE /v1/responses/{id}` and
/// `previous_response_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    /// `resp_...`.
    pub id: String,
    /// The caller that made it (a stored key's id, or `config:<name>`).
    pub owner: String,
    /// Unix milliseconds, like `expires`.
    pub created: i64,
    pub expires: i64,
    /// The conversation before the response's output (Responses input items), a JSON array.
    pub input: String,
    /// The response object, JSON.
    pub response: String,
}

/// The engines this build has.
#[derive(Clone)]
enum Engine {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PostgresStore),
}

/// The database behind `GATEWAY_DB`. Cheap to clone (a connection pool).
#[derive(Clone)]
pub struct Store {
    engine: Engine,
    /// The URL, for messages (shown with its password redacted).
    url: String,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("url", &redact(&self.url))
            .finish()
    }
}

/// A URL with any password replaced by `***`.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Call the same method on whichever engine is in use.
macro_rules! on_engine {
    ($self:ident, $store:ident => $call:expr) => {
        match &$self.engine {
            Engine::Sqlite($store) => $call,
            Engine::Postgres($store) => $call,
        }
    };
}

impl Store {
    /// Open (creating if needed) and migrate the database at `url`, and check that it can be
    /// written. Errors name the cause; the caller adds the setting's name.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split(':').next().unwrap_or_default();
        let engine = match scheme {
            "sqlite" => Engine::Sqlite(sqlite::SqliteStore::open(url).await?),
            "postgres" | "postgresql" => {
                Engine::Postgres(postgres::PostgresStore::open(url).await?)
            }
            _ => {
                return Err(StoreError::Unsupported(format!(
                    "'{}' is not a database URL this gateway knows (use sqlite://PATH or postgres://USER:PASSWORD@HOST/DATABASE)",
                    redact(url)
                )));
            }
        };
        Ok(Self {
            engine,
            url: url.to_owned(),
        })
    }

    /// The URL it was opened with (password redacted).
    pub fn url(&self) -> String {
        redact(&self.url)
    }

    /// A counter bumped by every change to users or keys, by any process.
    pub async fn generation(&self) -> Result<i64, StoreError> {
        on_engine!(self, s => s.generation().await)
    }

    /// Every user.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        on_engine!(self, s => s.users().await)
    }

    /// Add a user (409 if the name is taken).
    pub async fn create_user(&self, name: &str, role: Role, now: i64) -> Result<User, StoreError> {
        on_engine!(self, s => s.create_user(name, role, now).await)
    }

    /// Change a user's role.
    pub async fn update_user(&self, name: &str, role: Role) -> Result<User, StoreError> {
        on_engine!(self, s => s.update_user(name, role).await)
    }

    /// Delete a user and revoke its keys; returns the ids of the keys revoked.
    pub async fn delete_user(&self, name: &str, now: i64) -> Result<Vec<String>, StoreError> {
        on_engine!(self, s => s.delete_user(name, now).await)
    }

    /// Every stored key, revoked ones included.
    pub async fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        on_engine!(self, s => s.keys().await)
    }

    /// One key by id.
    pub async fn key(&self, id: &str) -> Result<KeyRecord, StoreError> {
        on_engine!(self, s => s.key(id).await)
    }

    /// Store a new key (and its user, if new).
    pub async fn create_key(&self, key: &NewKey, now: i64) -> Result<KeyRecord, StoreError> {
        on_engine!(self, s => s.create_key(key, now).await)
    }

    /// Change a key.
    pub async fn update_key(&self, id: &str, patch: &KeyPatch) -> Result<KeyRecord, StoreError> {
        on_engine!(self, s => s.update_key(id, patch).await)
    }

    /// Revoke a key for good (it stays listed).
    pub async fn revoke_key(&self, id: &str, now: i64) -> Result<KeyRecord, StoreError> {
        on_engine!(self, s => s.revoke_key(id, now).await)
    }

    /// Write a batch of usage records, their hourly totals and the keys' `last_used`, in one
    /// transaction.
    pub async fn insert_usage(&self, batch: &[UsageRecord]) -> Result<(), StoreError> {
        on_engine!(self, s => s.insert_usage(batch).await)
    }

    /// Usage records finished in `[from, to)` (Unix milliseconds).
    pub async fn usage(&self, from: i64, to: i64) -> Result<Vec<UsageRecord>, StoreError> {
        on_engine!(self, s => s.usage(from, to).await)
    }

    /// Hourly totals for hours starting in `[from, to)` (Unix milliseconds).
    pub async fn hourly(&self, from: i64, to: i64) -> Result<Vec<HourlyTotals>, StoreError> {
        on_engine!(self, s => s.hourly(from, to).await)
    }

    /// Tokens (prompt + completion) per key since `since` (Unix milliseconds, on an hour
    /// boundary), from the hourly totals: stored keys by id, configured ones as
    /// `config:<name>`.
    pub async fn tokens_since(&self, since: i64) -> Result<Vec<(String, u64)>, StoreError> {
        on_engine!(self, s => s.tokens_since(since).await)
    }

    /// Delete usage records older than `before` (Unix milliseconds); hourly totals stay.
    pub async fn prune_usage(&self, before: i64) -> Result<u64, StoreError> {
        on_engine!(self, s => s.prune_usage(before).await)
    }

    /// Write stored responses in one transaction (a response already there is replaced, so a
    /// batch may be written again after a failure).
    pub async fn insert_responses(&self, batch: &[StoredResponse]) -> Result<(), StoreError> {
        on_engine!(self, s => s.insert_responses(batch).await)
    }

    /// The response `id` made by `owner`, unless it expired by `now` (Unix milliseconds).
    pub async fn response(
        &self,
        id: &str,
        owner: &str,
        now: i64,
    ) -> Result<Option<StoredResponse>, StoreError> {
        on_engine!(self, s => s.response(id, owner, now).await)
    }

    /// Delete the response `id` made by `owner` (unless it expired by `now`); whether there was
    /// one.
    pub async fn delete_response(
        &self,
        id: &str,
        owner: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        on_engine!(self, s => s.delete_response(id, owner, now).await)
    }

    /// Delete the responses expired by `now` (Unix milliseconds); how many.
    pub async fn prune_responses(&self, now: i64) -> Result<u64, StoreError> {
        on_engine!(self, s => s.prune_responses(now).await)
    }
}

/// Unix milliseconds of a time.
pub fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// The time of Unix milliseconds (the epoch if out of range).
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
