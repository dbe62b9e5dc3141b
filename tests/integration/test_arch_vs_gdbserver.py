"""Oracle: ptstub's x86-64 description and `g` layout against the real gdbserver 13.1 on this machine.

The first tests launch `gdbserver 127.0.0.1:0 /bin/sleep 30` and read its target description and `g` over a raw
RSP socket; the expected XCR0 comes from /proc/cpuinfo (`xcr0_from_cpuinfo`).  The last test ptrace-attaches
(through ctypes) to a process holding x87 and AVX state, snapshots its regsets, leaves it stopped, lets
gdbserver attach, and compares gdbserver's `g` with `encode_g` of the snapshot register by register.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from ptstub.arch import x86_64 as arch
from ptstub.arch import xsave

GDBSERVER = shutil.which("gdbserver")
pytestmark = [
    pytest.mark.skipif(GDBSERVER is None, reason="gdbserver is not installed"),
    pytest.mark.skipif(not sys.platform.startswith("linux") or os.uname().machine != "x86_64",
                       reason="needs x86-64 Linux"),
]  # fmt: skip
GDB_FEATURES = "qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386"


# ------------------------------------------------------------------------------ a tiny RSP client


def _decode(body: bytes) -> bytes:
    """Undo run-length encoding (`X*n`), then `}` escapes."""
    out = bytearray()
    i = 0
    while i < len(body):
        if body[i] == ord("*"):
            out += out[-1:] * (body[i + 1] - 29)
            i += 2
        else:
            out.append(body[i])
            i += 1
    return re.sub(rb"}(.)", lambda m: bytes([m.group(1)[0] ^ 0x20]), bytes(out), flags=re.DOTALL)


class Rsp:
    """Just enough of the remote protocol: framed packets, acks, one reply per request."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.pending = b""

    def close(self) -> None:
        self.sock.close()

    def request(self, payload: str | bytes) -> bytes:
        data = payload.encode() if isinstance(payload, str) else payload
        self.sock.sendall(b"$%s#%02x" % (data, sum(data) & 0xFF))
        return self._reply()

    def _reply(self) -> bytes:
        while True:
            match = re.search(rb"\$([^#]*)#([0-9a-fA-F]{2})", self.pending)
            if match:
                self.pending = self.pending[match.end() :]
                body = match.group(1)
                assert sum(body) & 0xFF == int(match.group(2), 16), "bad checksum from gdbserver"
                self.sock.sendall(b"+")
                return _decode(body)
            chunk = self.sock.recv(65536)
            assert chunk, "gdbserver closed the connection"
            self.pending += chunk

    def read_annex(self, annex: str) -> bytes:
        """A whole `qXfer:features:read` annex, chunk by chunk."""
        document = b""
        while True:
            reply = self.request(f"qXfer:features:read:{annex}:{len(document):x},fff")
            assert reply[:1] in (b"m", b"l"), reply
            document += reply[1:]
            if reply[:1] == b"l":
                return document


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    rsp: Rsp


