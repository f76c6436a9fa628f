//! The HTTP server: accept loop, connection settings, graceful shutdown.
//!
//! Built on hyper directly (not `axum::serve`) for the settings a gateway facing the network
//! needs: `TCP_NODELAY` on accepted sockets (small SSE writes must not wait for a delayed ACK),
//! a header read timeout (slow or half-open clients cannot hold a connection), and a cap on
//! header size and count.

use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::http::stack::GatewayService;
use crate::state::AppState;

/// Largest request head (all headers together).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most headers in one request.
const MAX_HEADERS: usize = 100;
/// After the grace period, how long streams get to write their closing error event.
const FINAL_FLUSH: Duration = Duration::from_secs(2);

/// Serve `service` on `listener` until `signal` resolves, then drain for up to the configured
/// grace period and end whatever streams remain with an error event.
pub async fn run(
    listener: TcpListener,
    service: GatewayService,
    state: AppState,
    signal: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // HTTP/1.1 only: what OpenAI clients and browsers speak to an API, and the protocol the
    // header timeout and limits below apply to (cleartext HTTP/2 would bypass them). hyper's own
    // HTTP/1 connection, not hyper-util's auto-detecting one: no protocol sniffing per
    // connection, and a smaller task for every open stream.
    let mut builder = Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.header_timeout)
        // The exact cap on the request head; `max_buf_size` alone is soft (one read may pull in
        // more than it before the head is parsed).
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS);
    let graceful = GracefulShutdown::new();
    let mut signal = std::pin::pin!(signal);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(
                service
                    .clone()
                    .map_request(|req: http::Request<hyper::body::Incoming>| req.map(Body::new)),
            ),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let grace = state.config.shutdown_grace;
    tracing::info!(
        grace_s = grace.as_secs_f64(),
        "shutting down: no new connections, draining"
    );
    let drained = graceful.shutdown();
    let mut drained = std::pin::pin!(drained);
    if tokio::time::timeout(grace, &mut drained).await.is_err() {
        tracing::warn!("grace period over: ending the remaining streams");
        state.shutdown.expire();
        let _ = tokio::time::timeout(FINAL_FLUSH, drained).await;
    }
    tracing::info!("stopped");
    Ok(())
}
