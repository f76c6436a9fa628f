//! OpenAI's Responses API (`POST /v1/responses`): wire types and the translation to and from
//! Ollama's `/api/chat`.
//!
//! - [`types`]: request and response types.
//! - [`schemas`]: document-only shapes (the input items and parts the conversion takes).
//! - [`request`]: validate a Responses request and build the native one, plus the [`Echo`] of
//!   request fields every response object repeats.
//! - [`response`]: a native answer → a `response` object.
//! - [`stream`]: native NDJSON lines → the typed Responses events with `sequence_number`.
//!
//! - [`stored`]: responses kept for `GET`/`DELETE /v1/responses/{id}` and
//!   `previous_response_id`, written off the request path.
//!
//! The store sits around the translation, not in it: the route looks up a
//! `previous_response_id` and hands its conversation to [`request::chat_request_from`], and
//! keeps the response [`response::response`] (or the stream's final event) returns.
//!
//! [`Echo`]: request::Echo

pub mod request;
pub mod response;
pub mod schemas;
pub mod stored;
pub mod stream;
pub mod types;
