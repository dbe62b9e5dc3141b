"""x86-64 Linux registers: the `g` packet layout and target description gdbserver 13.1 uses.

Inputs are the raw regsets the backend reads:

* `gpr`: `struct user_regs_struct` from PTRACE_GETREGS (`GPR_FIELDS`, 27 little-endian u64, 216 bytes);
* `xstate`: the NT_X86_XSTATE regset from PTRACE_GETREGSET, trimmed to the length the kernel returned:
  the 512-byte FXSAVE area, the 64-byte XSAVE header at 512 (XSTATE_BV first), then the extended components
  in the standard (non-compacted) format.  A 512-byte FXSAVE image (PTRACE_GETFPREGS) also works.

XCR0, the XSAVE components and their offsets are `ptstub.arch.xsave`'s.

Register numbers, names, types and groups equal gdbserver 13.1's, and the served `target.xml` is
byte-for-byte the document gdbserver 13.1 sends.  The feature files in `xml/` are the `<feature>` blocks of
that document without `regnum` attributes; numbers are assigned in order when the document is assembled,
and the register table is parsed from the same text, so the `g` layout can never disagree with the
description.  A client that sends no `xmlRegisters=i386` gets gdbserver's pre-XML register file instead
(x87 and SSE, `layout_for(..., described=False)`).

The x87 conversions follow gdbserver's `i387_xsave_to_cache`/`i387_cache_to_xsave`: 16-bit FXSAVE fields are
zero-extended to 32 bits, `fop` keeps 11 bits, `ftag` is the full 2-bit-per-register tag word rebuilt from the
abridged FXSAVE tag byte and the register contents, and components whose XSTATE_BV bit is clear read as their
init values (fctrl 0x37f, ftag 0xffff, mxcsr 0x1f80 when SSE and AVX are both in init state, zero elsewhere).
Writes set the XSTATE_BV bit of every component they change.  PKRU is the exception: Linux (5.14+) writes the
thread's real PKRU into the ptrace image whatever XSTATE_BV says, and loads PKRU = 0 on PTRACE_SETREGSET when
the bit is clear, so ptstub reads PKRU as stored and sets its bit on every write while the value is non-zero
(the default 0x55555554 survives a register write; gdbserver would reset it to 0).
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Callable, Mapping
from enum import StrEnum
from operator import itemgetter

from ptstub.arch.xsave import (
    COMPONENT_BY_BIT,
    MXCSR_INIT,
    MXCSR_OFFSET,
    NORMALIZED,
    ST0_OFFSET,
    X87_CONTROL_INIT,
    XMM0_OFFSET,
    XSAVE_HEADER_END,
    XSTATE_AVX,
    XSTATE_AVX512,
    XSTATE_BNDCSR,
    XSTATE_BNDREGS,
    XSTATE_BV_OFFSET,
    XSTATE_HI16_ZMM,
    XSTATE_MPX,
    XSTATE_OPMASK,
    XSTATE_PKRU,
    XSTATE_SSE,
    XSTATE_SUPPORTED,
    XSTATE_X87,
    XSTATE_ZMM_H,
    abridged_tag_byte,
    component_offsets,
    full_tag_word,
    xcr0_from_xstate,
)
from ptstub.values import frozen

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

# ------------------------------------------------------------------------------ general registers

GPR_FIELDS: tuple[str, ...] = (
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi",
    "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
)  # fmt: skip
GPR_SIZE = 8 * len(GPR_FIELDS)  # 216
_GPR = struct.Struct(f"<{len(GPR_FIELDS)}Q")
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_GPR_OFFSET: dict[str, int] = {name: 8 * i for i, name in enumerate(GPR_FIELDS)}
_MASK64 = (1 << 64) - 1

PC_REGNUM = 16
SP_REGNUM = 7
FP_REGNUM = 6
ORIG_RAX_REGNUM = 57
BREAKPOINT = b"\xcc"
DECR_PC_AFTER_BREAK = 1
EXPEDITE_REGNUMS: tuple[int, ...] = (FP_REGNUM, SP_REGNUM, PC_REGNUM)
_FTAG_REGNUM = 34  # core feature numbering, identical in every layout
_FOP_REGNUM = 39
_RIP_OFFSET = _GPR_OFFSET["rip"]


def unpack_gpr(data: bytes) -> dict[str, int]:
    """The general registers in `data` (a user_regs_struct) by kernel field name."""
    return dict(zip(GPR_FIELDS, _GPR.unpack_from(data), strict=True))


def pack_gpr(values: Mapping[str, int], base: bytes) -> bytes:
    """`base` (a user_regs_struct) with the fields named in `values` replaced (wrapped to 64 bits)."""
    if len(base) < GPR_SIZE:
        raise ValueError(f"user_regs_struct needs {GPR_SIZE} bytes, got {len(base)}")
    buf = bytearray(base[:GPR_SIZE])
    for name, value in values.items():
        offset = _GPR_OFFSET.get(name)
        if offset is None:
            raise KeyError(f"no general register {name!r}")
        _U64.pack_into(buf, offset, value & _MASK64)
    return bytes(buf)


def pc_from_gpr(gpr: bytes) -> int:
    """The rip in a user_regs_struct."""
    return int(_U64.unpack_from(gpr, _RIP_OFFSET)[0])


def with_pc(gpr: bytes, pc: int) -> bytes:
    """A copy of the user_regs_struct `gpr` with rip set to `pc`."""
    return gpr[:_RIP_OFFSET] + _U64.pack(pc & _MASK64) + gpr[_RIP_OFFSET + 8 :]


# ------------------------------------------------------------------------------ register table


class Source(StrEnum):
    """Where a register's bytes live: the user_regs_struct, or the FXSAVE/XSAVE parts of the xstate."""

    GPR = "gpr"
    FXSAVE = "fxsave"
    XSAVE = "xsave"


