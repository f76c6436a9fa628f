//! API keys: where they come from, how they are looked up, and what each one may do.
//!
//! Keys are stored and looked up by their SHA-256 digest, so the comparison never depends on
//! how many characters of a guess were right, and a key file may hold digests instead of keys.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::models::ModelAllowlist;
use crate::config::{AuthMode, Config};
use crate::store::{KeyRecord, Role, User, from_millis};

/// Who is calling, as established by the auth middleware.
#[derive(Debug)]
pub struct Caller {
    /// The key's name (never the key itself); `anonymous` when auth is off.
    pub name: String,
    /// Per-key model patterns (on top of the global allowlist).
    pub models: ModelAllowlist,
    /// May use the administrative endpoints (when they are enabled).
    pub admin: bool,
    /// When the key stops working.
    pub expires: Option<DateTime<Utc>>,
    /// Per-key request rate, if limited.
    pub rate: Option<DefaultDirectRateLimiter>,
    /// The rate limit in requests per minute, for `x-ratelimit-limit-requests`.
    pub rate_per_minute: u32,
    /// Requests the key may send at once before the rate applies.
    pub burst: u32,
    /// Per-key concurrency cap, if any.
    pub concurrency: Option<Arc<Semaphore>>,
    /// The cap's size.
    pub max_concurrent: u32,
    /// The stored key's id (`None` for keys from the configuration).
    pub id: Option<String>,
    /// The user the key belongs to.
    pub user: Option<String>,
    /// Token quotas.
    pub quota: QuotaSettings,
}

/// A key's token quotas (prompt + completion, UTC periods).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaSettings {
    /// Tokens per day.
    pub daily: Option<u64>,
    /// Tokens per month.
    pub monthly: Option<u64>,
    /// End a stream at the budget instead of letting it finish.
    pub hard: bool,
}

impl QuotaSettings {
    /// Whether any quota applies.
    pub fn is_set(&self) -> bool {
        self.daily.is_some() || self.monthly.is_some()
    }
}

/// A key from the configuration, as the admin API lists it (read-only).
#[derive(Clone, Debug)]
pub struct ConfigKey {
    pub name: String,
    pub admin: bool,
    pub models: Vec<String>,
    pub rate_limit: u32,
    pub burst: u32,
    pub max_concurrent: u32,
    pub expires: Option<DateTime<Utc>>,
}

impl Caller {
    /// Whether the key's expiry time has passed.
    pub fn has_expired(&self) -> bool {
        self.expires.is_some_and(|at| at <= Utc::now())
    }

    /// The name the key's shared counters go by in Redis: the stored key's id, or the
    /// configured key's name (the same on every replica given the same configuration).
    pub fn counter_name(&self) -> String {
        match &self.id {
            Some(id) => format!("key:{id}"),
            None => format!("config:{}", self.name),
        }
    }
}

/// One key in the TOML file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    name: String,
    key: Option<String>,
    sha256: Option<String>,
    #[serde(default)]
    models: Vec<String>,
    rate_limit: Option<u32>,
    burst: Option<u32>,
    max_concurrent: Option<u32>,
    #[serde(default)]
    admin: bool,
    expires: Option<DateTime<Utc>>,
}

/// The TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    keys: Vec<KeyEntry>,
    /// Read by `crate::backends::config`.
    #[serde(default, rename = "backends")]
    _backends: serde::de::IgnoredAny,
    #[serde(default)]
    basic_users: Vec<UserSettings>,
}

/// Settings of one Basic auth user (`[[basic_users]]` in the TOML file), over the defaults: the
/// same as a key's, without the key, its digest or an expiry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    /// The user name, as in the `GATEWAY_BASIC_USERS` file.
    pub name: String,
    /// Model patterns on top of the global allowlist.
    #[serde(default)]
    models: Vec<String>,
    /// Requests per minute (default `GATEWAY_RATE_LIMIT`).
    rate_limit: Option<u32>,
    /// Default `GATEWAY_RATE_BURST`.
    burst: Option<u32>,
    /// Default `GATEWAY_MAX_CONCURRENT`.
    max_concurrent: Option<u32>,
    /// May use the admin API and, with `GATEWAY_ALLOW_ADMIN`, Ollama's administrative endpoints.
    #[serde(default)]
    admin: bool,
}

