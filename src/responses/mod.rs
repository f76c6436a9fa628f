//! OpenAI's Responses API (`POST /v1/responses`): wire types and the translation to and from
//! Ollama's `/api/chat`.
//!
//! - [`types`]: request and response types.
//! - [`request`]: validate a Responses request and build the native one, plus the [`Echo`] of
//!   request fields every response object repeats.
//! - [`response`]: a native answer → a `response` object.
//! - [`stream`]: native NDJSON lines → the typed Responses events with `sequence_number`.
//!
//! Nothing is stored: `previous_response_id` is refused with a 400. A store would plug in
//! between the route and [`request::chat_request`] (prepend the stored conversation) and after
//! [`response::response`] or the stream's final response (keep it), without touching the
//! translation.
//!
//! [`Echo`]: request::Echo

pub mod request;
pub mod response;
pub mod stream;
pub mod types;
