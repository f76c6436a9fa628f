//! Native `/api/*` passthrough for Ollama clients.
//!
//! Only Ollama's known endpoints are routed (an unknown `/api/...` path is a 404 here, never
//! forwarded). Request and response bodies are streamed. Endpoints that name a model are
//! checked against the allowlist first; listings are filtered; the administrative endpoints
//! (pull, push, delete, copy, create, blobs) are refused unless enabled, and then only for
//! keys marked admin.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::{HeaderValue, header};
use serde_json::Value;

use crate::error::{GatewayError, OllamaError, OllamaErrorBody};
use crate::gate::keys::Caller;
use crate::http::audit::Audit;
use crate::http::extract::read_body;
use crate::http::stream::PassthroughBody;
use crate::ollama::schemas::{EmbedBody, GenerateBody, LegacyEmbeddingsBody, ShowBody};
use crate::ollama::types::{ChatRequest, TagsResponse};
use crate::state::AppState;
use crate::upstream::{Forwarded, forwarded_headers};

type NativeResult = Result<Response, OllamaError>;

macro_rules! model_route {
    ($name:ident, $path:literal, $summary:literal, $body:ty) => {
        #[doc = $summary]
        #[utoipa::path(
            post, path = $path, tag = "Ollama native", operation_id = concat!("native_", stringify!($name)),
            request_body(content = $body, description = "Ollama's native request, forwarded as sent"),
            responses(
                (status = 200, description = "Ollama's native answer; `application/x-ndjson` lines when streaming (Ollama streams unless `stream` is false)",
                    content((Object = "application/json"), (Object = "application/x-ndjson"))),
                (status = 400, description = "Invalid request", body = OllamaErrorBody),
                (status = 401, description = "Missing or invalid API key", body = OllamaErrorBody),
                (status = 403, description = "Model not allowed for this key", body = OllamaErrorBody),
                (status = 404, description = "Model not found", body = OllamaErrorBody),
                (status = 429, description = "Rate limited", body = OllamaErrorBody),
                (status = 502, description = "Model server unreachable", body = OllamaErrorBody),
            ),
            security(("bearer" = []))
        )]
        pub async fn $name(
            State(state): State<AppState>,
            Extension(caller): Extension<Arc<Caller>>,
            Extension(audit): Extension<Audit>,
            req: Request,
        ) -> NativeResult {
            forward_with_model(state, caller, audit, req).await
        }
    };
}

model_route!(chat, "/api/chat", "Chat (native).", ChatRequest);
model_route!(
    generate,
    "/api/generate",
    "Generate a completion (native).",
    GenerateBody
);
model_route!(
    embed,
    "/api/embed",
    "Generate embeddings (native).",
    EmbedBody
);
model_route!(
    embeddings,
    "/api/embeddings",
    "Generate an embedding (legacy native endpoint).",
    LegacyEmbeddingsBody
);
model_route!(
    show,
    "/api/show",
    "Show a model's details (native).",
    ShowBody
);

