"""Certainty of evidence (bayes_pip/certainty.py): the rule's levels and boundaries on
constructed cases, the OIS and absolute effects against hand computation, the rule read from
its TOML, and the summary-of-findings table on the bundled and an imported review."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from bayes_pip.certainty import (Domain, judge_imprecision, judge_inconsistency,
                                 judge_risk_of_bias, load_rule, optimal_information_size,
                                 overall, risk_at)

from conftest import run_main

RULE = load_rule()


@pytest.mark.parametrize("p, expected", [
    # (P(benefit beyond MID), P(trivial), P(harm beyond MID), P(benefit), participants, OIS)
    ((0.95, 0.05, 0.00, 0.99, 1000, 500), "no"),
    ((0.90, 0.10, 0.00, 0.99, 1000, 500), "no"),                 # boundary: >= 0.90
    ((0.8999, 0.1001, 0.00, 0.99, 1000, 500), "serious"),        # direction settled, size not
    ((0.00, 0.92, 0.08, 0.30, 1000, 500), "no"),                 # trivial, concentrated
    ((0.60, 0.38, 0.02, 0.96, 1000, 500), "serious"),
    ((0.60, 0.30, 0.10, 0.80, 1000, 500), "very serious"),       # boundary: both >= 0.10
    ((0.60, 0.3001, 0.0999, 0.80, 1000, 500), "serious"),        # top 0.60 >= 0.5
    ((0.40, 0.35, 0.25, 0.60, 1000, 500), "very serious"),
    ((0.40, 0.35, 0.25, 0.60, 200, 500), "extremely serious"),   # and below half the OIS
    ((0.95, 0.05, 0.00, 0.99, 400, 500), "serious"),             # concentrated, OIS not met
    ((0.95, 0.05, 0.00, 0.99, 250, 500), "serious"),             # 250 = half the OIS: one step
    ((0.95, 0.05, 0.00, 0.99, 249, 500), "serious"),
    ((0.60, 0.38, 0.02, 0.96, 249, 500), "very serious"),
])
def test_imprecision_levels_and_boundaries(p, expected):
    good, trivial, bad, benefit, n, ois = p
    d = judge_imprecision(good, trivial, bad, benefit, 1 - benefit, n, ois, RULE)
    assert d.judgement == expected, d.reason


def test_imprecision_without_a_mid_is_judged_on_the_direction():
    assert judge_imprecision(None, None, None, 0.97, 0.03, 100, None, RULE).judgement == "serious"
    assert judge_imprecision(None, None, None, 0.80, 0.20, 100, None,
                             RULE).judgement == "very serious"


@pytest.mark.parametrize("args, expected", [
    ((1, 0.9, 0.9, None, None, "study"), "not assessable"),          # one trial
    ((5, 0.9, 0.9, None, None, "summary"), "not assessable"),        # published result only
    ((5, 0.9, 0.50, None, None, "study"), "very serious"),           # P(tau > 1) >= 0.5
    ((5, 0.9, 0.49, None, None, "study"), "serious"),                # P(tau > 0.5) >= 0.5
    ((5, 0.50, 0.1, None, None, "study"), "serious"),                # boundary
    ((5, 0.49, 0.1, (0.5, 2.0), (0.75, 1.333), "study"), "serious"),  # PI beyond both MIDs
    ((5, 0.49, 0.1, (0.8, 2.0), (0.75, 1.333), "study"), "no"),
])
def test_inconsistency_levels_and_boundaries(args, expected):
    k, high, extreme, prediction, band, level = args
    d = judge_inconsistency(k, high, extreme, prediction, band, level, RULE)
    assert d.judgement == expected, d.reason


def test_overall_certainty_starts_high_and_is_rated_down_per_step():
    domains = [Domain("a", "serious", ""), Domain("b", "not assessed", ""),
               Domain("c", "no", "")]
    assert overall("high", domains) == "moderate"
    assert overall("high", domains + [Domain("d", "very serious", "")]) == "very low"
    assert overall("high", domains + [Domain("d", "extremely serious", "")]) == "very low"
    assert overall("low", [Domain("a", "no", "")]) == "low"


def test_optimal_information_size_and_absolute_effects_by_hand():
    """SMD, MID 0.2: 2 x ceil(2 (1.959964 + 0.841621)^2 / 0.04) = 2 x 393 = 786. Risk 0.5 and
    RR 0.75: p1 = 0.375; per arm 7.848879 (0.25 + 0.234375) / 0.015625 = 243.2 -> 244, 488 in
    all. Per 1,000: RR 0.5 at 200 -> 100; OR 2 at 0.2: odds 0.5 -> 1/3 -> 333."""
    assert optimal_information_size("SMD", -0.2, None, RULE)[0] == 786
    assert optimal_information_size("RR", 0.75, 0.5, RULE)[0] == 488
    assert optimal_information_size("RR", 0.75, None, RULE)[0] is None
    assert optimal_information_size("MD", 5, None, RULE)[0] is None
    assert round(1000 * risk_at(0.2, "RR", 0.5)) == 100
    assert round(1000 * risk_at(0.2, "OR", 2.0)) == 333
    assert risk_at(0.3, "RD", -0.1) == pytest.approx(0.2)


def test_risk_of_bias_is_weighted_by_each_study_share():
    studies = [SimpleNamespace(study=s, weight=w) for s, w in
               (("A", 6.0), ("B", 3.0), ("C", 1.0))]
    fit = SimpleNamespace(level="study", dl=SimpleNamespace(studies=studies))
    trials = pd.DataFrame({"study": ["A", "B", "C"], "rob_allocation": ["high", "low", "low"],
                           "rob_blinding": ["low", "unclear", "low"]})
    d = judge_risk_of_bias(fit, trials, RULE)
    assert d.judgement == "serious" and "60%" in d.reason and "30%" in d.reason
    trials["rob_allocation"] = ["low", "high", "low"]
    d = judge_risk_of_bias(fit, trials, RULE)    # high 30%, unclear 0%
    assert d.judgement == "no"
    assert judge_risk_of_bias(fit, trials.drop(columns=["rob_allocation", "rob_blinding"]),
                              RULE).judgement == "not assessed"


def test_the_rule_is_read_from_its_toml(tmp_path, monkeypatch):
    text = Path(RULE.path).read_text().replace("concentrated = 0.90", "concentrated = 0.99")
    text = text.replace('version = "1"', 'version = "1-strict"')
    path = tmp_path / "strict.toml"
    path.write_text(text)
    strict = load_rule(path)
    assert strict.label == "bayes-grade v1-strict" and strict.imprecision["concentrated"] == 0.99
    p = (0.95, 0.05, 0.00, 0.99, 1000, 500)
    assert judge_imprecision(*p[:4], 0.01, *p[4:], RULE).judgement == "no"
    assert judge_imprecision(*p[:4], 0.01, *p[4:], strict).judgement == "serious"
    path.write_text(text.replace("[inconsistency]", "[other]"))
    import bayes_pip.bundle

    def no_fit(*args):
        raise AssertionError("a bad rule file must be refused before any outcome is fitted")

    monkeypatch.setattr(bayes_pip.bundle, "outcome_report", no_fit)
    r = run_main("report", "--all", "--engine", "exact", "--certainty-rule", str(path),
                 "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and "[inconsistency] needs" in r.stderr
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def bundled_report(exact_report):
    return exact_report[1]


def test_the_summary_lists_every_outcome_with_its_certainty(bundled_report):
    from bayes_pip import load

    data = load()
    summary = (bundled_report / "summary_of_findings.md").read_text()
    section = summary.split("## Certainty of the evidence")[1].split("### Why")[0]
    for o in data.outcome_ids():
        assert data.outcome(o).label in section, o
    assert "Rule bayes-grade v1" in section
    rows = list(csv.DictReader(open(bundled_report / "certainty.csv")))
    by = {r["outcome"]: r for r in rows}
    # the review's ratings beside the Bayesian ones, every difference explained
    assert by["secure_attachment_post"]["review_grade"] == "very low"
    assert by["parent_reported_depression"]["certainty"] == "low"   # same as the review
    assert by["parental_depression_incidence"]["risk_of_bias"] == "not assessed"
    assert by["secure_attachment_post"]["indirectness"] == "not assessed"
    record = json.loads((bundled_report / "certainty.json").read_text())
    assert record["rule"] == "bayes-grade v1"
    for c in record["outcomes"]:
        assert c["difference"] and c["statement"].endswith(".")
        if c["review_grade"] and c["review_grade"] != c["certainty"]:
            assert "review" in c["difference"]
    # absolute effects: control risk of the analysed tables, intervention = RR x control
    sec = next(c for c in record["outcomes"] if c["outcome"] == "disorganised_attachment_post")
    assert sec["per_1000"]["control"] == round(1000 * sec["control_risk"])
    assert "may reduce parent-reported depressive symptoms" in summary


def test_the_imported_review_gets_the_same_table(tmp_path):
    out = tmp_path / "fleiss"
    assert run_main("import", str(Path(__file__).parent / "fixtures" / "fleiss1993" /
                                  "Fleiss1993.rm5"), "--out", str(out), "--benefit",
                    "lower").returncode == 0
    r = run_main("report", "--all", "--engine", "exact", "--data", str(out), "--out",
                 str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "r" / "certainty.csv")))
    assert len(rows) == 2
    for row in rows:
        assert row["indirectness"] == "not assessed" and row["publication_bias"] == "not assessed"
        # RevMan's 'Allocation concealment?' answered 'unknown' for every trial: unclear
        assert row["risk_of_bias"] == "serious"


def test_harm_beyond_the_mid_is_the_exact_posterior_tail():
    """P(harm beyond the MID) of the certainty regions equals the exact engine's own tail of mu
    beyond 1/MID (disorganised attachment, RR, lower is better, MID 0.75), to 1e-12."""
    import math

    import bayes_pip as bp
    from bayes_pip.certainty import regions
    from bayes_pip.engines.exact import exact_posterior

    data = bp.load()
    fit = bp.fit(data, "disorganised_attachment_post", engine="exact")
    prior = bp.prior(data, "disorganised_attachment_post")
    y = [s.y for s in fit.dl.studies]
    v = [s.se ** 2 for s in fit.dl.studies]
    post = exact_posterior(y, v, prior.mu, prior.tau)
    benefit, trivial, harm = regions(fit)
    assert harm == pytest.approx(post.sf("mu", -math.log(0.75)), abs=1e-12)
    assert benefit == pytest.approx(post.cdf("mu", math.log(0.75)), abs=1e-12)
    assert benefit + trivial + harm == pytest.approx(1.0, abs=1e-15)
