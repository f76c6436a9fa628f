//! Prometheus metrics: what an operator watches in front of a GPU.
//!
//! The recorder is process-wide (the `metrics` crate's design), installed once; every gateway
//! in the process (tests start several) renders the same registry.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

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
    /// Ollama's `load_duration` for this request.
    pub load: Option<Duration>,
    pub refusal: Option<&'a str>,
    pub stream_error: Option<&'a str>,
}

/// The handles of one (route, status, model, key) combination. Registering a series builds its
/// labels and searches the registry; a request looks its handles up here instead, by one hash.
/// Series a request may not have (upstream time, tokens) are registered when first recorded,
/// so `/metrics` shows no empty ones.
#[derive(Debug)]
struct Series {
    route: String,
    status: u16,
    model: String,
    key: String,
    requests: Counter,
    duration: Histogram,
    upstream: OnceLock<Histogram>,
    overhead: OnceLock<Histogram>,
    tokens_per_second: OnceLock<Histogram>,
    first_token: OnceLock<Histogram>,
    load: OnceLock<Histogram>,
    prompt_tokens: OnceLock<Counter>,
    completion_tokens: OnceLock<Counter>,
}

impl Series {
    fn register(route: &str, status: u16, model: &str, key: &str) -> Self {
        Self {
            requests: metrics::counter!("gateway_requests_total", "route" => route.to_owned(), "status" => status.to_string(), "model" => model.to_owned(), "key" => key.to_owned()),
            duration: metrics::histogram!("gateway_request_duration_seconds", "route" => route.to_owned()),
            route: route.to_owned(),
            status,
            model: model.to_owned(),
            key: key.to_owned(),
            upstream: OnceLock::new(),
            overhead: OnceLock::new(),
            tokens_per_second: OnceLock::new(),
            first_token: OnceLock::new(),
            load: OnceLock::new(),
            prompt_tokens: OnceLock::new(),
            completion_tokens: OnceLock::new(),
        }
    }

    /// The series for these labels, registered on first use. Its size is bounded like the
    /// registry's own: routes, statuses, answered models and key names.
    fn of(route: &str, status: u16, model: &str, key: &str) -> Arc<Self> {
        static SERIES: LazyLock<Mutex<HashMap<u64, Arc<Series>>>> = LazyLock::new(Mutex::default);
        let mut hasher = std::hash::DefaultHasher::new();
        (route, status, model, key).hash(&mut hasher);
        let hash = hasher.finish();
        let mut series = SERIES.lock().unwrap_or_else(PoisonError::into_inner);
        match series.get(&hash) {
            Some(found) if found.is(route, status, model, key) => found.clone(),
            // A hash collision (never seen in practice) is recorded correctly, just uncached.
            Some(_) => Arc::new(Self::register(route, status, model, key)),
            None => series
                .entry(hash)
                .or_insert_with(|| Arc::new(Self::register(route, status, model, key)))
                .clone(),
        }
    }

    fn is(&self, route: &str, status: u16, model: &str, key: &str) -> bool {
        self.route == route && self.status == status && self.model == model && self.key == key
    }
}

/// Record a finished request.
pub fn record_request(m: &RequestMetrics<'_>) {
    // The model name comes from the client: only answered requests may add a label value, so a
    // key holder cannot grow the registry with made-up names.
    let model = if m.status < 400 { m.model } else { "-" };
    let s = Series::of(m.route, m.status, model, m.key);
    s.requests.increment(1);
    s.duration.record(m.total.as_secs_f64());
    if let Some(upstream) = m.upstream {
        s.upstream
            .get_or_init(|| metrics::histogram!("gateway_upstream_duration_seconds", "route" => s.route.clone()))
            .record(upstream.as_secs_f64());
        s.overhead
            .get_or_init(
                || metrics::histogram!("gateway_overhead_seconds", "route" => s.route.clone()),
            )
            .record(m.total.saturating_sub(upstream).as_secs_f64());
        if let Some(tokens) = m.completion_tokens.filter(|t| *t > 0) {
            let secs = upstream.as_secs_f64();
            if secs > 0.0 {
                s.tokens_per_second
                    .get_or_init(|| metrics::histogram!("gateway_tokens_per_second", "model" => s.model.clone(), "key" => s.key.clone()))
                    .record(tokens as f64 / secs);
            }
        }
    }
    if let Some(ttft) = m.first_token {
        s.first_token
            .get_or_init(|| metrics::histogram!("gateway_time_to_first_token_seconds", "model" => s.model.clone()))
            .record(ttft.as_secs_f64());
    }
    if let Some(load) = m.load {
        s.load
            .get_or_init(
                || metrics::histogram!("gateway_model_load_seconds", "model" => s.model.clone()),
            )
            .record(load.as_secs_f64());
    }
    if let Some(tokens) = m.prompt_tokens {
        s.prompt_tokens
            .get_or_init(|| metrics::counter!("gateway_prompt_tokens_total", "model" => s.model.clone(), "key" => s.key.clone()))
            .increment(tokens);
    }
    if let Some(tokens) = m.completion_tokens {
        s.completion_tokens
            .get_or_init(|| metrics::counter!("gateway_completion_tokens_total", "model" => s.model.clone(), "key" => s.key.clone()))
            .increment(tokens);
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
pub struct InFlight(&'static Gauge);

impl InFlight {
    /// Count one more request in progress (`gateway_in_flight_requests`).
    pub fn request() -> Self {
        static GAUGE: LazyLock<Gauge> =
            LazyLock::new(|| metrics::gauge!("gateway_in_flight_requests"));
        Self::start(&GAUGE)
    }

    /// Count one more open stream (`gateway_open_streams`).
    pub fn stream() -> Self {
        static GAUGE: LazyLock<Gauge> = LazyLock::new(|| metrics::gauge!("gateway_open_streams"));
        Self::start(&GAUGE)
    }

    fn start(gauge: &'static Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
