"""The live progress line (hits so far, rate, elapsed) on a terminal; nothing when stderr is not one.

`update` is called at every hit by the engine face, so it only compares a clock reading with the next
redraw time (five redraws a second); it writes `\\r...` and clears the rest of the line.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

REDRAW_EVERY_S = 0.2


class ProgressLine:
    """A self-overwriting status line on one terminal stream."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._next = 0.0
        self._start = time.monotonic()
        self._drawn = False

    @classmethod
    def for_stderr(cls) -> ProgressLine | None:
        """A progress line on stderr if it is a terminal, else None (CI logs get no progress noise)."""
        try:
            return cls(sys.stderr) if sys.stderr.isatty() else None
        except (AttributeError, ValueError):
            return None

    def update(self, hits: int, seconds: float) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + REDRAW_EVERY_S
        rate = hits / seconds if seconds > 0 else 0.0
        self._stream.write(f"\r  {hits:,} hits  {rate:,.0f} hits/s  {now - self._start:.1f} s elapsed\x1b[K")
        self._stream.flush()
        self._drawn = True

    def clear(self) -> None:
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._drawn = False
