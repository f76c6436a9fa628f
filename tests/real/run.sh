#!/usr/bin/env bash
# The real-upstream tier: the real Ollama (v0.24.0, CPU, two tiny models; see
# ../shared/ollama/README.md) started once on a free loopback port, a gateway (debug build) in
# front of it, the fake Ollama beside it (for the fixture conformance check), then the suites:
# pytest (differential checks against Ollama's own /v1, native passthrough, real errors, the
# Python OpenAI SDK and the `ollama` library, cancellation, load and keep-alive, the fake's
# conformance) and openai-node. Everything started here is stopped at exit.
#   usage: tests/real/run.sh [pytest arguments]
#          tests/real/run.sh --record   (re-record fixtures/recorded/ from the real server)
#   OLLAMA_SHARED_DIR: where start.sh and bin/ollama are (default: ../shared/ollama beside the
#   repository)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
shared="${OLLAMA_SHARED_DIR:-$root/../shared/ollama}"
if [ ! -x "$shared/start.sh" ] || [ ! -x "$shared/bin/ollama" ]; then
    echo "tests/real: no real Ollama at $shared (start.sh and bin/ollama);" \
        "set OLLAMA_SHARED_DIR to the folder that has them" >&2
    exit 1
fi
started=$SECONDS

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for() { # url, what
    for _ in $(seq 1 150); do
        if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "$2 did not come up at $1" >&2
    return 1
}

work="$(mktemp -d "${TMPDIR:-/tmp}/gateway-real.XXXXXX")"
pids=()
stop_all() {
    local status=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -f "$work/ollama/ollama.pid" ]; then
        local serve runners
        serve="$(cat "$work/ollama/ollama.pid")"
        # Its runners (one per loaded model) are its children: noted now, by pid.
        runners="$(cat /proc/"$serve"/task/*/children 2>/dev/null || true)"
        kill "$serve" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$serve" 2>/dev/null || break
            sleep 0.1
        done
        for pid in $runners; do kill "$pid" 2>/dev/null || true; done
    fi
    wait 2>/dev/null || true
    if [ "$status" -ne 0 ]; then
        echo "tests/real: logs kept in $work" >&2
    else
        rm -rf "$work"
    fi
}
trap stop_all EXIT

venv="$here/.venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    echo "$want" >"$stamp"
fi
node_stamp="$here/node_modules/.package-lock.sha256"
node_want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$node_stamp" 2>/dev/null || true)" != "$node_want" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$node_want" >"$node_stamp"
fi

target="${CARGO_TARGET_DIR:-$root/target}/debug"
# Built when missing or stale (a no-op when tests/run.sh has just built them).
(cd "$root" && cargo build --quiet -p ollama-gateway -p fake-ollama --bins)

# One request generates at a time, so a follow-up request's timing shows when Ollama stopped
# the one before (the cancellation test); Ollama's log has a line for every request it finished.
ollama_port="$(free_port)"
OLLAMA_NUM_PARALLEL=1 OLLAMA_DEBUG=1 OLLAMA_KEEP_ALIVE=5m \
    "$shared/start.sh" "$ollama_port" "$work/ollama" keep
export OLLAMA_URL="http://127.0.0.1:$ollama_port" OLLAMA_SHARED_DIR="$shared"
export GATEWAY_BIN="$target/ollama-gateway"
export OLLAMA_LOG="$work/ollama/ollama.log"
if [ "${1:-}" = "--record" ]; then
    (cd "$here" && "$venv/bin/python" record.py)
    exit 0
fi

fake_port="$(free_port)"
"$target/fake-ollama" --listen "127.0.0.1:$fake_port" --fixtures "$root/fixtures" \
    >"$work/fake-ollama.log" 2>&1 &
pids+=($!)
export FAKE_URL="http://127.0.0.1:$fake_port"
wait_for "$FAKE_URL/api/version" "fake-ollama"

gateway_port="$(free_port)"
export GATEWAY_KEY="sk-real-tier"
export GATEWAY_LOG="$work/gateway.log"
env -u GATEWAY_CONFIG -u OLLAMA_API_KEY -u GATEWAY_ALLOWED_MODELS \
    GATEWAY_LISTEN="127.0.0.1:$gateway_port" OLLAMA_URL="$OLLAMA_URL" GATEWAY_API_KEYS="$GATEWAY_KEY" \
    GATEWAY_RATE_LIMIT=100000 GATEWAY_RATE_BURST=10000 GATEWAY_MAX_CONCURRENT=100 \
    GATEWAY_UPSTREAM_TIMEOUT=60 GATEWAY_LOG_FORMAT=json RUST_LOG="info" \
    "$target/ollama-gateway" >"$GATEWAY_LOG" 2>&1 &
pids+=($!)
export GATEWAY_URL="http://127.0.0.1:$gateway_port"
wait_for "$GATEWAY_URL/health" "the gateway"

echo "-- pytest (real Ollama on $OLLAMA_URL, gateway on $GATEWAY_URL)"
(cd "$here" && "$venv/bin/python" -m pytest "$@")
echo "-- node --test (openai-node)"
(cd "$here" && node --test --test-reporter=spec --test-concurrency=1 node/*.test.mjs)
echo "-- real tier took $((SECONDS - started)) s"
