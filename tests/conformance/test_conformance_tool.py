"""Unit tests of conformance/run's own logic: no network, no processes but tar, milliseconds.

They cover gdb.sum parsing, counting, the regression/win computation, flaky filtering, board file
generation, the private apt configuration and the selection lists.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from pathlib import Path

import pytest

CONF_DIR = Path(__file__).resolve().parents[2] / "conformance"


def _load():
    spec = importlib.util.spec_from_file_location("ptconf", CONF_DIR / "ptconf.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("ptconf", mod)
    spec.loader.exec_module(mod)
    return mod


ptconf = _load()

SAMPLE_SUM = """\
Test run by root on Wed Nov 25 19:12:24 2026
Native configuration is x86_64-pc-linux-gnu

		=== gdb tests ===

Schedule of variations:
    ptconf-gdbserver-native

Running target ptconf-gdbserver-native
Running /src/gdb/testsuite/gdb.server/ext-run.exp ...
PASS: gdb.server/ext-run.exp: continue to main
FAIL: gdb.server/ext-run.exp: get process list
PASS: gdb.server/ext-run.exp: kill
PASS: gdb.server/ext-run.exp: kill
DUPLICATE: gdb.server/ext-run.exp: kill
KFAIL: gdb.server/ext-run.exp: load new file without any gdbserver inferior (PRMS: server/1)
UNTESTED: gdb.server/ext-run.exp: skipped on this target
UNSUPPORTED: gdb.server/ext-run.exp: hardware watchpoints
UNRESOLVED: gdb.server/ext-run.exp: monitor exit
ERROR: Timeout waiting for gdbserver response.
WARNING: Timed out waiting for EOF in server after monitor exit
PATH: gdb.server/ext-run.exp: file /tmp/x

		=== gdb Summary ===

