"""`/v1/models` and `/v1/models/{id}` through the SDK."""

from __future__ import annotations

import json
import urllib.request

import openai
import pytest

NAMESPACED = "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"


def test_list_models(client: openai.OpenAI) -> None:
    page = client.models.list()
    ids = [m.id for m in page]
    for expected in ["llama3.2:latest", "qwen3:latest", "all-minilm:latest", NAMESPACED]:
        assert expected in ids, ids
    for model in page:
        assert model.object == "model"
        assert isinstance(model.created, int)
        assert model.owned_by
    by_id = {m.id: m for m in page}
    assert by_id["llama3.2:latest"].owned_by == "library"
    assert by_id[NAMESPACED].owned_by == "bartowski"


def test_retrieve_model(client: openai.OpenAI) -> None:
    model = client.models.retrieve("llama3.2:latest")
    assert model.id == "llama3.2:latest"
    assert model.object == "model"
    assert model.owned_by == "library"


def test_retrieve_namespaced_model_sdk_encodes_slashes(client: openai.OpenAI) -> None:
    # The SDK percent-encodes the id: GET /v1/models/hf.co%2Fbartowski%2F...
    model = client.models.retrieve(NAMESPACED)
    assert model.id == NAMESPACED
    assert model.owned_by == "bartowski"


def test_retrieve_namespaced_model_with_literal_slashes(gateway_url: str, api_key: str) -> None:
    # What curl or a hand-written client sends: the slashes as they are.
    request = urllib.request.Request(
        f"{gateway_url}/v1/models/{NAMESPACED}",
        headers={"Authorization": f"Bearer {api_key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)
    assert body["id"] == NAMESPACED
    assert body["object"] == "model"


def test_retrieve_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    assert info.value.status_code == 404
    assert info.value.code == "model_not_found"


@pytest.mark.asyncio
async def test_async_list_models(aclient: openai.AsyncOpenAI) -> None:
    ids = [m.id async for m in aclient.models.list()]
    assert "llama3.2:latest" in ids
    assert NAMESPACED in ids
