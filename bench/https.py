#!/usr/bin/env python3
"""What HTTPS costs the gateway, against what it costs nginx with the same certificate, in one run.

    bash bench/run.sh --https [--rate 500] [--conn-rate 150] [--seconds 6] [--rounds 3]
    python3 bench/https.py --bin-dir target/release --oha OHA --nginx NGINX [options]

One certificate and key (an ECDSA P-256 leaf for 127.0.0.1 and localhost, signed by a CA made
for the run with openssl) serve both the gateway (`GATEWAY_TLS_CERT`/`GATEWAY_TLS_KEY`, rustls)
and nginx (`ssl_certificate`, OpenSSL): the same key type, the same chain, TLS 1.3 on both.
Five targets in front of one release fake Ollama:

  direct         the fake itself, plain HTTP (the floor)
  gateway-http   the gateway as in production (auth on, a bearer key, limits far above the load)
  gateway-https  the same settings, HTTPS from the files
  nginx-http     nginx as a plain reverse proxy to the fake (bench.py's settings)
  nginx-https    the same nginx, a TLS listener

Two loads, each at a fixed rate with latency correction (oha -q RATE --latency-correction), in
interleaved rounds (the order rotates each round; the report shows medians over rounds):

  keep-alive       --rate req/s over 20 reused connections: the cost of encrypting requests
  new connection   --conn-rate req/s, one TCP connection and one TLS handshake per request
                   (oha --disable-keepalive): the cost of the handshake

Printed per load: P50 and P99 (ms, medians over rounds), CPU per request of the target's own
processes (utime+stime from /proc over all rounds, divided by all requests answered, in
microseconds), then the ratios: gateway HTTPS / gateway HTTP, and gateway HTTPS /
nginx HTTPS, for added P50 (over direct) and for CPU per request; and what HTTPS itself adds
(https - http) for each, side by side. Results go to bench/results/https.md and https.json.
Everything listens on 127.0.0.1 on free ports in a temp dir, and is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-https-bench"
BODY = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 16})
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGETS = ("direct", "gateway-http", "gateway-https", "nginx-http", "nginx-https")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str, context: ssl.SSLContext | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1, context=context)
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.05)
    sys.exit(f"{url} did not come up")


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (nginx's workers)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rfind(")") + 2 :].split()[1])
    found, frontier = [pid], [pid]
    while frontier:
        frontier = [p for p, parent in parents.items() if parent in frontier and p not in found]
        found.extend(frontier)
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def make_certificate(work: Path) -> tuple[Path, Path, Path]:
    """A CA and an ECDSA P-256 leaf for 127.0.0.1 and localhost: (ca, cert chain, key)."""
    ca_key, ca, key, csr, cert = (work / n for n in ("ca.key", "ca.pem", "leaf.key", "leaf.csr", "leaf.pem"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
         "-subj", "/CN=https bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign"])
    run(["openssl", "req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1"])
    ext = work / "leaf.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext)])
    # The gateway wants PKCS#8 or SEC1 PEM; openssl writes PKCS#8 ("BEGIN PRIVATE KEY").
    return ca, cert, key


def nginx_conf(work: Path, fake_port: int, http_port: int, https_port: int, cert: Path, key: Path) -> Path:
    for sub in ("logs", "tmp"):
        (work / "nginx" / sub).mkdir(parents=True, exist_ok=True)
    prefix = work / "nginx"
    conf = prefix / "nginx.conf"
    # As bench.py's nginx (2 workers, upstream keepalive, no buffering, no access log), plus a
    # TLS listener with the same certificate and key as the gateway. TLS settings are nginx's
    # defaults (as the gateway's are rustls's): whether a new connection resumes a session is up
    # to each server and the client, as it would be in use.
    conf.write_text(f"""
