"""Basic auth as clients send it: the OpenAI SDK with an `Authorization: Basic` header and httpx's
own `auth=(user, password)`, over HTTPS, against a users file made by Apache's `htpasswd -B`.

Starts a second gateway (the debug binary) with GATEWAY_BASIC_USERS and GATEWAY_TLS=internal in
a temp directory, in front of the same fake Ollama."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx2
import openai
import pytest

from conftest import ROOT, SKY

KEY = "sk-basic-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def basic_gateway(tmp_path_factory: pytest.TempPathFactory):
    fake = os.environ.get("FAKE_URL")
    if not fake:
        pytest.fail("FAKE_URL is not set: run this suite through tests/clients/python/run.sh")
    htpasswd = shutil.which("htpasswd")
    if not htpasswd:
        pytest.fail("htpasswd is missing: tests/support/setup.sh installs apache2-utils")
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "ollama-gateway"
    work = tmp_path_factory.mktemp("basic")
    users = work / "users"
    subprocess.run([htpasswd, "-cbB", "-C", "5", str(users), "ann", "correct horse"], check=True,
                   capture_output=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "OLLAMA_"))}
    env |= {
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "OLLAMA_URL": fake,
        "GATEWAY_API_KEYS": KEY,
        "GATEWAY_BASIC_USERS": str(users),
        "GATEWAY_TLS": "internal",
        "GATEWAY_TLS_DIR": str(work / "tls"),
        "GATEWAY_TLS_NAMES": "localhost,127.0.0.1",
        "GATEWAY_DB": f"sqlite://{work}/gateway.db",
    }
    log = open(work / "gateway.log", "wb")
    process = subprocess.Popen([str(target)], env=env, stdout=log, stderr=subprocess.STDOUT)
    ca = work / "tls" / "ca.pem"
    try:
        for _ in range(100):
            if process.poll() is not None:
                break
            if ca.exists():
                try:
                    httpx2.get(f"https://localhost:{port}/health",
                               verify=ssl.create_default_context(cafile=str(ca)), timeout=1)
                    break
                except httpx2.HTTPError:
                    pass
            time.sleep(0.1)
        else:
            pytest.fail(f"the gateway did not come up: {(work / 'gateway.log').read_text()}")
        if process.poll() is not None:
            pytest.fail(f"the gateway exited: {(work / 'gateway.log').read_text()}")
        yield f"https://localhost:{port}", ssl.create_default_context(cafile=str(ca))
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_sdk_with_a_basic_user_streams_and_answers(basic_gateway):
    url, trust = basic_gateway
    with openai.DefaultHttpx2Client(verify=trust) as http:
        # The SDK wants an api_key; the Authorization header given here replaces its Bearer.
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", http_client=http,
                               default_headers={"Authorization": _basic("ann", "correct horse")})
        completion = client.chat.completions.create(
            model="llama3.2", messages=[{"role": "user", "content": "Why is the sky blue?"}])
        assert completion.choices[0].message.content == SKY
        stream = client.chat.completions.create(
            model="llama3.2", messages=[{"role": "user", "content": "Why is the sky blue?"}], stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == SKY


def test_httpx_auth_tuple_with_a_user_and_with_a_key_as_the_password(basic_gateway):
    url, trust = basic_gateway
    for auth in [("ann", "correct horse"), ("whatever", KEY)]:
        response = httpx2.get(f"{url}/v1/models", auth=auth, verify=trust)
        assert response.status_code == 200, response.text
        assert response.json()["object"] == "list"


def test_a_wrong_password_is_an_authentication_error_with_a_basic_challenge(basic_gateway):
    url, trust = basic_gateway
    with openai.DefaultHttpx2Client(verify=trust) as http:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", http_client=http, max_retries=0,
                               default_headers={"Authorization": _basic("ann", "wrong horse")})
        with pytest.raises(openai.AuthenticationError) as refused:
            client.models.list()
    assert refused.value.status_code == 401
    assert refused.value.code == "invalid_api_key"
    challenges = refused.value.response.headers.get_list("www-authenticate")
    assert any(c.startswith("Basic realm=") for c in challenges), challenges
    unknown = httpx2.get(f"{url}/v1/models", auth=("nobody", "correct horse"), verify=trust)
    assert unknown.status_code == 401
    assert unknown.json()["error"]["message"] == refused.value.response.json()["error"]["message"]
