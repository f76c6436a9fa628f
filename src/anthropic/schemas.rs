//! Shapes that exist only to describe Messages requests in the OpenAPI document, where the
//! parse types cannot say it: which content blocks each role may hold (a `tool_use` block only
//! in an assistant turn, a `tool_result` only in a user turn, as the translation checks), that an
//! image is a base64 source, and that a tool is a client tool.

#![allow(
    dead_code,
    reason = "document-only types: read by utoipa, never constructed"
)]

use serde::Deserialize;
use utoipa::ToSchema;

use super::types::{
    ImageParam, RedactedThinkingParam, TextParam, ThinkingParam, ToolResultParam, ToolUseParam,
};

/// One message of the conversation, by role.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "role", rename_all = "lowercase")]
#[schema(as = AnthropicInputMessage)]
pub enum InputMessageByRole {
    /// The user's turn: text, images, and the results of the assistant's tool calls.
    User { content: UserContent },
    /// An earlier assistant turn: text, images, tool calls and reasoning.
    Assistant { content: AssistantContent },
}

/// A user message's content: a string or blocks.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = AnthropicUserContent)]
pub enum UserContent {
    Text(String),
    Blocks(Vec<UserBlock>),
}

/// An assistant message's content: a string or blocks.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = AnthropicAssistantContent)]
pub enum AssistantContent {
    Text(String),
    Blocks(Vec<AssistantBlock>),
}

/// A block of a user message (`thinking` blocks there are dropped).
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(as = AnthropicUserBlock)]
pub enum UserBlock {
    Text(TextParam),
    Image(ImageParam),
    ToolResult(ToolResultParam),
    Thinking(ThinkingParam),
    RedactedThinking(RedactedThinkingParam),
}

/// A block of an assistant message.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(as = AnthropicAssistantBlock)]
pub enum AssistantBlock {
    Text(TextParam),
    Image(ImageParam),
    ToolUse(ToolUseParam),
    Thinking(ThinkingParam),
    RedactedThinking(RedactedThinkingParam),
}

/// An image source: base64 data of an `image/*` type (remote `url` sources are refused: the
/// gateway does not fetch URLs on a client's behalf).
#[derive(Deserialize, ToSchema)]
#[schema(as = AnthropicBase64ImageSource)]
pub struct Base64ImageSource {
    r#type: Base64Kind,
    #[schema(pattern = "^image/", example = "image/png")]
    media_type: String,
    #[schema(value_type = crate::openai::schemas::Base64Data)]
    data: String,
}

/// The one source type.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = AnthropicBase64Kind)]
pub enum Base64Kind {
    Base64,
}

/// A tool's `type`: only client tools (`custom`, the default) are supported.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = AnthropicCustomToolType)]
pub enum CustomToolType {
    Custom,
}

/// `stop_sequences`: strings, none of them empty.
pub fn stop_sequences_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1)),
        )
        .description(Some(
            "Sequences where generation stops (none of them empty).",
        ))
        .into()
}
