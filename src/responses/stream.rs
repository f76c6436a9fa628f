//! Ollama's NDJSON stream → the typed Responses events, one upstream line at a time.
//!
//! Every event carries `type` (also the SSE event name) and a `sequence_number` counting from 0.
//! The order OpenAI's SDKs check: `response.created`, `response.in_progress`; per output item
//! `response.output_item.added`, its parts and deltas, their `.done` events,
//! `response.output_item.done`; then `response.completed` (or `response.incomplete` when the
//! token limit cut the answer). Thinking is a `reasoning` item whose summary streams as
//! `response.reasoning_summary_text.delta`; a tool call is a `function_call` item whose
//! arguments arrive in one `response.function_call_arguments.delta`. A failure is an `error`
//! event then `response.failed`, never a silent end.

use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};

use super::request::Echo;
use super::response::{
    call_parts, envelope, fail, finish, function_call_item, message_item, output_text,
    reasoning_item, summary_text,
};
use super::types::Response;
use crate::error::GatewayError;
use crate::http::stream::{LineWriter, write_named_event};
use crate::ollama::types::ChatResponse;
use crate::openai::response::{created, new_id};

/// The item being written.
#[derive(Debug)]
enum Open {
    Reasoning {
        id: String,
        index: usize,
        text: String,
    },
    Message {
        id: String,
        index: usize,
        text: String,
    },
}

/// State of one `/v1/responses` stream.
#[derive(Debug)]
pub struct ResponsesStream {
    echo: Echo,
    id: String,
    sequence: u64,
    /// Set by the first line.
    response: Option<Response>,
    open: Option<Open>,
    /// Finished output items.
    output: Vec<Value>,
    /// The response as the last event (`response.completed`, `.incomplete` or `.failed`)
    /// carried it, until [`take_final`](Self::take_final) takes it.
    last: Option<Value>,
}

impl ResponsesStream {
    /// A new stream for a request with this echo.
    pub fn new(echo: Echo) -> Self {
        Self {
            echo,
            id: new_id("resp_"),
            sequence: 0,
            response: None,
            open: None,
            output: Vec::new(),
            last: None,
        }
    }

    /// The echo of the request this stream answers.
    pub fn echo(&self) -> &Echo {
        &self.echo
    }

    /// The finished response (as its last event carried it), once, after the stream ended.
    pub fn take_final(&mut self) -> Option<Value> {
        self.last.take()
    }

    /// The events for one upstream line (which must not be an error line).
    pub fn line(&mut self, line: ChatResponse) -> Vec<Value> {
        let mut events = Vec::new();
        self.start(&mut events, line.created_at.as_deref(), &line.model);
        let message = line.message.unwrap_or_default();
        if let Some(thinking) = message.thinking.filter(|t| !t.is_empty()) {
            let (id, index) = self.open_reasoning(&mut events);
            if let Some(Open::Reasoning { text, .. }) = &mut self.open {
                text.push_str(&thinking);
            }
            self.push(
                &mut events,
                json!({"type": "response.reasoning_summary_text.delta",
                "item_id": id, "output_index": index, "summary_index": 0, "delta": thinking}),
            );
        }
        if !message.content.is_empty() {
            let (id, index) = self.open_message(&mut events);
            if let Some(Open::Message { text, .. }) = &mut self.open {
                text.push_str(&message.content);
            }
            self.push(
                &mut events,
                json!({"type": "response.output_text.delta",
                "item_id": id, "output_index": index, "content_index": 0,
                "delta": message.content, "logprobs": []}),
            );
        }
        for call in message.tool_calls {
            self.close(&mut events, "completed");
            let (call_id, name, arguments) = call_parts(call);
            let id = new_id("fc_");
            let index = self.output.len();
            let added = function_call_item(&id, &call_id, &name, "", "in_progress");
            self.push(
                &mut events,
                json!({"type": "response.output_item.added",
                "output_index": index, "item": added}),
            );
            self.push(
                &mut events,
                json!({"type": "response.function_call_arguments.delta",
                "item_id": id, "output_index": index, "delta": arguments}),
            );
            self.push(
                &mut events,
                json!({"type": "response.function_call_arguments.done",
                "item_id": id, "output_index": index, "name": name, "arguments": arguments}),
            );
            let item = function_call_item(&id, &call_id, &name, &arguments, "completed");
            self.push(
                &mut events,
                json!({"type": "response.output_item.done",
                "output_index": index, "item": item}),
            );
            self.output.push(item);
        }
        if line.done {
            let cut = line.done_reason.as_deref() == Some("length");
            // An empty answer still has one (empty) message, as a non-streamed one does.
            if self.output.is_empty() && self.open.is_none() {
                self.open_message(&mut events);
            }
            self.close(&mut events, if cut { "incomplete" } else { "completed" });
            let output = self.output.clone();
            if let Some(response) = &mut self.response {
                response.output = output;
                finish(
                    response,
                    line.done_reason.as_deref(),
                    line.prompt_eval_count,
                    line.eval_count,
                );
            }
            let kind = if cut {
                "response.incomplete"
            } else {
                "response.completed"
            };
            let response = self.snapshot();
            self.last = Some(response.clone());
            self.push(&mut events, json!({"type": kind, "response": response}));
        }
        events
    }

