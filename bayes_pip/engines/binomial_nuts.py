"""Binomial-normal model on arm counts sampled by NUTS (nutpie): `--engine binomial`.

events ~ Binomial(n, p) in each arm, logit link (OR) or log link (RR), study effects non-centred
(centred with mu integrated out for a single study), no continuity correction; see
:func:`bayes_pip.engines.pymc_models.binomial_normal_model`. The model is compiled once per
process and padded study count and reused for every outcome and prior through nutpie's
``with_data``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bayes_pip import measures
from bayes_pip.engines import mcmc, payload_for
from bayes_pip.engines.base import EngineResult, Problem
from bayes_pip.engines.idata import add_binomial_groups
from bayes_pip.errors import InputError
from bayes_pip.payloads import ArmCounts, from_effects


def arm_counts(data) -> ArmCounts:
    """``data`` as ArmCounts (it may be one already, or an outcome's EffectSizes)."""
    if isinstance(data, ArmCounts):
        return data
    return from_effects(data, measures.get(data.measure).link)[1]


def sample_binomial_normal(es, prior, seed: int, settings,
                           progress: bool = False, centred: bool | None = None):
    """Binomial-normal fit on arm counts (RR: log link, OR: logit link); returns InferenceData.

    ``es``: ArmCounts, or an outcome's EffectSizes with arm counts."""
    import xarray as xr

    from bayes_pip.engines.pymc_models import (CENTRED_MAX_K, padded_size, prior_data,
                                               run_nutpie)

    es = arm_counts(es)
    k = es.k
    centred = k <= CENTRED_MAX_K if centred is None else centred
    kind = f"binomial-{es.link}" + ("-centred" if centred else "")
    # centred models are not padded: prior-only padded thetas would form a funnel with tau
    size = k if centred else padded_size(k)

    def pad(x):  # padded studies have n = 0: a zero log-likelihood, their parameters stay prior
        out = np.zeros(size)
        out[:k] = np.asarray(x, float)
        return out

    data = {"events_t": pad(es.events[:, 0]), "n_t": pad(es.n[:, 0]),
            "events_c": pad(es.events[:, 1]), "n_c": pad(es.n[:, 1]), **prior_data(prior),
            "baseline_mean": np.float64(prior.baseline.mean),
            "baseline_sd": np.float64(prior.baseline.sd)}
    settings = ENGINE.settings_for(settings, k)
    idata = run_nutpie(kind, data, seed, settings, progress, size)
    post = idata.posterior
    rng = np.random.default_rng([seed, 2])
    tau = post["tau"].values
    theta = post["theta"].values[..., :k]
    if centred:  # mu | theta, tau from its conditional normal (only the k real studies)
        m0, s0 = float(prior.mu.mean), float(prior.mu.sd)
        precision = 1 / s0**2 + k / tau**2
        mean = (m0 / s0**2 + theta.sum(axis=-1) / tau**2) / precision
        mu = mean + rng.standard_normal(tau.shape) / np.sqrt(precision)
        post = post.assign(mu=(("chain", "draw"), mu))
    else:
        mu = post["mu"].values
    theta_new = mu + tau * rng.standard_normal(mu.shape)
    baseline = post["baseline"].values[..., :k]
    post = post.drop_vars([n for n in ("theta", "z", "baseline") if n in post]).drop_dims(
        [d for d in post.dims if d not in ("chain", "draw")], errors="ignore")
    idata.posterior = post.assign(
        theta=xr.DataArray(theta, dims=("chain", "draw", "study"),
                           coords={"study": list(es.study)}),
        theta_new=xr.DataArray(theta_new, dims=("chain", "draw")),
        baseline=xr.DataArray(baseline, dims=("chain", "draw", "study"),
                              coords={"study": list(es.study)}))
    return add_binomial_groups(idata, es, prior, seed, baseline, es.link)


class BinomialNormalNUTS:
    name = "binomial"
    model = "binomial-normal"
    help = "binomial: binomial-normal model on arm counts (RR/OR) sampled by NUTS (nutpie)"
    packages = mcmc.PYMC_PACKAGES
    accepts = (ArmCounts,)
    capabilities = frozenset({"stochastic"})
    stochastic = "stochastic" in capabilities  # derived, never declared twice
    # the non-centred study effects are weakly identified with one or two studies
    default_target_accept = 0.99
    # with two studies or fewer, 0.995: at k = 2 under half-Cauchy(0.5), 0.99 left 12
    # divergences in 8,000 draws with nutpie 0.16.8 / pymc 5.28.5 (none at 0.995, seeds 1-3)
    small_k = 2
    small_k_target_accept = 0.995

    cores = 2  # the compiled PyMC model runs without the GIL: one thread per core

    def target_accept_for(self, k: int) -> float:
        return self.small_k_target_accept if k <= self.small_k else self.default_target_accept

    def settings_for(self, settings, k: int):
        """``settings`` with the engine's defaults filled in for ``k`` studies."""
        return dataclasses.replace(
            settings, cores=settings.cores or self.cores,
            target_accept=settings.target_accept or self.target_accept_for(k))

    def fit(self, problem: Problem, prior, seed: int, settings, progress=False) -> EngineResult:
        outcome = problem.outcome
        if outcome is not None and outcome.scale.link is None:
            raise InputError(f"--engine binomial needs an RR or OR outcome; '{outcome.outcome}' "
                             f"is {outcome.measure}")
        idata = sample_binomial_normal(payload_for(self, problem), prior, seed, settings,
                                       progress)
        return mcmc.finish(self, idata, problem, prior, seed, settings)

    def draws(self, problem: Problem, prior, seed: int, settings):
        """Draws without the convergence gate (calibration)."""
        return sample_binomial_normal(payload_for(self, problem), prior, seed, settings)

    def describe(self, fit) -> str:
        return mcmc.describe("binomial-normal (arm counts)", fit)


ENGINE = BinomialNormalNUTS()
