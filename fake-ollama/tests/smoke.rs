//! The fake Ollama over real HTTP: wire format, fixtures, failures, recording, counters.

use std::time::Duration;

use fake_ollama::{FakeConfig, FakeOllama};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep, timeout};

async fn start(config: FakeConfig) -> FakeOllama {
    FakeOllama::start(config).await.expect("fake starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(fake: &FakeOllama, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", fake.url()))
        .json(&body)
        .send()
        .await
        .expect("request sent")
}

/// The body's chunks as received, checking each one is whole `\n`-terminated lines.
async fn chunks(response: reqwest::Response) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        let text = String::from_utf8(chunk.to_vec()).expect("utf-8");
        assert!(text.ends_with('\n'), "chunk not line-terminated: {text:?}");
        out.push(text);
    }
    out
}

async fn lines(response: reqwest::Response) -> Vec<String> {
    chunks(response)
        .await
        .concat()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).expect("line is JSON")
}

fn user(text: &str) -> Value {
    json!([{ "role": "user", "content": text }])
}

/// Wait until `check` holds (counters move when the server notices a disconnect).
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn tags_version_and_root() {
    let fake = start(FakeConfig::default()).await;
    let tags: Value = client()
        .get(format!("{}/api/tags", fake.url()))
        .send()
        .await
        .expect("tags")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = tags["models"]
        .as_array()
        .expect("models")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    for name in [
        "llama3.2:latest",
        "qwen3:latest",
        "llava:latest",
        "all-minilm:latest",
        "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
        "bench:latest",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let head = client()
        .head(format!("{}/api/version", fake.url()))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), 200);
    let root = client().get(fake.url()).send().await.expect("root");
    assert_eq!(root.text().await.expect("text"), "Ollama is running");

    let empty = start(FakeConfig {
        empty_tags: true,
        ..FakeConfig::default()
    })
    .await;
    let tags: Value = client()
        .get(format!("{}/api/tags", empty.url()))
        .send()
        .await
        .expect("tags")
        .json()
        .await
        .expect("json");
    assert_eq!(tags, json!({ "models": [] }));
}

#[tokio::test]
async fn chat_stream_is_ndjson_lines() {
    let fake = start(FakeConfig::default()).await;
    let response = post(
        &fake,
        "/api/chat",
        json!({ "model": "llama3.2:latest", "messages": user("why is the sky blue?") }),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let lines = lines(response).await;
    let parsed: Vec<Value> = lines.iter().map(|l| parse(l)).collect();
    let text: String = parsed
        .iter()
        .filter_map(|l| l["message"]["content"].as_str())
        .collect();
    assert_eq!(text, "The sky is blue because of Rayleigh scattering.");
    let last = parsed.last().expect("a line");
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert!(last["eval_duration"].as_u64().is_some());
    assert!(parsed.iter().all(|l| l["model"] == "llama3.2:latest"));
    assert!(
        parsed[..parsed.len() - 1]
            .iter()
            .all(|l| l["done"] == false)
    );
    assert_eq!(fake.completed_streams(), 1);
}

#[tokio::test]
async fn non_stream_aggregates_tool_calls() {
    let fake = start(FakeConfig::default()).await;
    let response = post(
        &fake,
        "/api/chat",
        json!({
            "model": "llama3.2",
            "stream": false,
            "messages": user("weather in Tokyo and Paris?"),
            "tools": [{ "type": "function", "function": { "name": "get_weather", "parameters": {} } }],
        }),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let body: Value = response.json().await.expect("json");
    let calls = body["message"]["tool_calls"]
        .as_array()
        .expect("tool calls");
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0]["function"]["arguments"],
        json!({ "city": "Tokyo" })
    );
    assert_eq!(
        calls[1]["function"]["arguments"],
        json!({ "city": "Paris" })
    );
    assert!(
        calls
            .iter()
            .all(|c| c["id"].as_str().is_some_and(|id| id.starts_with("call_")))
    );
    assert_eq!(body["done"], true);
    assert_eq!(body["done_reason"], "stop");
    assert_eq!(body["message"]["content"], "");
    assert_eq!(
        fake.completed_streams(),
        0,
        "non-stream answers are not streams"
    );
}

