//! `options.stop` as Ollama 0.24's runner applies it (`runner/common/stop.go` and the runners'
//! `processBatch`), with each line of a fixture as one token: a line whose text ends with the
//! start of a stop sequence is held back; when the text held contains a stop sequence it is
//! cut there, what is left goes out as one line (with the logprob entries of the tokens that
//! kept some text, the cut one's whole), the tokens inside the stop sequence are dropped with
//! their entries, and the answer ends with `done_reason: "stop"`. `eval_count` counts every
//! token produced: the lines used, plus the end-of-turn token when no stop sequence matched
//! (which has no line and no logprob entry, as in Ollama).

use serde_json::{Value, json};

use crate::scenario::{Endpoint, Line, line_text};

/// A fixture's lines with `stops` applied.
pub(crate) fn apply(endpoint: Endpoint, lines: Vec<Line>, stops: &[String]) -> Vec<Line> {
    let stops: Vec<&str> = stops
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    if stops.is_empty() {
        return lines;
    }
    let mut out = Vec::new();
    // Held lines (tokens) not sent yet.
    let mut held: Vec<Value> = Vec::new();
    let mut tokens = 0u64;
    for line in lines {
        let Some(value) = line.parse() else {
            out.push(line);
            continue;
        };
        if value.get("done").and_then(Value::as_bool) == Some(true) {
            if let Some(flushed) = join(endpoint, &held, None) {
                out.push(Line::Json(flushed));
            }
            // The token limit ends on a shown token; anything else on the end-of-turn token.
            let end_of_turn = value.get("done_reason").and_then(Value::as_str) != Some("length");
            out.push(Line::Json(with_eval_count(
                value,
                tokens + u64::from(end_of_turn),
            )));
            return out;
        }
        if line_text(endpoint, &value).is_empty() {
            // Thinking or tool calls: not text the stop sequences are looked for in.
            out.push(Line::Json(value));
            continue;
        }
        tokens += 1;
        held.push(value);
        let text: String = held.iter().map(|l| line_text(endpoint, l)).collect();
        if let Some((at, _)) = stops
            .iter()
            .find_map(|stop| text.find(stop).map(|at| (at, *stop)))
        {
            if let Some(flushed) = join(endpoint, &held, Some(at)) {
                out.push(Line::Json(flushed));
            }
            let last = held.last().cloned().unwrap_or_default();
            out.push(Line::Json(done_after(endpoint, &last, tokens)));
            return out;
        }
        let may_start_a_stop = stops.iter().any(|stop| {
            (1..=stop.len()).any(|n| stop.is_char_boundary(n) && text.ends_with(&stop[..n]))
        });
        if !may_start_a_stop {
            if let Some(flushed) = join(endpoint, &held, None) {
                out.push(Line::Json(flushed));
            }
            held.clear();
        }
    }
    out
}

/// The held lines as one line: their text (cut at byte `cut`), the logprob entries of the
/// tokens that kept some text; `None` when no text is left.
fn join(endpoint: Endpoint, held: &[Value], cut: Option<usize>) -> Option<Value> {
    let first = held.first()?.clone();
    let mut text = String::new();
    let mut entries = Vec::new();
    for line in held {
        let piece = line_text(endpoint, line);
        let room = cut.map_or(usize::MAX, |cut| cut.saturating_sub(text.len()));
        if room == 0 {
            break;
        }
        let mut end = piece.len().min(room);
        while !piece.is_char_boundary(end) {
            end -= 1;
        }
        text.push_str(&piece[..end]);
        if let Some(Value::Array(items)) = line.get("logprobs") {
            entries.extend(items.iter().cloned());
        }
    }
    if text.is_empty() {
        return None;
    }
    let mut line = first;
    set_text(endpoint, &mut line, &text);
    if let Some(obj) = line.as_object_mut() {
        obj.shift_remove("logprobs");
        if !entries.is_empty() {
            obj.insert("logprobs".to_owned(), Value::Array(entries));
        }
    }
    Some(line)
}

fn set_text(endpoint: Endpoint, line: &mut Value, text: &str) {
    match endpoint {
        Endpoint::Chat => line["message"]["content"] = json!(text),
        Endpoint::Generate => line["response"] = json!(text),
    }
}

/// The final line after a stop sequence: like Ollama's metrics trailer.
fn done_after(endpoint: Endpoint, last: &Value, tokens: u64) -> Value {
    let mut line = last.clone();
    set_text(endpoint, &mut line, "");
    if let Some(obj) = line.as_object_mut() {
        obj.shift_remove("logprobs");
        obj.insert("done".to_owned(), json!(true));
        obj.insert("done_reason".to_owned(), json!("stop"));
        obj.insert("total_duration".to_owned(), json!(231_644_208));
        obj.insert("load_duration".to_owned(), json!(40_127_792));
        obj.insert("prompt_eval_count".to_owned(), json!(31));
        obj.insert("prompt_eval_duration".to_owned(), json!(21_543_125));
        obj.insert("eval_duration".to_owned(), json!(167_338_917));
        if endpoint == Endpoint::Generate {
            obj.insert("context".to_owned(), json!([1, 2, 3]));
        }
    }
    with_eval_count(line, tokens)
}

