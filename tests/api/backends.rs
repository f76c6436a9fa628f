//! Several Ollama servers behind one gateway: three fake Ollama instances on their own ports,
//! each with its own models, and a real gateway in front of them, over HTTP. Backends are
//! killed (their fake shut down: socket and connections closed) and started again on the same
//! port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_ollama::{FakeConfig, FakeOllama};
use futures::StreamExt;
use ollama_gateway::config::{Config, Secret};
use ollama_gateway::state::AppState;
use ollama_gateway::usage::clock::SystemClock;
use serde_json::{Value, json};

use crate::common::{KEY, chat, read_json, temp_db, temp_dir};

/// A second key, for the fairness test.
const KEY_B: &str = "test-key-b";

/// One fake Ollama that can be killed and started again on its port.
struct Fake {
    addr: SocketAddr,
    config: FakeConfig,
    running: Option<FakeOllama>,
}

impl Fake {
    async fn start(config: FakeConfig) -> Self {
        let fake = FakeOllama::start(config.clone())
            .await
            .expect("fake starts");
        Self {
            addr: fake.addr(),
            config,
            running: Some(fake),
        }
    }

    /// A backend that is down: a port nothing listens on.
    async fn down() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        Self {
            addr,
            config: FakeConfig::default(),
            running: None,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shut it down: the socket and every open connection are closed.
    async fn kill(&mut self) {
        if let Some(fake) = self.running.take() {
            fake.shutdown().await;
        }
    }

    /// Start it again on the same port, with no requests recorded.
    async fn revive(&mut self) {
        let fake = FakeOllama::start_on(self.addr, self.config.clone())
            .await
            .expect("fake starts again");
        self.running = Some(fake);
    }

    fn fake(&self) -> &FakeOllama {
        self.running.as_ref().expect("running")
    }

    /// Requests it received on `path`.
    fn calls(&self, path: &str) -> usize {
        self.running.as_ref().map_or(0, |f| {
            f.requests().iter().filter(|r| r.path == path).count()
        })
    }
}

/// A fake with these models (and these loaded).
fn has(models: &[&str], loaded: &[&str]) -> FakeConfig {
    FakeConfig {
        models: Some(models.iter().map(|m| (*m).to_owned()).collect()),
        loaded: Some(loaded.iter().map(|m| (*m).to_owned()).collect()),
        ..FakeConfig::default()
    }
}

/// A gateway in front of several backends.
struct Gateway {
    addr: SocketAddr,
    client: reqwest::Client,
    state: AppState,
    /// The backends' names, in order (unique per test: metrics are process-wide).
    names: Vec<String>,
}

impl Gateway {
    /// Backends `fakes` as `[[backends]]` with `max_concurrent` each (0 = none) and weight 1,
    /// an admin key `ops` in the same file, and `configure` for the rest.
    async fn start(
        tag: &str,
        fakes: &[&Fake],
        max_concurrent: &[u32],
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start_with(tag, fakes, max_concurrent, &[], configure).await
    }

    /// [`Gateway::start`], with `extra[i]` added to backend `i`'s TOML table (e.g. its fixed
    /// `models`).
    async fn start_with(
        tag: &str,
        fakes: &[&Fake],
        max_concurrent: &[u32],
        extra: &[&str],
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let names: Vec<String> = (0..fakes.len())
            .map(|i| format!("{tag}-{}", ["a", "b", "c", "d"][i]))
            .collect();
        let mut toml = String::from(
            "[[keys]]\nname = \"ops\"\nkey = \"sk-ops\"\nadmin = true\nmax_concurrent = 0\nrate_limit = 0\n",
        );
        for (i, fake) in fakes.iter().enumerate() {
            toml.push_str(&format!(
                "\n[[backends]]\nname = \"{}\"\nurl = \"{}\"\nmax_concurrent = {}\n{}\n",
                names[i],
                fake.url(),
                max_concurrent.get(i).copied().unwrap_or(0),
                extra.get(i).copied().unwrap_or_default()
            ));
        }
        let file = temp_dir("backends").join("gateway.toml");
        std::fs::write(&file, toml).expect("write config");
        let mut config = Config::defaults();
        config.ollama_url = "http://127.0.0.1:9".into();
        config.api_keys = vec![Secret::new(KEY), Secret::new(KEY_B)];
        config.ollama_api_key = None;
        config.config_file = Some(file);
        config.allowed_models = Vec::new();
        config.cors_origins = Vec::new();
        config.db = temp_db();
        // Fifty requests from one key at once: no per-key limit in the way.
        config.max_concurrent = 0;
        config.rate_limit = 0;
        config.metrics_open = true;
        configure(&mut config);
        let gateway = ollama_gateway::build_with_clock(config, Arc::new(SystemClock))
            .await
            .expect("gateway builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = gateway.state.clone();
        tokio::spawn(ollama_gateway::server::run(
            listener,
            gateway.service,
            gateway.state,
            std::future::pending(),
        ));
        Self {
            addr,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            state,
            names,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(KEY).json(body)
    }

    async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        read_json(self.post(path, body).send().await.expect("request")).await
    }

    async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(KEY)
            .send()
            .await
            .expect("request");
        read_json(response).await
    }

