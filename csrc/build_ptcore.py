"""cffi build script (API mode) for ptstub's C helper.

The cdef is the part of each public header between the CDEF markers, verbatim, so the headers stay the
one source of truth for the boundary.  The engine is the csrc/ptcore_*.c files, one per job, which share
the private ptcore_internal.h; the agent-expression evaluator (agentexpr.c, agentprintf.c) and the
engine's conditions (agenthit.c, emulate_load.c) are built with it.  setuptools runs this at install
time through `cffi_modules`.
"""

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HEADERS = ("ptcore.h", "agentexpr.h", "agenthit.h")
AGENT_SOURCES = ("agentexpr.c", "agentprintf.c", "agenthit.c", "emulate_load.c")
CDEF = "".join(
    (HERE / name).read_text().split("/* CDEF-BEGIN */", 1)[1].split("/* CDEF-END */", 1)[0] for name in HEADERS
)


def _source(path: Path) -> str:
    """A source path relative to the build directory when it lies below it (setuptools wants that)."""
    return str(path.relative_to(Path.cwd())) if Path.cwd() in path.parents else str(path)


ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "ptstub._ptcore",
    "".join(f'#include "{name}"\n' for name in HEADERS),
    sources=[_source(path) for path in [*sorted(HERE.glob("ptcore_*.c")), *(HERE / n for n in AGENT_SOURCES)]],
    include_dirs=[str(HERE)],
    extra_compile_args=["-O2", "-std=gnu99", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
