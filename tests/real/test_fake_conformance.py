"""The fake Ollama (fake-ollama/, used by every other test tier) answers with the same keys,
types and framing as the real server: for each case recorded from the real server
(fixtures/recorded/, written by record.py), the fake's answer to the same request has the
recording's status, content type, NDJSON / SSE framing and JSON shape, and its error messages
read the same. The live real server is held to its recordings too, so they cannot go stale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cases import CASES, FAKE_MODELS, answer, recorded_path, send

ROOT = Path(__file__).resolve().parents[2]

# Objects whose keys depend on the model (its architecture, tokenizer, tensors): compared as
# "an object" only.
OPAQUE = {"model_info", "tensors", "projector_info"}
# Keys that appear only in some answers of a kind, by the model's nature: the tiny model's
# show has no `license`/`system`; a real llama3.2 has them.
# The tiny embedding model has no PARAMETER lines, so its show has no `parameters`.
OPTIONAL = {
    "license",
    "system",
    "messages",
    "parameters",
    "projector_info",
    "remote_model",
    "remote_host",
}
# The fake's OpenAI layer serves only /v1/chat/completions (the benchmark's baseline).
# The stop cases that cut the tiny model's answer after its first line have no middle lines;
# the fake's text (other tokens) is cut elsewhere. The fake's stop handling is held to these
# recordings token for token instead (fake-ollama/src/stop.rs, on the real server's tokens).
REAL_ONLY = {"v1-models", "v1-embeddings", "chat-stop-whole-tokens", "chat-stop-one-token"}


def shape(value, key=None):
    if key in OPAQUE:
        return "object"
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in value.items() if k not in OPTIONAL}
    if isinstance(value, list):
        if not value:
            return ["empty"]
        shapes = []
        for item in value:
            s = shape(item)
            if s not in shapes:
                shapes.append(s)
        return ["list", *shapes]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return "string"


def framing(record: dict):
    """Status, type and the structure of the body: per line / event, first, middle, last."""
    out = {"status": record["status"], "content_type": record["content_type"]}
    if "ndjson" in record:
        lines = record["ndjson"]
        out["ends_with_newline"] = record["ends_with_newline"]
        out["lines"] = [shape(lines[0]), sorted({json.dumps(shape(l)) for l in lines[1:-1]}), shape(lines[-1])]
        out["last_done"] = lines[-1].get("done")
        out["only_last_done"] = all(l.get("done") is False for l in lines[:-1])
    elif "sse" in record:
        events = record["sse"]
        out["done_last"] = events[-1] == "[DONE]"
        chunks = [e for e in events if e != "[DONE]"]
        out["events"] = [shape(chunks[0]), sorted({json.dumps(shape(e)) for e in chunks[1:-1]}), shape(chunks[-1])]
    elif "json" in record:
        out["json"] = shape(record["json"])
    else:
        out["text"] = record["text"]
    return out


def error_text(record: dict, models: dict[str, str]) -> str | None:
    body = record.get("json")
    if not isinstance(body, dict) or "error" not in body:
        return None
    message = body["error"]["message"] if isinstance(body["error"], dict) else body["error"]
    for real, fake in models.items():
        message = message.replace(f'"{fake}"', f'"{real}"').replace(f"'{fake}'", f"'{real}'")
    return message


def recording(case: str) -> dict:
    path = recorded_path(ROOT, case)
    if not path.exists():
        pytest.fail(f"{path} is missing: run tests/real/run.sh --record")
    return json.loads(path.read_text())


@pytest.mark.parametrize("case", list(CASES))
def test_the_live_server_still_answers_as_recorded(direct, case):
    if case == "ps":
        send(direct, "chat-load")
    recorded, live = recording(case), answer(send(direct, case))
    assert framing(live) == framing(recorded)
    assert error_text(live, {}) == error_text(recorded, {})


@pytest.mark.parametrize("case", [c for c in CASES if c not in REAL_ONLY])
def test_the_fake_answers_like_the_real_server(fake, case):
    if case == "ps":
        send(fake, "chat-load", FAKE_MODELS)
    recorded, faked = recording(case), answer(send(fake, case, FAKE_MODELS))
    assert framing(faked) == framing(recorded)
    assert error_text(faked, FAKE_MODELS) == error_text(recorded, {})
