//! Body size, request rate and concurrency limits.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use http_body_util::BodyExt;

use super::keys::Caller;
use crate::error::{GatewayError, Surface};
use crate::state::AppState;

/// The body limit in force, for the 413 message.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// Middleware: refuse a body whose declared length is over the limit before reading any of it,
/// and cap bodies without a declared length while they are read.
pub async fn limit_body(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let limit = state.gate.max_body;
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return GatewayError::BodyTooLarge { limit }.render(Surface::for_path(req.uri().path()));
    }
    req.extensions_mut().insert(BodyLimit(limit));
    let req = req.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
    next.run(req).await
}

/// Middleware: global and per-key request rates, then the per-key concurrency cap. The
/// concurrency permit is held until the response body (a stream, perhaps) is finished.
pub async fn limit_rate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let surface = Surface::for_path(req.uri().path());
    let Some(caller) = req.extensions().get::<Arc<Caller>>().cloned() else {
        // Open routes carry no caller and are not limited.
        return next.run(req).await;
    };
    if let Some(limiter) = &state.gate.global_rate
        && let Err(not_until) = limiter.check()
    {
        let retry_after = not_until.wait_time_from(DefaultClock::default().now());
        return refuse(
            "global",
            retry_after,
            state.gate.global_rate_per_minute,
            surface,
        );
    }
    if let Some(limiter) = &caller.rate
        && let Err(not_until) = limiter.check()
    {
        let retry_after = not_until.wait_time_from(DefaultClock::default().now());
        return refuse("per key", retry_after, caller.rate_per_minute, surface);
    }
    let permit = match &caller.concurrency {
        None => None,
        Some(semaphore) => match semaphore.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                return refuse(
                    "concurrent requests per key",
                    Duration::from_secs(1),
                    caller.max_concurrent,
                    surface,
                );
            }
        },
    };
    let mut response = next.run(req).await;
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

fn refuse(scope: &'static str, retry_after: Duration, limit: u32, surface: Surface) -> Response {
    GatewayError::RateLimited {
        scope,
        retry_after,
        limit,
    }
    .render(surface)
}
