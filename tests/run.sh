#!/usr/bin/env bash
# The whole test suite, one command, on a fresh machine too: it installs what the suites need
# (tests/support/setup.sh: Debian packages when missing; each suite installs its own pip and npm
# packages), then runs every suite and prints a summary (suite, result, time). It goes on past a
# failed suite so the summary shows them all, and exits non-zero if any failed.
#   1. Rust unit and integration tests (a real gateway in front of the fake Ollama).
#   2. The real clients against a running gateway in front of the fake Ollama: the Python OpenAI
#      SDK, TypeScript fetch and openai-node, Swagger UI in Chromium, schemathesis.
#   3. The real-upstream tier: the same gateway in front of the real Ollama in ../shared/ollama.
set -uo pipefail
cd "$(dirname "$0")/.."

declare -a SUMMARY=()
FAILED=0

# run_suite NAME COMMAND...: run it, note its result and time.
run_suite() {
    local name=$1 start status
    shift
    echo
    echo "== $name"
    start=$(date +%s)
    "$@"
    status=$?
    local took=$(($(date +%s) - start))
    if [ "$status" -eq 0 ]; then
        SUMMARY+=("$(printf '%-28s %-8s %4ss' "$name" passed "$took")")
    else
        SUMMARY+=("$(printf '%-28s %-8s %4ss  (exit %s)' "$name" FAILED "$took" "$status")")
        FAILED=$((FAILED + 1))
    fi
    return "$status"
}

print_summary() {
    echo
    echo "== summary"
    printf '%s\n' "${SUMMARY[@]}"
    local total=${#SUMMARY[@]}
    echo "suites: $((total - FAILED)) passed, $FAILED failed"
}

source tests/support/setup.sh
run_suite "machine setup" setup_machine || { print_summary; exit 1; }

run_suite "cargo test" cargo test --workspace --all-targets

# The integration tests again with every gateway's store on a real PostgreSQL server
# (tests/support/postgres.sh: a new cluster on a free loopback port, removed afterwards).
source tests/support/postgres.sh
run_postgres_suite() {
    start_postgres || return 1
    cargo test --test api
    local status=$?
    stop_postgres
    return "$status"
}
run_suite "cargo test (PostgreSQL)" run_postgres_suite

# Two replicas sharing one PostgreSQL and one Redis (tests/support/redis.sh: redis-server on a
# free loopback port, nothing saved): shared rate limits, revocation, Redis outages.
source tests/support/redis.sh
run_replicas_suite() {
    start_redis || return 1
    if ! start_postgres; then
        stop_redis
        return 1
    fi
    cargo test --test api replicas
    local status=$?
    stop_postgres
    stop_redis
    return "$status"
}
run_suite "cargo test (replicas, Redis)" run_replicas_suite
run_suite "build binaries" cargo build --workspace --bins || { print_summary; exit 1; }

source tests/support/servers.sh
if run_suite "start fake ollama + gateway" start_servers; then
    for suite in tests/clients/python tests/clients/ts tests/browser tests/schemathesis; do
        run_suite "$suite" bash "$suite/run.sh"
    done
fi
stop_servers

if [ -f tests/real/run.sh ]; then
    run_suite "tests/real (real Ollama)" bash tests/real/run.sh
fi

# The Rust tests' databases and certificates (tests/api/common.rs puts them all here).
rm -rf "${TMPDIR:-/tmp}/ollama-gateway-tests"

print_summary
[ "$FAILED" -eq 0 ]
