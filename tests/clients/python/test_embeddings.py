"""`/v1/embeddings`: the SDK's default (it asks for base64 and decodes) and explicit floats."""

from __future__ import annotations

import base64
import math
import struct

import openai
import pytest

MODEL = "all-minilm"


def test_default_encoding_is_decoded_to_floats(client: openai.OpenAI) -> None:
    response = client.embeddings.create(model=MODEL, input="The sky is blue")
    assert response.object == "list"
    assert len(response.data) == 1
    vector = response.data[0].embedding
    assert isinstance(vector, list) and len(vector) > 0
    assert all(isinstance(x, float) and math.isfinite(x) for x in vector)
    assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0, abs=1e-4), "unit vector"
    assert response.usage.prompt_tokens > 0


def test_default_and_float_encodings_agree(client: openai.OpenAI) -> None:
    text = "The sky is blue"
    default = client.embeddings.create(model=MODEL, input=text).data[0].embedding
    floats = client.embeddings.create(model=MODEL, input=text, encoding_format="float").data[0].embedding
    assert len(default) == len(floats)
    # base64 carries float32; floats may be printed from float32 too: equal up to f32 rounding.
    for a, b in zip(default, floats):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-7)


def test_explicit_float_batch(client: openai.OpenAI) -> None:
    inputs = ["first", "second", "third"]
    response = client.embeddings.create(model=MODEL, input=inputs, encoding_format="float")
    assert [d.index for d in response.data] == [0, 1, 2]
    assert all(d.object == "embedding" for d in response.data)
    dims = {len(d.embedding) for d in response.data}
    assert len(dims) == 1 and dims.pop() > 0
    assert response.data[0].embedding != response.data[1].embedding, "different inputs, different vectors"


def test_raw_base64_is_little_endian_float32(client: openai.OpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(model=MODEL, input="hello", encoding_format="base64")
    body = raw.http_response.json()
    encoded = body["data"][0]["embedding"]
    assert isinstance(encoded, str)
    blob = base64.b64decode(encoded)
    assert len(blob) % 4 == 0
    decoded = list(struct.unpack(f"<{len(blob) // 4}f", blob))
    floats = client.embeddings.create(model=MODEL, input="hello", encoding_format="float").data[0].embedding
    assert decoded == pytest.approx(floats, rel=1e-6, abs=1e-7)


def test_dimensions(client: openai.OpenAI) -> None:
    response = client.embeddings.create(model=MODEL, input="hello", dimensions=16)
    assert len(response.data[0].embedding) == 16


@pytest.mark.asyncio
async def test_async_embeddings(aclient: openai.AsyncOpenAI) -> None:
    response = await aclient.embeddings.create(model=MODEL, input=["a", "b"])
    assert len(response.data) == 2
    assert all(len(d.embedding) > 0 for d in response.data)


def test_chat_with_embedding_model_is_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 400
