//! The Usage page: for a range (last hour, day, 7 days, 30 days or custom), tokens over time
//! stacked by key or by model, requests by status, latency and time-to-first-token
//! percentiles, the top keys and models, a table of the same numbers and its CSV.
//!
//! Where the numbers come from, so that a month of a busy gateway still renders quickly:
//! the last hour (and custom ranges up to three hours) from the records themselves, by minute;
//! up to two days from the hourly totals and per-hour `usage_stats` rows, on whole hours;
//! longer ranges from the daily totals and per-day `usage_stats` rows, on whole days (the page
//! says which).
//! Percentiles are read from histograms with two significant digits: within 5 %.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;

use super::{failure, framed};
use crate::console::charts::{Series, inline_bar, stacked_bars};
use crate::console::html::{Errors, Field, esc, millis, thousands};
use crate::console::session::Session;
use crate::error::GatewayError;
use crate::state::AppState;
use crate::store::console::{
    DAY, HOUR, STREAM_FAILED, SeriesBy, SeriesPoint, StatCount, StatKind, bucket_middle_ms,
    status_bucket, time_bucket,
};
use crate::store::{UsageRecord, millis as ms_of};

const PAGE: &str = "/admin/usage";
/// Series drawn on their own; the rest are summed as "other".
const TOP_SERIES: usize = 8;

/// The page's query.
#[derive(Debug, Default, Deserialize)]
pub struct UsageQuery {
    range: Option<String>,
    by: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// Where the numbers of a window are read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The records, by minute.
    Records,
    /// Hourly totals and per-hour stats.
    Hour,
    /// Daily totals and per-day stats.
    Day,
}

/// The range shown.
#[derive(Clone, Debug)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub resolution: Resolution,
    /// Seconds per bar of the token chart.
    pub bucket: i64,
    /// The range's key (`hour`, `day`, `7d`, `30d`, `custom`).
    pub range: String,
}

fn floor(at: DateTime<Utc>, step: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(at.timestamp().div_euclid(step) * step, 0)
        .single()
        .unwrap_or(at)
}