class Kind(StrEnum):
    """How a register's value relates to its stored bytes."""

    RAW = "raw"  # the first bitsize/8 bytes at offset, little-endian (segments: low half of the u64)
    ZEXT16 = "zext16"  # a u16 field shown as 32 bits
    FOP = "fop"  # the 11-bit opcode in a u16 whose top bits are preserved on write
    FTAG = "ftag"  # the abridged tag byte, shown as the full tag word


@frozen
class RegisterDef:
    """One register as served to GDB and where it is stored.

    `offset` is into `gpr` for Source.GPR and into `xstate` otherwise; `size` is the stored byte count;
    `component` is the XSTATE bit of the extended component holding an XSAVE register (0 for the others).
    """

    name: str
    regnum: int
    bitsize: int
    type: str
    group: str | None
    feature: str
    source: Source
    offset: int
    size: int
    kind: Kind
    g_offset: int
    component: int = 0

    @property
    def byte_size(self) -> int:
        """Bytes of this register in the `g`/`p` packets."""
        return self.bitsize // 8


_FX_FIELDS: dict[str, tuple[int, int, Kind]] = {
    "fctrl": (0, 2, Kind.ZEXT16),
    "fstat": (2, 2, Kind.ZEXT16),
    "ftag": (4, 1, Kind.FTAG),
    "fop": (6, 2, Kind.FOP),
    "fioff": (8, 4, Kind.RAW),
    "fiseg": (12, 2, Kind.ZEXT16),
    "fooff": (16, 4, Kind.RAW),
    "foseg": (20, 2, Kind.ZEXT16),
    "mxcsr": (MXCSR_OFFSET, 4, Kind.RAW),
}
_FIXED_SLOTS: dict[str, tuple[int, int]] = {"bndcfgu": (XSTATE_BNDCSR, 0), "bndstatus": (XSTATE_BNDCSR, 8),
                                             "pkru": (XSTATE_PKRU, 0)}  # fmt: skip


