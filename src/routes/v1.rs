//! The OpenAI-compatible surface: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
//! `/v1/models`, `/v1/models/{id}`. Requests are validated and translated to Ollama's native
//! API; answers are translated back. Errors use OpenAI's error object.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::BytesMut;
use serde_json::json;

use crate::backends::Target;
use crate::error::{OpenAiError, OpenAiErrorBody};
use crate::gate::keys::Caller;
use crate::http::audit::Audit;
use crate::http::extract::JsonBody;
use crate::http::stream::{LineBody, SSE, write_event};
use crate::ollama::types::{EmbedResponse, GenerateResponse, TagsResponse};
use crate::openai::stream::{ChatStream, CompletionStream};
use crate::openai::types::{
    ChatCompletion, ChatCompletionRequest, ChatCompletionSseEvent, Completion, CompletionRequest,
    CompletionSseEvent, EmbeddingList, EmbeddingRequest, EncodingFormat, Model, ModelList,
};
use crate::openai::{request, response};
use crate::state::AppState;
use crate::upstream::Forwarded;

type V1Result = Result<Response, OpenAiError>;

/// Create a chat completion (streamed as server-sent events when `stream` is true).
#[utoipa::path(
    post, path = "/v1/chat/completions", tag = "OpenAI",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "The completion; with `stream: true`, `text/event-stream` of `chat.completion.chunk` objects ending with `data: [DONE]`", body = ChatCompletion,
            content((ChatCompletion = "application/json"), (ChatCompletionSseEvent = "text/event-stream"))),
        (status = 400, description = "Invalid request: a value the schema does not allow, `tool_choice` naming a function not in `tools` (or `required` with no tools), tool call `arguments` that are not the JSON text of an object, or Ollama's refusal for the model (`think` or `reasoning_effort` for a model without thinking, tools for a model without tools, chat with an embedding model); `param` names the field", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 403, description = "Model not allowed for this key", body = OpenAiErrorBody),
        (status = 404, description = "Model not found", body = OpenAiErrorBody),
        (status = 408, description = "The body did not arrive within `GATEWAY_BODY_TIMEOUT`", body = OpenAiErrorBody),
        (status = 413, description = "Body too large", body = OpenAiErrorBody),
        (status = 429, description = "Rate limited, the key's token quota is used up (`quota_exceeded`), or every model server for the model stayed busy for the queue timeout (`backends_busy`)", body = OpenAiErrorBody),
        (status = 500, description = "Ollama's own error, passed on (e.g. the model failed to load)", body = OpenAiErrorBody),
        (status = 502, description = "Model server unreachable", body = OpenAiErrorBody),
        (status = 503, description = "Ollama is overloaded (its request queue is full), passed on, or the gateway is shutting down", body = OpenAiErrorBody),
        (status = 504, description = "Model server timed out", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    Extension(audit): Extension<Audit>,
    headers: Forwarded,
    JsonBody(body): JsonBody<ChatCompletionRequest>,
) -> V1Result {
    let (native, opts) = request::chat_request(body)?;
    audit.set_model(&native.model);
    state.gate.check_model(&caller, &native.model)?;
    let started = Instant::now();
    if !opts.stream {
        let answer = super::whole_chat(&state, &native, &headers, &audit).await?;
        return Ok(Json(response::chat_completion(answer)).into_response());
    }
    let (upstream, lease) = state
        .backends
        .post_json(
            Target::Model(&native.model),
            &audit,
            "/api/chat",
            &native,
            &headers,
        )
        .await?;
    let lines = lease.native_lines(upstream, &state.shutdown);
    let mut translator = ChatStream::new(opts.include_usage);
    Ok(
        LineBody::new(lines, &SSE, audit, started, move |line, _, out| {
            write_events(out, translator.line(line));
        })
        .into_response(),
    )
}

