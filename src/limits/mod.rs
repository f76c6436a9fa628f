//! Limits shared by several replicas, counted in Redis (`GATEWAY_REDIS_URL`).
//!
//! Without Redis every limit is counted in this process ([`crate::gate::limits`], `governor`
//! limiters and semaphores). With it, the per-key and global request rates are counted in
//! Redis by one Lua script ([`admit.lua`](admit.lua)), so they hold across every replica that
//! uses the same Redis; one call per admitted request, bounded by `GATEWAY_REDIS_TIMEOUT`.
//!
//! - [`redis`]: the connection, its health (logged once per outage, `/metrics`, `/ready`) and
//!   the reconnecting task.

pub mod redis;

pub use self::redis::{RateCheck, RedisLimits, Verdict};
