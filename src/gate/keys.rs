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
    /// Per-key concurrency cap, if any.
    pub concurrency: Option<Arc<Semaphore>>,
    /// The cap's size.
    pub max_concurrent: u32,
}

impl Caller {
    /// Whether the key's expiry time has passed.
    pub fn has_expired(&self) -> bool {
        self.expires.is_some_and(|at| at <= Utc::now())
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
}

/// All known keys, by digest.
#[derive(Debug, Default)]
pub struct KeyStore {
    by_digest: HashMap<[u8; 32], Arc<Caller>>,
    /// The identity used for every request when auth is off.
    anonymous: Option<Arc<Caller>>,
}

/// What loading the keys produced, for the start-up log.
#[derive(Debug)]
pub struct LoadedKeys {
    pub store: KeyStore,
    /// A key made up at start because none was configured (printed once).
    pub generated: Option<String>,
}

impl KeyStore {
    /// Load keys from the environment settings and the optional TOML file.
    pub fn load(config: &Config) -> Result<LoadedKeys, String> {
        let mut store = KeyStore::default();
        let defaults = Limits::from_config(config);
        if config.auth == AuthMode::Off {
            store.anonymous = Some(Arc::new(defaults.caller(
                "anonymous",
                ModelAllowlist::default(),
                true,
                None,
            )));
            return Ok(LoadedKeys {
                store,
                generated: None,
            });
        }
        for (i, key) in config
            .api_keys
            .iter()
            .enumerate()
            .filter(|(_, k)| !k.expose().is_empty())
        {
            store.insert(
                digest(key.expose()),
                defaults.caller(
                    &format!("key-{}", i + 1),
                    ModelAllowlist::default(),
                    false,
                    None,
                ),
            );
        }
        if let Some(key) = config
            .ollama_api_key
            .as_ref()
            .filter(|k| !k.expose().is_empty())
        {
            store.insert(
                digest(key.expose()),
                defaults.caller("ollama-api-key", ModelAllowlist::default(), false, None),
            );
        }
        if let Some(path) = &config.config_file {
            store.load_file(path, &defaults)?;
        }
        let mut generated = None;
        if store.by_digest.is_empty() {
            let key = format!("sk-gw-{}", uuid::Uuid::new_v4().simple());
            store.insert(
                digest(&key),
                defaults.caller("generated", ModelAllowlist::default(), false, None),
            );
            generated = Some(key);
        }
        Ok(LoadedKeys { store, generated })
    }

    fn load_file(&mut self, path: &Path, defaults: &Limits) -> Result<(), String> {
        let name = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("GATEWAY_CONFIG: cannot read {name}: {e}"))?;
        let file: KeyFile =
            toml::from_str(&text).map_err(|e| format!("GATEWAY_CONFIG: {name}: {e}"))?;
        for entry in file.keys {
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
            let limits = Limits {
                rate_per_minute: entry.rate_limit.unwrap_or(defaults.rate_per_minute),
                burst: entry.burst.unwrap_or(defaults.burst),
                max_concurrent: entry.max_concurrent.unwrap_or(defaults.max_concurrent),
            };
            let caller = limits.caller(
                &entry.name,
                ModelAllowlist::new(&entry.models),
                entry.admin,
                entry.expires,
            );
            self.insert(digest, caller);
        }
        Ok(())
    }

    fn insert(&mut self, digest: [u8; 32], caller: Caller) {
        self.by_digest.insert(digest, Arc::new(caller));
    }

    /// The caller for a presented key, if it is known. With auth off, always the anonymous one.
    pub fn lookup(&self, presented: Option<&str>) -> Option<Arc<Caller>> {
        if let Some(anonymous) = &self.anonymous {
            return Some(anonymous.clone());
        }
        self.by_digest.get(&digest(presented?)).cloned()
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

/// Default per-key limits from the configuration.
#[derive(Clone, Copy, Debug)]
struct Limits {
    rate_per_minute: u32,
    burst: u32,
    max_concurrent: u32,
}

impl Limits {
    fn from_config(config: &Config) -> Self {
        Self {
            rate_per_minute: config.rate_limit,
            burst: config.rate_burst,
            max_concurrent: config.max_concurrent,
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
            concurrency: (self.max_concurrent > 0)
                .then(|| Arc::new(Semaphore::new(self.max_concurrent as usize))),
            max_concurrent: self.max_concurrent,
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
        let loaded = KeyStore::load(&config(&[
            "--api-keys",
            "alpha,beta",
            "--ollama-api-key",
            "gamma",
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.generated.is_none());
        let store = loaded.store;
        assert_eq!(
            store
                .lookup(Some("alpha"))
                .map(|c| c.name.clone())
                .as_deref(),
            Some("key-1")
        );
        assert_eq!(
            store
                .lookup(Some("gamma"))
                .map(|c| c.name.clone())
                .as_deref(),
            Some("ollama-api-key")
        );
        assert!(store.lookup(Some("alph")).is_none());
        assert!(store.lookup(None).is_none());
    }

    #[test]
    fn no_key_means_a_generated_one_not_an_open_door() {
        let loaded = KeyStore::load(&config(&[])).unwrap_or_else(|e| panic!("{e}"));
        let key = loaded.generated.unwrap_or_default();
        assert!(key.starts_with("sk-gw-"));
        assert!(loaded.store.lookup(Some(&key)).is_some());
        assert!(loaded.store.lookup(None).is_none());
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
            .unwrap_or_else(|e| panic!("{e}"))
            .store;
        let alice = store
            .lookup(Some("secret-one"))
            .unwrap_or_else(|| panic!("alice missing"));
        assert!(
            alice.admin && alice.models.allows("llama3.2:latest") && !alice.models.allows("qwen3")
        );
        assert_eq!(alice.max_concurrent, 1);
        let bob = store
            .lookup(Some("secret-two"))
            .unwrap_or_else(|| panic!("bob missing"));
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
}
