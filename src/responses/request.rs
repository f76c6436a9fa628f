//! OpenAI Responses requests → Ollama `/api/chat` requests: validation and translation in one
//! pass. Pure functions, unit-tested without a server; every refusal names the item and field
//! at fault (`input[2].arguments`). Ranges, images, tools and `reasoning.effort` are checked by
//! the helpers the chat completions translator uses, so both surfaces refuse the same things.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::types::{
    ContentPart, FunctionCallItem, FunctionCallOutputItem, FunctionOutput, FunctionTool,
    ItemContent, ItemRole, MessageItem, ReasoningConfig, ReasoningItem, ResponseInput,
    ResponsesRequest, ResponsesToolChoice, TextConfig, TextFormat, ToolChoiceMode,
};
use crate::error::GatewayError;
use crate::ollama::types::{ChatRequest, Message, ToolCall, ToolCallFunction};
use crate::openai::request::{
    Sampling, arguments_object, check_max_tokens, check_model, image_from_data_url, native_tool,
    think_from_effort,
};

/// The request fields every response object repeats (and a store would keep).
#[derive(Clone, Debug)]
pub struct Echo {
    pub model: String,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<i64>,
    pub parallel_tool_calls: bool,
    pub reasoning: ReasoningConfig,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub text: TextConfig,
    pub tool_choice: ResponsesToolChoice,
    pub tools: Vec<FunctionTool>,
    pub metadata: Map<String, Value>,
    /// The client asked for a stream.
    pub stream: bool,
    /// The response this one continues.
    pub previous_response_id: Option<String>,
    /// The response is to be stored (`store` not false, and the gateway stores responses).
    pub store: bool,
    /// When stored: the conversation before this response's output, as input items (the
    /// previous response's conversation, then this request's input; never `instructions`).
    pub input: Vec<Map<String, Value>>,
}

/// The stored conversation a `previous_response_id` continues: the previous request's input
/// items and its output items, in order.
#[derive(Clone, Debug)]
pub struct Previous {
    pub id: String,
    pub items: Vec<Map<String, Value>>,
}

/// Validate a Responses request that stands alone (nothing stored, nothing continued) and
/// build the native `/api/chat` request and the [`Echo`].
pub fn chat_request(request: ResponsesRequest) -> Result<(ChatRequest, Echo), GatewayError> {
    chat_request_from(request, None, false)
}

