"""Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788), following the bayesmeta
calibration study (Roever 2020, JSS App. E: sigma_i ~ U(0.2, 1), half-normal tau prior,
normal mu prior, k in {2, ..., 20}).

Draw (mu, tau) from the prior, theta_i ~ N(mu, tau^2), y_i ~ N(theta_i, sigma_i^2), fit, and record
where the true value falls in its posterior. If the engine is right, the posterior CDF at the truth
(exact engine) or the rank of the truth among posterior draws (PyMC engine) is uniform.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayes_pip.engines.exact import exact_posterior
from bayes_pip.priors import HalfNormal, Normal, ResolvedPrior

GRID = [(2, 0.5), (5, 0.5), (5, 1.0), (10, 0.5)]  # (k, half-normal scale of the tau prior)
MU_PRIOR = Normal(0.0, 1.0)


def simulate(rng, k, tau_scale):
    mu = rng.normal(MU_PRIOR.mean, MU_PRIOR.sd)
    tau = abs(rng.normal(0, tau_scale))
    sigma = rng.uniform(0.2, 1.0, size=k)
    y = rng.normal(rng.normal(mu, tau, size=k), sigma)
    return mu, tau, y, sigma**2


@pytest.mark.slow
@pytest.mark.parametrize("k, tau_scale", GRID)
def test_exact_engine_is_calibrated(k, tau_scale):
    rng = np.random.default_rng(1000 + k + int(10 * tau_scale))
    pit_mu, pit_tau = [], []
    for _ in range(1000):
        mu, tau, y, v = simulate(rng, k, tau_scale)
        post = exact_posterior(y, v, MU_PRIOR, HalfNormal(tau_scale))
        pit_mu.append(post.cdf("mu", mu))
        pit_tau.append(post.cdf("tau", tau))
    assert stats.kstest(pit_mu, "uniform").pvalue > 0.01
    assert stats.kstest(pit_tau, "uniform").pvalue > 0.01


@pytest.mark.slow
@pytest.mark.parametrize("k, tau_scale", GRID)
def test_pymc_normal_normal_is_calibrated(k, tau_scale):
    from bayes_pip.engines.base import SamplerSettings
    from bayes_pip.engines.normal_nuts import sample_normal_normal

    rng = np.random.default_rng(2000 + k + int(10 * tau_scale))
    settings = SamplerSettings(draws=500, tune=500, chains=2)
    prior = ResolvedPrior(name="sbc", title="sbc", source="", mu=MU_PRIOR,
                          tau=HalfNormal(tau_scale), mu_source="", tau_source="")
    n_rep, n_keep = 250, 99  # ranks 0..99 over 99 thinned draws
    ranks = {"mu": [], "tau": []}
    for r in range(n_rep):
        mu, tau, y, v = simulate(rng, k, tau_scale)
        idata = sample_normal_normal(y, v, prior, seed=r, settings=settings,
                                     study_names=[str(i) for i in range(k)])
        for name, truth in (("mu", mu), ("tau", tau)):
            draws = idata.posterior[name].values.ravel()
            thin = draws[np.linspace(0, draws.size - 1, n_keep).astype(int)]
            ranks[name].append(int(np.sum(thin < truth)))
    for name, rk in ranks.items():
        counts = np.bincount(np.asarray(rk) // 10, minlength=10)  # 10 bins of equal width
        assert stats.chisquare(counts).pvalue > 0.01, (name, counts)
