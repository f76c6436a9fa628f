#!/usr/bin/env python3
"""One backend against two: what routing over several Ollama servers costs, and how it splits load.

    python3 bench/backends.py [--binary target/release/ollama-gateway] [--rates 500,1000]
                              [--seconds 4] [--rounds 5] [--no-perf] [--out bench/results/backends.md]

Two release fake-ollama processes (A and B, equal, one thread each) and one gateway binary
started three times, auth and limits on as in production:
  one    OLLAMA_URL=A    today's single upstream
  two    OLLAMA_URL=A,B  the pool with two equal backends, its watchers running
  same   OLLAMA_URL=A,A  the pool with two backends that are one Ollama: every piece of the
                         pool's work (ranking, watchers, two connection pools) while the
                         backend's own time stays the one `one` sees
and two floors, the client straight to the fakes:
  direct     A alone, the floor of `one` and `same`
  direct-ab  A and B in turn (oha --urls-from-file), the floor of `two`: each fake then gets
             half the rate, and a fake that is less busy answers a little slower (its thread
             sleeps between requests and must be woken), which is the backends' doing, not the
             gateway's. Against `direct` that difference would be counted as the pool's.
At each fixed rate (oha -q RATE --latency-correction) the targets take turns in rounds whose
order rotates, so noise falls on all of them alike.

Printed, per rate: P50 and P99 (medians over the rounds) and CPU per request of each gateway
process (utime + stime from /proc); then, as ratios against `one` measured in the same run, the
issue's aim (added latency within 1.05x of one backend's): `two`'s P50 over `direct-ab` and
`same`'s over `direct`, each against `one`'s over `direct`, as the median of the rounds' paired
ratios (the verdict) with their quartiles (the noise), and as the ratio of the medians; CPU per
request; and the split of `two`'s chat requests between A and B (counted by the
fakes themselves, reset before each round). With `perf` on the PATH (and --no-perf not given),
one more run per gateway at the first rate is sampled with `perf record`, and the share of its
CPU samples spent in the pool's own functions (`ollama_gateway::backends::`, self time) is
printed: the pool's cost measured directly, however noisy the machine. The report goes to --out
as well. Needs oha (bench/run.sh installs it) and the release binaries (cargo build --release).
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


def perf_share(perf: str, oha_bin: str, url: str, pid: int, rate: int, seconds: float, work: Path) -> float | None:
    """The share (%) of `pid`'s CPU samples in the pool's own functions during one run at `rate`;
    None when perf cannot sample here."""
    data = work / f"perf-{pid}.data"
    record = subprocess.Popen([perf, "record", "-q", "-F", "1999", "-p", str(pid), "-o", str(data),
                               "--", "sleep", str(seconds)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    oha(oha_bin, url, KEY, rate, seconds)
    if record.wait(timeout=seconds + 60) != 0 or not data.exists():
        return None
    report = subprocess.run([perf, "report", "-i", str(data), "--stdio", "--no-children", "-g", "none",
                             "--sort", "sym"], capture_output=True, text=True, timeout=120)
    share = 0.0
    for line in report.stdout.splitlines():
        fields = line.split(None, 2)
        if len(fields) == 3 and fields[0].endswith("%") and "ollama_gateway::backends::" in fields[2]:
            share += float(fields[0].rstrip("%"))
    return share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / "target/release/ollama-gateway"))
    parser.add_argument("--fake", default=str(ROOT / "target/release/fake-ollama"))
    parser.add_argument("--rates", default="500,1000")
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--oha", default=shutil.which("oha") or "/tmp/oha-root/bin/oha")
    parser.add_argument("--no-perf", action="store_true", help="leave out the perf profile")
    parser.add_argument("--out", default=str(ROOT / "bench/results/backends.md"))
    opts = parser.parse_args()
    rates = [int(r) for r in opts.rates.split(",") if r.strip()]
    perf = None if opts.no_perf else shutil.which("perf")

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
        # The client's own split between A and B: each of oha's 50 connections' URLs in turn.
        both = work / "direct-ab.txt"
        both.write_text("".join(f"{fakes[i % 2]}/v1/chat/completions\n" for i in range(50)))
        gateways = {}
        upstreams = (("one", fakes[0]), ("two", ",".join(fakes)), ("same", f"{fakes[0]},{fakes[0]}"))
        for name, upstream in upstreams:
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
        targets = {"direct": (f"{fakes[0]}/v1/chat/completions", None), "direct-ab": (f"@{both}", None),
                   **gateways}
        floor = {"one": "direct", "two": "direct-ab", "same": "direct"}
        names = list(targets)
        # Warm the connection pools (both of each pool's backends) before measuring.
        for name, (url, pid) in targets.items():
            oha(opts.oha, url, KEY if pid else None, 200, 1)

        say("# One backend against two (issue 17)")
        say()
        say(f"{platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}; "
            f"fixed rate with oha -c 50 --latency-correction, {opts.rounds} interleaved rounds of "
            f"{opts.seconds:g} s per rate; two release fake-ollama A and B (1 thread each), the gateway "
            f"release binary three times (`one`: OLLAMA_URL=A, `two`: A,B, `same`: A,A); floors: "
            f"`direct` (client to A) for `one` and `same`, `direct-ab` (client to A and B in turn) for "
            f"`two`. Written by `bench/backends.py`; its docstring says why each floor.")
        for rate in rates:
            results: dict[str, list[dict]] = {name: [] for name in targets}
            split = {"A": 0, "B": 0}
            for turn in range(opts.rounds):
                shift = turn % len(names)
                for name in names[shift:] + names[:shift]:
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
                cpu = f"{med(name, 'cpu_us'):.1f}" if name in gateways else "-"
                ok = sum(r["ok"] for r in results[name])
                answered = sum(r["answered"] for r in results[name])
                say(f"| {name} | {med(name, 'p50'):.3f} | {med(name, 'p99'):.3f} | {cpu} | {ok} / {answered} |")
            added = {n: med(n, "p50") - med(floor[n], "p50") for n in gateways}
            say()
            # The aim (issue 17) is about the latency the gateway adds, not the total: the total
            # includes the fake's own time, which would hide a pool that doubled the gateway's.
            # Each round's targets ran within seconds of each other, so each round gives one
            # paired ratio; their median is the verdict (a burst of another process's work on
            # this shared machine spoils one round, not the figure), their quartiles its noise.
            for name in ("two", "same"):
                rounds = [(r[name]["p50"] - r[floor[name]]["p50"]) / (r["one"]["p50"] - r["direct"]["p50"])
                          for r in ({n: results[n][i] for n in targets} for i in range(opts.rounds))
                          if r["one"]["p50"] > r["direct"]["p50"]]
                if not rounds:
                    continue
                ratio = statistics.median(rounds)
                low, _, high = statistics.quantiles(rounds, n=4) if len(rounds) > 1 else (ratio, 0, ratio)
                verdict = "met" if ratio <= 1.05 else "**not met**"
                say(f"- added P50, `{name}` over `{floor[name]}` against `one` over `direct`, median of the "
                    f"{len(rounds)} rounds' ratios: **{ratio:.2f}x** (quartiles {low:.2f}x to {high:.2f}x; "
                    f"medians over the rounds: `one` adds {added['one']:.3f} ms, `{name}` {added[name]:.3f} ms, "
                    f"{added[name] / max(added['one'], 1e-9):.2f}x); aim: within 1.05x, {verdict}")
            say(f"- for reference, `two` over `direct` (A alone, the floor of earlier reports): "
                f"{(med('two', 'p50') - med('direct', 'p50')) / max(added['one'], 1e-9):.2f}x of `one`'s; "
                f"`direct-ab` / `direct` P50: {med('direct-ab', 'p50') / med('direct', 'p50'):.3f}x")
            for name in ("two", "same"):
                say(f"- `{name}` P99 / `one` P99: {med(name, 'p99') / med('one', 'p99'):.3f}x; CPU per request "
                    f"`{name}` / `one`: **{med(name, 'cpu_us') / med('one', 'cpu_us'):.3f}x**")
            total = split["A"] + split["B"]
            if total:
                say(f"- `two`'s chat requests: A {split['A']}, B {split['B']} of {total} "
                    f"(A {100 * split['A'] / total:.1f}%, B {100 * split['B'] / total:.1f}%; "
                    f"B/A **{split['B'] / max(split['A'], 1):.3f}**)")
        if perf:
            shares = {name: perf_share(perf, opts.oha, url, pid, rates[0], opts.seconds, work)
                      for name, (url, pid) in gateways.items()}
            say()
            say(f"## The pool's own work ({rates[0]} req/s, perf record -F 1999, {opts.seconds:g} s per gateway)")
            say()
            if any(share is None for share in shares.values()):
                say("- perf could not sample the gateway here")
            else:
                say("- CPU samples in `ollama_gateway::backends::` functions (self time; what they call, "
                    "such as malloc, is not counted): "
                    + ", ".join(f"`{name}` {share:.2f}%" for name, share in shares.items()))
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
