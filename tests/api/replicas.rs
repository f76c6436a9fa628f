//! Two gateway replicas on one database (PostgreSQL when `GATEWAY_TEST_POSTGRES` is set, else
//! one SQLite file) and one real Redis (`GATEWAY_TEST_REDIS`, started by
//! `tests/support/redis.sh`): the rate limits hold across both, a revoked key is refused by
//! both, and a Redis outage is handled as `GATEWAY_REDIS_FAILURE` says. The outage tests start
//! their own `redis-server`, since they kill it.
//!
//! Without `GATEWAY_TEST_REDIS` every test here prints that it is skipped and passes.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fake_ollama::FakeConfig;
use futures::StreamExt;
use ollama_gateway::config::{RedisFailure, Secret};
use serde_json::{Value, json};

use super::admin::{admin, admin_key};
use super::common::{Env, TempDir, chat, read_json, temp_db};

/// The test Redis, or `None` (and a line saying the test is skipped).
fn test_redis(test: &str) -> Option<String> {
    match std::env::var("GATEWAY_TEST_REDIS") {
        Ok(url) if !url.is_empty() => {
            // Each test its own logical database, so parallel tests never share a counter.
            static NEXT: AtomicUsize = AtomicUsize::new(1);
            Some(format!(
                "{url}/{}",
                NEXT.fetch_add(1, Ordering::Relaxed) % 16
            ))
        }
        _ => {
            println!(
                "SKIPPED {test}: GATEWAY_TEST_REDIS is not set (tests/run.sh starts redis-server \
                 with tests/support/redis.sh for the replicas suite)"
            );
            None
        }
    }
}

