//! Faults of a PostgreSQL server under a running gateway. Each test starts a server of its own
//! (tests/support/postgres.sh), so stopping it disturbs no other test. They run in the
//! PostgreSQL pass of tests/run.sh (GATEWAY_TEST_POSTGRES set); without it they say so and pass
//! nothing off as tested.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use super::admin::{admin, admin_key, chat_status};
use super::common::{Env, KEY};

/// A PostgreSQL server of this test's own.
struct Server {
    dir: String,
    port: String,
}

/// Run `script` with tests/support/postgres.sh sourced (and `PG_DIR`/`PG_PORT` of `server`).
fn postgres_sh(server: Option<&Server>, script: &str) -> String {
    let vars = server.map_or(String::new(), |s| {
        format!("PG_DIR='{}'; PG_PORT='{}'; ", s.dir, s.port)
    });
    let out = Command::new("bash")
        .args([
            "-c",
            &format!("source tests/support/postgres.sh && {vars}{script}"),
        ])
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Server {
    fn start() -> Self {
        let out = postgres_sh(None, "start_postgres && echo \"$PG_DIR $PG_PORT\"");
        let (dir, port) = out.split_once(' ').expect("dir and port");
        Server {
            dir: dir.to_owned(),
            port: port.to_owned(),
        }
    }

    fn url(&self) -> String {
        format!("postgres://gateway@127.0.0.1:{}/postgres", self.port)
    }

    fn pause(&self) {
        postgres_sh(Some(self), "pause_postgres");
    }

    fn resume(&self) {
        postgres_sh(Some(self), "resume_postgres");
    }

    fn count(&self, sql: &str) -> u64 {
        let out = Command::new("psql")
            .args([&self.url(), "-qAtc", sql])
            .output()
            .expect("psql runs");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .args([
                "-c",
                &format!(
                    "source tests/support/postgres.sh && PG_DIR='{}' && stop_postgres",
                    self.dir
                ),
            ])
            .status();
    }
}

fn postgres_available() -> bool {
    if std::env::var("GATEWAY_TEST_POSTGRES").is_ok_and(|v| !v.is_empty()) {
        return true;
    }
    eprintln!("not run: the PostgreSQL pass of tests/run.sh runs this (GATEWAY_TEST_POSTGRES)");
    false
}

/// Requests made while `count` succeed at once, as when the database answers.
async fn serve_quickly(env: &Env, keys: &[&str], count: usize) {
    for _ in 0..count {
        for key in keys {
            let started = Instant::now();
            assert_eq!(chat_status(env, key).await, 200);
            assert!(
                started.elapsed() < Duration::from_millis(800),
                "a request waited on the database: {:?}",
                started.elapsed()
            );
        }
    }
}

/// The server is stopped (its sessions cut) and started again while requests come in: every
/// request is served without waiting, admin writes answer 503 meanwhile, and every request's
/// usage record is in the database afterwards.
#[tokio::test]
async fn a_restarted_server_serves_every_request_and_loses_no_usage() {
    if !postgres_available() {
        return;
    }
    let server = Server::start();
    let env = Env::with(|c| c.db = server.url()).await;
    let root = admin_key(&env).await;
    serve_quickly(&env, &[KEY, &root], 10).await;

    server.pause();
    serve_quickly(&env, &[KEY, &root], 15).await;
    let (status, body) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "while-down"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (503, json!("store_unavailable")),
        "{body}"
    );
    let ready = env.get("/health").send().await.expect("health answers");
    assert_eq!(ready.status(), 200, "the gateway itself stays up");

    server.resume();
    serve_quickly(&env, &[KEY, &root], 5).await;
    let started = Instant::now();
    loop {
        let (status, _) = admin(
            &env,
            &root,
            "POST",
            "/admin/api/keys",
            Some(json!({"name": "after-restart"})),
        )
        .await;
        if status == 201 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "admin writes never resumed: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // 30 rounds of two requests: every one is recorded once the writer has caught up.
    let started = Instant::now();
    loop {
        let recorded =
            server.count("SELECT COUNT(*) FROM usage WHERE route = '/v1/chat/completions'");
        if recorded == 60 {
            break;
        }
        assert!(
            recorded < 60,
            "a record was written twice: {recorded} for 60 requests"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{recorded} of 60 requests recorded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(env.state.usage.dropped(), 0);
}

/// A key revoked while the server was away is refused as soon as the gateway can read the
/// change; until then the keys in memory keep working.
#[tokio::test]
async fn keys_in_memory_keep_working_while_the_server_is_down() {
    if !postgres_available() {
        return;
    }
    let server = Server::start();
    let env = Env::with(|c| c.db = server.url()).await;
    let root = admin_key(&env).await;
    let (status, created) = admin(
        &env,
        &root,
        "POST",
        "/admin/api/keys",
        Some(json!({"name": "laptop"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let laptop = created["key"].as_str().expect("the key").to_owned();
    server.pause();
    // Longer than the 400 ms poll of the change counter: the failed polls change nothing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    serve_quickly(&env, &[&laptop], 5).await;
    server.resume();
    // Revoked by another process (as the CLI or another replica would) once it is back.
    let id = created["id"].as_str().expect("the id");
    let other = Env::with(|c| c.db = server.url()).await;
    let (status, body) = admin(
        &other,
        &root,
        "DELETE",
        &format!("/admin/api/keys/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let started = Instant::now();
    while chat_status(&env, &laptop).await != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the other gateway never saw the revoke"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
