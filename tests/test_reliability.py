"""Hostile or odd input and environments through the real CLI: identifiers never become paths
or markup, interrupts stop the work and leave nothing behind, prior files are validated when
read, option values are range-checked, and an account without a writable HOME can run MCMC.

Each error case asserts the exit code, a one-line message, no traceback and nothing written.
(The data-file cases, one directory each, are in tests/bad_inputs/.)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli, run_main

CORPUS = Path(__file__).parent / "bad_inputs"
BASE = CORPUS / "tau_zero"  # a valid data set (Crins OR outcome and an SMD outcome)
SHIPPED = Path(__file__).resolve().parents[1] / "models"


def assert_input_error(r, message: str):
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr, r.stderr
    assert r.stderr.startswith("bayes_pip: error: ") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr


def copy_data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(BASE, target)
    return target


def prior_file(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


HALFNORMAL = (SHIPPED / "halfnormal-0.5.toml").read_text()


# ----- identifiers are data, never paths or markup --------------------------------------------

def test_report_of_a_valid_data_set_stays_inside_out(tmp_path):
    out = tmp_path / "out"
    r = run_main("report", "--all", "--engine", "exact", "--data", str(BASE), "--out", str(out))
    assert r.returncode == 0, r.stderr
    written = {p.relative_to(out) for p in out.rglob("*")}
    assert all(len(p.parts) == 1 for p in written)
    assert not list(tmp_path.glob("*escaped*"))
    sof = (out / "summary_of_findings.html").read_text()
    assert 'href="./rejection.html"' in sof


def test_dollar_signs_in_study_names_are_drawn_literally(tmp_path):
    data = copy_data(tmp_path)
    studies = data / "studies.csv"
    studies.write_text(studies.read_text().replace("Gibelli 2004", "Gibelli $x^2$ 2004"))
    out = tmp_path / "out"
    r = run_main("report", "rejection", "--engine", "exact", "--data", str(data), "--out",
                str(out))
    assert r.returncode == 0, r.stderr
    assert (out / "rejection_forest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("bad_name,message", [
    ("../escaped", "is not a valid id"), ("/tmp/escaped", "is not a valid id"),
    ("summary_of_findings", "is a reserved name")])
def test_prior_names_are_identifiers(tmp_path, bad_name, message):
    priors = tmp_path / "priors"
    prior_file(priors, "mine", HALFNORMAL.replace('name = "halfnormal-0.5"',
                                                  f'name = "{bad_name}"'))
    out = tmp_path / "out"
    r = run_main("fit", "rejection", "--engine", "exact", "--data", str(BASE), "--prior-dir",
                str(priors), "--out", str(out))
    assert_input_error(r, message)
    assert "column 'name'" in r.stderr
    assert not out.exists()


# ----- prior files are validated when they are read --------------------------------------------

@pytest.mark.parametrize("edit,column", [
    (("scale = 0.5", "scale = nan"), "tau.scale"),
    (("scale = 0.5", "scale = -1.0"), "tau.scale"),
    (("sd = 4.0", "sd = 0.0"), "mu.sd"),
    (("scale = 0.5", 'scale = "wide"'), "tau.scale"),
    (('applies_to = ["RR", "OR", "SMD"]', 'applies_to = ["HR"]'), "applies_to"),
])
def test_bad_prior_parameters_are_named_with_their_field(tmp_path, edit, column):
    text = HALFNORMAL.replace('name = "halfnormal-0.5"', 'name = "team"')
    assert edit[0] in text
    priors = tmp_path / "priors"
    prior_file(priors, "team", text.replace(*edit))
    r = run_main("fit", "rejection", "--engine", "pymc", "--data", str(BASE), "--prior", "team",
                "--prior-dir", str(priors))
    assert_input_error(r, f"team.toml, column '{column}'")


def test_log_t_prior_with_zero_degrees_of_freedom_is_refused(tmp_path):
    text = (SHIPPED / "rhodes.toml").read_text().replace('name = "rhodes"', 'name = "team"')
    text = text.replace("df = 5", "df = 0")
    priors = tmp_path / "priors"
    prior_file(priors, "team", text)
    r = run_main("list", "--data", str(BASE))  # unrelated commands are not affected
    assert r.returncode == 0
    r = run_main("fit", "score", "--engine", "exact", "--data", str(BASE), "--prior-dir",
                str(priors))
    assert_input_error(r, ".df': 0 is not allowed (must be a number greater than 0)")


def test_a_team_prior_may_not_replace_a_shipped_one(tmp_path):
    priors = tmp_path / "priors"
    prior_file(priors, "copy", HALFNORMAL)
    r = run_main("fit", "rejection", "--engine", "exact", "--data", str(BASE), "--prior-dir",
                str(priors))
    assert_input_error(r, "prior name 'halfnormal-0.5' is already defined")


def test_two_team_files_with_one_name_are_refused(tmp_path):
    priors = tmp_path / "priors"
    text = HALFNORMAL.replace('name = "halfnormal-0.5"', 'name = "team"')
    prior_file(priors, "a", text)
    prior_file(priors, "b", text)
    r = run_main("fit", "rejection", "--engine", "exact", "--data", str(BASE), "--prior-dir",
                str(priors))
    assert_input_error(r, "prior name 'team' is defined by more than one file")


def test_prior_dir_must_be_a_directory(tmp_path):
    r = run_main("fit", "rejection", "--engine", "exact", "--data", str(BASE), "--prior-dir",
                str(tmp_path / "missing"))
    assert_input_error(r, "not a prior file or a directory of prior files")


# ----- options are range-checked --------------------------------------------------------------

@pytest.mark.parametrize("option,value,message", [
    ("--seed", "-1", "-1 is outside 0..4294967295"),
    ("--seed", "4294967296", "is outside 0..4294967295"),
    ("--seed", "6_1", "'6_1' is not a whole number"),
    ("--draws", "0", "0 is outside 1..1000000"),
    ("--draws", "1e12", "'1e12' is not a whole number"),
    ("--tune", "0", "0 is outside 1..1000000"),
    ("--target-accept", "1.5", "must be strictly between 0 and 1"),
    ("--target-accept", "0", "must be strictly between 0 and 1"),
])
def test_option_ranges(tmp_path, option, value, message):
    out = tmp_path / "out"
    r = run_main("fit", "rejection", "--data", str(BASE), option, value, "--out", str(out))
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not out.exists()


# ----- interrupts ---------------------------------------------------------------------------

def start(*args: str, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bayes_pip", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for_sampling(proc: subprocess.Popen, seconds: float) -> None:
    """Give the process time to import, compile and start sampling."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_interrupting_a_long_mcmc_fit(tmp_path, signum, code):
    """A long PyMC fit interrupted while sampling: exit 130/143 promptly, no result printed,
    nothing written to --out, no staging directory left."""
    out = tmp_path / "out"
    proc = start("fit", "rejection", "--engine", "pymc", "--data", str(BASE), "--draws",
                 "1000000", "--json", "--out", str(out))
    wait_for_sampling(proc, 12)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert stdout == ""
    assert "Traceback" not in stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_interrupting_report_all(tmp_path, signum, code):
    """report --all interrupted: an existing report set is left as it was (no mix of old and
    new files) and no staging directory is left behind."""
    out = tmp_path / "out"
    r = run_main("report", "--all", "--engine", "exact", "--data", str(BASE), "--out", str(out))
    assert r.returncode == 0, r.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = start("report", "--all", "--engine", "pymc", "--data", str(BASE), "--draws",
                 "1000000", "--out", str(out))
    wait_for_sampling(proc, 12)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before


