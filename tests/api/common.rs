//! Start a fake Ollama and a gateway in front of it; small helpers to call and read them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use eventsource_stream::Eventsource;
use fake_ollama::{FakeConfig, FakeOllama};
use futures::StreamExt;
use ollama_gateway::config::{Config, Secret};
use ollama_gateway::state::AppState;
use ollama_gateway::usage::clock::{Clock, SystemClock};
use serde_json::Value;

/// The key every test gateway accepts.
pub const KEY: &str = "test-key-1";

/// Where the tests' files go: one folder under the system's temp dir, which `tests/run.sh`
/// removes when it ends (never inside the repository).
pub fn test_root() -> PathBuf {
    std::env::temp_dir().join("ollama-gateway-tests")
}

/// A fresh directory under [`test_root`].
pub fn temp_dir(what: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let dir = test_root().join(format!(
        "{what}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// URL of a new, empty database: an SQLite file in its own temp dir, or, when
/// `GATEWAY_TEST_POSTGRES` names a PostgreSQL server (`tests/run.sh` starts one and runs the
/// store's tests a second time that way), a new database on that server.
pub fn temp_db() -> String {
    match std::env::var("GATEWAY_TEST_POSTGRES") {
        Ok(server) if !server.is_empty() => temp_postgres_db(&server),
        _ => temp_sqlite_db(),
    }
}

/// `sqlite://` URL of a new database file in its own temp dir (for tests of SQLite itself: a
/// locked or unwritable file).
pub fn temp_sqlite_db() -> String {
    db_url(&temp_dir("db").join("gateway.db"))
}

/// A new database on the PostgreSQL server at `server` (a superuser URL), made with `psql`.
fn temp_postgres_db(server: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "gw_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let made = std::process::Command::new("psql")
        .arg(server)
        .args(["-qAtc", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("psql runs");
    assert!(
        made.status.success(),
        "CREATE DATABASE {name}: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
    format!("{base}/{name}")
}

/// `sqlite://` URL of a file.
pub fn db_url(path: &std::path::Path) -> String {
    format!("sqlite://{}", path.display())
}

/// A running gateway and its fake upstream.
pub struct Env {
    pub fake: FakeOllama,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// The gateway's state (its store, usage recorder and key map).
    pub state: AppState,
}

impl Env {
    /// Default settings, one key.
    pub async fn start() -> Self {
        Self::with(|_| {}).await
    }

    /// Settings adjusted by `configure`.
    pub async fn with(configure: impl FnOnce(&mut Config)) -> Self {
        Self::with_fake(FakeConfig::default(), configure).await
    }

    /// A fake with its own settings, and adjusted gateway settings.
    pub async fn with_fake(fake_config: FakeConfig, configure: impl FnOnce(&mut Config)) -> Self {
        Self::with_clock(fake_config, Arc::new(SystemClock), configure).await
    }

    /// Like [`with_fake`](Self::with_fake), serving on `listener` (for tests that must know
    /// the port before the gateway starts).
    pub async fn on(
        listener: tokio::net::TcpListener,
        fake_config: FakeConfig,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let fake = FakeOllama::start(fake_config)
            .await
            .expect("fake ollama starts");
        let mut config = test_config(&fake);
        configure(&mut config);
        Self::serve_on(listener, fake, config, Arc::new(SystemClock)).await
    }

    /// The gateway configured as by [`Env::with_fake`], counting quotas on `clock`.
    pub async fn with_clock(
        fake_config: FakeConfig,
        clock: Arc<dyn Clock>,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let fake = FakeOllama::start(fake_config)
            .await
            .expect("fake ollama starts");
        let mut config = test_config(&fake);
        configure(&mut config);
        Self::serve(fake, config, clock).await
    }

    /// Start a gateway with exactly `config` in front of `fake`.
    pub async fn serve(fake: FakeOllama, config: Config, clock: Arc<dyn Clock>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::serve_on(listener, fake, config, clock).await
    }

    /// [`serve`](Self::serve) on `listener`.
    pub async fn serve_on(
        listener: tokio::net::TcpListener,
        fake: FakeOllama,
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let gateway = ollama_gateway::build_with_clock(config, clock)
            .await
            .expect("gateway builds");
        let addr = listener.local_addr().expect("addr");
        let state = gateway.state.clone();
        tokio::spawn(ollama_gateway::server::run(
            listener,
            gateway.service,
            gateway.state,
            std::future::pending(),
        ));
        Self {
            fake,
            addr,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            state,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// GET with the key.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(KEY)
    }

    /// POST JSON with the key.
    pub fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(KEY).json(body)
    }

    /// POST and read a JSON answer: (status, body).
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        read_json(self.post(path, body).send().await.expect("request")).await
    }

    /// GET and read a JSON answer: (status, body).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        read_json(self.get(path).send().await.expect("request")).await
    }

    /// How many requests the upstream received on `path`.
    pub fn upstream_calls(&self, path: &str) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.path.starts_with(path))
            .count()
    }

    /// The last request body the upstream received on `path`.
    pub fn last_upstream_body(&self, path: &str) -> Value {
        self.fake
            .requests()
            .iter()
            .rev()
            .find(|r| r.path.starts_with(path))
            .map(|r| r.body.clone())
            .unwrap_or(Value::Null)
    }
}

/// The settings every test gateway starts from: one key, in front of `fake`, with its own
/// database in a temp dir.
pub fn test_config(fake: &FakeOllama) -> Config {
    let mut config = Config::defaults();
    config.ollama_url = fake.url();
    config.api_keys = vec![Secret::new(KEY)];
    config.ollama_api_key = None;
    config.config_file = None;
    config.allowed_models = Vec::new();
    config.cors_origins = Vec::new();
    config.db = temp_db();
    config
}

/// Status and parsed JSON body.
pub async fn read_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("not JSON (status {status}): {text}"));
    (status, body)
}

