//! Liveness, readiness and metrics.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{GatewayError, OllamaError};
use crate::state::AppState;
use crate::upstream::Forwarded;

/// How long readiness waits for the upstream.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Health and readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (alive), `ready` or `unavailable`.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Whether Ollama answered just now.
    pub upstream_reachable: bool,
    /// Ollama's version, when it answered.
    #[schema(example = "0.12.3")]
    pub upstream_version: Option<String>,
}

async fn probe(state: &AppState) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Version {
        version: String,
    }
    let no_headers = Forwarded::default();
    let call = state
        .upstream
        .get_json::<Version>("/api/version", &no_headers);
    match tokio::time::timeout(PROBE_TIMEOUT, call).await {
        Ok(Ok(v)) => Some(v.version),
        _ => None,
    }
}

/// Liveness: the gateway answers (always 200) and says whether Ollama does. No key needed.
#[utoipa::path(
    get, path = "/health", tag = "Operations",
    responses((status = 200, description = "The gateway is alive", body = Health))
)]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    let version = probe(&state).await;
    Json(Health {
        status: "ok",
        upstream_reachable: version.is_some(),
        upstream_version: version,
    })
}

/// Readiness: 200 when Ollama answers, 503 otherwise. No key needed.
#[utoipa::path(
    get, path = "/ready", tag = "Operations",
    responses(
        (status = 200, description = "Ollama answers", body = Health),
        (status = 503, description = "Ollama does not answer", body = Health),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Response {
    let version = probe(&state).await;
    let status = if version.is_some() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status: if version.is_some() {
            "ready"
        } else {
            "unavailable"
        },
        upstream_reachable: version.is_some(),
        upstream_version: version,
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
