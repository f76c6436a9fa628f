//! Who may use the console: login with an admin key, a session cookie, CSRF tokens, logout.
//!
//! - **Login** (`POST /admin/login`) takes an admin key (a key marked admin, or a key of a user
//!   whose role is admin); a user-role key or a wrong key is refused, and every refused login
//!   counts against the client address in the gate's failed-authentication limit
//!   (`GATEWAY_AUTH_FAILURES`): past it the address gets 429 for a minute.
//! - **The session** is a random 256-bit token in the `og_session` cookie (`HttpOnly`,
//!   `SameSite=Strict`, `Path=/admin`, `Secure` over HTTPS, `Max-Age` of
//!   `GATEWAY_CONSOLE_SESSION`). The database keeps only its SHA-256 digest, with its expiry and
//!   the digest of the admin key it was opened with; every request looks the key up in the key
//!   map again, so disabling, revoking or demoting that key ends its sessions at once.
//! - **CSRF**: every state-changing request (anything but GET and HEAD) must carry the
//!   session's CSRF token, as the `_csrf` form field or the `x-csrf-token` header; the token is
//!   derived from the session token (SHA-256 of a label and the token), so it needs no storage
//!   and cannot be computed without the cookie. A request whose `Origin` is not this host (its
//!   `Host`, or the `X-Forwarded-Host` of a trusted proxy), or that the browser marks
//!   `Sec-Fetch-Site: cross-site`, is refused before anything else.
//! - **Logout** deletes the session's row: the cookie is worthless from then on, even if kept.
//!
//! [`admit`] is called by the gate for every console path: deny by default, only the login page
//! and the static assets are open.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use rand::TryRngCore;
use rand::rngs::OsRng;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::html::{Errors, Field, Html, csrf_field, esc, page};
use crate::gate::client::{ClientAddr, PeerAddr, in_any};
use crate::gate::keys::{Caller, digest};
use crate::state::AppState;
use crate::store::console::SessionRecord;

/// The session cookie's name.
pub const COOKIE: &str = "og_session";
/// The form field and the header that carry the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";
/// The header alternative for scripts.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The largest form body the console reads.
const MAX_FORM: usize = 64 * 1024;

/// The logged-in session, in the request's extensions for the pages.
#[derive(Clone, Debug)]
pub struct Session {
    /// The admin key's name.
    pub key_name: String,
    /// The CSRF token of this session.
    pub csrf: String,
    /// The admin key's caller (its id, for the audit lines of changes).
    pub caller: Arc<Caller>,
}

/// Console paths served without a session.
pub fn is_open(path: &str) -> bool {
    path == "/admin/login" || path.starts_with("/admin/assets/")
}

fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The CSRF token of the session whose cookie is `token`.
pub fn csrf_for(token: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"ollama-gateway console csrf\0");
    hash.update(token.as_bytes());
    hex::encode(&hash.finalize()[..20])
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Whether the request comes from another origin: its `Origin` is neither this host nor the
/// host a trusted proxy forwarded (`forwarded_host`, from `X-Forwarded-Host`), or the browser
/// says `Sec-Fetch-Site: cross-site`.
fn cross_origin(headers: &HeaderMap, forwarded_host: Option<&str>) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .split_once("://")
        .map_or("", |(_, rest)| rest.trim_end_matches('/'));
    origin == "null"
        || !(origin_host.eq_ignore_ascii_case(host)
            || forwarded_host.is_some_and(|h| origin_host.eq_ignore_ascii_case(h.trim())))
}

/// `X-Forwarded-Host`, when the peer is a trusted proxy.
fn forwarded_host<'a>(state: &AppState, req: &'a Request) -> Option<&'a str> {
    let trusted = req
        .extensions()
        .get::<PeerAddr>()
        .is_some_and(|peer| in_any(&state.gate.trusted_proxies, peer.0.ip()));
    if !trusted {
        return None;
    }
    req.headers()
        .get("x-forwarded-host")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
}

