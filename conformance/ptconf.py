"""GDB's own testsuite as ptstub's conformance gate.

This module is the whole tool behind ``conformance/run``; it uses the standard library only, so it runs
before (and without) ptstub being installed.

What it does, in order:

1. Fetch the testsuite that matches the installed ``/usr/bin/gdb``: ``apt-get source --download-only
   gdb=<installed version>`` with a *private* apt configuration (its own sources.list holding only
   ``deb-src`` lines, its own lists and cache directories, its own ``apt-get update``), so the system's
   apt sources and state are never touched.  Only ``gdb/testsuite`` and the few files its configure
   needs are unpacked.  Everything lives in the cache directory (``~/.cache/ptstub-conformance``).
2. Configure the testsuite once (``configure`` then ``make site.exp``); nothing else is built.
3. Write DejaGnu board files that start the stub exactly as the stock ``native-gdbserver`` and
   ``native-extended-gdbserver`` boards start gdbserver: they *load the stock board* and only change
   ``gdb_server_prog`` and the first port number (each parallel job slot gets its own port range).
4. Run each ``.exp`` file as its own ``runtest`` job (what ``make check-parallel`` does), with a per-file
   timeout, and after each file kill every process that job left behind (found by a per-job token in
   the environment, or by the job's output directory on the command line).
5. Parse every ``gdb.sum``, print per-directory counts per stub and board, and compare: a *regression* is
   a test name that PASSes under the reference (gdbserver, run now with ``--baseline`` or loaded from a
   checked-in JSON with ``--against``) and does not PASS under the stub; a *win* is the reverse.  Names
   listed in ``flaky.txt`` are reported apart and never fail the gate.

Exit status: 0 = no regression, 1 = regression(s), 2 = usage or environment error.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as _dt
import fnmatch
import glob
import json
import os
import platform
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent

FORMAT = "ptstub-conformance/1"
STATUSES = ("PASS", "FAIL", "XPASS", "XFAIL", "KPASS", "KFAIL", "UNRESOLVED", "UNTESTED", "UNSUPPORTED")
# Columns printed in the per-directory tables.
COLUMNS = ("PASS", "FAIL", "XFAIL", "ERROR", "UNRESOLVED", "UNTESTED", "UNSUPPORTED")
BOARDS = ("native", "extended")
STOCK_BOARD = {"native": "native-gdbserver", "extended": "native-extended-gdbserver"}
# Ports 10000-29999, below the kernel's ephemeral range (32768+), so port-0 users never collide.  They
# are cut into LANES lanes, one per concurrent invocation of this tool (claimed with a lock file), and
# a lane into one range per job slot: gdbserver_start bumps the port once per server it starts (up to
# ~100 per file), and a GDB that connects to another job's --once server would steal its connection.
PORT_FLOOR = 10000
LANES = 4
LANE_WIDTH = 5000
LOCK_DIR = Path("/tmp/ptstub-conformance-locks")
TOKEN_VAR = "PTCONF_JOB_TOKEN"
RUN_TOKEN_VAR = "PTCONF_RUN_TOKEN"
TRACEBACK_MARK = "Traceback (most recent call last)"
_STUB_FRAME = re.compile(r'File "[^"]*/ptstub/[^"]*\.py"')
# DejaGnu's close_wait_program leaves `sh -c "sleep 5 && kill ..."` timers behind by design: killed
# with the rest, but not reported as leftovers of the stub.
BENIGN_LEFTOVER = re.compile(r"^\d+ (sleep \d+|sh -c exec > /dev/null 2>&1 && sleep .*)$")

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class UsageError(Exception):
    """Bad options or an environment the tool cannot work in: exit status 2."""


def log(msg: str) -> None:
    print(f"[conformance] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# Results: parsing gdb.sum, counting, comparing (pure functions, unit-tested without processes)
# ------------------------------------------------------------------------------------------------

_SUM_LINE = re.compile(
    r"^(PASS|FAIL|XPASS|XFAIL|KPASS|KFAIL|UNRESOLVED|UNTESTED|UNSUPPORTED|ERROR|"
    r"WARNING|DUPLICATE|PATH): (.*?)\s*$"
)


@dataclass
class FileResult:
    """What one .exp file produced in one run."""

    exp: str  # e.g. "gdb.server/ext-run.exp"
    outcome: str = "ok"  # ok | timeout | no-summary | spawn-error
    seconds: float = 0.0
    tests: dict[str, str] = field(default_factory=dict)  # "gdb.x/y.exp: name" -> status
    errors: list[str] = field(default_factory=list)  # ERROR lines (no test name of their own)
    warnings: list[str] = field(default_factory=list)
    duplicates: int = 0
    tracebacks: int = 0  # Python tracebacks found in gdb.log (a stub crash)
    leftovers: list[str] = field(default_factory=list)  # processes killed after the file finished

    def counts(self) -> dict[str, int]:
        c = dict.fromkeys(STATUSES, 0)
        for status in self.tests.values():
            c[status] += 1
        c["ERROR"] = len(self.errors)
        return c

    def to_json(self) -> dict:
        return {
            "outcome": self.outcome,
            "seconds": round(self.seconds, 2),
            "counts": self.counts(),
            "errors": self.errors,
            "duplicates": self.duplicates,
            "tracebacks": self.tracebacks,
            "leftovers": self.leftovers,
        }


def parse_sum(text: str, exp: str) -> FileResult:
    """Parse the gdb.sum of a single-file runtest into a FileResult.

    Test names are ``<file>: <name>`` as DejaGnu prints them.  A name seen twice keeps both results:
    the second becomes ``<name> [2]`` (GDB's testsuite flags such names with DUPLICATE, but they still
    count).  ERROR lines carry no test name; they are kept in order per file.
    """
    res = FileResult(exp=exp)
    seen: dict[str, int] = {}
    for line in text.splitlines():
        m = _SUM_LINE.match(line)
        if not m:
            continue
        status, rest = m.group(1), m.group(2)
        if status == "ERROR":
            res.errors.append(rest)
        elif status == "WARNING":
            res.warnings.append(rest)
        elif status == "DUPLICATE":
            res.duplicates += 1
        elif status == "PATH":
            continue
        else:
            n = seen.get(rest, 0) + 1
            seen[rest] = n
            name = rest if n == 1 else f"{rest} [{n}]"
            res.tests[name] = status
    return res


def count_tracebacks(log_text: str) -> int:
    """Python tracebacks of the stub in a gdb.log (whose output expect logs there too).

    Only tracebacks with a frame in a ``ptstub/`` package file count: gdb.python-style tests print
    tracebacks of GDB's own Python on purpose (gdb.server/server-kill-python.exp does).
    """
    lines = log_text.splitlines()
    n = 0
    for i, line in enumerate(lines):
        if TRACEBACK_MARK not in line:
            continue
        for follow in lines[i + 1 : i + 60]:
            if TRACEBACK_MARK in follow:
                break
            if _STUB_FRAME.search(follow):
                n += 1
                break
    return n


def exp_dir(exp: str) -> str:
    return exp.split("/", 1)[0]


def counts_by_dir(files: dict[str, FileResult]) -> dict[str, dict[str, int]]:
    """Per testsuite directory: status counts plus files, timeouts and summed seconds."""
    out: dict[str, dict[str, int]] = {}
    for exp in sorted(files):
        fr = files[exp]
        d = out.setdefault(exp_dir(exp), {k: 0 for k in (*STATUSES, "ERROR", "files", "timeouts")})
        for k, v in fr.counts().items():
            d[k] += v
        d["files"] += 1
        d["timeouts"] += fr.outcome == "timeout"
        d["seconds"] = round(d.get("seconds", 0) + fr.seconds, 1)
    return out


def load_flaky(path: Path | None) -> list[str]:
    """Flaky test names (fnmatch patterns allowed), one per line; '#' starts a comment line."""
    if path is None or not path.exists():
        return []
    pats = []
    for line in path.read_text().splitlines():
        line = line.rstrip()
        if line and not line.lstrip().startswith("#"):
            pats.append(line.strip())
    return pats


def is_flaky(name: str, patterns: list[str]) -> bool:
    # A duplicate's " [n]" suffix belongs to the same test.
    base = re.sub(r" \[\d+\]$", "", name)
    return any(p == name or p == base or fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(base, p) for p in patterns)


@dataclass(frozen=True)
class KnownRegression:
    """One line of known-regressions.txt: a name or fnmatch pattern, the boards it holds on, why."""

    pattern: str
    reason: str
    boards: tuple[str, ...] = ("native", "extended")

    @property
    def non_stop(self) -> bool:
        return self.reason.lower().startswith("non-stop")

    def matches(self, name: str, board: str) -> bool:
        return board in self.boards and is_flaky(name, [self.pattern])


def parse_known(text: str) -> list[KnownRegression]:
    """`[board] PATTERN -- REASON` lines ('#' comments); board is optional (both), REASON required."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pattern, sep, reason = line.rpartition(" -- ")
        if not sep or not pattern.strip() or not reason.strip():
            raise UsageError(f"known regressions line {n}: expected 'PATTERN -- REASON', got {line!r}")
        boards: tuple[str, ...] = ("native", "extended")
        m = re.match(r"\[(native|extended)\]\s+(.*)$", pattern.strip())
        if m:
            boards, pattern = (m.group(1),), m.group(2)
        out.append(KnownRegression(pattern.strip(), reason.strip(), boards))
    return out


