//! `/v1/completions`, `/v1/embeddings`, `/v1/models`.

use base64::Engine;
use fake_ollama::FakeConfig;
use serde_json::{Value, json};

use crate::common::*;

fn generate_text() -> String {
    fixture_lines("generate/text.ndjson")
        .iter()
        .filter_map(|l| l["response"].as_str())
        .collect()
}

#[tokio::test]
async fn legacy_completions_streamed_and_not() {
    let env = Env::start().await;
    let body = json!({"model": "llama3.2", "prompt": "Once upon a time", "max_tokens": 64, "suffix": "The end."});
    let (status, out) = env.post_json("/v1/completions", &body).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["object"], "text_completion");
    assert_eq!(out["choices"][0]["text"], generate_text());
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert!(out["usage"]["total_tokens"].as_u64().is_some_and(|t| t > 0));
    let sent = env.last_upstream_body("/api/generate");
    assert_eq!(sent["prompt"], "Once upon a time");
    assert_eq!(sent["suffix"], "The end.");
    assert_eq!(sent["stream"], false);
    assert_eq!(sent["options"]["num_predict"], 64);
    assert!(
        sent["options"].get("frequency_penalty").is_none(),
        "no forced penalties"
    );

    let mut body = body;
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = env.post("/v1/completions", &body).send().await.unwrap();
    let (events, done) = sse_json(response).await;
    assert!(done);
    let text: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, generate_text());
    let finishes: Vec<&Value> = events
        .iter()
        .map(|e| &e["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, vec![&json!("stop")]);
    assert_eq!(events.last().unwrap()["choices"], json!([]));
    assert!(
        events.last().unwrap()["usage"]["total_tokens"]
            .as_u64()
            .is_some_and(|t| t > 0)
    );
}

#[tokio::test]
async fn completions_validate_their_input() {
    let env = Env::start().await;
    for (body, field) in [
        (json!({"model": "llama3.2", "prompt": ["a", "b"]}), "prompt"),
        (
            json!({"model": "llama3.2", "prompt": "x", "temperature": -1}),
            "temperature",
        ),
        (json!({"model": "llama3.2", "prompt": "x", "n": 2}), "n"),
        (json!({"model": "llama3.2"}), "prompt"),
    ] {
        let (status, out) = env.post_json("/v1/completions", &body).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            out["error"]["message"].as_str().unwrap().contains(field),
            "{out}"
        );
    }
    assert_eq!(env.upstream_calls("/api/generate"), 0);
}

