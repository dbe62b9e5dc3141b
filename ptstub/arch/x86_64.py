"""x86-64 Linux registers: the `g` packet layout and target description gdbserver 13.1 uses.

Inputs are the raw regsets the backend reads:

* `gpr`: `struct user_regs_struct` from PTRACE_GETREGS (`GPR_FIELDS`, 27 little-endian u64, 216 bytes);
* `xstate`: the NT_X86_XSTATE regset from PTRACE_GETREGSET, trimmed to the length the kernel returned:
  the 512-byte FXSAVE area, the 64-byte XSAVE header at 512 (XSTATE_BV first), then the extended components
  in the standard (non-compacted) format.  A 512-byte FXSAVE image (PTRACE_GETFPREGS) also works.

XCR0: for ptrace the kernel stores the user xfeatures mask as a u64 at offset 464 (the first word of the FXSAVE
`sw_reserved` bytes; see `USER_XSTATE_XCR0_WORD` in the kernel's asm/user.h).  That is also where gdbserver reads
it.  If the word there carries the signal-frame magic `FP_XSTATE_MAGIC1` instead, the mask is taken from the
`xfeatures` word at 472 (`struct _fpx_sw_bytes`).

Components: gdbserver 13.1 describes x87, SSE, AVX, MPX (BNDREGS, BNDCSR), AVX-512 (opmask, ZMM_Hi256,
Hi16_ZMM) and PKRU, each where XCR0 has it, in features `core`, `sse`, `linux`, `segments`, `avx`, `mpx`,
`avx512`, `pkeys` in that order; so does ptstub.  AMX, CET and later components are not described.
Their offsets in the standard format are the CPU's: CPUID leaf 0xD sub-leaf n gives component n's (EBX),
which Python cannot ask directly, so `cpuid` runs a 27-byte stub from an anonymous executable page through
ctypes.  Intel and AMD differ: AMD's layout has no MPX area, so AVX-512 starts at 832 (Intel: 1088) and PKRU
sits at 2432 (Intel: 2688).  Where CPUID cannot run, the whole layout is guessed from the regset's length as
GDB 14's `i387_guess_xsave_layout` does: Intel's where the image holds it all, else AMD's (PKRU may also
sit at the image's end).  gdbserver 13.1 always reads Intel's offsets, so on AMD CPUs it reports pkru and the AVX-512
registers wrongly; ptstub reports the real values.

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
import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from enum import StrEnum
from operator import itemgetter

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


# ------------------------------------------------------------------------------ XSAVE facts

XSTATE_X87 = 0x1
XSTATE_SSE = 0x2
XSTATE_AVX = 0x4
XSTATE_BNDREGS = 0x8
XSTATE_BNDCSR = 0x10
XSTATE_OPMASK = 0x20
XSTATE_ZMM_H = 0x40
XSTATE_HI16_ZMM = 0x80
XSTATE_PKRU = 0x200
XSTATE_MPX = XSTATE_BNDREGS | XSTATE_BNDCSR
XSTATE_AVX512 = XSTATE_OPMASK | XSTATE_ZMM_H | XSTATE_HI16_ZMM
# What gdbserver 13.1 describes on x86-64 Linux (its X86_XSTATE_ALL_MASK); AMX, CET and the rest are ignored.
XSTATE_SUPPORTED = XSTATE_X87 | XSTATE_SSE | XSTATE_AVX | XSTATE_MPX | XSTATE_AVX512 | XSTATE_PKRU
# Components read as their init values when their XSTATE_BV bit is clear (all but PKRU: module docstring).
_NORMALIZED = XSTATE_X87 | XSTATE_SSE | XSTATE_AVX | XSTATE_MPX | XSTATE_AVX512

FXSAVE_SIZE = 512
XCR0_OFFSET = 464  # first u64 of the FXSAVE sw_reserved bytes, as Linux fills it for ptrace
_SW_XFEATURES_OFFSET = 472  # struct _fpx_sw_bytes.xfeatures (signal frames)
_FP_XSTATE_MAGIC1 = 0x46505853
XSTATE_BV_OFFSET = 512
XSAVE_HEADER_END = 576


@frozen
class XsaveComponent:
    """One extended XSAVE state component: its XCR0 bit, size and offsets in the standard format."""

    bit: int
    size: int
    intel_offset: int  # Intel's layout (every Intel CPU so far)
    amd_offset: int | None  # AMD Zen's layout, which has no MPX area; None where AMD has no such component


XSAVE_COMPONENTS: tuple[XsaveComponent, ...] = (
    XsaveComponent(XSTATE_AVX, 256, 576, 576),
    XsaveComponent(XSTATE_BNDREGS, 64, 960, None),
    XsaveComponent(XSTATE_BNDCSR, 64, 1024, None),
    XsaveComponent(XSTATE_OPMASK, 64, 1088, 832),
    XsaveComponent(XSTATE_ZMM_H, 512, 1152, 896),
    XsaveComponent(XSTATE_HI16_ZMM, 1024, 1664, 1408),
    XsaveComponent(XSTATE_PKRU, 8, 2688, 2432),
)
_COMPONENT_BY_BIT = {c.bit: c for c in XSAVE_COMPONENTS}

_ST0_OFFSET = 32
_XMM0_OFFSET = 160
_MXCSR_OFFSET = 24
_FCTRL_INIT = 0x037F
_MXCSR_INIT = 0x1F80
_X87_CONTROL_INIT = _U16.pack(_FCTRL_INIT) + bytes(22)  # fctrl..foseg, bytes 0-23


def xcr0_from_xstate(xstate: bytes) -> int:
    """The XSAVE features enabled for the process (XCR0), from an NT_X86_XSTATE image.

    A bare FXSAVE image (shorter than the XSAVE header) means x87 and SSE only.
    """
    if len(xstate) < XSAVE_HEADER_END:
        return XSTATE_X87 | XSTATE_SSE
    xcr0 = _U64.unpack_from(xstate, XCR0_OFFSET)[0]
    if xcr0 & 0xFFFFFFFF == _FP_XSTATE_MAGIC1:
        xcr0 = _U64.unpack_from(xstate, _SW_XFEATURES_OFFSET)[0]
    return int(xcr0) | XSTATE_X87 | XSTATE_SSE


def xcr0_from_cpuinfo(text: str | None = None) -> int:
    """The XCR0 features ptstub describes, as implied by the `flags` line of /proc/cpuinfo (or `text`).

    AVX needs `xsave` and `avx`, MPX `mpx`, AVX-512 `avx512f`, PKRU `ospke` (the kernel enabled protection
    keys); each needs `xsave`.  Linux sets every one of these XCR0 bits that the CPU has (its xstate features).
    """
    if text is None:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            text = f.read()
    match = re.search(r"^flags\s*:(.*)$", text, re.MULTILINE)
    flags = set(match.group(1).split()) if match else set()
    xcr0 = XSTATE_X87 | XSTATE_SSE
    if "xsave" not in flags:
        return xcr0
    for flag, bits in (("avx", XSTATE_AVX), ("mpx", XSTATE_MPX), ("avx512f", XSTATE_AVX512), ("ospke", XSTATE_PKRU)):
        if flag in flags:
            xcr0 |= bits
    return xcr0


# push rbx; mov r8,rdx; mov eax,edi; mov ecx,esi; cpuid; mov [r8],eax; mov [r8+4],ebx;
# mov [r8+8],ecx; mov [r8+12],edx; pop rbx; ret   -- void stub(u32 leaf, u32 subleaf, u32 out[4])
_CPUID_CODE = bytes.fromhex("534989d089f889f10fa241890041895804418948084189500c5bc3")


@functools.cache
def cpuid(leaf: int, subleaf: int = 0) -> tuple[int, int, int, int] | None:
    """EAX, EBX, ECX, EDX of CPUID(`leaf`, `subleaf`), or None where the stub cannot run."""
    if os.uname().machine not in ("x86_64", "AMD64"):
        return None
    try:
        return _run_cpuid(leaf, subleaf)
    except (OSError, ValueError, TypeError, AttributeError, BufferError):
        return None


def _run_cpuid(leaf: int, subleaf: int) -> tuple[int, int, int, int]:
    import ctypes  # here, not at the top: ~10 ms of imports on the way to GDB's first reply
    import mmap

    stub_type = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32 * 4))
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    try:
        page.write(_CPUID_CODE)
        anchor = ctypes.c_char.from_buffer(page)
        out = (ctypes.c_uint32 * 4)()
        stub_type(ctypes.addressof(anchor))(leaf, subleaf, ctypes.byref(out))
        del anchor
        eax, ebx, ecx, edx = out
        return eax, ebx, ecx, edx
    finally:
        page.close()


def _cpuid_offset(component: XsaveComponent) -> int | None:
    """A component's offset in the standard XSAVE format from CPUID(0xD, n).EBX, if CPUID can be run."""
    top = cpuid(0)
    if top is None or top[0] < 0xD:
        return None
    sub = cpuid(0xD, component.bit.bit_length() - 1)
    if sub is None or sub[0] == 0 or sub[1] < XSAVE_HEADER_END:
        return None
    return sub[1]


