//! What a chat or generate request gets back: checks Ollama makes before the first byte,
//! the fixture the request selects, per-request edits (model echo, logprobs, `think:false`)
//! and the failure scenarios. Pure functions over JSON; the handlers only move bytes.

use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::FakeConfig;
use crate::fixtures::Fixtures;
use crate::models::{self, Failure, Kind, RUNNER_ERROR, RUNNER_LEAK, SLOW_DELAY};
use crate::reply::{self, Rejection};
use crate::request::Fields;
use crate::stream::Schedule;

/// Tokens the `bench` model sends when `options.num_predict` is absent.
const BENCH_DEFAULT_TOKENS: usize = 16;
/// Upper bound on `bench` tokens, so a typo cannot make a stream endless.
const BENCH_MAX_TOKENS: usize = 1_000_000;
/// The `created_at` of every `bench` line (lines are pre-serialised, not timestamped).
const BENCH_CREATED_AT: &str = "2025-08-14T09:30:12.418551207Z";
/// The content of every `bench` token line.
pub(crate) const BENCH_TOKEN: &str = "tok ";

/// Which native endpoint is answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `/api/chat`: lines carry `message`.
    Chat,
    /// `/api/generate`: lines carry `response`.
    Generate,
}

impl Endpoint {
    /// The Go request type, for decoder-style messages.
    pub(crate) fn go_type(self) -> &'static str {
        match self {
            Endpoint::Chat => "ChatRequest",
            Endpoint::Generate => "GenerateRequest",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            Endpoint::Generate => "generate",
        }
    }
}

/// One line of a stream.
#[derive(Clone, Debug)]
pub(crate) enum Line {
    /// A well-formed line.
    Json(Value),
    /// Bytes sent as they are, newline included (pre-serialised `bench` lines, the corrupt
    /// line of `fail-corrupt`).
    Raw(Bytes),
}

impl Line {
    /// The line as sent: compact JSON and `\n`.
    pub(crate) fn to_bytes(&self) -> Bytes {
        match self {
            Line::Json(value) => ndjson_line(value),
            Line::Raw(bytes) => bytes.clone(),
        }
    }

    /// The line as JSON, if it is JSON.
    pub(crate) fn parse(&self) -> Option<Value> {
        match self {
            Line::Json(value) => Some(value.clone()),
            Line::Raw(bytes) => serde_json::from_slice(bytes).ok(),
        }
    }
}

/// Compact JSON plus `\n`.
pub(crate) fn ndjson_line(value: &Value) -> Bytes {
    let mut out = serde_json::to_vec(value).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// The lines of one answer and their timing quirks.
#[derive(Clone, Debug)]
pub(crate) struct Script {
    pub(crate) lines: Vec<Line>,
    /// Nothing at all is sent before this (`fail-slow`).
    pub(crate) head_delay: Duration,
    /// Extra pause before line `stall_at` and after (`fail-stall`).
    pub(crate) stall_at: usize,
    pub(crate) stall: Duration,
}

impl Script {
    fn new(lines: Vec<Line>) -> Self {
        Self {
            lines,
            head_delay: Duration::ZERO,
            stall_at: usize::MAX,
            stall: Duration::ZERO,
        }
    }

    /// Deadlines for this script's lines, counted from the request's arrival.
    pub(crate) fn schedule(&self, start: Instant, config: &FakeConfig) -> Schedule {
        Schedule {
            start,
            offset: self.head_delay + config.first_token_delay,
            gap: config.chunk_gap,
            stall_at: self.stall_at,
            stall: self.stall,
        }
    }

    /// When the last line is due (a non-streamed answer waits for it).
    pub(crate) fn last_index(&self) -> usize {
        self.lines.len().saturating_sub(1)
    }

    /// Every line serialised.
    pub(crate) fn ndjson(&self) -> Vec<Bytes> {
        self.lines.iter().map(Line::to_bytes).collect()
    }
}

/// The answer to a valid chat / generate request.
#[derive(Debug)]
pub(crate) enum Answer {
    /// One JSON object, whatever `stream` says (loading / unloading a model).
    Single(Value),
    /// A stream, or its aggregate when `stream` is false.
    Lines(Script),
}

/// A checked chat / generate request and its answer.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The model as the client wrote it (echoed in every line).
    pub(crate) model: String,
    pub(crate) stream: bool,
    pub(crate) answer: Answer,
}

