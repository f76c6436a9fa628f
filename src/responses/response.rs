//! Ollama native answers → the Responses `response` object, and the output items the stream
//! shares.

use serde_json::{Value, json};

use super::request::Echo;
use super::types::{
    IncompleteDetails, InputTokensDetails, OutputTokensDetails, Response, ResponseError,
    ResponseUsage,
};
use crate::ollama::types::{ChatResponse, ToolCall};
use crate::openai::response::{created, new_id};

/// The response object before any output: `in_progress`, no usage.
pub fn envelope(echo: &Echo, id: &str, created_at: i64, model: &str) -> Response {
    Response {
        id: id.to_owned(),
        object: "response",
        created_at,
        status: "in_progress",
        error: None,
        incomplete_details: None,
        instructions: echo.instructions.clone(),
        max_output_tokens: echo.max_output_tokens,
        model: if model.is_empty() {
            echo.model.clone()
        } else {
            model.to_owned()
        },
        output: Vec::new(),
        parallel_tool_calls: echo.parallel_tool_calls,
        previous_response_id: echo.previous_response_id.clone(),
        reasoning: echo.reasoning.clone(),
        store: echo.store,
        temperature: echo.temperature,
        top_p: echo.top_p,
        text: echo.text.clone(),
        tool_choice: echo.tool_choice.clone(),
        tools: echo.tools.clone(),
        truncation: "disabled",
        usage: None,
        metadata: echo.metadata.clone(),
    }
}

/// Mark `response` finished from Ollama's `done_reason` and counts: `length` is `incomplete`
/// with `incomplete_details.reason: max_output_tokens`, anything else `completed`.
pub fn finish(
    response: &mut Response,
    done_reason: Option<&str>,
    prompt: Option<u64>,
    completion: Option<u64>,
) {
    if done_reason == Some("length") {
        response.status = "incomplete";
        response.incomplete_details = Some(IncompleteDetails {
            reason: "max_output_tokens",
        });
    } else {
        response.status = "completed";
    }
    response.usage = Some(usage(prompt, completion));
}

/// Mark `response` failed.
pub fn fail(response: &mut Response, code: &str, message: &str) {
    response.status = "failed";
    response.error = Some(ResponseError {
        code: code.to_owned(),
        message: message.to_owned(),
    });
}

/// Usage from Ollama's counts.
pub fn usage(prompt: Option<u64>, completion: Option<u64>) -> ResponseUsage {
    let input_tokens = prompt.unwrap_or(0);
    let output_tokens = completion.unwrap_or(0);
    ResponseUsage {
        input_tokens,
        input_tokens_details: InputTokensDetails::default(),
        output_tokens,
        output_tokens_details: OutputTokensDetails::default(),
        total_tokens: input_tokens.saturating_add(output_tokens),
    }
}

/// A `message` output item with one `output_text` part.
pub fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
        "content": [output_text(text)]})
}

/// An `output_text` content part.
pub fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A `reasoning` output item: Ollama's thinking as the summary (what Ollama's own `/v1` does).
pub fn reasoning_item(id: &str, text: &str) -> Value {
    json!({"type": "reasoning", "id": id, "summary": [summary_text(text)]})
}

/// A `summary_text` part.
pub fn summary_text(text: &str) -> Value {
    json!({"type": "summary_text", "text": text})
}

/// A `function_call` output item; `arguments` is a JSON string.
pub fn function_call_item(
    id: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
    status: &str,
) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name,
        "arguments": arguments, "status": status})
}

/// A native tool call → its call id, name and JSON-string arguments (an id made up when Ollama
/// sent none).
pub fn call_parts(call: ToolCall) -> (String, String, String) {
    let arguments = match call.function.arguments {
        Value::String(s) => s,
        Value::Null => "{}".to_owned(),
        other => other.to_string(),
    };
    let call_id = call
        .id
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| new_id("call_"));
    (call_id, call.function.name, arguments)
}

