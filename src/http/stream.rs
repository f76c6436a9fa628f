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
use std::future::Future;
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

/// Named server-sent events (`event: <name>\ndata: {...}\n\n`) with no terminator: the
/// OpenAI Responses stream. Its writer reports failures itself (`error`, `response.failed`); this
/// error frame is only the fallback.
pub static NAMED_SSE: Framing = Framing {
    done: b"",
    keepalive: Some((Duration::from_secs(15), b":\n\n")),
    error: |err, out| write_named_event(out, "error", &err.openai_body()),
    // Its terminal events are the writer's: a stream cut at a hard quota ends with the
    // writer's failure events (`error`, `response.failed`), not a length stop.
    final_chunk_on_cut: false,
    content_type: "text/event-stream",
};

/// Anthropic's Messages stream: named events, no terminator, an `error` event on failure, and
/// a `ping` event whenever the model has been quiet for [`ANTHROPIC_PING_EVERY`].
pub static ANTHROPIC_SSE: Framing = Framing {
    done: b"",
    keepalive: Some((
        ANTHROPIC_PING_EVERY,
        b"event: ping\ndata: {\"type\":\"ping\"}\n\n",
    )),
    error: |err, out| write_named_event(out, "error", &err.anthropic_body()),
    final_chunk_on_cut: false,
    content_type: "text/event-stream",
};

/// How long an Anthropic stream may be quiet before a `ping` event (Anthropic's SDKs and Claude
/// Code read a ping as "still working"; a thinking model can be quiet for a while).
pub const ANTHROPIC_PING_EVERY: Duration = Duration::from_secs(2);

/// Ollama's NDJSON: one JSON object per line; a failure is an `{"error": ...}` line.
pub static NDJSON: Framing = Framing {
    done: b"",
    keepalive: None,
    error: |err, out| write_line(out, &err.ollama_body()),
    final_chunk_on_cut: false,
    content_type: "application/x-ndjson",
};

/// What turns upstream lines into a surface's bytes. Any `FnMut(line, raw, out)` is one; a
/// translator that must report a failure in its own terms (with the stream's id and sequence
/// numbers) implements [`fail`](Self::fail) too.
pub trait LineWriter<T>: Send + Unpin + 'static {
    /// Append the bytes for one upstream line.
    fn line(&mut self, line: T, raw: Bytes, out: &mut BytesMut);
    /// Append the frames that report `err` and return true, or return false to let the
    /// framing write its standard error frame.
    fn fail(&mut self, err: &GatewayError, out: &mut BytesMut) -> bool {
        let _ = (err, out);
        false
    }
}

impl<T, F> LineWriter<T> for F
where
    F: FnMut(T, Bytes, &mut BytesMut) + Send + Unpin + 'static,
{
    fn line(&mut self, line: T, raw: Bytes, out: &mut BytesMut) {
        self(line, raw, out);
    }
}

/// The upstream answer still on its way: resolves to its lines once Ollama's response head
/// arrives (or to the error that came instead).
pub type PendingLines<T> =
    Pin<Box<dyn Future<Output = Result<NativeLines<T>, GatewayError>> + Send + 'static>>;

/// Where a body's lines come from.
enum Source<T> {
    /// Ollama has not answered yet; keep-alives go out meanwhile.
    Waiting(PendingLines<T>),
    Ready(NativeLines<T>),
}

/// A response body that writes each upstream line as the route's `write` function frames it.
pub struct LineBody<T, F> {
    /// `None` once the stream was ended early: dropping it closes the upstream request.
    lines: Option<Source<T>>,
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
        Self::with_writer(lines, framing, audit, started, write)
    }
}

