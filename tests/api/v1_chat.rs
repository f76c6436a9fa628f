//! `/v1/chat/completions`: translation both ways, streamed and not, and every error path.

use std::time::Duration;

use fake_ollama::FakeConfig;
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn non_streamed_chat_translates_both_ways() {
    let env = Env::start().await;
    let mut body = chat("llama3.2");
    body["max_completion_tokens"] = json!(50);
    body["max_tokens"] = json!(10);
    body["seed"] = json!(42);
    body["stop"] = json!("\n\n");
    let (status, out) = env.post_json("/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["object"], "chat.completion");
    assert!(
        out["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-") && id.len() >= 30)
    );
    let choice = &out["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(
        choice["message"]["content"],
        fixture_text("chat/text.ndjson")
    );
    assert_eq!(choice["finish_reason"], "stop");
    let trailer = fixture_lines("chat/text.ndjson")
        .last()
        .cloned()
        .unwrap_or_default();
    assert_eq!(out["usage"]["prompt_tokens"], trailer["prompt_eval_count"]);
    // With `stop` the fake counts as Ollama does: its 6 tokens (lines) and the end-of-turn
    // token (fake-ollama/src/stop.rs).
    assert_eq!(out["usage"]["completion_tokens"], 7);
    assert!(trailer["eval_count"].is_u64());
    assert!(out["created"].as_i64().is_some_and(|c| c > 1_600_000_000));

    let upstream = env.last_upstream_body("/api/chat");
    assert_eq!(upstream["stream"], false, "stream is always explicit");
    assert_eq!(
        upstream["options"]["num_predict"], 50,
        "max_completion_tokens wins"
    );
    assert_eq!(upstream["options"]["seed"], 42);
    assert_eq!(upstream["options"]["stop"], json!(["\n\n"]));
    assert!(
        upstream["options"].get("temperature").is_none(),
        "no forced temperature"
    );
    assert!(
        upstream["options"].get("top_p").is_none(),
        "no forced top_p"
    );
}

#[tokio::test]
async fn streamed_chat_is_well_formed_sse() {
    let env = Env::start().await;
    let mut body = chat("llama3.2");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = env
        .post("/v1/chat/completions", &body)
        .send()
        .await
        .unwrap();
    let (events, done) = sse_json(response).await;
    assert!(done, "ends with [DONE]");
    assert_eq!(streamed_text(&events), fixture_text("chat/text.ndjson"));
    let roles = events
        .iter()
        .filter(|e| e["choices"][0]["delta"].get("role").is_some())
        .count();
    assert_eq!(roles, 1, "role on the first chunk only");
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    let created: Vec<&Value> = events.iter().map(|e| &e["created"]).collect();
    assert!(
        created.iter().all(|c| *c == created[0]),
        "one created for the stream"
    );
    let ids: Vec<&Value> = events.iter().map(|e| &e["id"]).collect();
    assert!(ids.iter().all(|i| *i == ids[0]));
    // No empty chunk for the metrics trailer: every chunk before the finish carries content.
    let n = events.len();
    for event in &events[..n - 2] {
        assert!(
            event["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty()),
            "{event}"
        );
        assert_eq!(event["usage"], Value::Null);
    }
    let finish = &events[n - 2];
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &events[n - 1];
    assert_eq!(usage["choices"], json!([]));
    let trailer = fixture_lines("chat/text.ndjson")
        .last()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        usage["usage"]["prompt_tokens"],
        trailer["prompt_eval_count"]
    );
    assert_eq!(usage["usage"]["completion_tokens"], trailer["eval_count"]);
    assert_eq!(env.last_upstream_body("/api/chat")["stream"], true);
}

#[tokio::test]
async fn without_include_usage_there_is_no_usage_chunk() {
    let env = Env::start().await;
    let mut body = chat("llama3.2");
    body["stream"] = json!(true);
    let response = env
        .post("/v1/chat/completions", &body)
        .send()
        .await
        .unwrap();
    let (events, done) = sse_json(response).await;
    assert!(done);
    assert!(events.iter().all(|e| e.get("usage").is_none()));
    assert_eq!(
        events.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

fn weather_tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
        "strict": true,
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "minLength": 1, "pattern": "^[A-Z]"}},
            "required": ["city"], "additionalProperties": false}}}])
}

