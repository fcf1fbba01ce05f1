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

import dataclasses
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
    y, v = np.asarray(y, dtype=float), np.asarray(v, dtype=float)
    if y.ndim > 1 and y.shape == v.shape and y.size // y.shape[-1] >= FUSED_MIN_ROWS:
        return _dersimonian_laird_fused(y, v, mask)
    y, v, mask = prepare(y, v, mask)
    fixed = inverse_variance_fixed(y, v, mask)
    w = np.where(mask, 1.0 / v, 0.0)
    tau2 = dl_tau2(fixed.q, w, fixed.df, mask)
    w_star = 1.0 / (v + tau2[..., None])
    return weighted_pooled(y, w_star, mask, "DL", tau2, fixed.q, fixed.df, fixed.k)


# From this many meta-analyses on, dersimonian_laird runs the fused kernel (bayes_pip.dl_fused):
# below it the NumPy core takes under ~40 ms here, less than loading the compiled kernel.
FUSED_MIN_ROWS = 100_000


def _dersimonian_laird_fused(y, v, mask) -> PooledResult:
    """The same estimator in one compiled pass per meta-analysis (equal to 1e-12, tests)."""
    from bayes_pip.dl_fused import fused_rows

    lead = y.shape[:-1]
    k_max = y.shape[-1]
    if mask is not None:
        mask = np.broadcast_to(mask, y.shape).reshape(-1, k_max)
    out = fused_rows(y.reshape(-1, k_max), v.reshape(-1, k_max), mask, Z_975)
    mu, se, tau2, q, z, p, i2, lo, hi, k, df = (c.reshape(lead) for c in out.T)
    return PooledResult("DL", mu, se, lo, hi, z, p, tau2, q, df.astype(int), i2, k.astype(int))


