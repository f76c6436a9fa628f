"""The `anthropic` SDK, unchanged, against the gateway's `/v1/messages`."""

from __future__ import annotations

import anthropic
import pytest

from conftest import QWEN_ANSWER, QWEN_REASONING, SKY

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ASK = [{"role": "user", "content": "What's the weather in Tokyo and Paris?"}]


@pytest.fixture
def claude(gateway_url: str, api_key: str):
    # The SDK sends the key as x-api-key and adds /v1/messages to the base URL.
    with anthropic.Anthropic(base_url=gateway_url, api_key=api_key, max_retries=0, timeout=30) as c:
        yield c


def test_create(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="llama3.2",
        max_tokens=256,
        system="Answer in one sentence.",
        messages=[{"role": "user", "content": "Why is the sky blue?"}],
    )
    assert message.id.startswith("msg_")
    assert message.role == "assistant"
    assert message.stop_reason == "end_turn"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == SKY
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_stream_text(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="llama3.2", max_tokens=256, messages=[{"role": "user", "content": "Why is the sky blue?"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == SKY
    assert len(pieces) > 1
    assert final.content[0].text == SKY
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0


def test_tool_use_round_trip(claude: anthropic.Anthropic) -> None:
    first = claude.messages.create(model="llama3.2", max_tokens=256, tools=[WEATHER_TOOL], messages=ASK)
    assert first.stop_reason == "tool_use"
    uses = [b for b in first.content if b.type == "tool_use"]
    assert [u.input for u in uses] == [{"city": "Tokyo"}, {"city": "Paris"}]
    results = [{"type": "tool_result", "tool_use_id": u.id, "content": "clear skies"} for u in uses]
    second = claude.messages.create(
        model="llama3.2",
        max_tokens=256,
        tools=[WEATHER_TOOL],
        messages=[*ASK, {"role": "assistant", "content": first.content}, {"role": "user", "content": results}],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == SKY


def test_streamed_tool_use(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model="llama3.2", max_tokens=256, tools=[WEATHER_TOOL], messages=ASK) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [b.input for b in final.content if b.type == "tool_use"] == [{"city": "Tokyo"}, {"city": "Paris"}]


def test_thinking_blocks(claude: anthropic.Anthropic) -> None:
    thinking = {"type": "enabled", "budget_tokens": 1024}
    ask = [{"role": "user", "content": "Why is the sky blue?"}]
    message = claude.messages.create(model="qwen3", max_tokens=2048, thinking=thinking, messages=ask)
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == QWEN_REASONING
    assert message.content[1].text == QWEN_ANSWER

    with claude.messages.stream(model="qwen3", max_tokens=2048, thinking=thinking, messages=ask) as stream:
        thoughts = "".join(e.thinking for e in stream if e.type == "thinking")
        final = stream.get_final_message()
    assert thoughts == QWEN_REASONING
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[1].text == QWEN_ANSWER


def test_count_tokens(claude: anthropic.Anthropic) -> None:
    count = claude.messages.count_tokens(model="llama3.2", messages=[{"role": "user", "content": "Hi"}])
    assert count.input_tokens > 0


def test_errors_are_typed(claude: anthropic.Anthropic, gateway_url: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="llama3.2", max_tokens=0, messages=[{"role": "user", "content": "Hi"}])
    assert "max_tokens" in caught.value.message
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "Hi"}])
    with anthropic.Anthropic(base_url=gateway_url, api_key="wrong", max_retries=0) as stranger:
        with pytest.raises(anthropic.AuthenticationError):
            stranger.messages.create(model="llama3.2", max_tokens=5, messages=[{"role": "user", "content": "Hi"}])


def test_upstream_failure_mid_stream_raises(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        with claude.messages.stream(
            model="fail-midstream", max_tokens=256, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            for _ in stream:
                pass
    assert "error" in str(caught.value.message).lower()


def test_stop_sequence(claude: anthropic.Anthropic) -> None:
    # The fake streams the sky answer as "The", " sky is", " blue because", " of Rayleigh", ...
    # and applies stop sequences as Ollama's runner does (fake-ollama/src/stop.rs).
    ask = [{"role": "user", "content": "Why is the sky blue?"}]
    message = claude.messages.create(
        model="llama3.2", max_tokens=256, stop_sequences=["nowhere", "Rayleigh"], messages=ask
    )
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "Rayleigh"
    assert message.content[0].text == "The sky is blue because of "
    # Streamed, a sequence over two of Ollama's tokens: in message_delta.
    with claude.messages.stream(
        model="llama3.2", max_tokens=256, stop_sequences=["blue because of"], messages=ask
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "The sky is "
    assert final.stop_reason == "stop_sequence"
    assert final.stop_sequence == "blue because of"
    # No stop sequence matched: the end of the turn.
    message = claude.messages.create(model="llama3.2", max_tokens=256, stop_sequences=["xyzzy"], messages=ask)
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.content[0].text == SKY


def test_a_stop_sequence_that_is_exactly_one_token_reads_as_end_turn(claude: anthropic.Anthropic) -> None:
    # Ollama drops the token " scattering" whole and shows nothing of it: the end-of-turn token
    # looks the same, so the gateway does not claim a stop sequence it cannot see (README).
    message = claude.messages.create(
        model="llama3.2",
        max_tokens=256,
        stop_sequences=[" scattering"],
        messages=[{"role": "user", "content": "Why is the sky blue?"}],
    )
    assert message.content[0].text == "The sky is blue because of Rayleigh"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
