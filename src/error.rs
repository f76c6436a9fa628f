//! One error type for the whole gateway, and the three shapes it renders into.
//!
//! Every failure a client can see is a [`GatewayError`]. Where it is rendered decides the shape:
//! the OpenAI surface (`/v1/*`) answers `{"error":{"message","type","param","code"}}`, the
//! Anthropic surface (`/v1/messages*`) answers `{"type":"error","error":{"type","message"}}`,
//! the Ollama-shaped surfaces (`/chat`, `/models`, `/api/*`) answer Ollama's `{"error":"..."}`.
//! Upstream URLs, hosts and transport details are logged where they happen and never end up in
//! a message: the variants that describe upstream trouble carry no such text.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The rate-limit scope of an address refused for too many failed authentications.
pub const AUTH_FAILURES_SCOPE: &str = "too many failed authentications from this address";

/// Everything that can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The request is malformed or a value is out of range. `param` names the field.
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<String>,
    },
    /// The body is larger than the configured limit.
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The client did not send its body within `GATEWAY_BODY_TIMEOUT` (or fell below the
    /// minimum rate after it).
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// No key, or a key the gateway does not know.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The key may not use this model.
    #[error("model '{0}' is not allowed for this API key")]
    ModelNotAllowed(String),
    /// The route exists but is refused for this key (administrative endpoints).
    #[error("{0}")]
    Forbidden(String),
    /// The client's address is not allowed (`GATEWAY_ALLOW_IPS` / `GATEWAY_DENY_IPS`).
    #[error("requests from this address are not allowed")]
    AddressNotAllowed,
    /// A rate limit or concurrency cap was hit.
    #[error("rate limit exceeded ({scope}); retry after {} s", retry_after.as_secs().max(1))]
    RateLimited {
        scope: &'static str,
        retry_after: Duration,
        limit: u32,
    },
    /// A token quota is spent until the period starts again.
    #[error("{period} token quota of {limit} tokens is used up; retry after {} s", retry_after.as_secs().max(1))]
    QuotaExceeded {
        period: &'static str,
        limit: u64,
        retry_after: Duration,
    },
    /// A shared limit applies, but Redis (`GATEWAY_REDIS_URL`) is unreachable and
    /// `GATEWAY_REDIS_FAILURE=closed`: the request is refused rather than let through unlimited.
    #[error("the shared rate limits are unavailable just now; try again shortly")]
    LimitsUnavailable,
    /// An admin change names something that exists already (or may not be changed).
    #[error("{0}")]
    Conflict(String),
    /// An admin request names a key or user that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// No stored response with this id for this caller (unknown, expired, deleted, not
    /// stored, or another key's); `previous` when a `previous_response_id` named it.
    #[error("{}", if *previous { format!("Previous response with id '{id}' not found.") } else { format!("Response with id '{id}' not found.") })]
    ResponseNotFound { id: String, previous: bool },
    /// The database cannot be used just now (admin API; the request path never needs it).
    #[error("the database is unavailable; try again shortly")]
    StoreUnavailable,
    /// No such route.
    #[error("no route for {0}")]
    RouteNotFound(String),
    /// The route exists, but not for this method.
    #[error("method not allowed for {0}")]
    MethodNotAllowed(String),
    /// Ollama does not know the model.
    #[error("{message}")]
    ModelNotFound { message: String },
    /// Ollama answered with an error status; its message is passed on.
    #[error("{message}")]
    Upstream { status: StatusCode, message: String },
    /// Ollama could not be reached at all.
    #[error("the model server is unreachable")]
    UpstreamUnavailable,
    /// Ollama did not answer (or stopped sending) within the upstream timeout.
    #[error("the model server did not answer within {} s", .0.as_secs())]
    UpstreamTimeout(Duration),
    /// Ollama's stream broke off (connection lost, or EOF before the `done` line).
    #[error("the model server ended the stream before it was complete")]
    UpstreamInterrupted,
    /// Ollama sent something that is not in its own wire format.
    #[error("the model server sent a malformed response")]
    UpstreamProtocol,
    /// The gateway is shutting down and ended this stream.
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// A bug or an unexpected failure inside the gateway.
    #[error("internal gateway error")]
    Internal,
    /// Every backend that has the model was at its `max_concurrent` for the whole queue
    /// timeout (or the queue was full).
    #[error("every model server for this model is busy (waited {} s for a free slot); retry after {} s", waited.as_secs(), retry_after.as_secs().max(1))]
    BackendsBusy {
        waited: Duration,
        retry_after: Duration,
    },
}