# of expected passes		3
# of unexpected failures	1
"""


def test_parse_sum_statuses_and_names():
    fr = ptconf.parse_sum(SAMPLE_SUM, "gdb.server/ext-run.exp")
    assert fr.tests["gdb.server/ext-run.exp: continue to main"] == "PASS"
    assert fr.tests["gdb.server/ext-run.exp: get process list"] == "FAIL"
    # A duplicated name keeps both results; the second is suffixed.
    assert fr.tests["gdb.server/ext-run.exp: kill"] == "PASS"
    assert fr.tests["gdb.server/ext-run.exp: kill [2]"] == "PASS"
    assert fr.duplicates == 1
    assert fr.errors == ["Timeout waiting for gdbserver response."]
    assert fr.warnings == ["Timed out waiting for EOF in server after monitor exit"]
    c = fr.counts()
    assert (
        c["PASS"],
        c["FAIL"],
        c["KFAIL"],
        c["UNTESTED"],
        c["UNSUPPORTED"],
        c["UNRESOLVED"],
        c["ERROR"],
    ) == (3, 1, 1, 1, 1, 1, 1)
    # Summary and header lines are not results.
    assert not any("expected passes" in n for n in fr.tests)


def test_parse_sum_empty():
    fr = ptconf.parse_sum("", "gdb.base/break.exp")
    assert fr.tests == {} and fr.errors == [] and fr.counts()["PASS"] == 0


def test_counts_by_dir_and_table():
    a = ptconf.parse_sum(SAMPLE_SUM, "gdb.server/ext-run.exp")
    a.seconds = 2.0
    b = ptconf.FileResult(
        exp="gdb.base/break.exp", outcome="timeout", seconds=5.0, tests={"gdb.base/break.exp: x": "PASS"}
    )
    by_dir = ptconf.counts_by_dir({a.exp: a, b.exp: b})
    assert by_dir["gdb.server"]["PASS"] == 3 and by_dir["gdb.server"]["files"] == 1
    assert by_dir["gdb.base"]["timeouts"] == 1 and by_dir["gdb.base"]["PASS"] == 1
    table = ptconf.format_table("gdbserver/native", by_dir)
    assert "gdb.server" in table and "total" in table
    total_line = [ln for ln in table.splitlines() if ln.strip().startswith("total")][0]
    assert total_line.split()[1:3] == ["2", "4"]  # files, PASS


def test_count_tracebacks_only_counts_the_stub():
    stub = 'Traceback (most recent call last):\n  File "/usr/lib/python3/ptstub/session.py", line 3\nKeyError\n'
    gdb_py = (
        'Traceback (most recent call last):\n  File "/root/.cache/ptstub-conformance/x/file1.py", line 7\n'
        "gdb.error: Remote connection closed\n"
    )
    assert ptconf.count_tracebacks(stub) == 1
    assert ptconf.count_tracebacks(gdb_py) == 0
    assert ptconf.count_tracebacks(gdb_py + stub + stub) == 2
    assert ptconf.count_tracebacks("all good") == 0


REF = {
    "gdb.server/a.exp: t1": "PASS",
    "gdb.server/a.exp: t2": "PASS",
    "gdb.server/a.exp: t3": "FAIL",
    "gdb.server/a.exp: t4": "PASS",
    "gdb.threads/b.exp: racy": "PASS",
    "gdb.base/c.exp: other": "PASS",
}
CUR = {
    "gdb.server/a.exp: t1": "PASS",
    "gdb.server/a.exp: t2": "FAIL",  # regression
    "gdb.server/a.exp: t3": "PASS",  # win
    # t4 missing: regression
    "gdb.threads/b.exp: racy": "FAIL",  # flaky, ignored
    "gdb.server/a.exp: new": "PASS",  # win (absent in the reference)
}


def test_compare_regressions_and_wins():
    c = ptconf.compare(REF, CUR, flaky=["gdb.threads/b.exp: rac*"], files={"gdb.server/a.exp", "gdb.threads/b.exp"})
    regs = {e["name"]: (e["reference"], e["current"]) for e in c.regressions}
    assert regs == {"gdb.server/a.exp: t2": ("PASS", "FAIL"), "gdb.server/a.exp: t4": ("PASS", "missing")}
    wins = {e["name"]: (e["reference"], e["current"]) for e in c.wins}
    assert wins == {"gdb.server/a.exp: t3": ("FAIL", "PASS"), "gdb.server/a.exp: new": ("missing", "PASS")}
    assert [e["name"] for e in c.flaky_ignored] == ["gdb.threads/b.exp: racy"]
    # gdb.base/c.exp was not run in the current selection: out of scope, not a regression.
    assert "gdb.base/c.exp: other" not in regs


def test_compare_without_scope_counts_unrun_files():
    c = ptconf.compare(REF, CUR)
    names = {e["name"] for e in c.regressions}
    assert "gdb.base/c.exp: other" in names and "gdb.threads/b.exp: racy" in names


def test_identical_runs_compare_clean():
    c = ptconf.compare(REF, dict(REF))
    assert c.regressions == [] and c.wins == []


def test_is_flaky_exact_glob_and_duplicates():
    pats = ["gdb.threads/x.exp: exact name", "gdb.threads/y.exp: iter *"]
    assert ptconf.is_flaky("gdb.threads/x.exp: exact name", pats)
    assert ptconf.is_flaky("gdb.threads/x.exp: exact name [2]", pats)
    assert ptconf.is_flaky("gdb.threads/y.exp: iter 7: continue", pats)
    assert not ptconf.is_flaky("gdb.threads/x.exp: exact name too", pats)


def test_load_flaky(tmp_path):
    p = tmp_path / "flaky.txt"
    p.write_text("# proven by 3 runs\ngdb.threads/a.exp: one\n\n  # indented comment\ngdb.threads/b.exp: two # x\n")
    assert ptconf.load_flaky(p) == ["gdb.threads/a.exp: one", "gdb.threads/b.exp: two # x"]
    assert ptconf.load_flaky(tmp_path / "missing.txt") == []


KNOWN_TEXT = """\
# comment
gdb.server/a.exp: t2 -- non-stop: the variant runs GDB in non-stop mode
[extended] gdb.server/a.exp: t4 -- multi-process: detach-on-fork off
gdb.server/a.exp: name -- with -- inside -- reason after the last separator
"""


def test_parse_known_patterns_boards_and_reasons():
    known = ptconf.parse_known(KNOWN_TEXT)
    assert [(k.pattern, k.boards, k.non_stop) for k in known] == [
        ("gdb.server/a.exp: t2", ("native", "extended"), True),
        ("gdb.server/a.exp: t4", ("extended",), False),
        ("gdb.server/a.exp: name -- with -- inside", ("native", "extended"), False),
    ]
    assert known[1].reason == "multi-process: detach-on-fork off"


@pytest.mark.parametrize("line", ["gdb.server/a.exp: no reason", "gdb.server/a.exp: empty -- ", " -- reason only"])
def test_parse_known_rejects_lines_without_pattern_or_reason(line):
    with pytest.raises(ptconf.UsageError):
        ptconf.parse_known(line + "\n")


def test_known_regressions_are_reported_apart_and_new_ones_still_count():
    known = ptconf.parse_known(KNOWN_TEXT)
    files = {"gdb.server/a.exp", "gdb.threads/b.exp"}
    native = ptconf.compare(REF, CUR, files=files, known=known, board="native")
    assert [e["name"] for e in native.regressions] == ["gdb.server/a.exp: t4", "gdb.threads/b.exp: racy"]
    assert [(e["name"], e["non_stop"]) for e in native.known] == [("gdb.server/a.exp: t2", True)]
    extended = ptconf.compare(REF, CUR, files=files, known=known, board="extended")
    assert [e["name"] for e in extended.regressions] == ["gdb.threads/b.exp: racy"]  # t4: known on extended only
    assert {e["name"] for e in extended.known} == {"gdb.server/a.exp: t2", "gdb.server/a.exp: t4"}
    assert extended.to_json()["known"][0]["reason"].startswith("non-stop")


def test_known_glob_matches_a_whole_file_and_duplicates():
    known = ptconf.parse_known("gdb.server/a.exp: * -- whole file\n")
    c = ptconf.compare(REF, CUR, known=known)
    assert {e["name"] for e in c.known} == {"gdb.server/a.exp: t2", "gdb.server/a.exp: t4"}
    assert ptconf.known_for("gdb.server/a.exp: t2 [3]", "native", known) is not None


def test_checked_in_known_regressions_parse_and_have_reasons():
    path = CONF_DIR / "known-regressions.txt"
    assert path.is_file(), "conformance/known-regressions.txt is missing"
    known = ptconf.load_known(path)  # empty once every cause is fixed: then each entry is a comment
    for k in known:
        assert k.pattern.split(": ", 1)[0].endswith(".exp"), k.pattern
        assert len(k.reason) >= 10, k


def test_unstable_names():
    runs = [{"a": "PASS", "b": "PASS"}, {"a": "PASS", "b": "FAIL"}, {"a": "PASS", "c": "PASS"}]
    u = ptconf.unstable_names(runs)
    assert u == {"b": ["PASS", "FAIL", "missing"], "c": ["missing", "missing", "PASS"]}


def test_board_text_native_swaps_only_the_server_program():
    text = ptconf.board_text("ptstub", "native", "/usr/local/bin/ptstub")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    # set_board_info never overrides, so the program must be set before the stock board loads.
    assert lines[0] == 'set_board_info gdb_server_prog "/usr/local/bin/ptstub"'
    assert lines[1] == 'load_board_description "native-gdbserver"'
    assert "trace add variable ::portnum write" in text
    assert "env(PTCONF_PORT_BASE)" in text
    assert "gdb_protocol" not in text  # left to the stock board


def test_board_text_extended_and_quoting():
    text = ptconf.board_text("gdbserver", "extended", '/opt/we"ird $dir/[x]/gdbserver')
    assert 'load_board_description "native-extended-gdbserver"' in text
    assert r'set_board_info gdb_server_prog "/opt/we\"ird \$dir/\[x]/gdbserver"' in text
    assert ptconf.board_name("gdbserver", "extended") == "ptconf-gdbserver-extended"


def test_port_ranges_are_disjoint_and_below_ephemeral():
    for jobs in (1, 2, 3, 8, 50):
        width = ptconf.slot_width(jobs)
        assert width >= 100
        starts = sorted(ptconf.port_base(slot, lane, jobs) for lane in range(ptconf.LANES) for slot in range(jobs))
        assert len(set(starts)) == len(starts)
        assert all(b - a >= width for a, b in itertools.pairwise(starts))
        assert starts[0] >= 1024 and starts[-1] + width <= 32768


def test_lanes_are_exclusive(tmp_path):
    held = [ptconf.claim_lane(tmp_path) for _ in range(ptconf.LANES)]
    assert sorted(lane for lane, _ in held) == list(range(ptconf.LANES))
    with pytest.raises(ptconf.UsageError):
        ptconf.claim_lane(tmp_path)
    held[1][1].close()  # releasing a lane frees it for the next invocation
    lane, f = ptconf.claim_lane(tmp_path)
    assert lane == held[1][0]
    f.close()
    for _, f in held:
        f.close()


def test_private_apt_configuration(tmp_path):
    text = ptconf.private_sources_list("bookworm")
    lines = text.splitlines()
    assert all(ln.startswith("deb-src ") for ln in lines)
    assert any(ln.endswith("debian bookworm main") for ln in lines)
    assert "signed-by=/usr/share/keyrings/debian-archive-keyring.gpg" in text
    opts = ptconf.apt_options(tmp_path)
    joined = " ".join(opts)
    for key in ("Dir::Etc::SourceList", "Dir::Etc::SourceParts", "Dir::State::Lists", "Dir::Cache"):
        assert f"{key}={tmp_path}" in joined
    assert "/etc/apt" not in joined


def test_upstream_version():
    assert ptconf.upstream_version("13.1-3") == "13.1"
    assert ptconf.upstream_version("1:13.1-3+deb12u1") == "13.1"
    assert ptconf.upstream_version("13.1") == "13.1"


def test_selection_expansion(tmp_path):
    for f in (
        "gdb.server/a.exp",
        "gdb.server/b.exp",
        "gdb.base/break.exp",
        "gdb.base/break.c",
        "lib/gdb.exp",
    ):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("")
    sel = tmp_path / "sel.txt"
    sel.write_text("# comment\ngdb.server/*.exp\ngdb.base/break.exp  # trailing\ngdb.server/a.exp\n")
    pats = ptconf.read_selection(sel)
    assert pats == ["gdb.server/*.exp", "gdb.base/break.exp", "gdb.server/a.exp"]
    assert ptconf.expand_selection(pats, tmp_path) == [
        "gdb.server/a.exp",
        "gdb.server/b.exp",
        "gdb.base/break.exp",
    ]
    with pytest.raises(ptconf.UsageError):
        ptconf.expand_selection(["gdb.base/nope.exp"], tmp_path)


def test_checked_in_selections_are_consistent():
    full = ptconf.read_selection(CONF_DIR / "full.txt")
    ci = ptconf.read_selection(CONF_DIR / "ci.txt")
    assert "gdb.server/*.exp" in full and "gdb.threads/*.exp" in full
    assert "gdb.server/*.exp" in ci
    # Every explicit ci file is part of the full selection (gdb.server and gdb.threads are whole there).
    for entry in ci:
        if entry.startswith(("gdb.server/", "gdb.threads/")):
            continue
        assert entry in full, entry


@pytest.mark.parametrize("name", ["ci", "full"])
def test_checked_in_baselines_hold_every_explicit_file_and_a_cpu(name):
    """A file added to a selection without gdbserver's results would compare against nothing."""
    data = json.loads((CONF_DIR / f"baseline-{name}.json").read_text())
    assert data["cpu"]["vendor"] and data["cpu"]["flags"]
    for entry in ptconf.read_selection(CONF_DIR / f"{name}.txt"):
        if "*" in entry:
            assert any(ptconf.fnmatch.fnmatchcase(e, entry) for e in data["selection"]), entry
            continue
        assert entry in data["selection"], entry
        for run in data["runs"]:
            assert entry in run["files"], (run["board"], entry)


