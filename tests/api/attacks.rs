//! The attacks of an outside review (issue 13), each sent as an attacker would (raw sockets
//! where a client library would tidy the request up), with the status, the body and what
//! reached the fake upstream checked.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// Send `head` (and `body`) on a fresh connection and read until the server closes it.
async fn raw(env: &Env, request: &[u8]) -> String {
    let mut socket = tokio::net::TcpStream::connect(env.addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// The JSON body of a raw HTTP/1.1 answer, chunked or not.
fn raw_json(answer: &str) -> Value {
    let (head, mut rest) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let mut body = String::new();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 || after.len() < size {
                break;
            }
            body.push_str(&after[..size]);
            rest = after[size..].trim_start_matches("\r\n");
        }
    } else {
        body.push_str(rest);
    }
    serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {answer}"))
}

/// A key file (named after `test`) with one admin key, `admin-key`.
fn admin_key_file(test: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "gw-test-attacks-{}-{test}.toml",
        std::process::id()
    ));
    std::fs::write(
        &path,
        "[[keys]]\nname = \"ops\"\nkey = \"admin-key\"\nadmin = true\n",
    )
    .unwrap();
    path
}

/// A gateway with admin endpoints on, the admin key `admin-key`, and `allowed` models only.
async fn admin_env(test: &str, allowed: &[&str]) -> (Env, std::path::PathBuf) {
    let path = admin_key_file(test);
    let file = path.clone();
    let allowed: Vec<String> = allowed.iter().map(|m| (*m).to_owned()).collect();
    let env = Env::with(move |c| {
        c.allow_admin = true;
        c.config_file = Some(file);
        c.allowed_models = allowed;
    })
    .await;
    (env, path)
}

