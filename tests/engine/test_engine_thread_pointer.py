"""`ThreadInfo.thread_pointer`: each thread's fs_base, the `pthread_t` GDB gets as its thread handle.

On x86-64 glibc the thread pointer is the TCB, whose `self` field (tcbhead_t: tcb, dtv, self) points to
itself, and `pthread_self()` returns it. Before the C library sets up TLS (the first instruction of a
new image) there is none, and the value read before an exec must not outlive it.
"""

from __future__ import annotations

import struct

import pytest
from helpers import launched, time_limit

from ptstub.events import BreakpointHit, Exec

pytestmark = pytest.mark.usefixtures("no_leftover_children")

TCB_SELF_OFFSET = 16  # glibc tcbhead_t.self (x86-64 <nptl/tls.h>)


def pointers(inf) -> dict[int, int]:
    return {t.tid: t.thread_pointer for t in inf.threads()}


@time_limit(30)
def test_thread_pointers_are_the_threads_tcbs_and_exec_forgets_them(fixture_path, tmp_path) -> None:
    program = fixture_path("exec_nonleader")
    with open(tmp_path / "exec.out", "wb") as out, launched([program, "--threads", "3"], stdout=out) as inf:
        pid = inf.pid
        assert pointers(inf) == {pid: 0}  # first instruction: no TLS yet
        inf.insert_breakpoint(inf.symbol("before_exec"))
        assert isinstance(inf.cont(), BreakpointHit)
        before = pointers(inf)
        assert len(before) == 4 and 0 not in before.values() and len(set(before.values())) == 4, before
        for pointer in before.values():
            assert struct.unpack("<Q", inf.read_memory(pointer + TCB_SELF_OFFSET, 8))[0] == pointer

        event = inf.cont()
        assert isinstance(event, Exec), event
        assert pointers(inf) == {pid: 0}  # the new image starts without TLS; the leader's old TCB is gone
        hit_target = inf.symbol("hit_target")
        inf.insert_breakpoint(hit_target)
        assert inf.cont() == BreakpointHit(pid, hit_target)
        after = pointers(inf)[pid]
        assert after != 0 and struct.unpack("<Q", inf.read_memory(after + TCB_SELF_OFFSET, 8))[0] == after
