//! The Users page: list, create, change a role, delete (after a page that lists the keys the
//! deletion revokes).

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use serde::Deserialize;

use super::{apply, audit, failure, framed, see_other};
use crate::console::html::{Errors, Field, csrf_field, esc};
use crate::console::session::Session;
use crate::error::GatewayError;
use crate::state::AppState;
use crate::store::{KeyRecord, Role, User, from_millis};

const PAGE: &str = "/admin/users";

/// The create form.
#[derive(Debug, Default, Deserialize)]
pub struct UserForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

/// The role form.
#[derive(Debug, Default, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

/// Notices after a redirect.
#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    done: Option<String>,
    user: Option<String>,
}

fn role_of(text: &str) -> Option<Role> {
    match text {
        "admin" => Some(Role::Admin),
        "user" | "" => Some(Role::User),
        _ => None,
    }
}

fn role_select(id: &str, selected: Role) -> String {
    let mut out = format!("<select id=\"{}\" name=\"role\">", esc(id));
    for role in [Role::User, Role::Admin] {
        let _ = write!(
            out,
            "<option value=\"{0}\"{1}>{0}</option>",
            role.as_str(),
            if role == selected { " selected" } else { "" }
        );
    }
    out.push_str("</select>");
    out
}

fn live_keys<'a>(keys: &'a [KeyRecord], user: &str) -> Vec<&'a KeyRecord> {
    keys.iter()
        .filter(|k| k.revoked.is_none() && k.user.as_deref() == Some(user))
        .collect()
}

fn page_body(
    session: &Session,
    users: &[User],
    keys: &[KeyRecord],
    form: &UserForm,
    errors: &Errors,
    top: &str,
) -> String {
    let mut body = String::from(top);
    body.push_str("<p class=\"lead\">Users own keys. Every key of a user whose role is <strong>admin</strong> is an admin key: it may use the admin API and this console.</p>");
    let _ = write!(
        body,
        "<details class=\"card\" id=\"create\"{}><summary><h2>Add a user</h2></summary><form method=\"post\" action=\"/admin/users\" class=\"stack\" novalidate>{}<div class=\"grid\">{}<div class=\"field\"><label for=\"create-role\">Role</label>{}</div></div><div class=\"row\"><button type=\"submit\" class=\"primary\">Add user</button></div></form></details>",
        if errors.is_empty() { "" } else { " open" },
        csrf_field(&session.csrf),
        Field::text("name", "Name", &form.name)
            .hint("1 to 64 letters, digits, '.', '_', '-' or '@'")
            .placeholder("alice")
            .required()
            .render("create", errors),
        role_select("create-role", role_of(&form.role).unwrap_or(Role::User)),
    );
    body.push_str("<div class=\"table-wrap\"><table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Role</th><th scope=\"col\">Created</th><th scope=\"col\" class=\"num\">Working keys</th><th scope=\"col\"><span class=\"sr-only\">Actions</span></th></tr></thead><tbody>");
    if users.is_empty() {
        body.push_str("<tr><td colspan=\"5\" class=\"muted\">No users yet.</td></tr>");
    }
    for user in users {
        let name = esc(&user.name);
        let count = live_keys(keys, &user.name).len();
        let _ = write!(
            body,
            "<tr data-user=\"{name}\"><td><strong>{name}</strong></td><td><form method=\"post\" action=\"/admin/users/{name}/role\" class=\"inline\">{}<label class=\"sr-only\" for=\"role-{name}\">Role of {name}</label>{}<button type=\"submit\" class=\"small\">Save</button></form></td><td>{}</td><td class=\"num\">{count}</td><td class=\"actions\"><a class=\"button small danger\" href=\"/admin/users/{name}/delete\">Delete</a></td></tr>",
            csrf_field(&session.csrf),
            role_select(&format!("role-{}", user.name), user.role),
            super::when(Some(from_millis(user.created))),
        );
    }
    body.push_str("</tbody></table></div>");
    body
}

async fn load(state: &AppState) -> Result<(Vec<User>, Vec<KeyRecord>), GatewayError> {
    Ok((state.store.users().await?, state.store.keys().await?))
}

/// `GET /admin/users`.
pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(notice): Query<Notice>,
) -> Response {
    let (users, keys) = match load(&state).await {
        Ok(loaded) => loaded,
        Err(err) => return failure(&session, PAGE, &err),
    };
    let top = match (notice.done.as_deref(), notice.user.as_deref()) {
        (Some(done), Some(user)) => format!(
            "<p class=\"notice\" role=\"status\">User <strong>{}</strong> {}.</p>",
            esc(user),
            esc(done)
        ),
        _ => String::new(),
    };
    let body = page_body(
        &session,
        &users,
        &keys,
        &UserForm::default(),
        &Errors::default(),
        &top,
    );
    framed(StatusCode::OK, "Users", &session, PAGE, &body)
}

