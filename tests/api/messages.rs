//! `/v1/messages` (Anthropic): translation both ways, the named event stream, the key in
//! `x-api-key`, Anthropic's error shape, and the gate in front.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

fn request(model: &str) -> Value {
    json!({"model": model, "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Why is the sky blue?"}]})
}

/// POST with the key in `x-api-key`, as Anthropic's SDKs send it.
fn post(env: &Env, path: &str, body: &Value) -> reqwest::RequestBuilder {
    env.client
        .post(env.url(path))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(body)
}

async fn post_json(env: &Env, path: &str, body: &Value) -> (u16, Value) {
    read_json(post(env, path, body).send().await.unwrap()).await
}

async fn stream(env: &Env, body: &Value) -> Vec<(String, Value)> {
    let mut body = body.clone();
    body["stream"] = json!(true);
    named_events(post(env, "/v1/messages", &body).send().await.unwrap()).await
}

/// The concatenated deltas of one kind (`text_delta` → `text`, ...).
fn deltas(events: &[(String, Value)], kind: &str, field: &str) -> String {
    events
        .iter()
        .filter(|(_, e)| e["type"] == "content_block_delta" && e["delta"]["type"] == kind)
        .filter_map(|(_, e)| e["delta"][field].as_str())
        .collect()
}

fn assert_anthropic_error(body: &Value, kind: &str) {
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn non_streamed_message_translates_both_ways() {
    let env = Env::start().await;
    let mut body = request("llama3.2");
    body["system"] = json!("Answer briefly.");
    body["temperature"] = json!(0.3);
    body["stop_sequences"] = json!(["\n\n"]);
    let (status, out) = post_json(&env, "/v1/messages", &body).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["type"], "message");
    assert_eq!(out["role"], "assistant");
    assert!(out["id"].as_str().is_some_and(|id| id.starts_with("msg_")));
    assert_eq!(out["content"][0]["type"], "text");
    assert_eq!(out["content"][0]["text"], fixture_text("chat/text.ndjson"));
    assert_eq!(out["stop_reason"], "end_turn");
    let trailer = fixture_lines("chat/text.ndjson").pop().unwrap();
    assert_eq!(out["usage"]["input_tokens"], trailer["prompt_eval_count"]);
    // With stop sequences the fake counts as Ollama does: each of its 6 tokens (lines) and
    // the end-of-turn token (fake-ollama/src/stop.rs).
    assert_eq!(out["usage"]["output_tokens"], 7);
    assert_eq!(out["stop_sequence"], Value::Null);

    let upstream = env.last_upstream_body("/api/chat");
    assert_eq!(upstream["stream"], false);
    assert_eq!(
        upstream["logprobs"], true,
        "to tell which stop sequence matched"
    );
    assert_eq!(upstream["options"]["num_predict"], 1024);
    assert_eq!(upstream["options"]["temperature"], 0.3);
    assert_eq!(upstream["options"]["stop"], json!(["\n\n"]));
    assert_eq!(
        upstream["messages"][0],
        json!({"role":"system","content":"Answer briefly."})
    );
    assert_eq!(upstream["messages"][1]["role"], "user");
}

#[tokio::test]
async fn streamed_message_has_anthropics_event_order() {
    let env = Env::start().await;
    let events = stream(&env, &request("llama3.2")).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.get(1), Some(&"content_block_start"));
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    for (name, data) in &events {
        assert_eq!(
            data["type"],
            name.as_str(),
            "the type repeats the event name"
        );
    }
    assert_eq!(
        deltas(&events, "text_delta", "text"),
        fixture_text("chat/text.ndjson")
    );
    assert_eq!(events[0].1["message"]["model"], "llama3.2");
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    let trailer = fixture_lines("chat/text.ndjson").pop().unwrap();
    assert_eq!(delta["usage"]["output_tokens"], trailer["eval_count"]);
    assert_eq!(delta["usage"]["input_tokens"], trailer["prompt_eval_count"]);
    assert_eq!(env.last_upstream_body("/api/chat")["stream"], true);
}

