//! OpenAI's API: wire types and the translation to and from Ollama's native API.
//!
//! - [`types`]: request and response types.
//! - [`schemas`]: document-only shapes (messages by role, data URLs, arguments as JSON text).
//! - [`request`]: validate an OpenAI request and build the native one.
//! - [`response`]: native answers → OpenAI objects.
//! - [`stream`]: native NDJSON lines → OpenAI stream chunks.

pub mod request;
pub mod response;
pub mod schemas;
pub mod stream;
pub mod types;
