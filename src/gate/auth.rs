//! Key authentication, deny by default: `Authorization: Bearer <key>` everywhere, and
//! `x-api-key: <key>` (what the Anthropic SDKs send) on the Anthropic surface.
//! `Authorization: Basic` works on every surface too: a password that is an API key is that
//! key (whatever the user name: for clients that can only send Basic), otherwise the user and
//! password are checked against `GATEWAY_BASIC_USERS` ([`super::basic`]).
//!
//! Every route needs a key except the short list in [`is_open_route`]: a route added later is
//! protected unless someone adds it there on purpose.

use std::sync::Arc;

use base64::Engine;
use http::HeaderMap;

use super::Gate;
use super::keys::Caller;
use crate::error::{GatewayError, Surface};

/// Routes served without a key: liveness, readiness and the API documentation.
pub const OPEN_ROUTES: &[&str] = &["/health", "/ready", "/openapi.json", "/docs"];

/// Whether `path` needs no key.
pub fn is_open_route(path: &str, metrics_open: bool) -> bool {
    OPEN_ROUTES
        .iter()
        .any(|open| path == *open || (*open == "/docs" && path.starts_with("/docs/")))
        || (metrics_open && path == "/metrics")
}

/// The key from `Authorization: Bearer <key>`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim())
        .filter(|k| !k.is_empty())
}

/// The key from `x-api-key: <key>`.
pub fn x_api_key(headers: &HeaderMap) -> Option<&str> {
    let key = headers.get("x-api-key")?.to_str().ok()?.trim();
    (!key.is_empty()).then_some(key)
}

/// The key a request on `surface` presents: the bearer key, or on the Anthropic surface
/// `x-api-key` when there is no `Authorization` header.
pub fn presented_key(headers: &HeaderMap, surface: Surface) -> Option<&str> {
    match surface {
        Surface::Anthropic if !headers.contains_key(http::header::AUTHORIZATION) => {
            x_api_key(headers)
        }
        _ => bearer(headers),
    }
}

/// The user and password of `Authorization: Basic <base64 of user:password>`: `None` for
/// another scheme, `Some(Err(()))` for Basic credentials that cannot be read.
pub fn basic(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| ());
    let text = decoded.and_then(|bytes| String::from_utf8(bytes).map_err(|_| ()));
    Some(text.and_then(|text| {
        let (user, password) = text.split_once(':').ok_or(())?;
        Ok((user.to_owned(), password.to_owned()))
    }))
}

/// The [`Caller`] behind the request's key (or Basic credentials), or the 401 to answer
/// (messages for `surface`: the Anthropic surface also takes `x-api-key`). `Ok(None)` for open
/// routes.
pub async fn authenticate(
    gate: &Gate,
    path: &str,
    headers: &HeaderMap,
    surface: Surface,
) -> Result<Option<Arc<Caller>>, GatewayError> {
    if is_open_route(path, gate.metrics_open) {
        return Ok(None);
    }
    // Only one key per request: with two, which one a proxy in front or behind would read is
    // anyone's guess.
    let mut authorizations = headers.get_all(http::header::AUTHORIZATION).iter();
    if authorizations.next().is_some() && authorizations.next().is_some() {
        return Err(GatewayError::InvalidRequest {
            message: "more than one Authorization header; send exactly one".into(),
            param: None,
        });
    }
    let caller = match basic(headers) {
        None => key_caller(gate, headers, surface)?,
        Some(Err(())) if gate.keys.load().is_open() => {
            return Ok(gate.keys.load().lookup(None).ok());
        }
        Some(Err(())) => {
            return Err(GatewayError::Unauthorized(
                "malformed Basic credentials: send base64 of user:password",
            ));
        }
        Some(Ok((user, password))) => basic_caller(gate, &user, &password).await?,
    };
    if caller.has_expired() {
        return Err(GatewayError::Unauthorized("API key has expired"));
    }
    Ok(Some(caller))
}

/// The caller of the key sent as `Bearer` (or `x-api-key` on the Anthropic surface).
fn key_caller(
    gate: &Gate,
    headers: &HeaderMap,
    surface: Surface,
) -> Result<Arc<Caller>, GatewayError> {
    let presented = presented_key(headers, surface);
    match gate.keys.load().lookup(presented) {
        Ok(caller) => Ok(caller),
        // No key we could read: missing, or a header that is not a key (an invalid one).
        Err(_) if presented.is_none() => {
            let sent = headers.contains_key(http::header::AUTHORIZATION)
                || (surface == Surface::Anthropic && headers.contains_key("x-api-key"));
            let message = match (sent, surface) {
                (true, _) => "invalid API key",
                (false, Surface::Anthropic) => {
                    "missing API key: send x-api-key: <key> or Authorization: Bearer <key>"
                }
                (false, _) => "missing API key: send Authorization: Bearer <key>",
            };
            Err(GatewayError::Unauthorized(message))
        }
        Err(message) => Err(GatewayError::Unauthorized(message)),
    }
}

/// The caller of Basic credentials: the key in the password, else the Basic user.
async fn basic_caller(
    gate: &Gate,
    user: &str,
    password: &str,
) -> Result<Arc<Caller>, GatewayError> {
    // The key map is read and let go before any await.
    let as_key = gate.keys.load().lookup(Some(password));
    let refused = match as_key {
        Ok(caller) => return Ok(caller),
        Err(refused) => refused,
    };
    let Some(users) = &gate.basic else {
        return Err(GatewayError::Unauthorized(refused));
    };
    users.check(user, password).await.map_err(|basic_refused| {
        // A password that is recognisably a key (revoked, disabled, a damaged `og_` key) says so.
        GatewayError::Unauthorized(if refused == "invalid API key" {
            basic_refused
        } else {
            refused
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listed_routes_are_open() {
        for open in [
            "/health",
            "/ready",
            "/openapi.json",
            "/docs",
            "/docs/index.html",
        ] {
            assert!(is_open_route(open, false), "{open}");
        }
        for closed in [
            "/v1/models",
            "/api/tags",
            "/metrics",
            "/docsx",
            "/healthz",
            "/",
        ] {
            assert!(!is_open_route(closed, false), "{closed}");
        }
        assert!(is_open_route("/metrics", true));
    }

    #[test]
    fn bearer_is_parsed_case_insensitively() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            http::HeaderValue::from_static("bearer  sk-1 "),
        );
        assert_eq!(bearer(&headers), Some("sk-1"));
        headers.insert("authorization", http::HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn x_api_key_counts_only_on_the_anthropic_surface() {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", http::HeaderValue::from_static(" sk-2 "));
        assert_eq!(presented_key(&headers, Surface::Anthropic), Some("sk-2"));
        assert_eq!(presented_key(&headers, Surface::OpenAi), None);
        assert_eq!(presented_key(&headers, Surface::Ollama), None);
        headers.insert(
            "authorization",
            http::HeaderValue::from_static("Bearer sk-1"),
        );
        assert_eq!(presented_key(&headers, Surface::Anthropic), Some("sk-1"));
    }
}
