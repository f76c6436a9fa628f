//! OpenAI requests → Ollama native requests: validation and translation in one pass.
//!
//! Pure functions over typed values, unit-tested without a server. Every refusal names the field
//! at fault. Where Ollama's own `/v1` layer is known to lose information (see
//! `shared/OLLAMA_WIRE.md` section 4), the comments say what we do instead.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::types::{
    ChatCompletionRequest, ChatMessage, CompletionRequest, ContentPart, EmbeddingInput,
    EmbeddingRequest, MessageContent, Prompt, ResponseFormat, Role, StopSequences, Tool,
    ToolChoice, ToolChoiceMode,
};
use crate::error::GatewayError;
use crate::ollama::types::{
    ChatRequest, EmbedRequest, GenerateRequest, Message, ToolCall, ToolCallFunction,
};

/// What the response side needs to know about the request.
#[derive(Clone, Debug, Default)]
pub struct ResponseOptions {
    /// The client asked for SSE.
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// Legacy completions with `echo`: the prompt to put in front of the answer.
    pub echo: Option<String>,
}

/// Validate an OpenAI chat request and build the native `/api/chat` request.
pub fn chat_request(
    request: ChatCompletionRequest,
) -> Result<(ChatRequest, ResponseOptions), GatewayError> {
    check_model(&request.model)?;
    if request.messages.is_empty() {
        return Err(GatewayError::invalid(
            "messages",
            "messages: must contain at least one message",
        ));
    }
    check_n(request.n)?;
    let max_tokens = check_max_tokens("max_completion_tokens", request.max_completion_tokens)?
        .or(check_max_tokens("max_tokens", request.max_tokens)?);
    let top_logprobs = check_range_int("top_logprobs", request.top_logprobs, 0, 20)?;

    let mut options = request.options.unwrap_or_default();
    let sampling = Sampling {
        max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        seed: request.seed,
        stop: request.stop,
        frequency_penalty: request.frequency_penalty,
        presence_penalty: request.presence_penalty,
        top_k: request.top_k,
        min_p: request.min_p,
        num_ctx: request.num_ctx,
        repeat_penalty: request.repeat_penalty,
    };
    sampling.write_into(&mut options)?;

    let effort = match &request.reasoning {
        Some(reasoning) => reasoning.effort.as_deref().map(|e| ("reasoning.effort", e)),
        None => request
            .reasoning_effort
            .as_deref()
            .map(|e| ("reasoning_effort", e)),
    };
    let think = match effort {
        Some((param, effort)) => think_from_effort(param, effort)?,
        None => {
            check_think(request.think.as_ref())?;
            request.think
        }
    };
    check_keep_alive(request.keep_alive.as_ref())?;

    let tools = select_tools(request.tools, request.tool_choice)?;
    if let Some(ResponseFormat::JsonSchema { json_schema }) = &request.response_format
        && json_schema.schema.as_ref().is_some_and(|s| !s.is_object())
    {
        return Err(GatewayError::invalid(
            "response_format.json_schema.schema",
            "response_format.json_schema.schema: must be a JSON schema object",
        ));
    }
    let format = request.response_format.and_then(|format| match format {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(Value::String("json".into())),
        // The schema goes upstream verbatim; without one, JSON mode is the closest promise.
        ResponseFormat::JsonSchema { json_schema } => {
            Some(json_schema.schema.unwrap_or_else(|| "json".into()))
        }
    });

    let stream = request.stream.unwrap_or(false);
    let include_usage = request
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let native = ChatRequest {
        model: request.model,
        messages: messages(request.messages)?,
        stream: Some(stream),
        tools,
        format,
        options,
        keep_alive: request.keep_alive,
        think,
        logprobs: request.logprobs.or(top_logprobs.map(|_| true)),
        top_logprobs: top_logprobs.map(|n| n as u32),
        extra: Map::new(),
    };
    Ok((
        native,
        ResponseOptions {
            stream,
            include_usage,
            echo: None,
        },
    ))
}

