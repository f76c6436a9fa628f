#!/usr/bin/env python3
"""What storing responses costs the request path: one gateway binary twice, side by side, in
front of the same fake Ollama, under the same fixed-rate load of non-streamed `POST
/v1/responses`, interleaved rounds: `nostore` (`GATEWAY_RESPONSES_TTL=0`, nothing kept) is the
baseline, `store` (the default: every response kept, written off the request path) the change.

    python3 bench/responses_store.py [BINARY] [--rate 300] [--seconds 4] [--rounds 3]

Printed per target: P50 and P99 latency (oha, fixed rate with latency correction) and CPU per
request of the gateway process (utime + stime from /proc); then `store` against `nostore` as
ratios; and how many responses the `store` gateway's database holds at the end against how many
it answered with 200 (every one must be there: nothing is dropped to keep up). Needs oha
(bench/run.sh installs it) and release builds (cargo build --release --bins -p ollama-gateway
-p fake-ollama).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from ab import cpu_seconds, free_port, wait

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-responses-bench"
BODY = json.dumps({"model": "bench", "input": "Say hi", "max_output_tokens": 16})


def oha(oha_bin: str, url: str, rate: int, seconds: float) -> dict:
    cmd = [oha_bin, "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-c", "50",
           "-q", str(rate), "--latency-correction", "-m", "POST",
           "-H", "content-type: application/json", "-H", f"authorization: Bearer {KEY}", "-d", BODY, url]
    data = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    codes = data.get("statusCodeDistribution") or {}
    pct = data["latencyPercentiles"]
    return {"p50": pct["p50"] * 1e3, "p99": pct["p99"] * 1e3,
            "answered": sum(codes.values()), "ok": sum(v for k, v in codes.items() if str(k).startswith("2"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary", nargs="?", default=str(ROOT / "target/release/ollama-gateway"))
    parser.add_argument("--rate", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--oha", default=shutil.which("oha") or "/tmp/oha-root/bin/oha")
    parser.add_argument("--fake", default=str(ROOT / "target/release/fake-ollama"))
    opts = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gateway-responses-bench."))
    procs = []
    try:
        fake_port = free_port()
        procs.append(subprocess.Popen([opts.fake, "--listen", f"127.0.0.1:{fake_port}",
                                       "--fixtures", str(ROOT / "fixtures")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        fake = f"http://127.0.0.1:{fake_port}"
        wait(f"{fake}/api/version")
        targets = {}
        for name, ttl in (("nostore", "0"), ("store", "30d")):
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "OLLAMA_"))}
            env |= {"GATEWAY_LISTEN": f"127.0.0.1:{port}", "OLLAMA_URL": fake, "GATEWAY_API_KEYS": KEY,
                    "GATEWAY_RATE_LIMIT": "1000000", "GATEWAY_RATE_BURST": "100000",
                    "GATEWAY_MAX_CONCURRENT": "1000", "RUST_LOG": "warn",
                    "GATEWAY_RESPONSES_TTL": ttl, "GATEWAY_DB": f"sqlite://{work}/{name}.db"}
            proc = subprocess.Popen([opts.binary], env=env, cwd=work,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(proc)
            url = f"http://127.0.0.1:{port}"
            wait(f"{url}/health")
            targets[name] = (url + "/v1/responses", proc.pid)
        results: dict[str, list[dict]] = {name: [] for name in targets}
        names = list(targets)
        for turn in range(opts.rounds):
            for name in names[turn % 2:] + names[:turn % 2]:
                url, pid = targets[name]
                cpu0 = cpu_seconds(pid)
                run = oha(opts.oha, url, opts.rate, opts.seconds)
                run["cpu_us"] = (cpu_seconds(pid) - cpu0) * 1e6 / max(run["answered"], 1)
                results[name].append(run)
        med = lambda name, key: statistics.median(r[key] for r in results[name])  # noqa: E731
        print(f"POST /v1/responses (bench model, 16 tokens), fixed rate {opts.rate} req/s,"
              f" {opts.rounds} interleaved rounds of {opts.seconds} s")
        print(f"{'target':8} {'p50 ms':>8} {'p99 ms':>8} {'cpu us/req':>11} {'ok/answered':>12}")
        for name in targets:
            ok = sum(r["ok"] for r in results[name])
            answered = sum(r["answered"] for r in results[name])
            print(f"{name:8} {med(name, 'p50'):8.3f} {med(name, 'p99'):8.3f} {med(name, 'cpu_us'):11.1f}"
                  f" {ok:>6}/{answered}")
        for key, label in (("p50", "P50"), ("p99", "P99"), ("cpu_us", "CPU per request")):
            print(f"{label} store/nostore: {med('store', key) / med('nostore', key):.2f}x")
        # Every answered response must land (the writer catches up within a second or two).
        stored, want = 0, sum(r["ok"] for r in results["store"])
        for _ in range(100):
            with sqlite3.connect(work / "store.db") as db:
                stored = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            if stored >= want:
                break
            time.sleep(0.1)
        print(f"responses in the store gateway's database: {stored} of {want} answered with 200")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
