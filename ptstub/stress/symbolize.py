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


@dataclass(frozen=True, slots=True)
class _Image:
    """A file's function symbols (sorted starts, (size, name) each) and its PT_LOAD (offset, vaddr, size)."""

    starts: list[int]
    infos: list[tuple[int, str]]
    segments: list[tuple[int, int, int]]


@functools.lru_cache(maxsize=64)
def _image(path: str) -> _Image:
    entries: dict[int, tuple[int, str]] = {}
    with open(path, "rb") as f:
        elf = ELFFile(f)
        segments = [
            (seg["p_offset"], seg["p_vaddr"], seg["p_filesz"])
            for seg in elf.iter_segments()
            if seg["p_type"] == "PT_LOAD"
        ]
        for section_name in (".symtab", ".dynsym"):
            section = elf.get_section_by_name(section_name)
            if section is None:
                continue
            for sym in section.iter_symbols():  # type: ignore[attr-defined]  # a SymbolTableSection
                if sym["st_info"]["type"] == "STT_FUNC" and sym["st_value"] and sym.name:
                    entries.setdefault(sym["st_value"], (sym["st_size"], sym.name))
    starts = sorted(entries)
    return _Image(starts, [entries[s] for s in starts], segments)


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


def _file_vaddr(image: _Image, file_offset: int) -> int | None:
    for offset, vaddr, size in image.segments:
        if offset <= file_offset < offset + max(size, 1):
            return vaddr + file_offset - offset
    return None


def symbolize(maps: list[Mapping], address: int) -> str:
    """`name+0xoff` when a function symbol covers `address`, else `file+0xoff`, else ''.

    The mapping that contains the address gives the file offset, and the file's PT_LOAD segments turn
    it into a link-time address, so a file mapped twice (qemu-user maps the guest's libc next to its
    own) is still resolved right.
    """
    mapping = next((m for m in maps if m.start <= address < m.end), None)
    if mapping is None:
        return ""
    file_offset = address - mapping.start + mapping.offset
    base = os.path.basename(mapping.path)
    try:
        image = _image(mapping.path)
    except (OSError, ELFError):
        return f"{base}+{file_offset:#x}"
    value = _file_vaddr(image, file_offset)
    if value is None:
        return f"{base}+{file_offset:#x}"
    i = bisect.bisect_right(image.starts, value) - 1
    if i >= 0:
        size, name = image.infos[i]
        offset = value - image.starts[i]
        if offset < max(size, 1):
            return f"{name}+{offset:#x}" if offset else name
    return f"{base}+{value:#x}"