impl<T, F> LineBody<T, F>
where
    T: NativeLine,
    F: LineWriter<T>,
{
    /// A body for `lines` written by a [`LineWriter`] (a translator that reports failures in
    /// its own terms); `started` is when the upstream request was sent (for the audit).
    pub fn with_writer(
        lines: NativeLines<T>,
        framing: &'static Framing,
        audit: Audit,
        started: Instant,
        write: F,
    ) -> Self {
        Self {
            budget: audit.hard_budget(),
            streamed: 0,
            lines: Some(Source::Ready(lines)),
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

    /// A body whose upstream has not answered yet: `prelude` (the stream's opening events) goes
    /// out at once, keep-alives while Ollama is quiet, then the lines as for
    /// [`with_writer`](Self::with_writer); an upstream error before its first byte is reported
    /// in the stream, as a failure after it would be.
    pub fn waiting(
        pending: PendingLines<T>,
        prelude: BytesMut,
        framing: &'static Framing,
        audit: Audit,
        started: Instant,
        write: F,
    ) -> Self {
        Self {
            budget: audit.hard_budget(),
            streamed: 0,
            lines: Some(Source::Waiting(pending)),
            write,
            framing,
            keepalive: framing
                .keepalive
                .map(|(every, _)| Box::pin(tokio::time::sleep(every))),
            audit,
            started,
            out: prelude,
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
            self.write.line(last, Bytes::new(), &mut self.out);
        }
        let err = budget.error();
        if !self.write.fail(&err, &mut self.out) {
            (self.framing.error)(&err, &mut self.out);
        }
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
    F: LineWriter<T>,
{
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        // The opening events of a body that started before its upstream answered.
        if !this.out.is_empty() && !this.ended {
            return this.frame();
        }
        while !this.ended {
            let polled = match this.lines.as_mut() {
                None => break,
                Some(Source::Ready(lines)) => Pin::new(lines).poll_next(cx),
                Some(Source::Waiting(pending)) => match pending.as_mut().poll(cx) {
                    Poll::Ready(Ok(lines)) => {
                        this.lines = Some(Source::Ready(lines));
                        continue;
                    }
                    Poll::Ready(Err(err)) => Poll::Ready(Some(Err(err))),
                    Poll::Pending => Poll::Pending,
                },
            };
            match polled {
                Poll::Ready(Some(Ok((line, raw)))) => {
                    this.audit.observe_line(&line, this.started);
                    let done = line.is_done();
                    if !done {
                        this.streamed += 1;
                    }
                    let budget = this.budget.filter(|b| !done && this.streamed >= b.tokens);
                    let cut = budget.map(|_| line.cut_short(this.streamed));
                    this.write.line(line, raw, &mut this.out);
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
                    if !this.write.fail(&err, &mut this.out) {
                        (this.framing.error)(&err, &mut this.out);
                    }
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

/// A native answer passed through chunk for chunk. If the upstream fails mid-answer, or a
/// successful NDJSON stream ends without its `done: true` line (real Ollama 0.24 sometimes ends
/// a long generation early with a clean EOF), an NDJSON stream ends with an `{"error": ...}`
/// line (on a line of its own); any other body is cut off, as there is no in-band way to say it.
///
/// Ollama's own `{"error"` lines in an NDJSON stream have the upstream's addresses scrubbed
/// from them. Such a line (or what may become one) that a chunk leaves unfinished is held back
/// until its end arrives, so it is scrubbed whole; every other line goes on at once.
pub struct PassthroughBody {
    /// `None` once the stream was ended early: dropping it closes the upstream request.
    chunks: Option<UpstreamChunks>,
    /// Lines (tokens) an NDJSON stream may still send (hard quota), and how many it has.
    budget: Option<HardBudget>,
    streamed: u64,
    ndjson: bool,
    at_line_start: bool,
    /// The unfinished start of an `{"error"` line (NDJSON only; empty almost always).
    held: BytesMut,
    /// The audit record gets the time to the first and the last byte and Ollama's token counts,
    /// if there is one.
    audit: Option<Audit>,
    /// The answer's last line, for the token counts (with an audit record) and to see that an
    /// NDJSON stream ended with its `done` line.
    tail: Option<Tail>,
    started: Instant,
    ended: bool,
    _open: Option<InFlight>,
}

/// How an error line of Ollama's starts.
const ERROR_LINE: &[u8] = b"{\"error\"";
/// The most of an unfinished error line held back before it is sent on as it is.
const MAX_HELD: usize = 64 * 1024;

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
            held: BytesMut::new(),
            tail: (audit.is_some() || ndjson).then(Tail::default),
            audit,
            started,
            ended: false,
            _open: ndjson.then(InFlight::stream),
        }
    }

    /// What of an NDJSON `chunk` can go on now (scrubbed if it holds an error line), holding
    /// back an unfinished error line; `None` when all of it is held.
    fn pass_ndjson(&mut self, chunk: Bytes) -> Option<Bytes> {
        let starts_line = self.at_line_start || !self.held.is_empty();
        let data = if self.held.is_empty() {
            chunk
        } else {
            self.held.extend_from_slice(&chunk);
            self.held.split().freeze()
        };
        let last_line = data.iter().rposition(|b| *b == b'\n').map(|i| i + 1);
        let unfinished = &data[last_line.unwrap_or(0)..];
        let may_be_error = !unfinished.is_empty()
            && (last_line.is_some() || starts_line)
            && (unfinished.starts_with(ERROR_LINE) || ERROR_LINE.starts_with(unfinished))
            && unfinished.len() <= MAX_HELD;
        let ready = if may_be_error {
            let at = last_line.unwrap_or(0);
            self.held.extend_from_slice(&data[at..]);
            data.slice(..at)
        } else {
            data
        };
        (!ready.is_empty()).then(|| self.scrubbed(ready))
    }

    /// `data` with the addresses in its error lines scrubbed.
    fn scrubbed(&self, data: Bytes) -> Bytes {
        if !data.windows(ERROR_LINE.len()).any(|w| w == ERROR_LINE) {
            return data;
        }
        let Some(chunks) = &self.chunks else {
            return data;
        };
        match chunks.scrubber().scrub_bytes(&data) {
            Some(scrubbed) => {
                tracing::warn!(
                    original = ?String::from_utf8_lossy(&data),
                    "upstream error line named an address"
                );
                Bytes::from(scrubbed)
            }
            None => data,
        }
    }

    /// Count the lines of `out`; once they reach the budget with more to come, end the stream
    /// there: the lines within the budget, then the `quota_exceeded` error line, and the
    /// upstream request closed now.
    fn over_budget(&mut self, out: &Bytes, budget: HardBudget) -> Option<Bytes> {
        let mut keep = None;
        for (at, _) in out.iter().enumerate().filter(|(_, b)| **b == b'\n') {
            self.streamed += 1;
            if self.streamed >= budget.tokens {
                keep = Some(at + 1);
                break;
            }
        }
        let keep = keep?;
        // The line that spends the budget may be the last one anyway.
        if keep == out.len() && out.windows(11).any(|w| w == b"\"done\":true") {
            return None;
        }
        self.chunks = None;
        self.held.clear();
        self.ended = true;
        let mut cut = BytesMut::from(&out[..keep]);
        (NDJSON.error)(&budget.error(), &mut cut);
        if let Some(audit) = &self.audit {
            audit.set_upstream_time(self.started.elapsed());
            audit.set_tokens(None, Some(self.streamed));
            audit.set_stream_error("quota_exceeded");
        }
        Some(cut.freeze())
    }

    /// The held-back bytes, scrubbed, when the body ends.
    fn release_held(&mut self) -> Option<Bytes> {
        (!self.held.is_empty()).then(|| {
            let held = self.held.split().freeze();
            self.scrubbed(held)
        })
    }

    /// End an NDJSON stream with an error line (on a line of its own), after what was held.
    fn fail(&mut self, err: GatewayError) -> Poll<Option<Result<Frame<Bytes>, GatewayError>>> {
        if let Some(audit) = &self.audit {
            audit.set_stream_error(err.code().unwrap_or("upstream_error"));
        }
        let mut out = BytesMut::new();
        if let Some(held) = self.release_held() {
            out.extend_from_slice(&held);
            self.at_line_start = false;
        }
        if !self.at_line_start {
            out.put_u8(b'\n');
        }
        (NDJSON.error)(&err, &mut out);
        Poll::Ready(Some(Ok(Frame::data(out.freeze()))))
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
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            let Some(chunks) = this.chunks.as_mut() else {
                return Poll::Ready(None);
            };
            match chunks.poll_chunk(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Some(audit) = &this.audit {
                        audit.mark_first_token();
                    }
                    if let Some(tail) = &mut this.tail {
                        tail.push(&chunk);
                    }
                    let out = if this.ndjson {
                        match this.pass_ndjson(chunk) {
                            Some(out) => out,
                            None => continue,
                        }
                    } else {
                        chunk
                    };
                    if let Some(budget) = this.budget
                        && let Some(cut) = this.over_budget(&out, budget)
                    {
                        return Poll::Ready(Some(Ok(Frame::data(cut))));
                    }
                    if let Some(last) = out.last() {
                        this.at_line_start = *last == b'\n';
                    }
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    let last = this.tail.as_ref().and_then(Tail::last_line);
                    if let Some(audit) = &this.audit {
                        audit.set_upstream_time(this.started.elapsed());
                        if let Some(last) = &last {
                            if let Some((prompt, completion)) = last.token_counts() {
                                audit.set_tokens(prompt, completion);
                            }
                            audit.set_load_duration(last.load_duration);
                        }
                    }
                    if this.ndjson && !last.is_some_and(|l| l.ends_stream()) {
                        tracing::warn!("upstream NDJSON stream ended before its done line");
                        return this.fail(GatewayError::UpstreamInterrupted);
                    }
                    return Poll::Ready(this.release_held().map(|held| Ok(Frame::data(held))));
                }
                Poll::Ready(Some(Err(err))) => {
                    this.ended = true;
                    if !this.ndjson {
                        return Poll::Ready(Some(Err(err)));
                    }
                    return this.fail(err);
                }
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

/// Append one named SSE event, `event: <name>\ndata: <json>\n\n`.
pub fn write_named_event<T: Serialize>(out: &mut BytesMut, name: &str, value: &T) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.put_u8(b'\n');
    write_event(out, value);
}

/// Append one NDJSON line.
pub fn write_line<T: Serialize>(out: &mut BytesMut, value: &T) {
    if serde_json::to_writer((&mut *out).writer(), value).is_err() {
        tracing::error!("could not serialise an NDJSON line");
    }
    out.put_u8(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::Shutdown;
    use crate::upstream::Scrubber;
    use http_body_util::{BodyExt, StreamBody};
    use std::sync::Arc;

    /// What a native NDJSON passthrough of `chunks` sends, frame by frame.
    async fn passed(chunks: &[&'static str]) -> Vec<String> {
        let frames: Vec<Result<Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))))
            .collect();
        let frames = futures::stream::iter(frames);
        let scrubber = Scrubber::new(
            &reqwest::Url::parse("http://10.1.2.3:11434").unwrap_or_else(|e| panic!("{e}")),
        );
        let chunks = UpstreamChunks::new(
            Box::pin(StreamBody::new(frames)),
            Duration::from_secs(5),
            &Shutdown::new(),
            Arc::new(scrubber),
        );
        let mut body = PassthroughBody::new(chunks, true, None, Instant::now());
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.unwrap_or_else(|e| panic!("{e}"));
            if let Ok(data) = frame.into_data() {
                out.push(String::from_utf8_lossy(&data).into_owned());
            }
        }
        out
    }

    #[tokio::test]
    async fn error_lines_split_across_chunks_are_scrubbed_whole() {
        let out = passed(&[
            "{\"done\":false}\n{\"er",
            "ror\":\"dial tcp 10.1.",
            "2.3:11434: refused\"}\n",
        ])
        .await;
        assert_eq!(
            out,
            vec![
                "{\"done\":false}\n",
                "{\"error\":\"dial tcp [upstream]: refused\"}\n"
            ]
        );
        // Other lines are never held back, even when a chunk splits them.
        let out = passed(&[
            "{\"done\":false,\"x\":\"10.1.",
            "2.3\"}\n",
            "{\"done\":true}",
        ])
        .await;
        assert_eq!(
            out,
            vec![
                "{\"done\":false,\"x\":\"10.1.",
                "2.3\"}\n",
                "{\"done\":true}"
            ]
        );
        // A stream cut inside an error line: what was held goes out scrubbed, then, on a line
        // of its own, the gateway's error line (the stream never ended properly).
        let out = passed(&["{\"error\":\"at http://10.1.2.3:11434/x"]).await;
        assert_eq!(
            out,
            vec![
                "{\"error\":\"at [upstream]\n{\"error\":\"the model server ended the stream before it was complete\"}\n"
            ]
        );
    }
}
