//! Usage records, token quotas and a database that is locked, broken or away.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeZone;
use fake_ollama::FakeConfig;
use ollama_gateway::usage::clock::ManualClock;
use serde_json::{Value, json};

use super::admin::{admin, admin_key, chat_status, post_as};
use super::common::{Env, chat, lock, ndjson, read_json, sse_json, test_config};

/// Tokens (prompt, completion) a response reported, read the way a client reads them.
async fn tokens_of(response: reqwest::Response, kind: &str) -> (u64, u64) {
    assert_eq!(response.status(), 200);
    let n = |v: &Value| v.as_u64().unwrap_or_default();
    match kind {
        "openai" => {
            let (_, body) = read_json(response).await;
            (
                n(&body["usage"]["prompt_tokens"]),
                n(&body["usage"]["completion_tokens"]),
            )
        }
        "sse" => {
            let (events, _) = sse_json(response).await;
            let usage = &events.last().unwrap()["usage"];
            (n(&usage["prompt_tokens"]), n(&usage["completion_tokens"]))
        }
        "ollama" => {
            let (_, body) = read_json(response).await;
            (n(&body["prompt_eval_count"]), n(&body["eval_count"]))
        }
        // Responses and Messages answers: `usage.input_tokens` / `output_tokens`.
        "usage" => {
            let (_, body) = read_json(response).await;
            (
                n(&body["usage"]["input_tokens"]),
                n(&body["usage"]["output_tokens"]),
            )
        }
        // A Responses stream: the usage of `response.completed`, its last event.
        "responses-sse" => {
            let (events, _) = sse_json(response).await;
            let last = events.last().unwrap();
            assert_eq!(last["type"], "response.completed", "{last}");
            let usage = &last["response"]["usage"];
            (n(&usage["input_tokens"]), n(&usage["output_tokens"]))
        }
        // A Messages stream: the usage of `message_delta` (`message_start` has no counts yet).
        "messages-sse" => {
            let (events, _) = sse_json(response).await;
            let delta = events
                .iter()
                .find(|e| e["type"] == "message_delta")
                .unwrap();
            let usage = &delta["usage"];
            (n(&usage["input_tokens"]), n(&usage["output_tokens"]))
        }
        _ => {
            let lines = ndjson(response).await;
            let last = lines.last().unwrap();
            (n(&last["prompt_eval_count"]), n(&last["eval_count"]))
        }
    }
}

