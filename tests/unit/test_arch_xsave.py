"""XSAVE facts: XCR0 from an image or /proc/cpuinfo, where components sit (CPUID or the image size), x87 tag words."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from test_arch_x86_64 import make_xstate

from ptstub.arch import xsave

ST_DENORMAL = bytes.fromhex("01000000000000000000")


@pytest.fixture(autouse=True)
def no_cpuid(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make component placement depend only on the image size, whatever CPU runs the tests."""
    monkeypatch.setattr(xsave, "cpuid", lambda leaf, subleaf=0: None)
    yield


def test_xcr0_from_xstate() -> None:
    assert xsave.xcr0_from_xstate(make_xstate(xcr0=0x207)) == 0x207
    assert xsave.xcr0_from_xstate(make_xstate(xcr0=0x7)) == 0x7
    assert xsave.xcr0_from_xstate(bytes(512)) == 0x3
    signal_frame_style = bytearray(make_xstate())
    struct.pack_into("<IIQ", signal_frame_style, 464, 0x46505853, 2440, 0x7)
    assert xsave.xcr0_from_xstate(bytes(signal_frame_style)) == 0x7


def test_xcr0_from_cpuinfo() -> None:
    assert xsave.xcr0_from_cpuinfo("processor : 0\nflags\t\t: fpu sse2 xsave avx avx2 pku ospke\n") == 0x207
    assert xsave.xcr0_from_cpuinfo("flags : fpu sse2 xsave avx pku\n") == 0x7
    assert xsave.xcr0_from_cpuinfo("flags : fpu sse2 avx\n") == 0x3
    assert xsave.xcr0_from_cpuinfo("nothing here\n") == 0x3
    assert xsave.xcr0_from_cpuinfo("flags : fpu sse2 xsave avx avx2 avx512f avx512bw\n") == 0xE7
    assert xsave.xcr0_from_cpuinfo("flags : xsave avx mpx avx512f pku ospke\n") == 0x2FF


@pytest.mark.parametrize(("size", "offset"), [(2440, 2432), (2696, 2688), (4096, 2688), (840, 832)])
def test_pkru_offset_without_cpuid(size: int, offset: int) -> None:
    assert xsave.component_offsets(0x207, size) == {xsave.XSTATE_AVX: 576, xsave.XSTATE_PKRU: offset}


def test_pkru_offset_prefers_cpuid(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = {(0, 0): (0xD, 0, 0, 0), (0xD, 2): (256, 576, 0, 0), (0xD, 9): (8, 2688, 0, 0)}
    monkeypatch.setattr(xsave, "cpuid", lambda leaf, subleaf=0: fake.get((leaf, subleaf)))
    assert xsave.component_offsets(0x207, 2440)[xsave.XSTATE_PKRU] == 2432  # CPUID's offset would not fit
    assert xsave.component_offsets(0x207, 2696)[xsave.XSTATE_PKRU] == 2688
    fake[(0xD, 9)] = (8, 2432, 0, 0)
    assert xsave.component_offsets(0x207, 2696)[xsave.XSTATE_PKRU] == 2432


def test_full_and_abridged_tag_words() -> None:
    xs = bytearray(make_xstate())
    assert xsave.full_tag_word(bytes(xs)) == 0x87FF
    xs[4] = 0
    assert xsave.full_tag_word(bytes(xs)) == 0xFFFF
    xs[4] = 0x01
    struct.pack_into("<H", xs, 2, 0)  # TOP = 0: physical 0 is st0 (zero)
    assert xsave.full_tag_word(bytes(xs)) == 0xFFFD
    xs[32:42] = ST_DENORMAL
    assert xsave.full_tag_word(bytes(xs)) == 0xFFFE
    assert xsave.abridged_tag_byte(0x87FF) == 0xE0
    assert xsave.abridged_tag_byte(0xFFFF) == 0 and xsave.abridged_tag_byte(0) == 0xFF
