//! Ollama's native API, as the gateway speaks it.

pub mod schemas;
pub mod types;