/// The usage rows grouped by route, once `route` shows `requests` requests.
async fn usage_by_route(env: &Env, key: &str, route: &str, requests: u64) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let (status, body) = admin(env, key, "GET", "/admin/api/usage?group_by=route", None).await;
        assert_eq!(status, 200, "{body}");
        let rows = body["data"].as_array().unwrap().clone();
        if rows
            .iter()
            .any(|r| r["route"] == route && r["requests"] == requests)
        {
            return rows;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "usage never reached {requests} on {route}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn usage_totals_equal_the_tokens_the_fake_reported_on_every_surface() {
    let env = Env::start().await;
    let root = admin_key(&env).await;
    let (_, created) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "counted", "user": "fay"})),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_owned();
    let streamed = |mut body: Value| {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        body
    };
    let plain = |mut body: Value| {
        body["stream"] = json!(false);
        body
    };
    let completion = json!({"model": "llama3.2", "prompt": "Once upon a time"});
    let native_chat = chat("llama3.2");
    let generate = json!({"model": "llama3.2", "prompt": "Why is the sky blue?"});
    let message = json!({"model": "llama3.2", "max_tokens": 100,
        "messages": [{"role": "user", "content": "Why is the sky blue?"}]});
    let mut stream_message = message.clone();
    stream_message["stream"] = json!(true);
    let calls: Vec<(&str, Value, &str)> = vec![
        ("/v1/chat/completions", chat("llama3.2"), "openai"),
        ("/v1/chat/completions", streamed(chat("llama3.2")), "sse"),
        ("/v1/completions", completion.clone(), "openai"),
        ("/v1/completions", streamed(completion), "sse"),
        (
            "/v1/embeddings",
            json!({"model": "all-minilm", "input": ["a", "b"]}),
            "openai",
        ),
        ("/chat", plain(native_chat.clone()), "ollama"),
        ("/chat", native_chat.clone(), "ndjson"),
        ("/api/chat", plain(native_chat.clone()), "ollama"),
        ("/api/chat", native_chat, "ndjson"),
        ("/api/generate", plain(generate.clone()), "ollama"),
        ("/api/generate", generate, "ndjson"),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": "Why is the sky blue?"}),
            "usage",
        ),
        (
            "/v1/responses",
            json!({"model": "llama3.2", "input": "Why is the sky blue?", "stream": true}),
            "responses-sse",
        ),
        ("/v1/messages", message.clone(), "usage"),
        ("/v1/messages", stream_message, "messages-sse"),
    ];
    let mut expected: std::collections::BTreeMap<&str, (u64, u64, u64)> = Default::default();
    for (path, body, kind) in &calls {
        let response = env
            .client
            .post(env.url(path))
            .bearer_auth(&key)
            .json(body)
            .send()
            .await
            .unwrap();
        let (prompt, completion) = tokens_of(response, kind).await;
        assert!(prompt > 0, "{path} {kind}: the fake reports tokens");
        let entry = expected.entry(path).or_default();
        *entry = (entry.0 + 1, entry.1 + prompt, entry.2 + completion);
    }
    // Counting a prompt's tokens generates nothing: it is a request, but no usage and no quota.
    let response = env
        .client
        .post(env.url("/v1/messages/count_tokens"))
        .bearer_auth(&key)
        .json(&json!({"model": "llama3.2", "messages": message["messages"]}))
        .send()
        .await
        .unwrap();
    let (status, count) = read_json(response).await;
    assert_eq!(status, 200, "{count}");
    assert!(count["input_tokens"].as_u64() > Some(0), "{count}");
    let rows = usage_by_route(&env, &root, "/v1/messages/count_tokens", 1).await;
    let row = rows
        .iter()
        .find(|r| r["route"] == "/v1/messages/count_tokens")
        .unwrap();
    assert_eq!(
        (
            row["prompt_tokens"].clone(),
            row["completion_tokens"].clone()
        ),
        (json!(0), json!(0)),
        "{row}"
    );
    let rows = usage_by_route(&env, &root, "/api/generate", 2).await;
    let mut total = 0;
    for (route, (requests, prompt, completion)) in &expected {
        let row = rows
            .iter()
            .find(|r| r["route"] == *route)
            .unwrap_or_else(|| panic!("no row for {route}"));
        assert_eq!(row["requests"], *requests, "{route}");
        assert_eq!(row["prompt_tokens"], *prompt, "{route}");
        assert_eq!(row["completion_tokens"], *completion, "{route}");
        assert_eq!(row["errors"], 0);
        assert!(row["latency_ms_p50"].as_f64().is_some());
        total += prompt + completion;
    }
    // Ollama's load duration is kept on every generating surface: where the gateway translates
    // the answer and where it passes Ollama's own lines through.
    let records = env.state.store.usage(0, i64::MAX).await.unwrap();
    for route in [
        "/v1/chat/completions",
        "/v1/completions",
        "/chat",
        "/api/chat",
        "/api/generate",
    ] {
        let of_route: Vec<_> = records.iter().filter(|r| r.route == route).collect();
        assert_eq!(of_route.len(), 2, "{route}");
        assert!(
            of_route
                .iter()
                .all(|r| r.load_ms.is_some_and(|ms| ms > 0.0)),
            "{route}: {of_route:?}"
        );
        assert!(
            of_route
                .iter()
                .all(|r| r.key_id == created["id"].as_str().map(str::to_owned)
                    && r.user.as_deref() == Some("fay"))
        );
    }
    // The same totals by key, user and model, in JSON and CSV, and on the key's listing.
    let (_, by_key) = admin(
        &env,
        &root,
        "GET",
        "/admin/api/usage?group_by=key,user",
        None,
    )
    .await;
    let row = by_key["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "counted")
        .unwrap()
        .clone();
    assert_eq!(
        (row["total_tokens"].clone(), row["user"].clone()),
        (json!(total), json!("fay"))
    );
    assert_eq!(row["key_id"], created["id"]);
    let csv = env
        .client
        .get(env.url("/admin/api/usage?group_by=key&format=csv"))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    assert!(
        csv.starts_with("key_id,key,requests,prompt_tokens,completion_tokens,total_tokens,errors,"),
        "{csv}"
    );
    let line = csv.lines().find(|l| l.contains(",counted,")).unwrap();
    assert!(line.contains(&format!(",{total},")), "{line}");
    let accept = env
        .client
        .get(env.url("/admin/api/usage?group_by=day,model"))
        .bearer_auth(&root)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(
        accept
            .text()
            .await
            .unwrap()
            .starts_with("day,model,requests")
    );
    let (_, listed) = admin(
        &env,
        &root,
        "GET",
        &format!("/admin/api/keys/{}", created["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(listed["tokens_today"], total);
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        env.state.usage.quotas.used(id).0,
        total,
        "the quota counts what the records count (count_tokens not included)"
    );
    assert!(
        listed["last_used"].is_string(),
        "last_used is written with the records: {listed}"
    );
    // The CLI reads the same database.
    let (ok, out, err) = super::admin::cli(
        &env.state.config.db,
        &["usage", "--group-by", "key", "--format", "csv"],
    );
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.contains(",counted,") && l.contains(&format!(",{total},"))),
        "{out}"
    );
}

