//! Anthropic's Messages wire types, as far as the gateway reads or writes them.
//!
//! Fields the gateway has no use for (`metadata`, `cache_control`, `citations`, the
//! `anthropic-version` header) are accepted and ignored, as the Messages API ignores what it
//! does not need. Ranges and cross-field rules are checked in `request.rs`, so the message can
//! name the field.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

// ---------------------------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------------------------

/// `POST /v1/messages` request (and, without `max_tokens`, `POST /v1/messages/count_tokens`).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[schema(example = json!({"model": "llama3.2", "max_tokens": 1024, "messages": [{"role": "user", "content": "Why is the sky blue?"}]}))]
#[schema(as = AnthropicMessagesRequest)]
pub struct MessagesRequest {
    /// Model to use, as Ollama names it.
    #[schema(example = "llama3.2", min_length = 1, pattern = "\\S")]
    pub model: String,
    /// Most tokens to generate (at least 1).
    #[serde(default, deserialize_with = "crate::openai::types::integral")]
    #[schema(minimum = 1, required = true, nullable = false)]
    pub max_tokens: Option<i64>,
    /// The conversation so far (at least one message).
    #[schema(min_items = 1, value_type = Vec<super::schemas::InputMessageByRole>)]
    pub messages: Vec<InputMessage>,
    /// System prompt: a string or text blocks.
    #[serde(default)]
    pub system: Option<SystemPrompt>,
    /// Sequences where generation stops (none of them empty).
    #[serde(default)]
    #[schema(schema_with = super::schemas::stop_sequences_schema)]
    pub stop_sequences: Option<Vec<String>>,
    /// Sampling temperature.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1)]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, deserialize_with = "crate::openai::types::integral")]
    #[schema(minimum = 1, maximum = 4294967295_i64)]
    pub top_k: Option<i64>,
    /// Stream the answer as named server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Client tools the model may call (server tools are not supported).
    #[serde(default)]
    pub tools: Option<Vec<ToolDefinition>>,
    /// `auto`, `any`, `tool` (with `name`) or `none`.
    #[serde(default)]
    pub tool_choice: Option<ToolChoice>,
    /// Extended thinking: `enabled` (with `budget_tokens`), `adaptive` or `disabled`.
    #[serde(default)]
    pub thinking: Option<ThinkingConfig>,
    /// Accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, Value>>,
}

/// `POST /v1/messages/count_tokens` request, for the document: a Messages request without
/// `max_tokens` (the handler reads it as a [`MessagesRequest`], so other fields are accepted
/// and ignored as there).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[schema(as = AnthropicCountTokensRequest)]
#[schema(example = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Why is the sky blue?"}]}))]
pub struct CountTokensRequest {
    #[schema(example = "llama3.2", min_length = 1, pattern = "\\S")]
    pub model: String,
    #[schema(min_items = 1, value_type = Vec<super::schemas::InputMessageByRole>)]
    pub messages: Vec<InputMessage>,
    #[serde(default)]
    pub system: Option<SystemPrompt>,
    #[serde(default)]
    pub tools: Option<Vec<ToolDefinition>>,
    #[serde(default)]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default)]
    pub thinking: Option<ThinkingConfig>,
}

/// `system`: a string or text blocks.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = AnthropicSystemPrompt)]
pub enum SystemPrompt {
    Text(String),
    Blocks(Vec<TextBlockParam>),
}

/// A text block of the system prompt.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[schema(as = AnthropicTextBlockParam)]
pub struct TextBlockParam {
    /// Always `text`.
    #[serde(default)]
    pub r#type: Option<String>,
    pub text: String,
}

/// One message of the conversation (documented by role, as
/// [`super::schemas::InputMessageByRole`]: which blocks each role may hold).
#[derive(Clone, Debug, Deserialize)]
pub struct InputMessage {
    pub role: InputRole,
    #[serde(deserialize_with = "crate::openai::types::tagged_parts")]
    pub content: MessageParamContent,
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputRole {
    User,
    Assistant,
}

/// A message's content: a string or content blocks.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum MessageParamContent {
    Text(String),
    Blocks(Vec<ContentBlockParam>),
}

/// One content block of a request message.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlockParam {
    Text(TextParam),
    Image(ImageParam),
    ToolUse(ToolUseParam),
    ToolResult(ToolResultParam),
    Thinking(ThinkingParam),
    RedactedThinking(RedactedThinkingParam),
}

/// A `text` block.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[schema(as = AnthropicTextParam)]
pub struct TextParam {
    pub text: String,
}

/// An `image` block; only `base64` sources are supported.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[schema(as = AnthropicImageParam)]
pub struct ImageParam {
    #[schema(value_type = super::schemas::Base64ImageSource)]
    pub source: ImageSource,
}

/// A `tool_use` block: a tool call the assistant made.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[schema(as = AnthropicToolUseParam)]
pub struct ToolUseParam {
    pub id: String,
    pub name: String,
    /// The call's arguments (`null` or absent: none).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub input: Value,
}

