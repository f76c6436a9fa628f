//! Ollama's NDJSON stream, read straight off the upstream body as typed lines.
//!
//! One hand-written state machine on top of [`UpstreamChunks`] does what a line splitter and a
//! line parser would do as nested generators: it is polled by the response body that sends the
//! lines on and keeps only the bytes of a line that has not ended yet.
//!
//! Network chunks and lines do not line up: one chunk may hold several lines, one line may span
//! many chunks (tool arguments, logprobs, images). Lines are split on `\n` (a trailing `\r` and
//! blanks are trimmed, blank lines skipped); a line longer than [`MAX_LINE`] is an error.
//!
//! The stream ends after the `done` line, or with exactly one error: the upstream's error line,
//! a malformed line, a broken or early-ended stream, a gap longer than the upstream timeout, or
//! the end of the shutdown grace period.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::Stream;
use http::StatusCode;
use serde::de::DeserializeOwned;

use super::chunks::UpstreamChunks;
use crate::error::GatewayError;
use crate::ollama::types::{ChatResponse, GenerateResponse};

/// Longest line accepted from the upstream.
pub const MAX_LINE: usize = 64 * 1024 * 1024;

/// A line of a native stream.
pub trait NativeLine: DeserializeOwned + Send + 'static {
    /// The upstream's error text, if this is an error line.
    fn error(&self) -> Option<&str>;
    /// Whether this is the last line.
    fn is_done(&self) -> bool;
    /// Ollama's prompt and completion token counts (on the last line).
    fn token_counts(&self) -> (Option<u64>, Option<u64>);
    /// Ollama's model load time in nanoseconds (on the last line).
    fn load_duration(&self) -> Option<u64>;
    /// The last line of a stream the gateway ends early (a hard token quota): this line's
    /// model and time, `done_reason: "length"` and `completion_tokens` streamed.
    fn cut_short(&self, completion_tokens: u64) -> Self;
}

/// Chat and generate lines carry the same `error`, `done` and count fields.
macro_rules! native_line {
    ($($line:ty),*) => {$(
        impl NativeLine for $line {
            fn error(&self) -> Option<&str> {
                self.error.as_deref()
            }
            fn is_done(&self) -> bool {
                self.done
            }
            fn token_counts(&self) -> (Option<u64>, Option<u64>) {
                (self.prompt_eval_count, self.eval_count)
            }
            fn load_duration(&self) -> Option<u64> {
                self.load_duration
            }
            fn cut_short(&self, completion_tokens: u64) -> Self {
                Self {
                    model: self.model.clone(),
                    created_at: self.created_at.clone(),
                    done: true,
                    done_reason: Some("length".into()),
                    eval_count: Some(completion_tokens),
                    ..Self::default()
                }
            }
        }
    )*};
}

native_line!(ChatResponse, GenerateResponse);

