//! Streaming: `--streams` streams per target at `--concurrency` at a time, targets interleaved
//! over `--rounds`. The fake sends token `i` at `arrival + t0 + i * gap`; every content event is
//! timestamped from the moment the request left, which gives time to first token, the gaps
//! between chunks, and each chunk's lateness against the schedule. Every stream is checked for
//! integrity: all tokens, one per event, the same text, a finish reason, usage and `[DONE]`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use crate::args::Args;
use crate::sse::StreamRecord;
use crate::stats;
use crate::target::{self, Target};

#[derive(Default)]
struct Tally {
    streams: usize,
    intact: usize,
    problems: BTreeMap<&'static str, usize>,
    first_problem: Option<String>,
    ttft_us: Vec<f64>,
    gap_us: Vec<f64>,
    late_us: Vec<f64>,
    /// Content events that came less than half a gap after the previous one.
    bunched: usize,
    events: usize,
    wall: Duration,
}

pub async fn run(args: &Args) -> Result<Value, String> {
    let targets = Target::all(args)?;
    let concurrency = args.usize("concurrency", 1)?.clamp(1, 5_000);
    let streams = args.usize("streams", 10)?.clamp(1, 100_000);
    let rounds = args.usize("rounds", 1)?.clamp(1, 100);
    let tokens = args.usize("tokens", 16)?.clamp(1, 100_000);
    let t0 = args.millis("t0-ms", 0)?;
    let gap = args.millis("gap-ms", 0)?;
    let limit = args.millis("stream-timeout-ms", 30_000)?;
    let model = args.string("model", "bench");
    let body = Arc::new(target::chat_body(&model, tokens, true));
    let client = target::client(limit + Duration::from_secs(5))?;

    let mut tallies: Vec<Tally> = targets.iter().map(|_| Tally::default()).collect();
    let per_round = streams.div_ceil(rounds);
    for round in 0..rounds {
        for k in 0..targets.len() {
            let i = (k + round) % targets.len();
            let started = Instant::now();
            let records = batch(&targets[i], &client, &body, per_round, concurrency, limit).await;
            tallies[i].wall += started.elapsed();
            for record in records {
                account(&mut tallies[i], &record, tokens, t0, gap);
            }
        }
    }

    let mut out = Map::new();
    for (t, mut tally) in targets.iter().zip(tallies) {
        out.insert(
            t.name.clone(),
            json!({
                "streams": tally.streams,
                "intact": tally.intact,
                "problems": tally.problems,
                "first_problem": tally.first_problem,
                "events": tally.events,
                "bunched": tally.bunched,
                "ttft_us": stats::summary(&mut tally.ttft_us),
                "gap_us": stats::summary(&mut tally.gap_us),
                "late_us": stats::summary(&mut tally.late_us),
                "wall_s": tally.wall.as_secs_f64(),
            }),
        );
    }
    Ok(json!({
        "concurrency": concurrency, "tokens": tokens,
        "t0_ms": t0.as_secs_f64() * 1e3, "gap_ms": gap.as_secs_f64() * 1e3,
        "targets": out,
    }))
}

/// Run `count` streams against one target, `concurrency` at a time.
async fn batch(
    target: &Target,
    client: &reqwest::Client,
    body: &Arc<Value>,
    count: usize,
    concurrency: usize,
    limit: Duration,
) -> Vec<StreamRecord> {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let request = target.post(client, body);
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let sent = Instant::now();
            match request.send().await {
                Ok(response) => StreamRecord::read(response, sent, limit).await,
                Err(err) => StreamRecord {
                    error: Some(format!("send: {err}")),
                    ..StreamRecord::default()
                },
            }
        }));
    }
    let mut records = Vec::with_capacity(count);
    for task in tasks {
        if let Ok(record) = task.await {
            records.push(record);
        }
    }
    records
}

fn account(tally: &mut Tally, record: &StreamRecord, tokens: usize, t0: Duration, gap: Duration) {
    tally.streams += 1;
    let problems = record.problems(tokens);
    if problems.is_empty() {
        tally.intact += 1;
    } else if tally.first_problem.is_none() {
        tally.first_problem = Some(format!(
            "{problems:?} status={} error={:?} events={}",
            record.status,
            record.error,
            record.content_at.len()
        ));
    }
    for problem in problems {
        *tally.problems.entry(problem).or_default() += 1;
    }
    if let Some(first) = record.content_at.first() {
        tally.ttft_us.push(stats::micros(*first));
    }
    tally.events += record.content_at.len();
    // Event i carries tokens start..start+n; its schedule is that of its last token.
    let mut token_index = 0usize;
    for (k, at) in record.content_at.iter().enumerate() {
        token_index += record.tokens_per_event.get(k).copied().unwrap_or(1);
        let due = t0 + gap.saturating_mul(u32::try_from(token_index - 1).unwrap_or(u32::MAX));
        tally.late_us.push(stats::micros(at.saturating_sub(due)));
        if k > 0 {
            let step = at.saturating_sub(record.content_at[k - 1]);
            tally.gap_us.push(stats::micros(step));
            if gap >= Duration::from_millis(2) && step < gap / 2 {
                tally.bunched += 1;
            }
        }
    }
}