/// A `tool_result` block: the result of a tool call.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[schema(as = AnthropicToolResultParam)]
pub struct ToolResultParam {
    pub tool_use_id: String,
    #[serde(default, deserialize_with = "crate::openai::types::tagged_parts")]
    pub content: Option<ToolResultContent>,
    #[serde(default)]
    pub is_error: Option<bool>,
}

/// A `thinking` block: the assistant's earlier reasoning (replayed; the signature is not
/// checked).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[schema(as = AnthropicThinkingParam)]
pub struct ThinkingParam {
    pub thinking: String,
    #[serde(default)]
    pub signature: Option<String>,
}

/// A `redacted_thinking` block: encrypted reasoning from Anthropic's own models, nothing
/// Ollama can read; dropped.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[schema(as = AnthropicRedactedThinkingParam)]
pub struct RedactedThinkingParam {
    #[serde(default)]
    pub data: Option<String>,
}

/// An image source. Only `base64` is documented
/// ([`super::schemas::Base64ImageSource`]); `url` is read to be refused by name.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    /// `{"type":"base64","media_type":"image/png","data":"..."}`
    Base64 { media_type: String, data: String },
    /// A remote image: refused, the gateway does not fetch URLs on a client's behalf.
    Url {},
}

/// `tool_result.content`: a string or text/image blocks.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = AnthropicToolResultContent)]
pub enum ToolResultContent {
    Text(String),
    Blocks(Vec<ToolResultBlock>),
}

/// A block inside a tool result.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(as = AnthropicToolResultBlock)]
pub enum ToolResultBlock {
    Text {
        text: String,
    },
    Image {
        #[schema(value_type = super::schemas::Base64ImageSource)]
        source: ImageSource,
    },
}

/// A client tool.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[schema(as = AnthropicToolDefinition)]
pub struct ToolDefinition {
    /// `custom` or absent; server tools (`web_search_...`, `bash_...`) are refused.
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::CustomToolType>)]
    pub r#type: Option<String>,
    #[schema(example = "get_weather", min_length = 1)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// JSON schema of the input; forwarded verbatim.
    #[serde(default)]
    #[schema(value_type = Object, required = true)]
    pub input_schema: Option<Value>,
}

/// `tool_choice`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(as = AnthropicToolChoice)]
pub enum ToolChoice {
    /// The model decides.
    Auto {
        #[serde(default)]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must use a tool (Ollama cannot force one: forwarded like `auto`).
    Any {
        #[serde(default)]
        disable_parallel_tool_use: Option<bool>,
    },
    /// Only this tool is offered.
    Tool {
        name: String,
        #[serde(default)]
        disable_parallel_tool_use: Option<bool>,
    },
    /// No tools are sent.
    None,
}

/// `thinking`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(as = AnthropicThinkingConfig)]
pub enum ThinkingConfig {
    /// Think; `budget_tokens` must be at least 1024 and below `max_tokens`.
    Enabled {
        #[serde(deserialize_with = "crate::openai::types::required_integral")]
        #[schema(minimum = 1024)]
        budget_tokens: i64,
    },
    /// Think as much as the model wants.
    Adaptive,
    /// Do not think.
    Disabled,
}

// ---------------------------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------------------------

/// A `message` object.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = AnthropicMessage)]
pub struct Message {
    #[schema(example = "msg_9f1c2a4e7b8d4c0f9a3e6b1d2c5f8a7e")]
    pub id: String,
    /// Always `message`.
    #[schema(value_type = String, example = "message")]
    pub r#type: &'static str,
    /// Always `assistant`.
    #[schema(value_type = String, example = "assistant")]
    pub role: &'static str,
    pub model: String,
    pub content: Vec<ContentBlock>,
    /// `end_turn`, `max_tokens` or `tool_use` (null in the stream's `message_start`).
    #[schema(example = "end_turn")]
    pub stop_reason: Option<String>,
    /// Always null: Ollama does not say which stop sequence matched.
    pub stop_sequence: Option<String>,
    pub usage: Usage,
}

/// One content block of an answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(as = AnthropicContentBlock)]
pub enum ContentBlock {
    /// Text.
    Text { text: String },
    /// The model's reasoning; `signature` is empty (Ollama signs nothing).
    Thinking { thinking: String, signature: String },
    /// A tool call.
    ToolUse {
        #[schema(example = "toolu_9f1c2a4e7b8d4c0f9a3e6b1d")]
        id: String,
        name: String,
        #[schema(value_type = Object)]
        input: Value,
    },
}

/// Token usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = AnthropicUsage)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// `POST /v1/messages/count_tokens` response.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[schema(as = AnthropicTokenCount)]
pub struct TokenCount {
    /// The prompt's tokens as Ollama counts them for the model.
    pub input_tokens: u64,
}

/// One named server-sent event of a `/v1/messages` stream, for the document: `event` is
/// `message_start`, `content_block_start`, `content_block_delta`, `content_block_stop`,
/// `message_delta`, `message_stop`, `ping` or `error`; `data` is the JSON event, whose `type`
/// repeats the name (an `error` event holds an `AnthropicErrorBody`).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = AnthropicMessagesSseEvent)]
pub struct MessagesSseEvent {
    #[schema(example = "content_block_delta")]
    pub event: String,
    #[schema(content_media_type = "application/json")]
    pub data: String,
}
