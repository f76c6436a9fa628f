//! OpenAI's wire types for the routes the gateway serves.
//!
//! Requests are typed strictly enough that a wrong type is reported with the field's path, and
//! leniently enough that fields we do not use (`user`, `metadata`, ...) are ignored like OpenAI
//! and Ollama ignore them. Ranges are checked in `validate.rs`, not here, so the message can
//! name the bound.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::ollama::types::Logprob;

/// `deserialize_with` for an optional object field: serde's derived structs also accept an
/// array of their fields in order (`[null, null]`), which the document does not allow.
pub fn object_only<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(value @ Value::Object(_)) => serde_json::from_value(value)
            .map(Some)
            .map_err(serde::de::Error::custom),
        Some(_) => Err(serde::de::Error::custom("expected an object")),
    }
}

/// `deserialize_with` for `response_format.json_schema` (see [`object_only`]). Inside the
/// tagged `response_format` the error's path stops at `response_format`, so the message names
/// the field.
fn json_schema_object<'de, D>(deserializer: D) -> Result<JsonSchemaFormat, D::Error>
where
    D: serde::Deserializer<'de>,
{
    match Value::deserialize(deserializer)? {
        value @ Value::Object(_) => serde_json::from_value(value).map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom("json_schema: expected an object")),
    }
}

/// `deserialize_with` for content given as a string or an array of parts tagged by `type`:
/// serde reads a `type` given as a number as the variant at that position (`0` is the first),
/// which the document does not allow, so every part must have a string `type`.
pub fn tagged_parts<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    if let Value::Array(parts) = &value
        && !parts
            .iter()
            .all(|part| part.get("type").is_some_and(Value::is_string))
    {
        return Err(serde::de::Error::custom(
            "content parts need a string `type`",
        ));
    }
    serde_json::from_value(value).map_err(serde::de::Error::custom)
}

/// `deserialize_with` for a JSON value that must be an object when present (with
/// `#[serde(default)]`, an absent field stays `null`).
pub fn object_value<'de, D>(deserializer: D) -> Result<Value, D::Error>
where
    D: serde::Deserializer<'de>,
{
    match Value::deserialize(deserializer)? {
        value @ Value::Object(_) => Ok(value),
        _ => Err(serde::de::Error::custom("expected an object")),
    }
}

/// `deserialize_with` for a tool call's arguments: an object, or the JSON text of one (what
/// some models' tool parsers hand back through Ollama, read as an object later), or `null`
/// (what Go writes for a call without arguments; Ollama takes it), read as no arguments, `{}`.
/// Anything else is refused.
pub fn object_or_text_value<'de, D>(deserializer: D) -> Result<Value, D::Error>
where
    D: serde::Deserializer<'de>,
{
    match Value::deserialize(deserializer)? {
        value @ (Value::Object(_) | Value::String(_)) => Ok(value),
        Value::Null => Ok(Value::Object(serde_json::Map::new())),
        _ => Err(serde::de::Error::custom(
            "expected an object (or the JSON text of one)",
        )),
    }
}

/// `deserialize_with` for an optional integer: JSON Schema's `integer` includes numbers with
/// a zero fraction (`7.0`), which serde's integer types refuse. The integer must fit `T`.
pub fn integral<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    let expected = || serde::de::Error::custom("expected an integer");
    let int = match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(number)) => match (number.as_i64(), number.as_f64()) {
            (Some(int), _) => int,
            // Within ±2^53 every integral f64 is exact, and the cast is lossless.
            (None, Some(float))
                if float.fract() == 0.0 && float.abs() <= 9_007_199_254_740_992.0 =>
            {
                float as i64
            }
            _ => return Err(expected()),
        },
        Some(_) => return Err(expected()),
    };
    T::try_from(int)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("integer {int} is out of range")))
}

/// [`integral`] for an integer that must be there.
pub fn required_integral<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    integral(deserializer)?.ok_or_else(|| serde::de::Error::custom("expected an integer"))
}

// ---------------------------------------------------------------------------------------------
// Chat completions: request
// ---------------------------------------------------------------------------------------------

