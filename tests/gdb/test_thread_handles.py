"""Thread handles (the `handle` attribute of `qXfer:threads:read`) seen through GDB's Python API.

GDB's `Thread.handle()`, `Inferior.thread_from_handle()` and `$_thread`-style lookups by `pthread_t`
work only when the stub lists each thread's handle. The same script runs against ptstub and gdbserver
(which gets the handles from libthread_db): each thread that stops in `thread_ready` must own the handle
equal to its own `pthread_self()`, every listed thread must be found again from its handle, and before
the C library set up TLS (the first instruction) no thread has a handle yet.
"""

from __future__ import annotations

import re

from tests.gdb.stubs import run_gdb_script, running_stub

THREADS = 3

SCRIPT = f"""import gdb

inf = gdb.selected_inferior()
try:
    gdb.selected_thread().handle()
    print("EARLY-HANDLE present")
except RuntimeError as exc:
    print("EARLY-HANDLE none:", exc)

gdb.execute("break thread_ready")
for stop in range({THREADS}):
    gdb.execute("set scheduler-locking off")
    gdb.execute("continue")
    gdb.execute("set scheduler-locking on")  # the pthread_self() calls run only the stopped thread
    me = gdb.selected_thread()
    own = int(gdb.parse_and_eval("(unsigned long) pthread_self()"))
    handle = me.handle()
    assert handle == own.to_bytes(8, "little"), (handle.hex(), hex(own))
    by_value = inf.thread_from_handle(gdb.parse_and_eval("(unsigned long) pthread_self()"))
    assert by_value == me, (by_value, me)
    print("OWN-HANDLE", me.num, hex(own))

handles = {{}}
for t in inf.threads():
    h = t.handle()
    assert len(h) == 8 and h not in handles, h.hex()
    handles[h] = t
    assert inf.thread_from_handle(h) == t, t.num
print("LISTED-HANDLES", len(handles))
gdb.execute("kill")
"""


def test_thread_handles_match_pthread_self(stub: str, fixture_path) -> None:
    program = fixture_path("simple")
    with running_stub(stub, ["--once", "127.0.0.1:0", program, "--iterations", "2", "--threads", str(THREADS)]) as s:
        out = run_gdb_script(s.port, program, SCRIPT).output
    assert "EARLY-HANDLE none: Thread handle not found." in out, out
    assert len(set(re.findall(r"OWN-HANDLE (\d+) 0x[0-9a-f]+", out))) == THREADS, out
    assert f"LISTED-HANDLES {THREADS + 1}" in out, out
    assert "Traceback" not in out and "Error" not in out, out


RAW_CLONE_SCRIPT = """import gdb

gdb.execute("break both_ready")
gdb.execute("continue")
for t in sorted(gdb.selected_inferior().threads(), key=lambda t: t.num):
    try:
        print("HANDLE", t.num, t.handle().hex())
    except RuntimeError as exc:
        print("HANDLE", t.num, "none:", exc)
print("SELF", int(gdb.parse_and_eval("(unsigned long) pthread_self()")).to_bytes(8, "little").hex())
gdb.execute("kill")
"""


def test_a_raw_clone_on_its_parents_tls_has_no_handle(stub: str, fixture_path) -> None:
    """clone(2) without CLONE_SETTLS: the clone shares main's fs_base and is no pthread; main keeps the
    handle, the clone has none (gdbserver's libthread_db lookup finds main's tid and drops it)."""
    program = fixture_path("raw_clone")
    with running_stub(stub, ["--once", "127.0.0.1:0", program]) as s:
        out = run_gdb_script(s.port, program, RAW_CLONE_SCRIPT).output
    own = re.search(r"SELF ([0-9a-f]{16})", out)
    assert own is not None, out
    assert f"HANDLE 1 {own.group(1)}" in out, out
    assert "HANDLE 2 none: Thread handle not found." in out, out
