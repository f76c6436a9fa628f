//! The pool's Prometheus series: per backend (requests, errors, in flight, up) and for the
//! queue (depth, wait, refusals). The queue is one for the whole pool: its series have no
//! backend label. Each series is described once, so `/metrics` says in its `# HELP` line what
//! it counts.

use metrics::{Counter, Gauge, Histogram};

/// One backend's series, registered once.
#[derive(Debug)]
pub struct BackendMetrics {
    /// `gateway_backend_requests_total`: requests sent to it (each attempt, of any kind).
    pub requests: Counter,
    /// `gateway_backend_errors_total{kind="connect"}`: connections that could not be made.
    pub connect_errors: Counter,
    /// `gateway_backend_errors_total{kind="upstream"}`: 5xx answers, and answer heads not
    /// received within the upstream timeout (a stream that breaks off later is not counted).
    pub errors: Counter,
    /// `gateway_backend_in_flight`: the generation and embedding requests it is serving (those
    /// that take one of its `max_concurrent` slots; streams until they end). Other requests
    /// (`/api/show`, `/api/version`, listings, administrative ones) are not counted.
    pub in_flight: Gauge,
    /// `gateway_backend_up`: 1 while it is in, 0 while it is out.
    pub up: Gauge,
}

impl BackendMetrics {
    /// The series of the backend called `name`.
    pub fn new(name: &str) -> Self {
        describe();
        let up = metrics::gauge!("gateway_backend_up", "backend" => name.to_owned());
        up.set(1.0);
        Self {
            requests: metrics::counter!("gateway_backend_requests_total", "backend" => name.to_owned()),
            connect_errors: metrics::counter!("gateway_backend_errors_total", "backend" => name.to_owned(), "kind" => "connect"),
            errors: metrics::counter!("gateway_backend_errors_total", "backend" => name.to_owned(), "kind" => "upstream"),
            in_flight: metrics::gauge!("gateway_backend_in_flight", "backend" => name.to_owned()),
            up,
        }
    }
}

/// The queue's series.
#[derive(Debug)]
pub struct QueueMetrics {
    /// `gateway_queue_depth`: requests waiting for a slot on any backend (one queue for the
    /// pool).
    pub depth: Gauge,
    /// `gateway_queue_wait_seconds`: how long each queued request waited.
    pub wait: Histogram,
}

impl QueueMetrics {
    /// Registered once per pool.
    pub fn new() -> Self {
        describe();
        Self {
            depth: metrics::gauge!("gateway_queue_depth"),
            wait: metrics::histogram!("gateway_queue_wait_seconds"),
        }
    }

    /// `gateway_queue_refused_total{reason}`: `full` or `timeout`.
    pub fn refused(&self, reason: &'static str) {
        metrics::counter!("gateway_queue_refused_total", "reason" => reason).increment(1);
    }
}

/// The `# HELP` text of every series above (describing again is harmless).
fn describe() {
    metrics::describe_counter!(
        "gateway_backend_requests_total",
        "Requests sent to this backend, each attempt, of any kind."
    );
    metrics::describe_counter!(
        "gateway_backend_errors_total",
        "kind=connect: connections to this backend that could not be made; kind=upstream: its 5xx answers and answer heads not received within the upstream timeout (streams that break off later are not counted)."
    );
    metrics::describe_gauge!(
        "gateway_backend_in_flight",
        "Generation and embedding requests (chat, generate, embed, on every surface) this backend is serving now, streams until they end: the requests that take one of its max_concurrent slots. /api/show, /api/version, listings and administrative requests are not counted."
    );
    metrics::describe_gauge!(
        "gateway_backend_up",
        "1 while this backend is in, 0 while it is taken out."
    );
    metrics::describe_gauge!(
        "gateway_queue_depth",
        "Requests waiting for a slot on any backend (one queue for the whole pool, not per backend)."
    );
    metrics::describe_histogram!(
        "gateway_queue_wait_seconds",
        "How long each queued request waited for a slot on any backend, in seconds (one queue for the whole pool)."
    );
    metrics::describe_counter!(
        "gateway_queue_refused_total",
        "Requests the pool-wide queue refused with 429: reason=full (GATEWAY_QUEUE_LIMIT reached) or reason=timeout (GATEWAY_QUEUE_TIMEOUT passed)."
    );
}
