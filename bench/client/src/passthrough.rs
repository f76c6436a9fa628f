//! `passthrough`: the smallest proxy on the gateway's own stack (hyper HTTP/1 server, reqwest
//! client, tokio multi-thread runtime, `TCP_NODELAY` both ways). No parsing, no translation, no
//! middleware: it forwards method, path, `content-type` and body, and streams the answer back.
//! Measured next to the gateway it shows the floor that any gateway built on these crates pays,
//! so the gateway's own cost is the difference between the two.
//!
//! `--client hyper` swaps reqwest for hyper-util's pooled client (the one reqwest wraps), so the
//! report can show what reqwest's own layers cost per request.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;

use crate::args::Args;

type ProxyBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// Serve until killed.
pub fn run(args: &Args) -> Result<Value, String> {
    let listen: SocketAddr = args
        .get("listen")
        .ok_or("give --listen 127.0.0.1:PORT")?
        .parse()
        .map_err(|e| format!("--listen: {e}"))?;
    if !listen.ip().is_loopback() {
        return Err("--listen must be a loopback address".to_owned());
    }
    let upstream: reqwest::Url = args
        .get("upstream")
        .ok_or("give --upstream http://127.0.0.1:PORT")?
        .parse()
        .map_err(|e| format!("--upstream: {e}"))?;
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    // The same runtime the gateway's `#[tokio::main]` builds: multi-thread, one worker per CPU.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = match args.string("client", "reqwest").as_str() {
        "reqwest" => Upstream::Reqwest(client),
        "hyper" => {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            Upstream::Hyper(Box::new(
                Client::builder(TokioExecutor::new()).build(connector),
            ))
        }
        other => return Err(format!("--client: '{other}' is not reqwest or hyper")),
    };
    runtime.block_on(serve(listen, upstream, client))
}

/// The upstream client under test.
#[derive(Clone)]
enum Upstream {
    Reqwest(reqwest::Client),
    Hyper(Box<Client<HttpConnector, Full<Bytes>>>),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Upstream {
    /// Send `method url` with `body` (and its content type); the answer's status, content type
    /// and streamed body.
    async fn send(
        &self,
        parts: &http::request::Parts,
        url: reqwest::Url,
        body: Bytes,
    ) -> Result<Response<ProxyBody>, BoxError> {
        let content_type = parts.headers.get(CONTENT_TYPE);
        let (status, answer_type, body) = match self {
            Self::Reqwest(client) => {
                let mut request = client.request(parts.method.clone(), url).body(body);
                if let Some(kind) = content_type {
                    request = request.header(CONTENT_TYPE, kind);
                }
                let upstream = request.send().await?;
                let kind = upstream.headers().get(CONTENT_TYPE).cloned();
                let status = upstream.status();
                let stream = upstream
                    .bytes_stream()
                    .map_ok(Frame::data)
                    .map_err(|e| Box::new(e) as BoxError);
                (status, kind, BodyExt::boxed(StreamBody::new(stream)))
            }
            Self::Hyper(client) => {
                let mut request = Request::builder()
                    .method(parts.method.clone())
                    .uri(url.as_str());
                if let Some(kind) = content_type {
                    request = request.header(CONTENT_TYPE, kind);
                }
                let upstream = client.request(request.body(Full::new(body))?).await?;
                let kind = upstream.headers().get(CONTENT_TYPE).cloned();
                let status = upstream.status();
                let body = upstream.into_body().map_err(|e| Box::new(e) as BoxError);
                (status, kind, BodyExt::boxed(body))
            }
        };
        let mut response = Response::builder().status(status);
        if let Some(kind) = answer_type {
            response = response.header(CONTENT_TYPE, kind);
        }
        Ok(response.body(body)?)
    }
}

async fn serve(
    listen: SocketAddr,
    upstream: reqwest::Url,
    client: Upstream,
) -> Result<Value, String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("bind {listen}: {e}"))?;
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let client = client.clone();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                forward(req, client.clone(), upstream.clone())
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

async fn forward(
    req: Request<Incoming>,
    client: Upstream,
    mut url: reqwest::Url,
) -> Result<Response<ProxyBody>, Infallible> {
    let (parts, body) = req.into_parts();
    url.set_path(parts.uri.path());
    let answer = async {
        let body = body.collect().await?.to_bytes();
        client.send(&parts, url, body).await
    };
    Ok(answer.await.unwrap_or_else(|err| {
        let mut response = Response::new(
            Full::new(Bytes::from(err.to_string()))
                .map_err(|never| match never {})
                .boxed(),
        );
        *response.status_mut() = hyper::StatusCode::BAD_GATEWAY;
        response
    }))
}
