//! Body size and time, request rate and concurrency limits.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use governor::clock::{Clock, DefaultClock};
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use super::Gate;
use super::keys::Caller;
use crate::config::RedisFailure;
use crate::error::GatewayError;
use crate::limits::{Lease, LeaseCheck, RateCheck, RedisLimits, Verdict};

/// The body limit in force, for the 413 message.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// Refuse a body whose declared length is over the limit before reading any of it, cap a body
/// without a declared length while it is read, and bound the time it may take
/// ([`TimedBody`]; a timeout of zero sets no bound).
pub fn limit_body(gate: &Gate, mut req: Request) -> Result<Request, GatewayError> {
    let limit = gate.max_body;
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    req.extensions_mut().insert(BodyLimit(limit));
    let timeout = gate.body_timeout;
    Ok(req.map(|body| {
        if timeout.is_zero() {
            Body::new(http_body_util::Limited::new(body, limit))
        } else {
            Body::new(http_body_util::Limited::new(
                TimedBody::new(body, timeout),
                limit,
            ))
        }
    }))
}

/// Past the body timeout, the average rate (bytes per second since the headers) a body still
/// arriving must keep up.
pub const MIN_BODY_RATE: u64 = 1024 * 1024;

/// The error a request body ends with when it is too slow; answered with 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// A request body that fails with [`BodyTimedOut`] once it has taken longer than the timeout
/// and its average rate is below [`MIN_BODY_RATE`]. Its timer is only made when the body is
/// waited for, so a body that has already arrived (most of them) costs no timer at all.
pub struct TimedBody {
    inner: Body,
    started: Instant,
    timeout: Duration,
    received: u64,
    timer: Option<Pin<Box<Sleep>>>,
}

impl TimedBody {
    /// `inner`, due within `timeout` from now.
    pub fn new(inner: Body, timeout: Duration) -> Self {
        Self {
            inner,
            started: Instant::now(),
            timeout,
            received: 0,
            timer: None,
        }
    }

