//! The Redis connection behind the shared limits, and what the gateway knows of its health.
//!
//! One multiplexed connection carries every request's call (they are pipelined on it), each
//! bounded by `GATEWAY_REDIS_TIMEOUT`. A call that fails, or a ping that gets no answer within
//! a second, marks Redis down: the connection is dropped, and until a background task has made
//! a new one (it tries every 250 ms), every request is answered as `GATEWAY_REDIS_FAILURE` says
//! without waiting on Redis at all. A call that only times out is answered the same way, and
//! has the task ping at once. While Redis is up the task pings it every second, so an idle
//! gateway notices an outage too.
//! Each outage is logged once when it starts and once when it ends, counted in
//! `gateway_redis_errors_total`, and shown by the gauge `gateway_redis_up` and by `/ready`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, Script};
use arc_swap::ArcSwapOption;
use tokio::sync::Notify;

use crate::config::RedisFailure;

/// How long the background task waits between attempts to reconnect.
const RECONNECT_EVERY: Duration = Duration::from_millis(250);
/// How often a connected Redis is pinged when nothing else uses it.
const PING_EVERY: Duration = Duration::from_secs(1);
/// The longest a (re)connection attempt may take: off the request path, so longer than a call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Every key the gateway writes starts with this.
const PREFIX: &str = "ollama-gateway";

/// One rate limit for the admission script: its Redis key and GCRA parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateCheck {
    /// The Redis key holding the limit's state.
    pub key: String,
    /// Emission interval: 60 s / requests per minute, in microseconds.
    pub interval_us: u64,
    /// Burst tolerance: `interval_us * (burst - 1)`.
    pub tolerance_us: u64,
}

impl RateCheck {
    /// `per_minute` requests a minute with `burst` at once (as `governor`'s `Quota`), counted
    /// under `name` (`key:<id>`, `config:<name>`, `global`). `None` when `per_minute` is 0.
    pub fn new(name: &str, per_minute: u32, burst: u32) -> Option<Self> {
        if per_minute == 0 {
            return None;
        }
        let interval_us = 60_000_000 / u64::from(per_minute);
        Some(Self {
            key: format!("{PREFIX}:rate:{name}"),
            interval_us,
            tolerance_us: interval_us * u64::from(burst.max(1) - 1),
        })
    }
}

/// A per-key concurrency cap for the admission script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseCheck {
    /// The Redis key of the sorted set holding the key's leases.
    pub key: String,
    /// Leases the key may hold at once.
    pub max: u32,
}

impl LeaseCheck {
    /// At most `max` requests of the key `name` in progress at once; `None` when `max` is 0.
    pub fn new(name: &str, max: u32) -> Option<Self> {
        (max > 0).then(|| Self {
            key: format!("{PREFIX}:leases:{name}"),
            max,
        })
    }
}

/// What Redis said of a request.
#[derive(Debug)]
pub enum Verdict {
    /// Every limit admits it (and has counted it); the lease, if one was asked for, is held
    /// until this is dropped.
    Admitted(Option<Lease>),
    /// The limit at this index (the rates in the order given, then the lease) refuses it for
    /// this long.
    Refused { index: usize, retry_after: Duration },
}

/// A request's place under its key's concurrency cap, in Redis: renewed while held (so a
/// stream of any length keeps it), removed when dropped. If the replica dies, or loses Redis,
/// it expires by itself within [`LEASE_TIME`].
pub struct Lease {
    redis: Arc<RedisLimits>,
    key: String,
    id: String,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.key)
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.redis
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // no runtime left (the process is ending): the lease expires by itself
        };
        let redis = Arc::clone(&self.redis);
        let key = std::mem::take(&mut self.key);
        let id = std::mem::take(&mut self.id);
        runtime.spawn(async move {
            let _ = redis
                .call(|mut connection| async move {
                    ::redis::cmd("ZREM")
                        .arg(&key)
                        .arg(&id)
                        .query_async::<i64>(&mut connection)
                        .await
                })
                .await;
        });
    }
}