@contextlib.contextmanager
def gdbserver(*args: str) -> Iterator[Server]:
    """Run gdbserver with `args`, connect to it, and kill it (and its process group) afterwards."""
    assert GDBSERVER is not None
    proc = subprocess.Popen(
        [GDBSERVER, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    rsp: Rsp | None = None
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line.decode(errors="replace"))
            match = re.search(rb"Listening on port (\d+)", line)
            if match:
                rsp = Rsp(int(match.group(1)))
                break
        assert rsp is not None, f"gdbserver did not listen:\n{''.join(seen)}"
        yield Server(proc, rsp)
    finally:
        if rsp is not None:
            rsp.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
        if proc.stderr is not None:
            proc.stderr.close()


def _connect(rsp: Rsp) -> int:
    """The qSupported/Hg handshake GDB does; returns the inferior's pid from the stop reply."""
    assert b"qXfer:features:read+" in rsp.request(GDB_FEATURES)
    stop = rsp.request("?")
    match = re.search(rb"thread:p([0-9a-f]+)\.", stop)
    assert match, stop
    assert rsp.request("Hgp0.0") == b"OK"
    return int(match.group(1), 16)


def _description(rsp: Rsp) -> bytes:
    """target.xml with any `xi:include`d feature documents spliced in."""
    document = rsp.read_annex("target.xml")
    for href in re.findall(rb'<xi:include href="([^"]+)"/>', document):
        feature = re.sub(rb"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>", b"", rsp.read_annex(href.decode()))
        document = document.replace(b'<xi:include href="%s"/>' % href, feature)
    return document


def _registers(document: bytes) -> list[tuple[str, int, int, str | None, str | None, str]]:
    """(name, regnum, bitsize, type, group, feature) of every register, numbering as GDB does."""
    out = []
    regnum = -1
    for feature in ET.fromstring(document).iter("feature"):
        for reg in feature.iter("reg"):
            regnum = int(reg.get("regnum", regnum + 1))
            out.append((reg.attrib["name"], regnum, int(reg.attrib["bitsize"]), reg.get("type"), reg.get("group"),
                        feature.attrib["name"]))  # fmt: skip
    return out


@dataclass(frozen=True)
class Observed:
    document: bytes
    g_hex: bytes


@pytest.fixture(scope="module")
def observed() -> Observed:
    with gdbserver("127.0.0.1:0", "/bin/sleep", "30") as server:
        pid = _connect(server.rsp)
        document = _description(server.rsp)
        g_hex = server.rsp.request("g")
        server.rsp.request(f"vKill;{pid:x}")
    return Observed(document, g_hex)


def _ours() -> arch.RegisterLayout:
    return arch.layout_for_xcr0(xsave.xcr0_from_cpuinfo())


# ------------------------------------------------------------------------------ description and g size


@pytest.mark.timeout(60)
def test_every_register_matches_gdbserver(observed: Observed) -> None:
    theirs = _registers(observed.document)
    layout = _ours()
    ours = [(r.name, r.regnum, r.bitsize, r.type, r.group, r.feature) for r in layout.registers]
    assert ours == theirs
    root = ET.fromstring(observed.document)
    assert (root.findtext("architecture"), root.findtext("osabi")) == ("i386:x86-64", "GNU/Linux")


@pytest.mark.timeout(60)
def test_document_is_byte_identical(observed: Observed) -> None:
    assert _ours().target_xml == observed.document


@pytest.mark.timeout(60)
def test_g_size_matches_gdbserver(observed: Observed) -> None:
    assert re.fullmatch(rb"[0-9a-fx]+", observed.g_hex), observed.g_hex[:80]
    assert len(observed.g_hex) == 2 * _ours().g_size


# ------------------------------------------------------------------------------ g contents of a live process

_PTRACE_ATTACH, _PTRACE_DETACH, _PTRACE_GETREGS, _PTRACE_GETREGSET = 16, 17, 12, 0x4204
_NT_X86_XSTATE = 0x202

# fld1; fldz; fdivp (st1 = inf); fldpi; fldz  [optional: vcmpps ymm1,ymm1,ymm1,TRUE]
# [optional: kxnorw k1,k0,k0; vpternlogd zmm1,zmm1,zmm1,0xff; vpternlogd zmm17,zmm17,zmm17,0xff]
# then write(1, "x", 1) and loop on pause().
_X87 = bytes.fromhex("d9e8d9eedef9d9ebd9ee")
_AVX = bytes.fromhex("c5f4c2c90f")
_AVX512 = bytes.fromhex("c5fc46c862f3754825c9ff62a3754025c9ff")
_TAIL = bytes.fromhex("b801000000bf01000000488d3510000000ba010000000f05b8220000000f05ebf7") + b"x"
_CHILD = """
import ctypes, mmap, sys
code = bytes.fromhex(sys.argv[1])
page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(code)
ctypes.CFUNCTYPE(None)(ctypes.addressof(ctypes.c_char.from_buffer(page)))()
"""


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _ptrace(libc: ctypes.CDLL, request: int, pid: int, addr: int, data: object) -> None:
    if libc.ptrace(request, pid, ctypes.c_void_p(addr), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _snapshot(pid: int) -> tuple[bytes, bytes]:
    """Attach to `pid`, read its regsets, and detach leaving it in a group-stop."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    try:
        _ptrace(libc, _PTRACE_ATTACH, pid, 0, None)
    except OSError as e:
        if e.errno in (errno.EPERM, errno.EACCES):
            pytest.skip(f"ptrace is not permitted here: {e}")
        raise
    os.waitpid(pid, 0)
    gpr = ctypes.create_string_buffer(arch.GPR_SIZE)
    _ptrace(libc, _PTRACE_GETREGS, pid, 0, gpr)
    xbuf = ctypes.create_string_buffer(16384)
    iov = _Iovec(ctypes.cast(xbuf, ctypes.c_void_p), len(xbuf))
    _ptrace(libc, _PTRACE_GETREGSET, pid, _NT_X86_XSTATE, ctypes.byref(iov))
    _ptrace(libc, _PTRACE_DETACH, pid, 0, ctypes.c_void_p(signal.SIGSTOP))
    return gpr.raw, xbuf.raw[: iov.len]


@pytest.mark.timeout(60)
def test_g_of_a_live_process_matches_gdbserver() -> None:
    layout = _ours()
    code = _X87 + (_AVX if layout.xcr0 & arch.XSTATE_AVX else b"")
    code += (_AVX512 if layout.xcr0 & arch.XSTATE_AVX512 else b"") + _TAIL
    child = subprocess.Popen([sys.executable, "-c", _CHILD, code.hex()], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.read(1) == b"x"  # x87/AVX state is now set
        gpr, xstate = _snapshot(child.pid)
        layout = arch.layout_for(xstate)
        assert (layout.xcr0, layout.g_size) == (_ours().xcr0, _ours().g_size)
        ours = layout.encode_g(gpr, xstate)
        with gdbserver("--attach", "127.0.0.1:0", str(child.pid)) as server:
            _connect(server.rsp)
            theirs = bytes.fromhex(server.rsp.request("g").decode())
        assert len(theirs) == len(ours) == layout.g_size
        # gdbserver 13.1 reads every extended component at Intel's offset whatever the CPU (AMD's layout has no
        # MPX area, so its AVX-512 and PKRU sit lower): compare a register only where gdbserver reads it right.
        misplaced = {c.bit for c in xsave.XSAVE_COMPONENTS} - {
            bit for bit, at in arch.component_offsets(layout.xcr0, len(xstate)).items()
            if at == next(c.intel_offset for c in xsave.XSAVE_COMPONENTS if c.bit == bit)
        }  # fmt: skip
        differ = {}
        for reg in layout.registers:
            mine, gdbservers = (g[reg.g_offset : reg.g_offset + reg.byte_size] for g in (ours, theirs))
            if reg.component not in misplaced and mine != gdbservers:
                differ[reg.name] = (mine.hex(), gdbservers.hex())
        assert differ == {}
        assert layout.read_register(layout.regnum("ftag"), gpr, xstate) != b"\xff\xff\x00\x00"  # x87 in use
        if layout.xcr0 & arch.XSTATE_AVX:
            assert layout.read_register(layout.regnum("ymm1h"), gpr, xstate) == b"\xff" * 16
        if layout.xcr0 & arch.XSTATE_AVX512:
            for name, value in (("k1", b"\xff\xff" + bytes(6)), ("zmm1h", b"\xff" * 32), ("xmm17", b"\xff" * 16),
                                ("zmm17h", b"\xff" * 32)):  # fmt: skip
                assert layout.read_register(layout.regnum(name), gpr, xstate) == value, name
    finally:
        child.kill()
        child.wait(timeout=20)
        if child.stdout is not None:
            child.stdout.close()