fn with_eval_count(mut line: Value, tokens: u64) -> Value {
    if let Some(obj) = line.as_object_mut() {
        obj.insert("eval_count".to_owned(), json!(tokens));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(texts: &[&str]) -> Vec<Line> {
        let mut lines: Vec<Line> = texts
            .iter()
            .map(|t| {
                Line::Json(
                    json!({"model":"m","message":{"role":"assistant","content":t},
                    "done":false,"logprobs":[{"token":t,"logprob":-0.1}]}),
                )
            })
            .collect();
        lines.push(Line::Json(
            json!({"model":"m","message":{"role":"assistant","content":""},
            "done":true,"done_reason":"stop","eval_count":99}),
        ));
        lines
    }

    fn shown(lines: &[Line]) -> Vec<(String, Vec<String>)> {
        lines
            .iter()
            .filter_map(Line::parse)
            .filter(|l| l["done"] == false)
            .map(|l| {
                let tokens = l["logprobs"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| e["token"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                (line_text(Endpoint::Chat, &l).to_owned(), tokens)
            })
            .collect()
    }

    fn last(lines: &[Line]) -> Value {
        lines.last().and_then(Line::parse).unwrap_or_default()
    }

    const TOKENS: &[&str] = &[" can", " about", " could", " way", " they"];

    #[test]
    fn a_stop_inside_a_token_keeps_its_entry_and_what_came_before() {
        let lines = apply(Endpoint::Chat, chat(TOKENS), &["way".into()]);
        let s = shown(&lines);
        assert_eq!(
            s.last().map(|l| (l.0.as_str(), l.1.clone())),
            Some((" ", vec![" way".to_owned()]))
        );
        assert_eq!(last(&lines)["eval_count"], 4);
        assert_eq!(last(&lines)["done_reason"], "stop");
    }

    #[test]
    fn held_tokens_are_sent_as_one_line_or_dropped() {
        let lines = apply(Endpoint::Chat, chat(TOKENS), &["could way".into()]);
        let s = shown(&lines);
        assert_eq!(s.len(), 3);
        assert_eq!(s[2], (" ".to_owned(), vec![" could".to_owned()]));
        assert_eq!(last(&lines)["eval_count"], 4);
        let lines = apply(Endpoint::Chat, chat(TOKENS), &[" could way".into()]);
        assert_eq!(shown(&lines).len(), 2);
        assert_eq!(last(&lines)["eval_count"], 4);
        // Held, then not a stop after all: sent together.
        let lines = apply(Endpoint::Chat, chat(TOKENS), &[" could not".into()]);
        let s = shown(&lines);
        assert_eq!(
            s[2],
            (
                " could way".to_owned(),
                vec![" could".to_owned(), " way".to_owned()]
            )
        );
    }

    /// The stop cases recorded from the real Ollama 0.24 (`tests/real/cases.py`): the fake,
    /// given the real server's tokens (`chat-stop-none`), cuts them as the real server did.
    #[test]
    fn the_recorded_stop_cases_of_the_real_server() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recorded");
        let read = |case: &str| -> Value {
            let text = std::fs::read_to_string(dir.join(format!("{case}.json")))
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{case}: {e}"))
        };
        let tokens: Vec<Line> = read("chat-stop-none")["ndjson"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(Line::Json)
            .collect();
        let view = |lines: &[Value]| -> Vec<Value> {
            lines
                .iter()
                .map(|l| {
                    let tokens: Vec<&Value> = l["logprobs"]
                        .as_array()
                        .map(|a| a.iter().map(|e| &e["token"]).collect())
                        .unwrap_or_default();
                    json!([
                        l["message"]["content"],
                        tokens,
                        l["done_reason"],
                        l["eval_count"]
                    ])
                })
                .collect()
        };
        for case in [
            "chat-stop-inside",
            "chat-stop-across",
            "chat-stop-whole-tokens",
            "chat-stop-one-token",
        ] {
            let recorded = read(case);
            let stops: Vec<String> = recorded["request"]["body"]["options"]["stop"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let real = recorded["ndjson"].as_array().cloned().unwrap_or_default();
            let faked: Vec<Value> = apply(Endpoint::Chat, tokens.clone(), &stops)
                .iter()
                .filter_map(Line::parse)
                .collect();
            assert_eq!(view(&faked), view(&real), "{case}");
        }
        // Not cut: as the real server answered, eval_count included.
        let untouched: Vec<Value> = apply(Endpoint::Chat, tokens.clone(), &["xyz".into()])
            .iter()
            .filter_map(Line::parse)
            .collect();
        let real = read("chat-stop-none")["ndjson"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(view(&untouched), view(&real));
    }

    #[test]
    fn no_match_ends_with_the_end_of_turn_token_counted() {
        let lines = apply(Endpoint::Chat, chat(TOKENS), &["zzz".into()]);
        assert_eq!(shown(&lines).len(), 5);
        assert_eq!(last(&lines)["eval_count"], 6);
        let untouched = apply(Endpoint::Chat, chat(TOKENS), &[]);
        assert_eq!(last(&untouched)["eval_count"], 99);
    }
}