/// Validate an OpenAI legacy completion request and build the native `/api/generate` request.
pub fn completion_request(
    request: CompletionRequest,
) -> Result<(GenerateRequest, ResponseOptions), GatewayError> {
    check_model(&request.model)?;
    check_n(request.n)?;
    if request.best_of.is_some_and(|b| b != 1) {
        return Err(GatewayError::invalid(
            "best_of",
            "best_of: only 1 is supported; send several requests instead",
        ));
    }
    let prompt = match request.prompt {
        Prompt::One(prompt) => prompt,
        Prompt::Many(mut prompts) if prompts.len() == 1 => prompts.remove(0),
        Prompt::Many(_) => {
            return Err(GatewayError::invalid(
                "prompt",
                "prompt: exactly one prompt per request is supported; send several requests instead",
            ));
        }
    };
    let top_logprobs = check_range_int("logprobs", request.logprobs, 0, 20)?;
    let mut options = request.options.unwrap_or_default();
    Sampling {
        max_tokens: check_max_tokens("max_tokens", request.max_tokens)?,
        temperature: request.temperature,
        top_p: request.top_p,
        seed: request.seed,
        stop: request.stop,
        frequency_penalty: request.frequency_penalty,
        presence_penalty: request.presence_penalty,
        top_k: request.top_k,
        min_p: request.min_p,
        num_ctx: request.num_ctx,
        repeat_penalty: request.repeat_penalty,
    }
    .write_into(&mut options)?;
    check_keep_alive(request.keep_alive.as_ref())?;
    let stream = request.stream.unwrap_or(false);
    let include_usage = request
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let echo = request.echo.unwrap_or(false).then(|| prompt.clone());
    let native = GenerateRequest {
        model: request.model,
        prompt,
        suffix: request.suffix,
        stream,
        options,
        keep_alive: request.keep_alive,
        think: None,
        logprobs: top_logprobs.map(|_| true),
        top_logprobs: top_logprobs.map(|n| n as u32),
        format: None,
    };
    Ok((
        native,
        ResponseOptions {
            stream,
            include_usage,
            echo,
        },
    ))
}

/// Validate an OpenAI embeddings request and build the native `/api/embed` request.
pub fn embed_request(request: EmbeddingRequest) -> Result<EmbedRequest, GatewayError> {
    check_model(&request.model)?;
    let input = match request.input {
        EmbeddingInput::One(text) => vec![text],
        EmbeddingInput::Many(texts) if texts.is_empty() => {
            return Err(GatewayError::invalid(
                "input",
                "input: must contain at least one string",
            ));
        }
        EmbeddingInput::Many(texts) => texts,
    };
    let dimensions = match request.dimensions {
        None => None,
        Some(d) if (1..=65_536).contains(&d) => Some(d as u32),
        Some(_) => {
            return Err(GatewayError::invalid(
                "dimensions",
                "dimensions: must be between 1 and 65536",
            ));
        }
    };
    check_keep_alive(request.keep_alive.as_ref())?;
    Ok(EmbedRequest {
        model: request.model,
        input,
        dimensions,
        truncate: request.truncate,
        keep_alive: request.keep_alive,
    })
}

/// Sampling fields shared by every surface that translates to `/api/chat` or `/api/generate`,
/// written into native `options`. Only what the client sent is written: Ollama's own layer
/// forces `temperature: 1.0` and `top_p: 1.0`, overriding the Modelfile (gap G4); we do not.
/// `max_tokens` is written as it is: the caller checks it under its own field name.
#[derive(Debug, Default)]
pub(crate) struct Sampling {
    pub(crate) max_tokens: Option<i64>,
    pub(crate) temperature: Option<f64>,
    pub(crate) top_p: Option<f64>,
    pub(crate) seed: Option<i64>,
    pub(crate) stop: Option<StopSequences>,
    pub(crate) frequency_penalty: Option<f64>,
    pub(crate) presence_penalty: Option<f64>,
    pub(crate) top_k: Option<i64>,
    pub(crate) min_p: Option<f64>,
    pub(crate) num_ctx: Option<i64>,
    pub(crate) repeat_penalty: Option<f64>,
}

