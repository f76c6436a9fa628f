"""Render bench.py's results as bench/results/latest.md. Every number comes from the results;
nothing here is typed by hand. `render` also returns the smoke-run checks that failed."""

from __future__ import annotations

DESCRIPTIONS = {
    "direct": "client straight to the fake's `/v1/chat/completions` (the floor)",
    "nginx": "nginx reverse proxy: `proxy_buffering off`, HTTP/1.1, upstream `keepalive 256`",
    "caddy": "caddy `reverse_proxy`, `flush_interval -1`",
    "passthrough": "bare hyper server + reqwest client pass-through on tokio (`bench-client passthrough`): "
    "no parsing, no translation, no middleware; the floor of the gateway's own stack",
    "passthrough-hyper": "the same pass-through with hyper-util's pooled client instead of reqwest "
    "(`--client hyper`): what reqwest's own layers cost",
    "litellm": "LiteLLM proxy, model `ollama_chat/bench` (translates NDJSON to SSE), master key, logging off",
    "gateway": "ollama-gateway release build, auth on (bearer key), rate and concurrency limits on but set high",
    "gateway-norecord": "the same as `gateway` with usage recording off (`GATEWAY_USAGE_RECORDING=false`); "
    "`gateway` records every request (the default)",
    "gateway-open": "ollama-gateway, `GATEWAY_AUTH=off`, limits 0",
    "gateway-429": "ollama-gateway with a 60/min, burst 1 key (errors scenario only)",
}
ORDER = ["direct", "nginx", "caddy", "passthrough", "passthrough-hyper", "litellm", "gateway",
         "gateway-norecord", "gateway-open", "gateway-429"]


def ordered(cells: dict) -> list:
    """(name, value) pairs in the report's target order."""
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(cells.items(), key=lambda kv: rank.get(kv[0], len(ORDER)))


def fmt(value, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+,.{digits}f}" if signed else f"{value:,.{digits}f}"


def ratio(ours, direct, nginx):
    """(ours - direct) / (nginx - direct), or None when nginx added nothing measurable."""
    if None in (ours, direct, nginx):
        return None
    den = nginx - direct
    if den <= 0:
        return None
    return (ours - direct) / den


def fmt_ratio(value) -> str:
    return "—" if value is None else f"{value:.2f}x"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def mib(kib) -> str:
    return "—" if not kib else f"{kib / 1024:,.1f}"


def render(results: dict, opts) -> tuple[str, list[str]]:
    out: list[str] = []
    failures: list[str] = []
    m = results["machine"]
    smoke = opts.smoke
    out.append("# Benchmark: ollama-gateway against direct, nginx, caddy and LiteLLM\n")
    out.append(
        f"Written by `bench/run.sh{' --smoke' if smoke else ''}` on {m['date']} "
        f"(commit {m['commit']}); run time {results['elapsed_s']:.0f} s. "
        "Generated: do not edit by hand. Method and how to read this: `bench/README.md`.\n"
    )
    out.append(
        f"**Machine**: {m['nproc']} CPUs ({m['cpu']}), kernel {m['kernel']}, {m['memory']} RAM, "
        f"open-files hard limit {m['fd_limit']}. Load generator, fake Ollama and every target share "
        "these CPUs, so absolute times are noisy: read the differences against `direct` and `nginx`, "
        "measured in the same run, interleaved.\n"
    )
    out.append("**Tools**: " + ", ".join(f"{k} `{v}`" for k, v in m["versions"].items())
               + f". Binaries: `{m['binaries']}`.\n")
    targets = [n for n, _ in ordered(results.get("idle", {}).get("targets", {}))]
    out.append("**Targets**:\n")
    for name in targets + (["gateway-429"] if any("gateway-429" in c for c in results.get("errors", {}).values()) else []):
        out.append(f"- `{name}`: {DESCRIPTIONS.get(name, '')}")
    for name, why in results["unavailable"].items():
        out.append(f"- `{name}`: **unavailable** ({why})")
    if "litellm" in targets:
        out.append(
            "\nLiteLLM is kept stopped (SIGSTOP) except while it is measured, and is measured after "
            "the others in each step (on its own in the client scenarios): its background work and the "
            "backlog it keeps serving after an overload would otherwise land on the next target.\n"
        )
    phases = results["phases"]
    out.append(
        "\n**Fake Ollama settings by phase** (restarted on the same port between phases): "
        + "; ".join(f"first token {p['first_token_delay_ms']} ms, gap {p['chunk_gap_ms']} ms" for p in phases)
        + ".\n"
    )

    aims = aims_section(results, opts)
    if aims:
        out.append("## Aims\n")
        out.append(aims)

    out.append(summary_section(results))
    out.append(idle_section(results))
    if "sweep" in results:
        out.append(sweep_section(results))
    if "saturation" in results:
        out.append(saturation_section(results))
    if "streams" in results:
        out.append(streams_section(results))
    if "cancel" in results:
        out.append(cancel_section(results))
    if "capacity" in results:
        out.append(capacity_section(results))
    if "errors" in results:
        out.append(errors_section(results))
    if "real" in results:
        out.append(real_section(results))
    if "usage_recording" in results:
        out.append(usage_section(results))
    out.append(memory_section(results))

    if smoke:
        failures = smoke_checks(results)
        out.append("## Smoke checks\n")
        out.append("All passed.\n" if not failures else "\n".join(f"- FAILED: {f}" for f in failures) + "\n")
    return "\n".join(out), failures