/// Whether the browser reached us over HTTPS (our own TLS, or a trusted proxy's).
fn over_https(state: &AppState, req: &Request) -> bool {
    if state.tls.is_some() {
        return true;
    }
    let peer_trusted = req
        .extensions()
        .get::<PeerAddr>()
        .is_some_and(|peer| in_any(&state.gate.trusted_proxies, peer.0.ip()));
    peer_trusted
        && req
            .headers()
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// Whether the connection is HTTPS, for the cookie's `Secure` attribute.
#[derive(Clone, Copy, Debug)]
pub struct Https(pub bool);

/// A page that says no, in the console's frame.
pub fn refusal(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<section class=\"card narrow\"><p>{}</p><p><a class=\"button\" href=\"/admin/keys\">Back to the console</a></p></section>",
        esc(text)
    );
    Html(status, page(title, None, &body)).into_response()
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Security headers on every console answer: no caching, no framing, only our own scripts
/// and styles.
fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        (
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// The gate, for console paths: the login page and assets are open; everything else needs a
/// live session of a working admin key, and a CSRF token when it changes something.
pub async fn admit(
    state: &AppState,
    client: Option<IpAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD);
    if changes && cross_origin(req.headers(), forwarded_host(state, &req)) {
        return harden(refusal(
            StatusCode::FORBIDDEN,
            "Refused",
            "This request came from another site. Open the console itself and try again.",
        ));
    }
    let https = over_https(state, &req);
    req.extensions_mut().insert(Https(https));
    if let Some(ip) = client {
        req.extensions_mut().insert(ClientAddr(ip));
    }
    let path = req.uri().path().to_owned();
    if is_open(&path) {
        return harden(next.run(req).await);
    }
    let Some(token) = cookie(req.headers(), COOKIE).map(str::to_owned) else {
        return harden(to_login(&path, changes, None));
    };
    let now = state.usage.now_millis();
    let record = match state.store.session(&token_digest(&token), now).await {
        Ok(Some(record)) => record,
        Ok(None) => return harden(to_login(&path, changes, Some("expired"))),
        Err(err) => {
            tracing::warn!(error = %err, "console: cannot read sessions");
            return harden(refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "Database unavailable",
                "The database cannot be read just now; try again shortly.",
            ));
        }
    };
    let caller = state
        .gate
        .keys
        .load()
        .lookup_digest(&record.key_digest)
        .filter(|c| c.admin && !c.has_expired());
    let Some(caller) = caller else {
        // The key was disabled, revoked, demoted or expired: so is the session.
        let _ = state.store.delete_session(&record.digest).await;
        return harden(to_login(&path, changes, Some("key")));
    };
    let csrf = csrf_for(&token);
    if changes {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
            return harden(refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Refused",
                "The form is larger than the console accepts.",
            ));
        };
        let presented = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| form_value(&bytes, CSRF_FIELD));
        if !presented.is_some_and(|p| same(&p, &csrf)) {
            tracing::warn!(target: "audit", admin = record.key_name.as_str(), path = path.as_str(), "console: request without a valid CSRF token refused");
            return harden(refusal(
                StatusCode::FORBIDDEN,
                "Refused",
                "This form has no valid CSRF token (it may be stale, or come from another page). Reload the page and try again.",
            ));
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(Session {
        key_name: record.key_name,
        csrf,
        caller: caller.clone(),
    });
    req.extensions_mut().insert(caller);
    harden(next.run(req).await)
}

/// The raw value of `name` in a form body (`a=1&_csrf=...`), percent-decoded.
fn form_value(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// Not logged in: pages go to the login form (and back after it); changes are refused.
fn to_login(path: &str, changes: bool, why: Option<&str>) -> Response {
    if changes {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "Not logged in",
            "Your console session has ended. Log in again.",
        );
    }
    let next: String =
        percent_encoding::utf8_percent_encode(path, percent_encoding::NON_ALPHANUMERIC).to_string();
    let why = why.map(|w| format!("&ended={w}")).unwrap_or_default();
    see_other(&format!("/admin/login?next={next}{why}"))
}

/// Query of the login page.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    ended: Option<String>,
    bye: Option<String>,
}

/// The login form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    key: String,
    next: Option<String>,
}

/// A place to go back to after login: a console page, nothing else.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with("/admin/")
                && !n.starts_with("/admin/login")
                && !n.contains("//")
                && !n.contains('\\') =>
        {
            n
        }
        _ => "/admin/keys",
    }
}

fn login_page(status: StatusCode, next: &str, notice: Option<&str>, errors: &Errors) -> Response {
    let mut body = String::from("<section class=\"card narrow login\">");
    if let Some(notice) = notice {
        body.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{}</p>",
            esc(notice)
        ));
    }
    body.push_str("<p>Log in with an <strong>admin key</strong>: a key marked admin, or a key of a user whose role is admin. Keys of other users cannot open the console.</p>");
    body.push_str("<form method=\"post\" action=\"/admin/login\" class=\"stack\">");
    body.push_str(
        &Field::text("key", "Admin key", "")
            .kind("password")
            .placeholder("og_…")
            .required()
            .render("login", errors),
    );
    body.push_str(&format!(
        "<input type=\"hidden\" name=\"next\" value=\"{}\">",
        esc(next)
    ));
    body.push_str("<button type=\"submit\" class=\"primary\">Log in</button></form></section>");
    Html(status, page("Log in", None, &body)).into_response()
}

/// `GET /admin/login`.
pub async fn login_form(Query(query): Query<LoginQuery>) -> Response {
    let notice = match (query.ended.as_deref(), query.bye.is_some()) {
        (_, true) => Some("You are logged out."),
        (Some("key"), _) => Some("Your session ended: its admin key no longer works."),
        (Some(_), _) => Some("Your session has ended. Log in again."),
        _ => None,
    };
    login_page(
        StatusCode::OK,
        safe_next(query.next.as_deref()),
        notice,
        &Errors::default(),
    )
}