# ----- environment ----------------------------------------------------------------------------

@pytest.mark.slow  # a NUTS fit in a new process with no home
def test_mcmc_runs_without_a_writable_home(tmp_path):
    env = {**os.environ, "HOME": "/proc/no-such-home"}
    env.pop("XDG_CACHE_HOME", None)
    env.pop("MPLCONFIGDIR", None)
    r = subprocess.run([sys.executable, "-m", "bayes_pip", "fit", "rejection", "--engine", "pymc", "--data",
                        str(BASE), "--json"], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr
    assert '"converged": true' in r.stdout


# ----- output targets are checked before the work starts ---------------------------------------

def test_out_that_is_a_file(tmp_path):
    target = tmp_path / "afile"
    target.write_text("keep me")
    r = run_main("report", "--all", "--engine", "exact", "--data", str(BASE), "--out", str(target))
    assert_input_error(r, "exists and is not a directory")
    assert target.read_text() == "keep me"


def test_out_below_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    r = run_main("fit", "rejection", "--engine", "exact", "--data", str(BASE), "--out",
                str(tmp_path / "afile" / "reports"))
    assert_input_error(r, "is a file, not a directory")


def test_out_is_a_dangling_symlink(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone")
    r = run_main("report", "--all", "--engine", "exact", "--data", str(BASE), "--out", str(link))
    assert_input_error(r, "dangling symbolic link")
    assert not (tmp_path / "gone").exists()


def test_disk_full_is_a_one_line_error_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    """ENOSPC while writing (simulated): exit 2, one line, the new directory removed again."""
    import errno

    from bayes_pip import cli

    real = Path.write_bytes

    def full(self, data):
        if ".bayes_pip-stage-" in str(self):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    out = tmp_path / "reports"
    code = cli.main(["report", "--all", "--engine", "exact", "--data", str(BASE), "--out",
                     str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write the output (No space left on device)" in err
    assert err.count("\n") == 1
    assert not out.exists()


# ----- data files that are not regular files, or too large ------------------------------------

def test_fifo_as_studies_file_is_refused_without_hanging(tmp_path):
    data = copy_data(tmp_path)
    (data / "studies.csv").unlink()
    os.mkfifo(data / "studies.csv")
    r = run_cli("list", "--data", str(data), timeout=60)
    assert_input_error(r, "studies.csv: is not a regular file")


def test_oversized_file_is_refused(tmp_path, monkeypatch, capsys):
    from bayes_pip import cli, tables

    monkeypatch.setattr(tables, "MAX_FILE_BYTES", 100)
    assert cli.main(["list", "--data", str(BASE)]) == 2
    assert "the limit is 0 MB per CSV file" in capsys.readouterr().err


# ----- import validates in memory, then writes atomically --------------------------------------

FLEISS = Path(__file__).parent / "fixtures" / "fleiss1993"


def test_import_refuses_a_non_empty_target_unless_forced(tmp_path):
    out = tmp_path / "review"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    rm5 = str(FLEISS / "Fleiss1993.rm5")
    r = run_main("import", rm5, "--out", str(out), "--benefit", "lower")
    assert_input_error(r, "is not empty")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    # --force replaces an earlier import, never files of the user's own
    r = run_main("import", rm5, "--out", str(out), "--benefit", "lower", "--force")
    assert_input_error(r, "--force replaces only an earlier import")
    (out / "notes.txt").unlink()
    (out / "studies.csv").write_text("an earlier import")
    r = run_main("import", rm5, "--out", str(out), "--benefit", "lower", "--force")
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in out.iterdir())
    assert "studies.csv" in names and (out / "studies.csv").read_text() != "an earlier import"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_import_refuses_fractional_counts_instead_of_rounding(tmp_path):
    text = (FLEISS / "Fleiss1993.rm5").read_text(encoding="utf-8", errors="replace")
    import re as re_module

    changed = re_module.sub(r'(<DICH_DATA [^>]*EVENTS_1=")(\d+)"', r'\1\2.6"', text, count=1)
    assert changed != text
    source = tmp_path / "bad.rm5"
    source.write_text(changed, encoding="utf-8")
    out = tmp_path / "review"
    r = run_main("import", str(source), "--out", str(out), "--benefit", "lower")
    assert_input_error(r, ".6' is not a whole number (counts must be whole)")
    assert "column 'EVENTS_1'" in r.stderr
    assert not out.exists()


def test_import_reports_a_short_csv_row(tmp_path):
    csv_files = sorted(FLEISS.glob("*.csv"))
    assert csv_files, "the RevMan 5 CSV export fixture"
    lines = csv_files[0].read_text(encoding="utf-8-sig").splitlines()
    lines[2] = ",".join(lines[2].split(",")[:3])
    source = tmp_path / "short.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = run_main("import", str(source), "--out", str(tmp_path / "review"), "--benefit", "lower")
    assert_input_error(r, "row 3")
    assert "fewer cells than the header" in r.stderr
    assert not (tmp_path / "review").exists()


# ----- sampler failures and memory ------------------------------------------------------------

def test_sampler_failure_is_exit_1_with_a_message_never_a_signal(tmp_path):
    """A prior the validation would refuse (scale 1e-300), forced past it: nutpie cannot
    initialise; the CLI says so in one line and exits 1 (it used to segfault at exit, 139)."""
    priors = tmp_path / "priors"
    prior_file(priors, "tiny", HALFNORMAL.replace('name = "halfnormal-0.5"', 'name = "tiny"')
               .replace("scale = 0.5", "scale = 1e-300"))
    code = ("import sys\nimport bayes_pip.priors as priors\n"
            "priors.check_parameters = lambda spec, path: None\n"
            "from bayes_pip import cli\n"
            f"sys.exit(cli.main(['fit', 'rejection', '--engine', 'pymc', '--data', {str(BASE)!r}, "
            "'--prior', "
            f"'tiny', '--prior-dir', {str(priors)!r}]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert "bayes_pip: sampler failure (exit 1): the sampler could not run" in r.stderr
    assert "Traceback" not in r.stderr


def test_prior_scale_outside_the_accepted_range(tmp_path):
    priors = tmp_path / "priors"
    prior_file(priors, "tiny", HALFNORMAL.replace('name = "halfnormal-0.5"', 'name = "tiny"')
               .replace("scale = 0.5", "scale = 1e-300"))
    r = run_main("fit", "rejection", "--engine", "pymc", "--data", str(BASE), "--prior-dir",
                str(priors))
    assert_input_error(r, "column 'tau.scale': 1e-300 is outside the range bayes_pip accepts")


@pytest.mark.slow
def test_exact_engine_memory_is_bounded_for_100000_studies():
    code = ("import resource, numpy as np\n"
            "from bayes_pip.engines.exact import exact_posterior\n"
            "from bayes_pip.priors import Normal, HalfNormal\n"
            "rng = np.random.default_rng(1); k = 100_000\n"
            "v = rng.uniform(0.05, 0.5, k); y = rng.normal(0.2, np.sqrt(v + 0.09))\n"
            "p = exact_posterior(y, v, Normal(0, 4), HalfNormal(0.5))\n"
            "print(p.quantile('tau', 0.5), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    tau, rss_kib = r.stdout.split()
    assert abs(float(tau) - 0.3) < 0.01      # the simulated tau
    # below 2 GiB (was 5.6 GiB before the engine worked in blocks): 200 MB here, but one
    # clean CI run peaked at 1.06 GB (the allocator keeps freed blocks); the issue asks for
    # "a few GiB" at most
    assert int(rss_kib) < 2 * 1024 * 1024


def test_a_team_prior_file(tmp_path):
    """--prior-file: one prior file of a team's own, validated like the shipped ones."""
    path = prior_file(tmp_path, "team", HALFNORMAL.replace('name = "halfnormal-0.5"',
                                                           'name = "team"'))
    r = run_main("fit", "rejection", "--engine", "exact", "--data", str(BASE), "--prior", "team",
                "--prior-file", str(path), "--json")
    assert r.returncode == 0, r.stderr
    import json

    fit = json.loads(r.stdout)
    assert fit["prior"]["name"] == "team" and fit["prior"]["tau"]["scale"] == 0.5
    bad = prior_file(tmp_path, "bad", HALFNORMAL.replace('name = "halfnormal-0.5"',
                                                         'name = "bad"').replace("scale = 0.5",
                                                                                 "scale = -2"))
    r = run_main("fit", "rejection", "--engine", "exact", "--data", str(BASE), "--prior-file",
                str(bad))
    assert_input_error(r, "bad.toml, column 'tau.scale'")
