//! Ollama native answers → Anthropic `message` objects, and the pieces the stream shares.

use serde_json::{Map, Value};

use super::stop::StopEvidence;
use super::types::{ContentBlock, Message, Usage};
use crate::ollama::types::{ChatResponse, ToolCall};
use crate::openai::response::new_id;

/// Anthropic's `stop_reason` from Ollama's `done_reason`: `length` is `max_tokens`, a turn with
/// tool calls is `tool_use`, one a stop sequence ended (`matched`, see [`super::stop`])
/// `stop_sequence`, anything else `end_turn`.
pub fn stop_reason(
    done_reason: Option<&str>,
    saw_tool_use: bool,
    matched: Option<&str>,
) -> &'static str {
    match done_reason {
        Some("length") => "max_tokens",
        _ if saw_tool_use => "tool_use",
        _ if matched.is_some() => "stop_sequence",
        _ => "end_turn",
    }
}

/// A native tool call → a `tool_use` block's id, name and input (an object; an id is made up
/// when Ollama sent none).
pub fn tool_use(call: ToolCall) -> (String, String, Value) {
    let input = match call.function.arguments {
        Value::Object(map) => Value::Object(map),
        // Some models' parsers hand back the arguments as a JSON string.
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(map)) => Value::Object(map),
            _ => Value::Object(Map::new()),
        },
        _ => Value::Object(Map::new()),
    };
    let id = call
        .id
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| new_id("toolu_"));
    (id, call.function.name, input)
}

/// Usage from Ollama's counts.
pub fn usage(prompt: Option<u64>, completion: Option<u64>) -> Usage {
    Usage {
        input_tokens: prompt.unwrap_or(0),
        output_tokens: completion.unwrap_or(0),
    }
}

/// A non-streamed `/api/chat` answer → `message`: thinking first, then text, then tool calls;
/// `stop_sequences` are the request's (to tell which one ended the answer).
pub fn message(response: ChatResponse, stop_sequences: Vec<String>) -> Message {
    let mut evidence = StopEvidence::new(stop_sequences);
    evidence.observe(&response);
    let matched = evidence.matched(response.done_reason.as_deref(), response.eval_count);
    let native = response.message.unwrap_or_default();
    let mut content = Vec::new();
    if let Some(thinking) = native.thinking.filter(|t| !t.is_empty()) {
        content.push(ContentBlock::Thinking {
            thinking,
            signature: String::new(),
        });
    }
    let saw_tool_use = !native.tool_calls.is_empty();
    let matched = matched.filter(|_| !saw_tool_use);
    if !native.content.is_empty() || (!saw_tool_use && content.is_empty()) {
        content.push(ContentBlock::Text {
            text: native.content,
        });
    }
    for call in native.tool_calls {
        let (id, name, input) = tool_use(call);
        content.push(ContentBlock::ToolUse { id, name, input });
    }
    Message {
        id: new_id("msg_"),
        r#type: "message",
        role: "assistant",
        model: response.model,
        content,
        stop_reason: Some(
            stop_reason(
                response.done_reason.as_deref(),
                saw_tool_use,
                matched.as_deref(),
            )
            .to_owned(),
        ),
        stop_sequence: matched,
        usage: usage(response.prompt_eval_count, response.eval_count),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(value: Value) -> Value {
        let response: ChatResponse = serde_json::from_value(value).unwrap_or_default();
        serde_json::to_value(message(response, Vec::new())).unwrap_or_default()
    }

    #[test]
    fn thinking_text_and_tool_use_blocks_in_order() {
        let out = answer(
            json!({"model":"qwen3","message":{"role":"assistant","content":"Let me check.",
            "thinking":"hmm","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Tokyo"}}},
            {"id":"call_x","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
            "done":true,"done_reason":"stop","prompt_eval_count":12,"eval_count":7}),
        );
        assert_eq!(out["type"], "message");
        assert_eq!(out["role"], "assistant");
        assert!(
            out["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("msg_") && id.len() > 20)
        );
        let c = &out["content"];
        assert_eq!(
            c[0],
            json!({"type":"thinking","thinking":"hmm","signature":""})
        );
        assert_eq!(c[1], json!({"type":"text","text":"Let me check."}));
        assert_eq!(c[2]["type"], "tool_use");
        assert!(
            c[2]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("toolu_"))
        );
        assert_eq!(c[2]["input"], json!({"city":"Tokyo"}));
        assert_eq!(c[3]["id"], "call_x");
        assert_eq!(c[3]["input"], json!({"city":"Paris"}));
        assert_eq!(out["stop_reason"], "tool_use");
        assert_eq!(out["stop_sequence"], Value::Null);
        assert_eq!(out["usage"], json!({"input_tokens":12,"output_tokens":7}));
    }

    #[test]
    fn a_stop_sequence_ended_answer_names_it() {
        // What the real Ollama 0.24 answered for stop "way" (fixtures/recorded/chat-stop-whole).
        let response: ChatResponse = serde_json::from_value(json!({"model":"tiny",
            "message":{"role":"assistant","content":" can about could "},"done":true,
            "done_reason":"stop","logprobs":[{"token":" can","logprob":-1.5},
            {"token":" about","logprob":-0.5},{"token":" could","logprob":-2.4},
            {"token":" way","logprob":-0.2}],"prompt_eval_count":30,"eval_count":4}))
        .unwrap_or_default();
        let out =
            serde_json::to_value(message(response.clone(), vec!["way".into()])).unwrap_or_default();
        assert_eq!(out["stop_reason"], "stop_sequence");
        assert_eq!(out["stop_sequence"], "way");
        assert_eq!(out["content"][0]["text"], " can about could ");
        let out = serde_json::to_value(message(response, Vec::new())).unwrap_or_default();
        assert_eq!(out["stop_reason"], "end_turn");
        assert_eq!(out["stop_sequence"], Value::Null);
    }

    #[test]
    fn stop_reasons() {
        assert_eq!(stop_reason(Some("length"), true, None), "max_tokens");
        assert_eq!(stop_reason(Some("stop"), true, Some("x")), "tool_use");
        assert_eq!(stop_reason(Some("stop"), false, Some("x")), "stop_sequence");
        assert_eq!(stop_reason(Some("unload"), false, None), "end_turn");
        let out =
            answer(json!({"model":"m","message":{"role":"assistant","content":""},"done":true}));
        assert_eq!(
            out["content"],
            json!([{"type":"text","text":""}]),
            "an empty answer has one empty text block"
        );
    }
}