#[tokio::test]
async fn a_restart_keeps_keys_usage_and_the_quota_counters() {
    let env = Env::start().await;
    let root = admin_key(&env).await;
    let (_, created) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "kept", "daily_token_quota": 1000000})),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(chat_status(&env, &key).await, 200);
    }
    let rows = usage_by_route(&env, &root, "/v1/chat/completions", 3).await;
    let before = rows
        .iter()
        .find(|r| r["route"] == "/v1/chat/completions")
        .unwrap()
        .clone();
    let fake = fake_ollama::FakeOllama::start(FakeConfig::default())
        .await
        .unwrap();
    let mut config = test_config(&fake);
    config.db = env.state.config.db.clone();
    let again = Env::serve(
        fake,
        config,
        Arc::new(ollama_gateway::usage::clock::SystemClock),
    )
    .await;
    assert_eq!(
        chat_status(&again, &key).await,
        200,
        "the key outlives the process"
    );
    let (_, rows) = admin(
        &again,
        &root,
        "GET",
        "/admin/api/usage?group_by=route",
        None,
    )
    .await;
    let after = rows["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "/v1/chat/completions")
        .unwrap()
        .clone();
    assert!(after["requests"].as_u64().unwrap() >= 3);
    assert_eq!(before["requests"], 3);
    let (_, listed) = admin(
        &again,
        &root,
        "GET",
        &format!("/admin/api/keys/{}", created["id"].as_str().unwrap()),
        None,
    )
    .await;
    let per_request = (before["total_tokens"].as_u64().unwrap()) / 3;
    assert!(
        listed["tokens_today"].as_u64().unwrap() >= 3 * per_request,
        "seeded from the store: {listed}"
    );
}

