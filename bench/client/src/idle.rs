//! Idle overhead: one request at a time, targets interleaved round by round (the order
//! rotates each round so no target always follows the same one). Each round gives a median per
//! target; the figure is the median of those medians, which shrugs off a noisy round.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::args::Args;
use crate::stats;
use crate::target::{self, Target};

pub async fn run(args: &Args) -> Result<Value, String> {
    let targets = Target::all(args)?;
    let rounds = args.usize("rounds", 10)?.clamp(1, 1000);
    let per_round = args.usize("per-round", 50)?.clamp(1, 10_000);
    let warmup = args.usize("warmup", 20)?.min(10_000);
    let tokens = args.usize("tokens", 16)?;
    let model = args.string("model", "bench");
    let budget = args.millis("budget-ms", 120_000)?;
    let body = target::chat_body(&model, tokens, false);
    // One client (one keep-alive connection) per target, as a real caller would hold.
    let clients = targets
        .iter()
        .map(|_| target::client(Duration::from_secs(10)))
        .collect::<Result<Vec<_>, _>>()?;

    for (t, client) in targets.iter().zip(&clients) {
        for _ in 0..warmup {
            let _ = one(t, client, &body).await;
        }
    }
    let started = Instant::now();
    let mut medians = vec![Vec::new(); targets.len()];
    let mut all = vec![Vec::new(); targets.len()];
    let mut errors = vec![0usize; targets.len()];
    let mut rounds_done = 0;
    for round in 0..rounds {
        if started.elapsed() > budget {
            break;
        }
        for k in 0..targets.len() {
            let i = (k + round) % targets.len();
            let mut samples = Vec::with_capacity(per_round);
            for _ in 0..per_round {
                match one(&targets[i], &clients[i], &body).await {
                    Some(us) => samples.push(us),
                    None => errors[i] += 1,
                }
            }
            stats::sort(&mut samples);
            if let Some(median) = stats::quantile(&samples, 0.5) {
                medians[i].push(median);
            }
            all[i].extend(samples);
        }
        rounds_done += 1;
    }
    let mut out = Map::new();
    for (i, t) in targets.iter().enumerate() {
        stats::sort(&mut medians[i]);
        out.insert(
            t.name.clone(),
            json!({
                "median_of_medians_us": stats::quantile(&medians[i], 0.5),
                "round_medians_us": medians[i],
                "all_us": stats::summary(&mut all[i]),
                "errors": errors[i],
            }),
        );
    }
    Ok(json!({"rounds": rounds_done, "per_round": per_round, "targets": out}))
}

/// One request read to its end; its latency in microseconds, `None` on any failure.
async fn one(target: &Target, client: &reqwest::Client, body: &Value) -> Option<f64> {
    let sent = Instant::now();
    let response = target.post(client, body).send().await.ok()?;
    let ok = response.status().is_success();
    let bytes = response.bytes().await.ok()?;
    let elapsed = stats::micros(sent.elapsed());
    (ok && !bytes.is_empty()).then_some(elapsed)
}
