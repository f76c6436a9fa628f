//! Basic auth users, as the reverse-proxy guides set them up: `GATEWAY_BASIC_USERS` names an
//! htpasswd-style file of `user:bcrypt-hash` lines (what `htpasswd -nB user` or
//! `caddy hash-password` print). `Authorization: Basic` with such a user is a caller named after
//! the user, with the default per-key limits, or its own allowlist, limits and admin right from
//! `[[basic_users]]` in the TOML file (`GATEWAY_CONFIG`). That file is read at start only, as it
//! is for keys: a user added to the htpasswd file later gets the settings read then.
//!
//! bcrypt is slow on purpose, so it never runs on the async workers: each check goes to the
//! blocking pool, at most one per CPU at a time (a flood of wrong passwords queues instead of
//! filling that pool). A successful check is remembered for [`CACHE_TTL`] under a keyed digest
//! of user and password (never the password itself), so a client sending the same credentials
//! on every request pays bcrypt once every few minutes. A wrong password or an unknown user is
//! refused (and counted by the failed-authentication limiter like a wrong key); an unknown user
//! costs one bcrypt run too, so timing does not tell which user names exist.
//!
//! The file is read again within a second of changing (checked by modification time and size,
//! as the TLS files are); a file that no longer parses is logged and the users in memory stay.
//! A reload empties the cache, so a changed or removed password stops working at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::keys::{Caller, Limits, UserSettings};
use crate::config::Config;

/// How long a successful check is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(300);
/// Most remembered checks; past that, expired ones are dropped, then all of them.
const CACHE_MAX: usize = 4096;
/// How often the file is looked at.
const POLL: Duration = Duration::from_secs(1);

/// The message for a wrong password and for an unknown user alike.
pub const REFUSED: &str = "invalid user name or password";

/// The users of `GATEWAY_BASIC_USERS`, kept current while the gateway runs.
#[derive(Debug)]
pub struct BasicAuth {
    path: PathBuf,
    limits: Limits,
    settings: HashMap<String, UserSettings>,
    users: ArcSwap<BasicUsers>,
    /// One bcrypt run per CPU at a time.
    verifying: Semaphore,
    /// bcrypt runs so far (checks answered from the cache are not counted).
    verifications: AtomicU64,
    /// Keys the cache digests: without it, a memory dump would hold fast hashes of passwords.
    secret: [u8; 32],
}

/// One version of the file, with the checks remembered since it was read.
#[derive(Debug, Default)]
struct BasicUsers {
    users: HashMap<String, BasicUser>,
    /// A hash verified for unknown users, so they take as long as known ones.
    decoy: Option<String>,
    /// Keyed digest of user and password -> when the check is forgotten.
    cache: Mutex<HashMap<[u8; 32], Instant>>,
}

#[derive(Debug)]
struct BasicUser {
    hash: String,
    caller: Arc<Caller>,
}

impl BasicAuth {
    /// The users of `GATEWAY_BASIC_USERS`, or `None` when it is unset. A file that cannot be
    /// read or has a bad line stops the gateway with a message naming the setting and the line.
    pub fn from_config(config: &Config) -> Result<Option<Self>, String> {
        let settings = super::keys::basic_user_settings(config)?;
        let Some(path) = &config.basic_users else {
            if !settings.is_empty() {
                tracing::warn!(
                    "GATEWAY_CONFIG: [[basic_users]] settings have no effect without GATEWAY_BASIC_USERS"
                );
            }
            return Ok(None);
        };
        let limits = Limits::from_config(config);
        let users = read(path, limits, &settings, &BasicUsers::default())?;
        if users.users.is_empty() {
            tracing::warn!(file = %path.display(), "GATEWAY_BASIC_USERS: the file names no user");
        }
        for user in without_line(&settings, &users) {
            tracing::warn!(
                user,
                file = %path.display(),
                "GATEWAY_CONFIG: [[basic_users]] names a user the GATEWAY_BASIC_USERS file does not have (its settings apply if the user is added)"
            );
        }
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Ok(Some(Self {
            path: path.clone(),
            limits,
            settings,
            users: ArcSwap::from_pointee(users),
            verifying: Semaphore::new(cpus),
            verifications: AtomicU64::new(0),
            secret: rand::random(),
        }))
    }

    /// How many times bcrypt has run (for tests and metrics: a cached check does not run it).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// How many users the file in use names.
    pub fn len(&self) -> usize {
        self.users.load().users.len()
    }

