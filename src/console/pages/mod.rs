//! The console's pages, one module each; what they share is here.
//!
//! - [`keys`]: list, create (the key shown once), edit, enable/disable, revoke.
//! - [`users`]: list, create, change role, delete (saying what it revokes).
//! - [`usage`]: charts and tables of a chosen range, and its CSV.
//! - [`live`]: requests in flight, open streams, recent refusals (refreshed by the page).
//! - [`settings`]: the effective configuration, read-only.

pub mod keys;
pub mod live;
pub mod settings;
pub mod usage;
pub mod users;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::html::{Errors, Frame, Html, page};
use super::session::Session;
use crate::error::GatewayError;
use crate::state::AppState;

/// A page in the frame of `session`.
pub fn framed(
    status: StatusCode,
    title: &str,
    session: &Session,
    current: &str,
    body: &str,
) -> Response {
    let frame = Frame {
        key_name: &session.key_name,
        csrf: &session.csrf,
        current,
    };
    Html(status, page(title, Some(frame), body)).into_response()
}

/// A failure of the store or of validation, shown as a page (for errors no form field owns).
pub fn failure(session: &Session, current: &str, err: &GatewayError) -> Response {
    let body = format!(
        "<section class=\"card narrow\"><p class=\"error-text\" role=\"alert\">{}</p><p><a class=\"button\" href=\"{current}\">Back</a></p></section>",
        super::html::esc(&err.to_string())
    );
    framed(
        err.status(),
        "Something went wrong",
        session,
        current,
        &body,
    )
}

/// A validation error of the admin functions, as the form field it names (`models[2]` ->
/// `models`), or under `field_for_conflict` for a taken name.
pub fn field_errors(err: &GatewayError, field_for_conflict: &str) -> Option<Errors> {
    let mut errors = Errors::default();
    match err {
        GatewayError::InvalidRequest {
            message,
            param: Some(param),
        } => {
            let field = param.split('[').next().unwrap_or(param);
            errors.add(field, message.clone());
        }
        GatewayError::Conflict(message) => errors.add(field_for_conflict, message.clone()),
        _ => return None,
    }
    Some(errors)
}

/// Bring a change into the key map now (the poll would within a second).
pub async fn apply(state: &AppState) {
    if let Err(err) = crate::gate::reload::reload(state).await {
        tracing::warn!(error = %err, "console: change stored, but not reloaded yet");
    }
}

/// Write the audit line of a change made in the console.
pub fn audit(session: &Session, action: &str, target: &str) {
    crate::admin::audit_change(
        &session.key_name,
        session.caller.id.as_deref(),
        action,
        target,
    );
}

/// A 303 to `location`.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = axum::http::HeaderValue::from_str(location) {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, value);
    }
    response
}

/// A time as the tables show it (UTC, to the minute).
pub fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "—".to_owned(),
        |at| at.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}
