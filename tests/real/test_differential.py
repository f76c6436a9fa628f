"""The same OpenAI request to the gateway's /v1 and to Ollama's own /v1 (fixed seed,
temperature 0): the same content, finish reason and usage, streamed and not. Every place where
our answer differs on purpose is named here (and listed in the README under "Differences from
Ollama's own /v1")."""

from __future__ import annotations

import json
import re

import pytest

from conftest import MESSAGES, SAMPLING, sse_events

# Short answers keep the tier fast on a busy machine; `max_tokens` is Ollama's `num_predict`.
CHAT = {"model": "tiny", "messages": MESSAGES, "max_tokens": 6, **SAMPLING}
COMPLETION = {"model": "tiny", "prompt": "hello", "max_tokens": 6, **SAMPLING}


def both(direct, gateway, path, body):
    ours = gateway.post(path, json=body)
    theirs = direct.post(path, json=body)
    return ours, theirs


def test_chat_completion_has_ollamas_content_finish_reason_and_usage(direct, gateway):
    ours, theirs = both(direct, gateway, "/v1/chat/completions", CHAT)
    assert (ours.status_code, theirs.status_code) == (200, 200), ours.text
    a, b = ours.json(), theirs.json()
    assert a["choices"][0]["message"]["content"] == b["choices"][0]["message"]["content"]
    assert a["choices"][0]["message"]["content"], "the tiny model says something"
    assert a["choices"][0]["finish_reason"] == b["choices"][0]["finish_reason"] == "length"
    assert a["usage"] == b["usage"]
    assert a["usage"]["completion_tokens"] == 6, "max_tokens"
    for field in ("object", "model", "system_fingerprint"):
        assert a[field] == b[field], field
    assert abs(a["created"] - b["created"]) <= 60

    # Difference: ids. Ollama's are `chatcmpl-` + a number below 1000 (they repeat); ours are
    # 32 random hex digits.
    assert re.fullmatch(r"chatcmpl-\d{1,3}", b["id"]), b["id"]
    assert re.fullmatch(r"chatcmpl-[0-9a-f]{32}", a["id"]), a["id"]
    # Difference: OpenAI's full shape. `message.refusal` and `choice.logprobs` are present (null).
    assert a["choices"][0]["message"]["refusal"] is None
    assert "refusal" not in b["choices"][0]["message"]
    assert a["choices"][0]["logprobs"] is None and "logprobs" not in b["choices"][0]
    # Nothing else differs.
    strip = lambda d: {  # noqa: E731
        **d,
        "id": None,
        "created": None,
        "choices": [
            {
                **c,
                "logprobs": None,
                "message": {k: v for k, v in c["message"].items() if k != "refusal"},
            }
            for c in d["choices"]
        ],
    }
    assert strip(a) == strip(b)


