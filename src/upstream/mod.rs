//! The client for Ollama: one connection pool, timeouts, error mapping, NDJSON line streams.
//!
//! Every way the upstream can fail becomes a [`GatewayError`] here, with the transport detail
//! logged and the client-facing message free of URLs, hosts and ports.

mod chunks;
mod lines;
mod tail;

use std::convert::Infallible;
use std::future::Future;
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
            base,
            timeout,
        })
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

    /// Send a request and wait for the response head; a non-success status becomes an error
    /// carrying Ollama's status and message. Both together take at most the timeout.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, GatewayError> {
        self.within(successful(request)).await
    }

    /// Like [`send`](Self::send) but returns error statuses as responses (for passthrough).
    pub async fn send_raw(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, GatewayError> {
        self.within(async { request.send().await.map_err(|err| transport_error(&err)) })
            .await
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
        self.within(async { read_json(successful(request).await?).await })
            .await
    }

    /// GET a JSON answer, within the timeout.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        headers: &Forwarded,
    ) -> Result<T, GatewayError> {
        let request = self.request(Method::GET, path).headers(headers.0.clone());
        self.within(async { read_json(successful(request).await?).await })
            .await
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
        UpstreamChunks::new(erased(response), self.timeout, shutdown)
    }
}

/// A response's body as an [`UpstreamBody`].
fn erased(response: reqwest::Response) -> UpstreamBody {
    let body = http_body_util::BodyExt::map_err(reqwest::Body::from(response), |err| {
        Box::new(err) as Box<dyn std::error::Error + Send + Sync>
    });
    Box::pin(body)
}

/// Send `request`; a non-success status becomes an error with Ollama's message. The caller
/// bounds the time this takes.
async fn successful(request: reqwest::RequestBuilder) -> Result<reqwest::Response, GatewayError> {
    let response = request.send().await.map_err(|err| transport_error(&err))?;
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(error_from(response).await)
    }
}

/// Turn an error status into a [`GatewayError`] with Ollama's message (the caller bounds the
/// time this takes).
async fn error_from(response: reqwest::Response) -> GatewayError {
    let status = response.status();
    let body = read_limited(response).await.unwrap_or_default();
    upstream_error(status, &body)
}

/// Build the error for an upstream error status and body (`{"error":"..."}` or plain text).
pub fn upstream_error(status: StatusCode, body: &[u8]) -> GatewayError {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    let message = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_else(|_| {
            String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(500)
                .collect()
        });
    let message = if message.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("upstream error")
            .to_lowercase()
    } else {
        message
    };
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

async fn read_json<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, GatewayError> {
    let body = response.bytes().await.map_err(|err| {
        tracing::warn!(error = %err, "reading upstream body failed");
        GatewayError::UpstreamInterrupted
    })?;
    serde_json::from_slice(&body).map_err(|err| {
        tracing::warn!(error = %err, "upstream sent JSON the gateway cannot read");
        GatewayError::UpstreamProtocol
    })
}

/// Map a transport failure; the detail (which names the URL) is only logged.
fn transport_error(err: &reqwest::Error) -> GatewayError {
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
        let err = upstream_error(StatusCode::NOT_FOUND, br#"{"error":"model 'x' not found"}"#);
        assert!(matches!(err, GatewayError::ModelNotFound { .. }));
        let err = upstream_error(StatusCode::SERVICE_UNAVAILABLE, b"busy");
        assert_eq!(err.to_string(), "busy");
        let err = upstream_error(StatusCode::INTERNAL_SERVER_ERROR, b"");
        assert_eq!(err.to_string(), "internal server error");
    }
}
