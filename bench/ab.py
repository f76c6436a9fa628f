#!/usr/bin/env python3
"""Two gateway binaries side by side: the same fake Ollama, the same fixed-rate load, interleaved
rounds, so a change on the request path is measured against the path without it in one run.

    python3 bench/ab.py OLD_BINARY NEW_BINARY [--rate 1000] [--seconds 4] [--rounds 3] [--native]

Each binary runs as a gateway (auth and limits on, as in production) in front of one release
fake-ollama; `direct` (the fake itself) is the floor. Printed per target: P50 and P99 latency
(oha, fixed rate with latency correction), and CPU per request of the gateway process (utime +
stime from /proc); then NEW against OLD as ratios of the added P50 (over direct) and of CPU per
request. Needs oha (bench/run.sh installs it) and the release fake-ollama (cargo build --release).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-ab-bench"
BODY = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 16})
# The same request on the native surface (--native): /api/chat, passed through after its checks.
NATIVE_BODY = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "Say hi"}], "stream": False,
                          "options": {"num_predict": 16}})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url: str) -> None:
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.05)
    sys.exit(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def oha(oha_bin: str, url: str, key: str | None, rate: int, seconds: float, body: str = BODY) -> dict:
    """A fixed-rate run against `url`, or against each URL of the file `@PATH` in turn."""
    cmd = [oha_bin, "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-c", "50",
           "-q", str(rate), "--latency-correction", "-m", "POST",
           "-H", "content-type: application/json", "-d", body]
    if key:
        cmd += ["-H", f"authorization: Bearer {key}"]
    target = ["--urls-from-file", url[1:]] if url.startswith("@") else [url]
    out = subprocess.run(cmd + target, capture_output=True, text=True, check=True, timeout=seconds + 60)
    data = json.loads(out.stdout)
    codes = data.get("statusCodeDistribution") or {}
    pct = data["latencyPercentiles"]
    return {"p50": pct["p50"] * 1e3, "p99": pct["p99"] * 1e3,
            "answered": sum(codes.values()), "ok": sum(v for k, v in codes.items() if str(k).startswith("2"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--native", action="store_true", help="POST /api/chat instead of /v1/chat/completions")
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--oha", default=shutil.which("oha") or "/tmp/oha-root/bin/oha")
    parser.add_argument("--fake", default=str(ROOT / "target/release/fake-ollama"))
    opts = parser.parse_args()
    route, body = ("/api/chat", NATIVE_BODY) if opts.native else ("/v1/chat/completions", BODY)

    work = Path(tempfile.mkdtemp(prefix="gateway-ab."))
    procs = []
    try:
        fake_port = free_port()
        procs.append(subprocess.Popen([opts.fake, "--listen", f"127.0.0.1:{fake_port}",
                                       "--fixtures", str(ROOT / "fixtures")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        fake = f"http://127.0.0.1:{fake_port}"
        wait(f"{fake}/api/version")
        gateways = {}
        for name, binary in (("old", opts.old), ("new", opts.new)):
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "OLLAMA_"))}
            env |= {"GATEWAY_LISTEN": f"127.0.0.1:{port}", "OLLAMA_URL": fake, "GATEWAY_API_KEYS": KEY,
                    "GATEWAY_RATE_LIMIT": "1000000", "GATEWAY_RATE_BURST": "100000",
                    "GATEWAY_MAX_CONCURRENT": "1000", "RUST_LOG": "warn",
                    "GATEWAY_DB": f"sqlite://{work}/{name}.db"}
            proc = subprocess.Popen([binary], env=env, cwd=work,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(proc)
            url = f"http://127.0.0.1:{port}"
            wait(f"{url}/health")
            gateways[name] = (url + route, proc.pid)
        targets = {"direct": (f"{fake}{route}", None), **gateways}
        results: dict[str, list[dict]] = {name: [] for name in targets}
        names = list(targets)
        for turn in range(opts.rounds):
            for name in names[turn % 3:] + names[:turn % 3]:
                url, pid = targets[name]
                cpu0 = cpu_seconds(pid) if pid else 0.0
                run = oha(opts.oha, url, KEY if pid else None, opts.rate, opts.seconds, body)
                if pid:
                    run["cpu_us"] = (cpu_seconds(pid) - cpu0) * 1e6 / max(run["answered"], 1)
                results[name].append(run)
        med = lambda name, key: statistics.median(r[key] for r in results[name])  # noqa: E731
        print(f"POST {route}, fixed rate {opts.rate} req/s, {opts.rounds} interleaved rounds of {opts.seconds} s")
        print(f"{'target':8} {'p50 ms':>8} {'p99 ms':>8} {'cpu us/req':>11} {'ok/answered':>12}")
        for name in targets:
            cpu = f"{med(name, 'cpu_us'):11.1f}" if name != "direct" else f"{'-':>11}"
            ok = sum(r["ok"] for r in results[name])
            answered = sum(r["answered"] for r in results[name])
            print(f"{name:8} {med(name, 'p50'):8.3f} {med(name, 'p99'):8.3f} {cpu} {ok:>6}/{answered}")
        added = {n: med(n, "p50") - med("direct", "p50") for n in ("old", "new")}
        print(f"added P50 over direct: old {added['old']:.3f} ms, new {added['new']:.3f} ms,"
              f" new/old {added['new'] / added['old']:.2f}x" if added["old"] > 0 else "")
        print(f"CPU per request new/old: {med('new', 'cpu_us') / med('old', 'cpu_us'):.2f}x")
        # Each gateway's usage table after SIGTERM (which writes out its queue): every request
        # it answered with the key should be there (none for a gateway that records nothing).
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        for name in ("old", "new"):
            answered = sum(r["answered"] for r in results[name])
            with sqlite3.connect(work / f"{name}.db") as db:
                recorded = db.execute("SELECT COUNT(*) FROM usage WHERE route = ?", (route,)).fetchone()[0]
            print(f"usage records of {name}: {recorded} for {answered} requests answered")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