/// The `[[basic_users]]` settings of the TOML file (`GATEWAY_CONFIG`), by user name. An empty
/// or repeated name is refused like any other error in the file.
pub fn basic_user_settings(config: &Config) -> Result<HashMap<String, UserSettings>, String> {
    let Some(path) = &config.config_file else {
        return Ok(HashMap::new());
    };
    let name = path.display();
    let mut settings = HashMap::new();
    for (i, user) in read_key_file(path)?.basic_users.into_iter().enumerate() {
        let entry = i + 1;
        if user.name.is_empty() {
            return Err(format!(
                "GATEWAY_CONFIG: {name}: [[basic_users]] entry {entry}: the name is empty"
            ));
        }
        if let Some(before) = settings.insert(user.name.clone(), user) {
            return Err(format!(
                "GATEWAY_CONFIG: {name}: [[basic_users]] entry {entry}: user '{}' has settings already",
                before.name
            ));
        }
    }
    Ok(settings)
}

/// Read and parse the TOML file; unknown fields are refused, with the line they are on.
fn read_key_file(path: &Path) -> Result<KeyFile, String> {
    let name = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("GATEWAY_CONFIG: cannot read {name}: {e}"))?;
    toml::from_str(&text).map_err(|e| format!("GATEWAY_CONFIG: {name}: {e}"))
}

/// All known keys, by digest: the configured ones and the stored ones that work.
///
/// The gate holds one of these behind an [`ArcSwap`]: a request reads it once, a reload builds
/// a new one and swaps it in. Nothing here touches the database.
#[derive(Debug, Default)]
pub struct KeyStore {
    by_digest: HashMap<[u8; 32], Arc<Caller>>,
    /// Stored keys that exist but may not be used, with the reason (`disabled`, `revoked`).
    refused: HashMap<[u8; 32], &'static str>,
    /// The stored keys in `by_digest`, by id, with the record they were built from (so a
    /// reload keeps the rate limiter and concurrency permits of an unchanged key).
    stored: HashMap<String, (KeyRecord, Option<Role>, Arc<Caller>)>,
    /// The configured keys, for listings.
    config_keys: Vec<ConfigKey>,
    /// The identity used for every request when auth is off.
    anonymous: Option<Arc<Caller>>,
    defaults: Limits,
}

impl KeyStore {
    /// Load keys from the environment settings and the optional TOML file.
    pub fn load(config: &Config) -> Result<KeyStore, String> {
        let mut store = KeyStore {
            defaults: Limits::from_config(config),
            ..KeyStore::default()
        };
        let defaults = store.defaults;
        if config.auth == AuthMode::Off {
            store.anonymous = Some(Arc::new(defaults.caller(
                "anonymous",
                ModelAllowlist::default(),
                true,
                None,
            )));
            return Ok(store);
        }
        for (i, key) in config
            .api_keys
            .iter()
            .enumerate()
            .filter(|(_, k)| !k.expose().is_empty())
        {
            let name = format!("key-{}", i + 1);
            store.insert_config(
                digest(key.expose()),
                defaults.caller(&name, ModelAllowlist::default(), false, None),
                defaults.listed(&name, &[], false, None),
            );
        }
        if let Some(key) = config
            .ollama_api_key
            .as_ref()
            .filter(|k| !k.expose().is_empty())
        {
            store.insert_config(
                digest(key.expose()),
                defaults.caller("ollama-api-key", ModelAllowlist::default(), false, None),
                defaults.listed("ollama-api-key", &[], false, None),
            );
        }
        if let Some(path) = &config.config_file {
            store.load_file(path, &defaults)?;
        }
        Ok(store)
    }