# ---------------------------------------------------------------------------------------------


def summary_section(results: dict) -> str:
    idle = results["idle"]["targets"]
    sweep = results.get("sweep", {})
    rate = "1000" if "1000" in sweep else (list(sweep)[-1] if sweep else None)
    cells = sweep.get(rate, {}) if rate else {}
    streams = results.get("streams", {})
    level = "10" if "10" in streams else (list(streams)[0] if streams else None)
    st = streams.get(level, {}).get("targets", {}) if level else {}
    cap = results.get("capacity", {}).get("targets", {})
    cancel = results.get("cancel", {}).get("targets", {})
    sat = results.get("saturation", {})
    mem = results["memory"]
    d_idle = idle.get("direct", {}).get("median_of_medians_us")
    d = cells.get("direct", {})
    n_cpu = cells.get("nginx", {}).get("cpu_us_per_req")
    d_ttft = st.get("direct", {}).get("ttft_us", {}).get("p50")
    rows = []
    for name, v in ordered(idle):
        c = cells.get(name, {})
        intact = sum(lv["targets"].get(name, {}).get("intact", 0) for lv in streams.values())
        total = sum(lv["targets"].get(name, {}).get("streams", 0) for lv in streams.values())
        ttft = st.get(name, {}).get("ttft_us", {}).get("p50")
        can = cancel.get(name, {}).get("close_after_leave_us", {})
        peak = max((p.get("hwm_kib", 0) for ph, p in mem.get(name, {}).items() if ph != "capacity"), default=None)
        base = name == "direct"
        rows.append([
            f"`{name}`",
            "—" if base else fmt(ms(sub(v["median_of_medians_us"], d_idle)), signed=True),
            "—" if base else fmt(sub(c.get("p50_ms"), d.get("p50_ms")), signed=True),
            "—" if base else fmt(sub(c.get("p99_ms"), d.get("p99_ms")), signed=True),
            "—" if base else fmt(c.get("cpu_us_per_req"), 0),
            "—" if base else fmt_ratio(div(c.get("cpu_us_per_req"), n_cpu)),
            fmt(sat.get(name, {}).get("achieved_rps"), 0),
            "—" if base else fmt(ms(sub(ttft, d_ttft)), 2, signed=True),
            f"{intact}/{total}" if total else "—",
            fmt(cap.get(name, {}).get("slope_kib_per_stream"), 1),
            fmt(ms(can.get("p50")), 2) + " / " + fmt(ms(can.get("max")), 2) if can else "—",
            "—" if base else mib(peak),
        ])
    header = ["target", "idle added", f"+P50 @{rate}/s", f"+P99 @{rate}/s", "CPU µs/req", "CPU ÷ nginx",
              "saturation req/s", "+TTFT P50", "streams intact", "KiB/stream", "cancel ms", "peak RSS MiB"]
    # Drop the columns a smoke run has no figures for.
    keep = [i for i in range(len(header)) if i == 0 or any(row[i] not in ("—", "— / —") for row in rows)]
    header = [header[i] for i in keep]
    rows = [[row[i] for i in keep] for row in rows]
    return (
        "## Summary\n\n"
        "Added = target minus `direct` in the same run. Idle: median of round medians. "
        + (f"Load: `oha -q {rate}` P50/P99. CPU per request at {rate} req/s (÷ nginx's). Saturation: "
           "closed-loop req/s. " if rate else "")
        + f"TTFT: at {level} concurrent streams. Streams intact: all levels. "
        "Memory per open stream: RSS slope. Cancel: client leaves → upstream closed, P50 / max. "
        "Peak RSS: VmHWM before the capacity test. Milliseconds unless stated.\n\n"
        + table(header, rows)
    )


