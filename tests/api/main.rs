#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failing test should fail loudly"
)]
//! Integration tests: the real gateway on a real port, in front of the fake Ollama, over HTTP.
//! One test binary (modules below) keeps link time down.

mod acme;
mod addresses;
mod admin;
mod attacks;
mod backends;
mod basic_auth;
mod common;
mod console;
mod fidelity;
mod gate;
mod messages;
mod native;
mod openapi;
mod operations;
mod postgres;
mod replicas;
mod responses;
mod simple;
mod tls;
mod usage;
mod v1_chat;
mod v1_other;