/// Validate a Responses request and build the native `/api/chat` request and the [`Echo`]:
/// after `previous`'s conversation when the request continues one (OpenAI's rule: the
/// previous `instructions` are not carried over, this request's apply), and with the input
/// items kept in the echo when the response is to be stored (`storing`, and `store` not false).
pub fn chat_request_from(
    request: ResponsesRequest,
    previous: Option<Previous>,
    storing: bool,
) -> Result<(ChatRequest, Echo), GatewayError> {
    check_model(&request.model)?;
    match (&request.previous_response_id, &previous) {
        (Some(_), None) => {
            return Err(GatewayError::invalid(
                "previous_response_id",
                "previous_response_id: this gateway stores no responses (GATEWAY_RESPONSES_TTL is 0); send the whole conversation in input",
            ));
        }
        (Some(id), Some(previous)) if *id != previous.id => return Err(GatewayError::Internal),
        _ => {}
    }
    if request.conversation.is_some() {
        return Err(GatewayError::invalid(
            "conversation",
            "conversation: this gateway keeps no conversations; send the whole conversation in input",
        ));
    }
    if request.background == Some(true) {
        return Err(GatewayError::invalid(
            "background",
            "background: background responses are not supported",
        ));
    }
    let max_tokens = check_max_tokens("max_output_tokens", request.max_output_tokens)?;
    if let Some(metadata) = &request.metadata
        && metadata.len() > 16
    {
        return Err(GatewayError::invalid(
            "metadata",
            "metadata: at most 16 pairs",
        ));
    }
    let mut options = Map::new();
    Sampling {
        max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        ..Sampling::default()
    }
    .write_into(&mut options)?;
    let reasoning = request.reasoning.unwrap_or_default();
    let think = match reasoning.effort.as_deref() {
        Some(effort) => think_from_effort("reasoning.effort", effort)?,
        None => None,
    };
    let tools = request.tools.unwrap_or_default();
    let native_tools = select_tools(&tools, request.tool_choice.as_ref())?;
    let text = request.text.unwrap_or_default();
    let format = match &text.format {
        None | Some(TextFormat::Text) => None,
        Some(TextFormat::JsonObject) => Some(Value::String("json".into())),
        Some(TextFormat::JsonSchema { schema, .. }) => {
            if !schema.is_object() {
                return Err(GatewayError::invalid(
                    "text.format.schema",
                    "text.format.schema: must be a JSON schema object",
                ));
            }
            Some(schema.clone())
        }
    };

    let store = storing && request.store != Some(false);
    let mut messages = Vec::new();
    if let Some(instructions) = request.instructions.as_deref().filter(|i| !i.is_empty()) {
        messages.push(text_message("system", instructions.to_owned()));
    }
    let mut kept = Vec::new();
    let previous_response_id = previous.as_ref().map(|p| p.id.clone());
    if let Some(previous) = previous {
        if store {
            kept.extend(previous.items.iter().cloned());
        }
        // The stored items were checked when they were made; if one no longer converts, the
        // fault is the stored conversation's, not this request's input.
        convert_items(previous.items, &mut messages).map_err(|err| {
            GatewayError::invalid(
                "previous_response_id",
                format!(
                    "previous_response_id: the stored conversation cannot be continued ({err})"
                ),
            )
        })?;
    }
    let items = match request.input {
        ResponseInput::Text(text) => {
            let mut item = Map::new();
            item.insert("type".into(), Value::String("message".into()));
            item.insert("role".into(), Value::String("user".into()));
            item.insert("content".into(), Value::String(text));
            vec![item]
        }
        ResponseInput::Items(items) if items.is_empty() => {
            return Err(GatewayError::invalid(
                "input",
                "input: must contain at least one item",
            ));
        }
        ResponseInput::Items(items) => items,
    };
    if store {
        kept.extend(items.iter().cloned());
    }
    convert_items(items, &mut messages)?;
    let stream = request.stream.unwrap_or(false);
    let tool_choice = request
        .tool_choice
        .unwrap_or(ResponsesToolChoice::Mode(ToolChoiceMode::Auto));
    let echo = Echo {
        model: request.model.clone(),
        instructions: request.instructions,
        max_output_tokens: request.max_output_tokens,
        parallel_tool_calls: request.parallel_tool_calls.unwrap_or(true),
        reasoning,
        temperature: request.temperature,
        top_p: request.top_p,
        text: TextConfig {
            format: Some(text.format.unwrap_or(TextFormat::Text)),
        },
        tool_choice,
        tools,
        metadata: request.metadata.unwrap_or_default(),
        stream,
        previous_response_id,
        store,
        input: kept,
    };
    let native = ChatRequest {
        model: request.model,
        messages,
        stream: Some(stream),
        tools: native_tools,
        format,
        options,
        keep_alive: None,
        think,
        logprobs: None,
        top_logprobs: None,
        extra: Map::new(),
    };
    Ok((native, echo))
}

fn text_message(role: &str, content: String) -> Message {
    Message {
        role: role.to_owned(),
        content,
        ..Message::default()
    }
}

/// Check the flat function tools and apply `tool_choice`: `none` sends none, a named function
/// only that one, `required` (which Ollama cannot enforce) and `auto` all of them.
fn select_tools(
    tools: &[FunctionTool],
    choice: Option<&ResponsesToolChoice>,
) -> Result<Option<Vec<Value>>, GatewayError> {
    let mut names = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        if tool.r#type != "function" {
            return Err(GatewayError::invalid(
                format!("tools[{i}].type"),
                format!(
                    "tools[{i}].type: '{}' tools are not supported; only function tools",
                    tool.r#type
                ),
            ));
        }
        if tool.parameters.as_ref().is_some_and(|p| !p.is_object()) {
            return Err(GatewayError::invalid(
                format!("tools[{i}].parameters"),
                format!("tools[{i}].parameters: must be a JSON schema object"),
            ));
        }
        match tool.name.as_deref() {
            Some(name) if !name.is_empty() => names.push(name),
            _ => {
                return Err(GatewayError::invalid(
                    format!("tools[{i}].name"),
                    format!("tools[{i}].name: required for function tools"),
                ));
            }
        }
    }
    let only = match choice {
        Some(ResponsesToolChoice::Mode(ToolChoiceMode::None)) => return Ok(None),
        Some(ResponsesToolChoice::Function(named)) => {
            if !names.contains(&named.name.as_str()) {
                return Err(GatewayError::invalid(
                    "tool_choice",
                    format!("tool_choice: function '{}' is not in tools", named.name),
                ));
            }
            Some(named.name.as_str())
        }
        Some(ResponsesToolChoice::Mode(ToolChoiceMode::Required)) if tools.is_empty() => {
            return Err(GatewayError::invalid(
                "tool_choice",
                "tool_choice: 'required' requires a non-empty tools list",
            ));
        }
        _ => None,
    };
    if tools.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        tools
            .iter()
            .filter(|t| only.is_none_or(|name| t.name.as_deref() == Some(name)))
            .map(|t| {
                native_tool(
                    t.name.as_deref().unwrap_or_default(),
                    t.description.as_deref(),
                    t.parameters.as_ref(),
                )
            })
            .collect(),
    ))
}