def idle_section(results: dict) -> str:
    idle = results["idle"]
    t = idle["targets"]
    direct = t.get("direct", {}).get("median_of_medians_us")
    nginx = t.get("nginx", {}).get("median_of_medians_us")
    rows = []
    for name, v in ordered(t):
        mm = v["median_of_medians_us"]
        rows.append([
            f"`{name}`", fmt(ms(mm)), fmt(ms(v["all_us"]["p90"])), fmt(ms(v["all_us"]["p99"])),
            "—" if name == "direct" else fmt(ms(sub(mm, direct)), signed=True),
            "—" if name in ("direct", "nginx") else fmt_ratio(ratio(mm, direct, nginx)),
            v["errors"],
        ])
    return (
        "## Idle overhead (one request at a time)\n\n"
        f"{idle['rounds']} rounds; in each, {idle['per_round']} sequential non-streamed requests "
        f"({16} tokens) per target on one keep-alive connection, target order rotating. "
        "Median = median of the per-round medians; P90/P99 over all requests. Milliseconds.\n\n"
        + table(["target", "median", "P90", "P99", "median − direct", "÷ nginx's added", "errors"], rows)
    )


def sweep_section(results: dict) -> str:
    parts = [
        "## Fixed-rate sweep (non-streamed)\n\n"
        "`oha -q RATE --latency-correction -c 50` (open loop: a stall is charged to every request "
        "it delays), non-streamed chat, 16 tokens, instant fake. Each cell is the median of "
        f"{results.get('passes', '')} runs; latencies in ms; CPU = utime+stime of the target's "
        "processes per answered request (the fake's own CPU in its column). \"held\" = direct "
        "answered at least 95% of the asked rate, so the fake was not the bottleneck.\n"
    ]
    for rate, cells in results["sweep"].items():
        direct = cells.get("direct", {})
        nginx = cells.get("nginx", {})
        held = direct.get("achieved_rps", 0) >= 0.95 * int(rate)
        rows = []
        for name, c in ordered(cells):
            if "error" in c:
                rows.append([f"`{name}`", c["error"]] + [""] * 11)
                continue
            base = name in ("direct", "nginx")
            rows.append([
                f"`{name}`", fmt(c["achieved_rps"], 0), fmt(c["p50_ms"]), fmt(c["p99_ms"]), fmt(c["p999_ms"]),
                "—" if name == "direct" else fmt(sub(c["p50_ms"], direct.get("p50_ms")), signed=True),
                "—" if name == "direct" else fmt(sub(c["p99_ms"], direct.get("p99_ms")), signed=True),
                "—" if base else fmt_ratio(ratio(c["p50_ms"], direct.get("p50_ms"), nginx.get("p50_ms"))),
                "—" if base else fmt_ratio(ratio(c["p99_ms"], direct.get("p99_ms"), nginx.get("p99_ms"))),
                fmt(c["cpu_us_per_req"], 1),
                fmt_ratio(div(c["cpu_us_per_req"], nginx.get("cpu_us_per_req"))) if name != "direct" else "—",
                fmt(c["fake_cpu_us_per_req"], 1),
                error_text(c),
            ])
        parts.append(
            f"### {rate} req/s (direct {'held' if held else '**did not hold**'} the rate)\n\n"
            + table(["target", "answered/s", "P50", "P99", "P99.9", "+P50", "+P99", "+P50 ÷ nginx's",
                     "+P99 ÷ nginx's", "CPU µs/req", "CPU ÷ nginx", "fake CPU µs/req", "non-2xx / errors"], rows)
        )
    return "\n".join(parts)