def test_checked_in_baseline_matches_ci_selection():
    path = CONF_DIR / "baseline-ci.json"
    if not path.exists():
        pytest.skip("no baseline yet")
    data = json.loads(path.read_text())
    assert data["format"] == ptconf.FORMAT
    for board in ("native", "extended"):
        run = ptconf.reference_from_file(data, board)
        assert run is not None and run["stub"] == "gdbserver"
        assert sum(1 for s in run["tests"].values() if s == "PASS") > 100


def test_reference_from_file_prefers_gdbserver_first_iteration():
    data = {
        "runs": [
            {"stub": "ptstub", "board": "native", "iteration": 1},
            {"stub": "gdbserver", "board": "native", "iteration": 2},
            {"stub": "gdbserver", "board": "native", "iteration": 1},
        ]
    }
    r = ptconf.reference_from_file(data, "native")
    assert (r["stub"], r["iteration"]) == ("gdbserver", 1)
    assert ptconf.reference_from_file(data, "extended") is None


def test_time_ratio_sums_the_files_both_stubs_finished():
    cur = {"a.exp": {"outcome": "ok", "seconds": 3.0}, "b.exp": {"outcome": "ok", "seconds": 5.0}}
    cur["c.exp"] = {"outcome": "timeout", "seconds": 900.0}  # a timeout's fixed cost is left out
    ref = {"a.exp": {"outcome": "ok", "seconds": 2.0}, "b.exp": {"outcome": "ok", "seconds": 6.0}}
    ref["c.exp"] = {"outcome": "ok", "seconds": 1.0}
    ref["d.exp"] = {"outcome": "ok", "seconds": 9.0}  # not run with the stub: not compared
    assert ptconf.time_ratio(cur, ref) == (2, 8.0, 8.0)
    line = ptconf.format_time_ratio("native", "ptstub", (2, 6.0, 8.0), "in this run")
    assert "ptstub 6.0 s, gdbserver 8.0 s over the same 2 file(s)" in line and line.endswith(": 0.75x")