/// Parse one item as `T`, naming the field at fault under `input[i]`.
fn parse_item<T: DeserializeOwned>(i: usize, item: Value) -> Result<T, GatewayError> {
    serde_path_to_error::deserialize(item).map_err(|err| {
        let path = err.path().to_string();
        let at = if path == "." {
            format!("input[{i}]")
        } else {
            format!("input[{i}].{path}")
        };
        GatewayError::invalid(at.clone(), format!("{at}: {}", err.into_inner()))
    })
}

/// Convert the input items. Consecutive `function_call` items join the assistant message before
/// them; a `reasoning` item becomes the `thinking` of the next assistant message.
fn convert_items(
    items: Vec<Map<String, Value>>,
    out: &mut Vec<Message>,
) -> Result<(), GatewayError> {
    let mut thinking: Option<String> = None;
    // Whether the last native message may take more tool calls (an assistant turn in progress).
    let mut assistant_open = false;
    for (i, item) in items.into_iter().enumerate() {
        let kind = match item.get("type") {
            None | Some(Value::Null) => None,
            Some(Value::String(kind)) => Some(kind.clone()),
            Some(_) => {
                return Err(GatewayError::invalid(
                    format!("input[{i}].type"),
                    format!("input[{i}].type: must be a string"),
                ));
            }
        };
        match kind.as_deref() {
            None | Some("message") => {
                let message: MessageItem = parse_item(i, Value::Object(item))?;
                let native = message_item(i, message, thinking.take())?;
                assistant_open = native.role == "assistant";
                out.push(native);
            }
            Some("function_call") => {
                let call: FunctionCallItem = parse_item(i, Value::Object(item))?;
                let arguments =
                    arguments_object(&format!("input[{i}].arguments"), &call.arguments)?;
                let tool_call = ToolCall {
                    id: Some(call.call_id),
                    function: ToolCallFunction {
                        index: None,
                        name: call.name,
                        arguments,
                    },
                };
                match out.last_mut() {
                    Some(last) if assistant_open => last.tool_calls.push(tool_call),
                    _ => {
                        out.push(Message {
                            role: "assistant".into(),
                            thinking: thinking.take(),
                            tool_calls: vec![tool_call],
                            ..Message::default()
                        });
                        assistant_open = true;
                    }
                }
                if let Some(last) = out.last_mut() {
                    for (index, call) in last.tool_calls.iter_mut().enumerate() {
                        call.function.index = Some(index as u32);
                    }
                }
            }
            Some("function_call_output") => {
                let output: FunctionCallOutputItem = parse_item(i, Value::Object(item))?;
                let (content, images) = match output.output {
                    FunctionOutput::Text(text) => (text, Vec::new()),
                    FunctionOutput::Parts(parts) => parts_text_and_images(i, "output", parts)?,
                };
                let tool_name = out
                    .iter()
                    .rev()
                    .flat_map(|m| m.tool_calls.iter())
                    .find(|c| c.id.as_deref() == Some(output.call_id.as_str()))
                    .map(|c| c.function.name.clone());
                out.push(Message {
                    role: "tool".into(),
                    content,
                    images,
                    tool_name,
                    tool_call_id: Some(output.call_id),
                    ..Message::default()
                });
                assistant_open = false;
            }
            Some("reasoning") => {
                let reasoning: ReasoningItem = parse_item(i, Value::Object(item))?;
                let mut texts: Vec<String> = reasoning
                    .content
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| p.text)
                    .collect();
                if texts.is_empty() {
                    texts = reasoning.summary.into_iter().map(|p| p.text).collect();
                }
                if texts.is_empty()
                    && let Some(encrypted) = reasoning.encrypted_content
                {
                    texts.push(encrypted);
                }
                let text = texts.join("\n");
                thinking = (!text.is_empty()).then_some(text);
            }
            Some("item_reference") => {
                return Err(GatewayError::invalid(
                    format!("input[{i}]"),
                    format!(
                        "input[{i}]: item references are not supported; continue with previous_response_id or send the items themselves"
                    ),
                ));
            }
            Some(other) => {
                return Err(GatewayError::invalid(
                    format!("input[{i}].type"),
                    format!("input[{i}].type: item type '{other}' is not supported"),
                ));
            }
        }
    }
    Ok(())
}

