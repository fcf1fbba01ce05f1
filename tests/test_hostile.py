"""Hostile and extreme input, one test per class of failure: large or degenerate data sets,
values at the edge of what a scale can represent, malformed prior files and environments.

Each ends in exit 0 with finite output or exit 2 with one line naming what was wrong (no
traceback, nothing written). Data sets are made up here, in the test, so that the numbers they
must give can be computed independently.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from conftest import run_cli, run_main

HEADER = "outcome,study,events_t,n_t,events_c,n_c,mean_t,sd_t,mean_c,sd_c,source"


def assert_input_error(r, message: str):
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr, r.stderr
    assert r.stderr.startswith("bayes_pip: error: ") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr


def continuous_data(directory: Path, outcomes: dict[str, tuple[str, list[tuple]]]) -> Path:
    """A data directory with continuous outcomes: {id: (measure, [(n, mean_t, sd_t, mean_c,
    sd_c), ...])}; benefit higher, no published rows."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["outcome,label,comparison,measure,benefit,timepoint,mcid"]
    rows = [HEADER]
    for oid, (measure, studies) in outcomes.items():
        lines.append(f"{oid},{oid} score,x_vs_control,{measure},higher,post,")
        for i, (n, mt, st, mc, sc) in enumerate(studies):
            rows.append(f"{oid},Study {i + 1},,{n},,{n},{mt},{st},{mc},{sc},made up in the test")
    (directory / "outcomes.csv").write_text("\n".join(lines) + "\n")
    (directory / "studies.csv").write_text("\n".join(rows) + "\n")
    return directory


# ----- Bayes factors beyond what a float holds ------------------------------------------------

def test_overwhelming_evidence_gives_a_log_bayes_factor(tmp_path):
    """Five tight MD studies 10 units from zero: BF10 (fixed effect) is e^62744. It is printed as
    a bound with its log, written to JSON as null plus the log, and the log equals the closed
    form (y ~ N(m0, diag(v) + s0^2 11') against y ~ N(0, diag(v)))."""
    studies = [(500, 10 + 0.01 * i, 1, 0, 1) for i in range(5)]
    data = continuous_data(tmp_path / "data", {"score": ("MD", studies)})
    r = run_main("bma", "score", "--data", str(data), "--prior", "vague")
    assert r.returncode == 0, r.stderr
    assert "BF10 (an effect, fixed effect):             > 10^300 (log BF = 62744)" in r.stdout
    r = run_main("bma", "score", "--data", str(data), "--prior", "vague", "--json")
    d = json.loads(r.stdout)
    assert d["bf_effect_fixed"] is None and d["bf_effect"] == pytest.approx(
        math.exp(d["log_bf_effect"]), rel=1e-12)
    y = np.array([10 + 0.01 * i for i in range(5)])
    v = np.full(5, 2 / 500)
    m0, s0 = 0.0, 10.0  # the vague prior on mu
    log_fe = stats.multivariate_normal(np.full(5, m0), np.diag(v) + s0**2).logpdf(y)
    log_fe0 = stats.norm(0, np.sqrt(v)).logpdf(y).sum()
    assert d["log_bf_effect_fixed"] == pytest.approx(log_fe - log_fe0, rel=1e-10)


def test_a_report_survives_overwhelming_heterogeneity(tmp_path):
    """Five SMD studies with effects -8 to 8: the heterogeneity BF is beyond 10^300; the report
    still writes, and every number in its JSON is finite."""
    studies = [(200, e, 1, 0, 1) for e in (-8, -4, 0, 4, 8)]
    data = continuous_data(tmp_path / "data", {"hetero": ("SMD", studies)})
    out = tmp_path / "out"
    r = run_main("report", "hetero", "--engine", "exact", "--data", str(data), "--out", str(out))
    assert r.returncode == 0, r.stderr
    text = (out / "hetero.md").read_text()
    assert "> 10^300 (log BF = 1199) times as likely with between-study heterogeneity" in text
    record = json.loads((out / "hetero.json").read_text(), parse_constant=pytest.fail)
    assert record["bma"]["bf_heterogeneity"] is None
    assert record["bma"]["log_bf_heterogeneity"] == pytest.approx(1199, abs=0.5)


