"""Vectorised classical meta-analysis: DerSimonian-Laird, inverse-variance and Mantel-Haenszel.

Every function works on arrays of shape ``(..., k)``: the last axis holds the studies of one
meta-analysis and any leading axes index many meta-analyses at once. ``mask`` (same shape, bool)
marks real studies, so meta-analyses with different numbers of studies share one padded array.
There is no Python loop over meta-analyses. This module depends on NumPy and SciPy only.

References
----------
DerSimonian R, Laird N. Meta-analysis in clinical trials. Control Clin Trials 1986;7:177-88.
Deeks JJ, Higgins JPT. Statistical algorithms in Review Manager 5 (2010): inverse variance,
Mantel-Haenszel (Greenland-Robins and Robins-Breslow-Greenland variances), "M-H, Random".
Viechtbauer W. metafor, ``rma(yi, vi, method="DL")`` and ``rma.mh``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

Z_975 = 1.959963984540054  # scipy.stats.norm.ppf(0.975), as R's qnorm(0.975)


@dataclass(frozen=True)
class PooledResult:
    """Pooled estimates for one or many meta-analyses (arrays over the leading axes).

    ``mu``/``se``/``ci_low``/``ci_high``/``z``/``p`` are on the analysis scale (log for ratios).
    ``q`` is Cochran's Q, ``df`` = k - 1, ``i2`` is I^2 in percent, ``tau2`` the between-study
    variance (0 for fixed-effect methods), ``k`` the number of studies pooled.
    """

    method: str
    mu: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    z: np.ndarray
    p: np.ndarray
    tau2: np.ndarray
    q: np.ndarray
    df: np.ndarray
    i2: np.ndarray
    k: np.ndarray


def prepare(y, v, mask):
    """Broadcast inputs and zero out padded cells so sums over the study axis ignore them."""
    y = np.asarray(y, dtype=float)
    v = np.asarray(v, dtype=float)
    mask = np.ones(y.shape, dtype=bool) if mask is None else np.broadcast_to(mask, y.shape)
    y = np.where(mask, y, 0.0)
    v = np.where(mask, v, 1.0)
    return y, v, mask


def cochran_q(y, w, mu, mask):
    """Cochran's Q = sum w_i (y_i - mu)^2 over the real studies."""
    return np.sum(np.where(mask, w * (y - mu[..., None]) ** 2, 0.0), axis=-1)