impl Sampling {
    /// Check the ranges and write the fields the client sent into `options`.
    pub(crate) fn write_into(self, options: &mut Map<String, Value>) -> Result<(), GatewayError> {
        let mut set = |key: &str, value: Value| {
            options.insert(key.to_owned(), value);
        };
        if let Some(n) = self.max_tokens {
            set("num_predict", json!(n));
        }
        if let Some(t) = check_range("temperature", self.temperature, 0.0, 2.0)? {
            set("temperature", json!(t));
        }
        if let Some(p) = check_range("top_p", self.top_p, 0.0, 1.0)? {
            set("top_p", json!(p));
        }
        if let Some(seed) = self.seed {
            set("seed", json!(seed));
        }
        if let Some(stop) = self.stop {
            let stop = stop.into_vec();
            if stop.iter().any(String::is_empty) {
                return Err(GatewayError::invalid(
                    "stop",
                    "stop: sequences must not be empty",
                ));
            }
            set("stop", json!(stop));
        }
        if let Some(p) = check_range("frequency_penalty", self.frequency_penalty, -2.0, 2.0)? {
            set("frequency_penalty", json!(p));
        }
        if let Some(p) = check_range("presence_penalty", self.presence_penalty, -2.0, 2.0)? {
            set("presence_penalty", json!(p));
        }
        if let Some(k) = check_range_int("top_k", self.top_k, 1, i64::from(u32::MAX))? {
            set("top_k", json!(k));
        }
        if let Some(p) = check_range("min_p", self.min_p, 0.0, 1.0)? {
            set("min_p", json!(p));
        }
        if let Some(n) = check_range_int("num_ctx", self.num_ctx, 1, i64::from(u32::MAX))? {
            set("num_ctx", json!(n));
        }
        if let Some(p) = check_range("repeat_penalty", self.repeat_penalty, 0.0, 10.0)? {
            set("repeat_penalty", json!(p));
        }
        Ok(())
    }
}

/// `model` must name something: not empty, not only whitespace (Ollama answers "model is
/// required" for a name of spaces; the document's `pattern: \S` says it).
pub(crate) fn check_model(model: &str) -> Result<(), GatewayError> {
    if model.trim().is_empty() {
        return Err(GatewayError::invalid("model", "model: must not be empty"));
    }
    Ok(())
}

fn check_n(n: Option<i64>) -> Result<(), GatewayError> {
    match n {
        None | Some(1) => Ok(()),
        Some(n) if n < 1 => Err(GatewayError::invalid("n", "n: must be at least 1")),
        Some(_) => Err(GatewayError::invalid(
            "n",
            "n: only 1 choice per request is supported; send several requests instead",
        )),
    }
}

pub(crate) fn check_max_tokens(
    param: &str,
    value: Option<i64>,
) -> Result<Option<i64>, GatewayError> {
    match value {
        Some(n) if n < 1 => Err(GatewayError::invalid(
            param,
            format!("{param}: must be at least 1 (got {n})"),
        )),
        other => Ok(other),
    }
}

pub(crate) fn check_range(
    param: &str,
    value: Option<f64>,
    min: f64,
    max: f64,
) -> Result<Option<f64>, GatewayError> {
    match value {
        Some(v) if !(min..=max).contains(&v) => Err(GatewayError::invalid(
            param,
            format!("{param}: must be between {min} and {max} (got {v})"),
        )),
        other => Ok(other),
    }
}

pub(crate) fn check_range_int(
    param: &str,
    value: Option<i64>,
    min: i64,
    max: i64,
) -> Result<Option<i64>, GatewayError> {
    match value {
        Some(v) if !(min..=max).contains(&v) => Err(GatewayError::invalid(
            param,
            format!("{param}: must be between {min} and {max} (got {v})"),
        )),
        other => Ok(other),
    }
}

/// `think` as the document describes it: `true`/`false` or a level (`low`, `medium`, `high`,
/// `max`). Anything else (a number, an object) would reach Ollama unchecked.
pub(crate) fn check_think(think: Option<&Value>) -> Result<(), GatewayError> {
    match think {
        None | Some(Value::Bool(_)) => Ok(()),
        Some(Value::String(level))
            if matches!(level.as_str(), "low" | "medium" | "high" | "max") =>
        {
            Ok(())
        }
        Some(_) => Err(GatewayError::invalid(
            "think",
            "think: must be true, false, \"low\", \"medium\", \"high\" or \"max\"",
        )),
    }
}

