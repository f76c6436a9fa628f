//! Native `/api/*` passthrough for Ollama clients.
//!
//! Only Ollama's known endpoints are routed (an unknown `/api/...` path is a 404 here, never
//! forwarded). Answers are streamed; an error answer is rebuilt by the gateway (Ollama's
//! `{"error"}` shape, upstream addresses scrubbed). Every model a body names, in every field
//! Ollama reads a model name from on that endpoint (administrative ones included), is checked
//! against the allowlist first; listings are filtered; `/api/show` hides the upstream's file
//! paths from keys that are not admin keys; the administrative endpoints (pull, push, delete,
//! copy, create, blobs) are refused unless enabled, and then only for keys marked admin.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::request::Parts;
use http::{HeaderValue, header};
use serde_json::Value;

use crate::backends::Target;
use crate::error::{GatewayError, OllamaError, OllamaErrorBody};
use crate::gate::keys::Caller;
use crate::http::audit::Audit;
use crate::http::extract::read_body;
use crate::http::stream::PassthroughBody;
use crate::ollama::schemas::{ChatBody, EmbedBody, GenerateBody, LegacyEmbeddingsBody, ShowBody};
use crate::ollama::types::TagsResponse;
use crate::ollama::validate::BodySchema;
use crate::state::AppState;
use crate::upstream::{Forwarded, Upstream, forwarded_headers};

/// Administrative endpoints after which the backend's model listings are asked again.
const CHANGE_MODELS: &[&str] = &["/api/pull", "/api/create", "/api/copy", "/api/delete"];

/// The body a forwarded request carries, for each backend it is tried on.
enum Payload {
    Empty,
    /// Read whole (and sent again if a first backend could not be connected to).
    Bytes(bytes::Bytes),
    /// Streamed (blob uploads): sent once, to the one backend named.
    Once(Option<reqwest::Body>),
}

impl Payload {
    fn next(&mut self) -> Option<reqwest::Body> {
        match self {
            Self::Empty => None,
            Self::Bytes(bytes) => Some(bytes.clone().into()),
            Self::Once(body) => body.take(),
        }
    }
}

type NativeResult = Result<Response, OllamaError>;

/// Where an endpoint's body names models.
#[derive(Debug)]
struct ModelFields {
    /// The keys Ollama reads a model name from (from its Go request structs; `name` is the
    /// deprecated spelling of `model`). Each is checked against the allowlist.
    names: &'static [&'static str],
    /// Keys that name models in a way the gateway cannot check; refused in any spelling.
    unchecked: &'static [&'static str],
}

/// Inference, show, pull, push and delete.
const MODEL: ModelFields = ModelFields {
    names: &["model", "name"],
    unchecked: &[],
};
/// `/api/copy`: both ends are models.
const COPY: ModelFields = ModelFields {
    names: &["source", "destination"],
    unchecked: &[],
};
/// `/api/create`: the new model, and the model it is made from. Older Ollama versions also took
/// a Modelfile (its text, or a path to one on the server) whose `FROM` names the model.
const CREATE: ModelFields = ModelFields {
    names: &["model", "name", "from"],
    unchecked: &["modelfile", "path"],
};

/// How a route checks, sends and answers a JSON body.
struct Route {
    /// Where the body names models.
    models: &'static ModelFields,
    /// The body's schema in the document, checked before the body goes upstream (the
    /// administrative bodies are documented as any object, and have none).
    schema: Option<&'static BodySchema>,
    answer: Answer,
    /// An administrative endpoint: sent to the backend the request names.
    admin: bool,
}

