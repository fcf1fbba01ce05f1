"""Bayesian heterogeneity summaries, P(harm), P(trivial) and the prior-data conflict check.

References: R bayesmeta 3.4 on Crins 2014 (../shared/REFERENCES.md section 9): tau quantiles
2.5/50/97.5% 0.0177349217 0.3445023039 0.9729603024 and posterior I^2 at the same quantiles
(``$I2(tau)``) 0.0007349111308 0.2172277257 0.6888159181; probabilities against an independent
scipy quadrature of the normal-normal posterior.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

import bayes_pip as bp
from bayes_pip.prior_families import Normal
from bayes_pip.posterior_stats import prior_data_conflict


@pytest.fixture(scope="module")
def crins():
    return bp.fit("data/crins2014", "acute_rejection", engine="exact")


def test_posterior_i2_and_tau2_match_bayesmeta(crins):
    np.testing.assert_allclose([crins.tau.median, crins.tau.ci_low, crins.tau.ci_high],
                               [0.3445023039, 0.0177349217, 0.9729603024], rtol=2e-5)
    np.testing.assert_allclose([crins.i2.median, crins.i2.ci_low, crins.i2.ci_high],
                               [0.2172277257, 0.0007349111308, 0.6888159181], rtol=1e-5)
    np.testing.assert_allclose([crins.tau2.median, crins.tau2.ci_low, crins.tau2.ci_high],
                               np.array([crins.tau.median, crins.tau.ci_low,
                                         crins.tau.ci_high]) ** 2, rtol=1e-12)


def independent_mu_probability(y, v, lo, hi):
    """P(lo < mu < hi | y) under N(0, 4^2) x half-normal(0.5), by scipy quad over tau."""
    def parts(tau):
        w = 1 / (v + tau**2)
        big_w = 1 / 16 + w.sum()
        m = (w * y).sum() / big_w
        lik = stats.multivariate_normal(np.zeros(len(y)), np.diag(v + tau**2) + 16).pdf(y)
        prior = 2 * stats.norm.pdf(tau, 0, 0.5)
        prob = stats.norm.cdf(hi, m, big_w**-0.5) - stats.norm.cdf(lo, m, big_w**-0.5)
        return lik * prior, prob
    num = integrate.quad(lambda t: np.prod(parts(t)), 0, np.inf, epsrel=1e-12, limit=400)[0]
    den = integrate.quad(lambda t: parts(t)[0], 0, np.inf, epsrel=1e-12, limit=400)[0]
    return num / den


def test_harm_and_trivial_probabilities_match_independent_quadrature(crins):
    from bayes_pip.classical import classical_analysis
    from bayes_pip.data import load_dataset

    es = classical_analysis(load_dataset("data/crins2014"), "acute_rejection").effects
    delta = abs(math.log(0.8))  # the outcome's MCID, OR 0.8: trivial band 0.8 to 1.25
    assert crins.p_harm == pytest.approx(independent_mu_probability(es.y, es.v, 0, np.inf),
                                         rel=1e-6)
    assert crins.p_trivial == pytest.approx(
        independent_mu_probability(es.y, es.v, -delta, delta), rel=1e-6)
    assert crins.p_harm + crins.p_benefit == pytest.approx(1, abs=1e-12)


def test_mcmc_probabilities_agree_with_the_exact_engine(crins):
    fit = bp.fit("data/crins2014", "acute_rejection", engine="pymc")
    n = fit.probability_draws
    for name in ("p_harm", "p_trivial"):
        p = getattr(crins, name)
        mcse = math.sqrt(max(p * (1 - p), 1 / n) / (n / 4))  # ESS >= n/4 (gate: >= 400)
        assert abs(getattr(fit, name) - p) < 4 * mcse + 1 / n, name
    assert fit.i2.median == pytest.approx(crins.i2.median, abs=0.05)


def test_conflict_fires_on_a_contradicting_prior_and_not_on_a_vague_one():
    # Crins 2014: DL log OR -1.585 (SE 0.317); the sceptical prior for an MCID of OR 0.8 is
    # N(0, (log 0.8 / 1.645)^2): the pooled estimate lies 4.6 prior-predictive SDs out
    sceptical = Normal(0.0, abs(math.log(0.8)) / 1.6448536269514722)
    c = prior_data_conflict(-1.5852869298864982, 0.31745069658649844, sceptical)
    assert c.flagged and c.p_value == pytest.approx(
        2 * stats.norm.sf(1.5852869298864982 / math.hypot(sceptical.sd, 0.31745069658649844)),
        rel=1e-12)
    assert c.p_value < 1e-5
    c = prior_data_conflict(-1.5852869298864982, 0.31745069658649844, Normal(0, 4))
    assert not c.flagged and c.p_value > 0.5
    # a constructed boundary: z = 1.96 exactly is p = 0.05 (not flagged just above it)
    edge = prior_data_conflict(1.959963984540054 * math.hypot(1, 1) + 1e-9, 1.0, Normal(0, 1))
    assert edge.p_value == pytest.approx(0.05, abs=1e-8) and edge.flagged


def test_compare_priors_names_the_conflicting_priors(capsys):
    from bayes_pip.cli import main

    assert main(["compare-priors", "acute_rejection", "--data", "data/crins2014", "--engine",
                 "exact"]) == 0
    out = capsys.readouterr().out
    assert "Prior-data conflict" in out and "sceptical (p = 4.4e-06)" in out
    assert "without the conflicting ones: 0.996 to > 0.999" in out


# ---------------------------------------------------------------------------------------------
# classical: REML, Paule-Mandel, HKSJ, Q-profile intervals, prediction intervals vs metafor
# (tests/reference/heterogeneity_reference.R printed tests/reference/heterogeneity_values.json,
# metafor 3.8-1 with tolerances tightened to 1e-12: see the script)
# ---------------------------------------------------------------------------------------------

import json  # noqa: E402

from bayes_pip import dl  # noqa: E402
from conftest import REFERENCE  # noqa: E402

HET = json.loads((REFERENCE / "heterogeneity_values.json").read_text())["cases"]
TOL = 1e-6  # the tolerance (agreement is in fact near 1e-9)


@pytest.mark.parametrize("method", ["DL", "REML", "PM"])
@pytest.mark.parametrize("name", sorted(HET))
def test_estimators_and_intervals_match_metafor(name, method):
    c = HET[name]
    ref = c[method]
    y, v = np.array(c["yi"]), np.array(c["vi"])
    r = dl.random_effects(y, v, method=method)
    scale = max(1.0, ref["tau2"])
    assert float(r.tau2) == pytest.approx(ref["tau2"], abs=TOL * scale)
    for ours, theirs in ((r.mu, "mu"), (r.se, "se"), (r.ci_low, "ci_low"), (r.ci_high, "ci_high"),
                         (r.i2, "i2"), (r.q, "q")):
        assert float(ours) == pytest.approx(ref[theirs], abs=TOL * max(1, abs(ref[theirs]))), theirs
    low, high = dl.q_profile_tau2_ci(y, v)
    assert float(low) == pytest.approx(ref["tau2_ci_low"], abs=TOL * scale)
    assert float(high) == pytest.approx(ref["tau2_ci_high"], abs=TOL * max(1, ref["tau2_ci_high"]))
    assert float(dl.i2_from_tau2(low, v)) == pytest.approx(ref["i2_ci_low"], abs=TOL)
    assert float(dl.i2_from_tau2(high, v)) == pytest.approx(ref["i2_ci_high"], abs=TOL)
    se, ci_low, ci_high, p = dl.hartung_knapp(r, y, v)
    for ours, theirs in ((se, "hksj_se"), (ci_low, "hksj_ci_low"), (ci_high, "hksj_ci_high"),
                         (p, "hksj_p")):
        assert float(ours) == pytest.approx(ref[theirs], abs=TOL * max(1, abs(ref[theirs]))), theirs
    for dist, key in (("z", "pi_z"), ("t", "pi_t")):
        np.testing.assert_allclose(dl.prediction_interval(r, dist), ref[key], atol=TOL * scale)


def test_vectorised_estimators_equal_one_at_a_time():
    """REML and PM over a padded (n_meta, k_max) array equal the per-analysis results."""
    names = sorted(HET)
    k_max = max(len(HET[n]["yi"]) for n in names)
    y = np.zeros((len(names), k_max))
    v = np.ones((len(names), k_max))
    mask = np.zeros((len(names), k_max), bool)
    for i, n in enumerate(names):
        k = len(HET[n]["yi"])
        y[i, :k], v[i, :k], mask[i, :k] = HET[n]["yi"], HET[n]["vi"], True
    for method in ("REML", "PM"):
        batch = dl.random_effects(y, v, mask, method=method)
        for i, n in enumerate(names):
            one = dl.random_effects(np.array(HET[n]["yi"]), np.array(HET[n]["vi"]), method=method)
            assert float(batch.tau2[i]) == pytest.approx(float(one.tau2), rel=1e-9, abs=1e-12)
    low, high = dl.q_profile_tau2_ci(y, v, mask)
    for i, n in enumerate(names):
        assert float(high[i]) == pytest.approx(HET[n]["DL"]["tau2_ci_high"], rel=1e-6)


def test_dl_command_json_fields(capsys):
    from bayes_pip.cli import main

    ref = HET["crins_or"]["REML"]
    assert main(["dl", "acute_rejection", "--data", "data/crins2014", "--method", "REML",
                 "--ci", "hksj", "--pi", "z", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["tau2_method"] == "REML" and d["ci_method"] == "hksj"
    assert d["ci_low"] == pytest.approx(math.exp(ref["hksj_ci_low"]), rel=1e-6)
    assert d["tau2_ci_high"] == pytest.approx(ref["tau2_ci_high"], rel=1e-6)
    assert d["i2_ci_high"] == pytest.approx(ref["i2_ci_high"], rel=1e-6)
    assert [d["pi_low"], d["pi_high"]] == pytest.approx(np.exp(ref["pi_z"]), rel=1e-6)
    assert d["pi_distribution"].startswith("normal")
    assert main(["dl", "acute_rejection", "--data", "data/crins2014", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["pi_distribution"].startswith("t(k-2)") and d["ci_method"] == "wald"
    assert [d["pi_low"], d["pi_high"]] == pytest.approx(np.exp(HET["crins_or"]["DL"]["pi_t"]),
                                                         rel=1e-6)


def test_tau_bands_prior_closed_form_and_posterior_cdf(crins):
    b = crins.tau_bands
    # half-normal(0.5): P(tau < t) = 2 Phi(t / 0.5) - 1 (closed form)
    cdf = [2 * stats.norm.cdf(t / 0.5) - 1 for t in (0.1, 0.5, 1.0)]
    expected = np.diff([0.0, *cdf, 1.0])
    np.testing.assert_allclose(b.prior, expected, atol=1e-12)
    assert b.prior[3] == pytest.approx(0.0455, abs=1e-4)  # JSS p.12: about 5% fairly extreme
    post = crins.posterior
    np.testing.assert_allclose(b.posterior, np.diff([0.0, post.cdf("tau", 0.1),
                                                     post.cdf("tau", 0.5), post.cdf("tau", 1.0),
                                                     1.0]), atol=1e-12)
    # bayesmeta: tau quantiles 0.0177 (2.5%) and 0.973 (97.5%): P(tau > 1) below 2.5%
    assert 0 < b.posterior[3] < 0.025


@pytest.mark.parametrize("method", ["DL", "REML", "PM"])
def test_hksj_prediction_interval_is_metafors_predict_of_a_knha_fit(method):
    """With --ci hksj the prediction interval is the one metafor's predict() prints for a
    test="knha" fit (predict.rma, metafor 3.8-1, printed into heterogeneity_values.json by
    tests/reference/heterogeneity_reference.R) for Crins 2014 (log OR); it equals
    mu +/- qt(0.975, k - 1) sqrt(SE_HK^2 + tau^2) on metafor's printed mu, tau^2 and SE_HK."""
    from scipy import stats

    from conftest import run_main

    ref = HET["crins_or"][method]
    k = len(HET["crins_or"]["yi"])
    half = stats.t.ppf(0.975, k - 1) * np.sqrt(ref["hksj_se"] ** 2 + ref["tau2"])
    np.testing.assert_allclose(ref["hksj_pi"], [ref["mu"] - half, ref["mu"] + half], rtol=1e-12)
    r = run_main("dl", "acute_rejection", "--data", "data/crins2014", "--method", method,
                 "--ci", "hksj", "--json")
    d = json.loads(r.stdout)
    assert d["pi_low"] == pytest.approx(np.exp(ref["hksj_pi"][0]), rel=TOL)
    assert d["pi_high"] == pytest.approx(np.exp(ref["hksj_pi"][1]), rel=TOL)
    assert d["pi_distribution"].startswith("t(k-1) with the Hartung-Knapp SE")
    wald = json.loads(run_main("dl", "acute_rejection", "--data", "data/crins2014", "--method",
                               method, "--json").stdout)
    assert wald["pi_distribution"].startswith("t(k-2)") and wald["pi_low"] != d["pi_low"]
