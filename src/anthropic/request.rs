//! Anthropic Messages requests → Ollama `/api/chat` requests: validation and translation in one
//! pass. Pure functions, unit-tested without a server; every refusal names the field at fault.

use serde_json::{Map, Value, json};

use super::types::{
    ContentBlockParam, ImageParam, ImageSource, InputMessage, InputRole, MessageParamContent,
    MessagesRequest, SystemPrompt, TextParam, ThinkingConfig, ThinkingParam, ToolChoice,
    ToolResultBlock, ToolResultContent, ToolResultParam, ToolUseParam,
};
use crate::error::GatewayError;
use crate::ollama::types::{ChatRequest, Message, ToolCall, ToolCallFunction};
use crate::openai::request::{
    Sampling, check_base64, check_max_tokens, check_model, check_range, native_tool,
};
use crate::openai::types::StopSequences;

/// What the request is for: an answer, or only the prompt's token count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// `POST /v1/messages`: `max_tokens` is required.
    Create,
    /// `POST /v1/messages/count_tokens`: one token is generated, to learn the prompt's count.
    CountTokens,
}

/// Validate a Messages request and build the native `/api/chat` request; also returns whether
/// the client asked for a stream.
pub fn chat_request(
    request: MessagesRequest,
    purpose: Purpose,
) -> Result<(ChatRequest, bool), GatewayError> {
    check_model(&request.model)?;
    let max_tokens = match (purpose, request.max_tokens) {
        (Purpose::Create, None) => {
            return Err(GatewayError::invalid(
                "max_tokens",
                "max_tokens: field required",
            ));
        }
        (Purpose::Create, max) => check_max_tokens("max_tokens", max)?,
        // Counting generates one token: the prompt is evaluated and counted, nothing more.
        (Purpose::CountTokens, _) => Some(1),
    };
    if request.messages.is_empty() {
        return Err(GatewayError::invalid(
            "messages",
            "messages: must contain at least one message",
        ));
    }
    // Anthropic's range is 0..=1 (OpenAI's is 0..=2).
    check_range("temperature", request.temperature, 0.0, 1.0)?;
    if let Some(stops) = &request.stop_sequences
        && let Some(i) = stops.iter().position(String::is_empty)
    {
        return Err(GatewayError::invalid(
            format!("stop_sequences[{i}]"),
            format!("stop_sequences[{i}]: must not be empty"),
        ));
    }
    // Checked when counting too (the document's minimum), though counting does not think.
    if let Some(ThinkingConfig::Enabled { budget_tokens }) = &request.thinking
        && *budget_tokens < 1024
    {
        return Err(GatewayError::invalid(
            "thinking.budget_tokens",
            format!("thinking.budget_tokens: must be at least 1024 (got {budget_tokens})"),
        ));
    }
    let think = match (&request.thinking, purpose) {
        (_, Purpose::CountTokens) | (None, _) => None,
        (Some(ThinkingConfig::Disabled), _) => Some(Value::Bool(false)),
        (Some(ThinkingConfig::Adaptive), _) => Some(Value::Bool(true)),
        (Some(ThinkingConfig::Enabled { budget_tokens }), _) => {
            if max_tokens.is_some_and(|max| *budget_tokens >= max) {
                return Err(GatewayError::invalid(
                    "thinking.budget_tokens",
                    "thinking.budget_tokens: must be less than max_tokens",
                ));
            }
            // Ollama has no thinking budget: thinking is on or off.
            Some(Value::Bool(true))
        }
    };

    let tools = tools(&request)?;
    let has_stops = purpose == Purpose::Create
        && request
            .stop_sequences
            .as_ref()
            .is_some_and(|stops| !stops.is_empty());
    let mut options = Map::new();
    Sampling {
        max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.top_k,
        stop: request.stop_sequences.map(StopSequences::Many),
        ..Sampling::default()
    }
    .write_into(&mut options)?;

    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = request.system {
        let text = match system {
            SystemPrompt::Text(text) => text,
            SystemPrompt::Blocks(blocks) => blocks
                .into_iter()
                .map(|b| b.text)
                .collect::<Vec<_>>()
                .join("\n"),
        };
        if !text.is_empty() {
            messages.push(Message {
                role: "system".into(),
                content: text,
                ..Message::default()
            });
        }
    }
    for (i, message) in request.messages.into_iter().enumerate() {
        convert_message(i, message, &mut messages)?;
    }
    let stream = purpose == Purpose::Create && request.stream.unwrap_or(false);
    Ok((
        ChatRequest {
            model: request.model,
            messages,
            stream: Some(stream),
            tools,
            format: None,
            options,
            keep_alive: None,
            think,
            // Only with logprobs does Ollama show enough to tell a stop sequence from the end
            // of the turn (`super::stop`); they are not passed on.
            logprobs: has_stops.then_some(true),
            top_logprobs: None,
            extra: Map::new(),
        },
        stream,
    ))
}

