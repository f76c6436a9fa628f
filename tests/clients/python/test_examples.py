"""The README's Python quickstart (examples/openai_sdk.py) runs against the gateway."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT, SKY

EXAMPLE = ROOT / "examples" / "openai_sdk.py"


def _run(env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=60
    )


def test_openai_sdk_example_runs(gateway_url: str, api_key: str) -> None:
    result = _run({"GATEWAY_URL": gateway_url, "GATEWAY_KEY": api_key})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # A non-streamed answer, then the streamed one, each printed whole on its own line.
    assert lines.count(SKY) == 2, result.stdout
    assert result.stderr == ""


def test_openai_sdk_example_fails_with_a_bad_key(gateway_url: str) -> None:
    result = _run({"GATEWAY_URL": gateway_url, "GATEWAY_KEY": "sk-wrong"})
    assert result.returncode != 0
    assert "AuthenticationError" in result.stderr or "401" in result.stderr
