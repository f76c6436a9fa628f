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
