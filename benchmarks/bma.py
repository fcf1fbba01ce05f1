"""Bayes factors in-process: `bma` on Crins 2014 (k = 6) against adaptive quadrature, one run.

    python benchmarks/bma.py

1. bayes_pip's ``bma_outcome`` (four marginal likelihoods by Gauss-Legendre quadrature in
   log tau, the exact posterior and the model-averaged quantiles), median of 20 calls.
2. The obvious alternative for the two random-effects marginal likelihoods alone: scipy's
   adaptive ``quad`` over tau of the multivariate normal density of y (as tests/test_bma.py).
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
from scipy import integrate, stats

from bayes_pip.checks import bma_outcome
from bayes_pip.classical import classical_analysis
from bayes_pip.data import load_dataset


def main() -> None:
    ds = load_dataset("data/crins2014")
    bma_outcome(ds, "acute_rejection")  # warm-up (imports)
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        b = bma_outcome(ds, "acute_rejection")
        times.append(time.perf_counter() - t0)
    ours = statistics.median(times)
    es = classical_analysis(ds, "acute_rejection").effects
    y, v = es.y, es.v

    def integrand(tau, mu_sd):
        cov = np.diag(v + tau**2) + mu_sd**2 * np.ones((len(y), len(y)))
        return stats.multivariate_normal(np.zeros(len(y)), cov).pdf(y) * 2 / (
            0.5 * math.sqrt(2 * math.pi)) * math.exp(-tau**2 / (2 * 0.25))

    t0 = time.perf_counter()
    for mu_sd in (4.0, 0.0):
        integrate.quad(integrand, 0, np.inf, args=(mu_sd,), epsrel=1e-10, limit=400)
    quad = time.perf_counter() - t0
    print(f"bma acute_rejection (k = 6): BF10 {b.bf_effect:.1f}, {ours * 1000:.1f} ms per call "
          f"in-process (median of 20)")
    print(f"scipy adaptive quad, the two random-effects marginal likelihoods only: "
          f"{quad * 1000:.0f} ms; bayes_pip is {quad / ours:.1f}x faster and also gives the "
          "posterior and the averaged quantiles")


if __name__ == "__main__":
    main()
