//! Shapes that exist only to describe Responses requests in the OpenAPI document: the input
//! items are read as JSON values and converted one by one (so a refusal names the item), and
//! these say which items and parts the conversion takes.

#![allow(
    dead_code,
    reason = "document-only types: read by utoipa, never constructed"
)]

use std::borrow::Cow;

use serde::Deserialize;
use utoipa::openapi::schema::{ArrayBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::openai::schemas::{DataImageUrl, JsonObjectText};

/// `input`: a string (one user message) or at least one item.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = ResponsesInput)]
pub enum Input {
    Text(String),
    Items(InputItems),
}

/// The items of `input`, at least one.
#[derive(Deserialize)]
pub struct InputItems;

impl PartialSchema for InputItems {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(Ref::from_schema_name(InputItem::name()))
            .min_items(Some(1))
            .into()
    }
}

impl ToSchema for InputItems {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ResponsesInputItems")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((InputItem::name().into_owned(), InputItem::schema()));
        InputItem::schemas(schemas);
    }
}

/// One input item.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = ResponsesInputItem)]
pub enum InputItem {
    Message(MessageItem),
    FunctionCall(FunctionCallItem),
    FunctionCallOutput(FunctionCallOutputItem),
    Reasoning(ReasoningItem),
}

/// A message (`type` may be left out).
#[derive(Deserialize, ToSchema)]
#[schema(as = ResponsesMessageItem)]
pub struct MessageItem {
    r#type: Option<MessageKind>,
    role: ItemRole,
    content: ItemContent,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ResponsesMessageKind)]
pub enum MessageKind {
    Message,
}

/// A message's role; `developer` is sent to Ollama as `system`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ResponsesItemRole)]
pub enum ItemRole {
    User,
    System,
    Developer,
    Assistant,
}

/// A message's content: a string or parts.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = ResponsesItemContent)]
pub enum ItemContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// A content part (file inputs are refused).
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schema(as = ResponsesContentPart)]
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
    /// An image as a base64 `data:` URL (there are no files to name by `file_id`).
    InputImage {
        #[schema(value_type = DataImageUrl)]
        image_url: String,
    },
}

/// A call the model made earlier.
#[derive(Deserialize, ToSchema)]
#[schema(as = ResponsesFunctionCallItem)]
pub struct FunctionCallItem {
    r#type: FunctionCallKind,
    call_id: String,
    name: String,
    #[schema(value_type = JsonObjectText)]
    arguments: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ResponsesFunctionCallKind)]
pub enum FunctionCallKind {
    FunctionCall,
}

/// The result of a call.
#[derive(Deserialize, ToSchema)]
#[schema(as = ResponsesFunctionCallOutputItem)]
pub struct FunctionCallOutputItem {
    r#type: FunctionCallOutputKind,
    call_id: String,
    output: ItemContent,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ResponsesFunctionCallOutputKind)]
pub enum FunctionCallOutputKind {
    FunctionCallOutput,
}

/// Reasoning replayed from an earlier response (the next assistant turn's `thinking`).
#[derive(Deserialize, ToSchema)]
#[schema(as = ResponsesReasoningItem)]
pub struct ReasoningItem {
    r#type: ReasoningKind,
    #[serde(default)]
    summary: Vec<TextPart>,
    content: Option<Vec<TextPart>>,
    encrypted_content: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ResponsesReasoningKind)]
pub enum ReasoningKind {
    Reasoning,
}

/// `{"type": ..., "text": ...}`.
#[derive(Deserialize, ToSchema)]
#[schema(as = ResponsesTextPart)]
pub struct TextPart {
    #[serde(default)]
    text: String,
}

/// A tool's `type`: only function tools are supported.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ResponsesFunctionKind)]
pub enum FunctionKind {
    Function,
}

/// `metadata`: up to 16 pairs, echoed in the response.
pub fn metadata_schema() -> Schema {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .max_properties(Some(16))
        .description(Some("Up to 16 pairs, echoed in the response."))
        .into()
}
