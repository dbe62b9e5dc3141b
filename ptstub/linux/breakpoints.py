"""`BreakpointTable`: the breakpoints of one traced process, software and hardware.

Software breakpoints are int3 bytes the engine writes and hides from memory reads (csrc/ptcore_memory.c);
here they are reference counted, as GDB may insert the same address twice (a breakpoint and a
`step` over a call). Hardware breakpoints and watchpoints live in the debug registers (`debugregs`),
applied by the engine to every thread. A hardware trap not yet reported keeps the watchpoint it hit
named from the moment the slots change (see `resolve_pending`). Invariant: an address is in
`software` exactly when its int3 is in memory.
"""

from __future__ import annotations

import errno as errno_mod

from ptstub.events import BreakpointHit, StopEvent, WatchKind, WatchpointHit
from ptstub.linux.debugregs import DebugRegisters, Slot
from ptstub.linux.ffi import check, check_memory, ffi, lib
from ptstub.target import BreakpointKind

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

WATCH_KINDS = {BreakpointKind.WRITE_WATCH: WatchKind.WRITE, BreakpointKind.ACCESS_WATCH: WatchKind.ACCESS}


class BreakpointTable:
    """Every breakpoint of one process; each call takes the process's engine."""

    def __init__(self, software: dict[int, int] | None = None) -> None:
        self.software: dict[int, int] = software or {}  # address -> reference count
        self._debugregs = DebugRegisters()
        self._pending_hwtraps: dict[int, Slot | None] = {}  # tid -> what its unreported trap hit

    def inherited(self) -> BreakpointTable:
        """The table of a fork child: its memory is a copy holding the same int3 bytes (one reference
        each, so that removing them restores the child's own bytes, as GDB does before detaching it)."""
        return BreakpointTable(dict.fromkeys(self.software, 1))

    def insert(self, e: Any, address: int, kind: BreakpointKind, length: int) -> None:
        if kind is BreakpointKind.SOFTWARE:
            count = self.software.get(address, 0)
            if count == 0:
                check_memory(lib.pt_insert_breakpoint(e, address), address, 1, "insert a breakpoint")
            self.software[address] = count + 1
            return
        self.resolve_pending(e)
        self._debugregs.insert(address, length, kind)
        self._apply(e)

    @staticmethod
    def reinsert(e: Any, address: int) -> None:
        """Write the int3 of an inserted breakpoint again (no new reference)."""
        check_memory(lib.pt_insert_breakpoint(e, address), address, 1, "insert a breakpoint")

    def remove(self, e: Any, address: int, kind: BreakpointKind, length: int) -> None:
        if kind is BreakpointKind.SOFTWARE:
            count = self.software.get(address, 0)
            if count <= 1:
                self.software.pop(address, None)
                rc = lib.pt_remove_breakpoint(e, address)
                if rc < 0 and rc != -errno_mod.ENOENT:
                    check_memory(rc, address, 1, "remove the breakpoint")
            else:
                self.software[address] = count - 1
            return
        self.resolve_pending(e)
        if self._debugregs.remove(address, length, kind):
            self._apply(e)

    def resolve_pending(self, e: Any) -> None:
        """Name the watchpoint of each hardware trap still to be reported before the slots move.

        DR6 names a debug register; GDB re-inserts watchpoints in address order, so after an insert or
        remove the same register may hold another watchpoint (gdb.threads/watchthreads-reorder.exp).
        gdbserver likewise keeps the stopped data address from the moment of the stop."""
        for i in range(e.nthreads):
            t = e.threads[i]
            if t.ev_kind == lib.PT_EV_HWTRAP and t.tid not in self._pending_hwtraps:
                self._pending_hwtraps[t.tid] = self._debugregs.triggered(t.ev_data)

    def _apply(self, e: Any) -> None:
        regs = ffi.new("uint64_t[4]", self._debugregs.addresses())
        check(lib.pt_set_debugregs(e, regs, self._debugregs.dr7()), "set debug registers")

    def hardware_event(self, tid: int, pc: int, dr6: int) -> StopEvent:
        """The event of a hardware trap: a hardware breakpoint hit or a watchpoint hit."""
        if tid in self._pending_hwtraps:
            slot = self._pending_hwtraps.pop(tid)
        else:
            slot = self._debugregs.triggered(dr6)
        if slot is None or slot.kind is BreakpointKind.HARDWARE:
            return BreakpointHit(tid, pc, hardware=True)
        return WatchpointHit(tid, pc, slot.request[0], WATCH_KINDS[slot.kind])

    def forget(self) -> None:
        """Forget every breakpoint (after an exec the old image is gone; after a detach, the process)."""
        self.software.clear()
        self._debugregs.clear()
        self._pending_hwtraps.clear()
