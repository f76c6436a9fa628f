//! Ollama's native wire types, as far as the gateway reads or writes them.
//!
//! Requests are written by the OpenAI translator; `extra` maps keep whatever else a native client
//! sent so `/chat` forwards it untouched. Responses are read leniently: Ollama adds fields over
//! time, and older versions leave some out.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `POST /api/chat` request.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct ChatRequest {
    /// Model name, e.g. `llama3.2` or `llama3.2:latest`.
    #[schema(example = "llama3.2", min_length = 1, pattern = "\\S")]
    pub model: String,
    /// The conversation so far (`/chat` needs at least one message).
    #[schema(min_items = 1)]
    pub messages: Vec<Message>,
    /// Native streaming defaults to true; the gateway always sends it explicitly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Tool definitions (OpenAI function-tool shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<Value>>,
    /// `"json"` or a JSON schema object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::schemas::Format>)]
    pub format: Option<Value>,
    /// Model options: `num_predict`, `temperature`, `top_p`, `top_k`, `seed`, `stop`, ...
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub options: Map<String, Value>,
    /// How long the model stays loaded: `"5m"`, seconds, negative for ever, 0 to unload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::schemas::KeepAlive>)]
    pub keep_alive: Option<Value>,
    /// `true`/`false` or `"low"`/`"medium"`/`"high"`/`"max"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::schemas::Think>)]
    pub think: Option<Value>,
    /// Return log probabilities of the output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    /// How many alternatives per token (0-20).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::openai::types::integral"
    )]
    #[schema(maximum = 20)]
    pub top_logprobs: Option<u32>,
    /// Any other field a native client sent, forwarded untouched.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

/// One message of a native chat.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    #[schema(value_type = super::schemas::NativeRole, example = "user")]
    pub role: String,
    /// Text of the message.
    #[serde(default)]
    #[schema(example = "Why is the sky blue?")]
    pub content: String,
    /// Model reasoning (assistant messages of thinking models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Base64-encoded images (no data-URL prefix).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Tool calls made by the assistant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Which tool produced this result (`tool` messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// Which call this result answers (`tool` messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// A native tool call.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct ToolCall {
    /// `call_` + 8 characters on current Ollama; absent on older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub function: ToolCallFunction,
}

/// The function part of a native tool call.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct ToolCallFunction {
    /// Position reported by the model's parser; unreliable, the gateway renumbers.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::openai::types::integral"
    )]
    #[schema(maximum = 4_294_967_295_u32)]
    pub index: Option<u32>,
    pub name: String,
    /// Arguments as a JSON object. (Some models' parsers hand Ollama's answer the JSON text of
    /// one, which the gateway reads as the object; a request must send the object.)
    #[serde(
        default,
        deserialize_with = "crate::openai::types::object_or_text_value"
    )]
    #[schema(value_type = Option<Object>)]
    pub arguments: Value,
}

/// One line of a native chat stream, or the whole non-streamed answer.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct ChatResponse {
    #[serde(default)]
    pub model: String,
    /// RFC 3339 timestamp, any offset.
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub message: Option<Message>,
    #[serde(default)]
    pub done: bool,
    /// `stop`, `length`, `load`, `unload`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_duration: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_duration: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_duration: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_duration: Option<u64>,
    /// Token log probabilities (top level, not inside `message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Vec<Logprob>>,
    /// Set on a failed stream's last line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One line of a native generate stream, or the whole non-streamed answer.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct GenerateResponse {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub response: String,
    #[serde(default)]
    pub thinking: Option<String>,
    #[serde(default)]
    pub done: bool,
    #[serde(default)]
    pub done_reason: Option<String>,
    /// Nanoseconds Ollama spent loading the model for this request.
    #[serde(default)]
    pub load_duration: Option<u64>,
    #[serde(default)]
    pub prompt_eval_count: Option<u64>,
    #[serde(default)]
    pub eval_count: Option<u64>,
    #[serde(default)]
    pub logprobs: Option<Vec<Logprob>>,
    #[serde(default)]
    pub error: Option<String>,
}

