#!/usr/bin/env python3
"""The gateway benchmark: start every target, measure them interleaved, write the report.

Run through bench/run.sh, which installs the tools and builds the binaries first. Method and
how to read the report: bench/README.md. Everything listens on 127.0.0.1; every loop and every
child process is bounded in count and time; every process started here is stopped here, by its
process group id.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / "work"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MODEL = "bench"
# Tokens of a non-streamed answer, and of each stream in the streaming scenario.
TOKENS = 16
STREAM_TOKENS = 32
# Ten minutes at one token a second: longer than the capacity and cancellation tests need, and
# small enough for the fake, which holds each stream's lines in memory.
ENDLESS_TOKENS = 600
BASELINES = ("direct", "nginx")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def chat_body(model: str = MODEL, tokens: int = TOKENS) -> str:
    return json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": tokens}
    )


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def http(method: str, url: str, body: str | None = None, key: str | None = None, timeout: float = 10.0):
    """One request; (status, body bytes). Network errors give status 0."""
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        url, data=body.encode() if body is not None else None, headers=headers, method=method
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, OSError, TimeoutError):
        return 0, b""


# ---------------------------------------------------------------------------------------------
# /proc


def process_table() -> dict[int, int]:
    """pid -> parent pid for every process."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            parents[int(entry)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[int]:
    parents = process_table()
    found, frontier = [pid], [pid]
    while frontier:
        frontier = [p for p, parent in parents.items() if parent in frontier and p not in found]
        found.extend(frontier)
    return [p for p in found if p in parents]


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of `pids` (threads included, children not)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def memory_kib(pids: list[int]) -> tuple[int, int]:
    """(VmRSS, VmHWM) summed over `pids`."""
    rss = hwm = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm += int(line.split()[1])
    return rss, hwm


# ---------------------------------------------------------------------------------------------
# Processes


