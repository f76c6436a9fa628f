//! Shapes that exist only to describe Ollama's native API in the OpenAPI document.
//!
//! The native passthrough forwards bodies as sent, so nothing here is used to parse; these
//! types tell Swagger UI, client generators and schemathesis what Ollama accepts, with
//! examples that work in *Try it out*.

#![allow(
    dead_code,
    reason = "document-only types: read by utoipa, never constructed"
)]

use serde::Serialize;
use utoipa::ToSchema;

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

/// `POST /api/generate`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"model": "llama3.2", "prompt": "Why is the sky blue?", "stream": false}))]
pub struct GenerateBody {
    #[schema(min_length = 1, example = "llama3.2")]
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
    #[schema(min_length = 1, example = "all-minilm")]
    model: String,
    /// Without it, Ollama loads the model and answers no embeddings.
    input: Option<EmbedInput>,
    truncate: Option<bool>,
    #[schema(minimum = 1)]
    dimensions: Option<u32>,
    keep_alive: Option<KeepAlive>,
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
    #[schema(min_length = 1, example = "all-minilm")]
    model: String,
    /// Without it (or empty), Ollama loads the model and answers an empty embedding.
    prompt: Option<String>,
    keep_alive: Option<KeepAlive>,
}

/// `POST /api/show`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"model": "llama3.2"}))]
pub struct ShowBody {
    #[schema(min_length = 1, example = "llama3.2")]
    model: String,
    verbose: Option<bool>,
}
