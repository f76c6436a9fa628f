"""What a hard quota counts on: Ollama 0.24 writes one NDJSON line per generated token.

A stream cut at a key's hard quota has no last line, so no `eval_count`: the gateway counts the
lines it streamed instead. These tests check, against the real server, that the lines of a
stream and its `eval_count` agree, at several seeds (so the text differs), directly and through
the gateway's native passthrough and its SSE translation.
"""

from __future__ import annotations

import json

import pytest

from conftest import ndjson_lines, sse_events

TOKENS = 40


def sampled(seed: int) -> dict:
    return {"seed": seed, "temperature": 1, "num_predict": TOKENS}


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_one_line_per_token_from_ollama_and_through_the_native_passthrough(direct, gateway, seed):
    body = {"model": "tiny", "prompt": "tell me a story", "options": sampled(seed)}
    for client in (direct, gateway):
        response = client.post("/api/generate", json=body)
        assert response.status_code == 200
        lines = ndjson_lines(response)
        last = lines[-1]
        assert last["done"] is True and last["done_reason"] == "length"
        content = [line for line in lines[:-1] if line.get("response")]
        assert len(content) == len(lines) - 1, "no line without text before the last"
        assert len(content) == last["eval_count"] == TOKENS


@pytest.mark.parametrize("seed", [5, 6])
def test_one_sse_chunk_per_token_through_the_translation(gateway, seed):
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "tell me a story"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "seed": seed,
        "temperature": 1,
        "max_tokens": TOKENS,
    }
    response = gateway.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    events, done = sse_events(response)
    assert done
    text_chunks = [
        e for e in events if e.get("choices") and (e["choices"][0].get("delta") or {}).get("content")
    ]
    usage = [e["usage"] for e in events if e.get("usage")]
    assert usage and usage[-1]["completion_tokens"] == TOKENS, json.dumps(usage)
    assert len(text_chunks) == TOKENS
