#!/usr/bin/env bash
# One gateway binary in two configurations, side by side in one run (bench/ab.py: the same fake
# Ollama, the same fixed-rate load, interleaved rounds; printed as ratios of the second to the
# first):
#   bash bench/variants.sh recording   usage recording off (GATEWAY_USAGE_RECORDING=false) against
#                                      on (the default), with the usage rows counted afterwards
#   bash bench/variants.sh redis       in-process limits against limits in Redis (a redis-server
#                                      started here on a free loopback port, stopped afterwards)
# Extra arguments go to bench/ab.py (e.g. --rate 500 --rounds 5). Needs the release binaries
# (cargo build --release --workspace --bins) and oha (bench/run.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

variant="${1:?recording or redis}"
shift
bin="$PWD/target/release/ollama-gateway"
work="$(mktemp -d "${TMPDIR:-/tmp}/gateway-variants.XXXXXX")"
source tests/support/redis.sh
cleanup() { stop_redis; rm -rf "$work"; }
trap cleanup EXIT

# A wrapper per configuration: ab.py starts each "binary" with its own settings and no other
# GATEWAY_ variable, so what differs is set here.
wrapper() { # name, settings...
    local name=$1
    shift
    { echo '#!/bin/sh'; printf 'exec env %s "%s"\n' "$*" "$bin"; } >"$work/$name"
    chmod +x "$work/$name"
}

case "$variant" in
recording)
    wrapper recording-off GATEWAY_USAGE_RECORDING=false
    wrapper recording-on GATEWAY_USAGE_RECORDING=true
    python3 bench/ab.py "$work/recording-off" "$work/recording-on" "$@"
    ;;
redis)
    start_redis
    wrapper in-process GATEWAY_REDIS_FAILURE=closed
    wrapper redis "GATEWAY_REDIS_URL=$GATEWAY_TEST_REDIS"
    python3 bench/ab.py "$work/in-process" "$work/redis" "$@"
    ;;
*)
    echo "unknown variant: $variant (recording or redis)" >&2
    exit 2
    ;;
esac
