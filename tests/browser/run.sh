#!/usr/bin/env bash
# Swagger UI (/docs/) and the admin console (/admin/) in Debian's Chromium, driven by
# playwright-core (no bundled browser: `npx playwright install` needs a download this machine
# can't make). Needs GATEWAY_URL, GATEWAY_KEY and GATEWAY_ADMIN_KEY (tests/support/servers.sh);
# screenshots land in tests/browser/artifacts/. Also a streamed chat over HTTP/2 from an HTTPS
# gateway this script starts (openssl, curl). Arguments name the test files to run (default:
# all of them).
set -euo pipefail
cd "$(dirname "$0")"

: "${GATEWAY_URL:?source tests/support/servers.sh and call start_servers first}"
: "${GATEWAY_KEY:?source tests/support/servers.sh and call start_servers first}"
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM_PATH" ]; then
    echo "browser suite: $CHROMIUM_PATH is missing (apt-get install chromium)" >&2
    exit 1
fi

# Install exactly the locked packages, only when the lock changed since the last install.
stamp=node_modules/.installed-lock
if ! cmp -s package-lock.json "$stamp" 2>/dev/null; then
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json "$stamp"
fi

# A second gateway for the HTTP/2 test: HTTPS from a certificate made here (a CA and a leaf for
# 127.0.0.1), in front of its own fake Ollama that paces its tokens (so a stream visibly streams),
# both on free loopback ports, in a temp dir removed at the end. Chromium trusts the leaf's key by
# its SPKI hash (--ignore-certificate-errors-spki-list).
root="$(cd ../.. && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}/debug"
tls_dir="$(mktemp -d)"
tls_pids=()
stop_tls() {
    for pid in "${tls_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${tls_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$tls_dir"
}
trap stop_tls EXIT
for bin in "$target/ollama-gateway" "$target/fake-ollama"; do
    [ -x "$bin" ] || (cd "$root" && cargo build --workspace --bins --quiet)
done
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$tls_dir/ca.key" -out "$tls_dir/ca.pem" -days 2 \
    -subj "/CN=browser test CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req "${ec[@]}" -keyout "$tls_dir/leaf.key" -out "$tls_dir/leaf.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$tls_dir/leaf.ext"
openssl x509 -req -in "$tls_dir/leaf.csr" -CA "$tls_dir/ca.pem" -CAkey "$tls_dir/ca.key" \
    -CAcreateserial -out "$tls_dir/leaf.pem" -days 2 -extfile "$tls_dir/leaf.ext" 2>/dev/null
TLS_SPKI="$(openssl x509 -in "$tls_dir/leaf.pem" -pubkey -noout | openssl pkey -pubin -outform der \
    | openssl dgst -sha256 -binary | base64)"
export TLS_SPKI
fake_port="$(free_port)"
"$target/fake-ollama" --listen "127.0.0.1:$fake_port" --fixtures "$root/fixtures" \
    --first-token-delay-ms 50 --chunk-gap-ms 60 >"$tls_dir/fake.log" 2>&1 &
tls_pids+=($!)
tls_port="$(free_port)"
env -u GATEWAY_CONFIG GATEWAY_DB="sqlite://$tls_dir/gateway.db" GATEWAY_LISTEN="127.0.0.1:$tls_port" \
    OLLAMA_URL="http://127.0.0.1:$fake_port" GATEWAY_API_KEYS="$GATEWAY_KEY" OLLAMA_API_KEY="" \
    GATEWAY_TLS_CERT="$tls_dir/leaf.pem" GATEWAY_TLS_KEY="$tls_dir/leaf.key" \
    RUST_LOG=warn "$target/ollama-gateway" >"$tls_dir/gateway.log" 2>&1 &
tls_pids+=($!)
export GATEWAY_HTTPS_URL="https://127.0.0.1:$tls_port"
for _ in $(seq 1 100); do
    curl -fsS -o /dev/null --cacert "$tls_dir/ca.pem" "$GATEWAY_HTTPS_URL/health" 2>/dev/null && break
    sleep 0.1
done
curl -fsS -o /dev/null --cacert "$tls_dir/ca.pem" "$GATEWAY_HTTPS_URL/health" \
    || { echo "the HTTPS gateway did not come up:" >&2; cat "$tls_dir/gateway.log" >&2; exit 1; }

rm -rf artifacts
mkdir -p artifacts
if [ "$#" -eq 0 ]; then set -- swagger-ui.test.mjs h2-streaming.test.mjs console.test.mjs; fi
node --test --test-reporter=spec --test-timeout=120000 "$@"
