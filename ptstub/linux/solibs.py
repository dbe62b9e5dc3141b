"""Shared libraries and thread-local storage, read from the program's own dynamic-linker data.

The SVR4 ABI makes the start of `struct r_debug` and `struct link_map` public (glibc's <link.h>):
    r_debug  { int r_version; link_map *r_map; Elf64_Addr r_brk; int r_state; Elf64_Addr r_ldbase; }
    link_map { Elf64_Addr l_addr; char *l_name; Elf64_Dyn *l_ld; link_map *l_next, *l_prev; }
The executable's DT_DEBUG entry points at r_debug once ld.so has started. Serving the list as
`qXfer:libraries-svr4:read` saves GDB dozens of `m` round trips per library change.

TLS on x86-64 (TLS variant II, "ELF Handling For Thread-Local Storage"): the thread pointer is
fs_base; `tcbhead_t` holds the DTV pointer at tp+8; DTV entries are 16 bytes ({void *val; void
*to_free}) indexed by module id, and module ids are handed out in link-map order to the modules that
have a PT_TLS segment. That lets `print tls_var` work without libthread_db.
"""

from __future__ import annotations

import errno as errno_mod
import functools
import os
import struct
from collections.abc import Callable

from ptstub.errors import TargetError
from ptstub.linux import symbols
from ptstub.values import frozen

DT_NULL, DT_DEBUG = 0, 21
TLS_DTV_UNALLOCATED = (1 << 64) - 1
MAX_LIBRARIES = 4096

ReadMemory = Callable[[int, int], bytes]


@frozen
class Library:
    """One entry of the dynamic linker's list."""

    name: bytes
    lm: int
    l_addr: int
    l_ld: int


def _u64(read: ReadMemory, address: int) -> int:
    data = read(address, 8)
    if len(data) != 8:
        raise TargetError(f"cannot read 8 bytes at {address:#x}")
    return int.from_bytes(data, "little")


def _c_string(read: ReadMemory, address: int, limit: int = 4096) -> bytes:
    if not address:
        return b""
    data = read(address, 256)
    while b"\0" not in data and len(data) < limit:
        more = read(address + len(data), 256)
        if not more:
            break
        data += more
    return data.split(b"\0", 1)[0]


PT_DYNAMIC, PT_TLS = 2, 7
ET_DYN = 3
_ELF64_LE = b"\x7fELF\x02\x01"


@functools.lru_cache(maxsize=64)
def _elf_facts(path: str, mtime_ns: int) -> tuple[int, int, bool, bool]:
    """(PT_DYNAMIC vaddr, e_type is ET_DYN, has PT_TLS, DT_DEBUG in the dynamic section) of an x86-64 ELF.

    Read with `struct` from the ELF header, the program headers and the PT_DYNAMIC segment's bytes in
    the file (elf(5)): pyelftools takes ~50 ms to import, and this runs on GDB's connect path
    (`qXfer:libraries-svr4:read`, which asks for DT_DEBUG before ld.so has filled it in).
    """
    with open(path, "rb") as f:
        header = f.read(64)
        if len(header) < 64 or not header.startswith(_ELF64_LE):
            raise ValueError(f"{path}: not a 64-bit little-endian ELF file")
        (e_type,) = struct.unpack_from("<H", header, 16)
        (e_phoff,) = struct.unpack_from("<Q", header, 32)
        e_phentsize, e_phnum = struct.unpack_from("<HH", header, 54)
        if e_phentsize < 56:
            raise ValueError(f"{path}: bad program header size {e_phentsize}")
        f.seek(e_phoff)
        table = f.read(e_phentsize * e_phnum)
        if len(table) < e_phentsize * e_phnum:
            raise ValueError(f"{path}: truncated program headers")
        dynamic = 0
        dynamic_bytes = b""
        has_tls = False
        for offset in range(0, len(table), e_phentsize):
            (p_type,) = struct.unpack_from("<I", table, offset)
            if p_type == PT_DYNAMIC:
                p_offset, dynamic, _, p_filesz = struct.unpack_from("<QQQQ", table, offset + 8)
                f.seek(p_offset)
                dynamic_bytes = f.read(min(p_filesz, 16 * 4096))
            elif p_type == PT_TLS:
                has_tls = True
    has_debug = False
    for offset in range(0, len(dynamic_bytes) - 15, 16):
        (tag,) = struct.unpack_from("<q", dynamic_bytes, offset)
        if tag == DT_NULL:
            break
        if tag == DT_DEBUG:
            has_debug = True
            break
    return dynamic, int(e_type == ET_DYN), has_tls, has_debug


def elf_facts(path: str) -> tuple[int, bool, bool]:
    dynamic, pie, tls, _ = _elf_facts(path, os.stat(path).st_mtime_ns)
    return dynamic, bool(pie), tls


def has_debug_tag(executable: str) -> bool:
    """Whether the dynamic section has a DT_DEBUG entry at all (ld.so's own has none)."""
    try:
        return _elf_facts(executable, os.stat(executable).st_mtime_ns)[3]
    except (OSError, ValueError):
        return True