    /// This store's configured keys plus the `stored` ones that work, keeping the limiters of
    /// keys that did not change since `self`.
    pub fn with_stored(&self, stored: &[KeyRecord], users: &[User]) -> KeyStore {
        let mut next = KeyStore {
            by_digest: HashMap::with_capacity(self.config_keys.len() + stored.len()),
            refused: HashMap::new(),
            stored: HashMap::with_capacity(stored.len()),
            config_keys: self.config_keys.clone(),
            anonymous: self.anonymous.clone(),
            defaults: self.defaults,
        };
        for (digest, caller) in &self.by_digest {
            if caller.id.is_none() {
                next.by_digest.insert(*digest, caller.clone());
            }
        }
        for record in stored {
            if record.revoked.is_some() {
                next.refused
                    .insert(record.digest, "API key has been revoked");
                continue;
            }
            if !record.enabled {
                next.refused.insert(record.digest, "API key is disabled");
                continue;
            }
            let role = record
                .user
                .as_deref()
                .and_then(|name| users.iter().find(|u| u.name == name))
                .map(|u| u.role);
            let caller = match self.stored.get(&record.id) {
                Some((before, before_role, caller))
                    if same_settings(before, record) && *before_role == role =>
                {
                    caller.clone()
                }
                _ => Arc::new(self.defaults.stored_caller(record, role)),
            };
            next.by_digest.insert(record.digest, caller.clone());
            next.stored
                .insert(record.id.clone(), (record.clone(), role, caller));
        }
        next
    }

    /// The configured keys (listed read-only by the admin API).
    pub fn config_keys(&self) -> &[ConfigKey] {
        &self.config_keys
    }

    /// The caller of a stored key, by id, if it is in use.
    pub fn stored_caller(&self, id: &str) -> Option<Arc<Caller>> {
        self.stored.get(id).map(|(_, _, caller)| caller.clone())
    }

    fn load_file(&mut self, path: &Path, defaults: &Limits) -> Result<(), String> {
        for entry in read_key_file(path)?.keys {
            let digest = match (&entry.key, &entry.sha256) {
                (Some(key), None) if !key.is_empty() => digest(key),
                (None, Some(hex_digest)) => parse_digest(hex_digest).ok_or_else(|| {
                    format!(
                        "GATEWAY_CONFIG: key '{}': sha256 must be 64 hex digits",
                        entry.name
                    )
                })?,
                _ => {
                    return Err(format!(
                        "GATEWAY_CONFIG: key '{}': set exactly one of `key` or `sha256`",
                        entry.name
                    ));
                }
            };
            let limits = defaults.over(entry.rate_limit, entry.burst, entry.max_concurrent);
            let caller = limits.caller(
                &entry.name,
                ModelAllowlist::new(&entry.models),
                entry.admin,
                entry.expires,
            );
            let listed = limits.listed(&entry.name, &entry.models, entry.admin, entry.expires);
            self.insert_config(digest, caller, listed);
        }
        Ok(())
    }

    fn insert_config(&mut self, digest: [u8; 32], caller: Caller, listed: ConfigKey) {
        self.by_digest.insert(digest, Arc::new(caller));
        self.config_keys.push(listed);
    }

