"""Summary-level re-analysis of a published pooled estimate against the closed-form conjugate
normal-normal posterior (computed here independently from the printed estimate and 95% CI)."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from bayes_pip.analysis import fit_outcome, priors_for
from bayes_pip.data import load_dataset
from bayes_pip.priors import load_prior_sets, resolve_prior

HEADLINE = ["parental_depression_incidence", "parent_reported_depression", "secure_attachment_post",
            "avoidant_attachment_post", "disorganised_attachment_post", "insecure_to_secure_post"]


@pytest.fixture(scope="module")
def dataset():
    return load_dataset()


def closed_form(estimate, low, high, ratio, m0, s0):
    """Conjugate posterior of mu from the printed estimate and CI (Spiegelhalter et al. 2004, 3.6)."""
    t = math.log if ratio else (lambda x: x)
    y = t(estimate)
    se = (t(high) - t(low)) / (2 * stats.norm.ppf(0.975))
    prec = 1 / se**2 + 1 / s0**2
    return (y / se**2 + m0 / s0**2) / prec, prec**-0.5


@pytest.mark.parametrize("outcome_id", HEADLINE)
def test_summary_posterior_matches_conjugate_closed_form(dataset, outcome_id):
    o = dataset.outcome(outcome_id)
    pub = dataset.published_result(outcome_id)
    sets = load_prior_sets()
    for name in [n for n in sets if o.measure in sets[n].applies_to]:
        prior = resolve_prior(name, o, sets)
        assert prior.mu.family == "normal"  # every shipped prior has a normal prior on the effect
        s = fit_outcome(dataset, outcome_id, name, level="summary").to_dict()
        mean, sd = closed_form(pub.estimate, pub.ci_low, pub.ci_high, o.is_ratio,
                               prior.mu.mean, prior.mu.sd)
        assert s["level"] == "summary" and s["engine"] == "conjugate"
        assert s["mu"]["mean"] == pytest.approx(mean, abs=1e-6)
        assert s["mu"]["sd"] == pytest.approx(sd, abs=1e-6)
        assert s["mu"]["ci_low"] == pytest.approx(mean - stats.norm.ppf(0.975) * sd, abs=1e-6)
        nat = math.exp if o.is_ratio else (lambda x: x)
        assert s["effect"]["median"] == pytest.approx(nat(mean), rel=1e-6)
        # P(benefit) = Phi(-mean/sd) when lower is better, Phi(mean/sd) when higher is better
        sign = -1 if o.benefit == "lower" else 1
        assert s["p_benefit"] == pytest.approx(stats.norm.cdf(sign * mean / sd), abs=1e-6)
        delta = math.log(o.mcid) if o.is_ratio else o.mcid
        assert s["p_mcid"] == pytest.approx(stats.norm.cdf(sign * (mean - delta) / sd), abs=1e-6)
        assert s["tau"] is None and s["prediction"] is None and s["studies"] == []


def test_se_recovered_from_published_ci(dataset):
    # Barlow 2015 abstract: parental depression RR 0.74 (0.52 to 1.04)
    s = fit_outcome(dataset, "parental_depression_incidence", "vague").to_dict()
    assert s["likelihood"]["se"] == pytest.approx((math.log(1.04) - math.log(0.52)) / 3.919927969, rel=1e-9)


def test_default_level_uses_published_result_when_study_rows_are_incomplete(dataset):
    # parent_reported_depression: 1 study row, the review pooled 4
    s = fit_outcome(dataset, "parent_reported_depression", engine="exact").to_dict()
    assert s["level"] == "summary"
    assert "1 of 4" in s["data_status"]
    s = fit_outcome(dataset, "parent_reported_depression", engine="exact", level="study").to_dict()
    assert s["level"] == "study" and s["k"] == 1


def test_summary_level_compares_one_prior_per_distinct_effect_prior(dataset):
    names = priors_for(dataset, "secure_attachment_post", "summary")
    assert names == ["halfnormal-0.5", "vague", "sceptical", "enthusiastic"]


def test_summary_level_json_names_only_the_prior_actually_used(capsys):
    """At summary level the prior on tau is not used: the JSON says so instead of naming it."""
    from bayes_pip.cli import main

    assert main(["fit", "parental_depression_incidence", "--engine", "exact", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["level"] == "summary"
    assert d["prior"]["mu"]["family"] == "normal" and d["prior"]["mu"]["sd"] == 4.0
    assert isinstance(d["prior"]["tau"], str) and d["prior"]["tau"].startswith("not modelled")
