//! Limits shared by several replicas, counted in Redis (`GATEWAY_REDIS_URL`).
//!
//! Without Redis every limit is counted in this process ([`crate::gate::limits`], `governor`
//! limiters and semaphores). With it, the per-key and global request rates and the per-key
//! concurrency cap are counted in Redis by one Lua script (`admit.lua`), so they hold across
//! every replica that uses the same Redis; one call per request, bounded by
//! `GATEWAY_REDIS_TIMEOUT`. A request's place under the concurrency cap is a lease that expires
//! unless renewed (`renew.lua`), so a replica that dies does not hold places forever.
//!
//! - [`redis`]: the connection, its health (logged once per outage, `/metrics`, `/ready`) and
//!   the reconnecting task.

pub mod redis;

pub use self::redis::{Lease, LeaseCheck, RateCheck, RedisLimits, Verdict};