/// How long a lease lasts unless renewed.
pub const LEASE_TIME: Duration = Duration::from_secs(10);
/// How often the leases in use are renewed.
const RENEW_EVERY: Duration = Duration::from_secs(3);

/// Redis could not answer within the timeout (or is known to be down).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Redis is unreachable")]
pub struct Unreachable;

/// The shared limits' Redis: connection, script and health.
pub struct RedisLimits {
    client: Client,
    /// The connection in use; `None` while Redis is down (the task makes a new one).
    connection: ArcSwapOption<MultiplexedConnection>,
    admit_script: Script,
    renew_script: Script,
    /// Reads the database's token totals for a new connection.
    seed: std::sync::OnceLock<TokenSeed>,
    /// The leases this replica holds: id -> the key's lease set.
    held: Mutex<HashMap<String, String>>,
    timeout: Duration,
    failure: RedisFailure,
    up: AtomicBool,
    /// Whether the state has been logged at all (so a Redis down at start is logged too).
    reported: AtomicBool,
    /// Wakes the background task when a call failed.
    wake: Notify,
    /// The URL with its password hidden, for logs.
    shown_url: String,
}

impl std::fmt::Debug for RedisLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimits")
            .field("url", &self.shown_url)
            .field("up", &self.is_up())
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

impl RedisLimits {
    /// Parse the URL (an error names `GATEWAY_REDIS_URL`); nothing is connected yet.
    pub fn new(url: &str, timeout: Duration, failure: RedisFailure) -> Result<Self, String> {
        let shown_url = crate::store::redact(url);
        let client =
            Client::open(url).map_err(|e| format!("GATEWAY_REDIS_URL ({shown_url}): {e}"))?;
        metrics::gauge!("gateway_redis_up").set(0.0);
        Ok(Self {
            client,
            connection: ArcSwapOption::empty(),
            admit_script: Script::new(include_str!("admit.lua")),
            renew_script: Script::new(include_str!("renew.lua")),
            held: Mutex::default(),
            seed: std::sync::OnceLock::new(),
            timeout,
            failure,
            up: AtomicBool::new(false),
            reported: AtomicBool::new(false),
            wake: Notify::new(),
            shown_url,
        })
    }

    /// Connect (waiting at most about a second), then keep the connection up in the
    /// background for as long as the gateway runs.
    pub async fn start(self: &Arc<Self>) {
        if let Err(cause) = self.connect().await {
            self.mark_down(&cause);
        }
        tokio::spawn(Arc::clone(self).keep_connected());
        tokio::spawn(renew_leases(Arc::downgrade(self)));
    }

    /// What to do while Redis is down.
    pub fn failure(&self) -> RedisFailure {
        self.failure
    }

    /// Whether the last call (or ping) succeeded.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Check `rates` in order and count the request against each that admits it, then take a
    /// lease under `lease` if given; all in one call.
    pub async fn admit(
        self: &Arc<Self>,
        rates: &[RateCheck],
        lease: Option<&LeaseCheck>,
    ) -> Result<Verdict, Unreachable> {
        let lease_id = lease.map(|_| uuid::Uuid::new_v4().simple().to_string());
        let mut invocation = self.admit_script.prepare_invoke();
        invocation.arg(rates.len());
        for rate in rates {
            invocation
                .key(&rate.key)
                .arg(rate.interval_us)
                .arg(rate.tolerance_us);
        }
        if let (Some(lease), Some(id)) = (lease, &lease_id) {
            invocation
                .key(&lease.key)
                .arg(lease.max)
                .arg(id)
                .arg(LEASE_TIME.as_millis() as u64);
        }
        let answer: Vec<i64> = self
            .call(|mut connection| async move { invocation.invoke_async(&mut connection).await })
            .await?;
        let limits = rates.len() + usize::from(lease.is_some());
        match answer.as_slice() {
            [0, _] => Ok(Verdict::Admitted(lease.zip(lease_id).map(|(lease, id)| {
                self.held
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(id.clone(), lease.key.clone());
                Lease {
                    redis: Arc::clone(self),
                    key: lease.key.clone(),
                    id,
                }
            }))),
            [index, wait_us] if *index >= 1 && (*index as usize) <= limits => {
                Ok(Verdict::Refused {
                    index: *index as usize - 1,
                    retry_after: Duration::from_micros(u64::try_from(*wait_us).unwrap_or(0)),
                })
            }
            other => {
                self.failed("script", &format!("unexpected answer {other:?}"));
                Err(Unreachable)
            }
        }
    }