    fn healthy(&self, index: usize) -> bool {
        self.state.backends.all()[index].is_healthy()
    }

    /// Wait until backend `index` is in (or out), at most `within`.
    async fn wait_health(&self, index: usize, up: bool, within: Duration) {
        let started = Instant::now();
        while self.healthy(index) != up {
            assert!(
                started.elapsed() < within,
                "backend {} still {} after {within:?}",
                self.names[index],
                if up { "out" } else { "in" }
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }
}

/// The value of one Prometheus series (its full name with labels), if present.
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[tokio::test]
async fn a_model_only_one_backend_has_goes_there() {
    let a = Fake::start(has(&["llama3.2"], &[])).await;
    let b = Fake::start(has(&["llama3.2", "qwen3"], &[])).await;
    let c = Fake::start(has(&["llava"], &[])).await;
    let gw = Gateway::start("only", &[&a, &b, &c], &[], |_| {}).await;
    for _ in 0..4 {
        let (status, body) = gw.post_json("/v1/chat/completions", &chat("qwen3")).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(b.calls("/api/chat"), 4);
    assert_eq!(a.calls("/api/chat") + c.calls("/api/chat"), 0);
    let mut whole = chat("llava");
    whole["stream"] = json!(false);
    let (status, _) = gw.post_json("/chat", &whole).await;
    assert_eq!(status, 200);
    assert_eq!(c.calls("/api/chat"), 1);
    // A model both have is shared between them (neither has it loaded, both idle).
    for _ in 0..4 {
        let (status, _) = gw
            .post_json("/v1/chat/completions", &chat("llama3.2"))
            .await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        a.calls("/api/chat"),
        2,
        "turns between the two that have it"
    );
    assert_eq!(b.calls("/api/chat"), 6);
    // A model none has: 404 model_not_found, in Ollama's words, as with one backend.
    let (status, body) = gw.post_json("/v1/chat/completions", &chat("nosuch")).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "model_not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nosuch"),
        "{body}"
    );
}

#[tokio::test]
async fn a_loaded_model_wins_over_an_installed_one() {
    let a = Fake::start(has(&["llama3.2"], &["llama3.2"])).await;
    let b = Fake::start(has(&["qwen3"], &[])).await;
    let c = Fake::start(has(&["qwen3", "llava"], &["qwen3"])).await;
    let gw = Gateway::start("loaded", &[&a, &b, &c], &[], |_| {}).await;
    for _ in 0..5 {
        let (status, body) = gw.post_json("/v1/chat/completions", &chat("qwen3")).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        c.calls("/api/chat"),
        5,
        "every request to where qwen3 is loaded"
    );
    assert_eq!(b.calls("/api/chat"), 0);
}

#[tokio::test]
async fn listings_are_the_union_of_the_backends_each_model_once_and_filtered() {
    let a = Fake::start(has(&["llama3.2"], &["llama3.2"])).await;
    let b = Fake::start(has(&["llama3.2", "qwen3"], &["llama3.2", "qwen3"])).await;
    let c = Fake::start(has(&["llava", "all-minilm"], &[])).await;
    let gw = Gateway::start("union", &[&a, &b, &c], &[], |config| {
        config.allowed_models = vec!["llama3.2".into(), "qwen3".into(), "llava".into()];
    })
    .await;
    let (status, body) = gw.get_json("/v1/models").await;
    assert_eq!(status, 200);
    let mut ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec!["llama3.2:latest", "llava:latest", "qwen3:latest"]);
    for path in ["/api/tags", "/models"] {
        let (status, body) = gw.get_json(path).await;
        assert_eq!(status, 200);
        let mut names: Vec<&str> = body["models"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["name"].as_str())
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            vec!["llama3.2:latest", "llava:latest", "qwen3:latest"],
            "{path}"
        );
    }
    let (status, body) = gw.get_json("/api/ps").await;
    assert_eq!(status, 200);
    let mut loaded: Vec<&str> = body["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    loaded.sort_unstable();
    assert_eq!(loaded, vec!["llama3.2:latest", "qwen3:latest"]);
    // A request without a model goes to a healthy backend.
    let (status, body) = gw.get_json("/api/version").await;
    assert_eq!(status, 200);
    assert!(body["version"].is_string());
}

#[tokio::test]
async fn traffic_moves_off_a_backend_down_at_start_and_one_killed_mid_run() {
    let logs = crate::operations::captured_logs();
    let a = Fake::down().await;
    let mut b = Fake::start(has(&["llama3.2"], &[])).await;
    let c = Fake::start(has(&["llama3.2"], &[])).await;
    let gw = Gateway::start("failover", &[&a, &b, &c], &[], |_| {}).await;
    assert!(!gw.healthy(0), "the backend down at start is known to be");
    let (status, _) = gw.get_json("/ready").await;
    assert_eq!(status, 200, "ready while a backend is healthy");
    for i in 0..10 {
        let response = gw
            .post("/v1/chat/completions", &chat("llama3.2"))
            .header("x-request-id", format!("failover-{i}"))
            .send()
            .await
            .unwrap();
        let (status, body) = read_json(response).await;
        assert_eq!(status, 200, "request {i}: {body}");
    }
    assert_eq!(b.calls("/api/chat") + c.calls("/api/chat"), 10);
    assert!(b.calls("/api/chat") >= 3 && c.calls("/api/chat") >= 3);
    let before = c.calls("/api/chat");
    b.kill().await;
    // The gateway has not noticed yet: the first request that tries B cannot connect and moves
    // on to C; no client sees an error.
    for i in 0..10 {
        let (status, body) = gw
            .post_json("/v1/chat/completions", &chat("llama3.2"))
            .await;
        assert_eq!(status, 200, "after the kill, request {i}: {body}");
        let (status, body) = gw.post_json("/chat", &json!({"model": "llama3.2", "stream": false, "messages": [{"role": "user", "content": "hi"}]})).await;
        assert_eq!(status, 200, "after the kill, /chat {i}: {body}");
    }
    assert_eq!(c.calls("/api/chat"), before + 20, "everything went to C");
    assert!(!gw.healthy(1), "the killed backend is out");
    let metrics = gw.metrics().await;
    let up = |name: &str| {
        series(
            &metrics,
            &format!("gateway_backend_up{{backend=\"{name}\"}}"),
        )
    };
    assert_eq!(up(&gw.names[0]), Some(0.0), "{metrics}");
    assert_eq!(up(&gw.names[1]), Some(0.0));
    assert_eq!(up(&gw.names[2]), Some(1.0));
    let connect_errors = series(
        &metrics,
        &format!(
            "gateway_backend_errors_total{{backend=\"{}\",kind=\"connect\"}}",
            gw.names[1]
        ),
    );
    // At most one request tried B after the kill (its failed connection took B out; the
    // watcher may have been first).
    assert!(
        connect_errors.unwrap_or(0.0) <= 1.0,
        "B is not tried once known down: {metrics}"
    );
    // The audit line names the backend that answered.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["request_id"] == "failover-0" && l["target"] == "audit")
        .unwrap_or_else(|| panic!("no audit line: {text}"));
    let backend = line["backend"].as_str().unwrap_or_default();
    assert!(
        backend == gw.names[1] || backend == gw.names[2],
        "audit names the backend: {line}"
    );
}

#[tokio::test]
async fn a_killed_backend_that_comes_back_gets_traffic_again() {
    let a = Fake::start(has(&["qwen3"], &[])).await;
    let mut b = Fake::start(has(&["llama3.2"], &[])).await;
    let c = Fake::start(has(&["llama3.2"], &[])).await;
    let gw = Gateway::start("revive", &[&a, &b, &c], &[], |_| {}).await;
    b.kill().await;
    for _ in 0..4 {
        let (status, body) = gw
            .post_json("/v1/chat/completions", &chat("llama3.2"))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert!(!gw.healthy(1));
    b.revive().await;
    // Probed with backoff (from a quarter of a second, doubling): back within a few seconds.
    gw.wait_health(1, true, Duration::from_secs(8)).await;
    for _ in 0..6 {
        let (status, body) = gw
            .post_json("/v1/chat/completions", &chat("llama3.2"))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert!(
        b.calls("/api/chat") >= 2,
        "the revived backend serves again: {} of 6",
        b.calls("/api/chat")
    );
}

#[tokio::test]
async fn a_stream_on_a_backend_that_dies_ends_with_the_error_event() {
    let slow = FakeConfig {
        chunk_gap: Duration::from_millis(50),
        ..has(&["bench"], &["bench"])
    };
    let a = Fake::start(has(&["llama3.2"], &[])).await;
    let mut b = Fake::start(slow.clone()).await;
    let mut c = Fake::start(slow).await;
    let gw = Gateway::start("dies", &[&a, &b, &c], &[], |_| {}).await;
    let long = |stream_body: &mut Value| {
        stream_body["stream"] = json!(true);
        stream_body["options"] = json!({"num_predict": 400});
    };
    // OpenAI surface: an error event, no [DONE].
    let mut body = json!({"model": "bench", "messages": [{"role": "user", "content": "go"}], "max_tokens": 400});
    long(&mut body);
    let response = gw.post("/v1/chat/completions", &body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut events = response.bytes_stream();
    let first = events.next().await.expect("a first chunk").expect("bytes");
    assert!(String::from_utf8_lossy(&first).starts_with("data:"));
    let serving = if b.calls("/api/chat") == 1 {
        &mut b
    } else {
        &mut c
    };
    serving.kill().await;
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        let mut text = String::new();
        while let Some(chunk) = events.next().await {
            match chunk {
                Ok(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => break,
            }
        }
        text
    })
    .await
    .expect("the stream ends, it does not hang");
    assert!(
        rest.contains("\"error\""),
        "ends with an error event: {rest}"
    );
    assert!(rest.contains("upstream_interrupted"), "{rest}");
    assert!(!rest.contains("[DONE]"), "{rest}");
    // Native surface: an {"error"} line last, on the backend left.
    let other = if b.running.is_some() { &mut b } else { &mut c };
    let native = json!({"model": "bench", "messages": [{"role": "user", "content": "go"}], "options": {"num_predict": 400}});
    let response = gw.post("/api/chat", &native).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut lines = response.bytes_stream();
    let _ = lines.next().await.expect("a first line");
    other.kill().await;
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        let mut text = String::new();
        while let Some(Ok(bytes)) = lines.next().await {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        text
    })
    .await
    .expect("the stream ends, it does not hang");
    let last: Value = serde_json::from_str(rest.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("last line is JSON: {rest}"));
    assert!(last["error"].is_string(), "{rest}");
}

#[tokio::test]
async fn a_key_with_one_queued_request_is_served_within_the_next_slots() {
    // Only A has `bench`, one request at a time, each taking about 60 ms.
    let slow = FakeConfig {
        first_token_delay: Duration::from_millis(60),
        ..has(&["bench"], &[])
    };
    let a = Fake::start(slow).await;
    let b = Fake::start(has(&["llama3.2"], &[])).await;
    let c = Fake::start(has(&["llama3.2"], &[])).await;
    let gw = Arc::new(Gateway::start("fair", &[&a, &b, &c], &[1, 0, 0], |_| {}).await);
    let request = |key: &'static str, text: String| {
        let gw = gw.clone();
        tokio::spawn(async move {
            let body = json!({"model": "bench", "messages": [{"role": "user", "content": text}]});
            let response = gw
                .client
                .post(gw.url("/v1/chat/completions"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        })
    };
    let many: Vec<_> = (0..50)
        .map(|i| request(KEY, format!("from-a-{i}")))
        .collect();
    let started = Instant::now();
    while gw.state.backends.queue_depth() < 45 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the requests queue"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen_before = a.calls("/api/chat");
    let one = request(KEY_B, "from-b".into());
    assert_eq!(one.await.unwrap(), 200);
    let order: Vec<String> = a
        .fake()
        .requests()
        .iter()
        .filter(|r| r.path == "/api/chat")
        .map(|r| {
            r.body["messages"][0]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let position = order
        .iter()
        .position(|t| t == "from-b")
        .expect("B was served");
    assert!(
        position <= seen_before + 2,
        "B was served at {position}, {seen_before} requests had reached the backend when it queued; order {order:?}"
    );
    for handle in many {
        assert_eq!(handle.await.unwrap(), 200, "every queued request is served");
    }
    let metrics = gw.metrics().await;
    assert!(metrics.contains("gateway_queue_wait_seconds"), "{metrics}");
    assert!(metrics.contains("gateway_queue_depth"), "{metrics}");
    // The help lines say what is counted: generations and embeddings only, one queue.
    let help = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# HELP {name} ")))
            .unwrap_or_else(|| panic!("no help for {name}: {metrics}"))
            .to_owned()
    };
    assert!(help("gateway_backend_in_flight").contains("Generation and embedding requests"));
    assert!(help("gateway_queue_depth").contains("not per backend"));
}

#[tokio::test]
async fn a_request_that_waits_past_the_queue_timeout_gets_429() {
    let slow = FakeConfig {
        first_token_delay: Duration::from_secs(2),
        ..has(&["bench"], &[])
    };
    let a = Fake::start(slow).await;
    let b = Fake::start(has(&["llama3.2"], &[])).await;
    let c = Fake::start(has(&["llama3.2"], &[])).await;
    let gw = Arc::new(
        Gateway::start("timeout", &[&a, &b, &c], &[1, 0, 0], |config| {
            config.queue_timeout = Duration::from_millis(300);
        })
        .await,
    );
    let holder = {
        let gw = gw.clone();
        tokio::spawn(async move { gw.post_json("/v1/chat/completions", &chat("bench")).await.0 })
    };
    let started = Instant::now();
    while gw.state.backends.all()[0].in_flight() == 0 {
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let asked = Instant::now();
    let response = gw
        .post("/v1/chat/completions", &chat("bench"))
        .send()
        .await
        .unwrap();
    let waited = asked.elapsed();
    assert_eq!(response.status(), 429);
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(retry_after.is_some_and(|s| s >= 1), "Retry-After");
    let (_, body) = read_json(response).await;
    assert_eq!(body["error"]["code"], "backends_busy", "{body}");
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(1500),
        "waited {waited:?}"
    );
    // The native surface says it in Ollama's shape.
    let response = gw.post("/api/chat", &chat("bench")).send().await.unwrap();
    assert_eq!(response.status(), 429);
    let (_, body) = read_json(response).await;
    assert!(
        body["error"].as_str().unwrap_or_default().contains("busy"),
        "{body}"
    );
    assert_eq!(
        holder.await.unwrap(),
        200,
        "the request holding the slot finishes"
    );
    let metrics = gw.metrics().await;
    assert!(
        series(&metrics, "gateway_queue_refused_total{reason=\"timeout\"}")
            .is_some_and(|n| n >= 2.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn administrative_requests_name_their_backend() {
    let a = Fake::start(has(&["llama3.2"], &[])).await;
    let b = Fake::start(has(&["qwen3"], &[])).await;
    let c = Fake::start(has(&["llava"], &[])).await;
    let gw = Gateway::start("admin", &[&a, &b, &c], &[], |config| {
        config.allow_admin = true
    })
    .await;
    let pull = json!({"model": "llama3.2", "stream": false});
    let response = gw
        .client
        .post(gw.url("/api/pull"))
        .bearer_auth("sk-ops")
        .json(&pull)
        .send()
        .await
        .unwrap();
    let (status, body) = read_json(response).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"].as_str().unwrap_or_default();
    for name in &gw.names {
        assert!(message.contains(name.as_str()), "lists {name}: {message}");
    }
    assert_eq!(
        a.calls("/api/pull") + b.calls("/api/pull") + c.calls("/api/pull"),
        0
    );
    let response = gw
        .client
        .post(gw.url("/api/pull"))
        .bearer_auth("sk-ops")
        .header("x-gateway-backend", "nosuch")
        .json(&pull)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let tags_before = b.calls("/api/tags");
    let response = gw
        .client
        .post(gw.url("/api/pull"))
        .bearer_auth("sk-ops")
        .header("x-gateway-backend", gw.names[1].as_str())
        .json(&pull)
        .send()
        .await
        .unwrap();
    let (status, body) = read_json(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        b.calls("/api/pull"),
        1,
        "the pull went to the backend named"
    );
    assert_eq!(a.calls("/api/pull") + c.calls("/api/pull"), 0);
    // Its models are listed again at once, not at the next refresh.
    let started = Instant::now();
    while b.calls("/api/tags") == tags_before {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "listed again after the pull"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn ready_needs_one_healthy_backend() {
    let mut a = Fake::start(has(&["llama3.2"], &[])).await;
    let b = Fake::down().await;
    let gw = Gateway::start("ready", &[&a, &b], &[], |_| {}).await;
    let (status, body) = gw.get_json("/ready").await;
    assert_eq!(status, 200, "{body}");
    a.kill().await;
    // The probe's answer is reused for about a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = gw.get_json("/ready").await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = gw
        .post_json("/v1/chat/completions", &chat("llama3.2"))
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream_unavailable");
    let text = body.to_string();
    assert!(
        !text.contains("127.0.0.1"),
        "never names a backend's address: {text}"
    );
}

/// Read what is left of a streamed body until it ends, at most `within`; `None` when it is
/// still open then.
async fn rest_of(response: reqwest::Response, within: Duration) -> Option<String> {
    let mut body = response.bytes_stream();
    tokio::time::timeout(within, async {
        let mut text = String::new();
        while let Some(Ok(bytes)) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        text
    })
    .await
    .ok()
}

#[tokio::test]
async fn streams_on_a_backend_that_hangs_end_once_it_is_taken_out() {
    // B freezes with its sockets open: no more lines, no answer to /api/version. Only the
    // health watcher can tell; the upstream timeout (an hour here) must not be what ends it.
    let slow = FakeConfig {
        chunk_gap: Duration::from_millis(50),
        ..has(&["bench"], &["bench"])
    };
    let a = Fake::start(has(&["llama3.2"], &[])).await;
    let b = Fake::start(slow).await;
    let gw = Gateway::start("hangs", &[&a, &b], &[], |config| {
        config.upstream_timeout = Duration::from_secs(3600);
    })
    .await;
    let openai = json!({"model": "bench", "stream": true, "max_tokens": 400, "messages": [{"role": "user", "content": "go"}]});
    let native = json!({"model": "bench", "options": {"num_predict": 400}, "messages": [{"role": "user", "content": "go"}]});
    let sse = gw
        .post("/v1/chat/completions", &openai)
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    let ndjson = gw.post("/api/chat", &native).send().await.unwrap();
    assert_eq!(ndjson.status(), 200);
    // A non-streamed answer waiting on B is cut short too.
    let mut whole = native.clone();
    whole["stream"] = json!(false);
    let waiting = gw.post("/api/chat", &whole).send();
    let waiting = tokio::spawn(waiting);
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.fake().hang();
    let hung_at = Instant::now();
    let (sse, ndjson) = tokio::join!(
        rest_of(sse, Duration::from_secs(15)),
        rest_of(ndjson, Duration::from_secs(15))
    );
    let ended_after = hung_at.elapsed();
    assert!(!gw.healthy(1), "B was taken out");
    // Probed every 2 s with a 2 s timeout: out within about 4 s, and the streams with it.
    assert!(
        ended_after < Duration::from_secs(7),
        "ended {ended_after:?} after B hung"
    );
    let sse = sse.expect("the SSE stream ends, it does not hang");
    assert!(sse.starts_with("data:"), "{sse}");
    assert!(sse.contains("upstream_interrupted"), "{sse}");
    assert!(!sse.contains("[DONE]"), "{sse}");
    let ndjson = ndjson.expect("the NDJSON stream ends, it does not hang");
    let last: Value = serde_json::from_str(ndjson.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("last line is JSON: {ndjson}"));
    assert!(last["error"].is_string(), "{ndjson}");
    assert!(last.get("done").is_none(), "{ndjson}");
    let waiting = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the non-streamed request ends too")
        .unwrap()
        .unwrap();
    assert_eq!(waiting.status(), 502);
    // A, which never hung, still serves.
    let (status, body) = gw
        .post_json("/v1/chat/completions", &chat("llama3.2"))
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Send chat requests for `model` until backend `index` is taken out (at most `tries`);
/// the statuses the clients got.
async fn until_out(gw: &Gateway, index: usize, model: &str, tries: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..tries {
        if !gw.healthy(index) {
            break;
        }
        let (status, _) = gw.post_json("/v1/chat/completions", &chat(model)).await;
        statuses.push(status);
    }
    assert!(!gw.healthy(index), "taken out after {statuses:?}");
    statuses
}

/// For `during`, every request goes to a backend other than `index`, which stays out.
async fn stays_out(gw: &Gateway, index: usize, fake: &Fake, during: Duration) {
    let calls = fake.calls("/api/chat");
    let until = Instant::now() + during;
    let mut sent = 0;
    while Instant::now() < until {
        let (status, body) = gw
            .post_json("/v1/chat/completions", &chat("llama3.2"))
            .await;
        assert_eq!(status, 200, "request {sent} while cooling down: {body}");
        assert!(!gw.healthy(index), "put back after {sent} requests");
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(fake.calls("/api/chat"), calls, "nothing went back to it");
}

#[tokio::test]
async fn a_backend_taken_out_by_5xx_stays_out_while_its_probe_answers() {
    let a = Fake::start(FakeConfig {
        failing: true,
        ..has(&["llama3.2"], &[])
    })
    .await;
    let b = Fake::start(has(&["llama3.2"], &[])).await;
    let gw = Gateway::start("cooldown5xx", &[&a, &b], &[], |_| {}).await;
    let statuses = until_out(&gw, 0, "llama3.2", 12).await;
    // The three 500s reached their clients (a request sent is never sent again).
    assert_eq!(
        statuses.iter().filter(|s| **s == 500).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(a.calls("/api/chat"), 3);
    // A answers /api/version all along; it stays out for its cooldown (10 s) anyway.
    stays_out(&gw, 0, &a, Duration::from_secs(5)).await;
    let metrics = gw.metrics().await;
    assert_eq!(
        series(
            &metrics,
            &format!("gateway_backend_up{{backend=\"{}\"}}", gw.names[0])
        ),
        Some(0.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn upstream_timeouts_take_a_backend_out_like_5xx() {
    let a = Fake::start(FakeConfig {
        first_token_delay: Duration::from_secs(5),
        ..has(&["llama3.2"], &[])
    })
    .await;
    let b = Fake::start(has(&["llama3.2"], &[])).await;
    let gw = Gateway::start("cooldownslow", &[&a, &b], &[], |config| {
        config.upstream_timeout = Duration::from_millis(400);
    })
    .await;
    let statuses = until_out(&gw, 0, "llama3.2", 12).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 504).count(),
        3,
        "{statuses:?}"
    );
    stays_out(&gw, 0, &a, Duration::from_secs(3)).await;
}

#[tokio::test]
async fn one_hung_backend_does_not_hold_the_listings() {
    let a = Fake::start(has(&["llama3.2"], &[])).await;
    let b = Fake::start(has(&["qwen3"], &[])).await;
    let gw = Gateway::start("listhang", &[&a, &b], &[], |config| {
        config.upstream_timeout = Duration::from_secs(3600);
    })
    .await;
    b.fake().hang();
    // Asked at once, before B's probe can fail (2 s timeout): B is still in and asked.
    let asked = Instant::now();
    let ((models_status, models), (tags_status, tags)) =
        tokio::join!(gw.get_json("/v1/models"), gw.get_json("/api/tags"));
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(4), "listings took {took:?}");
    assert_eq!(models_status, 200, "{models}");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .map(|d| d.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec!["llama3.2:latest"], "what answered: {models}");
    assert_eq!(tags_status, 200, "{tags}");
    assert_eq!(tags["models"].as_array().map(Vec::len), Some(1), "{tags}");
}

#[tokio::test]
async fn a_fixed_models_list_is_kept_when_no_backend_lists_the_model() {
    // A and B each serve only their fixed list (their fakes have more); C discovers its own.
    let a = Fake::start(has(&["llama3.2", "llava"], &[])).await;
    let b = Fake::start(has(&["qwen3", "llava"], &[])).await;
    let c = Fake::start(has(&["all-minilm"], &[])).await;
    let fixed = ["models = [\"llama3.2\"]", "models = [\"qwen3\"]"];
    let gw = Gateway::start_with("fixedlist", &[&a, &b], &[1, 1], &fixed, |_| {}).await;
    // llava: no fixed list has it. 404 at once, nothing sent, nothing queued.
    for model in ["llava", "nosuch"] {
        let asked = Instant::now();
        let (status, body) = gw.post_json("/v1/chat/completions", &chat(model)).await;
        assert_eq!(status, 404, "{model}: {body}");
        assert_eq!(body["error"]["code"], "model_not_found", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(model),
            "{body}"
        );
        assert!(asked.elapsed() < Duration::from_secs(1));
    }
    let (status, body) = gw.post_json("/api/chat", &chat("llava")).await;
    assert_eq!(status, 404, "native surface too: {body}");
    assert_eq!(
        a.calls("/api/chat") + b.calls("/api/chat"),
        0,
        "neither was asked"
    );
    assert_eq!(gw.state.backends.queue_depth(), 0);
    // The lists still route what they name.
    let (status, body) = gw.post_json("/v1/chat/completions", &chat("qwen3")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(b.calls("/api/chat"), 1);
    // Beside a backend without a fixed list, a model nobody lists goes to that one only (its
    // listing may be older than a pull), never to a fixed list that leaves it out.
    let gw = Gateway::start_with("fixedmix", &[&a, &c], &[], &fixed[..1], |_| {}).await;
    for _ in 0..4 {
        let (status, _) = gw.post_json("/v1/chat/completions", &chat("llava")).await;
        assert_eq!(status, 404, "C's own answer");
    }
    assert_eq!(a.calls("/api/chat"), 0, "A's list leaves llava out");
    assert_eq!(c.calls("/api/chat"), 4);
}

#[tokio::test]
async fn a_backend_that_comes_back_is_listed_again_at_once() {
    let a = Fake::start(has(&["llama3.2"], &[])).await;
    let mut b = Fake::start(has(&["llama3.2"], &[])).await;
    let gw = Gateway::start("relist", &[&a, &b], &[], |_| {}).await;
    // Listed at start and then by its watcher's first round: its next refresh is 5 s away.
    let started = Instant::now();
    while b.calls("/api/tags") < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "listed by its watcher"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let listed = Instant::now();
    b.kill().await;
    gw.wait_health(1, false, Duration::from_secs(5)).await;
    // It comes back with another model (pulled while it was away).
    b.config = has(&["qwen3"], &[]);
    b.revive().await;
    gw.wait_health(1, true, Duration::from_secs(5)).await;
    let back = Instant::now();
    assert!(
        back - listed < Duration::from_millis(3500),
        "back {:?} after its last listing: the 5 s refresh is not due yet",
        back - listed
    );
    while b.calls("/api/tags") == 0 {
        assert!(
            back.elapsed() < Duration::from_secs(1),
            "listed again when it came back, not at the next 5 s refresh"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..4 {
        let (status, body) = gw.post_json("/v1/chat/completions", &chat("qwen3")).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(b.calls("/api/chat"), 4, "qwen3 is known to be on B");
    assert_eq!(a.calls("/api/chat"), 0);
}

#[tokio::test]
async fn a_key_that_fills_the_queue_does_not_turn_another_key_away() {
    // Only A has `bench`, one request at a time, each about 300 ms; the queue holds four.
    let slow = FakeConfig {
        first_token_delay: Duration::from_millis(300),
        ..has(&["bench"], &[])
    };
    let a = Fake::start(slow).await;
    let b = Fake::start(has(&["llama3.2"], &[])).await;
    let gw = Arc::new(
        Gateway::start("admit", &[&a, &b], &[1, 0], |config| {
            config.queue_limit = 4;
        })
        .await,
    );
    let request = |key: &'static str, text: String| {
        let gw = gw.clone();
        tokio::spawn(async move {
            let body = json!({"model": "bench", "messages": [{"role": "user", "content": text}]});
            let response = gw
                .client
                .post(gw.url("/v1/chat/completions"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        })
    };
    // Key A: one request in the slot and four waiting: the queue is full.
    let many: Vec<_> = (0..5).map(|i| request(KEY, format!("a-{i}"))).collect();
    let started = Instant::now();
    while gw.state.backends.queue_depth() < 4 || gw.state.backends.all()[0].in_flight() < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the queue fills"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        request(KEY, "a-more".into()).await.unwrap(),
        429,
        "the key that fills the queue gets no more places"
    );
    // Key B's one request gets in (A's newest gives up its place) and is served.
    assert_eq!(request(KEY_B, "b".into()).await.unwrap(), 200);
    let mut statuses = Vec::new();
    for handle in many {
        statuses.push(handle.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        vec![200, 200, 200, 200, 429],
        "one of A's gave way"
    );
}
