"""`ptstub stress`: shake a multi-threaded program with breakpoints and check the all-stop invariants.

Two faces share one report: `run_stress(config)` runs the program under ptstub's own engine in this
process (`engine.py`) or, with `config.stub`, through the real GDB against any gdbserver-compatible
stub started from a command template (`stub.py`). The command line is `ptstub.stress.cli`; the
pytest plugin is `ptstub.pytest_plugin`. docs/stress.md describes the checks and a CI job.
"""

from __future__ import annotations

from collections.abc import Callable

from ptstub.stress.model import (
    Churn,
    Report,
    StressConfig,
    StressSetupError,
    ThreadHits,
    Violation,
    ViolationKind,
)

__all__ = [
    "Churn",
    "Report",
    "StressConfig",
    "StressSetupError",
    "ThreadHits",
    "Violation",
    "ViolationKind",
    "run_stress",
]


def run_stress(config: StressConfig, progress: Callable[[int, float], None] | None = None) -> Report:
    """Run one stress scenario and return its report; StressSetupError when it cannot start."""
    if config.stub is not None:
        from ptstub.stress.stub import run_stub

        return run_stub(config, progress)
    from ptstub.stress.engine import run_engine

    return run_engine(config, progress)
