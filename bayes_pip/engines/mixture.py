"""An equal-weight mixture of posteriors: the answer when the data are one of several tables.

With reconstructed data (:mod:`bayes_pip.reconstruct`) every table consistent with the printed
results is equally plausible, so the posterior is the equal-weight mixture of the posteriors
fitted to each table. It answers the same questions (:class:`bayes_pip.engines.base.Posterior`):
CDFs, survival functions, densities and means average over the parts; quantiles solve the
averaged CDF; the SD follows from the law of total variance.
"""

from __future__ import annotations

import math

import numpy as np


class MixturePosterior:
    """Equal-weight mixture of posteriors that share targets (the same studies)."""

    def __init__(self, parts):
        if not parts:
            raise ValueError("a mixture needs at least one posterior")
        self.parts = list(parts)

    def cdf(self, target, x: float) -> float:
        return float(np.mean([p.cdf(target, x) for p in self.parts]))

    def sf(self, target, x: float) -> float:
        return float(np.mean([p.sf(target, x) for p in self.parts]))

    def density(self, target, x) -> np.ndarray:
        return np.mean([np.asarray(p.density(target, x), float) for p in self.parts], axis=0)

    def mean(self, target) -> float:
        return float(np.mean([p.mean(target) for p in self.parts]))

    def sd(self, target) -> float:
        means = np.array([p.mean(target) for p in self.parts])
        second = np.array([p.sd(target) ** 2 for p in self.parts]) + means**2
        return math.sqrt(max(float(second.mean() - means.mean() ** 2), 0.0))

    def quantile(self, target, q: float) -> float:
        if len(self.parts) == 1:
            return self.parts[0].quantile(target, q)
        from scipy import optimize  # lazily: `list` and `dl` never need it

        ends = [p.quantile(target, q) for p in self.parts]
        low, high = min(ends), max(ends)   # the mixture quantile lies between the parts'
        if high - low <= 1e-14 * max(1.0, abs(low)):
            return float(low)
        return float(optimize.brentq(lambda x: self.cdf(target, x) - q, low, high,
                                     xtol=1e-12, rtol=1e-12))
