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
from bayes_pip.priors import Normal
from bayes_pip.summarise import prior_data_conflict


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
