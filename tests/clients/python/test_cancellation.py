"""A client that stops reading a stream early: the gateway must stop the upstream generation
too (the fake Ollama counts the streams whose reader went away before the end)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request

import openai
import pytest

LONG = 1_000_000  # `bench` tokens: far more than the test reads


def cancelled(fake_url: str) -> int:
    with urllib.request.urlopen(f"{fake_url}/_fake/stats", timeout=10) as response:
        return json.load(response)["cancelled_streams"]


def wait_for_cancel(fake_url: str, before: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = cancelled(fake_url)
        if now > before:
            return now
        time.sleep(0.05)
    return cancelled(fake_url)


def test_closing_a_stream_cancels_the_upstream(client: openai.OpenAI, fake_url: str) -> None:
    before = cancelled(fake_url)
    stream = client.chat.completions.create(
        model="bench", messages=[{"role": "user", "content": "go"}], max_tokens=LONG, stream=True
    )
    received = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received += 1
        if received == 5:
            break
    stream.close()
    assert received == 5
    assert wait_for_cancel(fake_url, before) > before, "the upstream stream is still running"


@pytest.mark.asyncio
async def test_cancelling_an_async_task_cancels_the_upstream(
    aclient: openai.AsyncOpenAI, fake_url: str
) -> None:
    before = cancelled(fake_url)
    started = asyncio.Event()

    async def consume() -> None:
        stream = await aclient.chat.completions.create(
            model="bench", messages=[{"role": "user", "content": "go"}], max_tokens=LONG, stream=True
        )
        async for _ in stream:
            started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after = await asyncio.to_thread(wait_for_cancel, fake_url, before)
    assert after > before, "the upstream stream is still running"
