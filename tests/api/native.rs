//! Native `/api/*` passthrough.

use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn native_chat_generate_embed_show_tags_ps_version_pass_through() {
    let env = Env::start().await;
    let response = env
        .post("/api/chat", &chat("llama3.2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let lines = ndjson(response).await;
    assert_eq!(lines.len(), fixture_lines("chat/text.ndjson").len());
    assert!(
        env.last_upstream_body("/api/chat").get("stream").is_none(),
        "native bodies are forwarded as sent"
    );

    let (status, out) = env
        .post_json(
            "/api/generate",
            &json!({"model": "llama3.2", "prompt": "hi", "stream": false}),
        )
        .await;
    assert_eq!((status, out["done"].clone()), (200, json!(true)));
    let (status, out) = env
        .post_json("/api/embed", &json!({"model": "all-minilm", "input": "hi"}))
        .await;
    assert_eq!(status, 200);
    assert!(out["embeddings"][0].is_array());
    let (status, out) = env
        .post_json(
            "/api/embeddings",
            &json!({"model": "all-minilm", "prompt": "hi"}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(out["embedding"].is_array());
    let (status, out) = env
        .post_json("/api/show", &json!({"model": "llama3.2"}))
        .await;
    assert_eq!(status, 200);
    assert!(out["capabilities"].is_array());
    for path in ["/api/tags", "/api/ps", "/api/version"] {
        let (status, _) = env.get_json(path).await;
        assert_eq!(status, 200, "{path}");
    }
    let (status, out) = env.post_json("/api/show", &json!({"model": "nope"})).await;
    assert_eq!(status, 404);
    assert!(
        out["error"].as_str().unwrap().contains("not found"),
        "Ollama's own error passes through"
    );
}

#[tokio::test]
async fn a_broken_native_stream_ends_with_an_error_line() {
    let env = Env::with(|c| c.upstream_timeout = std::time::Duration::from_millis(800)).await;
    let response = env
        .post("/api/chat", &chat("fail-stall"))
        .send()
        .await
        .unwrap();
    let lines = ndjson(response).await;
    assert!(
        lines.last().unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("did not answer")
    );
}

#[tokio::test]
async fn administrative_endpoints_are_refused_by_default() {
    let env = Env::start().await;
    let calls = [
        ("POST", "/api/pull"),
        ("POST", "/api/push"),
        ("POST", "/api/create"),
        ("POST", "/api/copy"),
        ("DELETE", "/api/delete"),
        ("POST", "/api/blobs/sha256:0000"),
        ("HEAD", "/api/blobs/sha256:0000"),
    ];
    for (method, path) in calls {
        let response = env
            .client
            .request(method.parse().unwrap(), env.url(path))
            .bearer_auth(KEY)
            .json(&json!({"model": "llama3.2"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
        if method != "HEAD" {
            let (_, body) = read_json(response).await;
            assert!(
                body["error"]
                    .as_str()
                    .unwrap()
                    .contains("GATEWAY_ALLOW_ADMIN"),
                "{body}"
            );
        }
    }
    assert_eq!(env.fake.request_count(), 0, "nothing reached the upstream");
}

#[tokio::test]
async fn unknown_api_paths_are_not_forwarded() {
    let env = Env::start().await;
    for path in [
        "/api/unknown",
        "/api/PULL",
        "/API/pull",
        "/api/pull/",
        "/api/tags/extra",
    ] {
        let response = env
            .client
            .post(env.url(path))
            .bearer_auth(KEY)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(response.status().as_u16(), 404 | 405),
            "{path}: {}",
            response.status()
        );
    }
    assert_eq!(env.fake.request_count(), 0);
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_in_the_surface_shape() {
    let env = Env::start().await;
    let (status, body) = env.get_json("/v1/nope").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("unknown_url"))
    );
    let (status, body) = env.get_json("/v1/chat/completions").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (405, json!("method_not_allowed"))
    );
    let (status, body) = env.get_json("/api/chat").await;
    assert_eq!(status, 405);
    assert!(body["error"].is_string());
    let (status, body) = env.get_json("/nothing-here").await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn a_native_stream_that_ends_without_done_gets_an_error_line() {
    let env = Env::start().await;
    for (path, body) in [
        ("/api/chat", chat("fail-cut")),
        (
            "/api/generate",
            json!({"model": "fail-cut", "prompt": "Why?"}),
        ),
    ] {
        let response = env.post(path, &body).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let lines = ndjson(response).await;
        assert_eq!(
            lines.len(),
            3,
            "{path}: two lines passed through, then ours: {lines:?}"
        );
        assert!(lines.iter().all(|l| l["done"] != json!(true)));
        let last = lines.last().unwrap();
        assert!(
            last["error"]
                .as_str()
                .is_some_and(|e| e.contains("before it was complete")),
            "{path}: {last}"
        );
    }
    // A complete stream gets nothing added.
    let response = env
        .post("/api/chat", &chat("llama3.2"))
        .send()
        .await
        .unwrap();
    let lines = ndjson(response).await;
    assert_eq!(
        lines,
        fixture_lines("chat/text.ndjson")
            .into_iter()
            .map(|mut l| {
                l["model"] = json!("llama3.2");
                l
            })
            .collect::<Vec<_>>()
    );
}

/// A native body is checked against the schema the document gives it before it goes upstream:
/// what the schema forbids is a 400 in Ollama's shape naming the field (Ollama 0.24 refuses
/// these too, but only once a backend has taken the request).
#[tokio::test]
async fn native_bodies_the_document_forbids_are_refused_before_going_upstream() {
    let env = Env::start().await;
    let ask = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (
            "/api/embed",
            json!({"model": "all-minilm", "input": ["hi"], "keep_alive": {}}),
            "keep_alive",
        ),
        (
            "/api/embeddings",
            json!({"model": "all-minilm", "prompt": "hi", "keep_alive": {}}),
            "keep_alive",
        ),
        (
            "/api/generate",
            json!({"model": "llama3.2", "prompt": "hi", "stream": false, "keep_alive": {}}),
            "keep_alive",
        ),
        (
            "/api/show",
            json!({"model": "llama3.2", "verbose": {}}),
            "verbose",
        ),
        ("/api/show", json!({"verbose": true}), "body"),
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": ask, "think": "extreme"}),
            "think",
        ),
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": [{"role": "robot", "content": "hi"}]}),
            "messages[0].role",
        ),
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": [{"role": "assistant", "content": "",
                "tool_calls": [{"function": {"index": 5_000_000_000_u64, "name": "f", "arguments": {}}}]}]}),
            "messages[0].tool_calls[0].function.index",
        ),
        (
            "/api/chat",
            json!({"model": "llama3.2", "messages": [{"role": "assistant", "content": "",
                "tool_calls": [{"function": {"name": "f", "arguments": "AAA"}}]}]}),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            "/api/embed",
            json!({"model": "all-minilm", "input": "hi", "dimensions": 2.5}),
            "dimensions",
        ),
        // A name of spaces names nothing (Ollama: "model is required", or not found).
        ("/api/chat", json!({"model": " ", "messages": ask}), "model"),
        ("/api/show", json!({"name": ""}), "body"),
        // Go's decoder would read this key as `keep_alive`.
        (
            "/api/generate",
            json!({"model": "llama3.2", "prompt": "hi", "Keep_Alive": {}}),
            "keep_alive",
        ),
    ];
    for (path, body, field) in cases {
        let (status, out) = env.post_json(path, &body).await;
        assert_eq!(status, 400, "{path} {body}: {out}");
        let message = out["error"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{path} {body}: {out}"
        );
        assert_eq!(
            out.as_object().map(serde_json::Map::len),
            Some(1),
            "Ollama's shape: {out}"
        );
    }
    assert_eq!(env.fake.request_count(), 0, "nothing went upstream");
}