/// `POST /admin/login`.
pub async fn login(
    State(state): State<AppState>,
    Extension(Https(https)): Extension<Https>,
    client: Option<Extension<ClientAddr>>,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let client = client.map(|Extension(ClientAddr(ip))| ip);
    let gate = &state.gate;
    let now = Instant::now();
    if let Some(wait) = client.and_then(|ip| gate.auth_failures.blocked_for(ip, now)) {
        state.usage.live.refused(
            "console_login_blocked",
            state.usage.now_millis().div_euclid(60_000),
        );
        let mut response = refusal(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            &format!(
                "Too many failed logins from this address. Try again in {} s.",
                wait.as_secs().max(1)
            ),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(wait.as_secs().max(1)),
        );
        return response;
    }
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let next = safe_next(form.next.as_deref()).to_owned();
    let presented = form.key.trim();
    let keys = gate.keys.load();
    let refused = match keys.lookup((!presented.is_empty()).then_some(presented)) {
        Ok(caller) if caller.has_expired() => Some("This key has expired."),
        Ok(caller) if !caller.admin => {
            Some("This key is not an admin key: it cannot open the console.")
        }
        Ok(_) => None,
        Err(_) if presented.is_empty() => Some("Enter an admin key."),
        Err(message) => Some(message),
    };
    if let Some(message) = refused {
        if let Some(ip) = client
            && gate.auth_failures.record(ip, now)
        {
            tracing::warn!(client = %ip, "too many failed console logins: address blocked for a minute");
        }
        tracing::info!(target: "audit", client = client.map(tracing::field::display), "console: login refused");
        state.usage.live.refused(
            "console_login_refused",
            state.usage.now_millis().div_euclid(60_000),
        );
        let mut errors = Errors::default();
        errors.add("key", message);
        return login_page(StatusCode::UNAUTHORIZED, &next, None, &errors);
    }
    let Ok(caller) = keys.lookup(Some(presented)) else {
        return login_page(StatusCode::UNAUTHORIZED, &next, None, &Errors::default());
    };
    let mut bytes = [0u8; 32];
    if OsRng.try_fill_bytes(&mut bytes).is_err() {
        return refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "No random source for a session token.",
        );
    }
    let token = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
    let ttl = state.config.console_session;
    let created = state.usage.now_millis();
    let _ = state.store.prune_sessions(created).await;
    let record = SessionRecord {
        digest: token_digest(&token),
        key_digest: digest(presented),
        key_name: caller.name.clone(),
        client: client.map(|ip| ip.to_string()),
        created,
        expires: created.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
    };
    if let Err(err) = state.store.create_session(&record).await {
        tracing::warn!(error = %err, "console: cannot store a session");
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "Database unavailable",
            "The session cannot be stored just now; try again shortly.",
        );
    }
    crate::admin::audit_change(
        &caller.name,
        caller.id.as_deref(),
        "console.login",
        &client.map(|ip| ip.to_string()).unwrap_or_default(),
    );
    let mut response = see_other(&next);
    if let Ok(value) = HeaderValue::from_str(&session_cookie(&token, ttl, https)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The `Set-Cookie` value of a new session.
fn session_cookie(token: &str, ttl: Duration, https: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/admin; Max-Age={}; HttpOnly; SameSite=Strict{}",
        ttl.as_secs(),
        if https { "; Secure" } else { "" }
    )
}

/// `POST /admin/logout`: the session's row is deleted and the cookie cleared.
pub async fn logout(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(Https(https)): Extension<Https>,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = cookie(&headers, COOKIE)
        && let Err(err) = state.store.delete_session(&token_digest(token)).await
    {
        tracing::warn!(error = %err, "console: cannot delete a session");
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "Database unavailable",
            "The session could not be ended just now; try again shortly.",
        );
    }
    crate::admin::audit_change(
        &session.key_name,
        session.caller.id.as_deref(),
        "console.logout",
        "-",
    );
    let mut response = see_other("/admin/login?bye=1");
    let clear = format!(
        "{COOKIE}=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if https { "; Secure" } else { "" }
    );
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Kept for pages that show the token field (forms built by hand).
pub fn field(session: &Session) -> String {
    csrf_field(&session.csrf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_form_fields_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; og_session=tok; b=2"),
        );
        assert_eq!(cookie(&headers, COOKIE), Some("tok"));
        assert_eq!(cookie(&headers, "c"), None);
        assert_eq!(
            form_value(b"name=x&_csrf=ab%2Bc&z=1", "_csrf").as_deref(),
            Some("ab+c")
        );
        assert_eq!(form_value(b"name=x", "_csrf"), None);
    }

    #[test]
    fn only_this_origin_may_change_things() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(
            !cross_origin(&headers, None),
            "no Origin: a form from this page"
        );
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(!cross_origin(&headers, None));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(cross_origin(&headers, None));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://gw.example.org"),
        );
        assert!(
            !cross_origin(&headers, Some("gw.example.org")),
            "the host a proxy forwarded"
        );
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(cross_origin(&headers, None));
    }

    #[test]
    fn the_next_page_stays_in_the_console() {
        assert_eq!(
            safe_next(Some("/admin/usage?range=day")),
            "/admin/usage?range=day"
        );
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/admin//x",
            "/v1/models",
        ] {
            assert_eq!(safe_next(Some(bad)), "/admin/keys", "{bad}");
        }
        assert_ne!(csrf_for("a"), csrf_for("b"));
        assert!(same(&csrf_for("a"), &csrf_for("a")));
    }
}