#[tokio::test]
async fn thinking_generate_and_json_format() {
    let fake = start(FakeConfig::default()).await;
    let body: Value = post(
        &fake,
        "/api/generate",
        json!({ "model": "qwen3", "prompt": "why?", "stream": false }),
    )
    .await
    .json()
    .await
    .expect("json");
    assert!(!body["thinking"].as_str().unwrap_or_default().is_empty());
    assert!(body["context"].is_array());

    let lines = lines(
        post(
            &fake,
            "/api/chat",
            json!({
                "model": "llama3.2",
                "messages": user("a person"),
                "format": { "type": "object", "properties": { "name": { "type": "string" }, "age": { "type": "integer" } } },
            }),
        )
        .await,
    )
    .await;
    let content: String = lines
        .iter()
        .map(|l| {
            parse(l)["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(parse(&content), json!({ "name": "Ada", "age": 36 }));
}

#[tokio::test]
async fn failure_models() {
    let fake = start(FakeConfig::default()).await;
    let chat = |model: &str, stream: bool| json!({ "model": model, "stream": stream, "messages": user("hi") });

    let midstream = post(&fake, "/api/chat", chat("fail-midstream", true)).await;
    assert_eq!(midstream.status(), 200);
    let lines = lines(midstream).await;
    assert_eq!(lines.len(), 3);
    assert_eq!(
        parse(&lines[2]),
        json!({ "error": "an error was encountered while running the model" })
    );

    let cut = lines_of(&fake, chat("fail-cut", true)).await;
    assert_eq!(cut.len(), 2);
    assert!(cut.iter().all(|l| parse(l)["done"] == false));

    let corrupt = lines_of(&fake, chat("fail-corrupt", true)).await;
    assert_eq!(corrupt.len(), 2);
    assert!(serde_json::from_str::<Value>(&corrupt[1]).is_err());

    for (model, status) in [("fail-500", 500), ("fail-busy", 503), ("nope", 404)] {
        let response = post(&fake, "/api/chat", chat(model, true)).await;
        assert_eq!(response.status(), status, "{model}");
        let body: Value = response.json().await.expect("json");
        assert!(body["error"].is_string(), "{model}: {body}");
    }

    // A run cut short without an error: 200 with what came and `done: false`, as real Ollama.
    let response = post(&fake, "/api/chat", chat("fail-cut", false)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["done"], false, "{body}");
    assert!(
        body["message"]["content"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
    );
    assert!(body.get("eval_count").is_none(), "{body}");

    for model in ["fail-midstream", "fail-corrupt"] {
        let response = post(&fake, "/api/chat", chat(model, false)).await;
        assert_eq!(response.status(), 500, "{model}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(
            body,
            json!({ "error": "an error was encountered while running the model" })
        );
    }

    let refused = post(&fake, "/api/chat", chat("all-minilm", true)).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(
        refused.json::<Value>().await.expect("json"),
        json!({ "error": "\"all-minilm\" does not support chat" })
    );
}

async fn lines_of(fake: &FakeOllama, body: Value) -> Vec<String> {
    lines(post(fake, "/api/chat", body).await).await
}

#[tokio::test]
async fn slow_and_stalled_streams() {
    let fake = start(FakeConfig::default()).await;
    let slow = async {
        let started = Instant::now();
        let response = post(
            &fake,
            "/api/chat",
            json!({ "model": "fail-slow", "messages": user("hi") }),
        )
        .await;
        let head_after = started.elapsed();
        let lines = lines(response).await;
        (head_after, lines.len())
    };
    let stall = async {
        let started = Instant::now();
        let response = post(
            &fake,
            "/api/chat",
            json!({ "model": "fail-stall", "messages": user("hi") }),
        )
        .await;
        let head_after = started.elapsed();
        let mut stream = response.bytes_stream();
        let first = stream.next().await.expect("first line").expect("bytes");
        let first_after = started.elapsed();
        let second = stream.next().await.expect("second line").expect("bytes");
        let second_after = started.elapsed();
        assert!(first.ends_with(b"\n") && second.ends_with(b"\n"));
        (head_after, first_after, second_after)
    };
    let ((slow_head, slow_lines), (stall_head, stall_first, stall_second)) =
        tokio::join!(slow, stall);
    assert!(slow_head >= Duration::from_millis(2900), "{slow_head:?}");
    assert_eq!(slow_lines, 7);
    assert!(stall_head < Duration::from_secs(1), "{stall_head:?}");
    assert!(stall_first < Duration::from_secs(1), "{stall_first:?}");
    assert!(
        stall_second >= Duration::from_millis(2900),
        "{stall_second:?}"
    );
}

#[tokio::test]
async fn records_requests_and_control_endpoints() {
    let fake = start(FakeConfig::default()).await;
    let response = client()
        .post(format!("{}/api/show?verbose=1", fake.url()))
        .header("X-Custom", "yes")
        .json(&json!({ "model": "llama3.2" }))
        .send()
        .await
        .expect("show");
    assert_eq!(response.status(), 200);
    let show: Value = response.json().await.expect("json");
    assert_eq!(show["capabilities"], json!(["completion", "tools"]));
    let bad = client()
        .post(format!("{}/api/chat", fake.url()))
        .body("not json")
        .send()
        .await
        .expect("chat");
    assert_eq!(bad.status(), 400);

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(fake.request_count(), 2);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/api/show?verbose=1");
    assert_eq!(requests[0].header("x-custom"), Some("yes"));
    assert_eq!(requests[0].body, json!({ "model": "llama3.2" }));
    assert_eq!(requests[1].body, json!("not json"));

    let base = fake.url();
    let stats: Value = client()
        .get(format!("{base}/_fake/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(
        stats,
        json!({ "requests": 2, "cancelled_streams": 0, "completed_streams": 0 })
    );
    let listed: Value = client()
        .get(format!("{base}/_fake/requests"))
        .send()
        .await
        .expect("requests")
        .json()
        .await
        .expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    assert_eq!(listed[0]["path"], "/api/show?verbose=1");
    let reset = client()
        .post(format!("{base}/_fake/reset"))
        .send()
        .await
        .expect("reset");
    assert!(reset.status().is_success());
    assert_eq!(fake.request_count(), 0);
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn show_and_embed_errors() {
    let fake = start(FakeConfig::default()).await;
    let missing = post(&fake, "/api/show", json!({ "model": "nope" })).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.expect("json"),
        // As real Ollama 0.24 words it (fixtures/recorded/error-show-unknown-model.json).
        json!({ "error": "model 'nope' not found" })
    );
    let empty = post(&fake, "/api/show", json!({})).await;
    assert_eq!(empty.status(), 400);

    let embed: Value = post(
        &fake,
        "/api/embed",
        json!({ "model": "all-minilm", "input": ["a", "b"] }),
    )
    .await
    .json()
    .await
    .expect("json");
    let vectors = embed["embeddings"].as_array().expect("embeddings");
    assert_eq!(vectors.len(), 2);
    assert_eq!(vectors[0].as_array().map(Vec::len), Some(8));
    let again: Value = post(
        &fake,
        "/api/embed",
        json!({ "model": "all-minilm", "input": "a" }),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(again["embeddings"][0], vectors[0]);
    // As real Ollama 0.24: `dimensions` shortens the vector; 0, a negative number or more than
    // the fake makes gets the whole (default) vector, never an error.
    for (dimensions, length) in [(4, 4), (0, 8), (-3, 8), (65_535, 8)] {
        let sized: Value = post(
            &fake,
            "/api/embed",
            json!({ "model": "all-minilm", "input": "a", "dimensions": dimensions }),
        )
        .await
        .json()
        .await
        .expect("json");
        assert_eq!(
            sized["embeddings"][0].as_array().map(Vec::len),
            Some(length),
            "dimensions {dimensions}: {sized}"
        );
    }
    let invalid = post(
        &fake,
        "/api/embed",
        json!({ "model": "all-minilm", "input": [1, 2] }),
    )
    .await;
    assert_eq!(invalid.status(), 400);
    assert_eq!(
        invalid.json::<Value>().await.expect("json"),
        json!({ "error": "invalid input type" })
    );
}

#[tokio::test]
async fn counts_cancelled_streams() {
    let fake = start(FakeConfig {
        chunk_gap: Duration::from_millis(20),
        ..FakeConfig::default()
    })
    .await;
    let response = post(
        &fake,
        "/api/chat",
        json!({ "model": "bench", "messages": user("go"), "options": { "num_predict": 100 } }),
    )
    .await;
    let mut stream = response.bytes_stream();
    let first = stream.next().await.expect("a line").expect("bytes");
    assert!(first.ends_with(b"\n"));
    let dropped_at = std::time::Instant::now();
    drop(stream);
    eventually("a cancelled stream", || fake.cancelled_streams() == 1).await;
    assert_eq!(fake.completed_streams(), 0);
    let noticed = fake.last_cancel_at().expect("cancel time");
    assert!(noticed.duration_since(dropped_at) < Duration::from_secs(1));

    // A client that gives up before the first line (during the first-token delay).
    let delayed = start(FakeConfig {
        first_token_delay: Duration::from_millis(500),
        ..FakeConfig::default()
    })
    .await;
    let gave_up = timeout(
        Duration::from_millis(100),
        post(
            &delayed,
            "/api/chat",
            json!({ "model": "llama3.2", "messages": user("hi") }),
        ),
    )
    .await;
    assert!(gave_up.is_err());
    eventually("a cancel before the head", || {
        delayed.cancelled_streams() == 1
    })
    .await;
}

#[tokio::test]
async fn bench_follows_the_deadline_schedule() {
    let fake = start(FakeConfig {
        first_token_delay: Duration::from_millis(50),
        chunk_gap: Duration::from_millis(10),
        ..FakeConfig::default()
    })
    .await;
    let started = Instant::now();
    let response = post(
        &fake,
        "/api/generate",
        json!({ "model": "bench", "prompt": "go", "options": { "num_predict": 20 } }),
    )
    .await;
    let mut stream = response.bytes_stream();
    let first = stream.next().await.expect("line").expect("bytes");
    let first_after = started.elapsed();
    let mut count = 1;
    while let Some(chunk) = stream.next().await {
        count += chunk
            .expect("bytes")
            .iter()
            .filter(|b| **b == b'\n')
            .count();
    }
    let total = started.elapsed();
    assert_eq!(
        parse(std::str::from_utf8(&first).expect("utf-8"))["response"],
        "tok "
    );
    assert_eq!(count, 21, "20 tokens and a trailer");
    assert!(first_after >= Duration::from_millis(50), "{first_after:?}");
    // Trailer is line 20: due at 50 + 20 * 10 ms.
    assert!(total >= Duration::from_millis(250), "{total:?}");
    assert!(total < Duration::from_millis(1000), "{total:?}");
    assert_eq!(fake.completed_streams(), 1);
}

#[tokio::test]
async fn openai_sse_carries_the_same_tokens() {
    let fake = start(FakeConfig::default()).await;
    let response = post(
        &fake,
        "/v1/chat/completions",
        json!({
            "model": "bench",
            "stream": true,
            "max_tokens": 4,
            "stream_options": { "include_usage": true },
            "messages": user("go"),
        }),
    )
    .await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.expect("body");
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").expect("data frame"))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| parse(e))
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "tok tok tok tok ");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 4);
}

#[tokio::test]
async fn dropping_the_fake_closes_the_port() {
    let fake = start(FakeConfig::default()).await;
    let url = fake.url();
    fake.shutdown().await;
    let result = client().get(format!("{url}/api/version")).send().await;
    assert!(result.is_err(), "still answering after shutdown");
}

#[tokio::test]
async fn notices_a_disconnect_while_a_stream_is_idle() {
    let fake = start(FakeConfig::default()).await;
    let response = post(
        &fake,
        "/api/chat",
        json!({ "model": "fail-stall", "messages": user("hi") }),
    )
    .await;
    let mut stream = response.bytes_stream();
    stream.next().await.expect("first line").expect("bytes");
    let dropped_at = std::time::Instant::now();
    drop(stream);
    // The next line is 3 s away: only the read side can tell the client left.
    eventually("a cancelled idle stream", || fake.cancelled_streams() == 1).await;
    let noticed = fake.last_cancel_at().expect("cancel time");
    assert!(
        noticed.duration_since(dropped_at) < Duration::from_millis(500),
        "{:?}",
        noticed.duration_since(dropped_at)
    );
}
