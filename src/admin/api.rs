//! The admin API handlers: `/admin/api/keys`, `/admin/api/users`, `/admin/api/usage`.
//! Each checks that the caller is an admin, validates, calls the store, reloads the key map
//! (so a change applies before the answer is sent) and writes an audit line.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{CreateKey, CreateUser, KeyView, UpdateKey, UpdateUser, UserView};
use crate::error::{GatewayError, OpenAiError, OpenAiErrorBody};
use crate::gate::keys::Caller;
use crate::gate::reload;
use crate::http::extract::JsonBody;
use crate::state::AppState;
use crate::store::{KeyRecord, Role};
use crate::usage::report::{self, GroupBy};

type AdminResult = Result<Response, OpenAiError>;

/// A list answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub data: Vec<KeyView>,
}

/// A list answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub data: Vec<UserView>,
}

/// One row of a usage answer: the grouped columns (only those asked for), then the totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageRow {
    /// With `group_by=key`: the stored key's id (null for configured keys).
    pub key_id: Option<String>,
    /// With `group_by=key`: the key's name.
    pub key: Option<String>,
    /// With `group_by=user`.
    pub user: Option<String>,
    /// With `group_by=model`.
    pub model: Option<String>,
    /// With `group_by=route`.
    pub route: Option<String>,
    /// With `group_by=day`: `YYYY-MM-DD` (UTC).
    pub day: Option<String>,
    /// With `group_by=hour`: `YYYY-MM-DDTHH:00:00Z`.
    pub hour: Option<String>,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Error statuses and streams that ended with an error.
    pub errors: u64,
    /// Percentiles of the total time; null where only hourly totals remain.
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p95: Option<f64>,
    pub latency_ms_p99: Option<f64>,
    /// Percentiles of the time to the first token (streams).
    pub ttft_ms_p50: Option<f64>,
    pub ttft_ms_p95: Option<f64>,
}

/// A usage answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReport {
    pub from: chrono::DateTime<chrono::Utc>,
    pub to: chrono::DateTime<chrono::Utc>,
    pub group_by: Vec<String>,
    pub data: Vec<UsageRow>,
}

/// `GET /admin/api/usage` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// Start (RFC 3339 or `YYYY-MM-DD`, UTC); default: everything recorded.
    pub from: Option<String>,
    /// End, exclusive; default: now.
    pub to: Option<String>,
    /// Comma-separated: `key`, `user`, `model`, `route`, `day`, `hour`.
    #[param(example = "day,model")]
    pub group_by: Option<String>,
    /// `json` (default) or `csv` (also chosen by `Accept: text/csv`).
    pub format: Option<String>,
}

fn admin_only(caller: &Caller) -> Result<(), GatewayError> {
    if caller.admin {
        Ok(())
    } else {
        Err(GatewayError::Forbidden(
            "the admin API needs an admin key".into(),
        ))
    }
}

/// After a change: bring it into memory now (the poll would within a second anyway).
async fn apply(state: &AppState) {
    if let Err(err) = reload::reload(state).await {
        tracing::warn!(error = %err, "key change stored, but not reloaded yet");
    }
}

fn audit_change(caller: &Caller, action: &str, target: &str) {
    super::audit_change(&caller.name, caller.id.as_deref(), action, target);
}

fn view(state: &AppState, record: &KeyRecord) -> KeyView {
    super::stored_view(&state.config, record, state.usage.quotas.used(&record.id))
}

fn json(status: StatusCode, value: impl Serialize) -> Response {
    (status, Json(value)).into_response()
}