/// `POST /v1/chat/completions` request. Ollama extensions (`top_k`, `min_p`, `num_ctx`,
/// `repeat_penalty`, `keep_alive`, `think`, `options`) may be sent in the body too.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[schema(example = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Why is the sky blue?"}]}))]
pub struct ChatCompletionRequest {
    /// Model to use, as Ollama names it.
    #[schema(example = "llama3.2", min_length = 1, pattern = "\\S")]
    pub model: String,
    /// The conversation so far (at least one message).
    #[schema(min_items = 1, value_type = Vec<super::schemas::ChatMessageByRole>)]
    pub messages: Vec<ChatMessage>,
    /// Stream the answer as server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Streaming options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Maximum number of tokens to generate (deprecated by OpenAI in favour of
    /// `max_completion_tokens`).
    #[serde(default, deserialize_with = "integral")]
    #[schema(minimum = 1)]
    pub max_tokens: Option<i64>,
    /// Maximum number of tokens to generate; wins over `max_tokens`.
    #[serde(default, deserialize_with = "integral")]
    #[schema(minimum = 1)]
    pub max_completion_tokens: Option<i64>,
    /// Sampling temperature.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    /// Seed for reproducible sampling.
    #[serde(default, deserialize_with = "integral")]
    pub seed: Option<i64>,
    /// Up to four sequences where generation stops.
    #[serde(default)]
    #[schema(schema_with = stop_schema)]
    pub stop: Option<StopSequences>,
    #[serde(default)]
    #[schema(minimum = -2, maximum = 2)]
    pub frequency_penalty: Option<f64>,
    #[serde(default)]
    #[schema(minimum = -2, maximum = 2)]
    pub presence_penalty: Option<f64>,
    /// `text`, `json_object` or `json_schema`.
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
    /// Function tools the model may call.
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
    /// `none`, `auto`, `required` or a named function.
    #[serde(default)]
    pub tool_choice: Option<ToolChoice>,
    /// `none`, `minimal`, `low`, `medium`, `high`, `xhigh`, `ultra` or `max`.
    #[serde(default)]
    pub reasoning_effort: Option<String>,
    /// Newer form of `reasoning_effort`; wins when present.
    #[serde(default)]
    pub reasoning: Option<ReasoningOptions>,
    /// Return log probabilities of the output tokens.
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// Alternatives per token (needs `logprobs`).
    #[serde(default, deserialize_with = "integral")]
    #[schema(minimum = 0, maximum = 20)]
    pub top_logprobs: Option<i64>,
    /// Number of choices; only 1 is supported.
    #[serde(default, deserialize_with = "integral")]
    #[schema(minimum = 1, maximum = 1)]
    pub n: Option<i64>,
    /// Ollama extension: top-k sampling.
    #[serde(default, deserialize_with = "integral")]
    #[schema(minimum = 1, maximum = 4294967295_i64)]
    pub top_k: Option<i64>,
    /// Ollama extension: min-p sampling.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1)]
    pub min_p: Option<f64>,
    /// Ollama extension: context window size.
    #[serde(default, deserialize_with = "integral")]
    #[schema(minimum = 1, maximum = 4294967295_i64)]
    pub num_ctx: Option<i64>,
    /// Ollama extension: repetition penalty.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 10)]
    pub repeat_penalty: Option<f64>,
    /// Ollama extension: how long the model stays loaded (`"5m"`, seconds, -1).
    #[serde(default)]
    #[schema(value_type = Option<crate::ollama::schemas::KeepAlive>)]
    pub keep_alive: Option<Value>,
    /// Ollama extension: `true`/`false` or `"low"`/`"medium"`/`"high"`.
    #[serde(default)]
    #[schema(value_type = Option<crate::ollama::schemas::Think>)]
    pub think: Option<Value>,
    /// Ollama extension: raw model options, merged under the fields above.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub options: Option<Map<String, Value>>,
}

/// `stream_options`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with token usage and `choices: []`.
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// `reasoning`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct ReasoningOptions {
    #[serde(default)]
    pub effort: Option<String>,
}

