//! The router and the running server.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::Response;
use axum::routing::{delete, get, head, post};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::state::{FakeState, RecordedRequest, Stats};
use crate::{FakeConfig, admin, control, native, openai, reply, request};

/// Every route. The recording middleware wraps all of them (it skips `/_fake/*`), so the
/// handlers get the already parsed body as an extension.
pub(crate) fn build_router(state: FakeState) -> Router {
    Router::new()
        .route("/", get(native::root))
        .route("/api/version", get(native::version))
        .route("/api/tags", get(native::tags))
        .route("/api/ps", get(native::ps))
        .route("/api/show", post(native::show))
        .route("/api/chat", post(native::chat))
        .route("/api/generate", post(native::generate))
        .route("/api/embed", post(native::embed))
        .route("/api/embeddings", post(native::embeddings))
        .route("/api/pull", post(admin::pull))
        .route("/api/push", post(admin::push))
        .route("/api/create", post(admin::create))
        .route("/api/delete", delete(admin::delete))
        .route("/api/copy", post(admin::copy))
        .route(
            "/api/blobs/{digest}",
            head(admin::head_blob).post(admin::post_blob),
        )
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/_fake/requests", get(control::requests))
        .route("/_fake/stats", get(control::stats))
        .route("/_fake/reset", post(control::reset))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request::record,
        ))
        .with_state(state)
}

/// Gin's answer for an unknown route.
async fn not_found() -> Response {
    reply::with_type(
        StatusCode::NOT_FOUND,
        "text/plain",
        "404 page not found".into(),
    )
}

/// A running fake Ollama. Dropping it (or calling [`FakeOllama::shutdown`]) closes the
/// listening socket and every open connection, in-flight streams included.
pub struct FakeOllama {
    addr: SocketAddr,
    state: FakeState,
    task: Option<JoinHandle<()>>,
}

impl FakeOllama {
    /// Start on `127.0.0.1` with a free port.
    ///
    /// # Errors
    /// Bad fixtures, or no port to bind.
    pub async fn start(config: FakeConfig) -> io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Start on `addr` (port 0 picks a free port).
    ///
    /// # Errors
    /// Bad fixtures, or `addr` cannot be bound.
    pub async fn start_on(addr: SocketAddr, config: FakeConfig) -> io::Result<Self> {
        let state = crate::load_state(config)?;
        let listener = TcpListener::bind(addr).await?;
        Self::serve(listener, state)
    }

    /// Serve `state` on an already bound listener.
    ///
    /// # Errors
    /// When the listener has no local address.
    pub fn serve(listener: TcpListener, state: FakeState) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let app = build_router(state.clone());
        let task = tokio::spawn(accept_loop(listener, app));
        Ok(Self {
            addr,
            state,
            task: Some(task),
        })
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        crate::url_for(self.addr)
    }

    /// The shared state (the same data the accessors below read).
    #[must_use]
    pub fn state(&self) -> &FakeState {
        &self.state
    }

    /// Every request received, in order (control endpoints excluded; the newest
    /// [`crate::state::MAX_RECORDED_REQUESTS`] are kept).
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// How many requests arrived (control endpoints excluded).
    #[must_use]
    pub fn request_count(&self) -> usize {
        self.state.stats().requests
    }

    /// Streams whose client went away before the last line was sent.
    #[must_use]
    pub fn cancelled_streams(&self) -> usize {
        self.state.stats().cancelled_streams
    }

    /// Streams whose last line was sent.
    #[must_use]
    pub fn completed_streams(&self) -> usize {
        self.state.stats().completed_streams
    }

    /// All three counters at once.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// When the most recent cancellation was noticed (the stream's body or handler was
    /// dropped because its client disconnected).
    #[must_use]
    pub fn last_cancel_at(&self) -> Option<Instant> {
        self.state.last_cancel_at()
    }

    /// Forget recorded requests, counters and uploaded blobs.
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Stop answering without closing anything (see [`FakeState::hang`]).
    pub fn hang(&self) {
        self.state.hang();
    }

    /// Answer again after [`hang`](Self::hang).
    pub fn resume(&self) {
        self.state.resume();
    }

    /// Stop serving and wait until the socket and all connections are closed.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for FakeOllama {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl std::fmt::Debug for FakeOllama {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOllama")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Accept connections until aborted. The connections live in a `JoinSet` owned by this
/// future, so aborting it closes them all.
async fn accept_loop(listener: TcpListener, app: Router) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => {
                    // Lines are small and must leave at once, not wait for Nagle.
                    let _ = tcp.set_nodelay(true);
                    let service = TowerToHyperService::new(app.clone());
                    connections.spawn(async move {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(tcp), service)
                            .await;
                    });
                }
                // Out of file descriptors and similar: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
