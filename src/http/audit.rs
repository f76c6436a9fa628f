//! One structured audit line per request, and the request metrics, written when the response
//! is finished: for a stream that is when its last byte was sent or the client went away.
//!
//! Handlers fill in what only they know (model, upstream time, tokens) through the [`Audit`]
//! handle in the request's extensions; the middleware adds the rest and emits at the end.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;

use axum::extract::State;

use crate::error::RefusalReason;
use crate::gate::keys::Caller;
use crate::state::AppState;
use crate::store::UsageRecord;

/// A request id the client sent but the gateway replaced (too long, or characters that could
/// forge a log field); written, quoted, into the audit line.
#[derive(Clone, Debug)]
pub struct ClientRequestId(pub String);

/// What is known about one request so far.
#[derive(Debug, Default)]
struct Record {
    caller: Option<Arc<Caller>>,
    /// The client's address (the socket's, or the one a trusted proxy forwarded).
    client: Option<std::net::IpAddr>,
    /// The tokens a stream may still send (keys with a hard quota).
    hard_budget: Option<HardBudget>,
    model: Option<String>,
    upstream: Option<Duration>,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    /// Ollama's `load_duration`: time it spent loading the model for this request.
    load: Option<Duration>,
    stream_error: Option<String>,
    /// The backend that answered (its configured name).
    backend: Option<String>,
}

/// What a key with `hard_quota` may still spend, set at admission: a stream is ended once it
/// has sent this many tokens.
#[derive(Clone, Copy, Debug)]
pub struct HardBudget {
    /// Tokens left.
    pub tokens: u64,
    /// `daily` or `monthly`: the quota that runs out first.
    pub period: &'static str,
    /// That quota's size.
    pub limit: u64,
    /// Seconds until it starts again.
    pub reset: u64,
}

impl HardBudget {
    /// The error a stream ends with at the budget.
    pub fn error(&self) -> crate::error::GatewayError {
        crate::error::GatewayError::QuotaExceeded {
            period: self.period,
            limit: self.limit,
            retry_after: Duration::from_secs(self.reset),
        }
    }
}

/// A handle on the current request's audit record.
#[derive(Clone, Debug)]
pub struct Audit {
    started: Instant,
    /// Outside the mutex: it is checked on every stream chunk, and set once.
    first_token: Arc<OnceLock<Duration>>,
    record: Arc<Mutex<Record>>,
}