/// `keep_alive` as the document describes it: a duration string (`"5m"`) or seconds.
pub(crate) fn check_keep_alive(keep_alive: Option<&Value>) -> Result<(), GatewayError> {
    match keep_alive {
        None | Some(Value::String(_) | Value::Number(_)) => Ok(()),
        Some(_) => Err(GatewayError::invalid(
            "keep_alive",
            "keep_alive: must be a duration string such as \"5m\" or a number of seconds",
        )),
    }
}

/// `reasoning_effort` → native `think`, per Ollama's own table.
pub(crate) fn think_from_effort(param: &str, effort: &str) -> Result<Option<Value>, GatewayError> {
    Ok(Some(match effort.trim().to_ascii_lowercase().as_str() {
        "" => return Ok(None),
        "none" => Value::Bool(false),
        "minimal" => "low".into(),
        level @ ("low" | "medium" | "high" | "max") => level.into(),
        "xhigh" | "ultra" => "max".into(),
        other => {
            return Err(GatewayError::invalid(
                param,
                format!(
                    "{param}: invalid value '{other}' (must be none, minimal, low, medium, high, xhigh, ultra or max)"
                ),
            ));
        }
    }))
}

/// Apply `tool_choice` to the tool list and serialise the survivors. Ollama ignores
/// `tool_choice` (gap G2): `none` must send no tools, a named function only that one.
/// `parameters` go upstream verbatim (Ollama's layer drops keys it does not know, gap G11).
fn select_tools(
    tools: Option<Vec<Tool>>,
    choice: Option<ToolChoice>,
) -> Result<Option<Vec<Value>>, GatewayError> {
    let Some(tools) = tools.filter(|t| !t.is_empty()) else {
        return match choice {
            Some(ToolChoice::Named(_)) | Some(ToolChoice::Mode(ToolChoiceMode::Required)) => {
                Err(GatewayError::invalid(
                    "tool_choice",
                    "tool_choice: requires a non-empty tools list",
                ))
            }
            _ => Ok(None),
        };
    };
    for (i, tool) in tools.iter().enumerate() {
        if tool.function.name.trim().is_empty() {
            return Err(GatewayError::invalid(
                format!("tools[{i}].function.name"),
                format!("tools[{i}].function.name: must not be empty"),
            ));
        }
        if tool
            .function
            .parameters
            .as_ref()
            .is_some_and(|p| !p.is_object())
        {
            return Err(GatewayError::invalid(
                format!("tools[{i}].function.parameters"),
                format!("tools[{i}].function.parameters: must be a JSON schema object"),
            ));
        }
    }
    let selected: Vec<&Tool> = match &choice {
        Some(ToolChoice::Mode(ToolChoiceMode::None)) => return Ok(None),
        Some(ToolChoice::Named(named)) => {
            let wanted = &named.function.name;
            let chosen: Vec<&Tool> = tools
                .iter()
                .filter(|t| &t.function.name == wanted)
                .collect();
            if chosen.is_empty() {
                return Err(GatewayError::invalid(
                    "tool_choice",
                    format!("tool_choice: function '{wanted}' is not in tools"),
                ));
            }
            chosen
        }
        _ => tools.iter().collect(),
    };
    Ok(Some(
        selected
            .into_iter()
            .map(|tool| {
                native_tool(
                    &tool.function.name,
                    tool.function.description.as_deref(),
                    tool.function.parameters.as_ref(),
                )
            })
            .collect(),
    ))
}

/// One function tool in Ollama's shape; `parameters` verbatim.
pub(crate) fn native_tool(
    name: &str,
    description: Option<&str>,
    parameters: Option<&Value>,
) -> Value {
    let mut function = Map::new();
    function.insert("name".into(), name.into());
    if let Some(description) = description {
        function.insert("description".into(), description.into());
    }
    if let Some(parameters) = parameters {
        function.insert("parameters".into(), parameters.clone());
    }
    json!({"type": "function", "function": function})
}

