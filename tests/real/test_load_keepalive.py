"""Model loading and keep-alive on the real server: the first request to a cold model reports
Ollama's `load_duration`, and the gateway's audit line (`load_ms`) and metrics
(`gateway_model_load_seconds`) carry it; `keep_alive` passes through on every surface and
`/api/ps` shows its effect. Models made from the same weights share one runner, so each test
first unloads everything (keep_alive 0) to start cold; `keep` (tiny's weights, created by
tests/real/run.sh) is the model only the keep-alive test loads, so /api/ps names it."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from conftest import MESSAGES, metric_value, wait_for_audit


def request_id() -> str:
    return f"real-{uuid.uuid4()}"


def unload_all(direct) -> None:
    """Ask Ollama to unload every loaded model, and wait until /api/ps is empty."""
    for entry in direct.get("/api/ps").json()["models"]:
        direct.post("/api/generate", json={"model": entry["name"], "keep_alive": 0})
    deadline = time.monotonic() + 10
    while direct.get("/api/ps").json()["models"]:
        assert time.monotonic() < deadline, "models did not unload"
        time.sleep(0.05)


def test_a_cold_load_is_in_the_audit_line_and_the_metrics(direct, gateway):
    unload_all(direct)
    before = gateway.get("/metrics").text
    loads = []
    for _ in range(2):
        rid = request_id()
        response = gateway.post(
            "/v1/chat/completions",
            json={"model": "tiny", "messages": MESSAGES, "max_tokens": 1},
            headers={"x-request-id": rid},
        )
        assert response.status_code == 200, response.text
        loads.append(wait_for_audit(request_id=rid)["load_ms"])
    cold, warm = loads
    # Loading starts a runner and reads the weights (about 0.3 s); a loaded model ~1 ms.
    assert cold > 20 and cold > 3 * warm, loads
    after = gateway.get("/metrics").text

    def delta(name):
        return metric_value(after, name, model="tiny") - metric_value(before, name, model="tiny")

    assert delta("gateway_model_load_seconds_count") == 2
    assert abs(delta("gateway_model_load_seconds_sum") - (cold + warm) / 1000) < 1e-3, loads


def test_a_passed_through_stream_reports_the_load_too(direct, gateway):
    unload_all(direct)
    rid = request_id()
    response = gateway.post(
        "/api/chat",
        json={"model": "tiny", "messages": MESSAGES, "options": {"num_predict": 2}},
        headers={"x-request-id": rid},
    )
    assert response.status_code == 200
    last = json.loads([line for line in response.text.splitlines() if line][-1])
    assert last["done"] is True and last["load_duration"] > 20e6, "a cold load"
    record = wait_for_audit(request_id=rid)
    assert abs(record["load_ms"] - last["load_duration"] / 1e6) < 1e-3, (record, last)
    assert record["completion_tokens"] == 2


def expires_in(gateway, model: str) -> float | None:
    """Seconds until Ollama unloads `model` (by /api/ps through the gateway), None if not loaded."""
    response = gateway.get("/api/ps")
    assert response.status_code == 200
    now = parsedate_to_datetime(response.headers["date"])
    for entry in response.json()["models"]:
        if entry["name"] == f"{model}:latest":
            # Nanosecond RFC 3339: keep the seconds.
            stamp = entry["expires_at"].split(".")[0].rstrip("Z")
            expires = datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc)
            return (expires - now).total_seconds()
    return None


def test_keep_alive_passes_through_on_every_surface(direct, gateway):
    unload_all(direct)
    # Native: a load-only generate with keep_alive.
    response = gateway.post(
        "/api/generate", json={"model": "keep", "prompt": "", "keep_alive": "37s", "stream": False}
    )
    assert response.status_code == 200 and response.json()["done_reason"] == "load"
    assert 27 <= expires_in(gateway, "keep") <= 38
    # /v1: keep_alive is one of the Ollama extensions the gateway forwards.
    response = gateway.post(
        "/v1/chat/completions",
        json={"model": "keep", "messages": MESSAGES, "max_tokens": 1, "keep_alive": "3m"},
    )
    assert response.status_code == 200, response.text
    assert 170 <= expires_in(gateway, "keep") <= 181
    # /chat with keep_alive 0: Ollama unloads the model after answering.
    response = gateway.post(
        "/chat",
        json={"model": "keep", "messages": MESSAGES, "options": {"num_predict": 1},
              "keep_alive": 0, "stream": False},
    )
    assert response.status_code == 200
    deadline = time.monotonic() + 10
    while expires_in(gateway, "keep") is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert expires_in(gateway, "keep") is None, "unloaded"
