"""Counters and timings of one engine, for `Inferior.stats` and the benchmarks (bench/bench_engine.py).

Each function takes the engine (`pt_engine *`) and reads or drives it through the C calls; `Inferior`'s
`stats`, `measure_stop_all` and `measure_stop_resume` call them."""

from __future__ import annotations

from collections.abc import Callable

from ptstub.linux import conditions
from ptstub.linux.ffi import check, ffi, lib

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any


def engine_stats(e: Any) -> dict[str, int]:
    """What the engine counted: stops, interrupts, restarts fixed up, emulated step-overs, strays, resume
    batches at SCHED_FIFO and at nice -15 (boost_begin), and the breakpoint hits it judged and passed
    by itself (ptstub/linux/conditions.py)."""
    judged, passed = conditions.counts(e)
    return {
        "stops": e.n_stops,
        "interrupts": e.n_interrupts,
        "eintr_fixups": e.n_eintr_fixups,
        "emulated_step_overs": e.n_emulated,
        "stray_detaches": e.n_strays,
        "late_detaches": e.n_late_detaches,
        "stale_stops": e.n_stale_stops,
        "last_stop_ns": e.last_stop_ns,
        "fifo_batches": e.n_fifo_batches,
        "nice_batches": e.n_nice_batches,
        "hits_judged": judged,
        "hits_passed": passed,
    }


def stop_all_rounds(e: Any, rounds: int) -> list[tuple[float, float]]:
    """With the world running: time `rounds` stop-alls and stop-all + resume cycles in C (seconds)."""
    stop = ffi.new("uint64_t[]", rounds)
    cycle = ffi.new("uint64_t[]", rounds)
    lib.pt_measure_stop_all(e, rounds, stop, cycle)
    return [(stop[i] / 1e9, cycle[i] / 1e9) for i in range(rounds)]


def stop_resume_rounds(e: Any, resume_every: Callable[[], None], rounds: int) -> list[tuple[float, float]]:
    """Like `stop_all_rounds`, through the public path: the engine's stop-all, then `resume_every()` (the
    process's `resume()` of every thread, with the engine's priority boost), timed to the end of the
    resume batch (`resumed_ns`: after it the tracer sleeps in its next wait and may be preempted
    harmlessly); seconds."""
    samples = []
    for _ in range(rounds):
        t0 = lib.pt_now_ns()
        check(lib.pt_stop_all(e), "stop all")
        t1 = lib.pt_now_ns()
        resume_every()
        samples.append(((t1 - t0) / 1e9, (e.resumed_ns - t0) / 1e9))
    return samples
