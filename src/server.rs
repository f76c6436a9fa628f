//! The HTTP server: accept loop, connection settings, graceful shutdown.
//!
//! Built on hyper directly (not `axum::serve`) for the settings a gateway facing the network
//! needs: `TCP_NODELAY` on accepted sockets (small SSE writes must not wait for a delayed ACK),
//! a header read timeout (slow or half-open clients cannot hold a connection), and a cap on
//! header size and count. With HTTPS ([`crate::tls`]) each connection is a TLS handshake first
//! (bounded in time), then HTTP/2 or HTTP/1.1 as the client chose by ALPN.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::gate::client::PeerAddr;
use crate::gate::connections::ConnectionCap;
use crate::http::stack::GatewayService;
use crate::state::AppState;

/// Largest request head (all headers together).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most headers in one request.
const MAX_HEADERS: usize = 100;
/// Most concurrent streams on one HTTP/2 connection (each one a request through the gate).
const MAX_H2_STREAMS: u32 = 256;
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
    // Plain HTTP is HTTP/1.1 only: what OpenAI clients and browsers speak to an API, and the
    // protocol the header timeout and limits below apply to (cleartext HTTP/2 would bypass
    // them). hyper's own HTTP/1 connection, not hyper-util's auto-detecting one: no protocol
    // sniffing per connection, and a smaller task for every open stream. HTTP/2 is offered over
    // TLS only, by ALPN, with the same header cap.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.header_timeout)
        // The exact cap on the request head; `max_buf_size` alone is soft (one read may pull in
        // more than it before the head is parsed).
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(MAX_H2_STREAMS)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    let tls = state.tls.clone();
    let maintenance = tls.clone().map(|tls| tokio::spawn(tls.maintain()));
    let handshake_timeout = crate::tls::handshake_timeout(state.config.header_timeout);
    let connections = ConnectionCap::new(state.config.max_conn_per_ip);
    let graceful = GracefulShutdown::new();
    let mut signal = std::pin::pin!(signal);
    loop {
        let (stream, peer) = tokio::select! {
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
        let Some(slot) = connections.admit(peer.ip()) else {
            tracing::debug!(peer = %peer.ip(), "connection refused: GATEWAY_MAX_CONN_PER_IP reached");
            drop(stream);
            continue;
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
        let per_connection = PerConnection::new(&service, peer);
        let Some(tls) = &tls else {
            let connection = builder.serve_connection(TokioIo::new(stream), per_connection);
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                let _slot = slot;
                if let Err(err) = connection.await {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
            });
            continue;
        };
        let (acceptor, http1, http2) = (tls.acceptor.clone(), builder.clone(), h2.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let Some(stream) = handshake(&acceptor, stream, handshake_timeout).await else {
                return;
            };
            let alpn = stream.get_ref().1.alpn_protocol();
            if alpn == Some(crate::tls::resolver::ACME_TLS_ALPN) {
                // An ACME server's validation: the handshake was the whole answer.
                return;
            }
            let ended = if alpn == Some(b"h2") {
                let connection = http2.serve_connection(TokioIo::new(stream), per_connection);
                watcher.watch(connection).await
            } else {
                let connection = http1.serve_connection(TokioIo::new(stream), per_connection);
                watcher.watch(connection).await
            };
            if let Err(err) = ended {
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
    if let Some(task) = maintenance {
        task.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// The gateway's service as hyper calls it on one connection: each request gets the
/// connection's peer address (for the client address and the per-address rules) and goes
/// through a clone of the service, as `TowerToHyperService` would do.
#[derive(Clone)]
struct PerConnection {
    service: GatewayService,
    peer: PeerAddr,
}

impl PerConnection {
    fn new(service: &GatewayService, peer: SocketAddr) -> Self {
        Self {
            service: service.clone(),
            peer: PeerAddr(peer),
        }
    }
}

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for PerConnection {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = tower::util::Oneshot<GatewayService, http::Request<Body>>;

    fn call(&self, req: http::Request<hyper::body::Incoming>) -> Self::Future {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(self.peer);
        self.service.clone().oneshot(req)
    }
}

/// The TLS handshake, within `limit`; a failed or slow one only drops this connection.
async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    limit: Duration,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(err)) => {
            tracing::debug!(error = %err, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}
