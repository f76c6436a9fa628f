//! `POST /v1/chat/completions`, for benchmarks only: the same fixtures and the same
//! timing as `/api/chat`, re-encoded as OpenAI SSE chunks (Ollama's own `/v1` shape), so
//! "direct" and plain-proxy baselines stream exactly what the gateway streams.

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::models::RUNNER_ERROR;
use crate::reply::{self, Rejection};
use crate::request::{Fields, RequestBody};
use crate::scenario::{self, Answer, Endpoint, Line};
use crate::state::FakeState;
use crate::stream::{StreamGuard, scheduled_body};

/// The OpenAI error object for a rejection, with the status Ollama's `/v1` layer uses.
fn openai_error(rejection: &Rejection) -> Response {
    let kind = match rejection.status {
        StatusCode::BAD_REQUEST => "invalid_request_error",
        StatusCode::NOT_FOUND => "not_found_error",
        _ => "api_error",
    };
    reply::openai_json(
        rejection.status,
        &json!({"error": {"message": rejection.message, "type": kind, "param": null, "code": null}}),
    )
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The native `/api/chat` request an OpenAI request stands for (the fields the fake uses).
fn to_native(fields: Fields<'_>) -> Result<Map<String, Value>, Rejection> {
    let mut native = Map::new();
    native.insert("model".to_owned(), json!(fields.str("model")?));
    let messages = fields.array("messages", "openai.Message")?;
    if messages.is_empty() {
        return Err(Rejection::bad_request("[] is too short - 'messages'"));
    }
    native.insert("messages".to_owned(), Value::Array(messages.to_vec()));
    let tools = fields.array("tools", "openai.Tool")?;
    if !tools.is_empty() {
        native.insert("tools".to_owned(), Value::Array(tools.to_vec()));
    }
    if let Some(format) = fields.object("response_format")? {
        match format.get("type").and_then(Value::as_str) {
            Some("json_object") => {
                native.insert("format".to_owned(), json!("json"));
            }
            Some("json_schema") => {
                let schema = format
                    .get("json_schema")
                    .and_then(|s| s.get("schema"))
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                native.insert("format".to_owned(), schema);
            }
            _ => {}
        }
    }
    let max_tokens = match fields.int("max_completion_tokens")? {
        Some(n) => Some(n),
        None => fields.int("max_tokens")?,
    };
    if let Some(n) = max_tokens {
        native.insert("options".to_owned(), json!({ "num_predict": n }));
    }
    if let Some(effort) = fields.get("reasoning_effort").and_then(Value::as_str) {
        let think = if effort == "none" {
            json!(false)
        } else {
            json!(effort)
        };
        native.insert("think".to_owned(), think);
    }
    Ok(native)
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(
    State(state): State<FakeState>,
    Extension(body): Extension<RequestBody>,
) -> Response {
    let start = Instant::now();
    let prepared = body.object("ChatCompletionRequest").and_then(|fields| {
        let stream = fields.bool("stream")?.unwrap_or(false);
        let include_usage = fields
            .object("stream_options")?
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let native = to_native(fields)?;
        let plan = scenario::plan(
            state.fixtures(),
            Endpoint::Chat,
            Fields::new(&native, "ChatRequest"),
        )?;
        Ok((plan, stream, include_usage))
    });
    let (plan, stream, include_usage) = match prepared {
        Ok(prepared) => prepared,
        Err(rejection) => return openai_error(&rejection),
    };
    let Answer::Lines(script) = plan.answer else {
        return openai_error(&Rejection::bad_request("[] is too short - 'messages'"));
    };
    let schedule = script.schedule(start, state.config());
    let id = format!("chatcmpl-{}", state.next_id());
    let created = unix_now();
    if stream {
        let guard = StreamGuard::new(state.clone());
        schedule.wait_for(0).await;
        let mut encoder = ChunkEncoder::new(id, created, plan.model, include_usage);
        let frames: Vec<Bytes> = script.lines.iter().map(|l| encoder.encode(l)).collect();
        let body = scheduled_body(frames, schedule, guard);
        let mut response = reply::with_type(StatusCode::OK, reply::SSE, body);
        response.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-cache"),
        );
        return response;
    }
    schedule.wait_for(script.last_index()).await;
    match scenario::aggregate(Endpoint::Chat, &script.lines) {
        Ok(answer) => reply::openai_json(
            StatusCode::OK,
            &completion(&answer, &id, created, &plan.model),
        ),
        Err(message) => openai_error(&Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, message)),
    }
}

/// Native tool calls as OpenAI's: `arguments` becomes a JSON string.
fn openai_tool_calls(calls: &[Value]) -> Vec<Value> {
    calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let function = &call["function"];
            let arguments =
                serde_json::to_string(&function["arguments"]).unwrap_or_else(|_| "{}".to_owned());
            json!({
                "id": call.get("id").cloned().unwrap_or_else(|| json!(format!("call_{i:08}"))),
                "index": function.get("index").cloned().unwrap_or_else(|| json!(i)),
                "type": "function",
                "function": {"name": function["name"], "arguments": arguments},
            })
        })
        .collect()
}