    /// The caller for a presented key, or why it is refused. With auth off, always the
    /// anonymous one. A key in our own format with a bad checksum is refused without a lookup.
    pub fn lookup(&self, presented: Option<&str>) -> Result<Arc<Caller>, &'static str> {
        if let Some(anonymous) = &self.anonymous {
            return Ok(anonymous.clone());
        }
        let presented = presented.ok_or("missing API key: send Authorization: Bearer <key>")?;
        if super::key_format::is_ours(presented) && !super::key_format::well_formed(presented) {
            return Err("malformed API key (bad checksum: mistyped or cut off?)");
        }
        let digest = digest(presented);
        match self.by_digest.get(&digest) {
            Some(caller) => Ok(caller.clone()),
            None => Err(self
                .refused
                .get(&digest)
                .copied()
                .unwrap_or("invalid API key")),
        }
    }

    /// The caller of a key known by its digest, if the key works now (the console's sessions
    /// remember the digest of the key they were opened with). With auth off, the anonymous one.
    pub fn lookup_digest(&self, digest: &[u8; 32]) -> Option<Arc<Caller>> {
        if let Some(anonymous) = &self.anonymous {
            return Some(anonymous.clone());
        }
        self.by_digest.get(digest).cloned()
    }

    /// Whether authentication is off.
    pub fn is_open(&self) -> bool {
        self.anonymous.is_some()
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

/// Whether two versions of a stored key would make the same [`Caller`] (`last_used` aside).
fn same_settings(a: &KeyRecord, b: &KeyRecord) -> bool {
    a.name == b.name
        && a.user == b.user
        && a.expires == b.expires
        && a.enabled == b.enabled
        && a.settings == b.settings
}

/// Default per-key limits from the configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    rate_per_minute: u32,
    burst: u32,
    max_concurrent: u32,
}

impl Limits {
    /// `GATEWAY_RATE_LIMIT`, `GATEWAY_RATE_BURST` and `GATEWAY_MAX_CONCURRENT`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            rate_per_minute: config.rate_limit,
            burst: config.rate_burst,
            max_concurrent: config.max_concurrent,
        }
    }

    fn listed(
        self,
        name: &str,
        models: &[String],
        admin: bool,
        expires: Option<DateTime<Utc>>,
    ) -> ConfigKey {
        ConfigKey {
            name: name.to_owned(),
            admin,
            models: models.to_vec(),
            rate_limit: self.rate_per_minute,
            burst: self.burst,
            max_concurrent: self.max_concurrent,
            expires,
        }
    }

    /// The caller of a stored key: its own settings over these defaults; an admin user's keys
    /// are admin keys.
    fn stored_caller(self, record: &KeyRecord, role: Option<Role>) -> Caller {
        let s = &record.settings;
        let limits = self.over(s.rate_limit, s.burst, s.max_concurrent);
        let mut caller = limits.caller(
            &record.name,
            ModelAllowlist::new(&s.models),
            s.admin || role == Some(Role::Admin),
            record.expires.map(from_millis),
        );
        caller.id = Some(record.id.clone());
        caller.user.clone_from(&record.user);
        caller.quota = QuotaSettings {
            daily: s.daily_token_quota,
            monthly: s.monthly_token_quota,
            hard: s.hard_quota,
        };
        caller
    }

    /// The caller of a Basic auth user: named after the user (its usage is the user's), with
    /// its `[[basic_users]]` settings, if any, over these limits.
    pub fn user_caller(self, user: &str, settings: Option<&UserSettings>) -> Caller {
        let none = UserSettings::default();
        let own = settings.unwrap_or(&none);
        let limits = self.over(own.rate_limit, own.burst, own.max_concurrent);
        let mut caller = limits.caller(user, ModelAllowlist::new(&own.models), own.admin, None);
        caller.user = Some(user.to_owned());
        caller
    }

    /// These limits with the ones that are set replaced.
    fn over(
        self,
        rate_limit: Option<u32>,
        burst: Option<u32>,
        max_concurrent: Option<u32>,
    ) -> Self {
        Self {
            rate_per_minute: rate_limit.unwrap_or(self.rate_per_minute),
            burst: burst.unwrap_or(self.burst),
            max_concurrent: max_concurrent.unwrap_or(self.max_concurrent),
        }
    }

    fn caller(
        self,
        name: &str,
        models: ModelAllowlist,
        admin: bool,
        expires: Option<DateTime<Utc>>,
    ) -> Caller {
        Caller {
            name: name.to_owned(),
            models,
            admin,
            expires,
            rate: per_minute(self.rate_per_minute, self.burst).map(RateLimiter::direct),
            rate_per_minute: self.rate_per_minute,
            burst: self.burst,
            concurrency: (self.max_concurrent > 0)
                .then(|| Arc::new(Semaphore::new(self.max_concurrent as usize))),
            max_concurrent: self.max_concurrent,
            id: None,
            user: None,
            quota: QuotaSettings::default(),
        }
    }
}