macro_rules! model_route {
    ($name:ident, $path:literal, $summary:literal, $body:ty) => {
        model_route!($name, $path, $summary, $body, Answer::Passthrough);
    };
    ($name:ident, $path:literal, $summary:literal, $body:ty, $answer:expr) => {
        #[doc = $summary]
        #[utoipa::path(
            post, path = $path, tag = "Ollama native", operation_id = concat!("native_", stringify!($name)),
            request_body(content = $body, description = "Ollama's native request: checked against this schema (fields it does not name pass unchecked), then forwarded as sent"),
            responses(
                (status = 200, description = "Ollama's native answer; `application/x-ndjson` lines when streaming (Ollama streams unless `stream` is false)",
                    content((Object = "application/json"), (Object = "application/x-ndjson"))),
                (status = 400, description = "The body does not match its schema (refused by the gateway, naming the field; nothing goes upstream), or Ollama refused it, e.g. for a model that cannot do what the request asks (`think` on a model without thinking, tools on a model without tools, chat or generate on an embedding model)", body = OllamaErrorBody),
                (status = 401, description = "Missing or invalid API key", body = OllamaErrorBody),
                (status = 403, description = "Model not allowed for this key", body = OllamaErrorBody),
                (status = 404, description = "Model not found", body = OllamaErrorBody),
                (status = 408, description = "The body did not arrive within `GATEWAY_BODY_TIMEOUT`", body = OllamaErrorBody),
                (status = 413, description = "Body too large", body = OllamaErrorBody),
                (status = 429, description = "Rate limited, the key's token quota is used up (`quota_exceeded`), or every model server for the model stayed busy for the queue timeout (`backends_busy`)", body = OllamaErrorBody),
                (status = 500, description = "Ollama's own error, passed on (e.g. the model failed to load)", body = OllamaErrorBody),
                (status = 502, description = "Model server unreachable", body = OllamaErrorBody),
                (status = 503, description = "Ollama is overloaded (its request queue is full), passed on, or the gateway is shutting down", body = OllamaErrorBody),
                (status = 504, description = "Model server timed out", body = OllamaErrorBody),
            ),
            security(("bearer" = []))
        )]
        pub async fn $name(
            State(state): State<AppState>,
            Extension(caller): Extension<Arc<Caller>>,
            Extension(audit): Extension<Audit>,
            req: Request,
        ) -> NativeResult {
            static SCHEMA: LazyLock<BodySchema> = LazyLock::new(BodySchema::of::<$body>);
            let route = Route {
                models: &MODEL,
                schema: Some(&SCHEMA),
                answer: $answer,
                admin: false,
            };
            forward_with_model(state, caller, audit, req, &route).await
        }
    };
}

model_route!(chat, "/api/chat", "Chat (native).", ChatBody);
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
    "Show a model's details (native). For keys that are not admin keys, the upstream's file paths in `modelfile` and `details.parent_model` are replaced by the file name (the blob digest).",
    ShowBody,
    Answer::Show
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
    Extension(audit): Extension<Audit>,
    req: Request,
) -> NativeResult {
    filtered_listing(state, caller, audit, req).await
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
    Extension(audit): Extension<Audit>,
    req: Request,
) -> NativeResult {
    filtered_listing(state, caller, audit, req).await
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
pub async fn version(
    State(state): State<AppState>,
    Extension(audit): Extension<Audit>,
    req: Request,
) -> NativeResult {
    let (parts, _) = head_as_get(req).into_parts();
    forward(&state, &parts, Payload::Empty, &audit, None, Target::Any).await
}

/// What is done with a successful answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// Streamed on as Ollama sent it.
    Passthrough,
    /// `/api/show`: read, and its file paths hidden from keys that are not admin keys.
    Show,
}

/// Ollama answers HEAD on some listings only; ask with GET (axum drops the body for HEAD).
fn head_as_get(mut req: Request) -> Request {
    if req.method() == http::Method::HEAD {
        *req.method_mut() = http::Method::GET;
    }
    req
}

macro_rules! admin_route {
    ($name:ident, $method:ident, $path:literal, $summary:literal, $fields:expr) => {
        #[doc = $summary]
        #[utoipa::path(
            $method, path = $path, tag = "Ollama administrative", operation_id = concat!("native_", stringify!($name)),
            description = "Refused with 403 unless the gateway runs with `GATEWAY_ALLOW_ADMIN=true`, and then only for keys marked `admin`. Every model the body names (`model`, `name`, `source`, `destination`, `from`) must be allowed for the key.",
            request_body(content = Object, description = "Ollama's native request"),
            responses(
                (status = 200, description = "Ollama's native answer", body = Object),
                (status = 400, description = "Invalid request", body = OllamaErrorBody),
                (status = 401, description = "Missing or invalid API key", body = OllamaErrorBody),
                (status = 403, description = "Administrative endpoints are disabled, this key is not an admin key, or a model the body names is not allowed for it", body = OllamaErrorBody),
                (status = 404, description = "Model not found", body = OllamaErrorBody),
                (status = 408, description = "The body did not arrive within `GATEWAY_BODY_TIMEOUT`", body = OllamaErrorBody),
                (status = 413, description = "Body too large", body = OllamaErrorBody),
                (status = 429, description = "Rate limited, the key's token quota is used up (`quota_exceeded`), or every model server for the model stayed busy for the queue timeout (`backends_busy`)", body = OllamaErrorBody),
                (status = 500, description = "Ollama's own error, passed on (e.g. the model failed to load)", body = OllamaErrorBody),
                (status = 502, description = "Model server unreachable", body = OllamaErrorBody),
                (status = 503, description = "Ollama is overloaded (its request queue is full), passed on, or the gateway is shutting down", body = OllamaErrorBody),
                (status = 504, description = "Model server timed out", body = OllamaErrorBody),
            ),
            security(("bearer" = []))
        )]
        pub async fn $name(
            State(state): State<AppState>,
            Extension(caller): Extension<Arc<Caller>>,
            Extension(audit): Extension<Audit>,
            req: Request,
        ) -> NativeResult {
            admin_allowed(&state, &caller)?;
            let route = Route {
                models: &$fields,
                schema: None,
                answer: Answer::Passthrough,
                admin: true,
            };
            forward_with_model(state, caller, audit, req, &route).await
        }
    };
}