fn finish_reason(done_reason: Option<&str>, tool_calls_sent: bool) -> String {
    match done_reason.filter(|r| !r.is_empty()).unwrap_or("stop") {
        "stop" if tool_calls_sent => "tool_calls".to_owned(),
        other => other.to_owned(),
    }
}

fn usage(line: &Value) -> Value {
    let prompt = line["prompt_eval_count"].as_u64().unwrap_or(0);
    let completion = line["eval_count"].as_u64().unwrap_or(0);
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// A non-streamed `chat.completion` from an aggregated native answer.
fn completion(answer: &Value, id: &str, created: u64, model: &str) -> Value {
    let message = &answer["message"];
    let mut out = Map::new();
    out.insert("role".to_owned(), json!("assistant"));
    out.insert("content".to_owned(), message["content"].clone());
    if let Some(thinking) = message["thinking"].as_str().filter(|t| !t.is_empty()) {
        out.insert("reasoning".to_owned(), json!(thinking));
    }
    let calls = message["tool_calls"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if !calls.is_empty() {
        out.insert(
            "tool_calls".to_owned(),
            Value::Array(openai_tool_calls(calls)),
        );
    }
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_ollama",
        "choices": [{
            "index": 0,
            "message": out,
            "finish_reason": finish_reason(answer["done_reason"].as_str(), !calls.is_empty()),
        }],
        "usage": usage(answer),
    })
}

/// Turns native lines into SSE frames with the stream state Ollama's writer keeps.
struct ChunkEncoder {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    first_sent: bool,
    tool_calls_sent: bool,
    ended: bool,
    /// The last raw line and its frames: `bench` repeats one line, so it is encoded once.
    memo: Option<(Bytes, Bytes)>,
}

impl ChunkEncoder {
    fn new(id: String, created: u64, model: String, include_usage: bool) -> Self {
        Self {
            id,
            created,
            model,
            include_usage,
            first_sent: false,
            tool_calls_sent: false,
            ended: false,
            memo: None,
        }
    }

    fn frame(out: &mut BytesMut, value: &Value) {
        out.put_slice(b"data: ");
        out.put_slice(&serde_json::to_vec(value).unwrap_or_default());
        out.put_slice(b"\n\n");
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    }

    fn error_frame(&mut self, message: &str) -> Bytes {
        self.ended = true;
        let mut out = BytesMut::new();
        Self::frame(
            &mut out,
            &json!({"error": {"message": message, "type": "api_error", "param": null, "code": null}}),
        );
        out.freeze()
    }

    /// The frames for one native line (empty when it produces none).
    fn encode(&mut self, line: &Line) -> Bytes {
        if self.ended {
            return Bytes::new();
        }
        if let (Line::Raw(raw), Some((memo_raw, memo_frames))) = (line, &self.memo)
            && self.first_sent
            && raw == memo_raw
        {
            return memo_frames.clone();
        }
        let Some(value) = line.parse() else {
            return self.error_frame(RUNNER_ERROR);
        };
        if let Some(error) = value.get("error") {
            return self.error_frame(error.as_str().unwrap_or(RUNNER_ERROR));
        }
        let was_first = !self.first_sent;
        let frames = self.encode_value(&value);
        if let Line::Raw(raw) = line
            && !was_first
        {
            self.memo = Some((raw.clone(), frames.clone()));
        }
        frames
    }

    fn encode_value(&mut self, line: &Value) -> Bytes {
        let mut out = BytesMut::new();
        let message = &line["message"];
        let content = message["content"].as_str().unwrap_or("");
        let thinking = message["thinking"].as_str().unwrap_or("");
        let calls = message["tool_calls"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        let done = line["done"].as_bool().unwrap_or(false);

        // Ollama's writer: one chunk per native line, `role` in every delta, the finish reason
        // on the chunk of the `done` line (whose content is "").
        let role = || {
            let mut delta = Map::new();
            delta.insert("role".to_owned(), json!("assistant"));
            delta
        };
        let mut delta = role();
        if !thinking.is_empty() && (!content.is_empty() || !calls.is_empty()) {
            delta.insert("reasoning".to_owned(), json!(thinking));
            Self::frame(&mut out, &self.chunk(Value::Object(delta), None));
            delta = role();
        } else if !thinking.is_empty() {
            delta.insert("reasoning".to_owned(), json!(thinking));
        }
        delta.insert("content".to_owned(), json!(content));
        if !calls.is_empty() {
            delta.insert(
                "tool_calls".to_owned(),
                Value::Array(openai_tool_calls(calls)),
            );
            self.tool_calls_sent = true;
        }
        let reason =
            done.then(|| finish_reason(line["done_reason"].as_str(), self.tool_calls_sent));
        Self::frame(
            &mut out,
            &self.chunk(Value::Object(delta), reason.as_deref()),
        );
        self.first_sent = true;

        if done {
            if self.include_usage {
                let mut usage_chunk = self.chunk(json!({}), None);
                usage_chunk["choices"] = json!([]);
                usage_chunk["usage"] = usage(line);
                Self::frame(&mut out, &usage_chunk);
            }
            out.put_slice(b"data: [DONE]\n\n");
            self.ended = true;
        }
        out.freeze()
    }
}
