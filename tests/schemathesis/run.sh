#!/usr/bin/env bash
# Property-based tests of the running gateway against its own OpenAPI document (/openapi.json),
# with schemathesis (v4 CLI). Every operation is exercised in all phases (examples, coverage,
# fuzzing, stateful), with positive and negative data, under every check schemathesis has
# (`--checks all`): each response must
#   - not be a 5xx (not_a_server_error),
#   - have a documented status code, content type and headers,
#   - match the documented schema (JSON bodies, and each event of text/event-stream bodies);
# data the document allows must be accepted and data it forbids refused with a 4xx
# (positive_data_acceptance, negative_data_rejection), a missing key or required header
# refused, an undocumented method refused with 405, and so on. The gateway under test runs with
# its rate limits out of reach (tests/support/servers.sh). No check is excluded.
#
# One kind of failure is dropped, by hooks.py (its doc says how narrowly): a schema-valid
# request rightly refused with 400 for a rule no JSON Schema can state. Which models exist and
# what each can do is server state (Ollama refuses `think` for a model without thinking, chat or
# generate on an embedding model); `tool_choice` naming a tool absent from `tools`, and a
# thinking budget not below `max_tokens`, are rules between two fields; a tool call's
# `arguments` holding the JSON text of an object is a rule on a string's content, which JSON
# Schema only annotates. The hook drops such a positive_data_acceptance failure only after
# checking it itself: a 400 in the surface's shape, and either the model's /api/show lacking
# the capability the request asks for, or the request really breaking the rule the refusal
# names. Schemathesis' summary counts what it dropped.
# Needs GATEWAY_URL and GATEWAY_KEY (tests/support/servers.sh). Extra arguments go to
# `schemathesis run` (e.g. `--include-path /v1/embeddings`).
# Reports (JUnit, HAR of every request) land in tests/schemathesis/artifacts/.
#   SCHEMATHESIS_SEED          seed of the run (default fixed: a run is reproducible)
#   SCHEMATHESIS_MAX_EXAMPLES  cases per operation and phase (default 50, about 2 min)
set -euo pipefail
cd "$(dirname "$0")"

: "${GATEWAY_URL:?source tests/support/servers.sh and call start_servers first}"
: "${GATEWAY_KEY:?source tests/support/servers.sh and call start_servers first}"
seed="${SCHEMATHESIS_SEED:-20261123}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-50}"

# The virtualenv, (re)installed only when requirements.txt changed since the last install.
venv=.venv
stamp="$venv/.installed-requirements"
if [ ! -x "$venv/bin/python" ] || ! cmp -s requirements.txt "$stamp" 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
    cp requirements.txt "$stamp"
fi

rm -rf artifacts
mkdir -p artifacts

status=0
SCHEMATHESIS_HOOKS="$PWD/hooks.py" "$venv/bin/schemathesis" --config-file schemathesis.toml run "$GATEWAY_URL/openapi.json" \
    --header "Authorization: Bearer $GATEWAY_KEY" \
    --checks all \
    --max-examples "$max_examples" \
    --seed "$seed" \
    --generation-database none \
    --request-timeout 15 \
    --wait-for-schema 15 \
    --no-color \
    --report junit,har \
    --report-dir artifacts \
    --report-junit-path artifacts/junit.xml \
    --report-har-path artifacts/requests.har \
    "$@" || status=$?

# One closing line with the counts: an operation passes when no check failed on it.
"$venv/bin/python" - artifacts/junit.xml <<'EOF' || true
import sys
import xml.etree.ElementTree as ET

cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
failed = passed = skipped = 0
for case in cases:
    if case.find("failure") is not None or case.find("error") is not None:
        failed += 1
    elif case.find("skipped") is not None:
        skipped += 1
    else:
        passed += 1
print(f"schemathesis: {passed} passed, {failed} failed, {skipped} skipped")
EOF
if [ "$status" -ne 0 ]; then
    echo "schemathesis failed (exit $status): each failure above has a curl command to reproduce it;" >&2
    echo "or, from $(pwd), while the servers run:" >&2
    echo "  .venv/bin/schemathesis --config-file schemathesis.toml replay <ID> --keep -H \"Authorization: Bearer \$GATEWAY_KEY\"" >&2
fi
exit "$status"
