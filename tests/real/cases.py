"""The requests recorded from the real server (tests/real/record.py writes
fixtures/recorded/) and replayed against the fake Ollama by test_fake_conformance.py: the cases
a tiny random model can produce. Each names the model as the real server has it (`tiny`,
`tiny-embed`); the fake gets its own model of the same kind (FAKE_MODELS)."""

from __future__ import annotations

import json
import os
import re

import httpx

MSG = [{"role": "user", "content": "hello"}]
# Four tokens are enough to show the framing (first, middle and last lines).
OPT = {"seed": 42, "temperature": 0, "num_predict": 4}
STOP_OPT = {"seed": 42, "temperature": 0, "num_predict": 8}

# name: (method, path, body); body None = no body, str = sent as raw text.
CASES: dict[str, tuple[str, str, object]] = {
    "chat-stream": ("POST", "/api/chat", {"model": "tiny", "messages": MSG, "options": OPT}),
    "chat-whole": ("POST", "/api/chat", {"model": "tiny", "messages": MSG, "options": OPT, "stream": False}),
    "chat-length": ("POST", "/api/chat", {"model": "tiny", "messages": MSG, "options": {**OPT, "num_predict": 2}}),
    "chat-load": ("POST", "/api/chat", {"model": "tiny", "messages": []}),
    "generate-stream": ("POST", "/api/generate", {"model": "tiny", "prompt": "hello world", "options": OPT}),
    "generate-whole": ("POST", "/api/generate", {"model": "tiny", "prompt": "hello world", "options": OPT, "stream": False}),
    "embed-batch": ("POST", "/api/embed", {"model": "tiny-embed", "input": ["hello world", "good day"]}),
    "embed-one": ("POST", "/api/embed", {"model": "tiny-embed", "input": "hello world"}),
    "embeddings-legacy": ("POST", "/api/embeddings", {"model": "tiny-embed", "prompt": "hello"}),
    # More dimensions than the model has: its whole vector, no error.
    "embed-dimensions-beyond-model": ("POST", "/api/embed", {"model": "tiny-embed", "input": "hello world", "dimensions": 65535}),
    "show-chat": ("POST", "/api/show", {"model": "tiny"}),
    "show-embed": ("POST", "/api/show", {"model": "tiny-embed"}),
    "tags": ("GET", "/api/tags", None),
    "ps": ("GET", "/api/ps", None),
    "version": ("GET", "/api/version", None),
    "error-chat-unknown-model": ("POST", "/api/chat", {"model": "nope", "messages": MSG}),
    "error-generate-unknown-model": ("POST", "/api/generate", {"model": "nope", "prompt": "hi"}),
    "error-embed-unknown-model": ("POST", "/api/embed", {"model": "nope", "input": "hi"}),
    "error-show-unknown-model": ("POST", "/api/show", {"model": "nope"}),
    "error-chat-embedding-model": ("POST", "/api/chat", {"model": "tiny-embed", "messages": MSG}),
    "error-generate-embedding-model": ("POST", "/api/generate", {"model": "tiny-embed", "prompt": "hi"}),
    "error-chat-messages-not-a-list": ("POST", "/api/chat", {"model": "tiny", "messages": "notalist"}),
    "error-chat-bad-json": ("POST", "/api/chat", "{bad json"),
    "error-chat-no-model": ("POST", "/api/chat", {"messages": MSG}),
    # What Go's decoder refuses in a native body (the gateway refuses them first; the fake must
    # still answer them as Ollama does).
    "error-embed-dimensions-not-an-int": ("POST", "/api/embed", {"model": "tiny-embed", "input": "hi", "dimensions": 2.5}),
    "error-embed-keep-alive-object": ("POST", "/api/embed", {"model": "tiny-embed", "input": "hi", "keep_alive": {}}),
    "error-embeddings-keep-alive-array": ("POST", "/api/embeddings", {"model": "tiny-embed", "prompt": "hi", "keep_alive": [1]}),
    "error-show-verbose-not-a-bool": ("POST", "/api/show", {"model": "tiny", "verbose": {}}),
    "v1-chat": ("POST", "/v1/chat/completions", {"model": "tiny", "messages": MSG, "seed": 42, "temperature": 0, "max_tokens": 4}),
    "v1-chat-stream": ("POST", "/v1/chat/completions", {"model": "tiny", "messages": MSG, "seed": 42, "temperature": 0, "stream": True, "max_tokens": 3}),
    "v1-models": ("GET", "/v1/models", None),
    "v1-embeddings": ("POST", "/v1/embeddings", {"model": "tiny-embed", "input": "hello"}),
    "v1-error-unknown-model": ("POST", "/v1/chat/completions", {"model": "nope", "messages": MSG}),
    # Stop sequences, with logprobs (what the gateway asks for to tell a stop sequence from the
    # end of the turn; src/anthropic/stop.rs). The tokens are " back", " well", " out", ...
    "chat-stop-none": ("POST", "/api/chat", {"model": "tiny", "messages": MSG, "logprobs": True, "options": STOP_OPT}),
    "chat-stop-inside": ("POST", "/api/chat", {"model": "tiny", "messages": MSG, "logprobs": True, "options": {**STOP_OPT, "stop": ["ell"]}}),
    "chat-stop-across": ("POST", "/api/chat", {"model": "tiny", "messages": MSG, "logprobs": True, "options": {**STOP_OPT, "stop": ["well out"]}}),
    "chat-stop-whole-tokens": ("POST", "/api/chat", {"model": "tiny", "messages": MSG, "logprobs": True, "options": {**STOP_OPT, "stop": [" well out"]}}),
    "chat-stop-one-token": ("POST", "/api/chat", {"model": "tiny", "messages": MSG, "logprobs": True, "options": {**STOP_OPT, "stop": [" well"]}}),
    "chat-stop-whole": ("POST", "/api/chat", {"model": "tiny", "messages": MSG, "logprobs": True, "stream": False, "options": {**STOP_OPT, "stop": ["ell"]}}),
}