@pytest.mark.parametrize("include_usage", [False, True])
def test_streamed_chat_has_ollamas_tokens_finish_reason_and_usage(direct, gateway, include_usage):
    body = {**CHAT, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    ours, theirs = both(direct, gateway, "/v1/chat/completions", body)
    (a, a_done), (b, b_done) = sse_events(ours), sse_events(theirs)
    assert a_done and b_done

    def pieces(events):
        return [
            e["choices"][0]["delta"].get("content")
            for e in events
            if e["choices"] and e["choices"][0]["delta"].get("content")
        ]

    assert pieces(a) == pieces(b) and len(pieces(a)) >= 4, (pieces(a), pieces(b))
    finish = lambda events: [  # noqa: E731
        e["choices"][0]["finish_reason"] for e in events if e["choices"] and e["choices"][0]["finish_reason"]
    ]
    assert finish(a) == finish(b) == ["length"]
    usage = lambda events: [e["usage"] for e in events if e.get("usage")]  # noqa: E731
    assert usage(a) == usage(b)
    if include_usage:
        assert len(usage(a)) == 1 and usage(a)[0]["completion_tokens"] == 6
        assert a[-1]["choices"] == [] and b[-1]["choices"] == []
        # Difference: every chunk carries `"usage": null` before the usage chunk, as OpenAI's
        # does (Ollama leaves the key out).
        assert all("usage" in e and e["usage"] is None for e in a[:-1])
        assert all("usage" not in e for e in b[:-1])
    else:
        assert usage(a) == [] and all("usage" not in e for e in a)

    # Difference: the role only on the first chunk (OpenAI), not repeated in every delta.
    assert a[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in e["choices"][0]["delta"] for e in a[1:] if e["choices"])
    assert all(e["choices"][0]["delta"].get("role") == "assistant" for e in b if e["choices"])
    # Difference: the finish chunk has an empty delta (Ollama sends role and "" content).
    finish_a = next(e for e in a if e["choices"] and e["choices"][0]["finish_reason"])
    finish_b = next(e for e in b if e["choices"] and e["choices"][0]["finish_reason"])
    assert finish_a["choices"][0]["delta"] == {}
    assert finish_b["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    # Difference: one id and one `created` for the whole stream (Ollama's `created` follows
    # the clock from chunk to chunk); ids as above.
    assert len({e["id"] for e in a}) == 1 and len({e["created"] for e in a}) == 1
    assert len({e["id"] for e in b}) == 1
    assert re.fullmatch(r"chatcmpl-[0-9a-f]{32}", a[0]["id"])


def test_completion_has_ollamas_text_finish_reason_and_usage(direct, gateway):
    ours, theirs = both(direct, gateway, "/v1/completions", COMPLETION)
    assert (ours.status_code, theirs.status_code) == (200, 200), ours.text
    a, b = ours.json(), theirs.json()
    assert a["choices"][0]["text"] == b["choices"][0]["text"] != ""
    assert a["choices"][0]["finish_reason"] == b["choices"][0]["finish_reason"] == "length"
    assert a["usage"] == b["usage"]
    # Differences: long random ids; `logprobs: null` in the choice (OpenAI's shape).
    assert re.fullmatch(r"cmpl-\d{1,3}", b["id"]) and re.fullmatch(r"cmpl-[0-9a-f]{32}", a["id"])
    assert a["choices"][0]["logprobs"] is None and "logprobs" not in b["choices"][0]


def test_streamed_completion_has_ollamas_text_and_finish_reason(direct, gateway):
    body = {**COMPLETION, "stream": True, "max_tokens": 4}
    ours, theirs = both(direct, gateway, "/v1/completions", body)
    (a, a_done), (b, b_done) = sse_events(ours), sse_events(theirs)
    assert a_done and b_done
    text = lambda events: [e["choices"][0]["text"] for e in events]  # noqa: E731
    assert text(a) == text(b) and len(text(a)) == 5, (text(a), text(b))
    assert [e["choices"][0]["finish_reason"] for e in a] == [
        e["choices"][0]["finish_reason"] for e in b
    ]
    assert a[-1]["choices"][0]["finish_reason"] == "length"
    # Difference: `logprobs: null` in every choice.
    assert all(e["choices"][0]["logprobs"] is None for e in a)


def embedding_arrays(text: str) -> list[str]:
    """The raw text of each `embedding` array of an answer, as written."""
    return re.findall(r'"embedding":(\[[^\]]*\])', text)


@pytest.mark.parametrize("given", ["hello world", ["hello world", "good day"]])
def test_embeddings_are_ollamas_numbers_written_as_ollama_writes_them(direct, gateway, given):
    body = {"model": "tiny-embed", "input": given}
    ours, theirs = both(direct, gateway, "/v1/embeddings", body)
    assert (ours.status_code, theirs.status_code) == (200, 200), ours.text
    a, b = ours.json(), theirs.json()
    assert a["usage"] == b["usage"] and a["model"] == b["model"] == "tiny-embed"
    assert [d["index"] for d in a["data"]] == [d["index"] for d in b["data"]]
    assert len(a["data"]) == (1 if isinstance(given, str) else 2)
    # The very digits Ollama writes (float32's shortest form), not a float64 widening.
    assert embedding_arrays(ours.text) == embedding_arrays(theirs.text)
    assert len(json.loads(embedding_arrays(ours.text)[0])) == 64
    # The native answer has the same numbers (Ollama's /v1 is /api/embed underneath).
    native = direct.post("/api/embed", json=body).json()
    assert [d["embedding"] for d in a["data"]] == native["embeddings"]


def test_model_list_and_model_are_ollamas(direct, gateway):
    a, b = gateway.get("/v1/models"), direct.get("/v1/models")
    assert (a.status_code, b.status_code) == (200, 200)
    # Ollama's own order is not stable from one call to the next (models created within the
    # same moment): compared by id.
    by_id = lambda r: sorted(r.json()["data"], key=lambda m: m["id"])  # noqa: E731
    assert by_id(a) == by_id(b)
    assert a.json()["object"] == b.json()["object"] == "list"
    assert {m["id"] for m in a.json()["data"]} >= {"tiny:latest", "tiny-embed:latest"}
    for name in ("tiny", "tiny:latest", "tiny-embed"):
        a, b = gateway.get(f"/v1/models/{name}"), direct.get(f"/v1/models/{name}")
        assert (a.status_code, b.status_code) == (200, 200), name
        assert a.json() == b.json(), name


def test_only_the_sampling_fields_sent_are_forwarded(direct, gateway):
    # Difference: no forced sampling. Without temperature/top_p in the request, the gateway
    # sends none, so the model's own settings apply (its Modelfile: seed 42 and Ollama's
    # defaults) and the answer is the native one; Ollama's /v1 sends its own temperature and
    # top_p of 1.0 and answers something else.
    body = {"model": "tiny", "messages": MESSAGES, "max_tokens": 6}
    native = direct.post(
        "/api/chat", json={**body, "stream": False, "options": {"num_predict": 6}}
    ).json()["message"]["content"]
    ours = gateway.post("/v1/chat/completions", json=body).json()
    theirs = direct.post("/v1/chat/completions", json=body).json()
    assert ours["choices"][0]["message"]["content"] == native
    assert theirs["choices"][0]["message"]["content"] != native
