//! Streaming against the real Ollama: the same streamed chat (fixed seed, temperature 0) to
//! each target in turn, `--streams` times, the order rotating from round to round, one stream
//! at a time (the real server generates one answer at a time on a small machine). Every content
//! event is stamped on arrival. Reported per target: time to first token (from the request
//! leaving) and the gaps between tokens; and, paired round by round against the first target
//! (`direct`), what the others add to the first token and to the median gap. Integrity: every
//! stream complete (finish reason, usage, `[DONE]`) and with the same text as the first
//! target's.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::args::Args;
use crate::sse::StreamRecord;
use crate::stats;
use crate::target::{self, Target};

#[derive(Default)]
struct Tally {
    streams: usize,
    complete: usize,
    same_text: usize,
    first_problem: Option<String>,
    tokens: usize,
    ttft_us: Vec<f64>,
    gap_us: Vec<f64>,
    /// Round by round, against the first target.
    ttft_added_us: Vec<f64>,
    gap_added_us: Vec<f64>,
}

pub async fn run(args: &Args) -> Result<Value, String> {
    let targets = Target::all(args)?;
    let streams = args.usize("streams", 20)?.clamp(1, 10_000);
    let tokens = args.usize("tokens", 32)?.clamp(1, 10_000);
    let model = args.string("model", "tiny");
    let limit = args.millis("stream-timeout-ms", 60_000)?;
    let mut body = target::chat_body(&model, tokens, true);
    body["seed"] = json!(42);
    body["temperature"] = json!(0);
    let client = target::client(limit + Duration::from_secs(5))?;

    let mut tallies: Vec<Tally> = targets.iter().map(|_| Tally::default()).collect();
    let mut reference_text: Option<String> = None;
    for round in 0..streams {
        let mut this_round: Vec<Option<(f64, f64)>> = vec![None; targets.len()];
        for k in 0..targets.len() {
            let i = (k + round) % targets.len();
            let sent = Instant::now();
            let record = match targets[i].post(&client, &body).send().await {
                Ok(response) => StreamRecord::read(response, sent, limit).await,
                Err(err) => StreamRecord {
                    error: Some(format!("send: {err}")),
                    ..StreamRecord::default()
                },
            };
            let tally = &mut tallies[i];
            tally.streams += 1;
            let complete = record.status == 200
                && record.error.is_none()
                && record.done
                && record.finish_reason.is_some()
                && record.usage_tokens.is_some();
            if complete {
                tally.complete += 1;
            } else if tally.first_problem.is_none() {
                tally.first_problem = Some(format!(
                    "status={} error={:?} done={} events={}",
                    record.status,
                    record.error,
                    record.done,
                    record.content_at.len()
                ));
            }
            if i == 0 && reference_text.is_none() && complete {
                reference_text = Some(record.text.clone());
            }
            if reference_text.as_deref() == Some(record.text.as_str()) {
                tally.same_text += 1;
            }
            tally.tokens += record.content_at.len();
            let mut gaps: Vec<f64> = record
                .content_at
                .windows(2)
                .map(|w| stats::micros(w[1].saturating_sub(w[0])))
                .collect();
            tally.gap_us.extend_from_slice(&gaps);
            if let Some(first) = record.content_at.first() {
                let ttft = stats::micros(*first);
                tally.ttft_us.push(ttft);
                stats::sort(&mut gaps);
                if let Some(median_gap) = stats::quantile(&gaps, 0.5) {
                    this_round[i] = Some((ttft, median_gap));
                }
            }
        }
        if let Some((ttft0, gap0)) = this_round[0] {
            for (i, figures) in this_round.iter().enumerate().skip(1) {
                if let Some((ttft, gap)) = figures {
                    tallies[i].ttft_added_us.push(ttft - ttft0);
                    tallies[i].gap_added_us.push(gap - gap0);
                }
            }
        }
    }

    let mut out = Map::new();
    for (t, mut tally) in targets.iter().zip(tallies) {
        out.insert(
            t.name.clone(),
            json!({
                "streams": tally.streams,
                "complete": tally.complete,
                "same_text": tally.same_text,
                "first_problem": tally.first_problem,
                "tokens": tally.tokens,
                "ttft_us": stats::summary(&mut tally.ttft_us),
                "gap_us": stats::summary(&mut tally.gap_us),
                "ttft_added_us": stats::summary(&mut tally.ttft_added_us),
                "gap_added_us": stats::summary(&mut tally.gap_added_us),
            }),
        );
    }
    Ok(json!({"streams": streams, "tokens": tokens, "model": model, "targets": out}))
}