impl GatewayError {
    /// A 400 naming the offending field.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::ModelNotAllowed(_) | Self::Forbidden(_) | Self::AddressNotAllowed => {
                StatusCode::FORBIDDEN
            }
            Self::RateLimited { .. } | Self::QuotaExceeded { .. } | Self::BackendsBusy { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RouteNotFound(_)
            | Self::ModelNotFound { .. }
            | Self::NotFound(_)
            | Self::ResponseNotFound { .. } => StatusCode::NOT_FOUND,
            Self::StoreUnavailable | Self::LimitsUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Upstream { status, .. } => *status,
            Self::UpstreamUnavailable | Self::UpstreamProtocol | Self::UpstreamInterrupted => {
                StatusCode::BAD_GATEWAY
            }
            Self::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI's `error.type`.
    pub fn openai_type(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. }
            | Self::BodyTooLarge { .. }
            | Self::BodyTimeout
            | Self::ModelNotFound { .. }
            | Self::RouteNotFound(_)
            | Self::NotFound(_)
            | Self::ResponseNotFound { .. }
            | Self::Conflict(_)
            | Self::MethodNotAllowed(_) => "invalid_request_error",
            Self::Unauthorized(_) => "authentication_error",
            Self::ModelNotAllowed(_) | Self::Forbidden(_) | Self::AddressNotAllowed => {
                "permission_error"
            }
            Self::RateLimited { .. } | Self::BackendsBusy { .. } => "rate_limit_error",
            Self::QuotaExceeded { .. } => "insufficient_quota",
            Self::Upstream { status, .. } if status.is_client_error() => "invalid_request_error",
            _ => "api_error",
        }
    }

    /// OpenAI's `error.code`: a stable machine-readable reason where there is one.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest { .. } => Some("invalid_value"),
            Self::BodyTooLarge { .. } => Some("request_too_large"),
            Self::BodyTimeout => Some("request_timeout"),
            Self::Unauthorized(_) => Some("invalid_api_key"),
            Self::ModelNotAllowed(_) => Some("model_not_allowed"),
            Self::Forbidden(_) => Some("forbidden"),
            Self::AddressNotAllowed => Some("address_not_allowed"),
            Self::RateLimited { .. } => Some("rate_limit_exceeded"),
            Self::QuotaExceeded { .. } => Some("quota_exceeded"),
            Self::Conflict(_) => Some("conflict"),
            Self::NotFound(_) => Some("not_found"),
            Self::ResponseNotFound { previous: true, .. } => Some("previous_response_not_found"),
            Self::ResponseNotFound {
                previous: false, ..
            } => Some("response_not_found"),
            Self::StoreUnavailable => Some("store_unavailable"),
            Self::LimitsUnavailable => Some("limits_unavailable"),
            Self::RouteNotFound(_) => Some("unknown_url"),
            Self::MethodNotAllowed(_) => Some("method_not_allowed"),
            Self::ModelNotFound { .. } => Some("model_not_found"),
            Self::Upstream { .. } => Some("upstream_error"),
            Self::UpstreamUnavailable => Some("upstream_unavailable"),
            Self::UpstreamTimeout(_) => Some("upstream_timeout"),
            Self::UpstreamProtocol => Some("upstream_protocol_error"),
            Self::UpstreamInterrupted => Some("upstream_interrupted"),
            Self::ShuttingDown => Some("shutting_down"),
            Self::Internal => Some("internal_error"),
            Self::BackendsBusy { .. } => Some("backends_busy"),
        }
    }

    /// Why a request was refused, for the audit log and `gateway_refused_total`: the code, made
    /// finer for rate limits so global, per-key and concurrency refusals can be told apart.
    fn refusal_reason(&self) -> Option<&'static str> {
        match self {
            Self::RateLimited { scope, .. } => Some(match *scope {
                "global" => "rate_limited_global",
                "per key" => "rate_limited_key",
                AUTH_FAILURES_SCOPE => "auth_failures_limited",
                _ => "concurrency_limited",
            }),
            other => other.code(),
        }
    }

    fn param(&self) -> Option<String> {
        match self {
            Self::InvalidRequest { param, .. } => param.clone(),
            Self::ModelNotAllowed(_) | Self::ModelNotFound { .. } => Some("model".into()),
            Self::ResponseNotFound { previous: true, .. } => Some("previous_response_id".into()),
            _ => None,
        }
    }

    /// The OpenAI error body, also used for SSE `error` events.
    pub fn openai_body(&self) -> OpenAiErrorBody {
        OpenAiErrorBody {
            error: OpenAiErrorDetail {
                message: self.to_string(),
                r#type: self.openai_type().to_owned(),
                param: self.param(),
                code: self.code().map(str::to_owned),
            },
        }
    }

    /// Anthropic's `error.type`, by status as Anthropic documents them.
    pub fn anthropic_type(&self) -> &'static str {
        match self.status().as_u16() {
            400 | 405 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 => "overloaded_error",
            504 => "timeout_error",
            _ => "api_error",
        }
    }

    /// Anthropic's error body, also used for the `error` event of a failed stream.
    pub fn anthropic_body(&self) -> AnthropicErrorBody {
        AnthropicErrorBody {
            r#type: "error",
            error: AnthropicErrorDetail {
                r#type: self.anthropic_type().to_owned(),
                message: self.to_string(),
            },
        }
    }

    /// Ollama's error body, also used for the final NDJSON line of a failed stream.
    pub fn ollama_body(&self) -> OllamaErrorBody {
        OllamaErrorBody {
            error: self.to_string(),
        }
    }

    /// Headers every rendering carries (auth challenge, rate-limit hints).
    fn decorate(&self, response: &mut Response) {
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::LimitsUnavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1u32));
            }
            Self::QuotaExceeded { retry_after, .. } | Self::BackendsBusy { retry_after, .. } => {
                let secs = retry_after.as_secs().max(1);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            // The rest of the body may never come: the connection is not reused.
            Self::BodyTimeout => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Self::RateLimited {
                retry_after, limit, ..
            } => {
                let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
                headers.insert("x-ratelimit-limit-requests", HeaderValue::from(*limit));
                headers.insert("x-ratelimit-remaining-requests", HeaderValue::from(0u32));
                headers.insert(
                    "x-ratelimit-reset-requests",
                    HeaderValue::from_str(&format!("{secs}s"))
                        .unwrap_or(HeaderValue::from_static("1s")),
                );
            }
            _ => {}
        }
    }

    /// Render in the shape of `surface`.
    pub fn render(self, surface: Surface) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, status = status.as_u16(), "request failed");
        }
        let mut response = match surface {
            Surface::OpenAi => (status, Json(self.openai_body())).into_response(),
            Surface::Anthropic => (status, Json(self.anthropic_body())).into_response(),
            // With the content type Ollama's own errors carry (Go's gin), so an Ollama client
            // sees the same header from us as from Ollama.
            Surface::Ollama => (
                status,
                [(header::CONTENT_TYPE, OLLAMA_JSON)],
                Json(self.ollama_body()),
            )
                .into_response(),
        };
        self.decorate(&mut response);
        response
            .extensions_mut()
            .insert(RefusalReason(self.refusal_reason()));
        response
    }
}

