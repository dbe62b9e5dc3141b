"""Import costs that must stay off the start-up path (design-notes: "Speed with GDB in the loop").

Each check runs a fresh interpreter, because this test process has long since imported everything.
"""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return set(result.stdout.split())


@pytest.mark.parametrize("statement", ["import ptstub", "import ptstub.pytest_plugin"])
def test_package_import_loads_no_engine(statement: str) -> None:
    loaded = _loaded_after(statement)
    assert "ptstub._ptcore" not in loaded
    assert "ptstub.linux" not in loaded
    assert "elftools" not in loaded


def test_package_names_still_resolve() -> None:
    loaded = _loaded_after("import ptstub; ptstub.launch; ptstub.attach; ptstub.Inferior; ptstub.TargetError")
    assert "ptstub._ptcore" in loaded


def test_framing_does_not_load_the_command_parser() -> None:
    loaded = _loaded_after("import ptstub.rsp.framing")
    assert "ptstub.rsp.commands" not in loaded


def test_engine_and_connection_loop_need_no_pyelftools() -> None:
    # pyelftools is for the API's symbol lookup; serving GDB (libraries-svr4 included) reads ELF headers itself.
    loaded = _loaded_after("import ptstub.cli, ptstub.loop, ptstub.linux, ptstub.session")
    assert not any(name.startswith("elftools") for name in loaded)


def test_session_import_leaves_out_the_osdata_tables() -> None:
    # `info os` is rare; osdata's imports (once xml.sax.saxutils, which loads urllib, http and email:
    # ~50 ms) were on the path between `Listening on port` and the answer to GDB's qSupported.
    loaded = _loaded_after("import ptstub.cli, ptstub.loop, ptstub.session")
    assert "ptstub.linux.osdata" not in loaded
    assert not {"urllib.request", "http.client", "xml.sax"} & loaded


def test_dt_debug_is_found_without_pyelftools() -> None:
    # qXfer:libraries-svr4 asks for DT_DEBUG before ld.so ran (r_debug still 0): answered from the
    # PT_DYNAMIC segment with struct, the same as pyelftools' section walk, without importing it.
    code = (
        "import sys; from ptstub.linux import solibs; "
        "print(solibs.has_debug_tag(sys.executable), solibs.has_debug_tag('/lib64/ld-linux-x86-64.so.2'), "
        "any(n.startswith('elftools') for n in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == ["True", "False", "False"]


def test_serving_imports_no_typing_logging_or_dataclasses() -> None:
    # Each costs milliseconds of CPU before GDB's first prompt (design-notes: "Start-up"); values use
    # ptstub.values.frozen, loggers ptstub.logs, and typing names live under TYPE_CHECKING.
    loaded = _loaded_after("import ptstub.cli, ptstub.loop, ptstub.linux, ptstub.session")
    assert not {"typing", "logging", "dataclasses", "inspect"} & loaded


def test_debug_logging_still_reaches_stderr() -> None:
    code = (
        "from ptstub import logs; log = logs.logger('ptstub.rsp'); log.debug('before %d', 1); "
        "logs.configure(True); log.debug('after %d', 2)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stderr == "ptstub.rsp: after 2\n"
