"""x86-64 register layout: literal regsets through encode_g/decode_g/read/write, and the target description."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from ptstub.arch import x86_64 as arch
from ptstub.arch import xsave

GDB_GPR_ORDER = "rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip eflags cs ss ds es fs gs".split()
ST_VALID_PI = bytes.fromhex("35c26821a2da0fc90040")  # pi: integer bit set, normal exponent
ST_ZERO = bytes(10)
ST_INF = bytes.fromhex("0000000000000080ff7f")
ST_DENORMAL = bytes.fromhex("01000000000000000000")
PKRU_AT = 2432  # the AMD layout the 2440-byte images below use
G_SIZES = {0x3: 560, 0x7: 816, 0x203: 564, 0x207: 820}


@pytest.fixture(autouse=True)
def no_cpuid(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make PKRU placement depend only on the image size, whatever CPU runs the tests."""
    monkeypatch.setattr(xsave, "cpuid", lambda leaf, subleaf=0: None)
    yield


def make_gpr() -> bytes:
    """A user_regs_struct whose every field is distinct, with non-zero upper halves."""
    return struct.pack("<27Q", *(0x1122334455667700 + i for i in range(27)))


def make_xstate(bv: int = 0x207, xcr0: int = 0x207, size: int = 2440) -> bytes:
    """An NT_X86_XSTATE image with distinct contents; x87 TOP = 5 with st0 zero, st1 pi, st2 inf."""
    xs = bytearray(size)
    struct.pack_into("<HHBxHIHxxIHxxI", xs, 0, 0x037F, 0x2804, 0xE0, 0xF9AB, 0x8899AABB, 0x33, 0xCCDDEEFF, 0x2B, 0x1FA0)
    sts = [ST_ZERO, ST_VALID_PI, ST_INF] + [bytes([0x40 + i] * 10) for i in range(5)]
    for i, st in enumerate(sts):
        xs[32 + 16 * i : 42 + 16 * i] = st
    xs[160:416] = bytes((7 * i + 1) & 0xFF for i in range(256))
    struct.pack_into("<QQ", xs, 464, xcr0, 0)
    struct.pack_into("<Q", xs, 512, bv)
    xs[576:832] = bytes((5 * i + 3) & 0xFF for i in range(256))
    if size >= PKRU_AT + 8:
        struct.pack_into("<I", xs, PKRU_AT, 0x55555554)
    return bytes(xs)


def g_slice(layout: arch.RegisterLayout, g: bytes, name: str) -> bytes:
    reg = layout.registers[layout.regnum(name)]
    return g[reg.g_offset : reg.g_offset + reg.byte_size]


def u32(data: bytes) -> int:
    return int(struct.unpack("<I", data)[0])


# ------------------------------------------------------------------------------ general registers


def test_gpr_fields_follow_the_kernel_order() -> None:
    assert len(arch.GPR_FIELDS) == 27 and arch.GPR_SIZE == 216
    assert arch.GPR_FIELDS[:2] == ("r15", "r14") and arch.GPR_FIELDS[15:17] == ("orig_rax", "rip")
    assert arch.GPR_FIELDS[-6:] == ("fs_base", "gs_base", "ds", "es", "fs", "gs")


def test_unpack_and_pack_gpr() -> None:
    gpr = make_gpr()
    values = arch.unpack_gpr(gpr)
    assert values["r15"] == 0x1122334455667700 and values["gs"] == 0x1122334455667700 + 26
    assert arch.pack_gpr({}, gpr) == gpr
    changed = arch.pack_gpr({"rax": 5, "orig_rax": -1}, gpr)
    assert arch.unpack_gpr(changed) == {**values, "rax": 5, "orig_rax": 2**64 - 1}
    with pytest.raises(KeyError):
        arch.pack_gpr({"eax": 1}, gpr)
    with pytest.raises(ValueError):
        arch.pack_gpr({}, gpr[:100])


def test_pc_helpers() -> None:
    gpr = make_gpr()
    assert arch.pc_from_gpr(gpr) == 0x1122334455667700 + 16
    moved = arch.with_pc(gpr, 0x401000)
    assert arch.pc_from_gpr(moved) == 0x401000 and len(moved) == 216
    assert arch.unpack_gpr(moved) == {**arch.unpack_gpr(gpr), "rip": 0x401000}
    assert arch.BREAKPOINT == b"\xcc" and arch.DECR_PC_AFTER_BREAK == 1
    assert (arch.PC_REGNUM, arch.SP_REGNUM, arch.ORIG_RAX_REGNUM) == (16, 7, 57)


