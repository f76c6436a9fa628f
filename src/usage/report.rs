//! Usage totals for the admin API and the CLI: records (and, past the retention, hourly totals)
//! grouped by any of key, user, model, route, day and hour, with latency and time-to-first-token
//! percentiles where the records still exist.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::error::GatewayError;
use crate::store::{HourlyTotals, Store, UsageRecord, from_millis, millis};

/// What rows may be grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Key,
    User,
    Model,
    Route,
    Day,
    Hour,
}

impl GroupBy {
    /// `key,model` → the dimensions, or a 400 naming `group_by`.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, GatewayError> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let dim = match part {
                "key" => Self::Key,
                "user" => Self::User,
                "model" => Self::Model,
                "route" => Self::Route,
                "day" => Self::Day,
                "hour" => Self::Hour,
                other => {
                    return Err(GatewayError::invalid(
                        "group_by",
                        format!(
                            "group_by: unknown '{other}' (use key, user, model, route, day, hour)"
                        ),
                    ));
                }
            };
            if !out.contains(&dim) {
                out.push(dim);
            }
        }
        Ok(out)
    }

    fn columns(self) -> &'static [&'static str] {
        match self {
            Self::Key => &["key_id", "key"],
            Self::User => &["user"],
            Self::Model => &["model"],
            Self::Route => &["route"],
            Self::Day => &["day"],
            Self::Hour => &["hour"],
        }
    }
}

/// The metric columns of every row, in order.
pub const METRICS: &[&str] = &[
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "errors",
    "latency_ms_p50",
    "latency_ms_p95",
    "latency_ms_p99",
    "ttft_ms_p50",
    "ttft_ms_p95",
];

/// Parse `from`/`to`: RFC 3339, or a date (midnight UTC).
pub fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>, GatewayError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .ok_or_else(|| {
            GatewayError::invalid(
                field,
                format!("{field}: use RFC 3339 (2026-01-31T00:00:00Z) or a date (2026-01-31)"),
            )
        })
}

#[derive(Default)]
struct Totals {
    requests: u64,
    prompt: u64,
    completion: u64,
    errors: u64,
    latencies: Vec<f64>,
    ttfts: Vec<f64>,
}

/// One row's dimensions, the way they are grouped.
type Dims = Vec<Option<String>>;

fn day(at_ms: i64) -> String {
    from_millis(at_ms).format("%Y-%m-%d").to_string()
}

fn hour(at_ms: i64) -> String {
    from_millis(at_ms).format("%Y-%m-%dT%H:00:00Z").to_string()
}

#[derive(Clone, Copy)]
struct View<'a> {
    at: i64,
    key_id: Option<&'a str>,
    key: &'a str,
    user: Option<&'a str>,
    model: Option<&'a str>,
    route: &'a str,
}

fn dims(group_by: &[GroupBy], v: View<'_>) -> Dims {
    let mut out = Vec::new();
    for g in group_by {
        match g {
            GroupBy::Key => {
                out.push(v.key_id.map(str::to_owned));
                out.push(Some(v.key.to_owned()));
            }
            GroupBy::User => out.push(v.user.map(str::to_owned)),
            GroupBy::Model => out.push(v.model.map(str::to_owned)),
            GroupBy::Route => out.push(Some(v.route.to_owned())),
            GroupBy::Day => out.push(Some(day(v.at))),
            GroupBy::Hour => out.push(Some(hour(v.at))),
        }
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let value = sorted[rank.clamp(1, sorted.len()) - 1];
    Some((value * 1000.0).round() / 1000.0)
}

/// Group records and hourly totals into rows (JSON objects with the grouped columns first).
pub fn aggregate(
    group_by: &[GroupBy],
    records: &[UsageRecord],
    hourly: &[HourlyTotals],
) -> Vec<Map<String, Value>> {
    let mut groups: BTreeMap<Dims, Totals> = BTreeMap::new();
    for r in records {
        let view = View {
            at: r.at,
            key_id: r.key_id.as_deref(),
            key: &r.key_name,
            user: r.user.as_deref(),
            model: r.model.as_deref(),
            route: &r.route,
        };
        let t = groups.entry(dims(group_by, view)).or_default();
        t.requests += 1;
        t.prompt += r.prompt_tokens;
        t.completion += r.completion_tokens;
        t.errors += u64::from(r.is_error());
        t.latencies.push(r.total_ms);
        if let Some(ttft) = r.ttft_ms {
            t.ttfts.push(ttft);
        }
    }
    for h in hourly {
        let view = View {
            at: h.hour * 1000,
            key_id: h.key_id.as_deref(),
            key: &h.key_name,
            user: h.user.as_deref(),
            model: h.model.as_deref(),
            route: &h.route,
        };
        let t = groups.entry(dims(group_by, view)).or_default();
        t.requests += h.requests;
        t.prompt += h.prompt_tokens;
        t.completion += h.completion_tokens;
        t.errors += h.errors;
    }
    let columns: Vec<&str> = group_by.iter().flat_map(|g| g.columns()).copied().collect();
    groups
        .into_iter()
        .map(|(dims, mut t)| {
            t.latencies.sort_by(f64::total_cmp);
            t.ttfts.sort_by(f64::total_cmp);
            let mut row = Map::new();
            for (column, value) in columns.iter().zip(dims) {
                row.insert((*column).to_owned(), json!(value));
            }
            row.insert("requests".into(), json!(t.requests));
            row.insert("prompt_tokens".into(), json!(t.prompt));
            row.insert("completion_tokens".into(), json!(t.completion));
            row.insert("total_tokens".into(), json!(t.prompt + t.completion));
            row.insert("errors".into(), json!(t.errors));
            row.insert(
                "latency_ms_p50".into(),
                json!(percentile(&t.latencies, 50.0)),
            );
            row.insert(
                "latency_ms_p95".into(),
                json!(percentile(&t.latencies, 95.0)),
            );
            row.insert(
                "latency_ms_p99".into(),
                json!(percentile(&t.latencies, 99.0)),
            );
            row.insert("ttft_ms_p50".into(), json!(percentile(&t.ttfts, 50.0)));
            row.insert("ttft_ms_p95".into(), json!(percentile(&t.ttfts, 95.0)));
            row
        })
        .collect()
}

/// The column names of rows grouped by `group_by`.
pub fn columns(group_by: &[GroupBy]) -> Vec<&'static str> {
    group_by
        .iter()
        .flat_map(|g| g.columns())
        .chain(METRICS)
        .copied()
        .collect()
}