fn encoded(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `POST /admin/users`.
pub async fn create(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(form): Form<UserForm>,
) -> Response {
    let name = form.name.trim();
    let mut errors = Errors::default();
    let role = role_of(&form.role);
    if role.is_none() {
        errors.add("role", "admin or user");
    }
    if let Err(GatewayError::InvalidRequest { message, .. }) =
        crate::admin::check_name("name", name)
    {
        errors.add("name", message);
    }
    if errors.is_empty() {
        match state
            .store
            .create_user(name, role.unwrap_or(Role::User), state.usage.now_millis())
            .await
        {
            Ok(user) => {
                apply(&state).await;
                audit(&session, "user.create", &user.name);
                return see_other(&format!("/admin/users?done=added&user={}", encoded(name)));
            }
            Err(crate::store::StoreError::Conflict(message)) => errors.add("name", message),
            Err(err) => return failure(&session, PAGE, &GatewayError::from(err)),
        }
    }
    let (users, keys) = load(&state).await.unwrap_or_default();
    let body = page_body(&session, &users, &keys, &form, &errors, "");
    framed(StatusCode::BAD_REQUEST, "Users", &session, PAGE, &body)
}

/// `POST /admin/users/{name}/role`.
pub async fn set_role(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    Form(form): Form<RoleForm>,
) -> Response {
    let Some(role) = role_of(&form.role) else {
        return failure(
            &session,
            PAGE,
            &GatewayError::invalid("role", "role: admin or user"),
        );
    };
    match state.store.update_user(&name, role).await {
        Ok(_) => {
            apply(&state).await;
            audit(&session, "user.update", &name);
            see_other(&format!(
                "/admin/users?done={}&user={}",
                encoded(&format!("is now {}", role.as_str())),
                encoded(&name)
            ))
        }
        Err(err) => failure(&session, PAGE, &GatewayError::from(err)),
    }
}

/// `GET /admin/users/{name}/delete`: the keys the deletion revokes, and the button.
pub async fn confirm_delete(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
) -> Response {
    let (users, keys) = match load(&state).await {
        Ok(loaded) => loaded,
        Err(err) => return failure(&session, PAGE, &err),
    };
    if !users.iter().any(|u| u.name == name) {
        return failure(
            &session,
            PAGE,
            &GatewayError::NotFound(format!("no user named '{name}'")),
        );
    }
    let revoked = live_keys(&keys, &name);
    let mut list = String::new();
    if revoked.is_empty() {
        list.push_str("<p>This user has no working keys: nothing else is revoked.</p>");
    } else {
        let _ = write!(
            list,
            "<p>Deleting <strong>{}</strong> also <strong>revokes {} key{}</strong>, for good:</p><ul class=\"revokes\">",
            esc(&name),
            revoked.len(),
            if revoked.len() == 1 { "" } else { "s" }
        );
        for key in &revoked {
            let _ = write!(
                list,
                "<li><strong>{}</strong> <code>{}…</code></li>",
                esc(&key.name),
                esc(&key.prefix)
            );
        }
        list.push_str("</ul>");
    }
    let body = format!(
        "<section class=\"card narrow danger-zone\">{list}<form method=\"post\" action=\"/admin/users/{0}/delete\" class=\"row\">{1}<button type=\"submit\" class=\"danger\" data-confirm=\"Delete user {0}?\">Delete user</button><a class=\"button\" href=\"/admin/users\">Cancel</a></form></section>",
        esc(&name),
        csrf_field(&session.csrf)
    );
    framed(
        StatusCode::OK,
        &format!("Delete user {name}?"),
        &session,
        PAGE,
        &body,
    )
}

/// `POST /admin/users/{name}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
) -> Response {
    match state
        .store
        .delete_user(&name, state.usage.now_millis())
        .await
    {
        Ok(revoked) => {
            apply(&state).await;
            audit(&session, "user.delete", &name);
            for id in &revoked {
                audit(&session, "key.revoke", id);
            }
            let done = format!(
                "deleted ({} key{} revoked)",
                revoked.len(),
                if revoked.len() == 1 { "" } else { "s" }
            );
            see_other(&format!(
                "/admin/users?done={}&user={}",
                encoded(&done),
                encoded(&name)
            ))
        }
        Err(err) => failure(&session, PAGE, &GatewayError::from(err)),
    }
}
