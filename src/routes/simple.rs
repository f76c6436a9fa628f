//! The simple, Ollama-shaped surface the common FastAPI proxy offered: `GET /models` and
//! `POST /chat` (Ollama's `/api/chat` request and response, NDJSON when streaming). Requests
//! are validated before they go upstream; errors use Ollama's `{"error": "..."}`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::Value;

use crate::backends::Target;
use crate::error::{GatewayError, OllamaError, OllamaErrorBody};
use crate::gate::keys::Caller;
use crate::http::audit::Audit;
use crate::http::extract::JsonBody;
use crate::http::stream::{LineBody, NDJSON};
use crate::ollama::types::{ChatRequest, ChatResponse, TagsResponse};
use crate::state::AppState;
use crate::upstream::Forwarded;

/// The upstream's model list, limited to what this key may use.
#[utoipa::path(
    get, path = "/models", tag = "Simple",
    responses(
        (status = 200, description = "Ollama's `/api/tags` answer, filtered by the allowlist", body = TagsResponse),
        (status = 401, description = "Missing or invalid API key", body = OllamaErrorBody),
        (status = 502, description = "Model server unreachable", body = OllamaErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn models(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    headers: Forwarded,
) -> Result<Json<TagsResponse>, OllamaError> {
    let mut tags: TagsResponse = state.backends.listing("/api/tags", &headers).await?;
    tags.models
        .retain(|m| state.gate.model_visible(&caller, m.id()));
    Ok(Json(tags))
}

/// Chat in Ollama's format. Streams NDJSON unless `stream` is false (Ollama's default is true).
#[utoipa::path(
    post, path = "/chat", tag = "Simple",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "Ollama's chat answer; with streaming, `application/x-ndjson` lines", body = ChatResponse,
            content((ChatResponse = "application/json"), (ChatResponse = "application/x-ndjson"))),
        (status = 400, description = "The body does not match its schema (refused by the gateway, naming the field; nothing goes upstream), or Ollama refused it, e.g. for a model that cannot do what the request asks (`think` on a model without thinking, tools on a model without tools, chat on an embedding model)", body = OllamaErrorBody),
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
pub async fn chat(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    Extension(audit): Extension<Audit>,
    headers: Forwarded,
    JsonBody(mut body): JsonBody<ChatRequest>,
) -> Result<Response, OllamaError> {
    validate_chat(&body)?;
    audit.set_model(&body.model);
    state.gate.check_model(&caller, &body.model)?;
    let stream = body.stream.unwrap_or(true);
    body.stream = Some(stream);
    let started = Instant::now();
    if !stream {
        let (answer, lease): (Value, _) = state
            .backends
            .call_json(
                Target::Model(&body.model),
                &audit,
                "/api/chat",
                &body,
                &headers,
            )
            .await?;
        if let Some(message) = answer.get("error").and_then(Value::as_str) {
            return Err(lease.failure(message).into());
        }
        audit.set_upstream_time(started.elapsed());
        if answer.get("done").and_then(Value::as_bool) != Some(true) {
            return Err(incomplete_answer().into());
        }
        audit.set_tokens(
            answer.get("prompt_eval_count").and_then(Value::as_u64),
            answer.get("eval_count").and_then(Value::as_u64),
        );
        audit.set_load_duration(answer.get("load_duration").and_then(Value::as_u64));
        return Ok(Json(answer).into_response());
    }
    let (upstream, lease) = state
        .backends
        .post_json(
            Target::Model(&body.model),
            &audit,
            "/api/chat",
            &body,
            &headers,
        )
        .await?;
    let lines = lease.native_lines::<ChatResponse>(upstream, &state.shutdown);
    // The lines go on as Ollama wrote them: this surface is Ollama's own format.
    Ok(
        LineBody::new(lines, &NDJSON, audit, started, |_, raw, out| {
            out.extend_from_slice(&raw);
            out.extend_from_slice(b"\n");
        })
        .into_response(),
    )
}

/// The fields of [`ChatRequest`], which `/chat` checks and forwards in its own spelling.
const CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "tools",
    "format",
    "options",
    "keep_alive",
    "think",
    "logprobs",
    "top_logprobs",
];

