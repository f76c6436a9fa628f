"""Where the real Ollama, the gateway in front of it and the fake Ollama are (tests/real/run.sh
starts all three), and small helpers to call them the same way."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

# Same seed, temperature 0: the tiny model's answer is fixed, so two servers can be compared.
SAMPLING = {"seed": 42, "temperature": 0}
NATIVE_SAMPLING = {"options": {"seed": 42, "temperature": 0}}
MESSAGES = [{"role": "user", "content": "hello"}]

# Fields whose values are per-request by nature: compared by type only.
VOLATILE = {
    "created_at",
    "total_duration",
    "load_duration",
    "prompt_eval_duration",
    "eval_duration",
    "expires_at",
    "modified_at",
}


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this suite through tests/real/run.sh")
    return value


@pytest.fixture(scope="session")
def ollama_url() -> str:
    return _env("OLLAMA_URL")


@pytest.fixture(scope="session")
def gateway_url() -> str:
    return _env("GATEWAY_URL")


@pytest.fixture(scope="session")
def fake_url() -> str:
    return _env("FAKE_URL")


@pytest.fixture(scope="session")
def key() -> str:
    return _env("GATEWAY_KEY")


@pytest.fixture(scope="session")
def direct(ollama_url: str) -> httpx.Client:
    """Ollama itself."""
    with httpx.Client(base_url=ollama_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def gateway(gateway_url: str, key: str) -> httpx.Client:
    """The gateway in front of it, with the tier's key."""
    with httpx.Client(
        base_url=gateway_url, timeout=60, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        yield client


@pytest.fixture(scope="session")
def fake(fake_url: str) -> httpx.Client:
    with httpx.Client(base_url=fake_url, timeout=60) as client:
        yield client


def sse_events(response: httpx.Response) -> tuple[list[dict], bool]:
    """The JSON events of an SSE answer, and whether it ended with `data: [DONE]`."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events, done = [], False
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        data = "".join(
            line[5:].strip() for line in block.split("\n") if line.startswith("data:")
        )
        assert not done, "nothing after [DONE]"
        if data == "[DONE]":
            done = True
        else:
            events.append(json.loads(data))
    return events, done


def ndjson_lines(response: httpx.Response) -> list[dict]:
    text = response.text
    assert text.endswith("\n"), f"NDJSON ends with a newline: {text[-200:]!r}"
    return [json.loads(line) for line in text.split("\n")[:-1]]


def without_volatile(value):
    """`value` with the per-request fields replaced by their type name."""
    if isinstance(value, dict):
        return {
            k: (type(v).__name__ if k in VOLATILE else without_volatile(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [without_volatile(v) for v in value]
    return value


def audit_lines(**match) -> list[dict]:
    """The gateway's audit records (JSON log lines) whose fields equal `match`."""
    out = []
    for line in Path(_env("GATEWAY_LOG")).read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("target") == "audit" and all(record.get(k) == v for k, v in match.items()):
            out.append(record)
    return out


def wait_for_audit(timeout: float = 5.0, **match) -> dict:
    """The last audit record matching `match`, waiting for it to be written."""
    deadline = time.monotonic() + timeout
    while True:
        found = audit_lines(**match)
        if found:
            return found[-1]
        if time.monotonic() > deadline:
            pytest.fail(f"no audit line with {match}")
        time.sleep(0.05)


def metric_value(text: str, name: str, **labels) -> float:
    """The sum of the samples of `name` with these labels in a Prometheus text page."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        series, _, rest = head.partition("{")
        if series != name:
            continue
        if all(re.search(rf'{k}="{re.escape(v)}"', rest) for k, v in labels.items()):
            total += float(value)
    return total
