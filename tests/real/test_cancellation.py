"""A client that leaves mid-generation makes Ollama stop generating, shown from Ollama's side.

tests/real/run.sh starts Ollama with OLLAMA_NUM_PARALLEL=1: one generation at a time, so a
request sent after the client left can only start once Ollama has stopped the abandoned one.
The abandoned request asks for 100,000 tokens (the context shifts, so nothing else would end
it): left running, that takes minutes; stopped, the follow-up answers at once. Ollama's own
request log (its `[GIN]` line, written when it finishes a request) shows the abandoned request
ending right after the client left."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
import pytest

from conftest import MESSAGES

ENDLESS = {"num_predict": 100_000, "num_ctx": 512}


def go_seconds(duration: str) -> float:
    """A Go duration as Ollama logs it (`405.25ms`, `1.2s`, `1m3.5s`, `812µs`)."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"([\d.]+)(h|ms|µs|us|ns|m|s)", duration)
    assert parts, duration
    return sum(float(n) * units[u] for n, u in parts)


def chat_requests_logged() -> list[float]:
    """Durations of the /api/chat requests in Ollama's log, in order."""
    log = Path(os.environ["OLLAMA_LOG"]).read_text(errors="replace")
    return [
        go_seconds(m.group(1))
        for m in re.finditer(r'\[GIN\][^|]*\|\s*\d+\s*\|\s*(\S+)\s*\|[^|]*\|\s*POST\s+"/api/chat"', log)
    ]


SURFACES = [
    ("/v1/chat/completions", {"model": "tiny", "messages": MESSAGES, "stream": True,
                              "max_tokens": ENDLESS["num_predict"], "num_ctx": 512}),
    ("/chat", {"model": "tiny", "messages": MESSAGES, "options": ENDLESS}),
    ("/api/chat", {"model": "tiny", "messages": MESSAGES, "options": ENDLESS}),
]


@pytest.mark.parametrize(("path", "body"), SURFACES, ids=[s[0] for s in SURFACES])
def test_a_client_that_leaves_stops_the_generation(gateway_url, key, direct, path, body):
    before = len(chat_requests_logged())
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        with client.stream(
            "POST", path, json=body, headers={"Authorization": f"Bearer {key}"}
        ) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            got = [line for line, _ in zip((l for l in lines if l.strip()), range(3))]
            assert len(got) == 3, "tokens were flowing"
            left = time.monotonic()
        # Leaving the `with` closed the connection mid-generation.

    # The one slot is free again: the follow-up does not wait for 100,000 tokens.
    follow_up = direct.post(
        "/api/generate",
        json={"model": "tiny", "prompt": "x", "stream": False, "options": {"num_predict": 1}},
        timeout=60,
    )
    waited = time.monotonic() - left
    assert follow_up.status_code == 200 and follow_up.json()["done"] is True
    assert waited < 15, f"the follow-up waited {waited:.1f} s: Ollama kept generating"

    # Ollama's log: the abandoned request ended, soon after it started.
    deadline = time.monotonic() + 5
    while len(chat_requests_logged()) <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    logged = chat_requests_logged()[before:]
    assert len(logged) == 1, logged
    assert logged[0] < 15, f"Ollama served the abandoned request for {logged[0]:.1f} s"