def load_known(path: Path | None) -> list[KnownRegression]:
    if path is None or not path.exists():
        return []
    return parse_known(path.read_text())


def known_for(name: str, board: str, known: list[KnownRegression]) -> KnownRegression | None:
    return next((k for k in known if k.matches(name, board)), None)


def stale_known(known: list[KnownRegression], comparisons: list, selection: set[str]) -> list[KnownRegression]:
    """Entries for files that were run on one of their boards and matched no regression there."""
    out = []
    for k in known:
        exp = k.pattern.split(": ", 1)[0]
        runs = [c for c in comparisons if c.board in k.boards]
        if exp not in selection or not runs:
            continue
        if not any(k.matches(e["name"], c.board) for c in runs for e in c.known):
            out.append(k)
    return out


# ------------------------------------------------------------------------------------------------
# CPU-dependent files: their results follow the host's CPU, not only the stub
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuDependent:
    """One line of cpu-dependent.txt: files whose results depend on these CPU features.

    A feature is a ``/proc/cpuinfo`` flag (``avx512f``, ``pku``) or ``vendor``: the XSAVE layout, hence
    where a stub finds a register, differs between vendors (gdbserver 13.1 assumes Intel's offsets).
    """

    pattern: str
    features: tuple[str, ...]


def parse_cpu_dependent(text: str) -> list[CpuDependent]:
    """`PATTERN -- FEATURE...` lines ('#' comments); at least one feature per line."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        pattern, sep, feats = line.partition(" -- ")
        if not sep or not pattern.strip() or not feats.split():
            raise UsageError(f"cpu-dependent line {n}: expected 'PATTERN -- FEATURE...', got {line!r}")
        out.append(CpuDependent(pattern.strip(), tuple(feats.split())))
    return out


def load_cpu_dependent(path: Path | None) -> list[CpuDependent]:
    if path is None or not path.exists():
        return []
    return parse_cpu_dependent(path.read_text())


def cpu_profile(cpuinfo: str) -> dict:
    """The host's CPU as a baseline records it: vendor, model name and every flag of the first CPU.

    The kernel lists a flag only when the feature is usable: it clears e.g. ``avx512f`` when XCR0 does
    not enable the AVX-512 state, so the flags are what a debugged program (and a stub) can use.
    """
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break  # first processor only: the others are the same CPU
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return {
        "vendor": fields.get("vendor_id", ""),
        "model": fields.get("model name", ""),
        "flags": sorted(set(fields.get("flags", "").split())),
    }


def host_cpu_profile(path: str = "/proc/cpuinfo") -> dict:
    try:
        return cpu_profile(Path(path).read_text())
    except OSError:
        return {"vendor": "", "model": "", "flags": []}


def _feature(profile: dict, feature: str) -> str | bool:
    return profile.get("vendor", "") if feature == "vendor" else feature in profile.get("flags", ())


def cpu_live_files(
    selection: list[str], deps: list[CpuDependent], base_profile: dict | None, host_profile: dict
) -> dict[str, str]:
    """Selected CPU-dependent files whose baseline results do not hold on this host, with the reason.

    A file is live (gdbserver runs it again here) when the baseline's CPU differs from the host's in
    one of the file's features, or when the baseline records no CPU at all.
    """
    out: dict[str, str] = {}
    for exp in selection:
        dep = next((d for d in deps if fnmatch.fnmatchcase(exp, d.pattern)), None)
        if dep is None:
            continue
        if base_profile is None:
            out[exp] = "the baseline records no CPU"
            continue
        differ = [f for f in dep.features if _feature(base_profile, f) != _feature(host_profile, f)]
        if differ:
            out[exp] = "CPU differs from the baseline's in " + ", ".join(differ)
    return out


def test_file(name: str) -> str:
    """The .exp file of a test name (``gdb.arch/x.exp: name`` -> ``gdb.arch/x.exp``)."""
    return name.split(": ", 1)[0]


def reference_tests(base: dict[str, str], live: dict[str, str], live_files: set[str]) -> dict[str, str]:
    """The baseline's results, with those of the live files replaced by this host's gdbserver run."""
    out = {n: s for n, s in base.items() if test_file(n) not in live_files}
    out.update({n: s for n, s in live.items() if test_file(n) in live_files})
    return out


# ------------------------------------------------------------------------------------------------
# Comparing
# ------------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    board: str
    reference: str  # what the reference was (e.g. "gdbserver (this run)" or a file name)
    current: str
    regressions: list[dict] = field(default_factory=list)
    wins: list[dict] = field(default_factory=list)
    flaky_ignored: list[dict] = field(default_factory=list)
    known: list[dict] = field(default_factory=list)  # expected regressions (known-regressions.txt)
    unconfirmed: list[dict] = field(default_factory=list)  # regressed, then passed when run again

    def to_json(self) -> dict:
        return {
            "board": self.board,
            "reference": self.reference,
            "current": self.current,
            "regressions": self.regressions,
            "wins": self.wins,
            "flaky_ignored": self.flaky_ignored,
            "known": self.known,
            "unconfirmed": self.unconfirmed,
        }


def compare(
    ref: dict[str, str],
    cur: dict[str, str],
    *,
    files: set[str] | None = None,
    flaky: list[str] | None = None,
    board: str = "native",
    ref_label: str = "gdbserver",
    cur_label: str = "ptstub",
    known: list[KnownRegression] | None = None,
) -> Comparison:
    """Regressions: PASS in ref, not PASS (or absent) in cur.  Wins: the reverse.

    ``files`` restricts the comparison to tests of those .exp files (used when the current run is a
    subset of what the reference file holds).  Flaky names are moved to ``flaky_ignored``, names that
    ``known`` expects to regress on this board to ``known`` (with the reason); neither counts.
    """
    flaky = flaky or []
    known = known or []

    def in_scope(name: str) -> bool:
        return files is None or name.split(": ", 1)[0] in files

    cmp_ = Comparison(board=board, reference=ref_label, current=cur_label)
    for name in sorted(set(ref) | set(cur)):
        if not in_scope(name):
            continue
        r, c = ref.get(name, "missing"), cur.get(name, "missing")
        if r == "PASS" and c != "PASS":
            entry = {"name": name, "reference": r, "current": c}
            expected = known_for(name, board, known)
            if is_flaky(name, flaky):
                cmp_.flaky_ignored.append(entry)
            elif expected is not None:
                cmp_.known.append(entry | {"reason": expected.reason, "non_stop": expected.non_stop})
            else:
                cmp_.regressions.append(entry)
        elif c == "PASS" and r != "PASS":
            cmp_.wins.append({"name": name, "reference": r, "current": c})
    return cmp_


def unstable_names(runs: list[dict[str, str]]) -> dict[str, list[str]]:
    """Names whose status differs between repeated runs of the same stub and board.

    Returns name -> per-run statuses ("missing" where a run lacks the name).
    """
    out: dict[str, list[str]] = {}
    names = set().union(*runs) if runs else set()
    for name in sorted(names):
        sts = [r.get(name, "missing") for r in runs]
        if len(set(sts)) > 1:
            out[name] = sts
    return out


def format_table(title: str, by_dir: dict[str, dict[str, int]], wall: float | None = None) -> str:
    hdr = f"{title:<26}{'files':>6}" + "".join(f"{c[:6]:>8}" for c in COLUMNS) + f"{'t/o':>5}{'secs':>8}"
    lines = [hdr]
    total: dict[str, float] = {}
    for d in sorted(by_dir):
        row = by_dir[d]
        vals = {c: row.get(c, 0) for c in COLUMNS}
        vals["XFAIL"] = row.get("XFAIL", 0) + row.get("KFAIL", 0)
        lines.append(
            f"  {d:<24}{row['files']:>6}"
            + "".join(f"{vals[c]:>8}" for c in COLUMNS)
            + f"{row['timeouts']:>5}{row.get('seconds', 0):>8.0f}"
        )
        for k in (*COLUMNS, "files", "timeouts", "seconds"):
            total[k] = total.get(k, 0) + (vals[k] if k in vals else row.get(k, 0))
    if len(by_dir) > 1:
        lines.append(
            f"  {'total':<24}{int(total['files']):>6}"
            + "".join(f"{int(total[c]):>8}" for c in COLUMNS)
            + f"{int(total['timeouts']):>5}{total['seconds']:>8.0f}"
        )
    if wall is not None:
        lines.append(f"  (wall time of the whole invocation: {wall:.0f} s)")
    return "\n".join(lines)


def time_ratio(cur_files: dict[str, dict], ref_files: dict[str, dict]) -> tuple[int, float, float]:
    """(files, stub seconds, reference seconds) summed over the files both ran to the end (outcome ok):
    the testsuite's wall time with each stub on the same files, a timeout's fixed cost left out."""
    common = [
        e for e, f in cur_files.items() if f.get("outcome") == "ok" and ref_files.get(e, {}).get("outcome") == "ok"
    ]
    return len(common), sum(cur_files[e]["seconds"] for e in common), sum(ref_files[e]["seconds"] for e in common)


def format_time_ratio(board: str, stub: str, ratio: tuple[int, float, float], where: str) -> str:
    files, cur, ref = ratio
    value = f"{cur / ref:.2f}x" if ref else "n/a"
    return (
        f"testsuite time, {board}: {stub} {cur:.1f} s, gdbserver {ref:.1f} s over the same {files} file(s) "
        f"(sum of per-file wall times; gdbserver {where}): {value}"
    )


# ------------------------------------------------------------------------------------------------
# Selections
# ------------------------------------------------------------------------------------------------


def read_selection(path: Path) -> list[str]:
    """A selection list: one .exp path (relative to gdb/testsuite, globs allowed) per line."""
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def expand_selection(patterns: list[str], srcdir: Path) -> list[str]:
    """Expand globs against the testsuite; keep order, drop duplicates; unknown names are errors."""
    out: list[str] = []
    for pat in patterns:
        pat = pat.strip().lstrip("./")
        if "gdb/testsuite/" in pat:
            pat = pat.split("gdb/testsuite/", 1)[1]
        hits = (
            sorted(glob.glob(pat, root_dir=srcdir))
            if glob.has_magic(pat)
            else ([pat] if (srcdir / pat).is_file() else [])
        )
        hits = [h for h in hits if h.endswith(".exp") and h.count("/") == 1]
        if not hits:
            raise UsageError(f"no test file matches {pat!r} in {srcdir}")
        for h in hits:
            if h not in out:
                out.append(h)
    return out


# ------------------------------------------------------------------------------------------------
# Board files
# ------------------------------------------------------------------------------------------------


def board_name(stub: str, board: str) -> str:
    return f"ptconf-{stub}-{board}"


def board_text(stub: str, board: str, server_prog: str) -> str:
    """A DejaGnu board that is the stock gdbserver board with only the server program swapped.

    ``set_board_info`` never overrides a value already set, so ``gdb_server_prog`` is set *before*
    loading the stock board (whose gdbserver-base.exp would point it at ../../gdbserver/gdbserver).
    gdbserver-support.exp starts at port 2345 and bumps ``portnum`` before each server start; it is
    loaded after the board, so a write trace lifts the counter into this job's own range
    (from ``$PTCONF_PORT_BASE`` on, see ``port_base``) without changing how ports are chosen.
    """
    stock = STOCK_BOARD[board]
    prog = server_prog.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("[", "\\[")
    return f"""# Generated by conformance/run for stub {stub!r}, board {board!r}: do not edit.