# ------------------------------------------------------------------------------ XCR0 and PKRU placement


def test_layout_drops_pkru_that_does_not_fit() -> None:
    layout = arch.layout_for(make_xstate(size=832))
    assert layout.xcr0 == 0x7 and layout.g_size == 816


# ------------------------------------------------------------------------------ description


@pytest.mark.parametrize(("xcr0", "g_size"), sorted(G_SIZES.items()))
def test_description_agrees_with_the_table(xcr0: int, g_size: int) -> None:
    layout = arch.layout_for_xcr0(xcr0)
    root = ET.fromstring(layout.target_xml)
    assert root.findtext("architecture") == "i386:x86-64" and root.findtext("osabi") == "GNU/Linux"
    regs = root.findall("feature/reg")
    assert [r.get("name") for r in regs] == [r.name for r in layout.registers]
    assert [int(r.attrib["regnum"]) for r in regs] == list(range(len(regs)))
    assert [int(r.attrib["bitsize"]) for r in regs] == [r.bitsize for r in layout.registers]
    assert [(r.get("type"), r.get("group")) for r in regs] == [(r.type, r.group) for r in layout.registers]
    assert layout.g_size == g_size == sum(r.bitsize for r in layout.registers) // 8
    assert [r.g_offset for r in layout.registers] == [
        sum(r.bitsize for r in layout.registers[:i]) // 8 for i in range(len(regs))
    ]
    assert layout.documents == {"target.xml": layout.target_xml}


def test_numbering_is_gdbservers() -> None:
    layout = arch.layout_for_xcr0(0x207)
    names = [r.name for r in layout.registers]
    assert names[:24] == GDB_GPR_ORDER
    assert names[24:32] == [f"st{i}" for i in range(8)]
    assert names[32:40] == "fctrl fstat ftag fiseg fioff foseg fooff fop".split()
    assert names[40:57] == [f"xmm{i}" for i in range(16)] + ["mxcsr"]
    assert names[57:60] == ["orig_rax", "fs_base", "gs_base"]
    assert names[60:] == [f"ymm{i}h" for i in range(16)] + ["pkru"]
    features = [f.get("name") for f in ET.fromstring(layout.target_xml).findall("feature")]
    assert features == [f"org.gnu.gdb.i386.{n}" for n in ("core", "sse", "linux", "segments", "avx", "pkeys")]
    assert b'<reg name="pkru" bitsize="32" type="uint32" regnum="76"/>' in layout.target_xml
    assert b'<reg name="mxcsr" bitsize="32" type="i386_mxcsr" regnum="56" group="vector"/>' in layout.target_xml


def test_feature_files_are_single_features() -> None:
    for name in ("core", "sse", "linux", "segments", "avx", "pkeys"):
        root = ET.fromstring(arch.feature_text(f"64bit-{name}.xml"))
        assert root.tag == "feature" and root.get("name") == f"org.gnu.gdb.i386.{name}"
        assert all("regnum" not in reg.attrib for reg in root.iter("reg"))


def test_layouts_are_cached() -> None:
    assert arch.layout_for(make_xstate()) is arch.layout_for(make_xstate())
    assert arch.layout_for(make_xstate()) is not arch.layout_for(make_xstate(xcr0=0x7))


# ------------------------------------------------------------------------------ encode


def test_encode_g_places_every_register() -> None:
    gpr, xs = make_gpr(), make_xstate()
    layout = arch.layout_for(xs)
    g = layout.encode_g(gpr, xs)
    assert len(g) == 820
    kernel = {name: gpr[8 * i : 8 * i + 8] for i, name in enumerate(arch.GPR_FIELDS)}
    for name in GDB_GPR_ORDER[:17] + ["orig_rax", "fs_base", "gs_base"]:
        assert g_slice(layout, g, name) == kernel[name], name
    for name in GDB_GPR_ORDER[17:]:
        assert g_slice(layout, g, name) == kernel[name][:4], name
    for i in range(8):
        assert g_slice(layout, g, f"st{i}") == xs[32 + 16 * i : 42 + 16 * i]
    for i in range(16):
        assert g_slice(layout, g, f"xmm{i}") == xs[160 + 16 * i : 176 + 16 * i]
        assert g_slice(layout, g, f"ymm{i}h") == xs[576 + 16 * i : 592 + 16 * i]
    expected = {"fctrl": 0x037F, "fstat": 0x2804, "fop": 0x1AB, "fioff": 0x8899AABB, "fiseg": 0x33,
                "fooff": 0xCCDDEEFF, "foseg": 0x2B, "mxcsr": 0x1FA0, "pkru": 0x55555554}  # fmt: skip
    assert {name: u32(g_slice(layout, g, name)) for name in expected} == expected
    # TOP = 5: physical 5, 6, 7 hold st0 (zero: 1), st1 (valid: 0), st2 (special: 2); the rest are empty (3).
    assert u32(g_slice(layout, g, "ftag")) == 0b10_00_01_11_11_11_11_11