def component_offsets(xcr0: int, xstate_len: int) -> dict[int, int]:
    """Where each extended component of `xcr0` lives in an NT_X86_XSTATE image of `xstate_len` bytes.

    CPUID's answers where it gives one for every component; otherwise a whole vendor layout guessed from the
    image's size (as GDB 14's `i387_guess_xsave_layout` does): Intel's where the image holds all of it, else
    AMD's where that fits (AMD Zen images are 2432 or 2440 bytes), else Intel's as far as it fits.  A
    component the image cannot hold is left out, except that PKRU, the last one, may sit at the image's
    end.  An AVX-512 or MPX feature needs every component behind it, so a partial group is left out whole.
    """
    wanted = [c for c in XSAVE_COMPONENTS if xcr0 & c.bit]
    table = {c.bit: _cpuid_offset(c) for c in wanted}
    if None in table.values():
        table = _guessed_layout(wanted, xstate_len)
    offsets = {
        bit: offset
        for bit, offset in table.items()
        if offset is not None and offset + _COMPONENT_BY_BIT[bit].size <= xstate_len
    }
    if XSTATE_PKRU in table and XSTATE_PKRU not in offsets:
        end = max((o + _COMPONENT_BY_BIT[b].size for b, o in offsets.items()), default=XSAVE_HEADER_END)
        if end + 8 <= xstate_len:
            offsets[XSTATE_PKRU] = xstate_len - 8
    for group in (XSTATE_MPX, XSTATE_AVX512):
        if any(bit & group and bit not in offsets for bit in table):
            offsets = {bit: offset for bit, offset in offsets.items() if not bit & group}
    return offsets


