"""Posterior draws (ArviZ InferenceData) answering the same questions as the exact engine."""

from __future__ import annotations

import numpy as np


class DrawQueries:
    """The posterior query grammar (quantile, cdf, sf, mean, sd, density) answered from draws:
    a subclass says which draws a target names, in ``values(target)``."""

    def values(self, target) -> np.ndarray:
        raise NotImplementedError

    def quantile(self, target, q):
        return float(np.quantile(self.values(target), q))

    def cdf(self, target, x):
        return float(np.mean(self.values(target) <= x))

    def sf(self, target, x):
        return float(np.mean(self.values(target) > x))

    def mean(self, target):
        return float(np.mean(self.values(target)))

    def sd(self, target):
        return float(np.std(self.values(target), ddof=1))

    def density(self, target, x):
        """Kernel density estimate from the draws (tau: reflected at 0)."""
        from scipy.stats import gaussian_kde

        draws = self.values(target)
        x = np.asarray(x, float)
        if target == "tau":
            kde = gaussian_kde(np.concatenate([draws, -draws]))
            return np.where(x >= 0, 2 * kde(x), 0.0)
        return gaussian_kde(draws)(x)


class DrawsPosterior(DrawQueries):
    """Posterior draws with the query grammar of :class:`bayes_pip.engines.base.Posterior`.

    Targets: "mu", "tau", "predict" (a new study's theta) and ("study", i) (shrunken theta_i).
    """

    def __init__(self, idata):
        post = idata.posterior
        self.draws = {
            "mu": post["mu"].values.ravel(),
            "tau": post["tau"].values.ravel(),
            "predict": post["theta_new"].values.ravel(),
        }
        self.theta = post["theta"].values.reshape(-1, post.sizes["study"])

    def values(self, target):
        if isinstance(target, tuple):
            return self.theta[:, target[1]]
        return self.draws[target]
