//! Shapes that exist only to describe Ollama's native API in the OpenAPI document.
//!
//! The native passthrough forwards bodies as sent, so nothing here is used to parse; these
//! types tell Swagger UI, client generators and schemathesis what Ollama accepts, with
//! examples that work in *Try it out*, and the gateway checks each native body against the
//! schema its type gives it ([`super::validate`]). So they say what Ollama 0.24 takes, no more
//! and no less: every field may be `null` (Go leaves the field unset), and what a Go client
//! sends by default (`"options": null`, `"messages": null`) is allowed.

#![allow(
    dead_code,
    reason = "document-only types: read by utoipa, never constructed"
)]

use serde::Serialize;
use serde_json::json;
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{Deprecated, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::types::Message;

/// `think`: on/off, or a reasoning level.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum Think {
    Enabled(bool),
    Level(ThinkLevel),
}

/// Reasoning levels.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ThinkLevel {
    Low,
    Medium,
    High,
    Max,
}

/// `keep_alive`: a duration string (`"5m"`), or seconds (negative keeps the model loaded, 0
/// unloads it).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum KeepAlive {
    Duration(String),
    Seconds(f64),
}

/// `format`: `"json"`, or a JSON schema object the answer must follow.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum Format {
    Json(JsonFormat),
    #[schema(value_type = Object)]
    Schema(serde_json::Map<String, serde_json::Value>),
}

/// The string form of `format`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JsonFormat {
    Json,
}

/// Native message roles.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NativeRole {
    System,
    User,
    Assistant,
    Tool,
}

/// `POST /api/chat`: the body `/chat` takes, except that `messages` may be left out, `null`
/// or empty (Ollama then only loads the model and answers `done_reason: "load"`), and `options`
/// may be `null` (Ollama's Go client sends it so).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Why is the sky blue?"}], "stream": false}))]
pub struct ChatBody {
    #[schema(min_length = 1, pattern = "\\S", example = "llama3.2")]
    model: String,
    /// The conversation so far; without it (or empty) Ollama loads the model and answers no
    /// message.
    messages: Option<Vec<Message>>,
    /// Tool definitions (OpenAI function-tool shape).
    #[schema(value_type = Option<Vec<Object>>)]
    tools: Option<Vec<serde_json::Value>>,
    format: Option<Format>,
    /// Model options: `num_predict`, `temperature`, `top_p`, `top_k`, `seed`, `stop`, ...
    #[schema(value_type = Option<Object>)]
    options: Option<serde_json::Value>,
    /// Ollama streams unless this is false.
    stream: Option<bool>,
    keep_alive: Option<KeepAlive>,
    think: Option<Think>,
    /// Return log probabilities of the output tokens.
    logprobs: Option<bool>,
    /// How many alternatives per token.
    #[schema(minimum = 0, maximum = 20)]
    top_logprobs: Option<u32>,
    /// Cut the conversation's start to fit the context (Ollama's default), or refuse it.
    truncate: Option<bool>,
    /// Shift the context window when the answer fills it (Ollama's default), or stop.
    shift: Option<bool>,
}

/// `POST /api/generate`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"model": "llama3.2", "prompt": "Why is the sky blue?", "stream": false}))]
pub struct GenerateBody {
    #[schema(min_length = 1, pattern = "\\S", example = "llama3.2")]
    model: String,
    prompt: Option<String>,
    suffix: Option<String>,
    system: Option<String>,
    /// Base64 images (multimodal models).
    images: Option<Vec<String>>,
    format: Option<Format>,
    #[schema(value_type = Option<Object>)]
    options: Option<serde_json::Value>,
    /// Ollama streams unless this is false.
    stream: Option<bool>,
    raw: Option<bool>,
    keep_alive: Option<KeepAlive>,
    think: Option<Think>,
}

/// `POST /api/embed`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"model": "all-minilm", "input": ["Why is the sky blue?"]}))]
pub struct EmbedBody {
    #[schema(min_length = 1, pattern = "\\S", example = "all-minilm")]
    model: String,
    /// Without it, Ollama loads the model and answers no embeddings.
    input: Option<EmbedInput>,
    truncate: Option<bool>,
    /// Shorten each vector to this many dimensions. Ollama answers the model's whole vector
    /// for 0, a negative number, or more dimensions than the model has.
    dimensions: Option<i64>,
    keep_alive: Option<KeepAlive>,
    #[schema(value_type = Option<Object>)]
    options: Option<serde_json::Value>,
}

/// A string or strings to embed.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum EmbedInput {
    One(String),
    Many(Vec<String>),
}

/// `POST /api/embeddings` (legacy).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"model": "all-minilm", "prompt": "Why is the sky blue?"}))]
pub struct LegacyEmbeddingsBody {
    #[schema(min_length = 1, pattern = "\\S", example = "all-minilm")]
    model: String,
    /// Without it (or empty), Ollama loads the model and answers an empty embedding.
    prompt: Option<String>,
    keep_alive: Option<KeepAlive>,
    #[schema(value_type = Option<Object>)]
    options: Option<serde_json::Value>,
}

/// A model name must hold something besides whitespace (Ollama answers "model is required" or
/// "not found" for one of spaces).
const NAMED: &str = "\\S";

/// `POST /api/show`: the model is named by `model`, or by the deprecated `name` older clients
/// send (Ollama reads `name` when `model` is empty). The schema says "one of the two", which
/// a derived schema cannot, so it is written here.
pub struct ShowBody;

impl PartialSchema for ShowBody {
    fn schema() -> RefOr<Schema> {
        let nullable = |kind| SchemaType::from_iter([kind, Type::Null]);
        let fields = ObjectBuilder::new()
            .property(
                "model",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .pattern(Some(NAMED))
                    .examples([json!("llama3.2")]),
            )
            .property(
                "name",
                ObjectBuilder::new()
                    .schema_type(nullable(Type::String))
                    .deprecated(Some(Deprecated::True))
                    .description(Some("The deprecated spelling of `model`.")),
            )
            .property(
                "verbose",
                ObjectBuilder::new()
                    .schema_type(nullable(Type::Boolean))
                    .description(Some("Fill the tokenizer arrays of `model_info`.")),
            )
            .property(
                "options",
                ObjectBuilder::new().schema_type(nullable(Type::Object)),
            );
        // Ollama's Go client sends `"name": ""` beside `model`; only a `name` standing alone
        // must name something.
        let by_name = ObjectBuilder::new().required("name").property(
            "name",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .pattern(Some(NAMED)),
        );
        let named = AnyOfBuilder::new()
            .item(ObjectBuilder::new().required("model"))
            .item(by_name);
        AllOfBuilder::new()
            .item(fields)
            .item(named)
            .description(Some(
                "`POST /api/show`: `model` (or the deprecated `name`) names the model.",
            ))
            .examples([json!({"model": "llama3.2"})])
            .into()
    }
}

impl ToSchema for ShowBody {}
