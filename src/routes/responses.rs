//! OpenAI's Responses API: `POST /v1/responses`, translated to Ollama's `/api/chat`. Nothing is
//! stored, so there is no `GET` or `DELETE /v1/responses/{id}` and `previous_response_id` is
//! refused. Errors use OpenAI's error object; a failed stream ends with `error` and
//! `response.failed` events.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use crate::error::{OpenAiError, OpenAiErrorBody};
use crate::gate::keys::Caller;
use crate::http::audit::Audit;
use crate::http::extract::JsonBody;
use crate::http::stream::{LineBody, NAMED_SSE};
use crate::responses::request::chat_request;
use crate::responses::response;
use crate::responses::stream::ResponsesStream;
use crate::responses::types::{ResponsesRequest, ResponsesSseEvent};
use crate::state::AppState;
use crate::upstream::Forwarded;

/// Create a response (OpenAI Responses API); streamed as typed server-sent events when
/// `stream` is true.
#[utoipa::path(
    post, path = "/v1/responses", tag = "OpenAI Responses",
    request_body = ResponsesRequest,
    responses(
        (status = 200, description = "The response object; with `stream: true`, `text/event-stream` of typed events with `sequence_number` (`response.created` ... `response.completed`, `response.incomplete`; `error` and `response.failed` on failure)", body = crate::responses::types::Response,
            content((crate::responses::types::Response = "application/json"), (ResponsesSseEvent = "text/event-stream"))),
        (status = 400, description = "Invalid request (also `previous_response_id`: nothing is stored)", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 403, description = "Model not allowed for this key", body = OpenAiErrorBody),
        (status = 404, description = "Model not found", body = OpenAiErrorBody),
        (status = 413, description = "Body too large", body = OpenAiErrorBody),
        (status = 429, description = "Rate limited", body = OpenAiErrorBody),
        (status = 502, description = "Model server unreachable", body = OpenAiErrorBody),
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
    let (native, echo) = chat_request(body)?;
    audit.set_model(&native.model);
    state.gate.check_model(&caller, &native.model)?;
    let started = Instant::now();
    if !echo.stream {
        let answer = super::whole_chat(&state, &native, &headers, &audit).await?;
        return Ok(Json(response::response(&echo, answer)).into_response());
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
    Ok(LineBody::with_writer(
        lines,
        &NAMED_SSE,
        audit,
        started,
        ResponsesStream::new(echo),
    )
    .into_response())
}