async fn as_admin(env: &Env, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = env
        .client
        .request(method.parse().unwrap(), env.url(path))
        .bearer_auth("admin-key")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn admin_bodies_cannot_name_a_model_past_the_allowlist() {
    let (env, file) = admin_env("allowlist", &["llama3.2*"]).await;
    // Copying a denied model to an allowed name would open it to every key.
    for (method, path, body) in [
        (
            "POST",
            "/api/copy",
            json!({"source": "qwen3", "destination": "llama3.2-copy"}),
        ),
        (
            "POST",
            "/api/copy",
            json!({"source": "llama3.2", "destination": "qwen3"}),
        ),
        ("POST", "/api/pull", json!({"model": "qwen3"})),
        ("POST", "/api/pull", json!({"name": "qwen3"})),
        ("POST", "/api/push", json!({"model": "qwen3"})),
        (
            "POST",
            "/api/create",
            json!({"model": "llama3.2-x", "from": "qwen3"}),
        ),
        (
            "POST",
            "/api/create",
            json!({"model": "qwen3", "from": "llama3.2"}),
        ),
        ("DELETE", "/api/delete", json!({"model": "qwen3"})),
    ] {
        let (status, out) = as_admin(&env, method, path, &body).await;
        assert_eq!(status, 403, "{path} {body}: {out}");
        assert!(
            out["error"]
                .as_str()
                .unwrap()
                .contains("'qwen3' is not allowed"),
            "{path}: {out}"
        );
    }
    // Other spellings of the model keys, and the legacy Modelfile forms, are refused.
    for (path, body, field) in [
        (
            "/api/copy",
            json!({"source": "llama3.2", "ſource": "qwen3", "destination": "llama3.2-copy"}),
            "source",
        ),
        (
            "/api/copy",
            json!({"source": "llama3.2", "DESTINATION": "qwen3"}),
            "destination",
        ),
        (
            "/api/pull",
            json!({"model": "llama3.2", "Name": "qwen3"}),
            "name",
        ),
        (
            "/api/create",
            json!({"model": "llama3.2-x", "FROM": "qwen3"}),
            "from",
        ),
        (
            "/api/create",
            json!({"model": "llama3.2-x", "modelfile": "FROM qwen3"}),
            "modelfile",
        ),
    ] {
        let (status, out) = as_admin(&env, "POST", path, &body).await;
        assert_eq!(status, 400, "{path} {body}: {out}");
        assert!(
            out["error"].as_str().unwrap().starts_with(field),
            "{path}: {out}"
        );
    }
    assert_eq!(env.fake.request_count(), 0, "nothing reached the upstream");

    // Allowed names on both ends go through, forwarded as sent.
    let copy = json!({"source": "llama3.2", "destination": "llama3.2-copy"});
    let (status, _) = as_admin(&env, "POST", "/api/copy", &copy).await;
    assert_eq!(status, 200);
    assert_eq!(env.last_upstream_body("/api/copy"), copy);
    let (status, _) = as_admin(
        &env,
        "POST",
        "/api/pull",
        &json!({"model": "llama3.2", "stream": false}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(env.fake.request_count(), 2);
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn upstream_addresses_never_reach_the_client_on_any_surface() {
    let env = Env::start().await;
    let port = env.fake.addr().port().to_string();
    // A Go dial error naming the upstream, answered with Ollama's error shape.
    let (status, out) = env
        .post_json(
            "/v1/chat/completions",
            &json!({"model": "fail-leak", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(status, 500, "{out}");
    assert_eq!(
        out["error"]["message"],
        "Post \"[upstream]\": dial tcp [upstream]: connect: connection refused"
    );
    assert_no_upstream_address(&env, &out);
    let mut simple = chat("fail-leak");
    simple["stream"] = json!(false);
    for path in ["/chat", "/api/chat"] {
        let (status, out) = env.post_json(path, &simple).await;
        assert_eq!(status, 500, "{path}: {out}");
        assert_eq!(
            out,
            json!({"error": "Post \"[upstream]\": dial tcp [upstream]: connect: connection refused"}),
            "{path}: Ollama's shape, scrubbed"
        );
    }
    let (status, out) = env
        .post_json("/api/show", &json!({"model": "fail-leak"}))
        .await;
    assert_eq!(status, 500);
    assert_no_upstream_address(&env, &out);

    // A proxy's HTML page becomes the gateway's own message, in the surface's shape.
    let response = env
        .post(
            "/api/generate",
            &json!({"model": "fail-html", "prompt": "x"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let (_, out) = read_json(response).await;
    assert_eq!(
        out,
        json!({"error": "the model server answered 502 bad gateway"})
    );
    let (status, out) = env
        .post_json(
            "/v1/embeddings",
            &json!({"model": "fail-html", "input": "x"}),
        )
        .await;
    assert_eq!(status, 502);
    assert_eq!(
        out["error"]["message"],
        "the model server answered 502 bad gateway"
    );
    assert!(!out.to_string().contains("html") && !out.to_string().contains(&port));

    // A runner URL in an error line in the middle of a stream.
    let response = env
        .post("/api/chat", &chat("fail-midleak"))
        .send()
        .await
        .unwrap();
    let lines = ndjson(response).await;
    assert_eq!(
        lines.last().unwrap()["error"],
        "an error was encountered while running the model: Post \"[upstream]\": EOF"
    );
    for line in &lines {
        assert_no_upstream_address(&env, line);
    }
    let response = env
        .post("/chat", &chat("fail-midleak"))
        .send()
        .await
        .unwrap();
    let lines = ndjson(response).await;
    assert_no_upstream_address(&env, lines.last().unwrap());
    assert!(lines.last().unwrap()["error"].is_string());
    let mut streamed = chat("fail-midleak");
    streamed["stream"] = json!(true);
    let response = env
        .post("/v1/chat/completions", &streamed)
        .send()
        .await
        .unwrap();
    let (events, done) = sse_json(response).await;
    assert!(!done);
    let last = events.last().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[upstream]")
    );
    assert_no_upstream_address(&env, last);

    // Every one of them did reach the upstream: the gateway answered its errors.
    assert_eq!(env.upstream_calls("/api/chat"), 6);
    assert_eq!(env.upstream_calls("/api/generate"), 1);
    assert_eq!(env.upstream_calls("/api/embed"), 1);
    assert_eq!(env.upstream_calls("/api/show"), 1);
}

#[tokio::test]
async fn chat_keys_folded_the_go_way_are_refused() {
    let env = Env::start().await;
    let valid = json!([{"role": "user", "content": "hi"}]);
    for (extra_key, extra_value, field) in [
        (
            "meſſages",
            json!([{"role": "robot", "content": "x"}]),
            "messages",
        ),
        ("optionſ", json!({"temperature": 99}), "options"),
        ("ſtream", json!(true), "stream"),
        ("\u{212A}eep_alive", json!(-1), "keep_alive"),
        ("Model", json!("qwen3"), "model"),
    ] {
        let mut body = json!({"model": "llama3.2", "messages": valid, "stream": false});
        body[extra_key] = extra_value;
        let (status, out) = env.post_json("/chat", &body).await;
        assert_eq!(status, 400, "{extra_key}: {out}");
        let message = out["error"].as_str().unwrap();
        assert!(
            message.starts_with(field) && message.contains(extra_key),
            "{message}"
        );
    }
    assert_eq!(env.fake.request_count(), 0, "nothing reached the upstream");
    // Keys that only look alike (not Go's folding) are forwarded as other fields.
    let mut body = json!({"model": "llama3.2", "messages": valid, "stream": false});
    body["mėssages"] = json!("x");
    let (status, _) = env.post_json("/chat", &body).await;
    assert_eq!(status, 200);
    assert_eq!(env.last_upstream_body("/api/chat")["mėssages"], "x");
}

#[tokio::test]
async fn a_trickled_body_is_cut_with_408_and_frees_its_slot() {
    let env = Env::with(|c| {
        c.body_timeout = Duration::from_millis(800);
        c.max_concurrent = 1;
    })
    .await;
    for (path, openai) in [("/v1/chat/completions", true), ("/api/chat", false)] {
        let mut socket = tokio::net::TcpStream::connect(env.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let (mut reader, mut writer) = socket.into_split();
        let trickle = tokio::spawn(async move {
            while writer.write_all(b" ").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut answer))
            .await
            .expect("the gateway gives up on the body and closes")
            .unwrap();
        let elapsed = started.elapsed();
        trickle.abort();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(elapsed >= Duration::from_millis(700), "{elapsed:?}");
        let out = raw_json(&answer);
        if openai {
            assert_eq!(out["error"]["code"], "request_timeout", "{out}");
        } else {
            assert_eq!(
                out,
                json!({"error": "the request body did not arrive in time"})
            );
        }
        // The key's only concurrency slot is free again.
        let mut whole = chat("llama3.2");
        whole["stream"] = json!(false);
        let (status, _) = env.post_json(path, &whole).await;
        assert_eq!(status, 200, "{path}");
    }
    assert_eq!(
        env.fake.request_count(),
        2,
        "only the two well-behaved requests went upstream"
    );
}

#[tokio::test]
async fn client_request_ids_cannot_write_into_the_audit_line() {
    let logs = crate::operations::captured_logs();
    let env = Env::start().await;
    let forged = "a key=key-2 status=200";
    for (sent, kept) in [
        (forged.to_owned(), false),
        ("x".repeat(129), false),
        ("req-42.a:b_c".to_owned(), true),
    ] {
        let response = env
            .get("/v1/models")
            .header("x-request-id", &sent)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let requests = env.fake.requests();
        let upstream_id = requests.last().unwrap().header("x-request-id");
        assert_eq!(
            upstream_id,
            Some(id.as_str()),
            "the upstream sees the same id"
        );
        if kept {
            assert_eq!(id, sent);
        } else {
            assert_ne!(id, sent);
            assert_eq!(id.len(), 36, "a new UUID: {id}");
        }
        let _ = response.bytes().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
        let line: Value = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["request_id"] == id.as_str() && l["target"] == "audit")
            .unwrap_or_else(|| panic!("an audit line for {id}: {text}"));
        assert_eq!(line["key"], "key-1");
        if kept {
            assert!(line.get("client_request_id").is_none(), "{line}");
        } else {
            assert_eq!(
                line["client_request_id"],
                sent.as_str(),
                "the original, as a value"
            );
        }
    }
}

#[tokio::test]
async fn a_redirect_from_upstream_is_a_502_without_its_location() {
    let env = Env::start().await;
    let response = env
        .post("/v1/chat/completions", &chat("fail-redirect"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert!(response.headers().get("location").is_none());
    let (_, out) = read_json(response).await;
    assert_eq!(out["error"]["code"], "upstream_protocol_error");
    for path in ["/chat", "/api/chat"] {
        let response = env.post(path, &chat("fail-redirect")).send().await.unwrap();
        assert_eq!(response.status(), 502, "{path}");
        assert!(response.headers().get("location").is_none(), "{path}");
        let (_, out) = read_json(response).await;
        assert_eq!(
            out,
            json!({"error": "the model server sent a malformed response"})
        );
    }
    let (status, out) = env
        .post_json("/api/show", &json!({"model": "fail-redirect"}))
        .await;
    assert_eq!(status, 502);
    assert_no_upstream_address(&env, &out);
    assert_eq!(env.upstream_calls("/api/chat"), 3);
    assert_eq!(env.upstream_calls("/elsewhere"), 0, "never followed");
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let env = Env::start().await;
    for (path, openai) in [("/v1/models", true), ("/api/tags", false)] {
        for pair in [
            [format!("Bearer {KEY}"), "Bearer someone-else".to_owned()],
            ["Bearer someone-else".to_owned(), format!("Bearer {KEY}")],
        ] {
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
                pair[0], pair[1]
            );
            let answer = raw(&env, request.as_bytes()).await;
            assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
            let out = raw_json(&answer);
            let message = if openai {
                out["error"]["message"].as_str().unwrap().to_owned()
            } else {
                out["error"].as_str().unwrap().to_owned()
            };
            assert!(message.contains("more than one Authorization"), "{out}");
        }
    }
    assert_eq!(env.fake.request_count(), 0);
    let answer = raw(
        &env,
        format!("GET /api/tags HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "one header is fine");
}

#[tokio::test]
async fn show_hides_the_upstream_file_system_from_keys_that_are_not_admin() {
    let (env, file) = admin_env("show", &[]).await;
    let (status, out) = env
        .post_json("/api/show", &json!({"model": "llama3.2"}))
        .await;
    assert_eq!(status, 200);
    let modelfile = out["modelfile"].as_str().unwrap();
    assert!(
        modelfile.contains(
            "\nFROM sha256-dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff\n"
        ),
        "{modelfile}"
    );
    assert!(
        modelfile.contains("# FROM llama3.2:latest"),
        "names are kept"
    );
    assert!(!out.to_string().contains("/root/"), "{out}");
    assert!(
        out["capabilities"].is_array(),
        "the rest is Ollama's answer"
    );
    let (_, out) = env
        .post_json("/api/show", &json!({"model": "local-blob"}))
        .await;
    assert_eq!(
        out["details"]["parent_model"],
        "sha256-0000000000000000000000000000000000000000000000000000000000000000"
    );
    assert!(!out.to_string().contains("/root/"), "{out}");
    let (status, out) = env.get_json("/v1/models/local-blob").await;
    assert_eq!(status, 200);
    assert!(!out.to_string().contains("/root/"), "{out}");

    // An admin key sees Ollama's answer as it is.
    let (status, out) = as_admin(&env, "POST", "/api/show", &json!({"model": "local-blob"})).await;
    assert_eq!(status, 200);
    assert!(
        out["details"]["parent_model"]
            .as_str()
            .unwrap()
            .starts_with("/root/.ollama/models/blobs/")
    );
    assert!(
        out["modelfile"]
            .as_str()
            .unwrap()
            .contains("FROM /root/.ollama/models/blobs/sha256-")
    );
    assert_eq!(env.upstream_calls("/api/show"), 4);
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn a_trickled_blob_upload_is_cut_with_408_too() {
    let file = admin_key_file("blob");
    let path = file.clone();
    let env = Env::with(move |c| {
        c.allow_admin = true;
        c.config_file = Some(path);
        c.body_timeout = Duration::from_millis(500);
    })
    .await;
    let digest = format!("sha256:{}", "ab".repeat(32));
    let mut socket = tokio::net::TcpStream::connect(env.addr).await.unwrap();
    let head = format!(
        "POST /api/blobs/{digest} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-key\r\nContent-Length: 100000\r\n\r\nx"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = socket.into_split();
    let trickle = tokio::spawn(async move {
        while writer.write_all(b"x").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut answer))
        .await
        .expect("the gateway gives up on the upload and closes")
        .unwrap();
    trickle.abort();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(
        raw_json(&answer),
        json!({"error": "the request body did not arrive in time"})
    );
    let _ = std::fs::remove_file(file);
}
