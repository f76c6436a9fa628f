//! Key authentication, deny by default: `Authorization: Bearer <key>` everywhere, and
//! `x-api-key: <key>` (what the Anthropic SDKs send) on the Anthropic surface.
//!
//! Every route needs a key except the short list in [`is_open_route`]: a route added later is
//! protected unless someone adds it there on purpose.

use std::sync::Arc;

use axum::extract::Request;
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

/// The [`Caller`] behind the request's key, or the 401 to answer (messages for `surface`: the
/// Anthropic surface also takes `x-api-key`). `Ok(None)` for open routes.
pub fn authenticate(
    gate: &Gate,
    req: &Request,
    surface: Surface,
) -> Result<Option<Arc<Caller>>, GatewayError> {
    if is_open_route(req.uri().path(), gate.metrics_open) {
        return Ok(None);
    }
    // Only one key per request: with two, which one a proxy in front or behind would read is
    // anyone's guess.
    let mut authorizations = req.headers().get_all(http::header::AUTHORIZATION).iter();
    if authorizations.next().is_some() && authorizations.next().is_some() {
        return Err(GatewayError::InvalidRequest {
            message: "more than one Authorization header; send exactly one".into(),
            param: None,
        });
    }
    let headers = req.headers();
    let presented = presented_key(headers, surface);
    let caller = match gate.keys.load().lookup(presented) {
        Ok(caller) => caller,
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
            return Err(GatewayError::Unauthorized(message));
        }
        Err(message) => return Err(GatewayError::Unauthorized(message)),
    };
    if caller.has_expired() {
        return Err(GatewayError::Unauthorized("API key has expired"));
    }
    Ok(Some(caller))
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
