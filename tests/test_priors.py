"""Prior parametrisations against published quantiles and the closed-form densities they state."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from bayes_pip.data import Outcome, load_dataset
from bayes_pip.errors import InputError
from bayes_pip.prior_families import HalfCauchy, HalfNormal, LogNormalTau2, LogTTau2, Normal
from bayes_pip.priors import applicable_priors, load_prior_sets, resolve_prior


def test_turner_quantiles_match_bayesmeta():
    # TurnerEtAlPrior("surgical", "pharmacological", "placebo / control")$qprior(c(.025,.5,.975))
    # = 0.06233896 0.34300852 1.88734045 (Roever 2020 JSS p.31); cell LN(-2.14, 1.74^2)
    q = LogNormalTau2(-2.14, 1.74).ppf([0.025, 0.5, 0.975])
    np.testing.assert_allclose(q, [0.06233896, 0.34300852, 1.88734045], rtol=1e-7)


def test_halfnormal_quantiles_match_roever_2020():
    # JSS p.20: HN(0.5) confines tau <= 0.98 with 95% probability
    assert float(HalfNormal(0.5).ppf(0.95)) == pytest.approx(0.98, abs=0.005)


@pytest.mark.parametrize("name, printed", [("halfnormal-0.5", 1.092287),
                                           ("halfnormal-1.0", 2.184573),
                                           ("halfcauchy-0.5", 5.050571)])
def test_tau_prior_predictive_matches_bayesmeta(name, printed):
    # JSS p.30, normalmixture(): 97.5% quantile of theta_i ~ N(0, tau^2), tau ~ HN(0.5), HN(1.0),
    # HC(0.5). normalmixture() itself discretises the mixture (1% KL bound), hence rel 2e-3.
    # The prior comes from the shipped prior file.
    prior = resolve_prior(name, load_dataset().outcome("secure_attachment_post")).tau
    cdf = lambda x: integrate.quad(lambda t: stats.norm.cdf(x / t) * math.exp(prior.logpdf(t)),
                                   0, np.inf)[0]
    from scipy.optimize import brentq
    assert brentq(lambda x: cdf(x) - 0.975, 0.1, 10) == pytest.approx(printed, rel=2e-3)


def test_rhodes_density_matches_bayesmeta_formula():
    # RhodesEtAlPrior density for tau^2: dt((log(x)-loc)/scale, df=5)/scale/x ; for tau: *2 tau
    prior = LogTTau2(-3.85, 1.93)
    tau = np.array([0.01, 0.1, 0.146, 0.5, 2.0])
    x = tau**2
    dens_tau2 = stats.t.pdf((np.log(x) + 3.85) / 1.93, df=5) / 1.93 / x
    np.testing.assert_allclose(np.exp(prior.logpdf(tau)), dens_tau2 * 2 * tau, rtol=1e-12)
    # reference notes 2b (arithmetic): median tau 0.146, central 95% 0.012-1.74
    assert float(prior.ppf(0.5)) == pytest.approx(0.146, abs=0.0005)
    assert float(prior.ppf(0.025)) == pytest.approx(0.012, abs=0.0005)
    assert float(prior.ppf(0.975)) == pytest.approx(1.74, abs=0.005)


def test_turner_density_matches_lognormal_tau2_formula():
    prior = LogNormalTau2(-2.34, 1.72)
    tau = np.array([0.05, 0.31, 1.0])
    dens_tau2 = stats.lognorm.pdf(tau**2, s=1.72, scale=math.exp(-2.34))
    np.testing.assert_allclose(np.exp(prior.logpdf(tau)), dens_tau2 * 2 * tau, rtol=1e-12)
    # reference notes 2a (arithmetic): mental health, non-pharm vs control: median tau 0.31,
    # central 95% 0.058-1.67
    np.testing.assert_allclose(prior.ppf([0.025, 0.5, 0.975]), [0.058, 0.31, 1.67], atol=0.005)


def test_every_prior_file_loads_with_sources():
    sets = load_prior_sets()
    for name in ("halfnormal-0.5", "halfnormal-1.0", "halfcauchy-0.5", "turner", "rhodes",
                 "vague", "sceptical", "enthusiastic"):
        assert name in sets
        assert sets[name].source and sets[name].mu and sets[name].tau


def test_turner_cell_is_chosen_by_outcome_type():
    ds = load_dataset()
    prior = resolve_prior("turner", ds.outcome("secure_attachment_post"))
    assert (prior.tau.mu, prior.tau.sigma) == (-2.34, 1.72)  # Turner Table IV mental health col 3
    prior = resolve_prior("rhodes", ds.outcome("parent_reported_depression"))
    assert (prior.tau.location, prior.tau.scale) == (-3.85, 1.93)


def test_sceptical_and_enthusiastic_priors_put_5_percent_beyond_the_mcid():
    ds = load_dataset()
    for outcome_id in ("secure_attachment_post", "parent_reported_depression"):
        o = ds.outcome(outcome_id)
        delta = math.log(o.mcid) if o.is_ratio else o.mcid
        sceptical = resolve_prior("sceptical", o).mu
        enthusiastic = resolve_prior("enthusiastic", o).mu
        beyond = stats.norm.sf if delta > 0 else stats.norm.cdf
        harm = stats.norm.cdf if delta > 0 else stats.norm.sf
        assert beyond(delta, sceptical.mean, sceptical.sd) == pytest.approx(0.05, abs=1e-12)
        assert sceptical.mean == 0
        assert enthusiastic.mean == pytest.approx(delta)
        assert harm(0, enthusiastic.mean, enthusiastic.sd) == pytest.approx(0.05, abs=1e-12)


def test_priors_apply_by_measure():
    ds = load_dataset()
    assert "turner" in applicable_priors(ds.outcome("secure_attachment_post"))
    assert "rhodes" not in applicable_priors(ds.outcome("secure_attachment_post"))
    assert "rhodes" in applicable_priors(ds.outcome("parent_reported_depression"))
    with pytest.raises(InputError, match="is for RR, OR"):
        resolve_prior("turner", ds.outcome("parent_reported_depression"))


@pytest.mark.parametrize("prior, twin", [
    (HalfNormal(0.7), stats.halfnorm(scale=0.7)),
    (HalfCauchy(0.5), stats.halfcauchy(scale=0.5)),
    (LogNormalTau2(-2.34, 1.72), stats.lognorm(s=0.86, scale=math.exp(-1.17))),
])
def test_tau_priors_match_scipy_stats(prior, twin):
    """Our scipy.special formulas against scipy.stats' distributions (PyMC's check_logp idea)."""
    tau = np.array([1e-4, 0.05, 0.3, 1.0, 4.0])
    np.testing.assert_allclose(prior.logpdf(tau), twin.logpdf(tau), rtol=1e-12)
    np.testing.assert_allclose(prior.cdf(tau), twin.cdf(tau), rtol=1e-12, atol=1e-15)
    q = np.array([0.01, 0.25, 0.5, 0.9, 0.99])
    np.testing.assert_allclose(prior.ppf(q), twin.ppf(q), rtol=1e-12)


def test_logt_and_normal_match_scipy_stats():
    prior = LogTTau2(-3.85, 1.93)
    twin = stats.t(df=5, loc=-1.925, scale=0.965)
    tau = np.array([0.001, 0.05, 0.3, 2.0])
    np.testing.assert_allclose(prior.cdf(tau), twin.cdf(np.log(tau)), rtol=1e-12)
    np.testing.assert_allclose(prior.ppf([0.1, 0.5, 0.9]), np.exp(twin.ppf([0.1, 0.5, 0.9])), rtol=1e-12)
    n = Normal(0.2, 1.5)
    x = np.array([-3.0, 0.0, 2.5])
    np.testing.assert_allclose(n.logpdf(x), stats.norm.logpdf(x, 0.2, 1.5), rtol=1e-12)
    np.testing.assert_allclose(n.cdf(x), stats.norm.cdf(x, 0.2, 1.5), rtol=1e-12)
    np.testing.assert_allclose(n.ppf([0.05, 0.5]), stats.norm.ppf([0.05, 0.5], 0.2, 1.5), rtol=1e-12)


def test_every_binary_prior_file_names_its_baseline_prior_with_a_source():
    """The binomial-normal model's control-arm prior is part of each prior set that applies to
    RR or OR (issue: it used to be a hidden N(0, 2^2))."""
    for name, p in load_prior_sets().items():
        if {"RR", "OR"} & set(p.applies_to):
            assert p.baseline is not None, name
            assert p.baseline["family"] == "normal" and p.baseline["sd"] == 10.0, name
            assert "dat.collins1985a" in p.baseline["source"], name


def outcome_of(measure="OR", outcome_type="", comparison_type=""):
    return Outcome(outcome="o", label="o", comparison="a_vs_b", measure=measure, benefit="lower",
                   timepoint="", mcid=None, outcome_type=outcome_type,
                   comparison_type=comparison_type)


def test_turner_column_is_chosen_by_comparison_type():
    # TurnerEtAlPrior("surgical", "pharmacological", "placebo / control")$qprior(c(.025,.5,.975))
    # = 0.06233896 0.34300852 1.88734045 (Roever 2020 JSS p.31), through the shipped file
    prior = resolve_prior("turner", outcome_of(outcome_type="surgical",
                                               comparison_type="pharm_vs_control"))
    np.testing.assert_allclose(prior.tau.ppf([0.025, 0.5, 0.975]),
                               [0.06233896, 0.34300852, 1.88734045], rtol=1e-7)
    assert "pharmacological vs placebo/control" in prior.tau_source
    # Turner et al. 2015 Table IV, mental health row (../shared/REFERENCES.md 2a), every column
    table = {"pharm_vs_control": (-2.12, 1.53), "pharm_vs_pharm": (-2.35, 1.60),
             "nonpharm_vs_control": (-2.34, 1.72), "nonpharm_vs_pharm": (-1.09, 1.27),
             "nonpharm_vs_nonpharm": (-1.67, 1.47)}
    for ctype, cell in table.items():
        tau = resolve_prior("turner", outcome_of(outcome_type="mental_health",
                                                 comparison_type=ctype)).tau
        assert (tau.mu, tau.sigma) == cell


def test_rhodes_columns_cover_every_comparison_type():
    # Rhodes et al. 2015 Table 3, mental health row: pharm vs placebo t5(-2.99, 2.16), pharm vs
    # pharm t5(-3.27, 2.14), any non-pharmacological comparison t5(-3.85, 1.93)
    table = {"pharm_vs_control": (-2.99, 2.16), "pharm_vs_pharm": (-3.27, 2.14),
             "nonpharm_vs_control": (-3.85, 1.93), "nonpharm_vs_pharm": (-3.85, 1.93),
             "nonpharm_vs_nonpharm": (-3.85, 1.93)}
    for ctype, cell in table.items():
        tau = resolve_prior("rhodes", outcome_of("SMD", "mental_health", ctype)).tau
        assert (tau.location, tau.scale, tau.df) == (*cell, 5.0)


def test_missing_comparison_type_is_named_as_the_default_used():
    prior = resolve_prior("turner", outcome_of(outcome_type="mental_health"))
    assert (prior.tau.mu, prior.tau.sigma) == (-2.34, 1.72)
    assert ("tau prior table cell used: outcome type 'mental_health', comparison type "
            "'nonpharm_vs_control' (comparison_type not given in outcomes.csv: the prior's "
            "default; add the column to choose the cell)") in prior.notes
    # an OR outcome: Turner's priors were derived for log odds ratios, so no approximation note
    assert not any("derived for log OR" in n for n in prior.notes)


def test_turner_cell_is_always_named_and_the_crins_data_use_the_bayesmeta_papers_cell():
    import bayes_pip as bp

    outcome = bp.load("data/crins2014").outcome("acute_rejection")
    prior = resolve_prior("turner", outcome)
    assert prior.notes == ("tau prior table cell used: outcome type 'surgical', comparison type "
                           "'pharm_vs_control'",)
    # Roever 2020 J Stat Softw p.31: TurnerEtAlPrior("surgical", "pharmacological",
    # "placebo / control")$qprior(c(0.025, 0.5, 0.975))
    np.testing.assert_allclose(prior.tau.ppf(np.array([0.025, 0.5, 0.975])),
                               [0.06233896, 0.34300852, 1.88734045], rtol=1e-6)
    rr = resolve_prior("turner", bp.load().outcome("secure_attachment_post"))
    assert "this tau prior was derived for log OR meta-analyses; applied here to the log RR as " \
        "an approximation" in rr.notes


def test_unit_free_tau_priors_are_refused_on_mean_differences_with_how_to_scale():
    with pytest.raises(InputError, match=r"is for RR, OR, SMD outcomes.*unit-information SD"):
        resolve_prior("halfnormal-0.5", outcome_of("MD"))


@pytest.mark.parametrize("prior", [HalfNormal(0.5), HalfNormal(3.0), HalfCauchy(0.5),
                                   HalfCauchy(2.0), LogNormalTau2(-2.14, 1.74),
                                   LogNormalTau2(-3.95, 1.79), LogTTau2(-3.44, 2.59, 5.0),
                                   LogTTau2(-1.0, 0.8, 3.0)],
                         ids=lambda p: p.describe())
def test_compiled_tau_kernels_match_the_numpy_densities(prior):
    """The one compiled definition of each family (engines/tau_kernels.py, used by the batched
    exact engine and the NUTS log density) against priors.py: log p(u) = log p_tau(e^u) + u to
    1e-12 (relative 1e-14 far in the tail, where log p reaches -4e4), and its derivative against a central difference to 1e-6 (relative 1e-9), over u in [-12, 5]."""
    from bayes_pip.engines.tau_kernels import log_prior_u, log_prior_u_grad, tau_prior_code

    code = tau_prior_code(prior)
    u = np.linspace(-12, 5, 171)
    kernel = np.array([log_prior_u(x, *code) for x in u])
    np.testing.assert_allclose(kernel, prior.logpdf(np.exp(u)) + u, rtol=1e-14, atol=1e-12)
    h = 1e-5
    grad = np.array([log_prior_u_grad(x, *code)[1] for x in u])
    numeric = (np.array([log_prior_u(x + h, *code) for x in u])
               - np.array([log_prior_u(x - h, *code) for x in u])) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("upper", [1.0, 2.5, math.inf])
def test_compiled_uniform_kernel_matches_the_numpy_density(upper):
    from bayes_pip.engines.tau_kernels import log_prior_u, tau_prior_code
    from bayes_pip.prior_families import Uniform

    prior = Uniform(upper)
    code = tau_prior_code(prior)
    u = np.linspace(-12, 3, 151)
    kernel = np.array([log_prior_u(x, *code) for x in u])
    expected = u + (prior.logpdf(np.exp(u)) if prior.proper else 0.0)
    inside = np.exp(u) <= upper
    np.testing.assert_allclose(kernel[inside], expected[inside], rtol=0, atol=1e-12)
    assert np.isneginf(kernel[~inside]).all()
