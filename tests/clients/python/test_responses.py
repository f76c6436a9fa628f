"""The Responses API (`client.responses`) and the OpenAI Agents SDK, unchanged, against the gateway."""

from __future__ import annotations

import json

import agents
import openai
import pytest
from pydantic import BaseModel

from conftest import QWEN_ANSWER, QWEN_REASONING, SKY

ASK = "What's the weather in Tokyo and Paris?"
WEATHER_FUNCTION = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def test_create(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="llama3.2",
        input="Why is the sky blue?",
        instructions="Answer in one sentence.",
        max_output_tokens=64,
        metadata={"ticket": "42"},
    )
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == SKY
    assert response.metadata == {"ticket": "42"}
    assert response.usage is not None
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_stream(client: openai.OpenAI) -> None:
    deltas: list[str] = []
    kinds: list[str] = []
    with client.responses.stream(model="llama3.2", input="Why is the sky blue?") as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert "".join(deltas) == SKY
    assert len(deltas) > 1, "the text arrives in pieces"
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.output_text == SKY
    assert final.status == "completed"


def test_create_stream_true_has_sequence_numbers(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="llama3.2", input="Why is the sky blue?", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"


def test_function_call_round_trip(client: openai.OpenAI) -> None:
    first = client.responses.create(model="llama3.2", input=ASK, tools=[WEATHER_FUNCTION])
    calls = [item for item in first.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_weather"]
    assert [json.loads(c.arguments)["city"] for c in calls] == ["Tokyo", "Paris"]
    assert len({c.call_id for c in calls}) == 2

    items: list = [{"role": "user", "content": ASK}]
    items += [c.model_dump(exclude_none=True) for c in calls]
    items += [
        {"type": "function_call_output", "call_id": c.call_id, "output": json.dumps({"sky": "clear"})}
        for c in calls
    ]
    second = client.responses.create(model="llama3.2", input=items, tools=[WEATHER_FUNCTION])
    assert second.output_text == SKY
    assert not [item for item in second.output if item.type == "function_call"]


def test_streamed_function_calls(client: openai.OpenAI) -> None:
    with client.responses.stream(model="llama3.2", input=ASK, tools=[WEATHER_FUNCTION]) as stream:
        final = stream.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    assert [json.loads(c.arguments) for c in calls] == [{"city": "Tokyo"}, {"city": "Paris"}]


class Person(BaseModel):
    name: str
    age: int


def test_parse_with_pydantic(client: openai.OpenAI) -> None:
    response = client.responses.parse(model="llama3.2", input="Who was Ada Lovelace?", text_format=Person)
    assert response.output_parsed == Person(name="Ada", age=36)


def test_reasoning(client: openai.OpenAI) -> None:
    response = client.responses.create(model="qwen3", input="Why is the sky blue?", reasoning={"effort": "high"})
    reasoning = [item for item in response.output if item.type == "reasoning"]
    assert len(reasoning) == 1
    assert "".join(s.text for s in reasoning[0].summary) == QWEN_REASONING
    assert response.output_text == QWEN_ANSWER


def test_an_unknown_previous_response_id_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="llama3.2", input="And then?", previous_response_id="resp_123")
    assert caught.value.param == "previous_response_id"
    assert caught.value.code == "previous_response_not_found"


def test_upstream_failure_mid_stream_is_response_failed(client: openai.OpenAI) -> None:
    kinds: list[str] = []
    with client.responses.stream(model="fail-midstream", input="Why is the sky blue?") as stream:
        for event in stream:
            kinds.append(event.type)
    assert kinds[-2:] == ["error", "response.failed"]
    assert "response.completed" not in kinds


def test_agents_sdk_runs_a_tool_agent_to_completion(base_url: str, api_key: str) -> None:
    agents.set_tracing_disabled(True)
    cities: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """Current weather in a city."""
        cities.append(city)
        return f"Clear skies in {city}."

    model = agents.OpenAIResponsesModel(
        model="llama3.2",
        openai_client=openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0),
    )
    agent = agents.Agent(name="Weather", instructions="Use the tool.", tools=[get_weather], model=model)
    result = agents.Runner.run_sync(agent, ASK)
    assert cities == ["Tokyo", "Paris"], "the agent ran the tool for both calls"
    assert result.final_output == SKY


def upstream_chat_with(fake_url: str, marker: str) -> dict:
    """The last /api/chat request the fake Ollama received whose messages mention `marker`."""
    import urllib.request

    with urllib.request.urlopen(f"{fake_url}/_fake/requests", timeout=10) as response:
        requests = json.load(response)
    chats = [
        r["body"]
        for r in requests
        if r["path"].startswith("/api/chat") and marker in json.dumps(r["body"].get("messages", []))
    ]
    assert chats, f"no upstream chat mentions {marker!r}"
    return chats[-1]


def test_previous_response_id_retrieve_and_delete(client: openai.OpenAI, fake_url: str) -> None:
    import uuid

    marker = f"turn-{uuid.uuid4()}"
    first = client.responses.create(
        model="llama3.2", input=f"Why is the sky blue? ({marker})", instructions="Answer in one sentence."
    )
    assert first.store is True
    second = client.responses.create(model="llama3.2", previous_response_id=first.id, input="And at sunset?")
    assert second.previous_response_id == first.id
    assert second.output_text == SKY
    # Ollama got the whole conversation; the first turn's instructions are not carried over.
    messages = upstream_chat_with(fake_url, marker)["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", f"Why is the sky blue? ({marker})"),
        ("assistant", SKY),
        ("user", "And at sunset?"),
    ]

    # A streamed continuation is stored as its last event had it.
    with client.responses.stream(model="llama3.2", previous_response_id=second.id, input="Thanks!") as stream:
        third = stream.get_final_response()
    assert third.previous_response_id == second.id
    assert len(upstream_chat_with(fake_url, marker)["messages"]) == 5

    for made in (first, second):
        assert client.responses.retrieve(made.id).model_dump() == made.model_dump()
    # The stream helper's final response carries fields of its own (`parsed`): compare the rest.
    got = client.responses.retrieve(third.id)
    assert (got.id, got.status, got.output_text, got.previous_response_id, got.usage) == (
        third.id, third.status, third.output_text, third.previous_response_id, third.usage
    )

    assert client.responses.delete(second.id) is None  # the SDK returns nothing for the deletion object
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="llama3.2", previous_response_id=second.id, input="again")
    assert caught.value.code == "previous_response_not_found"
    assert caught.value.param == "previous_response_id"
    # The third response holds the whole conversation: it still continues.
    fourth = client.responses.create(model="llama3.2", previous_response_id=third.id, input="Bye")
    assert fourth.output_text == SKY


def test_store_false_is_not_kept(client: openai.OpenAI) -> None:
    response = client.responses.create(model="llama3.2", input="Why is the sky blue?", store=False)
    assert response.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="llama3.2", previous_response_id=response.id, input="more")


def test_another_key_cannot_see_a_response(client: openai.OpenAI, make_client, limited_key: str) -> None:
    response = client.responses.create(model="llama3.2", input="Why is the sky blue?")
    other = make_client(limited_key)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(response.id)
    assert client.responses.retrieve(response.id).id == response.id
