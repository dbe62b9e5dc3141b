"""Registers through the real GDB: the pre-XML register file, PKRU and AVX-512 writes seen by the program.

The PKRU and AVX-512 tests run against ptstub alone.  gdbserver 13.1 reads every extended XSAVE component at
Intel's offsets whatever the CPU, so on AMD CPUs (whose layout has no MPX area: PKRU at 2432, AVX-512 from 832)
it shows and writes the wrong bytes; ptstub takes the offsets from CPUID (docs/design-notes.md, "Registers").
"""

from __future__ import annotations

import re

import pytest

from tests.gdb.stubs import run_gdb, running_stub


def _cpu_flags() -> set[str]:
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
        match = re.search(r"^flags\s*:(.*)$", f.read(), re.MULTILINE)
    return set(match.group(1).split()) if match else set()


def _session(stub: str, program: str, args: list[str], commands: list[str], setup: list[str] | None = None) -> str:
    with running_stub(stub, ["--once", "127.0.0.1:0", program, *args]) as server:
        result = run_gdb(server.port, program, ["set sysroot /", *commands], timeout=90, setup=setup)
    assert "Remote connection closed" not in result.output
    assert "internal-error" not in result.output
    return result.output


def _expect(output: str, *patterns: str) -> None:
    for pattern in patterns:
        assert re.search(pattern, output, re.M), f"/{pattern}/ not in GDB output:\n{output[-4000:]}"


@pytest.mark.timeout(120)
def test_without_xml_descriptions_gdb_reads_the_pre_xml_register_file(stub: str, fixture_path) -> None:
    """gdb.arch/i386-avx.exp, "force-disable xml descriptions": GDB sends no xmlRegisters=i386 and expects the
    x87/SSE register file of its built-in amd64 Linux description (a 560-byte `g`)."""
    program = fixture_path("simple")
    commands = ["break work", "continue", "print $ymm0", "print $xmm0", "set var $xmm1.v4_int32[2] = 77",
                "print $xmm1.v4_int32[2]", "print $rip == (long) &work || $rip > (long) &work", "kill"]  # fmt: skip
    output = _session(stub, program, [], commands, setup=["set remote target-features-packet off"])
    _expect(output, r"^\$1 = void", r"^\$2 = \{.*v4_float = ", r"^\$3 = 77", r"^\$4 = 1")
    assert "packet reply is too long" not in output


@pytest.mark.timeout(120)
@pytest.mark.skipif("ospke" not in _cpu_flags(), reason="needs protection keys (no 'ospke' in /proc/cpuinfo)")
def test_pkru_write_reaches_the_program(fixture_path) -> None:
    program = fixture_path("vector_regs")
    commands = ["break *pkru_loaded", "break pkru_done", "continue", "print/x $pkru", "set var $pkru = 0x55555540",
                "continue", "print/x pkru_out", "continue"]  # fmt: skip
    output = _session("ptstub", program, ["pkru"], commands)
    _expect(output, r"^\$1 = 0x55555550", r"^\$2 = 0x55555540", r"exited normally")


@pytest.mark.timeout(120)
@pytest.mark.skipif("avx512f" not in _cpu_flags(), reason="needs AVX-512 (no 'avx512f' in /proc/cpuinfo)")
def test_avx512_writes_reach_the_program(fixture_path) -> None:
    program = fixture_path("vector_regs")
    commands = [
        "break *avx512_loaded", "break avx512_done", "continue",
        "print $zmm5.v16_int32", "print $zmm20.v16_int32", "print/x $k3", "print $xmm20.v4_int32",
        "set var $zmm5.v16_int32[15] = -7", "set var $zmm20.v16_int32[0] = 4242", "set var $ymm20.v8_int32[7] = 9",
        "set var $k3 = 0x1234", "continue", "print avx512_out", "continue",
    ]  # fmt: skip
    output = _session("ptstub", program, ["avx512"], commands)
    low, high = ", ".join(str(i) for i in range(1, 17)), ", ".join(str(i) for i in range(101, 117))
    written = ", ".join([*(str(i) for i in range(1, 16)), "-7", "4242", *(str(i) for i in range(102, 108)), "9",
                         *(str(i) for i in range(109, 117)), "4660"])  # fmt: skip
    _expect(output, rf"^\$1 = \{{{low}\}}", rf"^\$2 = \{{{high}\}}", r"^\$3 = 0x5a5a", r"^\$4 = \{101, 102, 103, 104\}",
            rf"^\$5 = \{{{written}\}}", r"exited normally")  # fmt: skip
