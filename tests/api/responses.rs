//! `/v1/responses` (OpenAI Responses): translation both ways, the typed event stream with
//! sequence numbers, failures reported in the stream, validation and the gate.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

fn request(model: &str) -> Value {
    json!({"model": model, "input": "Why is the sky blue?"})
}

async fn stream(env: &Env, body: &Value) -> Vec<(String, Value)> {
    let mut body = body.clone();
    body["stream"] = json!(true);
    let events = named_events(env.post("/v1/responses", &body).send().await.unwrap()).await;
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(
            data["type"],
            name.as_str(),
            "the type repeats the event name"
        );
        assert_eq!(
            data["sequence_number"], i,
            "sequence numbers count from 0: {data}"
        );
    }
    events
}

fn deltas(events: &[(String, Value)], name: &str) -> String {
    events
        .iter()
        .filter(|(n, _)| n == name)
        .filter_map(|(_, e)| e["delta"].as_str())
        .collect()
}

fn items<'a>(response: &'a Value, kind: &str) -> Vec<&'a Value> {
    response["output"]
        .as_array()
        .map(|items| items.iter().filter(|i| i["type"] == kind).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn non_streamed_response_translates_both_ways() {
    let env = Env::start().await;
    let mut body = request("llama3.2");
    body["instructions"] = json!("Answer briefly.");
    body["max_output_tokens"] = json!(64);
    body["temperature"] = json!(0.4);
    body["metadata"] = json!({"ticket": "42"});
    body["store"] = json!(true);
    let (status, out) = env.post_json("/v1/responses", &body).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["object"], "response");
    assert!(
        out["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("resp_") && id.len() > 30)
    );
    assert_eq!(out["status"], "completed");
    let messages = items(&out, "message");
    assert_eq!(messages.len(), 1, "{out}");
    assert_eq!(messages[0]["content"][0]["type"], "output_text");
    assert_eq!(
        messages[0]["content"][0]["text"],
        fixture_text("chat/text.ndjson")
    );
    let trailer = fixture_lines("chat/text.ndjson").pop().unwrap();
    assert_eq!(out["usage"]["input_tokens"], trailer["prompt_eval_count"]);
    assert_eq!(out["usage"]["output_tokens"], trailer["eval_count"]);
    assert_eq!(
        out["usage"]["total_tokens"].as_u64(),
        Some(
            trailer["prompt_eval_count"].as_u64().unwrap()
                + trailer["eval_count"].as_u64().unwrap()
        )
    );
    assert_eq!(out["metadata"], json!({"ticket": "42"}));
    assert_eq!(out["store"], true, "kept, as OpenAI's default");
    assert_eq!(out["previous_response_id"], Value::Null);
    assert_eq!(out["instructions"], "Answer briefly.");

    let upstream = env.last_upstream_body("/api/chat");
    assert_eq!(upstream["stream"], false);
    assert_eq!(upstream["options"]["num_predict"], 64);
    assert_eq!(upstream["options"]["temperature"], 0.4);
    assert!(
        upstream["options"].get("top_p").is_none(),
        "no forced top_p"
    );
    assert_eq!(
        upstream["messages"][0],
        json!({"role": "system", "content": "Answer briefly."})
    );
    assert_eq!(
        upstream["messages"][1],
        json!({"role": "user", "content": "Why is the sky blue?"})
    );
}

#[tokio::test]
async fn streamed_response_has_typed_events_in_order() {
    let env = Env::start().await;
    let events = stream(&env, &request("llama3.2")).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        &names[..4],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added"
        ]
    );
    assert_eq!(
        &names[names.len() - 4..],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let text = fixture_text("chat/text.ndjson");
    assert_eq!(deltas(&events, "response.output_text.delta"), text);
    let done = &events[events.len() - 4].1;
    assert_eq!(done["text"], text);
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["id"], events[0].1["response"]["id"]);
    assert_eq!(completed["output"][0]["content"][0]["text"], text);
    let trailer = fixture_lines("chat/text.ndjson").pop().unwrap();
    assert_eq!(completed["usage"]["output_tokens"], trailer["eval_count"]);
    assert_eq!(env.last_upstream_body("/api/chat")["stream"], true);
}