/// SSE events of a response, read with a real SSE parser: the `data` of each event.
pub async fn sse_data(response: reqwest::Response) -> Vec<String> {
    assert_eq!(response.status(), 200, "stream status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "content type {content_type}"
    );
    response
        .bytes_stream()
        .eventsource()
        .map(|event| event.expect("well-formed SSE").data)
        .collect()
        .await
}

/// SSE events as JSON, with the final `[DONE]` (if any) reported separately.
pub async fn sse_json(response: reqwest::Response) -> (Vec<Value>, bool) {
    let data = sse_data(response).await;
    let done = data.last().is_some_and(|d| d == "[DONE]");
    let events = data
        .iter()
        .filter(|d| d.as_str() != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap_or_else(|_| panic!("event is not JSON: {d}")))
        .collect();
    assert_eq!(
        data.iter().filter(|d| d.as_str() == "[DONE]").count(),
        usize::from(done),
        "[DONE] only last"
    );
    (events, done)
}

/// NDJSON lines of a response, parsed.
pub async fn ndjson(response: reqwest::Response) -> Vec<Value> {
    let text = response.text().await.expect("body");
    assert!(text.ends_with('\n'), "NDJSON ends with a newline: {text:?}");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("line is not JSON: {l}")))
        .collect()
}

/// A chat request for `model` with one user message.
pub fn chat(model: &str) -> Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "Why is the sky blue?"}]})
}

/// The concatenated `delta.content` of chat chunks.
pub fn streamed_text(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// Assert no string in `body` names the upstream's address.
pub fn assert_no_upstream_address(env: &Env, body: &Value) {
    let text = body.to_string();
    let port = env.fake.addr().port().to_string();
    assert!(
        !text.contains(&port) && !text.contains("127.0.0.1") && !text.contains("localhost"),
        "leaks the upstream: {text}"
    );
}

/// The lines of a fixture file, parsed.
pub fn fixture_lines(name: &str) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("fixture line is JSON"))
        .collect()
}

/// The text a chat fixture produces (its `message.content` concatenated).
pub fn fixture_text(name: &str) -> String {
    fixture_lines(name)
        .iter()
        .filter_map(|l| l["message"]["content"].as_str())
        .collect()
}

/// Named SSE events of a response, read with a real SSE parser: (event name, JSON data).
pub async fn named_events(response: reqwest::Response) -> Vec<(String, Value)> {
    sse_events(response)
        .await
        .into_iter()
        .map(|(name, data)| {
            let value = serde_json::from_str(&data)
                .unwrap_or_else(|_| panic!("event {name} is not JSON: {data}"));
            (name, value)
        })
        .collect()
}

/// SSE events of a response: (event name, raw data).
pub async fn sse_events(response: reqwest::Response) -> Vec<(String, String)> {
    assert_eq!(response.status(), 200, "stream status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "content type {content_type}"
    );
    response
        .bytes_stream()
        .eventsource()
        .map(|event| {
            let event = event.expect("well-formed SSE");
            (event.event, event.data)
        })
        .collect()
        .await
}

/// The concatenated `message.<field>` of a chat fixture (`content` or `thinking`).
pub fn fixture_field(name: &str, field: &str) -> String {
    fixture_lines(name)
        .iter()
        .filter_map(|l| l["message"][field].as_str())
        .collect()
}

/// A fresh directory under the system's temp dir, removed (with everything in it) when dropped.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// `{tag}-{uuid}` under [`test_root`].
    pub fn new(tag: &str) -> Self {
        let dir = test_root().join(format!("{tag}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The database's write lock, held from another connection until [`Held::release`] or drop.
pub enum Held {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Held {
    pub async fn release(self) {
        match self {
            Held::Sqlite(mut conn) => drop(sqlx::query("ROLLBACK").execute(&mut conn).await),
            Held::Postgres(mut conn) => drop(sqlx::query("ROLLBACK").execute(&mut conn).await),
        }
    }
}

/// Take every table of the gateway's database for this test: SQLite's exclusive transaction,
/// or PostgreSQL's exclusive table locks (the gateway's statements then wait its lock timeout
/// and fail, as SQLite's wait its busy timeout).
pub async fn lock(db: &str) -> Held {
    if db.starts_with("postgres") {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(db)
            .await
            .unwrap();
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        sqlx::query(
            "LOCK TABLE meta, users, keys, usage, usage_hourly, usage_daily, usage_stats, responses, console_sessions IN ACCESS EXCLUSIVE MODE",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        return Held::Postgres(conn);
    }
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(db)
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut conn)
        .await
        .unwrap();
    Held::Sqlite(conn)
}