/// List every key: stored ones (revoked included) and configured ones (read-only).
#[utoipa::path(
    get, path = "/admin/api/keys", tag = "Admin",
    responses(
        (status = 200, description = "Every key, without the keys themselves", body = KeyList),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 400, description = "Invalid request or path", body = OpenAiErrorBody),
        (status = 403, description = "Not an admin key", body = OpenAiErrorBody),
        (status = 503, description = "The database is unavailable", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_keys(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
) -> AdminResult {
    admin_only(&caller)?;
    let stored = state.store.keys().await.map_err(GatewayError::from)?;
    let keys = state.gate.keys.load();
    let mut data: Vec<KeyView> = keys
        .config_keys()
        .iter()
        .map(|k| super::config_view(k, state.usage.quotas.used(&super::config_counter(&k.name))))
        .collect();
    data.extend(stored.iter().map(|r| view(&state, r)));
    Ok(json(StatusCode::OK, KeyList { data }))
}

/// Create a key. The answer holds the key itself, this once.
#[utoipa::path(
    post, path = "/admin/api/keys", tag = "Admin",
    request_body = CreateKey,
    responses(
        (status = 201, description = "The key, with `key` (shown only now)", body = KeyView),
        (status = 400, description = "Invalid body (the field is named)", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 403, description = "Not an admin key", body = OpenAiErrorBody),
        (status = 409, description = "A working key has this name", body = OpenAiErrorBody),
        (status = 503, description = "The database is unavailable", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    JsonBody(body): JsonBody<CreateKey>,
) -> AdminResult {
    admin_only(&caller)?;
    let config_keys = state.gate.keys.load().config_keys().to_vec();
    let (record, key) =
        super::create_key(&state.store, &config_keys, body, state.usage.quotas.now()).await?;
    apply(&state).await;
    audit_change(&caller, "key.create", &record.id);
    let mut out = view(&state, &record);
    out.key = Some(key);
    Ok(json(StatusCode::CREATED, out))
}

/// One key.
#[utoipa::path(
    get, path = "/admin/api/keys/{id}", tag = "Admin",
    params(("id" = String, Path, description = "The key's id (`config:<name>` for configured keys)", pattern = r#"^[^\u0000-\u0020\u007F-\u009F\\?#<>"^`{|}]+$"#)),
    responses(
        (status = 200, description = "The key", body = KeyView),
        (status = 400, description = "Invalid request or path", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 403, description = "Not an admin key", body = OpenAiErrorBody),
        (status = 404, description = "No such key", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(id): Path<String>,
) -> AdminResult {
    admin_only(&caller)?;
    if let Some(name) = id.strip_prefix(super::CONFIG_ID_PREFIX) {
        let keys = state.gate.keys.load();
        let key = keys
            .config_keys()
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| GatewayError::NotFound(format!("no key with id '{id}'")))?;
        let used = state.usage.quotas.used(&super::config_counter(name));
        return Ok(json(StatusCode::OK, super::config_view(key, used)));
    }
    let record = state.store.key(&id).await.map_err(GatewayError::from)?;
    Ok(json(StatusCode::OK, view(&state, &record)))
}

/// Change a key: `enabled`, `name`, `models`, limits, quotas, `expires` (`null` clears).
#[utoipa::path(
    patch, path = "/admin/api/keys/{id}", tag = "Admin",
    params(("id" = String, Path, description = "The key's id", pattern = r#"^[^\u0000-\u0020\u007F-\u009F\\?#<>"^`{|}]+$"#)),
    request_body = UpdateKey,
    responses(
        (status = 200, description = "The key as it is now", body = KeyView),
        (status = 400, description = "Invalid body (the field is named)", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 403, description = "Not an admin key", body = OpenAiErrorBody),
        (status = 404, description = "No such key", body = OpenAiErrorBody),
        (status = 409, description = "Name taken, key revoked, or a configured key", body = OpenAiErrorBody),
        (status = 503, description = "The database is unavailable", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateKey>,
) -> AdminResult {
    admin_only(&caller)?;
    let config_keys = state.gate.keys.load().config_keys().to_vec();
    let record = super::update_key(&state.store, &config_keys, &id, body).await?;
    apply(&state).await;
    audit_change(&caller, "key.update", &id);
    Ok(json(StatusCode::OK, view(&state, &record)))
}

/// Revoke a key: refused from now on, still listed (as revoked).
#[utoipa::path(
    delete, path = "/admin/api/keys/{id}", tag = "Admin",
    params(("id" = String, Path, description = "The key's id", pattern = r#"^[^\u0000-\u0020\u007F-\u009F\\?#<>"^`{|}]+$"#)),
    responses(
        (status = 200, description = "The revoked key", body = KeyView),
        (status = 400, description = "Invalid request or path", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 403, description = "Not an admin key", body = OpenAiErrorBody),
        (status = 404, description = "No such key", body = OpenAiErrorBody),
        (status = 409, description = "A configured key", body = OpenAiErrorBody),
        (status = 503, description = "The database is unavailable", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(id): Path<String>,
) -> AdminResult {
    admin_only(&caller)?;
    super::refuse_config_id(&id)?;
    let record = state
        .store
        .revoke_key(&id, state.usage.now_millis())
        .await
        .map_err(GatewayError::from)?;
    apply(&state).await;
    audit_change(&caller, "key.revoke", &id);
    Ok(json(StatusCode::OK, view(&state, &record)))
}

/// List users.
#[utoipa::path(
    get, path = "/admin/api/users", tag = "Admin",
    responses(
        (status = 200, description = "Every user", body = UserList),
        (status = 400, description = "Invalid request or path", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 403, description = "Not an admin key", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_users(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
) -> AdminResult {
    admin_only(&caller)?;
    let users = state.store.users().await.map_err(GatewayError::from)?;
    let keys = state.store.keys().await.map_err(GatewayError::from)?;
    let data = users.iter().map(|u| super::user_view(u, &keys)).collect();
    Ok(json(StatusCode::OK, UserList { data }))
}

/// Add a user.
#[utoipa::path(
    post, path = "/admin/api/users", tag = "Admin",
    request_body = CreateUser,
    responses(
        (status = 201, description = "The user", body = UserView),
        (status = 400, description = "Invalid body", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 403, description = "Not an admin key", body = OpenAiErrorBody),
        (status = 409, description = "The name is taken", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    JsonBody(body): JsonBody<CreateUser>,
) -> AdminResult {
    admin_only(&caller)?;
    super::check_name("name", &body.name)?;
    let user = state
        .store
        .create_user(
            &body.name,
            body.role.unwrap_or(Role::User),
            state.usage.now_millis(),
        )
        .await
        .map_err(GatewayError::from)?;
    apply(&state).await;
    audit_change(&caller, "user.create", &user.name);
    Ok(json(StatusCode::CREATED, super::user_view(&user, &[])))
}

/// Change a user's role (an admin user's keys are admin keys).
#[utoipa::path(
    patch, path = "/admin/api/users/{name}", tag = "Admin",
    params(("name" = String, Path, description = "The user's name", pattern = r#"^[^\u0000-\u0020\u007F-\u009F\\?#<>"^`{|}]+$"#)),
    request_body = UpdateUser,
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 400, description = "Invalid body", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 403, description = "Not an admin key", body = OpenAiErrorBody),
        (status = 404, description = "No such user", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<UpdateUser>,
) -> AdminResult {
    admin_only(&caller)?;
    let user = state
        .store
        .update_user(&name, body.role)
        .await
        .map_err(GatewayError::from)?;
    apply(&state).await;
    audit_change(&caller, "user.update", &name);
    let keys = state.store.keys().await.unwrap_or_default();
    Ok(json(StatusCode::OK, super::user_view(&user, &keys)))
}

/// Delete a user; its keys are revoked.
#[utoipa::path(
    delete, path = "/admin/api/users/{name}", tag = "Admin",
    params(("name" = String, Path, description = "The user's name", pattern = r#"^[^\u0000-\u0020\u007F-\u009F\\?#<>"^`{|}]+$"#)),
    responses(
        (status = 204, description = "Deleted; its keys are revoked"),
        (status = 400, description = "Invalid request or path", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 403, description = "Not an admin key", body = OpenAiErrorBody),
        (status = 404, description = "No such user", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(name): Path<String>,
) -> AdminResult {
    admin_only(&caller)?;
    let revoked = state
        .store
        .delete_user(&name, state.usage.now_millis())
        .await
        .map_err(GatewayError::from)?;
    apply(&state).await;
    audit_change(&caller, "user.delete", &name);
    for id in &revoked {
        audit_change(&caller, "key.revoke", id);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Usage totals, grouped (`group_by=key|user|model|route|day|hour`, combinable), as JSON or
/// CSV.
#[utoipa::path(
    get, path = "/admin/api/usage", tag = "Admin",
    params(UsageParams),
    responses(
        (status = 200, description = "Rows of totals (`text/csv` with `format=csv`)", body = UsageReport,
            content((UsageReport = "application/json"), (String = "text/csv"))),
        (status = 400, description = "Invalid parameter (named)", body = OpenAiErrorBody),
        (status = 401, description = "Missing or invalid API key", body = OpenAiErrorBody),
        (status = 403, description = "Not an admin key", body = OpenAiErrorBody),
        (status = 503, description = "The database is unavailable", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn usage(
    State(state): State<AppState>,
    Extension(caller): Extension<Arc<Caller>>,
    headers: HeaderMap,
    params: Result<Query<UsageParams>, axum::extract::rejection::QueryRejection>,
) -> AdminResult {
    admin_only(&caller)?;
    let Query(params) =
        params.map_err(|e| GatewayError::invalid("query", format!("query: {e}")))?;
    let now = state.usage.quotas.now();
    let from = match &params.from {
        Some(text) => report::parse_time("from", text)?,
        None => chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
    };
    let to = match &params.to {
        Some(text) => report::parse_time("to", text)?,
        None => now + chrono::Duration::milliseconds(1),
    };
    if to < from {
        return Err(GatewayError::invalid("to", "to: must not be before from").into());
    }
    let group_by = GroupBy::parse_list(params.group_by.as_deref().unwrap_or_default())?;
    let csv = match params.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv")),
        Some(_) => {
            return Err(GatewayError::invalid("format", "format: use json or csv").into());
        }
    };
    let retention =
        chrono::Duration::from_std(state.config.usage_retention).unwrap_or(chrono::Duration::MAX);
    let kept_since = now
        .checked_sub_signed(retention)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    let rows = report::query(&state.store, &group_by, from, to, kept_since).await?;
    if csv {
        let body = report::to_csv(&report::columns(&group_by), &rows);
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            body,
        )
            .into_response());
    }
    let group_names: Vec<String> = params
        .group_by
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(json(
        StatusCode::OK,
        serde_json::json!({"from": from, "to": to, "group_by": group_names, "data": rows}),
    ))
}
