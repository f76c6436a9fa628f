#!/usr/bin/env bash
# The whole test suite, one command: Rust unit and integration tests, then the real clients
# (Python OpenAI SDK, TypeScript fetch and openai-node, Swagger UI in Chromium, schemathesis)
# against a running gateway in front of the fake Ollama. Each client suite installs its own
# packages (pip in a virtualenv, npm in its folder); Debian packages come from .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test"
cargo test --workspace --all-targets

echo "== client suites"
cargo build --bins
source tests/support/servers.sh
start_servers
for suite in tests/clients/python tests/clients/ts tests/browser tests/schemathesis; do
    if [ -f "$suite/run.sh" ]; then
        echo "== $suite"
        bash "$suite/run.sh"
    fi
done
echo "== all suites passed"