def _bank_and_index(name: str) -> tuple[str, int] | None:
    """A banked register's bank and index: xmm15 -> ("xmm", 15), ymm3h -> ("ymmh", 3), bnd0raw -> ("bndraw", 0)."""
    stem = name.rstrip("abcdefghijklmnopqrstuvwxyz")
    suffix = name[len(stem) :]
    bank = stem.rstrip("0123456789")
    digits = stem[len(bank) :]
    if not digits or not bank.isalpha() or not bank.islower() or suffix not in ("", "h", "raw"):
        return None
    return bank + suffix, int(digits)


def _bank_slot(bank: str, index: int) -> tuple[int, int] | None:
    """(component bit, offset in it) of register `index` of a bank; bit 0 is the FXSAVE area.

    Hi16_ZMM holds zmm16-31 whole (64 bytes each): xmm16-31 are their low 16 bytes, ymm16h-31h the next 16,
    zmm16h-31h the upper 32.  ZMM_Hi256 holds the upper 32 bytes of zmm0-15 (Intel SDM vol. 1, 13.5).
    """
    high = 64 * (index - 16)
    slots = {
        "st": (0, ST0_OFFSET + 16 * index) if index < 8 else None,
        "xmm": (0, XMM0_OFFSET + 16 * index) if index < 16 else (XSTATE_HI16_ZMM, high),
        "ymmh": (XSTATE_AVX, 16 * index) if index < 16 else (XSTATE_HI16_ZMM, high + 16),
        "zmmh": (XSTATE_ZMM_H, 32 * index) if index < 16 else (XSTATE_HI16_ZMM, high + 32),
        "k": (XSTATE_OPMASK, 8 * index),
        "bndraw": (XSTATE_BNDREGS, 16 * index),
    }
    return slots.get(bank)


def _storage(name: str, bitsize: int, offsets: Mapping[int, int]) -> tuple[Source, int, int, Kind, int]:
    """Source, offset, stored size, kind and component bit of the register `name`, given component offsets."""
    if name in _GPR_OFFSET:
        return Source.GPR, _GPR_OFFSET[name], bitsize // 8, Kind.RAW, 0
    if name in _FX_FIELDS:
        offset, size, kind = _FX_FIELDS[name]
        return Source.FXSAVE, offset, size, kind, 0
    slot = _FIXED_SLOTS.get(name)
    banked = _bank_and_index(name)
    if slot is None and banked is not None:
        slot = _bank_slot(*banked)
    if slot is None or (slot[0] and slot[0] not in offsets):
        raise ValueError(f"no storage known for register {name!r}")
    bit, within = slot
    if not bit:
        return Source.FXSAVE, within, bitsize // 8, Kind.RAW, 0
    return Source.XSAVE, offsets[bit] + within, bitsize // 8, Kind.RAW, bit


# ------------------------------------------------------------------------------ target description


@frozen
class _Feature:
    name: str
    filename: str
    requires: int  # XCR0 bits of which one must be set, 0 for always


_FEATURES: tuple[_Feature, ...] = (
    _Feature("org.gnu.gdb.i386.core", "64bit-core.xml", 0),
    _Feature("org.gnu.gdb.i386.sse", "64bit-sse.xml", 0),
    _Feature("org.gnu.gdb.i386.linux", "64bit-linux.xml", 0),
    _Feature("org.gnu.gdb.i386.segments", "64bit-segments.xml", 0),
    _Feature("org.gnu.gdb.i386.avx", "64bit-avx.xml", XSTATE_AVX),
    _Feature("org.gnu.gdb.i386.mpx", "64bit-mpx.xml", XSTATE_MPX),
    _Feature("org.gnu.gdb.i386.avx512", "64bit-avx512.xml", XSTATE_AVX512),
    _Feature("org.gnu.gdb.i386.pkeys", "64bit-pkeys.xml", XSTATE_PKRU),
)  # gdbserver 13.1's order (amd64_create_target_description)
_XML_HEAD = (
    '<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n<target>\n'
    "  <architecture>i386:x86-64</architecture>\n  <osabi>GNU/Linux</osabi>\n"
)
_XML_TAIL = "</target>\n"
# What gdbserver serves a client that did not ask for XML registers (its `xmltarget_amd64_linux_no_xml`):
# the architecture alone, for the pre-XML register file of x87 and SSE.
_NO_XML_TARGET = b"<target><architecture>i386:x86-64</architecture><osabi>GNU/Linux</osabi></target>"
_XML_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "xml")


