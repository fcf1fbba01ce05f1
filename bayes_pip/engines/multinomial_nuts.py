"""Hierarchical multinomial model of a categorical outcome, sampled by NUTS (nutpie):
`--engine multinomial`, the engine of categorical outcomes (category counts).

Model (baseline-category logits against the reference category r; categories c, treatments t
with t = 0 the comparator, t = 1 the intervention, t >= 2 alternative treatments):

    counts[i, t, :] ~ Multinomial(n[i, t], softmax(eta[i, t, :]))      each arm a study had
    eta[i, t, r] = 0;  eta[i, 0, c] = b[i, c];  eta[i, t, c] = b[i, c] + delta[i, t, c]
    delta[i, t, c] ~ N(d[t, c], tau^2), correlation 1/2 between any two categories c, c' of one
                   arm and between any two active arms t, s of one trial (t, s >= 1)
    b[i, c] ~ the prior set's baseline prior (the binomial model's, on the logit scale)
    d[t, c] ~ the prior set's prior on the pooled effect of an OR outcome (log odds ratio)
    tau     ~ the prior set's heterogeneity prior of an OR outcome

Why this covariance: every delta is a log odds ratio against the reference category, and tau is
the between-study SD of any such log odds ratio, which the shipped heterogeneity priors describe.
If each category's log odds in a trial deviates from its pooled value by an independent
N(0, tau^2 / 2) (the reference category included), the log odds ratios against the reference
have variance tau^2 and correlation 1/2: the model is then the same whichever category is the
reference, and no correlation parameter is estimated from two or three trials (an LKJ
correlation would be the prior alone). The correlation of 1/2 between two active arms of one
trial is the usual consistency assumption of multi-arm network meta-analysis with a common
heterogeneity (Higgins & Whitehead 1996): each arm enters once, and a shared comparator is never
counted twice. A category a study did not report is left out of its likelihood: the remaining
categories follow the multinomial conditioned on them.
Sampled non-centred: delta[i] = d + tau L z[i] L', z ~ N(0, 1), L the Cholesky factor of the
exchangeable correlation. The PyMC model below is the specification; it is sampled through its
log density and gradient written out in numba (engines/fast_multinomial.py, cached on disk and
tested equal to this model's compiled logp and dlogp), not compiled again in every process.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from bayes_pip.engines import mcmc, payload_for
from bayes_pip.engines.base import EngineResult, Problem
from bayes_pip.engines.draws import DrawQueries
from bayes_pip.payloads import CategoryCounts

CORRELATION = 0.5   # between two categories' effects, and between two active arms' effects
MASKED = -1e4   # logit of a category a study did not report (exp underflows to 0)
MONITORED = ("d", "tau", "b")


def exchangeable_cholesky(n: int) -> np.ndarray:
    """Cholesky factor of the n x n correlation matrix with every off-diagonal 1/2."""
    a = np.full((n, n), CORRELATION)
    np.fill_diagonal(a, 1.0)
    return np.linalg.cholesky(a)


def model_data(cc: CategoryCounts, prior) -> dict:
    from bayes_pip.engines.pymc_models import prior_data

    counts = np.nan_to_num(cc.counts, nan=0.0)
    reported = (~np.isnan(cc.counts[:, 0, :])).astype(float)
    return {"counts": counts, "reported": reported, **prior_data(prior),
            "baseline_mean": np.float64(prior.baseline.mean),
            "baseline_sd": np.float64(prior.baseline.sd)}


def multinomial_model(shape: tuple, reference: int, data: dict | None = None):
    """The PyMC model for ``shape`` = (studies, treatments, categories); data and prior
    parameters are pm.Data (one compiled model per shape, swapped by nutpie's with_data)."""
    import pymc as pm
    import pytensor.tensor as pt

    from bayes_pip.engines.pymc_models import tau_prior_block

    k, n_t, n_c = shape
    data = data or placeholder(shape)
    j = n_c - 1
    with pm.Model() as model:
        counts = pm.Data("counts", data["counts"])
        reported = pm.Data("reported", data["reported"])
        mu_mean, mu_sd = pm.Data("mu_mean", data["mu_mean"]), pm.Data("mu_sd", data["mu_sd"])
        family = pm.Data("tau_family", data["tau_family"])
        a, b_, c = (pm.Data(n, data[n]) for n in ("tau_a", "tau_b", "tau_c"))
        base_mean = pm.Data("baseline_mean", data["baseline_mean"])
        base_sd = pm.Data("baseline_sd", data["baseline_sd"])
        tau = tau_prior_block(family, a, b_, c)
        base = pm.Normal("b", base_mean, base_sd, shape=(k, j))
        d = pm.Normal("d", mu_mean, mu_sd, shape=(n_t - 1, j))
        chol_r = pt.as_tensor(exchangeable_cholesky(j))
        z = pm.Normal("z", 0.0, 1.0, shape=(k, n_t - 1, j))
        chol_a = pt.as_tensor(exchangeable_cholesky(n_t - 1))
        mixed = pt.dot(pt.tensordot(z, chol_a, axes=[[1], [1]]).dimshuffle(0, 2, 1), chol_r.T)
        delta = d[None, :, :] + tau * mixed                        # (k, t - 1, j)
        eta = pt.concatenate([base[:, None, :], base[:, None, :] + delta], axis=1)
        zeros = pt.zeros((k, n_t, 1))
        logits = pt.concatenate([eta[..., :reference], zeros, eta[..., reference:]], axis=-1)
        logits = logits + (1.0 - reported[:, None, :]) * MASKED
        log_p = logits - pt.logsumexp(logits, axis=-1, keepdims=True)
        pm.Potential("likelihood", pt.sum(counts * log_p))
    return model


def placeholder(shape: tuple) -> dict:
    from bayes_pip.prior_families import HalfNormal, Normal
    from bayes_pip.priors import ResolvedPrior

    prior = ResolvedPrior(name="placeholder", title="", source="", mu=Normal(0.0, 1.0),
                          tau=HalfNormal(0.5), mu_source="", tau_source="")
    k, n_t, n_c = shape
    cc = CategoryCounts(tuple(f"s{i}" for i in range(k)), tuple(f"t{i}" for i in range(n_t)),
                        tuple(f"c{i}" for i in range(n_c)), np.ones(shape))
    return model_data(cc, prior)


@functools.lru_cache(maxsize=None)
def compiled(shape: tuple, reference: int):
    """The PyMC model compiled by nutpie once per process, shape and reference category."""
    from bayes_pip.engines.pymc_models import quiet_imports

    quiet_imports()
    import nutpie

    return nutpie.compile_pymc_model(multinomial_model(shape, reference))


def sample(cc: CategoryCounts, prior, seed: int, settings, progress: bool = False,
           many: bool = False):
    """InferenceData of the model with draws of b, d and tau named by coordinates.

    Two runs of the one model (their log densities and gradients are tested equal): a single
    fit through the numba callbacks cached on disk (no compile: 10 s for a cold fit against
    25 s; 4.9 s per fit warm), and, with ``many`` (calibration: hundreds of fits in one
    process), the PyMC model compiled by nutpie once per process (about 20 s once, then 1.8 s
    per fit)."""
    import nutpie

    from bayes_pip.engines.fast_multinomial import compiled_model

    reference = cc.categories.index(cc.reference or cc.categories[0])
    _, n_t, n_c = cc.counts.shape
    if many:
        model = compiled(cc.counts.shape, reference).with_data(**model_data(cc, prior))
    else:
        model = compiled_model(model_data(cc, prior), reference,
                               exchangeable_cholesky(n_t - 1), exchangeable_cholesky(n_c - 1),
                               settings.tune + settings.draws)
    with mcmc.interrupts_propagate():
        idata = nutpie.sample(model, draws=settings.draws, tune=settings.tune,
                              chains=settings.chains, cores=settings.cores, seed=seed,
                              target_accept=settings.target_accept, progress_bar=progress)
    others = [c for c in cc.categories if c != cc.categories[reference]]
    post = idata.posterior
    keep = [v for v in ("b", "d", "tau") if v in post]
    dims = {"b": ("chain", "draw", "study", "category"),
            "d": ("chain", "draw", "treatment", "category"),
            "tau": ("chain", "draw")}
    import xarray as xr

    coords = {"study": list(cc.study), "treatment": list(cc.arms[1:]), "category": others}
    idata.posterior = xr.Dataset(
        {v: xr.DataArray(post[v].values, dims=dims[v]) for v in keep},
        coords={"chain": post["chain"].values, "draw": post["draw"].values,
                **{n: c for n, c in coords.items()
                   if any(n in dims[v] for v in keep)}},
        attrs=post.attrs)
    idata.posterior.attrs["reference_category"] = cc.categories[reference]
    return idata


class CategoricalDraws(DrawQueries):
    """Draws answering the query grammar; targets are "tau" and tuples of a quantity and
    coordinates, e.g. ("d", "intervention", "secure")."""

    def __init__(self, draws: dict):
        self.draws = draws

    def values(self, target):
        return self.draws[target]


def categorical_draws(idata) -> CategoricalDraws:
    """The posterior of a fit: tau and every pooled log odds ratio d by treatment and category."""
    post = idata.posterior
    draws = {"tau": post["tau"].values.ravel()}
    for t in post["treatment"].values:
        for c in post["category"].values:
            draws[("d", str(t), str(c))] = post["d"].sel(treatment=t, category=c).values.ravel()
    return CategoricalDraws(draws)


class MultinomialNUTS:
    name = "multinomial"
    model = "multinomial-normal"
    help = ("multinomial: hierarchical multinomial model of a categorical outcome (category "
            "counts) sampled by NUTS (nutpie)")
    packages = mcmc.PYMC_PACKAGES
    accepts = (CategoryCounts,)
    capabilities = frozenset({"stochastic"})
    stochastic = "stochastic" in capabilities
    default_target_accept = 0.99
    cores = 1              # a single fit: the numba callbacks hold the GIL, one thread
    compiled_cores = 2     # the nutpie-compiled model (calibration) runs its chains on 2 cores
    convergence_hint = "Try more draws or tuning (--draws, --tune) or a higher --target-accept."

    def settings_for(self, settings, k: int | None = None, many: bool = False):
        cores = self.compiled_cores if many else self.cores
        return dataclasses.replace(settings, cores=settings.cores or cores,
                                   target_accept=settings.target_accept
                                   or self.default_target_accept)

    def draws(self, problem: Problem, prior, seed: int, settings):
        """InferenceData without the convergence gate (calibration)."""
        return sample(payload_for(self, problem), prior, seed,
                      self.settings_for(settings, many=True), many=True)

    def fit(self, problem: Problem, prior, seed: int, settings, progress=False) -> EngineResult:
        settings = self.settings_for(settings)
        idata = sample(payload_for(self, problem), prior, seed, settings, progress)
        return mcmc.finish(self, idata, problem, prior, seed, settings,
                           [v for v in MONITORED if v in idata.posterior], categorical_draws)

    def describe(self, fit) -> str:
        return mcmc.describe("multinomial-normal (category counts)", fit)


ENGINE = MultinomialNUTS()
