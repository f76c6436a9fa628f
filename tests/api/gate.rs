//! The gate: keys, model allowlist, admin endpoints, path normalisation, limits, CORS.

use std::io::Write;
use std::time::Duration;

use ollama_gateway::config::{AuthMode, Secret};
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn missing_or_wrong_keys_are_401_in_the_surface_shape() {
    let env = Env::start().await;
    for (path, openai) in [
        ("/v1/models", true),
        ("/models", false),
        ("/api/tags", false),
        ("/metrics", false),
    ] {
        for auth in [None, Some("Bearer wrong-key"), Some("Basic dGVzdA==")] {
            let mut request = env.client.get(env.url(path));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{path} {auth:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let (_, body) = read_json(response).await;
            if openai {
                assert_eq!(body["error"]["type"], "authentication_error");
                assert_eq!(body["error"]["code"], "invalid_api_key");
            } else {
                assert!(body["error"].is_string(), "{body}");
            }
            assert!(!body.to_string().contains("wrong-key"), "keys never echoed");
        }
    }
    assert_eq!(env.fake.request_count(), 0);
}

#[tokio::test]
async fn open_routes_need_no_key() {
    let env = Env::start().await;
    for path in ["/health", "/ready", "/openapi.json", "/docs/"] {
        let response = env.client.get(env.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn the_authorization_header_never_goes_upstream() {
    let env = Env::start().await;
    env.post_json("/v1/chat/completions", &chat("llama3.2"))
        .await;
    let native = env
        .post("/api/chat", &chat("llama3.2"))
        .send()
        .await
        .unwrap();
    assert_eq!(ndjson(native).await.last().unwrap()["done"], true);
    env.get_json("/api/tags").await;
    let requests = env.fake.requests();
    assert!(requests.len() >= 3);
    for request in requests {
        assert!(
            request
                .headers
                .iter()
                .all(|(name, _)| name != "authorization"),
            "{:?}",
            request.headers
        );
    }
}

#[tokio::test]
async fn keys_from_every_source_and_expiry() {
    let path = std::env::temp_dir().join(format!("gw-test-keys-{}.toml", std::process::id()));
    let digest = ollama_gateway::gate::keys::digest("file-digest-key");
    let text = format!(
        "[[keys]]\nname = \"plain\"\nkey = \"file-plain-key\"\n\n[[keys]]\nname = \"hashed\"\nsha256 = \"{}\"\n\n[[keys]]\nname = \"old\"\nkey = \"expired-key\"\nexpires = \"2001-01-01T00:00:00Z\"\n",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let file = path.clone();
    let env = Env::with(move |c| {
        c.ollama_api_key = Some(Secret::new("fastapi-style-key"));
        c.config_file = Some(file);
    })
    .await;
    for key in [
        KEY,
        "fastapi-style-key",
        "file-plain-key",
        "file-digest-key",
    ] {
        let response = env
            .client
            .get(env.url("/v1/models"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{key}");
    }
    let response = env
        .client
        .get(env.url("/v1/models"))
        .bearer_auth("expired-key")
        .send()
        .await
        .unwrap();
    let (status, body) = read_json(response).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn auth_off_is_explicit() {
    let env = Env::with(|c| c.auth = AuthMode::Off).await;
    let (status, _) = read_json(env.client.get(env.url("/v1/models")).send().await.unwrap()).await;
    assert_eq!(status, 200);
}

async fn assert_model_refused(
    env: &Env,
    method: &str,
    path: &str,
    body: Option<Value>,
    openai: bool,
) {
    let mut request = env
        .client
        .request(method.parse().unwrap(), env.url(path))
        .bearer_auth(KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let (status, out) = read_json(request.send().await.unwrap()).await;
    assert_eq!(status, 403, "{path}: {out}");
    if openai {
        assert_eq!(out["error"]["code"], "model_not_allowed", "{path}");
    } else {
        assert!(
            out["error"].as_str().unwrap().contains("not allowed"),
            "{path}: {out}"
        );
    }
}

#[tokio::test]
async fn the_allowlist_is_enforced_on_every_surface_before_the_upstream() {
    let env = Env::with(|c| c.allowed_models = vec!["llama3.2".into(), "all-*".into()]).await;
    let chat_body = chat("qwen3");
    assert_model_refused(
        &env,
        "POST",
        "/v1/chat/completions",
        Some(chat_body.clone()),
        true,
    )
    .await;
    assert_model_refused(
        &env,
        "POST",
        "/v1/completions",
        Some(json!({"model": "qwen3", "prompt": "x"})),
        true,
    )
    .await;
    assert_model_refused(
        &env,
        "POST",
        "/v1/embeddings",
        Some(json!({"model": "qwen3", "input": "x"})),
        true,
    )
    .await;
    assert_model_refused(&env, "GET", "/v1/models/qwen3", None, true).await;
    assert_model_refused(&env, "POST", "/chat", Some(chat_body.clone()), false).await;
    assert_model_refused(&env, "POST", "/api/chat", Some(chat_body), false).await;
    assert_model_refused(
        &env,
        "POST",
        "/api/generate",
        Some(json!({"model": "qwen3", "prompt": "x"})),
        false,
    )
    .await;
    assert_model_refused(
        &env,
        "POST",
        "/api/embed",
        Some(json!({"model": "qwen3", "input": "x"})),
        false,
    )
    .await;
    assert_model_refused(
        &env,
        "POST",
        "/api/embeddings",
        Some(json!({"model": "qwen3", "prompt": "x"})),
        false,
    )
    .await;
    assert_model_refused(
        &env,
        "POST",
        "/api/show",
        Some(json!({"name": "qwen3:latest"})),
        false,
    )
    .await;
    assert_eq!(env.fake.request_count(), 0, "the upstream was never called");

    // Allowed models work, with or without their tag.
    let (status, _) = env
        .post_json("/v1/chat/completions", &chat("llama3.2:latest"))
        .await;
    assert_eq!(status, 200);
    let (status, _) = env
        .post_json("/api/embed", &json!({"model": "all-minilm", "input": "x"}))
        .await;
    assert_eq!(status, 200);

    // Listings show only what may be used.
    let (_, v1) = env.get_json("/v1/models").await;
    let ids: Vec<&str> = v1["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["llama3.2:latest", "all-minilm:latest"]);
    for path in ["/models", "/api/tags"] {
        let (_, tags) = env.get_json(path).await;
        let names: Vec<&str> = tags["models"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["name"].as_str())
            .collect();
        assert_eq!(
            names,
            vec!["llama3.2:latest", "all-minilm:latest"],
            "{path}"
        );
    }
    let (status, ps) = env.get_json("/api/ps").await;
    assert_eq!(status, 200);
    assert!(ps["models"].as_array().unwrap().iter().all(|m| {
        let name = m["name"].as_str().unwrap_or_default();
        name.starts_with("llama3.2") || name.starts_with("all-")
    }));
}

#[tokio::test]
async fn per_key_models_and_admin_rights_from_the_key_file() {
    let path = std::env::temp_dir().join(format!("gw-test-admin-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "[[keys]]\nname = \"ops\"\nkey = \"admin-key\"\nadmin = true\n\n[[keys]]\nname = \"narrow\"\nkey = \"narrow-key\"\nmodels = [\"qwen3\"]\n",
    )
    .unwrap();
    let file = path.clone();
    let env = Env::with(move |c| {
        c.allow_admin = true;
        c.config_file = Some(file);
    })
    .await;
    let pull = json!({"model": "llama3.2", "stream": false});
    let response = env
        .client
        .post(env.url("/api/pull"))
        .bearer_auth("admin-key")
        .json(&pull)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = env
        .client
        .post(env.url("/api/pull"))
        .bearer_auth(KEY)
        .json(&pull)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "enabled, but only for admin keys");
    assert_eq!(env.upstream_calls("/api/pull"), 1);

    let narrow = |path: &str| env.client.get(env.url(path)).bearer_auth("narrow-key");
    let (_, list) = read_json(narrow("/v1/models").send().await.unwrap()).await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["qwen3:latest"]);
    let response = env
        .client
        .post(env.url("/v1/chat/completions"))
        .bearer_auth("narrow-key")
        .json(&chat("llama3.2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn path_tricks_never_reach_a_refused_endpoint() {
    let env = Env::with(|c| c.allow_admin = false).await;
    for path in [
        "/api//pull",
        "/api/./pull",
        "/api/tags/../pull",
        "/api/%70ull",
        "/%61pi/pull",
        "/api/%2e/pull",
        "//api/pull",
    ] {
        let response = env
            .client
            .post(env.url(path))
            .bearer_auth(KEY)
            .json(&json!({"model": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    for path in ["/api/../../etc/passwd", "/api/%00pull", "/api/%ff"] {
        let response = env
            .client
            .post(env.url(path))
            .bearer_auth(KEY)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(response.status().as_u16(), 400 | 404),
            "{path}: {}",
            response.status()
        );
    }
    assert_eq!(env.fake.request_count(), 0);
    // The normalised path is what goes upstream.
    let (status, _) = env.get_json("/api//tags").await;
    assert_eq!(status, 200);
    assert_eq!(
        env.fake
            .requests()
            .last()
            .map(|r| r.path.clone())
            .as_deref(),
        Some("/api/tags")
    );
}

#[tokio::test]
async fn oversized_bodies_are_413_before_the_upstream() {
    let env = Env::with(|c| c.max_body = 1024).await;
    let big = "x".repeat(4096);
    let mut body = chat("llama3.2");
    body["messages"][0]["content"] = json!(big);
    for (path, openai) in [
        ("/v1/chat/completions", true),
        ("/chat", false),
        ("/api/chat", false),
    ] {
        let (status, out) = env.post_json(path, &body).await;
        assert_eq!(status, 413, "{path}");
        if openai {
            assert_eq!(out["error"]["code"], "request_too_large");
        } else {
            assert!(out["error"].is_string());
        }
    }
    // Chunked bodies (no Content-Length) are capped while read.
    let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(
        serde_json::to_vec(&body).unwrap(),
    )]);
    let response = env
        .client
        .post(env.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(env.fake.request_count(), 0);
}

#[tokio::test]
async fn bodies_under_the_limit_are_accepted_even_when_large() {
    let env = Env::start().await;
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let mut body = chat("llava");
    body["messages"][0]["content"] = json!([{"type": "text", "text": "x".repeat(3 << 20)},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}}]);
    let (status, out) = env.post_json("/v1/chat/completions", &body).await;
    assert_eq!(
        status, 200,
        "a 3 MiB body is under the 32 MiB default: {out}"
    );
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let env = Env::with(|c| {
        c.rate_limit = 60;
        c.rate_burst = 3;
        c.metrics_open = true;
    })
    .await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..5 {
        let response = env.get("/v1/models").send().await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            limited = Some(response);
        }
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    let response = limited.unwrap();
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=2).contains(&retry),
        "one request per second refills: {retry}"
    );
    assert_eq!(response.headers()["x-ratelimit-limit-requests"], "60");
    let (_, body) = read_json(response).await;
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(env.upstream_calls("/api/tags"), 3);
    let metrics = env
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gateway_refused_total{reason=\"rate_limited_key\"}"),
        "per-key refusals are told apart"
    );
}

#[tokio::test]
async fn a_key_refused_by_its_own_limit_spends_nothing_of_the_global_one() {
    let env = Env::with(|c| {
        c.api_keys = vec![Secret::new(KEY), Secret::new("second")];
        c.rate_limit = 1;
        c.rate_burst = 1;
        c.global_rate_limit = 2;
    })
    .await;
    let mut statuses = Vec::new();
    for key in [KEY, KEY, KEY, KEY, "second"] {
        let response = env
            .client
            .get(env.url("/models"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(
        statuses,
        [200, 429, 429, 429, 200],
        "the second key still gets the global budget's other request"
    );
}

#[tokio::test]
async fn a_global_limit_applies_across_keys() {
    let env = Env::with(|c| {
        c.api_keys = vec![Secret::new(KEY), Secret::new("second")];
        c.global_rate_limit = 2;
    })
    .await;
    let a = env
        .client
        .get(env.url("/models"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let b = env
        .client
        .get(env.url("/models"))
        .bearer_auth("second")
        .send()
        .await
        .unwrap();
    let c = env
        .client
        .get(env.url("/models"))
        .bearer_auth("second")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            a.status().as_u16(),
            b.status().as_u16(),
            c.status().as_u16()
        ),
        (200, 200, 429)
    );
    assert!(c.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn the_concurrency_cap_counts_open_streams() {
    let env = Env::with_fake(
        fake_ollama::FakeConfig {
            chunk_gap: Duration::from_millis(100),
            ..Default::default()
        },
        |c| c.max_concurrent = 1,
    )
    .await;
    let mut body = chat("bench");
    body["stream"] = json!(true);
    body["max_tokens"] = json!(20);
    let mut open = env
        .post("/v1/chat/completions", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), 200);
    let _ = open.chunk().await.unwrap();
    let second = env
        .post("/v1/chat/completions", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 429);
    drop(open);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let third = env
        .post("/v1/chat/completions", &chat("llama3.2"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        third.status(),
        200,
        "the permit is released when the stream ends"
    );
}

#[tokio::test]
async fn cors_preflight_needs_no_key_and_allows_the_needed_headers() {
    let env = Env::with(|c| c.cors_origins = vec!["http://app.example".into()]).await;
    let response = env
        .client
        .request(reqwest::Method::OPTIONS, env.url("/v1/chat/completions"))
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-stainless-os",
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "http://app.example");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    let response = env
        .get("/v1/models")
        .header("origin", "http://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    let response = env
        .get("/v1/models")
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn slow_clients_cannot_hold_a_connection_and_huge_headers_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = Env::with(|c| c.header_timeout = Duration::from_millis(300)).await;
    let mut socket = tokio::net::TcpStream::connect(env.addr).await.unwrap();
    socket
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "the server closed a connection whose headers never finished"
    );

    let response = env
        .get("/v1/models")
        .header("x-padding", "a".repeat(100 * 1024))
        .send()
        .await;
    match response {
        Ok(response) => assert_eq!(response.status(), 431),
        Err(err) => assert!(
            err.is_request() || err.is_connect() || err.to_string().contains("connection"),
            "{err}"
        ),
    }
    assert_eq!(env.fake.request_count(), 0);
    let (status, _) = env.get_json("/v1/models").await;
    assert_eq!(status, 200, "and it keeps serving");
}

#[tokio::test]
async fn model_keys_spelled_another_way_cannot_slip_past_the_allowlist() {
    let env = Env::with(|c| c.allowed_models = vec!["llama3.2".into()]).await;
    let sneaky = json!({"model": "llama3.2", "MODEL": "qwen3", "messages": [{"role": "user", "content": "x"}], "stream": false});
    for path in ["/api/chat", "/chat"] {
        let (status, out) = env.post_json(path, &sneaky).await;
        assert_eq!(status, 400, "{path}: {out}");
        assert!(out["error"].as_str().unwrap().contains("MODEL"), "{out}");
    }
    let (status, _) = env
        .post_json("/api/show", &json!({"model": "llama3.2", "name": "qwen3"}))
        .await;
    assert_eq!(status, 403, "every model a body names is checked");
    assert_eq!(env.fake.request_count(), 0);
}

#[tokio::test]
async fn head_on_listings_answers_like_get() {
    let env = Env::start().await;
    for path in ["/api/tags", "/api/ps", "/api/version"] {
        let response = env
            .client
            .head(env.url(path))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}
