//! Basic auth: users from an htpasswd file of bcrypt hashes (`GATEWAY_BASIC_USERS`), a key
//! carried as the Basic password, the cache of successful checks, refusals in each surface's
//! shape, the failed-authentication limiter, reloading the file, and bad files at start-up.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use ollama_gateway::config::Config;
use serde_json::{Value, json};

use crate::common::*;

/// What `htpasswd -nbB -C 4 ann secret` printed, for a machine without `htpasswd` (the test
/// suite's setup installs it, and then a fresh line is made).
const ANN_LINE: &str = "ann:$2y$04$2v9b.aOrD5rqmV1ihL72I.iO8/miYIO/lF2TfjYtV4Qh6Q1AH5ZIe";
/// An admin key for reading the usage records.
const ROOT_KEY: &str = "basic-test-root-key";

/// `user:hash` for `password` from Apache's `htpasswd -B` when it is installed.
fn htpasswd_line(user: &str, password: &str) -> Option<String> {
    let out = std::process::Command::new("htpasswd")
        .args(["-nbB", "-C", "4", user, password])
        .output()
        .ok()?;
    assert!(out.status.success(), "htpasswd failed: {out:?}");
    let line = String::from_utf8(out.stdout).unwrap();
    Some(line.trim().to_owned())
}

