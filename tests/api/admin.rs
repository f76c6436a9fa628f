//! Managed keys through the admin API and the CLI, on a real gateway over HTTP.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::common::{Env, KEY, chat, read_json};

/// An admin key stored in this gateway's database (made the way the first start makes one).
pub async fn admin_key(env: &Env) -> String {
    let body = ollama_gateway::admin::CreateKey {
        name: "root".into(),
        admin: Some(true),
        ..Default::default()
    };
    let (_, key) =
        ollama_gateway::admin::create_key(&env.state.store, &[], body, chrono::Utc::now())
            .await
            .unwrap();
    ollama_gateway::gate::reload::reload(&env.state)
        .await
        .unwrap();
    key
}

/// Call the admin API with `key`: (status, JSON body).
pub async fn admin(
    env: &Env,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = env.client.request(method, env.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    if response.status() == 204 {
        return (204, Value::Null);
    }
    read_json(response).await
}

/// A chat request without a key yet (`Env::post` already carries the test key).
pub fn post_as(env: &Env, body: &Value) -> reqwest::RequestBuilder {
    env.client.post(env.url("/v1/chat/completions")).json(body)
}

/// The status of one chat request with `key`.
pub async fn chat_status(env: &Env, key: &str) -> u16 {
    let response = env
        .client
        .post(env.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat("llama3.2"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    response.bytes().await.unwrap();
    status
}

#[tokio::test]
async fn a_key_is_created_used_disabled_enabled_and_revoked_through_the_api() {
    let env = Env::start().await;
    let root = admin_key(&env).await;
    let (status, created) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "alice-laptop", "user": "alice", "models": ["llama3.2"], "daily_token_quota": 100000})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("og_") && key.len() == 52, "{key}");
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(created["source"], "db");
    assert_eq!(created["user"], "alice");
    assert_eq!(created["settings"]["daily_token_quota"], 100000);

    assert_eq!(
        chat_status(&env, &key).await,
        200,
        "a new key works at once"
    );
    let response = post_as(&env, &chat("qwen3"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "the key's own model list applies");

    let (status, body) = admin(
        &env,
        &root,
        "PATCH",
        &format!("/admin/api/keys/{id}"),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!((status, body["enabled"].clone()), (200, json!(false)));
    assert_eq!(chat_status(&env, &key).await, 401, "disabled");
    let (_, body) = admin(
        &env,
        &root,
        "PATCH",
        &format!("/admin/api/keys/{id}"),
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(body["enabled"], true);
    assert_eq!(chat_status(&env, &key).await, 200, "enabled again");

    let (status, body) = admin(
        &env,
        &root,
        "DELETE",
        &format!("/admin/api/keys/{id}"),
        None,
    )
    .await;
    assert_eq!((status, body["revoked"].clone()), (200, json!(true)));
    let response = post_as(&env, &chat("llama3.2"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (_, error) = read_json(response).await;
    assert_eq!(error["error"]["message"], "API key has been revoked");

    let (status, list) = admin(&env, &root, "GET", "/admin/api/keys", None).await;
    assert_eq!(status, 200);
    let listed: Vec<&Value> = list["data"].as_array().unwrap().iter().collect();
    let alice = listed.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!(alice["revoked"], true, "a revoked key stays listed");
    assert!(alice["last_used"].is_string() || alice["last_used"].is_null());
    assert!(
        listed.iter().all(|k| k.get("key").is_none()),
        "no listing holds a key"
    );
    let config_key = listed.iter().find(|k| k["source"] == "config").unwrap();
    assert_eq!(config_key["name"], "key-1");
    assert_eq!(config_key["id"], "config:key-1");
    assert!(
        list.to_string().find(KEY).is_none(),
        "configured keys are never shown"
    );

    // A revoked key's name may be used again.
    let (status, _) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "alice-laptop"})),
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn the_admin_api_refuses_non_admins_and_bad_input_in_the_openai_shape() {
    let env = Env::start().await;
    let root = admin_key(&env).await;
    let response = env
        .client
        .get(env.url("/admin/api/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (_, body) = read_json(response).await;
    assert_eq!(body["error"]["type"], "authentication_error");
    let (status, body) = admin(&env, KEY, "GET", "/admin/api/keys", None).await;
    assert_eq!(status, 403, "a key that is not an admin key");
    assert_eq!(body["error"]["type"], "permission_error");
    let (status, _) = admin(
        &env,
        KEY,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "sneaky"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = admin(
        &env,
        KEY,
        "POST",
        "/admin/api/keys",
        Some(json!({"colour": 1})),
    )
    .await;
    assert_eq!(
        status, 403,
        "a non-admin learns nothing about the body's validation"
    );
    let (status, _) = admin(&env, KEY, "GET", "/admin/api/nothing-here", None).await;
    assert_eq!(status, 403, "the whole /admin/ prefix");

    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": "has space"}), "name"),
        (json!({"name": "ok", "rate_limit": -1}), "rate_limit"),
        (json!({"name": "ok", "models": [""]}), "models[0]"),
        (json!({"name": "ok", "colour": "red"}), "colour"),
        (json!({"name": "ok", "expires": "tomorrow"}), "expires"),
    ] {
        let (status, answer) =
            admin(&env, &root, "POST", "/admin/api/keys", Some(body.clone())).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        let param = answer["error"]["param"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let message = answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            param == field || message.contains(field),
            "{body}: {answer}"
        );
    }
    let (status, body) = admin(&env, &root, "GET", "/admin/api/keys/nope", None).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("not_found"))
    );
    let (status, _) = admin(
        &env,
        &root,
        "PATCH",
        "/admin/api/keys/nope",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = admin(&env, &root, "DELETE", "/admin/api/keys/nope", None).await;
    assert_eq!(status, 404);

    let (status, _) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "bob"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "bob"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("conflict"))
    );
    let (status, _) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "key-1"})),
    )
    .await;
    assert_eq!(status, 409, "a configured key's name");
    let (status, _) = admin(&env, &root, "DELETE", "/admin/api/keys/config:key-1", None).await;
    assert_eq!(status, 409, "configured keys are read-only");
    let (status, body) = admin(&env, &root, "GET", "/admin/api/keys/config:key-1", None).await;
    assert_eq!((status, body["source"].clone()), (200, json!("config")));

    let (status, _) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/users",
        Some(json!({"name": "carol", "role": "boss"})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/users",
        Some(json!({"name": "carol"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/users",
        Some(json!({"name": "carol"})),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = admin(
        &env,
        &root,
        "PATCH",
        "/admin/api/users/nobody",
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = admin(&env, &root, "GET", "/admin/api/usage?group_by=colour", None).await;
    assert_eq!(status, 400);
    let (status, _) = admin(&env, &root, "GET", "/admin/api/usage?from=yesterday", None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn users_own_keys_an_admin_user_makes_admin_keys_and_deleting_a_user_revokes_its_keys() {
    let env = Env::start().await;
    let root = admin_key(&env).await;
    let (_, created) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "dave-phone", "user": "dave"})),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_owned();
    let (status, _) = admin(&env, &key, "GET", "/admin/api/users", None).await;
    assert_eq!(status, 403);
    let (status, user) = admin(
        &env,
        &root,
        "PATCH",
        "/admin/api/users/dave",
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(
        (status, user["role"].clone(), user["keys"].clone()),
        (200, json!("admin"), json!(1))
    );
    let (status, users) = admin(&env, &key, "GET", "/admin/api/users", None).await;
    assert_eq!(status, 200, "an admin user's key is an admin key");
    assert!(
        users["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "dave")
    );
    let (status, _) = admin(&env, &root, "DELETE", "/admin/api/users/dave", None).await;
    assert_eq!(status, 204);
    assert_eq!(
        chat_status(&env, &key).await,
        401,
        "the user's keys are revoked"
    );
}

#[tokio::test]
async fn expiry_is_enforced_and_a_damaged_key_is_refused() {
    let env = Env::start().await;
    let root = admin_key(&env).await;
    let (_, created) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "temp", "expires": "2099-01-01T00:00:00Z"})),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(chat_status(&env, &key).await, 200);
    let (status, body) = admin(
        &env,
        &root,
        "PATCH",
        &format!("/admin/api/keys/{id}"),
        Some(json!({"expires": "2001-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(
        (status, body["expires"].clone()),
        (200, json!("2001-01-01T00:00:00Z"))
    );
    let response = post_as(&env, &chat("llama3.2"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let (status, body) = read_json(response).await;
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (401, json!("API key has expired"))
    );
    let (_, body) = admin(
        &env,
        &root,
        "PATCH",
        &format!("/admin/api/keys/{id}"),
        Some(json!({"expires": null})),
    )
    .await;
    assert!(body["expires"].is_null());
    assert_eq!(chat_status(&env, &key).await, 200, "null clears the expiry");

    let mut damaged = key.clone().into_bytes();
    damaged[20] = if damaged[20] == b'x' { b'y' } else { b'x' };
    let response = post_as(&env, &chat("llama3.2"))
        .bearer_auth(String::from_utf8(damaged).unwrap())
        .send()
        .await
        .unwrap();
    let (status, body) = read_json(response).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed"),
        "{body}"
    );
}

/// Run the CLI on `db`: (exit ok, stdout, stderr).
pub fn cli(db: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ollama-gateway"))
        .env_clear()
        .env("GATEWAY_DB", db)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Poll until a chat with `key` answers `status`; how long that took.
async fn until_status(env: &Env, key: &str, status: u16) -> Duration {
    let started = Instant::now();
    while chat_status(env, key).await != status {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "never answered {status}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn the_cli_manages_keys_of_a_running_gateway_which_sees_changes_within_a_second() {
    let env = Env::start().await;
    let db = env.state.config.db.clone();
    let (ok, out, err) = cli(
        &db,
        &[
            "keys",
            "create",
            "--name",
            "erin",
            "--user",
            "erin",
            "--quota-daily",
            "5000",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let took = until_status(&env, &key, 200).await;
    assert!(
        took < Duration::from_secs(1),
        "a CLI key works within 1 s (took {took:?})"
    );

    let (ok, _, err) = cli(&db, &["keys", "disable", &id]);
    assert!(ok, "{err}");
    assert!(
        err.contains("admin change") && err.contains("key.update") && err.contains(&id),
        "the CLI's changes are audited: {err}"
    );
    assert!(until_status(&env, &key, 401).await < Duration::from_secs(1));
    let (ok, _, _) = cli(&db, &["keys", "enable", &id]);
    assert!(ok);
    assert!(until_status(&env, &key, 200).await < Duration::from_secs(1));
    let (ok, _, _) = cli(&db, &["keys", "revoke", &id]);
    assert!(ok);
    assert!(until_status(&env, &key, 401).await < Duration::from_secs(1));

    let (ok, out, _) = cli(&db, &["keys", "list"]);
    assert!(ok);
    let line = out.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(line.contains("revoked") && line.contains("erin"), "{out}");
    assert!(!out.contains(&key));
    let (ok, out, _) = cli(&db, &["users", "list", "--json"]);
    assert!(ok);
    assert!(out.contains("\"erin\""));
    let (ok, _, err) = cli(&db, &["keys", "disable", "no-such-id"]);
    assert!(!ok && err.contains("no key with id"), "{err}");
    let (ok, _, err) = cli(&db, &["keys", "create", "--name", "bad name"]);
    assert!(!ok && err.contains("name"), "{err}");
}

#[tokio::test]
async fn the_first_start_without_keys_makes_one_admin_key_and_later_starts_do_not() {
    let db = super::common::temp_db();
    let fake = fake_ollama::FakeOllama::start(Default::default())
        .await
        .unwrap();
    let mut config = super::common::test_config(&fake);
    config.api_keys = Vec::new();
    config.db = db.clone();
    let first = ollama_gateway::build(config.clone()).await.unwrap();
    let key = first.generated_key.clone().unwrap();
    assert!(ollama_gateway::gate::key_format::well_formed(&key));
    let caller = first.state.gate.keys.load().lookup(Some(&key)).unwrap();
    assert!(caller.admin, "the generated key is an admin key");
    let again = ollama_gateway::build(config).await.unwrap();
    assert!(
        again.generated_key.is_none(),
        "printed on the first start only"
    );
    assert!(
        again.state.gate.keys.load().lookup(Some(&key)).is_ok(),
        "and stored"
    );
}
