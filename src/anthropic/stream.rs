//! Ollama's NDJSON stream → Anthropic's named Messages events, one upstream line at a time.
//!
//! The order Anthropic's SDKs expect: `message_start`; per content block
//! `content_block_start`, `content_block_delta`..., `content_block_stop`; `message_delta`
//! (stop reason, usage); `message_stop`. Blocks open and close as Ollama's lines switch between
//! thinking and text; a tool call is one `tool_use` block whose input arrives in one
//! `input_json_delta`. The translator is pure: the route writes what it returns (`ping` and the
//! `error` event are the framing's job).

use serde_json::{Value, json};

use super::response::{stop_reason, tool_use, usage};
use super::stop::StopEvidence;
use crate::ollama::types::ChatResponse;
use crate::openai::response::new_id;

/// One event: its name (also its `type`) and its JSON.
pub type Event = (&'static str, Value);

/// The block being written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    Thinking,
    Text,
}

/// State of one `/v1/messages` stream.
#[derive(Debug)]
pub struct MessagesStream {
    id: String,
    /// The requested model, for a `message_start` sent before Ollama's first line.
    model: String,
    started: bool,
    /// The open block and its index.
    open: Option<(Open, usize)>,
    next_index: usize,
    saw_tool_use: bool,
    /// What tells which stop sequence ended the answer.
    stop: StopEvidence,
}

impl MessagesStream {
    /// A new stream for `model`.
    pub fn new(model: &str) -> Self {
        Self {
            id: new_id("msg_"),
            model: model.to_owned(),
            started: false,
            open: None,
            next_index: 0,
            saw_tool_use: false,
            stop: StopEvidence::default(),
        }
    }

    /// The request's stop sequences (to tell which one ended the answer).
    #[must_use]
    pub fn with_stop_sequences(mut self, stop_sequences: Vec<String>) -> Self {
        self.stop = StopEvidence::new(stop_sequences);
        self
    }

