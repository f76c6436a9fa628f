//! Ollama native answers → OpenAI response objects (the non-streamed ones, and the pieces the
//! stream translator shares).

use base64::Engine;
use serde_json::Value;

use super::types::{
    AssistantMessage, ChatCompletion, Choice, ChoiceLogprobs, Completion, CompletionChoice,
    CompletionLogprobs, Embedding, EmbeddingList, EmbeddingUsage, EmbeddingVector, EncodingFormat,
    Float32s, Model, ModelList, ResponseFunctionCall, ResponseToolCall, Usage,
};
use crate::ollama::types::{
    ChatResponse, EmbedResponse, GenerateResponse, Logprob, ModelEntry, ToolCall, unix_seconds,
};

/// What every response says produced it.
pub const SYSTEM_FINGERPRINT: &str = "fp_ollama";

/// A long random id: `chatcmpl-` + 32 hex digits (Ollama's own layer has only 999 ids, G14).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// `created` for a response: the upstream's timestamp, or now when it has none.
pub fn created(created_at: Option<&str>) -> i64 {
    unix_seconds(created_at).unwrap_or_else(|| chrono::Utc::now().timestamp())
}

/// OpenAI's finish reason from Ollama's `done_reason`: `length` stays, tool calls win over
/// `stop`, and anything else (`load`, `unload`, missing) reads as `stop`.
pub fn finish_reason(done_reason: Option<&str>, saw_tool_calls: bool) -> String {
    match done_reason {
        Some("length") => "length",
        _ if saw_tool_calls => "tool_calls",
        _ => "stop",
    }
    .to_owned()
}

/// Native tool calls → OpenAI ones, numbered from `next_index` on (the upstream's index is
/// unreliable, G7) and with an id made up when the upstream sent none.
pub fn tool_calls(calls: Vec<ToolCall>, next_index: &mut u32) -> Vec<ResponseToolCall> {
    calls
        .into_iter()
        .map(|call| {
            let index = *next_index;
            *next_index += 1;
            let arguments = match call.function.arguments {
                Value::String(s) => s,
                Value::Null => "{}".to_owned(),
                other => other.to_string(),
            };
            ResponseToolCall {
                index,
                id: call
                    .id
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| new_id("call_")),
                r#type: "function",
                function: ResponseFunctionCall {
                    name: call.function.name,
                    arguments,
                },
            }
        })
        .collect()
}

/// Native logprobs → OpenAI's full shape (bytes and top_logprobs always present).
pub fn logprobs(native: Option<Vec<Logprob>>) -> Option<ChoiceLogprobs> {
    let native = native.filter(|l| !l.is_empty())?;
    Some(ChoiceLogprobs {
        content: native.into_iter().map(Into::into).collect(),
    })
}

/// A non-streamed `/api/chat` answer → `chat.completion`.
pub fn chat_completion(response: ChatResponse) -> ChatCompletion {
    let message = response.message.unwrap_or_default();
    let mut next_index = 0;
    let calls = tool_calls(message.tool_calls, &mut next_index);
    let saw_tool_calls = !calls.is_empty();
    let thinking = message.thinking.filter(|t| !t.is_empty());
    // OpenAI sends `content: null` for a tool-call-only answer (Ollama sends "", G9).
    let content = if message.content.is_empty() && saw_tool_calls {
        None
    } else {
        Some(message.content)
    };
    ChatCompletion {
        id: new_id("chatcmpl-"),
        object: "chat.completion",
        created: created(response.created_at.as_deref()),
        model: response.model,
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content,
                refusal: None,
                reasoning_content: thinking.clone(),
                reasoning: thinking,
                tool_calls: saw_tool_calls.then_some(calls),
            },
            finish_reason: finish_reason(response.done_reason.as_deref(), saw_tool_calls),
            logprobs: logprobs(response.logprobs),
        }],
        usage: Usage::from_counts(response.prompt_eval_count, response.eval_count),
    }
}

/// Native logprobs → the legacy completions shape.
pub fn completion_logprobs(native: Option<Vec<Logprob>>) -> Option<CompletionLogprobs> {
    let native = native.filter(|l| !l.is_empty())?;
    let mut out = CompletionLogprobs::default();
    let mut offset = 0;
    for lp in native {
        out.text_offset.push(offset);
        offset += lp.token.len();
        out.top_logprobs.push(
            lp.top_logprobs
                .unwrap_or_default()
                .into_iter()
                .map(|top| (top.token, Value::from(top.logprob)))
                .collect(),
        );
        out.token_logprobs.push(lp.logprob);
        out.tokens.push(lp.token);
    }
    Some(out)
}

/// A non-streamed `/api/generate` answer → `text_completion`; `echo` goes in front of the text.
pub fn completion(response: GenerateResponse, echo: Option<&str>) -> Completion {
    Completion {
        id: new_id("cmpl-"),
        object: "text_completion",
        created: created(response.created_at.as_deref()),
        model: response.model,
        system_fingerprint: SYSTEM_FINGERPRINT,
        choices: vec![CompletionChoice {
            index: 0,
            text: match echo {
                Some(prompt) => format!("{prompt}{}", response.response),
                None => response.response,
            },
            logprobs: completion_logprobs(response.logprobs),
            finish_reason: Some(finish_reason(response.done_reason.as_deref(), false)),
        }],
        usage: Some(Some(Usage::from_counts(
            response.prompt_eval_count,
            response.eval_count,
        ))),
    }
}