/// The tools that go upstream after `tool_choice`: `none` sends none, `tool` only the named one,
/// `any` (which Ollama cannot enforce) and `auto` all of them.
fn tools(request: &MessagesRequest) -> Result<Option<Vec<Value>>, GatewayError> {
    let declared = request.tools.as_deref().unwrap_or_default();
    for (i, tool) in declared.iter().enumerate() {
        if let Some(kind) = tool.r#type.as_deref().filter(|k| *k != "custom") {
            return Err(GatewayError::invalid(
                format!("tools[{i}].type"),
                format!(
                    "tools[{i}].type: server tool '{kind}' is not supported; only client tools with an input_schema"
                ),
            ));
        }
        if tool.name.is_empty() {
            return Err(GatewayError::invalid(
                format!("tools[{i}].name"),
                format!("tools[{i}].name: must not be empty"),
            ));
        }
        if !tool.input_schema.as_ref().is_some_and(Value::is_object) {
            return Err(GatewayError::invalid(
                format!("tools[{i}].input_schema"),
                format!("tools[{i}].input_schema: required, a JSON schema object"),
            ));
        }
    }
    let only = match &request.tool_choice {
        Some(ToolChoice::None) => return Ok(None),
        Some(ToolChoice::Tool { name, .. }) => {
            if !declared.iter().any(|t| &t.name == name) {
                return Err(GatewayError::invalid(
                    "tool_choice.name",
                    format!("tool_choice.name: tool '{name}' is not in tools"),
                ));
            }
            Some(name.as_str())
        }
        Some(ToolChoice::Any { .. }) if declared.is_empty() => {
            return Err(GatewayError::invalid(
                "tool_choice",
                "tool_choice: 'any' requires a non-empty tools list",
            ));
        }
        _ => None,
    };
    if declared.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        declared
            .iter()
            .filter(|t| only.is_none_or(|name| t.name == name))
            .map(|t| native_tool(&t.name, t.description.as_deref(), t.input_schema.as_ref()))
            .collect(),
    ))
}

/// One Anthropic message → native messages: an assistant turn becomes one message (text,
/// thinking, tool calls); a user turn becomes one `tool` message per `tool_result`, then one
/// user message with the text and images, if any.
fn convert_message(
    i: usize,
    message: InputMessage,
    out: &mut Vec<Message>,
) -> Result<(), GatewayError> {
    let role = match message.role {
        InputRole::User => "user",
        InputRole::Assistant => "assistant",
    };
    let blocks = match message.content {
        MessageParamContent::Text(text) => {
            out.push(Message {
                role: role.into(),
                content: text,
                ..Message::default()
            });
            return Ok(());
        }
        MessageParamContent::Blocks(blocks) => blocks,
    };
    let mut texts = Vec::new();
    let mut images = Vec::new();
    let mut thinking = Vec::new();
    let mut tool_calls = Vec::new();
    let mut tool_results = Vec::new();
    for (j, block) in blocks.into_iter().enumerate() {
        let at = format!("messages[{i}].content[{j}]");
        match block {
            ContentBlockParam::Text(TextParam { text }) => texts.push(text),
            ContentBlockParam::Image(ImageParam { source }) => images.push(image(&at, source)?),
            ContentBlockParam::Thinking(ThinkingParam { thinking: t, .. })
                if role == "assistant" =>
            {
                thinking.push(t);
            }
            ContentBlockParam::Thinking(_) | ContentBlockParam::RedactedThinking(_) => {}
            ContentBlockParam::ToolUse(ToolUseParam { id, name, input }) => {
                if role != "assistant" {
                    return Err(GatewayError::invalid(
                        at.clone(),
                        format!("{at}: tool_use blocks belong in assistant messages"),
                    ));
                }
                let arguments = match input {
                    Value::Null => json!({}),
                    Value::Object(map) => Value::Object(map),
                    _ => {
                        return Err(GatewayError::invalid(
                            format!("{at}.input"),
                            format!("{at}.input: must be an object"),
                        ));
                    }
                };
                tool_calls.push(ToolCall {
                    id: Some(id),
                    function: ToolCallFunction {
                        index: Some(tool_calls.len() as u32),
                        name,
                        arguments,
                    },
                });
            }
            ContentBlockParam::ToolResult(ToolResultParam {
                tool_use_id,
                content,
                is_error,
            }) => {
                if role != "user" {
                    return Err(GatewayError::invalid(
                        at.clone(),
                        format!("{at}: tool_result blocks belong in user messages"),
                    ));
                }
                let (mut text, result_images) = tool_result(&at, content)?;
                if is_error == Some(true) {
                    text = format!("Error: {text}");
                }
                let tool_name = out
                    .iter()
                    .rev()
                    .flat_map(|m| m.tool_calls.iter())
                    .find(|c| c.id.as_deref() == Some(tool_use_id.as_str()))
                    .map(|c| c.function.name.clone());
                tool_results.push(Message {
                    role: "tool".into(),
                    content: text,
                    images: result_images,
                    tool_name,
                    tool_call_id: Some(tool_use_id),
                    ..Message::default()
                });
            }
        }
    }
    out.extend(tool_results);
    let has_body = !texts.is_empty() || !images.is_empty() || !tool_calls.is_empty();
    if has_body || (role == "assistant" && !thinking.is_empty()) || out.is_empty() {
        out.push(Message {
            role: role.into(),
            content: texts.join("\n"),
            thinking: (!thinking.is_empty()).then(|| thinking.join("\n")),
            images,
            tool_calls,
            ..Message::default()
        });
    }
    Ok(())
}

