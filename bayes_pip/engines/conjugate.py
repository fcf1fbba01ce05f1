"""Summary level: the published pooled estimate as a normal likelihood, closed-form posterior.

Used when an outcome has only the review's pooled result: the posterior of the pooled effect
under a normal prior is conjugate. A pooled estimate carries no information on tau, so there is
no tau, no prediction interval and no shrinkage, and no prior on tau is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from bayes_pip.engines import idata as idata_groups
from bayes_pip.engines import payload_for
from bayes_pip.engines.base import EngineResult, Problem
from bayes_pip.payloads import NormalEffects

Z_975 = 1.959963984540054


def se_from_ci(ci_low: float, ci_high: float) -> float:
    """SE on the analysis scale recovered from a 95% CI on that scale: (high - low) / (2 z_0.975)."""
    return (ci_high - ci_low) / (2 * Z_975)


@dataclass(frozen=True)
class NormalPosterior:
    """Conjugate posterior of mu given one normal estimate y (SE s) and a Normal(m0, s0^2) prior.

    Notes
    -----
    precision = 1/s^2 + 1/s0^2, mean = (y/s^2 + m0/s0^2) / precision, sd = precision^(-1/2)
    (flat prior: mean = y, sd = s). Only the target "mu" exists: a pooled estimate carries no
    information on tau, so there is no prediction interval and no shrinkage.
    """

    post_mean: float
    post_sd: float

    def check(self, target):
        if target != "mu":
            raise ValueError("a summary-level posterior has only mu")

    def cdf(self, target, x):
        self.check(target)
        return float(special.ndtr((x - self.post_mean) / self.post_sd))

    def sf(self, target, x):
        self.check(target)
        return float(special.ndtr((self.post_mean - x) / self.post_sd))

    def quantile(self, target, q):
        self.check(target)
        return float(self.post_mean + self.post_sd * special.ndtri(q))

    def mean(self, target):
        self.check(target)
        return self.post_mean

    def sd(self, target):
        self.check(target)
        return self.post_sd

    def density(self, target, x):
        self.check(target)
        z = (np.asarray(x, float) - self.post_mean) / self.post_sd
        return np.exp(-0.5 * z**2) / (self.post_sd * math.sqrt(2 * math.pi))


def summary_posterior(y: float, se: float, mu_prior) -> NormalPosterior:
    """Posterior of the pooled effect from a published estimate ``y`` with standard error ``se``."""
    if not getattr(mu_prior, "proper", True):
        return NormalPosterior(float(y), float(se))
    precision = 1 / se**2 + 1 / mu_prior.sd**2
    mean = (y / se**2 + mu_prior.mean / mu_prior.sd**2) / precision
    return NormalPosterior(float(mean), float(math.sqrt(1 / precision)))


def conjugate_idata(post, estimate: float, se: float, prior, seed: int,
                    draws: int = idata_groups.DRAWS, chains: int = idata_groups.CHAINS):
    """Independent draws of mu from the summary-level posterior, with its one observation."""
    az = idata_groups.az_module()
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


class ConjugateEngine:
    """Closed-form normal-normal posterior of the pooled effect at summary level."""

    name = "conjugate"
    model = "normal-normal"
    help = "conjugate: closed-form posterior of the published pooled estimate (summary level)"
    packages = ("numpy", "scipy", "pandas")
    accepts = (NormalEffects,)   # the published pooled estimate: one effect with its variance
    capabilities = frozenset({"marginal_likelihood"})
    stochastic = "stochastic" in capabilities  # derived, never declared twice

    def fit(self, problem: Problem, prior, seed=None, settings=None, progress=False
            ) -> EngineResult:
        payload_for(self, problem)  # refuses data it cannot fit
        return EngineResult(summary_posterior(problem.estimate, problem.se, prior.mu))

    def evidence(self, payload, prior, random_effects, mu_prior=None, nulls=None,
                 with_posteriors=True):
        """Log marginal likelihoods of FE0, FE (RE0, RE) and the posteriors of mu given an
        effect (capability "marginal_likelihood"): :func:`evidence.normal_evidence`."""
        from bayes_pip.engines.evidence import normal_evidence

        return normal_evidence(payload, prior, random_effects, mu_prior, nulls, with_posteriors)

    def describe(self, fit) -> str:
        return "closed-form normal-normal (conjugate) posterior"


ENGINE = ConjugateEngine()
