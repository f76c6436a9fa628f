"""Tool calls: streamed (accumulated by index), non-streamed, and a tool-result round trip."""

from __future__ import annotations

import json

import openai

from conftest import SKY, WEATHER_TOOL

ASK = [{"role": "user", "content": "What's the weather in Tokyo and Paris?"}]


def accumulate_tool_calls(stream) -> tuple[dict[int, dict], list[str], str]:
    """Merge streamed tool-call fragments by index, as OpenAI's docs tell clients to."""
    calls: dict[int, dict] = {}
    finishes: list[str] = []
    content = ""
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        content += choice.delta.content or ""
        for fragment in choice.delta.tool_calls or []:
            call = calls.setdefault(fragment.index, {"id": None, "name": "", "arguments": ""})
            if fragment.id:
                call["id"] = fragment.id
            if fragment.function is not None:
                call["name"] += fragment.function.name or ""
                call["arguments"] += fragment.function.arguments or ""
        if choice.finish_reason:
            finishes.append(choice.finish_reason)
    return calls, finishes, content


def test_streamed_tool_calls(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="llama3.2", messages=ASK, tools=[WEATHER_TOOL], stream=True
    )
    calls, finishes, content = accumulate_tool_calls(stream)
    assert sorted(calls) == [0, 1], "two calls, indexed 0 and 1"
    assert finishes == ["tool_calls"]
    assert content == ""
    assert [calls[i]["name"] for i in (0, 1)] == ["get_weather", "get_weather"]
    assert [json.loads(calls[i]["arguments"]) for i in (0, 1)] == [{"city": "Tokyo"}, {"city": "Paris"}]
    ids = [calls[i]["id"] for i in (0, 1)]
    assert all(isinstance(i, str) and i for i in ids)
    assert ids[0] != ids[1]


def test_non_streamed_tool_calls(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="llama3.2", messages=ASK, tools=[WEATHER_TOOL])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 2
    assert all(c.type == "function" and c.function.name == "get_weather" for c in calls)
    assert [json.loads(c.function.arguments)["city"] for c in calls] == ["Tokyo", "Paris"]


def test_tool_result_round_trip(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="llama3.2", messages=ASK, tools=[WEATHER_TOOL])
    assistant = first.choices[0].message
    assert assistant.tool_calls and len(assistant.tool_calls) == 2

    messages: list = [*ASK, assistant.model_dump(exclude_none=True)]
    for call in assistant.tool_calls:
        city = json.loads(call.function.arguments)["city"]
        messages.append(
            {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"city": city, "temp_c": 18})}
        )
    second = client.chat.completions.create(model="llama3.2", messages=messages, tools=[WEATHER_TOOL])
    choice = second.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.tool_calls is None
    assert choice.message.content == SKY


def test_tool_result_round_trip_streamed(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="llama3.2", messages=ASK, tools=[WEATHER_TOOL], stream=True
    )
    calls, _, _ = accumulate_tool_calls(stream)
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": calls[i]["id"],
                "type": "function",
                "function": {"name": calls[i]["name"], "arguments": calls[i]["arguments"]},
            }
            for i in sorted(calls)
        ],
    }
    tool_messages = [
        {"role": "tool", "tool_call_id": calls[i]["id"], "content": "18C and sunny"} for i in sorted(calls)
    ]
    stream = client.chat.completions.create(
        model="llama3.2",
        messages=[*ASK, assistant, *tool_messages],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    more_calls, finishes, content = accumulate_tool_calls(stream)
    assert more_calls == {}
    assert finishes == ["stop"]
    assert content == SKY