class Service:
    """A process we started (in its own process group), and how to reach it."""

    def __init__(self, name: str, argv: list[str], env: dict | None = None, cwd: Path | None = None):
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self.url = ""  # chat completions URL
        self.key: str | None = None
        self.ready_path = ""  # GET path answering 200 once ready

    def start(self) -> None:
        env = dict(os.environ, **(self.env or {}))
        # The child gets its own copy of the log file descriptor; ours can close at once.
        with open(WORK / f"{self.name}.log", "ab") as logfile:
            self.proc = subprocess.Popen(
                self.argv, stdout=logfile, stderr=subprocess.STDOUT, env=env, cwd=self.cwd,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pids(self) -> list[int]:
        return descendants(self.proc.pid) if self.alive() else []

    def wait_ready(self, base: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            status, _ = http("GET", base + self.ready_path, timeout=2)
            if status == 200:
                return True
            time.sleep(0.1)
        return False

    def signal(self, sig: int) -> None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            self.signal(signal.SIGCONT)  # a paused process handles SIGTERM only once resumed
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None


class Bench:
    def __init__(self, opts: argparse.Namespace):
        self.opts = opts
        self.smoke = opts.smoke
        self.bin = Path(opts.bin_dir)
        self.client = opts.client
        self.oha = opts.oha
        self.targets: dict[str, Service] = {}
        self.fake: Service | None = None
        self.fake_port, self.nginx_port, self.caddy_port, self.litellm_port, self.gw_port, \
            self.open_port, self.limited_port, self.pass_port, self.pass_hyper_port, \
            self.norecord_port = free_ports(10)
        self.fake_base = f"http://127.0.0.1:{self.fake_port}"
        self.api_key = "sk-bench-" + os.urandom(16).hex()
        self.litellm_key = "sk-" + os.urandom(24).hex()
        self.results: dict = {"unavailable": {}, "memory": {}, "phases": [],
                              "passes": opts.passes, "sat_connections": opts.sat_connections}
        self.started = time.monotonic()
        self.limited: Service | None = None

    # -- the fake ------------------------------------------------------------------------------

    def start_fake(self, first_token_delay_ms: int, chunk_gap_ms: int) -> None:
        """(Re)start the fake on the same port, so the proxies in front of it need no restart."""
        if self.fake:
            self.fake.stop()
        self.fake = Service(
            "fake-ollama",
            [str(self.bin / "fake-ollama"), "--listen", f"127.0.0.1:{self.fake_port}",
             "--fixtures", str(ROOT / "fixtures"),
             "--first-token-delay-ms", str(first_token_delay_ms),
             "--chunk-gap-ms", str(chunk_gap_ms)],
        )
        self.fake.ready_path = "/_fake/stats"
        self.fake.start()
        if not self.fake.wait_ready(self.fake_base, 15):
            raise SystemExit(f"fake-ollama did not start; see {WORK / 'fake-ollama.log'}")
        self.results["phases"].append(
            {"first_token_delay_ms": first_token_delay_ms, "chunk_gap_ms": chunk_gap_ms}
        )
        log(f"fake-ollama on {self.fake_base}: first token {first_token_delay_ms} ms, gap {chunk_gap_ms} ms")

    # -- targets -------------------------------------------------------------------------------

    def add_direct(self) -> None:
        # The fake itself: its CPU and memory are those of "direct".
        direct = Service("direct", [])
        direct.url = f"{self.fake_base}/v1/chat/completions"
        self.targets["direct"] = direct

    def gateway_service(self, name: str, port: int, env: dict) -> Service:
        base = {
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "OLLAMA_URL": self.fake_base,
            "RUST_LOG": "warn",
            "GATEWAY_API_KEYS": self.api_key,
            # Each gateway its own database, in the work dir (never the repository).
            "GATEWAY_DB": f"sqlite://{WORK / (name + '.db')}",
        }
        service = Service(name, [str(self.bin / "ollama-gateway")], env=dict(base, **env))
        service.ready_path = "/health"
        service.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        return service

    def add_gateways(self) -> None:
        for old in WORK.glob("gateway*.db*"):
            old.unlink()  # each run counts its own usage records
        production = {
            "GATEWAY_AUTH": "on",
            # As in production, but far above what the load reaches: limits are checked, never hit.
            "GATEWAY_RATE_LIMIT": "100000000", "GATEWAY_RATE_BURST": "1000000",
            "GATEWAY_MAX_CONCURRENT": "100000",
        }
        # Usage recording is on by default: `gateway` records every request; `gateway-norecord`
        # is the same gateway with recording off, measured beside it.
        on = self.gateway_service("gateway", self.gw_port, production)
        on.key = self.api_key
        norecord = self.gateway_service("gateway-norecord", self.norecord_port,
                                        dict(production, GATEWAY_USAGE_RECORDING="false"))
        norecord.key = self.api_key
        off = self.gateway_service("gateway-open", self.open_port, {
            "GATEWAY_AUTH": "off", "GATEWAY_RATE_LIMIT": "0", "GATEWAY_MAX_CONCURRENT": "0",
        })
        for service, port in ((on, self.gw_port), (norecord, self.norecord_port), (off, self.open_port)):
            service.start()
            if not service.wait_ready(f"http://127.0.0.1:{port}", 20):
                raise SystemExit(f"{service.name} did not start; see {WORK / (service.name + '.log')}")
            self.targets[service.name] = service
        if not self.smoke:
            # Only for the errors scenario: a key limited to 60 requests per minute.
            limited = self.gateway_service("gateway-429", self.limited_port, {
                "GATEWAY_AUTH": "on", "GATEWAY_RATE_LIMIT": "60", "GATEWAY_RATE_BURST": "1",
                "GATEWAY_MAX_CONCURRENT": "0",
            })
            limited.key = self.api_key
            limited.start()
            if limited.wait_ready(f"http://127.0.0.1:{self.limited_port}", 20):
                self.limited = limited

    def add_nginx(self) -> None:
        if not self.opts.nginx:
            self.results["unavailable"]["nginx"] = "nginx not installed"
            return
        prefix = WORK / "nginx"
        for sub in ("logs", "tmp"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(f"""
daemon off;
master_process on;
worker_processes 2;
worker_rlimit_nofile {resource.getrlimit(resource.RLIMIT_NOFILE)[0]};
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    keepalive_requests 1000000;
    upstream fake {{
        server 127.0.0.1:{self.fake_port};
        keepalive 256;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{self.nginx_port};
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
        service = Service("nginx", [self.opts.nginx, "-p", str(prefix), "-c", str(conf)])
        service.url = f"http://127.0.0.1:{self.nginx_port}/v1/chat/completions"
        service.ready_path = "/_fake/stats"
        service.start()
        if service.wait_ready(f"http://127.0.0.1:{self.nginx_port}", 15):
            self.targets["nginx"] = service
        else:
            service.stop()
            self.results["unavailable"]["nginx"] = "did not start (see bench/work/nginx.log)"

    def add_caddy(self) -> None:
        if not self.opts.caddy:
            self.results["unavailable"]["caddy"] = "caddy not installed"
            return
        conf = WORK / "Caddyfile"
        conf.write_text(f"""{{
    admin off
    auto_https off
}}
http://127.0.0.1:{self.caddy_port} {{
    reverse_proxy 127.0.0.1:{self.fake_port} {{
        flush_interval -1
    }}
}}
""")
        env = {"XDG_CONFIG_HOME": str(WORK / "caddy"), "XDG_DATA_HOME": str(WORK / "caddy")}
        service = Service("caddy", [self.opts.caddy, "run", "--config", str(conf), "--adapter", "caddyfile"], env=env)
        service.url = f"http://127.0.0.1:{self.caddy_port}/v1/chat/completions"
        service.ready_path = "/_fake/stats"
        service.start()
        if service.wait_ready(f"http://127.0.0.1:{self.caddy_port}", 15):
            self.targets["caddy"] = service
        else:
            service.stop()
            self.results["unavailable"]["caddy"] = "did not start (see bench/work/caddy.log)"

    def add_passthrough(self, name: str, port: int, client: str) -> None:
        service = Service(name, [self.client, "passthrough", "--listen", f"127.0.0.1:{port}",
                                 "--upstream", self.fake_base, "--client", client])
        service.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        service.ready_path = "/_fake/stats"
        service.start()
        if service.wait_ready(f"http://127.0.0.1:{port}", 15):
            self.targets[name] = service
        else:
            service.stop()
            self.results["unavailable"][name] = f"did not start (see bench/work/{name}.log)"

    def add_litellm(self) -> None:
        if not self.opts.litellm:
            self.results["unavailable"]["litellm"] = self.opts.litellm_reason or "not installed"
            return
        models = "".join(
            f"""  - model_name: {m}
    litellm_params:
      model: ollama_chat/{m}
      api_base: {self.fake_base}
"""
            for m in (MODEL, "fail-500", "fail-busy")
        )
        conf = WORK / "litellm.yaml"
        conf.write_text(f"""model_list:
{models}litellm_settings:
  set_verbose: false
  json_logs: false
  turn_off_message_logging: true
  telemetry: false
  num_retries: 0
  request_timeout: 600
general_settings:
  master_key: {self.litellm_key}
  disable_spend_logs: true
  disable_error_logs: true
""")
        env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "NO_DOCS": "True"}
        service = Service(
            "litellm",
            [self.opts.litellm, "--config", str(conf), "--host", "127.0.0.1",
             "--port", str(self.litellm_port), "--num_workers", "1"],
            env=env, cwd=WORK,
        )
        service.url = f"http://127.0.0.1:{self.litellm_port}/v1/chat/completions"
        service.key = self.litellm_key
        service.ready_path = "/health/liveliness"
        service.start()
        if service.wait_ready(f"http://127.0.0.1:{self.litellm_port}", 120):
            status, body = http("POST", service.url, chat_body(), key=service.key, timeout=30)
            if status == 200:
                self.targets["litellm"] = service
                service.signal(signal.SIGSTOP)  # resumed only while measured (see `awake`)
                return
            reason = f"started but answered {status}: {body[:200]!r}"
        else:
            reason = "did not start within 120 s (see bench/work/litellm.log)"
        service.stop()
        self.results["unavailable"]["litellm"] = reason

    @contextlib.contextmanager
    def awake(self, name: str):
        """LiteLLM is kept stopped (SIGSTOP) except while it is measured: its background work and
        the backlog it keeps serving after an overload must not land on the other targets."""
        service = self.targets.get(name)
        if name == "litellm" and service:
            service.signal(signal.SIGCONT)
        try:
            yield
        finally:
            if name == "litellm" and service:
                service.signal(signal.SIGSTOP)

    def others(self) -> list[str]:
        """Every target but LiteLLM, which is measured after them (see `awake`)."""
        return [n for n in self.targets if n != "litellm"]

    def client_scenario(self, args: list[str], timeout: float) -> dict:
        """A client scenario interleaving every target but LiteLLM, then LiteLLM on its own."""
        result = self.run_client(args + [a for n in self.others() for a in ("--target", self.spec(n))], timeout)
        if "litellm" in self.targets:
            with self.awake("litellm"):
                alone = self.run_client(args + ["--target", self.spec("litellm")], timeout)
            result["targets"].update(alone["targets"])
        return result

    def pids_of(self, name: str) -> list[int]:
        if name == "direct":
            return self.fake.pids() if self.fake else []
        service = self.targets.get(name) or (self.limited if name == "gateway-429" else None)
        return service.pids() if service else []

    def spec(self, name: str, service: Service | None = None) -> str:
        service = service or self.targets[name]
        return f"{name}={service.url}" + (f"@{service.key}" if service.key else "")

    def remember_memory(self, phase: str) -> None:
        for name in list(self.targets) + (["gateway-429"] if self.limited else []):
            rss, hwm = memory_kib(self.pids_of(name))
            self.results["memory"].setdefault(name, {})[phase] = {"rss_kib": rss, "hwm_kib": hwm}

    def run_client(self, args: list[str], timeout: float) -> dict:
        cmd = [self.client, *args]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if out.returncode != 0:
            raise SystemExit(f"bench-client {args[0]} failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
        if out.stderr.strip():
            for line in out.stderr.strip().splitlines()[-5:]:
                log(line)
        return json.loads(out.stdout)

    def warm(self, names: list[str], parallel: int = 8) -> None:
        """Refill connection pools after a fake restart (one-token requests, `parallel` at once per
        target); failures here are expected and ignored."""
        jobs = [self.targets[n] for n in names for _ in range(parallel)]
        with self.awake("litellm"), ThreadPoolExecutor(max_workers=len(jobs) or 1) as pool:
            for _ in range(2):
                list(pool.map(lambda s: http("POST", s.url, chat_body(tokens=1), key=s.key, timeout=30), jobs))

    # -- oha -----------------------------------------------------------------------------------

    def oha_run(self, name: str, body: str, seconds: float, rate: int | None = None,
                connections: int = 50, service: Service | None = None) -> dict:
        service = service or self.targets[name]
        cmd = [self.oha, "--no-tui", "--output-format", "json", "-z", f"{seconds}s",
               "-c", str(connections), "-m", "POST", "-H", "content-type: application/json", "-d", body]
        if service.key:
            cmd += ["-H", f"authorization: Bearer {service.key}"]
        if rate:
            cmd += ["-q", str(rate), "--latency-correction"]
        cmd.append(service.url)
        pids = self.pids_of(name)
        fake_pids = self.fake.pids()
        cpu0, fake0 = cpu_seconds(pids), cpu_seconds(fake_pids)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
        cpu1, fake1 = cpu_seconds(pids), cpu_seconds(fake_pids)
        try:
            data = json.loads(out.stdout)
        except json.JSONDecodeError:
            return {"error": f"oha failed: {out.stderr.strip()[-300:]}"}
        codes = {str(k): v for k, v in (data.get("statusCodeDistribution") or {}).items()}
        errors = {k: v for k, v in (data.get("errorDistribution") or {}).items()
                  if k != "aborted due to deadline"}
        answered = sum(codes.values())
        ok = sum(v for k, v in codes.items() if k.startswith("2"))
        pct = data.get("latencyPercentiles") or {}
        ms = lambda v: None if v is None else v * 1e3  # noqa: E731
        duration = data["summary"].get("total") or seconds
        return {
            "rate": rate, "seconds": seconds, "answered": answered, "ok": ok,
            "achieved_rps": answered / duration if duration else 0,
            "ok_rps": ok / duration if duration else 0,
            "codes": codes, "errors": errors,
            "p50_ms": ms(pct.get("p50")), "p90_ms": ms(pct.get("p90")),
            "p99_ms": ms(pct.get("p99")), "p999_ms": ms(pct.get("p99.9")),
            "cpu_us_per_req": (cpu1 - cpu0) * 1e6 / answered if answered and name != "direct" else None,
            "fake_cpu_us_per_req": (fake1 - fake0) * 1e6 / answered if answered else None,
        }

    def rotation(self, names: list[str], turn: int) -> list[str]:
        k = turn % len(names)
        return names[k:] + names[:k]

    # -- scenarios -----------------------------------------------------------------------------

    def scenario_idle(self) -> None:
        rounds, per_round = (2, 10) if self.smoke else (self.opts.idle_rounds, 60)
        log(f"idle overhead: {rounds} rounds x {per_round} sequential requests per target")
        args = ["idle", "--rounds", str(rounds), "--per-round", str(per_round),
                "--tokens", str(TOKENS), "--warmup", "5" if self.smoke else "30", "--budget-ms", "180000"]
        self.results["idle"] = self.client_scenario(args, timeout=300)

    def scenario_sweep(self) -> None:
        names = list(self.targets)
        sweep = {}
        for i, rate in enumerate(self.opts.rates):
            runs: dict[str, list] = {}
            for p in range(self.opts.passes):
                order = self.rotation(self.others(), i + p)
                if "litellm" in self.targets and rate <= self.opts.litellm_max_rate:
                    order.append("litellm")
                for name in order:
                    with self.awake(name):
                        runs.setdefault(name, []).append(
                            self.oha_run(name, chat_body(), self.opts.seconds, rate=rate))
            for name in names:
                if name not in runs:
                    continue
                r = sweep.setdefault(str(rate), {})[name] = merge_passes(runs[name])
                if "error" in r:
                    log(f"sweep {rate}/s {name}: {r['error']}")
                    continue
                log(f"sweep {rate}/s {name}: answered {r['achieved_rps']:.0f}/s, p50 {fmt(r['p50_ms'], 3)} ms, "
                    f"p99 {fmt(r['p99_ms'], 3)} ms, cpu/req {fmt(r['cpu_us_per_req'], 1)} us")
        self.results["sweep"] = sweep

    def scenario_saturation(self) -> None:
        runs: dict[str, list] = {}
        for p in range(self.opts.passes):
            order = self.rotation(self.others(), p + 1) + (["litellm"] if "litellm" in self.targets else [])
            for name in order:
                with self.awake(name):
                    runs.setdefault(name, []).append(
                        self.oha_run(name, chat_body(), self.opts.seconds, connections=self.opts.sat_connections))
        sat = {name: merge_passes(cells) for name, cells in runs.items()}
        for name, r in sat.items():
            log(f"saturation {name}: {r.get('achieved_rps', 0):.0f} req/s")
        self.results["saturation"] = sat

    def scenario_errors(self) -> None:
        out = {}
        for model in ("fail-500", "fail-busy"):
            for name in self.others() + (["litellm"] if "litellm" in self.targets else []):
                with self.awake(name):
                    out.setdefault(model, {})[name] = self.oha_run(
                        name, chat_body(model), self.opts.error_seconds, rate=self.opts.error_rate)
        if self.limited:
            out["rate-limited key (bench)"] = {
                "gateway-429": self.oha_run("gateway-429", chat_body(), self.opts.error_seconds,
                                            rate=self.opts.error_rate, service=self.limited),
                "gateway": self.oha_run("gateway", chat_body(), self.opts.error_seconds,
                                        rate=self.opts.error_rate),
            }
        self.results["errors"] = out
        log("errors under load: done")

    def scenario_streams(self, t0: int, gap: int) -> None:
        levels = [(5, 5, 1)] if self.smoke else [(1, 20, 2), (10, 120, 3), (100, 600, 3)]
        out = {}
        for concurrency, streams, rounds in levels:
            args = ["stream", "--concurrency", str(concurrency), "--streams", str(streams),
                    "--rounds", str(rounds), "--tokens", str(16 if self.smoke else STREAM_TOKENS),
                    "--t0-ms", str(t0), "--gap-ms", str(gap), "--stream-timeout-ms", "60000"]
            out[str(concurrency)] = self.client_scenario(args, timeout=900)
            summary = ", ".join(
                f"{n} {v['intact']}/{v['streams']} ttft p50 {fmt((v['ttft_us']['p50'] or 0) / 1e3, 2)} ms"
                for n, v in out[str(concurrency)]["targets"].items())
            log(f"streams x{concurrency}: {summary}")
        self.results["streams"] = out

    def scenario_capacity(self) -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        # The gateway and caddy hold two sockets per stream (client and upstream) in one process.
        cap = min(self.opts.max_streams, (hard - 200) // 2)
        steps = sorted({max(1, cap * k // 5) for k in range(1, 6)}) if not self.smoke else [10, 20]
        out = {"fd_hard_limit": hard, "max_requested": cap, "targets": {}}
        names = [n for n in ("gateway", "passthrough", "passthrough-hyper", "nginx", "caddy")
                 if n in self.targets]
        if self.smoke:
            names = ["gateway"]
        for name in names:
            args = ["hold", "--target", self.spec(name), "--steps", ",".join(map(str, steps)),
                    "--pids", ",".join(map(str, self.pids_of(name))), "--tokens", str(ENDLESS_TOKENS),
                    "--settle-ms", "300" if self.smoke else "1500", "--opening", "256"]
            result = self.run_client(args, timeout=600)
            result["slope_kib_per_stream"] = slope(
                [(s["open"], s["rss_kib"]) for s in result["steps"]])
            out["targets"][name] = result
            log(f"capacity {name}: {result['steps'][-1].get('open')} open, "
                f"{fmt(result['slope_kib_per_stream'], 1)} KiB/stream")
            time.sleep(1)
        self.results["capacity"] = out

    def scenario_cancel(self) -> None:
        trials = 2 if self.smoke else self.opts.cancel_trials
        args = ["cancel", "--fake", self.fake_base, "--trials", str(trials),
                "--tokens", str(ENDLESS_TOKENS), "--max-wait-ms", str(self.opts.cancel_max_wait_ms)]
        self.results["cancel"] = self.client_scenario(args, timeout=900)
        log("cancellation: done")

    def scenario_real(self) -> None:
        """Streams against the real Ollama (../shared/ollama, the tiny model), direct and through
        a gateway in front of it, interleaved stream by stream; the gateway's CPU per token."""
        start_sh = Path(self.opts.ollama_dir) / "start.sh"
        if not start_sh.is_file():
            self.results["unavailable"]["real-ollama"] = f"no {start_sh}"
            log(f"real Ollama: unavailable (no {start_sh})")
            return
        port, gw_port = free_ports(2)
        store = WORK / "real-ollama"
        subprocess.run(["rm", "-rf", str(store)], check=False)
        base = f"http://127.0.0.1:{port}"
        with open(WORK / "real-ollama-start.log", "wb") as logfile:
            starter = subprocess.Popen([str(start_sh), str(port), str(store)], stdout=logfile,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        group = starter.pid  # `ollama serve` stays in start.sh's process group
        gateway = None
        try:
            if starter.wait(timeout=120) != 0:
                self.results["unavailable"]["real-ollama"] = "start.sh failed (see bench/work/real-ollama-start.log)"
                return
            serve = int((store / "ollama.pid").read_text())
            gateway = self.gateway_service("gateway-real", gw_port, {
                "OLLAMA_URL": base, "GATEWAY_AUTH": "on", "GATEWAY_RATE_LIMIT": "100000000",
                "GATEWAY_RATE_BURST": "1000000", "GATEWAY_MAX_CONCURRENT": "100000"})
            gateway.key = self.api_key
            gateway.start()
            if not gateway.wait_ready(f"http://127.0.0.1:{gw_port}", 20):
                raise SystemExit(f"gateway-real did not start; see {WORK / 'gateway-real.log'}")
            streams = self.opts.real_streams if not self.smoke else 3
            tokens = self.opts.real_tokens if not self.smoke else 8
            targets = ["--target", f"direct={base}/v1/chat/completions",
                       "--target", f"gateway={gateway.url}@{self.api_key}"]
            # Load the model and open the pools before measuring.
            self.run_client(["real", "--streams", "1", "--tokens", "2", *targets], timeout=120)
            gw_pids, ollama_pids = gateway.pids(), descendants(serve)
            gw_cpu, ollama_cpu = cpu_seconds(gw_pids), cpu_seconds(ollama_pids)
            result = self.run_client(
                ["real", "--streams", str(streams), "--tokens", str(tokens), *targets], timeout=900)
            gw_cpu, ollama_cpu = cpu_seconds(gw_pids) - gw_cpu, cpu_seconds(ollama_pids) - ollama_cpu
            through = result["targets"]["gateway"]["tokens"]
            everything = sum(t["tokens"] for t in result["targets"].values())
            result["gateway_cpu_us_per_token"] = gw_cpu * 1e6 / through if through else None
            result["ollama_cpu_us_per_token"] = ollama_cpu * 1e6 / everything if everything else None
            with contextlib.suppress(ValueError, KeyError):
                result["ollama_version"] = json.loads(http("GET", base + "/api/version")[1])["version"]
            self.results["real"] = result
            g = result["targets"]["gateway"]
            log(f"real Ollama: {g['complete']}/{g['streams']} gateway streams complete, "
                f"added ttft p50 {fmt((g['ttft_added_us']['p50'] or 0) / 1e3, 3)} ms, "
                f"added gap p50 {fmt((g['gap_added_us']['p50'] or 0) / 1e3, 3)} ms, "
                f"gateway CPU {fmt(result['gateway_cpu_us_per_token'], 1)} µs/token")
        finally:
            if gateway is not None:
                gateway.stop()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.killpg(group, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
    def count_usage(self) -> None:
        """Every request `gateway` answered with its key must be in its usage table: read what it
        served from its own metrics, stop it (SIGTERM writes out the queue), count the rows."""
        service = self.targets.get("gateway")
        if not service:
            return
        status, body = http("GET", f"http://127.0.0.1:{self.gw_port}/metrics", key=self.api_key)
        served = dropped = 0
        for line in body.decode(errors="replace").splitlines():
            if line.startswith("gateway_requests_total{") and 'key="key-1"' in line \
                    and 'route="/metrics"' not in line:
                served += int(float(line.rsplit(" ", 1)[1]))
            elif line.startswith("gateway_usage_dropped_total"):
                dropped += int(float(line.rsplit(" ", 1)[1]))
        service.stop()
        with contextlib.closing(sqlite3.connect(WORK / "gateway.db")) as db:
            recorded = db.execute("SELECT COUNT(*) FROM usage WHERE route != '/metrics'").fetchone()[0]
            tokens = db.execute("SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM usage").fetchone()[0]
        self.results["usage_recording"] = {
            "metrics_status": status, "served": served, "recorded": recorded,
            "dropped": dropped, "tokens": tokens,
        }
        log(f"usage recording: {recorded} records for {served} requests served, {dropped} dropped")

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> int:
        WORK.mkdir(parents=True, exist_ok=True)
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if self.opts.real_only:
            self.scenario_real()
            self.results["elapsed_s"] = time.monotonic() - self.started
            self.results["machine"] = machine_info(self.opts)
            return 0
        try:
            self.start_fake(0, 0)
            self.add_direct()
            if not self.smoke:
                self.add_nginx()
                self.add_caddy()
                self.add_litellm()
            self.add_passthrough("passthrough", self.pass_port, "reqwest")
            if not self.smoke:
                self.add_passthrough("passthrough-hyper", self.pass_hyper_port, "hyper")
            self.add_gateways()
            order = ["direct", "nginx", "caddy", "passthrough", "passthrough-hyper", "litellm",
                     "gateway", "gateway-norecord", "gateway-open"]
            self.targets = {n: self.targets[n] for n in order if n in self.targets}
            log("targets: " + ", ".join(self.targets)
                + "".join(f"; {n} unavailable ({why})" for n, why in self.results["unavailable"].items()))
            self.scenario_idle()
            self.remember_memory("idle")
            if not self.smoke:
                self.scenario_sweep()
                self.scenario_saturation()
                self.scenario_errors()
                self.remember_memory("load")
            # Paced fake: streaming timing against a known schedule.
            t0, gap = (1, 2) if self.smoke else (self.opts.stream_t0, self.opts.stream_gap)
            self.start_fake(t0, gap)
            self.warm(list(self.targets))
            self.scenario_streams(t0, gap)
            self.remember_memory("streams")
            # Slow fake: one token a second, streams that stay open.
            self.start_fake(0, 1000)
            self.warm(list(self.targets))
            self.scenario_cancel()
            self.scenario_capacity()
            self.remember_memory("capacity")
            self.count_usage()
            # The real Ollama last: its CPU would otherwise weigh on the fake's schedule.
            self.scenario_real()
        finally:
            for service in list(self.targets.values()) + [self.limited, self.fake]:
                if service is not None:
                    service.stop()
        self.results["elapsed_s"] = time.monotonic() - self.started
        self.results["machine"] = machine_info(self.opts)
        return 0


# ---------------------------------------------------------------------------------------------
# Figures


def merge_passes(cells: list[dict]) -> dict:
    """Several passes of one cell: sum counts, median of each percentile and rate."""
    cells = [c for c in cells if "error" not in c] or cells
    if len(cells) == 1 or "error" in cells[0]:
        return cells[0]
    merged = dict(cells[0])
    for key in ("achieved_rps", "ok_rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms",
                "cpu_us_per_req", "fake_cpu_us_per_req"):
        values = [c[key] for c in cells if c.get(key) is not None]
        merged[key] = statistics.median(values) if values else None
    for key in ("answered", "ok"):
        merged[key] = sum(c[key] for c in cells)
    for key in ("codes", "errors"):
        merged[key] = {}
        for c in cells:
            for k, v in c[key].items():
                merged[key][k] = merged[key].get(k, 0) + v
    merged["passes"] = [{k: c.get(k) for k in ("p50_ms", "p99_ms", "achieved_rps")} for c in cells]
    return merged


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x."""
    if len(points) < 2:
        return None
    xs, ys = zip(*points)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else None


def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def command_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
        text = (out.stdout + out.stderr).strip().splitlines()
        return text[0] if text else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def machine_info(opts: argparse.Namespace) -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{mem_kib / 1048576:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    versions = {
        "rustc": command_version(["rustc", "--version"]),
        "python": platform.python_version(),
    }
    if opts.oha:
        versions["oha"] = command_version([opts.oha, "--version"])
    if opts.nginx:
        versions["nginx"] = command_version([opts.nginx, "-v"])
    if opts.caddy:
        versions["caddy"] = command_version([opts.caddy, "version"])
    if opts.litellm:
        py = str(Path(opts.litellm).parent / "python")
        versions["litellm"] = command_version(
            [py, "-c", "import importlib.metadata as m; print(m.version('litellm'))"])
    commit = command_version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True,
                           text=True, check=False).stdout.strip()
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(), "memory": mem,
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
        "versions": versions,
        "commit": (commit if len(commit) < 20 and " " not in commit else "no commit yet")
        + (" (uncommitted changes)" if dirty else ""),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "binaries": opts.bin_dir,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--bin-dir", default="")
    parser.add_argument("--client", default="")
    parser.add_argument("--render", default="",
                        help="only re-render the report from a results .json written by an earlier run")
    parser.add_argument("--oha", default="")
    parser.add_argument("--nginx", default="")
    parser.add_argument("--caddy", default="")
    parser.add_argument("--litellm", default="")
    parser.add_argument("--litellm-reason", default="")
    parser.add_argument("--rates", default="250,500,1000,2000")
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--sat-connections", type=int, default=64)
    parser.add_argument("--litellm-max-rate", type=int, default=500)
    parser.add_argument("--error-rate", type=int, default=300)
    parser.add_argument("--error-seconds", type=float, default=3)
    parser.add_argument("--idle-rounds", type=int, default=12)
    parser.add_argument("--stream-t0", type=int, default=10)
    parser.add_argument("--stream-gap", type=int, default=5)
    parser.add_argument("--max-streams", type=int, default=10_000)
    parser.add_argument("--cancel-trials", type=int, default=10)
    parser.add_argument("--cancel-max-wait-ms", type=int, default=6000)
    parser.add_argument("--ollama-dir", default=os.environ.get(
        "OLLAMA_SHARED_DIR", str(ROOT.parent / "shared" / "ollama")),
        help="the real Ollama (start.sh, bin/ollama) for the real-upstream streaming scenario")
    parser.add_argument("--real-streams", type=int, default=30)
    # Under 30: the tiny model repeats one token, and Ollama 0.24 cuts a generation short (200,
    # no `done`) once one token has repeated about 30 times.
    parser.add_argument("--real-tokens", type=int, default=24)
    parser.add_argument("--real-only", action="store_true",
                        help="run only the real-Ollama streaming scenario (report: bench/results/real.md)")
    parser.add_argument("--output", default=str(BENCH / "results" / "latest.md"))
    opts = parser.parse_args()
    opts.rates = [int(r) for r in opts.rates.split(",") if r.strip()]
    for name in ("bin_dir", "client", "oha", "nginx", "caddy", "litellm"):
        if getattr(opts, name):
            setattr(opts, name, str(Path(getattr(opts, name)).absolute()))
    import report  # noqa: PLC0415 (bench/report.py, next to this file)

    if opts.real_only and opts.output == str(BENCH / "results" / "latest.md"):
        opts.output = str(BENCH / "results" / "real.md")
    out = Path(opts.output)
    if opts.render:
        results = json.loads(Path(opts.render).read_text())
        opts.smoke = bool(results.get("smoke"))
        out.write_text(report.render(results, opts)[0])
        log(f"report re-rendered to {out}")
        return 0
    if not opts.bin_dir or not opts.client:
        raise SystemExit("give --bin-dir and --client (bench/run.sh does)")
    if not opts.smoke and not opts.oha and not opts.real_only:
        raise SystemExit("a full run needs oha")
    bench = Bench(opts)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    code = bench.run()
    bench.results["smoke"] = opts.smoke
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(bench.results, indent=1, default=str))
    if opts.real_only:
        markdown, failures = report.render_real_only(bench.results, opts)
    else:
        markdown, failures = report.render(bench.results, opts)
    out.write_text(markdown)
    log(f"report written to {out} ({bench.results['elapsed_s']:.0f} s)")
    if opts.smoke and failures:
        for failure in failures:
            log(f"smoke check failed: {failure}")
        return 1
    return code


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