/// Convert the conversation. Keeps one native message per OpenAI message.
fn messages(messages: Vec<ChatMessage>) -> Result<Vec<Message>, GatewayError> {
    let mut out: Vec<Message> = Vec::with_capacity(messages.len());
    for (i, message) in messages.into_iter().enumerate() {
        let role = match message.role {
            // Templates drop `developer`; OpenAI defines it as the new name of `system` (G10).
            Role::System | Role::Developer => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool | Role::Function => "tool",
        };
        let (content, images) = match message.content {
            Some(content) => content_and_images(i, content)?,
            None if matches!(message.role, Role::Assistant | Role::Tool | Role::Function) => {
                (String::new(), Vec::new())
            }
            None => {
                return Err(GatewayError::invalid(
                    format!("messages[{i}].content"),
                    format!("messages[{i}].content: required for {role} messages"),
                ));
            }
        };
        let mut tool_calls = Vec::new();
        for (j, call) in message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let arguments = arguments_object(
                &format!("messages[{i}].tool_calls[{j}].function.arguments"),
                &call.function.arguments.unwrap_or_default(),
            )?;
            tool_calls.push(ToolCall {
                id: call.id,
                function: ToolCallFunction {
                    index: Some(j as u32),
                    name: call.function.name,
                    arguments,
                },
            });
        }
        let tool_name = if role == "tool" {
            message.name.clone().or_else(|| {
                let id = message.tool_call_id.as_deref()?;
                out.iter()
                    .rev()
                    .flat_map(|m| m.tool_calls.iter())
                    .find(|c| c.id.as_deref() == Some(id))
                    .map(|c| c.function.name.clone())
            })
        } else {
            None
        };
        out.push(Message {
            role: role.to_owned(),
            content,
            thinking: message
                .reasoning
                .or(message.reasoning_content)
                .filter(|t| !t.is_empty()),
            images,
            tool_calls,
            tool_name,
            tool_call_id: if role == "tool" {
                message.tool_call_id
            } else {
                None
            },
        });
    }
    Ok(out)
}

/// Text and images of one message's content.
fn content_and_images(
    i: usize,
    content: MessageContent,
) -> Result<(String, Vec<String>), GatewayError> {
    let parts = match content {
        MessageContent::Text(text) => return Ok((text, Vec::new())),
        MessageContent::Parts(parts) => parts,
    };
    let mut texts = Vec::new();
    let mut images = Vec::new();
    for (j, part) in parts.into_iter().enumerate() {
        match part {
            ContentPart::Text { text } => texts.push(text),
            ContentPart::ImageUrl { image_url } => {
                let param = format!("messages[{i}].content[{j}].image_url");
                images.push(image_from_data_url(&param, image_url.url())?);
            }
            ContentPart::InputAudio { input_audio } => {
                let param = format!("messages[{i}].content[{j}].input_audio.data");
                check_base64(&param, &input_audio.data)?;
                images.push(input_audio.data);
            }
        }
    }
    Ok((texts.join("\n"), images))
}

/// A tool call's `arguments` (the JSON text of an object, or nothing) → the object Ollama
/// takes. Other JSON (`0`, `[1]`) is refused too: Ollama refuses arguments that are not an
/// object.
pub(crate) fn arguments_object(param: &str, raw: &str) -> Result<Value, GatewayError> {
    if raw.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str(raw) {
        Ok(object @ Value::Object(_)) => Ok(object),
        _ => Err(GatewayError::invalid(
            param,
            format!("{param}: must be the JSON text of an object"),
        )),
    }
}

/// `data:image/<any>;base64,<data>` → the base64 payload, checked.
pub(crate) fn image_from_data_url(param: &str, url: &str) -> Result<String, GatewayError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Err(GatewayError::invalid(
            param,
            format!(
                "{param}: remote image URLs are not supported; send the image as a base64 data: URL"
            ),
        ));
    }
    let rest = url.strip_prefix("data:").ok_or_else(|| {
        GatewayError::invalid(
            param,
            format!("{param}: must be a data: URL such as data:image/png;base64,..."),
        )
    })?;
    let (header, data) = rest.split_once(',').ok_or_else(|| {
        GatewayError::invalid(
            param,
            format!("{param}: data: URL has no ',' before the data"),
        )
    })?;
    let media = header.strip_suffix(";base64").ok_or_else(|| {
        GatewayError::invalid(param, format!("{param}: data: URL must be base64-encoded"))
    })?;
    if !(media.is_empty() || media.starts_with("image/")) {
        return Err(GatewayError::invalid(
            param,
            format!("{param}: media type '{media}' is not an image"),
        ));
    }
    check_base64(param, data)?;
    Ok(data.to_owned())
}

