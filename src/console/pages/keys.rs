//! The Keys page: every key (configured ones read-only), a form to create one (its plaintext
//! shown once, with a copy button and ready `curl` and OpenAI SDK snippets), enable/disable,
//! edit (models, limits, quotas, expiry) and revoke after a confirmation page.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::{Extension, Form};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;

use super::{apply, audit, failure, field_errors, framed, see_other, when};
use crate::admin::{self, CreateKey, KeyView, UpdateKey};
use crate::console::html::{Errors, Field, csrf_field, esc, thousands};
use crate::console::session::{Https, Session};
use crate::error::GatewayError;
use crate::state::AppState;

const PAGE: &str = "/admin/keys";

/// The fields of the create and edit forms, as the browser sends them (all text).
#[derive(Debug, Default, Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    models: String,
    #[serde(default)]
    rate_limit: String,
    #[serde(default)]
    burst: String,
    #[serde(default)]
    max_concurrent: String,
    #[serde(default)]
    daily_token_quota: String,
    #[serde(default)]
    monthly_token_quota: String,
    #[serde(default)]
    expires: String,
    hard_quota: Option<String>,
    admin: Option<String>,
}

/// Notices after a redirect.
#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    done: Option<String>,
    key: Option<String>,
}

fn number<T: std::str::FromStr>(errors: &mut Errors, field: &str, text: &str) -> Option<T> {
    let text = text.trim().replace([',', '_'], "");
    if text.is_empty() {
        return None;
    }
    match text.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.add(field, "a whole number, or empty for the default");
            None
        }
    }
}

/// `2026-12-31`, `2026-12-31T23:59` (what `datetime-local` sends, read as UTC) or RFC 3339.
fn expiry(errors: &mut Errors, text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Some(at.and_utc());
        }
    }
    if let Some(at) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Some(at.and_utc());
    }
    errors.add("expires", "a date and time (UTC), e.g. 2027-01-31T00:00");
    None
}

fn models(text: &str) -> Vec<String> {
    text.split([',', '\n', ' '])
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect()
}

impl KeyForm {
    fn to_create(&self) -> Result<CreateKey, Errors> {
        let mut errors = Errors::default();
        let body = CreateKey {
            name: self.name.trim().to_owned(),
            user: Some(self.user.trim().to_owned()).filter(|u| !u.is_empty()),
            models: Some(models(&self.models)),
            rate_limit: number(&mut errors, "rate_limit", &self.rate_limit),
            burst: number(&mut errors, "burst", &self.burst),
            max_concurrent: number(&mut errors, "max_concurrent", &self.max_concurrent),
            expires: expiry(&mut errors, &self.expires),
            daily_token_quota: number(&mut errors, "daily_token_quota", &self.daily_token_quota),
            monthly_token_quota: number(
                &mut errors,
                "monthly_token_quota",
                &self.monthly_token_quota,
            ),
            hard_quota: Some(self.hard_quota.is_some()),
            admin: Some(self.admin.is_some()),
            enabled: Some(true),
        };
        if body.name.is_empty() {
            errors.add(
                "name",
                "a name is needed (letters, digits, '.', '_', '-', '@')",
            );
        }
        if errors.is_empty() {
            Ok(body)
        } else {
            Err(errors)
        }
    }

    /// Every field of the edit form is sent: empty clears an optional value.
    fn to_update(&self) -> Result<UpdateKey, Errors> {
        let mut errors = Errors::default();
        let body = UpdateKey {
            name: Some(self.name.trim().to_owned()),
            enabled: None,
            expires: Some(expiry(&mut errors, &self.expires)),
            models: Some(models(&self.models)),
            rate_limit: Some(number(&mut errors, "rate_limit", &self.rate_limit)),
            burst: Some(number(&mut errors, "burst", &self.burst)),
            max_concurrent: Some(number(&mut errors, "max_concurrent", &self.max_concurrent)),
            admin: Some(self.admin.is_some()),
            daily_token_quota: Some(number(
                &mut errors,
                "daily_token_quota",
                &self.daily_token_quota,
            )),
            monthly_token_quota: Some(number(
                &mut errors,
                "monthly_token_quota",
                &self.monthly_token_quota,
            )),
            hard_quota: Some(self.hard_quota.is_some()),
        };
        if errors.is_empty() {
            Ok(body)
        } else {
            Err(errors)
        }
    }
}

