"""Every validation rule, exercised through the CLI as a user would run it.

The corpus lives in tests/bad_inputs/ (built by make_corpus.py; cases.json lists the command,
the exit code and the message each case must give). Error cases must exit 2 with one line on
stderr naming the file, the row and column where there is one, print no traceback and write
nothing, not even with --out.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli, run_main

# these cases also run through a new interpreter (`python -m bayes_pip`), the way a user runs
# them; the rest call the same `main` in-process
SUBPROCESS = {"non_numeric", "outcome_id_path", "utf16_file", "giv_mixed_with_arms"}

CORPUS = Path(__file__).parent / "bad_inputs"
CASES = json.loads((CORPUS / "cases.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_corpus_case(case, tmp_path):
    data = str(CORPUS / case["name"])
    command, *rest = case["args"]
    run = run_cli if case["name"] in SUBPROCESS else run_main
    r = run(command, *rest, "--data", data)
    assert r.returncode == case["exit"], (r.stdout, r.stderr)
    if case["exit"] == 0:
        assert case["message"] in r.stdout
        return
    assert case["message"] in r.stderr, r.stderr
    assert r.stderr.startswith("bayes_pip: error: ") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr and r.stdout == ""
    # the same input never leaves a half-written report
    out = tmp_path / "reports"
    target = ["--all"] if command != "fit" else [rest[0]]
    r = run("report", *target, "--engine", "exact", "--data", data, "--out", str(out))
    assert r.returncode == 2, r.stderr
    assert not out.exists() or not any(out.rglob("*"))


def test_missing_directory(tmp_path):
    r = run_main("list", "--data", str(tmp_path / "nowhere"))
    assert r.returncode == 2
    assert "nowhere: data directory does not exist" in r.stderr


def test_usage_error_exits_2():
    r = run_main("fit")
    assert r.returncode == 2 and "the following arguments are required: outcome" in r.stderr
    r = run_main("fit", "score", "--engine", "stan")
    assert r.returncode == 2 and "invalid choice: 'stan'" in r.stderr


def test_unknown_prior_is_a_clear_error():
    r = run_main("fit", "rejection", "--data", str(CORPUS / "tau_zero"), "--prior", "cauchy",
                "--engine", "exact")
    assert r.returncode == 2 and "unknown prior 'cauchy' (available: halfnormal-0.5" in r.stderr


def test_prior_for_the_wrong_measure_is_refused():
    r = run_main("fit", "score", "--data", str(CORPUS / "tau_zero"), "--prior", "turner",
                "--engine", "exact")
    assert r.returncode == 2 and "prior 'turner' is for RR, OR outcomes, 'score' is SMD" in r.stderr


@pytest.mark.slow  # two `report --all` processes side by side: about 30 s
def test_two_concurrent_reports_into_one_directory_do_not_corrupt_it(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "reports"
    cmd = [sys.executable, "-m", "bayes_pip", "report", "--all", "--engine", "exact", "--out",
           str(out)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    files = sorted(out.iterdir())
    assert not [f for f in files if f.name.startswith(".")]  # no staging or temporary leftovers
    for f in files:
        if f.suffix == ".json":
            json.loads(f.read_text())
        elif f.suffix == ".png":
            assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        elif f.suffix == ".html":
            assert f.read_text().rstrip().endswith("</html>")