def saturation_section(results: dict) -> str:
    sat = results["saturation"]
    direct = sat.get("direct", {})
    nginx = sat.get("nginx", {})
    rows = []
    for name, c in ordered(sat):
        if "error" in c:
            rows.append([f"`{name}`", c["error"], "", "", "", "", "", ""])
            continue
        rows.append([
            f"`{name}`", fmt(c["achieved_rps"], 0),
            fmt_ratio(div(c["achieved_rps"], direct.get("achieved_rps"))),
            fmt(c["p50_ms"]), fmt(c["p99_ms"]), fmt(c["cpu_us_per_req"], 1),
            fmt_ratio(div(c["cpu_us_per_req"], nginx.get("cpu_us_per_req"))) if name != "direct" else "—",
            error_text(c),
        ])
    conns = results.get("sat_connections", "")
    return (
        "## Saturation (closed loop)\n\n"
        f"`oha -c {conns}` for the same duration: the most each target answers on this box (the "
        "load generator and the fake compete for the same 2 CPUs). Closed-loop latencies flatter "
        "the tail; read throughput and CPU per request here.\n\n"
        + table(["target", "req/s", "÷ direct", "P50 ms", "P99 ms", "CPU µs/req", "CPU ÷ nginx",
                 "non-2xx / errors"], rows)
    )


def streams_section(results: dict) -> str:
    parts = []
    first = next(iter(results["streams"].values()))
    parts.append(
        "## Streaming: time to first token, chunk timing, integrity\n\n"
        f"Our client (`bench/client`) streams {first['tokens']} tokens per request; the fake sends "
        f"token *i* at arrival + {first['t0_ms']:.0f} ms + *i* × {first['gap_ms']:.0f} ms. TTFT = "
        "request sent → first content event; *late* = each content event's arrival minus its "
        "scheduled time (measured from the request being sent, so it includes the path); *gap* = "
        "time between consecutive content events; *bunched* = events arriving less than half a gap "
        "after the previous one. Integrity: every token in its own event, same text, finish reason, "
        "usage with the right count, `[DONE]`. Milliseconds.\n"
    )
    for level, data in results["streams"].items():
        t = data["targets"]
        d = t.get("direct", {})
        n = t.get("nginx", {})
        rows = []
        for name, v in ordered(t):
            probs = dict(v["problems"])
            lost = probs.pop("lost_chunks", 0)
            merged = probs.pop("merged_chunks", 0)
            other = ", ".join(f"{k} {c}" for k, c in probs.items()) or "0"
            ttft50, ttft99 = us_ms(v["ttft_us"]["p50"]), us_ms(v["ttft_us"]["p99"])
            d50, d99 = us_ms(d.get("ttft_us", {}).get("p50")), us_ms(d.get("ttft_us", {}).get("p99"))
            n50 = us_ms(n.get("ttft_us", {}).get("p50"))
            rows.append([
                f"`{name}`", f"{v['intact']}/{v['streams']}", lost, merged, other,
                fmt(ttft50, 2), "—" if name == "direct" else fmt(sub(ttft50, d50), 2, signed=True),
                "—" if name in ("direct", "nginx") else fmt_ratio(ratio(ttft50, d50, n50)),
                fmt(ttft99, 2), "—" if name == "direct" else fmt(sub(ttft99, d99), 2, signed=True),
                fmt(us_ms(v["late_us"]["p50"]), 2), fmt(us_ms(v["late_us"]["p99"]), 2),
                fmt(us_ms(v["gap_us"]["p50"]), 2), fmt(us_ms(v["gap_us"]["p99"]), 2),
                f"{v['bunched']}/{v['events']}",
            ])
        parts.append(
            f"### {level} concurrent stream{'s' if level != '1' else ''}\n\n"
            + table(["target", "intact", "lost", "merged", "other problems", "TTFT P50", "+TTFT P50",
                     "÷ nginx's", "TTFT P99", "+TTFT P99", "late P50", "late P99", "gap P50", "gap P99",
                     "bunched"], rows)
        )
        firsts = [f"`{k}`: {v['first_problem']}" for k, v in t.items() if v.get("first_problem")]
        if firsts:
            parts.append("First problem seen per target: " + "; ".join(firsts) + "\n")
    return "\n".join(parts)


