//! The Settings page: the configuration the gateway runs with, read-only. Secrets (keys) are
//! shown as set or unset, never their values; a database URL with a password shows `***`.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::framed;
use crate::config::Config;
use crate::console::html::esc;
use crate::console::session::Session;
use crate::state::AppState;

fn list(values: &[String]) -> String {
    if values.is_empty() {
        "(none)".into()
    } else {
        values.join(", ")
    }
}

fn secs(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 86_400.0 && s % 86_400.0 == 0.0 {
        format!("{}d", s / 86_400.0)
    } else if s >= 3600.0 && s % 3600.0 == 0.0 {
        format!("{}h", s / 3600.0)
    } else {
        format!("{s}s")
    }
}

fn set(present: bool) -> String {
    if present {
        "set".into()
    } else {
        "unset".into()
    }
}

/// Every setting as (group, variable, value, is-secret).
fn rows(c: &Config, tls_on: bool) -> Vec<(&'static str, &'static str, String, bool)> {
    let nets = |n: &[ipnet::IpNet]| list(&n.iter().map(ToString::to_string).collect::<Vec<_>>());
    vec![
        ("Server", "GATEWAY_LISTEN", c.listen.to_string(), false),
        (
            "Server",
            "GATEWAY_WORKER_THREADS",
            c.worker_threads.to_string(),
            false,
        ),
        (
            "Server",
            "GATEWAY_HEADER_TIMEOUT",
            secs(c.header_timeout),
            false,
        ),
        (
            "Server",
            "GATEWAY_BODY_TIMEOUT",
            secs(c.body_timeout),
            false,
        ),
        (
            "Server",
            "GATEWAY_SHUTDOWN_GRACE",
            secs(c.shutdown_grace),
            false,
        ),
        (
            "Server",
            "GATEWAY_LOG_FORMAT",
            format!("{:?}", c.log_format).to_lowercase(),
            false,
        ),
        ("Upstream", "OLLAMA_URL", c.ollama_url.clone(), false),
        (
            "Upstream",
            "GATEWAY_UPSTREAM_TIMEOUT",
            secs(c.upstream_timeout),
            false,
        ),
        (
            "Keys",
            "GATEWAY_AUTH",
            format!("{:?}", c.auth).to_lowercase(),
            false,
        ),
        (
            "Keys",
            "GATEWAY_API_KEYS",
            if c.api_keys.iter().any(|k| !k.expose().is_empty()) {
                format!(
                    "set ({} keys)",
                    c.api_keys.iter().filter(|k| !k.expose().is_empty()).count()
                )
            } else {
                "unset".into()
            },
            true,
        ),
        (
            "Keys",
            "OLLAMA_API_KEY",
            set(c
                .ollama_api_key
                .as_ref()
                .is_some_and(|k| !k.expose().is_empty())),
            true,
        ),
        (
            "Keys",
            "GATEWAY_CONFIG",
            c.config_file
                .as_ref()
                .map_or_else(|| "(none)".into(), |p| p.display().to_string()),
            false,
        ),
        (
            "Keys",
            "GATEWAY_ALLOWED_MODELS",
            list(&c.allowed_models),
            false,
        ),
        (
            "Keys",
            "GATEWAY_ALLOW_ADMIN",
            c.allow_admin.to_string(),
            false,
        ),
        (
            "Limits",
            "GATEWAY_MAX_BODY",
            format!("{} bytes", c.max_body),
            false,
        ),
        (
            "Limits",
            "GATEWAY_RATE_LIMIT",
            format!("{} /min", c.rate_limit),
            false,
        ),
        (
            "Limits",
            "GATEWAY_RATE_BURST",
            c.rate_burst.to_string(),
            false,
        ),
        (
            "Limits",
            "GATEWAY_GLOBAL_RATE_LIMIT",
            format!("{} /min", c.global_rate_limit),
            false,
        ),
        (
            "Limits",
            "GATEWAY_MAX_CONCURRENT",
            c.max_concurrent.to_string(),
            false,
        ),
        (
            "Limits",
            "GATEWAY_AUTH_FAILURES",
            format!("{} /min per address", c.auth_failures),
            false,
        ),
        (
            "Limits",
            "GATEWAY_MAX_CONN_PER_IP",
            c.max_conn_per_ip.to_string(),
            false,
        ),
        (
            "Network",
            "GATEWAY_CORS_ORIGINS",
            list(&c.cors_origins),
            false,
        ),
        (
            "Network",
            "GATEWAY_TRUSTED_PROXIES",
            nets(&c.trusted_proxies),
            false,
        ),
        ("Network", "GATEWAY_ALLOW_IPS", nets(&c.allow_ips), false),
        ("Network", "GATEWAY_DENY_IPS", nets(&c.deny_ips), false),
        (
            "Network",
            "GATEWAY_METRICS_OPEN",
            c.metrics_open.to_string(),
            false,
        ),
        (
            "HTTPS",
            "GATEWAY_TLS",
            c.tls.map_or_else(
                || format!("(auto: {})", if tls_on { "on" } else { "off" }),
                |m| format!("{m:?}").to_lowercase(),
            ),
            false,
        ),
        (
            "HTTPS",
            "GATEWAY_TLS_CERT",
            c.tls_cert
                .as_ref()
                .map_or_else(|| "(none)".into(), |p| p.display().to_string()),
            false,
        ),
        ("HTTPS", "GATEWAY_TLS_KEY", set(c.tls_key.is_some()), true),
        (
            "HTTPS",
            "GATEWAY_TLS_NAMES",
            list(c.tls_names.as_deref().unwrap_or_default()),
            false,
        ),
        (
            "HTTPS",
            "GATEWAY_TLS_DIR",
            c.tls_dir().display().to_string(),
            false,
        ),
        (
            "HTTPS",
            "GATEWAY_ACME_DOMAINS",
            list(&c.acme_domains),
            false,
        ),
        (
            "HTTPS",
            "GATEWAY_ACME_EMAIL",
            c.acme_email.clone().unwrap_or_else(|| "(none)".into()),
            false,
        ),
        (
            "HTTPS",
            "GATEWAY_ACME_DIRECTORY",
            c.acme_directory.clone(),
            false,
        ),
        (
            "HTTPS",
            "GATEWAY_HTTP_LISTEN",
            c.http_listen
                .map_or_else(|| "(none)".into(), |a| a.to_string()),
            false,
        ),
        ("Store", "GATEWAY_DB", crate::store::redact(&c.db), false),
        (
            "Store",
            "GATEWAY_USAGE_RECORDING",
            c.usage_recording.to_string(),
            false,
        ),
        (
            "Store",
            "GATEWAY_USAGE_QUEUE",
            c.usage_queue.to_string(),
            false,
        ),
        (
            "Store",
            "GATEWAY_USAGE_RETENTION",
            secs(c.usage_retention),
            false,
        ),
        (
            "Console",
            "GATEWAY_CONSOLE_SESSION",
            secs(c.console_session),
            false,
        ),
    ]
}