/// `POST /api/generate` request, as the OpenAI completions translator writes it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GenerateRequest {
    pub model: String,
    pub prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    pub stream: bool,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub options: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub think: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
}

/// `POST /api/embed` request.
#[derive(Clone, Debug, Serialize)]
pub struct EmbedRequest {
    pub model: String,
    pub input: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncate: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Value>,
}

/// `POST /api/embed` response.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct EmbedResponse {
    #[serde(default)]
    pub embeddings: Vec<Vec<f32>>,
    #[serde(default)]
    pub prompt_eval_count: Option<u64>,
    /// Nanoseconds Ollama spent loading the model for this request.
    #[serde(default)]
    pub load_duration: Option<u64>,
}

/// A token's log probability.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct Logprob {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub logprob: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<Vec<TopLogprob>>,
}

/// An alternative token in a [`Logprob`].
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct TopLogprob {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub logprob: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Vec<u8>>,
}

/// `GET /api/tags` response.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct TagsResponse {
    #[serde(default)]
    pub models: Vec<ModelEntry>,
}

/// One installed model.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct ModelEntry {
    #[schema(example = "llama3.2:latest")]
    pub name: String,
    #[serde(default)]
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<String>,
    /// Everything else Ollama reports (size, digest, details, expiry...), passed on verbatim.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub rest: Map<String, Value>,
}

impl ModelEntry {
    /// The model's identifier: `model`, falling back to `name`.
    pub fn id(&self) -> &str {
        if self.model.is_empty() {
            &self.name
        } else {
            &self.model
        }
    }
}

/// Parse an RFC 3339 timestamp (any offset, fractional seconds) into unix seconds.
pub fn unix_seconds(timestamp: Option<&str>) -> Option<i64> {
    let parsed = chrono::DateTime::parse_from_rfc3339(timestamp?).ok()?;
    let seconds = parsed.timestamp();
    (seconds > 0).then_some(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_call_arguments_are_an_object_or_its_json_text() {
        let parse = |arguments: Value| {
            serde_json::from_value::<ToolCallFunction>(
                serde_json::json!({"name": "f", "arguments": arguments}),
            )
            .ok()
            .map(|f| f.arguments)
        };
        let object = serde_json::json!({"city": "Paris"});
        assert_eq!(parse(object.clone()), Some(object));
        let text = Value::String("{\"city\":\"Paris\"}".into());
        assert_eq!(parse(text.clone()), Some(text));
        assert_eq!(parse(serde_json::json!([1, 2])), None);
        assert_eq!(
            parse(Value::Null),
            Some(serde_json::json!({})),
            "Go's nil map: no arguments"
        );
        assert_eq!(parse(serde_json::json!(7)), None);
    }

    #[test]
    fn timestamps_with_offsets_and_nanoseconds_parse() {
        assert_eq!(
            unix_seconds(Some("2023-08-04T08:52:19.385406455-07:00")),
            Some(1_691_164_339)
        );
        assert_eq!(
            unix_seconds(Some("2023-11-14T22:13:20.1Z")),
            Some(1_700_000_000)
        );
        assert_eq!(unix_seconds(Some("0001-01-01T00:00:00Z")), None);
        assert_eq!(unix_seconds(Some("yesterday")), None);
        assert_eq!(unix_seconds(None), None);
    }

    #[test]
    fn unknown_native_fields_survive_a_round_trip() {
        let raw = r#"{"model":"m","messages":[],"truncate":false,"shift":true}"#;
        let request: ChatRequest = serde_json::from_str(raw).unwrap_or_default();
        let back = serde_json::to_value(&request).unwrap_or_default();
        assert_eq!(back["truncate"], false);
        assert_eq!(back["shift"], true);
    }
}