/// The content type of Ollama's JSON answers.
const OLLAMA_JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");
impl From<crate::store::StoreError> for GatewayError {
    fn from(err: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match err {
            StoreError::NotFound(message) => Self::NotFound(message),
            StoreError::Conflict(message) => Self::Conflict(message),
            StoreError::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "admin request: the database is unavailable");
                Self::StoreUnavailable
            }
            StoreError::Unsupported(_) => Self::Internal,
        }
    }
}

/// Which error shape a route speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// `/v1/*` and `/admin/*`: OpenAI's error object.
    OpenAi,
    /// `/v1/messages` and below: Anthropic's error object.
    Anthropic,
    /// Everything else: Ollama's `{"error": "..."}`.
    Ollama,
}

impl Surface {
    /// The surface a path belongs to, for errors raised before a handler runs.
    pub fn for_path(path: &str) -> Self {
        if path == "/v1/messages" || path.starts_with("/v1/messages/") {
            Self::Anthropic
        } else if path == "/v1" || path.starts_with("/v1/") || path.starts_with("/admin/") {
            Self::OpenAi
        } else {
            Self::Ollama
        }
    }
}

/// Attached to error responses so the audit log can name why a request was refused.
#[derive(Clone, Copy, Debug)]
pub struct RefusalReason(pub Option<&'static str>);

/// OpenAI's error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorBody {
    pub error: OpenAiErrorDetail,
}

/// The inside of OpenAI's error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorDetail {
    /// Human-readable description.
    #[schema(example = "messages: must not be empty")]
    pub message: String,
    /// Error class, e.g. `invalid_request_error`, `authentication_error`.
    #[schema(example = "invalid_request_error")]
    pub r#type: String,
    /// The request field at fault, if any.
    pub param: Option<String>,
    /// Stable machine-readable reason, e.g. `model_not_found`.
    pub code: Option<String>,
}

/// Anthropic's error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnthropicErrorBody {
    /// Always `error`.
    #[schema(value_type = String, example = "error")]
    pub r#type: &'static str,
    pub error: AnthropicErrorDetail,
}

