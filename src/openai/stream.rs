//! Ollama's NDJSON stream → OpenAI stream chunks, one upstream line at a time.
//!
//! The translators hold the little state a stream needs (whether the role was sent, whether a
//! tool call was seen, the pinned `created`) and are pure: HTTP code feeds them lines and writes
//! whatever chunks they return. Framing (`data: ...`, `[DONE]`, error events) is done by the route.

use super::response::{
    SYSTEM_FINGERPRINT, completion_logprobs, created, finish_reason, logprobs, new_id, tool_calls,
};
use super::types::{ChatCompletionChunk, ChunkChoice, Completion, CompletionChoice, Delta, Usage};
use crate::ollama::types::{ChatResponse, GenerateResponse};

/// State of one `/v1/chat/completions` stream.
#[derive(Debug)]
pub struct ChatStream {
    id: String,
    include_usage: bool,
    created: Option<i64>,
    role_sent: bool,
    saw_tool_calls: bool,
    next_tool_index: u32,
}

impl ChatStream {
    /// A new stream; `include_usage` is `stream_options.include_usage`.
    pub fn new(include_usage: bool) -> Self {
        Self {
            id: new_id("chatcmpl-"),
            include_usage,
            created: None,
            role_sent: false,
            saw_tool_calls: false,
            next_tool_index: 0,
        }
    }

    /// The chunks for one upstream line (which must not be an error line). After a `done`
    /// line the stream is complete and the caller sends `[DONE]`.
    pub fn line(&mut self, line: ChatResponse) -> Vec<ChatCompletionChunk> {
        // One `created` for the whole stream: the first line's timestamp.
        let created = *self
            .created
            .get_or_insert_with(|| created(line.created_at.as_deref()));
        let mut chunks = Vec::new();
        let message = line.message.unwrap_or_default();
        let thinking = message.thinking.filter(|t| !t.is_empty());
        let calls = tool_calls(message.tool_calls, &mut self.next_tool_index);
        let mut line_logprobs = logprobs(line.logprobs);

        // Reasoning travels in its own chunk, ahead of content from the same line.
        if let Some(thinking) = thinking {
            let delta = Delta {
                reasoning_content: Some(thinking.clone()),
                reasoning: Some(thinking),
                ..Delta::default()
            };
            let logprobs = if message.content.is_empty() && calls.is_empty() {
                line_logprobs.take()
            } else {
                None
            };
            chunks.push(self.delta_chunk(&line.model, created, delta, logprobs));
        }
        let has_content = !message.content.is_empty();
        if has_content || !calls.is_empty() {
            self.saw_tool_calls |= !calls.is_empty();
            let delta = Delta {
                content: has_content.then_some(message.content),
                tool_calls: (!calls.is_empty()).then_some(calls),
                ..Delta::default()
            };
            chunks.push(self.delta_chunk(&line.model, created, delta, line_logprobs.take()));
        }
        if line.done {
            // An empty completion still opens with the assistant role.
            if !self.role_sent {
                let delta = Delta {
                    content: Some(String::new()),
                    ..Delta::default()
                };
                chunks.push(self.delta_chunk(&line.model, created, delta, None));
            }
            let reason = finish_reason(line.done_reason.as_deref(), self.saw_tool_calls);
            chunks.push(self.envelope(
                &line.model,
                created,
                vec![ChunkChoice {
                    index: 0,
                    delta: Delta::default(),
                    logprobs: None,
                    finish_reason: Some(reason),
                }],
                None,
            ));
            if self.include_usage {
                let usage = Usage::from_counts(line.prompt_eval_count, line.eval_count);
                chunks.push(self.envelope(&line.model, created, Vec::new(), Some(usage)));
            }
        }
        chunks
    }

    fn delta_chunk(
        &mut self,
        model: &str,
        created: i64,
        mut delta: Delta,
        logprobs: Option<super::types::ChoiceLogprobs>,
    ) -> ChatCompletionChunk {
        if !self.role_sent {
            delta.role = Some("assistant");
            self.role_sent = true;
        }
        let choice = ChunkChoice {
            index: 0,
            delta,
            logprobs,
            finish_reason: None,
        };
        self.envelope(model, created, vec![choice], None)
    }

