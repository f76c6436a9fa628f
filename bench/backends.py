#!/usr/bin/env python3
"""One backend against two: what routing over several Ollama servers costs, and how it splits load.

    python3 bench/backends.py [--binary target/release/ollama-gateway] [--rates 500,1000]
                              [--seconds 4] [--rounds 3] [--out bench/results/backends.md]

Two release fake-ollama processes (A and B, equal) and one gateway binary started twice, auth and
limits on as in production: `one` with OLLAMA_URL=A (today's single upstream), `two` with
OLLAMA_URL=A,B (the pool with two equal backends, its watchers running). `direct` (the client
straight to fake A) is the floor. At each fixed rate (oha -q RATE --latency-correction) the three
targets take turns in rounds whose order rotates, so noise falls on all of them alike.

Printed, per rate: P50 and P99 (medians over the rounds), CPU per request of each gateway process
(utime + stime from /proc), and then, as ratios against `one` measured in the same run: `two`'s
added P50 over direct (the issue's aim: within 1.05x; the report says whether it is met), its
total P50 (for reference only), P99 and CPU per request; and the split of `two`'s chat requests
between A and B (counted by the fakes themselves, reset before each round). The report goes to
--out as well. Needs oha (bench/run.sh installs it) and the release binaries (cargo build --release).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import urllib.request
from pathlib import Path

from ab import cpu_seconds, free_port, oha, wait

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-backends-bench"


def fake_chats(fake: str) -> int:
    """Chat requests the fake received since its last reset (its own log)."""
    with urllib.request.urlopen(f"{fake}/_fake/requests", timeout=10) as answer:
        requests = json.load(answer)
    return sum(1 for r in requests if r.get("path") == "/api/chat")


def fake_reset(fake: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{fake}/_fake/reset", method="POST"), timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / "target/release/ollama-gateway"))
    parser.add_argument("--fake", default=str(ROOT / "target/release/fake-ollama"))
    parser.add_argument("--rates", default="500,1000")
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--oha", default=shutil.which("oha") or "/tmp/oha-root/bin/oha")
    parser.add_argument("--out", default=str(ROOT / "bench/results/backends.md"))
    opts = parser.parse_args()
    rates = [int(r) for r in opts.rates.split(",") if r.strip()]

    work = Path(tempfile.mkdtemp(prefix="gateway-backends."))
    procs: list[subprocess.Popen] = []
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    try:
        fakes = []
        for _ in range(2):
            port = free_port()
            procs.append(subprocess.Popen([opts.fake, "--listen", f"127.0.0.1:{port}",
                                           "--fixtures", str(ROOT / "fixtures"), "--threads", "1"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            fakes.append(f"http://127.0.0.1:{port}")
            wait(f"{fakes[-1]}/api/version")
        gateways = {}
        for name, upstream in (("one", fakes[0]), ("two", ",".join(fakes))):
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "OLLAMA_"))}
            env |= {"GATEWAY_LISTEN": f"127.0.0.1:{port}", "OLLAMA_URL": upstream, "GATEWAY_API_KEYS": KEY,
                    "GATEWAY_RATE_LIMIT": "1000000", "GATEWAY_RATE_BURST": "100000",
                    "GATEWAY_MAX_CONCURRENT": "1000", "RUST_LOG": "warn",
                    "GATEWAY_DB": f"sqlite://{work}/{name}.db"}
            proc = subprocess.Popen([opts.binary], env=env, cwd=work,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(proc)
            url = f"http://127.0.0.1:{port}"
            wait(f"{url}/health")
            gateways[name] = (url + "/v1/chat/completions", proc.pid)
        targets = {"direct": (f"{fakes[0]}/v1/chat/completions", None), **gateways}
        names = list(targets)
        # Warm the connection pools (both of `two`'s backends) before measuring.
        for name, (url, pid) in targets.items():
            oha(opts.oha, url, KEY if pid else None, 200, 1)

        say("# One backend against two (issue 17)")
        say()
        say(f"{platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}; "
            f"fixed rate with oha -c 50 --latency-correction, {opts.rounds} interleaved rounds of "
            f"{opts.seconds:g} s per rate; two release fake-ollama (1 thread each), the gateway "
            f"release binary twice (`one`: OLLAMA_URL=A, `two`: OLLAMA_URL=A,B). Written by "
            f"`bench/backends.py`.")
        for rate in rates:
            results: dict[str, list[dict]] = {name: [] for name in targets}
            split = {"A": 0, "B": 0}
            for turn in range(opts.rounds):
                for name in names[turn % 3:] + names[:turn % 3]:
                    url, pid = targets[name]
                    if name == "two":
                        for fake in fakes:
                            fake_reset(fake)
                    cpu0 = cpu_seconds(pid) if pid else 0.0
                    run = oha(opts.oha, url, KEY if pid else None, rate, opts.seconds)
                    if pid:
                        run["cpu_us"] = (cpu_seconds(pid) - cpu0) * 1e6 / max(run["answered"], 1)
                    if name == "two":
                        split["A"] += fake_chats(fakes[0])
                        split["B"] += fake_chats(fakes[1])
                    results[name].append(run)
            med = lambda name, key: statistics.median(r[key] for r in results[name])  # noqa: E731
            say()
            say(f"## {rate} req/s")
            say()
            say("| target | P50 ms | P99 ms | CPU µs/request | ok / answered |")
            say("|---|---|---|---|---|")
            for name in targets:
                cpu = f"{med(name, 'cpu_us'):.1f}" if name != "direct" else "-"
                ok = sum(r["ok"] for r in results[name])
                answered = sum(r["answered"] for r in results[name])
                say(f"| {name} | {med(name, 'p50'):.3f} | {med(name, 'p99'):.3f} | {cpu} | {ok} / {answered} |")
            added = {n: med(n, "p50") - med("direct", "p50") for n in ("one", "two")}
            say()
            # The aim (issue 17) is about the latency the gateway adds, not the total: the total
            # includes the fake's own time, which would hide a pool that doubled the gateway's.
            if added["one"] > 0:
                ratio = added["two"] / added["one"]
                verdict = "met" if ratio <= 1.05 else "**not met**"
                say(f"- added P50 over direct, two/one: **{ratio:.2f}x** (`one` adds {added['one']:.3f} ms, "
                    f"`two` {added['two']:.3f} ms; aim: within 1.05x, {verdict})")
            say(f"- total P50 `two` / `one`: {med('two', 'p50') / med('one', 'p50'):.3f}x "
                f"({med('two', 'p50'):.3f} vs {med('one', 'p50'):.3f} ms; not the aim's measure: "
                "it includes the backend's own time)")
            say(f"- `two` P99 / `one` P99: {med('two', 'p99') / med('one', 'p99'):.3f}x")
            say(f"- CPU per request `two` / `one`: **{med('two', 'cpu_us') / med('one', 'cpu_us'):.3f}x**")
            total = split["A"] + split["B"]
            if total:
                say(f"- `two`'s chat requests: A {split['A']}, B {split['B']} of {total} "
                    f"(A {100 * split['A'] / total:.1f}%, B {100 * split['B'] / total:.1f}%; "
                    f"B/A **{split['B'] / max(split['A'], 1):.3f}**)")
        Path(opts.out).write_text("\n".join(lines) + "\n")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