admin_route!(
    pull,
    post,
    "/api/pull",
    "Pull a model (administrative).",
    MODEL
);
admin_route!(
    push,
    post,
    "/api/push",
    "Push a model (administrative).",
    MODEL
);
admin_route!(
    create,
    post,
    "/api/create",
    "Create a model (administrative).",
    CREATE
);
admin_route!(
    copy,
    post,
    "/api/copy",
    "Copy a model (administrative).",
    COPY
);
admin_route!(
    delete,
    delete,
    "/api/delete",
    "Delete a model (administrative).",
    MODEL
);

/// Upload a blob (administrative).
#[utoipa::path(
    post, path = "/api/blobs/{digest}", tag = "Ollama administrative", operation_id = "native_blob_upload",
    description = "Refused with 403 unless the gateway runs with `GATEWAY_ALLOW_ADMIN=true`, and then only for keys marked `admin`.",
    params(("digest" = String, Path, description = "`sha256:<hex>` of the blob", pattern = r#"^[^\u0000-\u0020\u007F-\u009F\\?#<>"^`{|}]+$"#)),
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
    Extension(audit): Extension<Audit>,
    req: Request,
) -> NativeResult {
    forward_blob(state, caller, audit, req).await
}

/// Check that a blob exists (administrative).
#[utoipa::path(
    head, path = "/api/blobs/{digest}", tag = "Ollama administrative", operation_id = "native_blob_exists",
    description = "Refused with 403 unless the gateway runs with `GATEWAY_ALLOW_ADMIN=true`, and then only for keys marked `admin`.",
    params(("digest" = String, Path, description = "`sha256:<hex>` of the blob", pattern = r#"^[^\u0000-\u0020\u007F-\u009F\\?#<>"^`{|}]+$"#)),
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
    Extension(audit): Extension<Audit>,
    req: Request,
) -> NativeResult {
    forward_blob(state, caller, audit, req).await
}

/// Refuse the administrative endpoints unless enabled, and then to keys that are not admin keys.
fn admin_allowed(state: &AppState, caller: &Caller) -> Result<(), OllamaError> {
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
    Ok(())
}

/// Blob uploads: administrative, and streamed (they name no model).
async fn forward_blob(
    state: AppState,
    caller: Arc<Caller>,
    audit: Audit,
    req: Request,
) -> NativeResult {
    admin_allowed(&state, &caller)?;
    let (parts, body) = req.into_parts();
    let body = reqwest::Body::wrap_stream(body.into_data_stream());
    let target = Target::Named(&parts.headers);
    forward(
        &state,
        &parts,
        Payload::Once(Some(body)),
        &audit,
        None,
        target,
    )
    .await
}

/// Read the body, check every model it names (see [`ModelFields`]) against the allowlist and
/// the body against its documented schema, and forward it (as sent, unless the schema check
/// wrote an integral number such as `7.0` as the integer Ollama's Go decoder takes).
async fn forward_with_model(
    state: AppState,
    caller: Arc<Caller>,
    audit: Audit,
    req: Request,
    route: &Route,
) -> NativeResult {
    let (parts, body) = req.into_parts();
    let mut bytes = read_body(Request::from_parts(parts.clone(), body), &()).await?;
    // A body that is not a JSON object names no model to check and is never forwarded, for
    // any caller: Ollama would refuse it too, but only after it had taken a backend's slot.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::invalid("body", "missing request body").into());
    }
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(body)) => body,
        Ok(_) => {
            return Err(
                GatewayError::invalid("body", "the request body must be a JSON object").into(),
            );
        }
        Err(err) => {
            return Err(GatewayError::invalid(
                "body",
                format!("the request body is not valid JSON: {err}"),
            )
            .into());
        }
    };
    let fields = route.models;
    if let Some(key) = body.keys().find(|key| {
        fields
            .unchecked
            .iter()
            .any(|unchecked| crate::gate::fold::go_matches(key, unchecked))
    }) {
        return Err(GatewayError::invalid(
            key.clone(),
            format!(
                "{key}: not accepted by this gateway (the models a Modelfile names cannot be \
                 checked); use `from` and `files`"
            ),
        )
        .into());
    }
    let model = state.gate.check_body_models(&caller, &body, fields.names)?;
    if let Some(schema) = route.schema {
        let mut body = Value::Object(body);
        if schema.check(&mut body)? {
            bytes = serde_json::to_vec(&body)
                .map_err(|_| GatewayError::Internal)?
                .into();
        }
    }
    match &model {
        Some(model) => audit.set_model(model),
        // A JSON object without a model: nothing can be checked, so refuse when anything is
        // restricted; otherwise let Ollama answer (it says "model is required" in its own words).
        None if state.gate.restricts_models(&caller) => {
            let field = fields.names[0];
            return Err(GatewayError::invalid(
                field,
                format!("{field}: a JSON body with a model is required"),
            )
            .into());
        }
        None => {}
    }
    let answer = route.answer;
    let target = match &model {
        _ if route.admin => Target::Named(&parts.headers),
        Some(model) if answer == Answer::Show => Target::About(model),
        Some(model) => Target::Model(model),
        None => Target::Any,
    };
    if answer == Answer::Show && !caller.admin {
        return show_without_paths(&state, &parts, bytes, audit, target).await;
    }
    let measured = Some(audit.clone());
    forward(
        &state,
        &parts,
        Payload::Bytes(bytes),
        &audit,
        measured,
        target,
    )
    .await
}

