//! Anthropic's Messages API: wire types and the translation to and from Ollama's `/api/chat`.
//!
//! - [`types`]: request, response and stream event types.
//! - [`schemas`]: document-only shapes (blocks by role, base64 image sources).
//! - [`request`]: validate a Messages request and build the native one.
//! - [`response`]: a native answer → a `message`.
//! - [`stream`]: native NDJSON lines → the named Messages stream events.
//! - [`stop`]: which stop sequence ended an answer, from what Ollama shows.
//!
//! Validation helpers, image checks and tool serialisation are shared with the OpenAI
//! translator (`crate::openai::request`).

pub mod request;
pub mod response;
pub mod schemas;
pub mod stop;
pub mod stream;
pub mod types;