# ----- many studies: memory linear in k, output bounded ---------------------------------------

def regression_data(directory: Path, k: int, seed: int = 1) -> Path:
    """k made-up log RRs (generic inverse variance) with a numeric moderator 'dose' in
    trials.csv: y = -0.02 dose + noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 50, k)
    y = -0.02 * x + rng.normal(0, 0.3, k)
    se = rng.uniform(0.1, 0.5, k)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "outcomes.csv").write_text(
        "outcome,label,comparison,measure,benefit\ntb,TB,vaccine,RR,lower\n")
    (directory / "studies.csv").write_text(
        "outcome,study,yi,sei,provenance,source\n"
        + "".join(f"tb,S{i},{y[i]:.6f},{se[i]:.6f},printed,made up\n" for i in range(k)))
    (directory / "trials.csv").write_text(
        "study,source,dose,dose_source\n"
        + "".join(f"S{i},made up,{x[i]:.4f},made up\n" for i in range(k)))
    return directory


# the child's own high-water mark (VmHWM belongs to its address space; ru_maxrss would carry
# the forking test worker's peak across exec)
PEAK = """import sys
from bayes_pip.cli import main
code = main(sys.argv[1:])
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
sys.stderr.write(f"peak-kb {hwm}\\n")
sys.exit(code)
"""


def peak_memory_run(*args: str):
    """Run the CLI in a new interpreter; returns (CompletedProcess, its peak resident MB)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True,
                       timeout=600)
    peak = [line for line in r.stderr.splitlines() if line.startswith("peak-kb ")]
    return r, int(peak[-1].split()[1]) / 1024 if peak else math.inf