/// A tool result's text and images.
fn tool_result(
    at: &str,
    content: Option<ToolResultContent>,
) -> Result<(String, Vec<String>), GatewayError> {
    match content {
        None => Ok((String::new(), Vec::new())),
        Some(ToolResultContent::Text(text)) => Ok((text, Vec::new())),
        Some(ToolResultContent::Blocks(blocks)) => {
            let mut texts = Vec::new();
            let mut images = Vec::new();
            for (k, block) in blocks.into_iter().enumerate() {
                match block {
                    ToolResultBlock::Text { text } => texts.push(text),
                    ToolResultBlock::Image { source } => {
                        images.push(image(&format!("{at}.content[{k}]"), source)?);
                    }
                }
            }
            Ok((texts.join("\n"), images))
        }
    }
}

/// A base64 image block → the payload Ollama takes, checked.
fn image(at: &str, source: ImageSource) -> Result<String, GatewayError> {
    match source {
        ImageSource::Url { .. } => Err(GatewayError::invalid(
            format!("{at}.source"),
            format!(
                "{at}.source: remote image URLs are not supported; send the image as a base64 source"
            ),
        )),
        ImageSource::Base64 { media_type, data } => {
            if !media_type.starts_with("image/") {
                return Err(GatewayError::invalid(
                    format!("{at}.source.media_type"),
                    format!("{at}.source.media_type: '{media_type}' is not an image type"),
                ));
            }
            let param = format!("{at}.source.data");
            check_base64(&param, &data)?;
            Ok(data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(body: Value, purpose: Purpose) -> Result<(ChatRequest, bool), GatewayError> {
        let request: MessagesRequest =
            serde_json::from_value(body).map_err(|e| GatewayError::InvalidRequest {
                message: e.to_string(),
                param: None,
            })?;
        chat_request(request, purpose)
    }

    fn native(body: Value) -> Value {
        match translate(body, Purpose::Create) {
            Ok((request, _)) => serde_json::to_value(request).unwrap_or_default(),
            Err(err) => panic!("unexpected refusal: {err}"),
        }
    }

    fn refused(body: Value) -> String {
        match translate(body, Purpose::Create) {
            Err(GatewayError::InvalidRequest { param, .. }) => param.unwrap_or_default(),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

    #[test]
    fn system_sampling_and_thinking_translate() {
        let out = native(json!({"model":"m","max_tokens":2048,
            "system":[{"type":"text","text":"be brief"},{"type":"text","text":"be kind"}],
            "messages":[{"role":"user","content":"hi"}],
            "temperature":0.5,"top_p":0.9,"top_k":40,"stop_sequences":["END"],
            "thinking":{"type":"enabled","budget_tokens":1024},"stream":true}));
        assert_eq!(
            out["messages"][0],
            json!({"role":"system","content":"be brief\nbe kind"})
        );
        assert_eq!(out["messages"][1]["content"], "hi");
        let o = &out["options"];
        assert_eq!(o["num_predict"], 2048);
        assert_eq!(o["temperature"], 0.5);
        assert_eq!(o["top_p"], 0.9);
        assert_eq!(o["top_k"], 40);
        assert_eq!(o["stop"], json!(["END"]));
        assert_eq!(
            out["logprobs"], true,
            "asked for, to tell which stop matched"
        );
        assert_eq!(out["think"], true);
        assert_eq!(out["stream"], true);
    }

    #[test]
    fn tool_use_and_tool_results_become_native_tool_turns() {
        let out = native(json!({"model":"m","max_tokens":100,
        "tools":[{"name":"get_weather","description":"d","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
        "messages":[
            {"role":"user","content":[{"type":"text","text":"weather?"},
                {"type":"image","source":{"type":"base64","media_type":"image/png","data":PNG}}]},
            {"role":"assistant","content":[{"type":"thinking","thinking":"need a tool","signature":""},
                {"type":"text","text":"Checking."},
                {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Tokyo"}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"sunny"}]},
                {"type":"text","text":"and tomorrow?"}]}
        ]}));
        let m = &out["messages"];
        assert_eq!(m[0]["images"], json!([PNG]));
        assert_eq!(m[1]["role"], "assistant");
        assert_eq!(m[1]["content"], "Checking.");
        assert_eq!(m[1]["thinking"], "need a tool");
        assert_eq!(m[1]["tool_calls"][0]["id"], "toolu_1");
        assert_eq!(
            m[1]["tool_calls"][0]["function"]["arguments"],
            json!({"city":"Tokyo"})
        );
        assert_eq!(
            m[2],
            json!({"role":"tool","content":"sunny","tool_name":"get_weather","tool_call_id":"toolu_1"})
        );
        assert_eq!(m[3], json!({"role":"user","content":"and tomorrow?"}));
        assert_eq!(out["tools"][0]["function"]["name"], "get_weather");
        assert_eq!(
            out["tools"][0]["function"]["parameters"]["properties"]["city"]["type"],
            "string"
        );
    }

    #[test]
    fn tool_choice_is_honoured() {
        let body = |choice: Value| {
            json!({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],
                "tools":[{"name":"a","input_schema":{"type":"object"}},{"name":"b","input_schema":{"type":"object"}}],
                "tool_choice":choice})
        };
        assert_eq!(
            native(body(json!({"type":"auto"})))["tools"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        assert_eq!(
            native(body(json!({"type":"any"})))["tools"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        assert!(native(body(json!({"type":"none"}))).get("tools").is_none());
        let named = native(body(json!({"type":"tool","name":"b"})));
        assert_eq!(named["tools"].as_array().map(Vec::len), Some(1));
        assert_eq!(named["tools"][0]["function"]["name"], "b");
        assert_eq!(
            refused(body(json!({"type":"tool","name":"c"}))),
            "tool_choice.name"
        );
    }

    #[test]
    fn count_tokens_needs_no_max_tokens_and_generates_one_token() {
        let (out, stream) = translate(
            json!({"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,
                "thinking":{"type":"enabled","budget_tokens":2000}}),
            Purpose::CountTokens,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!stream);
        assert_eq!(out.options.get("num_predict"), Some(&json!(1)));
        assert!(out.think.is_none());
    }

    #[test]
    fn bad_input_is_refused_with_the_field_named() {
        let msgs = json!([{"role":"user","content":"hi"}]);
        let cases = [
            (json!({"model":"m","messages":msgs}), "max_tokens"),
            (
                json!({"model":"m","max_tokens":0,"messages":msgs}),
                "max_tokens",
            ),
            (json!({"model":"","max_tokens":5,"messages":msgs}), "model"),
            (
                json!({"model":"m","max_tokens":5,"messages":[]}),
                "messages",
            ),
            (
                json!({"model":"m","max_tokens":5,"messages":msgs,"temperature":1.5}),
                "temperature",
            ),
            (
                json!({"model":"m","max_tokens":5,"messages":msgs,"top_p":2}),
                "top_p",
            ),
            (
                json!({"model":"m","max_tokens":5,"messages":msgs,"top_k":0}),
                "top_k",
            ),
            (
                json!({"model":"m","max_tokens":5,"messages":msgs,"stop_sequences":["a",""]}),
                "stop_sequences[1]",
            ),
            (
                json!({"model":"m","max_tokens":5000,"messages":msgs,"thinking":{"type":"enabled","budget_tokens":100}}),
                "thinking.budget_tokens",
            ),
            (
                json!({"model":"m","max_tokens":1500,"messages":msgs,"thinking":{"type":"enabled","budget_tokens":2000}}),
                "thinking.budget_tokens",
            ),
            (
                json!({"model":"m","max_tokens":5,"messages":msgs,"tools":[{"name":"f"}]}),
                "tools[0].input_schema",
            ),
            (
                json!({"model":"m","max_tokens":5,"messages":msgs,"tools":[{"type":"web_search_20250305","name":"web_search"}]}),
                "tools[0].type",
            ),
            (
                json!({"model":"m","max_tokens":5,"messages":msgs,"tool_choice":{"type":"any"}}),
                "tool_choice",
            ),
            (
                json!({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}]}),
                "messages[0].content[0].source",
            ),
            (
                json!({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"!!"}}]}]}),
                "messages[0].content[0].source.data",
            ),
            (
                json!({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"text/plain","data":"aGk="}}]}]}),
                "messages[0].content[0].source.media_type",
            ),
            (
                json!({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_use","id":"x","name":"f","input":{}}]}]}),
                "messages[0].content[0]",
            ),
            (
                json!({"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"x","name":"f","input":[1]}]}]}),
                "messages[0].content[0].input",
            ),
        ];
        for (body, field) in cases {
            assert_eq!(refused(body.clone()), field, "for {body}");
        }
    }
}