/// `GET /admin/settings`.
pub async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    let mut body = String::from(
        "<p class=\"lead\">The configuration this gateway started with (environment variables and flags; see <code>ollama-gateway --help</code>). Read-only: change it where the gateway is started. Secrets show only whether they are set.</p>",
    );
    let mut group = "";
    for (g, name, value, secret) in rows(&state.config, state.tls.is_some()) {
        if g != group {
            if !group.is_empty() {
                body.push_str("</tbody></table></section>");
            }
            group = g;
            let _ = write!(
                body,
                "<section class=\"card settings\"><h2>{g}</h2><table><thead><tr><th scope=\"col\">Setting</th><th scope=\"col\">Value</th></tr></thead><tbody>"
            );
        }
        let value = if secret {
            format!(
                "<span class=\"badge {}\">{}</span>",
                if value.starts_with("set") {
                    "good"
                } else {
                    "muted"
                },
                esc(&value)
            )
        } else {
            format!("<code>{}</code>", esc(&value))
        };
        let _ = write!(
            body,
            "<tr><th scope=\"row\"><code>{name}</code></th><td>{value}</td></tr>"
        );
    }
    body.push_str("</tbody></table></section>");
    framed(
        StatusCode::OK,
        "Settings",
        &session,
        "/admin/settings",
        &body,
    )
}
