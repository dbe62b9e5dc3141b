#!/usr/bin/env bash
# Runs the whole test suite (installing what it needs first): unit, engine, GDB end-to-end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