/// Every key as the admin API lists it.
async fn all_keys(state: &AppState) -> Result<Vec<KeyView>, GatewayError> {
    let stored = state.store.keys().await?;
    let keys = state.gate.keys.load();
    let mut out: Vec<KeyView> = keys
        .config_keys()
        .iter()
        .map(|k| admin::config_view(k, state.usage.quotas.used(&admin::config_counter(&k.name))))
        .collect();
    out.extend(
        stored
            .iter()
            .map(|r| admin::stored_view(&state.config, r, state.usage.quotas.used(&r.id))),
    );
    Ok(out)
}

fn status_badge(key: &KeyView) -> &'static str {
    if key.revoked {
        "<span class=\"badge bad\">revoked</span>"
    } else if key.expires.is_some_and(|at| at <= Utc::now()) {
        "<span class=\"badge warn\">expired</span>"
    } else if key.enabled {
        "<span class=\"badge good\">enabled</span>"
    } else {
        "<span class=\"badge muted\">disabled</span>"
    }
}

fn quota_cell(key: &KeyView) -> String {
    let s = &key.settings;
    let mut out = String::new();
    match s.daily_token_quota {
        Some(limit) => {
            let share = if limit == 0 {
                100.0
            } else {
                (key.tokens_today as f64 / limit as f64 * 100.0).min(100.0)
            };
            let _ = write!(
                out,
                "<div class=\"quota\"><meter min=\"0\" max=\"100\" low=\"70\" high=\"90\" optimum=\"0\" value=\"{share:.0}\" title=\"{share:.0} % of the daily quota\"></meter><span>{} / {} today</span></div>",
                thousands(key.tokens_today),
                thousands(limit)
            );
        }
        None => {
            let _ = write!(out, "<span>{} today</span>", thousands(key.tokens_today));
        }
    }
    if let Some(limit) = s.monthly_token_quota {
        let _ = write!(
            out,
            "<small class=\"muted\">{} / {} this month</small>",
            thousands(key.tokens_this_month),
            thousands(limit)
        );
    }
    if s.hard_quota {
        out.push_str("<small class=\"muted\">hard: streams end at the budget</small>");
    }
    out
}