def _guessed_layout(wanted: list[XsaveComponent], xstate_len: int) -> dict[int, int | None]:
    """Intel's offsets for `wanted` if an image of `xstate_len` bytes holds them all, else AMD's if it does."""
    intel = {c.bit: c.intel_offset for c in wanted}
    amd = {c.bit: c.amd_offset for c in wanted}
    for layout in (intel, amd):
        ends = [o + _COMPONENT_BY_BIT[b].size if o is not None else xstate_len + 1 for b, o in layout.items()]
        if max(ends, default=0) <= xstate_len:
            return dict(layout)
    return dict(intel)


# ------------------------------------------------------------------------------ x87 tag words


def _st_tag(raw: bytes) -> int:
    """The 2-bit x87 tag of a non-empty 80-bit register: 0 valid, 1 zero, 2 special."""
    mantissa = int.from_bytes(raw[:8], "little")
    exponent = int.from_bytes(raw[8:10], "little") & 0x7FFF
    if exponent == 0x7FFF:
        return 2
    if exponent == 0:
        return 1 if mantissa == 0 else 2
    return 0 if mantissa >> 63 else 2


def full_tag_word(fxsave: bytes) -> int:
    """GDB's 16-bit `ftag` from the abridged FXSAVE tag byte, the TOP field of fstat and st0..st7."""
    abridged = fxsave[4]
    if abridged == 0:
        return 0xFFFF
    top = (_U16.unpack_from(fxsave, 2)[0] >> 11) & 7
    tags = 0
    for physical in range(8):
        tag = 3
        if abridged & (1 << physical):
            slot = _ST0_OFFSET + 16 * ((physical - top) % 8)
            tag = _st_tag(fxsave[slot : slot + 10])
        tags |= tag << (2 * physical)
    return tags


def abridged_tag_byte(ftag: int) -> int:
    """The FXSAVE tag byte for GDB's full tag word: bit i set unless register i is tagged empty (3)."""
    return sum(1 << i for i in range(8) if (ftag >> (2 * i)) & 3 != 3)


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
    "mxcsr": (_MXCSR_OFFSET, 4, Kind.RAW),
}
_BANK_RE = re.compile(r"([a-z]+?)(\d+)(h|raw)?$")
_FIXED_SLOTS: dict[str, tuple[int, int]] = {"bndcfgu": (XSTATE_BNDCSR, 0), "bndstatus": (XSTATE_BNDCSR, 8),
                                             "pkru": (XSTATE_PKRU, 0)}  # fmt: skip


