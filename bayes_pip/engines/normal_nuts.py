"""Normal-normal model sampled by NUTS (nutpie): `--engine pymc`, what `--engine auto` uses
unless an outcome's arm counts are sparse.

What runs: the model of :func:`bayes_pip.engines.pymc_models.normal_normal_spec` (y_i ~ N(mu,
v_i + tau^2), PyMC priors from the prior set), in the whitened parametrisation of
:func:`~bayes_pip.engines.pymc_models.normal_normal_model` (u = log tau, mu = m(tau) + z/sqrt(W)),
whose log density and gradient are compiled once per installation by numba
(:mod:`bayes_pip.engines.fast_normal`) and sampled by nutpie's NUTS through its public
``from_pyfunc`` interface. Study effects theta_i and a new study's theta are then drawn from their
exact conditional normals for every draw (Roever 2020, JSS Sec. 2.8).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bayes_pip.engines import mcmc, payload_for
from bayes_pip.engines.base import EngineResult, Problem, SamplerSettings
from bayes_pip.engines.idata import add_normal_groups, conditional_theta_draws
from bayes_pip.payloads import NormalEffects


def sample_normal_normal(y, v, prior, seed: int, settings, study_names, progress: bool = False):
    """Sample (mu, tau) with nutpie's NUTS, then theta_i and theta_new exactly; InferenceData."""
    import nutpie
    import xarray as xr

    from bayes_pip.engines.fast_normal import compiled_model
    from bayes_pip.engines.pymc_models import prior_data

    y = np.asarray(y, float)
    v = np.asarray(v, float)
    settings = ENGINE.settings_for(settings, len(y))
    model = compiled_model(y, v, prior_data(prior), settings.tune + settings.draws)
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
    help = ("pymc: normal-normal model (theta_i integrated out) sampled by NUTS (nutpie), what "
            "auto uses unless the arm counts are sparse")
    packages = mcmc.PYMC_PACKAGES
    accepts = (NormalEffects,)
    capabilities = frozenset({"stochastic", "regression"})
    stochastic = "stochastic" in capabilities  # derived, never declared twice
    default_target_accept = 0.95  # the whitened model has no funnel...
    small_k = 3                   # ...but with k <= 3 an occasional divergence at 0.95
    small_k_target_accept = 0.99

    # one thread for the chains: the log density is a Python callback (nutpie's public
    # from_pyfunc) that holds the GIL, so a second thread only contends for it (measured here:
    # 1.1 s against 1.9 s per fit; the draws are identical)
    cores = 1

    def settings_for(self, settings: SamplerSettings, k: int) -> SamplerSettings:
        """``settings`` with the engine's defaults filled in for ``k`` studies."""
        return dataclasses.replace(
            settings, cores=settings.cores or self.cores,
            target_accept=settings.target_accept or self.target_accept_for(k))

    def target_accept_for(self, k: int) -> float:
        """0.95, or 0.99 with three studies or fewer (at k = 2, 1 of 120 fits diverged once at
        0.95, none at 0.99; tests/test_pymc.py runs k = 2 under every prior)."""
        return self.small_k_target_accept if k <= self.small_k else self.default_target_accept

    def fit(self, problem: Problem, prior, seed: int, settings, progress=False) -> EngineResult:
        data = payload_for(self, problem)
        idata = sample_normal_normal(data.y, data.v, prior, seed, settings, data.study, progress)
        add_normal_groups(idata, data, prior, seed)
        return mcmc.finish(self, idata, problem, prior, seed, settings)

    def regress(self, payloads, columns, prior, coefficients, seed, settings, name):
        """Meta-regression by NUTS on one payload with its design matrix
        (:mod:`bayes_pip.engines.nuts_regression`): (posterior draws, diagnostics)."""
        from bayes_pip.engines.nuts_regression import sample_regression

        return sample_regression(payloads, columns, prior, coefficients, seed, settings, name)

    def draws(self, problem: Problem, prior, seed: int, settings):
        """Draws without the convergence gate or the extra groups (calibration)."""
        data = payload_for(self, problem)
        return sample_normal_normal(data.y, data.v, prior, seed, settings, data.study)

    def describe(self, fit) -> str:
        return mcmc.describe("normal-normal", fit)


ENGINE = NormalNormalNUTS()
