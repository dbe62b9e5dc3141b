"""Registers: `g`/`G`/`p`/`P` and the register cache valid for one stop.

The raw general registers and XSAVE image of each thread GDB reads are kept until something can
change them (a write, a resume, a new stop: `invalidate`), and so is the `g` reply built from them
(docs/design-notes.md, "Speed with GDB in the loop").
"""

from __future__ import annotations

import errno as errno_mod

from ptstub import logs
from ptstub.rsp import command_values as cmd
from ptstub.rsp import replies
from ptstub.rsp.errors import ProtocolError

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from ptstub.arch.x86_64 import RegisterLayout
    from ptstub.session.core import Session

log = logs.logger("ptstub.rsp")


class RegisterCache:
    """Raw registers of the threads read during one stop, the `g` replies, and the register layout."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.regs: dict[int, tuple[bytes, bytes | None]] = {}
        self.g_replies: dict[int, bytes] = {}  # tid -> `g` reply, valid with `regs` (until a write or resume)
        self.layout: RegisterLayout | None = None

    def layout_for(self, tid: int) -> RegisterLayout:
        if self.layout is None:
            from ptstub.arch import x86_64

            xstate = self.s.process_for(tid).read_xstate(tid)
            self.layout = x86_64.layout_for(xstate, described=self.describes_registers())
        return self.layout

    def describes_registers(self) -> bool:
        """Whether GDB reads XML register descriptions: gdbserver's `use_xml`, set by `xmlRegisters=i386` in
        qSupported.  Until GDB's qSupported arrives (prepare()), assume it will."""
        return self.s.conn.xml_client is not False

    def registers(self, tid: int, with_xstate: bool = True) -> tuple[bytes, bytes]:
        cached = self.regs.get(tid)
        target = self.s.process_for(tid)
        if cached is None:
            cached = (target.read_gpr(tid), None)
        if with_xstate and cached[1] is None:
            cached = (cached[0], target.read_xstate(tid))
        self.regs[tid] = cached
        return cached[0], cached[1] if cached[1] is not None else b""

    def handle_read_registers(self, c: cmd.ReadRegisters) -> bytes:
        tid = self.s.threads.select(self.s.conn.g_thread)
        reply = self.g_replies.get(tid)
        if reply is None:
            gpr, xstate = self.registers(tid)
            # Hex with its zero runs compressed on the raw bytes, as for `m`: the generic run-length pass
            # over ~1,600 hex digits (the AVX state is mostly zeros) cost ~100 us of Python a request.
            reply = replies.registers_hex(self.layout_for(tid).encode_g(gpr, xstate))
            self.g_replies[tid] = reply
        return reply

    def handle_write_registers(self, c: cmd.WriteRegisters) -> bytes:
        tid = self.s.threads.select(self.s.conn.g_thread)
        gpr, xstate = self.registers(tid)
        layout = self.layout_for(tid)
        if len(c.data) != layout.g_size:
            raise ProtocolError(f"G: {len(c.data)} bytes for a {layout.g_size}-byte register file", errno_mod.EINVAL)
        new_gpr, new_xstate = layout.decode_g(c.data, gpr, xstate)
        self.store_registers(tid, gpr, xstate, new_gpr, new_xstate)
        return replies.ok()

    def handle_read_register(self, c: cmd.ReadRegister) -> bytes:
        tid = self.s.threads.select(self.s.conn.g_thread)
        layout = self.layout_for(tid)
        gpr, xstate = self.registers(tid)
        try:
            return layout.read_register(c.number, gpr, xstate).hex().encode()
        except (KeyError, IndexError, ValueError):
            return replies.error(errno_mod.EINVAL)

    def handle_write_register(self, c: cmd.WriteRegister) -> bytes:
        tid = self.s.threads.select(self.s.conn.g_thread)
        layout = self.layout_for(tid)
        gpr, xstate = self.registers(tid)
        try:
            new_gpr, new_xstate = layout.write_register(c.number, c.value, gpr, xstate)
        except (KeyError, IndexError, ValueError):
            return replies.error(errno_mod.EINVAL)
        self.store_registers(tid, gpr, xstate, new_gpr, new_xstate)
        return replies.ok()

    def store_registers(self, tid: int, gpr: bytes, xstate: bytes, new_gpr: bytes, new_xstate: bytes) -> None:
        target = self.s.process_for(tid)
        if new_gpr != gpr:
            target.write_gpr(tid, new_gpr)
        if new_xstate != xstate:
            target.write_xstate(tid, new_xstate)
        self.regs[tid] = (new_gpr, new_xstate)
        self.g_replies.pop(tid, None)

    def set_pc(self, tid: int, pc: int) -> None:
        from ptstub.arch import x86_64

        gpr, _ = self.registers(tid, with_xstate=False)
        self.s.process_for(tid).write_gpr(tid, x86_64.with_pc(gpr, pc))
        self.regs.pop(tid, None)
        self.g_replies.pop(tid, None)