/// Create a text completion (legacy API), streamed when `stream` is true.
#[utoipa::path(
    post, path = "/v1/completions", tag = "OpenAI",
    request_body = CompletionRequest,
    responses(
        (status = 200, description = "The completion; with `stream: true`, `text/event-stream` of `text_completion` chunks ending with `data: [DONE]`", body = Completion,
            content((Completion = "application/json"), (CompletionSseEvent = "text/event-stream"))),
        (status = 400, description = "Invalid request: a value the schema does not allow, or Ollama's refusal for the model (generate with an embedding model, `think` for a model without thinking); `param` names the field", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 403, description = "Model not allowed for this key", body = OpenAiErrorBody),
        (status = 404, description = "Model not found", body = OpenAiErrorBody),
        (status = 408, description = "The body did not arrive within `GATEWAY_BODY_TIMEOUT`", body = OpenAiErrorBody),
        (status = 413, description = "Body too large", body = OpenAiErrorBody),
        (status = 429, description = "Rate limited, the key's token quota is used up (`quota_exceeded`), or every model server for the model stayed busy for the queue timeout (`backends_busy`)", body = OpenAiErrorBody),
        (status = 500, description = "Ollama's own error, passed on (e.g. the model failed to load)", body = OpenAiErrorBody),
        (status = 502, description = "Model server unreachable", body = OpenAiErrorBody),
        (status = 503, description = "Ollama is overloaded (its request queue is full), passed on, or the gateway is shutting down", body = OpenAiErrorBody),
        (status = 504, description = "Model server timed out", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn completions(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    Extension(audit): Extension<Audit>,
    headers: Forwarded,
    JsonBody(body): JsonBody<CompletionRequest>,
) -> V1Result {
    let (native, opts) = request::completion_request(body)?;
    audit.set_model(&native.model);
    state.gate.check_model(&caller, &native.model)?;
    let started = Instant::now();
    if !opts.stream {
        let (answer, lease): (GenerateResponse, _) = state
            .backends
            .call_json(
                Target::Model(&native.model),
                &audit,
                "/api/generate",
                &native,
                &headers,
            )
            .await?;
        if let Some(message) = answer.error.as_deref() {
            return Err(lease.failure(message).into());
        }
        audit.set_upstream_time(started.elapsed());
        if !answer.done {
            return Err(super::simple::incomplete_answer().into());
        }
        audit.set_tokens(answer.prompt_eval_count, answer.eval_count);
        audit.set_load_duration(answer.load_duration);
        return Ok(Json(response::completion(answer, opts.echo.as_deref())).into_response());
    }
    let (upstream, lease) = state
        .backends
        .post_json(
            Target::Model(&native.model),
            &audit,
            "/api/generate",
            &native,
            &headers,
        )
        .await?;
    let lines = lease.native_lines(upstream, &state.shutdown);
    let mut translator = CompletionStream::new(opts.include_usage, opts.echo);
    Ok(
        LineBody::new(lines, &SSE, audit, started, move |line, _, out| {
            write_events(out, translator.line(line));
        })
        .into_response(),
    )
}

/// Create embeddings (`encoding_format` `float` or `base64`).
#[utoipa::path(
    post, path = "/v1/embeddings", tag = "OpenAI",
    request_body = EmbeddingRequest,
    responses(
        (status = 200, description = "The embeddings", body = EmbeddingList),
        (status = 400, description = "Invalid request: a value the schema does not allow; `param` names the field", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 403, description = "Model not allowed for this key", body = OpenAiErrorBody),
        (status = 404, description = "Model not found", body = OpenAiErrorBody),
        (status = 408, description = "The body did not arrive within `GATEWAY_BODY_TIMEOUT`", body = OpenAiErrorBody),
        (status = 413, description = "Body too large", body = OpenAiErrorBody),
        (status = 429, description = "Rate limited, the key's token quota is used up (`quota_exceeded`), or every model server for the model stayed busy for the queue timeout (`backends_busy`)", body = OpenAiErrorBody),
        (status = 500, description = "Ollama's own error, passed on (e.g. the model failed to load)", body = OpenAiErrorBody),
        (status = 502, description = "Model server unreachable", body = OpenAiErrorBody),
        (status = 503, description = "Ollama is overloaded (its request queue is full), passed on, or the gateway is shutting down", body = OpenAiErrorBody),
        (status = 504, description = "Model server timed out", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn embeddings(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    Extension(audit): Extension<Audit>,
    headers: Forwarded,
    JsonBody(body): JsonBody<EmbeddingRequest>,
) -> V1Result {
    let format = body.encoding_format.unwrap_or(EncodingFormat::Float);
    let native = request::embed_request(body)?;
    audit.set_model(&native.model);
    state.gate.check_model(&caller, &native.model)?;
    let started = Instant::now();
    let (answer, _lease): (EmbedResponse, _) = state
        .backends
        .call_json(
            Target::Model(&native.model),
            &audit,
            "/api/embed",
            &native,
            &headers,
        )
        .await?;
    audit.set_upstream_time(started.elapsed());
    audit.set_tokens(answer.prompt_eval_count, None);
    audit.set_load_duration(answer.load_duration);
    Ok(Json(response::embeddings(answer, native.model, format)).into_response())
}

/// List the models this key may use.
#[utoipa::path(
    get, path = "/v1/models", tag = "OpenAI",
    responses(
        (status = 200, description = "Models installed in Ollama that this key may use", body = ModelList),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 502, description = "Model server unreachable", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_models(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    headers: Forwarded,
) -> V1Result {
    let mut tags: TagsResponse = state.backends.listing("/api/tags", &headers).await?;
    tags.models
        .retain(|m| state.gate.model_visible(&caller, m.id()));
    Ok(Json(response::model_list(&tags.models)).into_response())
}

/// Retrieve one model. The id may contain `/` (`hf.co/user/repo:Q4_K_M`).
#[utoipa::path(
    get, path = "/v1/models/{model}", tag = "OpenAI",
    params(("model" = String, Path, description = "Model id; may contain `/`", pattern = r#"^[^\u0000-\u0020\u007F-\u009F\\?#<>"^`{|}]+$"#, example = "llama3.2:latest")),
    responses(
        (status = 200, description = "The model", body = Model),
        (status = 400, description = "Malformed path", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 403, description = "Model not allowed for this key", body = OpenAiErrorBody),
        (status = 404, description = "Model not found", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn retrieve_model(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    Extension(audit): Extension<Audit>,
    headers: Forwarded,
    Path(model): Path<String>,
) -> V1Result {
    audit.set_model(&model);
    state.gate.check_model(&caller, &model)?;
    #[derive(serde::Deserialize)]
    struct Show {
        #[serde(default)]
        modified_at: Option<String>,
    }
    let (show, _lease): (Show, _) = state
        .backends
        .call_json(
            Target::About(&model),
            &audit,
            "/api/show",
            &json!({ "model": model }),
            &headers,
        )
        .await?;
    Ok(Json(Model {
        created: crate::ollama::types::unix_seconds(show.modified_at.as_deref()).unwrap_or(0),
        owned_by: response::owned_by(&model),
        id: model,
        object: "model",
    })
    .into_response())
}

/// Append each chunk as one SSE event.
fn write_events<C: serde::Serialize>(out: &mut BytesMut, chunks: Vec<C>) {
    for chunk in &chunks {
        write_event(out, chunk);
    }
}
