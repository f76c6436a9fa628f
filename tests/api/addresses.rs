//! Client addresses: forwarding headers believed only from trusted proxies, allow and deny
//! lists, the per-address failed-authentication limiter and the per-address connection cap.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
    list.iter()
        .map(|n| ollama_gateway::config::parse_net(n).unwrap())
        .collect()
}

#[tokio::test]
async fn deny_rules_see_the_forwarded_client_only_behind_a_trusted_proxy() {
    let behind_proxy = Env::with(|c| {
        c.trusted_proxies = nets(&["127.0.0.1"]);
        c.deny_ips = nets(&["203.0.113.0/24"]);
    })
    .await;
    let from = |env: &Env, ip: &'static str| {
        env.post("/v1/chat/completions", &chat("llama3.2"))
            .header("x-forwarded-for", ip)
    };
    let refused = from(&behind_proxy, "203.0.113.7").send().await.unwrap();
    let (status, body) = read_json(refused).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "address_not_allowed", "{body}");
    assert_eq!(behind_proxy.upstream_calls("/api/chat"), 0);
    // Refused before authentication: no key needed to be refused, and none is checked.
    let (status, _) = read_json(
        behind_proxy
            .client
            .get(behind_proxy.url("/health"))
            .header("x-forwarded-for", "203.0.113.7")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = read_json(from(&behind_proxy, "198.51.100.1").send().await.unwrap()).await;
    assert_eq!(status, 200);

    // The same header from a peer that is not a trusted proxy changes nothing.
    let direct = Env::with(|c| c.deny_ips = nets(&["203.0.113.0/24"])).await;
    let (status, _) = read_json(from(&direct, "203.0.113.7").send().await.unwrap()).await;
    assert_eq!(status, 200, "a spoofed X-Forwarded-For is ignored");
    // CF-Connecting-IP likewise.
    let spoofed = direct
        .post("/v1/chat/completions", &chat("llama3.2"))
        .header("cf-connecting-ip", "203.0.113.7");
    assert_eq!(spoofed.send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn an_allow_list_refuses_every_other_address_on_every_route() {
    let env = Env::with(|c| c.allow_ips = nets(&["10.0.0.0/8"])).await;
    for path in ["/health", "/v1/models", "/api/tags", "/docs/"] {
        let answer = env.get(path).send().await.unwrap();
        assert_eq!(answer.status(), 403, "{path}");
    }
    let (_, body) = env.get_json("/api/tags").await;
    assert_eq!(body["error"], "requests from this address are not allowed");
    assert_eq!(env.upstream_calls("/api/tags"), 0);
    let allowed = Env::with(|c| c.allow_ips = nets(&["127.0.0.0/8", "::1"])).await;
    assert_eq!(
        allowed.get("/v1/models").send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn failed_authentication_is_limited_per_client_address() {
    let env = Env::with(|c| {
        c.trusted_proxies = nets(&["127.0.0.1"]);
        c.auth_failures = 3;
    })
    .await;
    let attempt = |key: &'static str, ip: &'static str| {
        env.client
            .get(env.url("/v1/models"))
            .bearer_auth(key)
            .header("x-forwarded-for", ip)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(attempt("guess", "192.0.2.50").await.unwrap().status(), 401);
    }
    // Blocked now, even with the right key.
    let blocked = attempt(KEY, "192.0.2.50").await.unwrap();
    assert_eq!(blocked.status(), 429);
    let retry_after: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let (_, body) = read_json(blocked).await;
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("failed authentications"),
        "{body}"
    );
    // Another address is served; open routes stay open for the blocked one.
    assert_eq!(attempt(KEY, "192.0.2.51").await.unwrap().status(), 200);
    let health = env
        .client
        .get(env.url("/health"))
        .header("x-forwarded-for", "192.0.2.50")
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn the_audit_line_names_the_client_address() {
    let logs = crate::operations::captured_logs();
    let env = Env::with(|c| c.trusted_proxies = nets(&["127.0.0.1"])).await;
    let answer = env
        .get("/v1/models")
        .header("x-request-id", "client-address-1")
        .header("x-forwarded-for", "198.51.100.23")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let mut line = None;
    for _ in 0..50 {
        let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
        line = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["request_id"] == "client-address-1");
        if line.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let line = line.expect("an audit line");
    assert_eq!(line["client"], json!("198.51.100.23"), "{line}");
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_closed() {
    let env = Env::with(|c| c.max_conn_per_ip = 2).await;
    let request =
        format!("GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\r\n");
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut socket = tokio::net::TcpStream::connect(env.addr).await.unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut buf = [0u8; 12];
        socket.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        open.push(socket);
    }
    let mut third = tokio::net::TcpStream::connect(env.addr).await.unwrap();
    let _ = third.write_all(request.as_bytes()).await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("closed, not left hanging");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // One closes: a new connection fits again.
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = env.get("/v1/models").send().await.unwrap();
    assert_eq!(answer.status(), 200);
}
