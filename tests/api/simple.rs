//! `GET /models` and `POST /chat`: Ollama-shaped, validated, NDJSON when streaming.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn models_is_the_upstream_tag_list() {
    let env = Env::start().await;
    let (status, body) = env.get_json("/models").await;
    assert_eq!(status, 200);
    let models = body["models"].as_array().unwrap();
    assert!(models.iter().any(|m| m["name"] == "llama3.2:latest"));
    assert!(
        models[0]["details"].is_object(),
        "entries keep Ollama's fields"
    );
}

#[tokio::test]
async fn chat_streams_ndjson_by_default_and_answers_once_when_asked() {
    let env = Env::start().await;
    let response = env.post("/chat", &chat("llama3.2")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let lines = ndjson(response).await;
    assert_eq!(
        lines,
        fixture_lines("chat/text.ndjson")
            .into_iter()
            .map(|mut l| {
                l["model"] = json!("llama3.2");
                l
            })
            .collect::<Vec<_>>(),
        "lines are Ollama's, unchanged"
    );
    assert_eq!(env.last_upstream_body("/api/chat")["stream"], true);

    let mut body = chat("llama3.2");
    body["stream"] = json!(false);
    body["options"] = json!({"temperature": 0.1, "num_ctx": 2048});
    let (status, out) = env.post_json("/chat", &body).await;
    assert_eq!(status, 200);
    assert_eq!(out["done"], true);
    assert_eq!(out["message"]["content"], fixture_text("chat/text.ndjson"));
    let sent = env.last_upstream_body("/api/chat");
    assert_eq!(
        sent["options"],
        json!({"temperature": 0.1, "num_ctx": 2048})
    );
}

#[tokio::test]
async fn chat_validates_in_ollama_shape() {
    let env = Env::start().await;
    for (body, field) in [
        (
            json!({"messages": [{"role": "user", "content": "x"}]}),
            "model",
        ),
        (json!({"model": "llama3.2", "messages": []}), "messages"),
        (
            json!({"model": "llama3.2", "messages": [{"role": "robot", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": 5}]}),
            "messages[0].content",
        ),
        (
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "options": {"temperature": 9}}),
            "options.temperature",
        ),
        (
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "options": {"num_predict": "x"}}),
            "options.num_predict",
        ),
    ] {
        let (status, out) = env.post_json("/chat", &body).await;
        assert_eq!(status, 400, "{body} -> {out}");
        let message = out["error"].as_str().expect("Ollama's error shape");
        assert!(message.contains(field), "{message} names {field}");
    }
    assert_eq!(env.upstream_calls("/api/chat"), 0);
}

#[tokio::test]
async fn chat_errors_keep_ollama_shape_and_broken_streams_end_with_an_error_line() {
    let env = Env::start().await;
    let (status, out) = env.post_json("/chat", &chat("no-such-model")).await;
    assert_eq!(status, 404);
    assert!(out["error"].as_str().unwrap().contains("not found"));
    for model in ["fail-midstream", "fail-cut", "fail-corrupt"] {
        let response = env.post("/chat", &chat(model)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let lines = ndjson(response).await;
        let last = lines.last().unwrap();
        assert!(last["error"].is_string(), "{model}: {last}");
        assert!(
            lines.iter().all(|l| l["done"] != json!(true)),
            "{model}: no done line"
        );
    }
}