# The stop cases: the tokens of chat-stop-none, each case cutting them in its own way.
STOP_CASES = [c for c in CASES if c.startswith("chat-stop-")]

# The fake's model of the same kind (fixtures/README.md).
FAKE_MODELS = {"tiny": "llama3.2", "tiny-embed": "all-minilm"}

# Request bodies can name the model; answers name it back (and /api/show names the store).
STORE = re.compile(r"/[^\s\"]*?/models/blobs/")


def send(client: httpx.Client, case: str, models: dict[str, str] | None = None) -> httpx.Response:
    method, path, body = CASES[case]
    if isinstance(body, dict) and models and body.get("model") in models:
        body = {**body, "model": models[body["model"]]}
    if body is None:
        return client.request(method, path)
    if isinstance(body, str):
        return client.request(method, path, content=body, headers={"content-type": "application/json"})
    return client.request(method, path, json=body)


def answer(response: httpx.Response) -> dict:
    """A response as recorded: status, content type, and the body (JSON, NDJSON lines or SSE
    events as parsed JSON)."""
    content_type = response.headers.get("content-type", "")
    text = STORE.sub("<store>/models/blobs/", response.text)
    if "ndjson" in content_type:
        body = {"ndjson": [json.loads(line) for line in text.split("\n") if line], "ends_with_newline": text.endswith("\n")}
    elif "event-stream" in content_type:
        events = [b[len("data: "):] for b in text.split("\n\n") if b.startswith("data: ")]
        body = {"sse": [e if e == "[DONE]" else json.loads(e) for e in events]}
    else:
        try:
            body = {"json": json.loads(text)}
        except ValueError:
            body = {"text": text}
    return {"status": response.status_code, "content_type": content_type, **body}


def recorded_path(root, case: str):
    return root / "fixtures" / "recorded" / f"{case}.json"


def ollama_url() -> str:
    return os.environ["OLLAMA_URL"]
