//! The client for Ollama: one connection pool, timeouts, error mapping, NDJSON line streams.
//!
//! Every way the upstream can fail becomes a [`GatewayError`] here, with the transport detail
//! logged and the client-facing message free of URLs, hosts and ports: an error Ollama reports
//! (an error status's body, an `{"error"}` line in a stream, an error inside a 200 answer) is
//! built by [`reported`], the one place its text is scrubbed ([`scrub`]); a redirect is a
//! protocol error, never passed on.

mod chunks;
mod lines;
pub mod probe;
pub mod scrub;
mod tail;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;

use bytes::Bytes;
use futures::StreamExt;
use http::request::Parts;
use http::{HeaderMap, Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use chunks::{UpstreamBody, UpstreamChunks};
pub use lines::{NativeLine, NativeLines};
pub use probe::{Reachability, UpstreamProbe};
pub use scrub::Scrubber;
pub use tail::{LastLine, Tail};

use crate::error::GatewayError;

/// Connect timeout for the upstream (a local Ollama answers in microseconds).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest upstream error body read to extract its message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Ollama, as the gateway talks to it.
#[derive(Clone, Debug)]
pub struct Upstream {
    client: reqwest::Client,
    /// Parsed once; each request only swaps in its path and query.
    base: reqwest::Url,
    timeout: Duration,
    /// Takes the upstream's addresses out of the error text passed on to clients.
    scrubber: Arc<Scrubber>,
}

impl Upstream {
    /// A client for the Ollama at `base` (no trailing slash). `timeout` bounds a non-streamed
    /// answer, the wait for a stream's first byte and each gap in a stream.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, String> {
        let base = reqwest::Url::parse(base).map_err(|e| format!("'{base}' is not a URL: {e}"))?;
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            // Ollama is local: a proxy from the environment would only get in the way, a
            // redirect would be a surprise, and a retry could run a generation twice.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            scrubber: Arc::new(Scrubber::new(&base)),
            base,
            timeout,
        })
    }

    /// The configured base URL (for the operator's log lines only: never sent to a client).
    pub fn base_url(&self) -> &reqwest::Url {
        &self.base
    }

    /// Start a request to `path_and_query` (which starts with `/`). A base URL with a path
    /// (Ollama behind a prefix) keeps its prefix.
    pub fn request(&self, method: Method, path_and_query: &str) -> reqwest::RequestBuilder {
        let (path, query) = path_and_query
            .split_once('?')
            .map_or((path_and_query, None), |(p, q)| (p, Some(q)));
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/');
        if prefix.is_empty() {
            url.set_path(path);
        } else {
            url.set_path(&format!("{prefix}{path}"));
        }
        url.set_query(query);
        self.client.request(method, url)
    }

    /// `call`, given at most the timeout.
    async fn within<T>(
        &self,
        call: impl Future<Output = Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or(Err(GatewayError::UpstreamTimeout(self.timeout)))
    }

    /// Send a request and wait for the response head; any status but a success becomes an
    /// error (Ollama's status and scrubbed message, or 502 for a redirect). Both together take
    /// at most the timeout. The native passthrough uses this too: its answers are streamed on,
    /// its errors answered by the gateway.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, GatewayError> {
        self.within(self.successful(request)).await
    }

    /// An error Ollama reported in a 200 answer (`{"error": ...}` in place of the answer).
    pub fn failure(&self, message: &str) -> GatewayError {
        reported(&self.scrubber, StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The error for an upstream error status and its body.
    pub fn error_for(&self, status: StatusCode, body: &[u8]) -> GatewayError {
        upstream_error(&self.scrubber, status, body)
    }

    /// The bound on a non-streamed answer and on each wait in a stream.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Send `request`; a non-success status becomes an error. The caller bounds the time this
    /// takes.
    async fn successful(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, GatewayError> {
        self.attempt(request).await.map_err(SendError::into_error)
    }

    /// [`send`](Self::send) without the timeout, telling a connection that could not be made
    /// (nothing reached this Ollama: the request may go to another) from every other failure.
    /// The caller bounds the time this takes.
    pub async fn attempt(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SendError> {
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) if err.is_connect() => {
                tracing::warn!(error = %err, "upstream connection failed");
                return Err(SendError::NotConnected);
            }
            Err(err) => return Err(SendError::Failed(transport_error(&err))),
        };
        let status = response.status();
        if status.is_success() {
            Ok(response)
        } else if status.is_redirection() || status.is_informational() {
            // Redirects are not followed (a POST would be replayed elsewhere), and passing one
            // on would send the client to wherever the upstream points.
            tracing::warn!(
                status = status.as_u16(),
                location = ?response.headers().get(http::header::LOCATION),
                "upstream answered with a redirect"
            );
            Err(SendError::Failed(GatewayError::UpstreamProtocol))
        } else {
            let body = read_limited(response).await.unwrap_or_default();
            Err(SendError::Failed(self.error_for(status, &body)))
        }
    }

    /// A POST of a JSON body with the forwarded headers.
    fn post(
        &self,
        path: &str,
        body: &(impl Serialize + ?Sized),
        headers: &Forwarded,
    ) -> reqwest::RequestBuilder {
        self.request(Method::POST, path)
            .headers(headers.0.clone())
            .json(body)
    }

    /// POST a JSON body.
    pub async fn post_json<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
        headers: &Forwarded,
    ) -> Result<reqwest::Response, GatewayError> {
        self.send(self.post(path, body, headers)).await
    }

    /// POST a JSON body and read the whole JSON answer, all within the timeout.
    pub async fn call_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        headers: &Forwarded,
    ) -> Result<T, GatewayError> {
        let request = self.post(path, body, headers);
        self.within(async { read_json(self.successful(request).await?).await })
            .await
    }

    /// GET a JSON answer, within the timeout.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        headers: &Forwarded,
    ) -> Result<T, GatewayError> {
        let request = self.request(Method::GET, path).headers(headers.0.clone());
        self.within(async { read_json(self.successful(request).await?).await })
            .await
    }

    /// Read a whole JSON answer (already known to be a success), within the timeout.
    pub async fn read_json<T: DeserializeOwned>(
        &self,
        response: reqwest::Response,
    ) -> Result<T, GatewayError> {
        self.within(read_json(response)).await
    }

    /// The body as typed NDJSON lines, each chunk awaited within the timeout, ending early
    /// when the shutdown grace period is over.
    pub fn native_lines<T: NativeLine>(
        &self,
        response: reqwest::Response,
        shutdown: &crate::shutdown::Shutdown,
    ) -> NativeLines<T> {
        NativeLines::new(self.chunks(response, shutdown))
    }

    /// The body as chunks, each awaited within the timeout, ending early when the shutdown
    /// grace period is over.
    pub fn chunks(
        &self,
        response: reqwest::Response,
        shutdown: &crate::shutdown::Shutdown,
    ) -> UpstreamChunks {
        self.chunks_of(erased(response), shutdown)
    }

    /// [`chunks`](Self::chunks) of a body already taken out of its response (the backend pool
    /// wraps it to hold its slot for as long as the body is read).
    pub fn chunks_of(
        &self,
        body: UpstreamBody,
        shutdown: &crate::shutdown::Shutdown,
    ) -> UpstreamChunks {
        UpstreamChunks::new(body, self.timeout, shutdown, self.scrubber.clone())
    }
}