/// List installed models (filtered by the allowlist).
#[utoipa::path(
    get, path = "/api/tags", tag = "Ollama native", operation_id = "native_tags",
    responses(
        (status = 200, description = "Installed models this key may use", body = TagsResponse),
        (status = 401, description = "Missing or invalid API key", body = OllamaErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn tags(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    req: Request,
) -> NativeResult {
    filtered_listing(state, caller, req).await
}

/// List loaded models (filtered by the allowlist).
#[utoipa::path(
    get, path = "/api/ps", tag = "Ollama native", operation_id = "native_ps",
    responses(
        (status = 200, description = "Loaded models this key may use", body = TagsResponse),
        (status = 401, description = "Missing or invalid API key", body = OllamaErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn ps(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    req: Request,
) -> NativeResult {
    filtered_listing(state, caller, req).await
}

/// Ollama's version.
#[utoipa::path(
    get, path = "/api/version", tag = "Ollama native", operation_id = "native_version",
    responses(
        (status = 200, description = "`{\"version\": \"...\"}`", body = Object),
        (status = 401, description = "Missing or invalid API key", body = OllamaErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn version(State(state): State<AppState>, req: Request) -> NativeResult {
    forward(&state, head_as_get(req), None, None).await
}

/// Ollama answers HEAD on some listings only; ask with GET (axum drops the body for HEAD).
fn head_as_get(mut req: Request) -> Request {
    if req.method() == http::Method::HEAD {
        *req.method_mut() = http::Method::GET;
    }
    req
}

macro_rules! admin_route {
    ($name:ident, $method:ident, $path:literal, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path(
            $method, path = $path, tag = "Ollama administrative", operation_id = concat!("native_", stringify!($name)),
            description = "Refused with 403 unless the gateway runs with `GATEWAY_ALLOW_ADMIN=true`, and then only for keys marked `admin`.",
            request_body(content = Object, description = "Ollama's native request"),
            responses(
                (status = 200, description = "Ollama's native answer", body = Object),
                (status = 401, description = "Missing or invalid API key", body = OllamaErrorBody),
                (status = 403, description = "Administrative endpoints are disabled, or this key is not an admin key", body = OllamaErrorBody),
            ),
            security(("bearer" = []))
        )]
        pub async fn $name(
            State(state): State<AppState>,
            Extension(caller): Extension<Arc<Caller>>,
            req: Request,
        ) -> NativeResult {
            forward_admin(state, caller, req).await
        }
    };
}

admin_route!(pull, post, "/api/pull", "Pull a model (administrative).");
admin_route!(push, post, "/api/push", "Push a model (administrative).");
admin_route!(
    create,
    post,
    "/api/create",
    "Create a model (administrative)."
);
admin_route!(copy, post, "/api/copy", "Copy a model (administrative).");
admin_route!(
    delete,
    delete,
    "/api/delete",
    "Delete a model (administrative)."
);

/// Upload a blob (administrative).
#[utoipa::path(
    post, path = "/api/blobs/{digest}", tag = "Ollama administrative", operation_id = "native_blob_upload",
    description = "Refused with 403 unless the gateway runs with `GATEWAY_ALLOW_ADMIN=true`, and then only for keys marked `admin`.",
    params(("digest" = String, Path, description = "`sha256:<hex>` of the blob")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The blob's bytes"),
    responses(
        (status = 201, description = "Stored"),
        (status = 400, description = "Malformed path or digest", body = OllamaErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OllamaErrorBody),
        (status = 403, description = "Administrative endpoints are disabled, or this key is not an admin key", body = OllamaErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn blob_upload(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    req: Request,
) -> NativeResult {
    forward_admin(state, caller, req).await
}

/// Check that a blob exists (administrative).
#[utoipa::path(
    head, path = "/api/blobs/{digest}", tag = "Ollama administrative", operation_id = "native_blob_exists",
    description = "Refused with 403 unless the gateway runs with `GATEWAY_ALLOW_ADMIN=true`, and then only for keys marked `admin`.",
    params(("digest" = String, Path, description = "`sha256:<hex>` of the blob")),
    responses(
        (status = 200, description = "The blob exists"),
        (status = 400, description = "Malformed path"),
        (status = 401, description = "Missing or invalid API key"),
        (status = 403, description = "Administrative endpoints are disabled, or this key is not an admin key"),
        (status = 404, description = "No such blob"),
    ),
    security(("bearer" = []))
)]
pub async fn blob_exists(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    req: Request,
) -> NativeResult {
    forward_admin(state, caller, req).await
}

async fn forward_admin(state: AppState, caller: Arc<Caller>, req: Request) -> NativeResult {
    if !state.gate.allow_admin {
        return Err(GatewayError::Forbidden(
            "administrative endpoints are disabled on this gateway (GATEWAY_ALLOW_ADMIN)".into(),
        )
        .into());
    }
    if !caller.admin {
        return Err(GatewayError::Forbidden(
            "this API key may not use administrative endpoints".into(),
        )
        .into());
    }
    let (parts, body) = req.into_parts();
    let body = reqwest::Body::wrap_stream(body.into_data_stream());
    forward(
        &state,
        Request::from_parts(parts, Body::empty()),
        Some(body),
        None,
    )
    .await
}

/// Read the body, check its `model` against the allowlist, forward it unchanged.
async fn forward_with_model(
    state: AppState,
    caller: Arc<Caller>,
    audit: Audit,
    req: Request,
) -> NativeResult {
    let (parts, body) = req.into_parts();
    let bytes = read_body(Request::from_parts(parts.clone(), body), &()).await?;
    let model = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(fields)) => state.gate.check_body_models(&caller, &fields)?,
        _ => None,
    };
    match &model {
        Some(model) => audit.set_model(model),
        // Without a readable model nothing can be checked: refuse when anything is restricted,
        // otherwise let Ollama answer (it says "model is required" in its own words).
        None if state.gate.restricts_models(&caller) => {
            return Err(GatewayError::invalid(
                "model",
                "model: a JSON body with a model is required",
            )
            .into());
        }
        None => {}
    }
    forward(
        &state,
        Request::from_parts(parts, Body::empty()),
        Some(bytes.into()),
        Some(audit),
    )
    .await
}

/// `/api/tags` and `/api/ps`: filtered when the caller is restricted, passed through otherwise.
async fn filtered_listing(state: AppState, caller: Arc<Caller>, req: Request) -> NativeResult {
    if !state.gate.restricts_models(&caller) {
        return forward(&state, head_as_get(req), None, None).await;
    }
    let path = req.uri().path().to_owned();
    let mut listing: TagsResponse = state
        .upstream
        .get_json(&path, &Forwarded::from(req.headers()))
        .await?;
    listing
        .models
        .retain(|m| state.gate.model_visible(&caller, m.id()));
    Ok(Json(listing).into_response())
}

/// Forward `req` (with `body`) and stream the answer back with Ollama's status and type. The
/// audit record (if any) gets the upstream time when the answer's last byte has arrived.
async fn forward(
    state: &AppState,
    req: Request,
    body: Option<reqwest::Body>,
    audit: Option<Audit>,
) -> NativeResult {
    let started = Instant::now();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned());
    let mut request = state
        .upstream
        .request(req.method().clone(), &path_and_query)
        .headers(forwarded_headers(req.headers()));
    if let Some(body) = body {
        // A passthrough keeps the client's content type (the gateway's own bodies are JSON).
        if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        request = request.body(body);
    }
    let upstream = state.upstream.send_raw(request).await?;
    let status = upstream.status();
    let content_type = upstream.headers().get(header::CONTENT_TYPE).cloned();
    let ndjson = content_type
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("ndjson"));
    let chunks = state.upstream.chunks(upstream, &state.shutdown);
    let body = PassthroughBody::new(chunks, ndjson, audit, started);
    let mut response = Response::new(Body::new(body));
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    } else if status.is_success() {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    Ok(response)
}
