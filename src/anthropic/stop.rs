//! Which of a request's `stop_sequences` ended Ollama's answer, worked out from what Ollama
//! shows, since Ollama does not say.
//!
//! Ollama ends an answer with `done_reason: "stop"` both when the model emits its end-of-turn
//! token and when a stop sequence appears, and it cuts the stop sequence (and whatever followed
//! it in the same token) out of the text. What it does show, when the request asks for
//! `logprobs` (the gateway does whenever there are stop sequences), is read from its runner
//! (Ollama 0.24, both engines; checked against the real server in `tests/real`):
//!
//! - `eval_count` counts every token the model produced, the end-of-turn token or the tokens
//!   of the stop sequence included.
//! - The end-of-turn token gets no logprob entry; every other token shown gets one, with the
//!   token's whole text, even when Ollama cut the stop sequence out of the middle of it.
//! - Tokens that lay wholly inside the stop sequence (from its start on) are dropped with their
//!   logprob entries.
//!
//! So with `hidden` = `eval_count` minus the logprob entries, and `tail` = the part of the last
//! entry's token that is not at the end of the text:
//!
//! | hidden | tail | what happened | answer |
//! |---|---|---|---|
//! | 0 | the stop and after | the stop sequence began and ended inside the last token | `stop_sequence`, the first stop (request order) the tail starts with: certain |
//! | 1 | non-empty | it began inside the last token shown and ended in the next | `stop_sequence`, a stop that starts with the tail |
//! | ≥ 2 | any | tokens were dropped: only a stop sequence does that | `stop_sequence`, a stop that starts with the tail |
//! | 1 | empty | the end-of-turn token, **or** a stop sequence that began exactly at a token's start and ended inside that one token | cannot be told apart: `end_turn` |
//!
//! Where more than one of the request's stop sequences fits, the first of them in the
//! request's order is named. Where Ollama gives no logprobs or no `eval_count`, nothing can be
//! known and the answer is `end_turn`, as Ollama's own Anthropic layer always says.

use serde_json::Value;

use crate::ollama::types::{ChatRequest, ChatResponse};

/// The most of the answer's end kept to compare with the last token.
const KEEP: usize = 4096;

/// What a stream (or a whole answer) has shown so far, for [`matched`](Self::matched).
#[derive(Clone, Debug, Default)]
pub struct StopEvidence {
    /// The request's stop sequences, in its order.
    stops: Vec<String>,
    /// Logprob entries seen.
    entries: u64,
    /// The last entry's token.
    last_token: Option<String>,
    /// The end of the text shown (thinking and content, as they came).
    shown: String,
}

/// The stop sequences a native request carries (`options.stop`).
pub fn stop_sequences(request: &ChatRequest) -> Vec<String> {
    match request.options.get("stop") {
        Some(Value::Array(stops)) => stops
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

impl StopEvidence {
    /// Evidence for a request with these stop sequences.
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops,
            ..Self::default()
        }
    }

    /// Take in one line (or a whole answer).
    pub fn observe(&mut self, line: &ChatResponse) {
        if self.stops.is_empty() {
            return;
        }
        if let Some(entries) = &line.logprobs
            && let Some(last) = entries.last()
        {
            self.entries += entries.len() as u64;
            self.last_token = Some(last.token.clone());
        }
        if let Some(message) = &line.message {
            if let Some(thinking) = &message.thinking {
                self.shown.push_str(thinking);
            }
            self.shown.push_str(&message.content);
        }
        if self.shown.len() > 2 * KEEP {
            let mut cut = self.shown.len() - KEEP;
            while !self.shown.is_char_boundary(cut) {
                cut += 1;
            }
            self.shown.drain(..cut);
        }
    }

    /// The stop sequence that ended the answer, if that can be known (see the module's table);
    /// `done_reason` and `eval_count` come from Ollama's last line.
    pub fn matched(&self, done_reason: Option<&str>, eval_count: Option<u64>) -> Option<String> {
        if done_reason != Some("stop") || self.stops.is_empty() {
            return None;
        }
        let last = self.last_token.as_deref()?;
        let hidden = eval_count?.checked_sub(self.entries)?;
        let tail = hidden_tail(&self.shown, last);
        let fits = |stop: &&String| match hidden {
            0 => tail.starts_with(stop.as_str()),
            _ => stop.len() > tail.len() && stop.starts_with(tail),
        };
        match (hidden, tail.is_empty()) {
            (0 | 1, true) => None,
            _ => self.stops.iter().find(fits).cloned(),
        }
    }
}