/// Wait until the in-memory counter of `id` shows `tokens` today.
async fn counted(env: &Env, id: &str, tokens: u64) {
    let started = Instant::now();
    while env.state.usage.quotas.used(id).0 != tokens {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "counter at {:?}, not {tokens}",
            env.state.usage.quotas.used(id)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn quotas_refuse_at_the_limit_and_reset_with_the_period() {
    let clock = Arc::new(ManualClock::new(
        chrono::Utc.with_ymd_and_hms(2026, 3, 31, 23, 0, 0).unwrap(),
    ));
    let env = Env::with_clock(FakeConfig::default(), clock.clone(), |_| {}).await;
    let root = admin_key(&env).await;
    let per_request = {
        let trailer = super::common::fixture_lines("chat/text.ndjson")
            .last()
            .cloned()
            .unwrap();
        trailer["prompt_eval_count"].as_u64().unwrap() + trailer["eval_count"].as_u64().unwrap()
    };
    let (_, created) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "metered", "daily_token_quota": 2 * per_request, "monthly_token_quota": 3 * per_request})),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let send = || post_as(&env, &chat("llama3.2")).bearer_auth(&key).send();
    let response = send().await.unwrap();
    assert_eq!(response.status(), 200);
    let h = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        h(&response, "x-quota-daily-limit").as_deref(),
        Some(&*(2 * per_request).to_string())
    );
    assert_eq!(
        h(&response, "x-quota-daily-remaining").as_deref(),
        Some(&*(2 * per_request).to_string())
    );
    assert_eq!(h(&response, "x-quota-daily-reset").as_deref(), Some("3600"));
    assert_eq!(
        h(&response, "x-quota-monthly-remaining").as_deref(),
        Some(&*(3 * per_request).to_string())
    );
    response.bytes().await.unwrap();
    counted(&env, &id, per_request).await;
    let response = send().await.unwrap();
    assert_eq!(
        h(&response, "x-quota-daily-remaining").as_deref(),
        Some(&*per_request.to_string())
    );
    response.bytes().await.unwrap();
    counted(&env, &id, 2 * per_request).await;

    let response = send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(
        h(&response, "retry-after").as_deref(),
        Some("3600"),
        "until midnight UTC"
    );
    assert_eq!(
        h(&response, "x-quota-daily-remaining").as_deref(),
        Some("0")
    );
    let (_, body) = read_json(response).await;
    assert_eq!(body["error"]["code"], "quota_exceeded");
    let calls = env.upstream_calls("/api/chat");
    assert_eq!(calls, 2, "a refused request never reaches Ollama");
    assert_eq!(
        chat_status(&env, super::common::KEY).await,
        200,
        "other keys are not affected"
    );

    // A new day (and month): both budgets are whole again.
    clock.advance(chrono::Duration::hours(1));
    let response = send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        h(&response, "x-quota-monthly-reset").as_deref(),
        Some(&*(30 * 86400).to_string())
    );
    response.bytes().await.unwrap();
    // Lower the monthly quota through the API: refused with the month's Retry-After.
    counted(&env, &id, per_request).await;
    let (status, _) = admin(
        &env,
        &root,
        "PATCH",
        &format!("/admin/api/keys/{id}"),
        Some(json!({"monthly_token_quota": per_request})),
    )
    .await;
    assert_eq!(status, 200);
    let response = send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(
        h(&response, "retry-after").as_deref(),
        Some(&*(30 * 86400).to_string())
    );
    let (status, _) = admin(
        &env,
        &root,
        "PATCH",
        &format!("/admin/api/keys/{id}"),
        Some(json!({"monthly_token_quota": null, "daily_token_quota": null})),
    )
    .await;
    assert_eq!(status, 200);
    let response = send().await.unwrap();
    assert_eq!(response.status(), 200, "quotas lifted");
    assert!(h(&response, "x-quota-daily-limit").is_none());
}

