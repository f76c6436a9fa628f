//! Shapes that exist only to describe OpenAI requests in the OpenAPI document, where the parse
//! types cannot say it: what each message role needs (`content` for `system`, `developer` and
//! `user`; the others may leave it null), and that an image is a base64 `data:` URL.

#![allow(
    dead_code,
    reason = "document-only types: read by utoipa, never constructed"
)]

use serde::Deserialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use super::types::{MessageContent, MessageToolCall};

/// One message of a chat request, by role.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "role", rename_all = "lowercase")]
#[schema(as = ChatMessage)]
pub enum ChatMessageByRole {
    /// Instructions for the model.
    System {
        content: MessageContent,
        name: Option<String>,
    },
    /// OpenAI's newer name for `system` (sent to Ollama as `system`).
    Developer {
        content: MessageContent,
        name: Option<String>,
    },
    /// The user's turn.
    User {
        content: MessageContent,
        name: Option<String>,
    },
    /// An earlier assistant turn; `content` may be null when it made tool calls.
    Assistant {
        content: Option<MessageContent>,
        name: Option<String>,
        tool_calls: Option<Vec<MessageToolCall>>,
        /// Replayed reasoning.
        reasoning: Option<String>,
        /// Replayed reasoning (DeepSeek-style name).
        reasoning_content: Option<String>,
    },
    /// A tool's result.
    Tool {
        content: Option<MessageContent>,
        /// The call this result answers.
        tool_call_id: Option<String>,
        /// The tool's name (found from `tool_call_id` when absent).
        name: Option<String>,
    },
    /// OpenAI's legacy tool result.
    Function {
        content: Option<MessageContent>,
        name: Option<String>,
    },
}

/// An image as a `data:` URL: `data:image/<type>;base64,<data>` (or without a type), the data
/// standard base64. Remote URLs are refused: the gateway does not fetch URLs on a client's
/// behalf.
pub struct DataImageUrl;

impl PartialSchema for DataImageUrl {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(super::request::DATA_IMAGE_URL_PATTERN))
            .description(Some(
                "An image as a base64 `data:` URL (`data:image/png;base64,...`); remote URLs are \
                 refused.",
            ))
            .examples(["data:image/png;base64,iVBORw0KGgo="])
            .into()
    }
}

impl ToSchema for DataImageUrl {}

/// A string holding the JSON text of an object (or nothing): a tool call's `arguments`.
pub struct JsonObjectText;

impl PartialSchema for JsonObjectText {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type("application/json")
            .description(Some(
                "The JSON text of an object (empty: no arguments). Ollama takes arguments as an \
                 object, so any other text is refused.",
            ))
            .examples(["{\"city\":\"Paris\"}"])
            .into()
    }
}

impl ToSchema for JsonObjectText {}

/// Base64 data, as the gateway checks it: standard (padded) base64, not empty.
pub struct Base64Data;

impl PartialSchema for Base64Data {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(super::request::BASE64_PATTERN))
            .description(Some("Standard base64 (padded), not empty."))
            .into()
    }
}

impl ToSchema for Base64Data {}