def test_time_ratios_prefer_this_runs_gdbserver_to_the_baseline_file(capsys):
    def run(stub, seconds):
        return {"stub": stub, "files": {"a.exp": {"outcome": "ok", "seconds": seconds}}}

    args = ptconf.argparse.Namespace(stub="ptstub", against="base.json")
    by_key = {("ptstub", "native", 1): run("ptstub", 4.0), ("ptstub", "extended", 1): run("ptstub", 6.0)}
    by_key[("gdbserver", "native", 1)] = run("gdbserver", 2.0)
    against = {"runs": [{"stub": "gdbserver", "board": "extended", "iteration": 1, **run("gdbserver", 3.0)}]}
    found = ptconf.print_time_ratios(args, ["native", "extended"], by_key, against)
    assert [(f["board"], f["stub_seconds"] / f["gdbserver_seconds"]) for f in found] == [
        ("native", 2.0),
        ("extended", 2.0),
    ]
    out = capsys.readouterr().out
    assert "gdbserver in this run): 2.00x" in out and "gdbserver from base.json, another run): 2.00x" in out


def test_usage_errors_exit_2(capsys):
    assert ptconf.main(["-j", "0"]) == 2
    with pytest.raises(SystemExit) as e:
        ptconf.main(["--board", "sideways"])
    assert e.value.code == 2
    assert ptconf.main(["--against", "/nonexistent/baseline.json"]) == 2
    assert ptconf.main(["--subset", "/nonexistent/list.txt"]) == 2