/// Check a chat / generate request as Ollama does and pick its answer.
pub(crate) fn plan(
    fixtures: &Fixtures,
    endpoint: Endpoint,
    fields: Fields<'_>,
) -> Result<Plan, Rejection> {
    let model = fields.str("model")?;
    if model.is_empty() {
        return Err(Rejection::model_required());
    }
    let stream = fields.stream()?;
    let Some(kind) = models::lookup(fixtures, model) else {
        return Err(Rejection::new(
            StatusCode::NOT_FOUND,
            format!("model '{model}' not found"),
        ));
    };
    match kind {
        Kind::Fail(Failure::Status500) => {
            return Err(Rejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "llama runner process has terminated: exit status 2",
            ));
        }
        Kind::Fail(Failure::Busy) => {
            return Err(Rejection::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server busy, please try again.  maximum pending requests exceeded",
            ));
        }
        Kind::Embedding => {
            return Err(Rejection::bad_request(format!(
                "\"{model}\" does not support {}",
                endpoint.verb()
            )));
        }
        _ => {}
    }

    let request = GenerationRequest::read(endpoint, fields)?;
    if request.is_load() {
        return Ok(Plan {
            model: model.to_owned(),
            stream,
            answer: Answer::Single(load_answer(endpoint, model, request.unload)),
        });
    }
    if matches!(kind, Kind::Text { .. } | Kind::Thinking | Kind::Vision) {
        if request.has_tools && !kind.supports_tools() {
            return Err(Rejection::bad_request(format!(
                "{} does not support tools",
                registry_name(model)
            )));
        }
        if request.think == Think::On && !kind.supports_thinking() {
            return Err(Rejection::bad_request(format!(
                "\"{model}\" does not support thinking"
            )));
        }
    }

    let script = match kind {
        Kind::Bench => bench_script(endpoint, model, request.num_predict),
        Kind::Fail(failure) => failure_script(fixtures, endpoint, model, failure, &request),
        _ => {
            let name = fixture_name(kind, &request);
            let mut lines = fixture_lines(fixtures, endpoint, name).to_vec();
            if request.think == Think::Off {
                lines = strip_thinking(endpoint, lines);
            }
            let lines = personalise(endpoint, model, lines, &request);
            Script::new(crate::stop::apply(endpoint, lines, &request.stops))
        }
    };
    Ok(Plan {
        model: model.to_owned(),
        stream,
        answer: Answer::Lines(script),
    })
}

/// `think` as requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Think {
    /// Absent: the model's default (thinking models think).
    Default,
    /// `true` or a level (`"low"`, `"medium"`, `"high"`).
    On,
    /// `false`.
    Off,
}

/// The request fields that steer the answer.
#[derive(Debug)]
struct GenerationRequest {
    endpoint: Endpoint,
    /// Chat: `messages` is empty. Generate: `prompt` is empty and there are no images.
    empty_input: bool,
    unload: bool,
    has_tools: bool,
    last_role_is_tool: bool,
    has_format: bool,
    num_predict: Option<f64>,
    think: Think,
    logprobs: bool,
    top_logprobs: usize,
    /// `options.stop`.
    stops: Vec<String>,
}