def _bank_slot(bank: str, index: int) -> tuple[int, int] | None:
    """(component bit, offset in it) of register `index` of a bank; bit 0 is the FXSAVE area.

    Hi16_ZMM holds zmm16-31 whole (64 bytes each): xmm16-31 are their low 16 bytes, ymm16h-31h the next 16,
    zmm16h-31h the upper 32.  ZMM_Hi256 holds the upper 32 bytes of zmm0-15 (Intel SDM vol. 1, 13.5).
    """
    high = 64 * (index - 16)
    slots = {
        "st": (0, _ST0_OFFSET + 16 * index) if index < 8 else None,
        "xmm": (0, _XMM0_OFFSET + 16 * index) if index < 16 else (XSTATE_HI16_ZMM, high),
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
    match = _BANK_RE.match(name)
    if slot is None and match is not None:
        slot = _bank_slot(match.group(1) + (match.group(3) or ""), int(match.group(2)))
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
_REG_HEAD_RE = re.compile(r'(<reg name="[^"]*" bitsize="\d+" type="[^"]*")')


@functools.cache
def feature_text(filename: str) -> str:
    """The text of one feature file in `ptstub/arch/xml` (a `<feature>` element without regnums)."""
    # A plain path beside this module (ptstub is never imported from a zip: it carries a C extension);
    # importlib.resources pulled in pathlib, tempfile, shutil and more on the way to GDB's first reply.
    with open(os.path.join(_XML_DIR, filename), encoding="utf-8") as f:
        return f.read()


def _number_feature(text: str, first: int) -> tuple[str, list[ET.Element]]:
    """`text` with `regnum` attributes from `first` on, and its `<reg>` elements in order."""
    regs = ET.fromstring(text).findall("reg")
    counter = iter(range(first, first + len(regs)))
    numbered, count = _REG_HEAD_RE.subn(lambda m: f'{m.group(1)} regnum="{next(counter)}"', text)
    if count != len(regs):
        raise RuntimeError(f"feature file has {len(regs)} registers but {count} numberable <reg> lines")
    return numbered, regs


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
            name, bitsize = reg.attrib["name"], int(reg.attrib["bitsize"])
            source, offset, size, kind, component = _storage(name, bitsize, offsets)
            table.append(
                RegisterDef(
                    name=name,
                    regnum=len(table),
                    bitsize=bitsize,
                    type=reg.attrib["type"],
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
        clear = ~_U64.unpack_from(xstate, XSTATE_BV_OFFSET)[0] & self.xcr0 & _NORMALIZED
        if not clear:
            return xstate
        buf = bytearray(xstate)
        for bit, start, end in self._spans:
            if clear & bit:
                buf[start:end] = bytes(end - start)
        if clear & XSTATE_X87:
            buf[: len(_X87_CONTROL_INIT)] = _X87_CONTROL_INIT
        if clear & (XSTATE_SSE | XSTATE_AVX) == XSTATE_SSE | XSTATE_AVX:
            _U32.pack_into(buf, _MXCSR_OFFSET, _MXCSR_INIT)
        return bytes(buf)

    def _committed(self, before: bytes, after: bytearray) -> bytes:
        """`after` with XSTATE_BV marking every component that differs from `before`."""
        if not self.xsave_header:
            return bytes(after)
        bv = old_bv = _U64.unpack_from(after, XSTATE_BV_OFFSET)[0]
        for bit, start, end in self._spans:
            if before[start:end] != after[start:end]:
                bv |= bit
        mxcsr = slice(_MXCSR_OFFSET, _MXCSR_OFFSET + 4)
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
        (XSTATE_X87, 0, _MXCSR_OFFSET),
        (XSTATE_X87, _ST0_OFFSET, _XMM0_OFFSET),
        (XSTATE_SSE, _XMM0_OFFSET, _XMM0_OFFSET + 256),
    ]
    for bit, offset in sorted(offsets.items()):
        used = 4 if bit == XSTATE_PKRU else _COMPONENT_BY_BIT[bit].size  # PKRU's last 4 bytes are padding
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
