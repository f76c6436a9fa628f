//! OpenAI's Responses API: `POST /v1/responses`, translated to Ollama's `/api/chat`, and the
//! stored responses: `GET` and `DELETE /v1/responses/{id}`, and `previous_response_id`.
//! Responses are stored (unless `store: false` or `GATEWAY_RESPONSES_TTL=0`) after the answer is
//! complete (a stream's after its last event), off the request path; each belongs to the key
//! that made it, and is not found for any other. Errors use OpenAI's error object; a failed
//! stream ends with `error` and `response.failed` events.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{GatewayError, OpenAiError, OpenAiErrorBody};
use crate::gate::keys::Caller;
use crate::http::audit::Audit;
use crate::http::extract::JsonBody;
use crate::http::stream::{LineBody, LineWriter, NAMED_SSE};
use crate::ollama::types::ChatResponse;
use crate::responses::request::{Previous, chat_request_from};
use crate::responses::response;
use crate::responses::stream::ResponsesStream;
use crate::responses::types::{ResponsesRequest, ResponsesSseEvent};
use crate::state::AppState;
use crate::upstream::Forwarded;

/// Create a response (OpenAI Responses API); streamed as typed server-sent events when
/// `stream` is true. Kept for `GATEWAY_RESPONSES_TTL` unless `store` is false.
#[utoipa::path(
    post, path = "/v1/responses", tag = "OpenAI Responses",
    request_body = ResponsesRequest,
    responses(
        (status = 200, description = "The response object; with `stream: true`, `text/event-stream` of typed events with `sequence_number` (`response.created` ... `response.completed`, `response.incomplete`; `error` and `response.failed` on failure)", body = crate::responses::types::Response,
            content((crate::responses::types::Response = "application/json"), (ResponsesSseEvent = "text/event-stream"))),
        (status = 400, description = "Invalid request: a value the schema does not allow, `tool_choice` naming a function not in `tools` (or `required` with no tools), a `function_call` item whose `arguments` are not the JSON text of an object, `previous_response_id` when the gateway stores no responses (`GATEWAY_RESPONSES_TTL=0`), or Ollama's refusal for the model (`reasoning.effort` for a model without thinking, tools for a model without tools, chat with an embedding model); `param` names the field", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 403, description = "Model not allowed for this key", body = OpenAiErrorBody),
        (status = 404, description = "Model not found, or `previous_response_id` names no stored response of this key (code `previous_response_not_found`)", body = OpenAiErrorBody),
        (status = 408, description = "The body did not arrive within `GATEWAY_BODY_TIMEOUT`", body = OpenAiErrorBody),
        (status = 413, description = "Body too large", body = OpenAiErrorBody),
        (status = 429, description = "Rate limited, the key's token quota is used up (`quota_exceeded`), or every model server for the model stayed busy for the queue timeout (`backends_busy`)", body = OpenAiErrorBody),
        (status = 500, description = "Ollama's own error, passed on (e.g. the model failed to load)", body = OpenAiErrorBody),
        (status = 502, description = "Model server unreachable", body = OpenAiErrorBody),
        (status = 503, description = "The database cannot be read just now (looking up `previous_response_id`)", body = OpenAiErrorBody),
        (status = 504, description = "Model server timed out", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_response(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    Extension(audit): Extension<Audit>,
    headers: Forwarded,
    JsonBody(body): JsonBody<ResponsesRequest>,
) -> Result<Response, OpenAiError> {
    let owner = owner(&caller);
    let storing = state.responses.enabled();
    let previous = match body.previous_response_id.as_deref() {
        Some(id) if storing => {
            let kept = state
                .responses
                .get(id, &owner)
                .await
                .map_err(GatewayError::from)?
                .ok_or_else(|| GatewayError::ResponseNotFound {
                    id: id.to_owned(),
                    previous: true,
                })?;
            Some(Previous {
                id: id.to_owned(),
                items: kept.conversation(),
            })
        }
        _ => None,
    };
    let (native, echo) = chat_request_from(body, previous, storing)?;
    audit.set_model(&native.model);
    state.gate.check_model(&caller, &native.model)?;
    let started = Instant::now();
    if !echo.stream {
        let answer = super::whole_chat(&state, &native, &headers, &audit).await?;
        let response =
            serde_json::to_value(response::response(&echo, answer)).unwrap_or(Value::Null);
        if echo.store {
            state.responses.keep(&owner, &echo.input, &response);
        }
        return Ok(Json(response).into_response());
    }
    let (upstream, lease) = state
        .backends
        .post_json(
            crate::backends::Target::Model(&native.model),
            &audit,
            "/api/chat",
            &native,
            &headers,
        )
        .await?;
    let lines = lease.native_lines(upstream, &state.shutdown);
    let keep = echo.store.then(|| (state.clone(), owner));
    Ok(LineBody::with_writer(
        lines,
        &NAMED_SSE,
        audit,
        started,
        KeepingStream {
            stream: ResponsesStream::new(echo),
            keep,
        },
    )
    .into_response())
}

/// The stored responses belong to this caller: a stored key's id, or `config:<name>`.
fn owner(caller: &Caller) -> String {
    caller
        .id
        .clone()
        .unwrap_or_else(|| crate::admin::config_counter(&caller.name))
}

/// A Responses stream that keeps the finished response once its last event is written (before
/// that event leaves, so a client that reads it and continues at once finds it).
struct KeepingStream {
    stream: ResponsesStream,
    /// Where to keep it, and whose it is; `None` when it is not stored.
    keep: Option<(AppState, String)>,
}

impl KeepingStream {
    fn keep_if_finished(&mut self) {
        let Some(response) = self.stream.take_final() else {
            return;
        };
        if let Some((state, owner)) = self.keep.take() {
            state
                .responses
                .keep(&owner, &self.stream.echo().input, &response);
        }
    }
}

impl LineWriter<ChatResponse> for KeepingStream {
    fn line(&mut self, line: ChatResponse, raw: Bytes, out: &mut BytesMut) {
        LineWriter::line(&mut self.stream, line, raw, out);
        self.keep_if_finished();
    }

    fn fail(&mut self, err: &GatewayError, out: &mut BytesMut) -> bool {
        let written = LineWriter::fail(&mut self.stream, err, out);
        self.keep_if_finished();
        written
    }
}

/// The answer to `DELETE /v1/responses/{id}`.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "resp_9f1c2a4e7b8d4c0f9a3e6b1d2c5f8a7e", "object": "response", "deleted": true}))]
pub struct ResponseDeleted {
    pub id: String,
    /// Always `response`.
    #[schema(value_type = String, example = "response")]
    pub object: &'static str,
    /// Always true.
    pub deleted: bool,
}

/// Retrieve a stored response: the same response object the create returned (a stream's as its
/// last event carried it). Only the key that made it finds it.
#[utoipa::path(
    get, path = "/v1/responses/{response_id}", tag = "OpenAI Responses",
    params(("response_id" = String, Path, description = "The response's id (`resp_...`)", pattern = r#"^[^\u0000-\u0020\u007F-\u009F\\?#<>"^`{|}]+$"#)),
    responses(
        (status = 200, description = "The stored response object", body = crate::responses::types::Response),
        (status = 400, description = "A path the gateway refuses", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 404, description = "No stored response with this id for this key (unknown, expired, deleted, made with `store: false`, or another key's)", body = OpenAiErrorBody),
        (status = 429, description = "Rate limited", body = OpenAiErrorBody),
        (status = 503, description = "The database cannot be read just now", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_response(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(id): Path<String>,
) -> Result<Response, OpenAiError> {
    let kept = state
        .responses
        .get(&id, &owner(&caller))
        .await
        .map_err(GatewayError::from)?
        .ok_or(GatewayError::ResponseNotFound {
            id,
            previous: false,
        })?;
    Ok(Json(kept.response).into_response())
}

/// Delete a stored response. Only the key that made it can.
#[utoipa::path(
    delete, path = "/v1/responses/{response_id}", tag = "OpenAI Responses",
    params(("response_id" = String, Path, description = "The response's id (`resp_...`)", pattern = r#"^[^\u0000-\u0020\u007F-\u009F\\?#<>"^`{|}]+$"#)),
    responses(
        (status = 200, description = "Deleted", body = ResponseDeleted),
        (status = 400, description = "A path the gateway refuses", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 404, description = "No stored response with this id for this key", body = OpenAiErrorBody),
        (status = 429, description = "Rate limited", body = OpenAiErrorBody),
        (status = 503, description = "The database cannot be written just now", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_response(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(id): Path<String>,
) -> Result<Response, OpenAiError> {
    let deleted = state
        .responses
        .delete(&id, &owner(&caller))
        .await
        .map_err(GatewayError::from)?;
    if !deleted {
        return Err(GatewayError::ResponseNotFound {
            id,
            previous: false,
        }
        .into());
    }
    Ok(Json(ResponseDeleted {
        id,
        object: "response",
        deleted: true,
    })
    .into_response())
}
