#!/usr/bin/env bash
# The TypeScript client suite under Node 20: plain fetch (SSE from /v1, NDJSON from /chat) and the
# openai npm package and @anthropic-ai/sdk, plus the README's fetch example. Needs GATEWAY_URL, GATEWAY_KEY,
# GATEWAY_LIMITED_KEY and GATEWAY_RATELIMITED_KEY (tests/run.sh exports them after
# start_servers); run alone, it starts its own fake Ollama and gateway.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"

# shellcheck source=../../support/servers.sh
source "$root/tests/support/servers.sh"
ensure_servers

cd "$here"
# npm ci again only when the lock file changed since the last install.
stamp="node_modules/.package-lock.sha256"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" >"$stamp"
fi

echo "-- tsc --noEmit"
npx --no-install tsc --noEmit -p .
echo "-- node --test"
node --import tsx --test --test-reporter=spec --test-concurrency=1 test/*.test.ts
