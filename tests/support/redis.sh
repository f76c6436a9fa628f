# A throwaway Redis server for the tests: Debian's redis-server, in a temp directory, on a free
# loopback port, with nothing saved to disk. Source this file, then call start_redis;
# stop_redis stops it and removes its files.
#   exports: GATEWAY_TEST_REDIS (its URL, redis://127.0.0.1:PORT) and GATEWAY_TEST_REDIS_PID

start_redis() {
    command -v redis-server >/dev/null 2>&1 || { echo "Redis is not installed (Debian package redis-server)" >&2; return 1; }
    local port i
    REDIS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/gateway-redis.XXXXXX")"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$REDIS_DIR" --save '' --appendonly no \
        --daemonize no --logfile "$REDIS_DIR/redis.log" &
    REDIS_PID=$!
    for i in $(seq 1 50); do
        if redis-cli -p "$port" ping >/dev/null 2>&1; then
            export GATEWAY_TEST_REDIS="redis://127.0.0.1:$port"
            export GATEWAY_TEST_REDIS_PID="$REDIS_PID"
            return 0
        fi
        sleep 0.1
    done
    echo "redis-server did not answer on port $port" >&2
    cat "$REDIS_DIR/redis.log" >&2
    stop_redis
    return 1
}

# Stop the server and remove its files.
stop_redis() {
    [ -n "${REDIS_DIR:-}" ] || return 0
    if [ -n "${REDIS_PID:-}" ]; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    rm -rf "$REDIS_DIR"
    REDIS_DIR=""
    REDIS_PID=""
    unset GATEWAY_TEST_REDIS GATEWAY_TEST_REDIS_PID
}