impl GenerationRequest {
    fn read(endpoint: Endpoint, fields: Fields<'_>) -> Result<Self, Rejection> {
        let (empty_input, last_role_is_tool) = match endpoint {
            Endpoint::Chat => {
                let messages = fields.array("messages", "api.Message")?;
                let last_role = messages
                    .last()
                    .and_then(|m| m.get("role"))
                    .and_then(Value::as_str);
                (messages.is_empty(), last_role == Some("tool"))
            }
            Endpoint::Generate => {
                let prompt = fields.str("prompt")?;
                let images = fields.array("images", "api.ImageData")?;
                (prompt.is_empty() && images.is_empty(), false)
            }
        };
        let tools = match endpoint {
            Endpoint::Chat => fields.array("tools", "api.Tool")?,
            Endpoint::Generate => &[],
        };
        let options = fields.object("options")?;
        let think = match fields.get("think") {
            None => Think::Default,
            Some(Value::Bool(true)) => Think::On,
            Some(Value::Bool(false)) => Think::Off,
            Some(Value::String(level))
                if ["low", "medium", "high", "max"].contains(&level.as_str()) =>
            {
                Think::On
            }
            Some(other) => {
                return Err(Rejection::bad_request(format!(
                    "invalid think value: {other} (must be \"high\", \"medium\", \"low\", true, or false)"
                )));
            }
        };
        let top_logprobs = fields.int("top_logprobs")?.unwrap_or(0);
        if !(0..=20).contains(&top_logprobs) {
            return Err(Rejection::bad_request(
                "top_logprobs must be between 0 and 20",
            ));
        }
        Ok(Self {
            endpoint,
            empty_input,
            unload: is_zero_keep_alive(fields.keep_alive()?),
            has_tools: !tools.is_empty(),
            last_role_is_tool,
            has_format: fields.get("format").is_some_and(|f| f.as_str() != Some("")),
            num_predict: options
                .and_then(|o| o.get("num_predict"))
                .and_then(Value::as_f64),
            think,
            logprobs: fields.bool("logprobs")?.unwrap_or(false),
            top_logprobs: usize::try_from(top_logprobs).unwrap_or(0),
            stops: options
                .and_then(|o| o.get("stop"))
                .and_then(Value::as_array)
                .map(|stops| {
                    stops
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    fn is_load(&self) -> bool {
        self.empty_input
    }
}

/// `keep_alive` of `0`, `"0"` or `"0s"` unloads the model.
fn is_zero_keep_alive(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::String(s)) => s.trim_end_matches(['s', 'm', 'h']).trim() == "0",
        _ => false,
    }
}

/// The name Ollama's capability errors use (`registry.ollama.ai/library/llava:latest`).
fn registry_name(model: &str) -> String {
    let full = models::full_name(model);
    match full.matches('/').count() {
        0 => format!("registry.ollama.ai/library/{full}"),
        1 => format!("registry.ollama.ai/{full}"),
        _ => full,
    }
}

/// The reply to a request with nothing to generate: the model is loaded (or unloaded).
fn load_answer(endpoint: Endpoint, model: &str, unload: bool) -> Value {
    let reason = if unload { "unload" } else { "load" };
    match endpoint {
        Endpoint::Chat => json!({
            "model": model,
            "created_at": reply::now_rfc3339(),
            "message": {"role": "assistant", "content": ""},
            "done_reason": reason,
            "done": true,
        }),
        Endpoint::Generate => json!({
            "model": model,
            "created_at": reply::now_rfc3339(),
            "response": "",
            "done": true,
            "done_reason": reason,
        }),
    }
}

/// The fixture a text / vision / thinking model answers with.
fn fixture_name(kind: Kind, request: &GenerationRequest) -> &'static str {
    if kind == Kind::Thinking {
        return "thinking";
    }
    if request.endpoint == Endpoint::Chat
        && request.has_tools
        && !request.last_role_is_tool
        && kind.supports_tools()
    {
        return "tool_calls";
    }
    if request.has_format {
        return "json";
    }
    if request
        .num_predict
        .is_some_and(|n| (0.0..=3.0).contains(&n))
    {
        return "length";
    }
    "text"
}

fn fixture_lines<'f>(fixtures: &'f Fixtures, endpoint: Endpoint, name: &str) -> &'f [Value] {
    match endpoint {
        Endpoint::Chat => fixtures.chat_lines(name),
        Endpoint::Generate => fixtures.generate_lines(name),
    }
}

/// The line's generated text (`message.content` or `response`).
pub(crate) fn line_text(endpoint: Endpoint, line: &Value) -> &str {
    let text = match endpoint {
        Endpoint::Chat => line.get("message").and_then(|m| m.get("content")),
        Endpoint::Generate => line.get("response"),
    };
    text.and_then(Value::as_str).unwrap_or("")
}

/// Drop the reasoning of a thinking fixture (`think:false`).
fn strip_thinking(endpoint: Endpoint, lines: Vec<Value>) -> Vec<Value> {
    lines
        .into_iter()
        .filter_map(|mut line| {
            let holder = match endpoint {
                Endpoint::Chat => line.get_mut("message").and_then(Value::as_object_mut),
                Endpoint::Generate => line.as_object_mut(),
            };
            let had_thinking = holder.and_then(|h| h.shift_remove("thinking")).is_some();
            let done = line.get("done").and_then(Value::as_bool).unwrap_or(false);
            let keep = !had_thinking
                || done
                || !line_text(endpoint, &line).is_empty()
                || line.pointer("/message/tool_calls").is_some();
            keep.then_some(line)
        })
        .collect()
}