    /// Tokens the key `name` used in `day` and `month` (the quota counters' numbering), by
    /// every replica.
    pub async fn tokens_used(
        &self,
        name: &str,
        day: i64,
        month: i64,
    ) -> Result<(u64, u64), Unreachable> {
        let (day_key, month_key) = token_keys(name, day, month);
        let used: (Option<u64>, Option<u64>) = self
            .call(|mut connection| async move {
                ::redis::cmd("MGET")
                    .arg(&day_key)
                    .arg(&month_key)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok((used.0.unwrap_or(0), used.1.unwrap_or(0)))
    }

    /// Count `tokens` for the key `name` in `day` and `month`, in the background (a request
    /// that ends never waits on it; if Redis is down, the tokens are not counted there).
    pub fn add_tokens(self: &Arc<Self>, name: &str, day: i64, month: i64, tokens: u64) {
        if tokens == 0 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (day_key, month_key) = token_keys(name, day, month);
        let redis = Arc::clone(self);
        runtime.spawn(async move {
            let _ = redis
                .call(|mut connection| async move {
                    ::redis::pipe()
                        .atomic()
                        .incr(&day_key, tokens)
                        .ignore()
                        .expire(&day_key, TOKENS_DAY_TTL)
                        .ignore()
                        .incr(&month_key, tokens)
                        .ignore()
                        .expire(&month_key, TOKENS_MONTH_TTL)
                        .ignore()
                        .query_async::<()>(&mut connection)
                        .await
                })
                .await;
        });
    }

    /// Where a (re)connected Redis gets its token counters from (set once, before
    /// [`start`](Self::start)).
    pub fn seed_from(&self, seed: TokenSeed) {
        let _ = self.seed.set(seed);
    }

    /// Renew every lease held now, in one call.
    async fn renew(&self) {
        let held: Vec<(String, String)> = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, key)| (id.clone(), key.clone()))
            .collect();
        if held.is_empty() {
            return;
        }
        let mut invocation = self.renew_script.prepare_invoke();
        invocation.arg(LEASE_TIME.as_millis() as u64);
        for (id, key) in &held {
            invocation.key(key).arg(id);
        }
        let _ =
            self.call(|mut connection| async move {
                invocation.invoke_async::<i64>(&mut connection).await
            })
            .await;
    }

    /// Run `call` on the connection within `GATEWAY_REDIS_TIMEOUT`. A broken connection or an error marks
    /// Redis down at once; a slow answer only fails this call and has the task ping Redis
    /// (a loaded Redis, or a loaded gateway, is not an outage until a ping fails too).
    async fn call<T, F, Fut>(&self, call: F) -> Result<T, Unreachable>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = ::redis::RedisResult<T>>,
    {
        let Some(connection) = self.connection.load_full() else {
            return Err(Unreachable);
        };
        match tokio::time::timeout(self.timeout, call((*connection).clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                self.failed(error_kind(&err), &err.to_string());
                Err(Unreachable)
            }
            Err(_) => {
                metrics::counter!("gateway_redis_errors_total", "kind" => "timeout").increment(1);
                self.wake.notify_one();
                Err(Unreachable)
            }
        }
    }

