#!/usr/bin/env bash
# The Python client suite: the official `openai` SDK (sync and async) against a running gateway.
# Needs GATEWAY_URL, GATEWAY_KEY, GATEWAY_LIMITED_KEY and GATEWAY_RATELIMITED_KEY (tests/run.sh
# exports them after start_servers); run alone, it starts its own fake Ollama and gateway.
# Extra arguments go to pytest (e.g. `-k stream -x`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"

# shellcheck source=../../support/servers.sh
source "$root/tests/support/servers.sh"
ensure_servers

venv="$here/.venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    echo "$want" >"$stamp"
fi

cd "$here"
"$venv/bin/python" -m pytest "$@"