/// Echo the request's model name and add logprobs when asked.
fn personalise(
    endpoint: Endpoint,
    model: &str,
    lines: Vec<Value>,
    request: &GenerationRequest,
) -> Vec<Line> {
    lines
        .into_iter()
        .map(|mut line| {
            if let Some(obj) = line.as_object_mut() {
                obj.insert("model".to_owned(), Value::String(model.to_owned()));
            }
            if request.logprobs {
                let text = line_text(endpoint, &line).to_owned();
                if !text.is_empty()
                    && let Some(obj) = line.as_object_mut()
                {
                    obj.insert(
                        "logprobs".to_owned(),
                        json!([logprob_entry(&text, request.top_logprobs)]),
                    );
                }
            }
            Line::Json(line)
        })
        .collect()
}

/// One logprob entry for a token; the alternatives are `alt1`, `alt2`, ...
fn logprob_entry(token: &str, top: usize) -> Value {
    let mut entry = Map::new();
    entry.insert("token".to_owned(), json!(token));
    entry.insert("logprob".to_owned(), json!(-0.1));
    entry.insert("bytes".to_owned(), json!(token.as_bytes()));
    if top > 0 {
        let alternatives: Vec<Value> = (0..top)
            .map(|k| {
                let alt = if k == 0 {
                    token.to_owned()
                } else {
                    format!("alt{k}")
                };
                #[expect(clippy::cast_precision_loss, reason = "k <= 20")]
                let logprob = -0.1 - k as f64;
                json!({"token": alt, "logprob": logprob, "bytes": alt.as_bytes()})
            })
            .collect();
        entry.insert("top_logprobs".to_owned(), Value::Array(alternatives));
    }
    Value::Object(entry)
}

/// The scripts of the `fail-*` models, built on the text fixture.
fn failure_script(
    fixtures: &Fixtures,
    endpoint: Endpoint,
    model: &str,
    failure: Failure,
    request: &GenerationRequest,
) -> Script {
    let text = personalise(
        endpoint,
        model,
        fixture_lines(fixtures, endpoint, "text").to_vec(),
        request,
    );
    let first = |n: usize| text.iter().take(n).cloned().collect::<Vec<_>>();
    match failure {
        Failure::Midstream => {
            let mut lines = first(2);
            lines.push(Line::Json(json!({ "error": RUNNER_ERROR })));
            Script::new(lines)
        }
        Failure::MidstreamLeak => {
            let mut lines = first(2);
            lines.push(Line::Json(json!({ "error": RUNNER_LEAK })));
            Script::new(lines)
        }
        Failure::Cut => Script::new(first(2)),
        Failure::Corrupt => {
            let mut lines = first(1);
            let key = match endpoint {
                Endpoint::Chat => "message",
                Endpoint::Generate => "response",
            };
            let model_json = serde_json::to_string(model).unwrap_or_default();
            lines.push(Line::Raw(Bytes::from(format!(
                "{{\"model\":{model_json},\"{key}\":\n"
            ))));
            Script::new(lines)
        }
        Failure::Slow => Script {
            head_delay: SLOW_DELAY,
            ..Script::new(text)
        },
        Failure::Stall => Script {
            stall_at: 1,
            stall: SLOW_DELAY,
            ..Script::new(text)
        },
        // Answered before any byte; `plan` never gets here with them.
        Failure::Status500
        | Failure::Busy
        | Failure::LeakAddress
        | Failure::HtmlPage
        | Failure::Redirect => Script::new(text),
    }
}

