//! Typed native stream lines: parse each NDJSON line, stop at an `{"error": ...}` line, and
//! notice a stream that ends before its `done: true` line or outlives the shutdown grace.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::GatewayError;
use crate::ollama::types::{ChatResponse, GenerateResponse};
use crate::shutdown::Shutdown;

/// A line of a native stream.
pub trait NativeLine: DeserializeOwned + Send + 'static {
    /// The upstream's error text, if this is an error line.
    fn error(&self) -> Option<&str>;
    /// Whether this is the last line.
    fn is_done(&self) -> bool;
    /// Ollama's prompt and completion token counts (on the last line).
    fn token_counts(&self) -> (Option<u64>, Option<u64>);
}

impl NativeLine for ChatResponse {
    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
    fn is_done(&self) -> bool {
        self.done
    }
    fn token_counts(&self) -> (Option<u64>, Option<u64>) {
        (self.prompt_eval_count, self.eval_count)
    }
}

impl NativeLine for GenerateResponse {
    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
    fn is_done(&self) -> bool {
        self.done
    }
    fn token_counts(&self) -> (Option<u64>, Option<u64>) {
        (self.prompt_eval_count, self.eval_count)
    }
}

/// Parsed lines with their raw bytes. Ends after the `done` line, or with exactly one error:
/// the upstream's error line, a malformed line, a broken or early-ended stream, a timeout, or
/// the end of the shutdown grace period.
pub fn parse_lines<T, S>(
    lines: S,
    shutdown: Shutdown,
) -> impl Stream<Item = Result<(T, Bytes), GatewayError>> + Send + 'static
where
    T: NativeLine,
    S: Stream<Item = Result<Bytes, GatewayError>> + Send + 'static,
{
    async_stream::stream! {
        let mut lines = std::pin::pin!(lines);
        let expired = shutdown.expired();
        let mut expired = std::pin::pin!(expired);
        loop {
            let next = tokio::select! {
                biased;
                next = lines.next() => next,
                () = &mut expired => {
                    yield Err(GatewayError::ShuttingDown);
                    return;
                }
            };
            let raw = match next {
                None => {
                    tracing::warn!("upstream stream ended before its done line");
                    yield Err(GatewayError::UpstreamInterrupted);
                    return;
                }
                Some(Err(err)) => {
                    yield Err(err);
                    return;
                }
                Some(Ok(raw)) => raw,
            };
            let line: T = match serde_json::from_slice(&raw) {
                Ok(line) => line,
                Err(err) => {
                    tracing::warn!(error = %err, "upstream sent a malformed NDJSON line");
                    yield Err(GatewayError::UpstreamProtocol);
                    return;
                }
            };
            if let Some(message) = line.error() {
                yield Err(GatewayError::Upstream {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: message.to_owned(),
                });
                return;
            }
            let done = line.is_done();
            yield Ok((line, raw));
            if done {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    async fn run(lines: Vec<&'static str>) -> Vec<Result<bool, String>> {
        let lines = stream::iter(
            lines
                .into_iter()
                .map(|l| Ok(Bytes::from_static(l.as_bytes()))),
        );
        parse_lines::<ChatResponse, _>(lines, Shutdown::new())
            .map(|r| r.map(|(line, _)| line.done).map_err(|e| e.to_string()))
            .collect()
            .await
    }

    #[tokio::test]
    async fn error_lines_malformed_lines_and_early_eof_end_with_one_error() {
        let out = run(vec![
            r#"{"done":false}"#,
            r#"{"error":"boom"}"#,
            r#"{"done":true}"#,
        ])
        .await;
        assert_eq!(out, vec![Ok(false), Err("boom".to_owned())]);
        let out = run(vec![r#"{"done":false}"#, r#"{"model":"#]).await;
        assert_eq!(out.len(), 2);
        assert!(out[1].as_ref().is_err_and(|e| e.contains("malformed")));
        let out = run(vec![r#"{"done":false}"#]).await;
        assert!(
            out[1]
                .as_ref()
                .is_err_and(|e| e.contains("before it was complete"))
        );
        let out = run(vec![r#"{"done":true}"#, r#"{"done":false}"#]).await;
        assert_eq!(out, vec![Ok(true)]);
    }

    #[tokio::test]
    async fn shutdown_ends_a_stalled_stream() {
        let shutdown = Shutdown::new();
        let lines = stream::pending::<Result<Bytes, GatewayError>>();
        let mut parsed = std::pin::pin!(parse_lines::<ChatResponse, _>(lines, shutdown.clone()));
        shutdown.expire();
        let first = parsed.next().await;
        assert!(matches!(first, Some(Err(GatewayError::ShuttingDown))));
    }
}
