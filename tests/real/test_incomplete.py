"""The real server's own early end, on every surface: Ollama 0.24 stops a generation that
repeats one token too often ("prediction aborted, token repeat limit reached" in its log) and
ends the answer with HTTP 200 and no `done: true` line. The tiny model does that for this
request (seed 42, temperature 0: " back well out out out ..."), so the issue's cut is
provoked on demand. Every gateway surface reports it as incomplete; Ollama's own /v1 does not
(difference: it answers 200 with `finish_reason: null` and zero usage, or a stream without a
finish chunk and without `[DONE]`)."""

from __future__ import annotations

import json

import pytest

from conftest import MESSAGES, ndjson_lines, sse_events

OPTIONS = {"seed": 42, "temperature": 0, "num_predict": 60}
NATIVE = {"model": "tiny", "messages": MESSAGES, "options": OPTIONS}
V1 = {"model": "tiny", "messages": MESSAGES, "seed": 42, "temperature": 0, "max_tokens": 60}


@pytest.fixture(scope="module")
def cut_lines(direct):
    """Ollama's own stream for the request: tokens, and no done line."""
    lines = ndjson_lines(direct.post("/api/chat", json=NATIVE))
    if any(line.get("done") for line in lines):
        pytest.fail("Ollama finished this generation: the repeat limit no longer cuts it short")
    assert len(lines) < OPTIONS["num_predict"], "ended early"
    return lines


def test_a_passed_through_stream_gets_an_error_line_after_ollamas_lines(gateway, cut_lines):
    lines = ndjson_lines(gateway.post("/api/chat", json=NATIVE))
    strip = lambda l: {k: v for k, v in l.items() if k != "created_at"}  # noqa: E731
    assert [strip(l) for l in lines[:-1]] == [strip(l) for l in cut_lines], "Ollama's lines, unchanged"
    assert lines[-1] == {"error": "the model server ended the stream before it was complete"}


def test_a_v1_stream_ends_with_an_error_event_and_no_done(gateway, cut_lines):
    response = gateway.post("/v1/chat/completions", json={**V1, "stream": True})
    assert response.status_code == 200
    blocks = [b for b in response.text.split("\n\n") if b.strip()]
    assert blocks[-1] != "data: [DONE]" and "data: [DONE]" not in blocks
    events = [json.loads(b.removeprefix("data: ")) for b in blocks]
    assert events[-1]["error"]["code"] == "upstream_interrupted"
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e.get("choices"))
    assert text == "".join(l["message"]["content"] for l in cut_lines)
    assert all(e["choices"][0]["finish_reason"] is None for e in events[:-1] if e.get("choices"))


def test_whole_answers_are_502_upstream_interrupted(direct, gateway, cut_lines):
    response = gateway.post("/v1/chat/completions", json=V1)
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "upstream_interrupted"
    # (/chat and /v1/completions answer the same way: tests/api, against the fake's `fail-cut`.)
    # Difference: Ollama's own /v1 calls the partial answer a 200 with zero usage.
    theirs = direct.post("/v1/chat/completions", json=V1).json()
    assert theirs["choices"][0]["finish_reason"] is None
    assert theirs["usage"]["total_tokens"] == 0