@functools.cache
def feature_text(filename: str) -> str:
    """The text of one feature file in `ptstub/arch/xml` (a `<feature>` element without regnums)."""
    # A plain path beside this module (ptstub is never imported from a zip: it carries a C extension);
    # importlib.resources pulled in pathlib, tempfile, shutil and more on the way to GDB's first reply.
    with open(os.path.join(_XML_DIR, filename), encoding="utf-8") as f:
        return f.read()


def _number_feature(text: str, first: int) -> tuple[str, list[dict[str, str]]]:
    """`text` with `regnum` attributes from `first` on, and its `<reg>` elements' attributes in order.

    The feature files are this package's own, one `<reg name=".." bitsize=".." type=".." .../>` per line
    with plain attribute values, so string splitting reads them (xml.etree cost ~4 ms of imports and
    parsing at start-up, and `re` ~3 ms); `regnum` goes after `type`, where gdbserver's documents have it."""
    lines = text.splitlines(keepends=True)
    regs: list[dict[str, str]] = []
    for i, line in enumerate(lines):
        body = line.strip()
        if not body.startswith("<reg "):
            continue
        if not body.endswith('"/>'):
            raise RuntimeError(f"feature file line is not one <reg .../> element: {body!r}")
        attributes = dict(_attribute(part) for part in body[5:-2].split('" '))
        if list(attributes)[:3] != ["name", "bitsize", "type"]:
            raise RuntimeError(f"feature file <reg> does not start with name, bitsize and type: {body!r}")
        after_type = line.index('"', line.index(' type="') + 7) + 1
        lines[i] = f'{line[:after_type]} regnum="{first + len(regs)}"{line[after_type:]}'
        regs.append(attributes)
    return "".join(lines), regs


def _attribute(part: str) -> tuple[str, str]:
    """`name="value` (split at `" `, closing quote gone) as (name, value)."""
    name, _, value = part.partition('="')
    return name, value.removesuffix('"')


def _describe(xcr0: int, offsets: Mapping[int, int]) -> tuple[bytes, tuple[RegisterDef, ...]]:
    """The target.xml document and the register table for `xcr0`."""
    parts = [_XML_HEAD]
    table: list[RegisterDef] = []
    g_offset = 0
    for feature in _FEATURES:
        if feature.requires and not xcr0 & feature.requires:
            continue
        text, regs = _number_feature(feature_text(feature.filename), len(table))
        parts.append(text)
        for reg in regs:
            name, bitsize = reg["name"], int(reg["bitsize"])
            source, offset, size, kind, component = _storage(name, bitsize, offsets)
            table.append(
                RegisterDef(
                    name=name,
                    regnum=len(table),
                    bitsize=bitsize,
                    type=reg["type"],
                    group=reg.get("group"),
                    feature=feature.name,
                    source=source,
                    offset=offset,
                    size=size,
                    kind=kind,
                    g_offset=g_offset,
                    component=component,
                )
            )
            g_offset += bitsize // 8
    parts.append(_XML_TAIL)
    return "".join(parts).encode(), tuple(table)


# ------------------------------------------------------------------------------ the layout


def _source_format(reg: RegisterDef) -> str:
    return {Kind.RAW: f"{reg.size}s", Kind.ZEXT16: "H", Kind.FOP: "H", Kind.FTAG: "B"}[reg.kind]


def _g_format(reg: RegisterDef) -> str:
    return f"{reg.byte_size}s" if reg.kind is Kind.RAW else "I"


if TYPE_CHECKING:
    _Reorder = Callable[[tuple[Any, ...]], tuple[Any, ...]]


