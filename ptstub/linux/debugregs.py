"""x86 debug registers (DR0-DR3, DR7) as hardware breakpoints and watchpoints.

Intel SDM vol. 3 §17.2: DR7 holds per-slot enable bits (L0..L3 at bits 0,2,4,6), the condition
(R/W: 00 execute, 01 write, 11 read/write) at bits 16+4i and the length (LEN: 00=1, 01=2, 11=4, 10=8
bytes) at bits 18+4i; a watched range must be aligned to its length. x86 has no read-only condition,
so GDB's `rwatch` (Z3) is answered as unsupported, as gdbserver does. DR6 bits 0-3 say which slot hit.
Unaligned or odd-sized watches are split over several slots, like gdbserver's x86-dregs.
"""

from __future__ import annotations

from ptstub.errors import TargetError
from ptstub.target import BreakpointKind
from ptstub.values import frozen

RW_BITS = {BreakpointKind.HARDWARE: 0b00, BreakpointKind.WRITE_WATCH: 0b01, BreakpointKind.ACCESS_WATCH: 0b11}
LEN_BITS = {1: 0b00, 2: 0b01, 4: 0b11, 8: 0b10}
ENOSPC = 28
EINVAL = 22


@frozen
class Slot:
    """One debug register in use: the piece it covers and the request it belongs to."""

    address: int
    length: int
    kind: BreakpointKind
    request: tuple[int, int, BreakpointKind]  # (address, length, kind) as GDB asked


def split_aligned(address: int, length: int) -> list[tuple[int, int]]:
    """Cover [address, address+length) with naturally aligned pieces of 1, 2, 4 or 8 bytes."""
    pieces = []
    end = address + length
    while address < end:
        size = 8
        while size > 1 and (address % size or address + size > end):
            size //= 2
        pieces.append((address, size))
        address += size
    return pieces


class DebugRegisters:
    """Slot allocation and the DR7 value; the engine writes DR0-3/DR7 into every thread."""

    def __init__(self) -> None:
        self.slots: list[Slot | None] = [None, None, None, None]

    def insert(self, address: int, length: int, kind: BreakpointKind) -> None:
        if kind not in RW_BITS:
            raise TargetError("read watchpoints are not supported on x86", EINVAL)
        request = (address, length, kind)
        pieces = [(address, 1)] if kind is BreakpointKind.HARDWARE else split_aligned(address, length)
        free = [i for i, slot in enumerate(self.slots) if slot is None]
        if len(pieces) > len(free):
            raise TargetError("no free hardware debug register", ENOSPC)
        for (piece_address, piece_length), index in zip(pieces, free, strict=False):
            self.slots[index] = Slot(piece_address, piece_length, kind, request)

    def remove(self, address: int, length: int, kind: BreakpointKind) -> bool:
        request = (address, length, kind)
        found = False
        for i, slot in enumerate(self.slots):
            if slot is not None and slot.request == request:
                self.slots[i] = None
                found = True
        return found

    def clear(self) -> None:
        self.slots = [None, None, None, None]

    def addresses(self) -> list[int]:
        return [slot.address if slot else 0 for slot in self.slots]

    def dr7(self) -> int:
        value = 0
        for i, slot in enumerate(self.slots):
            if slot is None:
                continue
            value |= 1 << (2 * i)
            value |= RW_BITS[slot.kind] << (16 + 4 * i)
            value |= LEN_BITS[slot.length] << (18 + 4 * i)
        return value

    def triggered(self, dr6: int) -> Slot | None:
        """The slot DR6 names as the cause of a TRAP_HWBKPT stop, if any."""
        for i, slot in enumerate(self.slots):
            if slot is not None and dr6 & (1 << i):
                return slot
        return None
