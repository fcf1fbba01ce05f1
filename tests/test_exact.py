"""Exact (quadrature) engine against R bayesmeta's printed results and an adaptive-quadrature oracle.

bayesmeta values: Roever C. J Stat Softw 2020;93(6) (bayesmeta 3.4 vignette / JSS paper) as gathered
in the project's reference notes (section 5a). bayesmeta computes tau exactly by integrate() but the
marginals of mu, theta_new and theta_i from a DIRECT mixture with a 1% KL-divergence bound, so those
print with ~1e-4 relative discretisation error; tolerances below say which is which.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special

from bayes_pip.effects import log_odds_ratio
from bayes_pip.engines.exact import exact_posterior
from bayes_pip.errors import InputError
from bayes_pip.prior_families import (HalfCauchy, HalfNormal, LogNormalTau2, LogTTau2, Normal,
                                      Uniform)

TAU_REL = 2e-5      # bayesmeta's tau marginal is itself computed by adaptive quadrature
MIXTURE_REL = 1e-3  # bayesmeta's DIRECT mixture for mu / theta (delta = 1% KL bound)
TAIL_REL = 0.05     # far-tail probabilities (< 1e-3), see the reference notes on P(mu > 0)

CRINS = dict(a=[14, 16, 3, 9, 4, 0], n1=[61, 28, 18, 54, 36, 50],
             c=[15, 19, 8, 29, 11, 3], n2=[20, 28, 12, 54, 36, 34])
SCHOOLS_Y = np.array([28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16])
SCHOOLS_SE = np.array([14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6])


@pytest.fixture(scope="module")
def crins():
    y, v = log_odds_ratio(CRINS["a"], CRINS["n1"], CRINS["c"], CRINS["n2"])
    return y, v


@pytest.fixture(scope="module")
def crins_post(crins):
    # bayesmeta(crins.es, mu.prior.mean=0, mu.prior.sd=4, tau.prior=dhalfnormal(scale=0.5)), JSS p.21-23
    return exact_posterior(*crins, Normal(0, 4), HalfNormal(0.5))


def test_crins_matches_bayesmeta_summary(crins_post):
    p = crins_post
    assert p.quantile("tau", 0.5) == pytest.approx(0.3445023, rel=TAU_REL)
    assert p.mean("tau") == pytest.approx(0.3810562, rel=TAU_REL)
    assert p.sd("tau") == pytest.approx(0.2593672, rel=TAU_REL)
    assert 1 - p.cdf("tau", 1.0) == pytest.approx(0.02097488, rel=5e-4)
    assert p.quantile("tau", 0.99) == pytest.approx(1.109186, rel=5e-5)  # uniroot tolerance
    assert p.quantile("tau", 0.005) == pytest.approx(0.003547657, rel=TAU_REL)
    assert p.quantile("tau", 0.995) == pytest.approx(1.205400562, rel=TAU_REL)
    assert p.quantile("mu", 0.5) == pytest.approx(-1.5734819, rel=MIXTURE_REL)
    assert p.mean("mu") == pytest.approx(-1.5764365, rel=MIXTURE_REL)
    assert p.sd("mu") == pytest.approx(0.3295301, rel=MIXTURE_REL)
    assert p.quantile("predict", 0.5) == pytest.approx(-1.5701653, rel=MIXTURE_REL)
    assert p.sd("predict") == pytest.approx(0.5671855, rel=2 * MIXTURE_REL)
    assert p.sf("mu", 0.0) == pytest.approx(6.187343e-05, rel=TAIL_REL)


def test_crins_shrinkage_matches_bayesmeta(crins_post):
    p = crins_post
    # Heffron 2003 and Gibelli 2004 shrinkage rows, JSS p.23
    assert p.quantile(("study", 0), 0.5) == pytest.approx(-1.7411356, rel=MIXTURE_REL)
    assert p.mean(("study", 0)) == pytest.approx(-1.7778965, rel=MIXTURE_REL)
    assert p.sd(("study", 0)) == pytest.approx(0.4229425, rel=MIXTURE_REL)
    assert p.quantile(("study", 1), 0.5) == pytest.approx(-1.2821722, rel=MIXTURE_REL)
    assert p.mean(("study", 1)) == pytest.approx(-1.2339736, rel=MIXTURE_REL)
    assert p.sd(("study", 1)) == pytest.approx(0.4488759, rel=2 * MIXTURE_REL)


def test_two_studies_matches_bayesmeta(crins):
    # ma05 (Heffron, Spada), JSS p.33: P(mu < 0) = 0.9974968; forest plot -1.78 [-2.86, -0.69]
    # (shortest interval), prediction [-3.25, -0.28]
    y, v = crins
    p = exact_posterior(y[[0, 4]], v[[0, 4]], Normal(0, 4), HalfNormal(0.5))
    assert p.cdf("mu", 0.0) == pytest.approx(0.9974968, abs=1e-4)
    assert p.quantile("mu", 0.5) == pytest.approx(-1.78, abs=0.005)
    assert p.quantile("mu", 0.025) == pytest.approx(-2.86, abs=0.015)
    assert p.quantile("mu", 0.975) == pytest.approx(-0.69, abs=0.015)
    assert p.quantile("predict", 0.025) == pytest.approx(-3.25, abs=0.015)
    assert p.quantile("predict", 0.975) == pytest.approx(-0.28, abs=0.015)


def test_eight_schools_half_cauchy_matches_bayesmeta():
    # bayesmeta vignette: mu ~ N(0, 50), tau ~ half-Cauchy(25)
    p = exact_posterior(SCHOOLS_Y, SCHOOLS_SE**2, Normal(0, 50), HalfCauchy(25))
    assert p.quantile("tau", 0.5) == pytest.approx(4.758539, rel=TAU_REL)
    assert p.mean("tau") == pytest.approx(5.884511, rel=TAU_REL)
    assert p.sd("tau") == pytest.approx(4.869904, rel=TAU_REL)
    assert p.quantile("tau", 0.025) == pytest.approx(0.2199559, rel=TAU_REL)
    assert p.quantile("tau", 0.975) == pytest.approx(18.0531718, rel=TAU_REL)
    assert p.quantile("mu", 0.5) == pytest.approx(7.962961, rel=MIXTURE_REL)
    assert p.mean("mu") == pytest.approx(7.985729, rel=MIXTURE_REL)
    assert p.sd("mu") == pytest.approx(4.995762, rel=MIXTURE_REL)
    assert p.sf("mu", 0.0) == pytest.approx(0.9487521, rel=MIXTURE_REL)
    assert p.quantile("predict", 0.5) == pytest.approx(7.926819, rel=MIXTURE_REL)
    assert p.sd("predict") == pytest.approx(9.126767, rel=MIXTURE_REL)
    assert p.quantile(("study", 0), 0.5) == pytest.approx(10.093581, rel=2 * MIXTURE_REL)
    assert p.mean(("study", 0)) == pytest.approx(11.095255, rel=MIXTURE_REL)


def test_eight_schools_improper_uniform_matches_bayesmeta():
    p = exact_posterior(SCHOOLS_Y, SCHOOLS_SE**2, Normal(0, math.inf), Uniform(math.inf))
    assert p.quantile("tau", 0.5) == pytest.approx(5.227732, rel=TAU_REL)
    assert p.mean("tau") == pytest.approx(6.585992, rel=TAU_REL)
    assert p.quantile("mu", 0.5) == pytest.approx(8.055861, rel=MIXTURE_REL)
    assert p.mean("mu") == pytest.approx(8.092138, rel=MIXTURE_REL)


def oracle_mu_cdf(y, v, mu_prior, tau_prior, x):
    """Independent oracle: adaptive quadrature (scipy.integrate.quad) over log tau."""
    def cond(t):
        w = 1 / (v + t * t)
        w0 = 1 / mu_prior.sd**2
        big_w = w0 + w.sum()
        m = (w0 * mu_prior.mean + (w * y).sum()) / big_w
        resid = (w * (y - m) ** 2).sum() + w0 * (mu_prior.mean - m) ** 2
        loglik = -0.5 * np.log(v + t * t).sum() - 0.5 * math.log(big_w) - 0.5 * resid
        return m, 1 / big_w, loglik
    shift = cond(0.3)[2]
    dens = lambda lt: math.exp(cond(math.exp(lt))[2] - shift + float(tau_prior.logpdf(math.exp(lt))) + lt)
    def integrand(lt):
        m, var, _ = cond(math.exp(lt))
        return dens(lt) * special.ndtr((x - m) / math.sqrt(var))
    opts = dict(epsabs=0, epsrel=1e-13, limit=2000, points=[-3, -1, 0])
    return integrate.quad(integrand, -80, 8, **opts)[0] / integrate.quad(dens, -80, 8, **opts)[0]


@pytest.mark.parametrize("tau_prior", [HalfNormal(0.5), LogTTau2(-3.85, 1.93)])
@pytest.mark.parametrize("x", [-2.5, -1.5, -0.5, 0.0])
def test_grid_agrees_with_adaptive_quadrature(crins, tau_prior, x):
    y, v = crins
    p = exact_posterior(y, v, Normal(0, 4), tau_prior)
    assert p.cdf("mu", x) == pytest.approx(oracle_mu_cdf(y, v, Normal(0, 4), tau_prior, x),
                                           rel=1e-7, abs=1e-12)


def test_improper_posterior_is_refused():
    with pytest.raises(InputError, match="at least 3 studies"):
        exact_posterior([0.1, 0.2], [0.1, 0.1], Normal(0, math.inf), Uniform(math.inf))


# ---------------------------------------------------------------------------------------------
# every tau-prior family, bounded ones included, against an independent adaptive quadrature
# ---------------------------------------------------------------------------------------------

def metafor_case(name):
    import json
    from pathlib import Path

    cases = json.loads((Path(__file__).parent / "reference" / "metafor_values.json").read_text())
    return np.array(cases["cases"][name]["yi"], float), np.array(cases["cases"][name]["vi"], float)


def oracle(y, v, mu_prior, tau_prior, what, x):
    """P(mu <= x | y) or P(tau <= x | y) by scipy.integrate.quad over log tau, with the
    integration range ending at the end of the prior's support (tau = upper for a uniform
    prior) instead of inside it."""
    def cond(t):
        w = 1 / (v + t * t)
        w0 = 1 / mu_prior.sd**2
        big_w = w0 + w.sum()
        m = (w0 * mu_prior.mean + (w * y).sum()) / big_w
        resid = (w * (y - m) ** 2).sum() + w0 * (mu_prior.mean - m) ** 2
        return m, 1 / big_w, -0.5 * np.log(v + t * t).sum() - 0.5 * math.log(big_w) - 0.5 * resid
    upper = math.log(tau_prior.upper) if isinstance(tau_prior, Uniform) else math.log(1e4)
    shift = max(cond(math.exp(lt))[2] + float(tau_prior.logpdf(math.exp(lt))) + lt
                for lt in np.linspace(-12, upper, 400))

    def dens(lt):
        t = math.exp(lt)
        return math.exp(cond(t)[2] + float(tau_prior.logpdf(t)) + lt - shift)

    if what == "mu":
        def integrand(lt):
            m, var, _ = cond(math.exp(lt))
            return dens(lt) * special.ndtr((x - m) / math.sqrt(var))
        top = upper
    else:
        integrand, top = dens, min(math.log(x), upper)
    opts = dict(epsabs=0, epsrel=1e-12, limit=4000)
    pieces = [-80, -12, -6, -3, -1.5, 0, 1.5, 3]
    def integral(f, b):
        edges = [p for p in pieces if p < b] + [b]
        return sum(integrate.quad(f, a, c, **opts)[0] for a, c in zip(edges[:-1], edges[1:]))
    return integral(integrand, top) / integral(dens, upper)


SUBSETS = {
    "k1_crins": ("crins_or", [0]),
    "k2_normand_md": ("normand_md", [1, 5]),
    "k3_normand_md": ("normand_md", [1, 4, 7]),
    "k10_bcg": ("bcg_rr", list(range(10))),
}
FAMILIES = [HalfNormal(0.5), HalfCauchy(1.0), LogNormalTau2(-2.34, 1.72), LogTTau2(-3.85, 1.93),
            Uniform(10.0), Uniform(1.0)]


@pytest.mark.parametrize("tau_prior", FAMILIES, ids=lambda p: f"{p.family}-{p.params()}")
@pytest.mark.parametrize("subset", list(SUBSETS))
def test_every_prior_family_matches_adaptive_quadrature(subset, tau_prior):
    """Error below 1e-6 for P(mu <= x) and P(tau <= t) at k = 1, 2, 3 and 10 (real data:
    Crins 2014, Normand 1999 length of stay (MD), BCG), for every tau-prior family; the uniform
    priors' jump at tau = upper is a quadrature cell boundary."""
    name, rows = SUBSETS[subset]
    y, v = metafor_case(name)
    y, v = y[rows], v[rows]
    mu_prior = Normal(0.0, 10.0)
    post = exact_posterior(y, v, mu_prior, tau_prior)
    centre, spread = post.quantile("mu", 0.5), post.sd("mu")
    for x in (centre - spread, centre, centre + 1.5 * spread):
        assert abs(post.cdf("mu", x) - oracle(y, v, mu_prior, tau_prior, "mu", x)) < 1e-6
    for q in (0.25, 0.75):
        t = post.quantile("tau", q)
        assert abs(post.cdf("tau", t) - oracle(y, v, mu_prior, tau_prior, "tau", t)) < 1e-6
