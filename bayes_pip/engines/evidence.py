"""Marginal likelihoods of the four normal-normal models, Bayes factors and model averaging,
by one-dimensional quadrature (no Monte Carlo error).

Models for effects y_i with variances v_i (Roever 2020, Sections 2.6 and 2.11; Gronau et al.
2017 for the averaging over fixed/random x null/effect):

- ``RE``   y_i ~ N(mu, v_i + tau^2), mu ~ N(m0, s0^2), tau ~ p(tau)
- ``FE``   tau = 0, mu ~ N(m0, s0^2)
- ``RE0``  mu = 0, tau ~ p(tau)
- ``FE0``  mu = 0 and tau = 0

Notes
-----
With w_i = 1/(v_i + tau^2), w_0 = 1/s0^2, W = w_0 + sum w_i, m = (w_0 m0 + sum w_i y_i) / W:

    log p(y | tau)        = -k/2 log(2 pi) + 1/2 sum log w_i + 1/2 log w_0 - 1/2 log W
                            - 1/2 [w_0 (m0 - m)^2 + sum w_i (y_i - m)^2]        (mu integrated)
    log p(y | tau, mu = 0) = -k/2 log(2 pi) + 1/2 sum log w_i - 1/2 sum w_i y_i^2

and p(y) = int p(y | tau) p(tau) dtau, computed in log tau by composite 5-point Gauss-Legendre
over the range where the integrand lives (as the exact engine), plus the mass below it, where
p(y | tau) equals p(y | 0). Bayes factors are ratios of these; bayesmeta's ``$bayesfactor``
prints BF01 = p(y | null) / p(y | RE).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from bayes_pip.errors import InputError

LOG_2PI = math.log(2 * math.pi)
MODELS = ("FE0", "FE", "RE0", "RE")
MODEL_TITLES = {"FE0": "fixed effect, no effect (mu = 0, tau = 0)",
                "FE": "fixed effect (tau = 0)",
                "RE0": "random effects, no average effect (mu = 0)",
                "RE": "random effects"}


def log_lik_mu_integrated(y, v, tau, mu_prior) -> np.ndarray:
    """log p(y | tau) with mu integrated over its normal prior, for every tau (vector)."""
    tau2 = np.asarray(tau, float)[:, None] ** 2
    w = 1.0 / (v[None, :] + tau2)
    w0, m0 = 1.0 / mu_prior.sd**2, mu_prior.mean
    big_w = w0 + w.sum(axis=1)
    m = (w0 * m0 + (w * y[None, :]).sum(axis=1)) / big_w
    resid = (w * (y[None, :] - m[:, None]) ** 2).sum(axis=1) + w0 * (m0 - m) ** 2
    return (-0.5 * len(y) * LOG_2PI + 0.5 * np.log(w).sum(axis=1) + 0.5 * math.log(w0)
            - 0.5 * np.log(big_w) - 0.5 * resid)


def log_lik_mu_zero(y, v, tau) -> np.ndarray:
    """log p(y | tau, mu = 0) for every tau (vector)."""
    tau2 = np.asarray(tau, float)[:, None] ** 2
    w = 1.0 / (v[None, :] + tau2)
    return -0.5 * len(y) * LOG_2PI + 0.5 * np.log(w).sum(axis=1) - 0.5 * (w * y**2).sum(axis=1)


def log_integral_over_tau(log_lik, v, tau_prior, cells: int = 1500) -> float:
    """log of int p(y | tau) p(tau) dtau, ``log_lik`` a vectorised function of tau: the exact
    engine's quadrature (:func:`bayes_pip.engines.exact.tau_grid`), its normaliser."""
    from bayes_pip.engines.exact import tau_grid

    grid = tau_grid(log_lik, tau_prior, math.log(math.sqrt(float(np.median(v)))), cells,
                    unbounded="the marginal likelihood does not converge within the quadrature "
                              "range: the prior on tau is too vague (or improper) for a Bayes "
                              "factor")
    return grid.shift + math.log(grid.total)


@dataclass(frozen=True)
class Evidence:
    """Log marginal likelihoods of the four models (None where a model does not apply)."""

    log_ml: dict              # model -> log p(y | model)
    prior_probability: dict   # model -> prior model probability
    posterior_probability: dict

    @property
    def log_bf_effect(self) -> float:
        """log BF10 under random effects: log p(y | RE) / p(y | RE0) (mu free against 0)."""
        return self.log_ml["RE"] - self.log_ml["RE0"]

    @property
    def log_bf_heterogeneity(self) -> float:
        """log BF for tau > 0 against tau = 0 (mu free): log p(y | RE) / p(y | FE)."""
        return self.log_ml["RE"] - self.log_ml["FE"]

    @property
    def log_bf_effect_fixed(self) -> float:
        """log BF10 under the fixed-effect model: log p(y | FE) / p(y | FE0)."""
        return self.log_ml["FE"] - self.log_ml["FE0"]

    @property
    def bf_effect(self) -> float | None:
        """BF10 under random effects (None beyond 10^+-300: use :attr:`log_bf_effect`)."""
        return bf_value(self.log_bf_effect)

    @property
    def bf_heterogeneity(self) -> float | None:
        """BF for tau > 0 against tau = 0 (None beyond 10^+-300)."""
        return bf_value(self.log_bf_heterogeneity)


# a Bayes factor is given as a number while it stays between 10^-300 and 10^300; beyond that
# (overwhelming evidence: log BF 883 on an MD outcome with tight studies) only on the log scale
LOG_BF_LIMIT = 300 * math.log(10)


def bf_value(log_bf: float) -> float | None:
    """exp(log_bf), or None where it would overflow or underflow (|log10 BF| > 300)."""
    return math.exp(log_bf) if abs(log_bf) <= LOG_BF_LIMIT else None


