"""Real errors from the real server, on every surface: an unknown model, chat with the
embedding model, and bodies Ollama refuses. The native surface passes Ollama's answer through
unchanged; /chat keeps Ollama's status and shape; /v1 keeps Ollama's status and message in
OpenAI's error object, with a machine-readable `code` (difference: Ollama's /v1 sends
`code: null` everywhere and `type: not_found_error` for a missing model)."""

from __future__ import annotations

import pytest

from conftest import MESSAGES

ONE = {"num_predict": 1}


def openai_error(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    return error


def ollama_error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str), body
    return body["error"]


V1_CASES = [
    # (path, body, status, Ollama's message, our code, our type, our param)
    (
        "/v1/chat/completions",
        {"model": "nope", "messages": MESSAGES},
        404,
        "model 'nope' not found",
        "model_not_found",
        "invalid_request_error",
        "model",
    ),
    (
        "/v1/completions",
        {"model": "nope", "prompt": "hi"},
        404,
        "model 'nope' not found",
        "model_not_found",
        "invalid_request_error",
        "model",
    ),
    (
        "/v1/embeddings",
        {"model": "nope", "input": "hi"},
        404,
        'model "nope" not found, try pulling it first',
        "model_not_found",
        "invalid_request_error",
        "model",
    ),
    (
        "/v1/chat/completions",
        {"model": "tiny-embed", "messages": MESSAGES},
        400,
        '"tiny-embed" does not support chat',
        "upstream_error",
        "invalid_request_error",
        None,
    ),
    (
        "/v1/completions",
        {"model": "tiny-embed", "prompt": "hi"},
        400,
        '"tiny-embed" does not support generate',
        "upstream_error",
        "invalid_request_error",
        None,
    ),
    (
        "/v1/chat/completions",
        {
            "model": "tiny",
            "messages": MESSAGES,
            "max_tokens": 1,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "bogus"}},
            },
        },
        500,
        "invalid JSON schema in format",
        "upstream_error",
        "api_error",
        None,
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "message", "code", "kind", "param"),
    V1_CASES,
    ids=[f"{c[0]}-{c[1]['model']}-{c[2]}" for c in V1_CASES],
)
def test_v1_errors_keep_ollamas_status_and_message(
    direct, gateway, path, body, status, message, code, kind, param
):
    ours = openai_error(gateway.post(path, json=body), status)
    theirs = openai_error(direct.post(path, json=body), status)
    assert ours["message"] == theirs["message"] == message
    assert theirs["code"] is None
    assert (ours["code"], ours["type"], ours["param"]) == (code, kind, param)


def test_v1_model_lookup_of_an_unknown_model(direct, gateway):
    ours = openai_error(gateway.get("/v1/models/nope"), 404)
    theirs = openai_error(direct.get("/v1/models/nope"), 404)
    assert "nope" in ours["message"] and "nope" in theirs["message"]
    assert ours["code"] == "model_not_found" and theirs["type"] == "not_found_error"


def test_a_body_only_ollama_refuses_is_refused_on_every_surface(direct, gateway):
    # `keep_alive` the gateway forwards as sent (Ollama's own /v1 ignores it and answers 200):
    # Ollama refuses a duration it cannot read.
    bad = {"model": "tiny", "messages": MESSAGES, "keep_alive": "forever"}
    native = ollama_error(direct.post("/api/chat", json={**bad, "options": ONE}), 400)
    assert native == 'time: invalid duration "forever"'
    assert ollama_error(gateway.post("/api/chat", json={**bad, "options": ONE}), 400) == native
    assert ollama_error(gateway.post("/chat", json={**bad, "options": ONE}), 400) == native
    error = openai_error(gateway.post("/v1/chat/completions", json={**bad, "max_tokens": 1}), 400)
    assert error["message"] == native and error["code"] == "upstream_error"
    # Difference: Ollama's own /v1 drops keep_alive and answers as if it were not there.
    assert direct.post("/v1/chat/completions", json={**bad, "max_tokens": 1}).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/chat", {"model": "nope", "messages": MESSAGES}, 404),
        ("/api/generate", {"model": "nope", "prompt": "hi"}, 404),
        ("/api/embed", {"model": "nope", "input": "hi"}, 404),
        ("/api/show", {"model": "nope"}, 404),
        ("/api/chat", {"model": "tiny-embed", "messages": MESSAGES}, 400),
        ("/api/generate", {"model": "tiny-embed", "prompt": "hi"}, 400),
    ],
)
def test_native_errors_are_ollamas_own(direct, gateway, path, body, status):
    ours = gateway.post(path, json=body)
    theirs = direct.post(path, json=body)
    assert ollama_error(ours, status) == ollama_error(theirs, status)
    assert ours.headers["content-type"] == theirs.headers["content-type"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "tiny", "messages": "notalist"}, "messages"),
        ({"messages": MESSAGES}, "model"),
        ({"model": "tiny", "messages": MESSAGES, "keep_alive": {}}, "keep_alive"),
        ({"model": "tiny", "messages": MESSAGES, "think": "extreme"}, "think"),
    ],
)
def test_native_bodies_the_document_forbids_are_refused_as_ollama_would(direct, gateway, body, field):
    # The gateway checks a native body against its documented schema before it goes upstream:
    # Ollama refuses these too, with the same status and shape; the gateway's words name the
    # field (Ollama's name its Go type, or nothing).
    ours = gateway.post("/api/chat", json=body)
    theirs = direct.post("/api/chat", json=body)
    assert ollama_error(ours, 400).startswith(f"{field}: ")
    ollama_error(theirs, 400)
    assert ours.headers["content-type"] == theirs.headers["content-type"]


def test_simple_chat_errors_keep_ollamas_status_and_message(direct, gateway):
    for body, status in [
        ({"model": "nope", "messages": MESSAGES}, 404),
        ({"model": "tiny-embed", "messages": MESSAGES}, 400),
    ]:
        ours = ollama_error(gateway.post("/chat", json=body), status)
        assert ours == ollama_error(direct.post("/api/chat", json=body), status)
    # Refused by the gateway before it goes upstream, with the field named (Ollama's words
    # name a Go type instead).
    ours = ollama_error(gateway.post("/chat", json={"model": "tiny", "messages": []}), 400)
    assert "messages" in ours