/// `/api/show` for a key that is not an admin key: the answer read whole, the upstream's file
/// paths replaced by their file names.
async fn show_without_paths(
    state: &AppState,
    req: &Parts,
    body: bytes::Bytes,
    audit: Audit,
    target: Target<'_>,
) -> NativeResult {
    let started = Instant::now();
    let (upstream, lease) = state
        .backends
        .send(target, &audit, |backend| {
            upstream_request(backend, req).body(body.clone())
        })
        .await?;
    let mut show: Value = lease.read_json(upstream).await?;
    audit.set_upstream_time(started.elapsed());
    crate::ollama::paths::hide_show_paths(&mut show);
    Ok(Json(show).into_response())
}

/// `/api/tags` and `/api/ps`: filtered when the caller is restricted, passed through otherwise.
async fn filtered_listing(
    state: AppState,
    caller: Arc<Caller>,
    audit: Audit,
    req: Request,
) -> NativeResult {
    if !state.gate.restricts_models(&caller) && state.backends.all().len() == 1 {
        let (parts, _) = head_as_get(req).into_parts();
        return forward(&state, &parts, Payload::Empty, &audit, None, Target::Any).await;
    }
    let path = req.uri().path().to_owned();
    let mut listing: TagsResponse = state
        .backends
        .listing(&path, &Forwarded::from(req.headers()))
        .await?;
    listing
        .models
        .retain(|m| state.gate.model_visible(&caller, m.id()));
    Ok(Json(listing).into_response())
}

/// The upstream request for `req`: its method, path and query, and the forwarded headers (the
/// client's content type kept: a passthrough body is the client's own).
fn upstream_request(upstream: &Upstream, req: &Parts) -> reqwest::RequestBuilder {
    let path_and_query = req
        .uri
        .path_and_query()
        .map_or_else(|| req.uri.path(), |pq| pq.as_str());
    let mut request = upstream
        .request(req.method.clone(), path_and_query)
        .headers(forwarded_headers(&req.headers));
    if let Some(content_type) = req.headers.get(header::CONTENT_TYPE) {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    request
}

/// Forward `req` (with `body`) and stream a successful answer back with Ollama's status and
/// type; an error status is answered by the gateway (Ollama's status, its message scrubbed).
/// The audit record (if any) gets the upstream time when the answer's last byte has arrived.
async fn forward(
    state: &AppState,
    req: &Parts,
    mut body: Payload,
    audit: &Audit,
    measured: Option<Audit>,
    target: Target<'_>,
) -> NativeResult {
    let started = Instant::now();
    let (upstream, mut lease) = state
        .backends
        .send(target, audit, |backend| {
            let request = upstream_request(backend, req);
            match body.next() {
                Some(body) => request.body(body),
                None => request,
            }
        })
        .await?;
    if CHANGE_MODELS.contains(&req.uri.path()) {
        lease.relist_when_done();
    }
    let status = upstream.status();
    let content_type = upstream.headers().get(header::CONTENT_TYPE).cloned();
    let ndjson = content_type
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("ndjson"));
    let chunks = lease.chunks(upstream, &state.shutdown);
    let body = PassthroughBody::new(chunks, ndjson, measured, started);
    let mut response = Response::new(Body::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        content_type.unwrap_or(HeaderValue::from_static("application/json")),
    );
    Ok(response)
}
