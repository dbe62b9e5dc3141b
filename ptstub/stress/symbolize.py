"""Addresses to `function+offset` names, for deadlock dumps (not on any hot path).

The mapping comes from /proc/PID/maps (proc(5)): the file mapped at an address and where that file's
offset 0 is mapped, which is the load bias of a PIE or shared library. Symbols come from the file's
.symtab, else its .dynsym (libc ships only the latter, so internal functions show as the nearest
exported one that contains the address, or as `library+offset`).
"""

from __future__ import annotations

import bisect
import functools
import os
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile


@dataclass(frozen=True, slots=True)
class Mapping:
    start: int
    end: int
    offset: int
    path: str


@functools.lru_cache(maxsize=64)
def _functions(path: str) -> tuple[list[int], list[tuple[int, str]], bool]:
    """Sorted start addresses, (size, name) for each, and whether the file is position independent."""
    entries: dict[int, tuple[int, str]] = {}
    with open(path, "rb") as f:
        elf = ELFFile(f)
        pie = elf.header["e_type"] == "ET_DYN"
        for section_name in (".symtab", ".dynsym"):
            section = elf.get_section_by_name(section_name)
            if section is None:
                continue
            for sym in section.iter_symbols():
                if sym["st_info"]["type"] == "STT_FUNC" and sym["st_value"] and sym.name:
                    entries.setdefault(sym["st_value"], (sym["st_size"], sym.name))
    starts = sorted(entries)
    return starts, [entries[s] for s in starts], pie


def read_maps(pid: int) -> list[Mapping]:
    """The file-backed mappings of `pid`; empty if the process is gone."""
    result = []
    try:
        with open(f"/proc/{pid}/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) < 6 or not fields[5].startswith("/"):
                    continue
                start, end = (int(x, 16) for x in fields[0].split("-"))
                result.append(Mapping(start, end, int(fields[2], 16), fields[5].rstrip("\n")))
    except OSError:
        return []
    return result


def _load_bias(maps: list[Mapping], path: str) -> int:
    return min((m.start - m.offset for m in maps if m.path == path), default=0)


def symbolize(maps: list[Mapping], address: int) -> str:
    """`name+0xoff` when a function symbol covers `address`, else `file+0xoff`, else ''."""
    mapping = next((m for m in maps if m.start <= address < m.end), None)
    if mapping is None:
        return ""
    path = mapping.path
    base = os.path.basename(path)
    try:
        starts, infos, pie = _functions(path)
    except (OSError, ELFError):
        return f"{base}+{address - mapping.start + mapping.offset:#x}"
    bias = _load_bias(maps, path) if pie else 0
    value = address - bias
    i = bisect.bisect_right(starts, value) - 1
    if i >= 0:
        size, name = infos[i]
        offset = value - starts[i]
        if offset < max(size, 1):
            return f"{name}+{offset:#x}" if offset else name
    return f"{base}+{value:#x}"
