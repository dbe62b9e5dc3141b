"""cffi build script (API mode) for ptstub's C helper.

The cdef is the part of each header between the CDEF markers, verbatim, so the headers stay the one
source of truth for the boundary. setuptools runs this at install time through `cffi_modules`.
"""

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HEADERS = ("ptcore.h", "agentexpr.h", "agenthit.h")
SOURCES = ("ptcore.c", "agentexpr.c", "agentprintf.c", "agenthit.c", "emulate_load.c")
CDEF = "".join(
    (HERE / name).read_text().split("/* CDEF-BEGIN */", 1)[1].split("/* CDEF-END */", 1)[0] for name in HEADERS
)


def _source(name: str) -> str:
    path = HERE / name
    return str(path.relative_to(Path.cwd())) if Path.cwd() in HERE.parents else str(path)


ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "ptstub._ptcore",
    '#include "ptcore.h"\n#include "agentexpr.h"\n#include "agenthit.h"',
    sources=[_source(name) for name in SOURCES],
    include_dirs=[str(HERE)],
    extra_compile_args=["-O2", "-std=gnu99", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
