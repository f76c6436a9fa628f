"""The legacy `/v1/completions` endpoint."""

from __future__ import annotations

import openai
import pytest

from conftest import SKY


def test_completion_non_streamed(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="llama3.2", prompt="Why is the sky blue?")
    assert completion.object == "text_completion"
    assert completion.id.startswith("cmpl-")
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.text == SKY
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (26, 10)
    assert completion.usage.total_tokens == 36


def test_completion_streamed_equals_non_streamed(client: openai.OpenAI) -> None:
    plain = client.completions.create(model="llama3.2", prompt="Why is the sky blue?").choices[0].text
    chunks = list(client.completions.create(model="llama3.2", prompt="Why is the sky blue?", stream=True))
    assert len(chunks) >= 2
    assert "".join(c.choices[0].text for c in chunks if c.choices) == plain
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_completion_max_tokens_gives_length(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="llama3.2", prompt="Why?", max_tokens=3)
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].text == "The sky is"


def test_completion_unknown_model(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="no-such-model", prompt="x")
