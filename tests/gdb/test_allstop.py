"""The all-stop promise seen through GDB: many threads hit one breakpoint, a counter thread must not
move while GDB looks at a stop, no hit is lost, and the main thread's long syscall never sees EINTR.

The same GDB script runs against ptstub and GNU gdbserver; where gdbserver is known to be wrong (it
leaks EINTR from epoll_wait and sigtimedwait) the test says so instead of failing.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.gdb.stubs import run_gdb_script, running_stub

SCRIPT = r"""
import gdb
state = {"exited": None, "hits": {}, "unstable": 0, "stops": 0}
def on_exit(event):
    state["exited"] = getattr(event, "exit_code", -1)
gdb.events.exited.connect(on_exit)
gdb.execute("break hit_target")
while state["exited"] is None:
    gdb.execute("continue", to_string=True)
    if state["exited"] is not None:
        break
    state["stops"] += 1
    tid = gdb.selected_thread().ptid[1]
    state["hits"][tid] = state["hits"].get(tid, 0) + 1
    first = int(gdb.parse_and_eval("frozen_counter"))
    second = int(gdb.parse_and_eval("frozen_counter"))
    if first != second:
        state["unstable"] += 1
for tid, n in sorted(state["hits"].items()):
    print("gdb-hits: %d %d" % (tid, n))
print("gdb-unstable: %d" % state["unstable"])
print("gdb-exit: %s" % state["exited"])
"""


def parse_counts(text: str, prefix: str) -> Counter[int]:
    counts: Counter[int] = Counter()
    for match in re.finditer(rf"^{prefix} (?:\w+ )?(\d+) (\d+)$", text, re.M):
        counts[int(match.group(1))] += int(match.group(2))
    return counts


def run_scenario(stub: str, program: str, threads: int, calls: int, syscall: str) -> tuple[str, str]:
    args = ["--once", "127.0.0.1:0", program, "--threads", str(threads), "--calls", str(calls), "--syscall", syscall]
    with running_stub(stub, args) as server:
        result = run_gdb_script(server.port, program, SCRIPT, timeout=240)
        assert server.proc.stdout is not None
        server.proc.wait(timeout=30)
        program_output = server.proc.stdout.read().decode(errors="replace")
    return result.output, program_output


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("threads", "calls"), [(2, 100), (8, 1000)])
def test_every_hit_seen_counter_frozen_syscall_intact(stub: str, fixture_path, threads: int, calls: int) -> None:
    if stub == "gdbserver" and threads == 8:
        pytest.skip("the 8x1000 run is ptstub's; gdbserver is compared on the small one")
    gdb_output, program_output = run_scenario(stub, fixture_path("stress"), threads, calls, "read")
    assert "gdb-exit: 0" in gdb_output, gdb_output[-3000:]
    assert "gdb-unstable: 0" in gdb_output, "the counter thread moved while GDB looked at a stop"
    seen = parse_counts(gdb_output, "gdb-hits:")
    expected = parse_counts(program_output, "ptstub-count:")
    assert sum(expected.values()) == threads * calls, program_output
    assert seen == expected, f"hits seen by GDB per thread {dict(seen)} != program's own counts {dict(expected)}"
    assert "ptstub-syscall: read ok" in program_output, program_output


@pytest.mark.timeout(300)
@pytest.mark.parametrize("syscall", ["epoll_wait", "sigtimedwait"])
def test_no_eintr_leak_where_gdbserver_leaks(stub: str, fixture_path, syscall: str) -> None:
    gdb_output, program_output = run_scenario(stub, fixture_path("stress"), 2, 100, syscall)
    # The fixture exits 1 when it saw an EINTR it would not have seen without a debugger.
    assert f"gdb-exit: {1 if stub == 'gdbserver' else 0}" in gdb_output, gdb_output[-3000:]
    line = re.search(rf"^ptstub-syscall: {syscall} (\S+)", program_output, re.M)
    assert line is not None, program_output
    if stub == "gdbserver":
        # Known gdbserver defect (docs/kernel-facts.md §3): each stop leaks an EINTR into the program.
        assert line.group(1).startswith("eintr="), "gdbserver no longer leaks EINTR? " + line.group(0)
    else:
        assert line.group(1) == "ok", f"ptstub leaked: {line.group(0)}"
