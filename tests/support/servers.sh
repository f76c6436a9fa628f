# Start the fake Ollama and the gateway (debug builds) on free ports, for the client suites.
# Source this file, then call start_servers; stop_servers runs on exit.
#   exports: FAKE_URL, GATEWAY_URL, GATEWAY_KEY, GATEWAY_LIMITED_KEY, GATEWAY_RATELIMITED_KEY,
#            GATEWAY_ADMIN_KEY (an admin key, for the admin console's browser test)

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # url, what
    for _ in $(seq 1 100); do
        if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "$2 did not come up at $1" >&2
    return 1
}

start_servers() {
    local root target
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    target="${CARGO_TARGET_DIR:-$root/target}/debug"
    SERVERS_LOG_DIR="${SERVERS_LOG_DIR:-$(mktemp -d)}"
    local fake_port gateway_port
    fake_port="$(free_port)"
    gateway_port="$(free_port)"
    "$target/fake-ollama" --listen "127.0.0.1:$fake_port" --fixtures "$root/fixtures" \
        >"$SERVERS_LOG_DIR/fake-ollama.log" 2>&1 &
    FAKE_PID=$!
    export FAKE_URL="http://127.0.0.1:$fake_port"
    wait_for "$FAKE_URL/api/version" "fake-ollama" || { cat "$SERVERS_LOG_DIR/fake-ollama.log" >&2; return 1; }
    # The database goes into the log dir (a temp dir), never into the repository.
    GATEWAY_DB="sqlite://$SERVERS_LOG_DIR/gateway.db" \
    GATEWAY_LISTEN="127.0.0.1:$gateway_port" OLLAMA_URL="$FAKE_URL" \
        GATEWAY_API_KEYS="" OLLAMA_API_KEY="" GATEWAY_CONFIG="$root/tests/support/keys.toml" \
        GATEWAY_CORS_ORIGINS="*" GATEWAY_RATE_LIMIT=100000 GATEWAY_RATE_BURST=10000 \
        GATEWAY_MAX_CONCURRENT=200 GATEWAY_UPSTREAM_TIMEOUT=2 RUST_LOG="${RUST_LOG:-warn}" \
        "$target/ollama-gateway" >"$SERVERS_LOG_DIR/gateway.log" 2>&1 &
    GATEWAY_PID=$!
    export GATEWAY_URL="http://127.0.0.1:$gateway_port"
    export GATEWAY_KEY="sk-client-test"
    export GATEWAY_LIMITED_KEY="sk-limited-test"
    export GATEWAY_RATELIMITED_KEY="sk-ratelimited-test"
    export GATEWAY_ADMIN_KEY="sk-console-admin-test"
    trap stop_servers EXIT
    wait_for "$GATEWAY_URL/health" "the gateway" || { cat "$SERVERS_LOG_DIR/gateway.log" >&2; return 1; }
}

stop_servers() {
    [ -n "${GATEWAY_PID:-}" ] && kill "$GATEWAY_PID" 2>/dev/null || true
    [ -n "${FAKE_PID:-}" ] && kill "$FAKE_PID" 2>/dev/null || true
    wait 2>/dev/null || true
}

# For a suite run on its own: start (building first) unless tests/run.sh already did.
ensure_servers() {
    if [ -z "${GATEWAY_URL:-}" ]; then
        (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && cargo build --workspace --bins --quiet)
        start_servers
    fi
}
