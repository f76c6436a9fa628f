//! Prometheus metrics: what an operator watches in front of a GPU.
//!
//! The recorder is process-wide (the `metrics` crate's design), installed once; every gateway
//! in the process (tests start several) renders the same registry.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: sub-millisecond gateway overhead up to five-minute generations.
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
const RATE_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, 1280.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the recorder (once) and return the handle that renders `/metrics`.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_per_second".into()), RATE_BUCKETS)
                });
            match builder.and_then(|b| b.install_recorder()) {
                Ok(handle) => Some(handle),
                Err(err) => {
                    tracing::warn!(error = %err, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// What one finished request contributes.
#[derive(Debug)]
pub struct RequestMetrics<'a> {
    pub route: &'a str,
    pub status: u16,
    pub model: &'a str,
    pub key: &'a str,
    pub total: Duration,
    pub upstream: Option<Duration>,
    pub first_token: Option<Duration>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub refusal: Option<&'a str>,
    pub stream_error: Option<&'a str>,
}

/// Record a finished request.
pub fn record_request(m: &RequestMetrics<'_>) {
    let route = m.route.to_owned();
    // The model name comes from the client: only answered requests may add a label value, so a
    // key holder cannot grow the registry with made-up names.
    let model = if m.status < 400 { m.model } else { "-" }.to_owned();
    let key = m.key.to_owned();
    metrics::counter!("gateway_requests_total", "route" => route.clone(), "status" => m.status.to_string(), "model" => model.clone(), "key" => key.clone()).increment(1);
    metrics::histogram!("gateway_request_duration_seconds", "route" => route.clone())
        .record(m.total.as_secs_f64());
    if let Some(upstream) = m.upstream {
        metrics::histogram!("gateway_upstream_duration_seconds", "route" => route.clone())
            .record(upstream.as_secs_f64());
        let overhead = m.total.saturating_sub(upstream);
        metrics::histogram!("gateway_overhead_seconds", "route" => route.clone())
            .record(overhead.as_secs_f64());
        if let Some(tokens) = m.completion_tokens.filter(|t| *t > 0) {
            let secs = upstream.as_secs_f64();
            if secs > 0.0 {
                metrics::histogram!("gateway_tokens_per_second", "model" => model.clone(), "key" => key.clone()).record(tokens as f64 / secs);
            }
        }
    }
    if let Some(ttft) = m.first_token {
        metrics::histogram!("gateway_time_to_first_token_seconds", "model" => model.clone())
            .record(ttft.as_secs_f64());
    }
    if let Some(tokens) = m.prompt_tokens {
        metrics::counter!("gateway_prompt_tokens_total", "model" => model.clone(), "key" => key.clone()).increment(tokens);
    }
    if let Some(tokens) = m.completion_tokens {
        metrics::counter!("gateway_completion_tokens_total", "model" => model.clone(), "key" => key.clone()).increment(tokens);
    }
    if let Some(reason) = m.refusal {
        metrics::counter!("gateway_refused_total", "reason" => reason.to_owned()).increment(1);
    }
    let upstream_error = m
        .stream_error
        .map(str::to_owned)
        .or_else(|| match m.status {
            502 => Some("unavailable".into()),
            504 => Some("timeout".into()),
            500..=599 => Some("upstream_status".into()),
            _ => None,
        });
    if let Some(kind) = upstream_error {
        metrics::counter!("gateway_upstream_errors_total", "kind" => kind).increment(1);
    }
}

/// A request or stream in progress; the gauge goes down when this is dropped.
#[derive(Debug)]
pub struct InFlight(&'static str);

impl InFlight {
    /// Count one more open item on the gauge `name`.
    pub fn start(name: &'static str) -> Self {
        metrics::gauge!(name).increment(1.0);
        Self(name)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(self.0).decrement(1.0);
    }
}