/// One message in a chat request (documented by role, as
/// [`super::schemas::ChatMessageByRole`]).
#[derive(Clone, Debug, Deserialize)]
pub struct ChatMessage {
    /// Who wrote the message.
    pub role: Role,
    /// Text, or an array of content parts; may be null for assistant tool-call turns.
    #[serde(default, deserialize_with = "tagged_parts")]
    pub content: Option<MessageContent>,
    /// Author name; for `tool` messages, the tool's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Tool calls made by the assistant in this turn.
    #[serde(default)]
    pub tool_calls: Option<Vec<MessageToolCall>>,
    /// The call a `tool` message answers.
    #[serde(default)]
    pub tool_call_id: Option<String>,
    /// Replayed reasoning of an assistant turn.
    #[serde(default)]
    pub reasoning: Option<String>,
    /// Replayed reasoning of an assistant turn (DeepSeek-style name).
    #[serde(default)]
    pub reasoning_content: Option<String>,
}

/// Message roles. `developer` is treated as `system`; `function` is OpenAI's legacy tool role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ChatRole)]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

/// Message content: a string or content parts.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// One content part.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Text.
    Text { text: String },
    /// An image as a base64 `data:` URL.
    ImageUrl { image_url: ImageUrl },
    /// Audio as base64 (passed to audio-capable models as Ollama passes it).
    InputAudio { input_audio: InputAudio },
}

/// `image_url`: an object with `url`, or the URL itself.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ImageUrl {
    Object {
        #[schema(value_type = super::schemas::DataImageUrl)]
        url: String,
        #[serde(default)]
        detail: Option<String>,
    },
    #[schema(value_type = super::schemas::DataImageUrl)]
    Bare(String),
}

impl ImageUrl {
    /// The URL whichever way it was sent.
    pub fn url(&self) -> &str {
        match self {
            Self::Object { url, .. } | Self::Bare(url) => url,
        }
    }
}

/// `input_audio`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct InputAudio {
    /// Base64 audio.
    #[schema(value_type = super::schemas::Base64Data)]
    pub data: String,
    #[serde(default)]
    pub format: Option<String>,
}

/// A tool call in an assistant message of the request.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct MessageToolCall {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub r#type: Option<String>,
    pub function: MessageToolCallFunction,
}

/// The function of a requested tool call; `arguments` is a JSON string.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct MessageToolCallFunction {
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::JsonObjectText>)]
    pub arguments: Option<String>,
}

/// `stop`: one string or several.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StopSequences {
    One(String),
    Many(Vec<String>),
}

impl StopSequences {
    /// The sequences as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// `response_format`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        #[serde(deserialize_with = "json_schema_object")]
        json_schema: JsonSchemaFormat,
    },
}

/// `response_format.json_schema`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct JsonSchemaFormat {
    #[serde(default)]
    pub name: Option<String>,
    /// The JSON schema the answer must follow; forwarded to Ollama verbatim.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    #[serde(default)]
    pub strict: Option<bool>,
}

/// A tool definition.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct Tool {
    /// Only `function` is supported.
    pub r#type: ToolType,
    pub function: FunctionDefinition,
}

/// Tool kinds.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolType {
    Function,
}

/// A function the model may call.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct FunctionDefinition {
    #[schema(example = "get_weather")]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// JSON schema of the arguments; forwarded verbatim (no keys dropped).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub strict: Option<bool>,
}

/// `tool_choice`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ToolChoice {
    /// `none`, `auto` or `required`.
    Mode(ToolChoiceMode),
    /// `{"type":"function","function":{"name":"..."}}`
    Named(NamedToolChoice),
}

/// The string forms of `tool_choice`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoiceMode {
    None,
    Auto,
    Required,
}

/// A named function in `tool_choice`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct NamedToolChoice {
    pub r#type: ToolType,
    pub function: NamedFunction,
}

/// The function's name.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct NamedFunction {
    pub name: String,
}

// ---------------------------------------------------------------------------------------------
// Chat completions: response
// ---------------------------------------------------------------------------------------------

