//! Stream capacity: open long streams in steps (`--steps 1000,2000,...` cumulative), and at
//! each step, once every stream has its first token, sample the resident memory of `--pids`
//! (the target's processes). Memory per open stream is the slope of RSS over open streams.
//! Streams are then all closed and memory sampled once more.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};

use crate::args::Args;
use crate::proc;
use crate::sse::EventSplitter;
use crate::target::{self, Target};

#[derive(Default)]
struct Counters {
    established: AtomicUsize,
    failed: AtomicUsize,
    /// Streams that ended (or broke) before they were told to close.
    ended_early: AtomicUsize,
}

pub async fn run(args: &Args) -> Result<Value, String> {
    let targets = Target::all(args)?;
    let target = targets.first().ok_or("give one --target")?.clone();
    let steps = args.usize_list("steps", &[100, 200])?;
    let pids = proc::parse_pids(&args.string("pids", ""));
    let tokens = args.usize("tokens", 100_000)?;
    let settle = args.millis("settle-ms", 1_000)?;
    let step_timeout = args.millis("step-timeout-ms", 60_000)?;
    let opening = args.usize("opening", 128)?.clamp(1, 4_096);
    let model = args.string("model", "bench");
    let body = Arc::new(target::chat_body(&model, tokens, true));
    // No overall timeout: these streams are meant to stay open until told to close.
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(opening));
    let mut tasks = Vec::new();
    let (base_rss, _) = proc::memory_kib(&pids);
    let mut samples = vec![json!({"open": 0, "rss_kib": base_rss})];
    let mut stopped_at = None;

    for &step in &steps {
        let started = Instant::now();
        while tasks.len() < step {
            let Ok(permit) = gate.clone().acquire_owned().await else {
                break;
            };
            let request = target.post(&client, &body);
            let counters = counters.clone();
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                hold_one(request, permit, &counters, &mut stop).await;
            }));
            if started.elapsed() > step_timeout {
                break;
            }
        }
        // Wait for every stream of this step to have its first token (or to fail).
        while counters.established.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed)
            < tasks.len()
            && started.elapsed() < step_timeout
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(settle).await;
        let (rss, hwm) = proc::memory_kib(&pids);
        let established = counters.established.load(Ordering::Relaxed);
        let alive = established
            - counters
                .ended_early
                .load(Ordering::Relaxed)
                .min(established);
        samples.push(json!({
            "open": alive,
            "requested": tasks.len(),
            "failed": counters.failed.load(Ordering::Relaxed),
            "ended_early": counters.ended_early.load(Ordering::Relaxed),
            "rss_kib": rss,
            "hwm_kib": hwm,
            "seconds": started.elapsed().as_secs_f64(),
        }));
        eprintln!("hold {}: {alive} open streams, RSS {rss} KiB", target.name);
        if counters.failed.load(Ordering::Relaxed) > step / 100 + 10 {
            stopped_at = Some(step);
            break;
        }
    }
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    tokio::time::sleep(settle).await;
    let (after_rss, after_hwm) = proc::memory_kib(&pids);
    Ok(json!({
        "target": target.name,
        "steps": samples,
        "stopped_early_at": stopped_at,
        "after_close_rss_kib": after_rss,
        "hwm_kib": after_hwm,
    }))
}

async fn hold_one(
    request: reqwest::RequestBuilder,
    permit: tokio::sync::OwnedSemaphorePermit,
    counters: &Counters,
    stop: &mut watch::Receiver<bool>,
) {
    let mut permit = Some(permit);
    let response = match tokio::time::timeout(Duration::from_secs(60), request.send()).await {
        Ok(Ok(response)) if response.status().is_success() => response,
        _ => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let mut body = response.bytes_stream();
    let mut splitter = EventSplitter::default();
    let mut established = false;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            chunk = body.next() => match chunk {
                Some(Ok(bytes)) => {
                    if !established && !splitter.push(&bytes).is_empty() {
                        established = true;
                        permit.take();
                        counters.established.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => {
                    if established {
                        counters.ended_early.fetch_add(1, Ordering::Relaxed);
                    } else {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
            },
        }
    }
}