    /// The events that report a failure: `error`, then `response.failed` with the output so far.
    pub fn failure(&mut self, err: &GatewayError) -> Vec<Value> {
        let mut events = Vec::new();
        self.start(&mut events, None, "");
        let code = err.code().unwrap_or("upstream_error");
        let message = err.to_string();
        self.push(
            &mut events,
            json!({"type": "error", "code": code, "message": message,
            "param": null}),
        );
        let mut output = self.output.clone();
        match &self.open {
            Some(Open::Message { id, text, .. }) => {
                output.push(message_item(id, text, "incomplete"));
            }
            Some(Open::Reasoning { id, text, .. }) => output.push(reasoning_item(id, text)),
            None => {}
        }
        if let Some(response) = &mut self.response {
            response.output = output;
            fail(response, code, &message);
        }
        let response = self.snapshot();
        self.last = Some(response.clone());
        self.push(
            &mut events,
            json!({"type": "response.failed", "response": response}),
        );
        events
    }

    fn snapshot(&self) -> Value {
        self.response
            .as_ref()
            .and_then(|r| serde_json::to_value(r).ok())
            .unwrap_or(Value::Null)
    }

    fn push(&mut self, events: &mut Vec<Value>, mut event: Value) {
        event["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        events.push(event);
    }

    /// `response.created` and `response.in_progress`, once.
    fn start(&mut self, events: &mut Vec<Value>, created_at: Option<&str>, model: &str) {
        if self.response.is_some() {
            return;
        }
        self.response = Some(envelope(&self.echo, &self.id, created(created_at), model));
        let response = self.snapshot();
        self.push(
            events,
            json!({"type": "response.created", "response": response}),
        );
        self.push(
            events,
            json!({"type": "response.in_progress", "response": response}),
        );
    }

    fn open_reasoning(&mut self, events: &mut Vec<Value>) -> (String, usize) {
        if let Some(Open::Reasoning { id, index, .. }) = &self.open {
            return (id.clone(), *index);
        }
        self.close(events, "completed");
        let id = new_id("rs_");
        let index = self.output.len();
        self.push(
            events,
            json!({"type": "response.output_item.added", "output_index": index,
            "item": {"type": "reasoning", "id": id, "summary": []}}),
        );
        self.push(
            events,
            json!({"type": "response.reasoning_summary_part.added",
            "item_id": id, "output_index": index, "summary_index": 0, "part": summary_text("")}),
        );
        self.open = Some(Open::Reasoning {
            id: id.clone(),
            index,
            text: String::new(),
        });
        (id, index)
    }

    fn open_message(&mut self, events: &mut Vec<Value>) -> (String, usize) {
        if let Some(Open::Message { id, index, .. }) = &self.open {
            return (id.clone(), *index);
        }
        self.close(events, "completed");
        let id = new_id("msg_");
        let index = self.output.len();
        self.push(
            events,
            json!({"type": "response.output_item.added", "output_index": index,
            "item": {"type": "message", "id": id, "status": "in_progress", "role": "assistant",
                "content": []}}),
        );
        self.push(
            events,
            json!({"type": "response.content_part.added", "item_id": id,
            "output_index": index, "content_index": 0, "part": output_text("")}),
        );
        self.open = Some(Open::Message {
            id: id.clone(),
            index,
            text: String::new(),
        });
        (id, index)
    }

    /// Finish the open item with its `.done` events; a message gets `status`.
    fn close(&mut self, events: &mut Vec<Value>, status: &str) {
        match self.open.take() {
            None => {}
            Some(Open::Reasoning { id, index, text }) => {
                self.push(
                    events,
                    json!({"type": "response.reasoning_summary_text.done",
                    "item_id": id, "output_index": index, "summary_index": 0, "text": text}),
                );
                self.push(
                    events,
                    json!({"type": "response.reasoning_summary_part.done",
                    "item_id": id, "output_index": index, "summary_index": 0,
                    "part": summary_text(&text)}),
                );
                let item = reasoning_item(&id, &text);
                self.push(
                    events,
                    json!({"type": "response.output_item.done",
                    "output_index": index, "item": item}),
                );
                self.output.push(item);
            }
            Some(Open::Message { id, index, text }) => {
                self.push(
                    events,
                    json!({"type": "response.output_text.done", "item_id": id,
                    "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                );
                self.push(
                    events,
                    json!({"type": "response.content_part.done", "item_id": id,
                    "output_index": index, "content_index": 0, "part": output_text(&text)}),
                );
                let item = message_item(&id, &text, status);
                self.push(
                    events,
                    json!({"type": "response.output_item.done",
                    "output_index": index, "item": item}),
                );
                self.output.push(item);
            }
        }
    }
}

/// Each event framed as `event: <type>\ndata: <json>\n\n`.
fn write_events(out: &mut BytesMut, events: Vec<Value>) {
    for event in &events {
        let name = event["type"].as_str().unwrap_or("message");
        write_named_event(out, name, event);
    }
}

impl LineWriter<ChatResponse> for ResponsesStream {
    fn line(&mut self, line: ChatResponse, _raw: Bytes, out: &mut BytesMut) {
        let events = ResponsesStream::line(self, line);
        write_events(out, events);
    }

    fn fail(&mut self, err: &GatewayError, out: &mut BytesMut) -> bool {
        let events = self.failure(err);
        write_events(out, events);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responses::request::chat_request;
    use crate::responses::types::ResponsesRequest;

    fn stream() -> ResponsesStream {
        let request: ResponsesRequest =
            serde_json::from_value(json!({"model":"m","input":"hi","stream":true}))
                .unwrap_or_else(|e| panic!("{e}"));
        ResponsesStream::new(chat_request(request).unwrap_or_else(|e| panic!("{e}")).1)
    }

    fn run(stream: &mut ResponsesStream, lines: &[Value]) -> Vec<Value> {
        lines
            .iter()
            .flat_map(|l| stream.line(serde_json::from_value(l.clone()).unwrap_or_default()))
            .collect()
    }

    fn types(events: &[Value]) -> Vec<&str> {
        events.iter().filter_map(|e| e["type"].as_str()).collect()
    }

    fn assert_numbered(events: &[Value]) {
        for (i, event) in events.iter().enumerate() {
            assert_eq!(event["sequence_number"], i, "{event}");
        }
    }

    #[test]
    fn reasoning_then_text_in_order_with_sequence_numbers() {
        let mut s = stream();
        let events = run(
            &mut s,
            &[
                json!({"model":"m","created_at":"2023-11-14T22:13:20.1Z","message":{"role":"assistant","content":"","thinking":"hm"},"done":false}),
                json!({"model":"m","message":{"role":"assistant","content":"The"},"done":false}),
                json!({"model":"m","message":{"role":"assistant","content":" sky"},"done":false}),
                json!({"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":5,"eval_count":3}),
            ],
        );
        assert_eq!(
            types(&events),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        assert_numbered(&events);
        assert_eq!(events[0]["response"]["status"], "in_progress");
        assert_eq!(events[0]["response"]["created_at"], 1_700_000_000);
        assert_eq!(events[8]["output_index"], 1);
        assert_eq!(events[12]["text"], "The sky");
        let done = &events[15]["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["id"], events[0]["response"]["id"]);
        assert_eq!(done["output"][0]["summary"][0]["text"], "hm");
        assert_eq!(done["output"][1]["content"][0]["text"], "The sky");
        assert_eq!(done["usage"]["total_tokens"], 8);
    }

    #[test]
    fn function_calls_are_items_with_one_arguments_delta() {
        let mut s = stream();
        let events = run(
            &mut s,
            &[
                json!({"model":"m","message":{"role":"assistant","content":"","tool_calls":[{"id":"call_a","function":{"name":"f","arguments":{"x":1}}}]},"done":false}),
                json!({"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop"}),
            ],
        );
        assert_eq!(
            types(&events),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        assert_eq!(events[2]["item"]["arguments"], "");
        assert_eq!(events[3]["delta"], "{\"x\":1}");
        assert_eq!(events[5]["item"]["call_id"], "call_a");
        assert_eq!(
            events[6]["response"]["output"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn a_length_cut_is_incomplete_and_a_failure_is_reported() {
        let mut s = stream();
        let events = run(
            &mut s,
            &[
                json!({"model":"m","message":{"role":"assistant","content":"The"},"done":false}),
                json!({"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"length"}),
            ],
        );
        let last = events.last().cloned().unwrap_or_default();
        assert_eq!(last["type"], "response.incomplete");
        assert_eq!(
            last["response"]["incomplete_details"]["reason"],
            "max_output_tokens"
        );
        assert_eq!(last["response"]["output"][0]["status"], "incomplete");

        let mut s = stream();
        let mut events = run(
            &mut s,
            &[json!({"model":"m","message":{"role":"assistant","content":"The"},"done":false})],
        );
        events.extend(s.failure(&GatewayError::UpstreamInterrupted));
        assert_numbered(&events);
        let n = events.len();
        assert_eq!(events[n - 2]["type"], "error");
        assert_eq!(events[n - 2]["code"], "upstream_interrupted");
        assert_eq!(events[n - 1]["type"], "response.failed");
        assert_eq!(events[n - 1]["response"]["status"], "failed");
        assert_eq!(
            events[n - 1]["response"]["error"]["code"],
            "upstream_interrupted"
        );
        assert_eq!(
            events[n - 1]["response"]["output"][0]["content"][0]["text"],
            "The"
        );
    }
}
