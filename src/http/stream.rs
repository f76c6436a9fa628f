//! Streamed answers: native lines in, server-sent events or NDJSON out.
//!
//! [`LineBody`] is the response body itself: each poll takes the next upstream line from
//! [`NativeLines`], lets the route's writer turn it into bytes (OpenAI chunks as `data:` events,
//! or the raw line again), and hands those to hyper as one frame, so a token leaves as soon as it
//! arrives and never waits for the next. A failure becomes one error frame in the surface's shape
//! and ends the body (an SSE stream then has no `[DONE]`). A quiet SSE stream (a thinking model)
//! gets a keep-alive comment every 15 seconds.
//!
//! [`PassthroughBody`] sends a native `/api/*` answer on as it comes, chunk for chunk.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures::Stream;
use http::{HeaderValue, header};
use http_body::Frame;
use serde::Serialize;
use tokio::time::Sleep;

use crate::error::GatewayError;
use crate::http::audit::{Audit, HardBudget};
use crate::metrics::InFlight;
use crate::upstream::{NativeLine, NativeLines, Tail, UpstreamChunks};

/// How a stream is framed on the wire.
#[derive(Debug)]
pub struct Framing {
    /// Written after the last (`done`) line.
    done: &'static [u8],
    /// A comment sent after this long without data, if the format has comments.
    keepalive: Option<(Duration, &'static [u8])>,
    /// Writes the frame that reports a failure.
    error: fn(&GatewayError, &mut BytesMut),
    /// A stream ended at a hard quota first gets a last chunk (`finish_reason: "length"`).
    final_chunk_on_cut: bool,
    content_type: &'static str,
}

/// OpenAI's server-sent events: `data: {...}\n\n` ... `data: [DONE]\n\n`.
pub static SSE: Framing = Framing {
    done: b"data: [DONE]\n\n",
    keepalive: Some((Duration::from_secs(15), b":\n\n")),
    error: |err, out| write_event(out, &err.openai_body()),
    final_chunk_on_cut: true,
    content_type: "text/event-stream",
};

/// Ollama's NDJSON: one JSON object per line; a failure is an `{"error": ...}` line.
pub static NDJSON: Framing = Framing {
    done: b"",
    keepalive: None,
    error: |err, out| write_line(out, &err.ollama_body()),
    final_chunk_on_cut: false,
    content_type: "application/x-ndjson",
};

/// A response body that writes each upstream line as the route's `write` function frames it.
pub struct LineBody<T, F> {
    /// `None` once the stream was ended early: dropping it closes the upstream request.
    lines: Option<NativeLines<T>>,
    /// Tokens the key may still stream (hard quota), and how many it has.
    budget: Option<HardBudget>,
    streamed: u64,
    write: F,
    framing: &'static Framing,
    keepalive: Option<Pin<Box<Sleep>>>,
    audit: Audit,
    started: Instant,
    out: BytesMut,
    ended: bool,
    /// Keeps the open-streams gauge up while the body lives.
    _open: InFlight,
}

impl<T, F> LineBody<T, F>
where
    T: NativeLine,
    F: FnMut(T, Bytes, &mut BytesMut) + Send + Unpin + 'static,
{
    /// A body for `lines`; `started` is when the upstream request was sent (for the audit).
    pub fn new(
        lines: NativeLines<T>,
        framing: &'static Framing,
        audit: Audit,
        started: Instant,
        write: F,
    ) -> Self {
        Self {
            budget: audit.hard_budget(),
            streamed: 0,
            lines: Some(lines),
            write,
            framing,
            keepalive: framing
                .keepalive
                .map(|(every, _)| Box::pin(tokio::time::sleep(every))),
            audit,
            started,
            out: BytesMut::new(),
            ended: false,
            _open: InFlight::stream(),
        }
    }

    /// The 200 response carrying this body.
    pub fn into_response(self) -> Response {
        let content_type = self.framing.content_type;
        let mut response = Response::new(Body::new(self));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }

    /// End the stream at the hard budget: a last chunk (SSE), the `quota_exceeded` error, and
    /// the upstream request closed now.
    fn cut(&mut self, budget: HardBudget, last: T) {
        self.lines = None;
        self.ended = true;
        self.audit.set_upstream_time(self.started.elapsed());
        self.audit.set_tokens(None, Some(self.streamed));
        self.audit.set_stream_error("quota_exceeded");
        if self.framing.final_chunk_on_cut {
            (self.write)(last, Bytes::new(), &mut self.out);
        }
        (self.framing.error)(&budget.error(), &mut self.out);
    }

    fn frame(&mut self) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let (Some(timer), Some((every, _))) = (&mut self.keepalive, self.framing.keepalive) {
            timer.as_mut().reset(tokio::time::Instant::now() + every);
        }
        Poll::Ready(Some(Ok(Frame::data(self.out.split().freeze()))))
    }
}

