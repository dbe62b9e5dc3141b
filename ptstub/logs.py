"""ptstub's loggers (`ptstub.rsp`, `ptstub.events`, ...), without importing `logging` at start-up.

`logging` and what it imports (traceback, threading, string, weakref, tokenize) cost ~8 ms of CPU,
more than the rest of the way to `Listening on port`, and ptstub only logs at debug level, off by
default. `logger(name)` returns a stand-in whose `debug` hands the record to `logging.getLogger(name)`
once anything has imported `logging`; before that no handler or level can have been configured, so
the record would be dropped by the default WARNING level anyway: the stand-in drops it the same way.
`configure(debug)` and `set_debug(on)` are the CLI's `--debug` and `monitor set debug`.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not `typing`'s, for the same reason
if TYPE_CHECKING:
    from typing import Any

_FORMAT = "%(name)s: %(message)s"


class LazyLogger:
    """`logging.getLogger(name)` as far as ptstub uses it (`debug`), loaded on first real use."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def debug(self, message: str, *args: Any) -> None:
        logging = sys.modules.get("logging")
        if logging is not None:
            logging.getLogger(self.name).debug(message, *args)


def logger(name: str) -> LazyLogger:
    return LazyLogger(name)


def configure(debug: bool) -> None:
    """The CLI's logging: with `--debug`, every ptstub record on stderr; without, nothing is set up."""
    if debug:
        set_debug(True)


def set_debug(on: bool) -> None:
    """Turn ptstub's debug records on or off (stderr, `name: message`, unless a handler is already set)."""
    import logging

    if on and not logging.getLogger().handlers and not logging.getLogger("ptstub").handlers:
        logging.basicConfig(level=logging.WARNING, format=_FORMAT, stream=sys.stderr)
    logging.getLogger("ptstub").setLevel(logging.DEBUG if on else logging.WARNING)
