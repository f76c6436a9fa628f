#!/usr/bin/env bash
# Regenerate the README's screenshots of the admin console (docs/console/*.png): build, start
# the fake Ollama and a fresh gateway on free ports (tests/support/servers.sh), run the console's
# browser test with UPDATE_SCREENSHOTS=1 (it writes the main pages there as it tests them), and
# stop both. One command: bash tests/browser/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/support/setup.sh
setup_machine
cargo build --workspace --bins --quiet
source tests/support/servers.sh
start_servers
UPDATE_SCREENSHOTS=1 bash tests/browser/run.sh console.test.mjs
ls -l docs/console/
