//! The Ollama servers behind the gateway, and which one each request goes to.
//!
//! Each backend is an [`Upstream`] (its own connection pool, timeouts and address scrubbing)
//! with what the pool knows of it: healthy or not ([`health`]), its models and what it has
//! loaded ([`discovery`]), the requests it is serving and its `max_concurrent`. A request asks
//! the pool for a backend ([`Backends::send`] and the helpers beside it) and gets back the
//! answer with a [`Lease`]: the slot it holds on that backend until the answer (a stream
//! included) is over. The choice is [`select`]'s; when every backend that has the model is
//! full, the request waits in the [`queue`], fair across keys, up to `GATEWAY_QUEUE_TIMEOUT`.
//!
//! Failover: a request whose connection to a backend cannot be made (nothing reached it) goes
//! to the next backend that has the model, and that backend is taken out. Once a request has
//! been sent it is never sent again elsewhere (that could run a generation twice): its error
//! reaches the client as with one backend.
//!
//! With one backend the pool adds nothing a client can see: no background listing or health
//! requests (the start-up watcher in `main` logs reachability as before), no model checks,
//! every request goes to it even while it is out (its error is the one the client gets).

pub mod config;
pub mod discovery;
pub mod health;
mod metrics;
pub mod queue;
pub mod select;

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderMap, Method};
use http_body::{Body, Frame, SizeHint};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};

use crate::error::GatewayError;
use crate::http::audit::Audit;
use crate::ollama::types::{ModelEntry, TagsResponse};
use crate::shutdown::Shutdown;
use crate::upstream::{
    Forwarded, NativeLine, NativeLines, Reachability, SendError, Upstream, UpstreamBody,
    UpstreamChunks, UpstreamProbe,
};

pub use config::BackendSpec;
use discovery::Models;
use health::Health;
use queue::{FairQueue, Refused};
use select::{Candidate, Has, full_name};

/// The header that names the backend of an administrative request.
pub const BACKEND_HEADER: &str = "x-gateway-backend";

/// How long a client that was refused by a full or timed-out queue is told to wait.
const QUEUE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// One Ollama server.
#[derive(Debug)]
pub struct Backend {
    /// Its configured name.
    pub name: String,
    /// The client for it.
    pub upstream: Upstream,
    weight: u32,
    max_concurrent: u32,
    /// Its fixed model list (full names), instead of what it lists.
    fixed: Option<HashSet<String>>,
    in_flight: AtomicU32,
    health: Health,
    models: ArcSwap<Models>,
    /// Its cached reachability (`/health`, `/ready`, the watcher).
    probe: UpstreamProbe,
    /// Its listings should be asked again at once.
    refresh: AtomicBool,
    /// Wakes its watcher.
    wake: Notify,
    /// Moves on each time it is taken out because it cannot be reached: the answers in
    /// progress on it (each [`Lease`] watches this) end then instead of waiting out the
    /// upstream timeout on a machine that will never send another byte.
    outages: watch::Sender<u64>,
    metrics: metrics::BackendMetrics,
}

impl Backend {
    fn new(spec: &BackendSpec, timeout: Duration) -> Result<Self, String> {
        let upstream = Upstream::new(&spec.url, timeout)?;
        Ok(Self {
            metrics: metrics::BackendMetrics::new(&spec.name),
            name: spec.name.clone(),
            upstream,
            weight: spec.weight.max(1),
            max_concurrent: spec.max_concurrent,
            fixed: spec.models.as_ref().map(|m| m.iter().cloned().collect()),
            in_flight: AtomicU32::new(0),
            health: Health::default(),
            models: ArcSwap::from_pointee(Models::default()),
            probe: UpstreamProbe::new(),
            refresh: AtomicBool::new(false),
            wake: Notify::new(),
            outages: watch::Sender::new(0),
        })
    }

    /// Whether it has `model` (a full name).
    fn has(&self, model: &str) -> Has {
        if let Some(fixed) = &self.fixed {
            return if fixed.contains(model) {
                Has::Yes
            } else {
                Has::No
            };
        }
        let models = self.models.load();
        if !models.known {
            Has::Unknown
        } else if models.has(model) {
            Has::Yes
        } else {
            Has::No
        }
    }

