#!/usr/bin/env bash
# The main job, end to end: install ptstub, then let the real GDB debug a bundled multi-threaded
# program through it. Four threads hit a breakpoint while a counter thread runs and the main thread
# waits in epoll_wait; GDB shows the threads, checks that the counter is frozen at each stop, and the
# program reports that its epoll_wait never saw EINTR.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
prog=build/fixtures/stress
log=$(mktemp)
check=$(mktemp --suffix=.py)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -f "$log" "$check"' EXIT
# A Python command file, not `-ex 'python ...'`: GDB reads one line per -ex, so a multi-line block there
# runs its first line only and takes `end` for a Python name.
cat >"$check" <<'PY'
same = 0
for i in range(20):
    a = int(gdb.parse_and_eval("frozen_counter"))
    b = int(gdb.parse_and_eval("frozen_counter"))
    same += a == b
    gdb.execute("continue", to_string=True)
print("ptstub demo: frozen_counter identical on both reads at %d of 20 stops" % same)
PY
.venv/bin/ptstub --once 127.0.0.1:0 "$prog" --threads 4 --calls 25 --syscall epoll_wait 2>"$log" &
for _ in $(seq 200); do grep -q "Listening on port" "$log" && break; sleep 0.05; done
port=$(sed -n 's/^Listening on port \([0-9]*\)$/\1/p' "$log")
gdb -nx -batch -ex "target remote 127.0.0.1:$port" -ex "break hit_target" -ex continue \
    -ex "info threads" -ex "thread apply all bt 2" -x "$check" -ex "delete" -ex continue "$prog"
wait
cat "$log"
