#!/usr/bin/env bash
# Swagger UI (/docs/) and the admin console (/admin/) in Debian's Chromium, driven by
# playwright-core (no bundled browser: `npx playwright install` needs a download this machine
# can't make). Needs GATEWAY_URL, GATEWAY_KEY and GATEWAY_ADMIN_KEY (tests/support/servers.sh);
# screenshots land in tests/browser/artifacts/. Arguments name the test files to run (default:
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

rm -rf artifacts
mkdir -p artifacts
if [ "$#" -eq 0 ]; then set -- swagger-ui.test.mjs console.test.mjs; fi
node --test --test-reporter=spec --test-timeout=120000 "$@"
