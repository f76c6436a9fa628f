//! Health, readiness, request ids, metrics, audit-relevant behaviour and shutdown.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn health_and_readiness_report_the_upstream() {
    let env = Env::start().await;
    let (status, health) =
        read_json(env.client.get(env.url("/health")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(health["upstream_reachable"], true);
    let (status, ready) = read_json(env.client.get(env.url("/ready")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(ready["status"], "ready");

    let down = Env::with(|c| c.ollama_url = "http://127.0.0.1:9".into()).await;
    let (status, health) =
        read_json(down.client.get(down.url("/health")).send().await.unwrap()).await;
    assert_eq!(
        (status, health["upstream_reachable"].clone()),
        (200, json!(false))
    );
    let (status, _) = read_json(down.client.get(down.url("/ready")).send().await.unwrap()).await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn the_upstream_version_is_shown_only_to_callers_with_a_key() {
    let env = Env::start().await;
    for path in ["/health", "/ready"] {
        let (_, anonymous) = read_json(env.client.get(env.url(path)).send().await.unwrap()).await;
        assert_eq!(anonymous["upstream_version"], Value::Null, "{path}");
        assert_eq!(anonymous["upstream_reachable"], true, "{path}");
        let wrong = env.client.get(env.url(path)).bearer_auth("not-a-key");
        let (_, wrong) = read_json(wrong.send().await.unwrap()).await;
        assert_eq!(wrong["upstream_version"], Value::Null, "{path}");
        let (_, keyed) = env.get_json(path).await;
        assert!(keyed["upstream_version"].is_string(), "{path}: {keyed}");
    }
}

#[tokio::test]
async fn anonymous_health_checks_share_one_upstream_probe() {
    let env = Env::start().await;
    let calls = (0..40).map(|_| env.client.get(env.url("/health")).send());
    for answer in futures::future::join_all(calls).await {
        assert_eq!(answer.unwrap().status(), 200);
    }
    for _ in 0..20 {
        let answer = env.client.get(env.url("/ready")).send().await.unwrap();
        assert_eq!(answer.status(), 200);
    }
    // 60 checks well within one second of each other: one probe, perhaps two if the run
    // straddled the cache's expiry on a slow machine.
    let probes = env.upstream_calls("/api/version");
    assert!((1..=2).contains(&probes), "{probes} upstream probes");
}

#[tokio::test]
async fn a_gateway_started_before_ollama_serves_once_ollama_is_there() {
    // Take a free port, let it go, and start the gateway pointing at it: nothing listens yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let env = Env::with(|c| c.ollama_url = format!("http://{port}")).await;
    let (status, ready) = read_json(env.client.get(env.url("/ready")).send().await.unwrap()).await;
    assert_eq!(
        (status, ready["status"].clone()),
        (503, json!("unavailable"))
    );
    let (status, body) = env
        .post_json("/v1/chat/completions", &chat("llama3.2"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (502, json!("upstream_unavailable"))
    );

    let ollama = fake_ollama::FakeOllama::start_on(port, fake_ollama::FakeConfig::default())
        .await
        .unwrap();
    let (status, _) = env
        .post_json("/v1/chat/completions", &chat("llama3.2"))
        .await;
    assert_eq!(
        status, 200,
        "requests connect on their own: no wait for a probe"
    );
    // Readiness follows within the probe cache's lifetime.
    tokio::time::sleep(ollama_gateway::upstream::probe::FRESH_FOR).await;
    let (status, _) = read_json(env.client.get(env.url("/ready")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    drop(ollama);
}

#[tokio::test]
async fn request_ids_round_trip_and_reach_the_upstream() {
    let env = Env::start().await;
    let response = env
        .post("/v1/chat/completions", &chat("llama3.2"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-123");
    let sent = env.fake.requests().last().cloned().unwrap();
    assert!(
        sent.headers
            .iter()
            .any(|(n, v)| n == "x-request-id" && v == "trace-me-123"),
        "{:?}",
        sent.headers
    );
    let response = env.get("/v1/models").send().await.unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 36, "a UUID when the client sent none");
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

/// A gateway whose one key is named `name` (the metrics recorder is process-wide and tests run
/// in parallel: a test that reads counters has a key of its own), allowing only llama3.2.
async fn env_with_key_named(name: &str, key: &str) -> Env {
    let path = std::env::temp_dir().join(format!("gw-keys-{name}-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        format!("[[keys]]\nname = \"{name}\"\nkey = \"{key}\"\n"),
    )
    .unwrap();
    let file = path.clone();
    let env = Env::with(move |c| {
        c.allowed_models = vec!["llama3.2".into()];
        c.config_file = Some(file);
    })
    .await;
    let _ = std::fs::remove_file(path);
    env
}

#[tokio::test]
async fn native_answers_count_their_tokens_too() {
    let env = env_with_key_named("native-tokens", "native-key").await;
    let scrape = || async {
        let response = env
            .client
            .get(env.url("/metrics"))
            .bearer_auth("native-key");
        response.send().await.unwrap().text().await.unwrap()
    };
    let before = scrape().await;
    for stream in [true, false] {
        let mut body = chat("llama3.2");
        body["stream"] = stream.into();
        let response = env
            .client
            .post(env.url("/api/chat"))
            .bearer_auth("native-key")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after = scrape().await;
    let ours = [("model", "llama3.2"), ("key", "native-tokens")];
    let delta = |name: &str| counter(&after, name, &ours) - counter(&before, name, &ours);
    let trailer = fixture_lines("chat/text.ndjson").last().cloned().unwrap();
    assert_eq!(
        delta("gateway_completion_tokens_total"),
        2.0 * trailer["eval_count"].as_f64().unwrap(),
        "one streamed and one whole answer"
    );
    assert_eq!(
        delta("gateway_prompt_tokens_total"),
        2.0 * trailer["prompt_eval_count"].as_f64().unwrap()
    );
    // Ollama's load_duration, from the last line passed through.
    let loads = |m: &str| {
        counter(
            m,
            "gateway_model_load_seconds_count",
            &[("model", "llama3.2")],
        )
    };
    assert!(loads(&after) - loads(&before) >= 2.0, "{after}");
}

#[tokio::test]
async fn metrics_count_requests_tokens_and_refusals() {
    let env = env_with_key_named("metrics-test", "metrics-key").await;
    let call = |path: &str| env.client.get(env.url(path)).bearer_auth("metrics-key");
    let scrape = || async { call("/metrics").send().await.unwrap().text().await.unwrap() };
    let before = scrape().await;
    let route = [
        ("route", "/v1/chat/completions"),
        ("status", "200"),
        ("key", "metrics-test"),
    ];
    for _ in 0..3 {
        let response = env
            .client
            .post(env.url("/v1/chat/completions"))
            .bearer_auth("metrics-key")
            .json(&chat("llama3.2"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    let response = env
        .client
        .post(env.url("/v1/chat/completions"))
        .bearer_auth("metrics-key")
        .json(&chat("qwen3"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after = scrape().await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        counter(&after, name, labels) - counter(&before, name, labels)
    };
    assert_eq!(delta("gateway_requests_total", &route), 3.0);
    let trailer = fixture_lines("chat/text.ndjson").last().cloned().unwrap();
    let eval = trailer["eval_count"].as_f64().unwrap();
    let prompt = trailer["prompt_eval_count"].as_f64().unwrap();
    let ours = [("model", "llama3.2"), ("key", "metrics-test")];
    assert_eq!(delta("gateway_completion_tokens_total", &ours), 3.0 * eval);
    assert_eq!(delta("gateway_prompt_tokens_total", &ours), 3.0 * prompt);
    assert!(delta("gateway_refused_total", &[("reason", "model_not_allowed")]) >= 1.0);
    assert!(after.contains("gateway_overhead_seconds_bucket"));
}

#[tokio::test]
async fn shutdown_ends_an_open_stream_with_an_error_event() {
    let fake = fake_ollama::FakeOllama::start(fake_ollama::FakeConfig {
        chunk_gap: Duration::from_millis(200),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut config = ollama_gateway::config::Config::defaults();
    config.ollama_url = fake.url();
    config.api_keys = vec![ollama_gateway::config::Secret::new(KEY)];
    config.shutdown_grace = Duration::from_millis(300);
    config.db = super::common::temp_db();
    let gateway = ollama_gateway::build(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ollama_gateway::server::run(
        listener,
        gateway.service,
        gateway.state,
        async {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let mut body = chat("bench");
    body["stream"] = json!(true);
    body["max_tokens"] = json!(100);
    let response = client
        .post(format!("http://{addr}/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let _ = stop.send(());
    let (events, done) = sse_json(response).await;
    assert!(!done);
    assert_eq!(events.last().unwrap()["error"]["code"], "shutting_down");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();
    assert!(
        client
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .is_err(),
        "no longer accepting"
    );
}

/// Captured log output (JSON lines) of this test process.
pub(crate) fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<&'static std::sync::Mutex<Vec<u8>>> =
        std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::default());
        let writer = move || LogWriter(logs);
        let _ = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(writer)
            .with_env_filter("audit=info")
            .try_init();
        logs
    })
}

struct LogWriter(&'static std::sync::Mutex<Vec<u8>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn one_audit_line_per_request_names_the_key_never_the_key_itself() {
    let logs = captured_logs();
    let env = Env::with(|c| c.allowed_models = vec!["llama3.2".into()]).await;
    let mut streamed = chat("llama3.2");
    streamed["stream"] = json!(true);
    let ok = env
        .post("/v1/chat/completions", &streamed)
        .header("x-request-id", "audit-ok-1")
        .send()
        .await
        .unwrap();
    let _ = sse_json(ok).await;
    let refused = env
        .post("/v1/chat/completions", &chat("qwen3"))
        .header("x-request-id", "audit-refused-1")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let _ = refused.bytes().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let line_for = |id: &str| -> Vec<serde_json::Value> {
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["request_id"] == id && l["target"] == "audit")
            .collect()
    };
    let ok_lines = line_for("audit-ok-1");
    assert_eq!(ok_lines.len(), 1, "exactly one audit line: {text}");
    let ok_line = &ok_lines[0];
    let trailer = fixture_lines("chat/text.ndjson").last().cloned().unwrap();
    assert_eq!(ok_line["key"], "key-1");
    assert_eq!(ok_line["model"], "llama3.2");
    assert_eq!(ok_line["status"], 200);
    assert_eq!(ok_line["route"], "/v1/chat/completions");
    assert_eq!(ok_line["method"], "POST");
    assert_eq!(ok_line["prompt_tokens"], trailer["prompt_eval_count"]);
    assert_eq!(ok_line["completion_tokens"], trailer["eval_count"]);
    assert!(ok_line["upstream_ms"].as_f64().is_some());
    let refused_line = &line_for("audit-refused-1")[0];
    assert_eq!(refused_line["status"], 403);
    assert_eq!(refused_line["refused"], "model_not_allowed");
    assert!(!text.contains(KEY), "the key itself is never logged");
}
