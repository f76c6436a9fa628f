//! The whole middleware stack, built in one place.
//!
//! Outermost first, what each layer adds to a request:
//!
//! 1. **path normalisation** (before routing): one canonical spelling of the path, or a 400;
//!    every later decision and the upstream see the normalised path.
//! 2. **request id**: `x-request-id` from the client (one header, at most 128 of
//!    `A-Z a-z 0-9 . _ : -`) or else a new UUID (a refused client id is kept, quoted, for the
//!    audit line); returned on the response and sent upstream.
//! 3. **trace**: a span per request carrying the request id (`Authorization` and `x-api-key`
//!    are marked sensitive, so they never appear in logs).
//! 4. **catch panic**: a bug answers 500 in the surface's error shape, the server keeps serving.
//! 5. **CORS**: preflights answered here, without a key.
//! 6. **audit**: one structured line, the metrics and one usage record (queued, never waited
//!    on) per request, written when the response body ends (streams included).
//! 7. **the gate** (one layer, [`gate::admit`]), in this order:
//!    - body limit: 413 before reading a body whose declared length is too large; bodies
//!      without a length are capped while read; every body is bounded in time
//!      (`GATEWAY_BODY_TIMEOUT`, then 408);
//!    - auth: deny by default (and 400 for more than one `Authorization` header), keys read
//!      from memory; the caller's key settings go into the request;
//!    - token quota: 429 `quota_exceeded` once a key's daily or monthly tokens are spent,
//!      `x-quota-*` headers on every answer (in-memory counters, never the database);
//!    - rate and concurrency limits: the key's own rate, then the global rate, then the key's
//!      concurrency cap; 429 with `Retry-After`.
//!
//! Then the handler. There is no compression layer: it would buffer `text/event-stream`.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, Method, Uri, header};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::request_id::PropagateRequestIdLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::error::{GatewayError, Surface};
use crate::gate::{self, path};
use crate::http::audit;
use crate::state::AppState;

/// The service the server runs: the router inside the full stack.
pub type GatewayService = BoxCloneSyncService<Request, Response, Infallible>;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Build the router with every layer, ready to serve.
pub fn build(state: AppState) -> GatewayService {
    let inner: Router = crate::routes::router()
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(on_panic))
                .option_layer(cors(&state.config.cors_origins))
                .layer(from_fn_with_state(state.clone(), audit::audit))
                // Our own limit (next layer) replaces axum's 2 MiB default for extractors.
                .layer(DefaultBodyLimit::disable())
                .layer(from_fn_with_state(state.clone(), gate::admit)),
        )
        .with_state(state);
    let service = ServiceBuilder::new()
        .map_response(|res: http::Response<_>| res.map(Body::new))
        .layer(tower::util::MapRequestLayer::new(normalize_path))
        .layer(tower::util::MapRequestLayer::new(request_id))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
        ]))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!("request", request_id = id, method = %req.method(), path = %req.uri().path())
            }),
        )
        .service(reject_bad_paths(inner));
    BoxCloneSyncService::new(service)
}

/// Longest request id accepted from a client.
const MAX_REQUEST_ID: usize = 128;

/// Whether a client's request id can be used as it is: short, and only characters that cannot
/// break a log line or pose as another field.
fn acceptable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Keep the client's `x-request-id` when it is acceptable (and the only one), else set a new
/// UUID; a refused id goes into the request as [`audit::ClientRequestId`] for the audit line.
fn request_id(mut req: Request) -> Request {
    let mut ids = req.headers().get_all(&REQUEST_ID).iter();
    match (ids.next(), ids.next()) {
        (Some(id), None) if acceptable_request_id(id) => return req,
        (None, _) => {}
        (Some(refused), _) => {
            let original = String::from_utf8_lossy(refused.as_bytes())
                .chars()
                .take(2 * MAX_REQUEST_ID)
                .collect();
            req.extensions_mut()
                .insert(audit::ClientRequestId(original));
        }
    }
    let mut buffer = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    if let Ok(value) = HeaderValue::from_str(id) {
        req.headers_mut().insert(REQUEST_ID, value);
    }
    req
}

/// Marks a request whose path could not be normalised.
#[derive(Clone, Copy, Debug)]
struct BadPath;

/// Rewrite the URI to its normalised path (the query is kept).
fn normalize_path(mut req: Request) -> Request {
    let uri = req.uri();
    if path::is_canonical(uri.path()) {
        return req;
    }
    match path::normalize(uri.path()) {
        Some(normalized) if normalized == uri.path() => {}
        Some(normalized) => {
            let rebuilt = match uri.query() {
                Some(query) => format!("{normalized}?{query}"),
                None => normalized,
            };
            match rebuilt.parse::<Uri>() {
                Ok(new_uri) => *req.uri_mut() = new_uri,
                Err(_) => {
                    req.extensions_mut().insert(BadPath);
                }
            }
        }
        None => {
            req.extensions_mut().insert(BadPath);
        }
    }
    req
}

/// Answer 400 for paths that could not be normalised, before routing.
fn reject_bad_paths(
    inner: Router,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send>
+ Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(move |req: Request| {
        let inner = inner.clone();
        async move {
            if req.extensions().get::<BadPath>().is_some() {
                let surface = Surface::for_path(req.uri().path());
                return Ok(GatewayError::InvalidRequest {
                    message: "the request path is not acceptable".into(),
                    param: None,
                }
                .render(surface));
            }
            inner.oneshot(req).await
        }
    })
}

async fn not_found(req: Request) -> Response {
    let path = req.uri().path().to_owned();
    GatewayError::RouteNotFound(format!("{} {path}", req.method())).render(Surface::for_path(&path))
}

async fn method_not_allowed(req: Request) -> Response {
    let path = req.uri().path().to_owned();
    GatewayError::MethodNotAllowed(format!("{} {path}", req.method()))
        .render(Surface::for_path(&path))
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    tracing::error!("a handler panicked");
    GatewayError::Internal
        .render(Surface::OpenAi)
        .into_response()
}

/// CORS for browser clients: the configured origins, any requested header (the OpenAI SDKs send
/// `x-stainless-*` headers), and the headers a client may want to read. No layer at all when no
/// origin is configured.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins)
    };
    let layer = CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            REQUEST_ID,
            header::RETRY_AFTER,
            HeaderName::from_static("x-ratelimit-limit-requests"),
            HeaderName::from_static("x-ratelimit-remaining-requests"),
            HeaderName::from_static("x-ratelimit-reset-requests"),
            HeaderName::from_static("x-quota-daily-limit"),
            HeaderName::from_static("x-quota-daily-remaining"),
            HeaderName::from_static("x-quota-daily-reset"),
            HeaderName::from_static("x-quota-monthly-limit"),
            HeaderName::from_static("x-quota-monthly-remaining"),
            HeaderName::from_static("x-quota-monthly-reset"),
        ])
        .max_age(Duration::from_secs(3600));
    Some(layer)
}
