//! Control endpoints for test suites that cannot call the library: `GET /_fake/requests`,
//! `GET /_fake/stats`, `POST /_fake/reset`. They are not recorded themselves.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::reply;
use crate::state::FakeState;

/// `GET /_fake/requests`: every recorded request, oldest first.
pub(crate) async fn requests(State(state): State<FakeState>) -> Response {
    reply::ok(&json!(state.requests()))
}

/// `GET /_fake/stats`: `{"requests":N,"cancelled_streams":N,"completed_streams":N}`.
pub(crate) async fn stats(State(state): State<FakeState>) -> Response {
    reply::ok(&json!(state.stats()))
}

/// `POST /_fake/reset`: forget requests, counters and uploaded blobs.
pub(crate) async fn reset(State(state): State<FakeState>) -> Response {
    state.reset();
    reply::empty(StatusCode::NO_CONTENT)
}