def test_bad_against_files_are_usage_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert ptconf.main(["--against", str(bad)]) == 2
    native_only = tmp_path / "native.json"
    native_only.write_text(json.dumps({"runs": [{"stub": "gdbserver", "board": "native", "tests": {}}]}))
    assert ptconf.main(["--against", str(native_only), "--board", "extended"]) == 2


def test_stale_known_entries_are_listed_only_for_files_that_ran():
    known = ptconf.parse_known(KNOWN_TEXT + "gdb.base/zzz.exp: * -- never run here\n")
    files = {"gdb.server/a.exp", "gdb.threads/b.exp"}
    native = ptconf.compare(REF, CUR, files=files, known=known, board="native")
    stale = ptconf.stale_known(known, [native], files)
    # t2 matched; t4 is extended-only (native ran only); "name -- with --" ran and matched nothing;
    # gdb.base/zzz.exp was not in the selection.
    assert [k.pattern for k in stale] == ["gdb.server/a.exp: name -- with -- inside"]


class _RerunRunner:
    """Stands in for the testsuite runner: each rerun file yields the gdb.sum given for it."""

    def __init__(self, sums: dict[str, str]) -> None:
        self.sums = sums
        self.ran: list[tuple[str, str]] = []

    def setup_objdir(self, spec) -> None:
        pass

    def run(self, jobs):
        results: dict = {}
        for job in jobs:
            self.ran.append((job.spec.board, job.exp))
            key = (job.spec.stub, job.spec.board, job.spec.iteration)
            results.setdefault(key, {})[job.exp] = ptconf.parse_sum(self.sums[job.exp], job.exp)
        return results


def test_confirm_keeps_only_regressions_that_fail_again(tmp_path):
    """A regression whose test passes when its file runs again (a timeout on a loaded machine) is not
    counted; one that fails again is; each file runs once per board however many names regressed."""
    ref = {"gdb.server/a.exp: t1": "PASS", "gdb.server/a.exp: t2": "PASS", "gdb.server/b.exp: t3": "PASS"}
    cur = {"gdb.server/a.exp: t1": "FAIL", "gdb.server/a.exp: t2": "FAIL", "gdb.server/b.exp: t3": "FAIL"}
    cmp_ = ptconf.compare(ref, cur, board="native")
    assert len(cmp_.regressions) == 3
    runner = _RerunRunner(
        {
            "gdb.server/a.exp": (
                "Running /s/gdb.server/a.exp ...\nPASS: gdb.server/a.exp: t1\nFAIL: gdb.server/a.exp: t2\n"
            ),
            "gdb.server/b.exp": "Running /s/gdb.server/b.exp ...\nPASS: gdb.server/b.exp: t3\n",
        }
    )
    spec = ptconf.RunSpec("ptstub", "native", 1, "/bin/true", tmp_path / "obj")
    ptconf.confirm_regressions(runner, [spec], [cmp_], "ptstub", tmp_path)
    assert sorted(runner.ran) == [("native", "gdb.server/a.exp"), ("native", "gdb.server/b.exp")]
    assert [e["name"] for e in cmp_.regressions] == ["gdb.server/a.exp: t2"]
    assert sorted(e["name"] for e in cmp_.unconfirmed) == ["gdb.server/a.exp: t1", "gdb.server/b.exp: t3"]