/// A non-streamed `/api/chat` answer → the `response` object: reasoning, then the message,
/// then function calls.
pub fn response(echo: &Echo, answer: ChatResponse) -> Response {
    let mut out = envelope(
        echo,
        &new_id("resp_"),
        created(answer.created_at.as_deref()),
        &answer.model,
    );
    let message = answer.message.unwrap_or_default();
    if let Some(thinking) = message.thinking.filter(|t| !t.is_empty()) {
        out.output.push(reasoning_item(&new_id("rs_"), &thinking));
    }
    let cut = answer.done_reason.as_deref() == Some("length");
    if !message.content.is_empty() || message.tool_calls.is_empty() {
        let status = if cut { "incomplete" } else { "completed" };
        out.output
            .push(message_item(&new_id("msg_"), &message.content, status));
    }
    for call in message.tool_calls {
        let (call_id, name, arguments) = call_parts(call);
        out.output.push(function_call_item(
            &new_id("fc_"),
            &call_id,
            &name,
            &arguments,
            "completed",
        ));
    }
    finish(
        &mut out,
        answer.done_reason.as_deref(),
        answer.prompt_eval_count,
        answer.eval_count,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responses::request::chat_request;
    use crate::responses::types::ResponsesRequest;

    pub(crate) fn echo(body: Value) -> Echo {
        let request: ResponsesRequest =
            serde_json::from_value(body).unwrap_or_else(|e| panic!("{e}"));
        chat_request(request).unwrap_or_else(|e| panic!("{e}")).1
    }

    fn answer(value: Value) -> Value {
        let echo =
            echo(json!({"model":"m","input":"hi","metadata":{"k":"v"},"instructions":"be brief"}));
        let native: ChatResponse = serde_json::from_value(value).unwrap_or_default();
        serde_json::to_value(response(&echo, native)).unwrap_or_default()
    }

    #[test]
    fn text_answer_is_one_message_item_with_usage() {
        let out = answer(json!({"model":"m","created_at":"2023-11-14T22:13:20.1Z",
            "message":{"role":"assistant","content":"blue"},"done":true,"done_reason":"stop",
            "prompt_eval_count":10,"eval_count":4}));
        assert!(
            out["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("resp_") && id.len() > 30)
        );
        assert_eq!(out["object"], "response");
        assert_eq!(out["status"], "completed");
        assert_eq!(out["created_at"], 1_700_000_000);
        assert_eq!(out["output"].as_array().map(Vec::len), Some(1));
        assert_eq!(out["output"][0]["type"], "message");
        assert_eq!(
            out["output"][0]["content"][0],
            json!({"type":"output_text","text":"blue","annotations":[],"logprobs":[]})
        );
        assert_eq!(out["usage"]["input_tokens"], 10);
        assert_eq!(out["usage"]["output_tokens"], 4);
        assert_eq!(out["usage"]["total_tokens"], 14);
        assert_eq!(out["metadata"], json!({"k":"v"}));
        assert_eq!(out["instructions"], "be brief");
        assert_eq!(out["store"], false);
        assert_eq!(out["incomplete_details"], Value::Null);
    }

    #[test]
    fn reasoning_and_function_calls_become_items() {
        let out = answer(
            json!({"model":"m","message":{"role":"assistant","content":"","thinking":"hmm",
            "tool_calls":[{"id":"call_a","function":{"name":"f","arguments":{"x":1}}},{"function":{"name":"g","arguments":{}}}]},
            "done":true,"done_reason":"stop"}),
        );
        let items = &out["output"];
        assert_eq!(items[0]["type"], "reasoning");
        assert_eq!(items[0]["summary"][0]["text"], "hmm");
        assert_eq!(items[1]["type"], "function_call");
        assert_eq!(items[1]["call_id"], "call_a");
        assert_eq!(items[1]["arguments"], "{\"x\":1}");
        assert!(
            items[2]["call_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("call_"))
        );
        assert!(
            items[2]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("fc_"))
        );
        assert_eq!(
            items.as_array().map(Vec::len),
            Some(3),
            "no empty message item"
        );
    }

    #[test]
    fn a_length_cut_is_incomplete() {
        let out = answer(
            json!({"model":"m","message":{"role":"assistant","content":"The sky"},"done":true,"done_reason":"length"}),
        );
        assert_eq!(out["status"], "incomplete");
        assert_eq!(
            out["incomplete_details"],
            json!({"reason":"max_output_tokens"})
        );
        assert_eq!(out["output"][0]["status"], "incomplete");
    }
}