/// `chat.completion` object.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ChatCompletion {
    #[schema(example = "chatcmpl-9f1c2a4e7b8d4c0f9a3e6b1d2c5f8a7e")]
    pub id: String,
    /// Always `chat.completion`.
    #[schema(example = "chat.completion")]
    pub object: &'static str,
    /// Unix seconds, from Ollama's `created_at`.
    pub created: i64,
    pub model: String,
    pub system_fingerprint: &'static str,
    pub choices: Vec<Choice>,
    pub usage: Usage,
}

/// One choice of a completion.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    /// `stop`, `length` or `tool_calls`.
    #[schema(example = "stop")]
    pub finish_reason: String,
    pub logprobs: Option<ChoiceLogprobs>,
}

/// The assistant's answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: &'static str,
    /// The text; null when the answer is only tool calls.
    pub content: Option<String>,
    /// Always null: Ollama has no refusals.
    pub refusal: Option<String>,
    /// The model's reasoning (thinking models), DeepSeek-style name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// The model's reasoning (thinking models), Ollama/OpenRouter-style name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ResponseToolCall>>,
}

/// A tool call in a response.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ResponseToolCall {
    /// Position in this response, numbered by the gateway.
    pub index: u32,
    #[schema(example = "call_k3j2m1xq")]
    pub id: String,
    /// Always `function`.
    pub r#type: &'static str,
    pub function: ResponseFunctionCall,
}

/// Function name and JSON-string arguments.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ResponseFunctionCall {
    pub name: String,
    /// Arguments as a JSON string.
    #[schema(example = "{\"city\":\"Tokyo\"}")]
    pub arguments: String,
}

/// Token usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    /// From Ollama's counts (missing counts are 0).
    pub fn from_counts(prompt: Option<u64>, completion: Option<u64>) -> Self {
        let prompt_tokens = prompt.unwrap_or(0);
        let completion_tokens = completion.unwrap_or(0);
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
        }
    }
}

/// `logprobs` of a choice.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct ChoiceLogprobs {
    pub content: Vec<TokenLogprob>,
}

/// One token's log probability, in OpenAI's full shape.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f64,
    pub bytes: Option<Vec<u8>>,
    pub top_logprobs: Vec<TopLogprob>,
}

/// An alternative token.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = TokenTopLogprob)]
pub struct TopLogprob {
    pub token: String,
    pub logprob: f64,
    pub bytes: Option<Vec<u8>>,
}

impl From<Logprob> for TokenLogprob {
    fn from(lp: Logprob) -> Self {
        Self {
            bytes: Some(lp.bytes.unwrap_or_else(|| lp.token.as_bytes().to_vec())),
            top_logprobs: lp
                .top_logprobs
                .unwrap_or_default()
                .into_iter()
                .map(|top| TopLogprob {
                    bytes: Some(top.bytes.unwrap_or_else(|| top.token.as_bytes().to_vec())),
                    token: top.token,
                    logprob: top.logprob,
                })
                .collect(),
            token: lp.token,
            logprob: lp.logprob,
        }
    }
}

/// `chat.completion.chunk` object (one SSE event).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ChatCompletionChunk {
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: &'static str,
    pub created: i64,
    pub model: String,
    pub system_fingerprint: &'static str,
    pub choices: Vec<ChunkChoice>,
    /// Present (null until the last chunk) when `stream_options.include_usage` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Usage>)]
    pub usage: Option<Option<Usage>>,
}

/// A choice inside a chunk.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<ChoiceLogprobs>,
    pub finish_reason: Option<String>,
}

/// What a chunk adds to the message.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ResponseToolCall>>,
}

/// One server-sent event of a `/v1/chat/completions` stream, as the document describes it:
/// `data` holds a `ChatCompletionChunk` as JSON, an error object (`OpenAiErrorBody`) when the
/// stream fails, or `[DONE]` at the end.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ChatCompletionSseEvent {
    /// JSON `ChatCompletionChunk`, JSON `OpenAiErrorBody`, or `[DONE]`.
    #[schema(content_media_type = "application/json")]
    pub data: String,
}