def is_static(executable: str) -> bool:
    """No PT_DYNAMIC: a static executable, which has no dynamic linker and no link maps."""
    try:
        return not elf_facts(executable)[0]
    except (OSError, ValueError):
        return False


def r_debug_address(read: ReadMemory, executable: str, load_base: int) -> int:
    """Address of `struct r_debug` from the executable's DT_DEBUG, or 0 before ld.so filled it in."""
    dynamic, pie, _ = elf_facts(executable)
    if not dynamic:
        return 0  # static executable: no dynamic linker
    address = dynamic + (load_base if pie else 0)
    for _ in range(512):
        entry = read(address, 16)
        if len(entry) != 16:
            return 0
        tag, value = struct.unpack("<qQ", entry)
        if tag == DT_NULL:
            return 0
        if tag == DT_DEBUG:
            return value
        address += 16
    return 0


def link_maps(read: ReadMemory, r_debug: int) -> list[Library]:
    """Every link_map entry, the executable's first (its name is empty)."""
    result: list[Library] = []
    lm = _u64(read, r_debug + 8)
    seen = set()
    while lm and lm not in seen and len(result) < MAX_LIBRARIES:
        seen.add(lm)
        raw = read(lm, 40)
        if len(raw) != 40:
            break
        l_addr, l_name, l_ld, l_next, _ = struct.unpack("<5Q", raw)
        result.append(Library(_c_string(read, l_name), lm, l_addr, l_ld))
        lm = l_next
    return result


def tls_address(read: ReadMemory, libraries: list[Library], executable: str, fs_base: int, offset: int, lm: int) -> int:
    """Address of the TLS variable at `offset` in module `lm` for the thread whose fs_base is given.

    A static executable has no link maps (GDB sends lm 0): its TLS block is module 1 of the DTV,
    which static glibc sets up too (gdb.threads/staticthreads.exp).
    """
    module_id = 0
    if not libraries and lm == 0:
        try:
            static_tls = elf_facts(executable)[2]
        except (OSError, ValueError):
            static_tls = False
        if not static_tls:
            raise TargetError(f"{executable or '?'} has no thread-local storage")
        module_id = 1
    for index, library in enumerate(libraries):
        path = executable if index == 0 else os.fsdecode(library.name)
        try:
            has_tls = bool(path) and elf_facts(path)[2]
        except (OSError, ValueError):
            has_tls = False
        if has_tls:
            module_id += 1
        if library.lm == lm:
            if not has_tls:
                raise TargetError(f"module {path or '?'} has no thread-local storage")
            break
    else:
        if module_id != 1 or lm != 0:
            raise TargetError(f"no loaded module with link map {lm:#x}")
    dtv = _u64(read, fs_base + 8)
    block = _u64(read, dtv + 16 * module_id)
    if block in (0, TLS_DTV_UNALLOCATED):
        raise TargetError("thread-local storage not allocated yet for this thread")
    return block + offset


def loaded_libraries(read: ReadMemory, pid: int, executable: str) -> tuple[int, list[Library]]:
    """(the executable's link_map address, the shared libraries after it), from r_debug."""
    r_debug = r_debug_address(read, executable, _load_base(pid, executable))
    if not r_debug and not is_static(executable) and not has_debug_tag(executable):
        # Started as `ld.so PROG`: /proc/PID/exe is ld.so, which has no DT_DEBUG. gdbserver
        # answers E01 here and GDB then finds r_debug itself (gdb.server/solib-list.exp).
        raise TargetError(f"{executable} has no DT_DEBUG entry")
    if not r_debug:
        return 0, []
    maps = link_maps(read, r_debug)
    if not maps:
        return 0, []
    return maps[0].lm, maps[1:]


def thread_local_address(read: ReadMemory, pid: int, executable: str, fs_base: int, offset: int, lm: int) -> int:
    """Address of a thread-local variable of the thread whose fs_base is given (`offset` in the module
    whose link_map is `lm`; 0 for a static executable's own)."""
    r_debug = r_debug_address(read, executable, _load_base(pid, executable))
    if not r_debug and not (lm == 0 and is_static(executable)):
        raise TargetError("the dynamic linker has not started yet")
    libraries = link_maps(read, r_debug) if r_debug else []
    return tls_address(read, libraries, executable, fs_base, offset, lm)


def _load_base(pid: int, executable: str) -> int:
    try:
        return symbols.load_base(pid, executable)
    except (TargetError, OSError):
        return 0


def read_auxv(pid: int) -> bytes:
    """The auxiliary vector the kernel gave process `pid` (/proc/PID/auxv, proc(5))."""
    try:
        with open(f"/proc/{pid}/auxv", "rb") as f:
            return f.read()
    except OSError as err:
        raise TargetError(f"cannot read auxv: {err.strerror}", err.errno or errno_mod.EIO) from None