CPUINFO = """\
processor	: 0
vendor_id	: AuthenticAMD
model name	: AMD EPYC
flags		: fpu sse avx avx2 pku ospke

processor	: 1
vendor_id	: AuthenticAMD
model name	: AMD EPYC
flags		: fpu sse avx avx2 pku ospke avx512f
"""

AVX2 = {"vendor": "AuthenticAMD", "model": "AMD EPYC", "flags": ["avx", "avx2", "fpu", "ospke", "pku", "sse"]}
ZEN4 = {"vendor": "AuthenticAMD", "flags": ["avx", "avx2", "avx512bw", "avx512f", "avx512vl", "ospke", "pku"]}
INTEL_AVX512 = ZEN4 | {"vendor": "GenuineIntel"}

CPU_DEPS = """\
# comment
gdb.arch/i386-avx512*.exp -- vendor avx512f avx512bw
gdb.arch/x86-avx512bf16.exp -- vendor avx512_bf16  # trailing comment
gdb.arch/i386-pkru.exp -- vendor pku
gdb.arch/i386-mpx*.exp -- mpx
"""
CPU_SEL = [
    "gdb.arch/i386-avx512.exp",
    "gdb.arch/x86-avx512bf16.exp",
    "gdb.arch/i386-pkru.exp",
    "gdb.arch/i386-mpx.exp",
    "gdb.arch/amd64-byte.exp",
]


def test_cpu_profile_reads_the_first_cpu():
    assert ptconf.cpu_profile(CPUINFO) == AVX2
    assert ptconf.cpu_profile("") == {"vendor": "", "model": "", "flags": []}


def test_parse_cpu_dependent():
    deps = ptconf.parse_cpu_dependent(CPU_DEPS)
    assert deps[0] == ptconf.CpuDependent("gdb.arch/i386-avx512*.exp", ("vendor", "avx512f", "avx512bw"))
    assert deps[1].features == ("vendor", "avx512_bf16")
    for bad in ("gdb.arch/x.exp", "gdb.arch/x.exp -- ", " -- avx"):
        with pytest.raises(ptconf.UsageError):
            ptconf.parse_cpu_dependent(bad)


def test_checked_in_cpu_dependent_list_parses():
    deps = ptconf.load_cpu_dependent(CONF_DIR / "cpu-dependent.txt")
    assert any(ptconf.fnmatch.fnmatchcase("gdb.arch/i386-avx512.exp", d.pattern) for d in deps)


def test_cpu_live_files_only_where_a_feature_of_the_file_differs():
    deps = ptconf.parse_cpu_dependent(CPU_DEPS)
    # The baseline's own CPU: every baseline result holds.
    assert ptconf.cpu_live_files(CPU_SEL, deps, AVX2, AVX2) == {}
    # An AVX-512 host of the same vendor: only the files that look at avx512f/avx512bw.
    assert list(ptconf.cpu_live_files(CPU_SEL, deps, AVX2, ZEN4)) == ["gdb.arch/i386-avx512.exp"]
    # Another vendor: the XSAVE layout differs, so every file whose registers live there.
    live = ptconf.cpu_live_files(CPU_SEL, deps, ZEN4, INTEL_AVX512)
    assert list(live) == ["gdb.arch/i386-avx512.exp", "gdb.arch/x86-avx512bf16.exp", "gdb.arch/i386-pkru.exp"]
    assert live["gdb.arch/i386-pkru.exp"] == "CPU differs from the baseline's in vendor"
    # A baseline without a CPU: every CPU-dependent file, never the others.
    assert len(ptconf.cpu_live_files(CPU_SEL, deps, None, AVX2)) == 4


def test_live_files_modes():
    deps = ptconf.parse_cpu_dependent(CPU_DEPS)
    against = {"cpu": AVX2}
    assert ptconf.live_files("auto", CPU_SEL, deps, against, ZEN4) == {
        "gdb.arch/i386-avx512.exp": "CPU differs from the baseline's in avx512f, avx512bw"
    }
    assert ptconf.live_files("never", CPU_SEL, deps, against, ZEN4) == {}
    assert len(ptconf.live_files("always", CPU_SEL, deps, against, AVX2)) == 4
    assert ptconf.live_files("always", CPU_SEL, deps, None, AVX2) == {}  # no --against: nothing to replace


