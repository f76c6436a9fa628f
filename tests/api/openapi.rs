//! The committed OpenAPI document matches the code, and the served one matches both.

use serde_json::Value;

use crate::common::*;

const COMMITTED: &str = "openapi/openapi.json";
const REGENERATE: &str = "UPDATE_OPENAPI=1 cargo test --test api openapi";

fn generated() -> String {
    let mut text = ollama_gateway::openapi()
        .to_pretty_json()
        .expect("document serialises");
    text.push('\n');
    text
}

#[test]
fn committed_document_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    let fresh = generated();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{COMMITTED} differs from the document the code generates; regenerate it with:\n\n    {REGENERATE}\n"
    );
}

#[tokio::test]
async fn served_document_is_the_generated_one_and_covers_every_surface() {
    let env = Env::start().await;
    let response = env
        .client
        .get(env.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    let (status, served) = read_json(response).await;
    assert_eq!(status, 200);
    let generated: Value = serde_json::from_str(&generated()).unwrap();
    assert_eq!(served, generated);
    let paths = served["paths"].as_object().unwrap();
    for path in [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/models",
        "/v1/models/{model}",
        "/models",
        "/chat",
        "/api/chat",
        "/api/generate",
        "/api/embed",
        "/api/tags",
        "/api/show",
        "/api/ps",
        "/api/version",
        "/api/pull",
        "/api/delete",
        "/api/blobs/{digest}",
        "/health",
        "/ready",
        "/admin/api/keys",
        "/admin/api/keys/{id}",
        "/admin/api/users",
        "/admin/api/users/{name}",
        "/admin/api/usage",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    for (path, method) in [
        ("/admin/api/keys", "post"),
        ("/admin/api/keys/{id}", "patch"),
        ("/admin/api/usage", "get"),
    ] {
        assert_eq!(
            paths[path][method]["tags"][0], "Admin",
            "{path} under its own tag"
        );
        assert!(paths[path][method]["security"].is_array());
    }
    assert_eq!(
        served["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(
        paths["/health"]["get"].get("security").is_none(),
        "open routes need no key"
    );
    assert!(paths["/v1/models"]["get"]["security"].is_array());
    let temperature =
        &served["components"]["schemas"]["ChatCompletionRequest"]["properties"]["temperature"];
    assert_eq!(
        (
            temperature["minimum"].as_f64(),
            temperature["maximum"].as_f64()
        ),
        (Some(0.0), Some(2.0))
    );
}

#[tokio::test]
async fn swagger_ui_is_served_without_a_key() {
    let env = Env::start().await;
    let response = env.client.get(env.url("/docs/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger"), "Swagger UI page");
}

/// An operation's path, the schema of its error body, and its request body for a model.
type Operation = (&'static str, &'static str, fn(&str) -> Value);

/// The statuses an inference operation answers when Ollama fails, when the body is too large
/// and when Ollama is too slow are each in the document, with the surface's own error body.
#[tokio::test]
async fn every_status_an_inference_operation_answers_is_documented() {
    let document: Value = serde_json::from_str(&generated()).unwrap();
    let env = Env::with(|config| {
        config.upstream_timeout = std::time::Duration::from_millis(500);
        config.max_body = 4096;
    })
    .await;
    let operations: [Operation; 10] = [
        (
            "/v1/chat/completions",
            "OpenAiErrorBody",
            |m| serde_json::json!({"model": m, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/completions",
            "OpenAiErrorBody",
            |m| serde_json::json!({"model": m, "prompt": "hi"}),
        ),
        (
            "/v1/embeddings",
            "OpenAiErrorBody",
            |m| serde_json::json!({"model": m, "input": "hi"}),
        ),
        (
            "/v1/responses",
            "OpenAiErrorBody",
            |m| serde_json::json!({"model": m, "input": "hi"}),
        ),
        (
            "/v1/messages",
            "AnthropicErrorBody",
            |m| serde_json::json!({"model": m, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/messages/count_tokens",
            "AnthropicErrorBody",
            |m| serde_json::json!({"model": m, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/chat",
            "OllamaErrorBody",
            |m| serde_json::json!({"model": m, "stream": false, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/api/chat",
            "OllamaErrorBody",
            |m| serde_json::json!({"model": m, "stream": false, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/api/generate",
            "OllamaErrorBody",
            |m| serde_json::json!({"model": m, "stream": false, "prompt": "hi"}),
        ),
        (
            "/api/embed",
            "OllamaErrorBody",
            |m| serde_json::json!({"model": m, "input": "hi"}),
        ),
    ];
    for (path, schema, body) in operations {
        let documented = &document["paths"][path]["post"]["responses"];
        let large = {
            let mut large = body("llama3.2");
            large["padding"] = Value::String("x".repeat(8192));
            large
        };
        for (what, request, status) in [
            ("Ollama's 500", body("fail-500"), 500),
            ("Ollama's 503", body("fail-busy"), 503),
            ("a slow Ollama", body("fail-slow"), 504),
            ("a body over the limit", large, 413),
        ] {
            let (answered, out) = env.post_json(path, &request).await;
            assert_eq!(answered, status, "{path}, {what}: {out}");
            let reference =
                &documented[status.to_string()]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(
                reference.as_str(),
                Some(format!("#/components/schemas/{schema}").as_str()),
                "{path} documents {status} ({what}) with {schema}: {documented}"
            );
            let shaped = match schema {
                "AnthropicErrorBody" => out["type"] == "error" && out["error"]["type"].is_string(),
                "OpenAiErrorBody" => out["error"]["message"].is_string(),
                _ => out["error"].is_string(),
            };
            assert!(
                shaped,
                "{path}, {what}: answered in {schema}'s shape: {out}"
            );
        }
    }
    for (path, method) in [("/api/show", "post"), ("/api/embeddings", "post")] {
        let documented = &document["paths"][path][method]["responses"];
        for status in [
            "400", "401", "403", "404", "408", "413", "429", "500", "502", "503", "504",
        ] {
            assert_eq!(
                documented[status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/OllamaErrorBody",
                "{path} documents {status}"
            );
        }
    }
}
