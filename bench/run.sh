#!/usr/bin/env bash
# The gateway benchmark, one command (see bench/README.md).
#
#   bash bench/run.sh           full run (~10 min): installs oha, nginx, caddy and LiteLLM if
#                               missing, builds release binaries, measures every target
#                               interleaved, writes bench/results/latest.md (+ latest.json)
#   bash bench/run.sh --smoke   seconds: debug binaries, direct, passthrough and the gateway, no
#                               installs, loopback only, no timed assertions; proves the script
#                               and the streaming client work (writes bench/work/smoke.md)
#   bash bench/run.sh --https   ~4 min: HTTPS against plain HTTP, the gateway and nginx with the
#                               same certificate (bench/https.py; writes bench/results/https.md)
#
# Extra arguments after the mode go to bench/bench.py (e.g. --rates 250,500 --seconds 3).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
if [ "${1:-}" = "--smoke" ]; then
    mode=smoke
    shift
elif [ "${1:-}" = "--https" ]; then
    mode=https
    shift
fi
LITELLM_VERSION="${LITELLM_VERSION:-1.106.2}"

say() { echo "== bench: $*" >&2; }

# Streams need sockets: take the whole open-files allowance.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p bench/work

# Build bench/client and print the path of its binary (wherever the target dir is: its own while
# it is a standalone crate, the workspace's once it is a member). Its dependencies are the main
# workspace's, same versions, so an offline build normally finds them in the cargo cache.
build_client() {
    local out
    out="$(cargo build --manifest-path bench/client/Cargo.toml "$@" --offline \
        --message-format=json-render-diagnostics 2>/dev/null)" \
        || out="$(cargo build --manifest-path bench/client/Cargo.toml "$@" \
            --message-format=json-render-diagnostics)"
    printf '%s\n' "$out" | python3 -c '
import json, sys
paths = [m["executable"] for m in map(json.loads, filter(str.strip, sys.stdin))
         if m.get("reason") == "compiler-artifact" and m.get("executable")]
print(paths[-1] if paths else "")'
}

if [ "$mode" = smoke ]; then
    say "smoke: building debug binaries (no-op when the test suite just built them)"
    cargo build --quiet --workspace --bins
    client="$(build_client)"
    exec timeout 300 python3 bench/bench.py --smoke \
        --bin-dir "${CARGO_TARGET_DIR:-target}/debug" \
        --client "$client" \
        --output bench/work/smoke.md "$@"
fi

# ---- full run: tools ----
oha_bin="$(command -v oha || true)"
if [ -z "$oha_bin" ] && [ -x "$HOME/.cargo/bin/oha" ]; then oha_bin="$HOME/.cargo/bin/oha"; fi
if [ -z "$oha_bin" ]; then
    say "installing oha (cargo install --locked: without it a newer dependency wants a newer rustc)"
    cargo install --locked oha
    oha_bin="$HOME/.cargo/bin/oha"
fi

find_bin() { command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || true; }
nginx_bin="$(find_bin nginx)"
caddy_bin="$(find_bin caddy)"
if [ -z "$nginx_bin" ] || [ -z "$caddy_bin" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing nginx and caddy from Debian"
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends nginx caddy >/dev/null; } \
            || say "apt-get failed: the missing proxies will be reported as unavailable"
        nginx_bin="$(find_bin nginx)"
        caddy_bin="$(find_bin caddy)"
    else
        say "nginx/caddy missing and cannot apt-get: they will be reported as unavailable"
    fi
fi

if [ "$mode" = https ]; then
    command -v openssl >/dev/null || { say "openssl is needed (apt-get install openssl)"; exit 1; }
    [ -n "$nginx_bin" ] || { say "nginx is needed for the HTTPS comparison"; exit 1; }
    say "building release binaries"
    cargo build --release --bins -p ollama-gateway -p fake-ollama
    exec timeout 900 python3 bench/https.py --bin-dir target/release \
        --oha "$oha_bin" --nginx "$nginx_bin" "$@"
fi

litellm_bin=""
litellm_reason=""
venv=bench/.venv
if [ -x "$venv/bin/litellm" ] && "$venv/bin/python" -c "import litellm.proxy.proxy_server" 2>/dev/null; then
    litellm_bin="$venv/bin/litellm"
else
    say "installing LiteLLM $LITELLM_VERSION into $venv"
    if { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } \
        && timeout 900 "$venv/bin/pip" install -q --disable-pip-version-check "litellm[proxy]==$LITELLM_VERSION" \
        && "$venv/bin/python" -c "import litellm.proxy.proxy_server" 2>/dev/null; then
        litellm_bin="$venv/bin/litellm"
    else
        litellm_reason="pip install litellm[proxy]==$LITELLM_VERSION failed"
        say "$litellm_reason: LiteLLM will be reported as unavailable"
    fi
fi

# ---- full run: binaries ----
say "building release binaries"
cargo build --release --bins
client="$(build_client --release)"

say "running (about 10 minutes)"
exec timeout 1800 python3 bench/bench.py \
    --bin-dir target/release \
    --client "$client" \
    --oha "$oha_bin" --nginx "$nginx_bin" --caddy "$caddy_bin" \
    --litellm "$litellm_bin" --litellm-reason "$litellm_reason" \
    "$@"
