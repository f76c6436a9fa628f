//! Building responses the way Ollama's gin handlers write them.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Content type of every non-streamed JSON body (gin's `c.JSON`).
pub(crate) const JSON: &str = "application/json; charset=utf-8";
/// Content type of native streams.
pub(crate) const NDJSON: &str = "application/x-ndjson";
/// Content type of the OpenAI-style stream.
pub(crate) const SSE: &str = "text/event-stream";

/// A JSON body with gin's content type.
pub(crate) fn json(status: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    with_type(status, JSON, Body::from(body))
}

/// `200` with a JSON body.
pub(crate) fn ok(value: &Value) -> Response {
    json(StatusCode::OK, value)
}

/// Ollama's native error shape, `{"error":"<message>"}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    json(status, &json!({ "error": message.into() }))
}

/// A body with an explicit content type.
pub(crate) fn with_type(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The answers of the failures that name where the fake runs (`host` is the request's `Host`,
/// the address the client dialled): a Go dial error in Ollama's error shape, a proxy's HTML
/// 502 page, a redirect. `None` for any other failure.
pub(crate) fn address_failure(failure: crate::models::Failure, host: &str) -> Option<Response> {
    use crate::models::Failure;
    Some(match failure {
        Failure::LeakAddress => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "Post \"http://{host}/api/chat\": dial tcp {host}: connect: connection refused"
            ),
        ),
        Failure::HtmlPage => {
            let page = format!(
                "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><p>upstream http://{host}/ is not answering</p><hr>nginx at {host}</body></html>"
            );
            with_type(StatusCode::BAD_GATEWAY, "text/html", Body::from(page))
        }
        Failure::Redirect => {
            let mut response = empty(StatusCode::FOUND);
            if let Ok(location) = HeaderValue::from_str(&format!("http://{host}/elsewhere")) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        _ => return None,
    })
}

/// A status with no body (Ollama's `c.Status(...)`).
pub(crate) fn empty(status: StatusCode) -> Response {
    status.into_response()
}

/// The current time as Ollama writes `created_at`: RFC 3339 with nanoseconds, trailing
/// zeros trimmed (Go's `time.RFC3339Nano`).
pub(crate) fn now_rfc3339() -> String {
    rfc3339_nano(chrono::Utc::now())
}

/// `time` formatted like Go's `time.RFC3339Nano`.
pub(crate) fn rfc3339_nano(time: chrono::DateTime<chrono::Utc>) -> String {
    let full = time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    match full.strip_suffix('Z').and_then(|t| t.split_once('.')) {
        Some((seconds, fraction)) => {
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                format!("{seconds}Z")
            } else {
                format!("{seconds}.{fraction}Z")
            }
        }
        None => full,
    }
}

/// An error answered before any byte of a body: a status and Ollama's message. Native
/// routes render it as `{"error":"<message>"}`; the OpenAI-style route as an OpenAI error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl Rejection {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn model_required() -> Self {
        Self::bad_request("model is required")
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        error(self.status, self.message)
    }
}
