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

HEADER = "outcome,study,events_pip,n_pip,events_ctrl,n_ctrl,mean_pip,sd_pip,mean_ctrl,sd_ctrl,source"


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