/// One server-sent event of a `/v1/completions` stream: `data` holds a `Completion` chunk as
/// JSON, an error object (`OpenAiErrorBody`) when the stream fails, or `[DONE]` at the end.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CompletionSseEvent {
    /// JSON `Completion` chunk, JSON `OpenAiErrorBody`, or `[DONE]`.
    #[schema(content_media_type = "application/json")]
    pub data: String,
}

// ---------------------------------------------------------------------------------------------
// Legacy completions
// ---------------------------------------------------------------------------------------------

/// `POST /v1/completions` request.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[schema(example = json!({"model": "llama3.2", "prompt": "Once upon a time"}))]
pub struct CompletionRequest {
    #[schema(example = "llama3.2", min_length = 1, pattern = "\\S")]
    pub model: String,
    /// The prompt: a string, or an array holding one string.
    #[schema(schema_with = prompt_schema)]
    pub prompt: Prompt,
    #[serde(default)]
    pub suffix: Option<String>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, deserialize_with = "integral")]
    #[schema(minimum = 1)]
    pub max_tokens: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    #[serde(default, deserialize_with = "integral")]
    pub seed: Option<i64>,
    #[serde(default)]
    #[schema(schema_with = stop_schema)]
    pub stop: Option<StopSequences>,
    #[serde(default)]
    #[schema(minimum = -2, maximum = 2)]
    pub frequency_penalty: Option<f64>,
    #[serde(default)]
    #[schema(minimum = -2, maximum = 2)]
    pub presence_penalty: Option<f64>,
    /// Number of top alternatives to return per token (0-5 in OpenAI; up to 20 here).
    #[serde(default, deserialize_with = "integral")]
    #[schema(minimum = 0, maximum = 20)]
    pub logprobs: Option<i64>,
    #[serde(default, deserialize_with = "integral")]
    #[schema(minimum = 1, maximum = 1)]
    pub n: Option<i64>,
    /// Put the prompt in front of the answer.
    #[serde(default)]
    pub echo: Option<bool>,
    /// Only 1 is supported.
    #[serde(default, deserialize_with = "integral")]
    #[schema(minimum = 1, maximum = 1)]
    pub best_of: Option<i64>,
    #[serde(default, deserialize_with = "integral")]
    #[schema(minimum = 1, maximum = 4294967295_i64)]
    pub top_k: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1)]
    pub min_p: Option<f64>,
    #[serde(default, deserialize_with = "integral")]
    #[schema(minimum = 1, maximum = 4294967295_i64)]
    pub num_ctx: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 10)]
    pub repeat_penalty: Option<f64>,
    #[serde(default)]
    #[schema(value_type = Option<crate::ollama::schemas::KeepAlive>)]
    pub keep_alive: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub options: Option<Map<String, Value>>,
}

/// A string, or an array of `min`..=`max` strings (`max` unbounded when `None`).
fn string_or_strings(
    description: &str,
    min: usize,
    max: Option<usize>,
) -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .description(Some(description))
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(
            ArrayBuilder::new()
                .items(ObjectBuilder::new().schema_type(Type::String))
                .min_items(Some(min))
                .max_items(max),
        )
        .into()
}

/// `stop`: one sequence or several, none of them empty (or `null`).
fn stop_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
    let sequence = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
    };
    OneOfBuilder::new()
        .description(Some(
            "Sequences where generation stops: one, or several; none empty.",
        ))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .item(sequence())
        .item(ArrayBuilder::new().items(sequence()))
        .into()
}

/// `prompt`: the document says what the gateway takes, one prompt per request.
fn prompt_schema() -> utoipa::openapi::schema::Schema {
    string_or_strings(
        "The prompt: a string, or an array holding one string.",
        1,
        Some(1),
    )
}

/// `input`: at least one string.
fn embedding_input_schema() -> utoipa::openapi::schema::Schema {
    string_or_strings(
        "A string or a non-empty array of strings (token arrays are not supported by Ollama).",
        1,
        None,
    )
}

/// A completion prompt: one string, or an array of strings (only one prompt per request).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Prompt {
    One(String),
    Many(Vec<String>),
}

