//! Validation exactly as strict as the document: values the OpenAPI document does not allow
//! are refused before anything goes upstream, on every surface that takes them (cases found by
//! schemathesis' `negative_data_rejection` check).

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn values_outside_the_document_are_refused() {
    let env = Env::start().await;
    let ask = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (
            "/chat",
            json!({"model": "qwen3", "messages": ask, "think": -58800}),
            "think",
        ),
        (
            "/chat",
            json!({"model": "qwen3", "messages": ask, "keep_alive": {}}),
            "keep_alive",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "qwen3", "messages": ask, "think": -58800}),
            "think",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "qwen3", "messages": ask, "think": "extreme"}),
            "think",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "qwen3", "messages": ask, "keep_alive": []}),
            "keep_alive",
        ),
        (
            "/v1/completions",
            json!({"model": "llama3.2", "prompt": "hi", "keep_alive": {}}),
            "keep_alive",
        ),
        (
            "/v1/embeddings",
            json!({"model": "all-minilm", "input": "hi", "keep_alive": {}}),
            "keep_alive",
        ),
        (
            "/chat",
            json!({"model": "llama3.2", "messages": ask, "format": -58800}),
            "format",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": ask,
                "tools": [{"type": "function", "function": {"name": "f", "parameters": [null, null]}}]}),
            "tools[0].function.parameters",
        ),
        (
            "/chat",
            json!({"model": "llama3.2", "messages": ask, "tools": [[null, null]]}),
            "tools[0]",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": ask, "response_format":
                {"type": "json_schema", "json_schema": {"name": "x", "schema": [null, null]}}}),
            "response_format.json_schema.schema",
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": "hi", "reasoning": [null, null]}),
            "reasoning",
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": "hi", "text": [null]}),
            "text",
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5, "messages": ask, "metadata": [null, null]}),
            "metadata",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": ask,
                "response_format": {"type": "json_schema", "json_schema": [null, null]}}),
            "response_format",
        ),
        (
            "/chat",
            json!({"model": "llama3.2", "messages": [{"role": "assistant", "content": "",
                "tool_calls": [{"function": {"name": "f", "arguments": [null, null]}}]}]}),
            "arguments",
        ),
        // An answer's arguments may be JSON text; a request's may not (Ollama refuses it).
        (
            "/chat",
            json!({"model": "llama3.2", "messages": [{"role": "assistant", "content": "",
                "tool_calls": [{"function": {"name": "f", "arguments": "{\"city\":\"Paris\"}"}}]}]}),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5, "messages": ask, "top_k": 2.5}),
            "top_k",
        ),
        (
            "/v1/messages/count_tokens",
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": [{"type": "tool_result",
                "tool_use_id": "t", "content": [{"type": 0, "text": "x"}]}]}]}),
            "messages[0].content",
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5, "messages": [{"role": "user",
                "content": [{"type": 0, "text": "x"}]}]}),
            "string `type`",
        ),
        // A part's `type` given as a number (serde would read `0` as the first variant).
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": [{"type": 0, "text": "x"}]}]}),
            "messages[0].content",
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": [{"role": "user", "content": [{"type": 0, "text": "x"}]}]}),
            "input[0].content",
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": [{"type": {}, "role": "user", "content": "x"}]}),
            "input[0].type",
        ),
        // Arguments are the JSON text of an object: other JSON is not (Ollama refuses it).
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [{"role": "assistant", "content": null,
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "0"}}]}]}),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"}]}),
            "input[0].arguments",
        ),
        // The document's minimum holds when counting too.
        (
            "/v1/messages/count_tokens",
            json!({"model": "llama3.2", "messages": ask, "thinking": {"type": "enabled", "budget_tokens": 1023}}),
            "thinking.budget_tokens",
        ),
        // Base64 may have ASCII whitespace around it, as the document's pattern says; no other.
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "\u{a0}iVBORw0KGgo="}}]}]}),
            "messages[0].content[0].source.data",
        ),
    ];
    for (path, body, field) in cases {
        let (status, out) = env.post_json(path, &body).await;
        assert_eq!(status, 400, "{path} {body}: {out}");
        let text = out.to_string();
        assert!(text.contains(field), "{path}: {out}");
        if body
            .pointer("/response_format/json_schema")
            .is_some_and(|v| v.is_array())
        {
            assert!(text.contains("json_schema: expected an object"), "{out}");
        }
        if path.starts_with("/v1/") && !path.starts_with("/v1/messages") {
            assert_eq!(out["error"]["param"], field, "{path}: {out}");
        }
    }
    for path in ["/api/chat", "/api/generate", "/api/embed"] {
        assert_eq!(
            env.upstream_calls(path),
            0,
            "nothing went upstream to {path}"
        );
    }

    // What the document allows still goes through.
    for (path, body) in [
        (
            "/v1/chat/completions",
            json!({"model": "qwen3", "messages": ask, "think": "high", "keep_alive": "5m"}),
        ),
        (
            "/v1/embeddings",
            json!({"model": "all-minilm", "input": "hi", "keep_alive": -1}),
        ),
        // JSON Schema's integers include `7.0`, on every surface.
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5.0, "messages": ask, "top_k": 40.0}),
        ),
        (
            "/v1/messages",
            json!({"model": "qwen3", "max_tokens": 4096, "messages": ask,
                "thinking": {"type": "enabled", "budget_tokens": 2048.0}}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": ask, "max_tokens": 5.0, "seed": 7.0,
                "top_k": 40.0, "num_ctx": 2048.0, "n": 1.0}),
        ),
        (
            "/v1/completions",
            json!({"model": "llama3.2", "prompt": "hi", "max_tokens": 5.0, "logprobs": 2.0, "best_of": 1.0}),
        ),
        (
            "/v1/embeddings",
            json!({"model": "all-minilm", "input": "hi", "dimensions": 4.0}),
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": "hi", "max_output_tokens": 16.0}),
        ),
        // What the document says a role needs: an assistant turn may leave out its content.
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function",
                    "function": {"name": "f", "arguments": " "}}]},
                {"role": "tool", "tool_call_id": "c", "content": "18C"}]}),
        ),
        (
            "/chat",
            json!({"model": "llama3.2", "stream": false, "top_logprobs": 2.0, "messages": [
                {"role": "assistant", "content": "", "tool_calls": [{"function": {"index": 1.0, "name": "f", "arguments": {}}}]},
                {"role": "user", "content": "hi"}]}),
        ),
    ] {
        let (status, out) = env.post_json(path, &body).await;
        assert_eq!(status, 200, "{path}: {out}");
    }
    // The integers reached Ollama as integers (the last chat was /chat's).
    let sent = env.last_upstream_body("/api/chat");
    assert!(sent["top_logprobs"].is_u64(), "{sent}");
    let sent = env.last_upstream_body("/api/generate");
    assert!(sent["options"]["num_predict"].is_i64(), "{sent}");
    let sent = env.last_upstream_body("/api/embed");
    assert!(sent["dimensions"].is_u64(), "{sent}");
}