fn parse_when(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Some(at.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

/// The window of a query at `now`, or the errors of its custom fields.
pub fn window(query: &UsageQuery, now: DateTime<Utc>) -> Result<Window, Errors> {
    let range = query.range.as_deref().unwrap_or("day");
    let hour_end = floor(now, HOUR) + Duration::hours(1);
    let day_end = floor(now, DAY) + Duration::days(1);
    let made = |from, to, resolution, bucket| Window {
        from,
        to,
        resolution,
        bucket,
        range: range.to_owned(),
    };
    Ok(match range {
        "hour" => made(now - Duration::hours(1), now, Resolution::Records, 60),
        "7d" => made(day_end - Duration::days(7), day_end, Resolution::Day, DAY),
        "30d" => made(day_end - Duration::days(30), day_end, Resolution::Day, DAY),
        "custom" => {
            let mut errors = Errors::default();
            let from = query.from.as_deref().and_then(parse_when);
            let to = query.to.as_deref().and_then(parse_when);
            if from.is_none() {
                errors.add("from", "a date and time (UTC), e.g. 2026-11-01T00:00");
            }
            if to.is_none() {
                errors.add("to", "a date and time (UTC), e.g. 2026-11-02T00:00");
            }
            let (Some(from), Some(to)) = (from, to) else {
                return Err(errors);
            };
            if to <= from {
                errors.add("to", "must be after the start");
                return Err(errors);
            }
            let span = to - from;
            if span <= Duration::hours(3) {
                made(from, to, Resolution::Records, 60)
            } else if span <= Duration::days(2) {
                let end = floor(to - Duration::seconds(1), HOUR) + Duration::hours(1);
                made(floor(from, HOUR), end, Resolution::Hour, HOUR)
            } else {
                let end = floor(to - Duration::seconds(1), DAY) + Duration::days(1);
                made(floor(from, DAY), end, Resolution::Day, DAY)
            }
        }
        _ => Window {
            range: "day".into(),
            ..made(
                hour_end - Duration::hours(24),
                hour_end,
                Resolution::Hour,
                HOUR,
            )
        },
    })
}

/// Everything the page draws, for one window.
#[derive(Debug, Default)]
pub struct UsageData {
    pub by_key: Vec<SeriesPoint>,
    pub by_model: Vec<SeriesPoint>,
    /// Requests by status per stats bucket (`start` = its start).
    pub status: Vec<StatCount>,
    /// Seconds per status bucket.
    pub status_bucket: i64,
    /// Latency and TTFT histograms (and status totals) over the window.
    pub totals: Vec<StatCount>,
}

/// Records grouped as the stored aggregates would be, by minute.
fn from_records(records: &[UsageRecord], bucket: i64) -> UsageData {
    let mut by_key: HashMap<(i64, Option<String>, String), SeriesPoint> = HashMap::new();
    let mut by_model: HashMap<(i64, String), SeriesPoint> = HashMap::new();
    let mut status: HashMap<(i64, u64), u64> = HashMap::new();
    let mut totals: HashMap<(StatKind, u64), u64> = HashMap::new();
    for r in records {
        let start = r.at.div_euclid(bucket * 1000) * bucket;
        let add = |p: &mut SeriesPoint| {
            p.prompt_tokens += r.prompt_tokens;
            p.completion_tokens += r.completion_tokens;
            p.requests += 1;
            p.errors += u64::from(r.is_error());
        };
        add(by_key
            .entry((start, r.key_id.clone(), r.key_name.clone()))
            .or_insert_with(|| SeriesPoint {
                start,
                label: r.key_name.clone(),
                key_id: r.key_id.clone(),
                ..SeriesPoint::default()
            }));
        let model = r.model.clone().unwrap_or_default();
        add(by_model
            .entry((start, model.clone()))
            .or_insert_with(|| SeriesPoint {
                start,
                label: model,
                ..SeriesPoint::default()
            }));
        *status.entry((start, status_bucket(r))).or_default() += 1;
        let micros = |ms: f64| time_bucket((ms.max(0.0) * 1000.0) as u64);
        *totals
            .entry((StatKind::Latency, micros(r.total_ms)))
            .or_default() += 1;
        if let Some(ttft) = r.ttft_ms {
            *totals.entry((StatKind::Ttft, micros(ttft))).or_default() += 1;
        }
    }
    UsageData {
        by_key: by_key.into_values().collect(),
        by_model: by_model.into_values().collect(),
        status: status
            .into_iter()
            .map(|((start, bucket), count)| StatCount {
                start,
                kind: StatKind::Status,
                bucket,
                count,
            })
            .collect(),
        status_bucket: bucket,
        totals: totals
            .into_iter()
            .map(|((kind, bucket), count)| StatCount {
                start: 0,
                kind,
                bucket,
                count,
            })
            .collect(),
    }
}

/// Read a window's numbers from the store.
pub async fn load(state: &AppState, w: &Window) -> Result<UsageData, GatewayError> {
    let (from, to) = (w.from.timestamp(), w.to.timestamp());
    if w.resolution == Resolution::Records {
        let records = state.store.usage(ms_of(w.from), ms_of(w.to)).await?;
        return Ok(from_records(&records, w.bucket));
    }
    let period = if w.resolution == Resolution::Hour {
        HOUR
    } else {
        DAY
    };
    let store = &state.store;
    let (by_key, by_model, status, totals) = tokio::try_join!(
        store.usage_series(SeriesBy::Key, from, to, w.bucket),
        store.usage_series(SeriesBy::Model, from, to, w.bucket),
        store.status_series(period, from, to),
        store.stat_totals(period, from, to),
    )?;
    Ok(UsageData {
        by_key,
        by_model,
        status,
        status_bucket: period,
        totals,
    })
}

/// Percentiles `ps` (0..100) of a histogram of `kind`, in milliseconds.
pub fn percentiles(totals: &[StatCount], kind: StatKind, ps: &[f64]) -> Vec<Option<f64>> {
    let mut buckets: Vec<(u64, u64)> = totals
        .iter()
        .filter(|c| c.kind == kind)
        .map(|c| (c.bucket, c.count))
        .collect();
    buckets.sort_unstable();
    let n: u64 = buckets.iter().map(|(_, c)| c).sum();
    ps.iter()
        .map(|p| {
            if n == 0 {
                return None;
            }
            let rank = ((p / 100.0) * n as f64).ceil().max(1.0) as u64;
            let mut seen = 0;
            buckets.iter().find_map(|(bucket, count)| {
                seen += count;
                (seen >= rank).then(|| bucket_middle_ms(*bucket))
            })
        })
        .collect()
}

/// Labels of the buckets of `[from, to)` every `step` seconds.
fn bucket_labels(from: i64, to: i64, step: i64) -> Vec<(i64, String)> {
    let format = if step < HOUR {
        "%H:%M"
    } else if step < 6 * HOUR {
        "%H:00"
    } else if step < DAY {
        "%a %H:00"
    } else {
        "%b %d"
    };
    let mut out = Vec::new();
    let mut at = from.div_euclid(step) * step;
    while at < to {
        let label = Utc
            .timestamp_opt(at, 0)
            .single()
            .map(|t| t.format(format).to_string())
            .unwrap_or_default();
        out.push((at, label));
        at += step;
    }
    out
}

/// One row of the top tables.
#[derive(Debug, Default, Clone)]
pub struct Top {
    pub label: String,
    pub key_id: Option<String>,
    pub requests: u64,
    pub prompt: u64,
    pub completion: u64,
    pub errors: u64,
}

impl Top {
    fn tokens(&self) -> u64 {
        self.prompt + self.completion
    }
}

/// Totals per label, most tokens first.
pub fn tops(points: &[SeriesPoint]) -> Vec<Top> {
    let mut by: HashMap<(Option<&str>, &str), Top> = HashMap::new();
    for p in points {
        let t = by
            .entry((p.key_id.as_deref(), p.label.as_str()))
            .or_insert_with(|| Top {
                label: p.label.clone(),
                key_id: p.key_id.clone(),
                ..Top::default()
            });
        t.requests += p.requests;
        t.prompt += p.prompt_tokens;
        t.completion += p.completion_tokens;
        t.errors += p.errors;
    }
    let mut out: Vec<Top> = by.into_values().collect();
    out.sort_by(|a, b| {
        b.tokens()
            .cmp(&a.tokens())
            .then(b.requests.cmp(&a.requests))
            .then(a.label.cmp(&b.label))
    });
    out
}

fn label_of(label: &str) -> String {
    if label.is_empty() {
        "(no model)".into()
    } else {
        label.to_owned()
    }
}

/// The stacked series of the top labels and "other", on the window's buckets.
fn token_series(
    points: &[SeriesPoint],
    top: &[Top],
    buckets: &[(i64, String)],
    step: i64,
) -> Vec<Series> {
    let first = buckets.first().map_or(0, |b| b.0);
    let shown: Vec<&Top> = top.iter().take(TOP_SERIES).collect();
    let mut series: Vec<Series> = shown
        .iter()
        .map(|t| Series {
            label: label_of(&t.label),
            values: vec![0.0; buckets.len()],
        })
        .collect();
    let mut other = Series {
        label: "other".into(),
        values: vec![0.0; buckets.len()],
    };
    for p in points {
        let Ok(slot) = usize::try_from((p.start - first).div_euclid(step)) else {
            continue;
        };
        let tokens = (p.prompt_tokens + p.completion_tokens) as f64;
        let target = shown
            .iter()
            .position(|t| t.label == p.label && t.key_id == p.key_id)
            .and_then(|i| series.get_mut(i))
            .unwrap_or(&mut other);
        if let Some(v) = target.values.get_mut(slot) {
            *v += tokens;
        }
    }
    if other.values.iter().any(|v| *v > 0.0) {
        series.push(other);
    }
    series
}

fn status_class(bucket: u64) -> &'static str {
    match bucket {
        STREAM_FAILED => "stream failed",
        200..=399 => "2xx/3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

fn status_series(status: &[StatCount], buckets: &[(i64, String)], step: i64) -> Vec<Series> {
    let first = buckets.first().map_or(0, |b| b.0);
    let classes = ["2xx/3xx", "4xx", "5xx", "stream failed"];
    let mut series: Vec<Series> = classes
        .iter()
        .map(|c| Series {
            label: (*c).into(),
            values: vec![0.0; buckets.len()],
        })
        .collect();
    for c in status {
        let Ok(slot) = usize::try_from((c.start - first).div_euclid(step)) else {
            continue;
        };
        let class = status_class(c.bucket);
        if let Some(v) = classes
            .iter()
            .position(|k| *k == class)
            .and_then(|i| series.get_mut(i))
            .and_then(|s| s.values.get_mut(slot))
        {
            *v += c.count as f64;
        }
    }
    series
}

fn range_links(w: &Window, by: &str) -> String {
    let mut out = String::from("<nav class=\"segmented\" aria-label=\"Range\">");
    for (range, label) in [
        ("hour", "Last hour"),
        ("day", "Last 24 hours"),
        ("7d", "7 days"),
        ("30d", "30 days"),
    ] {
        let current = if w.range == range {
            " aria-current=\"true\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<a href=\"/admin/usage?range={range}&amp;by={by}\"{current}>{label}</a>"
        );
    }
    out.push_str("</nav>");
    out
}

fn query_string(w: &Window, by: &str) -> String {
    if w.range == "custom" {
        format!(
            "range=custom&by={by}&from={}&to={}",
            w.from.format("%Y-%m-%dT%H:%M"),
            w.to.format("%Y-%m-%dT%H:%M")
        )
    } else {
        format!("range={}&by={by}", w.range)
    }
}

fn custom_form(query: &UsageQuery, by: &str, errors: &Errors) -> String {
    format!(
        "<form method=\"get\" action=\"/admin/usage\" class=\"custom-range\" novalidate><input type=\"hidden\" name=\"range\" value=\"custom\"><input type=\"hidden\" name=\"by\" value=\"{}\">{}{}<button type=\"submit\">Show</button></form>",
        esc(by),
        Field::text(
            "from",
            "From (UTC)",
            query.from.as_deref().unwrap_or_default()
        )
        .kind("datetime-local")
        .render("range", errors),
        Field::text("to", "To (UTC)", query.to.as_deref().unwrap_or_default())
            .kind("datetime-local")
            .render("range", errors),
    )
}

fn top_table(title: &str, rows: &[Top], what: &str) -> String {
    let max = rows.first().map_or(0, Top::tokens) as f64;
    let mut out = format!(
        "<section class=\"card\"><h2>{}</h2><div class=\"table-wrap\"><table class=\"top\"><thead><tr><th scope=\"col\">{}</th><th scope=\"col\" class=\"num\">Requests</th><th scope=\"col\" class=\"num\">Prompt</th><th scope=\"col\" class=\"num\">Completion</th><th scope=\"col\" class=\"num\">Tokens</th><th scope=\"col\" class=\"num\">Errors</th><th scope=\"col\"><span class=\"sr-only\">Share</span></th></tr></thead><tbody>",
        esc(title),
        esc(what)
    );
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"7\" class=\"muted\">No requests in this range.</td></tr>");
    }
    for (i, t) in rows.iter().take(10).enumerate() {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\"><strong>{}</strong></td><td class=\"num\">{}</td><td class=\"share\">{}</td></tr>",
            esc(&label_of(&t.label)),
            thousands(t.requests),
            thousands(t.prompt),
            thousands(t.completion),
            thousands(t.tokens()),
            thousands(t.errors),
            inline_bar(
                t.tokens() as f64,
                max,
                &format!("s{}", i.min(TOP_SERIES) % 10)
            ),
        );
    }
    out.push_str("</tbody></table></div></section>");
    out
}

