"""A stream the real server breaks off is reported as incomplete.

test_incomplete.py covers Ollama ending an answer cleanly without its `done` line; this is the
other way a stream ends early: the server going away mid-stream. The test starts a second
Ollama and a gateway of its own, kills that Ollama (SIGKILL) after a few tokens, and checks that
the client is told: an `{"error"}` line on `/api/chat` (passed through unparsed),
an error event and no `[DONE]` on `/v1`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import MESSAGES

ENDLESS = {"num_predict": 100_000, "num_ctx": 512}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not come up")


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        out += [int(p) for p in task.read_text().split()]
    return out


@pytest.fixture
def doomed(tmp_path):
    """A second Ollama with a gateway in front: (gateway URL, key, kill the Ollama)."""
    shared = Path(os.environ["OLLAMA_SHARED_DIR"])
    port, gw_port = free_port(), free_port()
    subprocess.run([str(shared / "start.sh"), str(port), str(tmp_path / "ollama")], check=True,
                   stdout=subprocess.DEVNULL)
    serve = int((tmp_path / "ollama" / "ollama.pid").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "OLLAMA_"))}
    env.update(GATEWAY_LISTEN=f"127.0.0.1:{gw_port}", OLLAMA_URL=f"http://127.0.0.1:{port}",
               GATEWAY_API_KEYS="sk-doomed", RUST_LOG="warn")
    gateway = subprocess.Popen([os.environ["GATEWAY_BIN"]], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    doomed_pids = [serve]

    def kill() -> None:
        runners = children(serve)
        doomed_pids.extend(runners)
        for pid in [serve, *runners]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    try:
        wait_for(f"http://127.0.0.1:{gw_port}/health")
        yield f"http://127.0.0.1:{gw_port}", "sk-doomed", kill
    finally:
        gateway.terminate()
        gateway.wait(timeout=10)
        for pid in doomed_pids + children(serve):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, FileNotFoundError):
                pass


def stream_until_killed(url: str, key: str, path: str, body: dict, kill) -> list[str]:
    with httpx.Client(base_url=url, timeout=30) as client:
        with client.stream("POST", path, json=body, headers={"Authorization": f"Bearer {key}"}) as response:
            assert response.status_code == 200
            lines, killed = [], False
            for line in response.iter_lines():
                if not line.strip():
                    continue
                lines.append(line)
                if len(lines) == 3 and not killed:
                    kill()
                    killed = True
            return lines


def test_a_native_stream_broken_off_by_ollama_ends_with_an_error_line(doomed):
    url, key, kill = doomed
    lines = stream_until_killed(
        url, key, "/api/chat", {"model": "tiny", "messages": MESSAGES, "options": ENDLESS}, kill)
    parsed = [json.loads(line) for line in lines]
    assert all(p.get("done") is False for p in parsed[:-1]), "tokens, no done line"
    assert "before it was complete" in parsed[-1]["error"], parsed[-1]


def test_a_v1_stream_broken_off_by_ollama_ends_with_an_error_event(doomed):
    url, key, kill = doomed
    body = {"model": "tiny", "messages": MESSAGES, "stream": True, "max_tokens": 100_000, "num_ctx": 512}
    lines = stream_until_killed(url, key, "/v1/chat/completions", body, kill)
    assert lines[-1] != "data: [DONE]"
    last = json.loads(lines[-1].removeprefix("data: "))
    assert last["error"]["code"] == "upstream_interrupted", last
