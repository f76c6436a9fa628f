//! The admin console: web pages served by the gateway itself at `/admin/`, for the person who
//! hands out keys and watches who is using the GPU.
//!
//! Server-rendered HTML ([`html`]: escaped by hand at every boundary), charts drawn on the
//! server as SVG ([`charts`]), and one small script for copy buttons, confirmations and the
//! Live page's refresh; the stylesheet, script and icon are compiled into the binary
//! ([`assets`]), so the console works on a box without internet. Light and dark follow the
//! system setting.
//!
//! - [`session`]: login with an admin key, the session cookie, CSRF tokens, logout; and the
//!   gate's check for every console path ([`session::admit`]: deny by default).
//! - [`pages`]: Keys, Users, Usage, Live and Settings.
//!
//! The console uses the same functions as the admin API ([`crate::admin`]) and the same store;
//! it adds no rules of its own about keys and users.

pub mod assets;
pub mod charts;
pub mod html;
pub mod pages;
pub mod session;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form};

use crate::state::AppState;
use pages::{keys, live, settings, usage, users};
use session::Session;

/// Whether `path` belongs to the console (everything under `/admin` except the admin API).
pub fn is_console_path(path: &str) -> bool {
    path == "/admin" || (path.starts_with("/admin/") && !path.starts_with("/admin/api/"))
}

/// The console's routes (their paths are all under `/admin`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(home))
        .route("/admin/", get(home))
        .route(
            "/admin/login",
            get(session::login_form).post(session::login),
        )
        .route("/admin/logout", post(session::logout))
        .route("/admin/keys", get(keys::list).post(keys::create))
        .route("/admin/keys/{id}", get(keys::edit).post(keys::update))
        .route(
            "/admin/keys/{id}/{action}",
            get(key_confirm).post(key_action),
        )
        .route("/admin/users", get(users::list).post(users::create))
        .route(
            "/admin/users/{name}/{action}",
            get(user_confirm).post(user_action),
        )
        .route("/admin/usage", get(usage::show))
        .route("/admin/usage.csv", get(usage::download))
        .route("/admin/live", get(live::show))
        .route("/admin/live/panels", get(live::panels))
        .route("/admin/settings", get(settings::show))
        .route("/admin/assets/{file}", get(assets::serve))
}

async fn home() -> Response {
    pages::see_other("/admin/keys")
}

async fn key_confirm(
    state: State<AppState>,
    session: Extension<Session>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    if action == "revoke" {
        keys::confirm_revoke(state, session, Path(id)).await
    } else {
        pages::failure(
            &session,
            "/admin/keys",
            &crate::error::GatewayError::NotFound(format!("no page '{action}'")),
        )
    }
}

async fn key_action(
    state: State<AppState>,
    session: Extension<Session>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    if action == "revoke" {
        keys::revoke(state, session, Path(id)).await
    } else {
        keys::set_enabled(state, session, Path((id, action))).await
    }
}

async fn user_confirm(
    state: State<AppState>,
    session: Extension<Session>,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    if action == "delete" {
        users::confirm_delete(state, session, Path(name)).await
    } else {
        pages::failure(
            &session,
            "/admin/users",
            &crate::error::GatewayError::NotFound(format!("no page '{action}'")),
        )
    }
}

async fn user_action(
    state: State<AppState>,
    session: Extension<Session>,
    Path((name, action)): Path<(String, String)>,
    form: Form<users::RoleForm>,
) -> Response {
    match action.as_str() {
        "delete" => users::delete(state, session, Path(name)).await,
        "role" => users::set_role(state, session, Path(name), form).await,
        _ => pages::failure(
            &session,
            "/admin/users",
            &crate::error::GatewayError::NotFound(format!("no action '{action}'")),
        ),
    }
}