/// Rows for `[from, to)`: records where they are kept, hourly totals before that.
pub async fn query(
    store: &Store,
    group_by: &[GroupBy],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    kept_since: DateTime<Utc>,
) -> Result<Vec<Map<String, Value>>, GatewayError> {
    // Records are read from the first whole hour that retention has not touched; hours before
    // it come from the hourly totals, which hold every record of those hours.
    let boundary = (millis(kept_since).div_euclid(3_600_000) + 1) * 3_600_000;
    let (from, to) = (millis(from), millis(to));
    let records = if to > boundary.max(from) {
        store.usage(boundary.max(from), to).await?
    } else {
        Vec::new()
    };
    let hourly = if from < boundary {
        store.hourly(from, boundary.min(to)).await?
    } else {
        Vec::new()
    };
    Ok(aggregate(group_by, &records, &hourly))
}

/// Rows as CSV, a header line first.
pub fn to_csv(columns: &[&str], rows: &[Map<String, Value>]) -> String {
    let mut out = columns.join(",");
    out.push('\n');
    for row in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match row.get(*c) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => csv_cell(s),
                Some(other) => other.to_string(),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn csv_cell(text: &str) -> String {
    // A leading =, +, - or @ would be a formula in a spreadsheet.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        at: i64,
        key: &str,
        model: &str,
        prompt: u64,
        completion: u64,
        ms: f64,
    ) -> UsageRecord {
        UsageRecord {
            at,
            key_id: Some(format!("id-{key}")),
            key_name: key.into(),
            model: Some(model.into()),
            route: "/v1/chat/completions".into(),
            status: 200,
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_ms: ms,
            ..UsageRecord::default()
        }
    }

    #[test]
    fn rows_group_and_sum_records_and_hourly_totals() {
        let records = [
            record(0, "a", "m1", 1, 2, 10.0),
            record(1, "a", "m2", 3, 4, 30.0),
            record(2, "b", "m1", 5, 6, 20.0),
        ];
        let hourly = [HourlyTotals {
            hour: 0,
            key_id: Some("id-a".into()),
            key_name: "a".into(),
            requests: 2,
            prompt_tokens: 10,
            completion_tokens: 20,
            ..HourlyTotals::default()
        }];
        let rows = aggregate(&[GroupBy::Key], &records, &hourly);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["key"], "a");
        assert_eq!(rows[0]["requests"], 4);
        assert_eq!(rows[0]["total_tokens"], 40);
        assert_eq!(rows[0]["latency_ms_p50"], 10.0);
        let all = aggregate(&[], &records, &[]);
        assert_eq!(all[0]["prompt_tokens"], 9);
        assert_eq!(all[0]["latency_ms_p99"], 30.0);
        let csv = to_csv(
            &columns(&[GroupBy::Model]),
            &aggregate(&[GroupBy::Model], &records, &[]),
        );
        assert!(csv.starts_with("model,requests,"), "{csv}");
        assert_eq!(csv.lines().count(), 3);
    }

    #[test]
    fn bad_group_by_names_the_field() {
        assert_eq!(
            GroupBy::parse_list("day, model").ok(),
            Some(vec![GroupBy::Day, GroupBy::Model])
        );
        let err = GroupBy::parse_list("colour").err();
        assert!(
            matches!(err, Some(GatewayError::InvalidRequest { param: Some(p), .. }) if p == "group_by")
        );
    }
}
