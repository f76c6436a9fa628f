"""HTTPS as clients use it: the OpenAI SDK over HTTP/2, trusting the gateway's own local CA, or the
CA of certificate files an operator brings.

Starts more gateways (the debug binary) with GATEWAY_TLS=internal and with GATEWAY_TLS_CERT/KEY in
temp directories, in front of the same fake Ollama, and points the SDK at https://localhost and
https://127.0.0.1."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx2
import openai
import pytest

from conftest import ROOT, SKY

KEY = "sk-https-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _trusting(ca: str | Path) -> ssl.SSLContext:
    """A TLS context that trusts only the gateway's CA file."""
    return ssl.create_default_context(cafile=str(ca))


def _serve(tls_dir: Path, settings: dict[str, str], ca: Path):
    """Run the debug gateway with `settings` over the common ones until the generator is closed;
    yields its port once it answers over HTTPS, trusting `ca` (which may appear only then)."""
    fake = os.environ.get("FAKE_URL")
    if not fake:
        pytest.fail("FAKE_URL is not set: run this suite through tests/clients/python/run.sh")
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "ollama-gateway"
    port = _free_port()
    # Only our settings: none inherited from the shell that runs the suite.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "OLLAMA_"))}
    env |= {
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "OLLAMA_URL": fake,
        "GATEWAY_API_KEYS": KEY,
        "GATEWAY_DB": f"sqlite://{tls_dir / 'gateway.db'}",
    } | settings
    log = open(tls_dir / "gateway.log", "wb")
    process = subprocess.Popen([str(target)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if process.poll() is not None:
                break
            if ca.exists():
                try:
                    httpx2.get(f"https://127.0.0.1:{port}/health", verify=_trusting(ca), timeout=1)
                    break
                except httpx2.HTTPError:
                    pass
            time.sleep(0.1)
        else:
            pytest.fail(f"the HTTPS gateway did not come up: {(tls_dir / 'gateway.log').read_text()}")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def https_gateway(tmp_path_factory: pytest.TempPathFactory):
    """GATEWAY_TLS=internal: the gateway makes its CA; clients trust the CA file it wrote."""
    tls_dir = tmp_path_factory.mktemp("tls")
    settings = {
        "GATEWAY_TLS": "internal",
        "GATEWAY_TLS_DIR": str(tls_dir),
        "GATEWAY_TLS_NAMES": "localhost,127.0.0.1",
    }
    ca = tls_dir / "ca.pem"
    for port in _serve(tls_dir, settings, ca):
        yield port, str(ca)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def files_gateway(tmp_path_factory: pytest.TempPathFactory):
    """GATEWAY_TLS_CERT/KEY: a certificate an operator's own CA signed (made here with openssl,
    as `openssl` would for a private CA), the CA given to clients as their trust root."""
    tls_dir = tmp_path_factory.mktemp("tls-files")
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=files test CA", cwd=tls_dir)
    _openssl("req", *curve, "-keyout", "key.pem", "-out", "leaf.csr", "-subj", "/CN=localhost",
             cwd=tls_dir)
    (tls_dir / "leaf.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "cert.pem", "-days", "2", "-extfile", "leaf.ext", cwd=tls_dir)
    settings = {
        "GATEWAY_TLS_CERT": str(tls_dir / "cert.pem"),
        "GATEWAY_TLS_KEY": str(tls_dir / "key.pem"),
        "GATEWAY_TLS_NAMES": "localhost,127.0.0.1",
    }
    ca = tls_dir / "ca.pem"
    for port in _serve(tls_dir, settings, ca):
        yield port, str(ca)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_sdk_over_https_with_certificate_files(files_gateway, host):
    port, ca = files_gateway
    with openai.DefaultHttpx2Client(verify=_trusting(ca), http2=True) as http:
        client = openai.OpenAI(base_url=f"https://{host}:{port}/v1", api_key=KEY, http_client=http)
        completion = client.chat.completions.create(
            model="llama3.2", messages=[{"role": "user", "content": "Why is the sky blue?"}]
        )
        assert completion.choices[0].message.content == SKY
        stream = client.chat.completions.create(
            model="llama3.2",
            messages=[{"role": "user", "content": "Why is the sky blue?"}],
            stream=True,
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == SKY
        response = http.get(f"https://{host}:{port}/health")
        assert response.http_version == "HTTP/2"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_sdk_over_https_trusting_the_local_ca(https_gateway, host):
    port, ca = https_gateway
    with openai.DefaultHttpx2Client(verify=_trusting(ca), http2=True) as http:
        client = openai.OpenAI(base_url=f"https://{host}:{port}/v1", api_key=KEY, http_client=http)
        completion = client.chat.completions.create(
            model="llama3.2", messages=[{"role": "user", "content": "Why is the sky blue?"}]
        )
        assert completion.choices[0].message.content == SKY
        # HTTP/2 was negotiated by ALPN.
        response = http.get(f"https://{host}:{port}/health")
        assert response.http_version == "HTTP/2"


def test_sdk_stream_over_http2(https_gateway):
    port, ca = https_gateway
    with openai.DefaultHttpx2Client(verify=_trusting(ca), http2=True) as http:
        client = openai.OpenAI(base_url=f"https://localhost:{port}/v1", api_key=KEY, http_client=http)
        stream = client.chat.completions.create(
            model="llama3.2",
            messages=[{"role": "user", "content": "Why is the sky blue?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces, usage = [], None
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
            if chunk.usage:
                usage = chunk.usage
        assert "".join(pieces) == SKY
        assert usage is not None and usage.completion_tokens > 0


def test_a_client_that_does_not_trust_the_ca_is_refused(https_gateway):
    port, _ = https_gateway
    client = openai.OpenAI(base_url=f"https://localhost:{port}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        client.models.list()
