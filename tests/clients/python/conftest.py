"""Shared fixtures: where the gateway is, its keys, and SDK clients pointed at it."""

from __future__ import annotations

import os
from pathlib import Path

import openai
import pytest
import pytest_asyncio

ROOT = Path(__file__).resolve().parents[3]

# The fake Ollama's canned answers (fixtures/chat/*.ndjson), as the gateway relays them.
SKY = "The sky is blue because of Rayleigh scattering."
QWEN_REASONING = (
    "Okay, the user asks why the sky is blue. Sunlight scatters off air molecules;"
    " shorter wavelengths scatter more."
)
QWEN_ANSWER = (
    "The sky looks blue because air scatters short (blue) wavelengths of sunlight"
    " more strongly than long ones."
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this suite through tests/clients/python/run.sh")
    return value


@pytest.fixture(scope="session")
def gateway_url() -> str:
    return _env("GATEWAY_URL").rstrip("/")


@pytest.fixture(scope="session")
def base_url(gateway_url: str) -> str:
    return gateway_url + "/v1"


@pytest.fixture(scope="session")
def api_key() -> str:
    return _env("GATEWAY_KEY")


@pytest.fixture(scope="session")
def limited_key() -> str:
    return _env("GATEWAY_LIMITED_KEY")


@pytest.fixture(scope="session")
def ratelimited_key() -> str:
    return _env("GATEWAY_RATELIMITED_KEY")


@pytest.fixture
def client(base_url: str, api_key: str):
    with openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30) as c:
        yield c


@pytest.fixture
def make_client(base_url: str):
    """A sync client with another key (no retries, so typed errors surface at once)."""
    made: list[openai.OpenAI] = []

    def make(key: str) -> openai.OpenAI:
        c = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=30)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest_asyncio.fixture
async def aclient(base_url: str, api_key: str):
    async with openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def fake_url() -> str:
    """The fake Ollama's address, to read what the gateway sent it and its stream counters."""
    url = os.environ.get("FAKE_URL")
    if not url:
        pytest.skip("FAKE_URL is not set: the upstream behind the gateway cannot be inspected")
    return url.rstrip("/")
