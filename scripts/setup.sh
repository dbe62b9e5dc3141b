#!/usr/bin/env bash
# One-time (idempotent) set-up on Debian 12: system packages, a virtualenv with ptstub installed
# (its cffi helper compiled by the build backend), and the C fixtures built with CMake.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in gdb:gdb gdbserver:gdbserver cmake:cmake gcc:gcc make:make; do
    cmd=${pair%%:*}; pkg=${pair##*:}
    command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || need+=(python3-dev)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "setup: installing ${need[*]} with apt" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "setup: Python >= 3.11 needed" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# editable_mode=compat: a plain path in a .pth file. The default (lenient) mode installs an import hook
# whose module imports pathlib, re and importlib.util into every Python the venv starts: ~60-75 ms of
# start-up before `Listening on port` (and in every test and bench process), for nothing ptstub needs.
.venv/bin/python -m pip install -q -e '.[test]' --config-settings editable_mode=compat \
    || .venv/bin/python -m pip install -q -e '.[test]'
# An editable install writes no .pyc files, and with PYTHONDONTWRITEBYTECODE set nothing ever does: every
# `ptstub` start would compile its modules again (~20-50 ms before `Listening on port`). A stale .pyc is
# only ignored (Python checks the source's mtime), so compiling once here is always safe.
.venv/bin/python -m compileall -q ptstub >/dev/null

cmake -S fixtures -B build/fixtures -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build/fixtures -j2 >/dev/null
echo "setup: ready (.venv/bin/ptstub, fixtures in build/fixtures)" >&2