#[tokio::test]
async fn function_call_round_trip_with_function_call_output() {
    let env = Env::start().await;
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    let mut body = request("llama3.2");
    body["tools"] = tools.clone();
    let (status, out) = env.post_json("/v1/responses", &body).await;
    assert_eq!(status, 200, "{out}");
    let calls = items(&out, "function_call");
    assert_eq!(calls.len(), 2, "{out}");
    assert_eq!(calls[0]["name"], "get_weather");
    let arguments: Value = serde_json::from_str(calls[0]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"city": "Tokyo"}));
    assert!(
        calls[0]["call_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    let upstream = env.last_upstream_body("/api/chat");
    assert_eq!(upstream["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(
        upstream["tools"][0]["function"]["parameters"],
        tools[0]["parameters"]
    );

    // Send the calls and their outputs back: Ollama gets one assistant turn and two tool turns.
    let mut input = vec![json!({"role": "user", "content": "Why is the sky blue?"})];
    input.extend(calls.iter().map(|c| (*c).clone()));
    input.extend(calls.iter().map(
        |c| json!({"type": "function_call_output", "call_id": c["call_id"], "output": "sunny"}),
    ));
    let follow_up = json!({"model": "llama3.2", "tools": tools, "input": input});
    let (status, answer) = env.post_json("/v1/responses", &follow_up).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        items(&answer, "message")[0]["content"][0]["text"],
        fixture_text("chat/text.ndjson")
    );
    let upstream = env.last_upstream_body("/api/chat");
    let messages = upstream["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4, "{upstream}");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["tool_calls"].as_array().map(Vec::len), Some(2));
    assert_eq!(messages[2]["role"], "tool");
    assert_eq!(messages[2]["tool_name"], "get_weather");
    assert_eq!(messages[2]["tool_call_id"], calls[0]["call_id"]);

    // Streamed: function_call items whose arguments arrive in one delta each.
    let events = stream(&env, &body).await;
    let added: Vec<&Value> = events
        .iter()
        .filter(|(n, e)| n == "response.output_item.added" && e["item"]["type"] == "function_call")
        .map(|(_, e)| e)
        .collect();
    assert_eq!(added.len(), 2);
    let args: Vec<Value> = events
        .iter()
        .filter(|(n, _)| n == "response.function_call_arguments.done")
        .map(|(_, e)| serde_json::from_str(e["arguments"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(args, [json!({"city": "Tokyo"}), json!({"city": "Paris"})]);
    let completed = &events.last().unwrap().1;
    assert_eq!(completed["type"], "response.completed");
    assert_eq!(items(&completed["response"], "function_call").len(), 2);
}

#[tokio::test]
async fn reasoning_comes_as_a_reasoning_item() {
    let env = Env::start().await;
    let mut body = request("qwen3");
    body["reasoning"] = json!({"effort": "high"});
    let (status, out) = env.post_json("/v1/responses", &body).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(env.last_upstream_body("/api/chat")["think"], "high");
    let thinking = fixture_field("chat/thinking.ndjson", "thinking");
    assert_eq!(out["output"][0]["type"], "reasoning");
    assert_eq!(out["output"][0]["summary"][0]["text"], thinking);
    assert_eq!(
        out["output"][1]["content"][0]["text"],
        fixture_field("chat/thinking.ndjson", "content")
    );

    let events = stream(&env, &body).await;
    assert_eq!(
        deltas(&events, "response.reasoning_summary_text.delta"),
        thinking
    );
    assert_eq!(
        deltas(&events, "response.output_text.delta"),
        fixture_field("chat/thinking.ndjson", "content")
    );
    let reasoning_done = events
        .iter()
        .position(|(n, e)| n == "response.output_item.done" && e["item"]["type"] == "reasoning")
        .unwrap();
    let first_text = events
        .iter()
        .position(|(n, _)| n == "response.output_text.delta")
        .unwrap();
    assert!(
        reasoning_done < first_text,
        "reasoning closes before the text starts"
    );

    body["reasoning"] = json!({"effort": "none"});
    let (_, out) = env.post_json("/v1/responses", &body).await;
    assert_eq!(env.last_upstream_body("/api/chat")["think"], false);
    assert_eq!(out["output"][0]["type"], "message", "{out}");
}

#[tokio::test]
async fn structured_output_forwards_the_schema() {
    let env = Env::start().await;
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"], "additionalProperties": false});
    let mut body = request("llama3.2");
    body["text"] = json!({"format": {"type": "json_schema", "name": "person", "schema": schema, "strict": true}});
    let (status, out) = env.post_json("/v1/responses", &body).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(env.last_upstream_body("/api/chat")["format"], schema);
    let text = items(&out, "message")[0]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let parsed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed, json!({"name": "Ada", "age": 36}));
    assert_eq!(out["text"]["format"]["type"], "json_schema");
}

#[tokio::test]
async fn a_length_cut_is_incomplete() {
    let env = Env::start().await;
    let mut body = request("llama3.2");
    body["max_output_tokens"] = json!(3);
    let (_, out) = env.post_json("/v1/responses", &body).await;
    assert_eq!(out["status"], "incomplete", "{out}");
    assert_eq!(
        out["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    let events = stream(&env, &body).await;
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "response.incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(
        deltas(&events, "response.output_text.delta"),
        fixture_text("chat/length.ndjson")
    );
}

#[tokio::test]
async fn an_upstream_failure_mid_stream_is_error_then_response_failed() {
    let env = Env::start().await;
    for (model, needle) in [
        ("fail-midstream", "an error was encountered"),
        ("fail-cut", "before it was complete"),
        ("fail-corrupt", "malformed"),
    ] {
        let events = stream(&env, &request(model)).await;
        let n = events.len();
        assert!(n >= 4, "{model}: {events:?}");
        let (name, error) = &events[n - 2];
        assert_eq!(name, "error", "{model}");
        assert!(
            error["message"].as_str().unwrap().contains(needle),
            "{error}"
        );
        assert!(error["code"].is_string());
        let (name, failed) = &events[n - 1];
        assert_eq!(name, "response.failed");
        assert_eq!(failed["response"]["status"], "failed");
        assert_eq!(failed["response"]["error"]["code"], error["code"]);
        assert!(!events.iter().any(|(n, _)| n == "response.completed"));
        assert_no_upstream_address(&env, failed);
    }
    // Before the first byte: an HTTP error in OpenAI's shape.
    let mut body = request("fail-500");
    body["stream"] = json!(true);
    let (status, out) = env.post_json("/v1/responses", &body).await;
    assert_eq!(status, 500, "{out}");
    assert!(out["error"]["message"].is_string());
}

#[tokio::test]
async fn invalid_requests_are_refused_with_the_field_named() {
    let env = Env::start().await;
    let cases = [
        (json!({"model": "llama3.2"}), None),
        (json!({"model": "llama3.2", "input": 5}), Some("input")),
        (
            json!({"model": "llama3.2", "input": "hi", "max_output_tokens": 0}),
            Some("max_output_tokens"),
        ),
        (
            json!({"model": "llama3.2", "input": "hi", "temperature": 2.5}),
            Some("temperature"),
        ),
        (
            json!({"model": "llama3.2", "input": "hi", "reasoning": {"effort": "extreme"}}),
            Some("reasoning.effort"),
        ),
        (
            json!({"model": "llama3.2", "input": "hi", "tools": [{"type": "web_search"}]}),
            Some("tools[0].type"),
        ),
        (
            json!({"model": "llama3.2", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{"}]}),
            Some("input[0].arguments"),
        ),
        (
            json!({"model": "llama3.2", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://example.com/x.png"}]}]}),
            Some("input[0].content[0].image_url"),
        ),
    ];
    for (body, field) in cases {
        let (status, out) = env.post_json("/v1/responses", &body).await;
        assert_eq!(status, 400, "{body}: {out}");
        assert_eq!(out["error"]["type"], "invalid_request_error");
        if let Some(field) = field {
            assert_eq!(out["error"]["param"], field, "{out}");
            assert!(out["error"]["message"].as_str().unwrap().contains(field));
        }
    }
    assert_eq!(env.upstream_calls("/api/chat"), 0, "nothing went upstream");
    let (status, out) = env.post_json("/v1/responses", &request("nope")).await;
    assert_eq!(status, 404);
    assert_eq!(out["error"]["code"], "model_not_found");
}

#[tokio::test]
async fn the_gate_applies() {
    let env = Env::with(|c| c.allowed_models = vec!["qwen3".into()]).await;
    let response = env
        .client
        .post(env.url("/v1/responses"))
        .json(&request("qwen3"))
        .send()
        .await
        .unwrap();
    let (status, out) = read_json(response).await;
    assert_eq!(status, 401);
    assert_eq!(out["error"]["code"], "invalid_api_key");
    let (status, out) = env.post_json("/v1/responses", &request("llama3.2")).await;
    assert_eq!(status, 403);
    assert_eq!(out["error"]["code"], "model_not_allowed");
    assert_eq!(env.upstream_calls("/api/chat"), 0);
    let (status, _) = env.post_json("/v1/responses", &request("qwen3")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_stalled_stream_ends_with_response_failed() {
    let env = Env::with(|c| c.upstream_timeout = Duration::from_millis(800)).await;
    let events = stream(&env, &request("fail-stall")).await;
    let (name, failed) = events.last().unwrap();
    assert_eq!(name, "response.failed", "{events:?}");
    assert_eq!(failed["response"]["error"]["code"], "upstream_timeout");
}

fn counter(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Both new surfaces are counted like the others: requests by route, tokens by key and model
/// (the recorder is process-wide, so this test has a key of its own).
#[tokio::test]
async fn both_surfaces_are_in_the_metrics() {
    let path = std::env::temp_dir().join(format!("gw-keys-surfaces-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "[[keys]]\nname = \"surfaces\"\nkey = \"surfaces-key\"\n",
    )
    .unwrap();
    let file = path.clone();
    let env = Env::with(move |c| c.config_file = Some(file)).await;
    let _ = std::fs::remove_file(path);
    let scrape = || async {
        let request = env
            .client
            .get(env.url("/metrics"))
            .bearer_auth("surfaces-key");
        request.send().await.unwrap().text().await.unwrap()
    };
    let before = scrape().await;
    for stream in [false, true] {
        let mut body = request("llama3.2");
        body["stream"] = json!(stream);
        let response = env
            .client
            .post(env.url("/v1/responses"))
            .bearer_auth("surfaces-key")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        let response = env
            .client
            .post(env.url("/v1/messages"))
            .header("x-api-key", "surfaces-key")
            .json(
                &json!({"model": "llama3.2", "max_tokens": 64, "stream": stream,
                "messages": [{"role": "user", "content": "Why is the sky blue?"}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after = scrape().await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        counter(&after, name, labels) - counter(&before, name, labels)
    };
    for route in ["/v1/responses", "/v1/messages"] {
        let labels = [("route", route), ("status", "200"), ("key", "surfaces")];
        assert_eq!(delta("gateway_requests_total", &labels), 2.0, "{route}");
    }
    let trailer = fixture_lines("chat/text.ndjson").pop().unwrap();
    let ours = [("model", "llama3.2"), ("key", "surfaces")];
    assert_eq!(
        delta("gateway_completion_tokens_total", &ours),
        4.0 * trailer["eval_count"].as_f64().unwrap(),
        "streamed and whole answers on both surfaces"
    );
    assert_eq!(
        delta("gateway_prompt_tokens_total", &ours),
        4.0 * trailer["prompt_eval_count"].as_f64().unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// Stored responses: previous_response_id, GET and DELETE /v1/responses/{id}
// ---------------------------------------------------------------------------------------------

/// A second configured key (named `key-2`).
const OTHER_KEY: &str = "test-key-2";

async fn two_keys() -> Env {
    Env::with(|c| {
        c.api_keys
            .push(ollama_gateway::config::Secret::new(OTHER_KEY))
    })
    .await
}

/// The native messages Ollama received last, as (role, content) pairs.
fn upstream_turns(env: &Env) -> Vec<(String, String)> {
    env.last_upstream_body("/api/chat")["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn turns(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(r, c)| ((*r).to_owned(), (*c).to_owned()))
        .collect()
}

async fn call(
    env: &Env,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = env.client.request(method, env.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(body);
    }
    read_json(request.send().await.unwrap()).await
}

fn assert_not_found(status: u16, out: &Value, code: &str) {
    assert_eq!(status, 404, "{out}");
    assert_eq!(out["error"]["type"], "invalid_request_error", "{out}");
    assert_eq!(out["error"]["code"], code, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not found")
    );
}

#[tokio::test]
async fn a_three_turn_chain_with_previous_response_id_then_get_and_delete() {
    let env = Env::start().await;
    let answer = fixture_text("chat/text.ndjson");
    // Turn 1, with instructions.
    let mut body = request("llama3.2");
    body["instructions"] = json!("Answer briefly.");
    let (status, first) = env.post_json("/v1/responses", &body).await;
    assert_eq!(status, 200, "{first}");
    let id1 = first["id"].as_str().unwrap().to_owned();
    assert_eq!(first["store"], true);

    // Turn 2 continues it with new instructions: the old ones are not carried over.
    let body = json!({"model": "llama3.2", "previous_response_id": id1,
        "instructions": "Answer in French.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "And at sunset?"}]}]});
    let (status, second) = env.post_json("/v1/responses", &body).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["previous_response_id"], id1.as_str());
    assert_eq!(second["instructions"], "Answer in French.");
    assert_eq!(
        upstream_turns(&env),
        turns(&[
            ("system", "Answer in French."),
            ("user", "Why is the sky blue?"),
            ("assistant", &answer),
            ("user", "And at sunset?"),
        ])
    );
    let id2 = second["id"].as_str().unwrap().to_owned();

    // Turn 3, streamed, without instructions: the whole chain, and no system message.
    let events = stream(
        &env,
        &json!({"model": "llama3.2", "previous_response_id": id2, "input": "Thanks!"}),
    )
    .await;
    assert_eq!(
        upstream_turns(&env),
        turns(&[
            ("user", "Why is the sky blue?"),
            ("assistant", &answer),
            ("user", "And at sunset?"),
            ("assistant", &answer),
            ("user", "Thanks!"),
        ])
    );
    let (name, completed) = events.last().unwrap();
    assert_eq!(name, "response.completed");
    let third = completed["response"].clone();
    assert_eq!(third["previous_response_id"], id2.as_str());
    assert_eq!(third["store"], true);
    let id3 = third["id"].as_str().unwrap().to_owned();

    // GET answers exactly what the create returned (the stream's as its last event had it).
    for (id, created) in [(&id1, &first), (&id2, &second), (&id3, &third)] {
        let (status, got) = env.get_json(&format!("/v1/responses/{id}")).await;
        assert_eq!(status, 200, "{got}");
        assert_eq!(&got, created, "GET {id}");
    }

    // DELETE answers OpenAI's deletion object; then the response is gone everywhere.
    let (status, deleted) = call(
        &env,
        KEY,
        reqwest::Method::DELETE,
        &format!("/v1/responses/{id2}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(
        deleted,
        json!({"id": id2, "object": "response", "deleted": true})
    );
    let (status, out) = env.get_json(&format!("/v1/responses/{id2}")).await;
    assert_not_found(status, &out, "response_not_found");
    let (status, out) = call(
        &env,
        KEY,
        reqwest::Method::DELETE,
        &format!("/v1/responses/{id2}"),
        None,
    )
    .await;
    assert_not_found(status, &out, "response_not_found");
    let calls = env.upstream_calls("/api/chat");
    let (status, out) = env
        .post_json(
            "/v1/responses",
            &json!({"model": "llama3.2", "previous_response_id": id2, "input": "again"}),
        )
        .await;
    assert_not_found(status, &out, "previous_response_not_found");
    assert_eq!(out["error"]["param"], "previous_response_id");
    assert_eq!(
        out["error"]["message"],
        format!("Previous response with id '{id2}' not found.")
    );
    assert_eq!(
        env.upstream_calls("/api/chat"),
        calls,
        "nothing went upstream"
    );
    // A later response holds its whole conversation: deleting an earlier one does not break it.
    let (status, _) = env
        .post_json(
            "/v1/responses",
            &json!({"model": "llama3.2", "previous_response_id": id3, "input": "Bye"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(upstream_turns(&env).len(), 7);
}

#[tokio::test]
async fn a_function_call_round_trip_continues_from_the_stored_call() {
    let env = Env::start().await;
    let body = json!({"model": "llama3.2", "input": "Weather in Tokyo and Paris?",
        "tools": [{"type": "function", "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]});
    let (status, first) = env.post_json("/v1/responses", &body).await;
    assert_eq!(status, 200, "{first}");
    let calls = items(&first, "function_call");
    assert_eq!(calls.len(), 2, "{first}");
    let outputs: Vec<Value> = calls
        .iter()
        .zip(["sunny", "rain"])
        .map(|(c, out)| json!({"type": "function_call_output", "call_id": c["call_id"], "output": out}))
        .collect();
    let body = json!({"model": "llama3.2", "previous_response_id": first["id"], "input": outputs,
        "tools": body["tools"]});
    let (status, second) = env.post_json("/v1/responses", &body).await;
    assert_eq!(status, 200, "{second}");
    let upstream = env.last_upstream_body("/api/chat");
    let messages = upstream["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4, "{upstream}");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(messages[2]["role"], "tool");
    assert_eq!(messages[2]["tool_name"], "get_weather");
    assert_eq!(messages[2]["tool_call_id"], calls[0]["call_id"]);
    assert_eq!(messages[3]["content"], "rain");
    assert_eq!(
        items(&second, "message").len(),
        1,
        "a text answer to the tool results"
    );
}

#[tokio::test]
async fn another_key_is_told_the_response_does_not_exist() {
    let env = two_keys().await;
    let (status, mine) = env.post_json("/v1/responses", &request("llama3.2")).await;
    assert_eq!(status, 200);
    let id = mine["id"].as_str().unwrap();
    let path = format!("/v1/responses/{id}");
    let (status, out) = call(&env, OTHER_KEY, reqwest::Method::GET, &path, None).await;
    assert_not_found(status, &out, "response_not_found");
    let (status, out) = call(&env, OTHER_KEY, reqwest::Method::DELETE, &path, None).await;
    assert_not_found(status, &out, "response_not_found");
    let body = json!({"model": "llama3.2", "previous_response_id": id, "input": "hi"});
    let (status, out) = call(
        &env,
        OTHER_KEY,
        reqwest::Method::POST,
        "/v1/responses",
        Some(&body),
    )
    .await;
    assert_not_found(status, &out, "previous_response_not_found");
    // Still there for its own key.
    let (status, got) = env.get_json(&path).await;
    assert_eq!(status, 200);
    assert_eq!(got, mine);
    // Without a key: 401 before anything is looked up.
    let response = env.client.get(env.url(&path)).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn store_false_keeps_nothing() {
    let env = Env::start().await;
    for streamed in [false, true] {
        let mut body = request("llama3.2");
        body["store"] = json!(false);
        let response = if streamed {
            let events = stream(&env, &body).await;
            events.last().unwrap().1["response"].clone()
        } else {
            let (status, out) = env.post_json("/v1/responses", &body).await;
            assert_eq!(status, 200);
            out
        };
        assert_eq!(response["store"], false);
        let id = response["id"].as_str().unwrap();
        let (status, out) = env.get_json(&format!("/v1/responses/{id}")).await;
        assert_not_found(status, &out, "response_not_found");
        let (status, out) = env
            .post_json(
                "/v1/responses",
                &json!({"model": "llama3.2", "previous_response_id": id, "input": "more"}),
            )
            .await;
        assert_not_found(status, &out, "previous_response_not_found");
    }
    assert_eq!(env.state.responses.unwritten(), 0);
}

#[tokio::test]
async fn with_a_ttl_of_zero_nothing_is_stored_and_previous_response_id_is_a_400() {
    let env = Env::with(|c| c.responses_ttl = Duration::ZERO).await;
    let (status, out) = env.post_json("/v1/responses", &request("llama3.2")).await;
    assert_eq!(status, 200);
    assert_eq!(out["store"], false);
    let id = out["id"].as_str().unwrap();
    let (status, got) = env.get_json(&format!("/v1/responses/{id}")).await;
    assert_not_found(status, &got, "response_not_found");
    let (status, out) = env
        .post_json(
            "/v1/responses",
            &json!({"model": "llama3.2", "previous_response_id": id, "input": "more"}),
        )
        .await;
    assert_eq!(status, 400, "{out}");
    assert_eq!(out["error"]["param"], "previous_response_id");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GATEWAY_RESPONSES_TTL")
    );
}

/// A gateway on `db` (a new fake in front), as a restarted gateway would start.
async fn restarted(
    db: &str,
    clock: std::sync::Arc<dyn ollama_gateway::usage::clock::Clock>,
) -> Env {
    let fake = fake_ollama::FakeOllama::start(fake_ollama::FakeConfig::default())
        .await
        .unwrap();
    let mut config = test_config(&fake);
    config.db = db.to_owned();
    config.responses_ttl = Duration::from_secs(3600);
    Env::serve(fake, config, clock).await
}

#[tokio::test]
async fn expired_responses_are_not_answered_and_are_swept() {
    use chrono::TimeZone;
    use ollama_gateway::usage::clock::ManualClock;
    let clock = std::sync::Arc::new(ManualClock::new(
        chrono::Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
    ));
    let env = Env::with_clock(fake_ollama::FakeConfig::default(), clock.clone(), |c| {
        c.responses_ttl = Duration::from_secs(3600);
    })
    .await;
    let (_, old) = env.post_json("/v1/responses", &request("llama3.2")).await;
    let old_id = old["id"].as_str().unwrap().to_owned();
    clock.advance(chrono::Duration::minutes(50));
    let (_, young) = env.post_json("/v1/responses", &request("llama3.2")).await;
    let young_id = young["id"].as_str().unwrap().to_owned();
    assert_eq!(
        env.get_json(&format!("/v1/responses/{old_id}")).await.0,
        200
    );
    // 70 minutes after the first: it expired (whether written yet or not), the second did not.
    clock.advance(chrono::Duration::minutes(20));
    let (status, out) = env.get_json(&format!("/v1/responses/{old_id}")).await;
    assert_not_found(status, &out, "response_not_found");
    let (status, out) = env
        .post_json(
            "/v1/responses",
            &json!({"model": "llama3.2", "previous_response_id": old_id, "input": "more"}),
        )
        .await;
    assert_not_found(status, &out, "previous_response_not_found");
    assert_eq!(
        env.get_json(&format!("/v1/responses/{young_id}")).await.0,
        200
    );

    // Written out as on shutdown; the row is still in the file until a sweep.
    env.state.responses.close().await;
    let db = env.state.config.db.clone();
    let store = ollama_gateway::store::Store::open(&db).await.unwrap();
    assert!(
        store
            .response(&old_id, "config:key-1", i64::MIN)
            .await
            .unwrap()
            .is_some()
    );
    // A gateway that starts sweeps: the expired row is deleted, the other kept.
    let again = restarted(&db, clock.clone()).await;
    let mut swept = false;
    for _ in 0..100 {
        if store
            .response(&old_id, "config:key-1", i64::MIN)
            .await
            .unwrap()
            .is_none()
        {
            swept = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(swept, "the expired response was deleted at start");
    assert!(
        store
            .response(&young_id, "config:key-1", i64::MIN)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        again.get_json(&format!("/v1/responses/{young_id}")).await.0,
        200
    );
}

#[tokio::test]
async fn stored_responses_survive_a_restart() {
    let env = Env::start().await;
    let (_, whole) = env.post_json("/v1/responses", &request("llama3.2")).await;
    let events = stream(&env, &request("qwen3")).await;
    let streamed = events.last().unwrap().1["response"].clone();
    env.state.responses.close().await;
    assert_eq!(
        env.state.responses.unwritten(),
        0,
        "written out before exit"
    );
    let clock: std::sync::Arc<dyn ollama_gateway::usage::clock::Clock> =
        std::sync::Arc::new(ollama_gateway::usage::clock::SystemClock);
    let again = restarted(&env.state.config.db, clock).await;
    for response in [&whole, &streamed] {
        let id = response["id"].as_str().unwrap();
        let (status, got) = again.get_json(&format!("/v1/responses/{id}")).await;
        assert_eq!(status, 200, "{got}");
        assert_eq!(&got, response);
    }
    // And the conversation continues there, reasoning included.
    let id = streamed["id"].as_str().unwrap();
    let (status, _) = again
        .post_json(
            "/v1/responses",
            &json!({"model": "qwen3", "previous_response_id": id, "input": "more"}),
        )
        .await;
    assert_eq!(status, 200);
    let upstream = again.last_upstream_body("/api/chat");
    assert_eq!(upstream["messages"][1]["role"], "assistant");
    assert_eq!(
        upstream["messages"][1]["thinking"],
        fixture_field("chat/thinking.ndjson", "thinking")
    );
}

/// The race a client creates: it continues from a response the moment the create answered, so
/// the write cannot have landed yet. Holding the database's lock makes sure it has not.
#[tokio::test]
async fn continuing_at_once_works_before_the_write_has_landed() {
    let env = Env::start().await;
    let db = env.state.config.db.clone();
    let held = lock(&db).await;
    let started = std::time::Instant::now();
    let (status, first) = env.post_json("/v1/responses", &request("llama3.2")).await;
    assert_eq!(status, 200, "{first}");
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "the create does not wait on the database"
    );
    let id = first["id"].as_str().unwrap().to_owned();
    // Streamed too: the id is known from the last event.
    let events = stream(
        &env,
        &json!({"model": "llama3.2", "previous_response_id": id, "input": "and?"}),
    )
    .await;
    let second = events.last().unwrap().1["response"].clone();
    assert_eq!(second["previous_response_id"], id.as_str());
    assert_eq!(upstream_turns(&env).len(), 3, "turn 1 was found");
    let id2 = second["id"].as_str().unwrap().to_owned();
    let (status, out) = env
        .post_json(
            "/v1/responses",
            &json!({"model": "llama3.2", "previous_response_id": id2, "input": "more"}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(upstream_turns(&env).len(), 5, "turn 2 was found");
    let (status, got) = env.get_json(&format!("/v1/responses/{id2}")).await;
    assert_eq!(status, 200);
    assert_eq!(got, second);
    assert!(
        env.state.responses.unwritten() >= 1,
        "nothing could be written yet"
    );
    drop(held);
    // Once the database is free, the writer catches up and the rows are in the file.
    for _ in 0..200 {
        if env.state.responses.unwritten() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(env.state.responses.unwritten(), 0);
    let store = ollama_gateway::store::Store::open(&db).await.unwrap();
    for id in [&id, &id2] {
        let row = store.response(id, "config:key-1", i64::MIN).await.unwrap();
        assert!(row.is_some(), "{id} landed");
    }
}