impl Audit {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            first_token: Arc::default(),
            record: Arc::default(),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Record) -> R) -> R {
        f(&mut self.record.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The caller (its key's name goes into the line, its id and user into the usage record).
    pub fn set_caller(&self, caller: &Arc<Caller>) {
        self.with(|r| r.caller = Some(caller.clone()));
    }

    /// The budget of a key with a hard quota (streams end when it is spent).
    pub fn set_hard_budget(&self, budget: HardBudget) {
        self.with(|r| r.hard_budget = Some(budget));
    }

    /// The hard budget, if the key has one.
    pub fn hard_budget(&self) -> Option<HardBudget> {
        self.with(|r| r.hard_budget)
    }

    /// The client's address.
    pub fn set_client(&self, ip: std::net::IpAddr) {
        self.with(|r| r.client = Some(ip));
    }

    /// The model the request names.
    pub fn set_model(&self, model: &str) {
        self.with(|r| r.model = Some(model.to_owned()));
    }

    /// Time spent waiting on Ollama.
    pub fn set_upstream_time(&self, elapsed: Duration) {
        self.with(|r| r.upstream = Some(elapsed));
    }

    /// Time from the request's arrival to the first token sent (streams).
    pub fn mark_first_token(&self) {
        if self.first_token.get().is_none() {
            let _ = self.first_token.set(self.started.elapsed());
        }
    }

    /// Token counts from Ollama.
    pub fn set_tokens(&self, prompt: Option<u64>, completion: Option<u64>) {
        self.with(|r| {
            r.prompt_tokens = prompt;
            r.completion_tokens = completion;
        });
    }

    /// Ollama's `load_duration` (nanoseconds), when it reported one.
    pub fn set_load_duration(&self, nanos: Option<u64>) {
        if let Some(nanos) = nanos {
            self.with(|r| r.load = Some(Duration::from_nanos(nanos)));
        }
    }

    /// Note one line of a native stream: the first token's time, and on the last line the
    /// upstream time and token counts.
    pub fn observe_line<L: crate::upstream::NativeLine>(
        &self,
        line: &L,
        upstream_started: Instant,
    ) {
        self.mark_first_token();
        if line.is_done() {
            self.set_upstream_time(upstream_started.elapsed());
            let (prompt, completion) = line.token_counts();
            self.set_tokens(prompt, completion);
            self.set_load_duration(line.load_duration());
        }
    }

    /// The backend the request went to.
    pub fn set_backend(&self, name: &str) {
        self.with(|r| r.backend = Some(name.to_owned()));
    }

    /// The caller's key name (`-` before authentication): whose line a queued request joins.
    pub fn key_name(&self) -> String {
        self.with(|r| {
            r.caller
                .as_ref()
                .map_or_else(|| "-".to_owned(), |c| c.name.clone())
        })
    }

    /// A stream ended with an error event after a 200 was sent.
    pub fn set_stream_error(&self, kind: &str) {
        self.with(|r| r.stream_error = Some(kind.to_owned()));
    }

    /// The caller's key name and the model, as far as they are known (the Live page).
    pub fn key_and_model(&self) -> (Option<String>, Option<String>) {
        self.with(|r| (r.caller.as_ref().map(|c| c.name.clone()), r.model.clone()))
    }
}

/// Middleware: attach an [`Audit`] to the request and emit it (the line, the metrics and the
/// usage record) when the response body ends.
pub async fn audit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let audit = Audit::new();
    let in_flight = crate::metrics::InFlight::request();
    req.extensions_mut().insert(audit.clone());
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let client_request_id = req
        .extensions_mut()
        .remove::<ClientRequestId>()
        .map(|id| id.0);
    let live = state.usage.live.start(&route, &audit);
    let response = next.run(req).await;
    if response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("text/event-stream") || v.starts_with("application/x-ndjson")
        })
    {
        state.usage.live.streaming(live);
    }
    let status = response.status().as_u16();
    let refusal = response
        .extensions()
        .get::<RefusalReason>()
        .and_then(|r| r.0);
    let guard = EmitOnDrop(Some(Finished {
        audit,
        method: method.to_string(),
        route,
        request_id,
        client_request_id,
        status,
        refusal,
        state: Some(state),
        live: Some(live),
        _in_flight: in_flight,
    }));
    response.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _keep = &guard;
            frame
        }))
    })
}

/// Everything needed to write the audit line.
struct Finished {
    audit: Audit,
    method: String,
    route: String,
    request_id: String,
    /// The client's own id, when it was replaced.
    client_request_id: Option<String>,
    status: u16,
    refusal: Option<&'static str>,
    /// Where the usage record goes (`None` only in unit tests).
    state: Option<AppState>,
    /// Its entry in the Live page's tracker.
    live: Option<u64>,
    /// Keeps the in-flight gauge up until the response is finished.
    _in_flight: crate::metrics::InFlight,
}

/// Writes the audit line and metrics when the response body is dropped.
struct EmitOnDrop(Option<Finished>);