    /// Count a failed call, drop the connection and wake the task to make a new one.
    fn failed(&self, kind: &'static str, cause: &str) {
        metrics::counter!("gateway_redis_errors_total", "kind" => kind).increment(1);
        self.connection.store(None);
        self.mark_down(cause);
        self.wake.notify_one();
    }

    fn mark_down(&self, cause: &str) {
        let was_up = self.up.swap(false, Ordering::Relaxed);
        let first = !self.reported.swap(true, Ordering::Relaxed);
        if was_up || first {
            metrics::gauge!("gateway_redis_up").set(0.0);
            let meanwhile = match self.failure {
                RedisFailure::Closed => {
                    "requests that a shared limit applies to are refused with 503 (GATEWAY_REDIS_FAILURE=closed)"
                }
                RedisFailure::Open => {
                    "each replica limits on its own meanwhile (GATEWAY_REDIS_FAILURE=open)"
                }
            };
            tracing::warn!(url = %self.shown_url, cause, "Redis is unreachable: {meanwhile}");
        }
    }

    fn mark_up(&self) {
        let was_up = self.up.swap(true, Ordering::Relaxed);
        let first = !self.reported.swap(true, Ordering::Relaxed);
        if !was_up {
            metrics::gauge!("gateway_redis_up").set(1.0);
            if first {
                tracing::info!(url = %self.shown_url, "Redis connected: rate limits are shared");
            } else {
                tracing::info!(url = %self.shown_url, "Redis is reachable again: rate limits are shared again");
            }
        }
    }

    /// Make a connection, load the script and put the connection in use.
    async fn connect(&self) -> Result<(), String> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT));
        let attempt = async {
            let mut connection = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            // Loaded now, so the first request after a Redis restart needs no second trip.
            self.admit_script
                .prepare_invoke()
                .load_async(&mut connection)
                .await?;
            self.renew_script
                .prepare_invoke()
                .load_async(&mut connection)
                .await?;
            // Before any request counts here: a Redis that restarted empty starts from the
            // database's totals, not from zero.
            // A database that does not answer within a second leaves them unseeded rather than
            // keep the limits from Redis.
            if let Some(seed) = self.seed.get() {
                match tokio::time::timeout(CONNECT_TIMEOUT, seed()).await {
                    Ok(Some(totals)) => seed_tokens(&mut connection, &totals).await?,
                    _ => tracing::warn!(
                        "Redis token counters not seeded: the database did not answer in time"
                    ),
                }
            }
            Ok::<_, ::redis::RedisError>(connection)
        };
        match tokio::time::timeout(CONNECT_TIMEOUT * 3, attempt).await {
            Ok(Ok(connection)) => {
                self.connection.store(Some(Arc::new(connection)));
                self.mark_up();
                Ok(())
            }
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err("connecting timed out".to_owned()),
        }
    }

    /// Reconnect while down; ping while up. Ends when the gateway is dropped.
    async fn keep_connected(self: Arc<Self>) {
        let weak = Arc::downgrade(&self);
        drop(self);
        while let Some(this) = weak.upgrade() {
            if this.connection.load().is_none() {
                if let Err(cause) = this.connect().await {
                    this.mark_down(&cause);
                    drop(this);
                    tokio::time::sleep(RECONNECT_EVERY).await;
                }
                continue;
            }
            tokio::select! {
                () = this.wake.notified() => {}
                () = tokio::time::sleep(PING_EVERY) => {}
            }
            let Some(connection) = this.connection.load_full() else {
                continue;
            };
            let mut connection = (*connection).clone();
            let command = ::redis::cmd("PING");
            let ping = command.query_async::<String>(&mut connection);
            match tokio::time::timeout(CONNECT_TIMEOUT, ping).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => this.failed(error_kind(&err), &err.to_string()),
                // It answers nothing, not even a ping: as good as gone.
                Err(_) => this.failed("timeout", "no answer to a ping within a second"),
            }
        }
    }
}