def i_squared(q, df):
    """Higgins-Thompson I^2 = max(0, (Q - df) / Q) * 100; 0 when Q <= df or k = 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        i2 = np.where(q > df, (q - df) / q, 0.0) * 100.0
    return i2


def weighted_pooled(y, w, mask, method, tau2, q, df, k):
    """Inverse-variance weighted mean with weights w, its SE, Wald CI, z and two-sided p."""
    w = np.where(mask, w, 0.0)
    sw = np.sum(w, axis=-1)
    mu = np.sum(w * y, axis=-1) / sw
    se = 1.0 / np.sqrt(sw)
    z = mu / se
    p = 2.0 * special.ndtr(-np.abs(z))
    return PooledResult(method, mu, se, mu - Z_975 * se, mu + Z_975 * se, z, p, tau2, q, df,
                        i_squared(q, df), k)


def inverse_variance_fixed(y, v, mask=None) -> PooledResult:
    """Fixed (common) effect, inverse-variance weights w_i = 1/v_i (metafor method="EE")."""
    y, v, mask = prepare(y, v, mask)
    w = np.where(mask, 1.0 / v, 0.0)
    k = mask.sum(axis=-1)
    mu_fe = np.sum(w * y, axis=-1) / np.sum(w, axis=-1)
    q = cochran_q(y, w, mu_fe, mask)
    df = np.maximum(k - 1, 0)
    return weighted_pooled(y, w, mask, "IV-fixed", np.zeros_like(q), q, df, k)


def dl_tau2(q, w, df, mask):
    """DerSimonian-Laird moment estimator: tau^2 = max(0, (Q - df) / (S1 - S2/S1)).

    S1 = sum w_i, S2 = sum w_i^2 with fixed-effect weights w_i = 1/v_i. Zero when k = 1.
    """
    w = np.where(mask, w, 0.0)
    s1 = np.sum(w, axis=-1)
    s2 = np.sum(w**2, axis=-1)
    c = s1 - s2 / s1
    with np.errstate(divide="ignore", invalid="ignore"):
        tau2 = np.where(c > 0, np.maximum(0.0, (q - df) / c), 0.0)
    return tau2


def dersimonian_laird(y, v, mask=None) -> PooledResult:
    """DerSimonian-Laird random-effects meta-analysis, vectorised over leading axes.

    Notes
    -----
    w_i = 1/v_i, mu_FE = sum w_i y_i / sum w_i, Q = sum w_i (y_i - mu_FE)^2,
    tau^2 = max(0, (Q - (k-1)) / (sum w_i - sum w_i^2 / sum w_i)),
    w*_i = 1/(v_i + tau^2), mu = sum w*_i y_i / sum w*_i, SE = (sum w*_i)^(-1/2),
    95% CI mu +/- 1.96 SE, z = mu/SE, p = 2 Phi(-|z|).  Matches metafor ``rma(yi, vi, method="DL")``.

    Examples
    --------
    >>> r = dersimonian_laird([-1, .5, .5, .5, 1, 1, 2, 10], [1, 1, 2.4, .5, 1, 1, 1.2, 1.5])
    >>> round(float(r.tau2), 4), round(float(r.mu), 4)
    (7.6337, 1.7679)
    """
    y, v, mask = prepare(y, v, mask)
    fixed = inverse_variance_fixed(y, v, mask)
    w = np.where(mask, 1.0 / v, 0.0)
    tau2 = dl_tau2(fixed.q, w, fixed.df, mask)
    w_star = 1.0 / (v + tau2[..., None])
    return weighted_pooled(y, w_star, mask, "DL", tau2, fixed.q, fixed.df, fixed.k)


def mantel_haenszel(a, n1, c, n2, measure: str, y=None, v=None, mask=None) -> PooledResult:
    """Mantel-Haenszel fixed-effect risk ratio or odds ratio (RevMan 5 "M-H, Fixed").

    ``a``/``c`` are events and ``n1``/``n2`` totals in the PIP and control arms (no continuity
    correction: the M-H estimator does not need one). Q is computed from the per-study log effects
    ``y``, ``v`` (zero-cell corrected, as RevMan) around the M-H estimate.

    Notes
    -----
    RR: R = sum(a n2 / N) / sum(c n1 / N), Greenland-Robins variance
        var(log R) = sum((n1 n2 (a + c) - a c N) / N^2) / (sum(a n2 / N) sum(c n1 / N)).
    OR: R = sum(a d / N) / sum(b c / N), Robins-Breslow-Greenland variance with
        P = (a + d)/N, Q = (b + c)/N, R_i = a d / N, S_i = b c / N:
        var = sum(P R)/(2 (sum R)^2) + sum(P S + Q R)/(2 sum R sum S) + sum(Q S)/(2 (sum S)^2).
    """
    a, n1, c, n2 = (np.asarray(x, dtype=float) for x in (a, n1, c, n2))
    mask = np.ones(a.shape, dtype=bool) if mask is None else np.broadcast_to(mask, a.shape)
    a, c = np.where(mask, a, 0.0), np.where(mask, c, 0.0)
    n1, n2 = np.where(mask, n1, 1.0), np.where(mask, n2, 1.0)
    b, d = n1 - a, n2 - c
    total = n1 + n2
    k = mask.sum(axis=-1)
    if measure == "RR":
        r_i, s_i = a * n2 / total, c * n1 / total
        sr, ss = np.sum(r_i, axis=-1), np.sum(s_i, axis=-1)
        var = np.sum(np.where(mask, (n1 * n2 * (a + c) - a * c * total) / total**2, 0.0),
                     axis=-1) / (sr * ss)
    elif measure == "OR":
        r_i, s_i = a * d / total, b * c / total
        p_i, q_i = (a + d) / total, (b + c) / total
        sr, ss = np.sum(r_i, axis=-1), np.sum(s_i, axis=-1)
        var = (np.sum(p_i * r_i, axis=-1) / (2 * sr**2)
               + np.sum(p_i * s_i + q_i * r_i, axis=-1) / (2 * sr * ss)
               + np.sum(q_i * s_i, axis=-1) / (2 * ss**2))
    else:
        raise ValueError(f"Mantel-Haenszel pooling needs RR or OR, not {measure}")
    mu = np.log(sr / ss)
    se = np.sqrt(var)
    if y is None:
        q = np.full(mu.shape, np.nan)
    else:
        y, v, _ = prepare(y, v, mask)
        q = cochran_q(y, np.where(mask, 1.0 / v, 0.0), mu, mask)
    df = np.maximum(k - 1, 0)
    z = mu / se
    return PooledResult("MH-fixed", mu, se, mu - Z_975 * se, mu + Z_975 * se, z,
                        2.0 * special.ndtr(-np.abs(z)), np.zeros_like(mu), q, df,
                        i_squared(q, df), k)


def mantel_haenszel_random(a, n1, c, n2, measure: str, y, v, mask=None) -> PooledResult:
    """RevMan 5 "M-H, Random": DerSimonian-Laird with Q taken around the M-H estimate.

    Notes
    -----
    Q_MH = sum w_i (y_i - log R_MH)^2 with w_i = 1/v_i; tau^2 = max(0, (Q_MH - df)/(S1 - S2/S1));
    the pooled estimate is then the inverse-variance mean with weights 1/(v_i + tau^2).
    """
    fixed = mantel_haenszel(a, n1, c, n2, measure, y, v, mask)
    y, v, mask = prepare(y, v, mask)
    w = np.where(mask, 1.0 / v, 0.0)
    tau2 = dl_tau2(fixed.q, w, fixed.df, mask)
    w_star = 1.0 / (v + tau2[..., None])
    result = weighted_pooled(y, w_star, mask, "MH-random", tau2, fixed.q, fixed.df, fixed.k)
    return result


def prediction_interval(result: PooledResult):
    """Approximate 95% prediction interval for a new study's effect (Higgins et al. 2009).

    Notes
    -----
    mu +/- t_{k-2, 0.975} sqrt(tau^2 + SE^2); undefined (NaN) for k < 3.
    """
    df = np.asarray(result.k) - 2
    with np.errstate(invalid="ignore"):
        t = np.where(df >= 1, special.stdtrit(np.maximum(df, 1), 0.975), np.nan)
    half = t * np.sqrt(result.tau2 + result.se**2)
    return result.mu - half, result.mu + half