/// What [`check_base64`] takes, as a regular expression: standard base64 with its padding and
/// no stray bits in its last character, not empty, ASCII whitespace around it allowed.
macro_rules! base64_regex {
    () => {
        "[\\t\\n\\f\\r ]*(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)[\\t\\n\\f\\r ]*"
    };
}

/// The document's `pattern` for base64 data ([`check_base64`]).
pub const BASE64_PATTERN: &str = concat!("^", base64_regex!(), "$");

/// The document's `pattern` for an image `data:` URL ([`image_from_data_url`]): an `image/*`
/// type or none, then `;base64,` and the data.
pub const DATA_IMAGE_URL_PATTERN: &str =
    concat!("^data:(?:image/[^,]*)?;base64,", base64_regex!(), "$");

pub(crate) fn check_base64(param: &str, data: &str) -> Result<(), GatewayError> {
    // ASCII whitespace only, as the pattern says (`str::trim` would take Unicode's too).
    let data = data.trim_matches(|c: char| c.is_ascii_whitespace());
    let decoded = base64::engine::general_purpose::STANDARD.decode(data);
    match decoded {
        Ok(bytes) if !bytes.is_empty() => Ok(()),
        _ => Err(GatewayError::invalid(
            param,
            format!("{param}: not valid base64 data"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: Value) -> Result<(ChatRequest, ResponseOptions), GatewayError> {
        let request: ChatCompletionRequest =
            serde_json::from_value(body).map_err(|e| GatewayError::InvalidRequest {
                message: e.to_string(),
                param: None,
            })?;
        chat_request(request)
    }

    fn native(body: Value) -> Value {
        match chat(body) {
            Ok((request, _)) => serde_json::to_value(request).unwrap_or_default(),
            Err(err) => panic!("unexpected refusal: {err}"),
        }
    }

    fn refusal(body: Value) -> (Option<String>, String) {
        match chat(body) {
            Err(GatewayError::InvalidRequest { message, param }) => (param, message),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

    #[test]
    fn stream_is_always_explicit_and_nothing_is_forced() {
        let out = native(json!({"model":"m","messages":[{"role":"user","content":"hi"}]}));
        assert_eq!(out["stream"], false);
        assert!(
            out.get("options").is_none(),
            "no forced temperature/top_p: {out}"
        );
    }

    #[test]
    fn max_completion_tokens_wins_over_max_tokens() {
        let out = native(
            json!({"model":"m","messages":[{"role":"user","content":"hi"}],
            "max_tokens": 10, "max_completion_tokens": 20}),
        );
        assert_eq!(out["options"]["num_predict"], 20);
        let out = native(
            json!({"model":"m","messages":[{"role":"user","content":"hi"}],
            "max_tokens": 10}),
        );
        assert_eq!(out["options"]["num_predict"], 10);
    }

    #[test]
    fn sampling_fields_and_extensions_reach_options() {
        let out = native(
            json!({"model":"m","messages":[{"role":"user","content":"hi"}],
            "temperature": 0.2, "top_p": 0.9, "seed": 7, "stop": "END",
            "frequency_penalty": 0.5, "presence_penalty": -0.5, "top_k": 40, "min_p": 0.05,
            "num_ctx": 8192, "repeat_penalty": 1.1, "keep_alive": "10m", "think": true,
            "options": {"num_gpu": 1, "temperature": 1.5}}),
        );
        let o = &out["options"];
        assert_eq!(o["temperature"], 0.2, "explicit field wins over options");
        assert_eq!(o["top_p"], 0.9);
        assert_eq!(o["seed"], 7);
        assert_eq!(o["stop"], json!(["END"]));
        assert_eq!(o["frequency_penalty"], 0.5);
        assert_eq!(o["presence_penalty"], -0.5);
        assert_eq!(o["top_k"], 40);
        assert_eq!(o["min_p"], 0.05);
        assert_eq!(o["num_ctx"], 8192);
        assert_eq!(o["repeat_penalty"], 1.1);
        assert_eq!(o["num_gpu"], 1);
        assert_eq!(out["keep_alive"], "10m");
        assert_eq!(out["think"], true);
    }

    #[test]
    fn response_formats_translate() {
        let base = json!({"model":"m","messages":[{"role":"user","content":"hi"}]});
        let mut json_object = base.clone();
        json_object["response_format"] = json!({"type":"json_object"});
        assert_eq!(native(json_object)["format"], "json");
        let schema = json!({"type":"object","properties":{"a":{"type":"integer","minimum":0}},
            "required":["a"],"additionalProperties":false});
        let mut json_schema = base.clone();
        json_schema["response_format"] =
            json!({"type":"json_schema","json_schema":{"name":"x","strict":true,"schema":schema}});
        assert_eq!(native(json_schema)["format"], schema);
        let mut text = base;
        text["response_format"] = json!({"type":"text"});
        assert!(native(text).get("format").is_none());
    }

    #[test]
    fn tools_are_forwarded_verbatim_and_tool_choice_is_honoured() {
        let params = json!({"type":"object","properties":{"city":{"type":"string","pattern":"^[A-Z]"}},
            "additionalProperties":false,"$defs":{"x":{"oneOf":[{"type":"string"}]}}});
        let tools = json!([
            {"type":"function","function":{"name":"get_weather","description":"d","parameters":params,"strict":true}},
            {"type":"function","function":{"name":"get_time","parameters":{"type":"object"}}}
        ]);
        let body = |choice: Value| {
            json!({"model":"m","messages":[{"role":"user","content":"hi"}],
                "tools": tools.clone(), "tool_choice": choice})
        };
        let out = native(body(json!("auto")));
        assert_eq!(out["tools"][0]["function"]["parameters"], params);
        assert_eq!(out["tools"].as_array().map(Vec::len), Some(2));
        assert!(native(body(json!("none"))).get("tools").is_none());
        let named = native(body(
            json!({"type":"function","function":{"name":"get_time"}}),
        ));
        assert_eq!(named["tools"].as_array().map(Vec::len), Some(1));
        assert_eq!(named["tools"][0]["function"]["name"], "get_time");
        let (param, _) = refusal(body(json!({"type":"function","function":{"name":"nope"}})));
        assert_eq!(param.as_deref(), Some("tool_choice"));
    }

    #[test]
    fn reasoning_effort_maps_to_think() {
        let with = |field: Value| {
            let mut body = json!({"model":"m","messages":[{"role":"user","content":"hi"}]});
            if let (Some(obj), Some(extra)) = (body.as_object_mut(), field.as_object()) {
                obj.extend(extra.clone());
            }
            body
        };
        assert_eq!(
            native(with(json!({"reasoning_effort":"none"})))["think"],
            false
        );
        assert_eq!(
            native(with(json!({"reasoning_effort":"minimal"})))["think"],
            "low"
        );
        assert_eq!(
            native(with(json!({"reasoning_effort":"high"})))["think"],
            "high"
        );
        assert_eq!(
            native(with(json!({"reasoning_effort":"xhigh"})))["think"],
            "max"
        );
        assert_eq!(
            native(with(
                json!({"reasoning_effort":"low","reasoning":{"effort":"high"}})
            ))["think"],
            "high"
        );
        let (param, message) = refusal(with(json!({"reasoning_effort":"extreme"})));
        assert_eq!(param.as_deref(), Some("reasoning_effort"));
        assert!(message.contains("extreme"));
    }

    #[test]
    fn messages_convert_roles_parts_tool_calls_and_tool_names() {
        let out = native(json!({"model":"m","messages":[
            {"role":"developer","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"what is this?"},
                {"type":"image_url","image_url":{"url":format!("data:image/png;base64,{PNG}")}},
                {"type":"image_url","image_url":format!("data:image/gif;base64,{PNG}")}]},
            {"role":"assistant","content":null,"reasoning_content":"thought",
             "tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Tokyo\"}"}}]},
            {"role":"tool","tool_call_id":"call_1","content":"sunny"}
        ]}));
        let m = &out["messages"];
        assert_eq!(m[0]["role"], "system");
        assert_eq!(m[1]["content"], "what is this?");
        assert_eq!(m[1]["images"], json!([PNG, PNG]));
        assert_eq!(m[2]["content"], "");
        assert_eq!(m[2]["thinking"], "thought");
        assert_eq!(
            m[2]["tool_calls"][0]["function"]["arguments"],
            json!({"city":"Tokyo"})
        );
        assert_eq!(m[3]["tool_name"], "get_weather");
        assert_eq!(m[3]["tool_call_id"], "call_1");
    }

    #[test]
    fn bad_input_is_refused_with_the_field_named() {
        let msg = json!([{"role":"user","content":"hi"}]);
        let cases = [
            (json!({"model":"m","messages":[]}), "messages"),
            (json!({"model":"","messages":msg}), "model"),
            (
                json!({"model":"m","messages":msg,"temperature":2.5}),
                "temperature",
            ),
            (json!({"model":"m","messages":msg,"top_p":-0.1}), "top_p"),
            (
                json!({"model":"m","messages":msg,"presence_penalty":3}),
                "presence_penalty",
            ),
            (
                json!({"model":"m","messages":msg,"frequency_penalty":-3}),
                "frequency_penalty",
            ),
            (
                json!({"model":"m","messages":msg,"max_tokens":0}),
                "max_tokens",
            ),
            (
                json!({"model":"m","messages":msg,"max_completion_tokens":-5}),
                "max_completion_tokens",
            ),
            (
                json!({"model":"m","messages":msg,"top_logprobs":21}),
                "top_logprobs",
            ),
            (json!({"model":"m","messages":msg,"n":2}), "n"),
            (json!({"model":"m","messages":msg,"think":-58800}), "think"),
            (
                json!({"model":"m","messages":msg,"response_format":{"type":"json_schema","json_schema":{"schema":[null]}}}),
                "response_format.json_schema.schema",
            ),
            (
                json!({"model":"m","messages":msg,"tools":[{"type":"function","function":{"name":"f","parameters":[null]}}]}),
                "tools[0].function.parameters",
            ),
            (
                json!({"model":"m","messages":msg,"think":"extreme"}),
                "think",
            ),
            (
                json!({"model":"m","messages":msg,"keep_alive":{}}),
                "keep_alive",
            ),
            (
                json!({"model":"m","messages":[{"role":"user","content":null}]}),
                "messages[0].content",
            ),
            (
                json!({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}),
                "messages[0].content[0].image_url",
            ),
            (
                json!({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,!!!"}}]}]}),
                "messages[0].content[0].image_url",
            ),
            (
                json!({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:text/plain;base64,aGk="}}]}]}),
                "messages[0].content[0].image_url",
            ),
            (
                json!({"model":"m","messages":[{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"{oops"}}]}]}),
                "messages[0].tool_calls[0].function.arguments",
            ),
        ];
        for (body, field) in cases {
            let (param, message) = refusal(body.clone());
            assert_eq!(param.as_deref(), Some(field), "for {body}");
            assert!(
                message.contains(field),
                "message '{message}' should name {field}"
            );
        }
    }

    #[test]
    fn completions_and_embeddings_translate() {
        let request: CompletionRequest = serde_json::from_value(
            json!({"model":"m","prompt":"p","max_tokens":5,"stream":true,"logprobs":2,"stop":["a","b"]}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (native, opts) = completion_request(request).unwrap_or_else(|e| panic!("{e}"));
        let native = serde_json::to_value(native).unwrap_or_default();
        assert_eq!(native["options"]["num_predict"], 5);
        assert_eq!(native["options"]["stop"], json!(["a", "b"]));
        assert!(native["options"].get("frequency_penalty").is_none());
        assert_eq!(native["logprobs"], true);
        assert_eq!(native["top_logprobs"], 2);
        assert!(opts.stream);

        let request: EmbeddingRequest =
            serde_json::from_value(json!({"model":"e","input":"x","dimensions":4}))
                .unwrap_or_else(|e| panic!("{e}"));
        let native = embed_request(request).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(native.input, vec!["x".to_owned()]);
        assert_eq!(native.dimensions, Some(4));
        let request: EmbeddingRequest = serde_json::from_value(json!({"model":"e","input":[]}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(embed_request(request).is_err());
    }
}
