"""How a program is started: the launch settings GDB's `Q*` packets change before `vRun`.

A module of its own so that the CLI can launch the program before it imports the session and the
protocol layer (which it does only after printing `Listening on port`).
"""

from __future__ import annotations

import os


class LaunchSettings:
    """What extended-mode `vRun` uses: set by `Q*` packets before it (gdbserver defaults).

    A plain class, not a dataclass: the CLI builds one before `Listening on port`, and `dataclasses`
    costs ~5 ms to import.
    """

    def __init__(self, disable_randomization: bool = True, program: list[str] | None = None) -> None:
        self.disable_randomization = disable_randomization
        self.startup_with_shell = True
        self.environment: dict[str, str] = dict(os.environ)
        self.working_directory: str | None = None
        self.program: list[str] = [] if program is None else program

    def __repr__(self) -> str:
        return f"LaunchSettings(program={self.program!r}, working_directory={self.working_directory!r})"
