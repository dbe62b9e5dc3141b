#!/usr/bin/env bash
# Runs mypy (the strict files in pyproject.toml) and the whole test suite (installing what it needs
# first): unit, engine, GDB end-to-end, then the
# conformance gate (GDB's own testsuite, CI subset, both boards; conformance/README.md) that fails on
# any regression against conformance/baseline-ci.json not listed in conformance/known-regressions.txt.
# With arguments (a focused pytest run) or PTSTUB_SKIP_CONFORMANCE=1 the gate is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
status=0
.venv/bin/python -m mypy || status=$?   # the strict files listed in pyproject.toml
.venv/bin/python -m pytest -q "$@" || status=$?
if [[ $# -eq 0 && "${PTSTUB_SKIP_CONFORMANCE:-0}" != 1 ]]; then
    conformance/run --subset ci --against conformance/baseline-ci.json --confirm -j 2 || status=$((status ? status : $?))
fi
exit "$status"
