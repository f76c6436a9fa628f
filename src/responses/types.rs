//! OpenAI Responses wire types, as far as the gateway reads or writes them.
//!
//! Input items are read as JSON values and converted one by one in `request.rs`, so a refusal
//! can name the item and field (`input[2].call_id`) whatever the item's type.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `POST /v1/responses` request.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[schema(example = json!({"model": "llama3.2", "input": "Why is the sky blue?"}))]
pub struct ResponsesRequest {
    /// Model to use, as Ollama names it.
    #[schema(example = "llama3.2", min_length = 1, pattern = "\\S")]
    pub model: String,
    /// A string (one user message) or a list of items: messages (`input_text`,
    /// `input_image` parts), `function_call`, `function_call_output`, `reasoning`.
    #[schema(value_type = super::schemas::Input)]
    pub input: ResponseInput,
    /// A system message put in front of the input.
    #[serde(default)]
    pub instructions: Option<String>,
    /// Function tools (the flat Responses form: `{"type":"function","name",...}`).
    #[serde(default)]
    pub tools: Option<Vec<FunctionTool>>,
    /// `none`, `auto`, `required` or `{"type":"function","name":...}`.
    #[serde(default)]
    pub tool_choice: Option<ResponsesToolChoice>,
    /// `text.format`: `text`, `json_object` or `json_schema`.
    #[serde(default, deserialize_with = "crate::openai::types::object_only")]
    pub text: Option<TextConfig>,
    /// `reasoning.effort` → Ollama's `think`.
    #[serde(default, deserialize_with = "crate::openai::types::object_only")]
    pub reasoning: Option<ReasoningConfig>,
    /// Most tokens to generate.
    #[serde(default, deserialize_with = "crate::openai::types::integral")]
    #[schema(minimum = 1)]
    pub max_output_tokens: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1)]
    pub top_p: Option<f64>,
    /// Stream typed server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Up to 16 string pairs, echoed in the response.
    #[serde(default)]
    #[schema(schema_with = super::schemas::metadata_schema)]
    pub metadata: Option<Map<String, Value>>,
    /// Keep the response (default true, as OpenAI) for `GATEWAY_RESPONSES_TTL`, for
    /// `GET`/`DELETE /v1/responses/{id}` and `previous_response_id`; `false` keeps nothing.
    #[serde(default)]
    pub store: Option<bool>,
    /// Continue from a stored response of the same key: its input and output come before this
    /// request's input (its `instructions` do not carry over). Unknown, expired, deleted,
    /// not stored or another key's: 404.
    #[serde(default)]
    pub previous_response_id: Option<String>,
    /// Only `null` (or absent): the gateway keeps no conversations, so any other value is
    /// refused.
    #[serde(default)]
    #[schema(schema_with = null_only_schema)]
    pub conversation: Option<Value>,
    /// Only `false` or `null` (or absent): the gateway answers while the client waits.
    #[serde(default)]
    #[schema(schema_with = false_only_schema)]
    pub background: Option<bool>,
    /// Echoed; Ollama decides how many calls a turn makes.
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
}

/// `conversation`, which the gateway takes only as `null`.
fn null_only_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Null)
        .description(Some(
            "Only `null` (or absent): the gateway keeps no conversations; send the whole \
             conversation in `input`, or use `previous_response_id`.",
        ))
        .into()
}

/// `background`, which the gateway takes only as `false` (or `null`).
fn false_only_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Boolean, Type::Null]))
        .enum_values(Some([Value::Bool(false), Value::Null]))
        .description(Some(
            "Only `false` or `null` (or absent): the gateway answers while the client waits.",
        ))
        .into()
}

/// `input`: a string or a list of items (documented as [`super::schemas::Input`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum ResponseInput {
    Text(String),
    Items(Vec<Map<String, Value>>),
}

/// A message item (`{"type":"message"}` or the easy form without `type`).
#[derive(Clone, Debug, Deserialize)]
pub struct MessageItem {
    pub role: ItemRole,
    #[serde(deserialize_with = "crate::openai::types::tagged_parts")]
    pub content: ItemContent,
}

/// Roles of message items; `developer` is treated as `system`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemRole {
    User,
    System,
    Developer,
    Assistant,
}

/// A message item's content: a string or parts.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum ItemContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// One part of a message item.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    InputText {
        text: String,
    },
    /// An assistant turn replayed from an earlier response.
    OutputText {
        text: String,
    },
    Refusal {
        refusal: String,
    },
    /// A base64 `data:` URL in `image_url` (no `file_id`: there are no files here).
    InputImage {
        #[serde(default)]
        image_url: Option<String>,
        #[serde(default)]
        file_id: Option<String>,
    },
    /// Refused: file inputs are not supported.
    InputFile {},
}

/// A `function_call` item: a call the model made earlier.
#[derive(Clone, Debug, Deserialize)]
pub struct FunctionCallItem {
    pub call_id: String,
    pub name: String,
    /// A JSON string.
    pub arguments: String,
}

/// A `function_call_output` item: the result of a call.
#[derive(Clone, Debug, Deserialize)]
pub struct FunctionCallOutputItem {
    pub call_id: String,
    #[serde(deserialize_with = "crate::openai::types::tagged_parts")]
    pub output: FunctionOutput,
}

