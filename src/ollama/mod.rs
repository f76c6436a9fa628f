//! Ollama's native API, as the gateway speaks it.

pub mod paths;
pub mod schemas;
pub mod types;
pub mod validate;