def cancel_section(results: dict) -> str:
    c = results["cancel"]
    rows = []
    for name, v in ordered(c["targets"]):
        s = v["close_after_leave_us"]
        rows.append([
            f"`{name}`", s["n"], fmt(us_ms(s["p50"]), 2), fmt(us_ms(s["p90"]), 2), fmt(us_ms(s["max"]), 2),
            v["not_closed_within_max_wait"], v["failed"], v.get("first_error") or "",
        ])
    return (
        "## Cancellation: client leaves, upstream closes\n\n"
        f"{c['trials']} trials per target, interleaved. The client opens a stream (one token per "
        "second from the fake), reads the first token and closes its socket; the time is until the "
        "fake counts the stream as cancelled (`/_fake/stats`, polled about every 0.3 ms), i.e. until its "
        "upstream connection is gone. With a token only every second, a proxy that notices the "
        "disconnect only when a write fails shows up as one second or more. Milliseconds.\n\n"
        + table(["target", "trials", "P50", "P90", "max", f"not closed in {c['max_wait_ms']:.0f} ms",
                 "failed", "first error"], rows)
    )


def capacity_section(results: dict) -> str:
    cap = results["capacity"]
    rows = []
    for name, v in ordered(cap["targets"]):
        steps = v["steps"]
        last = steps[-1]
        rows.append([
            f"`{name}`", last.get("open", 0), last.get("failed", 0), last.get("ended_early", 0),
            mib(steps[0]["rss_kib"]), mib(last["rss_kib"]), fmt(v["slope_kib_per_stream"], 1),
            mib(v["hwm_kib"]), mib(v["after_close_rss_kib"]),
            " → ".join(f"{s['open']}: {mib(s['rss_kib'])}" for s in steps),
        ])
    return (
        "## Stream capacity and memory per open stream\n\n"
        f"Streams opened in steps up to {cap['max_requested']:,} (one token per second each; "
        f"open-files hard limit {cap['fd_hard_limit']:,}, "
        "and a proxy holds two sockets per stream). At each step, once every stream has its first "
        "token and after a short settle, the target's resident memory (VmRSS, summed over its "
        "processes) is read. KiB per stream = least-squares slope of RSS over open streams. "
        "Sizes in MiB.\n\n"
        + table(["target", "open streams", "failed to open", "ended early", "RSS at 0", "RSS at max",
                 "KiB/stream", "VmHWM", "RSS after close", "steps (open: RSS MiB)"], rows)
    )


def errors_section(results: dict) -> str:
    parts = [
        "## Errors under load\n\n"
        "Fixed rate with the fake's failing models: `fail-500` (runner error before any byte) and "
        "`fail-busy` (503 server busy), non-streamed; and a key over its rate limit (the gateway "
        "answers 429 itself, next to an unlimited key at the same rate). Milliseconds.\n"
    ]
    for case, cells in results["errors"].items():
        rows = []
        for name, c in ordered(cells):
            if "error" in c:
                rows.append([f"`{name}`", c["error"], "", "", "", ""])
                continue
            codes = ", ".join(f"{k}: {v}" for k, v in sorted(c["codes"].items()))
            errs = ", ".join(f"{k}: {v}" for k, v in c["errors"].items())
            rows.append([f"`{name}`", codes + (f"; {errs}" if errs else ""), fmt(c["achieved_rps"], 0),
                         fmt(c["p50_ms"]), fmt(c["p99_ms"]), fmt(c["cpu_us_per_req"], 1)])
        parts.append(f"### {case}\n\n" + table(
            ["target", "statuses", "answered/s", "P50", "P99", "CPU µs/req"], rows))
    return "\n".join(parts)


def memory_section(results: dict) -> str:
    mem = results["memory"]
    phases = ["idle", "load", "streams", "capacity"]
    present = [p for p in phases if any(p in v for v in mem.values())]
    rows = []
    for name, v in ordered(mem):
        row = [f"`{name}`" + (" (the fake)" if name == "direct" else "")]
        for p in present:
            cell = v.get(p)
            row.append("—" if not cell else f"{mib(cell['rss_kib'])} / {mib(cell['hwm_kib'])}")
        rows.append(row)
    return (
        "## Memory\n\n"
        "Resident memory after each phase, as `VmRSS / VmHWM` (peak) in MiB, summed over the "
        "target's processes (`direct` is the fake itself). *load* = after the sweep, saturation "
        "and errors; *capacity* = after the streams of the capacity test closed.\n\n"
        + table(["target"] + [f"after {p}" for p in present], rows)
    )


