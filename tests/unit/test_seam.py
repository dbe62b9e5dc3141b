"""The session speaks to the backend only through `ptstub.target` (docs/design-notes.md, "The seam").

The session package must not import `ptstub.linux` (not even inside a function): the Linux backend is
handed to it as a `Target`, a `ProcessGroup` and `HostServices` by whoever builds the session.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _session_sources() -> list[Path]:
    package = ROOT / "ptstub" / "session"
    single = ROOT / "ptstub" / "session.py"
    sources = sorted(package.glob("*.py")) if package.is_dir() else [single]
    assert sources, "no session code found"
    return sources


def _imported_modules(path: Path) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.append(node.module)
    return modules


def test_session_code_does_not_import_the_linux_backend() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in _session_sources()
        for module in _imported_modules(path)
        if module == "ptstub.linux" or module.startswith("ptstub.linux.")
    ]
    assert not offenders, offenders


def test_the_check_sees_a_linux_import(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text("def f():\n    from ptstub.linux.group import LinuxProcessGroup\n")
    assert _imported_modules(source) == ["ptstub.linux.group"]


def test_session_code_keeps_the_size_limits() -> None:
    """No file above 700 lines, no class above 400, no function above 80 (the project's limits)."""
    too_big = []
    for path in [*_session_sources(), ROOT / "ptstub" / "target.py", ROOT / "ptstub" / "events.py"]:
        source = path.read_text()
        if source.count("\n") > 700:
            too_big.append(f"{path.name}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            limit = 400 if isinstance(node, ast.ClassDef) else 80
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    too_big.append(f"{path.name}: {node.name} has {length} lines")
    assert not too_big, too_big
