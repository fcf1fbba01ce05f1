"""Robustness of a classical random-effects analysis: leave one study out, influence
diagnostics and Egger's regression test for small-study effects. NumPy/SciPy only.

Every leave-one-out analysis runs at once: the k analyses are the rows of a (k, k) array whose
mask leaves out the diagonal (the DL core is vectorised over leading axes).

References
----------
Viechtbauer W, Cheung MWL. Outlier and influence diagnostics for meta-analysis. Res Synth
Methods 2010;1:112-125; metafor ``leave1out.rma.uni`` and ``influence.rma.uni`` (3.8-1).
Egger M, Davey Smith G, Schneider M, Minder C. Bias in meta-analysis detected by a simple,
graphical test. BMJ 1997;315:629-634; metafor ``regtest(res, model="lm", predictor="sei")``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from bayes_pip import dl
from bayes_pip.errors import InputError

EGGER_MIN_K = 10  # Cochrane Handbook 10.4.3.1: too little power with fewer studies


@dataclass(frozen=True)
class LeaveOneOut:
    """DL pooled results with study i left out (row i), analysis scale."""

    estimate: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    z: np.ndarray
    p: np.ndarray
    q: np.ndarray
    q_p: np.ndarray
    tau2: np.ndarray
    i2: np.ndarray


def leave_one_out(y, v) -> LeaveOneOut:
    """DerSimonian-Laird with each study left out in turn (metafor ``leave1out``)."""
    y = np.asarray(y, float)
    v = np.asarray(v, float)
    k = len(y)
    mask = ~np.eye(k, dtype=bool)
    r = dl.dersimonian_laird(np.broadcast_to(y, (k, k)), np.broadcast_to(v, (k, k)), mask)
    q_p = np.where(r.df > 0, special.chdtrc(np.maximum(r.df, 1), r.q), 1.0)
    return LeaveOneOut(r.mu, r.se, r.ci_low, r.ci_high, r.z, r.p, r.q, q_p, r.tau2, r.i2)


@dataclass(frozen=True)
class Influence:
    """Influence diagnostics of each study in an intercept-only DL model (metafor names)."""

    rstudent: np.ndarray   # externally standardised residual
    dffits: np.ndarray
    cook_d: np.ndarray
    cov_r: np.ndarray
    tau2_del: np.ndarray
    qe_del: np.ndarray
    hat: np.ndarray
    weight: np.ndarray     # percent
    dfbetas: np.ndarray
    influential: np.ndarray  # metafor's flag (any criterion below)


def influence(y, v) -> Influence:
    """Viechtbauer & Cheung (2010) diagnostics, as metafor ``influence.rma.uni`` for method DL.

    Notes
    -----
    With the full fit (mu, tau^2, Var(mu) = 1/sum w_i, w_i = 1/(v_i + tau^2)) and the fit
    without study i (mu_(i), tau^2_(i), Var(mu_(i))): hat h_i = w_i / sum w;
    rstudent = (y_i - mu_(i)) / sqrt(v_i + tau^2_(i) + Var(mu_(i)));
    DFFITS = (mu - mu_(i)) / sqrt(h_i (tau^2_(i) + v_i));
    DFBETAS = (mu - mu_(i)) / sqrt(1 / sum_j 1/(v_j + tau^2_(i))) (all k studies);
    Cook's D = (mu - mu_(i))^2 / Var(mu); COVRATIO = Var(mu_(i)) / Var(mu).
    Influential when |DFFITS| > 3 sqrt(1/(k - 1)), or P(chi2_1 <= D) > 0.5, or h_i > 3/k, or
    |DFBETAS| > 1.
    """
    y = np.asarray(y, float)
    v = np.asarray(v, float)
    k = len(y)
    full = dl.dersimonian_laird(y, v)
    w = 1.0 / (v + full.tau2)
    hat = w / w.sum()
    out = leave_one_out(y, v)
    diff = full.mu - out.estimate
    rstudent = (y - out.estimate) / np.sqrt(v + out.tau2 + out.se**2)
    dffits = diff / np.sqrt(hat * (out.tau2 + v))
    vb_del = 1.0 / np.sum(1.0 / (v[None, :] + out.tau2[:, None]), axis=1)
    dfbetas = diff / np.sqrt(vb_del)
    cook = diff**2 / full.se**2
    cov_r = out.se**2 / full.se**2
    flag = ((np.abs(dffits) > 3 * np.sqrt(1 / (k - 1))) | (stats.chi2.cdf(cook, 1) > 0.5)
            | (hat > 3 / k) | (np.abs(dfbetas) > 1))
    return Influence(rstudent, dffits, cook, cov_r, out.tau2, out.q, hat, 100 * hat, dfbetas,
                     flag)


@dataclass(frozen=True)
class Egger:
    """Egger's regression test: y_i on se_i, weights 1/v_i (analysis scale)."""

    slope: float          # the asymmetry coefficient (of se_i)
    t: float
    df: int
    p: float
    limit: float          # intercept: the estimate as se -> 0
    limit_ci_low: float
    limit_ci_high: float


def egger_test(y, v) -> Egger:
    """Weighted least squares of y_i on (1, se_i) with weights 1/v_i; t test with k - 2 df
    (metafor ``regtest(res, model="lm", predictor="sei")``)."""
    y = np.asarray(y, float)
    v = np.asarray(v, float)
    k = len(y)
    x = np.column_stack([np.ones(k), np.sqrt(v)])
    if np.linalg.matrix_rank(x) < 2:
        raise InputError(f"Egger's test regresses the effects on their standard errors, but all "
                         f"{k} studies have the same standard error ({np.sqrt(v[0]):.4g}); "
                         "there is no funnel to test")
    w = 1.0 / v
    xtwx = x.T @ (w[:, None] * x)
    beta = np.linalg.solve(xtwx, x.T @ (w * y))
    resid = y - x @ beta
    s2 = float(np.sum(w * resid**2) / (k - 2))
    cov = np.linalg.inv(xtwx) * s2
    se = np.sqrt(np.diag(cov))
    t = float(beta[1] / se[1])
    q = float(stats.t.ppf(0.975, k - 2))
    return Egger(float(beta[1]), t, k - 2, float(2 * stats.t.sf(abs(t), k - 2)), float(beta[0]),
                 float(beta[0] - q * se[0]), float(beta[0] + q * se[0]))
