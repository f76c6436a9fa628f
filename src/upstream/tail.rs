//! The last line of an upstream answer, kept while the answer is passed through unparsed, so the
//! audit record gets Ollama's token counts (on the last line of a stream, or in the one JSON
//! object of a non-streamed answer) without parsing every chunk.

use bytes::{Bytes, BytesMut};

/// Longest last line kept; a longer one (a huge embedding answer) gives no counts.
pub const MAX_TAIL: usize = 1024 * 1024;

/// The last complete line seen, and the bytes after it.
#[derive(Debug, Default)]
pub struct Tail {
    last: Bytes,
    partial: BytesMut,
    overflowed: bool,
}

impl Tail {
    /// Take note of the next chunk of the answer.
    pub fn push(&mut self, chunk: &Bytes) {
        match chunk.iter().rposition(|b| *b == b'\n') {
            None => {
                if self.partial.len() + chunk.len() > MAX_TAIL {
                    self.overflowed = true;
                    self.partial.clear();
                } else if !self.overflowed {
                    self.partial.extend_from_slice(chunk);
                }
            }
            Some(end) => {
                let start = chunk[..end].iter().rposition(|b| *b == b'\n');
                self.last = match start {
                    Some(newline) => chunk.slice(newline + 1..end),
                    None if self.overflowed => Bytes::new(),
                    // The whole line is in this chunk: a slice of it, whatever its length.
                    None if self.partial.is_empty() => chunk.slice(..end),
                    None if self.partial.len() + end > MAX_TAIL => Bytes::new(),
                    None => {
                        self.partial.extend_from_slice(&chunk[..end]);
                        self.partial.split().freeze()
                    }
                };
                self.overflowed = false;
                self.partial.clear();
                self.partial.extend_from_slice(&chunk[end + 1..]);
            }
        }
    }

    /// The answer's last line (or its one JSON object), parsed: `None` when it is not a JSON
    /// object or was too long to keep.
    pub fn last_line(&self) -> Option<LastLine> {
        let line = if self.partial.iter().all(u8::is_ascii_whitespace) {
            &self.last[..]
        } else if self.overflowed {
            return None;
        } else {
            &self.partial[..]
        };
        serde_json::from_slice(line).ok()
    }

    /// Ollama's prompt and completion token counts, if the answer ended with them.
    pub fn token_counts(&self) -> Option<(Option<u64>, Option<u64>)> {
        self.last_line()?.token_counts()
    }
}

/// What the gateway reads from the last line of a passed-through answer.
#[derive(Debug, Default, serde::Deserialize)]
pub struct LastLine {
    pub done: Option<bool>,
    pub error: Option<serde_json::Value>,
    /// The progress lines of pull, push and create; the last says `success`.
    pub status: Option<String>,
    pub prompt_eval_count: Option<u64>,
    pub eval_count: Option<u64>,
    pub load_duration: Option<u64>,
}

impl LastLine {
    /// The token counts, if the line has any.
    pub fn token_counts(&self) -> Option<(Option<u64>, Option<u64>)> {
        (self.prompt_eval_count.is_some() || self.eval_count.is_some())
            .then_some((self.prompt_eval_count, self.eval_count))
    }

    /// Whether an NDJSON stream ending with this line ended properly: with its `done: true`
    /// line (chat, generate), `{"status": "success"}` (pull, push, create), or Ollama's own
    /// error line.
    pub fn ends_stream(&self) -> bool {
        self.done == Some(true) || self.error.is_some() || self.status.as_deref() == Some("success")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(chunks: &[&'static str]) -> Option<(Option<u64>, Option<u64>)> {
        let mut tail = Tail::default();
        for chunk in chunks {
            tail.push(&Bytes::from_static(chunk.as_bytes()));
        }
        tail.token_counts()
    }

    #[test]
    fn counts_come_from_the_last_line_wherever_the_chunks_break() {
        let done = Some((Some(26), Some(7)));
        assert_eq!(
            counts(&[
                "{\"done\":false}\n{\"done\":true,\"prompt_eval_count\":26,\"eval_count\":7}\n"
            ]),
            done
        );
        assert_eq!(
            counts(&[
                "{\"done\":false}\n{\"done\":tr",
                "ue,\"prompt_eval_",
                "count\":26,\"eval_count\":7}\n"
            ]),
            done
        );
        // A non-streamed answer: one object, perhaps without a newline.
        assert_eq!(
            counts(&["{\"prompt_eval_count\":26,", "\"eval_count\":7}"]),
            done
        );
        assert_eq!(
            counts(&["{\"prompt_eval_count\":3}"]),
            Some((Some(3), None))
        );
    }

    #[test]
    fn a_stream_ends_properly_with_its_done_line_or_an_error_line_only() {
        let ends = |chunks: &[&'static str]| {
            let mut tail = Tail::default();
            for chunk in chunks {
                tail.push(&Bytes::from_static(chunk.as_bytes()));
            }
            tail.last_line().is_some_and(|l| l.ends_stream())
        };
        assert!(ends(&[
            "{\"done\":false}\n{\"done\":true,\"eval_count\":2}\n"
        ]));
        assert!(ends(&["{\"done\":false}\n{\"error\":\"boom\"}\n"]));
        assert!(
            !ends(&["{\"done\":false}\n{\"done\":false}\n"]),
            "cut after a line"
        );
        assert!(
            !ends(&["{\"done\":false}\n{\"done\":tr"]),
            "cut inside a line"
        );
        assert!(!ends(&[]), "nothing at all");
        assert!(ends(&[
            "{\"status\":\"pulling\"}\n{\"status\":\"success\"}\n"
        ]));
        assert!(!ends(&[
            "{\"status\":\"success\"}\n{\"status\":\"pulling\"}\n"
        ]));
    }

    #[test]
    fn no_counts_from_error_lines_cut_streams_or_overlong_lines() {
        assert_eq!(counts(&["{\"done\":false}\n{\"error\":\"boom\"}\n"]), None);
        assert_eq!(
            counts(&["{\"done\":false}\n{\"done\":true,\"eval_co"]),
            None
        );
        let long = format!(
            "{{\"eval_count\":1,\"pad\":\"{}\"}}\n",
            "x".repeat(MAX_TAIL)
        );
        let mut tail = Tail::default();
        tail.push(&Bytes::from(long));
        assert_eq!(
            tail.token_counts(),
            Some((None, Some(1))),
            "one chunk: kept as a slice"
        );
        let mut tail = Tail::default();
        tail.push(&Bytes::from(format!(
            "{{\"eval_count\":1,\"pad\":\"{}",
            "x".repeat(MAX_TAIL)
        )));
        tail.push(&Bytes::from_static(b"\"}\n"));
        assert_eq!(
            tail.token_counts(),
            None,
            "spread over chunks: too long to keep"
        );
    }
}