/// A native inference or show request whose body is missing or not a JSON object is refused
/// with a 400 in Ollama's shape, for a key that may use every model too, and never forwarded.
#[tokio::test]
async fn native_requests_without_a_json_object_body_are_refused() {
    let env = Env::start().await;
    let paths = ["/api/chat", "/api/generate", "/api/embed", "/api/show"];
    let bodies: [(&str, &str); 5] = [
        ("", "missing request body"),
        ("  \n", "missing request body"),
        ("[1, 2]", "must be a JSON object"),
        ("\"qwen3\"", "must be a JSON object"),
        ("{\"model\": ", "not valid JSON"),
    ];
    for path in paths {
        for (body, words) in bodies {
            let response = env
                .client
                .post(env.url(path))
                .bearer_auth(KEY)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("request");
            let (status, out) = read_json(response).await;
            assert_eq!(status, 400, "{path} {body:?}: {out}");
            let message = out["error"].as_str().unwrap_or_default();
            assert!(message.contains(words), "{path} {body:?}: {out}");
            assert_eq!(
                out.as_object().map(serde_json::Map::len),
                Some(1),
                "Ollama's shape: {out}"
            );
        }
        // No body at all, not even a content type.
        let response = env
            .client
            .post(env.url(path))
            .bearer_auth(KEY)
            .send()
            .await
            .expect("request");
        let (status, out) = read_json(response).await;
        assert_eq!(status, 400, "{path} without a body: {out}");
        assert_eq!(out["error"], "missing request body", "{path}: {out}");
        assert_eq!(
            env.upstream_calls(path),
            0,
            "nothing went upstream to {path}"
        );
    }
}