# ---------------------------------------------------------------------------------------------


def aims_section(results: dict, opts) -> str:
    """Each aim of issue 8, for the gateway, with the same figure for `passthrough` (the floor of
    the gateway's stack) beside it, so the table also says whether the aim is reachable on it."""
    if opts.smoke:
        return ""

    def verdict(ok) -> str:
        return "—" if ok is None else ("**met**" if ok else "**not met**")

    sweep = results.get("sweep", {}).get("1000", {})
    d, n = sweep.get("direct", {}), sweep.get("nginx", {})
    held = d.get("achieved_rps", 0) >= 950
    idle = results["idle"]["targets"]
    cap = results.get("capacity", {})
    capped = cap.get("max_requested", 10_000) < 10_000

    def figures(name: str) -> list[tuple[str, bool | None]]:
        """(figure, aim met) for each aim, in the order of AIMS."""
        g = sweep.get(name, {})
        add50 = sub(g.get("p50_ms"), d.get("p50_ms"))
        add99 = sub(g.get("p99_ms"), d.get("p99_ms"))
        r1000 = ratio(g.get("p50_ms"), d.get("p50_ms"), n.get("p50_ms"))
        r_idle = ratio(idle.get(name, {}).get("median_of_medians_us"),
                       idle.get("direct", {}).get("median_of_medians_us"),
                       idle.get("nginx", {}).get("median_of_medians_us"))
        ratios = [r for r in (r_idle, r1000) if r is not None]
        out = [
            (f"{fmt(add50, signed=True)} ms", None if add50 is None else add50 <= 0.15),
            (f"{fmt(add99, signed=True)} ms", None if add99 is None else add99 <= 0.5),
            (f"idle {fmt_ratio(r_idle)}, 1,000 req/s {fmt_ratio(r1000)}",
             None if not ratios else all(r <= 1.5 for r in ratios)),
        ]
        lost = merged = streams = 0
        for data in results.get("streams", {}).values():
            v = data["targets"].get(name, {})
            lost += v.get("problems", {}).get("lost_chunks", 0)
            merged += v.get("problems", {}).get("merged_chunks", 0)
            streams += v.get("streams", 0)
        out.append((f"{lost} streams with lost, {merged} with merged chunks, of {streams}",
                    (lost == 0 and merged == 0) if streams else None))
        c = cap.get("targets", {}).get(name)
        if c:
            opened = c["steps"][-1].get("open", 0)
            per = c.get("slope_kib_per_stream")
            target = cap["max_requested"] if capped else 10_000
            ok = None if per is None else per <= 16 and opened >= target * 0.99
            out.append((f"{opened:,} open, {fmt(per, 1)} KiB/stream", ok))
        else:
            out.append(("—", None))
        k = results.get("cancel", {}).get("targets", {}).get(name)
        if k:
            s = k["close_after_leave_us"]
            worst = us_ms(s["max"])
            ok = None if worst is None else worst <= 10 and k["not_closed_within_max_wait"] == 0
            out.append((f"P50 {fmt(us_ms(s['p50']), 2)} ms, max {fmt(worst, 2)} ms, "
                        f"{k['not_closed_within_max_wait']} not closed", ok))
        else:
            out.append(("—", None))
        return out

    aims = [
        "Added latency vs direct at 1,000 req/s: P50 ≤ 0.15 ms"
        + ("" if held else " (direct did not hold the rate)"),
        "Added latency vs direct at 1,000 req/s: P99 ≤ 0.5 ms",
        "Added latency ≤ 1.5x nginx's (idle median; P50 at 1,000 req/s)",
        "0 lost or merged chunks (all streaming levels)",
        "10,000 open streams at ≤ 16 KiB each"
        + (f" (here at most {cap['max_requested']:,}: open-files hard limit {cap['fd_hard_limit']:,}, "
           "two sockets per stream)" if capped else ""),
        "Upstream closed ≤ 10 ms after the client leaves (every trial)",
    ]
    gateway = figures("gateway")
    floor = figures("passthrough") if "passthrough" in idle else None
    rows = []
    for i, aim in enumerate(aims):
        row = [aim, gateway[i][0], verdict(gateway[i][1])]
        if floor:
            row.append(f"{floor[i][0]} ({verdict(floor[i][1]).strip('*')})")
        rows.append(row)
    header = ["aim", "gateway", "verdict"] + (["`passthrough` (stack floor)"] if floor else [])
    return table(header, rows)


