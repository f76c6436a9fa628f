//! Shared state: configuration, fixtures, the request log and the stream counters.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use serde::Serialize;

use crate::FakeConfig;
use crate::fixtures::Fixtures;

/// How many requests the log keeps. Tests stay far below it; a benchmark sending millions
/// of requests keeps only the newest ones instead of growing without bound.
/// `request_count` keeps counting past it.
pub const MAX_RECORDED_REQUESTS: usize = 10_000;

/// One request as the fake received it.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path including the query string, e.g. `/api/chat` or `/api/tags?x=1`.
    pub path: String,
    /// Headers in arrival order; names are lower-case.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON; `Null` when empty; a JSON string holding the raw text
    /// (lossy UTF-8) when it is not JSON.
    pub body: serde_json::Value,
}

impl RecordedRequest {
    /// The first header with this (lower-case) name.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Counters served by `GET /_fake/stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Requests received (control endpoints excluded).
    pub requests: usize,
    /// Streams whose client went away before the last line was sent.
    pub cancelled_streams: usize,
    /// Streams whose last line was sent.
    pub completed_streams: usize,
}

/// Cheap-to-clone handle on everything the handlers share.
#[derive(Clone)]
pub struct FakeState(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) config: FakeConfig,
    pub(crate) fixtures: Fixtures,
    requests: Mutex<VecDeque<RecordedRequest>>,
    request_count: AtomicUsize,
    cancelled: AtomicUsize,
    completed: AtomicUsize,
    last_cancel_at: Mutex<Option<Instant>>,
    /// Digests uploaded through `POST /api/blobs/:digest`.
    pub(crate) blobs: Mutex<HashSet<String>>,
    next_id: AtomicU64,
    /// Hung: see [`FakeState::hang`].
    hung: AtomicBool,
}

impl FakeState {
    /// State over already loaded fixtures.
    #[must_use]
    pub fn new(config: FakeConfig, fixtures: Fixtures) -> Self {
        Self(Arc::new(Inner {
            config,
            fixtures,
            requests: Mutex::new(VecDeque::new()),
            request_count: AtomicUsize::new(0),
            cancelled: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
            last_cancel_at: Mutex::new(None),
            blobs: Mutex::new(HashSet::new()),
            next_id: AtomicU64::new(1),
            hung: AtomicBool::new(false),
        }))
    }

    pub(crate) fn config(&self) -> &FakeConfig {
        &self.0.config
    }

    pub(crate) fn fixtures(&self) -> &Fixtures {
        &self.0.fixtures
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        self.0.request_count.fetch_add(1, Ordering::Relaxed);
        let mut log = self.0.requests.lock();
        if log.len() == MAX_RECORDED_REQUESTS {
            log.pop_front();
        }
        log.push_back(request);
    }

    /// Every recorded request, oldest first.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.0.requests.lock().iter().cloned().collect()
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        Stats {
            requests: self.0.request_count.load(Ordering::Relaxed),
            cancelled_streams: self.0.cancelled.load(Ordering::Relaxed),
            completed_streams: self.0.completed.load(Ordering::Relaxed),
        }
    }

    /// When the most recent cancelled stream noticed its client was gone.
    #[must_use]
    pub fn last_cancel_at(&self) -> Option<Instant> {
        *self.0.last_cancel_at.lock()
    }

    /// Forget recorded requests, counters and uploaded blobs.
    pub fn reset(&self) {
        self.0.requests.lock().clear();
        self.0.request_count.store(0, Ordering::Relaxed);
        self.0.cancelled.store(0, Ordering::Relaxed);
        self.0.completed.store(0, Ordering::Relaxed);
        *self.0.last_cancel_at.lock() = None;
        self.0.blobs.lock().clear();
    }

    /// Hang like a machine that froze or fell off the network without closing its sockets:
    /// requests arriving from now on get no answer at all (`/api/version` included), and
    /// streams in progress send nothing more; every connection stays open. [`resume`] undoes
    /// it.
    ///
    /// [`resume`]: Self::resume
    pub fn hang(&self) {
        self.0.hung.store(true, Ordering::Relaxed);
    }

    /// Answer again after [`hang`](Self::hang): waiting requests and streams go on.
    pub fn resume(&self) {
        self.0.hung.store(false, Ordering::Relaxed);
    }

    /// Wait while hung (polled: this is a test double, not a hot path).
    pub(crate) async fn while_hung(&self) {
        while self.0.hung.load(Ordering::Relaxed) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub(crate) fn stream_completed(&self) {
        self.0.completed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stream_cancelled(&self) {
        let now = Instant::now();
        *self.0.last_cancel_at.lock() = Some(now);
        self.0.cancelled.fetch_add(1, Ordering::Relaxed);
    }

    /// A process-unique number, for `chatcmpl-<N>` ids.
    pub(crate) fn next_id(&self) -> u64 {
        self.0.next_id.fetch_add(1, Ordering::Relaxed)
    }
}