def _gather_struct(registers: tuple[RegisterDef, ...]) -> tuple[struct.Struct, _Reorder]:
    """A struct that reads every register from `gpr + xstate` in storage order, and the map to g order."""
    placed = sorted(registers, key=lambda r: (r.source is not Source.GPR, r.offset))
    fmt, position = ["<"], 0
    for reg in placed:
        start = reg.offset + (0 if reg.source is Source.GPR else GPR_SIZE)
        if start < position:
            raise RuntimeError(f"register {reg.name} overlaps its neighbour")
        fmt.append(f"{start - position}x" if start > position else "")
        fmt.append(_source_format(reg))
        position = start + reg.size
    index_of = {reg.regnum: i for i, reg in enumerate(placed)}
    return struct.Struct("".join(fmt)), itemgetter(*(index_of[r.regnum] for r in registers))


@frozen
class RegisterLayout:
    """The registers, `g` layout and target description for one XCR0 (see the module docstring).

    Register writes return new `(gpr, xstate)` bytes; the half that was not touched is returned as the very
    object that was passed in.
    """

    xcr0: int
    xsave_header: bool
    described: bool  # False: the pre-XML register file for a client without xmlRegisters=i386
    registers: tuple[RegisterDef, ...]
    target_xml: bytes
    g_size: int
    _gather: struct.Struct
    _to_g_order: _Reorder
    _g: struct.Struct
    _spans: tuple[tuple[int, int, int], ...]
    _pkru_at: int  # 0 where PKRU is not described
    _by_name: Mapping[str, RegisterDef]
    expedite_regnums: tuple[int, ...] = EXPEDITE_REGNUMS

    # One layout per XCR0 (`_build` is cached): identity is equality, and the tables stay out of the repr.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"RegisterLayout(xcr0={self.xcr0:#x}, described={self.described}, registers={len(self.registers)})"

    @property
    def documents(self) -> Mapping[str, bytes]:
        """The `qXfer:features:read` annexes served: only `target.xml` (features inline)."""
        return {"target.xml": self.target_xml}

    def regnum(self, name: str) -> int:
        """The number of the register called `name`."""
        return self._by_name[name].regnum

    def register(self, regnum: int) -> RegisterDef:
        """The register numbered `regnum`; KeyError if there is none."""
        if not 0 <= regnum < len(self.registers):
            raise KeyError(f"no register {regnum}")
        return self.registers[regnum]

    # -- reading ---------------------------------------------------------------------------------
    def encode_g(self, gpr: bytes, xstate: bytes) -> bytes:
        """The raw `g` packet contents (g_size bytes, target order) for these regsets."""
        xs = self._normalized(xstate)
        values = list(self._to_g_order(self._gather.unpack_from(self._joined(gpr, xs))))
        values[_FTAG_REGNUM] = full_tag_word(xs)
        values[_FOP_REGNUM] &= 0x7FF
        return self._g.pack(*values)

    def read_register(self, regnum: int, gpr: bytes, xstate: bytes) -> bytes:
        """The raw bytes of one register (`p` packet, stop-reply expedition); gpr ones never touch xstate."""
        reg = self.register(regnum)
        if reg.source is Source.GPR:
            return gpr[reg.offset : reg.offset + reg.size]
        xs = self._normalized(xstate)
        if len(xs) < reg.offset + reg.size:
            raise ValueError(f"xstate too short for {reg.name}: {len(xs)} bytes")
        if reg.kind is Kind.RAW:
            return xs[reg.offset : reg.offset + reg.size]
        if reg.kind is Kind.ZEXT16:
            return xs[reg.offset : reg.offset + 2] + b"\0\0"
        if reg.kind is Kind.FOP:
            return _U32.pack(_U16.unpack_from(xs, reg.offset)[0] & 0x7FF)
        return _U32.pack(full_tag_word(xs))

    def expedite_values(self, gpr: bytes) -> tuple[tuple[int, bytes], ...]:
        """`(regnum, raw bytes)` of rbp, rsp and rip for a stop reply."""
        return tuple((n, self.read_register(n, gpr, b"")) for n in self.expedite_regnums)

    # -- writing ---------------------------------------------------------------------------------
    def write_register(self, regnum: int, value: bytes, gpr: bytes, xstate: bytes) -> tuple[bytes, bytes]:
        """New `(gpr, xstate)` with register `regnum` set to the raw `value` (`P` packet)."""
        reg = self.register(regnum)
        if len(value) != reg.byte_size:
            raise ValueError(f"{reg.name} takes {reg.byte_size} bytes, got {len(value)}")
        if reg.source is Source.GPR:
            buf = bytearray(self._checked_gpr(gpr))
            buf[reg.offset : reg.offset + reg.size] = value[: reg.size]
            return bytes(buf), xstate
        before = self._normalized(xstate)
        after = bytearray(before)
        _store(reg, value, after)
        return gpr, self._committed(before, after)

    def decode_g(self, raw: bytes, gpr: bytes, xstate: bytes) -> tuple[bytes, bytes]:
        """New `(gpr, xstate)` holding every register from the raw `G` packet contents."""
        if len(raw) != self.g_size:
            raise ValueError(f"G packet needs {self.g_size} bytes, got {len(raw)}")
        new_gpr = bytearray(self._checked_gpr(gpr))
        before = self._normalized(xstate)
        after = bytearray(before)
        for reg in self.registers:
            value = raw[reg.g_offset : reg.g_offset + reg.byte_size]
            if reg.source is Source.GPR:
                new_gpr[reg.offset : reg.offset + reg.size] = value[: reg.size]
            else:
                _store(reg, value, after)
        return bytes(new_gpr), self._committed(before, after)

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _checked_gpr(gpr: bytes) -> bytes:
        if len(gpr) != GPR_SIZE:
            raise ValueError(f"user_regs_struct needs {GPR_SIZE} bytes, got {len(gpr)}")
        return gpr

    def _joined(self, gpr: bytes, xs: bytes) -> bytes:
        if len(xs) + GPR_SIZE < self._gather.size:
            raise ValueError(f"xstate too short for this layout: {len(xs)} bytes")
        return self._checked_gpr(gpr) + xs

    def _normalized(self, xstate: bytes) -> bytes:
        """`xstate` with x87/SSE/AVX showing their init values where their XSTATE_BV bit is clear."""
        if not self.xsave_header:
            return xstate
        if len(xstate) < XSAVE_HEADER_END:
            raise ValueError(f"xstate too short for an XSAVE header: {len(xstate)} bytes")
        clear = ~_U64.unpack_from(xstate, XSTATE_BV_OFFSET)[0] & self.xcr0 & NORMALIZED
        if not clear:
            return xstate
        buf = bytearray(xstate)
        for bit, start, end in self._spans:
            if clear & bit:
                buf[start:end] = bytes(end - start)
        if clear & XSTATE_X87:
            buf[: len(X87_CONTROL_INIT)] = X87_CONTROL_INIT
        if clear & (XSTATE_SSE | XSTATE_AVX) == XSTATE_SSE | XSTATE_AVX:
            _U32.pack_into(buf, MXCSR_OFFSET, MXCSR_INIT)
        return bytes(buf)

    def _committed(self, before: bytes, after: bytearray) -> bytes:
        """`after` with XSTATE_BV marking every component that differs from `before`."""
        if not self.xsave_header:
            return bytes(after)
        bv = old_bv = _U64.unpack_from(after, XSTATE_BV_OFFSET)[0]
        for bit, start, end in self._spans:
            if before[start:end] != after[start:end]:
                bv |= bit
        mxcsr = slice(MXCSR_OFFSET, MXCSR_OFFSET + 4)
        if before[mxcsr] != after[mxcsr] and not bv & (XSTATE_SSE | XSTATE_AVX):
            bv |= XSTATE_SSE
        if self._pkru_at and any(after[self._pkru_at : self._pkru_at + 4]):
            bv |= XSTATE_PKRU
        if bv != old_bv:
            _U64.pack_into(after, XSTATE_BV_OFFSET, bv)
        return bytes(after)


