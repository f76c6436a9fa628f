"""Gateway errors surface as the SDK's typed exceptions, with OpenAI's error body."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import openai
import pytest

MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]


def make_client_key(make_client, env: str) -> openai.OpenAI:
    return make_client(os.environ[env])


def _assert_openai_error_body(err: openai.APIStatusError) -> None:
    body = err.body
    assert isinstance(body, dict), body
    assert isinstance(body.get("message"), str) and body["message"]
    assert isinstance(body.get("type"), str) and body["type"]
    assert "param" in body and "code" in body


def test_bad_key_is_authentication_error(make_client) -> None:
    bad = make_client("sk-not-a-real-key")
    with pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model="llama3.2", messages=MESSAGES)
    assert info.value.status_code == 401
    _assert_openai_error_body(info.value)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_missing_key_is_401_with_openai_error_body(base_url: str) -> None:
    # The SDK refuses to run without a key, so this one is sent by hand, with no Authorization.
    request = urllib.request.Request(base_url + "/models")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 401
    body = json.load(info.value)
    assert set(body) == {"error"}
    assert body["error"]["message"]
    assert body["error"]["type"]


def test_out_of_range_temperature_is_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="llama3.2", messages=MESSAGES, temperature=5)
    err = info.value
    assert err.status_code == 400
    _assert_openai_error_body(err)
    assert err.type == "invalid_request_error"
    assert err.param == "temperature"
    assert "temperature" in err.message


def test_empty_messages_is_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="llama3.2", messages=[])
    assert info.value.type == "invalid_request_error"


def test_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    err = info.value
    assert err.status_code == 404
    _assert_openai_error_body(err)
    assert err.code == "model_not_found"


def test_unknown_model_streamed_is_not_found_before_any_chunk(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=MESSAGES, stream=True)


def test_limited_key_model_not_allowed(make_client) -> None:
    limited = make_client_key(make_client, "GATEWAY_LIMITED_KEY")
    with pytest.raises(openai.PermissionDeniedError) as info:
        limited.chat.completions.create(model="qwen3", messages=MESSAGES)
    err = info.value
    assert err.status_code == 403
    _assert_openai_error_body(err)
    assert err.code == "model_not_allowed"
    # The model it may use works.
    ok = limited.chat.completions.create(model="llama3.2", messages=MESSAGES)
    assert ok.choices[0].message.content


def test_limited_key_sees_only_its_models(make_client) -> None:
    limited = make_client_key(make_client, "GATEWAY_LIMITED_KEY")
    ids = [m.id for m in limited.models.list()]
    assert "llama3.2:latest" in ids
    assert "qwen3:latest" not in ids


def test_limited_key_embeddings_not_allowed(make_client) -> None:
    limited = make_client_key(make_client, "GATEWAY_LIMITED_KEY")
    with pytest.raises(openai.PermissionDeniedError):
        limited.embeddings.create(model="all-minilm", input="x")


def test_rate_limited_key(make_client) -> None:
    # The key allows one request a minute and the whole run (both suites) shares it: the first
    # call here may already be refused; the second must be.
    limited = make_client_key(make_client, "GATEWAY_RATELIMITED_KEY")
    errors: list[openai.RateLimitError] = []
    for _ in range(2):
        try:
            limited.models.list()
        except openai.RateLimitError as err:
            errors.append(err)
    assert errors, "two requests in a row on a 1-request key: the second must be refused"
    err = errors[-1]
    assert err.status_code == 429
    _assert_openai_error_body(err)
    retry_after = err.response.headers.get("retry-after")
    assert retry_after is not None and retry_after.isdigit() and int(retry_after) >= 1


def test_midstream_failure_raises_api_error_while_iterating(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="fail-midstream", messages=MESSAGES, stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "The sky is", "the text before the failure arrives first"
    assert info.value.message == "an error was encountered while running the model"
    assert not isinstance(info.value, openai.APIStatusError), "the status was 200: not a status error"


@pytest.mark.parametrize(
    ("model", "code"),
    [
        ("fail-cut", "upstream_interrupted"),  # the upstream closes the stream before `done`
        ("fail-corrupt", "upstream_protocol_error"),  # a malformed NDJSON line
        ("fail-stall", "upstream_timeout"),  # the upstream goes quiet for longer than the timeout
    ],
)
def test_broken_upstream_streams_raise_instead_of_ending_quietly(
    client: openai.OpenAI, model: str, code: str
) -> None:
    # Without an error event the SDK would end the loop normally and the caller would take a
    # truncated answer for a complete one.
    stream = client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
    finishes = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].finish_reason:
                finishes.append(chunk.choices[0].finish_reason)
    assert finishes == [], "no finish_reason on a stream that did not finish"
    assert isinstance(info.value.body, dict)
    assert info.value.body.get("code") == code


def test_legacy_completions_stream_failure_raises(client: openai.OpenAI) -> None:
    stream = client.completions.create(model="fail-midstream", prompt="Why?", stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


@pytest.mark.asyncio
async def test_async_midstream_failure(aclient: openai.AsyncOpenAI) -> None:
    stream = await aclient.chat.completions.create(model="fail-midstream", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass


def test_midstream_failure_non_streamed_is_server_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="fail-midstream", messages=MESSAGES)
    assert info.value.status_code >= 500
    _assert_openai_error_body(info.value)


@pytest.mark.parametrize(
    ("model", "status", "stream"),
    [
        ("fail-500", 500, False),
        ("fail-busy", 503, False),
        ("fail-slow", 504, False),
        ("fail-slow", 504, True),  # streamed too: nothing was sent yet, so a plain 504
        # Ollama answers a run it ended early with 200 and `done: false`: the gateway's 502
        # upstream_interrupted (real Ollama 0.24 does this: tests/real/test_incomplete.py)
        ("fail-cut", 502, False),
    ],
)
def test_upstream_failures_are_server_errors(
    client: openai.OpenAI, model: str, status: int, stream: bool
) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=model, messages=MESSAGES, stream=stream)
    assert info.value.status_code == status
    _assert_openai_error_body(info.value)


def test_capability_errors_are_bad_requests(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="llava",
            messages=MESSAGES,
            tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        )
    assert "does not support tools" in info.value.message


def test_several_choices_are_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="llama3.2", messages=MESSAGES, n=2)
    assert info.value.param == "n"


@pytest.mark.asyncio
async def test_async_typed_errors(base_url: str, aclient: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        await aclient.chat.completions.create(model="no-such-model", messages=MESSAGES)
    with pytest.raises(openai.BadRequestError):
        await aclient.chat.completions.create(model="llama3.2", messages=MESSAGES, temperature=5)
    async with openai.AsyncOpenAI(base_url=base_url, api_key="sk-wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            await bad.models.list()