def test_reference_takes_live_files_from_this_hosts_gdbserver():
    """On an AVX-512 host the baseline's UNSUPPORTED gives way to the live run's results, whatever
    they are (gdbserver's FAILs there are not asked of the stub); other files keep the baseline's."""
    base = {
        "gdb.arch/i386-avx512.exp: no avx512": "UNSUPPORTED",
        "gdb.arch/amd64-byte.exp: t": "PASS",
    }
    live = {
        "gdb.arch/i386-avx512.exp: zmm0": "PASS",
        "gdb.arch/i386-avx512.exp: k1": "FAIL",
        "gdb.arch/amd64-byte.exp: t": "FAIL",  # not live: ignored
    }
    ref = ptconf.reference_tests(base, live, {"gdb.arch/i386-avx512.exp"})
    assert ref == {
        "gdb.arch/amd64-byte.exp: t": "PASS",
        "gdb.arch/i386-avx512.exp: zmm0": "PASS",
        "gdb.arch/i386-avx512.exp: k1": "FAIL",
    }
    cur = {"gdb.arch/amd64-byte.exp: t": "PASS", "gdb.arch/i386-avx512.exp: k1": "PASS"}
    cmp_ = ptconf.compare(ref, cur, files={"gdb.arch/amd64-byte.exp", "gdb.arch/i386-avx512.exp"})
    assert [e["name"] for e in cmp_.regressions] == ["gdb.arch/i386-avx512.exp: zmm0"]
    assert [e["name"] for e in cmp_.wins] == ["gdb.arch/i386-avx512.exp: k1"]


def _baseline(files: dict[str, dict[str, str]], selection: list[str], cpu=None, boards=("native", "extended")):
    runs = []
    for b in boards:
        fr = {}
        tests = {}
        for exp, t in files.items():
            parsed = ptconf.FileResult(exp=exp, tests=dict(t), seconds=1.5)
            fr[exp] = {k: v for k, v in parsed.to_json().items() if k in ("outcome", "seconds", "counts")}
            tests.update(t)
        runs.append({"stub": "gdbserver", "board": b, "iteration": 1, "files": fr, "tests": tests})
    return ptconf.baseline_doc(runs_with_dirs(runs), "13.1-3", "x", selection, 1, 10.0, {}, cpu or AVX2)


def runs_with_dirs(runs):
    for r in runs:
        r["counts_by_dir"] = ptconf.counts_by_dir_json(r["files"])
    return runs


def test_merge_keeps_old_files_as_they_are_and_adds_or_replaces_the_run():
    old = _baseline(
        {
            "gdb.base/a.exp": {"gdb.base/a.exp: t1": "PASS", "gdb.base/a.exp: t2": "FAIL"},
            "gdb.arch/x.exp": {"gdb.arch/x.exp: old": "PASS"},
        },
        ["gdb.base/a.exp", "gdb.arch/x.exp"],
    )
    del old["cpu"]  # a baseline written before CPUs were recorded
    for run in old["runs"]:  # a directory the merge does not touch keeps its entry as checked in
        run["counts_by_dir"]["gdb.base"]["seconds"] = 99.99
    new = _baseline(
        {
            "gdb.arch/x.exp": {"gdb.arch/x.exp: new": "FAIL"},
            "gdb.python/p.exp": {"gdb.python/p.exp: p": "PASS"},
        },
        ["gdb.arch/x.exp", "gdb.python/p.exp"],
        cpu=ZEN4,
    )
    merged = ptconf.merge_baselines(old, new)
    assert merged["selection"] == ["gdb.base/a.exp", "gdb.arch/x.exp", "gdb.python/p.exp"]
    assert merged["cpu"] == ZEN4 and merged["created"] == old["created"]
    assert merged["merged"][0]["files"] == 2
    for run in merged["runs"]:
        assert run["tests"] == {
            "gdb.base/a.exp: t1": "PASS",
            "gdb.base/a.exp: t2": "FAIL",
            "gdb.arch/x.exp: new": "FAIL",
            "gdb.python/p.exp: p": "PASS",
        }
        assert sorted(run["files"]) == ["gdb.arch/x.exp", "gdb.base/a.exp", "gdb.python/p.exp"]
        assert run["counts_by_dir"]["gdb.arch"]["FAIL"] == 1 and run["counts_by_dir"]["gdb.arch"]["PASS"] == 0
        assert run["counts_by_dir"]["gdb.base"] == old["runs"][0]["counts_by_dir"]["gdb.base"]
        assert run["counts_by_dir"]["gdb.base"]["seconds"] == 99.99
        assert run["counts_by_dir"]["gdb.arch"]["seconds"] == 1.5
        assert ptconf.reference_from_file(merged, run["board"]) is run
    json.dumps(merged)  # still a plain JSON document


