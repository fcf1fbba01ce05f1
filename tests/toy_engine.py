"""A toy engine in one module, registered from outside the package (tests/test_payloads.py):
the normal-normal model on a brute-force grid in (mu, tau). It accepts normal effects only and
has no capabilities beyond fitting; nothing in bayes_pip names it."""

from __future__ import annotations

import numpy as np
from scipy import optimize, special

from bayes_pip.engines import payload_for
from bayes_pip.engines.base import EngineResult
from bayes_pip.payloads import NormalEffects

MU_POINTS, TAU_POINTS = 401, 300


def phi(z):
    return 0.5 * special.erfc(-np.asarray(z) / np.sqrt(2))


class GridPosterior:
    """Posterior grammar from weights on a (mu, tau) grid; every target is a normal mixture."""

    def __init__(self, y, v, prior):
        se = np.sqrt(v)
        lo, hi = y.min() - 4 * se.max() - 2, y.max() + 4 * se.max() + 2
        top = float(min(max(prior.tau.ppf(0.9999), 1.0), 50.0))
        mu = np.linspace(lo, hi, MU_POINTS)
        tau = np.linspace(top / TAU_POINTS / 2, top, TAU_POINTS)
        M, T = np.meshgrid(mu, tau, indexing="ij")
        var = v[None, None, :] + T[..., None] ** 2
        logl = -0.5 * np.sum(np.log(var) + (y - M[..., None]) ** 2 / var, axis=-1)
        logp = logl + prior.mu.logpdf(M) + prior.tau.logpdf(T)
        w = np.exp(logp - logp.max())
        self.w = (w / w.sum()).ravel()
        self.mu, self.tau, self.y, self.v = M.ravel(), T.ravel(), y, v

    def mixture(self, target):
        if target == "mu":
            return self.mu, np.zeros_like(self.mu)
        if target == "tau":
            return self.tau, np.zeros_like(self.tau)
        if target == "predict":
            return self.mu, self.tau
        i = target[1]
        b = self.v[i] / (self.v[i] + self.tau**2)
        return b * self.mu + (1 - b) * self.y[i], np.sqrt(self.v[i] * (1 - b))

    def cdf(self, target, x):
        m, s = self.mixture(target)
        z = np.where(s > 0, (x - m) / np.where(s > 0, s, 1), np.where(x >= m, np.inf, -np.inf))
        return float(np.sum(self.w * phi(z)))

    def sf(self, target, x):
        return 1.0 - self.cdf(target, x)

    def quantile(self, target, q):
        m, s = self.mixture(target)
        lo, hi = float(np.min(m - 10 * s)) - 1e-9, float(np.max(m + 10 * s)) + 1e-9
        return float(optimize.brentq(lambda x: self.cdf(target, x) - q, lo, hi, xtol=1e-7))

    def mean(self, target):
        m, _ = self.mixture(target)
        return float(np.sum(self.w * m))

    def sd(self, target):
        m, s = self.mixture(target)
        return float(np.sqrt(np.sum(self.w * (s**2 + m**2)) - self.mean(target) ** 2))

    def density(self, target, x):
        m, s = self.mixture(target)
        x = np.atleast_1d(np.asarray(x, float))[:, None]
        return np.sum(self.w * np.exp(-0.5 * ((x - m) / s) ** 2) / (s * np.sqrt(2 * np.pi)),
                      axis=1)


class ToyGridEngine:
    name = "toy"
    model = "normal-normal"
    help = "toy: normal-normal posterior on a brute-force (mu, tau) grid (a test plug-in)"
    packages = ("numpy", "scipy")
    accepts = (NormalEffects,)
    capabilities = frozenset()
    stochastic = "stochastic" in capabilities  # derived, never declared twice

    def fit(self, problem, prior, seed, settings=None, progress=False):
        data = payload_for(self, problem)
        return EngineResult(GridPosterior(data.y, data.v, prior),
                            settings={"quadrature": {"grid": [MU_POINTS, TAU_POINTS]}})

    def describe(self, fit):
        return "toy grid posterior (a test plug-in)"


ENGINE = ToyGridEngine()