/// How sending a request failed.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made: the request never reached this Ollama.
    NotConnected,
    /// Anything else, as the client is to see it (the request may have been sent).
    Failed(GatewayError),
}

impl SendError {
    /// The error the client sees.
    pub fn into_error(self) -> GatewayError {
        match self {
            Self::NotConnected => GatewayError::UpstreamUnavailable,
            Self::Failed(err) => err,
        }
    }
}

/// A response's body as an [`UpstreamBody`].
pub fn erased(response: reqwest::Response) -> UpstreamBody {
    let body = http_body_util::BodyExt::map_err(reqwest::Body::from(response), |err| {
        Box::new(err) as Box<dyn std::error::Error + Send + Sync>
    });
    Box::pin(body)
}

/// The error for an upstream error status and body: Ollama's `{"error": "..."}` message,
/// scrubbed; anything else (an HTML page from a proxy, plain text, nothing) gets the gateway's
/// own message, and the original is logged.
fn upstream_error(scrubber: &Scrubber, status: StatusCode, body: &[u8]) -> GatewayError {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) if !error.trim().is_empty() => reported(scrubber, status, &error),
        _ => {
            if !body.is_empty() {
                let original: String = String::from_utf8_lossy(body).chars().take(500).collect();
                tracing::warn!(
                    status = status.as_u16(),
                    body = ?original,
                    "upstream error without an Ollama error message"
                );
            }
            GatewayError::Upstream {
                status,
                message: format!(
                    "the model server answered {} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("error").to_lowercase()
                ),
            }
        }
    }
}