/// Renew this replica's leases every few seconds, for as long as the gateway runs.
async fn renew_leases(redis: std::sync::Weak<RedisLimits>) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let Some(redis) = redis.upgrade() else { return };
        redis.renew().await;
    }
}

/// Tokens per stored key (by id) in one day and month, from the database.
#[derive(Debug)]
pub struct TokenTotals {
    /// The day's number (days since 1970-01-01, UTC).
    pub day: i64,
    /// The month's number (year * 12 + month - 1).
    pub month: i64,
    /// Tokens per key id that day.
    pub today: Vec<(String, u64)>,
    /// Tokens per key id that month.
    pub this_month: Vec<(String, u64)>,
}

/// Reads [`TokenTotals`] (`None` when the database cannot answer).
pub type TokenSeed =
    Arc<dyn Fn() -> futures::future::BoxFuture<'static, Option<TokenTotals>> + Send + Sync>;

/// Start each key's counters at what the database holds, unless Redis has them already
/// (another replica counted there first, or Redis kept them through a lost connection).
async fn seed_tokens(
    connection: &mut MultiplexedConnection,
    totals: &TokenTotals,
) -> ::redis::RedisResult<()> {
    if totals.today.is_empty() && totals.this_month.is_empty() {
        return Ok(()); // (an empty pipeline is not a command Redis answers)
    }
    let mut pipe = ::redis::pipe();
    let periods = [
        (&totals.today, TOKENS_DAY_TTL, true),
        (&totals.this_month, TOKENS_MONTH_TTL, false),
    ];
    for (tokens, ttl, daily) in periods {
        for (id, tokens) in tokens {
            let (day_key, month_key) = token_keys(&format!("key:{id}"), totals.day, totals.month);
            pipe.set_options(
                if daily { day_key } else { month_key },
                *tokens,
                ::redis::SetOptions::default()
                    .conditional_set(::redis::ExistenceCheck::NX)
                    .with_expiration(::redis::SetExpiry::EX(ttl.unsigned_abs())),
            )
            .ignore();
        }
    }
    pipe.query_async::<()>(connection).await
}

/// How long a day's token counter is kept (past its day, for a late request's tokens).
const TOKENS_DAY_TTL: i64 = 2 * 86_400;
/// How long a month's token counter is kept.
const TOKENS_MONTH_TTL: i64 = 32 * 86_400;

/// The Redis keys of the key `name`'s token counters for `day` and `month`.
fn token_keys(name: &str, day: i64, month: i64) -> (String, String) {
    (
        format!("{PREFIX}:tokens:{name}:day:{day}"),
        format!("{PREFIX}:tokens:{name}:month:{month}"),
    )
}

/// The `kind` label of `gateway_redis_errors_total` for an error.
fn error_kind(err: &::redis::RedisError) -> &'static str {
    if err.is_io_error() || err.is_connection_dropped() {
        "connection"
    } else {
        "command"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_checks_have_governors_parameters() {
        let check = RateCheck::new("key:a", 60, 10).unwrap_or_else(|| panic!("a limit"));
        assert_eq!(check.key, "ollama-gateway:rate:key:a");
        assert_eq!(check.interval_us, 1_000_000);
        assert_eq!(check.tolerance_us, 9_000_000);
        let one = RateCheck::new("global", 600, 0).unwrap_or_else(|| panic!("a limit"));
        assert_eq!((one.interval_us, one.tolerance_us), (100_000, 0));
        assert_eq!(RateCheck::new("x", 0, 5), None);
        assert_eq!(LeaseCheck::new("x", 0), None);
        assert_eq!(
            LeaseCheck::new("key:a", 4).map(|l| l.key),
            Some("ollama-gateway:leases:key:a".to_owned())
        );
    }
}
