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

    /// Ollama's prompt and completion token counts, if the answer ended with them.
    pub fn token_counts(&self) -> Option<(Option<u64>, Option<u64>)> {
        #[derive(serde::Deserialize)]
        struct Counts {
            prompt_eval_count: Option<u64>,
            eval_count: Option<u64>,
        }
        let line = if self.partial.iter().all(u8::is_ascii_whitespace) {
            &self.last[..]
        } else if self.overflowed {
            return None;
        } else {
            &self.partial[..]
        };
        let counts: Counts = serde_json::from_slice(line).ok()?;
        (counts.prompt_eval_count.is_some() || counts.eval_count.is_some())
            .then_some((counts.prompt_eval_count, counts.eval_count))
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