#[tokio::test]
async fn tool_calls_streamed_and_not() {
    let env = Env::start().await;
    let mut body = chat("llama3.2");
    body["tools"] = weather_tools();
    let (status, out) = env.post_json("/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{out}");
    let choice = &out["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(
        choice["message"]["content"],
        Value::Null,
        "tool-only answers have null content"
    );
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    for (i, call) in calls.iter().enumerate() {
        assert_eq!(call["index"], i, "indices numbered by the gateway");
        assert_eq!(call["type"], "function");
        assert!(call["id"].as_str().is_some_and(|id| !id.is_empty()));
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert!(args["city"].is_string());
    }
    let upstream = env.last_upstream_body("/api/chat");
    assert_eq!(
        upstream["tools"][0]["function"]["parameters"],
        weather_tools()[0]["function"]["parameters"],
        "parameters verbatim"
    );

    body["stream"] = json!(true);
    let response = env
        .post("/v1/chat/completions", &body)
        .send()
        .await
        .unwrap();
    let (events, done) = sse_json(response).await;
    assert!(done);
    let streamed: Vec<&Value> = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    assert_eq!(streamed.len(), 2);
    assert_eq!(streamed[0]["index"], 0);
    assert_eq!(streamed[1]["index"], 1);
    assert_eq!(
        events.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test]
async fn tool_choice_none_and_named_shape_the_upstream_tools() {
    let env = Env::start().await;
    let mut tools = weather_tools();
    tools.as_array_mut().unwrap().push(
        json!({"type":"function","function":{"name":"get_time","parameters":{"type":"object"}}}),
    );
    let mut body = chat("llama3.2");
    body["tools"] = tools;
    body["tool_choice"] = json!("none");
    let (status, _) = env.post_json("/v1/chat/completions", &body).await;
    assert_eq!(status, 200);
    assert!(env.last_upstream_body("/api/chat").get("tools").is_none());
    body["tool_choice"] = json!({"type": "function", "function": {"name": "get_time"}});
    let (status, _) = env.post_json("/v1/chat/completions", &body).await;
    assert_eq!(status, 200);
    let sent = env.last_upstream_body("/api/chat");
    assert_eq!(sent["tools"].as_array().map(Vec::len), Some(1));
    assert_eq!(sent["tools"][0]["function"]["name"], "get_time");
}

#[tokio::test]
async fn tool_result_round_trip_resolves_tool_names() {
    let env = Env::start().await;
    let body = json!({"model": "llama3.2", "tools": weather_tools(), "messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "Weather in Tokyo?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_abc", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Tokyo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_abc", "content": "{\"temp\": 21}"}
    ]});
    let (status, out) = env.post_json("/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out["choices"][0]["finish_reason"], "stop",
        "after a tool result the model answers"
    );
    let sent = env.last_upstream_body("/api/chat");
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(
        sent["messages"][2]["tool_calls"][0]["function"]["arguments"],
        json!({"city": "Tokyo"})
    );
    assert_eq!(sent["messages"][3]["tool_name"], "get_weather");
    assert_eq!(sent["messages"][3]["tool_call_id"], "call_abc");
}

#[tokio::test]
async fn thinking_output_is_returned_as_reasoning() {
    let env = Env::start().await;
    let mut body = chat("qwen3");
    body["reasoning_effort"] = json!("high");
    let (status, out) = env.post_json("/v1/chat/completions", &body).await;
    assert_eq!(status, 200, "{out}");
    let message = &out["choices"][0]["message"];
    let thinking: String = fixture_lines("chat/thinking.ndjson")
        .iter()
        .filter_map(|l| l["message"]["thinking"].as_str())
        .collect();
    assert!(!thinking.is_empty());
    assert_eq!(message["reasoning_content"], thinking);
    assert_eq!(message["reasoning"], thinking);
    assert_eq!(env.last_upstream_body("/api/chat")["think"], "high");

    body["stream"] = json!(true);
    let response = env
        .post("/v1/chat/completions", &body)
        .send()
        .await
        .unwrap();
    let (events, done) = sse_json(response).await;
    assert!(done);
    let streamed: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(streamed, thinking);
    assert_eq!(streamed_text(&events), fixture_text("chat/thinking.ndjson"));
}