@pytest.mark.slow  # a resource bound: three processes up to k = 20,000
def test_meta_regression_memory_is_linear_at_k_20000(tmp_path):
    """`dl --moderator` at k = 20,000 (a dense k x k hat matrix needed 3.2 GB and failed): under
    1 GB, the study list shortened, the fitted effects at five quantiles, the coefficients equal
    to weighted least squares at the printed tau^2 (np.linalg.lstsq, an independent solve)."""
    data = regression_data(tmp_path / "data", 20_000)
    r, peak = peak_memory_run("dl", "tb", "--data", str(data), "--moderator", "dose", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert peak < 1024, peak
    rec = json.loads(r.stdout)
    assert len(rec["fitted"]) == 5 and "minimum, quartiles and maximum of dose" in rec["notes"][-1]
    y = np.array([float(line.split(",")[2]) for line in
                  (data / "studies.csv").read_text().splitlines()[1:]])
    se = np.array([float(line.split(",")[3]) for line in
                   (data / "studies.csv").read_text().splitlines()[1:]])
    x = np.array([float(line.split(",")[2]) for line in
                  (data / "trials.csv").read_text().splitlines()[1:]])
    sw = 1 / np.sqrt(se**2 + rec["tau2"])
    beta = np.linalg.lstsq(np.column_stack([sw, sw * x]), sw * y, rcond=None)[0]
    assert [c["estimate"] for c in rec["coefficients"]] == pytest.approx(beta, rel=1e-9)
    text = run_main("dl", "tb", "--data", str(data), "--moderator", "dose").stdout
    assert "S11 and 19,988 more" in text and "p < 1e-300" in text and len(text) < 5000


def test_dl_tau2_of_a_meta_regression_equals_the_dense_formula():
    """The O(k p^2) residual projection against the dense P = W - W X (X'WX)^-1 X'W at k = 60:
    y'Py, tr P, tr P^2 and P y."""
    from bayes_pip.metareg import _Residual

    rng = np.random.default_rng(3)
    X = np.column_stack([np.ones(60), rng.normal(size=60), rng.integers(0, 2, 60)])
    w, y = rng.uniform(1, 20, 60), rng.normal(size=60)
    wx = X * w[:, None]
    P = np.diag(w) - wx @ np.linalg.inv(X.T @ wx) @ wx.T
    R = _Residual(X, w)
    assert R.quadratic(y) == pytest.approx(y @ P @ y, rel=1e-12)
    assert R.trace() == pytest.approx(np.trace(P), rel=1e-12)
    assert R.trace_square() == pytest.approx(np.sum(P * P), rel=1e-11)
    assert R.apply(y) == pytest.approx(P @ y, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("at", ["1e10", "1e308"])
def test_at_values_the_scale_cannot_hold_are_refused(tmp_path, at):
    """--at 1e10 printed "- [0, -]" with exit 0 and 1e308 crashed; both are one line, exit 2."""
    data = regression_data(tmp_path / "data", 12)
    r = run_main("fit", "tb", "--data", str(data), "--moderator", "dose", "--engine", "exact",
                 "--at", at)
    assert_input_error(r, "is beyond what a floating-point number can hold: give --at values "
                          "nearer the data (dose from")


# ----- reconstruction: bounded in time and memory ---------------------------------------------

def hostile_review(directory: Path, participants: int, constraints: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "outcomes.csv").write_text(
        "outcome,label,comparison,measure,benefit\nsec,Secure,x_vs_control,RR,higher\n")
    (directory / "published.csv").write_text(
        "outcome,measure,estimate,ci_low,ci_high,k,participants,model,grade,source\n"
        f"sec,RR,8.93,1.25,63.7,2,{participants},random effects,low,made up\n")
    (directory / "constraints.csv").write_text("outcome,study,arm,field,min,max,source\n"
                                               + constraints)
    return directory


@pytest.mark.slow  # a resource bound measured in new processes
def test_reconstruction_memory_and_time_are_bounded(tmp_path):
    """Every event count unknown in four arms of 40 (2.8 million candidates, the old search
    built them in one block; 12 to 21 million ended in MemoryError) and an arm-size search of
    20,000 participants (refused by the count): each under 1 GB and 30 s."""
    import time

    arms = "".join(f"sec,{s},{a},n,40,40,s\n" for s in "AB" for a in ("t", "c"))
    data = hostile_review(tmp_path / "full", 160, arms)
    start = time.perf_counter()
    r, peak = peak_memory_run("reconstruct", "sec", "--data", str(data), "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert time.perf_counter() - start < 30 and peak < 1024, peak
    assert json.loads(r.stdout)["n_candidates"] == 41**4
    data = hostile_review(tmp_path / "wide", 20_000, "sec,A,c,events,9,9,s\n"
                          "sec,B,c,events,1,1,s\n")
    start = time.perf_counter()
    r, peak = peak_memory_run("list", "--data", str(data))
    assert r.returncode == 0 and "tables not reconstructed" in r.stdout, r.stderr
    assert time.perf_counter() - start < 30 and peak < 1024, peak


# ----- accepted input, finite output (or a one-line refusal) ----------------------------------

BASE = Path(__file__).parent / "bad_inputs" / "tau_zero"   # Crins OR outcome and an SMD one
SHIPPED = Path(__file__).resolve().parents[1] / "models"


def team_prior(directory: Path, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "mine.toml").write_text(text)
    return directory


def halfnormal_as(name: str = "mine") -> str:
    return (SHIPPED / "halfnormal-0.5.toml").read_text().replace(
        'name = "halfnormal-0.5"', f'name = "{name}"').replace("order = 1\n", "order = 60\n")


def test_a_prior_location_a_log_scale_cannot_hold_is_refused(tmp_path):
    """[mu] mean = 1e6 printed "Pooled OR inf [inf, inf]" with exit 0; on the log OR scale it is
    refused by name, while on the SMD scale (where 1e6 is a number) the fit stays finite."""
    d = team_prior(tmp_path / "p", halfnormal_as().replace("mean = 0.0", "mean = 1e6", 1))
    r = run_main("fit", "rejection", "--data", str(BASE), "--engine", "exact", "--prior", "mine",
                 "--prior-dir", str(d))
    assert_input_error(r, "column 'mu.mean': mean 1e+06 on the log OR scale (a pooled OR of "
                          "exp(1e+06)) is beyond what a floating-point number holds")
    r = run_main("fit", "score", "--data", str(BASE), "--engine", "exact", "--prior", "mine",
                 "--prior-dir", str(d), "--json")
    assert r.returncode == 0
    json.loads(r.stdout, parse_constant=pytest.fail)   # no Infinity or NaN anywhere


def test_a_published_ci_wider_than_a_float_is_refused(tmp_path):
    """A published SMD CI of -1e308 to 1e308 gave an infinite standard error and crashed
    `--json` (exit 1)."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(BASE, data)
    with open(data / "published.csv", "a") as f:
        f.write("score,SMD,0.1,-1e308,1e308,2,250,random effects,low,made up\n")
    r = run_main("fit", "score", "--data", str(data), "--engine", "exact", "--level", "summary",
                 "--json")
    assert_input_error(r, "published.csv, row 3, column 'ci_high': the CI [-1e+308, 1e+308] is "
                          "wider than a floating-point number can hold")


def test_exact_batch_says_why_for_every_row_without_a_posterior():
    """Within-study variances of 1e300 gave a NaN row with an empty error."""
    from types import SimpleNamespace

    from bayes_pip.engines.batch import exact_batch
    from bayes_pip.prior_families import HalfNormal, Normal

    y = np.array([[0.1, 0.2], [0.1, 0.2], [0.3, 0.5]])
    v = np.array([[0.1, 0.1], [1e300, 1e300], [0.2, 0.1]])
    out = exact_batch(y, v, prior=SimpleNamespace(mu=Normal(0, 4), tau=HalfNormal(0.5)))
    error = out["error"].values
    assert error[0] == "" and error[2] == ""
    assert error[1].startswith("no finite posterior: the effects or variances are too extreme")
    for name, values in out.data_vars.items():
        if values.dtype.kind == "f":
            rows = np.asarray(values.values).reshape(3, -1)
            assert np.isfinite(rows[[0, 2]]).all() and np.isnan(rows[1]).all(), name


# ----- every user mistake is exit 2 with one line ---------------------------------------------

def test_funnel_with_identical_standard_errors(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "outcomes.csv").write_text((BASE / "outcomes.csv").read_text())
    (data / "studies.csv").write_text("outcome,study,yi,sei,provenance,source\n" + "".join(
        f"rejection,S{i},{0.1 * i},0.2,printed,made up\n" for i in range(12)))
    (data / "trials.csv").write_text("study,source,G,G_source\n" + "".join(
        f"S{i},made up,g{i},made up\n" for i in range(12)))
    out = tmp_path / "out"
    r = run_main("funnel", "rejection", "--data", str(data), "--out", str(out))
    assert_input_error(r, "all 12 studies have the same standard error (0.2)")
    assert not out.exists()
    r = run_main("dl", "rejection", "--data", str(data), "--subgroup", "G", "--tau", "common")
    assert_input_error(r, "subgroups by G: 12 studies cannot estimate 12 coefficients")


@pytest.mark.parametrize("edit,column,message", [
    (("order = 60", 'order = "first"'), "order", "'first' is not allowed here"),
    (("order = 60", "order = 60\ntau = 3"), "tau", "3 is not allowed here (must be a table"),
    (('title = "Weakly informative: half-normal(0.5) on tau"', "title = 5"), "title",
     "5 is not allowed here (must be text in quotes)"),
    (("scale = 0.5", 'scale = "0.5"'), "tau.scale", "'0.5' is not allowed"),
    (("scale = 0.5", "scale = [0.5]"), "tau.scale", "[0.5] is not allowed"),
    (("scale = 0.5", "scale = {a = 1}"), "tau.scale", "is not allowed"),
    (('source = "Friede et al. 2017: half-normal, scale 0.5"', "source = 3"), "tau.source",
     "3 is not allowed here"),
    (('applies_to = ["RR", "OR", "SMD"]', 'applies_to = "RR"'), "applies_to",
     "must list measures"),
])
def test_prior_file_structure(tmp_path, edit, column, message):
    old, new = edit
    text = halfnormal_as()
    assert old in text
    if new == "order = 60\ntau = 3":   # a top-level tau = 3 (the [tau] table removed)
        text = text[:text.index("[tau]")] + text[text.index("[baseline]"):]
    d = team_prior(tmp_path / "p", text.replace(old, new, 1))
    r = run_main("fit", "rejection", "--data", str(BASE), "--engine", "exact", "--prior-dir",
                 str(d))
    assert_input_error(r, f"mine.toml, column '{column}': ")
    assert message in r.stderr


def test_prior_dir_entries_that_are_not_files(tmp_path):
    """A 100,000-deep TOML array, an entry linked to /dev/zero and a FIFO named x.toml (which
    hung): each refused with one line, through a new process for the FIFO."""
    import os

    deep = tmp_path / "deep"
    deep.mkdir()
    (deep / "deep.toml").write_text("name = 'x'\na = " + "[" * 100_000 + "]" * 100_000 + "\n")
    r = run_main("fit", "rejection", "--data", str(BASE), "--engine", "exact", "--prior-dir",
                 str(deep))
    assert_input_error(r, "deep.toml: not a readable TOML prior file (values nested too deeply)")
    zero = tmp_path / "zero"
    zero.mkdir()
    (zero / "z.toml").symlink_to("/dev/zero")
    r = run_main("fit", "rejection", "--data", str(BASE), "--engine", "exact", "--prior-dir",
                 str(zero))
    assert_input_error(r, "z.toml: is not a regular file")
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "x.toml")
    r = run_cli("fit", "rejection", "--data", str(BASE), "--engine", "exact", "--prior-dir",
                str(fifo), timeout=60)
    assert_input_error(r, "x.toml: is not a regular file")


def test_calibrate_tau_scale_range():
    r = run_main("calibrate", "--tau-scale", "1e-300", "--engine", "exact")
    assert_input_error(r, "--tau-scale 1e-300: give a half-normal scale from 1e-06 to 100")


def test_cr_only_line_ends_are_read(tmp_path):
    """A CSV saved with classic Mac OS line ends (CR only) ended in a csv.Error traceback; it
    reads as the same data as the LF file."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(BASE, data)
    for name in ("studies.csv", "outcomes.csv"):
        path = data / name
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r"))
    cr = run_main("dl", "rejection", "--data", str(data), "--json")
    lf = run_main("dl", "rejection", "--data", str(BASE), "--json")
    assert cr.returncode == 0, cr.stderr
    assert json.loads(cr.stdout)["estimate"] == json.loads(lf.stdout)["estimate"]


def test_import_never_replaces_the_working_directory_or_foreign_files(tmp_path, monkeypatch):
    fixture = Path(__file__).parent / "fixtures" / "fleiss1993"
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    r = run_main("import", str(fixture), "--out", ".", "--force", "--benefit", "lower")
    assert_input_error(r, "is the current directory or one above it")
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.tex").write_text("mine")
    r = run_main("import", str(fixture), "--out", str(other), "--force", "--benefit", "lower")
    assert_input_error(r, "--force replaces only an earlier import")
    assert (other / "chapter1.tex").read_text() == "mine"
    r = run_main("import", str(fixture), "--out", str(tmp_path / "new"), "--benefit", "lower")
    assert r.returncode == 0, r.stderr
    r = run_main("import", str(fixture), "--out", str(tmp_path / "new"), "--force",
                 "--benefit", "lower")
    assert r.returncode == 0, r.stderr


# ----- data text is text: never markup in Markdown, never control sequences on a terminal ------

HOSTILE_NAME = "Smith <script>alert(1)</script> | [x](javascript:alert(1)) <svg onload=y>"


def test_markdown_reports_escape_data_text(tmp_path):
    """A study name with raw HTML, a javascript: link and a '|' (which added a table column):
    the Markdown shows it literally (CommonMark escapes), and the HTML report escapes it."""
    import re
    import shutil

    data = tmp_path / "data"
    shutil.copytree(BASE, data)
    studies = data / "studies.csv"
    studies.write_text(studies.read_text().replace("Heffron 2003", f'"{HOSTILE_NAME}"'))
    out = tmp_path / "out"
    r = run_main("report", "rejection", "--engine", "exact", "--data", str(data), "--out", str(out))
    assert r.returncode == 0, r.stderr
    md = (out / "rejection.md").read_text()
    assert "<script" not in md and "<svg" not in md and "](javascript" not in md
    assert "Smith &lt;script>alert(1)&lt;/script> \\| [x]\\(javascript:alert(1)) &lt;svg" in md
    for table in re.findall(r"(?:^\|.*\|$\n?)+", md, flags=re.M):   # every row: one column count
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in table.strip().splitlines()}
        assert len(widths) == 1, table
    assert "<script" not in (out / "rejection.html").read_text().split("<style>")[0]


def test_control_characters_in_data_never_reach_the_terminal(tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(BASE, data)
    (data / "trials.csv").write_text("study,source,grp,grp_source\nHeffron 2003,s,a\x1b[31mRED,s\n"
                                     "Gibelli 2004,s,b,s\nSchuller 2005,s,a\x1b[31mRED,s\n")
    r = run_main("dl", "rejection", "--data", str(data), "--subgroup", "grp")
    assert r.returncode == 0 and "a[31mRED" in r.stdout and "\x1b" not in r.stdout


def test_text_among_numbers_in_a_moderator_is_not_silently_categorical(tmp_path):
    """'12 weeks' beside numbers made 'dose' categorical without a word; now one line naming
    the study and the cell (a subgroup analysis, which takes values as labels, still runs)."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(BASE, data)
    (data / "trials.csv").write_text("study,source,dose,dose_source\nHeffron 2003,s,12 weeks,s\n"
                                     "Gibelli 2004,s,10,s\nSchuller 2005,s,14,s\n")
    r = run_main("dl", "rejection", "--data", str(data), "--moderator", "dose")
    assert_input_error(r, "trials.csv, column 'dose': moderator 'dose' of Heffron 2003 is "
                          "'12 weeks' where the other studies give numbers")
    assert run_main("dl", "rejection", "--data", str(data), "--subgroup", "dose").returncode == 0


# ----- environment: no writable HOME ----------------------------------------------------------

@pytest.mark.slow   # compiles the binomial model in a fresh PyTensor compiledir (about 40 s)
def test_binomial_engine_runs_without_a_writable_home(tmp_path):
    """PyTensor's compiledir below HOME could not be created: exit 1 with a traceback."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HOME": "/proc/no-such-home"}
    for name in ("XDG_CACHE_HOME", "MPLCONFIGDIR", "PYTENSOR_FLAGS", "DASK_CONFIG"):
        env.pop(name, None)
    r = subprocess.run([sys.executable, "-m", "bayes_pip", "fit", "rejection", "--data",
                        str(BASE), "--engine", "binomial", "--draws", "300", "--tune", "300",
                        "--json"], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=900)
    assert r.returncode in (0, 3), r.stderr[-3000:]   # 3: a short run may miss the gate
    assert "Traceback" not in r.stderr and "compiledir" not in r.stderr


# ----- atomic and honest writes ---------------------------------------------------------------

@pytest.mark.parametrize("signum,code,word", [
    (2, 130, "interrupted"),
    pytest.param(15, 143, "terminated", marks=pytest.mark.slow)])   # the same path, SIGTERM
def test_a_signal_during_the_final_move_leaves_the_new_set_whole(tmp_path, monkeypatch, signum,
                                                                 code, word):
    """SIGTERM while `report --all` moved its files over an earlier set left 1 new and 39 old
    files and said "nothing was written". The signal arrives at the first file moved; the
    move completes, every file is the new one, and the message says so."""
    import os

    from bayes_pip import output as report

    out = tmp_path / "reports"
    assert run_main("report", "--all", "--engine", "exact", "--data", str(BASE), "--out",
                    str(out)).returncode == 0
    for path in out.iterdir():
        path.write_bytes(b"old")
    real = os.replace
    sent = []

    def replace_and_signal(src, dest):
        if not sent:
            sent.append(signum)
            os.kill(os.getpid(), signum)
        return real(src, dest)

    monkeypatch.setattr(report.os, "replace", replace_and_signal)
    r = run_main("report", "--all", "--engine", "exact", "--data", str(BASE), "--out", str(out))
    assert r.returncode == code and sent, r.stderr
    assert r.stderr == (f"bayes_pip: {word} after the output was complete: the new files are "
                        f"all in {out}\n")
    assert not [p.name for p in out.iterdir() if p.read_bytes() == b"old"]


def test_no_room_for_the_netcdf_file_is_a_one_line_error(tmp_path, monkeypatch):
    """Disk full while h5py wrote the netCDF file ended in SIGSEGV with a half-written .nc left
    behind; the free space is now checked against the draws' size before writing."""
    from collections import namedtuple

    from bayes_pip import output as report

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(report.shutil, "disk_usage", lambda path: usage(10**9, 10**9, 10_000))
    out = tmp_path / "fits"
    r = run_main("fit", "rejection", "--engine", "pymc", "--data", str(BASE), "--out", str(out))
    assert_input_error(r, "cannot write the output (not enough free space: the draws need about")
    assert not out.exists()


@pytest.mark.parametrize("k,seed", [(150, 4), (150, 5), (600, 7), (2000, 6)])
def test_study_effects_of_many_studies_equal_the_full_grid(k, seed):
    """Above 100 studies every study's quantiles are solved at once on a coarser grid (k =
    10,000 took a minute, one root search per study and quantile): the same numbers as the
    one-at-a-time search on the full grid, to 1e-11, for half-normal and half-Cauchy priors."""
    from bayes_pip.engines.exact import exact_posterior
    from bayes_pip.prior_families import HalfCauchy, HalfNormal, Normal

    rng = np.random.default_rng(seed)
    y, v = rng.normal(-0.2, 0.3, k), rng.uniform(0.1, 0.5, k) ** 2
    post = exact_posterior(y, v, Normal(0, 4), HalfCauchy(0.5) if seed % 2 else HalfNormal(0.5))
    table = post.study_quantiles((0.5, 0.025, 0.975))
    pick = rng.choice(k, 40, replace=False)
    one_by_one = [[post.quantile(("study", i), q) for q in (0.5, 0.025, 0.975)] for i in pick]
    assert table[pick] == pytest.approx(np.array(one_by_one), abs=1e-11, rel=0)


@pytest.mark.parametrize("proper", [True, False])
def test_compiled_conditional_moments_equal_numpy(proper):
    """Above 10^7 nodes x studies the compiled kernel computes m(tau), V(tau) and log p(y|tau):
    the NumPy arithmetic to 1e-12 relative (summation order aside)."""
    from bayes_pip.engines import exact, exact_kernels
    from bayes_pip.prior_families import Normal

    rng = np.random.default_rng(1)
    y, v = rng.normal(0, 0.3, 400), rng.uniform(0.01, 0.25, 400)
    tau = np.exp(np.linspace(-8, 2, 300))
    prior = Normal(0.1, 4) if proper else Normal(0.0, math.inf)
    numpy_values = exact._conditional_moments(y, v, tau, prior)
    compiled = exact_kernels.conditional_moments(y, v, tau, 1 / 16 if proper else 0.0,
                                                 0.1 if proper else 0.0)
    for a, b in zip(numpy_values, compiled):
        assert b == pytest.approx(a, rel=1e-12)


def test_probabilities_and_tail_p_values_are_printed_as_what_they_are():
    """'P(benefit) = > 0.999' read as an equation; a conflict p of 0.0496 printed as 0.05 under
    a 'p < 0.05' rule."""
    from bayes_pip.formats import equals
    from bayes_pip.summarise import p_value_text

    assert equals("> 0.999") == "> 0.999" and equals("0.951") == "= 0.951"
    assert p_value_text(0.0496) == "0.0496" and p_value_text(0.0504) == "0.05"
    assert p_value_text(0.0013) == "0.0013" and p_value_text(0.049999) == "0.049999"
    r = run_main("bma", "rejection", "--data", str(BASE))
    assert "= >" not in r.stdout and "= <" not in r.stdout
    assert r.stdout.count("k = 3") == 1


@pytest.mark.slow  # two new processes with a fresh cache
def test_arviz_daily_notice_does_not_reach_the_user(tmp_path):
    """ArviZ prints a FutureWarning about its 1.0 on the first import of each day (a stamp file
    in the user's cache); a command's error output stays one line on that first run too."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}  # no stamp: first today
    probe = subprocess.run([sys.executable, "-c", "import arviz"], capture_output=True,
                           text=True, env=env)
    assert "ArviZ is undergoing" in probe.stderr    # the notice exists in this ArviZ
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache2")}
    done = subprocess.run([sys.executable, "-m", "bayes_pip", "compare-priors",
                           "secure_attachment_post", "--engine", "exact", "--loo"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cache2" / "arviz").is_dir()   # the command did import ArviZ
    assert "Warning" not in done.stderr and "ArviZ" not in done.stderr, done.stderr