def real_section(results: dict) -> str:
    r = results["real"]
    t = r["targets"]
    d, g = t["direct"], t["gateway"]

    def p(summary, key="p50"):
        return summary.get(key)

    rows = []
    for name, v in (("direct", d), ("gateway", g)):
        rows.append([
            f"`{name}`", f"{v['complete']}/{v['streams']}", f"{v['same_text']}/{v['streams']}",
            fmt(ms(p(v["ttft_us"]))), fmt(ms(p(v["ttft_us"], "p90"))),
            fmt(ms(p(v["gap_us"]))), fmt(ms(p(v["gap_us"], "p90"))),
        ])
    ttft_ratio = div(p(g["ttft_us"]), p(d["ttft_us"]))
    gap_ratio = div(p(g["gap_us"]), p(d["gap_us"]))
    return (
        "## Streaming from the real Ollama\n\n"
        f"The real Ollama ({r.get('ollama_version', '?')}, CPU, the tiny model of `../shared/ollama`) "
        f"streams {r['tokens']} tokens per request (seed 42, temperature 0, through its own `/v1` for "
        f"`direct`, through the gateway's `/v1` translation of `/api/chat` for `gateway`), one stream "
        f"at a time, {r['streams']} streams per target, alternating stream by stream. *Added* figures "
        "are paired: each gateway stream against the direct stream of the same round.\n\n"
        + table(["target", "complete", "same text as direct", "TTFT p50 ms", "TTFT p90 ms",
                 "gap p50 ms", "gap p90 ms"], rows)
        + "\n"
        + table(["gateway against direct", "p50", "p90", "ratio of p50s"], [
            ["added time to first token, ms", fmt(ms(p(g["ttft_added_us"])), 3, True),
             fmt(ms(p(g["ttft_added_us"], "p90")), 3, True), fmt_ratio(ttft_ratio)],
            ["added median gap per stream, ms", fmt(ms(p(g["gap_added_us"])), 3, True),
             fmt(ms(p(g["gap_added_us"], "p90")), 3, True), fmt_ratio(gap_ratio)],
        ])
        + f"\nGateway CPU per streamed token: **{fmt(r.get('gateway_cpu_us_per_token'), 1)} µs** "
        "(its CPU time over the run, `/proc` ticks of 10 ms, divided by the tokens it streamed: "
        "request handling included); Ollama's own: "
        f"{fmt(r.get('ollama_cpu_us_per_token'), 1)} µs per token generated (its runner's threads "
        "spin while they wait).\n"
    )


def render_real_only(results: dict, opts) -> tuple[str, list[str]]:
    """`bench.py --real-only`: only the real-Ollama streaming section."""
    m = results["machine"]
    out = [
        "# Benchmark: the gateway in front of the real Ollama\n",
        f"Written by `bench/bench.py --real-only` on {m['date']} (commit {m['commit']}); run time "
        f"{results['elapsed_s']:.0f} s. Generated: do not edit by hand.\n",
        f"**Machine**: {m['nproc']} CPUs ({m['cpu']}), shared: read the gateway against `direct`, "
        "measured in the same run, interleaved.\n",
    ]
    for name, why in results["unavailable"].items():
        out.append(f"- `{name}`: **unavailable** ({why})\n")
    if "real" in results:
        out.append(real_section(results))
    return "\n".join(out), real_checks(results) if opts.smoke else []


def real_checks(results: dict) -> list[str]:
    failures = []
    for name, v in results.get("real", {}).get("targets", {}).items():
        if v["complete"] != v["streams"] or v["same_text"] != v["streams"]:
            failures.append(f"real Ollama: {name} {v['complete']}/{v['streams']} complete, "
                            f"{v['same_text']} with direct's text: {v['first_problem']}")
    return failures


def smoke_checks(results: dict) -> list[str]:
    failures = real_checks(results)
def pct(on, off):
    """(on - off) / off in percent."""
    return None if on is None or not off else (on - off) * 100 / off