fn tiles(totals: &[StatCount], requests: u64, tokens: u64, errors: u64) -> String {
    let ps = [50.0, 95.0, 99.0];
    let latency = percentiles(totals, StatKind::Latency, &ps);
    let ttft = percentiles(totals, StatKind::Ttft, &ps);
    let shown = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), millis);
    let mut out = String::from("<div class=\"tiles\">");
    let _ = write!(
        out,
        "<div class=\"tile\"><span class=\"tile-label\">Requests</span><strong data-metric=\"requests\">{}</strong><small>{} errors</small></div>\
         <div class=\"tile\"><span class=\"tile-label\">Tokens</span><strong data-metric=\"tokens\">{}</strong><small>prompt + completion</small></div>",
        thousands(requests),
        thousands(errors),
        thousands(tokens),
    );
    for (name, values) in [("Latency", &latency), ("Time to first token", &ttft)] {
        let _ = write!(
            out,
            "<div class=\"tile\"><span class=\"tile-label\">{name}</span><dl class=\"pcts\"><div><dt>p50</dt><dd>{}</dd></div><div><dt>p95</dt><dd>{}</dd></div><div><dt>p99</dt><dd>{}</dd></div></dl></div>",
            shown(values[0]),
            shown(values[1]),
            shown(values[2]),
        );
    }
    out.push_str("</div>");
    out
}