def test_read_register_agrees_with_encode_g() -> None:
    gpr, xs = make_gpr(), make_xstate()
    layout = arch.layout_for(xs)
    g = layout.encode_g(gpr, xs)
    for reg in layout.registers:
        assert layout.read_register(reg.regnum, gpr, xs) == g[reg.g_offset : reg.g_offset + reg.byte_size]


def test_gpr_reads_never_touch_xstate() -> None:
    layout = arch.layout_for(make_xstate())
    gpr = make_gpr()
    assert layout.expedite_regnums == (6, 7, 16)
    assert layout.expedite_values(gpr) == (
        (6, gpr[32:40]),
        (7, gpr[152:160]),
        (16, gpr[128:136]),
    )
    assert layout.read_register(18, gpr, b"") == gpr[136:140]  # cs: low half of the u64
    with pytest.raises(ValueError):
        layout.read_register(40, gpr, b"")


def test_init_state_components_read_as_init_values() -> None:
    gpr, xs = make_gpr(), make_xstate(bv=0)
    layout = arch.layout_for(xs)
    g = layout.encode_g(gpr, xs)
    assert u32(g_slice(layout, g, "fctrl")) == 0x037F and u32(g_slice(layout, g, "ftag")) == 0xFFFF
    for name in ("fstat", "fop", "fioff", "fiseg", "fooff", "foseg"):
        assert u32(g_slice(layout, g, name)) == 0, name
    assert g_slice(layout, g, "st1") == ST_ZERO
    assert g_slice(layout, g, "xmm5") == bytes(16) and g_slice(layout, g, "ymm5h") == bytes(16)
    assert u32(g_slice(layout, g, "mxcsr")) == 0x1F80
    assert u32(g_slice(layout, g, "pkru")) == 0x55555554  # Linux stores the live PKRU whatever XSTATE_BV says
    avx_only = make_xstate(bv=arch.XSTATE_AVX)
    assert u32(layout.read_register(56, gpr, avx_only)) == 0x1FA0
    assert layout.read_register(45, gpr, avx_only) == bytes(16)


# ------------------------------------------------------------------------------ decode and write


def test_decode_g_round_trips() -> None:
    gpr, xs = make_gpr(), make_xstate()
    layout = arch.layout_for(xs)
    assert layout.decode_g(layout.encode_g(gpr, xs), gpr, xs) == (gpr, xs)


def test_decode_g_stores_new_values() -> None:
    gpr, xs = make_gpr(), make_xstate(bv=0x3)
    layout = arch.layout_for(xs)
    g = bytearray(layout.encode_g(gpr, xs))
    for reg in layout.registers:
        if reg.name not in ("ftag", "fop", "fctrl", "fstat", "fiseg", "foseg"):
            pattern = bytes((reg.regnum + k) & 0xFF for k in range(reg.byte_size))
            g[reg.g_offset : reg.g_offset + reg.byte_size] = pattern
    new_gpr, new_xs = layout.decode_g(bytes(g), gpr, xs)
    again = layout.encode_g(new_gpr, new_xs)
    ftag, xmm0 = layout.registers[34].g_offset, layout.registers[40].g_offset
    assert again[:ftag] == g[:ftag] and again[xmm0:] == g[xmm0:]  # ftag follows the new st contents
    assert new_gpr[140:144] == gpr[140:144]  # cs keeps the upper half of its u64 slot
    assert struct.unpack_from("<Q", new_xs, 512)[0] == 0x207  # AVX and PKRU now in use
    with pytest.raises(ValueError):
        layout.decode_g(bytes(819), gpr, xs)


