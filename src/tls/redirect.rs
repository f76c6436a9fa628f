//! `GATEWAY_HTTP_LISTEN`: a plain-HTTP listener beside HTTPS that sends every request to the
//! same host and path over HTTPS (308, so a POST stays a POST), and carries no API. A client
//! that forgot the `s` is pointed at the right URL instead of left with a refused connection;
//! its key never travels in clear more than that one time, and the answer says so. With ACME's
//! HTTP-01 challenge it also answers the CA's `/.well-known/acme-challenge/TOKEN` requests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::ServerTls;
use super::acme::{AcmeChallenge, Http01Tokens};
use crate::state::AppState;

/// Where ACME HTTP-01 requests arrive.
const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// Start the plain-HTTP listener when it is wanted: `GATEWAY_HTTP_LISTEN`, or port 80 for
/// ACME's HTTP-01 challenge when nothing else is set.
pub async fn start(state: &AppState, https_port: u16) -> Result<(), String> {
    let config = &state.config;
    let http01 = state
        .tls
        .as_ref()
        .and_then(ServerTls::http01_tokens)
        .filter(|_| config.acme_challenge == AcmeChallenge::Http01);
    let default = http01
        .as_ref()
        .map(|_| SocketAddr::from(([0, 0, 0, 0], 80)));
    let Some(listen) = config.http_listen.or(default) else {
        return Ok(());
    };
    if state.tls.is_none() {
        return Err("GATEWAY_HTTP_LISTEN redirects to HTTPS: it needs GATEWAY_TLS".into());
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("GATEWAY_HTTP_LISTEN: cannot listen on {listen}: {e}"))?;
    tracing::info!(listen = %listen, "plain HTTP answers with redirects to HTTPS");
    tokio::spawn(serve(listener, https_port, http01));
    Ok(())
}

/// Serve redirects to HTTPS on `https_port` (and the HTTP-01 answers in `tokens`) until the task
/// is dropped.
pub async fn serve(listener: TcpListener, https_port: u16, tokens: Option<Http01Tokens>) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(16 * 1024);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let tokens = tokens.clone();
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            hyper::service::service_fn(move |req| {
                let answer = challenge_answer(&req, tokens.as_ref())
                    .unwrap_or_else(|| to_https(&req, https_port));
                async move { Ok::<_, Infallible>(answer) }
            }),
        );
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

/// The key authorization for an HTTP-01 token the CA asks for, if we are waiting for it.
fn challenge_answer<B>(req: &Request<B>, tokens: Option<&Http01Tokens>) -> Option<Response<Body>> {
    let token = req.uri().path().strip_prefix(CHALLENGE_PREFIX)?;
    let tokens = tokens?.lock().unwrap_or_else(|e| e.into_inner());
    let answer = tokens.get(token)?.clone();
    let mut response = Response::new(Body::from(answer));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Some(response)
}

/// The redirect for one request: same host (without its port), the HTTPS port, same path and
/// query. A request without a usable `Host` gets a 400.
pub fn to_https<B>(req: &Request<B>, https_port: u16) -> Response<Body> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_without_port)
        .filter(|h| !h.is_empty() && h.bytes().all(is_host_byte));
    let Some(host) = host else {
        return plain(
            StatusCode::BAD_REQUEST,
            "this port only redirects to HTTPS; send a Host header\n",
        );
    };
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let location = format!("https://{host}{port}{path}");
    let Ok(location) = HeaderValue::from_str(&location) else {
        return plain(StatusCode::BAD_REQUEST, "malformed request\n");
    };
    let mut response = plain(
        StatusCode::PERMANENT_REDIRECT,
        "this gateway speaks HTTPS: use the https:// URL\n",
    );
    response.headers_mut().insert(header::LOCATION, location);
    response
}

/// `example.org:80` -> `example.org`, `[::1]:80` -> `[::1]`.
fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':')
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(host: Option<&str>, uri: &str, port: u16) -> (u16, Option<String>) {
        let mut req = Request::builder().uri(uri);
        if let Some(host) = host {
            req = req.header(header::HOST, host);
        }
        let response = to_https(&req.body(()).unwrap_or_default(), port);
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (response.status().as_u16(), location)
    }

    #[test]
    fn redirects_keep_host_path_and_query() {
        assert_eq!(
            location(Some("gw.example:80"), "/v1/models?x=1", 443),
            (308, Some("https://gw.example/v1/models?x=1".into()))
        );
        assert_eq!(
            location(Some("[::1]:8080"), "/health", 8443),
            (308, Some("https://[::1]:8443/health".into()))
        );
        assert_eq!(location(None, "/", 443).0, 400);
        assert_eq!(location(Some("evil.example/path@x"), "/", 443).0, 400);
    }
}