    /// When the body fails if nothing more arrives: the timeout, or later while what has
    /// arrived keeps the average rate up.
    fn deadline(&self) -> Instant {
        let at_min_rate = Duration::from_secs_f64(self.received as f64 / MIN_BODY_RATE as f64);
        // A timeout too large to add is as good as none (about 136 years).
        self.started
            .checked_add(self.timeout.max(at_min_rate))
            .unwrap_or_else(|| self.started + Duration::from_secs(u64::from(u32::MAX)))
    }
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(Box::new(err)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = this.deadline();
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        tracing::info!(
                            received = this.received,
                            elapsed_ms = this.started.elapsed().as_millis() as u64,
                            "request body too slow"
                        );
                        Poll::Ready(Some(Err(Box::new(BodyTimedOut))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A request's place under its key's concurrency cap, held until its response body (a stream
/// perhaps) is finished: a permit of this process's semaphore, or a lease in Redis.
#[derive(Debug)]
pub enum Permit {
    /// Counted in this process.
    Local(OwnedSemaphorePermit),
    /// Counted in Redis, across replicas.
    Shared(Lease),
}

/// The key's own rate, then the global rate, then the per-key concurrency cap. The permit (if
/// the key has a cap) must be held until the response body, a stream perhaps, is finished.
///
/// The key's rate comes first so that a key refused by its own limit spends nothing of the
/// global budget: one key hammering the gateway cannot lock the others out.
///
/// With Redis (`GATEWAY_REDIS_URL`) all three are counted there, in one call; while Redis is
/// unreachable, `GATEWAY_REDIS_FAILURE` decides: `closed` refuses with 503, `open` counts them
/// here.
pub async fn admit(gate: &Gate, caller: &Caller) -> Result<Option<Permit>, GatewayError> {
    match &gate.redis {
        Some(redis)
            if caller.rate.is_some() || gate.global_rate.is_some() || caller.max_concurrent > 0 =>
        {
            shared_admit(gate, redis, caller).await
        }
        _ => local_admit(gate, caller),
    }
}

/// The rates and the concurrency cap, counted in this process.
fn local_admit(gate: &Gate, caller: &Caller) -> Result<Option<Permit>, GatewayError> {
    local_rates(gate, caller)?;
    match &caller.concurrency {
        None => Ok(None),
        Some(semaphore) => semaphore
            .clone()
            .try_acquire_owned()
            .map(|permit| Some(Permit::Local(permit)))
            .map_err(|_| concurrency_refused(caller)),
    }
}

fn concurrency_refused(caller: &Caller) -> GatewayError {
    GatewayError::RateLimited {
        scope: "concurrent requests per key",
        retry_after: Duration::from_secs(1),
        limit: caller.max_concurrent,
    }
}

/// The key's and the global rate, counted in this process.
fn local_rates(gate: &Gate, caller: &Caller) -> Result<(), GatewayError> {
    if let Some(limiter) = &caller.rate
        && let Err(not_until) = limiter.check()
    {
        return Err(GatewayError::RateLimited {
            scope: "per key",
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            limit: caller.rate_per_minute,
        });
    }
    if let Some(limiter) = &gate.global_rate
        && let Err(not_until) = limiter.check()
    {
        return Err(GatewayError::RateLimited {
            scope: "global",
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            limit: gate.global_rate_per_minute,
        });
    }
    Ok(())
}

/// The rates and the concurrency cap, counted in Redis (or as `GATEWAY_REDIS_FAILURE` says
/// while it is unreachable).
async fn shared_admit(
    gate: &Gate,
    redis: &Arc<RedisLimits>,
    caller: &Caller,
) -> Result<Option<Permit>, GatewayError> {
    let name = caller.counter_name();
    let mut checks = Vec::with_capacity(2);
    let mut scopes = Vec::with_capacity(2);
    if caller.rate.is_some()
        && let Some(check) = RateCheck::new(&name, caller.rate_per_minute, caller.burst)
    {
        checks.push(check);
        scopes.push(("per key", caller.rate_per_minute));
    }
    if gate.global_rate.is_some()
        && let Some(check) =
            RateCheck::new("global", gate.global_rate_per_minute, gate.global_burst)
    {
        checks.push(check);
        scopes.push(("global", gate.global_rate_per_minute));
    }
    let lease = LeaseCheck::new(&name, caller.max_concurrent);
    match redis.admit(&checks, lease.as_ref()).await {
        Ok(Verdict::Admitted(lease)) => Ok(lease.map(Permit::Shared)),
        Ok(Verdict::Refused { index, retry_after }) => match scopes.get(index) {
            Some(&(scope, limit)) => Err(GatewayError::RateLimited {
                scope,
                retry_after,
                limit,
            }),
            None => Err(concurrency_refused(caller)),
        },
        Err(_) => match redis.failure() {
            RedisFailure::Closed => Err(GatewayError::LimitsUnavailable),
            RedisFailure::Open => local_admit(gate, caller),
        },
    }
}

/// Add the key's limit header, and tie the concurrency permit to the response body.
pub fn finish(mut response: Response, caller: &Caller, permit: Option<Permit>) -> Response {
    if caller.rate_per_minute > 0 {
        response.headers_mut().insert(
            "x-ratelimit-limit-requests",
            http::HeaderValue::from(caller.rate_per_minute),
        );
    }
    match permit {
        None => response,
        Some(permit) => response.map(|body| {
            Body::new(body.map_frame(move |frame| {
                let _held = &permit;
                frame
            }))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc;

    /// A body fed by hand, timed by [`TimedBody`], and a reader that collects it.
    fn timed(timeout: Duration) -> (mpsc::UnboundedSender<Bytes>, TimedBody) {
        let (tx, rx) = mpsc::unbounded::<Bytes>();
        let stream =
            futures::StreamExt::map(rx, |chunk| Ok::<_, std::io::Error>(Frame::data(chunk)));
        let body = Body::new(http_body_util::StreamBody::new(stream));
        (tx, TimedBody::new(body, timeout))
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_fails_at_the_timeout_a_fast_upload_may_run_past_it() {
        let (tx, body) = timed(Duration::from_secs(1));
        let reading = tokio::spawn(body.collect());
        tx.unbounded_send(Bytes::from_static(b"{")).ok();
        tokio::time::sleep(Duration::from_millis(999)).await;
        assert!(!reading.is_finished());
        tokio::time::sleep(Duration::from_millis(2)).await;
        let err = reading
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .err()
            .unwrap_or_else(|| panic!("the body should have failed"));
        assert!(err.is::<BodyTimedOut>(), "{err}");

        // 2 MiB arrived at once: at 1 MiB/s that buys two seconds in all.
        let (tx, body) = timed(Duration::from_secs(1));
        let reading = tokio::spawn(body.collect());
        tx.unbounded_send(Bytes::from(vec![b' '; 2 * 1024 * 1024]))
            .ok();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!reading.is_finished(), "still within its rate");
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(reading.is_finished(), "below the minimum rate after 2 s");

        let (tx, body) = timed(Duration::from_secs(1));
        let reading = tokio::spawn(body.collect());
        tx.unbounded_send(Bytes::from_static(b"{}")).ok();
        drop(tx);
        let collected = reading
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(collected.to_bytes(), Bytes::from_static(b"{}"));
    }
}