fn status_table(status: &[StatCount]) -> String {
    let mut by: HashMap<u64, u64> = HashMap::new();
    for c in status {
        *by.entry(c.bucket).or_default() += c.count;
    }
    let mut rows: Vec<(u64, u64)> = by.into_iter().collect();
    rows.sort_unstable();
    let mut out = String::from(
        "<table class=\"compact\"><thead><tr><th scope=\"col\">Status</th><th scope=\"col\" class=\"num\">Requests</th></tr></thead><tbody>",
    );
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"2\" class=\"muted\">None</td></tr>");
    }
    for (bucket, count) in rows {
        let label = if bucket == STREAM_FAILED {
            "200, stream failed".to_owned()
        } else {
            bucket.to_string()
        };
        let _ = write!(
            out,
            "<tr><td>{label}</td><td class=\"num\">{}</td></tr>",
            thousands(count)
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn buckets_table(points: &[SeriesPoint], buckets: &[(i64, String)], step: i64) -> String {
    let first = buckets.first().map_or(0, |b| b.0);
    let mut rows = vec![(0u64, 0u64, 0u64, 0u64); buckets.len()];
    for p in points {
        if let Some(row) = usize::try_from((p.start - first).div_euclid(step))
            .ok()
            .and_then(|i| rows.get_mut(i))
        {
            row.0 += p.requests;
            row.1 += p.prompt_tokens;
            row.2 += p.completion_tokens;
            row.3 += p.errors;
        }
    }
    let mut out = String::from(
        "<details class=\"card\"><summary><h2>The numbers behind the charts</h2></summary><div class=\"table-wrap\"><table class=\"compact\"><thead><tr><th scope=\"col\">From (UTC)</th><th scope=\"col\" class=\"num\">Requests</th><th scope=\"col\" class=\"num\">Prompt</th><th scope=\"col\" class=\"num\">Completion</th><th scope=\"col\" class=\"num\">Errors</th></tr></thead><tbody>",
    );
    for ((at, _), (requests, prompt, completion, errors)) in buckets.iter().zip(rows) {
        let when = Utc
            .timestamp_opt(*at, 0)
            .single()
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr><td>{when}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            thousands(requests),
            thousands(prompt),
            thousands(completion),
            thousands(errors)
        );
    }
    out.push_str("</tbody></table></div></details>");
    out
}

/// The page's HTML body for a window and its data (also what the benchmark renders).
pub fn body(w: &Window, data: &UsageData, by: &str, query: &UsageQuery, errors: &Errors) -> String {
    let (from, to) = (w.from.timestamp(), w.to.timestamp());
    let buckets = bucket_labels(from, to, w.bucket);
    let key_tops = tops(&data.by_key);
    let model_tops = tops(&data.by_model);
    let (points, top) = if by == "model" {
        (&data.by_model, &model_tops)
    } else {
        (&data.by_key, &key_tops)
    };
    let requests: u64 = key_tops.iter().map(|t| t.requests).sum();
    let tokens: u64 = key_tops.iter().map(Top::tokens).sum();
    let errors_total: u64 = key_tops.iter().map(|t| t.errors).sum();
    let status_buckets = bucket_labels(from, to, data.status_bucket);
    let qs = query_string(w, by);
    let mut out = String::new();
    out.push_str("<div class=\"toolbar\">");
    out.push_str(&range_links(w, by));
    let other_by = if by == "model" { "key" } else { "model" };
    let _ = write!(
        out,
        "<a class=\"button\" href=\"/admin/usage?{}\">Split by {other_by}</a><a class=\"button primary\" href=\"/admin/usage.csv?{}\" download>Download CSV</a></div>",
        esc(&query_string(w, other_by)),
        esc(&qs)
    );
    out.push_str(&custom_form(query, by, errors));
    let source = match w.resolution {
        Resolution::Records => "from the records, by minute",
        Resolution::Hour => "whole hours, from the hourly totals",
        Resolution::Day => "whole days, from the daily totals and histograms",
    };
    let _ = write!(
        out,
        "<p class=\"lead\" data-range=\"{}\">{} to {} UTC ({source}).</p>",
        esc(&w.range),
        w.from.format("%Y-%m-%d %H:%M"),
        w.to.format("%Y-%m-%d %H:%M"),
    );
    out.push_str(&tiles(&data.totals, requests, tokens, errors_total));
    let _ = write!(
        out,
        "<section class=\"card\"><h2>Tokens over time, by {}</h2>{}</section>",
        if by == "model" { "model" } else { "key" },
        stacked_bars(
            "Tokens over time",
            &buckets.iter().map(|b| b.1.clone()).collect::<Vec<_>>(),
            &token_series(points, top, &buckets, w.bucket),
            "tokens"
        )
    );
    let _ = write!(
        out,
        "<section class=\"card split\"><div><h2>Requests by status</h2>{}</div><div>{}</div></section>",
        stacked_bars(
            "Requests by status",
            &status_buckets
                .iter()
                .map(|b| b.1.clone())
                .collect::<Vec<_>>(),
            &status_series(&data.status, &status_buckets, data.status_bucket),
            "requests"
        ),
        status_table(&data.status)
    );
    out.push_str("<div class=\"two\">");
    out.push_str(&top_table("Top keys", &key_tops, "Key"));
    out.push_str(&top_table("Top models", &model_tops, "Model"));
    out.push_str("</div>");
    out.push_str(&buckets_table(&data.by_key, &buckets, w.bucket));
    out
}

fn by_of(query: &UsageQuery) -> &'static str {
    if query.by.as_deref() == Some("model") {
        "model"
    } else {
        "key"
    }
}