/// `n` lines of `"tok "` and a metrics trailer, serialised once per request.
fn bench_script(endpoint: Endpoint, model: &str, num_predict: Option<f64>) -> Script {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "clamped to 1..=BENCH_MAX_TOKENS first"
    )]
    let tokens = num_predict
        .filter(|n| *n >= 1.0)
        .map_or(BENCH_DEFAULT_TOKENS, |n| {
            n.min(BENCH_MAX_TOKENS as f64) as usize
        });
    let (token, trailer) = match endpoint {
        Endpoint::Chat => (
            json!({
                "model": model,
                "created_at": BENCH_CREATED_AT,
                "message": {"role": "assistant", "content": BENCH_TOKEN},
                "done": false,
            }),
            json!({
                "model": model,
                "created_at": BENCH_CREATED_AT,
                "message": {"role": "assistant", "content": ""},
                "done_reason": "stop",
                "done": true,
                "total_duration": 0,
                "load_duration": 1_204_000,
                "prompt_eval_count": 26,
                "prompt_eval_duration": 2_310_000,
                "eval_count": tokens,
                "eval_duration": 0,
            }),
        ),
        Endpoint::Generate => (
            json!({
                "model": model,
                "created_at": BENCH_CREATED_AT,
                "response": BENCH_TOKEN,
                "done": false,
            }),
            json!({
                "model": model,
                "created_at": BENCH_CREATED_AT,
                "response": "",
                "done": true,
                "done_reason": "stop",
                "context": [1, 2, 3],
                "total_duration": 0,
                "load_duration": 1_204_000,
                "prompt_eval_count": 26,
                "prompt_eval_duration": 2_310_000,
                "eval_count": tokens,
                "eval_duration": 0,
            }),
        ),
    };
    let mut trailer = trailer;
    // 8 ms per token, as a small model on a laptop would report.
    let eval_ns = u64::try_from(tokens)
        .unwrap_or(u64::MAX)
        .saturating_mul(8_000_000);
    trailer["eval_duration"] = json!(eval_ns);
    trailer["total_duration"] = json!(eval_ns + 1_204_000 + 2_310_000);
    let token_line = ndjson_line(&token);
    let mut lines: Vec<Line> = std::iter::repeat_n(Line::Raw(token_line), tokens).collect();
    lines.push(Line::Raw(ndjson_line(&trailer)));
    Script::new(lines)
}

