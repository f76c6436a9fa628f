//! Body size, request rate and concurrency limits.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use http_body_util::BodyExt;
use tokio::sync::OwnedSemaphorePermit;

use super::Gate;
use super::keys::Caller;
use crate::error::GatewayError;

/// The body limit in force, for the 413 message.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// Refuse a body whose declared length is over the limit before reading any of it, and cap a
/// body without a declared length while it is read.
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
    Ok(req.map(|body| Body::new(http_body_util::Limited::new(body, limit))))
}

/// The key's own rate, then the global rate, then the per-key concurrency cap. The permit (if
/// the key has a cap) must be held until the response body, a stream perhaps, is finished.
///
/// The key's rate comes first so that a key refused by its own limit spends nothing of the
/// global budget: one key hammering the gateway cannot lock the others out.
pub fn admit(gate: &Gate, caller: &Caller) -> Result<Option<OwnedSemaphorePermit>, GatewayError> {
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
    match &caller.concurrency {
        None => Ok(None),
        Some(semaphore) => semaphore
            .clone()
            .try_acquire_owned()
            .map(Some)
            .map_err(|_| GatewayError::RateLimited {
                scope: "concurrent requests per key",
                retry_after: Duration::from_secs(1),
                limit: caller.max_concurrent,
            }),
    }
}

/// Add the key's limit header, and tie the concurrency permit to the response body.
pub fn finish(
    mut response: Response,
    caller: &Caller,
    permit: Option<OwnedSemaphorePermit>,
) -> Response {
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
