"""Thread names in GDB's thread list, against ptstub and gdbserver with the same script.

ptstub reads a thread's name (/proc comm) when the thread is first listed, for the thread of each
stop, and for every thread when GDB asks for the list a second time within one stop (a user's
`info threads`); gdbserver reads every name at every request. The scripts check what a user sees
either way: a thread renamed while the program is stopped (by an inferior call made with the other
threads held) shows its new name in `info threads`, a thread that renamed itself shows it in the stop
line, and after thread churn the list holds exactly the live threads.
"""

from __future__ import annotations

import re

from tests.gdb.stubs import run_gdb_script, running_stub

THREADS = 3

RENAME_SCRIPT = f"""import gdb

gdb.execute("break thread_ready")
for _ in range({THREADS}):
    gdb.execute("continue")
gdb.execute("info threads")
gdb.execute("set scheduler-locking on")  # only the stopped thread runs the calls below
inf = gdb.selected_inferior()
me = gdb.selected_thread()
other = next(t for t in sorted(inf.threads(), key=lambda t: t.num) if t != me and t.num != 1)
other_handle = int.from_bytes(other.handle(), "little")
rc = int(gdb.parse_and_eval(f'(int) pthread_setname_np({{other_handle}}, "renamed-other")'))
print("SETNAME-OTHER", rc, other.num)
rc = int(gdb.parse_and_eval('(int) pthread_setname_np((unsigned long) pthread_self(), "renamed-self")'))
print("SETNAME-SELF", rc, me.num)
listing = gdb.execute("info threads", to_string=True)
for line in listing.splitlines():
    print("LIST", line)
print("OTHER", other.num, "SELF", me.num)
gdb.execute("kill")
"""


def _named(listing: str, num: str) -> str:
    for line in listing.splitlines():
        fields = line.replace("*", " ").split()
        if fields and fields[0] == num:
            found = re.search(r'"([^"]*)"', line)
            return found.group(1) if found else ""
    raise AssertionError(f"thread {num} not listed:\n{listing}")


def test_a_thread_renamed_while_stopped_shows_its_new_name(stub: str, fixture_path) -> None:
    program = fixture_path("simple")
    with running_stub(stub, ["--once", "127.0.0.1:0", program, "--iterations", "2", "--threads", str(THREADS)]) as s:
        out = run_gdb_script(s.port, program, RENAME_SCRIPT).output
    assert "Traceback" not in out, out
    assert re.search(r"SETNAME-OTHER 0 \d+", out) and re.search(r"SETNAME-SELF 0 \d+", out), out
    nums = re.search(r"OTHER (\d+) SELF (\d+)", out)
    assert nums is not None, out
    listing = "\n".join(line[5:] for line in out.splitlines() if line.startswith("LIST "))
    assert _named(listing, nums.group(1)) == "renamed-other", listing
    assert _named(listing, nums.group(2)) == "renamed-self", listing
    assert _named(listing, "1") == "simple", listing


CHURN_SCRIPT = """import gdb

gdb.execute("break hit_target")
gdb.execute("continue")
for stop in range(20):
    gdb.execute("continue")
listed = sorted(t.ptid[1] for t in gdb.selected_inferior().threads())
gdb.execute("info threads", to_string=True)
listed_again = sorted(t.ptid[1] for t in gdb.selected_inferior().threads())
pid = gdb.selected_inferior().pid
import os


def alive(tid):  # neither a zombie nor on its way out (PF_EXITING, 0x4: held at its exit event)
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] not in "ZX" and not int(fields[6]) & 0x4


live = sorted(int(tid) for tid in os.listdir(f"/proc/{pid}/task") if alive(tid))
print("LISTED", listed == live, listed_again == live, len(live))
names = {t.ptid[1]: t.name for t in gdb.selected_inferior().threads()}
print("NAMES", sorted(set(names.values())))
gdb.execute("kill")
"""


def test_the_thread_list_is_exact_after_churn(stub: str, fixture_path) -> None:
    """Short-lived threads come and go between stops (tids reused): GDB's list is the live threads (a
    zombie, or a thread held at its exit event, is no longer one)."""
    program = fixture_path("stress")
    args = ["--threads", "2", "--calls", "100000", "--syscall", "none", "--churn", "8", "--idle", "20"]
    with running_stub(stub, ["--once", "127.0.0.1:0", program, *args]) as s:
        out = run_gdb_script(s.port, program, CHURN_SCRIPT).output
    assert "Traceback" not in out, out
    found = re.search(r"LISTED (\w+) (\w+) (\d+)", out)
    assert found is not None and found.group(1) == found.group(2) == "True", out
    # Not vacuous: the 20 idle threads are all up before the first hit (start_idle waits for them);
    # how many of the workers and spawners are live at the 21st stop depends on scheduling.
    assert int(found.group(3)) >= 20, out
    assert "NAMES ['stress']" in out, out