/// `text_completion` object (also each streamed chunk).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Completion {
    pub id: String,
    /// Always `text_completion`.
    pub object: &'static str,
    pub created: i64,
    pub model: String,
    pub system_fingerprint: &'static str,
    pub choices: Vec<CompletionChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Usage>)]
    pub usage: Option<Option<Usage>>,
}

/// One choice of a text completion.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CompletionChoice {
    pub index: u32,
    pub text: String,
    pub logprobs: Option<CompletionLogprobs>,
    pub finish_reason: Option<String>,
}

/// Legacy completions logprobs shape.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct CompletionLogprobs {
    pub tokens: Vec<String>,
    pub token_logprobs: Vec<f64>,
    #[schema(value_type = Vec<Object>)]
    pub top_logprobs: Vec<Map<String, Value>>,
    pub text_offset: Vec<usize>,
}

// ---------------------------------------------------------------------------------------------
// Embeddings
// ---------------------------------------------------------------------------------------------

/// `POST /v1/embeddings` request.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[schema(example = json!({"model": "all-minilm", "input": "Why is the sky blue?"}))]
pub struct EmbeddingRequest {
    #[schema(example = "all-minilm", min_length = 1, pattern = "\\S")]
    pub model: String,
    /// A string or an array of strings (token arrays are not supported by Ollama).
    #[schema(schema_with = embedding_input_schema)]
    pub input: EmbeddingInput,
    /// `float` (default) or `base64` (little-endian float32).
    #[serde(default)]
    pub encoding_format: Option<EncodingFormat>,
    /// Truncate the output vectors to this many dimensions.
    #[serde(default, deserialize_with = "integral")]
    #[schema(minimum = 1, maximum = 65536)]
    pub dimensions: Option<i64>,
    #[serde(default)]
    pub truncate: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<crate::ollama::schemas::KeepAlive>)]
    pub keep_alive: Option<Value>,
}

/// Embedding input.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EmbeddingInput {
    One(String),
    Many(Vec<String>),
}

/// Encodings of embedding vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    Float,
    Base64,
}

/// `POST /v1/embeddings` response.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EmbeddingList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<Embedding>,
    pub model: String,
    pub usage: EmbeddingUsage,
}

/// One embedding.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Embedding {
    /// Always `embedding`.
    pub object: &'static str,
    pub index: u32,
    /// Floats, or a base64 string of little-endian float32.
    pub embedding: EmbeddingVector,
}

/// An embedding vector as sent: floats, or base64 of little-endian float32.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EmbeddingVector {
    #[schema(value_type = Vec<f32>)]
    Float(Float32s),
    Base64(String),
}

/// Float32 numbers written as Ollama (Go's `encoding/json`) writes them: the shortest digits
/// that read back as the same float32 (`0.14894658`, not the float64 `0.1489465832710266`), in
/// plain decimal unless below 1e-6 or from 1e21 on.
#[derive(Clone, Debug, PartialEq)]
pub struct Float32s(pub Vec<f32>);

impl Serialize for Float32s {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = String::with_capacity(2 + self.0.len() * 12);
        text.push('[');
        for (i, value) in self.0.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            write_go_f32(&mut text, *value);
        }
        text.push(']');
        serde_json::value::RawValue::from_string(text)
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

/// One float32 in Go's JSON form (`strconv` shortest digits; exponent form `1e-7`, `1e+21`
/// outside [1e-6, 1e21)). JSON has no NaN or infinity: those become `null`, as serde_json does.
pub fn write_go_f32(out: &mut String, value: f32) {
    use std::fmt::Write;
    if !value.is_finite() {
        out.push_str("null");
        return;
    }
    let abs = value.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let start = out.len();
        let _ = write!(out, "{value:e}");
        // Rust writes `1e21`, Go `1e+21`; both write `1e-7`.
        if let Some(e) = out[start..].find('e')
            && !out[start + e + 1..].starts_with('-')
        {
            out.insert(start + e + 1, '+');
        }
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Embedding usage.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct EmbeddingUsage {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
}

// ---------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------

/// `GET /v1/models` response.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<Model>,
}

/// One model.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Model {
    #[schema(example = "llama3.2:latest")]
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    pub created: i64,
    #[schema(example = "library")]
    pub owned_by: String,
}