/// A function's output: a string or content parts.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum FunctionOutput {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// A `reasoning` item replayed from an earlier response.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ReasoningItem {
    #[serde(default)]
    pub summary: Vec<TextPart>,
    #[serde(default)]
    pub content: Option<Vec<TextPart>>,
    #[serde(default)]
    pub encrypted_content: Option<String>,
}

/// `{"type": ..., "text": ...}`.
#[derive(Clone, Debug, Deserialize)]
pub struct TextPart {
    #[serde(default)]
    pub text: String,
}

/// A tool in the flat Responses form.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[schema(as = ResponsesFunctionTool)]
pub struct FunctionTool {
    /// Only `function` is supported.
    #[schema(value_type = super::schemas::FunctionKind)]
    pub r#type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        example = "get_weather",
        min_length = 1,
        required = true,
        nullable = false
    )]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON schema of the arguments; forwarded verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `tool_choice`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ResponsesToolChoice {
    /// `none`, `auto` or `required`.
    Mode(ToolChoiceMode),
    /// `{"type":"function","name":"..."}`
    Function(NamedFunction),
}

/// The string forms of `tool_choice`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ResponsesToolChoiceMode)]
pub enum ToolChoiceMode {
    None,
    Auto,
    Required,
}

/// A named function in `tool_choice`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[schema(as = ResponsesNamedFunction)]
pub struct NamedFunction {
    /// Always `function`.
    pub r#type: FunctionType,
    pub name: String,
}

/// The one tool type.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ResponsesFunctionType)]
pub enum FunctionType {
    Function,
}

/// `text`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[schema(as = ResponsesTextConfig)]
pub struct TextConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TextFormat>,
}

/// `text.format`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(as = ResponsesTextFormat)]
pub enum TextFormat {
    Text,
    JsonObject,
    JsonSchema {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Forwarded to Ollama verbatim as `format`.
        #[schema(value_type = Object)]
        schema: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    },
}

/// `reasoning`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[schema(as = ResponsesReasoningConfig)]
pub struct ReasoningConfig {
    /// `none`, `minimal`, `low`, `medium`, `high`, `xhigh`.
    #[serde(default)]
    pub effort: Option<String>,
    /// Echoed; the reasoning comes back as the summary whatever this says.
    #[serde(default)]
    pub summary: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------------------------

/// The `response` object.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = ResponseObject)]
pub struct Response {
    #[schema(example = "resp_9f1c2a4e7b8d4c0f9a3e6b1d2c5f8a7e")]
    pub id: String,
    /// Always `response`.
    #[schema(value_type = String, example = "response")]
    pub object: &'static str,
    /// Unix seconds.
    pub created_at: i64,
    /// `in_progress`, `completed`, `incomplete` or `failed`.
    #[schema(value_type = String, example = "completed")]
    pub status: &'static str,
    /// Set when `status` is `failed`.
    pub error: Option<ResponseError>,
    /// Set when `status` is `incomplete`.
    pub incomplete_details: Option<IncompleteDetails>,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<i64>,
    pub model: String,
    #[schema(value_type = Vec<Object>)]
    pub output: Vec<Value>,
    pub parallel_tool_calls: bool,
    /// The response this one continues.
    pub previous_response_id: Option<String>,
    pub reasoning: ReasoningConfig,
    /// Whether the response is stored (for `GET`/`DELETE /v1/responses/{id}` and
    /// `previous_response_id`).
    pub store: bool,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub text: TextConfig,
    pub tool_choice: ResponsesToolChoice,
    pub tools: Vec<FunctionTool>,
    /// Always `disabled`.
    #[schema(value_type = String)]
    pub truncation: &'static str,
    /// Null until the response is complete.
    pub usage: Option<ResponseUsage>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// `error` of a failed response.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = ResponsesError)]
pub struct ResponseError {
    pub code: String,
    pub message: String,
}

/// `incomplete_details`.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = ResponsesIncompleteDetails)]
pub struct IncompleteDetails {
    /// `max_output_tokens`.
    #[schema(value_type = String)]
    pub reason: &'static str,
}

/// Token usage.
#[derive(Clone, Copy, Debug, Default, Serialize, ToSchema)]
#[schema(as = ResponsesUsage)]
pub struct ResponseUsage {
    pub input_tokens: u64,
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u64,
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: u64,
}

/// Always zero: Ollama reports no cache hits.
#[derive(Clone, Copy, Debug, Default, Serialize, ToSchema)]
#[schema(as = ResponsesInputTokensDetails)]
pub struct InputTokensDetails {
    pub cached_tokens: u64,
}

/// Always zero: Ollama does not count reasoning tokens apart.
#[derive(Clone, Copy, Debug, Default, Serialize, ToSchema)]
#[schema(as = ResponsesOutputTokensDetails)]
pub struct OutputTokensDetails {
    pub reasoning_tokens: u64,
}

/// One server-sent event of a `/v1/responses` stream, for the document: `event` is the event's
/// `type` (`response.created`, `response.output_text.delta`, ..., `response.completed`,
/// `response.incomplete`, `response.failed`, `error`); `data` is the JSON event with its
/// `sequence_number`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ResponsesSseEvent {
    #[schema(example = "response.output_text.delta")]
    pub event: String,
    #[schema(content_media_type = "application/json")]
    pub data: String,
}
