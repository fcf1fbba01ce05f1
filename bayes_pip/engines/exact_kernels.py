"""A compiled kernel of the exact engine for many studies: the conditional moments of mu and
the log likelihood at every tau node in one pass over the studies per node (the NumPy version
in :mod:`bayes_pip.engines.exact` builds nodes x studies arrays; at k = 10,000 it spent 7 s
there). The same arithmetic, term by term, in the same order within each node."""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, parallel=False)
def conditional_moments(y, v, tau, w0, m0):
    """m(tau), V(tau) and log p(y | tau) up to a constant at each tau (see
    exact._conditional_moments: the residual is centred on m, as there)."""
    n, k = len(tau), len(y)
    m = np.empty(n)
    var = np.empty(n)
    log_lik = np.empty(n)
    for j in range(n):
        t2 = tau[j] * tau[j]
        big_w = 0.0
        wy = 0.0
        log_det = 0.0
        for i in range(k):
            s = v[i] + t2
            w = 1.0 / s
            big_w += w
            wy += w * y[i]
            log_det += math.log(s)
        big_w += w0
        mj = (w0 * m0 + wy) / big_w
        resid = w0 * (m0 - mj) ** 2
        for i in range(k):
            d = y[i] - mj
            resid += d * d / (v[i] + t2)
        m[j] = mj
        var[j] = 1.0 / big_w
        log_lik[j] = -0.5 * log_det - 0.5 * math.log(big_w) - 0.5 * resid
    return m, var, log_lik