/// Path parameters are documented with the characters the gateway refuses in any path
/// (controls, `\\`, `?`, `#`), and a one-prompt completion and a non-empty embedding input
/// with the array sizes the gateway takes.
#[test]
fn the_document_states_the_limits_the_gateway_applies() {
    let document = serde_json::to_value(ollama_gateway::openapi()).unwrap();
    for (path, method) in [
        ("/v1/models/{model}", "get"),
        ("/v1/responses/{response_id}", "get"),
        ("/v1/responses/{response_id}", "delete"),
        ("/admin/api/keys/{id}", "get"),
        ("/admin/api/users/{name}", "patch"),
        ("/api/blobs/{digest}", "head"),
    ] {
        let pattern = document["paths"][path][method]["parameters"][0]["schema"]["pattern"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // Controls and space, and what cannot stand unescaped in a path once decoded.
        for refused in ["\\u0000-\\u0020", "\\u007F-\\u009F", "<>", "{|}"] {
            assert!(pattern.contains(refused), "{path} {method}: {pattern:?}");
        }
    }
    let schemas = &document["components"]["schemas"];
    let prompt = &schemas["CompletionRequest"]["properties"]["prompt"]["oneOf"][1];
    assert_eq!(
        (prompt["minItems"].as_u64(), prompt["maxItems"].as_u64()),
        (Some(1), Some(1))
    );
    let input = &schemas["EmbeddingRequest"]["properties"]["input"]["oneOf"][1];
    assert_eq!(
        (input["minItems"].as_u64(), input.get("maxItems")),
        (Some(1), None)
    );
    for request in ["ChatCompletionRequest", "CompletionRequest"] {
        let stop = &schemas[request]["properties"]["stop"]["oneOf"];
        assert_eq!(stop[1]["minLength"], 1, "{request}: {stop}");
        assert_eq!(stop[2]["items"]["minLength"], 1, "{request}: {stop}");
    }
    // Each role of a chat message says what it needs (the message used to be one object whose
    // `role` named another component, the admin API's user role).
    let roles = schemas["ChatMessage"]["oneOf"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let needs_content: Vec<&str> = roles
        .iter()
        .filter(|r| {
            r["required"]
                .as_array()
                .is_some_and(|req| req.contains(&json!("content")))
        })
        .filter_map(|r| r["properties"]["role"]["enum"][0].as_str())
        .collect();
    assert_eq!(needs_content, ["system", "developer", "user"], "{roles:?}");
    assert_eq!(roles.len(), 6);
    // Anthropic: a tool call only in an assistant turn, its result only in a user turn; images
    // as base64 sources; client tools only.
    let blocks = |name: &str| -> Vec<String> {
        schemas[name]["oneOf"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["allOf"][1]["properties"]["type"]["enum"][0].as_str())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        blocks("AnthropicUserBlock"),
        [
            "text",
            "image",
            "tool_result",
            "thinking",
            "redacted_thinking"
        ]
    );
    assert_eq!(
        blocks("AnthropicAssistantBlock"),
        ["text", "image", "tool_use", "thinking", "redacted_thinking"]
    );
    assert_eq!(
        schemas["AnthropicBase64ImageSource"]["properties"]["media_type"]["pattern"],
        "^image/"
    );
    assert_eq!(
        schemas["AnthropicThinkingConfig"]["oneOf"][0]["properties"]["budget_tokens"]["minimum"],
        1024
    );
    // Responses: at least one item, each of a kind the conversion takes; `background` only
    // false, `conversation` only null.
    assert_eq!(schemas["ResponsesInputItems"]["minItems"], 1);
    assert_eq!(
        schemas["ResponsesInputItem"]["oneOf"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
    let responses = &schemas["ResponsesRequest"]["properties"];
    assert_eq!(responses["background"]["enum"], json!([false, null]));
    assert_eq!(responses["conversation"]["type"], "null");
    assert_eq!(responses["metadata"]["maxProperties"], 16);
    // A model's name holds more than whitespace, on every surface.
    for request in [
        "ChatCompletionRequest",
        "CompletionRequest",
        "EmbeddingRequest",
        "ResponsesRequest",
        "AnthropicMessagesRequest",
        "ChatRequest",
        "ChatBody",
        "GenerateBody",
    ] {
        assert_eq!(
            schemas[request]["properties"]["model"]["pattern"], "\\S",
            "{request}"
        );
    }
    // Native embeddings without their input are Ollama's load requests, not errors.
    for (request, field) in [("EmbedBody", "input"), ("LegacyEmbeddingsBody", "prompt")] {
        let required = schemas[request]["required"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!required.contains(&json!(field)), "{request}: {required:?}");
    }
}

/// The refusals tests/schemathesis/hooks.py lets stand for schema-valid data, as it checks
/// them: rules between two fields are a 400 in the surface's own shape naming the field, and
/// nothing goes upstream; a capability the model lacks is Ollama's 400, passed on in the
/// surface's shape.
#[tokio::test]
async fn rules_between_fields_and_missing_capabilities_are_400s_in_each_surface_shape() {
    let env = Env::start().await;
    let ask = json!([{"role": "user", "content": "hi"}]);
    let function = json!([{"type": "function", "function": {"name": "get_weather"}}]);
    let flat = json!([{"type": "function", "name": "get_weather"}]);
    let anthropic = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
    let cross_field = [
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": ask, "tools": function,
                "tool_choice": {"type": "function", "function": {"name": "other"}}}),
            "tool_choice",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": ask, "tool_choice": "required"}),
            "tool_choice",
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": "hi", "tools": flat,
                "tool_choice": {"type": "function", "name": "other"}}),
            "tool_choice",
        ),
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5, "messages": ask, "tools": anthropic,
                "tool_choice": {"type": "tool", "name": "other"}}),
            "tool_choice.name",
        ),
        (
            "/v1/messages/count_tokens",
            json!({"model": "llama3.2", "messages": ask, "tool_choice": {"type": "any"}}),
            "tool_choice",
        ),
        (
            "/v1/messages",
            json!({"model": "qwen3", "max_tokens": 2048, "messages": ask,
                "thinking": {"type": "enabled", "budget_tokens": 2048}}),
            "thinking.budget_tokens",
        ),
    ];
    for (path, body, field) in cross_field {
        let (status, out) = env.post_json(path, &body).await;
        assert_eq!(status, 400, "{path} {body}: {out}");
        if path.starts_with("/v1/messages") {
            assert_eq!(out["type"], "error", "{out}");
            assert_eq!(out["error"]["type"], "invalid_request_error", "{out}");
            let message = out["error"]["message"].as_str().unwrap_or_default();
            assert!(message.starts_with(&format!("{field}: ")), "{out}");
        } else {
            assert_eq!(out["error"]["type"], "invalid_request_error", "{out}");
            assert_eq!(out["error"]["param"], field, "{out}");
        }
    }
    assert_eq!(env.upstream_calls("/api/chat"), 0, "nothing went upstream");

    let capability = [
        (
            "/v1/messages",
            json!({"model": "llama3.2", "max_tokens": 5, "messages": ask, "thinking": {"type": "adaptive"}}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": ask, "reasoning_effort": "high"}),
        ),
        (
            "/chat",
            json!({"model": "llama3.2", "messages": ask, "think": "low"}),
        ),
        (
            "/v1/completions",
            json!({"model": "all-minilm", "prompt": "hi"}),
        ),
    ];
    for (path, body) in capability {
        let (status, out) = env.post_json(path, &body).await;
        assert_eq!(status, 400, "{path} {body}: {out}");
        let message = match path {
            "/chat" => out["error"].as_str(),
            _ => out["error"]["message"].as_str(),
        }
        .unwrap_or_default();
        assert!(message.contains("does not support"), "{path}: {out}");
    }
}
