"""x86-64 registers beyond AVX: AVX-512 (opmask, ZMM_Hi256, Hi16_ZMM), MPX and PKRU beside them.

These run on every host: the layouts are built from XCR0 values and literal XSAVE images, never from the CPU
that runs the tests (CPUID is switched off, so component offsets follow the image size as documented).  The
reference document and `g` reply in `data/` were captured from gdbserver 13.1 on an AVX-512 host (XCR0 0xe7,
an AMD EPYC, XSAVE image of 2440 bytes).
"""

from __future__ import annotations

import os
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from ptstub.arch import x86_64 as arch
from ptstub.arch import xsave

DATA = os.path.join(os.path.dirname(__file__), "data")
INTEL = {"bndregs": 960, "bndcsr": 1024, "opmask": 1088, "zmm_h": 1152, "hi16": 1664, "pkru": 2688, "size": 2696}
AMD = {"opmask": 832, "zmm_h": 896, "hi16": 1408, "pkru": 2432, "size": 2440}
G_SIZES = {0xE7: 2416, 0x2E7: 2420, 0x1F: 896, 0x2FF: 2500}


@pytest.fixture(autouse=True)
def no_cpuid(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Component offsets follow the image size alone, whatever CPU runs the tests."""
    monkeypatch.setattr(xsave, "cpuid", lambda leaf, subleaf=0: None)
    yield


def golden(name: str) -> bytes:
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def make_xstate(xcr0: int, places: dict[str, int], bv: int | None = None) -> bytes:
    """An XSAVE image of the layout `places` whose every byte past the header is distinct-ish."""
    xs = bytearray((13 * i + 7) & 0xFF for i in range(places["size"]))
    xs[464:480] = struct.pack("<QQ", xcr0, 0)
    xs[512:576] = struct.pack("<Q", xcr0 if bv is None else bv) + bytes(56)
    xs[0:2] = b"\x7f\x03"
    xs[4] = 0  # every x87 register empty
    return bytes(xs)


def g_slice(layout: arch.RegisterLayout, g: bytes, name: str) -> bytes:
    reg = layout.registers[layout.regnum(name)]
    return g[reg.g_offset : reg.g_offset + reg.byte_size]


# ------------------------------------------------------------------------------ description


def test_document_is_gdbservers_byte_for_byte() -> None:
    assert arch.layout_for_xcr0(0xE7).target_xml == golden("gdbserver-13.1-x86_64-avx512-target.xml")


@pytest.mark.parametrize(("xcr0", "g_size"), sorted(G_SIZES.items()))
def test_g_size_and_numbering_follow_the_description(xcr0: int, g_size: int) -> None:
    layout = arch.layout_for_xcr0(xcr0)
    regs = ET.fromstring(layout.target_xml).findall("feature/reg")
    assert [(r.get("name"), int(r.attrib["regnum"])) for r in regs] == [(r.name, r.regnum) for r in layout.registers]
    assert layout.g_size == g_size == sum(r.bitsize for r in layout.registers) // 8


def test_feature_order_and_register_numbers() -> None:
    layout = arch.layout_for_xcr0(0x2FF)
    features = [f.get("name") for f in ET.fromstring(layout.target_xml).findall("feature")]
    names = ("core", "sse", "linux", "segments", "avx", "mpx", "avx512", "pkeys")
    assert features == [f"org.gnu.gdb.i386.{n}" for n in names]
    assert [r.name for r in layout.registers[76:82]] == [f"bnd{i}raw" for i in range(4)] + ["bndcfgu", "bndstatus"]
    avx512 = [f"xmm{i}" for i in range(16, 32)] + [f"ymm{i}h" for i in range(16, 32)]
    avx512 += [f"k{i}" for i in range(8)] + [f"zmm{i}h" for i in range(32)]
    assert [r.name for r in layout.registers[82:154]] == avx512
    assert layout.regnum("pkru") == 154
    assert arch.layout_for_xcr0(0x2E7).regnum("pkru") == 148


def test_feature_files_are_single_features() -> None:
    for name in ("mpx", "avx512"):
        root = ET.fromstring(arch.feature_text(f"64bit-{name}.xml"))
        assert root.tag == "feature" and root.get("name") == f"org.gnu.gdb.i386.{name}"
        assert all("regnum" not in reg.attrib for reg in root.iter("reg"))


# ------------------------------------------------------------------------------ where each register lives


def test_component_offsets_follow_the_vendor_layout() -> None:
    assert arch.component_offsets(0x2E7, AMD["size"]) == {0x4: 576, 0x20: 832, 0x40: 896, 0x80: 1408, 0x200: 2432}
    assert arch.component_offsets(0xE7, 2432) == {0x4: 576, 0x20: 832, 0x40: 896, 0x80: 1408}  # Zen 4, no PKRU
    assert arch.component_offsets(0xE7, 2688) == {0x4: 576, 0x20: 1088, 0x40: 1152, 0x80: 1664}
    intel = arch.component_offsets(0x2FF, INTEL["size"])
    assert intel == {0x4: 576, 0x8: 960, 0x10: 1024, 0x20: 1088, 0x40: 1152, 0x80: 1664, 0x200: 2688}


def test_component_offsets_prefer_cpuid(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {2: 576, 5: 832, 6: 896, 7: 1408}
    fake = {(0xD, n): (64, offset, 0, 0) for n, offset in answers.items()} | {(0, 0): (0x10, 0, 0, 0)}
    monkeypatch.setattr(xsave, "cpuid", lambda leaf, subleaf=0: fake.get((leaf, subleaf)))
    assert arch.component_offsets(0xE7, 2688) == {0x4: 576, 0x20: 832, 0x40: 896, 0x80: 1408}


def test_a_partial_avx512_group_is_left_out() -> None:
    layout = arch.layout_for(make_xstate(0xE7, {**INTEL, "size": 1600}))  # Hi16_ZMM cannot fit
    assert layout.xcr0 == 0x7 and layout.g_size == 816


@pytest.mark.parametrize("places", [INTEL, AMD], ids=["intel", "amd"])
def test_encode_g_places_avx512_registers(places: dict[str, int]) -> None:
    xs = make_xstate(0xE7, places)
    layout = arch.layout_for(xs)
    assert layout.xcr0 == 0xE7
    g = layout.encode_g(bytes(arch.GPR_SIZE), xs)
    k, zh, hi = places["opmask"], places["zmm_h"], places["hi16"]
    for i in range(8):
        assert g_slice(layout, g, f"k{i}") == xs[k + 8 * i : k + 8 * i + 8]
    for i in range(16):
        assert g_slice(layout, g, f"zmm{i}h") == xs[zh + 32 * i : zh + 32 * i + 32]
        zmm = xs[hi + 64 * i : hi + 64 * i + 64]
        assert g_slice(layout, g, f"xmm{i + 16}") == zmm[:16]
        assert g_slice(layout, g, f"ymm{i + 16}h") == zmm[16:32]
        assert g_slice(layout, g, f"zmm{i + 16}h") == zmm[32:]
    for reg in layout.registers:
        assert layout.read_register(reg.regnum, bytes(arch.GPR_SIZE), xs) == g_slice(layout, g, reg.name)


def test_encode_g_places_mpx_registers() -> None:
    xs = make_xstate(0xFF, INTEL)
    layout = arch.layout_for(xs)
    g = layout.encode_g(bytes(arch.GPR_SIZE), xs)
    assert g_slice(layout, g, "bnd2raw") == xs[960 + 32 : 960 + 48]
    assert g_slice(layout, g, "bndcfgu") == xs[1024:1032] and g_slice(layout, g, "bndstatus") == xs[1032:1040]


def test_components_in_init_state_read_as_zero() -> None:
    xs = make_xstate(0x2FF, INTEL, bv=0x7)
    layout = arch.layout_for(xs)
    g = layout.encode_g(bytes(arch.GPR_SIZE), xs)
    for name in ("k1", "zmm3h", "xmm17", "ymm30h", "zmm31h", "bnd0raw", "bndstatus"):
        assert not any(g_slice(layout, g, name)), name
    assert g_slice(layout, g, "pkru") == xs[2688:2692]  # PKRU is stored live whatever XSTATE_BV says


# ------------------------------------------------------------------------------ writes


@pytest.mark.parametrize(
    ("name", "bit"),
    [("k7", arch.XSTATE_OPMASK), ("zmm5h", arch.XSTATE_ZMM_H), ("xmm20", arch.XSTATE_HI16_ZMM),
     ("ymm31h", arch.XSTATE_HI16_ZMM), ("zmm16h", arch.XSTATE_HI16_ZMM), ("bnd1raw", arch.XSTATE_BNDREGS),
     ("bndcfgu", arch.XSTATE_BNDCSR)],
)  # fmt: skip
def test_writes_mark_their_component_in_use(name: str, bit: int) -> None:
    blank = bytearray(INTEL["size"])
    blank[464:472] = struct.pack("<Q", 0xFF)
    layout = arch.layout_for(bytes(blank))
    reg = layout.registers[layout.regnum(name)]
    value = bytes(range(1, reg.byte_size + 1))
    _, new_xs = layout.write_register(reg.regnum, value, bytes(arch.GPR_SIZE), bytes(blank))
    assert struct.unpack_from("<Q", new_xs, 512)[0] == bit
    assert layout.read_register(reg.regnum, bytes(arch.GPR_SIZE), new_xs) == value
    # Nothing beside the register moved (the legacy area below 512 takes its x87/SSE init values).
    changed = [i for i in range(520, len(blank)) if new_xs[i] != blank[i]]
    assert len(changed) == len(value)


@pytest.mark.parametrize("places", [INTEL, AMD], ids=["intel", "amd"])
def test_gdbservers_g_reply_round_trips(places: dict[str, int]) -> None:
    """gdbserver's whole `g` reply, stored through `G` into a blank image and read back, is unchanged."""
    g = bytes.fromhex(golden("gdbserver-13.1-x86_64-avx512-g.txt").decode().strip())
    blank = bytearray(places["size"])
    blank[464:472] = struct.pack("<Q", 0xE7)
    layout = arch.layout_for(bytes(blank))
    assert layout.g_size == len(g) == 2416
    gpr, xs = layout.decode_g(g, bytes(arch.GPR_SIZE), bytes(blank))
    assert layout.encode_g(gpr, xs) == g