def mantel_haenszel(a, n1, c, n2, measure: str, y=None, v=None, mask=None,
                    rd_variance: str = "greenland-robins") -> PooledResult:
    """Mantel-Haenszel fixed-effect risk ratio, odds ratio or risk difference (RevMan 5 "M-H,
    Fixed").

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
    RD: w = n1 n2 / N, RD = sum(w (a/n1 - c/n2)) / sum w, Greenland-Robins variance
        var = sum((a b n2^3 + c d n1^3) / (n1 n2 N^2)) / (sum w)^2 (Greenland & Robins 1985,
        as RevMan 5); ``rd_variance="sato"``: Sato, Greenland & Robins (1989), as metafor rma.mh.
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
    elif measure == "RD":
        w_i = np.where(mask, n1 * n2 / total, 0.0)
        sw = np.sum(w_i, axis=-1)
        rd = np.sum(np.where(mask, (a * n2 - c * n1) / total, 0.0), axis=-1) / sw
        if rd_variance == "sato":
            p_ = np.sum(np.where(mask, c * (n1 / total) ** 2 - a * (n2 / total) ** 2
                                 + n1 * n2 * (n2 - n1) / (2 * total**2), 0.0), axis=-1)
            q_ = np.sum(np.where(mask, (a * (n2 - c) + c * (n1 - a)) / (2 * total), 0.0),
                        axis=-1)
            var = (rd * p_ + q_) / sw**2
        else:
            var = np.sum(np.where(mask, (a * b * n2**3 + c * d * n1**3)
                                  / (n1 * n2 * total**2), 0.0), axis=-1) / sw**2
    else:
        raise ValueError(f"Mantel-Haenszel pooling needs RR, OR or RD, not {measure}")
    mu = rd if measure == "RD" else np.log(sr / ss)
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


# ---------------------------------------------------------------------------------------------
# other tau^2 estimators, Q-profile intervals, Hartung-Knapp-Sidik-Jonkman (vectorised)
# ---------------------------------------------------------------------------------------------

TAU2_METHODS = ("DL", "REML", "PM")
ITERATIONS = 200   # fixed number of vectorised bisection / Fisher-scoring steps
TOLERANCE = 1e-10  # relative convergence required of every meta-analysis


class NotConverged(ArithmeticError):
    """An iterative tau^2 estimator did not converge within ITERATIONS steps."""


def generalised_q(y, v, tau2, mask):
    """Q(tau^2) = sum w_i (y_i - mu_w)^2 with w_i = 1/(v_i + tau^2): decreasing in tau^2."""
    w = np.where(mask, 1.0 / (v + tau2[..., None]), 0.0)
    mu = np.sum(w * y, axis=-1) / np.sum(w, axis=-1)
    return np.sum(w * (y - mu[..., None]) ** 2, axis=-1)


def solve_q(y, v, mask, target):
    """The tau^2 >= 0 where Q(tau^2) = target (0 when Q(0) <= target), by bisection.

    Q(tau^2) <= sum (y_i - ybar)^2 / tau^2, so the root lies below sum (y_i - ybar)^2 / target.
    """
    y, v, mask = prepare(y, v, mask)
    k = mask.sum(axis=-1)
    ybar = np.sum(np.where(mask, y, 0.0), axis=-1) / np.maximum(k, 1)
    spread = np.sum(np.where(mask, (y - ybar[..., None]) ** 2, 0.0), axis=-1)
    target = np.broadcast_to(np.asarray(target, float), spread.shape)
    low = np.zeros_like(spread)
    high = spread / np.maximum(target, 1e-300) * (1 + 1e-9) + 1e-300
    at_zero = generalised_q(y, v, low, mask) <= target
    for _ in range(ITERATIONS):
        mid = 0.5 * (low + high)
        above = generalised_q(y, v, mid, mask) > target
        low = np.where(above, mid, low)
        high = np.where(above, high, mid)
    root = np.where(at_zero, 0.0, 0.5 * (low + high))
    if np.any(~at_zero & (high - low > TOLERANCE * np.maximum(1.0, high))):
        raise NotConverged("Q-profile bisection did not converge")
    return root


def paule_mandel_tau2(y, v, mask=None):
    """Paule-Mandel: the tau^2 where the generalised Q equals its expectation k - 1."""
    y, v, mask = prepare(y, v, mask)
    k = mask.sum(axis=-1)
    return np.where(k > 1, solve_q(y, v, mask, np.maximum(k - 1, 1)), 0.0)


def reml_tau2(y, v, mask=None, start=None):
    """Restricted maximum likelihood by Fisher scoring (truncated at 0), vectorised.

    Notes
    -----
    With w_i = 1/(v_i + tau^2) and mu_w the weighted mean, the REML score and information are
    U = 1/2 [sum w_i^2 (y_i - mu_w)^2 - sum w_i + sum w_i^2 / sum w_i],
    I = 1/2 [sum w_i^2 - 2 sum w_i^3 / sum w_i + (sum w_i^2 / sum w_i)^2];
    tau^2 <- max(0, tau^2 + U / I) (as metafor ``rma(method="REML")``), from the DL estimate.
    """
    y, v, mask = prepare(y, v, mask)
    tau2 = dersimonian_laird(y, v, mask).tau2 if start is None else np.asarray(start, float)
    step = np.zeros_like(tau2)
    for _ in range(ITERATIONS):
        w = np.where(mask, 1.0 / (v + tau2[..., None]), 0.0)
        s1, s2, s3 = (np.sum(w**p, axis=-1) for p in (1, 2, 3))
        mu = np.sum(w * y, axis=-1) / s1
        score = 0.5 * (np.sum(w**2 * (y - mu[..., None]) ** 2, axis=-1) - s1 + s2 / s1)
        info = 0.5 * (s2 - 2 * s3 / s1 + (s2 / s1) ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.maximum(0.0, tau2 + np.where(info > 0, score / info, 0.0))
        step = np.abs(new - tau2)
        tau2 = new
        if np.all(step <= TOLERANCE * np.maximum(1.0, tau2)):
            break
    else:
        raise NotConverged("REML Fisher scoring did not converge")
    return tau2


def random_effects(y, v, mask=None, method: str = "DL") -> PooledResult:
    """Inverse-variance random effects with tau^2 from DL, REML or PM (metafor ``rma``)."""
    if method == "DL":
        return dersimonian_laird(y, v, mask)
    y, v, mask = prepare(y, v, mask)
    fixed = inverse_variance_fixed(y, v, mask)
    tau2 = {"REML": reml_tau2, "PM": paule_mandel_tau2}[method](y, v, mask)
    w_star = 1.0 / (v + tau2[..., None])
    result = weighted_pooled(y, w_star, mask, method, tau2, fixed.q, fixed.df, fixed.k)
    # I^2 from the estimated tau^2 (metafor); for DL this equals (Q - df) / Q
    i2 = np.where(fixed.k > 1, i2_from_tau2(tau2, v, mask), 0.0)
    return dataclasses.replace(result, i2=i2)


def q_profile_tau2_ci(y, v, mask=None, level: float = 0.95):
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007): the tau^2 values where the
    generalised Q equals the chi^2_{k-1} quantiles (1 + level)/2 (lower) and (1 - level)/2
    (upper); 0 where Q(0) is already below them (metafor ``confint``)."""
    y, v, mask = prepare(y, v, mask)
    df = np.maximum(mask.sum(axis=-1) - 1, 1)
    upper_q = special.chdtri(df, (1 - level) / 2)   # chi2 quantile (1 + level)/2
    lower_q = special.chdtri(df, (1 + level) / 2)   # chi2 quantile (1 - level)/2
    return solve_q(y, v, mask, upper_q), solve_q(y, v, mask, lower_q)