    fn envelope(
        &self,
        model: &str,
        created: i64,
        choices: Vec<ChunkChoice>,
        usage: Option<Usage>,
    ) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created,
            model: model.to_owned(),
            system_fingerprint: SYSTEM_FINGERPRINT,
            choices,
            // With include_usage, OpenAI sends `"usage": null` on every chunk but the last.
            usage: self.include_usage.then_some(usage),
        }
    }
}

/// State of one `/v1/completions` stream.
#[derive(Debug)]
pub struct CompletionStream {
    id: String,
    include_usage: bool,
    created: Option<i64>,
    /// The prompt still to be echoed before the first text (legacy `echo`).
    echo: Option<String>,
}

impl CompletionStream {
    /// A new stream; `echo` is sent as the first text.
    pub fn new(include_usage: bool, echo: Option<String>) -> Self {
        Self {
            id: new_id("cmpl-"),
            include_usage,
            created: None,
            echo,
        }
    }

    /// The chunks for one upstream `/api/generate` line.
    pub fn line(&mut self, line: GenerateResponse) -> Vec<Completion> {
        let created = *self
            .created
            .get_or_insert_with(|| created(line.created_at.as_deref()));
        let mut chunks = Vec::new();
        if let Some(prompt) = self.echo.take().filter(|p| !p.is_empty()) {
            let choice = CompletionChoice {
                index: 0,
                text: prompt,
                logprobs: None,
                finish_reason: None,
            };
            chunks.push(self.chunk(&line.model, created, vec![choice], None));
        }
        if !line.response.is_empty() || line.done {
            chunks.push(self.chunk(
                &line.model,
                created,
                vec![CompletionChoice {
                    index: 0,
                    text: line.response,
                    logprobs: completion_logprobs(line.logprobs),
                    finish_reason: line
                        .done
                        .then(|| finish_reason(line.done_reason.as_deref(), false)),
                }],
                None,
            ));
        }
        if line.done && self.include_usage {
            let usage = Usage::from_counts(line.prompt_eval_count, line.eval_count);
            chunks.push(self.chunk(&line.model, created, Vec::new(), Some(usage)));
        }
        chunks
    }