/// `GET /admin/usage`.
pub async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(query): Query<UsageQuery>,
) -> Response {
    let by = by_of(&query);
    let now = state.usage.quotas.now();
    let (w, errors, status) = match window(&query, now) {
        Ok(w) => (w, Errors::default(), StatusCode::OK),
        Err(errors) => (
            window(&UsageQuery::default(), now).unwrap_or_else(|_| Window {
                from: now - Duration::days(1),
                to: now,
                resolution: Resolution::Hour,
                bucket: HOUR,
                range: "day".into(),
            }),
            errors,
            StatusCode::BAD_REQUEST,
        ),
    };
    let data = match load(&state, &w).await {
        Ok(data) => data,
        Err(err) => return failure(&session, PAGE, &err),
    };
    let html = body(&w, &data, by, &query, &errors);
    framed(status, "Usage", &session, PAGE, &html)
}

/// The CSV of a window: one row per bucket and key (or model), with its totals.
pub fn csv(w: &Window, data: &UsageData, by: &str) -> String {
    let mut points: Vec<&SeriesPoint> = if by == "model" {
        data.by_model.iter().collect()
    } else {
        data.by_key.iter().collect()
    };
    points.sort_by(|a, b| a.start.cmp(&b.start).then(a.label.cmp(&b.label)));
    let mut out = if by == "model" {
        String::from("from,to,model,requests,prompt_tokens,completion_tokens,total_tokens,errors\n")
    } else {
        String::from(
            "from,to,key_id,key,requests,prompt_tokens,completion_tokens,total_tokens,errors\n",
        )
    };
    let time = |s: i64| {
        Utc.timestamp_opt(s, 0)
            .single()
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    for p in points {
        let names = if by == "model" {
            cell(&p.label)
        } else {
            format!(
                "{},{}",
                cell(p.key_id.as_deref().unwrap_or_default()),
                cell(&p.label)
            )
        };
        let _ = writeln!(
            out,
            "{},{},{names},{},{},{},{},{}",
            time(p.start.max(w.from.timestamp())),
            time((p.start + w.bucket).min(w.to.timestamp())),
            p.requests,
            p.prompt_tokens,
            p.completion_tokens,
            p.prompt_tokens + p.completion_tokens,
            p.errors
        );
    }
    out
}

/// A CSV cell: quoted when needed, and never read as a formula by a spreadsheet.
fn cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// `GET /admin/usage.csv`.
pub async fn download(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(query): Query<UsageQuery>,
) -> Response {
    let by = by_of(&query);
    let w = match window(&query, state.usage.quotas.now()) {
        Ok(w) => w,
        Err(errors) => {
            let message = errors
                .0
                .first()
                .map(|(f, m)| format!("{f}: {m}"))
                .unwrap_or_default();
            return failure(&session, PAGE, &GatewayError::invalid("range", message));
        }
    };
    let data = match load(&state, &w).await {
        Ok(data) => data,
        Err(err) => return failure(&session, PAGE, &err),
    };
    let name = format!(
        "attachment; filename=\"usage-{}-{}.csv\"",
        w.from.format("%Y%m%dT%H%M"),
        w.to.format("%Y%m%dT%H%M")
    );
    let mut response = (StatusCode::OK, csv(&w, &data, by)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&name) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        parse_when(text).unwrap_or_default()
    }

    #[test]
    fn ranges_align_to_what_the_aggregates_hold() {
        let now = at("2026-12-01T14:25:00Z");
        let q = |range: &str| UsageQuery {
            range: Some(range.into()),
            ..UsageQuery::default()
        };
        let day = window(&q("day"), now).unwrap_or_else(|_| panic!("day"));
        assert_eq!(
            (day.from, day.to),
            (at("2026-11-30T15:00:00Z"), at("2026-12-01T15:00:00Z"))
        );
        let hour = window(&q("hour"), now).unwrap_or_else(|_| panic!("hour"));
        assert_eq!(hour.resolution, Resolution::Records);
        assert_eq!(hour.from, at("2026-12-01T13:25:00Z"));
        let month = window(&q("30d"), now).unwrap_or_else(|_| panic!("30d"));
        assert_eq!(month.to, at("2026-12-02T00:00:00Z"));
        assert_eq!(month.resolution, Resolution::Day);
        // Ranges of days are whole days in buckets of days: what the daily totals answer.
        let week = window(&q("7d"), now).unwrap_or_else(|_| panic!("7d"));
        let custom = UsageQuery {
            range: Some("custom".into()),
            from: Some("2026-11-03T10:00".into()),
            to: Some("2026-11-08T09:00".into()),
            ..UsageQuery::default()
        };
        let custom = window(&custom, now).unwrap_or_else(|_| panic!("custom"));
        assert_eq!(
            (custom.from, custom.to),
            (at("2026-11-03T00:00:00Z"), at("2026-11-09T00:00:00Z"))
        );
        for w in [&week, &month, &custom] {
            assert_eq!(w.resolution, Resolution::Day);
            assert_eq!(w.bucket, DAY);
            assert_eq!(w.from.timestamp() % DAY, 0);
            assert_eq!(w.to.timestamp() % DAY, 0);
        }
        let bad = UsageQuery {
            range: Some("custom".into()),
            from: Some("yesterday".into()),
            to: Some("2026-12-01".into()),
            ..UsageQuery::default()
        };
        let errors = window(&bad, now).err().unwrap_or_default();
        assert!(errors.of("from").is_some() && errors.of("to").is_none());
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let counts: Vec<StatCount> = (1..=100u64)
            .map(|i| StatCount {
                start: 0,
                kind: StatKind::Latency,
                bucket: time_bucket(i * 1000),
                count: 1,
            })
            .collect();
        let p = percentiles(&counts, StatKind::Latency, &[50.0, 99.0]);
        let p50 = p[0].unwrap_or_default();
        assert!((p50 - 50.0).abs() / 50.0 <= 0.05, "{p50}");
        assert_eq!(percentiles(&counts, StatKind::Ttft, &[50.0]), vec![None]);
    }
}