    /// The events for one upstream line (which must not be an error line).
    pub fn line(&mut self, line: ChatResponse) -> Vec<Event> {
        let mut events = self.start(&line.model);
        self.stop.observe(&line);
        let message = line.message.unwrap_or_default();
        if let Some(thinking) = message.thinking.filter(|t| !t.is_empty()) {
            let index = self.ensure_open(Open::Thinking, &mut events);
            events.push(delta(
                index,
                json!({"type": "thinking_delta", "thinking": thinking}),
            ));
        }
        if !message.content.is_empty() {
            let index = self.ensure_open(Open::Text, &mut events);
            events.push(delta(
                index,
                json!({"type": "text_delta", "text": message.content}),
            ));
        }
        for call in message.tool_calls {
            self.close(&mut events);
            self.saw_tool_use = true;
            let (id, name, input) = tool_use(call);
            let index = self.take_index();
            events.push((
                "content_block_start",
                json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
            ));
            events.push(delta(
                index,
                json!({"type": "input_json_delta", "partial_json": input.to_string()}),
            ));
            events.push(stop(index));
        }
        if line.done {
            // An empty answer still has one (empty) text block, as Anthropic sends it.
            if self.next_index == 0 {
                self.ensure_open(Open::Text, &mut events);
            }
            self.close(&mut events);
            let usage = usage(line.prompt_eval_count, line.eval_count);
            let matched = self
                .stop
                .matched(line.done_reason.as_deref(), line.eval_count)
                .filter(|_| !self.saw_tool_use);
            let reason = stop_reason(
                line.done_reason.as_deref(),
                self.saw_tool_use,
                matched.as_deref(),
            );
            events.push((
                "message_delta",
                json!({"type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": matched},
                    "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}}),
            ));
            events.push(("message_stop", json!({"type": "message_stop"})));
        }
        events
    }

    /// `message_start`, once: on the first line, or earlier when the route starts the stream
    /// before Ollama answers (then with the requested model's name).
    pub fn start(&mut self, model: &str) -> Vec<Event> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        let model = if model.is_empty() { &self.model } else { model };
        vec![(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                // Ollama reports the prompt's count on its last line; message_delta has it.
                "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        )]
    }

    fn take_index(&mut self) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        index
    }

    /// The index of an open block of `kind`, opening one (and closing another) if needed.
    fn ensure_open(&mut self, kind: Open, events: &mut Vec<Event>) -> usize {
        if let Some((open, index)) = self.open
            && open == kind
        {
            return index;
        }
        self.close(events);
        let index = self.take_index();
        let block = match kind {
            Open::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            Open::Text => json!({"type": "text", "text": ""}),
        };
        events.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        self.open = Some((kind, index));
        index
    }

    fn close(&mut self, events: &mut Vec<Event>) {
        if let Some((kind, index)) = self.open.take() {
            if kind == Open::Thinking {
                // The SDKs expect a signature before a thinking block ends; Ollama signs nothing.
                events.push(delta(
                    index,
                    json!({"type": "signature_delta", "signature": ""}),
                ));
            }
            events.push(stop(index));
        }
    }
}

fn delta(index: usize, delta: Value) -> Event {
    (
        "content_block_delta",
        json!({"type": "content_block_delta", "index": index, "delta": delta}),
    )
}

fn stop(index: usize) -> Event {
    (
        "content_block_stop",
        json!({"type": "content_block_stop", "index": index}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lines: &[Value]) -> Vec<Event> {
        let mut stream = MessagesStream::new("m");
        lines
            .iter()
            .flat_map(|l| stream.line(serde_json::from_value(l.clone()).unwrap_or_default()))
            .collect()
    }

    fn names(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(|(n, _)| *n).collect()
    }

    #[test]
    fn thinking_then_text_are_two_blocks_in_order() {
        let events = run(&[
            json!({"model":"qwen3","message":{"role":"assistant","content":"","thinking":"2+2"},"done":false}),
            json!({"model":"qwen3","message":{"role":"assistant","content":"","thinking":"=4"},"done":false}),
            json!({"model":"qwen3","message":{"role":"assistant","content":"4"},"done":false}),
            json!({"model":"qwen3","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":9,"eval_count":3}),
        ]);
        assert_eq!(
            names(&events),
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(events[0].1["message"]["model"], "qwen3");
        assert_eq!(events[1].1["content_block"]["type"], "thinking");
        assert_eq!(
            events[2].1["delta"],
            json!({"type":"thinking_delta","thinking":"2+2"})
        );
        assert_eq!(events[4].1["delta"]["type"], "signature_delta");
        assert_eq!(events[6].1["index"], 1);
        assert_eq!(
            events[7].1["delta"],
            json!({"type":"text_delta","text":"4"})
        );
        assert_eq!(events[9].1["delta"]["stop_reason"], "end_turn");
        assert_eq!(
            events[9].1["usage"],
            json!({"input_tokens":9,"output_tokens":3})
        );
        for (name, data) in &events {
            assert_eq!(data["type"], *name);
        }
    }

    #[test]
    fn tool_calls_are_tool_use_blocks_with_one_json_delta() {
        let events = run(&[
            json!({"model":"m","message":{"role":"assistant","content":"","tool_calls":[
                {"id":"call_a","function":{"name":"f","arguments":{"x":1}}},
                {"function":{"name":"g","arguments":{}}}]},"done":false}),
            json!({"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop"}),
        ]);
        assert_eq!(
            events[1].1["content_block"],
            json!({"type":"tool_use","id":"call_a","name":"f","input":{}})
        );
        assert_eq!(
            events[2].1["delta"],
            json!({"type":"input_json_delta","partial_json":"{\"x\":1}"})
        );
        assert_eq!(events[4].1["index"], 1);
        assert!(
            events[4].1["content_block"]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("toolu_"))
        );
        let delta = events
            .iter()
            .find(|(n, _)| *n == "message_delta")
            .map(|(_, d)| d.clone());
        assert_eq!(
            delta.map(|d| d["delta"]["stop_reason"].clone()),
            Some(json!("tool_use"))
        );
    }

    #[test]
    fn message_start_is_sent_once_even_when_sent_early() {
        let mut stream = MessagesStream::new("llama3.2");
        let early = stream.start("");
        assert_eq!(early.len(), 1);
        assert_eq!(early[0].1["message"]["model"], "llama3.2");
        let line: ChatResponse = serde_json::from_value(
            json!({"model":"llama3.2","message":{"role":"assistant","content":"Hi"},"done":false}),
        )
        .unwrap_or_default();
        let events = stream.line(line);
        assert_eq!(
            names(&events),
            ["content_block_start", "content_block_delta"]
        );
    }

    #[test]
    fn a_stop_sequence_is_reported_in_message_delta() {
        // What the real Ollama 0.24 streamed for stop "way" (fixtures/recorded/chat-stop-stream).
        let mut stream = MessagesStream::new("tiny").with_stop_sequences(vec!["way".into()]);
        let lines = [
            json!({"model":"tiny","message":{"role":"assistant","content":" can"},"done":false,"logprobs":[{"token":" can","logprob":-1.5}]}),
            json!({"model":"tiny","message":{"role":"assistant","content":" "},"done":false,"logprobs":[{"token":" way","logprob":-0.2}]}),
            json!({"model":"tiny","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":30,"eval_count":2}),
        ];
        let events: Vec<Event> = lines
            .iter()
            .flat_map(|l| stream.line(serde_json::from_value(l.clone()).unwrap_or_default()))
            .collect();
        let delta = events
            .iter()
            .find(|(n, _)| *n == "message_delta")
            .map(|(_, d)| d["delta"].clone())
            .unwrap_or_default();
        assert_eq!(
            delta,
            json!({"stop_reason":"stop_sequence","stop_sequence":"way"})
        );
    }

    #[test]
    fn length_is_max_tokens_and_an_empty_answer_has_a_text_block() {
        let events = run(&[
            json!({"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"length"}),
        ]);
        assert_eq!(
            names(&events),
            [
                "message_start",
                "content_block_start",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(events[3].1["delta"]["stop_reason"], "max_tokens");
    }
}