/// Fold a stream into Ollama's non-streamed answer: text and thinking concatenated, all
/// tool calls and logprobs collected, everything else from the last line (so a run cut short
/// answers `done: false`). `Err` holds the message of the `500` Ollama answers when the run
/// fails.
pub(crate) fn aggregate(endpoint: Endpoint, lines: &[Line]) -> Result<Value, String> {
    let mut text = String::new();
    let mut thinking = String::new();
    let mut tool_calls = Vec::new();
    let mut logprobs = Vec::new();
    let mut last: Option<Map<String, Value>> = None;
    for line in lines {
        let Some(Value::Object(obj)) = line.parse() else {
            return Err(RUNNER_ERROR.to_owned());
        };
        if let Some(error) = obj.get("error") {
            return Err(error.as_str().unwrap_or(RUNNER_ERROR).to_owned());
        }
        let holder = match endpoint {
            Endpoint::Chat => obj.get("message").and_then(Value::as_object),
            Endpoint::Generate => Some(&obj),
        };
        if let Some(holder) = holder {
            let text_key = match endpoint {
                Endpoint::Chat => "content",
                Endpoint::Generate => "response",
            };
            text.push_str(holder.get(text_key).and_then(Value::as_str).unwrap_or(""));
            thinking.push_str(holder.get("thinking").and_then(Value::as_str).unwrap_or(""));
            if let Some(Value::Array(calls)) = holder.get("tool_calls") {
                tool_calls.extend(calls.iter().cloned());
            }
        }
        if let Some(Value::Array(items)) = obj.get("logprobs") {
            logprobs.extend(items.iter().cloned());
        }
        last = Some(obj);
    }
    // A run that ends early without an error (`fail-cut`) is answered as real Ollama 0.24
    // answers it: 200 with what came, the last line's fields and `done: false`.
    let Some(last) = last else {
        return Err(RUNNER_ERROR.to_owned());
    };

    let mut out = Map::new();
    for (key, value) in last {
        match (endpoint, key.as_str()) {
            (Endpoint::Chat, "message") => {
                let mut message = Map::new();
                message.insert("role".to_owned(), json!("assistant"));
                message.insert("content".to_owned(), json!(text));
                if !thinking.is_empty() {
                    message.insert("thinking".to_owned(), json!(thinking));
                }
                if !tool_calls.is_empty() {
                    message.insert("tool_calls".to_owned(), Value::Array(tool_calls.clone()));
                }
                out.insert(key, Value::Object(message));
            }
            (Endpoint::Generate, "response") => {
                out.insert(key, json!(text));
                if !thinking.is_empty() {
                    out.insert("thinking".to_owned(), json!(thinking));
                }
            }
            (Endpoint::Generate, "thinking") | (_, "logprobs") => {}
            _ => {
                out.insert(key, value);
            }
        }
    }
    if !logprobs.is_empty() {
        out.insert("logprobs".to_owned(), Value::Array(logprobs));
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> Fixtures {
        match Fixtures::load(&FakeConfig::default_fixtures_dir()) {
            Ok(f) => f,
            Err(e) => panic!("fixtures: {e}"),
        }
    }

    fn plan_for(endpoint: Endpoint, body: Value) -> Result<Plan, Rejection> {
        let map = body.as_object().cloned().unwrap_or_default();
        plan(&fixtures(), endpoint, Fields::new(&map, endpoint.go_type()))
    }

    fn lines(plan: &Plan) -> &[Line] {
        match &plan.answer {
            Answer::Lines(script) => &script.lines,
            Answer::Single(_) => &[],
        }
    }

    #[test]
    fn every_fixture_ends_with_a_done_line() {
        let f = fixtures();
        for (endpoint, map) in [(Endpoint::Chat, &f.chat), (Endpoint::Generate, &f.generate)] {
            for (name, lines) in map {
                let parsed: Vec<Line> = lines.iter().cloned().map(Line::Json).collect();
                assert!(aggregate(endpoint, &parsed).is_ok(), "{endpoint:?}/{name}");
            }
        }
    }

    #[test]
    fn json_fixture_concatenates_to_the_schema() {
        let plan = plan_for(
            Endpoint::Chat,
            json!({"model":"llama3.2","messages":[{"role":"user","content":"x"}],"format":"json","stream":false}),
        );
        let plan = plan.unwrap_or_else(|e| panic!("{e:?}"));
        let answer = aggregate(Endpoint::Chat, lines(&plan)).unwrap_or_else(|e| panic!("{e}"));
        let content = answer["message"]["content"].as_str().unwrap_or_default();
        let parsed: Value = serde_json::from_str(content).unwrap_or_default();
        assert_eq!(parsed, json!({"name":"Ada","age":36}));
    }

    #[test]
    fn tool_result_turn_answers_with_text() {
        let plan = plan_for(
            Endpoint::Chat,
            json!({"model":"llama3.2","tools":[{"type":"function","function":{"name":"get_weather"}}],
                   "messages":[{"role":"user","content":"x"},{"role":"tool","content":"18C"}]}),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let answer = aggregate(Endpoint::Chat, lines(&plan)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            answer["message"]["content"],
            "The sky is blue because of Rayleigh scattering."
        );
    }

    #[test]
    fn think_false_drops_reasoning() {
        let plan = plan_for(
            Endpoint::Generate,
            json!({"model":"qwen3","prompt":"why","think":false}),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let answer = aggregate(Endpoint::Generate, lines(&plan)).unwrap_or_else(|e| panic!("{e}"));
        assert!(answer.get("thinking").is_none());
        assert!(!answer["response"].as_str().unwrap_or_default().is_empty());
    }

    #[test]
    fn capability_errors() {
        let err = plan_for(
            Endpoint::Chat,
            json!({"model":"llama3.2","think":true,"messages":[{"role":"user","content":"x"}]}),
        );
        assert_eq!(
            err.map(|_| ()),
            Err(Rejection::bad_request(
                "\"llama3.2\" does not support thinking"
            ))
        );
        let err = plan_for(
            Endpoint::Chat,
            json!({"model":"llava","tools":[{}],"messages":[{"role":"user","content":"x"}]}),
        );
        assert_eq!(
            err.map(|_| ()),
            Err(Rejection::bad_request(
                "registry.ollama.ai/library/llava:latest does not support tools"
            ))
        );
    }

    #[test]
    fn bench_counts_tokens() {
        let plan = plan_for(
            Endpoint::Chat,
            json!({"model":"bench","messages":[{"role":"user","content":"x"}],"options":{"num_predict":5}}),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(lines(&plan).len(), 6);
        let answer = aggregate(Endpoint::Chat, lines(&plan)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(answer["message"]["content"], "tok tok tok tok tok ");
        assert_eq!(answer["eval_count"], 5);
        assert_eq!(answer["model"], "bench");
    }
}