/// `/api/embed` answer → the embeddings list, floats or base64 of little-endian float32.
pub fn embeddings(response: EmbedResponse, model: String, format: EncodingFormat) -> EmbeddingList {
    let data = response
        .embeddings
        .into_iter()
        .enumerate()
        .map(|(index, vector)| Embedding {
            object: "embedding",
            index: index as u32,
            embedding: match format {
                EncodingFormat::Float => EmbeddingVector::Float(Float32s(vector)),
                EncodingFormat::Base64 => {
                    let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                    EmbeddingVector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            },
        })
        .collect();
    let tokens = response.prompt_eval_count.unwrap_or(0);
    EmbeddingList {
        object: "list",
        data,
        model,
        usage: EmbeddingUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    }
}

/// The namespace part of a model name: `library` for plain names, the user for
/// `user/model` and `hf.co/user/repo`.
pub fn owned_by(name: &str) -> String {
    let without_tag = name.split(':').next().unwrap_or(name);
    let segments: Vec<&str> = without_tag.split('/').collect();
    match segments.as_slice() {
        [_] => "library".to_owned(),
        [namespace, _] => (*namespace).to_owned(),
        [.., namespace, _] => (*namespace).to_owned(),
        [] => "library".to_owned(),
    }
}

/// One tags entry → an OpenAI model.
pub fn model(entry: &ModelEntry) -> Model {
    Model {
        id: entry.id().to_owned(),
        object: "model",
        created: unix_seconds(entry.modified_at.as_deref()).unwrap_or(0),
        owned_by: owned_by(entry.id()),
    }
}

/// The tags list → OpenAI's model list (an empty store gives `[]`, not null, G15).
pub fn model_list(entries: &[ModelEntry]) -> ModelList {
    ModelList {
        object: "list",
        data: entries.iter().map(model).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse<T: serde::de::DeserializeOwned + Default>(value: Value) -> T {
        serde_json::from_value(value).unwrap_or_default()
    }

    #[test]
    fn tool_only_answers_have_null_content_and_tool_calls_finish() {
        let response: ChatResponse = parse(json!({
            "model":"llama3.2","created_at":"2024-07-22T20:33:28.123648Z",
            "message":{"role":"assistant","content":"","tool_calls":[
                {"function":{"index":0,"name":"get_weather","arguments":{"city":"Tokyo"}}},
                {"id":"call_abc","function":{"index":0,"name":"get_weather","arguments":{"city":"Paris"}}}]},
            "done":true,"done_reason":"stop","prompt_eval_count":122,"eval_count":33}));
        let out = serde_json::to_value(chat_completion(response)).unwrap_or_default();
        let choice = &out["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], Value::Null);
        let calls = &choice["message"]["tool_calls"];
        assert_eq!(calls[0]["index"], 0);
        assert_eq!(calls[1]["index"], 1);
        assert!(
            calls[0]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("call_") && id.len() > 20)
        );
        assert_eq!(calls[1]["id"], "call_abc");
        assert_eq!(calls[0]["function"]["arguments"], "{\"city\":\"Tokyo\"}");
        assert_eq!(
            out["usage"],
            json!({"prompt_tokens":122,"completion_tokens":33,"total_tokens":155})
        );
        assert_eq!(out["created"], 1_721_680_408);
        assert!(
            out["id"]
                .as_str()
                .is_some_and(|id| id.len() == "chatcmpl-".len() + 32)
        );
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason(Some("length"), true), "length");
        assert_eq!(finish_reason(Some("stop"), true), "tool_calls");
        assert_eq!(finish_reason(Some("unload"), false), "stop");
        assert_eq!(finish_reason(None, false), "stop");
    }

    #[test]
    fn thinking_is_returned_under_both_names() {
        let response: ChatResponse = parse(json!({"model":"qwen3",
            "message":{"role":"assistant","content":"4","thinking":"2+2"},"done":true}));
        let out = serde_json::to_value(chat_completion(response)).unwrap_or_default();
        assert_eq!(out["choices"][0]["message"]["reasoning_content"], "2+2");
        assert_eq!(out["choices"][0]["message"]["reasoning"], "2+2");
        assert_eq!(out["choices"][0]["message"]["content"], "4");
    }

    #[test]
    fn base64_embeddings_are_little_endian_f32() {
        let response = EmbedResponse {
            embeddings: vec![vec![0.1, -0.2, 0.3]],
            prompt_eval_count: Some(3),
            load_duration: None,
        };
        let out = serde_json::to_value(embeddings(response, "e".into(), EncodingFormat::Base64))
            .unwrap_or_default();
        assert_eq!(out["data"][0]["embedding"], "zczMPc3MTL6amZk+");
    }

    #[test]
    fn float_embeddings_are_written_as_ollama_writes_float32() {
        // Ollama's own digits (samples of /api/embed), and Go's exponent forms.
        let values = vec![
            0.14894658,
            -0.08541335,
            0.000012162227,
            1.5e-7,
            -2e-7,
            0.0,
            1e21,
            3.0,
        ];
        let response = EmbedResponse {
            embeddings: vec![values],
            prompt_eval_count: Some(3),
            load_duration: None,
        };
        let out = serde_json::to_string(&embeddings(response, "e".into(), EncodingFormat::Float))
            .unwrap_or_default();
        assert!(
            out.contains(
                r#""embedding":[0.14894658,-0.08541335,0.000012162227,1.5e-7,-2e-7,0,1e+21,3]"#
            ),
            "{out}"
        );
    }

    #[test]
    fn owners_come_from_the_namespace() {
        assert_eq!(owned_by("llama3.2:latest"), "library");
        assert_eq!(owned_by("namespace/x:latest"), "namespace");
        assert_eq!(
            owned_by("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"),
            "bartowski"
        );
    }
}