def evidence(y, v, mu_prior, tau_prior, prior_probability: dict | None = None,
             random_effects: bool = True) -> Evidence:
    """Marginal likelihoods of the normal-normal models and posterior model probabilities
    (default: equal prior odds).

    ``random_effects=False`` (a published pooled estimate: one observation) compares the two
    fixed-effect models only.
    """
    y = np.atleast_1d(np.asarray(y, float))
    v = np.atleast_1d(np.asarray(v, float))
    if not getattr(mu_prior, "proper", True) or not math.isfinite(mu_prior.sd):
        raise InputError("Bayes factors need a proper prior on mu (a flat prior makes the "
                         "marginal likelihood arbitrary)")
    zero = np.zeros(1)
    log_ml = {"FE0": float(log_lik_mu_zero(y, v, zero)[0]),
              "FE": float(log_lik_mu_integrated(y, v, zero, mu_prior)[0])}
    if random_effects:
        if not getattr(tau_prior, "proper", True):
            raise InputError("Bayes factors need a proper prior on tau")
        log_ml["RE0"] = log_integral_over_tau(lambda t: log_lik_mu_zero(y, v, t), v, tau_prior)
        log_ml["RE"] = log_integral_over_tau(lambda t: log_lik_mu_integrated(y, v, t, mu_prior),
                                             v, tau_prior)
    return weigh(log_ml, prior_probability)


def weigh(log_ml: dict, prior_probability: dict | None = None) -> Evidence:
    """Posterior model probabilities from log marginal likelihoods (of FE0 and FE, or of all
    four models; default: equal prior odds)."""
    models = tuple(m for m in MODELS if m in log_ml)
    if prior_probability is None:
        prior_probability = {m: 1.0 / len(models) for m in models}
    logs = np.array([log_ml[m] + math.log(prior_probability[m]) for m in models])
    post = np.exp(logs - special.logsumexp(logs))
    return Evidence(log_ml, dict(prior_probability), dict(zip(models, map(float, post))))


class AveragedMu:
    """The model-averaged posterior of mu: a mixture of the effect models' posteriors and a point
    mass at 0 (the null models' posterior probability)."""

    def __init__(self, ev: Evidence, parts: dict):
        self.null = sum(p for m, p in ev.posterior_probability.items() if m.endswith("0"))
        self.parts = [(ev.posterior_probability[m], post) for m, post in parts.items()]

    def given_effect(self) -> "AveragedMu":
        """The posterior of mu given that there is an effect (the effect models only, their
        weights renormalised): a continuous distribution with a proper interval."""
        out = object.__new__(AveragedMu)
        total = sum(w for w, _ in self.parts)
        out.null, out.parts = 0.0, [(w / total, p) for w, p in self.parts]
        return out

    def cdf(self, x: float) -> float:
        return float(self.null * (x >= 0) + sum(w * p.cdf("mu", x) for w, p in self.parts))

    def sf(self, x: float) -> float:
        return float(self.null * (x < 0) + sum(w * p.sf("mu", x) for w, p in self.parts))

    def quantile(self, q: float) -> float:
        """The smallest x with CDF(x) >= q (the point mass at 0 can hold a quantile)."""
        above = self.cdf(0.0)
        below = above - self.null   # just below 0 (the other parts are continuous)
        if below < q <= above:
            return 0.0
        ends = [p.quantile("mu", min(max(q, 1e-12), 1 - 1e-12)) for _, p in self.parts] + [0.0]
        low, high = min(ends) - 1.0, max(ends) + 1.0
        while self.cdf(low) > q:
            low -= 2 * (high - low)
        while self.cdf(high) < q:
            high += 2 * (high - low)
        return float(optimize.brentq(lambda x: self.cdf(x) - q, low, high, xtol=1e-12,
                                     rtol=1e-12))


class NormalPosterior:
    """mu ~ N(mean, sd^2): the fixed-effect posterior with a normal prior on mu."""

    def __init__(self, mean: float, sd: float):
        self.m, self.s = mean, sd

    def cdf(self, target, x):
        return float(special.ndtr((x - self.m) / self.s))

    def sf(self, target, x):
        return float(special.ndtr((self.m - x) / self.s))

    def quantile(self, target, q):
        return float(self.m + self.s * special.ndtri(q))


def fixed_effect_posterior(y, v, mu_prior) -> NormalPosterior:
    """mu | y under the fixed-effect model: precision-weighted with the normal prior."""
    y = np.atleast_1d(np.asarray(y, float))
    w = 1.0 / np.atleast_1d(np.asarray(v, float))
    w0 = 1.0 / mu_prior.sd**2
    big_w = w0 + w.sum()
    return NormalPosterior(float((w0 * mu_prior.mean + (w * y).sum()) / big_w),
                           math.sqrt(1.0 / big_w))


def normal_evidence(payload, prior, random_effects: bool, mu_prior=None, nulls=None,
                    with_posteriors: bool = True):
    """The "marginal_likelihood" capability of the normal-normal engines: (Evidence, {"FE":
    posterior of mu, "RE": ...}) for NormalEffects under ``prior`` (its mu prior replaced by
    ``mu_prior`` when given). ``nulls`` (FE0, RE0 already computed) is accepted for the common
    signature; the normal-normal nulls cost little and are recomputed."""
    from bayes_pip.engines.exact import exact_posterior

    mu = prior.mu if mu_prior is None else mu_prior
    e = evidence(payload.y, payload.v, mu, prior.tau, random_effects=random_effects)
    if not with_posteriors:
        return e, {}
    parts = {"FE": fixed_effect_posterior(payload.y, payload.v, mu)}
    if random_effects:
        parts["RE"] = exact_posterior(payload.y, payload.v, mu, prior.tau)
    return e, parts