/// What the document allows goes through, as sent: a load without `messages` (and Go's
/// client's `null`s), the deprecated `name` on show, fields the document does not name. A
/// number with a zero fraction where an integer is wanted (JSON Schema's integer, which Go's
/// `int` refuses) reaches Ollama as that integer.
#[tokio::test]
async fn native_bodies_the_document_allows_go_through() {
    let env = Env::start().await;
    let (status, out) = env
        .post_json(
            "/api/chat",
            &json!({"model": "llama3.2", "stream": false, "messages": null, "options": null}),
        )
        .await;
    assert_eq!(
        (status, out["done_reason"].clone()),
        (200, json!("load")),
        "{out}"
    );
    let (status, out) = env
        .post_json("/api/chat", &json!({"model": "llama3.2", "stream": false}))
        .await;
    assert_eq!(
        (status, out["done_reason"].clone()),
        (200, json!("load")),
        "{out}"
    );
    let (status, out) = env
        .post_json("/api/show", &json!({"name": "llama3.2"}))
        .await;
    assert_eq!(status, 200, "{out}");
    // A tool call without arguments, as Go writes a nil map: Ollama takes it, and so do we.
    let replayed = json!({"model": "llama3.2", "stream": false, "messages": [
        {"role": "user", "content": "What time is it?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "now", "arguments": null}}]},
        {"role": "tool", "content": "12:00", "tool_name": "now"}]});
    let (status, out) = env.post_json("/api/chat", &replayed).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        env.last_upstream_body("/api/chat")["messages"][1]["tool_calls"][0]["function"]["arguments"],
        Value::Null,
        "forwarded as sent"
    );
    let (status, out) = env
        .post_json(
            "/api/generate",
            &json!({"model": "llama3.2", "prompt": "hi", "stream": false,
                "context": [1, 2], "template": "{{ .Prompt }}"}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let sent = env.last_upstream_body("/api/generate");
    assert_eq!(
        (&sent["context"], &sent["template"]),
        (&json!([1, 2]), &json!("{{ .Prompt }}"))
    );

    let (status, out) = env
        .post_json(
            "/api/embed",
            &json!({"model": "all-minilm", "input": "hi", "dimensions": 4.0, "keep_alive": 30.5}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["embeddings"][0].as_array().map(Vec::len), Some(4));
    let sent = env.last_upstream_body("/api/embed");
    assert!(sent["dimensions"].is_i64(), "{sent}");
    assert_eq!(sent["keep_alive"], 30.5);
}