/// The inside of Anthropic's error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnthropicErrorDetail {
    /// `invalid_request_error`, `authentication_error`, `permission_error`, `not_found_error`,
    /// `request_too_large`, `rate_limit_error`, `api_error`, `overloaded_error` or `timeout_error`.
    #[schema(example = "invalid_request_error")]
    pub r#type: String,
    /// Human-readable description; names the field at fault for a 400.
    #[schema(example = "max_tokens: field required")]
    pub message: String,
}

/// Ollama's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct OllamaErrorBody {
    #[schema(example = "model 'nope' not found")]
    pub error: String,
}

/// A [`GatewayError`] answered in OpenAI's shape (`/v1/*` handlers return this).
#[derive(Debug)]
pub struct OpenAiError(pub GatewayError);

/// A [`GatewayError`] answered in Ollama's shape (`/chat`, `/models`, `/api/*`).
#[derive(Debug)]
pub struct OllamaError(pub GatewayError);

/// A [`GatewayError`] answered in Anthropic's shape (`/v1/messages*` handlers return this).
#[derive(Debug)]
pub struct AnthropicError(pub GatewayError);

impl From<GatewayError> for AnthropicError {
    fn from(err: GatewayError) -> Self {
        Self(err)
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        self.0.render(Surface::Anthropic)
    }
}

impl From<GatewayError> for OpenAiError {
    fn from(err: GatewayError) -> Self {
        Self(err)
    }
}

impl From<GatewayError> for OllamaError {
    fn from(err: GatewayError) -> Self {
        Self(err)
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        self.0.render(Surface::OpenAi)
    }
}

impl IntoResponse for OllamaError {
    fn into_response(self) -> Response {
        self.0.render(Surface::Ollama)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_details_never_reach_the_message() {
        for err in [
            GatewayError::UpstreamUnavailable,
            GatewayError::UpstreamTimeout(Duration::from_secs(300)),
            GatewayError::UpstreamProtocol,
        ] {
            let message = err.to_string();
            assert!(!message.contains("127.0.0.1") && !message.contains("11434"));
            assert!(err.status().is_server_error());
        }
    }

    #[test]
    fn model_not_found_has_openai_code() {
        let body = GatewayError::ModelNotFound {
            message: "model 'x' not found".into(),
        }
        .openai_body();
        assert_eq!(body.error.code.as_deref(), Some("model_not_found"));
        assert_eq!(body.error.r#type, "invalid_request_error");
        assert_eq!(body.error.param.as_deref(), Some("model"));
    }

    #[test]
    fn surfaces_follow_the_path() {
        assert_eq!(Surface::for_path("/v1/models"), Surface::OpenAi);
        assert_eq!(Surface::for_path("/v10"), Surface::Ollama);
        assert_eq!(Surface::for_path("/api/chat"), Surface::Ollama);
        assert_eq!(Surface::for_path("/v1/messages"), Surface::Anthropic);
        assert_eq!(
            Surface::for_path("/v1/messages/count_tokens"),
            Surface::Anthropic
        );
        assert_eq!(Surface::for_path("/v1/messagesx"), Surface::OpenAi);
        assert_eq!(Surface::for_path("/v1/responses"), Surface::OpenAi);
    }

    #[test]
    fn limits_unavailable_is_a_503_with_retry_after_on_every_surface() {
        for surface in [Surface::OpenAi, Surface::Anthropic, Surface::Ollama] {
            let response = GatewayError::LimitsUnavailable.render(surface);
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(
                response.headers().get(header::RETRY_AFTER),
                Some(&HeaderValue::from(1u32))
            );
        }
        let err = GatewayError::LimitsUnavailable;
        assert_eq!(
            err.openai_body().error.code.as_deref(),
            Some("limits_unavailable")
        );
        assert_eq!(err.openai_type(), "api_error");
        assert_eq!(err.anthropic_type(), "overloaded_error");
        assert!(!err.to_string().to_lowercase().contains("redis"));
    }

    #[test]
    fn anthropic_errors_have_anthropic_types() {
        let body =
            GatewayError::invalid("max_tokens", "max_tokens: field required").anthropic_body();
        assert_eq!(body.r#type, "error");
        assert_eq!(body.error.r#type, "invalid_request_error");
        assert_eq!(
            GatewayError::Unauthorized("x").anthropic_type(),
            "authentication_error"
        );
        assert_eq!(
            GatewayError::UpstreamTimeout(Duration::from_secs(1)).anthropic_type(),
            "timeout_error"
        );
    }
}