def test_write_register_reads_back() -> None:
    gpr, xs = make_gpr(), make_xstate()
    layout = arch.layout_for(xs)
    for reg in layout.registers:
        value = bytes((0x90 + reg.regnum + k) & 0xFF for k in range(reg.byte_size))
        if reg.kind is not arch.Kind.RAW:
            value = struct.pack("<I", {"ftag": 0xFFFF, "fop": 0x5A5}.get(reg.name, 0x1234))
        new_gpr, new_xs = layout.write_register(reg.regnum, value, gpr, xs)
        assert layout.read_register(reg.regnum, new_gpr, new_xs) == value, reg.name
        assert (new_gpr is gpr) == (reg.source is not arch.Source.GPR)
        assert (new_xs is xs) == (reg.source is arch.Source.GPR)


def test_write_register_keeps_neighbours() -> None:
    gpr, xs = make_gpr(), make_xstate()
    layout = arch.layout_for(xs)
    new_gpr, _ = layout.write_register(17, b"\x46\x02\x00\x00", gpr, xs)
    assert new_gpr[144:152] == b"\x46\x02\x00\x00" + gpr[148:152]
    _, new_xs = layout.write_register(39, struct.pack("<I", 0xFFFF), gpr, xs)
    assert struct.unpack_from("<H", new_xs, 6)[0] == 0xF800 | 0x7FF  # fop keeps its top 5 bits
    _, new_xs = layout.write_register(34, struct.pack("<I", 0xFFF0), gpr, xs)
    assert new_xs[4] == 0x03 and new_xs[5] == xs[5]
    _, new_xs = layout.write_register(32, struct.pack("<I", 0xABCD027F), gpr, xs)
    assert new_xs[:4] == b"\x7f\x02" + xs[2:4]


@pytest.mark.parametrize(
    ("name", "bit"),
    [("st3", arch.XSTATE_X87), ("fctrl", arch.XSTATE_X87), ("xmm9", arch.XSTATE_SSE), ("mxcsr", arch.XSTATE_SSE),
     ("ymm2h", arch.XSTATE_AVX), ("pkru", arch.XSTATE_PKRU)],
)  # fmt: skip
def test_writes_mark_components_in_use(name: str, bit: int) -> None:
    gpr, blank = make_gpr(), bytearray(make_xstate(bv=0))
    struct.pack_into("<I", blank, PKRU_AT, 0)
    layout = arch.layout_for(bytes(blank))
    reg = layout.registers[layout.regnum(name)]
    _, new_xs = layout.write_register(reg.regnum, b"\x01" * reg.byte_size, gpr, bytes(blank))
    assert struct.unpack_from("<Q", new_xs, 512)[0] == bit


def test_writes_keep_a_live_pkru() -> None:
    gpr, xs = make_gpr(), make_xstate(bv=arch.XSTATE_SSE)
    layout = arch.layout_for(xs)
    _, new_xs = layout.write_register(40, bytes(16), gpr, xs)
    assert struct.unpack_from("<Q", new_xs, 512)[0] == arch.XSTATE_SSE | arch.XSTATE_PKRU
    assert layout.read_register(76, gpr, new_xs) == struct.pack("<I", 0x55555554)


def test_bad_requests() -> None:
    gpr, xs = make_gpr(), make_xstate()
    layout = arch.layout_for(xs)
    for regnum in (-1, 77, 1000):
        with pytest.raises(KeyError):
            layout.read_register(regnum, gpr, xs)
    with pytest.raises(ValueError):
        layout.write_register(0, b"\x00" * 4, gpr, xs)
    with pytest.raises(ValueError):
        layout.encode_g(gpr[:200], xs)


def test_fxsave_only_image() -> None:
    gpr, fx = make_gpr(), make_xstate()[:512]
    layout = arch.layout_for(fx)
    assert (layout.xcr0, layout.xsave_header, layout.g_size) == (0x3, False, 560)
    g = layout.encode_g(gpr, fx)
    assert g_slice(layout, g, "xmm15") == fx[400:416]
    assert layout.decode_g(g, gpr, fx) == (gpr, fx)
    _, new_fx = layout.write_register(40, bytes(16), gpr, fx)
    assert len(new_fx) == 512 and new_fx[160:176] == bytes(16) and new_fx[176:] == fx[176:]
