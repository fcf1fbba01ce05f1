"""Marginal likelihoods, Bayes factors and model averaging (bayes_pip.engines.evidence).

References: R bayesmeta 3.4 on Crins et al. 2014 (../shared/REFERENCES.md section 9:
``bayesmeta(es, mu.prior.mean=0, mu.prior.sd=4, tau.prior=function(t) dhalfnormal(t,
scale=0.5))``, ``$bayesfactor`` and ``$marginal.likelihood``), and an independent adaptive
quadrature written here: the marginal density of y as a multivariate normal with the pooled
effect left in the covariance (mu ~ N(m0, s0^2) gives Cov = diag(v + tau^2) + s0^2 J), integrated
over tau with scipy.integrate.quad.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from bayes_pip.cli import main
from bayes_pip.engines import evidence as ev
from bayes_pip.prior_families import HalfCauchy, HalfNormal, LogNormalTau2, Normal

# Crins 2014 log OR and variances (escalc(measure="OR", ...); metafor_values.json crins_or)
CRINS_Y = np.array([-2.30970256, -0.45953233, -2.30258509, -1.75785792, -1.25846099,
                    -2.41789594])


@pytest.fixture(scope="module")
def metafor(request):
    from conftest import REFERENCE

    return json.loads((REFERENCE / "metafor_values.json").read_text())["cases"]


def crins(metafor):
    c = metafor["crins_or"]
    return np.array(c["yi"], float), np.array(c["vi"], float)


def test_crins_matches_bayesmeta(metafor):
    y, v = crins(metafor)
    np.testing.assert_allclose(y, CRINS_Y, atol=1e-8)
    e = ev.evidence(y, v, Normal(0, 4), HalfNormal(0.5))
    # $marginal.likelihood 6.554194962e-05; $bayesfactor "actual": tau=0 0.8831916037,
    # mu=0 0.0037708186110 (evidence for the point null; BF10 is the reciprocal)
    assert math.exp(e.log_ml["RE"]) == pytest.approx(6.554194962e-05, rel=1e-8)
    assert 1 / e.bf_heterogeneity == pytest.approx(0.8831916037, rel=1e-8)
    assert 1 / e.bf_effect == pytest.approx(0.0037708186110, rel=1e-8)


def independent_log_ml(y, v, tau_prior, mu_prior=None):
    """log p(y) by scipy quad over tau of the multivariate normal density of y."""
    k = len(y)

    def integrand(tau):
        cov = np.diag(v + tau**2)
        if mu_prior is None:
            mean = np.zeros(k)
        else:
            mean = np.full(k, mu_prior.mean)
            cov = cov + mu_prior.sd**2 * np.ones((k, k))
        return stats.multivariate_normal(mean, cov).pdf(y) * math.exp(tau_prior.logpdf(tau))

    value = sum(integrate.quad(integrand, a, b, limit=400, epsabs=0, epsrel=1e-11)[0]
                for a, b in ((0, 0.5), (0.5, 3), (3, 50), (50, np.inf)))
    return math.log(value)


CASES = {  # name: (y, v) on the analysis scale; real data
    # PIP secure attachment, the reconstructed tables (31/46 vs 9/54; 8/14 vs 1/54), log RR
    "pip_secure": (np.log([(31 / 46) / (9 / 54), (8 / 14) / (1 / 54)]),
                   np.array([1 / 31 - 1 / 46 + 1 / 9 - 1 / 54, 1 / 8 - 1 / 14 + 1 - 1 / 54])),
}


@pytest.mark.parametrize("tau_prior", [HalfNormal(0.5), HalfCauchy(0.5),
                                       LogNormalTau2(-2.34, 1.72)],
                         ids=["halfnormal", "halfcauchy", "turner"])
@pytest.mark.parametrize("data", ["crins", "bcg", "pip_secure"])
def test_marginal_likelihoods_match_independent_quadrature(data, tau_prior, metafor):
    if data == "crins":
        y, v = crins(metafor)
    elif data == "bcg":
        y, v = (np.array(metafor["bcg_rr"][x], float) for x in ("yi", "vi"))
    else:
        y, v = CASES[data]
    mu_prior = Normal(0.0, 4.0)
    e = ev.evidence(y, v, mu_prior, tau_prior)
    assert e.log_ml["RE"] == pytest.approx(independent_log_ml(y, v, tau_prior, mu_prior),
                                           abs=1e-7)
    assert e.log_ml["RE0"] == pytest.approx(independent_log_ml(y, v, tau_prior), abs=1e-7)
    fe = stats.multivariate_normal(np.zeros(len(y)), np.diag(v) + 16.0).logpdf(y)
    assert e.log_ml["FE"] == pytest.approx(fe, abs=1e-9)
    assert e.log_ml["FE0"] == pytest.approx(stats.norm(0, np.sqrt(v)).logpdf(y).sum(), abs=1e-9)
    assert sum(e.posterior_probability.values()) == pytest.approx(1.0, abs=1e-12)


def test_model_averaged_mu_matches_independent_quadrature(metafor):
    """P(mu <= x) averaged over the four models, against quad over tau of the normal CDFs of
    mu | tau, y (the random-effects part) plus the closed-form fixed-effect part and the point
    mass of the null models; the median, the 95% ends and P(benefit) to 1e-6."""
    y, v = crins(metafor)
    mu_prior, tau_prior = Normal(0.0, 4.0), HalfNormal(0.5)
    e = ev.evidence(y, v, mu_prior, tau_prior)
    post = e.posterior_probability

    def re_cdf(x):
        def parts(tau):
            w = 1 / (v + tau**2)
            big_w = 1 / 16 + w.sum()
            m = (w * y).sum() / big_w
            lik = stats.multivariate_normal(np.zeros(len(y)), np.diag(v + tau**2) + 16.0).pdf(y)
            return lik * math.exp(tau_prior.logpdf(tau)), stats.norm.cdf(x, m, big_w**-0.5)
        num = integrate.quad(lambda t: np.prod(parts(t)), 0, np.inf, epsrel=1e-11, limit=400)[0]
        den = integrate.quad(lambda t: parts(t)[0], 0, np.inf, epsrel=1e-11, limit=400)[0]
        return num / den

    w = 1 / v
    big_w = 1 / 16 + w.sum()
    fe_m, fe_s = (w * y).sum() / big_w, big_w**-0.5

    def cdf(x):
        return (post["FE0"] + post["RE0"]) * (x >= 0) + post["FE"] * stats.norm.cdf(
            x, fe_m, fe_s) + post["RE"] * re_cdf(x)

    from bayes_pip.engines.exact import exact_posterior

    averaged = ev.AveragedMu(e, {"FE": ev.fixed_effect_posterior(y, v, mu_prior),
                                 "RE": exact_posterior(y, v, mu_prior, tau_prior)})
    for q in (0.5, 0.025, 0.975):
        reference = optimize.brentq(lambda x: cdf(x) - q, -6, -1e-9)
        assert averaged.quantile(q) == pytest.approx(reference, abs=1e-6)
    assert averaged.cdf(-1e-12) == pytest.approx(cdf(-1e-12), abs=1e-7)


def test_bma_command_on_crins_and_at_summary_level(capsys):
    # bayesmeta's normal-normal Bayes factor (Crins is sparse: auto would use the binomial one)
    assert main(["bma", "acute_rejection", "--data", "data/crins2014", "--engine", "exact",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert 1 / d["bf_effect"] == pytest.approx(0.0037708186110, rel=1e-8)
    assert [m["name"] for m in d["models"]] == ["FE0", "FE", "RE0", "RE"]
    assert sum(m["posterior_probability"] for m in d["models"]) == pytest.approx(1, abs=1e-12)
    assert 0.99 < d["p_benefit"] < 1 and d["effect"]["median"] < 1
    assert main(["bma", "parental_depression_incidence", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["level"] == "summary" and d["bf_effect"] is None and d["bf_heterogeneity"] is None
    assert [m["name"] for m in d["models"]] == ["FE0", "FE"]
    # one observation: BF10 = N(y | 0, se^2 + 4^2) / N(y | 0, se^2), y and se from the CI
    y = math.log(0.74)
    se = (math.log(1.04) - math.log(0.52)) / (2 * 1.959963984540054)
    bf = stats.norm.pdf(y, 0, math.hypot(se, 4)) / stats.norm.pdf(y, 0, se)
    assert d["bf_effect_fixed"] == pytest.approx(bf, rel=1e-10)
    assert main(["bma", "parental_depression_incidence"]) == 0
    out = capsys.readouterr().out
    assert "mu ~ Normal(0, 4^2) (summary level: no prior on tau is used)" in out
    assert "halfnormal" not in out


def test_report_sentence_numbers_equal_the_bma_record():
    import re

    import bayes_pip as bp
    from bayes_pip.evidence_text import bf_text, bma_sentence
    from bayes_pip.formats import num, prob_text

    b = bp.bma(None, "secure_attachment_post")
    text = bma_sentence(b)
    g = b.effect_given_effect
    values = [bf_text(b.log_bf_effect), bf_text(b.log_bf_heterogeneity), num(g.median),
              num(g.ci_low), num(g.ci_high), prob_text(b.p_benefit), prob_text(b.p_null)]
    values += [bf_text(w.log_bf_effect) for w in b.bf_by_width]
    for value in values:
        assert re.search(rf"(?<![\d.]){re.escape(value)}(?![\d])", text), value
    # the model-averaged mixture (point mass at the null) is never given as an interval
    assert num(b.effect.ci_high) + ")" not in text
    assert "N(0, 4^2) prior on the pooled log RR (prior set halfnormal-0.5)" in text
    assert b.level == "reconstructed" and "not printed data" in b.data_status
    summary = bp.bma(None, "secure_attachment_post", level="summary")
    assert "fixed effect only" in bma_sentence(summary) and "halfnormal" not in bma_sentence(summary)


def test_bayes_factor_by_prior_width_equals_the_closed_form_at_summary_level():
    """One observation y with standard error se, fixed effect: BF10 under mu ~ N(0, s^2) is
    N(y | 0, se^2 + s^2) / N(y | 0, se^2); with equal prior odds P(mu = 0 | y) = 1 / (1 + BF10)
    and, given an effect, mu | y is normal with precision 1/se^2 + 1/s^2."""
    import bayes_pip as bp

    b = bp.bma(None, "parental_depression_incidence")
    y = math.log(0.74)
    se = (math.log(1.04) - math.log(0.52)) / (2 * 1.959963984540054)
    sceptical = -math.log(0.75) / 1.6448536269514722
    widths = [(w.label, w.sd) for w in b.bf_by_width]
    assert widths == [("sceptical width", pytest.approx(sceptical, rel=1e-12)), ("SD 1", 1.0),
                      ("the prior used", 4.0), ("vague, SD 10", 10.0)]
    for w in b.bf_by_width:
        bf = stats.norm.pdf(y, 0, math.hypot(se, w.sd)) / stats.norm.pdf(y, 0, se)
        assert w.bf_effect == pytest.approx(bf, rel=1e-9) and w.mean == 0
    # the numbers the issue quotes: 1.46 (sceptical) down to 0.0753 (vague)
    assert [round(w.bf_effect, 3) for w in b.bf_by_width] == [1.456, 0.71, 0.188, 0.075]
    bf = b.bf_by_width[2].bf_effect
    assert b.p_null == pytest.approx(1 / (1 + bf), rel=1e-9)
    assert b.p_null + b.p_benefit <= 1 + 1e-12
    precision = 1 / se**2 + 1 / 16
    mean, sd = y / se**2 / precision, precision ** -0.5
    g = b.effect_given_effect
    for got, q in ((g.median, 0.5), (g.ci_low, 0.025), (g.ci_high, 0.975)):
        assert got == pytest.approx(math.exp(stats.norm.ppf(q, mean, sd)), rel=1e-6)



def test_bma_reaches_engines_by_capability(capsys):
    """`bma --engine NAME` runs any registered engine with the "marginal_likelihood"
    capability (a test engine here: the same numbers as `--engine exact`, to the last bit) and
    refuses an engine without it in one line (exit 2)."""
    from bayes_pip import engines

    engines.register("evidence-only", "evidence_engine")
    try:
        runs = {}
        for name in ("exact", "evidence-only"):
            assert main(["bma", "acute_rejection", "--data", "data/crins2014", "--engine", name,
                         "--json"]) == 0
            runs[name] = json.loads(capsys.readouterr().out)
        assert engines.get("evidence-only").calls >= 2   # the main evidence and each width
        assert runs["evidence-only"]["models"] == runs["exact"]["models"]
        assert runs["evidence-only"]["bf_by_width"] == runs["exact"]["bf_by_width"]
    finally:
        engines.REGISTRY.pop("evidence-only")
    assert main(["bma", "acute_rejection", "--data", "data/crins2014", "--engine", "pymc"]) == 2
    err = capsys.readouterr().err
    assert "--engine pymc gives no marginal likelihood" in err and err.count("\n") == 1