    /// Whether the file in use names no user.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The caller for `user` with `password`, or [`REFUSED`].
    pub async fn check(&self, user: &str, password: &str) -> Result<Arc<Caller>, &'static str> {
        let users = self.users.load_full();
        let digest = self.digest(user, password);
        let known = users.users.get(user);
        if let Some(known) = known
            && users.remembers(&digest)
        {
            metrics::counter!("gateway_basic_auth_total", "result" => "cached").increment(1);
            return Ok(known.caller.clone());
        }
        let Some(hash) = known
            .map(|u| u.hash.clone())
            .or_else(|| users.decoy.clone())
        else {
            return Err(REFUSED);
        };
        let matches = {
            let _permit = self.verifying.acquire().await.map_err(|_| REFUSED)?;
            self.verifications.fetch_add(1, Ordering::Relaxed);
            let password = password.to_owned();
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false)
        };
        match known {
            Some(known) if matches => {
                users.remember(digest);
                metrics::counter!("gateway_basic_auth_total", "result" => "verified").increment(1);
                Ok(known.caller.clone())
            }
            _ => {
                metrics::counter!("gateway_basic_auth_total", "result" => "refused").increment(1);
                Err(REFUSED)
            }
        }
    }

    fn digest(&self, user: &str, password: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.secret);
        hasher.update((user.len() as u64).to_le_bytes());
        hasher.update(user.as_bytes());
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    /// Read the file again when it changes, for as long as the gateway runs.
    pub async fn watch(&self) {
        let mut seen = stamp(&self.path);
        loop {
            tokio::time::sleep(POLL).await;
            let now = stamp(&self.path);
            if now == seen {
                continue;
            }
            match read(&self.path, self.limits, &self.settings, &self.users.load()) {
                Ok(users) => {
                    let count = users.users.len();
                    self.users.store(Arc::new(users));
                    seen = now;
                    tracing::info!(file = %self.path.display(), users = count, "Basic auth users reloaded");
                }
                // `seen` stays: the next tick tries again (an editor may be half way through).
                Err(err) => {
                    tracing::warn!("Basic auth users not reloaded, keeping the current ones: {err}")
                }
            }
        }
    }
}

impl BasicUsers {
    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Instant>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remembers(&self, digest: &[u8; 32]) -> bool {
        let mut cache = self.cache();
        match cache.get(digest) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                cache.remove(digest);
                false
            }
            None => false,
        }
    }

    fn remember(&self, digest: [u8; 32]) {
        let now = Instant::now();
        let mut cache = self.cache();
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, until| *until > now);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(digest, now + CACHE_TTL);
    }
}

/// The users with `[[basic_users]]` settings that the file does not name, sorted.
fn without_line<'a>(
    settings: &'a HashMap<String, UserSettings>,
    users: &BasicUsers,
) -> Vec<&'a str> {
    let mut missing: Vec<&str> = settings
        .keys()
        .filter(|name| !users.users.contains_key(*name))
        .map(String::as_str)
        .collect();
    missing.sort_unstable();
    missing
}

/// What identifies one version of the file without reading it.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Read and check the file; users already in `before` keep their caller (and so their rate
/// limiter and concurrency permits).
fn read(
    path: &Path,
    limits: Limits,
    settings: &HashMap<String, UserSettings>,
    before: &BasicUsers,
) -> Result<BasicUsers, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("GATEWAY_BASIC_USERS: cannot read {}: {e}", path.display()))?;
    let lines =
        parse(&text).map_err(|e| format!("GATEWAY_BASIC_USERS: {}: {e}", path.display()))?;
    let mut users = HashMap::with_capacity(lines.len());
    let mut decoy: Option<(u32, String)> = None;
    for (user, hash, cost) in lines {
        if decoy.as_ref().is_none_or(|(c, _)| cost > *c) {
            decoy = Some((cost, hash.clone()));
        }
        let caller = match before.users.get(&user) {
            Some(kept) => kept.caller.clone(),
            None => Arc::new(limits.user_caller(&user, settings.get(&user))),
        };
        users.insert(user, BasicUser { hash, caller });
    }
    Ok(BasicUsers {
        users,
        decoy: decoy.map(|(_, hash)| hash),
        cache: Mutex::default(),
    })
}