#[tokio::test]
async fn json_mode_schema_length_and_logprobs() {
    let env = Env::start().await;
    let schema = json!({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0}},
        "required":["name","age"],"additionalProperties":false});
    let mut body = chat("llama3.2");
    body["response_format"] =
        json!({"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":schema}});
    let (status, out) = env.post_json("/v1/chat/completions", &body).await;
    assert_eq!(status, 200);
    assert_eq!(env.last_upstream_body("/api/chat")["format"], schema);
    let parsed: Value =
        serde_json::from_str(out["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert!(parsed["name"].is_string() && parsed["age"].is_i64());

    let mut body = chat("llama3.2");
    body["response_format"] = json!({"type":"json_object"});
    env.post_json("/v1/chat/completions", &body).await;
    assert_eq!(env.last_upstream_body("/api/chat")["format"], "json");

    let mut body = chat("llama3.2");
    body["max_tokens"] = json!(2);
    let (_, out) = env.post_json("/v1/chat/completions", &body).await;
    assert_eq!(out["choices"][0]["finish_reason"], "length");

    let mut body = chat("llama3.2");
    body["logprobs"] = json!(true);
    body["top_logprobs"] = json!(2);
    let (_, out) = env.post_json("/v1/chat/completions", &body).await;
    let content = out["choices"][0]["logprobs"]["content"]
        .as_array()
        .expect("logprobs returned");
    assert!(!content.is_empty());
    for entry in content {
        assert!(entry["token"].is_string() && entry["logprob"].is_number());
        assert!(
            entry["bytes"].is_array() && entry["top_logprobs"].is_array(),
            "full shape: {entry}"
        );
    }
    let upstream = env.last_upstream_body("/api/chat");
    assert_eq!(
        (
            upstream["logprobs"].clone(),
            upstream["top_logprobs"].clone()
        ),
        (json!(true), json!(2))
    );
}

#[tokio::test]
async fn images_and_extensions_reach_ollama() {
    let env = Env::start().await;
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let body = json!({"model": "llava", "top_k": 20, "num_ctx": 4096, "keep_alive": "1m", "options": {"num_gpu": 1},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}}]}]});
    let (status, _) = env.post_json("/v1/chat/completions", &body).await;
    assert_eq!(status, 200);
    let sent = env.last_upstream_body("/api/chat");
    assert_eq!(sent["messages"][0]["content"], "What is this?");
    assert_eq!(sent["messages"][0]["images"], json!([png]));
    assert_eq!(sent["options"]["top_k"], 20);
    assert_eq!(sent["options"]["num_ctx"], 4096);
    assert_eq!(sent["options"]["num_gpu"], 1);
    assert_eq!(sent["keep_alive"], "1m");
}