    fn chunk(
        &self,
        model: &str,
        created: i64,
        choices: Vec<CompletionChoice>,
        usage: Option<Usage>,
    ) -> Completion {
        Completion {
            id: self.id.clone(),
            object: "text_completion",
            created,
            model: model.to_owned(),
            system_fingerprint: SYSTEM_FINGERPRINT,
            choices,
            usage: self.include_usage.then_some(usage),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn run(stream: &mut ChatStream, lines: &[Value]) -> Vec<Value> {
        lines
            .iter()
            .flat_map(|line| {
                let line: ChatResponse = serde_json::from_value(line.clone()).unwrap_or_default();
                stream.line(line)
            })
            .map(|chunk| serde_json::to_value(chunk).unwrap_or_default())
            .collect()
    }

    fn trailer(reason: &str) -> Value {
        json!({"model":"m","created_at":"2025-07-07T20:22:19.19314Z",
            "message":{"role":"assistant","content":""},"done":true,"done_reason":reason,
            "prompt_eval_count":10,"eval_count":5})
    }

    #[test]
    fn text_stream_has_role_once_pinned_created_finish_and_usage() {
        let mut stream = ChatStream::new(true);
        let chunks = run(
            &mut stream,
            &[
                json!({"model":"m","created_at":"2023-11-14T22:13:20.1Z","message":{"role":"assistant","content":"The"},"done":false}),
                json!({"model":"m","created_at":"2023-11-14T22:13:25.1Z","message":{"role":"assistant","content":" sky"},"done":false}),
                trailer("stop"),
            ],
        );
        assert_eq!(
            chunks.len(),
            4,
            "two content chunks, finish, usage: {chunks:?}"
        );
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role":"assistant","content":"The"})
        );
        assert_eq!(chunks[1]["choices"][0]["delta"], json!({"content":" sky"}));
        assert_eq!(chunks[2]["choices"][0]["delta"], json!({}));
        assert_eq!(chunks[2]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[3]["choices"], json!([]));
        assert_eq!(chunks[3]["usage"]["total_tokens"], 15);
        for chunk in &chunks {
            assert_eq!(chunk["created"], 1_700_000_000);
            assert_eq!(chunk["id"], chunks[0]["id"]);
            assert_eq!(chunk["object"], "chat.completion.chunk");
        }
        assert_eq!(chunks[0]["usage"], Value::Null);
        assert!(
            chunks[0]
                .as_object()
                .is_some_and(|o| o.contains_key("usage"))
        );
    }

    #[test]
    fn tool_calls_across_lines_set_the_finish_reason_and_are_numbered() {
        let mut stream = ChatStream::new(false);
        let chunks = run(
            &mut stream,
            &[
                json!({"model":"m","message":{"role":"assistant","content":"","tool_calls":[
                {"id":"call_a","function":{"index":0,"name":"f","arguments":{"x":1}}},
                {"id":"call_b","function":{"index":0,"name":"f","arguments":{"x":2}}}]},"done":false}),
                json!({"model":"m","message":{"role":"assistant","content":"","tool_calls":[
                {"function":{"name":"g","arguments":{}}}]},"done":false}),
                trailer("stop"),
            ],
        );
        assert_eq!(chunks.len(), 3);
        let first = &chunks[0]["choices"][0]["delta"]["tool_calls"];
        assert_eq!(first[0]["index"], 0);
        assert_eq!(first[1]["index"], 1);
        assert_eq!(first[1]["function"]["arguments"], "{\"x\":2}");
        let second = &chunks[1]["choices"][0]["delta"]["tool_calls"];
        assert_eq!(second[0]["index"], 2);
        assert!(
            second[0]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("call_"))
        );
        assert_eq!(chunks[2]["choices"][0]["finish_reason"], "tool_calls");
        assert!(chunks[0].get("usage").is_none());
    }

    #[test]
    fn thinking_is_split_from_content_and_length_survives_tool_calls() {
        let mut stream = ChatStream::new(false);
        let chunks = run(
            &mut stream,
            &[
                json!({"model":"m","message":{"role":"assistant","content":"4","thinking":"2+2"},"done":false}),
                json!({"model":"m","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{}}}]},"done":false}),
                trailer("length"),
            ],
        );
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role":"assistant","reasoning_content":"2+2","reasoning":"2+2"})
        );
        assert_eq!(chunks[1]["choices"][0]["delta"], json!({"content":"4"}));
        assert_eq!(
            chunks
                .last()
                .map(|c| c["choices"][0]["finish_reason"].clone()),
            Some(json!("length"))
        );
    }

    #[test]
    fn empty_completion_still_opens_with_the_role() {
        let mut stream = ChatStream::new(false);
        let chunks = run(&mut stream, &[trailer("stop")]);
        assert_eq!(chunks.len(), 2);
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role":"assistant","content":""})
        );
        assert_eq!(chunks[1]["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn completion_stream_finishes_on_the_done_line() {
        let mut stream = CompletionStream::new(true, Some("Q: ".into()));
        let lines = [
            json!({"model":"m","response":"Once","done":false}),
            json!({"model":"m","response":"","done":true,"done_reason":"length","prompt_eval_count":2,"eval_count":1}),
        ];
        let chunks: Vec<Value> = lines
            .iter()
            .flat_map(|l| stream.line(serde_json::from_value(l.clone()).unwrap_or_default()))
            .map(|c| serde_json::to_value(c).unwrap_or_default())
            .collect();
        assert_eq!(chunks.len(), 4);
        assert_eq!(
            chunks[0]["choices"][0]["text"], "Q: ",
            "the echoed prompt comes first"
        );
        assert_eq!(chunks[1]["choices"][0]["text"], "Once");
        assert_eq!(chunks[1]["choices"][0]["finish_reason"], Value::Null);
        assert_eq!(chunks[2]["choices"][0]["finish_reason"], "length");
        assert_eq!(chunks[3]["usage"]["total_tokens"], 3);
    }
}
