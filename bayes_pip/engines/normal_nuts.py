"""Normal-normal model sampled by NUTS (nutpie): the default `--engine pymc`.

What runs: the model of :func:`bayes_pip.engines.pymc_models.normal_normal_spec` (y_i ~ N(mu,
v_i + tau^2), PyMC priors from the prior set), in the whitened parametrisation of
:func:`~bayes_pip.engines.pymc_models.normal_normal_model` (u = log tau, mu = m(tau) + z/sqrt(W)),
whose log density and gradient are compiled once per installation by numba
(:mod:`bayes_pip.engines.fast_normal`) and sampled by nutpie's NUTS through its public
``from_pyfunc`` interface. Study effects theta_i and a new study's theta are then drawn from their
exact conditional normals for every draw (Roever 2020, JSS Sec. 2.8).
"""

from __future__ import annotations

import numpy as np

from bayes_pip.engines import mcmc
from bayes_pip.engines.base import EngineResult, Problem
from bayes_pip.engines.idata import add_normal_groups, conditional_theta_draws


def sample_normal_normal(y, v, prior, seed: int, settings, study_names, progress: bool = False):
    """Sample (mu, tau) with nutpie's NUTS, then theta_i and theta_new exactly; InferenceData."""
    import nutpie
    import xarray as xr

    from bayes_pip.engines.fast_normal import compiled_model
    from bayes_pip.engines.pymc_models import prior_data

    y = np.asarray(y, float)
    v = np.asarray(v, float)
    model = compiled_model(y, v, prior_data(prior))
    with mcmc.interrupts_propagate():
        idata = nutpie.sample(model, draws=settings.draws, tune=settings.tune,
                              chains=settings.chains, cores=settings.cores, seed=seed,
                              target_accept=settings.target_accept, progress_bar=progress)
    post = idata.posterior
    rng = np.random.default_rng([seed, 1])
    mu, tau = post["mu"].values, post["tau"].values
    theta = conditional_theta_draws(mu, tau, y, v, rng)
    theta_new = mu + tau * rng.standard_normal(mu.shape)
    idata.posterior = post.assign(
        theta=xr.DataArray(theta, dims=("chain", "draw", "study"),
                           coords={"study": list(study_names)}),
        theta_new=xr.DataArray(theta_new, dims=("chain", "draw")))
    return idata


class NormalNormalNUTS:
    name = "pymc"
    model = "normal-normal"
    help = ("pymc: normal-normal model (theta_i integrated out) sampled by NUTS (nutpie), the "
            "default")
    stochastic = True
    packages = mcmc.PYMC_PACKAGES
    default_target_accept = 0.95  # the whitened model has no funnel

    def fit(self, problem: Problem, prior, seed: int, settings, progress=False) -> EngineResult:
        es = problem.effects
        idata = sample_normal_normal(es.y, es.v, prior, seed, settings, es.study, progress)
        add_normal_groups(idata, es, prior, seed)
        return mcmc.finish(self, idata, problem, prior, seed, settings)

    def describe(self, fit) -> str:
        return mcmc.describe("normal-normal", fit)


ENGINE = NormalNormalNUTS()