/// The part of `token` that is not at the end of `shown`: empty when all of it is, the whole
/// token when none of it is.
fn hidden_tail<'t>(shown: &str, token: &'t str) -> &'t str {
    let mut end = token.len();
    loop {
        if token.is_char_boundary(end) && shown.ends_with(&token[..end]) {
            return &token[end..];
        }
        if end == 0 {
            return token;
        }
        end -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The evidence of lines (content, logprob tokens) as Ollama sent them.
    fn seen(stops: &[&str], lines: &[(&str, &[&str])]) -> StopEvidence {
        let mut evidence = StopEvidence::new(stops.iter().map(|s| (*s).to_owned()).collect());
        for (content, tokens) in lines {
            let logprobs: Vec<Value> = tokens
                .iter()
                .map(|t| json!({"token": t, "logprob": -0.1}))
                .collect();
            let line: ChatResponse = serde_json::from_value(json!({"model": "m",
                "message": {"role": "assistant", "content": content},
                "logprobs": logprobs, "done": false}))
            .unwrap_or_default();
            evidence.observe(&line);
        }
        evidence
    }

    // The first four lines are what the real Ollama 0.24 sent for the tiny model (seed 42),
    // whose tokens are " can", " about", " could", " way", ... (fixtures/recorded/chat-stop-*).

    #[test]
    fn a_stop_inside_the_last_token_is_certain() {
        // stop "way": the token " way" is shown as " ", its entry keeps " way"; eval_count 4.
        let e = seen(
            &["nope", "way"],
            &[
                (" can", &[" can"]),
                (" about", &[" about"]),
                (" could", &[" could"]),
                (" ", &[" way"]),
            ],
        );
        assert_eq!(e.matched(Some("stop"), Some(4)).as_deref(), Some("way"));
        assert_eq!(e.matched(Some("length"), Some(4)), None);
        // "wa" is earlier in the request than "way" and the tail starts with both: Ollama
        // looks for them in the request's order, so it cut at "wa".
        let e = seen(&["wa", "way"], &[(" can", &[" can"]), (" ", &[" way"])]);
        assert_eq!(e.matched(Some("stop"), Some(2)).as_deref(), Some("wa"));
    }

    #[test]
    fn a_stop_over_two_tokens_that_begins_inside_one() {
        // stop "could way": " could" was held back, then cut to " "; " way" dropped.
        let e = seen(
            &["could way"],
            &[
                (" can", &[" can"]),
                (" about", &[" about"]),
                (" ", &[" could"]),
            ],
        );
        assert_eq!(
            e.matched(Some("stop"), Some(4)).as_deref(),
            Some("could way")
        );
        // A stop the tail does not begin is not named.
        let e = seen(&["xyz"], &[(" can", &[" can"]), (" ", &[" could"])]);
        assert_eq!(e.matched(Some("stop"), Some(3)), None);
    }

    #[test]
    fn dropped_tokens_mean_a_stop_sequence() {
        // stop " could way": both tokens dropped with their entries; eval_count 4, 2 entries.
        let e = seen(
            &[" could way"],
            &[(" can", &[" can"]), (" about", &[" about"])],
        );
        assert_eq!(
            e.matched(Some("stop"), Some(4)).as_deref(),
            Some(" could way")
        );
    }

    #[test]
    fn one_hidden_token_at_a_boundary_cannot_be_told_from_the_end_of_the_turn() {
        // stop " way": the token " way" is dropped whole; the end-of-turn token would look the
        // same (no entry, one more in eval_count).
        let e = seen(
            &[" way"],
            &[
                (" can", &[" can"]),
                (" about", &[" about"]),
                (" could", &[" could"]),
            ],
        );
        assert_eq!(e.matched(Some("stop"), Some(4)), None);
    }

    #[test]
    fn no_logprobs_no_counts_or_no_stops_tell_nothing() {
        let e = seen(&["way"], &[(" can", &[]), (" ", &[])]);
        assert_eq!(e.matched(Some("stop"), Some(4)), None);
        let e = seen(&["way"], &[(" ", &[" way"])]);
        assert_eq!(e.matched(Some("stop"), None), None);
        let e = seen(&[], &[(" ", &[" way"])]);
        assert_eq!(e.matched(Some("stop"), Some(1)), None);
    }

    #[test]
    fn the_tail_is_what_the_text_does_not_end_with() {
        assert_eq!(hidden_tail("a b ", " way"), "way");
        assert_eq!(hidden_tail("a way", " way"), "");
        assert_eq!(hidden_tail("abc", "xyz"), "xyz");
        assert_eq!(hidden_tail("é", "éa"), "a");
    }
}
