#!/usr/bin/env python3
"""Server render time of every admin console page, on a database with 100 keys and 1,000,000
usage records (the issue's aim: under 100 ms each).

What it does, all on loopback in a temp directory:
  1. starts the release gateway once on a fresh database so it migrates it, and makes an admin
     key with the CLI (`ollama-gateway keys create --admin`);
  2. fills the database with Python's sqlite3: 100 stored keys, and 1,000,000 usage records
     spread over the last 30 days (keys weighted like real use, 3 models, 3 routes, a few
     errors and failed streams, log-normal latencies), then the hourly totals, and the daily
     totals and per-hour and per-day `usage_stats` rows summed from them in SQL, with the same
     bucketing the usage writer uses (the SQL of migration 0002);
  3. starts the gateway on it, logs in through the console, and requests every page in
     interleaved rounds over one kept-alive connection, timing each answer to its last byte.

The baseline, measured in the same rounds, is the login page (`GET /admin/login`: the same
stack, gate and page frame, no database read), so each page is also reported as a ratio to it.
Results go to stdout and to bench/results/console.md (and .json).

    python3 bench/console.py [--records 1000000] [--rounds 15] [--binary target/release/ollama-gateway]
"""

import argparse
import http.client
import json
import math
import os
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PAGES = [
    ("login (baseline)", "/admin/login"),
    ("keys", "/admin/keys"),
    ("users", "/admin/users"),
    ("usage: last hour", "/admin/usage?range=hour"),
    ("usage: 24 hours", "/admin/usage?range=day"),
    ("usage: 24 hours by model", "/admin/usage?range=day&by=model"),
    ("usage: 7 days", "/admin/usage?range=7d"),
    ("usage: 30 days", "/admin/usage?range=30d"),
    ("usage: 30 days by model", "/admin/usage?range=30d&by=model"),
    ("usage CSV: 30 days", "/admin/usage.csv?range=30d"),
    ("live", "/admin/live"),
    ("settings", "/admin/settings"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port, proc, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the gateway exited ({proc.returncode})")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the gateway did not come up")


def start(binary, db, port, log):
    env = dict(os.environ)
    env.update(
        {
            "GATEWAY_DB": f"sqlite://{db}",
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "GATEWAY_API_KEYS": "",
            "OLLAMA_API_KEY": "",
            "GATEWAY_CONFIG": "",
            "OLLAMA_URL": "http://127.0.0.1:9",
            "RUST_LOG": "warn",
        }
    )
    env.pop("GATEWAY_CONFIG")
    return subprocess.Popen(
        [binary], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fill(db, n_records, seed=7):
    """100 keys and n_records usage records over the last 30 days, plus their aggregates."""
    rng = random.Random(seed)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    now_ms = int(time.time() * 1000)
    models = ["llama3.2:latest", "qwen3:8b", "nomic-embed-text:latest"]
    routes = ["/v1/chat/completions", "/api/chat", "/v1/embeddings"]
    keys = []
    with con:
        con.execute("INSERT OR IGNORE INTO users (name, role, created) VALUES ('team', 'user', ?)", (now_ms,))
        for i in range(100):
            kid = f"bench{i:011d}"
            name = f"key-{i:03d}"
            digest = os.urandom(32)
            quota = 2_000_000 if i % 3 == 0 else None
            con.execute(
                "INSERT INTO keys (id, name, user_name, prefix, digest, created, enabled, models, daily_token_quota) "
                "VALUES (?, ?, 'team', ?, ?, ?, 1, '[]', ?)",
                (kid, name, "og_" + digest.hex()[:7], digest, now_ms - 40 * 86_400_000, quota),
            )
            keys.append((kid, name))
    # Zipf-like use: a few keys do most of the work.
    weights = [1.0 / (i + 1) ** 0.9 for i in range(len(keys))]
    primary = [rng.randrange(2) for _ in keys]
    span = 30 * 86_400_000
    batch = []
    t0 = time.time()
    for _ in range(n_records):
        k = rng.choices(range(len(keys)), weights)[0]
        kid, name = keys[k]
        route_i = rng.choices(range(3), [70, 20, 10])[0]
        model = models[2] if route_i == 2 else models[primary[k] if rng.random() < 0.8 else 1 - primary[k]]
        status = rng.choices([200, 429, 401, 502], [96, 2, 1, 1])[0]
        error = "upstream_interrupted" if status == 200 and rng.random() < 0.01 else None
        streamed = route_i != 2 and rng.random() < 0.6
        total = rng.lognormvariate(math.log(800), 0.9) if status == 200 else rng.uniform(0.2, 3)
        ttft = total * rng.uniform(0.05, 0.4) if streamed and status == 200 else None
        prompt = rng.randint(20, 2000) if status == 200 else 0
        completion = (rng.randint(5, 800) if route_i != 2 else 0) if status == 200 else 0
        batch.append(
            (now_ms - rng.randrange(span), kid, name, "team", model, routes[route_i], status, error,
             prompt, completion, total, total * 0.97 if status == 200 else None, ttft, None)
        )
        if len(batch) == 50_000:
            con.executemany(
                "INSERT INTO usage (at, key_id, key_name, user_name, model, route, status, error, prompt_tokens, completion_tokens, total_ms, upstream_ms, ttft_ms, load_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                batch,
            )
            con.commit()
            batch.clear()
    if batch:
        con.executemany(
            "INSERT INTO usage (at, key_id, key_name, user_name, model, route, status, error, prompt_tokens, completion_tokens, total_ms, upstream_ms, ttft_ms, load_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
    con.commit()
    # The aggregates the usage writer keeps, summed from the records.
    with con:
        con.execute(
            "INSERT INTO usage_hourly (hour, key_id, key_name, user_name, model, route, requests, errors, prompt_tokens, completion_tokens, total_ms) "
            "SELECT (at / 3600000) * 3600, COALESCE(key_id, ''), key_name, COALESCE(user_name, ''), COALESCE(model, ''), route, "
            "COUNT(*), SUM(status >= 400 OR error IS NOT NULL), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_ms) "
            "FROM usage GROUP BY 1, 2, 3, 4, 5, 6"
        )
        con.execute("DELETE FROM usage_stats")
        con.execute("DELETE FROM usage_daily")
        migration = open(os.path.join(ROOT, "src/store/migrations/sqlite/0003_console.sql")).read()
        for statement in re.findall(r"INSERT INTO usage_(?:stats|daily) .*?;", migration, re.S):
            con.execute(statement)
        con.execute("ANALYZE")
    counts = {
        table: con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        for table in ["keys", "usage", "usage_hourly", "usage_daily", "usage_stats"]
    }
    plans = {}
    for label, sql in [
        ("tokens by key, days", "SELECT (day / 86400) * 86400 AS start, key_id, key_name, SUM(prompt_tokens) FROM usage_daily WHERE day >= 0 AND day < 9999999999 GROUP BY start, key_id, key_name"),
        ("tokens by key, hours", "SELECT (hour / 3600) * 3600 AS start, key_id, key_name, SUM(prompt_tokens), SUM(completion_tokens), SUM(requests), SUM(errors) FROM usage_hourly INDEXED BY usage_hourly_by_key WHERE hour >= 0 AND hour < 9999999999 GROUP BY start, key_id, key_name"),
        ("tokens by model, hours", "SELECT (hour / 3600) * 3600 AS start, model, SUM(prompt_tokens) FROM usage_hourly INDEXED BY usage_hourly_by_model WHERE hour >= 0 AND hour < 9999999999 GROUP BY start, model"),
        ("percentiles", "SELECT kind, bucket, SUM(count) FROM usage_stats WHERE period = 86400 AND start >= 0 AND start < 9999999999 GROUP BY kind, bucket"),
        ("last hour", "SELECT * FROM usage WHERE at >= 0 AND at < 1 ORDER BY at, id"),
    ]:
        plans[label] = " / ".join(row[3] for row in con.execute("EXPLAIN QUERY PLAN " + sql))
    con.close()
    return counts, plans, time.time() - t0


def login(port, key):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = urllib.parse.urlencode({"key": key})
    conn.request("POST", "/admin/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    cookie = response.getheader("set-cookie", "").split(";")[0]
    if response.status != 303 or not cookie:
        raise SystemExit(f"login failed: {response.status}")
    return cookie


def measure(port, cookie, rounds):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = {path: [] for _, path in PAGES}
    sizes = {}
    order = [path for _, path in PAGES]
    for r in range(rounds + 2):  # two warm-up rounds, not counted
        rng = random.Random(r)
        shuffled = order[:]
        rng.shuffle(shuffled)
        for path in shuffled:
            t = time.perf_counter()
            conn.request("GET", path, headers={"Cookie": cookie})
            response = conn.getresponse()
            data = response.read()
            elapsed = (time.perf_counter() - t) * 1000
            if response.status != 200:
                raise SystemExit(f"{path}: {response.status}")
            sizes[path] = len(data)
            if r >= 2:
                times[path].append(elapsed)
    return times, sizes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--binary", default=os.path.join(ROOT, "target/release/ollama-gateway"))
    parser.add_argument("--out", default=os.path.join(ROOT, "bench/results/console"))
    args = parser.parse_args()
    if not os.access(args.binary, os.X_OK):
        raise SystemExit(f"{args.binary} is missing: cargo build --release --bin ollama-gateway")
    work = tempfile.mkdtemp(prefix="gw-console-bench-")
    db = os.path.join(work, "gateway.db")
    log = open(os.path.join(work, "gateway.log"), "w")
    try:
        port = free_port()
        proc = start(args.binary, db, port, log)
        wait_up(port, proc)
        stop(proc)
        env = dict(os.environ, GATEWAY_DB=f"sqlite://{db}")
        made = subprocess.run(
            [args.binary, "keys", "create", "--name", "bench-admin", "--admin", "--json"],
            env=env, capture_output=True, text=True, check=True,
        )
        admin_key = json.loads(made.stdout)["key"]
        print(f"filling {db} with 100 keys and {args.records:,} usage records ...", flush=True)
        counts, plans, took = fill(db, args.records)
        print(f"  done in {took:.0f} s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()), flush=True)
        proc = start(args.binary, db, port, log)
        wait_up(port, proc)
        try:
            cookie = login(port, admin_key)
            times, sizes = measure(port, cookie, args.rounds)
        finally:
            stop(proc)
    finally:
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(times["/admin/login"])
    rows = []
    for label, path in PAGES:
        t = sorted(times[path])
        p50 = statistics.median(t)
        p95 = t[min(len(t) - 1, math.ceil(0.95 * len(t)) - 1)]
        rows.append({"page": label, "path": path, "p50_ms": round(p50, 2), "p95_ms": round(p95, 2),
                     "max_ms": round(t[-1], 2), "vs_baseline": round(p50 / base, 1), "bytes": sizes[path]})
    machine = f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end"
    lines = [
        "# Admin console: server render time",
        "",
        f"Written by `bench/console.py` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}); {machine}.",
        f"Database: {', '.join(f'{k} {v:,}' for k, v in counts.items())} (records over the last 30 days).",
        f"{args.rounds} interleaved rounds over one kept-alive connection after two warm-up rounds; time to the last byte on loopback.",
        "Baseline: `GET /admin/login` in the same rounds (same stack and frame, no database read).",
        "",
        "| page | path | p50 ms | p95 ms | max ms | p50 / baseline | bytes |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['page']} | `{r['path']}` | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} | {r['vs_baseline']}x | {r['bytes']:,} |")
    over = [r["page"] for r in rows if r["p95_ms"] >= 100]
    lines += ["", "Pages at or over 100 ms (p95): " + (", ".join(over) if over else "none") + ".", "", "Query plans:", ""]
    lines += [f"- {k}: `{v}`" for k, v in plans.items()]
    report = "\n".join(lines) + "\n"
    print()
    print(report)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".md", "w") as f:
        f.write(report)
    with open(args.out + ".json", "w") as f:
        json.dump({"counts": counts, "rounds": args.rounds, "rows": rows, "plans": plans, "machine": machine}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