/// A quota of `rate` requests per minute with `burst` at once; `None` when `rate` is 0.
pub fn per_minute(rate: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(rate)?;
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Some(Quota::per_minute(rate).allow_burst(burst))
}

/// SHA-256 of a key.
pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn parse_digest(hex_digest: &str) -> Option<[u8; 32]> {
    hex::decode(hex_digest.trim()).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn config(args: &[&str]) -> Config {
        use clap::Parser;
        let mut all = vec!["ollama-gateway"];
        all.extend_from_slice(args);
        Config::parse_from(all)
    }

    #[test]
    fn env_keys_are_found_by_digest_only() {
        let store = KeyStore::load(&config(&[
            "--api-keys",
            "alpha,beta",
            "--ollama-api-key",
            "gamma",
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.config_keys().len(), 3);
        assert_eq!(
            store
                .lookup(Some("alpha"))
                .map(|c| c.name.clone())
                .ok()
                .as_deref(),
            Some("key-1")
        );
        assert_eq!(
            store
                .lookup(Some("gamma"))
                .map(|c| c.name.clone())
                .ok()
                .as_deref(),
            Some("ollama-api-key")
        );
        assert!(store.lookup(Some("alph")).is_err());
        assert!(store.lookup(None).is_err());
    }

    fn record(id: &str, key: &str) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            name: format!("name-{id}"),
            user: Some("ann".into()),
            prefix: String::new(),
            digest: digest(key),
            created: 0,
            last_used: None,
            expires: None,
            enabled: true,
            revoked: None,
            settings: crate::store::KeySettings::default(),
        }
    }

    #[test]
    fn stored_keys_join_config_keys_and_keep_their_limiters_across_reloads() {
        let base = KeyStore::load(&config(&["--api-keys", "alpha"])).unwrap_or_default();
        let users = [User {
            name: "ann".into(),
            role: Role::Admin,
            created: 0,
        }];
        let one = base.with_stored(&[record("a", "k-a"), record("b", "k-b")], &users);
        let a = one.lookup(Some("k-a")).unwrap_or_else(|e| panic!("{e}"));
        assert!(a.admin, "an admin user's key is an admin key");
        assert_eq!(a.id.as_deref(), Some("a"));
        assert!(one.lookup(Some("alpha")).is_ok(), "config keys stay");
        let mut b = record("b", "k-b");
        b.enabled = false;
        let mut a_used = record("a", "k-a");
        a_used.last_used = Some(5);
        let two = one.with_stored(&[a_used, b], &users);
        let a_again = two.lookup(Some("k-a")).unwrap_or_else(|e| panic!("{e}"));
        assert!(Arc::ptr_eq(&a, &a_again), "unchanged key keeps its caller");
        assert_eq!(two.lookup(Some("k-b")).err(), Some("API key is disabled"));
        assert!(two.lookup(Some("alpha")).is_ok());
    }

    #[test]
    fn a_damaged_og_key_is_refused_before_lookup() {
        let store = KeyStore::load(&config(&["--api-keys", "alpha"])).unwrap_or_default();
        let key = super::super::key_format::generate().unwrap_or_default();
        let err = store.lookup(Some(&key[..20])).err().unwrap_or_default();
        assert!(err.contains("malformed"), "{err}");
        assert_eq!(store.lookup(Some(&key)).err(), Some("invalid API key"));
    }

    #[test]
    fn key_file_holds_digests_and_per_key_settings() {
        let dir = std::env::temp_dir().join(format!("gw-keys-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.with_extension("toml");
        let digest_hex = hex::encode(digest("secret-two"));
        let mut file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{e}"));
        let text = format!(
            "[[keys]]\nname = \"alice\"\nkey = \"secret-one\"\nmodels = [\"llama3.2\"]\nadmin = true\nrate_limit = 5\nmax_concurrent = 1\n\n[[keys]]\nname = \"bob\"\nsha256 = \"{digest_hex}\"\nexpires = \"2000-01-01T00:00:00Z\"\n"
        );
        file.write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let path_arg = path.to_string_lossy().into_owned();
        let store = KeyStore::load(&config(&["--config-file", &path_arg]))
            .unwrap_or_else(|e| panic!("{e}"));
        let alice = store
            .lookup(Some("secret-one"))
            .unwrap_or_else(|e| panic!("alice missing: {e}"));
        assert!(
            alice.admin && alice.models.allows("llama3.2:latest") && !alice.models.allows("qwen3")
        );
        assert_eq!(alice.max_concurrent, 1);
        let bob = store
            .lookup(Some("secret-two"))
            .unwrap_or_else(|e| panic!("bob missing: {e}"));
        assert!(bob.expires.is_some_and(|e| e < Utc::now()));
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_bad_key_file_names_the_setting() {
        let path =
            std::env::temp_dir().join(format!("gw-bad-{}.toml", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, "[[keys]]\nname = \"x\"\n").unwrap_or_else(|e| panic!("{e}"));
        let path_arg = path.to_string_lossy().into_owned();
        let err = KeyStore::load(&config(&["--config-file", &path_arg]))
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("GATEWAY_CONFIG"), "{err}");
        let _ = std::fs::remove_file(path);
    }

    fn settings_of(text: &str) -> Result<HashMap<String, UserSettings>, String> {
        let path =
            std::env::temp_dir().join(format!("gw-users-{}.toml", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        let path_arg = path.to_string_lossy().into_owned();
        let settings = basic_user_settings(&config(&["--config-file", &path_arg]));
        let _ = std::fs::remove_file(path);
        settings
    }

    #[test]
    fn basic_user_settings_apply_over_the_defaults() {
        let settings = settings_of(
            "[[keys]]\nname = \"k\"\nkey = \"k-1\"\n\n[[basic_users]]\nname = \"ann\"\nmodels = [\"qwen3\"]\nrate_limit = 5\nadmin = true\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let defaults = Limits::from_config(&config(&[]));
        let ann = defaults.user_caller("ann", settings.get("ann"));
        assert!(ann.admin && ann.models.allows("qwen3:latest") && !ann.models.allows("llama3.2"));
        assert_eq!(
            (ann.rate_per_minute, ann.max_concurrent),
            (5, 32),
            "unset ones stay default"
        );
        assert_eq!(ann.user.as_deref(), Some("ann"));
        let bob = defaults.user_caller("bob", settings.get("bob"));
        assert!(!bob.admin && bob.models.allows("llama3.2"));
        assert_eq!(bob.rate_per_minute, 600);
    }

    #[test]
    fn bad_basic_user_settings_name_the_setting_and_the_problem() {
        for (text, wanted) in [
            (
                "[[basic_users]]\nname = \"ann\"\nrate = 5\n",
                "unknown field `rate`",
            ),
            (
                "[[basic_users]]\nname = \"ann\"\nkey = \"k\"\n",
                "unknown field `key`",
            ),
            ("[[basic_users]]\nmodels = []\n", "missing field `name`"),
            (
                "[[basic_users]]\nname = \"\"\n",
                "entry 1: the name is empty",
            ),
            (
                "[[basic_users]]\nname = \"ann\"\n[[basic_users]]\nname = \"ann\"\n",
                "entry 2: user 'ann' has settings already",
            ),
            (
                "[[basic_user]]\nname = \"ann\"\n",
                "unknown field `basic_user`",
            ),
        ] {
            let err = settings_of(text).err().unwrap_or_default();
            assert!(err.starts_with("GATEWAY_CONFIG: "), "{text:?}: {err}");
            assert!(err.contains(wanted), "{text:?}: {err}");
        }
    }
}
