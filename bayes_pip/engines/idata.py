"""ArviZ InferenceData for every engine: posterior, prior, observed_data and log_likelihood.

MCMC engines add the prior, observed data and pointwise log-likelihood to their trace; the exact
and conjugate engines give independent draws from their posterior (``exact_idata`` and
``conjugate_idata`` in their modules), so ``az.summary``, ``az.plot_forest`` and ``az.loo`` work
the same whichever engine ran.

Log-likelihood, per study, marginal over that study's effect: y_i ~ N(mu, v_i + tau^2) for the
normal-normal model; per arm, Binomial(n, p) with the model's link for the binomial-normal model.

Exact draws: tau by inverting the quadrature CDF (linear in log tau inside a quadrature cell;
the prior's own shape below the quadrature range), then mu | tau, y ~ N(m(tau), V(tau)),
theta_i | mu, tau, y_i and a new study's theta from their conditional normals.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

DRAWS = 1000
CHAINS = 4

# what each posterior variable is; {} is the analysis scale ("log RR", "SMD")
SCALES = {"mu": "pooled effect, {}", "tau": "between-study SD, {}",
          "theta": "each study's effect, {}", "theta_new": "a new study's effect, {}",
          "baseline": "each study's control-arm baseline (logit for OR, log-risk parameter for "
                      "RR)"}


def label_scales(idata, scale: str):
    """Each model quantity of the posterior labelled with what it is and its scale
    (``attrs["scale"]``); returns ``idata``. ``idata`` may be a function that makes it (the
    non-MCMC engines make their draws on first use)."""
    if callable(idata):
        idata = idata()
    for name, text in SCALES.items():
        if name in idata.posterior:
            idata.posterior[name].attrs["scale"] = text.format(scale)
    return idata


def az_module():
    import arviz as az

    return az


def conditional_theta_draws(mu, tau, y, v, rng):
    """theta_i | mu, tau, y_i ~ N(B mu + (1-B) y_i, v_i (1-B)), B = v_i/(v_i + tau^2), per draw."""
    mu = mu[..., None]
    tau2 = tau[..., None] ** 2
    b = v / (v + tau2)
    mean = b * mu + (1 - b) * y
    sd = np.sqrt(v * tau2 / (v + tau2))
    return mean + sd * rng.standard_normal(mean.shape)


def normal_log_likelihood(mu, tau, y, v) -> np.ndarray:
    """log N(y_i; mu, v_i + tau^2) for every draw: shape (chain, draw, study)."""
    var = v + tau[..., None] ** 2
    return -0.5 * (np.log(2 * math.pi * var) + (y - mu[..., None]) ** 2 / var)


def prior_draws(prior, shape, rng) -> dict:
    """Independent draws of mu and tau from a (proper) prior set; {} for an improper one."""
    if not getattr(prior.mu, "proper", True) or not getattr(prior.tau, "proper", True):
        return {}
    return {"mu": prior.mu.ppf(rng.uniform(size=shape)),
            "tau": prior.tau.ppf(rng.uniform(size=shape))}


def study_coords(effects) -> dict:
    return {"study": list(effects.study)}


def add_normal_groups(idata, effects, prior, seed: int):
    """Prior, observed data and per-study log-likelihood groups for a normal-normal trace."""
    az = az_module()
    post = idata.posterior
    mu, tau = post["mu"].values, post["tau"].values
    rng = np.random.default_rng([seed, 7])
    extra = az.from_dict(
        prior=prior_draws(prior, mu.shape, rng) or None,
        observed_data={"y": np.asarray(effects.y)},
        constant_data={"v": np.asarray(effects.v)},
        log_likelihood={"y": normal_log_likelihood(mu, tau, effects.y, effects.v)},
        coords=study_coords(effects), dims={"y": ["study"], "v": ["study"]})
    idata.extend(extra)
    return idata


def add_binomial_groups(idata, effects, prior, seed: int, baseline, link: str):
    """Prior, observed arm counts and per-arm binomial log-likelihood for a binomial trace
    (``effects``: :class:`bayes_pip.payloads.ArmCounts`)."""
    az = az_module()
    post = idata.posterior
    mu, theta = post["mu"].values, post["theta"].values
    if link == "logit":
        p0 = special.expit(baseline)
        p1 = special.expit(baseline + theta)
    else:
        log_p0 = np.minimum(0.0, -theta) - np.logaddexp(0.0, -baseline)
        p0, p1 = np.exp(log_p0), np.exp(log_p0 + theta)
    events, n = effects.events, effects.n   # ArmCounts: arm 0 intervention, arm 1 control
    p = np.stack([p1, p0], axis=-1)
    from scipy import stats

    loglik = stats.binom.logpmf(events, n, p)
    rng = np.random.default_rng([seed, 7])
    coords = {**study_coords(effects), "arm": ["intervention", "control"]}
    extra = az.from_dict(
        prior=prior_draws(prior, mu.shape, rng) or None,
        observed_data={"events": events, "n": n}, log_likelihood={"events": loglik},
        coords=coords, dims={"events": ["study", "arm"], "n": ["study", "arm"]})
    idata.extend(extra)
    return idata
