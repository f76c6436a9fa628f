//! Reading an SSE response event by event, each stamped with the time its last byte arrived,
//! and checking a whole `bench` stream for integrity.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::StreamExt;
use serde_json::Value;

/// The content of every `bench` token (the fake's `BENCH_TOKEN`).
pub const TOKEN: &str = "tok ";

/// Splits a byte stream into SSE events (blank-line separated), keeping the `data:` payload.
#[derive(Default)]
pub struct EventSplitter {
    buffer: BytesMut,
}

impl EventSplitter {
    /// Add bytes; return the payloads of the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some((end, sep)) = find_boundary(&self.buffer) {
            let raw = self.buffer.split_to(end + sep);
            let text = String::from_utf8_lossy(&raw[..end]);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                events.push(data.join("\n"));
            }
        }
        events
    }
}

/// Position and length of the first blank line (`\n\n` or `\r\n\r\n`).
fn find_boundary(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// What one stream delivered.
#[derive(Debug, Default)]
pub struct StreamRecord {
    /// Arrival of each content event, from the moment the request was sent.
    pub content_at: Vec<Duration>,
    /// Tokens carried by each content event (1 unless chunks were merged).
    pub tokens_per_event: Vec<usize>,
    pub text: String,
    pub usage_tokens: Option<u64>,
    pub finish_reason: Option<String>,
    pub done: bool,
    pub error: Option<String>,
    pub status: u16,
}

impl StreamRecord {
    /// Account for one event payload arriving `at` after the request was sent.
    pub fn event(&mut self, data: &str, at: Duration) {
        if data.trim() == "[DONE]" {
            self.done = true;
            return;
        }
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            self.error
                .get_or_insert_with(|| format!("bad event: {data:.80}"));
            return;
        };
        if let Some(error) = value.get("error") {
            self.error.get_or_insert_with(|| error.to_string());
            return;
        }
        if let Some(usage) = value.get("usage").filter(|u| !u.is_null()) {
            self.usage_tokens = usage.get("completion_tokens").and_then(Value::as_u64);
        }
        let Some(choice) = value.get("choices").and_then(|c| c.get(0)) else {
            return;
        };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
        }
        let content = choice
            .get("delta")
            .and_then(|d| d.get("content"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if !content.is_empty() {
            self.content_at.push(at);
            self.tokens_per_event
                .push(content.matches(TOKEN).count().max(1));
            self.text.push_str(content);
        }
    }

    /// Read `response` to its end (or `limit`), recording every event.
    pub async fn read(response: reqwest::Response, sent: Instant, limit: Duration) -> Self {
        let mut record = Self {
            status: response.status().as_u16(),
            ..Self::default()
        };
        let mut splitter = EventSplitter::default();
        let mut body = response.bytes_stream();
        let deadline = tokio::time::Instant::from_std(sent + limit);
        loop {
            match tokio::time::timeout_at(deadline, body.next()).await {
                Err(_) => {
                    record.error.get_or_insert_with(|| "timed out".to_owned());
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(err))) => {
                    record.error.get_or_insert_with(|| format!("body: {err}"));
                    break;
                }
                Ok(Some(Ok(bytes))) => {
                    let at = sent.elapsed();
                    for data in splitter.push(&bytes) {
                        record.event(&data, at);
                    }
                }
            }
        }
        record
    }

    /// The integrity problems of a stream that should carry `tokens` tokens.
    pub fn problems(&self, tokens: usize) -> Vec<&'static str> {
        let mut problems = Vec::new();
        if self.status != 200 {
            problems.push("http_error");
            return problems;
        }
        if self.error.is_some() {
            problems.push("stream_error");
        }
        let delivered: usize = self.tokens_per_event.iter().sum();
        if delivered < tokens {
            problems.push("lost_chunks");
        }
        if self.tokens_per_event.iter().any(|n| *n > 1) {
            problems.push("merged_chunks");
        }
        if self.text != TOKEN.repeat(tokens) {
            problems.push("text_mismatch");
        }
        if self.usage_tokens != u64::try_from(tokens).ok() {
            problems.push("usage_missing");
        }
        if self.finish_reason.is_none() {
            problems.push("finish_missing");
        }
        if !self.done {
            problems.push("done_missing");
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_events_across_reads() {
        let mut s = EventSplitter::default();
        assert!(s.push(b"data: {\"a\":1}\n").is_empty());
        assert_eq!(
            s.push(b"\ndata: [DONE]\r\n\r\n"),
            vec!["{\"a\":1}", "[DONE]"]
        );
    }

    #[test]
    fn counts_tokens_and_usage() {
        let mut r = StreamRecord {
            status: 200,
            ..StreamRecord::default()
        };
        let chunk = |c: &str| {
            format!(
                r#"{{"choices":[{{"index":0,"delta":{{"content":"{c}"}},"finish_reason":null}}]}}"#
            )
        };
        r.event(&chunk("tok "), Duration::from_millis(1));
        r.event(&chunk("tok tok "), Duration::from_millis(2));
        r.event(
            r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
            Duration::ZERO,
        );
        r.event(
            r#"{"choices":[],"usage":{"completion_tokens":3}}"#,
            Duration::ZERO,
        );
        r.event("[DONE]", Duration::ZERO);
        assert_eq!(r.problems(3), vec!["merged_chunks"]);
        assert_eq!(
            r.problems(4),
            vec![
                "lost_chunks",
                "merged_chunks",
                "text_mismatch",
                "usage_missing"
            ]
        );
    }
}