# The stock {stock} board, with gdb_server_prog pointing at the stub under test.
set_board_info gdb_server_prog "{prog}"
load_board_description "{stock}"

global env ptconf_port_base
set ptconf_port_base 2345
if {{[info exists env(PTCONF_PORT_BASE)]}} {{
    set ptconf_port_base $env(PTCONF_PORT_BASE)
}}
proc ptconf_portnum_trace {{name1 name2 op}} {{
    global portnum ptconf_port_base
    if {{[string is integer -strict $portnum] && $portnum < $ptconf_port_base}} {{
        set portnum $ptconf_port_base
    }}
}}
trace add variable ::portnum write ptconf_portnum_trace
"""


def slot_width(jobs: int) -> int:
    return min(1000, LANE_WIDTH // max(jobs, 1))


def port_base(slot: int, lane: int = 0, jobs: int = 2) -> int:
    """First port of a job slot: lanes separate concurrent invocations, slots separate jobs."""
    return PORT_FLOOR + lane * LANE_WIDTH + slot * slot_width(jobs)


def claim_lane(lock_dir: Path = LOCK_DIR):
    """Hold one lane lock for the life of this process; returns (lane, open file)."""
    import fcntl

    lock_dir.mkdir(parents=True, exist_ok=True)
    for lane in range(LANES):
        f = open(lock_dir / f"lane-{lane}.lock", "w")  # noqa: SIM115 (held until exit)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        f.write(f"{os.getpid()}\n")
        f.flush()
        return lane, f
    raise UsageError(f"{LANES} invocations of conformance/run are already running (locks in {lock_dir})")


# ------------------------------------------------------------------------------------------------
# Environment: packages, testsuite download and configure
# ------------------------------------------------------------------------------------------------


def run_cmd(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    kw.setdefault("text", True)
    return subprocess.run(cmd, **kw)


def ensure_packages(pkgs_by_cmd: dict[str, str]) -> None:
    """Install (with the system's apt) the Debian packages whose command (or file, for a path) is missing."""
    missing = sorted({pkg for cmd, pkg in pkgs_by_cmd.items() if shutil.which(cmd) is None and not Path(cmd).is_file()})
    if not missing:
        return
    if os.geteuid() != 0:
        raise UsageError(f"missing packages {missing}; install them (apt-get install {' '.join(missing)})")
    log(f"installing {' '.join(missing)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run_cmd(["apt-get", "update", "-qq"], env=env)
    run_cmd(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)


def installed_gdb_version() -> str:
    try:
        out = run_cmd(["dpkg-query", "-W", "-f=${Version}", "gdb"], capture_output=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        raise UsageError("gdb is not installed as a Debian package (dpkg-query -W gdb failed)") from e
    if not out:
        raise UsageError("dpkg-query reports no version for gdb")
    return out


def upstream_version(debian_version: str) -> str:
    """'1:13.1-3+deb12u1' -> '13.1'."""
    v = debian_version.split(":", 1)[-1]
    return v.rsplit("-", 1)[0] if "-" in v else v


def os_codename() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"') or "bookworm"
    except OSError:
        pass
    return "bookworm"


def private_sources_list(codename: str, mirror: str = DEFAULT_MIRROR, security: str = DEFAULT_SECURITY_MIRROR) -> str:
    """deb-src lines only: main, its point-release updates and security, so any gdb the system
    installed from them has its source here."""
    sb = f"[signed-by={KEYRING}]"
    return (
        f"deb-src {sb} {mirror} {codename} main\n"
        f"deb-src {sb} {mirror} {codename}-updates main\n"
        f"deb-src {sb} {security} {codename}-security main\n"
    )


def apt_options(apt_dir: Path) -> list[str]:
    """apt -o options that confine apt to apt_dir: its own sources, lists and cache."""
    return [
        "-o",
        f"Dir::Etc::SourceList={apt_dir / 'sources.list'}",
        "-o",
        f"Dir::Etc::SourceParts={apt_dir / 'sources.list.d'}",
        "-o",
        f"Dir::State::Lists={apt_dir / 'lists'}",
        "-o",
        f"Dir::Cache={apt_dir / 'cache'}",
        # The download sandbox user (_apt) cannot write into root's home directory.
        "-o",
        "APT::Sandbox::User=root",
        "-o",
        "Acquire::Retries=3",
    ]


# gdb/nat headers the tests include: x86-cpuid.h (CPUID for the AVX, AVX-512, PKU, SSE and MPX checks)
# and the copy of GCC's cpuid.h it includes.
NAT_HEADERS = ("gdb/nat/x86-cpuid.h", "gdb/nat/x86-gcc-cpuid.h")

# Files a selection needs beyond the testsuite's own tools: (pattern of .exp paths, file, package).
# The gdb.arch stap tests assemble probes with <sys/sdt.h>; without it they are only UNTESTED.
EXTRA_PACKAGES = (("gdb.arch/*stap*.exp", "/usr/include/x86_64-linux-gnu/sys/sdt.h", "systemtap-sdt-dev"),)


def packages_for(selection: list[str]) -> dict[str, str]:
    """The {file: package} a selection needs (for ensure_packages)."""
    return {
        path: pkg
        for pattern, path, pkg in EXTRA_PACKAGES
        if any(fnmatch.fnmatchcase(exp, pattern) for exp in selection)
    }


class Testsuite:
    """The downloaded, unpacked and configured GDB testsuite in the cache directory."""

    def __init__(self, cache: Path, version: str):
        self.cache = cache
        self.version = version
        self.root = cache / f"gdb-{version}"
        self.apt_dir = cache / "apt"
        self.dl_dir = self.root / "download"
        self.src_top = self.root / "src" / f"gdb-{upstream_version(version)}"
        self.srcdir = self.src_top / "gdb" / "testsuite"
        self.build = self.root / "build"
        self.stamp = self.root / "configured.stamp"

    @property
    def ready(self) -> bool:
        return self.stamp.exists() and (self.build / "site.exp").exists() and self.srcdir.is_dir()

    def prepare(self, mirror: str, security: str) -> None:
        if not self.ready:
            self.root.mkdir(parents=True, exist_ok=True)
            self._download(mirror, security)
            self._unpack()
            self._configure()
            self.stamp.write_text(f"{self.version}\n")
        self._add_nat_headers(mirror, security)

    def _add_nat_headers(self, mirror: str, security: str) -> None:
        """Add NAT_HEADERS to a cache unpacked without them, beside the files already there.

        Another invocation may be running tests from this cache: nothing is removed, and each header
        appears whole (extracted aside, then renamed into place).
        """
        missing = [h for h in NAT_HEADERS if not (self.src_top / h).is_file()]
        if not missing:
            return
        top = self.src_top.name
        tmp = self.root / f"nat.part-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            self._download(mirror, security)  # a no-op while the source package is in the cache
            tarball = sorted(self.dl_dir.glob("*.orig.tar.*"))[0]
            run_cmd(["tar", "-xf", str(tarball), "-C", str(tmp), *(f"{top}/{h}" for h in missing)])
            for h in missing:
                (self.src_top / h).parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp / top / h, self.src_top / h)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _download(self, mirror: str, security: str) -> None:
        if list(self.dl_dir.glob("*.orig.tar.*")):
            return
        for d in ("lists/partial", "cache/archives/partial", "sources.list.d"):
            (self.apt_dir / d).mkdir(parents=True, exist_ok=True)
        (self.apt_dir / "sources.list").write_text(private_sources_list(os_codename(), mirror, security))
        opts = apt_options(self.apt_dir)
        log(f"apt-get update (private lists in {self.apt_dir})")
        run_cmd(["apt-get", *opts, "-qq", "update"])
        tmp = self.dl_dir.with_name("download.part")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        log(f"apt-get source --download-only gdb={self.version}")
        run_cmd(["apt-get", *opts, "-qq", "source", "--download-only", f"gdb={self.version}"], cwd=tmp)
        if not list(tmp.glob("*.orig.tar.*")):
            raise UsageError(f"apt-get source gave no orig tarball in {tmp}")
        shutil.rmtree(self.dl_dir, ignore_errors=True)
        tmp.rename(self.dl_dir)

    def _unpack(self) -> None:
        tarball = sorted(self.dl_dir.glob("*.orig.tar.*"))[0]
        top = f"gdb-{upstream_version(self.version)}"
        src = self.root / "src"
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        log(f"unpacking {top}/gdb/testsuite from {tarball.name}")
        # configure looks for install-sh/config.* two levels up; the Makefile includes gdb/*.mk; the
        # gdb.arch x86 tests and lib/gdb.exp's have_avx/have_mpx compile with -I$srcdir/../nat.
        run_cmd(
            [
                "tar",
                "-xf",
                str(tarball),
                "-C",
                str(src),
                "--wildcards",
                f"{top}/gdb/testsuite",
                f"{top}/install-sh",
                f"{top}/config.guess",
                f"{top}/config.sub",
                f"{top}/gdb/*.mk",
                *(f"{top}/{h}" for h in NAT_HEADERS),
            ]
        )

    def _configure(self) -> None:
        shutil.rmtree(self.build, ignore_errors=True)
        self.build.mkdir(parents=True)
        log("configuring the testsuite")
        with open(self.build / "configure.log", "w") as out:
            run_cmd([str(self.srcdir / "configure")], cwd=self.build, stdout=out, stderr=subprocess.STDOUT)
            run_cmd(["make", "site.exp"], cwd=self.build, stdout=out, stderr=subprocess.STDOUT)


# ------------------------------------------------------------------------------------------------
# Stubs
# ------------------------------------------------------------------------------------------------


def resolve_server_prog(stub: str, cache: Path) -> str:
    """The program the board starts in place of gdbserver."""
    if stub == "gdbserver":
        p = shutil.which("gdbserver") or "/usr/bin/gdbserver"
        if not os.access(p, os.X_OK):
            raise UsageError("gdbserver not found")
        return str(Path(p).resolve())
    # This checkout's own venv first (scripts/setup.sh): a `ptstub` on PATH may be another checkout's
    # editable install, and a run must test the code next to the tool.
    venv = REPO_ROOT / ".venv" / "bin" / "ptstub"
    if os.access(venv, os.X_OK):
        return str(venv)
    p = shutil.which("ptstub")
    if p:
        return str(Path(p).resolve())
    # No console script: fall back to `python3 -m ptstub`, through a wrapper (the board wants one
    # program path).  Prefer an installed package; else the checkout this tool lives in.
    py = shutil.which("python3") or sys.executable
    probe = subprocess.run([py, "-c", "import ptstub"], capture_output=True)
    pythonpath = ""
    if probe.returncode != 0:
        if not (REPO_ROOT / "ptstub" / "__init__.py").exists() and not (REPO_ROOT / "ptstub").is_dir():
            raise UsageError("ptstub is neither on PATH nor importable (pip install -e . first)")
        pythonpath = str(REPO_ROOT)
    wrapper = cache / "bin" / "ptstub"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    lines = ["#!/bin/sh", "# Generated by conformance/run: `python3 -m ptstub`, as a single program."]
    if pythonpath:
        lines.append(f'PYTHONPATH="{pythonpath}${{PYTHONPATH:+:$PYTHONPATH}}"; export PYTHONPATH')
    lines.append(f'exec "{py}" -m ptstub "$@"')
    wrapper.write_text("\n".join(lines) + "\n")
    wrapper.chmod(0o755)
    return str(wrapper)


# ------------------------------------------------------------------------------------------------
# Process clean-up
# ------------------------------------------------------------------------------------------------


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def find_processes(env_needle: bytes, cmd_needles: list[bytes]) -> list[tuple[int, str]]:
    """Processes whose environment contains env_needle or whose command line contains a cmd needle."""
    me = os.getpid()
    hits = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        cmdline = _read(f"/proc/{entry}/cmdline")
        if not cmdline:  # kernel thread or already gone
            continue
        environ = _read(f"/proc/{entry}/environ")
        if (env_needle and env_needle in environ.split(b"\0")) or any(n in cmdline for n in cmd_needles):
            hits.append((int(entry), cmdline.replace(b"\0", b" ").decode(errors="replace").strip()))
    return hits


def kill_leftovers(env_needle: bytes, cmd_needles: list[bytes]) -> list[str]:
    """SIGKILL everything a job left behind; a few rounds, since killing a tracer can free a child."""
    killed: list[str] = []
    for _ in range(5):
        hits = find_processes(env_needle, cmd_needles)
        hits = [(p, c) for p, c in hits if _read(f"/proc/{p}/stat").split(b") ")[-1][:1] != b"Z"]
        if not hits:
            break
        for pid, cmd in hits:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(f"{pid} {cmd[:200]}")
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    return killed


# ------------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------------


@dataclass
class RunSpec:
    stub: str
    board: str
    iteration: int
    server_prog: str
    objdir: Path

    @property
    def label(self) -> str:
        if self.iteration == LIVE_ITERATION:
            return f"{self.stub}/{self.board} (live)"
        return f"{self.stub}/{self.board}" + (f"#{self.iteration}" if self.iteration > 1 else "")


# The gdbserver run of the CPU-dependent files whose baseline results do not hold on this host.
LIVE_ITERATION = 98


@dataclass
class Job:
    spec: RunSpec
    exp: str


class Runner:
    def __init__(self, suite: Testsuite, gdb: str, jobs: int, timeout: float, run_dir: Path, lane: int = 0):
        self.suite = suite
        self.lane = lane
        self.gdb = gdb
        self.jobs = jobs
        self.timeout = timeout
        self.run_dir = run_dir
        self.run_token = uuid.uuid4().hex
        self.slots: queue.Queue[int] = queue.Queue()
        for i in range(jobs):
            self.slots.put(i)
        self.active: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.stopping = False
        self.done = 0

    def setup_objdir(self, spec: RunSpec) -> None:
        """One objdir per stub/board/iteration: site.exp, the board, outputs, and the shared test cache."""
        spec.objdir.mkdir(parents=True, exist_ok=True)
        boards = spec.objdir / "boards"
        boards.mkdir(exist_ok=True)
        (boards / f"{board_name(spec.stub, spec.board)}.exp").write_text(
            board_text(spec.stub, spec.board, spec.server_prog)
        )
        site = (self.suite.build / "site.exp").read_text()
        site += f"\n# Added by conformance/run\nlappend boards_dir {{{boards}}}\n"
        (spec.objdir / "site.exp").write_text(site)

    def run_job(self, job: Job, total: int) -> FileResult:
        slot = self.slots.get()
        try:
            return self._run_job(job, slot, total)
        finally:
            self.slots.put(slot)

    def _run_job(self, job: Job, slot: int, total: int) -> FileResult:
        spec = job.spec
        subdir, base = job.exp.split("/", 1)
        name = base[: -len(".exp")]
        outdir = spec.objdir / "outputs" / subdir / name
        shutil.rmtree(outdir, ignore_errors=True)
        outdir.mkdir(parents=True)
        token = uuid.uuid4().hex
        env = dict(os.environ)
        env.update(
            {
                TOKEN_VAR: token,
                RUN_TOKEN_VAR: self.run_token,
                "PTCONF_PORT_BASE": str(port_base(slot, self.lane, self.jobs)),
                # What the testsuite Makefile's DO_RUNTEST exports.
                "rootme": str(spec.objdir),
                "srcdir": str(self.suite.srcdir),
                "EXPECT": "expect",
                "EXEEXT": "",
            }
        )
        cmd = [
            "runtest",
            "--status",
            "--tool",
            "gdb",
            "GDB_PARALLEL=yes",
            f"GDB={self.gdb}",
            f"--target_board={board_name(spec.stub, spec.board)}",
            f"--outdir={outdir}",
            "--directory",
            subdir,
            base,
        ]
        res = FileResult(exp=job.exp)
        t0 = time.monotonic()
        if self.stopping:
            res.outcome = "skipped"
            return res
        with open(outdir / "runtest.out", "w") as out:
            try:
                proc = subprocess.Popen(
                    cmd,
                    cwd=spec.objdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as e:
                res.outcome = "spawn-error"
                res.errors.append(f"cannot start runtest: {e}")
                return res
            with self.lock:
                self.active[token] = proc
            try:
                proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                res.outcome = "timeout"
                _kill_group(proc)
            finally:
                with self.lock:
                    self.active.pop(token, None)
        res.seconds = time.monotonic() - t0
        res.leftovers = [
            p
            for p in kill_leftovers(f"{TOKEN_VAR}={token}".encode(), [f"{outdir}/".encode()])
            if not BENIGN_LEFTOVER.match(p)
        ]
        sum_path, log_path = outdir / "gdb.sum", outdir / "gdb.log"
        if sum_path.exists():
            parsed = parse_sum(sum_path.read_text(errors="replace"), job.exp)
            parsed.outcome, parsed.seconds, parsed.leftovers = res.outcome, res.seconds, res.leftovers
            res = parsed
        elif res.outcome == "ok":
            res.outcome = "no-summary"
        if res.outcome == "timeout":
            res.errors.append(f"conformance/run: file timed out after {self.timeout:.0f} s")
        if log_path.exists():
            res.tracebacks = count_tracebacks(log_path.read_text(errors="replace"))
        with self.lock:
            self.done += 1
            c = res.counts()
            extra = f" {res.outcome.upper()}" if res.outcome != "ok" else ""
            if res.leftovers:
                extra += f" killed {len(res.leftovers)} leftover(s)"
            if res.tracebacks:
                extra += f" {res.tracebacks} traceback(s)"
            log(
                f"[{self.done}/{total}] {spec.label:<22} {job.exp:<48} {res.seconds:6.1f}s "
                f"PASS {c['PASS']} FAIL {c['FAIL']}{extra}"
            )
        return res

    def run(self, jobs: list[Job]) -> dict[tuple[str, str, int], dict[str, FileResult]]:
        results: dict[tuple[str, str, int], dict[str, FileResult]] = {}
        total = len(jobs)
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futs = {pool.submit(self.run_job, j, total): j for j in jobs}
            try:
                for fut in concurrent.futures.as_completed(futs):
                    j = futs[fut]
                    key = (j.spec.stub, j.spec.board, j.spec.iteration)
                    results.setdefault(key, {})[j.exp] = fut.result()
            except BaseException:
                self.stopping = True
                for f in futs:
                    f.cancel()
                with self.lock:
                    procs = list(self.active.values())
                for p in procs:
                    _kill_group(p)
                raise
            finally:
                kill_leftovers(f"{RUN_TOKEN_VAR}={self.run_token}".encode(), [])
        return results


def _kill_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


# ------------------------------------------------------------------------------------------------
# Timings (longest files first shortens the wall time, as make check-parallel's slow_tests list does)
# ------------------------------------------------------------------------------------------------


def load_timings(path: Path) -> dict[str, float]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def order_jobs(jobs: list[Job], timings: dict[str, float]) -> list[Job]:
    def key(j: Job) -> float:
        t = timings.get(f"{j.spec.stub}|{j.spec.board}|{j.exp}")
        if t is None:  # never run this way: the slowest time any stub or board took, else first
            t = max((v for k, v in timings.items() if k.endswith(f"|{j.exp}")), default=1e9)
        return -t

    return sorted(jobs, key=key)


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="conformance/run",
        description="Run GDB's own testsuite (gdb.server, gdb.threads, stub-related gdb.base, gdb.arch, "
        "gdb.python and gdb.mi files) through "
        "ptstub or GNU gdbserver and compare the results.",
    )
    p.add_argument(
        "tests",
        nargs="*",
        metavar="EXP",
        help="explicit .exp files (relative to gdb/testsuite, globs allowed); overrides --subset",
    )
    p.add_argument(
        "--stub",
        choices=("ptstub", "gdbserver"),
        default="ptstub",
        help="stub under test (default: ptstub, the console script or python3 -m ptstub)",
    )
    p.add_argument(
        "--stub-prog",
        metavar="PATH",
        help="program started for --stub in place of the one found (e.g. a wrapper around a snapshot)",
    )
    p.add_argument("--baseline", action="store_true", help="also run the same selection against gdbserver and compare")
    p.add_argument("--subset", default="ci", help="ci | full | path to a selection list (default: ci)")
    p.add_argument(
        "--board",
        choices=("native", "extended", "both"),
        default="both",
        help="native-gdbserver, native-extended-gdbserver (--multi) or both (default: both)",
    )
    p.add_argument("-j", "--jobs", type=int, default=2, help="parallel jobs (default 2)")
    p.add_argument("--timeout", type=float, default=900, help="per .exp file timeout in seconds (default 900)")
    p.add_argument(
        "--cache",
        type=Path,
        default=Path("~/.cache/ptstub-conformance").expanduser(),
        help="cache directory (default ~/.cache/ptstub-conformance)",
    )
    p.add_argument("--json", type=Path, help="write machine-readable results here")
    p.add_argument("--against", type=Path, help="compare with a checked-in gdbserver baseline JSON")
    p.add_argument(
        "--flaky",
        type=Path,
        default=HERE / "flaky.txt",
        help="flaky test names, never counted as regressions (default conformance/flaky.txt)",
    )
    p.add_argument(
        "--known",
        type=Path,
        default=HERE / "known-regressions.txt",
        help="regressions expected today, each with its reason: reported apart, never counted "
        "(default conformance/known-regressions.txt; --known /dev/null to count them all)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the selection N times per stub/board and list names whose status differs",
    )
    p.add_argument(
        "--write-baseline",
        type=Path,
        metavar="FILE",
        help="write the gdbserver results (first iteration) as a baseline file for --against",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="with --write-baseline: merge this run's files into FILE (its other files stay as they are)",
    )
    p.add_argument(
        "--cpu-dependent",
        type=Path,
        default=HERE / "cpu-dependent.txt",
        help="files whose results depend on CPU features (default conformance/cpu-dependent.txt)",
    )
    p.add_argument(
        "--cpu-live",
        choices=("auto", "always", "never"),
        default="auto",
        help="with --against: run gdbserver here on the CPU-dependent files when the baseline's CPU "
        "differs in their features (auto), always, or never (trust the baseline)",
    )
    p.add_argument("--gdb", default="/usr/bin/gdb", help="GDB under which to run (default /usr/bin/gdb)")
    p.add_argument("--mirror", default=DEFAULT_MIRROR, help="Debian mirror for the deb-src line")
    p.add_argument("--security-mirror", default=DEFAULT_SECURITY_MIRROR)
    p.add_argument("--keep-runs", type=int, default=3, help="run directories kept in the cache (default 3)")
    p.add_argument("--prepare-only", action="store_true", help="download and configure, run nothing")
    p.add_argument("--list", action="store_true", help="print the selected .exp files and exit")
    p.add_argument("--show", type=int, default=50, help="regressions/wins printed per board (default 50)")
    p.add_argument(
        "--confirm",
        action="store_true",
        help="run each file with a regression once more; a regression that passes then is not counted",
    )
    return p


def selection_patterns(args: argparse.Namespace) -> tuple[str, list[str]]:
    if args.tests:
        return "explicit", list(args.tests)
    if args.subset in ("ci", "full"):
        return args.subset, read_selection(HERE / f"{args.subset}.txt")
    path = Path(args.subset)
    if path.is_file():
        return str(path), read_selection(path)
    raise UsageError(f"--subset must be ci, full or a selection file, not {args.subset!r}")


def prune_runs(runs_root: Path, keep: int) -> None:
    """Delete old run directories, never one whose invocation (the "-<pid>" suffix) is still alive."""
    dirs = sorted(d for d in runs_root.iterdir() if d.is_dir())
    for d in dirs[: max(0, len(dirs) - keep)]:
        pid = d.name.rsplit("-", 1)[-1]
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            continue
        shutil.rmtree(d, ignore_errors=True)


def run_to_json(spec: RunSpec, files: dict[str, FileResult]) -> dict:
    tests: dict[str, str] = {}
    for exp in sorted(files):
        tests.update(files[exp].tests)
    return {
        "stub": spec.stub,
        "board": spec.board,
        "iteration": spec.iteration,
        "server_prog": spec.server_prog,
        "objdir": str(spec.objdir),
        "counts_by_dir": counts_by_dir(files),
        "files": {e: files[e].to_json() for e in sorted(files)},
        "tests": tests,
    }


def print_time_ratios(args: argparse.Namespace, boards: list[str], by_key: dict, against: dict | None) -> list[dict]:
    """The stub's testsuite wall time against gdbserver's, per board: from this run's gdbserver
    (--baseline) or else from the --against file's recorded times (another run: indicative only)."""
    found = []
    for b in boards:
        cur = by_key.get((args.stub, b, 1))
        if cur is None or args.stub == "gdbserver":
            continue
        here = by_key.get(("gdbserver", b, 1))
        ref, where = (here, "in this run") if here else (None, "")
        if ref is None and against:
            ref, where = reference_from_file(against, b), f"from {args.against}, another run"
        if ref is None:
            continue
        ratio = time_ratio(cur["files"], ref["files"])
        print(format_time_ratio(b, args.stub, ratio, where))
        found.append({"board": b, "files": ratio[0], "stub_seconds": ratio[1], "gdbserver_seconds": ratio[2]})
    return found


def reference_from_file(data: dict, board: str) -> dict | None:
    """The gdbserver run for ``board`` in a results JSON (first iteration preferred)."""
    cands = [r for r in data.get("runs", []) if r.get("board") == board]
    cands.sort(key=lambda r: (r.get("stub") != "gdbserver", r.get("iteration", 1)))
    return cands[0] if cands else None


def baseline_doc(
    runs: list[dict],
    gdb_version: str,
    subset: str,
    selection: list[str],
    jobs: int,
    wall: float,
    unstable: dict,
    cpu: dict | None = None,
) -> dict:
    """A compact results file for --against: the reference runs without machine-local paths, and the
    CPU they ran on (the results of cpu-dependent.txt's files hold for that CPU only)."""
    slim = []
    for rj in runs:
        files = {e: {k: f[k] for k in ("outcome", "seconds", "counts")} for e, f in rj["files"].items()}
        slim.append(
            {
                "stub": rj["stub"],
                "board": rj["board"],
                "iteration": rj["iteration"],
                "counts_by_dir": rj["counts_by_dir"],
                "files": files,
                "tests": rj["tests"],
            }
        )
    return {
        "format": FORMAT,
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": {"machine": platform.machine(), "kernel": platform.release(), "cpus": os.cpu_count()},
        "cpu": cpu if cpu is not None else host_cpu_profile(),
        "gdb": gdb_version,
        "subset": subset,
        "selection": selection,
        "jobs": jobs,
        "wall_seconds": round(wall, 1),
        "runs": slim,
        "unstable": unstable,
    }


def counts_by_dir_json(files: dict[str, dict]) -> dict[str, dict[str, int]]:
    """counts_by_dir for a baseline's per-file entries (outcome, seconds, counts)."""
    out: dict[str, dict] = {}
    for exp in sorted(files):
        f = files[exp]
        d = out.setdefault(exp_dir(exp), {k: 0 for k in (*STATUSES, "ERROR", "files", "timeouts")})
        for k, v in f["counts"].items():
            d[k] = d.get(k, 0) + v
        d["files"] += 1
        d["timeouts"] += f["outcome"] == "timeout"
        d["seconds"] = round(d.get("seconds", 0) + f["seconds"], 1)
    return out


def merge_baselines(old: dict, new: dict) -> dict:
    """``old`` with ``new``'s files added (or replaced, for files both hold); old files stay as they are.

    Per board, the tests and per-file entries of ``new``'s selection replace the old ones; the
    selection grows by the new files, in order.  ``merged`` records each merge.  The CPU recorded is the
    new one (check_merge_cpu refuses a merge that would mislabel old CPU-dependent results).
    """
    new_files = set(new["selection"])
    boards_old = {r["board"] for r in old["runs"]}
    boards_new = {r["board"] for r in new["runs"]}
    if boards_old != boards_new:
        raise UsageError(f"cannot merge: the baseline has boards {sorted(boards_old)}, the run {sorted(boards_new)}")
    if old.get("gdb") != new.get("gdb"):
        raise UsageError(f"cannot merge results of gdb {new.get('gdb')} into a baseline of gdb {old.get('gdb')}")
    runs = []
    for ro in old["runs"]:
        rn = next(r for r in new["runs"] if r["board"] == ro["board"])
        tests = {n: s for n, s in ro["tests"].items() if test_file(n) not in new_files}
        tests.update(rn["tests"])
        files = {e: f for e, f in ro["files"].items() if e not in new_files}
        files.update(rn["files"])
        # Directories the new files touch are counted again; the others keep their entry as it was.
        counts = dict(ro["counts_by_dir"])
        touched = {exp_dir(e) for e in new_files}
        counts.update({d: c for d, c in counts_by_dir_json(files).items() if d in touched})
        runs.append(ro | {"files": files, "tests": tests, "counts_by_dir": dict(sorted(counts.items()))})
    merged = list(old.get("merged", []))
    merged.append({k: new.get(k) for k in ("created", "subset", "jobs", "wall_seconds")} | {"files": len(new_files)})
    unstable = {k: dict(v) for k, v in old.get("unstable", {}).items()}
    for k, v in new.get("unstable", {}).items():
        unstable.setdefault(k, {}).update(v)
    return old | {
        "cpu": new.get("cpu"),
        "selection": [*old["selection"], *(e for e in new["selection"] if e not in old["selection"])],
        "runs": runs,
        "unstable": unstable,
        "merged": merged,
    }


def merge_into(path: Path, new: dict, deps: list[CpuDependent]) -> dict:
    """The baseline in ``path`` with ``new`` merged in (see merge_baselines)."""
    old = load_baseline(path)
    check_merge_cpu(old, new, deps)
    return merge_baselines(old, new)


def load_baseline(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise UsageError(f"--merge: {path} is not a baseline: {e}") from e


def precheck_merge(path: Path, planned: dict, deps: list[CpuDependent]) -> None:
    """Refuse before running what merge_into would refuse after it (``planned``: the run's gdb,
    selection, cpu and one entry per board)."""
    if not path.exists():
        return
    old = load_baseline(path)
    check_merge_cpu(old, planned, deps)
    merge_baselines(old, planned | {"runs": [{"board": r["board"], "tests": {}, "files": {}} for r in planned["runs"]]})


def live_files(
    mode: str, selection: list[str], deps: list[CpuDependent], against: dict | None, host_cpu: dict
) -> dict[str, str]:
    """--cpu-live: the CPU-dependent files whose reference is gdbserver on this host, with the reason."""
    if against is None or mode == "never":
        return {}
    if mode == "always":
        return {e: "--cpu-live always" for e in selection if any(fnmatch.fnmatchcase(e, d.pattern) for d in deps)}
    return cpu_live_files(selection, deps, against.get("cpu"), host_cpu)


def check_merge_cpu(old: dict, new: dict, deps: list[CpuDependent]) -> None:
    """Refuse a merge that would label old CPU-dependent results with another CPU."""
    kept = [e for e in old["selection"] if e not in set(new["selection"])]
    stale = cpu_live_files(kept, deps, old.get("cpu"), new.get("cpu") or {})
    if stale:
        raise UsageError(
            "cannot merge: the baseline holds CPU-dependent results from another CPU, not run again: "
            + ", ".join(sorted(stale))
        )


CONFIRM_ITERATION = 99


def confirm_regressions(
    runner: Runner, specs: list[RunSpec], comparisons: list[Comparison], stub: str, run_dir: Path
) -> None:
    """Run every file with a regression once more; regressions that PASS then move to `unconfirmed`.

    A loaded CI machine can push a test past one of DejaGnu's timeouts; a real regression fails twice.
    """
    reruns: dict[str, RunSpec] = {}
    jobs: dict[tuple[str, str], Job] = {}
    for c in comparisons:
        for e in c.regressions:
            if c.board not in reruns:
                base = next(sp for sp in specs if sp.stub == stub and sp.board == c.board and sp.iteration == 1)
                reruns[c.board] = RunSpec(
                    stub, c.board, CONFIRM_ITERATION, base.server_prog, run_dir / f"{stub}-{c.board}" / "confirm"
                )
                runner.setup_objdir(reruns[c.board])
            exp = e["name"].split(": ", 1)[0]
            jobs.setdefault((c.board, exp), Job(reruns[c.board], exp))
    if not jobs:
        return
    log(f"confirming regressions: running {len(jobs)} file(s) again")
    results = runner.run(list(jobs.values()))
    for c in comparisons:
        spec = reruns.get(c.board)
        if spec is None:
            continue
        again = run_to_json(spec, results.get((spec.stub, spec.board, spec.iteration), {}))["tests"]
        c.unconfirmed = [e for e in c.regressions if again.get(e["name"]) == "PASS"]
        c.regressions = [e for e in c.regressions if again.get(e["name"]) != "PASS"]


def print_comparison(cmp_: Comparison, show: int) -> None:
    n_ns = sum(1 for e in cmp_.known if e["non_stop"])
    print(
        f"\n== {cmp_.board} board: {cmp_.current} vs {cmp_.reference}: {len(cmp_.regressions)} regression(s),"
        f" {len(cmp_.wins)} win(s), {len(cmp_.flaky_ignored)} flaky ignored,"
        f" {len(cmp_.known)} known ({n_ns} non-stop)"
    )
    by_reason: dict[str, int] = {}
    for e in cmp_.known:
        by_reason[e["reason"]] = by_reason.get(e["reason"], 0) + 1
    for title, items in (
        ("regressions", cmp_.regressions),
        ("wins", cmp_.wins),
        ("flaky (ignored)", cmp_.flaky_ignored),
        ("passed when run again (--confirm; not counted)", cmp_.unconfirmed),
        (
            "known regressions, by reason (not counted)",
            [
                {"reference": n, "current": "", "name": reason}
                for reason, n in sorted(by_reason.items(), key=lambda x: -x[1])
            ],
        ),
    ):
        if not items:
            continue
        print(f"  {title}:")
        for e in items[:show]:
            print(f"    {e['reference']:>10} -> {e['current']:<10} {e['name']}")
        if len(items) > show:
            print(f"    ... and {len(items) - show} more (see --json)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _main(args)
    except UsageError as e:
        print(f"conformance/run: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"conformance/run: command failed ({e.returncode}): {' '.join(map(str, e.cmd))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("conformance/run: interrupted", file=sys.stderr)
        return 130


def _main(args: argparse.Namespace) -> int:
    if args.jobs < 1 or args.repeat < 1 or args.timeout <= 0:
        raise UsageError("-j, --repeat and --timeout must be positive")
    if slot_width(args.jobs) < 100:
        raise UsageError(f"-j {args.jobs} is too many for the port ranges (at most {LANE_WIDTH // 100})")
    if args.against and not args.against.is_file():
        raise UsageError(f"--against: no such file {args.against}")
    known = load_known(args.known)  # read first: a malformed file must not cost a whole run
    cpu_deps = load_cpu_dependent(args.cpu_dependent)
    if args.merge and not args.write_baseline:
        raise UsageError("--merge needs --write-baseline FILE (the baseline to merge into)")
    boards = list(BOARDS) if args.board == "both" else [args.board]
    try:
        against = json.loads(args.against.read_text()) if args.against else None
    except ValueError as e:
        raise UsageError(f"{args.against} is not a results file: {e}") from e
    for b in boards if against else []:
        if reference_from_file(against, b) is None:
            raise UsageError(f"{args.against} holds no run for the {b} board")
    subset_label, patterns = selection_patterns(args)
    cache: Path = args.cache.expanduser().resolve()
    cache.mkdir(parents=True, exist_ok=True)

    need = {
        "runtest": "dejagnu",
        "expect": "expect",
        "make": "make",
        "tar": "tar",
        "xz": "xz-utils",
        "gcc": "gcc",
        "g++": "g++",
        args.gdb: "gdb",
    }
    if args.stub == "gdbserver" or args.baseline:
        need["gdbserver"] = "gdbserver"
    ensure_packages(need)

    suite = Testsuite(cache, installed_gdb_version())
    suite.prepare(args.mirror, args.security_mirror)
    if args.prepare_only:
        print(f"testsuite ready: {suite.srcdir} (configured in {suite.build})")
        return 0
    selection = expand_selection(patterns, suite.srcdir)
    if args.list:
        print("\n".join(selection))
        return 0
    ensure_packages(packages_for(selection))

    stubs = [args.stub] + (["gdbserver"] if args.baseline and args.stub != "gdbserver" else [])
    host_cpu = host_cpu_profile()
    live = live_files(args.cpu_live, selection, cpu_deps, against, host_cpu)
    live_run = bool(live) and "gdbserver" not in stubs  # else gdbserver runs every file anyway
    if live_run:
        ensure_packages({"gdbserver": "gdbserver"})
    if args.merge:
        planned = {
            "gdb": suite.version,
            "selection": selection,
            "cpu": host_cpu,
            "runs": [{"board": b} for b in boards],
        }
        precheck_merge(args.write_baseline, planned, cpu_deps)
    progs = {s: resolve_server_prog(s, cache) for s in [*stubs, *(["gdbserver"] if live_run else [])]}
    if args.stub_prog:
        if not os.access(args.stub_prog, os.X_OK):
            raise UsageError(f"--stub-prog: {args.stub_prog} is not an executable")
        progs[args.stub] = str(Path(args.stub_prog).resolve())

    runs_root = cache / "runs"
    runs_root.mkdir(exist_ok=True)
    prune_runs(runs_root, max(0, args.keep_runs - 1))
    run_dir = runs_root / f"{_dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
    lane, _lane_lock = claim_lane()
    runner = Runner(suite, args.gdb, args.jobs, args.timeout, run_dir, lane)
    specs = [
        RunSpec(s, b, i, progs[s], run_dir / f"{s}-{b}" / f"{i}")
        for s in stubs
        for b in boards
        for i in range(1, args.repeat + 1)
    ]
    live_specs = [
        RunSpec("gdbserver", b, LIVE_ITERATION, progs["gdbserver"], run_dir / f"gdbserver-{b}" / "live")
        for b in (boards if live_run else [])
    ]
    for spec in specs + live_specs:
        runner.setup_objdir(spec)
    timings_path = cache / "timings.json"
    timings = load_timings(timings_path)
    all_jobs = [Job(spec, exp) for spec in specs for exp in selection]
    all_jobs += [Job(spec, exp) for spec in live_specs for exp in live]
    jobs = order_jobs(all_jobs, timings)
    specs += live_specs

    log(
        f"gdb {suite.version}; {len(selection)} file(s) from {subset_label}; stubs {', '.join(stubs)}; "
        f"boards {', '.join(boards)}; -j {args.jobs}; ports from {port_base(0, lane, args.jobs)}; logs in {run_dir}"
    )
    for s in progs:
        log(f"  {s}: {progs[s]}")
    for exp, why in live.items():
        log(f"  reference of {exp}: gdbserver on this host ({why})")
    t0 = time.monotonic()
    results = runner.run(jobs)
    wall = time.monotonic() - t0

    for spec in specs:
        for exp, fr in results.get((spec.stub, spec.board, spec.iteration), {}).items():
            if fr.outcome in ("ok", "timeout"):
                timings[f"{spec.stub}|{spec.board}|{exp}"] = round(fr.seconds, 1)
    timings_path.write_text(json.dumps(timings, indent=0, sort_keys=True))

    run_json = [run_to_json(spec, results.get((spec.stub, spec.board, spec.iteration), {})) for spec in specs]
    for spec, rj in zip(specs, run_json, strict=True):
        print()
        print(format_table(spec.label, rj["counts_by_dir"]))
    print(f"\nwall time: {wall:.0f} s with -j {args.jobs} ({len(jobs)} file runs)")

    problems = []
    for spec, rj in zip(specs, run_json, strict=True):
        for exp, f in rj["files"].items():
            if f["outcome"] != "ok" or f["tracebacks"]:
                problems.append(
                    f"{spec.label}: {exp}: {f['outcome']}"
                    + (f", {f['tracebacks']} traceback(s) in gdb.log" if f["tracebacks"] else "")
                )
    if problems:
        print("\nfiles with problems:")
        for p in problems:
            print(f"  {p}")

    flaky = load_flaky(args.flaky)
    comparisons: list[Comparison] = []
    by_key = {(rj["stub"], rj["board"], rj["iteration"]): rj for rj in run_json}
    if args.baseline and args.stub != "gdbserver":
        for b in boards:
            ref, cur = by_key[("gdbserver", b, 1)], by_key[(args.stub, b, 1)]
            comparisons.append(
                compare(
                    ref["tests"],
                    cur["tests"],
                    flaky=flaky,
                    known=known,
                    board=b,
                    ref_label="gdbserver (this run)",
                    cur_label=args.stub,
                )
            )
    if against:
        for b in boards:
            ref = reference_from_file(against, b)
            cur = by_key[(args.stub, b, 1)]
            ref_tests, ref_label = ref["tests"], f"{ref.get('stub', '?')} ({args.against})"
            if live:
                here = by_key.get(("gdbserver", b, LIVE_ITERATION)) or by_key[("gdbserver", b, 1)]
                ref_tests = reference_tests(ref_tests, here["tests"], set(live))
                ref_label += f"; {len(live)} CPU-dependent file(s) from gdbserver on this host"
            comparisons.append(
                compare(
                    ref_tests,
                    cur["tests"],
                    files=set(selection),
                    flaky=flaky,
                    known=known,
                    board=b,
                    ref_label=ref_label,
                    cur_label=args.stub,
                )
            )
    time_ratios = print_time_ratios(args, boards, by_key, against)
    if args.confirm:
        confirm_regressions(runner, specs, comparisons, args.stub, run_dir)
    for c in comparisons:
        print_comparison(c, args.show)
    stale = stale_known(known, comparisons, set(selection))
    if stale:
        print("\nknown-regressions entries that matched nothing in this run (fixed? remove them):")
        for k in stale:
            print(f"    {k.pattern}")

    unstable: dict[str, dict[str, list[str]]] = {}
    if args.repeat > 1:
        for s in stubs:
            for b in boards:
                runs = [by_key[(s, b, i)]["tests"] for i in range(1, args.repeat + 1)]
                u = unstable_names(runs)
                unstable[f"{s}/{b}"] = u
                print(f"\n== {s}/{b}: {len(u)} name(s) differ across {args.repeat} runs")
                for name, sts in u.items():
                    print(f"    {' '.join(f'{x:<8}' for x in sts)} {name}")

    if args.json:
        doc = {
            "format": FORMAT,
            "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "host": {"machine": platform.machine(), "kernel": platform.release(), "cpus": os.cpu_count()},
            "cpu": host_cpu,
            "live": live,
            "gdb": suite.version,
            "subset": subset_label,
            "selection": selection,
            "jobs": args.jobs,
            "timeout": args.timeout,
            "wall_seconds": round(wall, 1),
            "run_dir": str(run_dir),
            "runs": run_json,
            "comparisons": [c.to_json() for c in comparisons],
            "time_ratios": time_ratios,
            "unstable": unstable,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
        log(f"results written to {args.json}")

    if args.write_baseline:
        base_runs = [rj for rj in run_json if rj["stub"] == "gdbserver" and rj["iteration"] == 1]
        if not base_runs:
            raise UsageError("--write-baseline needs a gdbserver run (--stub gdbserver or --baseline)")
        doc = baseline_doc(base_runs, suite.version, subset_label, selection, args.jobs, wall, unstable, host_cpu)
        if args.merge and args.write_baseline.exists():
            doc = merge_into(args.write_baseline, doc, cpu_deps)
        args.write_baseline.write_text(json.dumps(doc, indent=1) + "\n")
        log(f"baseline written to {args.write_baseline}")

    n_reg = sum(len(c.regressions) for c in comparisons)
    if comparisons:
        n_known = sum(len(c.known) for c in comparisons)
        print(
            f"\n{n_reg} regression(s), {sum(len(c.wins) for c in comparisons)} win(s) "
            f"against {len(comparisons)} reference run(s); {n_known} known regression(s) not counted"
        )
    return 1 if n_reg else 0


if __name__ == "__main__":
    sys.exit(main())
