"""ArviZ InferenceData for every engine: posterior, prior, observed_data and log_likelihood.

MCMC engines add the prior, observed data and pointwise log-likelihood to their trace; the exact
and conjugate engines give independent draws from their posterior (so ``az.summary``,
``az.plot_forest`` and ``az.loo`` work the same whichever engine ran).

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


def _az():
    import arviz as az

    return az


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
    az = _az()
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
    """Prior, observed arm counts and per-arm binomial log-likelihood for a binomial trace."""
    az = _az()
    post = idata.posterior
    mu, theta = post["mu"].values, post["theta"].values
    if link == "logit":
        p0 = special.expit(baseline)
        p1 = special.expit(baseline + theta)
    else:
        log_p0 = np.minimum(0.0, -theta) - np.logaddexp(0.0, -baseline)
        p0, p1 = np.exp(log_p0), np.exp(log_p0 + theta)
    events = np.stack([effects.events_pip, effects.events_ctrl], axis=-1)
    n = np.stack([effects.n_pip, effects.n_ctrl], axis=-1)
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


def exact_tau_draws(post, u) -> np.ndarray:
    """Invert the exact engine's CDF of tau at uniforms ``u``."""
    u = np.asarray(u, float)
    cum = post.cum_edges
    tau = np.empty_like(u)
    low = u < cum[0]
    if low.any():  # below the quadrature range the posterior has the prior's shape
        lower = float(post.tau_prior.cdf(math.exp(post.edges[0])))
        tau[low] = post.tau_prior.ppf(u[low] / cum[0] * lower)
    rest = ~low
    j = np.clip(np.searchsorted(cum, u[rest], side="right") - 1, 0, len(cum) - 2)
    width = np.maximum(cum[j + 1] - cum[j], 1e-300)
    frac = np.clip((u[rest] - cum[j]) / width, 0.0, 1.0)
    tau[rest] = np.exp(post.edges[j] + frac * (post.edges[j + 1] - post.edges[j]))
    return tau


def exact_idata(post, effects, prior, seed: int, draws: int = DRAWS, chains: int = CHAINS):
    """Independent posterior draws from the exact engine as InferenceData (with all groups)."""
    from bayes_pip.engines.exact import conditional_moments
    from bayes_pip.engines.normal_nuts import conditional_theta_draws

    az = _az()
    rng = np.random.default_rng([seed, 5])
    shape = (chains, draws)
    tau = exact_tau_draws(post, rng.uniform(size=shape)).reshape(shape)
    m, var, _ = conditional_moments(post.y, post.v, tau.ravel(), post.mu_prior)
    mu = (m + np.sqrt(var) * rng.standard_normal(m.shape)).reshape(shape)
    theta = conditional_theta_draws(mu, tau, post.y, post.v, rng)
    theta_new = mu + tau * rng.standard_normal(shape)
    idata = az.from_dict(posterior={"mu": mu, "tau": tau, "theta": theta, "theta_new": theta_new},
                         coords=study_coords(effects), dims={"theta": ["study"]},
                         attrs={"engine": "exact", "draws": "independent (not MCMC)",
                                "seed": seed})
    return add_normal_groups(idata, effects, prior, seed)


def conjugate_idata(post, estimate: float, se: float, prior, seed: int, draws: int = DRAWS,
                    chains: int = CHAINS):
    """Independent draws of mu from the summary-level posterior, with its one observation."""
    az = _az()
    rng = np.random.default_rng([seed, 5])
    shape = (chains, draws)
    mu = post.post_mean + post.post_sd * rng.standard_normal(shape)
    loglik = -0.5 * (np.log(2 * math.pi * se**2) + (estimate - mu[..., None]) ** 2 / se**2)
    prior_mu = ({"mu": prior.mu.ppf(rng.uniform(size=shape))}
                if getattr(prior.mu, "proper", True) else None)
    coords = {"estimate": ["published pooled estimate"]}
    return az.from_dict(posterior={"mu": mu}, prior=prior_mu,
                        observed_data={"y": np.array([estimate])},
                        constant_data={"se": np.array([se])},
                        log_likelihood={"y": loglik}, coords=coords,
                        dims={"y": ["estimate"], "se": ["estimate"]},
                        attrs={"engine": "conjugate", "draws": "independent (not MCMC)",
                               "seed": seed})