def usage_section(results: dict) -> str:
    """Usage recording on (`gateway`) against off (`gateway-norecord`), same run, interleaved;
    and whether every request `gateway` served is in its usage table."""
    u = results["usage_recording"]
    rows = []
    idle = results.get("idle", {}).get("targets", {})
    if "gateway" in idle and "gateway-norecord" in idle:
        on, off = idle["gateway"]["median_of_medians_us"], idle["gateway-norecord"]["median_of_medians_us"]
        rows.append(["idle (sequential)", fmt(ms(on)), fmt(ms(off)), fmt(pct(on, off), 1, signed=True),
                     "—", "—", "—"])
    worst = {"p50": None, "cpu": None}
    for rate, cells in results.get("sweep", {}).items():
        on, off = cells.get("gateway", {}), cells.get("gateway-norecord", {})
        if "error" in on or "error" in off or not on or not off:
            continue
        d50 = pct(on["p50_ms"], off["p50_ms"])
        dcpu = pct(on["cpu_us_per_req"], off["cpu_us_per_req"])
        for k, v in (("p50", d50), ("cpu", dcpu)):
            if v is not None and (worst[k] is None or v > worst[k]):
                worst[k] = v
        rows.append([f"{rate} req/s", fmt(on["p50_ms"]), fmt(off["p50_ms"]), fmt(d50, 1, signed=True),
                     fmt(on["cpu_us_per_req"], 1), fmt(off["cpu_us_per_req"], 1), fmt(dcpu, 1, signed=True)])
    complete = u["recorded"] == u["served"] and u["dropped"] == 0
    verdict = []
    for label, key in (("added P50", "p50"), ("added CPU per request", "cpu")):
        if worst[key] is not None:
            verdict.append(f"{label} at most {worst[key]:+.1f}% ({'within' if worst[key] <= 5 else '**not within**'} 5%)")
    return (
        "## Usage recording\n\n"
        "`gateway` (recording on, the default) against `gateway-norecord` (the same settings, recording "
        "off), in the same run and rotation. Times in ms, CPU in µs per answered request; Δ = on − off, "
        "as a percentage of off.\n\n"
        + table(["load", "P50 on", "P50 off", "Δ P50 %", "CPU on", "CPU off", "Δ CPU %"], rows)
        + ("\n" + "; ".join(verdict) + ".\n" if verdict else "\n")
        + f"\nUsage table of `gateway` after the run (stopped with SIGTERM, which writes out the queue): "
        f"**{u['recorded']:,} records for {u['served']:,} requests served** with its key (from its own "
        f"`gateway_requests_total`, `/metrics` scrapes left out), {u['dropped']:,} dropped, "
        f"{u['tokens']:,} tokens: {'every request is there' if complete else '**records are missing**'}.\n"
    )


def smoke_checks(results: dict) -> list[str]:
    failures = []
    u = results.get("usage_recording")
    if u and (u["recorded"] != u["served"] or u["dropped"]):
        failures.append(f"usage: {u['recorded']} records for {u['served']} requests, {u['dropped']} dropped")
    for name, v in results["idle"]["targets"].items():
        if v["errors"] or not v["median_of_medians_us"]:
            failures.append(f"idle: {name} had {v['errors']} failed requests")
    for level, data in results.get("streams", {}).items():
        for name, v in data["targets"].items():
            if v["intact"] != v["streams"] or v["streams"] == 0:
                failures.append(f"streams x{level}: {name} {v['intact']}/{v['streams']} intact: {v['first_problem']}")
    for name, v in results.get("cancel", {}).get("targets", {}).items():
        if v["failed"]:
            failures.append(f"cancel: {name} failed {v['failed']} trials: {v['first_error']}")
    for name, v in results.get("capacity", {}).get("targets", {}).items():
        last = v["steps"][-1]
        if last.get("failed"):
            failures.append(f"capacity: {name} failed to open {last['failed']} streams")
    return failures


def sub(a, b):
    return None if a is None or b is None else a - b


def div(a, b):
    return None if a is None or not b else a / b


def ms(us):
    return None if us is None else us / 1000


us_ms = ms


def error_text(c: dict) -> str:
    non2xx = {k: v for k, v in c["codes"].items() if not k.startswith("2")}
    parts = [f"{k}: {v}" for k, v in non2xx.items()] + [f"{k}: {v}" for k, v in c["errors"].items()]
    return ", ".join(parts) or "0"