/// A `redis-server` of the test's own, which it may kill and start again on the same port.
struct RedisServer {
    port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl RedisServer {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self {
            port,
            dir: TempDir::new("redis"),
            child: None,
        };
        server.restart();
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start it (again) on its port, and wait until it answers.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts (Debian package redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            assert!(Instant::now() < deadline, "redis-server did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 5];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG"
    }

    /// Kill it (SIGKILL: nothing is closed politely).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Send it a signal (`STOP`, `CONT`).
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}

/// Two gateways on one database and one Redis.
struct Replicas {
    one: Env,
    two: Env,
    /// An admin key (stored, so both know it).
    root: String,
}

impl Replicas {
    /// With the default `GATEWAY_REDIS_TIMEOUT` (250 ms).
    async fn start(redis: &str, failure: RedisFailure) -> Self {
        Self::with_timeout(redis, failure, Duration::from_millis(250)).await
    }

    async fn with_timeout(redis: &str, failure: RedisFailure, timeout: Duration) -> Self {
        Self::with(redis, failure, timeout, FakeConfig::default).await
    }

    /// Each replica in front of its own fake made with `fake`.
    async fn with(
        redis: &str,
        failure: RedisFailure,
        timeout: Duration,
        fake: impl Fn() -> FakeConfig,
    ) -> Self {
        let db = temp_db();
        let configure = |c: &mut ollama_gateway::config::Config| {
            c.db = db.clone();
            c.redis_url = Some(Secret::new(redis));
            c.redis_failure = failure;
            c.redis_timeout = timeout;
            c.metrics_open = true;
        };
        let one = Env::with_fake(fake(), &configure).await;
        let two = Env::with_fake(fake(), &configure).await;
        let root = admin_key(&one).await;
        ollama_gateway::gate::reload::reload(&two.state)
            .await
            .unwrap();
        Self { one, two, root }
    }

    fn both(&self) -> [&Env; 2] {
        [&self.one, &self.two]
    }

    /// Make a stored key through replica one with `settings`, and wait until replica two
    /// knows it (within a second, by the change counter).
    async fn key(&self, settings: Value) -> (String, String) {
        let mut body = json!({"name": format!("k-{}", uuid::Uuid::new_v4().simple())});
        body.as_object_mut()
            .unwrap()
            .extend(settings.as_object().unwrap().clone());
        let (status, created) =
            admin(&self.one, &self.root, "POST", "/admin/api/keys", Some(body)).await;
        assert_eq!(status, 201, "{created}");
        let key = created["key"].as_str().unwrap().to_owned();
        let id = created["id"].as_str().unwrap().to_owned();
        let started = Instant::now();
        while self.two.state.gate.keys.load().stored_caller(&id).is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "replica two does not know the new key after a second"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (key, id)
    }

    /// Wait until both replicas report Redis `up` (or `down`) on `/ready`.
    async fn wait_redis(&self, word: &str, within: Duration) {
        let started = Instant::now();
        for env in self.both() {
            loop {
                let (_, body) =
                    read_json(env.client.get(env.url("/ready")).send().await.unwrap()).await;
                if body["redis"] == word {
                    break;
                }
                assert!(
                    started.elapsed() < within,
                    "Redis is not reported {word} within {within:?}: {body}"
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }
}

/// One request's outcome.
#[derive(Debug)]
struct Outcome {
    status: u16,
    retry_after: Option<u64>,
    took: Duration,
    body: Value,
}

async fn send(request: reqwest::RequestBuilder) -> Outcome {
    let started = Instant::now();
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let text = response.text().await.unwrap();
    Outcome {
        status,
        retry_after,
        took: started.elapsed(),
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// A non-streamed chat completion with `key` on `env`.
async fn chat_with(env: &Env, key: &str) -> Outcome {
    send(
        env.client
            .post(env.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&chat("llama3.2")),
    )
    .await
}

/// `count` chats with `key`, `clients` at a time, alternating between the replicas; the
/// outcomes and the time from the first request sent to the last answer.
async fn burst_of(
    replicas: &Replicas,
    key: &str,
    count: usize,
    clients: usize,
) -> (Vec<Outcome>, Duration) {
    let started = Instant::now();
    let outcomes = futures::stream::iter(0..count)
        .map(|i| chat_with(replicas.both()[i % 2], key))
        .buffer_unordered(clients)
        .collect::<Vec<_>>()
        .await;
    (outcomes, started.elapsed())
}

/// Assert the outcomes of requests against a limit of `per_minute` with `burst` over `elapsed`
/// (shared by every replica): admitted <= burst + rate x elapsed and >= burst, every refusal
/// a 429 with Retry-After. Returns how many were admitted.
fn assert_shared_limit(
    outcomes: &[Outcome],
    elapsed: Duration,
    per_minute: u32,
    burst: u32,
) -> usize {
    let admitted = outcomes.iter().filter(|o| o.status == 200).count();
    for o in outcomes.iter().filter(|o| o.status != 200) {
        assert_eq!(o.status, 429, "{o:?}");
        assert!(
            o.retry_after.is_some_and(|s| s >= 1),
            "429 without Retry-After: {o:?}"
        );
        assert_eq!(o.body["error"]["code"], "rate_limit_exceeded", "{o:?}");
    }
    let bound = f64::from(burst) + f64::from(per_minute) / 60.0 * elapsed.as_secs_f64();
    assert!(
        admitted as f64 <= bound.floor(),
        "{admitted} admitted in {elapsed:?}: more than burst + rate x elapsed = {bound:.1}"
    );
    assert!(
        admitted >= burst as usize,
        "{admitted} admitted: fewer than the burst of {burst}"
    );
    admitted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limit_holds_across_two_replicas_under_200_concurrent_clients() {
    let Some(redis) = test_redis("a_rate_limit_holds_across_two_replicas") else {
        return;
    };
    // 200 clients and two gateways in one test process on a small, busy machine: a Redis
    // call may wait for a thread longer than the default 250 ms. This test is about the limit,
    // not outages (those are below), so it gives Redis a second.
    let replicas =
        Replicas::with_timeout(&redis, RedisFailure::Closed, Duration::from_secs(1)).await;
    let (key, _) = replicas
        .key(json!({"rate_limit": 60, "burst": 10, "max_concurrent": 0}))
        .await;
    let (outcomes, elapsed) = burst_of(&replicas, &key, 1000, 200).await;
    assert_eq!(outcomes.len(), 1000);
    let admitted = assert_shared_limit(&outcomes, elapsed, 60, 10);
    println!("1000 requests over two replicas in {elapsed:?}: {admitted} admitted");
    // Each replica alone would have admitted its own burst of 10: 20 in all.
    assert!(admitted < 20);
    let (one, two) = (
        replicas.one.upstream_calls("/api/chat"),
        replicas.two.upstream_calls("/api/chat"),
    );
    assert_eq!(one + two, admitted);
    assert!(
        one > 0 && two > 0,
        "both replicas admitted some: {one} and {two}"
    );
}

#[tokio::test]
async fn a_key_revoked_on_one_replica_is_refused_by_the_other_within_a_second() {
    let Some(redis) = test_redis("a_key_revoked_on_one_replica") else {
        return;
    };
    let replicas = Replicas::start(&redis, RedisFailure::Closed).await;
    let (key, id) = replicas.key(json!({})).await;
    assert_eq!(chat_with(&replicas.two, &key).await.status, 200);
    let (status, _) = admin(
        &replicas.one,
        &replicas.root,
        "DELETE",
        &format!("/admin/api/keys/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        chat_with(&replicas.one, &key).await.status,
        401,
        "at once where revoked"
    );
    let revoked = Instant::now();
    loop {
        let outcome = chat_with(&replicas.two, &key).await;
        if outcome.status == 401 {
            assert_eq!(outcome.body["error"]["message"], "API key has been revoked");
            break;
        }
        assert_eq!(outcome.status, 200, "{outcome:?}");
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "replica two still admits a revoked key after a second"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "revoked key refused by replica two after {:?}",
        revoked.elapsed()
    );
}

/// The value of a metric (summed over its label sets) in `/metrics` of `env`.
async fn metric(env: &Env, name: &str) -> f64 {
    let text = env
        .client
        .get(env.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with(&format!("{name}_")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// While Redis is stopped or gone with `closed`: every limited request is a quick 503
/// `limits_unavailable` with Retry-After, in each surface's shape, and `/ready` says so.
async fn assert_closed_while_down(replicas: &Replicas, key: &str) {
    for env in replicas.both() {
        for _ in 0..5 {
            let o = chat_with(env, key).await;
            assert!(
                o.took < Duration::from_secs(1),
                "a request took {:?}",
                o.took
            );
            assert_eq!(o.status, 503, "{o:?}");
            assert_eq!(o.retry_after, Some(1), "{o:?}");
            assert_eq!(o.body["error"]["code"], "limits_unavailable", "{o:?}");
        }
        let anthropic = send(
            env.client
                .post(env.url("/v1/messages"))
                .header("x-api-key", key)
                .json(&json!({"model": "llama3.2", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})),
        )
        .await;
        assert_eq!(anthropic.status, 503, "{anthropic:?}");
        assert_eq!(anthropic.body["type"], "error");
        assert_eq!(anthropic.body["error"]["type"], "overloaded_error");
        let ollama = send(
            env.client
                .post(env.url("/api/chat"))
                .bearer_auth(key)
                .json(&chat("llama3.2")),
        )
        .await;
        assert_eq!(ollama.status, 503, "{ollama:?}");
        assert!(
            ollama.body["error"]
                .as_str()
                .is_some_and(|m| m.contains("limits are unavailable")),
            "{ollama:?}"
        );
        let ready = env.client.get(env.url("/ready")).send().await.unwrap();
        assert_eq!(ready.status(), 503);
        let (_, body) = read_json(ready).await;
        assert_eq!(body["redis"], "down");
        assert_eq!(body["status"], "unavailable");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_refuses_with_503_while_redis_is_stopped_or_gone_and_recovers_without_restart() {
    if test_redis("closed_refuses_with_503_while_redis_is_down").is_none() {
        return;
    }
    let mut server = RedisServer::start();
    let replicas = Replicas::start(&server.url(), RedisFailure::Closed).await;
    replicas.wait_redis("up", Duration::from_secs(3)).await;
    let (key, _) = replicas
        .key(json!({"rate_limit": 60, "burst": 10, "max_concurrent": 0}))
        .await;
    let (outcomes, elapsed) = burst_of(&replicas, &key, 30, 10).await;
    assert_shared_limit(&outcomes, elapsed, 60, 10);
    let errors_before = metric(&replicas.one, "gateway_redis_errors_total").await;

    // Hung, not gone: the calls time out (GATEWAY_REDIS_TIMEOUT, 250 ms by default).
    server.signal("STOP");
    let first = chat_with(&replicas.one, &key).await;
    assert_eq!(first.status, 503, "{first:?}");
    assert!(first.took < Duration::from_secs(1), "took {:?}", first.took);
    let first = chat_with(&replicas.two, &key).await;
    assert_eq!(first.status, 503, "{first:?}");
    assert!(first.took < Duration::from_secs(1), "took {:?}", first.took);
    // A slow call fails only itself; the ping that follows it finds Redis gone.
    replicas.wait_redis("down", Duration::from_secs(3)).await;
    assert_closed_while_down(&replicas, &key).await;
    server.signal("CONT");
    replicas.wait_redis("up", Duration::from_secs(5)).await;
    assert!(metric(&replicas.one, "gateway_redis_errors_total").await > errors_before);
    for env in replicas.both() {
        let o = chat_with(env, &key).await;
        assert!(o.status == 200 || o.status == 429, "limited again: {o:?}");
    }

    // Gone: the connection breaks, and every request is refused at once.
    server.kill();
    let started = Instant::now();
    let mut gone = 0;
    while gone < 2 {
        let o = chat_with(replicas.both()[gone], &key).await;
        assert!(
            o.took < Duration::from_secs(1),
            "a request took {:?}",
            o.took
        );
        if o.status == 503 {
            gone += 1;
        } else {
            assert_eq!(o.status, 429, "{o:?}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "Redis not noticed gone"
        );
    }
    assert_closed_while_down(&replicas, &key).await;

    // Back on the same port (empty: nothing was saved): shared limiting works again.
    server.restart();
    replicas.wait_redis("up", Duration::from_secs(3)).await;
    let (outcomes, elapsed) = burst_of(&replicas, &key, 40, 10).await;
    let admitted = assert_shared_limit(&outcomes, elapsed, 60, 10);
    assert!(admitted < 20, "shared again, not per replica: {admitted}");
    let text = replicas
        .one
        .client
        .get(replicas.one.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("gateway_redis_up "), "the gauge is exported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_limits_in_process_while_redis_is_gone_and_shares_again_when_it_is_back() {
    if test_redis("open_limits_in_process_while_redis_is_gone").is_none() {
        return;
    }
    let mut server = RedisServer::start();
    let replicas = Replicas::start(&server.url(), RedisFailure::Open).await;
    replicas.wait_redis("up", Duration::from_secs(3)).await;
    let (key, _) = replicas
        .key(json!({"rate_limit": 60, "burst": 10, "max_concurrent": 0}))
        .await;
    let (outcomes, elapsed) = burst_of(&replicas, &key, 30, 10).await;
    let admitted = assert_shared_limit(&outcomes, elapsed, 60, 10);
    assert!(admitted < 20);

    server.kill();
    replicas.wait_redis("down", Duration::from_secs(3)).await;
    let ready = replicas
        .one
        .client
        .get(replicas.one.url("/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "open: still ready without Redis");
    // Each replica limits on its own: its own burst of 10, nothing shared, nothing hung.
    let (outcomes, elapsed) = burst_of(&replicas, &key, 40, 10).await;
    for o in &outcomes {
        assert!(
            o.took < Duration::from_secs(1),
            "a request took {:?}",
            o.took
        );
        assert!(o.status == 200 || o.status == 429, "{o:?}");
    }
    let admitted = outcomes.iter().filter(|o| o.status == 200).count();
    let per_replica = 10.0 + elapsed.as_secs_f64();
    assert!(
        admitted >= 11 && admitted as f64 <= 2.0 * per_replica,
        "{admitted} admitted in {elapsed:?} with two in-process limits"
    );

    server.restart();
    replicas.wait_redis("up", Duration::from_secs(3)).await;
    let (outcomes, elapsed) = burst_of(&replicas, &key, 40, 10).await;
    let admitted = assert_shared_limit(&outcomes, elapsed, 60, 10);
    assert!(admitted < 20, "shared again: {admitted}");
}

/// A streamed chat with `key` on `env`: its status and Retry-After, read to the end.
async fn stream_with(env: &Env, key: &str) -> Outcome {
    let mut body = chat("llama3.2");
    body["stream"] = json!(true);
    send(
        env.client
            .post(env.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrency_cap_holds_across_two_replicas_under_50_concurrent_streams() {
    let Some(redis) = test_redis("a_concurrency_cap_holds_across_two_replicas") else {
        return;
    };
    // Every stream holds its place for at least 3 s: far longer than it takes to send all 50.
    let slow = || FakeConfig {
        first_token_delay: Duration::from_secs(3),
        chunk_gap: Duration::from_millis(20),
        ..FakeConfig::default()
    };
    let replicas = Replicas::with(&redis, RedisFailure::Closed, Duration::from_secs(1), slow).await;
    let (key, id) = replicas
        .key(json!({"rate_limit": 0, "max_concurrent": 4}))
        .await;
    let started = Instant::now();
    let mut streams = Vec::new();
    for i in 0..50 {
        let env = replicas.both()[i % 2];
        let key = key.clone();
        streams.push(async move {
            let outcome = stream_with(env, &key).await;
            (outcome, started.elapsed())
        });
    }
    let outcomes = futures::future::join_all(streams).await;
    let admitted: Vec<_> = outcomes.iter().filter(|(o, _)| o.status == 200).collect();
    let refused: Vec<_> = outcomes.iter().filter(|(o, _)| o.status != 200).collect();
    for (o, _) in &refused {
        assert_eq!(o.status, 429, "{o:?}");
        assert_eq!(o.retry_after, Some(1), "{o:?}");
        assert_eq!(o.body["error"]["code"], "rate_limit_exceeded", "{o:?}");
    }
    let last_refusal = refused.iter().map(|(_, at)| *at).max().unwrap_or_default();
    assert!(
        last_refusal < Duration::from_secs(3),
        "every request was decided while the first streams still ran ({last_refusal:?})"
    );
    assert_eq!(
        admitted.len(),
        4,
        "4 streams at once across both replicas (each alone would admit 4)"
    );
    println!(
        "50 concurrent streams over two replicas: {} admitted, {} refused within {last_refusal:?}",
        admitted.len(),
        refused.len()
    );

    // Finished streams give their places back: both replicas admit again.
    let started = Instant::now();
    for env in replicas.both() {
        loop {
            let o = stream_with(env, &key).await;
            if o.status == 200 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "{o:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // A replica that died with requests in progress left leases behind: they expire.
    let client = redis::Client::open(redis.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let (secs, micros): (u64, u64) = redis::cmd("TIME")
        .query_async(&mut connection)
        .await
        .unwrap();
    let expires = secs * 1000 + micros / 1000 + 1500;
    let set = format!("ollama-gateway:leases:key:{id}");
    for ghost in 0..4 {
        let _: i64 = redis::cmd("ZADD")
            .arg(&set)
            .arg(expires)
            .arg(format!("ghost-{ghost}"))
            .query_async(&mut connection)
            .await
            .unwrap();
    }
    let blocked = chat_with(&replicas.one, &key).await;
    assert_eq!(
        blocked.status, 429,
        "four leases of a dead replica: {blocked:?}"
    );
    let blocked_at = Instant::now();
    loop {
        let o = chat_with(&replicas.two, &key).await;
        if o.status == 200 {
            break;
        }
        assert_eq!(o.status, 429, "{o:?}");
        assert!(
            blocked_at.elapsed() < Duration::from_secs(5),
            "the dead replica's leases do not expire"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_longer_than_a_lease_keeps_its_place_by_renewing_it() {
    let Some(redis) = test_redis("a_stream_longer_than_a_lease_keeps_its_place") else {
        return;
    };
    // Seven lines two seconds apart: about 14 s, past the 10 s a lease lasts unrenewed.
    let slow = || FakeConfig {
        chunk_gap: Duration::from_secs(2),
        ..FakeConfig::default()
    };
    let replicas = Replicas::with(&redis, RedisFailure::Closed, Duration::from_secs(1), slow).await;
    let (key, _) = replicas
        .key(json!({"rate_limit": 0, "max_concurrent": 1}))
        .await;
    let long = tokio::spawn({
        let url = replicas.one.url("/v1/chat/completions");
        let client = replicas.one.client.clone();
        let key = key.clone();
        async move {
            let mut body = chat("llama3.2");
            body["stream"] = json!(true);
            let started = Instant::now();
            let response = client
                .post(url)
                .bearer_auth(&key)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.bytes().await.unwrap();
            started.elapsed()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        chat_with(&replicas.two, &key).await.status,
        429,
        "the place is taken"
    );
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(!long.is_finished(), "the stream still runs");
    let o = chat_with(&replicas.two, &key).await;
    assert_eq!(
        o.status, 429,
        "still taken after the lease time, renewed: {o:?}"
    );
    let took = long.await.unwrap();
    assert!(took > Duration::from_secs(11), "{took:?}");
    let started = Instant::now();
    while chat_with(&replicas.two, &key).await.status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the place is given back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_token_quota_holds_across_two_replicas() {
    if test_redis("a_daily_token_quota_holds_across_two_replicas").is_none() {
        return;
    }
    let mut server = RedisServer::start();
    let replicas = Replicas::start(&server.url(), RedisFailure::Closed).await;
    // One chat is 41 tokens (31 prompt + 10 completion): the third crosses 100.
    let (key, _) = replicas
        .key(json!({"rate_limit": 0, "daily_token_quota": 100}))
        .await;
    let mut admitted = 0;
    let mut refused = None;
    for i in 0..8 {
        let env = replicas.both()[i % 2];
        // The tokens of the last answer are counted in the background: give them a moment.
        let o = chat_with(env, &key).await;
        if o.status == 200 {
            admitted += 1;
            assert_eq!(o.body["usage"]["total_tokens"], 41, "{o:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        refused = Some(o);
        break;
    }
    let refused = refused.expect("the quota is spent");
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(
        refused.body["error"]["code"], "quota_exceeded",
        "{refused:?}"
    );
    assert!(refused.retry_after.is_some_and(|s| s >= 1), "{refused:?}");
    assert_eq!(
        admitted, 3,
        "41 + 41 + 41 tokens over both replicas spend a quota of 100 (each alone would admit 3)"
    );
    for env in replicas.both() {
        let o = chat_with(env, &key).await;
        assert_eq!(o.status, 429, "spent on both replicas: {o:?}");
    }

    // Redis restarts empty: the counters start again from the database (usage is written
    // within a second), not from zero.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    replicas.wait_redis("down", Duration::from_secs(3)).await;
    server.restart();
    replicas.wait_redis("up", Duration::from_secs(5)).await;
    for env in replicas.both() {
        let o = chat_with(env, &key).await;
        assert_eq!(o.status, 429, "still spent after a Redis restart: {o:?}");
        assert_eq!(o.body["error"]["code"], "quota_exceeded", "{o:?}");
    }
}
