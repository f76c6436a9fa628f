"""`/v1/chat/completions`: plain, streamed, usage, reasoning, length."""

from __future__ import annotations

import openai
import pytest

from conftest import QWEN_ANSWER, QWEN_REASONING, SKY, WEATHER_TOOL

MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]


def test_chat_non_streamed(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="llama3.2", messages=MESSAGES)
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "llama3.2"
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == SKY
    assert choice.message.tool_calls is None
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 31
    assert completion.usage.completion_tokens == 10
    assert completion.usage.total_tokens == 41


def test_chat_streamed_text_equals_concatenated_deltas(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="llama3.2", messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert len(chunks) >= 3
    assert len({c.id for c in chunks}) == 1, "every chunk carries the same id"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == SKY
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    # Without stream_options there is no usage chunk.
    assert all(c.usage is None for c in chunks)


def test_chat_stream_matches_non_streamed_answer(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="llama3.2", messages=MESSAGES)
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="llama3.2", messages=MESSAGES, stream=True)
        if c.choices
    )
    assert streamed == plain.choices[0].message.content


def test_stream_with_include_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="llama3.2",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.prompt_tokens == 31
    assert last.usage.completion_tokens == 10
    assert last.usage.total_tokens == 41
    assert all(c.usage is None for c in chunks[:-1]), "only the last chunk has usage"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == SKY


def test_stream_helper_final_completion(client: openai.OpenAI) -> None:
    # The SDK's higher-level streaming helper accumulates the chunks itself.
    with client.chat.completions.stream(model="llama3.2", messages=MESSAGES) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == SKY
    assert final.choices[0].message.content == SKY
    assert final.choices[0].finish_reason == "stop"


def test_max_tokens_gives_length(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="llama3.2", messages=MESSAGES, max_tokens=3)
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "The sky is"


def _reasoning(obj: object) -> str | None:
    value = getattr(obj, "reasoning_content", None)
    if value is None and getattr(obj, "model_extra", None):
        value = obj.model_extra.get("reasoning_content")  # type: ignore[union-attr]
    return value


def test_reasoning_non_streamed(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="qwen3", messages=MESSAGES)
    message = completion.choices[0].message
    assert message.content == QWEN_ANSWER
    assert message.model_extra is not None
    assert message.model_extra.get("reasoning_content") == QWEN_REASONING
    assert _reasoning(message) == QWEN_REASONING
    assert "Okay" not in message.content, "reasoning must not leak into content"


def test_reasoning_streamed_comes_before_content(client: openai.OpenAI) -> None:
    reasoning, content, order = [], [], []
    for chunk in client.chat.completions.create(model="qwen3", messages=MESSAGES, stream=True):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        if (r := _reasoning(delta)) is not None:
            reasoning.append(r)
            order.append("reasoning")
        if delta.content:
            content.append(delta.content)
            order.append("content")
    assert "".join(reasoning) == QWEN_REASONING
    assert "".join(content) == QWEN_ANSWER
    assert order.index("content") > max(i for i, k in enumerate(order) if k == "reasoning")


@pytest.mark.asyncio
async def test_async_chat_and_stream(aclient: openai.AsyncOpenAI) -> None:
    completion = await aclient.chat.completions.create(model="llama3.2", messages=MESSAGES)
    assert completion.choices[0].message.content == SKY
    stream = await aclient.chat.completions.create(model="llama3.2", messages=MESSAGES, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == SKY


def test_max_completion_tokens_gives_length(client: openai.OpenAI) -> None:
    # The newer name of max_tokens, which the SDK's docs now use.
    completion = client.chat.completions.create(model="llama3.2", messages=MESSAGES, max_completion_tokens=3)
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "The sky is"


def test_logprobs(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="llama3.2", messages=MESSAGES, logprobs=True, top_logprobs=2
    )
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    assert "".join(t.token for t in logprobs.content) == SKY
    for token in logprobs.content:
        assert token.logprob <= 0
        assert len(token.top_logprobs) == 2
        assert token.bytes == list(token.token.encode())


def test_reasoning_effort_none_turns_thinking_off(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="qwen3", messages=MESSAGES, reasoning_effort="none")
    message = completion.choices[0].message
    assert message.content == QWEN_ANSWER
    assert _reasoning(message) is None


def test_content_parts_system_and_developer_messages(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="llama3.2",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "user", "content": [{"type": "text", "text": "Why is the sky blue?"}]},
        ],
    )
    assert completion.choices[0].message.content == SKY


# A 1x1 transparent PNG.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFAAIB4rXY0QAAAABJRU5ErkJggg=="
)


def test_image_input_to_a_vision_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="llava",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == SKY
    assert completion.choices[0].finish_reason == "stop"


def test_tool_choice_none_answers_with_text(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="llama3.2", messages=MESSAGES, tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].message.content == SKY
