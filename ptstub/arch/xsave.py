"""XSAVE state on x86-64 Linux: which components a process has (XCR0), where each sits, the x87 tag word.

An NT_X86_XSTATE regset (PTRACE_GETREGSET) is the 512-byte FXSAVE area, the 64-byte XSAVE header at 512
(XSTATE_BV first), then the extended components in the standard (non-compacted) format.

XCR0: for ptrace the kernel stores the user xfeatures mask as a u64 at offset 464 (the first word of the FXSAVE
`sw_reserved` bytes; see `USER_XSTATE_XCR0_WORD` in the kernel's asm/user.h).  That is also where gdbserver reads
it.  If the word there carries the signal-frame magic `FP_XSTATE_MAGIC1` instead, the mask is taken from the
`xfeatures` word at 472 (`struct _fpx_sw_bytes`).

Components: gdbserver 13.1 describes x87, SSE, AVX, MPX (BNDREGS, BNDCSR), AVX-512 (opmask, ZMM_Hi256, Hi16_ZMM)
and PKRU, each where XCR0 has it, in features `core`, `sse`, `linux`, `segments`, `avx`, `mpx`, `avx512`, `pkeys`
in that order; so does ptstub. AMX, CET and later components are not described. Their offsets in the standard
format are the CPU's: CPUID leaf 0xD sub-leaf n gives component n's (EBX), which Python cannot ask directly, so
`cpuid` asks the engine's C helper (`pt_cpuid`). Intel and AMD
differ: AMD's layout has no MPX area, so AVX-512 starts at 832 (Intel: 1088) and PKRU sits at 2432 (Intel: 2688).
Where CPUID cannot run, the whole layout is guessed from the regset's length as GDB 14's `i387_guess_xsave_layout`
does: Intel's where the image holds it all, else AMD's (PKRU may also sit at the image's end). gdbserver 13.1
always reads Intel's offsets, so on AMD CPUs it reports pkru and the AVX-512 registers wrongly; ptstub reports the
real values.
"""

from __future__ import annotations

import functools
import os
import struct

from ptstub.values import frozen

_U64 = struct.Struct("<Q")
_U16 = struct.Struct("<H")

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
NORMALIZED = XSTATE_X87 | XSTATE_SSE | XSTATE_AVX | XSTATE_MPX | XSTATE_AVX512

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
COMPONENT_BY_BIT = {c.bit: c for c in XSAVE_COMPONENTS}

ST0_OFFSET = 32
XMM0_OFFSET = 160
MXCSR_OFFSET = 24
FCTRL_INIT = 0x037F
MXCSR_INIT = 0x1F80
X87_CONTROL_INIT = _U16.pack(FCTRL_INIT) + bytes(22)  # fctrl..foseg, bytes 0-23


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
    flags: set[str] = set()
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon and name.strip() == "flags":
            flags = set(value.split())
            break
    xcr0 = XSTATE_X87 | XSTATE_SSE
    if "xsave" not in flags:
        return xcr0
    for flag, bits in (("avx", XSTATE_AVX), ("mpx", XSTATE_MPX), ("avx512f", XSTATE_AVX512), ("ospke", XSTATE_PKRU)):
        if flag in flags:
            xcr0 |= bits
    return xcr0


@functools.cache
def cpuid(leaf: int, subleaf: int = 0) -> tuple[int, int, int, int] | None:
    """EAX, EBX, ECX, EDX of CPUID(`leaf`, `subleaf`), or None where it cannot be asked (no C helper)."""
    if os.uname().machine not in ("x86_64", "AMD64"):
        return None
    try:
        return _run_cpuid(leaf, subleaf)
    except (ImportError, AttributeError):
        return None


def _run_cpuid(leaf: int, subleaf: int) -> tuple[int, int, int, int]:
    from ptstub._ptcore import ffi, lib  # loaded anyway by the time a layout is built

    out = ffi.new("uint32_t[4]")
    lib.pt_cpuid(leaf, subleaf, out)
    return out[0], out[1], out[2], out[3]


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
        if offset is not None and offset + COMPONENT_BY_BIT[bit].size <= xstate_len
    }
    if XSTATE_PKRU in table and XSTATE_PKRU not in offsets:
        end = max((o + COMPONENT_BY_BIT[b].size for b, o in offsets.items()), default=XSAVE_HEADER_END)
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
        ends = [o + COMPONENT_BY_BIT[b].size if o is not None else xstate_len + 1 for b, o in layout.items()]
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
            slot = ST0_OFFSET + 16 * ((physical - top) % 8)
            tag = _st_tag(fxsave[slot : slot + 10])
        tags |= tag << (2 * physical)
    return tags


def abridged_tag_byte(ftag: int) -> int:
    """The FXSAVE tag byte for GDB's full tag word: bit i set unless register i is tagged empty (3)."""
    return sum(1 << i for i in range(8) if (ftag >> (2 * i)) & 3 != 3)
