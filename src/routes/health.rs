//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{GatewayError, OllamaError};
use crate::gate::auth;
use crate::state::AppState;
use crate::upstream::Reachability;

/// Health and readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (alive), `ready` or `unavailable`.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Whether Ollama answered (a probe at most about a second old).
    pub upstream_reachable: bool,
    /// Ollama's version, when it answered; only shown to callers that send a valid key.
    #[schema(example = "0.24.0")]
    pub upstream_version: Option<String>,
    /// With `GATEWAY_REDIS_URL`: `up` or `down` (the shared rate limits' Redis); absent
    /// without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "up")]
    pub redis: Option<&'static str>,
}

/// `up` or `down` when Redis holds the shared limits.
fn redis_state(state: &AppState) -> Option<&'static str> {
    state
        .gate
        .redis
        .as_ref()
        .map(|redis| if redis.is_up() { "up" } else { "down" })
}

/// The upstream's state, with its version only for a caller presenting a valid, unexpired key:
/// an anonymous caller learns whether the gateway can serve, not what runs behind it.
async fn upstream_state(state: &AppState, headers: &HeaderMap) -> (bool, Option<String>) {
    let found = state.backends.reachability().await;
    let known_caller = state
        .gate
        .keys
        .load()
        .lookup(auth::bearer(headers))
        .is_ok_and(|caller| !caller.has_expired());
    let reachable = found.is_up();
    let version = match found {
        Reachability::Up { version } if known_caller => Some(version),
        _ => None,
    };
    (reachable, version)
}

/// Liveness: the gateway answers (always 200) and says whether Ollama does. No key needed.
#[utoipa::path(
    get, path = "/health", tag = "Operations",
    responses((status = 200, description = "The gateway is alive", body = Health))
)]
pub async fn health(State(state): State<AppState>, headers: HeaderMap) -> Json<Health> {
    let (reachable, version) = upstream_state(&state, &headers).await;
    Json(Health {
        status: "ok",
        upstream_reachable: reachable,
        upstream_version: version,
        redis: redis_state(&state),
    })
}

/// Readiness: 200 when Ollama answers (and, with `GATEWAY_REDIS_URL` and
/// `GATEWAY_REDIS_FAILURE=closed`, Redis too), 503 otherwise. No key needed.
#[utoipa::path(
    get, path = "/ready", tag = "Operations",
    responses(
        (status = 200, description = "Ollama answers (and Redis, when limits need it)", body = Health),
        (status = 503, description = "Ollama does not answer, or Redis is down and GATEWAY_REDIS_FAILURE=closed", body = Health),
    )
)]
pub async fn ready(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (reachable, version) = upstream_state(&state, &headers).await;
    let redis = redis_state(&state);
    // Closed, a replica without Redis refuses every limited request: not ready to serve.
    let redis_blocks =
        redis == Some("down") && state.config.redis_failure == crate::config::RedisFailure::Closed;
    let (status, word) = if reachable && !redis_blocks {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    let body = Health {
        status: word,
        upstream_reachable: reachable,
        upstream_version: version,
        redis,
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics (needs a key unless `GATEWAY_METRICS_OPEN=true`).
#[utoipa::path(
    get, path = "/metrics", tag = "Operations",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or invalid API key"),
    ),
    security(("bearer" = []))
)]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, OllamaError> {
    let handle = state.metrics.as_ref().ok_or(GatewayError::Internal)?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response())
}
