//! The pool's Prometheus series: per backend (requests, errors, in flight, up) and for the
//! queue (depth, wait, refusals).

use metrics::{Counter, Gauge, Histogram};

/// One backend's series, registered once.
#[derive(Debug)]
pub struct BackendMetrics {
    /// `gateway_backend_requests_total`: requests sent to it (each attempt).
    pub requests: Counter,
    /// `gateway_backend_errors_total{kind="connect"}`: connections that could not be made.
    pub connect_errors: Counter,
    /// `gateway_backend_errors_total{kind="upstream"}`: 5xx answers and timeouts.
    pub errors: Counter,
    /// `gateway_backend_in_flight`: requests it is serving (streams included).
    pub in_flight: Gauge,
    /// `gateway_backend_up`: 1 while it is in, 0 while it is out.
    pub up: Gauge,
}

impl BackendMetrics {
    /// The series of the backend called `name`.
    pub fn new(name: &str) -> Self {
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
    /// `gateway_queue_depth`: requests waiting for a backend slot.
    pub depth: Gauge,
    /// `gateway_queue_wait_seconds`: how long each queued request waited.
    pub wait: Histogram,
}

impl QueueMetrics {
    /// Registered once per pool.
    pub fn new() -> Self {
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