    /// Take a slot if it has one free.
    fn try_take(&self) -> bool {
        let taken = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (self.max_concurrent == 0 || n < self.max_concurrent).then_some(n + 1)
            })
            .is_ok();
        if taken {
            self.metrics.in_flight.increment(1.0);
        }
        taken
    }

    /// Requests it is serving now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Not known to be down.
    pub fn is_healthy(&self) -> bool {
        self.health.is_up()
    }
}

/// The pool: every backend, the queue and the turn counter.
#[derive(Debug)]
pub struct Pool {
    backends: Vec<Arc<Backend>>,
    queue: FairQueue<Want, Slot>,
    queue_timeout: Duration,
    /// Moves on with every placement; picks among equally good backends.
    turn: AtomicU64,
    queue_metrics: metrics::QueueMetrics,
}

/// The backends, cheap to clone.
#[derive(Clone, Debug)]
pub struct Backends(Arc<Pool>);

/// Where a request may go. Only [`Target::Model`] requests (generation and embeddings, what
/// Ollama's `OLLAMA_NUM_PARALLEL` limits) take one of a backend's `max_concurrent` slots and may
/// wait for one; the others go at once.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// A backend that has this model, to generate or embed with it.
    Model(&'a str),
    /// A backend that has this model, to read about it (`/api/show`).
    About(&'a str),
    /// Any backend (`/api/version`).
    Any,
    /// The backend the `x-gateway-backend` header names (administrative endpoints); with one
    /// backend, that one.
    Named(&'a HeaderMap),
}

/// What a waiter asks for.
#[derive(Clone, Debug)]
struct Want {
    /// A full model name.
    model: Option<String>,
    /// One backend only.
    named: Option<usize>,
    /// Backends already tried (their connection failed).
    exclude: Vec<usize>,
    /// Takes a slot (and may wait for one).
    counted: bool,
}

/// A slot held on one backend; given back when dropped.
#[derive(Debug)]
struct Slot {
    pool: Arc<Pool>,
    index: usize,
    /// Holds one of the backend's `max_concurrent` (requests that do not generate hold none).
    counted: bool,
}

impl Slot {
    fn backend(&self) -> &Arc<Backend> {
        &self.pool.backends[self.index]
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let backend = self.backend();
        backend.in_flight.fetch_sub(1, Ordering::AcqRel);
        backend.metrics.in_flight.decrement(1.0);
        self.pool.dispatch();
    }
}

/// A request's hold on the backend that answers it, until the answer is over.
#[derive(Debug)]
pub struct Lease {
    slot: Slot,
    /// Ask the backend's listings again when done (pull, create, copy, delete).
    relist: bool,
    /// The backend's outages, as of when the request was sent: a change means it was taken
    /// out since, and the answer ends with [`GatewayError::UpstreamInterrupted`].
    outages: watch::Receiver<u64>,
}

/// Why an answer ended early: its backend was taken out while the answer was read.
#[derive(Debug, thiserror::Error)]
#[error("backend '{0}' was taken out (it cannot be reached) while this answer was read")]
struct TakenOut(String);

impl Lease {
    /// The backend's client.
    pub fn upstream(&self) -> &Upstream {
        &self.slot.backend().upstream
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.slot.backend().name
    }

    /// An error this backend reported inside a 200 answer.
    pub fn failure(&self, message: &str) -> GatewayError {
        self.upstream().failure(message)
    }

    /// Read a whole JSON answer within the timeout; cut short when the backend is taken out
    /// meanwhile.
    pub async fn read_json<T: DeserializeOwned>(
        &self,
        response: reqwest::Response,
    ) -> Result<T, GatewayError> {
        let mut outages = self.outages.clone();
        tokio::select! {
            answer = self.upstream().read_json(response) => answer,
            Ok(()) = outages.changed() => {
                tracing::warn!(error = %TakenOut(self.name().to_owned()), "upstream answer cut short");
                Err(GatewayError::UpstreamInterrupted)
            }
        }
    }

    /// Refresh this backend's model listings when the answer is over.
    pub fn relist_when_done(&mut self) {
        self.relist = true;
    }

    /// The answer's body as chunks (see [`Upstream::chunks`]); the slot is held until they
    /// are dropped.
    pub fn chunks(self, response: reqwest::Response, shutdown: &Shutdown) -> UpstreamChunks {
        let upstream = self.upstream().clone();
        let body = crate::upstream::erased(response);
        let mut outages = self.outages.clone();
        let taken_out: TakenOutFuture = Box::pin(async move {
            // Only an outage ends the answer; the sender lives as long as the backend.
            if outages.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        });
        let held = Held {
            body,
            taken_out: Some(taken_out),
            lease: self,
        };
        upstream.chunks_of(Box::pin(held), shutdown)
    }

    /// The answer's body as typed NDJSON lines (see [`Upstream::native_lines`]); the slot is
    /// held until they are dropped.
    pub fn native_lines<T: NativeLine>(
        self,
        response: reqwest::Response,
        shutdown: &Shutdown,
    ) -> NativeLines<T> {
        NativeLines::new(self.chunks(response, shutdown))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.relist {
            health::wake(self.slot.backend(), true);
        }
    }
}

type TakenOutFuture = Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A body that holds its lease for as long as it is read, and breaks off (as a connection
/// that broke would: [`UpstreamChunks`] makes that [`GatewayError::UpstreamInterrupted`], the
/// error event or `{"error"}` line of any mid-stream failure) when its backend is taken out
/// and nothing is left to read. Without that, a machine that froze or left the network with
/// its sockets open would hold the stream until the upstream timeout (300 s by default).
struct Held {
    body: UpstreamBody,
    /// Ready once the backend was taken out; `None` after it fired.
    taken_out: Option<TakenOutFuture>,
    lease: Lease,
}

impl Body for Held {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        // What has arrived is passed on first: a backend taken out by mistake (a probe that
        // timed out) loses only the streams that have stalled on it.
        if let Poll::Ready(frame) = self.body.as_mut().poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let this = self.get_mut();
        if let Some(taken_out) = this.taken_out.as_mut()
            && taken_out.as_mut().poll(cx).is_ready()
        {
            this.taken_out = None;
            let why = TakenOut(this.lease.name().to_owned());
            return Poll::Ready(Some(Err(Box::new(why))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Backends {
    /// The backends `config` names (see [`config::backends`]), not yet watched.
    pub fn new(config: &crate::config::Config) -> Result<Self, String> {
        let specs = config::backends(config)?;
        Self::from_specs(&specs, config)
    }

    /// A pool of `specs`, with the timeouts and queue of `config`.
    pub fn from_specs(
        specs: &[BackendSpec],
        config: &crate::config::Config,
    ) -> Result<Self, String> {
        if specs.is_empty() {
            return Err("OLLAMA_URL: no backend configured".into());
        }
        // Handles registered before the recorder is installed would record nothing.
        crate::metrics::install();
        let backends = specs
            .iter()
            .map(|spec| {
                Backend::new(spec, config.upstream_timeout)
                    .map(Arc::new)
                    .map_err(|e| format!("backend '{}' ({}): {e}", spec.name, spec.url))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(Arc::new(Pool {
            backends,
            queue: FairQueue::new(config.queue_limit),
            queue_timeout: config.queue_timeout,
            turn: AtomicU64::new(0),
            queue_metrics: metrics::QueueMetrics::new(),
        })))
    }

    /// With several backends: look at each once (so one that is down is known to be), then
    /// start their watchers. With one, nothing (see the module documentation).
    pub async fn start(&self) {
        if self.0.backends.len() < 2 {
            return;
        }
        health::first_look(&self.0).await;
        for index in 0..self.0.backends.len() {
            tokio::spawn(health::watch(Arc::downgrade(&self.0), index));
        }
    }

    /// Log when the one backend becomes reachable or not, for as long as the gateway runs
    /// (with several, their watchers do).
    pub async fn watch_single(&self) {
        if let [only] = self.0.backends.as_slice() {
            only.probe.watch(&only.upstream).await;
        }
    }

    /// Every backend, in configured order.
    pub fn all(&self) -> &[Arc<Backend>] {
        &self.0.backends
    }

    /// Requests waiting for a slot now.
    pub fn queue_depth(&self) -> usize {
        self.0.queue.depth()
    }

    /// Reachable while at least one backend answers (each backend's probe is cached for about a
    /// second); the first answering backend's version.
    pub async fn reachability(&self) -> Reachability {
        let checks = self
            .0
            .backends
            .iter()
            .map(|b| async move { b.probe.check(&b.upstream).await });
        futures::future::join_all(checks)
            .await
            .into_iter()
            .find(Reachability::is_up)
            .unwrap_or(Reachability::Down)
    }

    /// Send what `build` makes for the backend chosen for `target`, waiting in the queue when
    /// the backends for it are full; on a connection that cannot be made, the next backend
    /// (see the module documentation). Within the upstream timeout per attempt, as with one
    /// backend. The audit record gets the backend's name.
    pub async fn send(
        &self,
        target: Target<'_>,
        audit: &Audit,
        mut build: impl FnMut(&Upstream) -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::Response, Lease), GatewayError> {
        let mut want = self.want(target)?;
        let key = audit.key_name();
        loop {
            let slot = self.acquire(&want, &key).await?;
            let backend = slot.backend().clone();
            audit.set_backend(&backend.name);
            backend.metrics.requests.increment(1);
            let upstream = &backend.upstream;
            let timeout = upstream.timeout();
            let mut outages = backend.outages.subscribe();
            let attempt = tokio::select! {
                attempt = tokio::time::timeout(timeout, upstream.attempt(build(upstream))) => attempt,
                // Taken out while this request waits for its answer's head: it was sent, so it
                // is not sent again elsewhere; it ends as a broken answer would.
                Ok(()) = outages.changed() => {
                    tracing::warn!(error = %TakenOut(backend.name.clone()), "upstream answer cut short");
                    return Err(GatewayError::UpstreamInterrupted);
                }
            };
            match attempt {
                Ok(Ok(response)) => {
                    self.0.set_health(&backend, true);
                    // Only outages from here on end the answer.
                    outages.mark_unchanged();
                    let lease = Lease {
                        slot,
                        relist: false,
                        outages,
                    };
                    return Ok((response, lease));
                }
                Ok(Err(SendError::NotConnected)) => {
                    backend.metrics.connect_errors.increment(1);
                    self.0.set_health(&backend, false);
                    want.exclude.push(slot.index);
                    drop(slot);
                    if !self.0.has_candidates(&want) {
                        return Err(GatewayError::UpstreamUnavailable);
                    }
                }
                Ok(Err(SendError::Failed(err))) => {
                    let status = err.status();
                    if status.is_server_error() {
                        backend.metrics.errors.increment(1);
                        if backend.health.answered(status) {
                            self.0.log_out(
                                &backend,
                                "failed to answer three times in a row (5xx or timeout)",
                            );
                        }
                    }
                    return Err(err);
                }
                Err(_) => {
                    backend.metrics.errors.increment(1);
                    if backend.health.failed() {
                        self.0.log_out(
                            &backend,
                            "failed to answer three times in a row (5xx or timeout)",
                        );
                    }
                    return Err(GatewayError::UpstreamTimeout(timeout));
                }
            }
        }
    }

    /// POST a JSON body to the backend for `target`.
    pub async fn post_json<B: Serialize + ?Sized>(
        &self,
        target: Target<'_>,
        audit: &Audit,
        path: &str,
        body: &B,
        headers: &Forwarded,
    ) -> Result<(reqwest::Response, Lease), GatewayError> {
        self.send(target, audit, |upstream| {
            upstream
                .request(Method::POST, path)
                .headers(headers.0.clone())
                .json(body)
        })
        .await
    }

    /// POST a JSON body to the backend for `target` and read the whole JSON answer.
    pub async fn call_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        target: Target<'_>,
        audit: &Audit,
        path: &str,
        body: &B,
        headers: &Forwarded,
    ) -> Result<(T, Lease), GatewayError> {
        let (response, lease) = self.post_json(target, audit, path, body, headers).await?;
        let answer = lease.read_json(response).await?;
        Ok((answer, lease))
    }

    /// `/api/tags` or `/api/ps` of every healthy backend (of all, when none is), each model
    /// once (the first backend's entry, in configured order); a backend's fixed `models` limit
    /// what it lists. With one backend, its answer (within the upstream timeout, as always).
    /// With several, each has [`discovery::LIST_TIMEOUT`] to answer: one that hangs must not
    /// hold every listing for the upstream timeout. A backend that does not answer in time is
    /// left out; when none answers, the first one's error.
    pub async fn listing(
        &self,
        path: &str,
        headers: &Forwarded,
    ) -> Result<TagsResponse, GatewayError> {
        if let [only] = self.0.backends.as_slice() {
            return only.upstream.get_json(path, headers).await;
        }
        let healthy: Vec<&Arc<Backend>> =
            self.0.backends.iter().filter(|b| b.is_healthy()).collect();
        let asked = if healthy.is_empty() {
            self.0.backends.iter().collect()
        } else {
            healthy
        };
        let answers = futures::future::join_all(asked.iter().map(|backend| async move {
            let listing = tokio::time::timeout(
                discovery::LIST_TIMEOUT,
                backend.upstream.get_json::<TagsResponse>(path, headers),
            )
            .await
            .unwrap_or_else(|_| {
                tracing::warn!(backend = %backend.name, path, "backend listing timed out; left out");
                Err(GatewayError::UpstreamTimeout(discovery::LIST_TIMEOUT))
            });
            (backend, listing)
        }))
        .await;
        let mut seen = HashSet::new();
        let mut models: Vec<ModelEntry> = Vec::new();
        let mut first_error = None;
        let mut answered = false;
        for (backend, listing) in answers {
            match listing {
                Ok(listing) => {
                    answered = true;
                    for entry in listing.models {
                        let name = full_name(entry.id());
                        let fixed_out = backend.fixed.as_ref().is_some_and(|f| !f.contains(&name));
                        if !fixed_out && seen.insert(name) {
                            models.push(entry);
                        }
                    }
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            Some(err) if !answered => Err(err),
            _ => Ok(TagsResponse { models }),
        }
    }

    /// The wish for `target`, or the 400 of an administrative request that names no backend
    /// (or an unknown one) while there are several.
    fn want(&self, target: Target<'_>) -> Result<Want, GatewayError> {
        let mut want = Want {
            model: None,
            named: None,
            exclude: Vec::new(),
            counted: false,
        };
        match target {
            Target::Model(model) => {
                want.model = Some(full_name(model));
                want.counted = true;
            }
            Target::About(model) => want.model = Some(full_name(model)),
            Target::Any => {}
            Target::Named(_) if self.0.backends.len() == 1 => want.named = Some(0),
            Target::Named(headers) => {
                let names: Vec<&str> = self.0.backends.iter().map(|b| b.name.as_str()).collect();
                let asked = headers
                    .get(BACKEND_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim);
                let Some(asked) = asked.filter(|a| !a.is_empty()) else {
                    return Err(GatewayError::invalid(
                        BACKEND_HEADER,
                        format!(
                            "{BACKEND_HEADER}: this gateway has several backends; name the one for this request: {}",
                            names.join(", ")
                        ),
                    ));
                };
                let Some(index) = names.iter().position(|n| *n == asked) else {
                    return Err(GatewayError::invalid(
                        BACKEND_HEADER,
                        format!(
                            "{BACKEND_HEADER}: no backend is named '{asked}'; the backends are: {}",
                            names.join(", ")
                        ),
                    ));
                };
                want.named = Some(index);
            }
        }
        Ok(want)
    }

    /// A slot for `want`: at once when one is free and nobody waits, else from the queue.
    async fn acquire(&self, want: &Want, key: &str) -> Result<Slot, GatewayError> {
        if (!want.counted || self.0.queue.depth() == 0)
            && let Some(slot) = self.0.place(want)
        {
            return Ok(slot);
        }
        if !self.0.has_candidates(want) {
            return Err(self.0.none_for(want));
        }
        let started = Instant::now();
        let ticket = match self.0.queue.join(key, want.clone()) {
            Ok(ticket) => ticket,
            Err(refused) => return Err(self.0.refused(refused, started)),
        };
        self.0.queue_metrics.depth.set(self.0.queue.depth() as f64);
        self.0.dispatch();
        let granted = ticket.granted(self.0.queue_timeout).await;
        self.0.queue_metrics.depth.set(self.0.queue.depth() as f64);
        self.0
            .queue_metrics
            .wait
            .record(started.elapsed().as_secs_f64());
        granted.map_err(|refused| self.0.refused(refused, started))
    }
}

impl Pool {
    /// The candidates for `want`, best first: those with the model (when none lists it, every
    /// backend without a fixed `models` list: it may answer, or say in Ollama's words that it
    /// has no such model), healthy ones only unless none is.
    fn ranked(&self, want: &Want) -> Vec<usize> {
        if let Some(index) = want.named {
            return if want.exclude.contains(&index) {
                Vec::new()
            } else {
                vec![index]
            };
        }
        if self.backends.len() == 1 {
            return if want.exclude.is_empty() {
                vec![0]
            } else {
                Vec::new()
            };
        }
        let mut candidates: Vec<Candidate> = self
            .backends
            .iter()
            .enumerate()
            .map(|(index, backend)| {
                let (has, loaded) = match &want.model {
                    Some(model) => (
                        backend.has(model),
                        backend.models.load().loaded.contains(model),
                    ),
                    None => (Has::Unknown, false),
                };
                Candidate {
                    index,
                    healthy: backend.is_healthy(),
                    has,
                    loaded,
                    in_flight: backend.in_flight(),
                    max_concurrent: backend.max_concurrent,
                    weight: backend.weight,
                }
            })
            .collect();
        // Nobody lists it: a listing may be a few seconds old (a pull outside the gateway), so
        // a backend whose models are discovered may have it after all and say so itself. One
        // with a fixed `models` list never gets a model the list leaves out.
        if candidates.iter().all(|c| c.has == Has::No) {
            for c in &mut candidates {
                if self.backends[c.index].fixed.is_none() {
                    c.has = Has::Unknown;
                }
            }
        }
        candidates.retain(|c| !want.exclude.contains(&c.index));
        let any_healthy = candidates.iter().any(|c| c.healthy && c.has != Has::No);
        if any_healthy {
            candidates.retain(|c| c.healthy);
        }
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        select::rank(candidates, turn)
    }

    fn has_candidates(&self, want: &Want) -> bool {
        !self.ranked(want).is_empty()
    }

    /// The error when nothing can take `want`: a model that no backend may serve (every one
    /// has a fixed list without it) is Ollama's 404, as with one backend; otherwise the
    /// backends that could are unreachable.
    fn none_for(&self, want: &Want) -> GatewayError {
        match &want.model {
            Some(model)
                if want.named.is_none()
                    && self.backends.len() > 1
                    && self
                        .backends
                        .iter()
                        .all(|b| b.fixed.as_ref().is_some_and(|f| !f.contains(model))) =>
            {
                GatewayError::ModelNotFound {
                    message: format!("model '{model}' not found"),
                }
            }
            _ => GatewayError::UpstreamUnavailable,
        }
    }

    /// A slot on the best candidate with one free.
    fn place(self: &Arc<Self>, want: &Want) -> Option<Slot> {
        let ranked = self.ranked(want);
        let index = if want.counted {
            ranked
                .into_iter()
                .find(|&index| self.backends[index].try_take())?
        } else {
            *ranked.first()?
        };
        Some(Slot {
            pool: self.clone(),
            index,
            counted: want.counted,
        })
    }

    /// Give freed slots to waiting requests.
    fn dispatch(self: &Arc<Self>) {
        if self.queue.depth() > 0 {
            self.queue.dispatch(|want| self.place(want));
            self.queue_metrics.depth.set(self.queue.depth() as f64);
        }
    }

    /// Record a backend's health; a change is logged, and a backend back in may take waiters.
    fn set_health(self: &Arc<Self>, backend: &Backend, up: bool) {
        if !backend.health.set(up) {
            return;
        }
        backend.metrics.up.set(if up { 1.0 } else { 0.0 });
        if up {
            tracing::info!(backend = %backend.name, "backend is back in");
            self.dispatch();
        } else {
            self.log_out(backend, "cannot be reached");
            // End what is in progress on it (see `Backend::outages`). A backend taken out for
            // its 5xx answers still answers: its streams go on.
            backend.outages.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn log_out(&self, backend: &Backend, why: &str) {
        backend.metrics.up.set(0.0);
        tracing::warn!(
            backend = %backend.name,
            ollama_url = %backend.upstream.base_url(),
            "backend taken out: {why}; it is probed until it answers"
        );
    }

    /// The 429 of a request the queue did not serve.
    fn refused(&self, refused: Refused, started: Instant) -> GatewayError {
        let reason = match refused {
            Refused::Full => "full",
            Refused::TimedOut => "timeout",
        };
        self.queue_metrics.refused(reason);
        GatewayError::BackendsBusy {
            waited: started.elapsed(),
            retry_after: QUEUE_RETRY_AFTER,
        }
    }
}

/// For the watchers: a weak handle, so they end with the pool.
impl Backends {
    /// A weak handle on the pool.
    pub fn downgrade(&self) -> Weak<Pool> {
        Arc::downgrade(&self.0)
    }
}
