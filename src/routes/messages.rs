//! The Anthropic surface: `POST /v1/messages` and `POST /v1/messages/count_tokens`, translated
//! to Ollama's `/api/chat`. The key may come as `x-api-key` (what Anthropic's SDKs send);
//! `anthropic-version` and `anthropic-beta` are accepted and not needed. Errors use Anthropic's
//! error object, in the stream too (an `error` event).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::BytesMut;

use crate::anthropic::request::{Purpose, chat_request};
use crate::anthropic::response;
use crate::anthropic::stop::stop_sequences;
use crate::anthropic::stream::MessagesStream;
use crate::anthropic::types::{
    CountTokensRequest, Message, MessagesRequest, MessagesSseEvent, TokenCount,
};
use crate::error::{AnthropicError, AnthropicErrorBody, GatewayError};
use crate::gate::keys::Caller;
use crate::http::audit::Audit;
use crate::http::extract::JsonBody;
use crate::http::stream::{ANTHROPIC_SSE, LineBody, PendingLines, write_named_event};
use crate::ollama::types::ChatResponse;
use crate::state::AppState;
use crate::upstream::Forwarded;

type MessagesResult = Result<Response, AnthropicError>;

/// Create a message (Anthropic Messages API); streamed as named server-sent events when
/// `stream` is true.
#[utoipa::path(
    post, path = "/v1/messages", tag = "Anthropic",
    request_body = MessagesRequest,
    params(
        ("x-api-key" = Option<String>, Header, description = "The gateway key, as Anthropic's SDKs send it (or use `Authorization: Bearer`)"),
        ("anthropic-version" = Option<String>, Header, description = "Accepted and ignored"),
    ),
    responses(
        (status = 200, description = "The message; with `stream: true`, `text/event-stream` of named events (`message_start`, `content_block_start`, `content_block_delta`, `content_block_stop`, `message_delta`, `message_stop`, `ping`; `error` on failure)", body = Message,
            content((Message = "application/json"), (MessagesSseEvent = "text/event-stream"))),
        (status = 400, description = "Invalid request: a value the schema does not allow, `tool_choice` naming a tool not in `tools` (or `any` with no tools), `thinking.budget_tokens` not below `max_tokens`, or Ollama's refusal for the model (`thinking` for a model without thinking, tools for a model without tools, chat with an embedding model); the message starts with the field", body = AnthropicErrorBody),
        (status = 401, description = "Missing or invalid API key", body = AnthropicErrorBody),
        (status = 403, description = "Model not allowed for this key", body = AnthropicErrorBody),
        (status = 404, description = "Model not found", body = AnthropicErrorBody),
        (status = 408, description = "The body did not arrive within `GATEWAY_BODY_TIMEOUT`", body = AnthropicErrorBody),
        (status = 413, description = "Body too large", body = AnthropicErrorBody),
        (status = 429, description = "Rate limited, the key's token quota is used up (`quota_exceeded`), or every model server for the model stayed busy for the queue timeout (`backends_busy`)", body = AnthropicErrorBody),
        (status = 500, description = "Ollama's own error, passed on (e.g. the model failed to load)", body = AnthropicErrorBody),
        (status = 502, description = "Model server unreachable", body = AnthropicErrorBody),
        (status = 503, description = "Ollama is overloaded (its request queue is full), passed on, or the gateway is shutting down (`overloaded_error`)", body = AnthropicErrorBody),
        (status = 504, description = "Model server timed out", body = AnthropicErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_message(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    Extension(audit): Extension<Audit>,
    headers: Forwarded,
    JsonBody(body): JsonBody<MessagesRequest>,
) -> MessagesResult {
    let (native, stream) = chat_request(body, Purpose::Create)?;
    audit.set_model(&native.model);
    state.gate.check_model(&caller, &native.model)?;
    let started = Instant::now();
    if !stream {
        let answer = super::whole_chat(&state, &native, &headers, &audit).await?;
        return Ok(Json(response::message(answer, stop_sequences(&native))).into_response());
    }
    let mut translator =
        MessagesStream::new(&native.model).with_stop_sequences(stop_sequences(&native));
    let (backends, head_audit) = (state.backends.clone(), audit.clone());
    let mut head = Box::pin(async move {
        let target = crate::backends::Target::Model(&native.model);
        backends
            .post_json(target, &head_audit, "/api/chat", &native, &headers)
            .await
    });
    // Ollama sends its response head with the first token. Most answers start at once, and an
    // error before then (unknown model, busy) is best answered as an HTTP error; but a model
    // that is slow to load or to read a long prompt gets the stream started without it, so
    // `ping` events can say it is still working.
    let waited = tokio::time::timeout(HEAD_GRACE, &mut head).await;
    if let Ok(answer) = waited {
        let (answer, lease) = answer?;
        let lines = lease.native_lines(answer, &state.shutdown);
        return Ok(LineBody::new(
            lines,
            &ANTHROPIC_SSE,
            audit,
            started,
            move |line, _, out| {
                write_events(&mut translator, line, out);
            },
        )
        .into_response());
    }
    let mut prelude = BytesMut::new();
    for (name, event) in translator.start("") {
        write_named_event(&mut prelude, name, &event);
    }
    write_named_event(&mut prelude, "ping", &serde_json::json!({"type": "ping"}));
    let shutdown = state.shutdown.clone();
    let expired = shutdown.expired();
    let pending: PendingLines<ChatResponse> = Box::pin(async move {
        // The shutdown grace period ends the wait as it ends a stream.
        tokio::select! {
            answer = head => {
                let (answer, lease) = answer?;
                Ok(lease.native_lines(answer, &shutdown))
            }
            () = expired => Err(GatewayError::ShuttingDown),
        }
    });
    Ok(LineBody::waiting(
        pending,
        prelude,
        &ANTHROPIC_SSE,
        audit,
        started,
        move |line, _, out: &mut BytesMut| write_events(&mut translator, line, out),
    )
    .into_response())
}

/// How long a stream waits for Ollama's first byte before it starts without it.
const HEAD_GRACE: Duration = Duration::from_secs(1);

/// The named events for one upstream line.
fn write_events(translator: &mut MessagesStream, line: ChatResponse, out: &mut BytesMut) {
    for (name, event) in translator.line(line) {
        write_named_event(out, name, &event);
    }
}

/// Count a prompt's tokens as Ollama counts them for the model (the prompt is evaluated and one
/// token generated).
///
/// A count is recorded as a request, but its tokens are not usage: they are not in the key's
/// usage totals and do not spend its token quota.
#[utoipa::path(
    post, path = "/v1/messages/count_tokens", tag = "Anthropic",
    request_body = CountTokensRequest,
    params(
        ("x-api-key" = Option<String>, Header, description = "The gateway key, as Anthropic's SDKs send it (or use `Authorization: Bearer`)"),
    ),
    responses(
        (status = 200, description = "The prompt's token count", body = TokenCount),
        (status = 400, description = "Invalid request: a value the schema does not allow, `tool_choice` naming a tool not in `tools` (or `any` with no tools), or Ollama's refusal for the model (chat with an embedding model); the message starts with the field", body = AnthropicErrorBody),
        (status = 401, description = "Missing or invalid API key", body = AnthropicErrorBody),
        (status = 403, description = "Model not allowed for this key", body = AnthropicErrorBody),
        (status = 404, description = "Model not found", body = AnthropicErrorBody),
        (status = 408, description = "The body did not arrive within `GATEWAY_BODY_TIMEOUT`", body = AnthropicErrorBody),
        (status = 413, description = "Body too large", body = AnthropicErrorBody),
        (status = 429, description = "Rate limited, the key's token quota is used up (`quota_exceeded`), or every model server for the model stayed busy for the queue timeout (`backends_busy`)", body = AnthropicErrorBody),
        (status = 500, description = "Ollama's own error, passed on (e.g. the model failed to load)", body = AnthropicErrorBody),
        (status = 502, description = "Model server unreachable", body = AnthropicErrorBody),
        (status = 503, description = "Ollama is overloaded (its request queue is full), passed on, or the gateway is shutting down (`overloaded_error`)", body = AnthropicErrorBody),
        (status = 504, description = "Model server timed out", body = AnthropicErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn count_tokens(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    Extension(audit): Extension<Audit>,
    headers: Forwarded,
    JsonBody(body): JsonBody<MessagesRequest>,
) -> MessagesResult {
    let (native, _) = chat_request(body, Purpose::CountTokens)?;
    audit.set_model(&native.model);
    state.gate.check_model(&caller, &native.model)?;
    // A count is not usage: the tokens go neither into the usage record nor against a quota.
    let answer = super::uncounted_chat(&state, &native, &headers, &audit).await?;
    Ok(Json(TokenCount {
        input_tokens: answer.prompt_eval_count.unwrap_or(0),
    })
    .into_response())
}