#[tokio::test]
async fn embeddings_as_floats_and_base64() {
    let env = Env::start().await;
    let body = json!({"model": "all-minilm", "input": ["first text", "second text"]});
    let (status, floats) = env.post_json("/v1/embeddings", &body).await;
    assert_eq!(status, 200, "{floats}");
    assert_eq!(floats["object"], "list");
    assert_eq!(floats["model"], "all-minilm");
    let data = floats["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["object"], "embedding");
    assert!(floats["usage"]["prompt_tokens"].as_u64().is_some());
    // Written as float32, the way Ollama writes them: each number is the shortest text that
    // reads back as the same float32 (a float64 widening adds digits: 0.1489465832710266).
    let text = env
        .post("/v1/embeddings", &body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = text.find("\"embedding\":[").unwrap() + 13;
    let numbers = &text[start..start + text[start..].find(']').unwrap()];
    for number in numbers.split(',') {
        let value: f32 = number.parse().unwrap();
        let shortest = format!("{value}");
        assert!(
            number == shortest || number.contains('e'),
            "{number} is not float32's shortest form {shortest}"
        );
    }

    let mut body = body;
    body["encoding_format"] = json!("base64");
    let (status, encoded) = env.post_json("/v1/embeddings", &body).await;
    assert_eq!(status, 200);
    for (float_item, b64_item) in data.iter().zip(encoded["data"].as_array().unwrap()) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64_item["embedding"].as_str().unwrap())
            .unwrap();
        let decoded: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let expected: Vec<f32> = float_item["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(
            decoded, expected,
            "base64 is the same vector as little-endian f32"
        );
    }
    assert_eq!(
        env.last_upstream_body("/api/embed")["input"],
        json!(["first text", "second text"])
    );

    for (body, field) in [
        (json!({"model": "all-minilm", "input": []}), "input"),
        (json!({"model": "all-minilm", "input": [1, 2, 3]}), "input"),
        (
            json!({"model": "all-minilm", "input": "x", "encoding_format": "binary"}),
            "encoding_format",
        ),
        (
            json!({"model": "all-minilm", "input": "x", "dimensions": 0}),
            "dimensions",
        ),
    ] {
        let (status, out) = env.post_json("/v1/embeddings", &body).await;
        assert_eq!(status, 400, "{body} -> {out}");
        assert!(
            out["error"]["message"].as_str().unwrap().contains(field),
            "{out}"
        );
    }

    // The document allows up to 65536; more than the model has gets its whole vector (real
    // Ollama 0.24 does not refuse it, and neither may the fake).
    let (status, out) = env
        .post_json(
            "/v1/embeddings",
            &json!({"model": "all-minilm", "input": "x", "dimensions": 65_535}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(env.last_upstream_body("/api/embed")["dimensions"], 65_535);
    assert!(!out["data"][0]["embedding"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn models_list_and_retrieve_including_namespaced_ids() {
    let env = Env::start().await;
    let (status, list) = env.get_json("/v1/models").await;
    assert_eq!(status, 200);
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    let tags: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tags.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(ids.len(), tags["models"].as_array().unwrap().len());
    for model in list["data"].as_array().unwrap() {
        assert_eq!(model["object"], "model");
        assert!(model["created"].as_i64().is_some_and(|c| c > 0));
    }
    let namespaced = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"].as_str().unwrap().starts_with("hf.co/"))
        .unwrap();
    assert_eq!(namespaced["owned_by"], "bartowski");

    let id = namespaced["id"].as_str().unwrap();
    let (status, model) = env.get_json(&format!("/v1/models/{id}")).await;
    assert_eq!(status, 200, "{model}");
    assert_eq!(model["id"], id);
    let (status, model) = env.get_json("/v1/models/llama3.2").await;
    assert_eq!((status, model["owned_by"].clone()), (200, json!("library")));
    let (status, missing) = env.get_json("/v1/models/no-such-model").await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "model_not_found");
}

#[tokio::test]
async fn an_empty_model_store_lists_an_empty_array() {
    let env = Env::with_fake(
        FakeConfig {
            empty_tags: true,
            ..FakeConfig::default()
        },
        |_| {},
    )
    .await;
    let (status, list) = env.get_json("/v1/models").await;
    assert_eq!(status, 200);
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn completions_accept_a_one_prompt_array_echo_and_refuse_what_they_cannot_do() {
    let env = Env::start().await;
    let (status, out) = env
        .post_json(
            "/v1/completions",
            &json!({"model": "llama3.2", "prompt": ["Why?"], "echo": true}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out["choices"][0]["text"],
        format!("Why?{}", generate_text())
    );
    assert_eq!(env.last_upstream_body("/api/generate")["prompt"], "Why?");
    for (body, field) in [
        (json!({"model": "llama3.2", "prompt": ["a", "b"]}), "prompt"),
        (
            json!({"model": "llama3.2", "prompt": "x", "best_of": 3}),
            "best_of",
        ),
    ] {
        let (status, out) = env.post_json("/v1/completions", &body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(out["error"]["param"], field);
    }
    let (status, out) = env
        .post_json(
            "/v1/embeddings",
            &json!({"model": "all-minilm", "input": [[1, 2, 3]]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("token arrays are not supported"),
        "{out}"
    );
}
