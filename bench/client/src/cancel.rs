//! Cancellation: open a stream over a raw TCP socket, wait for the first token, close the
//! socket, and time how long until the fake counts the stream as cancelled (its
//! `GET /_fake/stats` `cancelled_streams` goes up, which happens when its side of the upstream
//! connection is dropped). Targets are interleaved trial by trial.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::args::Args;
use crate::sse::TOKEN;
use crate::stats;
use crate::target::{self, Target};

pub async fn run(args: &Args) -> Result<Value, String> {
    let targets = Target::all(args)?;
    let fake = args
        .get("fake")
        .ok_or("give --fake http://127.0.0.1:PORT (the fake's base URL)")?
        .trim_end_matches('/')
        .to_owned();
    let trials = args.usize("trials", 10)?.clamp(1, 1_000);
    let tokens = args.usize("tokens", 100_000)?;
    let max_wait = args.millis("max-wait-ms", 3_000)?;
    let model = args.string("model", "bench");
    let body = serde_json::to_string(&target::chat_body(&model, tokens, true))
        .map_err(|e| e.to_string())?;
    let stats_client = target::client(Duration::from_secs(5))?;
    let stats_url = format!("{fake}/_fake/stats");

    let mut times: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    let mut missed = vec![0usize; targets.len()];
    let mut failed = vec![0usize; targets.len()];
    let mut first_error: Vec<Option<String>> = vec![None; targets.len()];
    for trial in 0..trials {
        for k in 0..targets.len() {
            let i = (k + trial) % targets.len();
            let before = cancelled(&stats_client, &stats_url).await?;
            match open_and_read_first(&targets[i], &body).await {
                Ok(socket) => {
                    let left = Instant::now();
                    drop(socket);
                    let mut seen = false;
                    while left.elapsed() < max_wait {
                        if cancelled(&stats_client, &stats_url).await? > before {
                            times[i].push(stats::micros(left.elapsed()));
                            seen = true;
                            break;
                        }
                        // A blocking pause on purpose: tokio's timer rounds up to whole
                        // milliseconds, which would be the resolution of the measurement.
                        std::thread::sleep(Duration::from_micros(100));
                    }
                    if !seen {
                        missed[i] += 1;
                        // Let a late cancellation land before the next trial reads the count.
                        tokio::time::sleep(max_wait).await;
                    }
                }
                Err(err) => {
                    failed[i] += 1;
                    first_error[i].get_or_insert(err);
                }
            }
        }
    }
    let mut out = Map::new();
    for (i, t) in targets.iter().enumerate() {
        out.insert(
            t.name.clone(),
            json!({
                "close_after_leave_us": stats::summary(&mut times[i]),
                "not_closed_within_max_wait": missed[i],
                "failed": failed[i],
                "first_error": first_error[i],
            }),
        );
    }
    Ok(json!({"trials": trials, "max_wait_ms": max_wait.as_secs_f64() * 1e3, "targets": out}))
}

async fn cancelled(client: &reqwest::Client, url: &str) -> Result<u64, String> {
    let stats: Value = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("fake stats: {e}"))?
        .json()
        .await
        .map_err(|e| format!("fake stats: {e}"))?;
    stats
        .get("cancelled_streams")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("fake stats without cancelled_streams: {stats}"))
}

/// Send the streamed request by hand and read until the first token has arrived.
async fn open_and_read_first(target: &Target, body: &str) -> Result<TcpStream, String> {
    let rest = target
        .url
        .strip_prefix("http://")
        .ok_or("only http:// targets")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut socket = TcpStream::connect(authority)
        .await
        .map_err(|e| format!("connect {authority}: {e}"))?;
    socket.set_nodelay(true).map_err(|e| e.to_string())?;
    let auth = target
        .key
        .as_ref()
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Accept: text/event-stream\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    socket
        .write_all(head.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let n = tokio::time::timeout_at(deadline, socket.read(&mut buf))
            .await
            .map_err(|_| "no first token within 30 s".to_owned())?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!(
                "closed before the first token: {}",
                String::from_utf8_lossy(&seen)
            ));
        }
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()) {
            return Ok(socket);
        }
        if seen.len() > 1 << 20 {
            return Err("1 MiB without a token".to_owned());
        }
    }
}