def _store(reg: RegisterDef, value: bytes, xs: bytearray) -> None:
    """Write one xstate-backed register's raw g-packet `value` into `xs`."""
    offset = reg.offset
    if reg.kind is Kind.RAW:
        xs[offset : offset + reg.size] = value[: reg.size]
    elif reg.kind is Kind.ZEXT16:
        xs[offset : offset + 2] = value[:2]
    elif reg.kind is Kind.FOP:
        old = _U16.unpack_from(xs, offset)[0]
        _U16.pack_into(xs, offset, (_U32.unpack(value)[0] & 0x7FF) | (old & 0xF800))
    else:
        xs[offset] = abridged_tag_byte(_U32.unpack(value)[0])


def _component_spans(offsets: Mapping[int, int]) -> tuple[tuple[int, int, int], ...]:
    """(XSTATE_BV bit, start, end) of the xstate bytes each described component owns (mxcsr excluded)."""
    spans = [
        (XSTATE_X87, 0, MXCSR_OFFSET),
        (XSTATE_X87, ST0_OFFSET, XMM0_OFFSET),
        (XSTATE_SSE, XMM0_OFFSET, XMM0_OFFSET + 256),
    ]
    for bit, offset in sorted(offsets.items()):
        used = 4 if bit == XSTATE_PKRU else COMPONENT_BY_BIT[bit].size  # PKRU's last 4 bytes are padding
        spans.append((bit, offset, offset + used))
    return tuple(spans)