/// One message item → a native message.
fn message_item(
    i: usize,
    message: MessageItem,
    thinking: Option<String>,
) -> Result<Message, GatewayError> {
    let role = match message.role {
        // Templates drop `developer`; it is the new name of `system` (G10).
        ItemRole::System | ItemRole::Developer => "system",
        ItemRole::User => "user",
        ItemRole::Assistant => "assistant",
    };
    let (content, images) = match message.content {
        ItemContent::Text(text) => (text, Vec::new()),
        ItemContent::Parts(parts) => parts_text_and_images(i, "content", parts)?,
    };
    Ok(Message {
        role: role.to_owned(),
        content,
        thinking: thinking.filter(|_| role == "assistant"),
        images,
        ..Message::default()
    })
}

/// The text and images of content parts at `input[i].<field>`.
fn parts_text_and_images(
    i: usize,
    field: &str,
    parts: Vec<ContentPart>,
) -> Result<(String, Vec<String>), GatewayError> {
    let mut texts = Vec::new();
    let mut images = Vec::new();
    for (j, part) in parts.into_iter().enumerate() {
        let at = format!("input[{i}].{field}[{j}]");
        match part {
            ContentPart::InputText { text } | ContentPart::OutputText { text } => texts.push(text),
            ContentPart::Refusal { refusal } => texts.push(refusal),
            ContentPart::InputImage {
                image_url: Some(url),
                ..
            } => images.push(image_from_data_url(&format!("{at}.image_url"), &url)?),
            ContentPart::InputImage {
                file_id: Some(_), ..
            } => {
                return Err(GatewayError::invalid(
                    format!("{at}.file_id"),
                    format!(
                        "{at}.file_id: files are not supported; send the image as a base64 data: URL in image_url"
                    ),
                ));
            }
            ContentPart::InputImage { .. } => {
                return Err(GatewayError::invalid(
                    format!("{at}.image_url"),
                    format!("{at}.image_url: required"),
                ));
            }
            ContentPart::InputFile {} => {
                return Err(GatewayError::invalid(
                    at.clone(),
                    format!("{at}: file inputs are not supported"),
                ));
            }
        }
    }
    Ok((texts.join("\n"), images))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn translate(body: Value) -> Result<(ChatRequest, Echo), GatewayError> {
        let request: ResponsesRequest =
            serde_json::from_value(body).map_err(|e| GatewayError::InvalidRequest {
                message: e.to_string(),
                param: None,
            })?;
        chat_request(request)
    }

    fn native(body: Value) -> Value {
        match translate(body) {
            Ok((request, _)) => serde_json::to_value(request).unwrap_or_default(),
            Err(err) => panic!("unexpected refusal: {err}"),
        }
    }

    fn refused(body: Value) -> String {
        match translate(body) {
            Err(GatewayError::InvalidRequest { param, .. }) => param.unwrap_or_default(),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

    #[test]
    fn a_string_input_with_instructions_and_options() {
        let out = native(json!({"model":"m","input":"hi","instructions":"be brief",
            "max_output_tokens":50,"temperature":0.2,"top_p":0.9,"reasoning":{"effort":"minimal"},
            "text":{"format":{"type":"json_schema","name":"x","schema":{"type":"object"}}}}));
        assert_eq!(
            out["messages"],
            json!([{"role":"system","content":"be brief"},{"role":"user","content":"hi"}])
        );
        assert_eq!(out["options"]["num_predict"], 50);
        assert_eq!(out["options"]["temperature"], 0.2);
        assert_eq!(out["options"]["top_p"], 0.9);
        assert_eq!(out["think"], "low");
        assert_eq!(out["format"], json!({"type":"object"}));
        assert_eq!(out["stream"], false);
        let out =
            native(json!({"model":"m","input":"hi","text":{"format":{"type":"json_object"}}}));
        assert_eq!(out["format"], "json");
    }

    #[test]
    fn items_become_a_native_conversation() {
        let out = native(json!({"model":"m","input":[
            {"role":"developer","content":"be brief"},
            {"type":"message","role":"user","content":[{"type":"input_text","text":"weather?"},
                {"type":"input_image","image_url":format!("data:image/png;base64,{PNG}")}]},
            {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"use the tool"}]},
            {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Tokyo\"}"},
            {"type":"function_call","call_id":"call_2","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
            {"type":"function_call_output","call_id":"call_1","output":"sunny"},
            {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"rain"}]},
            {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Tokyo sunny, Paris rain."}]}
        ]}));
        let m = &out["messages"];
        assert_eq!(m[0]["role"], "system");
        assert_eq!(m[1]["content"], "weather?");
        assert_eq!(m[1]["images"], json!([PNG]));
        assert_eq!(m[2]["role"], "assistant");
        assert_eq!(m[2]["thinking"], "use the tool");
        assert_eq!(m[2]["tool_calls"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            m[2]["tool_calls"][1]["function"]["arguments"],
            json!({"city":"Paris"})
        );
        assert_eq!(m[2]["tool_calls"][1]["function"]["index"], 1);
        assert_eq!(
            m[3],
            json!({"role":"tool","content":"sunny","tool_name":"get_weather","tool_call_id":"call_1"})
        );
        assert_eq!(m[4]["content"], "rain");
        assert_eq!(
            m[5],
            json!({"role":"assistant","content":"Tokyo sunny, Paris rain."})
        );
    }

    #[test]
    fn flat_function_tools_and_tool_choice() {
        let body = |choice: Value| {
            json!({"model":"m","input":"hi","tool_choice":choice,"tools":[
                {"type":"function","name":"a","parameters":{"type":"object","properties":{"x":{"type":"integer"}}},"strict":true},
                {"type":"function","name":"b","description":"d"}]})
        };
        let all = native(body(json!("auto")));
        assert_eq!(
            all["tools"][0]["function"]["parameters"]["properties"]["x"]["type"],
            "integer"
        );
        assert_eq!(all["tools"].as_array().map(Vec::len), Some(2));
        assert!(native(body(json!("none"))).get("tools").is_none());
        let named = native(body(json!({"type":"function","name":"b"})));
        assert_eq!(named["tools"].as_array().map(Vec::len), Some(1));
        assert_eq!(named["tools"][0]["function"]["description"], "d");
        assert_eq!(
            refused(body(json!({"type":"function","name":"c"}))),
            "tool_choice"
        );
        let (_, echo) = translate(body(json!("required"))).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            echo.tool_choice,
            ResponsesToolChoice::Mode(ToolChoiceMode::Required)
        ));
        assert_eq!(echo.tools.len(), 2);
    }

    #[test]
    fn bad_input_is_refused_with_the_field_named() {
        let cases = [
            (json!({"model":"","input":"hi"}), "model"),
            (json!({"model":"m","input":[]}), "input"),
            (
                json!({"model":"m","input":"hi","previous_response_id":"resp_1"}),
                "previous_response_id",
            ),
            (
                json!({"model":"m","input":"hi","conversation":"conv_1"}),
                "conversation",
            ),
            (
                json!({"model":"m","input":"hi","background":true}),
                "background",
            ),
            (
                json!({"model":"m","input":"hi","max_output_tokens":0}),
                "max_output_tokens",
            ),
            (
                json!({"model":"m","input":"hi","temperature":3}),
                "temperature",
            ),
            (json!({"model":"m","input":"hi","top_p":-1}), "top_p"),
            (
                json!({"model":"m","input":"hi","reasoning":{"effort":"extreme"}}),
                "reasoning.effort",
            ),
            (
                json!({"model":"m","input":"hi","tools":[{"type":"web_search"}]}),
                "tools[0].type",
            ),
            (
                json!({"model":"m","input":"hi","tools":[{"type":"function"}]}),
                "tools[0].name",
            ),
            (
                json!({"model":"m","input":"hi","tool_choice":"required"}),
                "tool_choice",
            ),
            (
                json!({"model":"m","input":"hi","text":{"format":{"type":"json_schema","schema":true}}}),
                "text.format.schema",
            ),
            (
                json!({"model":"m","input":[{"role":"robot","content":"x"}]}),
                "input[0].role",
            ),
            (
                json!({"model":"m","input":[{"type":"function_call","call_id":"c","name":"f","arguments":"{oops"}]}),
                "input[0].arguments",
            ),
            (
                json!({"model":"m","input":[{"type":"function_call","name":"f","arguments":"{}"}]}),
                "input[0]",
            ),
            (
                json!({"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}),
                "input[0]",
            ),
            (
                json!({"model":"m","input":[{"type":"web_search_call"}]}),
                "input[0].type",
            ),
            (
                json!({"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}),
                "input[0].content[0]",
            ),
            (
                json!({"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"https://x/y.png"}]}]}),
                "input[0].content[0].image_url",
            ),
            (
                json!({"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"file_1"}]}]}),
                "input[0].content[0].file_id",
            ),
        ];
        for (body, field) in cases {
            assert_eq!(refused(body.clone()), field, "for {body}");
        }
    }
}
