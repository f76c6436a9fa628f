"""Real clients, unchanged, through the gateway to the real server: the official OpenAI
Python SDK and the official `ollama` Python library, each compared with the same client
pointed at Ollama itself."""

from __future__ import annotations

import base64
import struct

import ollama
import openai
import pytest

from conftest import MESSAGES, SAMPLING


@pytest.fixture(scope="module")
def sdk(gateway_url, key):
    return openai.OpenAI(base_url=gateway_url + "/v1", api_key=key, max_retries=0)


@pytest.fixture(scope="module")
def sdk_direct(ollama_url):
    return openai.OpenAI(base_url=ollama_url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def lib(gateway_url, key):
    return ollama.Client(host=gateway_url, headers={"Authorization": f"Bearer {key}"})


@pytest.fixture(scope="module")
def lib_direct(ollama_url):
    return ollama.Client(host=ollama_url)


def test_openai_sdk_chat_streamed_and_not(sdk, sdk_direct):
    args = dict(model="tiny", messages=MESSAGES, max_tokens=5, **SAMPLING)
    ours, theirs = sdk.chat.completions.create(**args), sdk_direct.chat.completions.create(**args)
    assert ours.choices[0].message.content == theirs.choices[0].message.content
    assert ours.choices[0].finish_reason == "length"
    assert ours.usage.completion_tokens == theirs.usage.completion_tokens == 5

    def streamed(client):
        stream = client.chat.completions.create(
            **args, stream=True, stream_options={"include_usage": True}
        )
        text, usage = "", None
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.usage:
                usage = chunk.usage.total_tokens
        return text, usage

    assert streamed(sdk) == streamed(sdk_direct) == (
        theirs.choices[0].message.content,
        theirs.usage.total_tokens,
    )


def test_openai_sdk_completions_embeddings_models(sdk, sdk_direct):
    args = dict(model="tiny", prompt="hello", max_tokens=4, **SAMPLING)
    assert sdk.completions.create(**args).choices[0].text == (
        sdk_direct.completions.create(**args).choices[0].text
    )
    ours = sdk.embeddings.create(model="tiny-embed", input=["hello", "good day"])
    theirs = sdk_direct.embeddings.create(model="tiny-embed", input=["hello", "good day"])
    assert [d.embedding for d in ours.data] == [d.embedding for d in theirs.data]
    # base64 (little-endian float32) holds the same numbers.
    raw = sdk.embeddings.with_raw_response.create(
        model="tiny-embed", input="hello", encoding_format="base64"
    ).http_response.json()["data"][0]["embedding"]
    data = base64.b64decode(raw)
    decoded = list(struct.unpack(f"<{len(data) // 4}f", data))
    expected = [struct.unpack("<f", struct.pack("<f", x))[0] for x in ours.data[0].embedding]
    assert decoded == expected and len(decoded) == 64
    assert sorted(m.id for m in sdk.models.list()) == sorted(m.id for m in sdk_direct.models.list())
    assert sdk.models.retrieve("tiny").id == "tiny"


def test_openai_sdk_raises_typed_errors_from_real_failures(sdk):
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.chat.completions.create(model="nope", messages=MESSAGES)
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model="tiny-embed", messages=MESSAGES)
    assert "does not support chat" in refused.value.message
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            base_url=str(sdk.base_url), api_key="sk-wrong", max_retries=0
        ).models.list()


def test_ollama_library_chat_generate_embed_show_list_ps(lib, lib_direct):
    options = {"seed": 42, "temperature": 0, "num_predict": 5}
    ours = lib.chat(model="tiny", messages=MESSAGES, options=options)
    theirs = lib_direct.chat(model="tiny", messages=MESSAGES, options=options)
    assert ours.message.content == theirs.message.content and ours.done_reason == "length"
    assert ours.eval_count == theirs.eval_count == 5
    streamed = "".join(
        part.message.content
        for part in lib.chat(model="tiny", messages=MESSAGES, options=options, stream=True)
    )
    assert streamed == theirs.message.content
    gen = lib.generate(model="tiny", prompt="hello world", options=options)
    assert gen.response == lib_direct.generate(model="tiny", prompt="hello world", options=options).response
    assert gen.context
    emb = lib.embed(model="tiny-embed", input=["hello world", "good day"])
    assert emb.embeddings == lib_direct.embed(model="tiny-embed", input=["hello world", "good day"]).embeddings
    show = lib.show("tiny")
    assert "completion" in show.capabilities and show.modelinfo["general.architecture"] == "llama"
    assert sorted(m.model for m in lib.list().models) == sorted(m.model for m in lib_direct.list().models)
    assert any(m.model == "tiny:latest" for m in lib.ps().models)


def test_ollama_library_raises_ollamas_errors(lib):
    with pytest.raises(ollama.ResponseError) as missing:
        lib.chat(model="nope", messages=MESSAGES)
    assert missing.value.status_code == 404 and "not found" in missing.value.error
    with pytest.raises(ollama.ResponseError) as refused:
        lib.chat(model="tiny-embed", messages=MESSAGES)
    assert refused.value.status_code == 400
    with pytest.raises(ollama.ResponseError) as unauthorized:
        ollama.Client(host=str(lib._client.base_url)).list()
    assert unauthorized.value.status_code == 401