/// A non-streamed answer without `done: true`: Ollama stopped the run early (seen with real
/// Ollama 0.24 on long generations) and answered 200 with what it had. Passing that on would
/// report a partial answer as complete, so it is a 502 `upstream_interrupted`, like a cut
/// stream.
pub fn incomplete_answer() -> GatewayError {
    tracing::warn!("upstream answer ended without done: true");
    GatewayError::UpstreamInterrupted
}

/// What Ollama would refuse, refused before it goes upstream, with the field named.
fn validate_chat(body: &ChatRequest) -> Result<(), GatewayError> {
    if body.model.trim().is_empty() {
        return Err(GatewayError::invalid("model", "model: must not be empty"));
    }
    // Ollama's decoder matches keys without regard to case, with Unicode folding: `"MODEL"` or
    // `"meſſages"` (kept in `extra`, forwarded after the checked field) would replace it.
    crate::gate::fold::refuse_variants(body.extra.keys(), CHAT_FIELDS)?;
    if body.messages.is_empty() {
        return Err(GatewayError::invalid(
            "messages",
            "messages: must contain at least one message",
        ));
    }
    for (i, message) in body.messages.iter().enumerate() {
        if !matches!(
            message.role.as_str(),
            "system" | "user" | "assistant" | "tool"
        ) {
            return Err(GatewayError::invalid(
                format!("messages[{i}].role"),
                format!(
                    "messages[{i}].role: '{}' is not one of system, user, assistant, tool",
                    message.role
                ),
            ));
        }
        // Answers may carry arguments as the JSON text of an object (the parse takes it), but
        // Ollama refuses that text in a request: the document says an object.
        if let Some(j) = message
            .tool_calls
            .iter()
            .position(|call| call.function.arguments.is_string())
        {
            let field = format!("messages[{i}].tool_calls[{j}].function.arguments");
            return Err(GatewayError::invalid(
                field.clone(),
                format!("{field}: must be an object, not a string"),
            ));
        }
    }
    let ranges: [(&str, f64, f64); 5] = [
        ("temperature", 0.0, 2.0),
        ("top_p", 0.0, 1.0),
        ("min_p", 0.0, 1.0),
        ("presence_penalty", -2.0, 2.0),
        ("frequency_penalty", -2.0, 2.0),
    ];
    for (name, min, max) in ranges {
        if let Some(value) = body.options.get(name) {
            let ok = value.as_f64().is_some_and(|v| (min..=max).contains(&v));
            if !ok {
                return Err(GatewayError::invalid(
                    format!("options.{name}"),
                    format!("options.{name}: must be a number between {min} and {max}"),
                ));
            }
        }
    }
    for name in ["num_predict", "num_ctx", "top_k", "seed"] {
        if let Some(value) = body.options.get(name)
            && value.as_i64().is_none()
        {
            return Err(GatewayError::invalid(
                format!("options.{name}"),
                format!("options.{name}: must be an integer"),
            ));
        }
    }
    crate::openai::request::check_think(body.think.as_ref())?;
    if let Some(i) = body
        .tools
        .as_deref()
        .and_then(|tools| tools.iter().position(|t| !t.is_object()))
    {
        return Err(GatewayError::invalid(
            format!("tools[{i}]"),
            format!("tools[{i}]: must be a tool object"),
        ));
    }
    if let Some(format) = &body.format
        && !(format.is_object() || format == "json")
    {
        return Err(GatewayError::invalid(
            "format",
            "format: must be \"json\" or a JSON schema object",
        ));
    }
    crate::openai::request::check_keep_alive(body.keep_alive.as_ref())?;
    if let Some(n) = body.top_logprobs
        && n > 20
    {
        return Err(GatewayError::invalid(
            "top_logprobs",
            "top_logprobs: must be between 0 and 20",
        ));
    }
    Ok(())
}