fn key_row(key: &KeyView, csrf: &str) -> String {
    let s = &key.settings;
    let id = esc(&key.id);
    let models = if s.models.is_empty() {
        "<span class=\"muted\">all</span>".to_owned()
    } else {
        s.models
            .iter()
            .map(|m| format!("<code>{}</code>", esc(m)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut actions = String::new();
    if key.source == "config" {
        actions.push_str("<span class=\"muted\" title=\"Change GATEWAY_API_KEYS, OLLAMA_API_KEY or GATEWAY_CONFIG\">read-only</span>");
    } else if !key.revoked {
        let (action, label) = if key.enabled {
            ("disable", "Disable")
        } else {
            ("enable", "Enable")
        };
        let _ = write!(
            actions,
            "<a class=\"button small\" href=\"/admin/keys/{id}\">Edit</a>\
             <form method=\"post\" action=\"/admin/keys/{id}/{action}\">{}<button type=\"submit\" class=\"small\">{label}</button></form>\
             <a class=\"button small danger\" href=\"/admin/keys/{id}/revoke\">Revoke</a>",
            csrf_field(csrf)
        );
    }
    format!(
        "<tr data-key=\"{}\"><td><strong>{}</strong>{}</td><td>{}</td><td>{}</td><td><span class=\"badge {}\">{}</span></td><td>{}</td><td>{}</td><td class=\"num\">{} /min<br><small class=\"muted\">burst {} · {} at once</small></td><td>{}</td><td>{}</td><td>{}</td><td class=\"actions\">{}</td></tr>",
        esc(&key.name),
        esc(&key.name),
        if s.admin {
            " <span class=\"badge accent\">admin</span>"
        } else {
            ""
        },
        key.user
            .as_deref()
            .map_or_else(|| "<span class=\"muted\">—</span>".to_owned(), esc),
        key.prefix.as_deref().map_or_else(
            || "<span class=\"muted\">—</span>".to_owned(),
            |p| format!("<code>{}…</code>", esc(p))
        ),
        if key.source == "config" {
            "muted"
        } else {
            "plain"
        },
        key.source,
        status_badge(key),
        models,
        s.rate_limit,
        s.burst,
        s.max_concurrent,
        quota_cell(key),
        when(key.last_used),
        when(key.expires),
        actions
    )
}

fn key_table(keys: &[KeyView], csrf: &str) -> String {
    let mut out = String::from(
        "<div class=\"table-wrap\"><table class=\"keys\"><caption class=\"sr-only\">Keys</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">User</th><th scope=\"col\">Prefix</th><th scope=\"col\">Source</th><th scope=\"col\">Status</th><th scope=\"col\">Models</th><th scope=\"col\">Limits</th><th scope=\"col\">Tokens (quota)</th><th scope=\"col\">Last used</th><th scope=\"col\">Expires</th><th scope=\"col\"><span class=\"sr-only\">Actions</span></th></tr></thead><tbody>",
    );
    if keys.is_empty() {
        out.push_str("<tr><td colspan=\"11\" class=\"muted\">No keys yet.</td></tr>");
    }
    // Working keys first, revoked ones at the end.
    let mut sorted: Vec<&KeyView> = keys.iter().collect();
    sorted.sort_by_key(|k| k.revoked);
    for key in sorted {
        out.push_str(&key_row(key, csrf));
    }
    out.push_str("</tbody></table></div>");
    out
}

fn key_fields(form: &KeyForm, errors: &Errors, prefix: &str, with_user: bool) -> String {
    let mut out = String::from("<div class=\"grid\">");
    out.push_str(
        &Field::text("name", "Name", &form.name)
            .hint("Shown in logs and metrics; unique among working keys")
            .placeholder("alice-laptop")
            .required()
            .render(prefix, errors),
    );
    if with_user {
        out.push_str(
            &Field::text("user", "User", &form.user)
                .hint("The owner; made with role user if new")
                .placeholder("alice")
                .render(prefix, errors),
        );
    }
    out.push_str(
        &Field::text("models", "Models", &form.models)
            .hint("Comma-separated patterns with *; empty: every allowed model")
            .placeholder("llama3.2, qwen3*")
            .render(prefix, errors),
    );
    for (name, label, value, hint) in [
        (
            "rate_limit",
            "Requests per minute",
            &form.rate_limit,
            "Empty: GATEWAY_RATE_LIMIT",
        ),
        ("burst", "Burst", &form.burst, "Empty: GATEWAY_RATE_BURST"),
        (
            "max_concurrent",
            "At once",
            &form.max_concurrent,
            "Empty: GATEWAY_MAX_CONCURRENT",
        ),
        (
            "daily_token_quota",
            "Tokens per day",
            &form.daily_token_quota,
            "Empty: no daily quota",
        ),
        (
            "monthly_token_quota",
            "Tokens per month",
            &form.monthly_token_quota,
            "Empty: no monthly quota",
        ),
    ] {
        out.push_str(
            &Field::text(name, label, value)
                .kind("text")
                .hint(hint)
                .render(prefix, errors)
                .replace("type=\"text\"", "type=\"text\" inputmode=\"numeric\""),
        );
    }
    out.push_str(
        &Field::text("expires", "Expires (UTC)", &form.expires)
            .kind("datetime-local")
            .hint("Empty: never")
            .render(prefix, errors),
    );
    out.push_str("</div><div class=\"checks\">");
    let _ = write!(
        out,
        "<label class=\"check\"><input type=\"checkbox\" name=\"hard_quota\" value=\"on\"{}> End streams when the quota is spent</label>\
         <label class=\"check\"><input type=\"checkbox\" name=\"admin\" value=\"on\"{}> Admin key (the admin API and this console)</label>",
        if form.hard_quota.is_some() {
            " checked"
        } else {
            ""
        },
        if form.admin.is_some() { " checked" } else { "" },
    );
    out.push_str("</div>");
    out
}

fn create_form(form: &KeyForm, errors: &Errors, csrf: &str, open: bool) -> String {
    format!(
        "<details class=\"card\" id=\"create\"{}><summary><h2>Create a key</h2></summary><form method=\"post\" action=\"/admin/keys\" class=\"stack\" novalidate>{}{}<div class=\"row\"><button type=\"submit\" class=\"primary\">Create key</button></div></form></details>",
        if open { " open" } else { "" },
        csrf_field(csrf),
        key_fields(form, errors, "create", true)
    )
}

/// The page: notices, the create form (open with its errors), the table.
fn list_page(
    session: &Session,
    keys: &[KeyView],
    top: &str,
    form: &KeyForm,
    errors: &Errors,
    status: StatusCode,
) -> Response {
    let working = keys.iter().filter(|k| k.enabled && !k.revoked).count();
    let mut body = String::new();
    body.push_str(top);
    let _ = write!(
        body,
        "<p class=\"lead\">{} keys, {} working. Stored keys are managed here; keys from the configuration are listed read-only.</p>",
        keys.len(),
        working
    );
    body.push_str(&create_form(
        form,
        errors,
        &session.csrf,
        !errors.is_empty(),
    ));
    body.push_str(&key_table(keys, &session.csrf));
    framed(status, "Keys", session, PAGE, &body)
}

/// `GET /admin/keys`.
pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(notice): Query<Notice>,
) -> Response {
    let keys = match all_keys(&state).await {
        Ok(keys) => keys,
        Err(err) => return failure(&session, PAGE, &err),
    };
    let top = match (notice.done.as_deref(), notice.key.as_deref()) {
        (Some(done), Some(key)) => format!(
            "<p class=\"notice\" role=\"status\">Key <strong>{}</strong> {}.</p>",
            esc(key),
            esc(done)
        ),
        _ => String::new(),
    };
    list_page(
        &session,
        &keys,
        &top,
        &KeyForm::default(),
        &Errors::default(),
        StatusCode::OK,
    )
}

/// The base URL the browser used, for the snippets.
fn base_url(headers: &HeaderMap, https: bool) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// The created key, shown this once, with a copy button and snippets that use it.
fn created_panel(key: &str, view: &KeyView, base: &str) -> String {
    let model = view
        .settings
        .models
        .iter()
        .find(|m| !m.contains('*'))
        .map_or("llama3.2", String::as_str);
    let curl = format!(
        "curl {base}/v1/chat/completions \\\n  -H \"Authorization: Bearer {key}\" \\\n  -H \"Content-Type: application/json\" \\\n  -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}'"
    );
    let python = format!(
        "from openai import OpenAI\n\nclient = OpenAI(base_url=\"{base}/v1\", api_key=\"{key}\")\nanswer = client.chat.completions.create(\n    model=\"{model}\",\n    messages=[{{\"role\": \"user\", \"content\": \"Hello\"}}],\n)\nprint(answer.choices[0].message.content)"
    );
    format!(
        "<section class=\"card created\" aria-labelledby=\"created-title\"><h2 id=\"created-title\">Key <em>{name}</em> created</h2>\
         <p><strong>Copy it now: it is shown only this once.</strong> The gateway keeps only its digest.</p>\
         <div class=\"secret\"><code id=\"new-key\">{key}</code><button type=\"button\" class=\"copy primary\" data-copy=\"#new-key\">Copy key</button></div>\
         <div class=\"snippets\"><div><div class=\"snippet-head\"><h3>curl</h3><button type=\"button\" class=\"copy small\" data-copy=\"#snippet-curl\">Copy</button></div><pre><code id=\"snippet-curl\">{curl}</code></pre></div>\
         <div><div class=\"snippet-head\"><h3>OpenAI Python SDK</h3><button type=\"button\" class=\"copy small\" data-copy=\"#snippet-python\">Copy</button></div><pre><code id=\"snippet-python\">{python}</code></pre></div></div></section>",
        name = esc(&view.name),
        key = esc(key),
        curl = esc(&curl),
        python = esc(&python),
    )
}

/// `POST /admin/keys`: create; the answer shows the key (never a redirect, so the key is in
/// no URL and no history entry).
pub async fn create(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(Https(https)): Extension<Https>,
    headers: HeaderMap,
    Form(form): Form<KeyForm>,
) -> Response {
    let outcome = match form.to_create() {
        Err(errors) => Err(errors),
        Ok(body) => {
            let config_keys = state.gate.keys.load().config_keys().to_vec();
            match admin::create_key(&state.store, &config_keys, body, state.usage.quotas.now())
                .await
            {
                Ok(created) => Ok(created),
                Err(err) => match field_errors(&err, "name") {
                    Some(errors) => Err(errors),
                    None => return failure(&session, PAGE, &err),
                },
            }
        }
    };
    match outcome {
        Ok((record, key)) => {
            apply(&state).await;
            audit(&session, "key.create", &record.id);
            let view = admin::stored_view(&state.config, &record, (0, 0));
            let top = created_panel(&key, &view, &base_url(&headers, https));
            match all_keys(&state).await {
                Ok(keys) => list_page(
                    &session,
                    &keys,
                    &top,
                    &KeyForm::default(),
                    &Errors::default(),
                    StatusCode::CREATED,
                ),
                Err(err) => failure(&session, PAGE, &err),
            }
        }
        Err(errors) => {
            let keys = all_keys(&state).await.unwrap_or_default();
            list_page(&session, &keys, "", &form, &errors, StatusCode::BAD_REQUEST)
        }
    }
}

/// `POST /admin/keys/{id}/enable` and `/disable`.
pub async fn set_enabled(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let enabled = match action.as_str() {
        "enable" => true,
        "disable" => false,
        _ => {
            return failure(
                &session,
                PAGE,
                &GatewayError::NotFound(format!("no action '{action}'")),
            );
        }
    };
    let config_keys = state.gate.keys.load().config_keys().to_vec();
    let body = UpdateKey {
        enabled: Some(enabled),
        ..UpdateKey::default()
    };
    match admin::update_key(&state.store, &config_keys, &id, body).await {
        Ok(record) => {
            apply(&state).await;
            audit(&session, "key.update", &id);
            let done = if enabled { "enabled" } else { "disabled" };
            see_other(&format!(
                "/admin/keys?done={done}&key={}",
                percent_encoding::utf8_percent_encode(
                    &record.name,
                    percent_encoding::NON_ALPHANUMERIC
                )
            ))
        }
        Err(err) => failure(&session, PAGE, &err),
    }
}

async fn stored_key(state: &AppState, id: &str) -> Result<KeyView, GatewayError> {
    admin::refuse_config_id(id)?;
    let record = state.store.key(id).await?;
    Ok(admin::stored_view(
        &state.config,
        &record,
        state.usage.quotas.used(&record.id),
    ))
}

fn edit_page(
    session: &Session,
    view: &KeyView,
    form: &KeyForm,
    errors: &Errors,
    status: StatusCode,
) -> Response {
    let id = esc(&view.id);
    let body = format!(
        "<p class=\"lead\">Key <code>{}…</code> of {}. Empty number fields take the gateway's defaults. {}</p>\
         <form method=\"post\" action=\"/admin/keys/{id}\" class=\"card stack\" novalidate>{}{}<div class=\"row\"><button type=\"submit\" class=\"primary\">Save changes</button><a class=\"button\" href=\"/admin/keys\">Cancel</a></div></form>",
        esc(view.prefix.as_deref().unwrap_or_default()),
        view.user.as_deref().map_or_else(
            || "no user".to_owned(),
            |u| format!("user <strong>{}</strong>", esc(u))
        ),
        status_badge(view),
        csrf_field(&session.csrf),
        key_fields(form, errors, "edit", false),
    );
    framed(
        status,
        &format!("Edit key {}", view.name),
        session,
        PAGE,
        &body,
    )
}

fn form_of(view: &KeyView, record: &crate::store::KeyRecord) -> KeyForm {
    let s = &record.settings;
    let opt = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    KeyForm {
        name: view.name.clone(),
        user: view.user.clone().unwrap_or_default(),
        models: s.models.join(", "),
        rate_limit: opt(s.rate_limit.map(u64::from)),
        burst: opt(s.burst.map(u64::from)),
        max_concurrent: opt(s.max_concurrent.map(u64::from)),
        daily_token_quota: opt(s.daily_token_quota),
        monthly_token_quota: opt(s.monthly_token_quota),
        expires: view
            .expires
            .map(|at| at.format("%Y-%m-%dT%H:%M").to_string())
            .unwrap_or_default(),
        hard_quota: s.hard_quota.then(|| "on".into()),
        admin: s.admin.then(|| "on".into()),
    }
}

/// `GET /admin/keys/{id}`: the edit form (configured keys: read-only).
pub async fn edit(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let view = match stored_key(&state, &id).await {
        Ok(view) => view,
        Err(err) => return failure(&session, PAGE, &err),
    };
    if view.revoked {
        return failure(
            &session,
            PAGE,
            &GatewayError::Conflict(format!(
                "key '{}' is revoked and cannot be changed",
                view.name
            )),
        );
    }
    let Ok(record) = state.store.key(&id).await else {
        return failure(&session, PAGE, &GatewayError::StoreUnavailable);
    };
    edit_page(
        &session,
        &view,
        &form_of(&view, &record),
        &Errors::default(),
        StatusCode::OK,
    )
}

/// `POST /admin/keys/{id}`: save the edit form.
pub async fn update(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<KeyForm>,
) -> Response {
    let view = match stored_key(&state, &id).await {
        Ok(view) => view,
        Err(err) => return failure(&session, PAGE, &err),
    };
    let errors = match form.to_update() {
        Ok(body) => {
            let config_keys = state.gate.keys.load().config_keys().to_vec();
            match admin::update_key(&state.store, &config_keys, &id, body).await {
                Ok(record) => {
                    apply(&state).await;
                    audit(&session, "key.update", &id);
                    return see_other(&format!(
                        "/admin/keys?done=saved&key={}",
                        percent_encoding::utf8_percent_encode(
                            &record.name,
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    ));
                }
                Err(err) => match field_errors(&err, "name") {
                    Some(errors) => errors,
                    None => return failure(&session, PAGE, &err),
                },
            }
        }
        Err(errors) => errors,
    };
    edit_page(&session, &view, &form, &errors, StatusCode::BAD_REQUEST)
}

/// `GET /admin/keys/{id}/revoke`: what revoking means, and the button that does it.
pub async fn confirm_revoke(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let view = match stored_key(&state, &id).await {
        Ok(view) => view,
        Err(err) => return failure(&session, PAGE, &err),
    };
    let body = format!(
        "<section class=\"card narrow danger-zone\"><p>Revoking <strong>{}</strong> (<code>{}…</code>) is final: every request with it is refused from now on, and it cannot be enabled again. It stays listed, as revoked; its usage stays counted.</p>\
         <form method=\"post\" action=\"/admin/keys/{}/revoke\" class=\"row\">{}<button type=\"submit\" class=\"danger\" data-confirm=\"Revoke key {} for good?\">Revoke key</button><a class=\"button\" href=\"/admin/keys\">Cancel</a></form></section>",
        esc(&view.name),
        esc(view.prefix.as_deref().unwrap_or_default()),
        esc(&view.id),
        csrf_field(&session.csrf),
        esc(&view.name),
    );
    framed(
        StatusCode::OK,
        &format!("Revoke key {}?", view.name),
        &session,
        PAGE,
        &body,
    )
}

/// `POST /admin/keys/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    if let Err(err) = admin::refuse_config_id(&id) {
        return failure(&session, PAGE, &err);
    }
    match state.store.revoke_key(&id, state.usage.now_millis()).await {
        Ok(record) => {
            apply(&state).await;
            audit(&session, "key.revoke", &id);
            see_other(&format!(
                "/admin/keys?done=revoked&key={}",
                percent_encoding::utf8_percent_encode(
                    &record.name,
                    percent_encoding::NON_ALPHANUMERIC
                )
            ))
        }
        Err(err) => failure(&session, PAGE, &GatewayError::from(err)),
    }
}
