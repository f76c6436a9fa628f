"""Native passthrough: `/api/*` through the gateway equals a direct call, line by line
(timestamps and durations aside), with Ollama's status and content type; `/chat` and `/models`
too."""

from __future__ import annotations

import re

import pytest

from conftest import MESSAGES, NATIVE_SAMPLING, ndjson_lines, without_volatile

SHORT = {"options": {**NATIVE_SAMPLING["options"], "num_predict": 6}}


def media_type(response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def listed(answer):
    """A listing with its models in name order (Ollama's own order is not stable)."""
    if isinstance(answer, dict) and isinstance(answer.get("models"), list):
        return {**answer, "models": sorted(answer["models"], key=lambda m: m["name"])}
    return answer


def same_answer(ours, theirs, exact_type=True):
    assert ours.status_code == theirs.status_code, (ours.text, theirs.text)
    if exact_type:
        assert ours.headers["content-type"] == theirs.headers["content-type"]
    else:
        # Difference (/chat, /models only): the gateway's own JSON answers say
        # `application/json`, Ollama adds `; charset=utf-8` (JSON is UTF-8 by definition).
        assert media_type(ours) == media_type(theirs)
    if "ndjson" in theirs.headers["content-type"]:
        a, b = ndjson_lines(ours), ndjson_lines(theirs)
        assert len(a) == len(b), (len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            assert without_volatile(x) == without_volatile(y), f"line {i}: {x} != {y}"
        assert a[-1]["done"] is True
        return a
    a, b = listed(ours.json()), listed(theirs.json())
    assert without_volatile(a) == without_volatile(b)
    return a


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat", {"model": "tiny", "messages": MESSAGES, **SHORT}),
        ("/api/chat", {"model": "tiny", "messages": MESSAGES, "stream": False, **SHORT}),
        ("/api/generate", {"model": "tiny", "prompt": "hello world", **SHORT}),
        ("/api/generate", {"model": "tiny", "prompt": "hello world", "stream": False, **SHORT}),
        ("/api/embed", {"model": "tiny-embed", "input": ["hello world", "good day"]}),
        ("/api/embeddings", {"model": "tiny-embed", "prompt": "hello"}),
    ],
    ids=lambda v: v if isinstance(v, str) else ("stream" if v.get("stream", True) else "whole"),
)
def test_native_posts_pass_through_unchanged(direct, gateway, path, body):
    answer = same_answer(gateway.post(path, json=body), direct.post(path, json=body))
    if path == "/api/generate":
        last = answer[-1] if isinstance(answer, list) else answer
        assert last["context"], "generate's context passes through"


@pytest.mark.parametrize("model", ["tiny", "tiny-embed"])
def test_show_passes_through_without_ollamas_file_paths(direct, gateway, model):
    # Difference, on purpose: for keys that are not admin keys the paths of Ollama's machine
    # in `modelfile` (`FROM /.../blobs/sha256-...`) and in `details.parent_model` keep only
    # their file name; all else is Ollama's answer.
    ours = gateway.post("/api/show", json={"model": model})
    theirs = direct.post("/api/show", json={"model": model})
    assert ours.status_code == theirs.status_code == 200
    ours, theirs = ours.json(), theirs.json()
    assert re.search(r"^FROM /\S*/blobs/sha256-", theirs["modelfile"], re.M), theirs["modelfile"]
    assert "/blobs/" not in ours["modelfile"]
    expected = re.sub(r"^(FROM|ADAPTER) \S*/(sha256-[0-9a-f]+)", r"\1 \2", theirs["modelfile"], flags=re.M)
    assert ours["modelfile"] == expected
    parent = theirs["details"]["parent_model"]
    assert parent.startswith("/") and "/blobs/sha256-" in parent, parent
    assert ours["details"]["parent_model"] == parent.rsplit("/", 1)[1]
    for answer in (ours, theirs):
        answer["modelfile"] = answer["details"]["parent_model"] = ""
    assert without_volatile(ours) == without_volatile(theirs)
    assert ours["capabilities"] and ours["model_info"]


def test_native_raw_bytes_are_ollamas(direct, gateway):
    # Whole answers are passed through byte for byte (only timings differ): no re-encoding.
    body = {"model": "tiny-embed", "input": "hello world"}
    ours = gateway.post("/api/embed", json=body).text
    theirs = direct.post("/api/embed", json=body).text
    assert ours.split('"total_duration"')[0] == theirs.split('"total_duration"')[0]


@pytest.mark.parametrize("path", ["/api/tags", "/api/ps", "/api/version"])
def test_native_listings_pass_through_unchanged(direct, gateway, path):
    # Something loaded, so /api/ps has entries.
    gateway.post("/api/generate", json={"model": "tiny", "prompt": "", "stream": False})
    answer = same_answer(gateway.get(path), direct.get(path))
    if path != "/api/version":
        assert any(m["name"] == "tiny:latest" for m in answer["models"]), answer


def test_simple_chat_and_models_are_ollamas(direct, gateway):
    body = {"model": "tiny", "messages": MESSAGES, **SHORT}
    lines = same_answer(gateway.post("/chat", json=body), direct.post("/api/chat", json=body))
    assert len(lines) == 7, "six tokens and the done line"
    whole = {**body, "stream": False}
    same_answer(
        gateway.post("/chat", json=whole), direct.post("/api/chat", json=whole), exact_type=False
    )
    models = same_answer(gateway.get("/models"), direct.get("/api/tags"), exact_type=False)
    assert any(m["name"] == "tiny:latest" for m in models["models"])