/// The error for a message Ollama reported: addresses scrubbed (the original logged when that
/// changed it), a 404 naming a missing model typed as such.
pub fn reported(scrubber: &Scrubber, status: StatusCode, message: &str) -> GatewayError {
    let scrubbed = scrubber.scrub(message);
    if let std::borrow::Cow::Owned(_) = scrubbed {
        tracing::warn!(original = ?message, "upstream error message named an address");
    }
    let message = scrubbed.into_owned();
    if status == StatusCode::NOT_FOUND && message.contains("not found") {
        GatewayError::ModelNotFound { message }
    } else {
        GatewayError::Upstream { status, message }
    }
}

async fn read_limited(response: reqwest::Response) -> Result<Bytes, reqwest::Error> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let room = MAX_ERROR_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(Bytes::from(body))
}

pub(crate) async fn read_json<T: DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GatewayError> {
    let body = response.bytes().await.map_err(|err| {
        tracing::warn!(error = %err, "reading upstream body failed");
        GatewayError::UpstreamInterrupted
    })?;
    serde_json::from_slice(&body).map_err(|err| {
        tracing::warn!(error = %err, "upstream sent JSON the gateway cannot read");
        GatewayError::UpstreamProtocol
    })
}

/// Map a transport failure; the detail (which names the URL) is only logged. A request body
/// that failed because the client was too slow sending it is the client's 408.
fn transport_error(err: &reqwest::Error) -> GatewayError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if cause.is::<crate::gate::limits::BodyTimedOut>() {
            return GatewayError::BodyTimeout;
        }
        source = cause.source();
    }
    tracing::warn!(error = %err, "upstream request failed");
    // The only timeout reqwest itself enforces is the connect timeout: unreachable, not slow.
    GatewayError::UpstreamUnavailable
}

/// The client headers that go upstream, taken from a request as an extractor: only these are
/// copied, not the whole header map.
#[derive(Clone, Debug, Default)]
pub struct Forwarded(pub HeaderMap);

impl From<&HeaderMap> for Forwarded {
    fn from(headers: &HeaderMap) -> Self {
        Self(forwarded_headers(headers))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Forwarded {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self::from(&parts.headers))
    }
}

/// The client headers that go upstream: content negotiation and the request id. Never
/// `Authorization` (the gateway's key is not Ollama's business), hop-by-hop headers, or the
/// client's `Content-Type` (the body the gateway sends is its own JSON; the passthrough adds the
/// client's type back).
pub fn forwarded_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in ["accept", "user-agent", "x-request-id"] {
        if let Some(value) = headers.get(name) {
            out.insert(name, value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_for(base: &str, path: &str) -> String {
        let upstream =
            Upstream::new(base, Duration::from_secs(1)).unwrap_or_else(|e| panic!("{e}"));
        let request = upstream.request(Method::GET, path).build();
        request
            .map(|r| r.url().to_string())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn paths_and_queries_join_the_base_url() {
        assert_eq!(
            url_for("http://127.0.0.1:11434", "/api/tags"),
            "http://127.0.0.1:11434/api/tags"
        );
        assert_eq!(
            url_for("http://h:1/ollama/", "/api/tags?x=1"),
            "http://h:1/ollama/api/tags?x=1"
        );
        assert_eq!(
            url_for("http://h:1/ollama", "/api/chat"),
            "http://h:1/ollama/api/chat"
        );
    }

    #[test]
    fn upstream_error_bodies_become_typed_errors() {
        let scrubber = Scrubber::default();
        let err = upstream_error(
            &scrubber,
            StatusCode::NOT_FOUND,
            br#"{"error":"model 'x' not found"}"#,
        );
        assert!(matches!(err, GatewayError::ModelNotFound { .. }));
        let err = upstream_error(
            &scrubber,
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"{"error":"dial tcp 10.0.0.7:11434: connect: connection refused"}"#,
        );
        assert_eq!(
            err.to_string(),
            "dial tcp [upstream]: connect: connection refused"
        );
        let err = upstream_error(
            &scrubber,
            StatusCode::BAD_GATEWAY,
            b"<html><h1>502 Bad Gateway</h1>nginx at 10.0.0.7</html>",
        );
        assert_eq!(err.to_string(), "the model server answered 502 bad gateway");
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
        let err = upstream_error(&scrubber, StatusCode::INTERNAL_SERVER_ERROR, b"");
        assert_eq!(
            err.to_string(),
            "the model server answered 500 internal server error"
        );
    }
}