daemon off;
master_process on;
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    keepalive_requests 1000000;
    upstream fake {{
        server 127.0.0.1:{fake_port};
        keepalive 256;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{http_port};
        listen 127.0.0.1:{https_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 600s;
        }}
    }}
}}
""")
    return conf


def oha(opts, url: str, key: str | None, rate: int, cacert: Path, new_connections: bool,
        seconds: float | None = None) -> dict:
    cmd = [opts.oha, "--no-tui", "--output-format", "json", "-z", f"{seconds or opts.seconds}s", "-c", "20",
           "-q", str(rate), "--latency-correction", "-m", "POST",
           "-H", "content-type: application/json", "-d", BODY, "--cacert", str(cacert)]
    if new_connections:
        cmd.append("--disable-keepalive")
    if key:
        cmd += ["-H", f"authorization: Bearer {key}"]
    out = run(cmd + [url])
    data = json.loads(out.stdout)
    codes = data.get("statusCodeDistribution") or {}
    pct = data["latencyPercentiles"]
    kinds = data.get("errorDistribution") or {}
    # Requests still in flight when the run's time is up are cut by oha itself, not failed.
    errors = sum(n for kind, n in kinds.items() if "deadline" not in kind)
    return {"p50": pct["p50"] * 1e3, "p99": pct["p99"] * 1e3, "errors": errors, "error_kinds": kinds,
            "answered": sum(codes.values()), "ok": sum(v for k, v in codes.items() if str(k).startswith("2"))}


def start(argv: list[str], env: dict, cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as logfile:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdout=logfile, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def div(a: float, b: float) -> float | None:
    """a / b, or None when b is not above zero (a ratio to nothing measurable is noise)."""
    return a / b if b > 0 else None


def ratio(a: float, b: float) -> str:
    q = div(a, b)
    return f"{q:.2f}x" if q is not None else "-"


def measure(opts) -> dict:
    work = Path(tempfile.mkdtemp(prefix="gateway-https-bench."))
    procs: list[subprocess.Popen] = []
    try:
        ca, cert, key = make_certificate(work)
        trust = ssl.create_default_context(cafile=str(ca))
        bins = Path(opts.bin_dir).resolve()
        fake_port = free_port()
        procs.append(start([str(bins / "fake-ollama"), "--listen", f"127.0.0.1:{fake_port}",
                            "--fixtures", str(ROOT / "fixtures")], dict(os.environ), work, work / "fake.log"))
        fake = f"http://127.0.0.1:{fake_port}"
        wait(f"{fake}/api/version")

        urls: dict[str, str] = {"direct": f"{fake}/v1/chat/completions"}
        pids: dict[str, int | None] = {"direct": None}
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "OLLAMA_"))}
        for name, tls in (("gateway-http", False), ("gateway-https", True)):
            port = free_port()
            env = base_env | {
                "GATEWAY_LISTEN": f"127.0.0.1:{port}", "OLLAMA_URL": fake, "GATEWAY_API_KEYS": KEY,
                "GATEWAY_RATE_LIMIT": "1000000", "GATEWAY_RATE_BURST": "100000",
                "GATEWAY_MAX_CONCURRENT": "1000", "RUST_LOG": "warn",
                "GATEWAY_DB": f"sqlite://{work}/{name}.db",
            }
            if tls:
                env |= {"GATEWAY_TLS_CERT": str(cert), "GATEWAY_TLS_KEY": str(key)}
            proc = start([str(bins / "ollama-gateway")], env, work, work / f"{name}.log")
            procs.append(proc)
            scheme = "https" if tls else "http"
            wait(f"{scheme}://127.0.0.1:{port}/health", trust if tls else None)
            urls[name] = f"{scheme}://127.0.0.1:{port}/v1/chat/completions"
            pids[name] = proc.pid

        if opts.nginx:
            http_port, https_port = free_port(), free_port()
            conf = nginx_conf(work, fake_port, http_port, https_port, cert, key)
            proc = start([opts.nginx, "-p", str(work / "nginx"), "-c", str(conf)], base_env, work, work / "nginx.log")
            procs.append(proc)
            wait(f"http://127.0.0.1:{http_port}/api/version")
            wait(f"https://127.0.0.1:{https_port}/api/version", trust)
            urls["nginx-http"] = f"http://127.0.0.1:{http_port}/v1/chat/completions"
            urls["nginx-https"] = f"https://127.0.0.1:{https_port}/v1/chat/completions"
            pids["nginx-http"] = pids["nginx-https"] = proc.pid

        loads = {"keep-alive": (opts.rate, False), "new connection": (opts.conn_rate, True)}
        load_before = os.getloadavg()[0]
        results: dict[str, dict[str, list[dict]]] = {load: {n: [] for n in urls} for load in loads}
        names = list(urls)
        # Fill every connection pool once before measuring (not counted).
        for name in names:
            oha(opts, urls[name], KEY if name.startswith("gateway") else None, 100, ca, False, seconds=1)
        for turn in range(opts.rounds):
            for load, (rate, fresh) in loads.items():
                order = names[turn % len(names):] + names[:turn % len(names)]
                for name in order:
                    pid = pids[name]
                    group = descendants(pid) if pid else []
                    cpu0 = cpu_seconds(group)
                    sample = oha(opts, urls[name], KEY if name.startswith("gateway") else None, rate, ca, fresh)
                    if pid:
                        sample["cpu_s"] = cpu_seconds(group) - cpu0
                        sample["cpu_us"] = sample["cpu_s"] * 1e6 / max(sample["answered"], 1)
                    results[load][name].append(sample)
        tls_versions = {}
        for name in ("gateway-https", "nginx-https"):
            if name in urls:
                host, port = urls[name].split("//")[1].split("/")[0].split(":")
                with socket.create_connection((host, int(port))) as raw, \
                        trust.wrap_socket(raw, server_hostname=host) as tls_sock:
                    tls_versions[name] = f"{tls_sock.version()} {tls_sock.cipher()[0]}"
        return {"results": results, "tls": tls_versions, "loads": {k: v[0] for k, v in loads.items()},
                "load_average": [load_before, os.getloadavg()[0]]}
    finally:
        stop(procs)
        shutil.rmtree(work, ignore_errors=True)


def summarise(measured: dict, opts) -> tuple[str, dict]:
    lines: list[str] = []
    summary: dict = {}
    out = lines.append
    out("# HTTPS: the gateway against nginx, same certificate, same run")
    out("")
    before, after = measured["load_average"]
    out(f"Machine: {os.cpu_count()} CPUs, {platform.platform()}, load average {before:.1f} before and "
        f"{after:.1f} after (the machine is shared); {opts.rounds} interleaved rounds of "
        f"{opts.seconds} s per target and load; oha fixed rate with latency correction, 20 connections.")
    out("TLS negotiated: " + "; ".join(f"{k}: {v}" for k, v in measured["tls"].items()))
    out("Certificate: ECDSA P-256 leaf signed by a CA made for the run (openssl), the same files for both.")
    out("")
    for load, per_target in measured["results"].items():
        rate = measured["loads"][load]
        med = {n: {k: statistics.median(s[k] for s in samples) for k in ("p50", "p99")}
               for n, samples in per_target.items()}
        # CPU per request over all rounds together: clock ticks are 10 ms, so one round's share
        # is coarse; the sum over rounds is not.
        for n, samples in per_target.items():
            if n != "direct":
                med[n]["cpu_us"] = sum(s["cpu_s"] for s in samples) * 1e6 / max(sum(s["answered"] for s in samples), 1)
        failed = {n: sum(s["answered"] - s["ok"] + s["errors"] for s in samples) for n, samples in per_target.items()}
        held = {n: statistics.median(s["answered"] / (rate * opts.seconds) for s in samples)
                for n, samples in per_target.items()}
        out(f"## {load}: {rate} req/s" + (" (a new TCP connection and TLS handshake per request)"
                                        if load == "new connection" else " (reused connections)"))
        out("")
        out("| target | P50 ms | P99 ms | +P50 over direct ms | CPU µs/req | held rate | failed |")
        out("|---|---:|---:|---:|---:|---:|---:|")
        for n in per_target:
            added = med[n]["p50"] - med["direct"]["p50"]
            cpu = f"{med[n]['cpu_us']:.1f}" if "cpu_us" in med[n] else "-"
            out(f"| {n} | {med[n]['p50']:.3f} | {med[n]['p99']:.3f} | "
                f"{added:+.3f} | {cpu} | {held[n] * 100:.0f} % | {failed[n]} |")
        out("")
        add = lambda n: med[n]["p50"] - med["direct"]["p50"]  # noqa: E731
        cpu = lambda n: med[n]["cpu_us"]  # noqa: E731
        figures = {
            "gateway_https_over_http_added_p50": div(add("gateway-https"), add("gateway-http")),
            "gateway_https_over_http_cpu": div(cpu("gateway-https"), cpu("gateway-http")),
            "https_cost_gateway_p50_ms": med["gateway-https"]["p50"] - med["gateway-http"]["p50"],
            "https_cost_gateway_cpu_us": cpu("gateway-https") - cpu("gateway-http"),
        }
        out(f"- gateway HTTPS / gateway HTTP: added P50 {ratio(add('gateway-https'), add('gateway-http'))}, "
            f"CPU per request {ratio(cpu('gateway-https'), cpu('gateway-http'))}")
        if "nginx-https" in med:
            figures |= {
                "gateway_https_over_nginx_https_added_p50": div(add("gateway-https"), add("nginx-https")),
                "gateway_https_over_nginx_https_cpu": div(cpu("gateway-https"), cpu("nginx-https")),
                "nginx_https_over_http_cpu": div(cpu("nginx-https"), cpu("nginx-http")),
                "https_cost_nginx_p50_ms": med["nginx-https"]["p50"] - med["nginx-http"]["p50"],
                "https_cost_nginx_cpu_us": cpu("nginx-https") - cpu("nginx-http"),
            }
            out(f"- gateway HTTPS / nginx HTTPS: added P50 {ratio(add('gateway-https'), add('nginx-https'))}, "
                f"CPU per request {ratio(cpu('gateway-https'), cpu('nginx-https'))}")
            out(f"- nginx HTTPS / nginx HTTP: added P50 {ratio(add('nginx-https'), add('nginx-http'))}, "
                f"CPU per request {ratio(cpu('nginx-https'), cpu('nginx-http'))}")
            gw_tls, ngx_tls = figures["https_cost_gateway_cpu_us"], figures["https_cost_nginx_cpu_us"]
            out(f"- what HTTPS itself adds (https - http): gateway {figures['https_cost_gateway_p50_ms']:+.3f} ms P50, "
                f"{gw_tls:+.1f} µs CPU per request; nginx {figures['https_cost_nginx_p50_ms']:+.3f} ms P50, "
                f"{ngx_tls:+.1f} µs CPU per request; gateway's / nginx's TLS CPU {ratio(gw_tls, ngx_tls)}")
        out("")
        summary[load] = {"rate": rate, "medians": med, "failed": failed, "held": held, "figures": figures}
    out("CPU per request is the target's own processes (the gateway; nginx's master and workers), "
        "utime + stime from /proc summed over the rounds, divided by the requests answered in them "
        f"(a clock tick is {1000 / CLK_TCK:.0f} ms). The gateway also "
        "translates (OpenAI to Ollama's native API and back) and checks a key; nginx only forwards, "
        "so the gateway-HTTPS / nginx-HTTPS ratio includes that work; the https - http lines are "
        "the TLS part alone.")
    return "\n".join(lines) + "\n", summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", default=str(ROOT / "target/release"))
    parser.add_argument("--oha", default=shutil.which("oha") or str(Path.home() / ".cargo/bin/oha"))
    parser.add_argument("--nginx", default=shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else ""))
    parser.add_argument("--rate", type=int, default=500, help="keep-alive load, req/s")
    parser.add_argument("--conn-rate", type=int, default=150, help="new-connection load, req/s")
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default=str(ROOT / "bench/results/https.md"))
    opts = parser.parse_args()
    measured = measure(opts)
    report, summary = summarise(measured, opts)
    print(report)
    out = Path(opts.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    failed = sum(sum(s["failed"].values()) for s in summary.values())
    if failed:
        sys.exit(f"{failed} requests failed")


if __name__ == "__main__":
    main()