#[tokio::test]
async fn invalid_requests_are_400_naming_the_field_and_never_go_upstream() {
    let env = Env::start().await;
    let msgs = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (json!({"messages": msgs}), "model"),
        (json!({"model": "llama3.2"}), "messages"),
        (json!({"model": "llama3.2", "messages": []}), "messages"),
        (
            json!({"model": "llama3.2", "messages": [{"role": "wizard", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "llama3.2", "messages": msgs, "temperature": 3}),
            "temperature",
        ),
        (
            json!({"model": "llama3.2", "messages": msgs, "top_p": 1.5}),
            "top_p",
        ),
        (
            json!({"model": "llama3.2", "messages": msgs, "presence_penalty": -2.5}),
            "presence_penalty",
        ),
        (
            json!({"model": "llama3.2", "messages": msgs, "max_tokens": 0}),
            "max_tokens",
        ),
        (
            json!({"model": "llama3.2", "messages": msgs, "max_tokens": "many"}),
            "max_tokens",
        ),
        (
            json!({"model": "llama3.2", "messages": msgs, "top_logprobs": 50}),
            "top_logprobs",
        ),
        (json!({"model": "llama3.2", "messages": msgs, "n": 3}), "n"),
        (
            json!({"model": "llama3.2", "messages": msgs, "reasoning_effort": "maximum"}),
            "reasoning_effort",
        ),
    ];
    for (body, field) in cases {
        let (status, out) = env.post_json("/v1/chat/completions", &body).await;
        assert_eq!(status, 400, "{body} -> {out}");
        assert_eq!(out["error"]["type"], "invalid_request_error");
        let message = out["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "message {message:?} names {field}");
    }
    // Malformed JSON.
    let response = env
        .client
        .post(env.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    let (status, out) = read_json(response).await;
    assert_eq!(status, 400);
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    assert_eq!(
        env.upstream_calls("/api/chat"),
        0,
        "nothing reached the upstream"
    );
    // And the gateway keeps serving.
    let (status, _) = env
        .post_json("/v1/chat/completions", &chat("llama3.2"))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn upstream_errors_keep_their_status_in_openai_shape() {
    let env = Env::start().await;
    let (status, out) = env
        .post_json("/v1/chat/completions", &chat("no-such-model"))
        .await;
    assert_eq!(status, 404, "{out}");
    assert_eq!(out["error"]["code"], "model_not_found");
    assert_eq!(out["error"]["type"], "invalid_request_error");
    let (status, out) = env
        .post_json("/v1/chat/completions", &chat("fail-500"))
        .await;
    assert_eq!(status, 500);
    assert_eq!(out["error"]["type"], "api_error");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("llama runner")
    );
    let (status, _) = env
        .post_json("/v1/chat/completions", &chat("fail-busy"))
        .await;
    assert_eq!(status, 503);
    // Errors before the first byte are JSON even when a stream was asked for.
    let mut body = chat("no-such-model");
    body["stream"] = json!(true);
    let response = env
        .post("/v1/chat/completions", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

async fn stream_of(env: &Env, model: &str) -> (Vec<Value>, bool) {
    let mut body = chat(model);
    body["stream"] = json!(true);
    let response = env
        .post("/v1/chat/completions", &body)
        .send()
        .await
        .unwrap();
    sse_json(response).await
}

#[tokio::test]
async fn broken_streams_end_with_an_error_event_and_no_done() {
    let env = Env::start().await;
    for (model, needle) in [
        ("fail-midstream", "an error was encountered"),
        ("fail-cut", "before it was complete"),
        ("fail-corrupt", "malformed"),
    ] {
        let (events, done) = stream_of(&env, model).await;
        assert!(!done, "{model}: no [DONE] after an error");
        let last = events.last().unwrap();
        let message = last["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{model}: {last}");
        assert!(last["error"]["type"].is_string());
        assert!(events.len() >= 2, "{model}: content came before the error");
        assert_no_upstream_address(&env, last);
    }
}

#[tokio::test]
async fn unreachable_upstream_is_502_without_its_address() {
    let env = Env::with(|c| c.ollama_url = "http://127.0.0.1:9".into()).await;
    let (status, out) = env
        .post_json("/v1/chat/completions", &chat("llama3.2"))
        .await;
    assert_eq!(status, 502, "{out}");
    assert_eq!(out["error"]["code"], "upstream_unavailable");
    let text = out.to_string();
    assert!(
        !text.contains("127.0.0.1") && !text.contains(":9"),
        "{text}"
    );
}

#[tokio::test]
async fn slow_upstream_is_504_and_a_stalled_stream_ends_with_an_error() {
    let env = Env::with(|c| c.upstream_timeout = Duration::from_millis(800)).await;
    let (status, out) = env
        .post_json("/v1/chat/completions", &chat("fail-slow"))
        .await;
    assert_eq!(status, 504, "{out}");
    assert_eq!(out["error"]["code"], "upstream_timeout");
    assert_no_upstream_address(&env, &out);
    let (events, done) = stream_of(&env, "fail-stall").await;
    assert!(!done);
    assert_eq!(events.last().unwrap()["error"]["code"], "upstream_timeout");
}

#[tokio::test]
async fn a_client_that_leaves_cancels_the_upstream_stream() {
    let env = Env::with_fake(
        FakeConfig {
            chunk_gap: Duration::from_millis(50),
            ..FakeConfig::default()
        },
        |_| {},
    )
    .await;
    let mut body = chat("bench");
    body["stream"] = json!(true);
    body["max_tokens"] = json!(1000);
    let mut response = env
        .post("/v1/chat/completions", &body)
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap();
    assert!(first.is_some());
    drop(response);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while env.fake.cancelled_streams() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        env.fake.cancelled_streams(),
        1,
        "upstream saw the cancellation"
    );
    assert_eq!(env.fake.completed_streams(), 0);
}

#[tokio::test]
async fn a_client_that_leaves_while_ollama_is_silent_cancels_the_upstream_request() {
    let env = Env::with_fake(
        FakeConfig {
            first_token_delay: Duration::from_secs(3),
            ..FakeConfig::default()
        },
        |_| {},
    )
    .await;
    let mut body = chat("bench");
    body["stream"] = json!(true);
    let request = env.post("/v1/chat/completions", &body).send();
    // Give up before Ollama has said anything.
    let _ = tokio::time::timeout(Duration::from_millis(300), request).await;
    let left_at = tokio::time::Instant::now();
    while env.fake.cancelled_streams() == 0 && left_at.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        env.fake.cancelled_streams(),
        1,
        "the upstream request was closed"
    );
    assert!(
        left_at.elapsed() < Duration::from_secs(1),
        "promptly: {:?}",
        left_at.elapsed()
    );
}

#[tokio::test]
async fn a_client_that_leaves_between_chunks_cancels_the_upstream_stream_promptly() {
    let env = Env::with_fake(
        FakeConfig {
            chunk_gap: Duration::from_secs(3),
            ..FakeConfig::default()
        },
        |_| {},
    )
    .await;
    let mut body = chat("bench");
    body["stream"] = json!(true);
    let mut response = env
        .post("/v1/chat/completions", &body)
        .send()
        .await
        .unwrap();
    assert!(
        response.chunk().await.unwrap().is_some(),
        "the first chunk arrived"
    );
    drop(response);
    let left_at = tokio::time::Instant::now();
    while env.fake.cancelled_streams() == 0 && left_at.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(env.fake.cancelled_streams(), 1);
    assert!(
        left_at.elapsed() < Duration::from_secs(1),
        "not only at the next chunk: {:?}",
        left_at.elapsed()
    );
}

#[tokio::test]
async fn a_whole_answer_that_ends_without_done_is_502_upstream_interrupted() {
    // `fail-cut` with `stream: false` answers 200 with what came and `done: false`, as real
    // Ollama 0.24 does when it ends a long generation early: no surface may call that complete.
    let env = Env::start().await;
    let mut chat_body = chat("fail-cut");
    chat_body["stream"] = json!(false);
    let (status, native) = env.post_json("/api/chat", &chat_body).await;
    assert_eq!(
        (status, native["done"].clone()),
        (200, json!(false)),
        "{native}"
    );
    for (path, body) in [
        ("/v1/chat/completions", chat("fail-cut")),
        (
            "/v1/completions",
            json!({"model": "fail-cut", "prompt": "Why?"}),
        ),
    ] {
        let (status, out) = env.post_json(path, &body).await;
        assert_eq!(status, 502, "{path}: {out}");
        assert_eq!(out["error"]["code"], "upstream_interrupted", "{path}");
        assert_no_upstream_address(&env, &out);
    }
    let (status, out) = env.post_json("/chat", &chat_body).await;
    assert_eq!(status, 502, "{out}");
    assert!(
        out["error"]
            .as_str()
            .unwrap()
            .contains("before it was complete"),
        "{out}"
    );
    let (status, out) = env
        .post_json(
            "/v1/responses",
            &json!({"model": "fail-cut", "input": "Why?"}),
        )
        .await;
    assert_eq!(status, 502, "{out}");
    assert_eq!(out["error"]["code"], "upstream_interrupted", "{out}");
    let (status, out) = env
        .post_json(
            "/v1/messages",
            &json!({"model": "fail-cut", "max_tokens": 64,
                    "messages": [{"role": "user", "content": "Why?"}]}),
        )
        .await;
    assert_eq!(status, 502, "{out}");
    assert_eq!(out["type"], "error", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("before it was complete"),
        "{out}"
    );
    // A complete answer is still a 200.
    let (status, _) = env
        .post_json("/v1/chat/completions", &chat("llama3.2"))
        .await;
    assert_eq!(status, 200);
}