/// A users file: ann (`$2y$` from htpasswd), bob (`$2b$` from the bcrypt crate), cy (`$2a$`).
fn users_file(dir: &Path) -> PathBuf {
    let ann = htpasswd_line("ann", "secret").unwrap_or_else(|| {
        eprintln!("htpasswd not installed: using a line it printed earlier");
        ANN_LINE.to_owned()
    });
    assert!(ann.starts_with("ann:$2y$04$"), "{ann}");
    let bob = bcrypt::hash("hunter2", 4).unwrap();
    assert!(bob.starts_with("$2b$"), "{bob}");
    let cy = bcrypt::hash_with_result("pa:ss word", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA);
    let path = dir.join("users.htpasswd");
    std::fs::write(
        &path,
        format!("# made by the test\n{ann}\n\nbob:{bob}\ncy:{cy}\n"),
    )
    .unwrap();
    path
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

async fn with_users(dir: &Path, configure: impl FnOnce(&mut Config)) -> Env {
    with_users_and(dir, "", configure).await
}

/// [`with_users`], with `toml` added to the key file (for `[[basic_users]]`).
async fn with_users_and(dir: &Path, toml: &str, configure: impl FnOnce(&mut Config)) -> Env {
    let file = users_file(dir);
    let keys = dir.join("keys.toml");
    std::fs::write(
        &keys,
        format!("[[keys]]\nname = \"root\"\nkey = \"{ROOT_KEY}\"\nadmin = true\n\n{toml}"),
    )
    .unwrap();
    Env::with(|c| {
        c.basic_users = Some(file);
        c.config_file = Some(keys);
        configure(c);
    })
    .await
}

fn verifications(env: &Env) -> u64 {
    env.state.gate.basic.as_ref().unwrap().verifications()
}

/// GET `path` with `authorization`: (status, body, WWW-Authenticate values).
async fn get_as(env: &Env, path: &str, authorization: &str) -> (u16, Value, Vec<String>) {
    let response = env
        .client
        .get(env.url(path))
        .header("authorization", authorization)
        .send()
        .await
        .unwrap();
    let challenges = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let (status, body) = read_json(response).await;
    (status, body, challenges)
}

#[tokio::test]
async fn users_of_an_htpasswd_file_are_accepted_on_every_surface() {
    let dir = TempDir::new("basic-users");
    let env = with_users(dir.path(), |_| {}).await;
    for (user, password) in [("ann", "secret"), ("bob", "hunter2"), ("cy", "pa:ss word")] {
        let auth = basic(user, password);
        for path in ["/v1/models", "/models", "/api/tags"] {
            let (status, body, _) = get_as(&env, path, &auth).await;
            assert_eq!(status, 200, "{user} {path}: {body}");
        }
        let chat = env
            .client
            .post(env.url("/v1/chat/completions"))
            .header("authorization", &auth)
            .json(&chat("llama3.2"))
            .send()
            .await
            .unwrap();
        let (status, body) = read_json(chat).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body["choices"][0]["message"]["content"].is_string(),
            "{body}"
        );
        let message = env
            .client
            .post(env.url("/v1/messages"))
            .header("authorization", &auth)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": "llama3.2", "max_tokens": 64,
                "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap();
        let (status, body) = read_json(message).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["type"], "message", "{body}");
    }
    // The Anthropic surface still takes x-api-key while Basic users are configured.
    let by_header = env
        .client
        .post(env.url("/v1/messages"))
        .header("x-api-key", KEY)
        .json(&json!({"model": "llama3.2", "max_tokens": 64,
            "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 200);

    // Each user is a caller of its own: its usage is recorded under its name.
    let started = Instant::now();
    loop {
        let usage = env
            .client
            .get(env.url("/admin/api/usage?group_by=user"))
            .bearer_auth(ROOT_KEY)
            .send()
            .await
            .unwrap();
        let (status, body) = read_json(usage).await;
        assert_eq!(status, 200, "{body}");
        let users: Vec<&str> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|row| row["user"].as_str())
            .collect();
        if ["ann", "bob", "cy"].iter().all(|u| users.contains(u)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "usage by user never showed ann, bob and cy: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_successful_check_is_cached_and_a_failed_one_is_not() {
    let dir = TempDir::new("basic-cache");
    let env = with_users(dir.path(), |_| {}).await;
    let right = basic("ann", "secret");
    assert_eq!(verifications(&env), 0);
    assert_eq!(get_as(&env, "/v1/models", &right).await.0, 200);
    assert_eq!(verifications(&env), 1, "the first check runs bcrypt");
    for _ in 0..5 {
        assert_eq!(get_as(&env, "/api/tags", &right).await.0, 200);
    }
    assert_eq!(
        verifications(&env),
        1,
        "later ones are answered from the cache"
    );
    // A wrong password for the same user is never answered from ann's cached success.
    for _ in 0..2 {
        assert_eq!(
            get_as(&env, "/v1/models", &basic("ann", "Secret")).await.0,
            401
        );
    }
    assert_eq!(verifications(&env), 3, "each failed check runs bcrypt");
    // An unknown user costs a bcrypt run too (timing does not tell which names exist).
    assert_eq!(
        get_as(&env, "/v1/models", &basic("zed", "secret")).await.0,
        401
    );
    assert_eq!(verifications(&env), 4);
}

#[tokio::test]
async fn wrong_passwords_unknown_users_and_malformed_headers_are_401_in_each_surface_shape() {
    let dir = TempDir::new("basic-refused");
    let env = with_users(dir.path(), |_| {}).await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let cases = [
        (basic("ann", "wrong"), "invalid user name or password"),
        (basic("nobody", "secret"), "invalid user name or password"),
        (basic("ann", ""), "invalid user name or password"),
        (
            "Basic %%%not-base64%%%".to_owned(),
            "malformed Basic credentials",
        ),
        (
            format!("Basic {}", b64("no-colon")),
            "malformed Basic credentials",
        ),
        (
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b':', b'x'])
            ),
            "malformed Basic credentials",
        ),
    ];
    for (auth, message) in &cases {
        let (status, body, challenges) = get_as(&env, "/v1/models", auth).await;
        assert_eq!(status, 401, "{auth}: {body}");
        assert_eq!(body["error"]["type"], "authentication_error", "{body}");
        assert_eq!(body["error"]["code"], "invalid_api_key", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(message),
            "{body}"
        );
        assert_eq!(
            challenges,
            ["Bearer", ollama_gateway::gate::BASIC_CHALLENGE],
            "a browser is asked for a user name and password"
        );
        let (status, body, _) = get_as(&env, "/api/tags", auth).await;
        assert_eq!(status, 401);
        assert!(body["error"].as_str().unwrap().contains(message), "{body}");
        let message_answer = env
            .client
            .post(env.url("/v1/messages"))
            .header("authorization", auth)
            .json(&json!({"model": "llama3.2", "max_tokens": 8,
                "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap();
        let (status, body) = read_json(message_answer).await;
        assert_eq!(status, 401);
        assert_eq!(body["type"], "error", "{body}");
        assert_eq!(body["error"]["type"], "authentication_error", "{body}");
        assert!(
            !body.to_string().contains("secret"),
            "passwords are never echoed"
        );
    }
    assert_eq!(env.fake.request_count(), 0);
}

#[tokio::test]
async fn a_key_sent_as_the_basic_password_is_that_key() {
    // Without any Basic users, and with them.
    let plain = Env::start().await;
    let dir = TempDir::new("basic-key");
    let with = with_users(dir.path(), |_| {}).await;
    for env in [&plain, &with] {
        for user in ["", "anything", "ann"] {
            let (status, body, _) = get_as(env, "/v1/models", &basic(user, KEY)).await;
            assert_eq!(status, 200, "user {user:?}: {body}");
        }
        let (status, body, challenges) = get_as(env, "/v1/models", &basic("x", "not-a-key")).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(challenges[0], "Bearer");
    }
    // No Basic users configured: no Basic challenge, and the refusal is the key's.
    let (_, body, challenges) = get_as(&plain, "/api/tags", &basic("x", "not-a-key")).await;
    assert_eq!(challenges, ["Bearer"]);
    assert_eq!(body["error"], "invalid API key");
    assert_eq!(
        verifications(&with),
        1,
        "a key in the password needs no bcrypt"
    );
}

fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
    list.iter()
        .map(|n| ollama_gateway::config::parse_net(n).unwrap())
        .collect()
}

#[tokio::test]
async fn failed_basic_checks_count_in_the_failed_authentication_limiter() {
    let dir = TempDir::new("basic-limit");
    let env = with_users(dir.path(), |c| {
        c.trusted_proxies = nets(&["127.0.0.1"]);
        c.auth_failures = 3;
    })
    .await;
    let attempt = |auth: String| {
        env.client
            .get(env.url("/v1/models"))
            .header("authorization", auth)
            .header("x-forwarded-for", "192.0.2.77")
            .send()
    };
    for password in ["a", "b", "c"] {
        assert_eq!(attempt(basic("ann", password)).await.unwrap().status(), 401);
    }
    let blocked = attempt(basic("ann", "secret")).await.unwrap();
    assert_eq!(
        blocked.status(),
        429,
        "blocked now, even with the right password"
    );
    assert!(blocked.headers().contains_key("retry-after"));
    assert_eq!(verifications(&env), 3, "a blocked address runs no bcrypt");
}

#[tokio::test]
async fn the_users_file_is_read_again_when_it_changes() {
    let dir = TempDir::new("basic-reload");
    let env = with_users(dir.path(), |_| {}).await;
    let file = env.state.config.basic_users.clone().unwrap();
    assert_eq!(
        get_as(&env, "/v1/models", &basic("ann", "secret")).await.0,
        200
    );
    let dan = bcrypt::hash("new-one", 4).unwrap();
    std::fs::write(&file, format!("dan:{dan}\n")).unwrap();
    let started = Instant::now();
    while get_as(&env, "/v1/models", &basic("dan", "new-one")).await.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "dan never accepted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ann is gone, and her cached check with her.
    assert_eq!(
        get_as(&env, "/v1/models", &basic("ann", "secret")).await.0,
        401
    );
    // A broken file keeps the users in memory.
    std::fs::write(&file, "dan:not-a-hash\n").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        get_as(&env, "/v1/models", &basic("dan", "new-one")).await.0,
        200
    );
}

/// The model ids of a listing: `data[].id` on `/v1/models`, `models[].name` on `/api/tags`.
fn listed(body: &Value) -> Vec<&str> {
    let (list, field) = match body.get("data") {
        Some(data) => (data, "id"),
        None => (&body["models"], "name"),
    };
    list.as_array()
        .unwrap_or_else(|| panic!("not a listing: {body}"))
        .iter()
        .filter_map(|m| m[field].as_str())
        .collect()
}

#[tokio::test]
async fn basic_users_have_their_own_models_limits_and_admin_right_from_the_key_file() {
    let dir = TempDir::new("basic-settings");
    // `dee` is not in the users file: a warning at start, not an error.
    let settings = "[[basic_users]]\nname = \"ann\"\nmodels = [\"qwen3\"]\n\n\
        [[basic_users]]\nname = \"cy\"\nrate_limit = 60\nburst = 2\n\n\
        [[basic_users]]\nname = \"bob\"\nadmin = true\n\n\
        [[basic_users]]\nname = \"dee\"\nadmin = true\n";
    let env = with_users_and(dir.path(), settings, |c| c.allow_admin = true).await;
    let ann = basic("ann", "secret");
    let bob = basic("bob", "hunter2");
    let cy = basic("cy", "pa:ss word");

    // ann: only qwen3, in the listings and for requests; refusals never reach the upstream.
    let (status, all, _) = get_as(&env, "/v1/models", &bob).await;
    assert_eq!(status, 200, "{all}");
    assert!(listed(&all).len() > 1, "bob sees every model: {all}");
    for path in ["/v1/models", "/api/tags"] {
        let (status, body, _) = get_as(&env, path, &ann).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(listed(&body), ["qwen3:latest"], "{path}: {body}");
    }
    let (status, body, _) = get_as(&env, "/v1/models/llama3.2", &ann).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "model_not_allowed", "{body}");
    let chat_as = |auth: &str, model: &str| {
        env.client
            .post(env.url("/v1/chat/completions"))
            .header("authorization", auth)
            .json(&chat(model))
            .send()
    };
    let (status, body) = read_json(chat_as(&ann, "llama3.2").await.unwrap()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "model_not_allowed", "{body}");
    let native = env
        .client
        .post(env.url("/api/chat"))
        .header("authorization", &ann)
        .json(&json!({"model": "llama3.2", "stream": false,
            "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    let (status, body) = read_json(native).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not allowed"),
        "{body}"
    );
    assert_eq!(env.upstream_calls("/api/chat"), 0);
    let (status, body) = read_json(chat_as(&ann, "qwen3").await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = read_json(chat_as(&bob, "llama3.2").await.unwrap()).await;
    assert_eq!(status, 200, "bob has no list of his own: {body}");

    // cy: 60 a minute with a burst of 2, whoever else is calling; bob keeps the defaults.
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..4 {
        let response = env
            .client
            .get(env.url("/v1/models"))
            .header("authorization", &cy)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            limited = Some(response);
        }
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
    let limited = limited.unwrap();
    assert_eq!(limited.headers()["x-ratelimit-limit-requests"], "60");
    assert!(limited.headers().contains_key("retry-after"));
    for _ in 0..4 {
        let response = env
            .client
            .get(env.url("/v1/models"))
            .header("authorization", &bob)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-ratelimit-limit-requests"], "600");
    }

    // bob: the admin API and Ollama's administrative endpoints; ann and cy: neither.
    let pull_as = |auth: &str| {
        env.client
            .post(env.url("/api/pull"))
            .header("authorization", auth)
            .json(&json!({"model": "llama3.2", "stream": false}))
            .send()
    };
    let (status, body, _) = get_as(&env, "/admin/api/keys", &bob).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = read_json(pull_as(&bob).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = get_as(&env, "/admin/api/keys", &ann).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = read_json(pull_as(&ann).await.unwrap()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        env.upstream_calls("/api/pull"),
        1,
        "only bob's pull went up"
    );
}

#[tokio::test]
async fn bad_basic_user_settings_stop_the_start_naming_the_setting() {
    let dir = TempDir::new("basic-settings-bad");
    let users = users_file(dir.path());
    for (text, wanted) in [
        (
            "[[basic_users]]\nname = \"ann\"\nrate = 5\n",
            "unknown field `rate`",
        ),
        (
            "[[basic_users]]\nname = \"ann\"\n\n[[basic_users]]\nname = \"ann\"\n",
            "user 'ann' has settings already",
        ),
    ] {
        let path = dir.path().join("keys.toml");
        std::fs::write(&path, text).unwrap();
        let mut config = Config::defaults();
        config.basic_users = Some(users.clone());
        config.config_file = Some(path);
        config.db = temp_db();
        let err = ollama_gateway::build(config).await.err().unwrap();
        assert!(err.starts_with("GATEWAY_CONFIG"), "{err}");
        assert!(err.contains(wanted), "{text:?}: {err}");
    }
}

#[tokio::test]
async fn a_bad_users_file_stops_the_start_naming_the_setting_and_the_line() {
    let dir = TempDir::new("basic-bad");
    let good = bcrypt::hash("x", 4).unwrap();
    for (text, wanted) in [
        (format!("ok:{good}\nbroken line\n"), "line 2"),
        (format!("ok:{good}\n\nmd5:$apr1$salt$hash\n"), "line 3"),
        (
            format!("ok:{good}\nok:{good}\n"),
            "line 2: user 'ok' is already on line 1",
        ),
    ] {
        let path = dir.path().join("users");
        std::fs::write(&path, &text).unwrap();
        let mut config = Config::defaults();
        config.basic_users = Some(path.clone());
        config.db = temp_db();
        let err = ollama_gateway::build(config).await.err().unwrap();
        assert!(err.starts_with("GATEWAY_BASIC_USERS"), "{err}");
        assert!(err.contains(wanted), "{text:?}: {err}");
    }
    let mut config = Config::defaults();
    config.basic_users = Some(dir.path().join("missing"));
    config.db = temp_db();
    let err = ollama_gateway::build(config).await.err().unwrap();
    assert!(err.starts_with("GATEWAY_BASIC_USERS: cannot read"), "{err}");
}

#[tokio::test]
async fn a_line_from_caddy_hash_password_works() {
    let Ok(out) = std::process::Command::new("caddy")
        .args(["hash-password", "--plaintext", "from caddy"])
        .output()
    else {
        eprintln!("caddy is not installed: its hash-password line is not tried here");
        return;
    };
    assert!(out.status.success(), "{out:?}");
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let dir = TempDir::new("basic-caddy");
    let file = dir.path().join("users");
    std::fs::write(&file, format!("eve:{hash}\n")).unwrap();
    let env = Env::with(|c| c.basic_users = Some(file)).await;
    assert_eq!(
        get_as(&env, "/v1/models", &basic("eve", "from caddy"))
            .await
            .0,
        200
    );
    assert_eq!(
        get_as(&env, "/v1/models", &basic("eve", "from cadd"))
            .await
            .0,
        401
    );
}