impl<T, F> http_body::Body for LineBody<T, F>
where
    T: NativeLine,
    F: FnMut(T, Bytes, &mut BytesMut) + Send + Unpin + 'static,
{
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        while !this.ended {
            let Some(lines) = this.lines.as_mut() else {
                break;
            };
            match Pin::new(lines).poll_next(cx) {
                Poll::Ready(Some(Ok((line, raw)))) => {
                    this.audit.observe_line(&line, this.started);
                    let done = line.is_done();
                    if !done {
                        this.streamed += 1;
                    }
                    let budget = this.budget.filter(|b| !done && this.streamed >= b.tokens);
                    let cut = budget.map(|_| line.cut_short(this.streamed));
                    (this.write)(line, raw, &mut this.out);
                    if let (Some(budget), Some(cut)) = (budget, cut) {
                        this.cut(budget, cut);
                        return this.frame();
                    }
                    if done {
                        this.out.extend_from_slice(this.framing.done);
                        this.ended = true;
                    }
                    // A line may make no output (an empty token); then wait for the next.
                    if !this.out.is_empty() {
                        return this.frame();
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    this.audit
                        .set_stream_error(err.code().unwrap_or("upstream_error"));
                    (this.framing.error)(&err, &mut this.out);
                    this.ended = true;
                    return this.frame();
                }
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => {
                    if let (Some(timer), Some((_, comment))) =
                        (&mut this.keepalive, this.framing.keepalive)
                        && timer.as_mut().poll(cx).is_ready()
                    {
                        this.out.extend_from_slice(comment);
                        return this.frame();
                    }
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

/// A native answer passed through chunk for chunk. If the upstream fails mid-answer, an NDJSON
/// stream ends with an `{"error": ...}` line (on a line of its own); any other body is cut off,
/// as there is no in-band way to say it.
pub struct PassthroughBody {
    /// `None` once the stream was ended early: dropping it closes the upstream request.
    chunks: Option<UpstreamChunks>,
    /// Lines (tokens) an NDJSON stream may still send (hard quota), and how many it has.
    budget: Option<HardBudget>,
    streamed: u64,
    ndjson: bool,
    at_line_start: bool,
    /// The audit record gets the time to the first and the last byte and Ollama's token counts,
    /// if there is one.
    audit: Option<Audit>,
    /// The answer's last line, for the token counts (only with an audit record).
    tail: Option<Tail>,
    started: Instant,
    ended: bool,
    _open: Option<InFlight>,
}

impl PassthroughBody {
    /// Pass `chunks` through; `ndjson` streams count as open streams and end with an error line.
    pub fn new(
        chunks: UpstreamChunks,
        ndjson: bool,
        audit: Option<Audit>,
        started: Instant,
    ) -> Self {
        Self {
            budget: audit
                .as_ref()
                .and_then(Audit::hard_budget)
                .filter(|_| ndjson),
            streamed: 0,
            chunks: Some(chunks),
            ndjson,
            at_line_start: true,
            tail: audit.as_ref().map(|_| Tail::default()),
            audit,
            started,
            ended: false,
            _open: ndjson.then(InFlight::stream),
        }
    }
}

impl PassthroughBody {
    /// Count the lines of `chunk`; once they reach the budget with more to come, end the stream
    /// there: the lines within the budget, then the `quota_exceeded` error line, and the
    /// upstream request closed now.
    fn over_budget(&mut self, chunk: &Bytes, budget: HardBudget) -> Option<Bytes> {
        let mut keep = None;
        for (at, _) in chunk.iter().enumerate().filter(|(_, b)| **b == b'\n') {
            self.streamed += 1;
            if self.streamed >= budget.tokens {
                keep = Some(at + 1);
                break;
            }
        }
        let keep = keep?;
        // The line that spends the budget may be the last one anyway.
        if keep == chunk.len() && chunk.windows(11).any(|w| w == b"\"done\":true") {
            return None;
        }
        self.chunks = None;
        self.ended = true;
        let mut out = BytesMut::from(&chunk[..keep]);
        (NDJSON.error)(&budget.error(), &mut out);
        if let Some(audit) = &self.audit {
            audit.mark_first_token();
            audit.set_upstream_time(self.started.elapsed());
            audit.set_tokens(None, Some(self.streamed));
            audit.set_stream_error("quota_exceeded");
        }
        Some(out.freeze())
    }
}

impl http_body::Body for PassthroughBody {
    type Data = Bytes;
    type Error = GatewayError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, GatewayError>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        let Some(chunks) = this.chunks.as_mut() else {
            return Poll::Ready(None);
        };
        match chunks.poll_chunk(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(budget) = this.budget
                    && let Some(cut) = this.over_budget(&chunk, budget)
                {
                    return Poll::Ready(Some(Ok(Frame::data(cut))));
                }
                if let Some(last) = chunk.last() {
                    this.at_line_start = *last == b'\n';
                }
                if let Some(audit) = &this.audit {
                    audit.mark_first_token();
                }
                if let Some(tail) = &mut this.tail {
                    tail.push(&chunk);
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(None) => {
                this.ended = true;
                if let Some(audit) = &this.audit {
                    audit.set_upstream_time(this.started.elapsed());
                    if let Some((prompt, completion)) =
                        this.tail.as_ref().and_then(Tail::token_counts)
                    {
                        audit.set_tokens(prompt, completion);
                    }
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(err))) => {
                this.ended = true;
                if !this.ndjson {
                    return Poll::Ready(Some(Err(err)));
                }
                let mut out = BytesMut::new();
                if !this.at_line_start {
                    out.put_u8(b'\n');
                }
                (NDJSON.error)(&err, &mut out);
                Poll::Ready(Some(Ok(Frame::data(out.freeze()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

/// Append one SSE event, `data: <json>\n\n`. A value that cannot be serialised (it cannot
/// happen with the gateway's own types) becomes an internal-error event.
pub fn write_event<T: Serialize>(out: &mut BytesMut, value: &T) {
    let start = out.len();
    out.extend_from_slice(b"data: ");
    if let Err(err) = serde_json::to_writer((&mut *out).writer(), value) {
        tracing::error!(error = %err, "could not serialise an SSE event");
        out.truncate(start);
        out.extend_from_slice(b"data: ");
        let fallback =
            serde_json::to_vec(&GatewayError::Internal.openai_body()).unwrap_or_default();
        out.extend_from_slice(&fallback);
    }
    out.extend_from_slice(b"\n\n");
}

/// Append one NDJSON line.
pub fn write_line<T: Serialize>(out: &mut BytesMut, value: &T) {
    if serde_json::to_writer((&mut *out).writer(), value).is_err() {
        tracing::error!("could not serialise an NDJSON line");
    }
    out.put_u8(b'\n');
}