/// Typed lines of a native NDJSON stream, each with its raw bytes (without the `\n`).
pub struct NativeLines<T> {
    chunks: UpstreamChunks,
    /// The rest of the last chunk, not yet split into lines.
    chunk: Bytes,
    /// The start of a line that continues in a later chunk.
    partial: BytesMut,
    body_ended: bool,
    finished: bool,
    _line: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for NativeLines<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeLines")
            .field("buffered", &(self.chunk.len() + self.partial.len()))
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl<T: NativeLine> NativeLines<T> {
    /// Lines of the upstream's `chunks`.
    pub fn new(chunks: UpstreamChunks) -> Self {
        Self {
            chunks,
            chunk: Bytes::new(),
            partial: BytesMut::new(),
            body_ended: false,
            finished: false,
            _line: PhantomData,
        }
    }

    /// End the stream with `err`.
    fn fail(&mut self, err: GatewayError) -> Poll<Option<Result<(T, Bytes), GatewayError>>> {
        self.finished = true;
        Poll::Ready(Some(Err(err)))
    }

    /// The next complete raw line already received, if any (blank lines skipped).
    fn buffered_line(&mut self) -> Option<Bytes> {
        while let Some(end) = self.chunk.iter().position(|b| *b == b'\n') {
            let head = self.chunk.split_to(end + 1);
            let line = if self.partial.is_empty() {
                head
            } else {
                self.partial.extend_from_slice(&head);
                self.partial.split().freeze()
            };
            let line = trim_line(line);
            if !line.is_empty() {
                return Some(line);
            }
        }
        None
    }

    /// Parse one raw line into the stream's next item.
    fn parse(&mut self, raw: Bytes) -> Poll<Option<Result<(T, Bytes), GatewayError>>> {
        let line: T = match serde_json::from_slice(&raw) {
            Ok(line) => line,
            Err(err) => {
                tracing::warn!(error = %err, "upstream sent a malformed NDJSON line");
                return self.fail(GatewayError::UpstreamProtocol);
            }
        };
        if let Some(message) = line.error() {
            let err = super::reported(
                self.chunks.scrubber(),
                StatusCode::INTERNAL_SERVER_ERROR,
                message,
            );
            return self.fail(err);
        }
        if line.is_done() {
            self.finished = true;
        }
        Poll::Ready(Some(Ok((line, raw))))
    }
}

impl<T: NativeLine> Stream for NativeLines<T> {
    type Item = Result<(T, Bytes), GatewayError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            if let Some(raw) = this.buffered_line() {
                return this.parse(raw);
            }
            // What is left of the chunk is the start of a line.
            if !this.chunk.is_empty() {
                this.partial.extend_from_slice(&this.chunk);
                this.chunk.clear();
            }
            if this.partial.len() > MAX_LINE {
                tracing::warn!(len = this.partial.len(), "upstream NDJSON line too long");
                return this.fail(GatewayError::UpstreamProtocol);
            }
            if this.body_ended {
                let rest = trim_line(this.partial.split().freeze());
                if !rest.is_empty() {
                    return this.parse(rest);
                }
                tracing::warn!("upstream stream ended before its done line");
                return this.fail(GatewayError::UpstreamInterrupted);
            }
            match this.chunks.poll_chunk(cx) {
                Poll::Ready(Some(Ok(chunk))) => this.chunk = chunk,
                Poll::Ready(Some(Err(err))) => return this.fail(err),
                Poll::Ready(None) => this.body_ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

fn trim_line(mut line: Bytes) -> Bytes {
    while line
        .last()
        .is_some_and(|b| matches!(b, b'\n' | b'\r' | b' ' | b'\t'))
    {
        line.truncate(line.len() - 1);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::Shutdown;
    use crate::upstream::UpstreamBody;
    use futures::StreamExt;
    use http_body_util::StreamBody;
    use std::time::Duration;

    /// A body that sends `chunks` (an `Err` breaks it off) and then ends, or stalls if `stall`.
    fn body(chunks: Vec<Result<&'static str, &'static str>>, stall: bool) -> UpstreamBody {
        let frames = futures::stream::iter(chunks.into_iter().map(|c| {
            c.map(|s| http_body::Frame::data(Bytes::from_static(s.as_bytes())))
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })
        }));
        let frames = frames.chain(futures::stream::pending().take(usize::from(stall)));
        Box::pin(StreamBody::new(frames))
    }

    fn lines_of(
        body: UpstreamBody,
        timeout: Duration,
        shutdown: &Shutdown,
    ) -> NativeLines<ChatResponse> {
        NativeLines::new(UpstreamChunks::new(
            body,
            timeout,
            shutdown,
            std::sync::Arc::default(),
        ))
    }

    async fn run(chunks: Vec<Result<&'static str, &'static str>>) -> Vec<Result<String, String>> {
        lines_of(
            body(chunks, false),
            Duration::from_secs(5),
            &Shutdown::new(),
        )
        .map(|r| {
            r.map(|(_, raw)| String::from_utf8_lossy(&raw).into_owned())
                .map_err(|e| e.to_string())
        })
        .collect()
        .await
    }

    #[tokio::test]
    async fn lines_split_across_and_within_chunks() {
        let out = run(vec![
            Ok("{\"done\":false,\"model\":\"a\"}\n{\"done\""),
            Ok(":false}\r\n\n{\"model\":"),
            Ok("\"c\",\"done\":false}\n{\"done\":true}"),
        ])
        .await;
        assert_eq!(
            out,
            vec![
                Ok("{\"done\":false,\"model\":\"a\"}".to_owned()),
                Ok("{\"done\":false}".to_owned()),
                Ok("{\"model\":\"c\",\"done\":false}".to_owned()),
                Ok("{\"done\":true}".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn error_lines_malformed_lines_broken_and_early_ended_streams_end_with_one_error() {
        let out = run(vec![Ok(
            "{\"done\":false}\n{\"error\":\"boom\"}\n{\"done\":true}\n",
        )])
        .await;
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], Err("boom".to_owned()));
        let out = run(vec![Ok("{\"done\":false}\n{\"model\":\n")]).await;
        assert!(out[1].as_ref().is_err_and(|e| e.contains("malformed")));
        let out = run(vec![Ok("{\"done\":false}\n")]).await;
        assert!(
            out[1]
                .as_ref()
                .is_err_and(|e| e.contains("before it was complete"))
        );
        let out = run(vec![Ok("{\"done\":false}\n"), Err("reset")]).await;
        assert!(
            out[1]
                .as_ref()
                .is_err_and(|e| e.contains("before it was complete"))
        );
        let out = run(vec![Ok("{\"done\":true}\n{\"done\":false}\n")]).await;
        assert_eq!(out, vec![Ok("{\"done\":true}".to_owned())]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_upstream_times_out_and_shutdown_ends_a_stream() {
        let lines = lines_of(
            body(vec![Ok("{\"done\":false}\n")], true),
            Duration::from_secs(5),
            &Shutdown::new(),
        );
        let out: Vec<_> = lines.collect().await;
        assert!(matches!(out[1], Err(GatewayError::UpstreamTimeout(_))));

        let shutdown = Shutdown::new();
        let mut lines = lines_of(body(vec![], true), Duration::from_secs(600), &shutdown);
        shutdown.expire();
        assert!(matches!(
            lines.next().await,
            Some(Err(GatewayError::ShuttingDown))
        ));
        assert!(lines.next().await.is_none());
    }
}