/// The `(user, hash, cost)` of every line. Blank lines and lines starting with `#` are skipped;
/// any other line must be `user:hash` with a bcrypt hash (`$2a$`, `$2b$` or `$2y$`), and a user
/// may appear once.
fn parse(text: &str) -> Result<Vec<(String, String, u32)>, String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            return Err(format!(
                "line {number}: expected `user:bcrypt-hash` (as `htpasswd -nB user` prints)"
            ));
        };
        if user.is_empty() {
            return Err(format!("line {number}: the user name is empty"));
        }
        if let Some(first) = seen.insert(user, number) {
            return Err(format!(
                "line {number}: user '{user}' is already on line {first}"
            ));
        }
        let bcrypt_prefix = ["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|prefix| hash.starts_with(prefix));
        let parts = hash
            .parse::<bcrypt::HashParts>()
            .ok()
            .filter(|_| bcrypt_prefix)
            .ok_or_else(|| {
                format!(
                    "line {number}: the hash of '{user}' is not a bcrypt hash ($2a$, $2b$ or $2y$; make one with `htpasswd -nB {user}` or `caddy hash-password`)"
                )
            })?;
        out.push((user.to_owned(), hash.to_owned(), parts.get_cost()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // What `htpasswd -nbB -C 4 ann secret` and `htpasswd -nbB -C 5 bob hunter2` printed.
    const ANN: &str = "$2y$04$2v9b.aOrD5rqmV1ihL72I.iO8/miYIO/lF2TfjYtV4Qh6Q1AH5ZIe";
    const BOB: &str = "$2y$05$kpinvZS1.E32AhBV2M1/YudtX28OOdzOpl9TKccrEFcwOYdPP0bpG";

    #[test]
    fn lines_are_checked_and_numbered() {
        // The three prefixes are one algorithm; `$2a$` and `$2b$` spellings of ann's hash parse.
        let good = format!(
            "# users\n\nann:{ANN}\n  bob:{BOB}  \ncat:$2a{}\ndan:$2b{}\n",
            &ANN[3..],
            &ANN[3..]
        );
        let users = parse(&good).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(users.len(), 4);
        assert_eq!((users[0].0.as_str(), users[0].2), ("ann", 4));
        assert_eq!((users[1].0.as_str(), users[1].2), ("bob", 5));
        for (text, wanted) in [
            (format!("ann:{ANN}\nno colon here\n"), "line 2: expected"),
            (format!(":{ANN}\n"), "line 1: the user name is empty"),
            (
                format!("ann:{ANN}\n\nann:{ANN}\n"),
                "line 3: user 'ann' is already on line 1",
            ),
            (
                "cat:$apr1$abc$def\n".to_owned(),
                "line 1: the hash of 'cat' is not a bcrypt hash",
            ),
            (
                "cat:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n".to_owned(),
                "not a bcrypt hash",
            ),
            ("cat:$2y$04$short\n".to_owned(), "not a bcrypt hash"),
            (format!("cat:$2x{}\n", &ANN[3..]), "not a bcrypt hash"),
        ] {
            let err = parse(&text).err().unwrap_or_default();
            assert!(err.contains(wanted), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_cache_forgets_after_its_ttl_and_stays_bounded() {
        let users = BasicUsers::default();
        let digest = [7u8; 32];
        assert!(!users.remembers(&digest));
        users.remember(digest);
        assert!(users.remembers(&digest));
        users
            .cache()
            .insert(digest, Instant::now() - Duration::from_secs(1));
        assert!(!users.remembers(&digest), "an expired check is forgotten");
        for i in 0..(CACHE_MAX + 10) {
            let mut d = [0u8; 32];
            d[..8].copy_from_slice(&(i as u64).to_le_bytes());
            users.remember(d);
        }
        assert!(users.cache().len() <= CACHE_MAX);
    }

    #[test]
    fn settings_for_users_the_file_lacks_are_found() {
        let text = format!("ann:{ANN}\nbob:{BOB}\n");
        let path = std::env::temp_dir().join(format!("gw-basic-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let settings: HashMap<String, UserSettings> = ["zed", "ann", "cat"]
            .into_iter()
            .map(|name| {
                let user: UserSettings =
                    toml::from_str(&format!("name = \"{name}\"")).unwrap_or_else(|e| panic!("{e}"));
                (name.to_owned(), user)
            })
            .collect();
        let users = read(&path, Limits::default(), &settings, &BasicUsers::default());
        let _ = std::fs::remove_file(&path);
        let users = users.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(without_line(&settings, &users), ["cat", "zed"]);
        assert!(without_line(&HashMap::new(), &users).is_empty());
    }
}