@functools.cache
def _build(xcr0: int, xsave_header: bool, offset_items: tuple[tuple[int, int], ...], described: bool) -> RegisterLayout:
    offsets = dict(offset_items)
    target_xml, registers = _describe(xcr0, offsets)
    if not described:
        target_xml = _NO_XML_TARGET
    if registers[_FTAG_REGNUM].name != "ftag" or registers[_FOP_REGNUM].name != "fop":
        raise RuntimeError("core feature file does not number ftag 34 and fop 39")
    gather, to_g_order = _gather_struct(registers)
    g = struct.Struct("<" + "".join(_g_format(r) for r in registers))
    return RegisterLayout(
        xcr0=xcr0,
        xsave_header=xsave_header,
        described=described,
        registers=registers,
        target_xml=target_xml,
        g_size=g.size,
        _gather=gather,
        _to_g_order=to_g_order,
        _g=g,
        _spans=_component_spans(offsets) if xsave_header else (),
        _pkru_at=offsets.get(XSTATE_PKRU, 0),
        _by_name={r.name: r for r in registers},
    )


def layout_for_xcr0(
    xcr0: int, *, xstate_len: int | None = None, xsave_header: bool = True, described: bool = True
) -> RegisterLayout:
    """The layout for an XCR0 value; `xstate_len` (the regset size) helps place components when CPUID cannot.

    `described=False` gives what gdbserver serves a client that sent no `xmlRegisters=i386` in qSupported
    (GDB with `set remote target-features-packet off`, gdb.arch/i386-avx.exp): x87 and SSE only, the 560-byte
    `g` GDB's built-in amd64 Linux description expects, and a target.xml that names the architecture alone.
    """
    length = xstate_len if xstate_len is not None else 1 << 16  # unknown: large enough for every component
    usable = XSTATE_SUPPORTED if described else XSTATE_X87 | XSTATE_SSE
    offsets = component_offsets(xcr0 & usable, length) if xsave_header else {}
    xcr0 = XSTATE_X87 | XSTATE_SSE | sum(offsets)
    return _build(xcr0, xsave_header, tuple(sorted(offsets.items())), described)


def layout_for(xstate: bytes, *, described: bool = True) -> RegisterLayout:
    """The layout matching an NT_X86_XSTATE (or bare FXSAVE) image of the process; cached per XCR0."""
    return layout_for_xcr0(
        xcr0_from_xstate(xstate),
        xstate_len=len(xstate),
        xsave_header=len(xstate) >= XSAVE_HEADER_END,
        described=described,
    )
