"""Structured output: `response_format` with a Pydantic model, and JSON mode."""

from __future__ import annotations

import json

import openai
import pytest
from pydantic import BaseModel


class Person(BaseModel):
    name: str
    age: int


MESSAGES = [{"role": "user", "content": "Who wrote the first program? Answer as JSON."}]


def test_parse_with_pydantic_model(client: openai.OpenAI) -> None:
    # Older SDKs have it as `client.beta.chat.completions.parse`.
    completion = client.chat.completions.parse(model="llama3.2", messages=MESSAGES, response_format=Person)
    message = completion.choices[0].message
    assert message.refusal is None
    assert isinstance(message.parsed, Person)
    assert message.parsed == Person(name="Ada", age=36)
    assert json.loads(message.content) == {"name": "Ada", "age": 36}


@pytest.mark.asyncio
async def test_async_parse_with_pydantic_model(aclient: openai.AsyncOpenAI) -> None:
    completion = await aclient.chat.completions.parse(model="llama3.2", messages=MESSAGES, response_format=Person)
    assert completion.choices[0].message.parsed == Person(name="Ada", age=36)


def test_json_object_mode(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="llama3.2", messages=MESSAGES, response_format={"type": "json_object"}
    )
    assert json.loads(completion.choices[0].message.content or "") == {"name": "Ada", "age": 36}


def test_json_schema_streamed(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="llama3.2",
        messages=MESSAGES,
        stream=True,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": Person.model_json_schema(), "strict": True},
        },
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert Person.model_validate_json(text) == Person(name="Ada", age=36)


def test_stream_helper_with_pydantic_response_format(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model="llama3.2", messages=MESSAGES, response_format=Person) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_completion()
    assert "content.delta" in events and "content.done" in events
    assert final.choices[0].message.parsed == Person(name="Ada", age=36)


class GetWeather(BaseModel):
    city: str


def test_parse_with_pydantic_function_tool(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="llama3.2",
        messages=[{"role": "user", "content": "Weather in Tokyo and Paris?"}],
        tools=[openai.pydantic_function_tool(GetWeather, name="get_weather")],
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [c.function.parsed_arguments for c in choice.message.tool_calls or []] == [
        GetWeather(city="Tokyo"),
        GetWeather(city="Paris"),
    ]


def test_stream_helper_with_pydantic_function_tool(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="llama3.2",
        messages=[{"role": "user", "content": "Weather in Tokyo and Paris?"}],
        tools=[openai.pydantic_function_tool(GetWeather, name="get_weather")],
    ) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    assert [(e.index, e.name, e.parsed_arguments) for e in done] == [
        (0, "get_weather", GetWeather(city="Tokyo")),
        (1, "get_weather", GetWeather(city="Paris")),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
