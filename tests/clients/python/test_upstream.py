"""What the gateway sends Ollama for SDK requests, read back from the fake Ollama's request log
(`GET $FAKE_URL/_fake/requests`). Each request carries a unique marker to find it in the log."""

from __future__ import annotations

import json
import os
import urllib.request
import uuid

import openai
import pytest

from conftest import WEATHER_TOOL
from test_chat import PNG


def upstream_request(fake_url: str, marker: str) -> dict:
    with urllib.request.urlopen(f"{fake_url}/_fake/requests", timeout=10) as response:
        log = json.load(response)
    found = [r for r in log if marker in json.dumps(r.get("body"))]
    assert len(found) == 1, f"expected one upstream request carrying {marker}, found {len(found)}"
    return found[0]


def ask(marker: str) -> list[dict]:
    return [{"role": "user", "content": f"Why is the sky blue? [{marker}]"}]


def test_client_key_is_not_forwarded_upstream(client: openai.OpenAI, fake_url: str, api_key: str) -> None:
    marker = uuid.uuid4().hex
    client.chat.completions.create(model="llama3.2", messages=ask(marker))
    recorded = upstream_request(fake_url, marker)
    assert recorded["path"] == "/api/chat"
    headers = {name.lower(): value for name, value in recorded["headers"]}
    assert api_key not in json.dumps(recorded), "the client's gateway key must not reach Ollama"
    assert "authorization" not in headers


def test_sampling_parameters_become_ollama_options(client: openai.OpenAI, fake_url: str) -> None:
    marker = uuid.uuid4().hex
    client.chat.completions.create(
        model="llama3.2",
        messages=ask(marker),
        max_completion_tokens=3,
        temperature=0.2,
        top_p=0.5,
        seed=7,
        stop=["\n\n"],
    )
    body = upstream_request(fake_url, marker)["body"]
    assert body["model"] == "llama3.2"
    options = body["options"]
    assert options["num_predict"] == 3
    assert options["temperature"] == pytest.approx(0.2)
    assert options["top_p"] == pytest.approx(0.5)
    assert options["seed"] == 7
    assert options["stop"] == ["\n\n"]


def test_reasoning_effort_none_sends_think_false(client: openai.OpenAI, fake_url: str) -> None:
    marker = uuid.uuid4().hex
    client.chat.completions.create(model="qwen3", messages=ask(marker), reasoning_effort="none")
    assert upstream_request(fake_url, marker)["body"]["think"] is False


def test_image_parts_become_base64_images(client: openai.OpenAI, fake_url: str) -> None:
    marker = uuid.uuid4().hex
    client.chat.completions.create(
        model="llava",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"What is this? [{marker}]"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
    )
    message = upstream_request(fake_url, marker)["body"]["messages"][-1]
    assert message["content"] == f"What is this? [{marker}]"
    assert message["images"] == [PNG], "the data: URL prefix is stripped, the base64 kept"


def test_tool_round_trip_translation(client: openai.OpenAI, fake_url: str) -> None:
    marker = uuid.uuid4().hex
    first = client.chat.completions.create(model="llama3.2", messages=ask(marker), tools=[WEATHER_TOOL])
    assistant = first.choices[0].message
    messages = [*ask(marker), assistant.model_dump(exclude_none=True)]
    messages += [
        {"role": "tool", "tool_call_id": call.id, "content": f"18C in {json.loads(call.function.arguments)['city']}"}
        for call in assistant.tool_calls or []
    ]
    client.chat.completions.create(model="llama3.2", messages=messages, tools=[WEATHER_TOOL])
    with urllib.request.urlopen(f"{fake_url}/_fake/requests", timeout=10) as response:
        log = json.load(response)
    second = [r for r in log if marker in json.dumps(r.get("body")) and len(r["body"]["messages"]) == 4]
    assert len(second) == 1
    sent = second[0]["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    # Ollama wants arguments as objects, not the JSON strings OpenAI clients send.
    assert [c["function"]["arguments"] for c in sent[1]["tool_calls"]] == [{"city": "Tokyo"}, {"city": "Paris"}]
    assert [m["content"] for m in sent[2:]] == ["18C in Tokyo", "18C in Paris"]
    assert all(m.get("tool_name") == "get_weather" for m in sent[2:])
    assert second[0]["body"]["tools"][0]["function"]["name"] == "get_weather"
