"""What the engine reports and what it lets through: its option bits (`PT_OPT_*`, csrc/ptcore.h) and the
mask of signals delivered without a stop (GDB's QPassSignals, "General Query Packets").

Both are plain values computed here and handed to the engine in one setter call each
(`pt_set_options`, `pt_set_pass_signals`), which keep the engine's own invariants.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ptstub.linux.ffi import lib

_PASS_MASKS: dict[frozenset[int], int] = {}  # QPassSignals lists seen -> the engine's signal mask


def pass_mask(signals: Collection[int]) -> int:
    """The engine's mask for `signals`: bit sig - 1 for each signal 1..64."""
    mask = _PASS_MASKS.get(signals) if isinstance(signals, frozenset) else None
    if mask is None:
        mask = 0
        for sig in signals:
            if 0 < sig <= 64:
                mask |= 1 << (sig - 1)
        if isinstance(signals, frozenset) and len(_PASS_MASKS) < 64:
            # GDB sends the same two lists at every stop of a breakpoint loop (empty while it steps
            # over a breakpoint, its pass list after): one lookup instead of a loop over the list.
            _PASS_MASKS[signals] = mask
    return mask


# The engine's options by the name `Inferior.set_options` takes. `thread_exits`: report the end of each
# thread but the leader as `ThreadExited` (GDB's QThreadEvents).
OPTIONS = {
    "fork_events": lib.PT_OPT_FORK_EVENTS,
    "eintr_fixup": lib.PT_OPT_EINTR_FIXUP,
    "catch_syscalls": lib.PT_OPT_CATCH_SYSCALLS,
    "thread_exits": lib.PT_OPT_THREAD_EXITS,
}


def changed_options(options: int, wanted: Mapping[str, bool | None]) -> int:
    """`options` with each bit `wanted` names set or cleared as it says (None: left as it is)."""
    for name, on in wanted.items():
        bit = OPTIONS.get(name)
        if bit is None:
            raise TypeError(f"no engine option {name!r}")
        if on is not None:
            options = options | bit if on else options & ~bit
    return options
