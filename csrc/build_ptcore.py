"""cffi build script (API mode) for ptstub's C helper.

The cdef is the part of `ptcore.h` between the CDEF markers, verbatim, so the header stays the one
source of truth for the boundary. setuptools runs this at install time through `cffi_modules`.
"""

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HEADER = (HERE / "ptcore.h").read_text()
CDEF = HEADER.split("/* CDEF-BEGIN */", 1)[1].split("/* CDEF-END */", 1)[0]

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "ptstub._ptcore",
    '#include "ptcore.h"',
    sources=[
        str((HERE / "ptcore.c").relative_to(Path.cwd())) if Path.cwd() in HERE.parents else str(HERE / "ptcore.c")
    ],
    include_dirs=[str(HERE)],
    extra_compile_args=["-O2", "-std=gnu99", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