def test_merge_refuses_other_boards_gdbs_and_stale_cpu_results():
    old = _baseline({"gdb.arch/i386-avx512.exp": {"gdb.arch/i386-avx512.exp: z": "PASS"}}, ["gdb.arch/i386-avx512.exp"])
    new = _baseline({"gdb.base/a.exp": {"gdb.base/a.exp: t": "PASS"}}, ["gdb.base/a.exp"], cpu=ZEN4)
    with pytest.raises(ptconf.UsageError):
        ptconf.merge_baselines(old, new | {"runs": new["runs"][:1]})
    with pytest.raises(ptconf.UsageError):
        ptconf.merge_baselines(old, new | {"gdb": "14.2-1"})
    deps = ptconf.parse_cpu_dependent(CPU_DEPS)
    with pytest.raises(ptconf.UsageError, match="i386-avx512"):
        ptconf.check_merge_cpu(old, new, deps)
    ptconf.check_merge_cpu(old, new | {"cpu": AVX2}, deps)  # same CPU: fine
    ptconf.check_merge_cpu(old, new | {"selection": ["gdb.arch/i386-avx512.exp"]}, deps)  # run again: fine


def test_merge_into_a_file(tmp_path):
    path = tmp_path / "base.json"
    path.write_text(json.dumps(_baseline({"gdb.base/a.exp": {"gdb.base/a.exp: t": "PASS"}}, ["gdb.base/a.exp"])))
    new = _baseline({"gdb.mi/m.exp": {"gdb.mi/m.exp: m": "PASS"}}, ["gdb.mi/m.exp"])
    merged = ptconf.merge_into(path, new, [])
    assert merged["selection"] == ["gdb.base/a.exp", "gdb.mi/m.exp"]
    path.write_text("{oops")
    with pytest.raises(ptconf.UsageError):
        ptconf.merge_into(path, new, [])


def test_merge_needs_write_baseline():
    assert ptconf.main(["--merge"]) == 2


def test_nat_headers_are_added_to_a_cache_beside_what_is_there(tmp_path):
    """A cache unpacked before the gdb.arch files needed gdb/nat is completed in place: the testsuite
    another invocation may be running from is not unpacked again."""
    import tarfile

    suite = ptconf.Testsuite(tmp_path / "cache", "13.1-3")
    suite.dl_dir.mkdir(parents=True)
    src = tmp_path / "pkg"
    for h in ptconf.NAT_HEADERS:
        (src / "gdb-13.1" / h).parent.mkdir(parents=True, exist_ok=True)
        (src / "gdb-13.1" / h).write_text(f"/* {h} */\n")
    with tarfile.open(suite.dl_dir / "gdb_13.1.orig.tar.xz", "w:xz") as tar:
        tar.add(src / "gdb-13.1", arcname="gdb-13.1")
    suite.srcdir.mkdir(parents=True)
    (suite.srcdir / "running.exp").write_text("in use\n")
    (suite.build).mkdir(parents=True)
    (suite.build / "site.exp").write_text("")
    suite.stamp.write_text("13.1-3\n")
    suite.prepare("http://mirror.invalid", "http://security.invalid")
    for h in ptconf.NAT_HEADERS:
        assert (suite.src_top / h).read_text() == f"/* {h} */\n"
    assert (suite.srcdir / "running.exp").read_text() == "in use\n"
    assert sorted(p.name for p in suite.root.iterdir()) == ["build", "configured.stamp", "download", "src"]


def test_selections_needing_a_header_package():
    assert ptconf.packages_for(["gdb.arch/amd64-stap-expressions.exp", "gdb.base/break.exp"]) == {
        "/usr/include/x86_64-linux-gnu/sys/sdt.h": "systemtap-sdt-dev"
    }
    assert ptconf.packages_for(["gdb.base/break.exp"]) == {}


def test_a_merge_that_would_be_refused_is_refused_before_the_run(tmp_path):
    path = tmp_path / "base.json"
    path.write_text(json.dumps(_baseline({"gdb.arch/i386-avx512.exp": {"gdb.arch/i386-avx512.exp: z": "PASS"}}, ["x"])))
    deps = ptconf.parse_cpu_dependent(CPU_DEPS)
    planned = {"gdb": "13.1-3", "selection": ["gdb.base/a.exp"], "cpu": AVX2, "runs": [{"board": "native"}]}
    with pytest.raises(ptconf.UsageError, match="boards"):
        ptconf.precheck_merge(path, planned, deps)
    both = planned | {"runs": [{"board": "native"}, {"board": "extended"}]}
    ptconf.precheck_merge(path, both, deps)
    ptconf.precheck_merge(tmp_path / "new.json", planned, deps)  # nothing to merge into yet