impl Drop for EmitOnDrop {
    fn drop(&mut self) {
        let Some(done) = self.0.take() else { return };
        let total = done.audit.started.elapsed();
        if let Some(state) = &done.state {
            if let Some(id) = done.live {
                state.usage.live.finish(id);
            }
            if let Some(reason) = done
                .refusal
                .filter(|_| done.status >= 400 && done.status < 500)
            {
                state
                    .usage
                    .live
                    .refused(reason, state.usage.now_millis().div_euclid(60_000));
            }
        }
        done.audit.with(|r| {
            let key = r.caller.as_ref().map_or("-", |c| c.name.as_str());
            let model = r.model.as_deref().unwrap_or("-");
            tracing::info!(
                target: "audit",
                // Strings are written quoted (and escaped), so no value can pose as a field.
                request_id = done.request_id.as_str(),
                client_request_id = done.client_request_id.as_deref(),
                key,
                client = r.client.map(tracing::field::display),
                method = %done.method,
                route = %done.route,
                model,
                status = done.status,
                total_ms = total.as_secs_f64() * 1000.0,
                upstream_ms = r.upstream.map(|d| d.as_secs_f64() * 1000.0),
                prompt_tokens = r.prompt_tokens,
                completion_tokens = r.completion_tokens,
                load_ms = r.load.map(|d| d.as_secs_f64() * 1000.0),
                refused = done.refusal.filter(|_| done.status >= 400 && done.status < 500),
                stream_error = r.stream_error.as_deref(),
                backend = r.backend.as_deref(),
                "request"
            );
            crate::metrics::record_request(&crate::metrics::RequestMetrics {
                route: &done.route,
                status: done.status,
                model,
                key,
                total,
                upstream: r.upstream,
                first_token: done.audit.first_token.get().copied(),
                prompt_tokens: r.prompt_tokens,
                completion_tokens: r.completion_tokens,
                load: r.load,
                refusal: done
                    .refusal
                    .filter(|_| done.status >= 400 && done.status < 500),
                stream_error: r.stream_error.as_deref(),
            });
            // Requests without a key (refused, or on open routes) leave no usage record: an
            // anonymous flood must not turn into database writes.
            if let (Some(caller), Some(state)) = (&r.caller, &done.state) {
                let ms = |d: Duration| d.as_secs_f64() * 1000.0;
                // With Redis, a stored key's tokens are counted there too, for every replica's
                // quota check (in the background: this never waits).
                if let (Some(redis), true) = (&state.gate.redis, caller.id.is_some()) {
                    let tokens = r.prompt_tokens.unwrap_or_default()
                        + r.completion_tokens.unwrap_or_default();
                    let (day, month) = state.usage.quotas.periods();
                    redis.add_tokens(&caller.counter_name(), day, month, tokens);
                }
                state.usage.record(UsageRecord {
                    at: 0,
                    key_id: caller.id.clone(),
                    key_name: caller.name.clone(),
                    user: caller.user.clone(),
                    model: r.model.clone(),
                    route: done.route.clone(),
                    status: done.status,
                    error: r.stream_error.clone(),
                    prompt_tokens: r.prompt_tokens.unwrap_or_default(),
                    completion_tokens: r.completion_tokens.unwrap_or_default(),
                    total_ms: ms(total),
                    upstream_ms: r.upstream.map(ms),
                    ttft_ms: done.audit.first_token.get().copied().map(ms),
                    load_ms: r.load.map(ms),
                });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer into a shared buffer, for the text log format.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn client_values_are_quoted_in_the_text_audit_line() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let audit = Audit::new();
            let keys = crate::gate::keys::KeyStore::load(
                &<crate::config::Config as clap::Parser>::parse_from([
                    "ollama-gateway",
                    "--api-keys",
                    "k",
                ]),
            )
            .unwrap_or_default();
            let caller = keys.lookup(Some("k")).unwrap_or_else(|e| panic!("{e}"));
            audit.set_caller(&caller);
            audit.set_model("m status=200");
            drop(EmitOnDrop(Some(Finished {
                audit,
                method: "GET".into(),
                route: "/v1/models".into(),
                request_id: "0b7f".into(),
                client_request_id: Some("a key=key-2 status=200".into()),
                status: 401,
                refusal: None,
                state: None,
                live: None,
                _in_flight: crate::metrics::InFlight::request(),
            })));
        });
        let line =
            String::from_utf8_lossy(&buffer.0.lock().unwrap_or_else(PoisonError::into_inner))
                .into_owned();
        assert!(line.contains(r#"request_id="0b7f""#), "{line}");
        assert!(
            line.contains(r#"client_request_id="a key=key-2 status=200""#),
            "{line}"
        );
        assert!(line.contains(r#"model="m status=200""#), "{line}");
        assert!(line.contains("status=401"), "{line}");
        assert!(line.contains(r#" key="key-1" "#), "{line}");
    }
}
