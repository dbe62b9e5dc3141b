"""ELF symbol lookup for the Python API and the stress harness (pyelftools), relocated for PIE.

Only the main executable is searched: tests and the harness name functions and globals of the program
itself. The load base comes from /proc/PID/maps (the mapping of the executable at file offset 0),
which the kernel has set up by the time the exec stop is reported.
"""

from __future__ import annotations

import functools
import os

from ptstub.errors import TargetError


@functools.lru_cache(maxsize=32)
def _symbol_table(path: str, mtime_ns: int) -> tuple[dict[str, int], bool]:
    """Map of symbol name -> st_value for defined functions and objects, and whether it is PIE."""
    # Imported here: pyelftools takes ~50 ms to import, and only the API and the harness look up symbols.
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    table: dict[str, int] = {}
    with open(path, "rb") as f:
        elf = ELFFile(f)
        pie = elf.header["e_type"] == "ET_DYN"
        for section_name in (".dynsym", ".symtab"):
            section = elf.get_section_by_name(section_name)
            if not isinstance(section, SymbolTableSection):
                continue
            for sym in section.iter_symbols():
                if sym.name and sym["st_shndx"] != "SHN_UNDEF" and sym["st_value"]:
                    table[sym.name] = sym["st_value"]
    return table, pie


def load_base(pid: int, path: str) -> int:
    """Where the executable's file offset 0 is mapped in `pid` (0 for a non-PIE executable)."""
    real = os.path.realpath(path)
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and int(fields[2], 16) == 0 and fields[5].strip() == real:
                return int(fields[0].split("-")[0], 16)
    raise TargetError(f"cannot find where {path} is mapped in process {pid}")


def resolve_symbol(pid: int, path: str, name: str) -> int:
    """Runtime address of `name` in the executable `path` as loaded in `pid`."""
    table, pie = _symbol_table(path, os.stat(path).st_mtime_ns)
    try:
        value = table[name]
    except KeyError:
        raise TargetError(f"no symbol {name!r} in {path}") from None
    return value + load_base(pid, path) if pie else value