#[tokio::test]
async fn a_locked_database_never_slows_requests_admin_writes_get_503_and_all_resumes() {
    let env = Env::start().await;
    let root = admin_key(&env).await;
    let db = env.state.config.db.clone();
    let held = lock(&db).await;
    for _ in 0..10 {
        let started = Instant::now();
        assert_eq!(chat_status(&env, super::common::KEY).await, 200);
        assert_eq!(chat_status(&env, &root).await, 200);
        assert!(
            started.elapsed() < Duration::from_millis(800),
            "requests do not wait on the database"
        );
    }
    let (status, body) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "while-locked"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (503, json!("store_unavailable")),
        "{body}"
    );
    held.release().await;
    let (status, _) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "after-lock"})),
    )
    .await;
    assert_eq!(status, 201);
    // Every request made while the lock was held is recorded once it is gone.
    usage_by_route(&env, &root, "/v1/chat/completions", 20).await;
}

#[tokio::test]
async fn a_full_usage_queue_drops_and_counts_records_but_serves_every_request() {
    let env = Env::with(|c| c.usage_queue = 2).await;
    let db = env.state.config.db.clone();
    let held = lock(&db).await;
    for _ in 0..12 {
        assert_eq!(chat_status(&env, super::common::KEY).await, 200);
    }
    let started = Instant::now();
    while env.state.usage.dropped() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "nothing dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dropped = env.state.usage.dropped();
    assert!(
        dropped <= 10,
        "the queue and the waiting batch hold some: {dropped}"
    );
    let metrics = env
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gateway_usage_dropped_total"),
        "counted in /metrics"
    );
    held.release().await;
    // What was queued is written once the database is back: 12 minus the dropped ones (the
    // /metrics request above has a record of its own, or was dropped after `dropped` was read).
    let started = Instant::now();
    loop {
        let mut records = env.state.store.usage(0, i64::MAX).await.unwrap();
        records.retain(|r| r.route == "/v1/chat/completions");
        if records.len() as u64 == 12 - dropped {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{} records, {dropped} dropped",
            records.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_broken_unwritable_or_locked_database_stops_the_start_naming_gateway_db() {
    let fake = fake_ollama::FakeOllama::start(FakeConfig::default())
        .await
        .unwrap();
    let dir = super::common::temp_dir("bad-db");
    let corrupt = dir.join("corrupt.db");
    std::fs::write(&corrupt, "this is not a database ".repeat(200)).unwrap();
    let not_a_dir = dir.join("file");
    std::fs::write(&not_a_dir, "").unwrap();
    let locked = super::common::temp_sqlite_db();
    let mut config = test_config(&fake);
    config.db = locked.clone();
    drop(ollama_gateway::build(config).await.unwrap());
    let _held = lock(&locked).await;
    for (url, cause) in [
        (super::common::db_url(&corrupt), "not a database"),
        (
            super::common::db_url(&not_a_dir.join("x.db")),
            "unable to open",
        ),
        (locked, "locked"),
        // A PostgreSQL server that is not there (port 1 on loopback refuses at once).
        ("postgres://u:secret@127.0.0.1:1/gw".to_owned(), "refused"),
    ] {
        let mut config = test_config(&fake);
        config.db = url.clone();
        let err = ollama_gateway::build(config)
            .await
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("GATEWAY_DB"), "{url}: {err}");
        assert!(err.contains(cause), "{url}: {err}");
        assert!(!err.contains("secret"), "{err}");
    }
}

#[tokio::test]
async fn a_hard_quota_ends_streams_at_the_budget_and_closes_the_upstream_a_soft_one_lets_them_finish()
 {
    let fake = FakeConfig {
        chunk_gap: Duration::from_millis(5),
        ..FakeConfig::default()
    };
    let env = Env::with_fake(fake, |_| {}).await;
    let root = admin_key(&env).await;
    let mut keys = Vec::new();
    for (name, hard) in [
        ("hard-sse", true),
        ("hard-chat", true),
        ("hard-native", true),
        ("soft", false),
        ("hard-responses", true),
        ("hard-messages", true),
    ] {
        let (status, created) = admin(
            &env,
            &root,
            "POST",
            "/admin/api/keys",
            Some(json!({"name": name, "daily_token_quota": 10, "hard_quota": hard})),
        )
        .await;
        assert_eq!(status, 201);
        keys.push((
            created["key"].as_str().unwrap().to_owned(),
            created["id"].as_str().unwrap().to_owned(),
        ));
    }
    let long = json!({"model": "bench", "stream": true, "max_tokens": 200, "messages": [{"role": "user", "content": "go"}]});

    // SSE: the budget's tokens, a last chunk with finish_reason "length", then the error event.
    let response = post_as(&env, &long)
        .bearer_auth(&keys[0].0)
        .send()
        .await
        .unwrap();
    let (events, done) = sse_json(response).await;
    assert!(!done, "no [DONE] after the error event");
    let error = events.last().unwrap();
    assert_eq!(error["error"]["code"], "quota_exceeded", "{error}");
    let chunks = &events[..events.len() - 1];
    let text = super::common::streamed_text(chunks);
    assert_eq!(text.matches("tok").count(), 10, "{text}");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "length"
    );
    let started = Instant::now();
    while env.fake.cancelled_streams() < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the upstream request was not closed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    counted(&env, &keys[0].1, 10).await;
    assert_eq!(
        post_as(&env, &long)
            .bearer_auth(&keys[0].0)
            .send()
            .await
            .unwrap()
            .status(),
        429
    );

    // NDJSON (/chat and the native passthrough): the budget's lines, then an error line.
    let native = json!({"model": "bench", "options": {"num_predict": 200}, "messages": [{"role": "user", "content": "go"}]});
    for (path, (key, id), cancelled) in [("/chat", &keys[1], 2), ("/api/chat", &keys[2], 3)] {
        let response = env
            .client
            .post(env.url(path))
            .bearer_auth(key)
            .json(&native)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let lines = ndjson(response).await;
        assert_eq!(lines.len(), 11, "{path}: {lines:?}");
        assert!(lines[..10].iter().all(|l| l["done"] == false), "{path}");
        assert!(
            lines[10]["error"].as_str().unwrap().contains("quota"),
            "{path}: {}",
            lines[10]
        );
        let started = Instant::now();
        while env.fake.cancelled_streams() < cancelled {
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{path}: the upstream request was not closed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        counted(&env, id, 10).await;
    }

    // A Responses stream: the budget's text, then `error` and `response.failed` naming the quota.
    let responses =
        json!({"model": "bench", "stream": true, "max_output_tokens": 200, "input": "go"});
    let response = env
        .client
        .post(env.url("/v1/responses"))
        .bearer_auth(&keys[4].0)
        .json(&responses)
        .send()
        .await
        .unwrap();
    let (events, _) = sse_json(response).await;
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types[types.len() - 2..],
        ["error", "response.failed"],
        "{types:?}"
    );
    let error = &events[events.len() - 2];
    assert_eq!(error["code"], "quota_exceeded", "{error}");
    let failed = &events[events.len() - 1]["response"];
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "quota_exceeded", "{failed}");
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    assert_eq!(text.matches("tok").count(), 10, "{text}");
    assert!(!types.contains(&"response.completed"), "{types:?}");
    let started = Instant::now();
    while env.fake.cancelled_streams() < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "/v1/responses: the upstream request was not closed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    counted(&env, &keys[4].1, 10).await;

    // A Messages stream: the budget's text, then Anthropic's `error` event (a 429's type,
    // `rate_limit_error`), and no `message_stop`.
    let messages = json!({"model": "bench", "stream": true, "max_tokens": 200,
        "messages": [{"role": "user", "content": "go"}]});
    let response = env
        .client
        .post(env.url("/v1/messages"))
        .bearer_auth(&keys[5].0)
        .json(&messages)
        .send()
        .await
        .unwrap();
    let events = super::common::named_events(response).await;
    let (name, error) = events.last().unwrap();
    assert_eq!(name, "error", "{events:?}");
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["error"]["type"], "rate_limit_error", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("quota"),
        "{error}"
    );
    assert!(
        !events.iter().any(|(name, _)| name == "message_stop"),
        "{events:?}"
    );
    let text: String = events
        .iter()
        .filter(|(name, _)| name == "content_block_delta")
        .filter_map(|(_, e)| e["delta"]["text"].as_str())
        .collect();
    assert_eq!(text.matches("tok").count(), 10, "{text}");
    let started = Instant::now();
    while env.fake.cancelled_streams() < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "/v1/messages: the upstream request was not closed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    counted(&env, &keys[5].1, 10).await;

    // Without hard_quota the stream that crosses the quota finishes; the overshoot is counted.
    let response = post_as(&env, &long)
        .bearer_auth(&keys[3].0)
        .send()
        .await
        .unwrap();
    let (events, done) = sse_json(response).await;
    assert!(done);
    assert_eq!(
        super::common::streamed_text(&events).matches("tok").count(),
        200
    );
    let started = Instant::now();
    while env.state.usage.quotas.used(&keys[3].1).0 < 200 {
        assert!(started.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        post_as(&env, &long)
            .bearer_auth(&keys[3].0)
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
}

#[tokio::test]
async fn records_past_the_retention_are_deleted_and_their_hourly_totals_still_answer() {
    let env = Env::start().await;
    let root = admin_key(&env).await;
    let old = chrono::Utc::now() - chrono::Duration::days(100);
    let record = |minute: i64| ollama_gateway::store::UsageRecord {
        at: old.timestamp_millis() + minute * 60_000,
        key_name: "ancient".into(),
        model: Some("llama3.2".into()),
        route: "/v1/chat/completions".into(),
        status: 200,
        prompt_tokens: 7,
        completion_tokens: 5,
        total_ms: 12.0,
        ..Default::default()
    };
    let store = &env.state.store;
    store
        .insert_usage(&[record(0), record(1), record(2)])
        .await
        .unwrap();
    let cutoff = (chrono::Utc::now() - chrono::Duration::days(90)).timestamp_millis();
    assert_eq!(store.prune_usage(cutoff).await.unwrap(), 3);
    assert!(store.usage(0, i64::MAX).await.unwrap().is_empty());
    let (status, body) = admin(
        &env,
        &root,
        "GET",
        &format!(
            "/admin/api/usage?group_by=key,day&to={}",
            (old + chrono::Duration::days(1)).format("%Y-%m-%d")
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let row = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "ancient")
        .unwrap_or_else(|| panic!("{body}"))
        .clone();
    assert_eq!(
        (row["requests"].clone(), row["total_tokens"].clone()),
        (json!(3), json!(36))
    );
    assert_eq!(row["day"], old.format("%Y-%m-%d").to_string());
    assert!(
        row["latency_ms_p50"].is_null(),
        "percentiles need the records"
    );
}

#[tokio::test]
async fn sigterm_writes_the_queued_usage_records_before_the_process_exits() {
    let fake = fake_ollama::FakeOllama::start(FakeConfig::default())
        .await
        .unwrap();
    let db = super::common::temp_db();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ollama-gateway"))
        .env_clear()
        .env("GATEWAY_DB", &db)
        .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
        .env("OLLAMA_URL", fake.url())
        .env("GATEWAY_API_KEYS", "sigterm-key")
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the gateway did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..25 {
        let response = client
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth("sigterm-key")
            .json(&chat("llama3.2"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    // At once: well inside the writer's one-second flush interval.
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    let store = ollama_gateway::store::Store::open(&db).await.unwrap();
    let records = store.usage(0, i64::MAX).await.unwrap();
    assert_eq!(
        records
            .iter()
            .filter(|r| r.route == "/v1/chat/completions")
            .count(),
        25
    );
    assert!(
        records
            .iter()
            .all(|r| r.key_name == "key-1" && r.key_id.is_none())
    );
}
