"""Fused DerSimonian-Laird kernel (numba): one pass over each meta-analysis, no temporaries.

:func:`bayes_pip.dl.dersimonian_laird` calls it for large batches (at least
``bayes_pip.dl.FUSED_MIN_ROWS`` meta-analyses), where the NumPy core's temporary arrays dominate;
the two are equal to 1e-12 (tests). Parallel over the machine's cores; compiled on first use and
cached on disk by numba. Imports nothing from the package, so the DL core can call it.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, parallel=True)
def dl_rows(y, v, mask, use_mask, z975, out):
    """Per row: mu, se, tau2, Q, z, p, I^2, CI low, CI high, k, df (the PooledResult fields).
    Without ``use_mask`` every cell is a study (``mask`` is not read)."""
    n = y.shape[0]
    kmax = y.shape[1]
    for i in numba.prange(n):
        s1 = 0.0
        s2 = 0.0
        sy = 0.0
        k = 0
        for j in range(kmax):
            if not use_mask or mask[i, j]:
                w = 1.0 / v[i, j]
                s1 += w
                s2 += w * w
                sy += w * y[i, j]
                k += 1
        mu_fe = sy / s1 if s1 > 0 else math.nan
        q = 0.0
        for j in range(kmax):
            if not use_mask or mask[i, j]:
                d = y[i, j] - mu_fe
                q += d * d / v[i, j]
        df = max(k - 1, 0)
        c = s1 - s2 / s1 if s1 > 0 else 0.0
        tau2 = 0.0
        if c > 0.0 and q > df:
            tau2 = (q - df) / c
        sw = 0.0
        swy = 0.0
        for j in range(kmax):
            if not use_mask or mask[i, j]:
                w = 1.0 / (v[i, j] + tau2)
                sw += w
                swy += w * y[i, j]
        mu = swy / sw if sw > 0 else math.nan
        se = 1.0 / math.sqrt(sw) if sw > 0 else math.inf
        z = mu / se
        out[i, 0] = mu
        out[i, 1] = se
        out[i, 2] = tau2
        out[i, 3] = q
        out[i, 4] = z
        out[i, 5] = math.erfc(abs(z) / math.sqrt(2.0))  # 2 Phi(-|z|)
        out[i, 6] = (q - df) / q * 100.0 if q > df else 0.0
        out[i, 7] = mu - z975 * se
        out[i, 8] = mu + z975 * se
        out[i, 9] = k
        out[i, 10] = df


def fused_rows(y, v, mask, z975: float) -> np.ndarray:
    """(n, 11) array of the kernel's per-row results for (n, k_max) inputs (``mask`` None:
    every cell is a study)."""
    y = np.ascontiguousarray(y, dtype=float)
    v = np.ascontiguousarray(v, dtype=float)
    use_mask = mask is not None
    mask = (np.ascontiguousarray(mask, dtype=np.bool_) if use_mask
            else np.ones((1, 1), dtype=np.bool_))
    out = np.empty((y.shape[0], 11))
    dl_rows(y, v, mask, use_mask, z975, out)
    return out