def typical_within_variance(v, mask=None):
    """Higgins & Thompson (2002): s^2 = (k - 1) sum w / ((sum w)^2 - sum w^2), w = 1/v."""
    v = np.asarray(v, float)
    mask = np.ones(v.shape, bool) if mask is None else np.broadcast_to(mask, v.shape)
    w = np.where(mask, 1.0 / v, 0.0)
    k = mask.sum(axis=-1)
    return (k - 1) * w.sum(axis=-1) / (w.sum(axis=-1) ** 2 - (w**2).sum(axis=-1))


def i2_from_tau2(tau2, v, mask=None):
    """I^2 (percent) implied by tau^2: 100 tau^2 / (tau^2 + s^2) (metafor ``confint``)."""
    s2 = typical_within_variance(v, mask)
    return 100.0 * tau2 / (tau2 + s2)


def hartung_knapp(result: PooledResult, y, v, mask=None):
    """Hartung-Knapp-Sidik-Jonkman: SE^2 = sum w* (y - mu)^2 / ((k - 1) sum w*), t(k - 1).

    The variance factor is not truncated at 1 (metafor ``test="knha"``; its ``test="adhoc"``
    would use max(1, factor)). Returns (se, ci_low, ci_high, p).
    """
    y, v, mask = prepare(y, v, mask)
    w = np.where(mask, 1.0 / (v + result.tau2[..., None]), 0.0)
    k = mask.sum(axis=-1)
    df = np.maximum(k - 1, 1)
    factor = np.sum(w * (y - result.mu[..., None]) ** 2, axis=-1) / df
    se = np.sqrt(factor / np.sum(w, axis=-1))
    t = special.stdtrit(df, 0.975)
    p = 2.0 * special.stdtr(df, -np.abs(result.mu / se))
    return se, result.mu - t * se, result.mu + t * se, p


def prediction_interval(result: PooledResult, distribution: str = "t"):
    """Approximate 95% prediction interval for a new study's effect.

    Notes
    -----
    ``distribution="t"`` (default; Higgins, Thompson & Spiegelhalter 2009, the Cochrane
    Handbook): mu +/- t_{k-2, 0.975} sqrt(tau^2 + SE^2), undefined (NaN) for k < 3.
    ``"z"`` (metafor ``predict`` with a z test): mu +/- z_{0.975} sqrt(tau^2 + SE^2).
    """
    if distribution == "z":
        half = Z_975 * np.sqrt(result.tau2 + result.se**2)
        return result.mu - half, result.mu + half
    df = np.asarray(result.k) - 2
    with np.errstate(invalid="ignore"):
        t = np.where(df >= 1, special.stdtrit(np.maximum(df, 1), 0.975), np.nan)
    half = t * np.sqrt(result.tau2 + result.se**2)
    return result.mu - half, result.mu + half