#[tokio::test]
async fn tool_use_round_trip() {
    let env = Env::start().await;
    let tools = json!([{"name": "get_weather", "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    let mut body = request("llama3.2");
    body["tools"] = tools.clone();
    let (status, out) = post_json(&env, "/v1/messages", &body).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["stop_reason"], "tool_use");
    let uses: Vec<&Value> = out["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .collect();
    assert_eq!(uses.len(), 2, "{out}");
    assert_eq!(uses[0]["name"], "get_weather");
    assert_eq!(uses[0]["input"], json!({"city": "Tokyo"}));
    assert_eq!(uses[1]["input"], json!({"city": "Paris"}));
    let upstream = env.last_upstream_body("/api/chat");
    assert_eq!(
        upstream["tools"][0]["function"]["parameters"],
        tools[0]["input_schema"]
    );

    // Send the results back: Ollama gets tool messages naming the tool, the model answers text.
    let results: Vec<Value> = uses
        .iter()
        .map(|u| json!({"type": "tool_result", "tool_use_id": u["id"], "content": "sunny"}))
        .collect();
    let mut follow_up = body.clone();
    follow_up["messages"] = json!([
        body["messages"][0],
        {"role": "assistant", "content": out["content"]},
        {"role": "user", "content": results},
    ]);
    let (status, answer) = post_json(&env, "/v1/messages", &follow_up).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stop_reason"], "end_turn");
    assert_eq!(
        answer["content"][0]["text"],
        fixture_text("chat/text.ndjson")
    );
    let upstream = env.last_upstream_body("/api/chat");
    let messages = upstream["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4, "{upstream}");
    assert_eq!(messages[1]["tool_calls"][0]["id"], uses[0]["id"]);
    assert_eq!(messages[2]["role"], "tool");
    assert_eq!(messages[2]["tool_name"], "get_weather");
    assert_eq!(messages[2]["tool_call_id"], uses[0]["id"]);
    assert_eq!(messages[3]["tool_call_id"], uses[1]["id"]);

    // Streamed: tool_use blocks with their input in one input_json_delta each.
    let events = stream(&env, &body).await;
    let starts: Vec<&Value> = events
        .iter()
        .filter(|(n, e)| n == "content_block_start" && e["content_block"]["type"] == "tool_use")
        .map(|(_, e)| e)
        .collect();
    assert_eq!(starts.len(), 2);
    let inputs: Vec<Value> = events
        .iter()
        .filter(|(_, e)| e["delta"]["type"] == "input_json_delta")
        .map(|(_, e)| serde_json::from_str(e["delta"]["partial_json"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(inputs, [json!({"city": "Tokyo"}), json!({"city": "Paris"})]);
    let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn thinking_blocks_come_before_text() {
    let env = Env::start().await;
    let mut body = request("qwen3");
    body["max_tokens"] = json!(4096);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    let (status, out) = post_json(&env, "/v1/messages", &body).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(env.last_upstream_body("/api/chat")["think"], true);
    assert_eq!(out["content"][0]["type"], "thinking");
    assert_eq!(
        out["content"][0]["thinking"],
        fixture_field("chat/thinking.ndjson", "thinking")
    );
    assert_eq!(
        out["content"][1]["text"],
        fixture_field("chat/thinking.ndjson", "content")
    );

    let events = stream(&env, &body).await;
    assert_eq!(
        deltas(&events, "thinking_delta", "thinking"),
        fixture_field("chat/thinking.ndjson", "thinking")
    );
    assert_eq!(
        deltas(&events, "text_delta", "text"),
        fixture_field("chat/thinking.ndjson", "content")
    );
    let blocks: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, e)| &e["content_block"])
        .collect();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0]["type"], "thinking");
    assert_eq!(blocks[1]["type"], "text");

    body["thinking"] = json!({"type": "disabled"});
    let (_, out) = post_json(&env, "/v1/messages", &body).await;
    assert_eq!(env.last_upstream_body("/api/chat")["think"], false);
    assert_eq!(out["content"][0]["type"], "text", "{out}");
}

#[tokio::test]
async fn a_length_cut_is_max_tokens() {
    let env = Env::start().await;
    let mut body = request("llama3.2");
    body["max_tokens"] = json!(3);
    let (_, out) = post_json(&env, "/v1/messages", &body).await;
    assert_eq!(out["stop_reason"], "max_tokens", "{out}");
    let events = stream(&env, &body).await;
    let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "max_tokens");
}

#[tokio::test]
async fn an_upstream_failure_mid_stream_is_an_error_event() {
    let env = Env::start().await;
    for (model, needle) in [
        ("fail-midstream", "an error was encountered"),
        ("fail-cut", "before it was complete"),
    ] {
        let events = stream(&env, &request(model)).await;
        let (name, last) = events.last().unwrap();
        assert_eq!(name, "error", "{model}: {events:?}");
        assert_anthropic_error(last, "api_error");
        assert!(
            last["error"]["message"].as_str().unwrap().contains(needle),
            "{last}"
        );
        assert!(
            !events.iter().any(|(n, _)| n == "message_stop"),
            "{model}: no message_stop"
        );
        assert!(
            events.iter().any(|(n, _)| n == "content_block_delta"),
            "text came first"
        );
        assert_no_upstream_address(&env, last);
    }
    // Before the first byte: an HTTP error in Anthropic's shape, not a stream.
    let mut body = request("fail-busy");
    body["stream"] = json!(true);
    let (status, out) = post_json(&env, "/v1/messages", &body).await;
    assert_eq!(status, 503);
    assert_anthropic_error(&out, "overloaded_error");
}

#[tokio::test]
async fn a_quiet_stream_gets_ping_events() {
    let env = Env::start().await;
    let events = stream(&env, &request("fail-stall")).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let ping = names
        .iter()
        .position(|n| *n == "ping")
        .expect("a ping during the pause");
    assert_eq!(events[ping].1, json!({"type": "ping"}));
    assert!(ping > 0 && ping < names.len() - 1, "{names:?}");
    assert_eq!(names.last(), Some(&"message_stop"));
    assert_eq!(
        deltas(&events, "text_delta", "text"),
        fixture_text("chat/text.ndjson")
    );
}

#[tokio::test]
async fn invalid_requests_are_refused_in_anthropics_shape() {
    let env = Env::start().await;
    let cases = [
        (
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}),
            "max_tokens",
        ),
        (
            json!({"model": "llama3.2", "max_tokens": 5, "messages": []}),
            "messages",
        ),
        (
            json!({"model": "llama3.2", "max_tokens": 5, "messages": [{"role": "robot", "content": "hi"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "llama3.2", "max_tokens": 5, "temperature": 1.5, "messages": [{"role": "user", "content": "hi"}]}),
            "temperature",
        ),
        (
            json!({"model": "llama3.2", "max_tokens": 5, "messages": [{"role": "user", "content": 5}]}),
            "messages[0].content",
        ),
    ];
    for (body, field) in cases {
        let (status, out) = post_json(&env, "/v1/messages", &body).await;
        assert_eq!(status, 400, "{body}: {out}");
        assert_anthropic_error(&out, "invalid_request_error");
        assert!(
            out["error"]["message"].as_str().unwrap().contains(field),
            "{field}: {out}"
        );
    }
    assert_eq!(env.upstream_calls("/api/chat"), 0, "nothing went upstream");
    let (status, out) = post_json(&env, "/v1/messages", &request("nope")).await;
    assert_eq!(status, 404);
    assert_anthropic_error(&out, "not_found_error");
}

#[tokio::test]
async fn the_key_may_come_as_x_api_key_and_the_allowlist_applies() {
    let env = Env::with(|c| c.allowed_models = vec!["qwen3".into()]).await;
    let body = request("llama3.2");
    // No key, a wrong x-api-key: 401 in Anthropic's shape.
    let response = env
        .client
        .post(env.url("/v1/messages"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, out) = read_json(response).await;
    assert_eq!(status, 401);
    assert_anthropic_error(&out, "authentication_error");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-api-key"),
        "{out}"
    );
    let response = env
        .client
        .post(env.url("/v1/messages"))
        .header("x-api-key", "wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // x-api-key is only the Anthropic surface's way; elsewhere it is no key at all.
    let response = env
        .client
        .post(env.url("/v1/chat/completions"))
        .header("x-api-key", KEY)
        .json(&chat("qwen3"))
        .send()
        .await
        .unwrap();
    let (status, out) = read_json(response).await;
    assert_eq!(status, 401);
    assert_eq!(out["error"]["code"], "invalid_api_key");
    // The right key, a model outside the allowlist: 403; inside it, 200 (also with bearer).
    let (status, out) = post_json(&env, "/v1/messages", &body).await;
    assert_eq!(status, 403, "{out}");
    assert_anthropic_error(&out, "permission_error");
    let (status, out) = env.post_json("/v1/messages", &request("qwen3")).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(env.upstream_calls("/api/chat"), 1);
}

#[tokio::test]
async fn count_tokens_reports_ollamas_prompt_count() {
    let env = Env::start().await;
    let body = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Why is the sky blue?"}]});
    let (status, out) = post_json(&env, "/v1/messages/count_tokens", &body).await;
    assert_eq!(status, 200, "{out}");
    let upstream = env.last_upstream_body("/api/chat");
    assert_eq!(upstream["options"]["num_predict"], 1);
    assert_eq!(upstream["stream"], false);
    // One token requested: the fake answers its `length` fixture, whose trailer has the count.
    let trailer = fixture_lines("chat/length.ndjson").pop().unwrap();
    assert_eq!(out, json!({"input_tokens": trailer["prompt_eval_count"]}));
    let (status, out) = post_json(
        &env,
        "/v1/messages/count_tokens",
        &json!({"model": "llama3.2"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_anthropic_error(&out, "invalid_request_error");
}

#[tokio::test]
async fn upstream_timeouts_are_timeout_errors() {
    let env = Env::with(|c| c.upstream_timeout = Duration::from_millis(800)).await;
    let (status, out) = post_json(&env, "/v1/messages", &request("fail-slow")).await;
    assert_eq!(status, 504);
    assert_anthropic_error(&out, "timeout_error");
}

#[tokio::test]
async fn a_slow_first_token_gets_the_stream_started_with_pings() {
    let env = Env::start().await;
    // fail-slow sends nothing for 3 s, then a normal answer.
    let events = stream(&env, &request("fail-slow")).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..2], ["message_start", "ping"], "{names:?}");
    assert_eq!(events[0].1["message"]["model"], "fail-slow");
    assert_eq!(names.iter().filter(|n| **n == "message_start").count(), 1);
    let first_block = names
        .iter()
        .position(|n| *n == "content_block_start")
        .unwrap();
    assert!(first_block > 1, "the ping came while waiting: {names:?}");
    assert_eq!(names.last(), Some(&"message_stop"));
    assert_eq!(
        deltas(&events, "text_delta", "text"),
        fixture_text("chat/text.ndjson")
    );

    // If Ollama then fails instead of answering, the stream says so in an error event.
    let env = Env::with(|c| c.upstream_timeout = Duration::from_millis(1500)).await;
    let events = stream(&env, &request("fail-slow")).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "error", "{names:?}");
    assert_anthropic_error(last, "timeout_error");
}

/// The fake answers "The", " sky is", " blue because", " of Rayleigh", " scattering", "." and
/// applies stop sequences as Ollama's runner does (fake-ollama/src/stop.rs; held to the real
/// server's recordings in fixtures/recorded/chat-stop-*).
#[tokio::test]
async fn a_stop_sequence_is_reported_with_the_sequence_that_matched() {
    let env = Env::start().await;
    let cases = [
        // Inside one token: certain.
        (
            json!(["nowhere", "Rayleigh"]),
            "The sky is blue because of ",
            "stop_sequence",
            json!("Rayleigh"),
        ),
        // Over two tokens, from inside the first: certain.
        (
            json!(["blue because of"]),
            "The sky is ",
            "stop_sequence",
            json!("blue because of"),
        ),
        // Two whole tokens dropped: certain.
        (
            json!([" blue because of Rayleigh"]),
            "The sky is",
            "stop_sequence",
            json!(" blue because of Rayleigh"),
        ),
        // Exactly one whole token: cannot be told from the end of the turn (README).
        (
            json!([" scattering"]),
            "The sky is blue because of Rayleigh",
            "end_turn",
            Value::Null,
        ),
        // None matched.
        (
            json!(["xyzzy"]),
            "The sky is blue because of Rayleigh scattering.",
            "end_turn",
            Value::Null,
        ),
    ];
    for (stops, text, reason, sequence) in cases {
        let mut body = request("llama3.2");
        body["stop_sequences"] = stops.clone();
        let (status, out) = post_json(&env, "/v1/messages", &body).await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(out["content"][0]["text"], text, "{stops}");
        assert_eq!(out["stop_reason"], reason, "{stops}");
        assert_eq!(out["stop_sequence"], sequence, "{stops}");
        assert!(out.get("logprobs").is_none() && !out.to_string().contains("logprob"));

        let events = stream(&env, &body).await;
        assert_eq!(deltas(&events, "text_delta", "text"), text, "{stops}");
        let (_, delta) = events.iter().find(|(n, _)| n == "message_delta").unwrap();
        assert_eq!(
            delta["delta"],
            json!({"stop_reason": reason, "stop_sequence": sequence}),
            "{stops}"
        );
        assert!(
            !events
                .iter()
                .any(|(_, e)| e.to_string().contains("logprob"))
        );
    }
    // Without stop sequences nothing extra is asked of Ollama.
    let (status, _) = post_json(&env, "/v1/messages", &request("llama3.2")).await;
    assert_eq!(status, 200);
    assert!(
        env.last_upstream_body("/api/chat")
            .get("logprobs")
            .is_none()
    );
}
