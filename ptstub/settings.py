"""How a program is started: the launch settings GDB's `Q*` packets change before `vRun`.

A module of its own so that the CLI can launch the program before it imports the session and the
protocol layer (which it does only after printing `Listening on port`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass
class LaunchSettings:
    """What extended-mode `vRun` uses: set by `Q*` packets before it (gdbserver defaults)."""

    disable_randomization: bool = True
    startup_with_shell: bool = True
    environment: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    working_directory: str | None = None
    program: list[str] = field(default_factory=list)
