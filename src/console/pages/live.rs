//! The Live page: requests in flight and open streams by key and model, refusals of the last
//! minutes by reason, and the backend's health. The page's script fetches the panels again
//! every few seconds (`GET /admin/live/panels`) and swaps them in, without a reload.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::framed;
use crate::console::charts::inline_bar;
use crate::console::html::{Html, esc, thousands};
use crate::console::session::Session;
use crate::state::AppState;
use crate::usage::live::REFUSAL_MINUTES;

/// Seconds between refreshes.
pub const REFRESH_SECONDS: u32 = 3;

/// The panels (also what a refresh fetches).
pub async fn panels_html(state: &AppState) -> String {
    let in_flight = state.usage.live.in_flight("/admin/");
    let minute = state.usage.now_millis().div_euclid(60_000);
    let refusals = state.usage.live.refusals(minute);
    let streams = in_flight.iter().filter(|r| r.streaming).count();
    let reach = state.backends.reachability().await;
    let mut out = String::new();
    let _ = write!(
        out,
        "<div class=\"tiles\"><div class=\"tile\"><span class=\"tile-label\">In flight</span><strong data-metric=\"in-flight\">{}</strong><small>requests being answered</small></div>\
         <div class=\"tile\"><span class=\"tile-label\">Open streams</span><strong data-metric=\"streams\">{streams}</strong><small>SSE and NDJSON answers</small></div>\
         <div class=\"tile\"><span class=\"tile-label\">Refused</span><strong data-metric=\"refused\">{}</strong><small>last {REFUSAL_MINUTES} minutes</small></div>\
         <div class=\"tile\"><span class=\"tile-label\">Backend</span><strong class=\"{}\" data-metric=\"backend\">{}</strong><small>{}</small></div></div>",
        in_flight.len(),
        thousands(refusals.iter().map(|r| r.total).sum()),
        if reach.is_up() {
            "good-text"
        } else {
            "bad-text"
        },
        if reach.is_up() { "up" } else { "down" },
        reach.version().map_or_else(
            || "Ollama does not answer".to_owned(),
            |v| format!("Ollama {}", esc(v))
        ),
    );
    // Each backend's health, when there are several (one is the tile above).
    let backends = state.backends.all();
    if backends.len() > 1 {
        out.push_str("<section class=\"card\"><h2>Backends</h2><div class=\"table-wrap\"><table class=\"compact\" id=\"backends\"><thead><tr><th scope=\"col\">Backend</th><th scope=\"col\">Health</th><th scope=\"col\" class=\"num\">In flight</th></tr></thead><tbody>");
        for backend in backends {
            let (class, word) = if backend.is_healthy() {
                ("good-text", "up")
            } else {
                ("bad-text", "out")
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"{class}\">{word}</td><td class=\"num\">{}</td></tr>",
                esc(&backend.name),
                backend.in_flight()
            );
        }
        out.push_str("</tbody></table></div></section>");
    }
    // In flight, grouped by key and model.
    let mut groups: BTreeMap<(String, String), (usize, usize, f64)> = BTreeMap::new();
    for r in &in_flight {
        let g = groups.entry((r.key.clone(), r.model.clone())).or_default();
        g.0 += 1;
        g.1 += usize::from(r.streaming);
        g.2 = g.2.max(r.seconds);
    }
    out.push_str("<div class=\"two\"><section class=\"card\"><h2>In flight by key and model</h2><div class=\"table-wrap\"><table class=\"compact\" id=\"in-flight\"><thead><tr><th scope=\"col\">Key</th><th scope=\"col\">Model</th><th scope=\"col\" class=\"num\">Requests</th><th scope=\"col\" class=\"num\">Streams</th><th scope=\"col\" class=\"num\">Longest</th></tr></thead><tbody>");
    if groups.is_empty() {
        out.push_str("<tr><td colspan=\"5\" class=\"muted\">Nothing in flight.</td></tr>");
    }
    for ((key, model), (n, s, longest)) in &groups {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{n}</td><td class=\"num\">{s}</td><td class=\"num\">{longest:.1} s</td></tr>",
            esc(key),
            esc(model)
        );
    }
    out.push_str("</tbody></table></div></section>");
    // Refusals by reason, with a bar per minute.
    let max = refusals
        .iter()
        .flat_map(|r| r.per_minute.iter())
        .copied()
        .max()
        .unwrap_or(0) as f64;
    let _ = write!(
        out,
        "<section class=\"card\"><h2>Refusals in the last {REFUSAL_MINUTES} minutes</h2><div class=\"table-wrap\"><table class=\"compact\" id=\"refusals\"><thead><tr><th scope=\"col\">Reason</th><th scope=\"col\" class=\"num\">Total</th><th scope=\"col\">Per minute (oldest first)</th></tr></thead><tbody>"
    );
    if refusals.is_empty() {
        out.push_str("<tr><td colspan=\"3\" class=\"muted\">No refusals.</td></tr>");
    }
    for r in &refusals {
        let mut spark = String::from(
            "<svg class=\"spark\" viewBox=\"0 0 150 24\" preserveAspectRatio=\"none\" aria-hidden=\"true\">",
        );
        for (i, n) in r.per_minute.iter().enumerate() {
            let h = if max > 0.0 {
                *n as f64 / max * 22.0
            } else {
                0.0
            };
            let _ = write!(
                spark,
                "<rect class=\"s3\" x=\"{}\" y=\"{:.1}\" width=\"8\" height=\"{:.1}\"><title>{n}</title></rect>",
                i * 10,
                24.0 - h.max(if *n > 0 { 1.0 } else { 0.0 }),
                h.max(if *n > 0 { 1.0 } else { 0.0 })
            );
        }
        spark.push_str("</svg>");
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td>{spark}</td></tr>",
            esc(r.reason),
            thousands(r.total)
        );
    }
    out.push_str("</tbody></table></div></section></div>");
    // Each request in flight.
    out.push_str("<section class=\"card\"><h2>Requests in flight</h2><div class=\"table-wrap\"><table class=\"compact\"><thead><tr><th scope=\"col\">Route</th><th scope=\"col\">Key</th><th scope=\"col\">Model</th><th scope=\"col\">Kind</th><th scope=\"col\" class=\"num\">Running</th><th scope=\"col\"><span class=\"sr-only\">Age</span></th></tr></thead><tbody>");
    if in_flight.is_empty() {
        out.push_str("<tr><td colspan=\"6\" class=\"muted\">Nothing in flight.</td></tr>");
    }
    let oldest = in_flight.first().map_or(0.0, |r| r.seconds);
    for r in in_flight.iter().take(100) {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.1} s</td><td class=\"share\">{}</td></tr>",
            esc(&r.route),
            esc(&r.key),
            esc(&r.model),
            if r.streaming {
                "<span class=\"badge accent\">stream</span>"
            } else {
                "request"
            },
            r.seconds,
            inline_bar(r.seconds, oldest, "s1"),
        );
    }
    out.push_str("</tbody></table></div></section>");
    out
}

/// `GET /admin/live`.
pub async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    let panels = panels_html(&state).await;
    let body = format!(
        "<p class=\"lead\">Refreshed every {REFRESH_SECONDS} s without reloading the page. <span class=\"muted\" id=\"live-status\" aria-live=\"polite\"></span></p><div id=\"live-panels\" data-refresh=\"/admin/live/panels\" data-every=\"{REFRESH_SECONDS}\">{panels}</div>"
    );
    framed(StatusCode::OK, "Live", &session, "/admin/live", &body)
}

/// `GET /admin/live/panels`: the panels alone, for the refresh.
pub async fn panels(
    State(state): State<AppState>,
    Extension(_session): Extension<Session>,
) -> Response {
    Html(StatusCode::OK, panels_html(&state).await).into_response()
}
