"""Many streams at once through one async client."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest

from conftest import QWEN_ANSWER, SKY

STREAMS = 20


async def _stream(aclient: openai.AsyncOpenAI, i: int) -> tuple[int, str, str | None, str]:
    # Alternate models so the streams are not all identical.
    model = "llama3.2" if i % 2 == 0 else "qwen3"
    stream = await aclient.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": f"Request {i}: why is the sky blue?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, ids = [], None, set()
    async for chunk in stream:
        ids.add(chunk.id)
        if chunk.choices:
            text.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    assert len(ids) == 1, f"stream {i} mixed ids {ids}"
    return i, model, finish, "".join(text)


@pytest.mark.asyncio
async def test_twenty_concurrent_streams(aclient: openai.AsyncOpenAI) -> None:
    started = time.monotonic()
    results = await asyncio.gather(*(_stream(aclient, i) for i in range(STREAMS)))
    elapsed = time.monotonic() - started
    assert [r[0] for r in results] == list(range(STREAMS))
    for i, model, finish, text in results:
        expected = SKY if model == "llama3.2" else QWEN_ANSWER
        assert text == expected, f"stream {i} ({model})"
        assert finish == "stop", f"stream {i}"
    assert elapsed < 30, f"20 concurrent streams took {elapsed:.1f}s"


@pytest.mark.asyncio
async def test_concurrent_streams_have_distinct_ids(aclient: openai.AsyncOpenAI) -> None:
    async def first_id() -> str:
        stream = await aclient.chat.completions.create(
            model="llama3.2", messages=[{"role": "user", "content": "x"}], stream=True
        )
        ids = {c.id async for c in stream}
        assert len(ids) == 1
        return ids.pop()

    ids = await asyncio.gather(*(first_id() for _ in range(10)))
    assert len(set(ids)) == 10
