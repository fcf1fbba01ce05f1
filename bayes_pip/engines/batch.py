"""Many meta-analyses at once, as an ``xarray.Dataset``: the exact normal-normal posterior's
summaries (computed by :mod:`bayes_pip.engines.exact_batch`) and, with ``evidence=True``, the
model comparison that ``bma`` gives one outcome at a time (:mod:`bayes_pip.engines.evidence`).

The four models are those of ``bma``: FE0 (mu = 0, tau = 0), FE (tau = 0), RE0 (mu = 0) and RE.
FE0 and FE have closed-form marginal likelihoods (normal linear algebra, vectorised over rows
here); RE is the exact posterior's normaliser and RE0 the same quadrature with mu fixed at 0.
As in ``bma``, a row with one study compares FE0 and FE only (heterogeneity cannot be tested),
prior model probabilities are equal, and the model-averaged P(benefit) is
p(FE | y) P(benefit | FE) + p(RE | y) P(benefit | RE): the null models' point mass at 0 is not
a benefit.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from bayes_pip.engines.evidence import LOG_2PI, MODELS
from bayes_pip.engines.exact_batch import (MAX_CELLS, QUANTILES, TOL, BatchPosterior,
                                           batch_posterior)
from bayes_pip.engines.exact_batch_kernels import (DENSITY0_ERROR, LOG_DENSITY0, LOG_ML, MU_MEAN,
                                                   MU_SD, N_CELLS, P_MU_ABOVE, P_MU_BELOW,
                                                   P_NEW_ABOVE, P_NEW_BELOW, QUAD_ERROR,
                                                   TAU_MEAN)
from bayes_pip.errors import InputError

TOL_RANGE = (1e-13, 1e-4)   # tolerances a caller may ask for
# Savage-Dickey for RE0 where the posterior density of mu at 0 is this accurate (relative
# difference of its Kronrod and Gauss mixtures); elsewhere RE0 is integrated itself
DENSITY0_ACCEPT = 1e-8


def _row_sum(a: np.ndarray) -> np.ndarray:
    """Sums along rows, added in order: a row's sum does not depend on the other rows or on
    the padding (NumPy's sum may group the terms by the array's shape)."""
    return np.cumsum(a, axis=1)[:, -1]


def fixed_effect_rows(post: BatchPosterior):
    """log p(y | FE0), log p(y | FE) and the FE posterior of mu (mean, sd) of every row, from
    the batch's left-aligned arrays (the first k cells of a row are its studies)."""
    y, v, k = post.y, post.v, post.k
    real = np.arange(y.shape[1])[None, :] < k[:, None]
    w = np.where(real, 1.0 / v, 0.0)
    log_w = np.where(real, np.log(np.where(real, v, 1.0)), 0.0)    # -log w of real cells
    mean0 = np.array([p.mean for p in post.mu_prior], float)
    w0 = np.array([1.0 / p.sd**2 for p in post.mu_prior], float)
    # effects too large to square (|y| ~ 1e300) overflow quietly: such a row has no posterior
    # either, and its error says why
    with np.errstate(over="ignore", invalid="ignore"):
        big_w = w0 + _row_sum(w)
        m = (w0 * mean0 + _row_sum(w * y)) / big_w
        base = -0.5 * k * LOG_2PI - 0.5 * _row_sum(log_w)
        fe0 = base - 0.5 * _row_sum(w * y**2)
        resid = _row_sum(w * (y - m[:, None]) ** 2) + w0 * (mean0 - m) ** 2
        fe = base + 0.5 * np.log(w0) - 0.5 * np.log(big_w) - 0.5 * resid
    return fe0, fe, m, 1.0 / np.sqrt(big_w)


def _require_proper(post: BatchPosterior):
    first = {}
    for i, pair in enumerate(zip(post.mu_prior, post.tau_prior)):   # each prior pair once
        first.setdefault((id(pair[0]), id(pair[1])), (i, pair))
    for i, (mu_p, tau_p) in sorted(first.values(), key=lambda item: item[0]):
        if not getattr(mu_p, "proper", True) or not math.isfinite(mu_p.sd):
            raise InputError(f"meta-analysis {i}: Bayes factors need a proper prior on mu (a "
                             "flat prior makes the marginal likelihood arbitrary)")
        if not getattr(tau_p, "proper", True):
            rows = [j for j, t in enumerate(post.tau_prior) if t is tau_p and post.k[j] > 1]
            if rows:
                raise InputError(f"meta-analysis {rows[0]}: Bayes factors need a proper prior "
                                 "on tau")


def batch_evidence(post: BatchPosterior, lower: np.ndarray, tol: float = TOL) -> dict:
    """The model comparison of every row of ``post`` (rows with an error stay NaN): arrays
    log_ml and posterior_probability (n, 4; models in ``evidence.MODELS`` order), the three log
    Bayes factors, the model-averaged P(benefit) (``lower``: benefit is mu < 0) and p_null."""
    _require_proper(post)
    n = post.n
    error = post.error.copy()
    log_ml = np.full((n, len(MODELS)), np.nan)
    fe0, fe, m, s = fixed_effect_rows(post)
    log_ml[:, 0], log_ml[:, 1] = fe0, fe
    re = np.flatnonzero((post.k > 1) & (error == ""))
    log_ml[re, 3] = post.summary[re, LOG_ML]
    # RE0 by Savage-Dickey: p(y | RE0) = p(y | RE) p(mu = 0 | y, RE) / p(mu = 0) (mu and tau
    # independent a priori), where the posterior density at 0 is accurate (DENSITY0_ACCEPT)
    mu_mean = np.array([float(p.mean) for p in post.mu_prior])
    mu_sd = np.array([float(p.sd) for p in post.mu_prior])
    log_prior0 = -0.5 * (mu_mean / mu_sd) ** 2 - np.log(mu_sd) - 0.5 * LOG_2PI
    dickey = post.summary[re, DENSITY0_ERROR] <= DENSITY0_ACCEPT
    log_ml[re[dickey], 2] = (post.summary[re[dickey], LOG_ML]
                             + post.summary[re[dickey], LOG_DENSITY0] - log_prior0[re[dickey]])
    direct = re[~dickey]
    if len(direct):
        pairs = [_pair(post, i) for i in direct]
        null = batch_posterior(post.y[direct], post.v[direct],
                               np.arange(post.y.shape[1])[None, :] < post.k[direct, None],
                               pairs, quantiles=(), tol=tol, mu_zero=True)
        log_ml[direct, 2] = null.summary[:, LOG_ML]
        failed = null.error != ""
        error[direct[failed]] = ["the model with mu = 0: " + e for e in null.error[failed]]
    log_ml[error != ""] = np.nan
    single = post.k == 1
    log_ml[single, 2:] = np.nan
    prior = np.where(single, 0.5, 0.25)[:, None]
    with np.errstate(invalid="ignore"):
        logs = np.where(np.isnan(log_ml), -np.inf, log_ml + np.log(prior))
        top = special.logsumexp(logs, axis=1, keepdims=True)
        prob = np.exp(logs - top)
    prob[error != ""] = np.nan
    prob[single, 2:] = np.nan     # not compared with one study
    p_fe = np.where(lower, special.ndtr(-m / s), special.ndtr(m / s))
    p_re = np.where(lower, post.summary[:, P_MU_BELOW], post.summary[:, P_MU_ABOVE])
    averaged = prob[:, 1] * p_fe + np.where(single, 0.0, prob[:, 3] * np.nan_to_num(p_re))
    averaged[error != ""] = np.nan
    return {"log_ml": log_ml, "posterior_probability": prob,
            "log_bf_effect": log_ml[:, 3] - log_ml[:, 2],
            "log_bf_heterogeneity": log_ml[:, 3] - log_ml[:, 1],
            "log_bf_effect_fixed": log_ml[:, 1] - log_ml[:, 0],
            "p_benefit_averaged": averaged, "p_null": prob[:, 0] + np.nan_to_num(prob[:, 2]),
            "error": error}


def _pair(post, i):
    from types import SimpleNamespace

    return SimpleNamespace(mu=post.mu_prior[i], tau=post.tau_prior[i])


def check_tol(tol) -> None:
    """Refuse a quadrature tolerance outside TOL_RANGE (one line, for the command line too)."""
    ok = isinstance(tol, (float, int, np.floating, np.integer)) and not isinstance(tol, bool)
    if not (ok and TOL_RANGE[0] <= float(tol) <= TOL_RANGE[1]):
        raise InputError(f"tol={tol!r}: give the quadrature's relative error tolerance as a "
                         f"number from {TOL_RANGE[0]:g} to {TOL_RANGE[1]:g}")


def quadrature_label(tol: float) -> str:
    return (f"adaptive 15-point Gauss-Kronrod cells in log tau per meta-analysis, halved until "
            f"the error estimate is at most {float(tol):g} of the integral (at most {MAX_CELLS} "
            "cells)")


def exact_batch(y, v, mask=None, prior=None, benefit="lower", quantiles=QUANTILES,
                evidence: bool = False, tol: float = TOL):
    """Exact normal-normal posteriors of many meta-analyses at once, as an ``xarray.Dataset``.

    ``y``, ``v``: (n_meta, k_max) effects and within-study variances on the analysis scale (log for
    ratios), padded; ``mask`` marks real studies (default: the finite cells). ``prior``: a prior
    set (anything with ``.mu`` and ``.tau``, e.g. ``bp.prior_sets`` resolved for an outcome) or a
    sequence of them, one per row. ``benefit``: "lower" or "higher" (one, or one per row): the
    direction of benefit for P(benefit). ``tol``: the quadrature's error estimate allowed per
    row, relative to the integral (default 1e-10; the adaptive cells are halved until it is met).

    Returns variables over ``meta`` (and ``quantile``): k, mu_mean, mu_sd, mu, tau, theta_new
    (a new study's effect), tau_mean, p_benefit, p_benefit_new, and error ("" where the row has
    a posterior; otherwise why not, and NaN values), quadrature_cells and quadrature_error
    (the cells a row took and its error estimate). With ``evidence=True`` (proper priors
    only), also log_ml and posterior_probability over ``model`` (FE0, FE, RE0, RE; equal prior
    probabilities; a row with one study compares FE0 and FE only), log_bf_effect (RE against
    RE0), log_bf_heterogeneity (RE against FE), log_bf_effect_fixed (FE against FE0),
    p_benefit_averaged and p_null: what ``bma`` gives one outcome at a time.

    Examples
    --------
    >>> import numpy as np
    >>> from bayes_pip.priors import Normal, HalfNormal
    >>> from types import SimpleNamespace
    >>> prior = SimpleNamespace(mu=Normal(0, 4), tau=HalfNormal(0.5))
    >>> out = exact_batch([[-2.31, -1.26]], [[0.359, 0.412]], prior=prior, evidence=True)
    >>> round(float(out.mu.sel(quantile=0.5)[0]), 2)
    -1.78
    >>> round(float(out.log_bf_effect[0]), 3)
    2.499
    """
    import xarray as xr

    check_tol(tol)
    post = batch_posterior(y, v, mask, prior, quantiles, tol=float(tol))
    n = post.n
    direction = np.broadcast_to(np.asarray(benefit, dtype=object), (n,))
    bad = [d for d in set(direction.tolist()) if d not in ("lower", "higher")]
    if bad:
        raise InputError(f"benefit must be 'lower' or 'higher', not {bad[0]!r}")
    lower = direction == "lower"
    s = post.summary
    coords = {"meta": np.arange(n), "quantile": list(post.quantiles)}
    data = {"k": ("meta", post.k),
            "mu_mean": ("meta", s[:, MU_MEAN]), "mu_sd": ("meta", s[:, MU_SD]),
            "mu": (("meta", "quantile"), post.column("mu")),
            "theta_new": (("meta", "quantile"), post.column("predict")),
            "tau": (("meta", "quantile"), post.column("tau")),
            "tau_mean": ("meta", s[:, TAU_MEAN]),
            "p_benefit": ("meta", np.where(lower, s[:, P_MU_BELOW], s[:, P_MU_ABOVE])),
            "p_benefit_new": ("meta", np.where(lower, s[:, P_NEW_BELOW], s[:, P_NEW_ABOVE])),
            "quadrature_cells": ("meta", s[:, N_CELLS]),
            "quadrature_error": ("meta", s[:, QUAD_ERROR])}
    error = post.error
    if evidence:
        e = batch_evidence(post, lower, float(tol))
        error = e.pop("error")
        coords["model"] = list(MODELS)
        for name, arr in e.items():
            data[name] = (("meta", "model") if arr.ndim == 2 else "meta", arr)
        for name in list(data):
            if name != "k":
                data[name][1][error != ""] = np.nan
    data["error"] = ("meta", error.astype(str))
    return xr.Dataset(
        data, coords=coords,
        attrs={"engine": "exact (batched)", "model": "normal-normal",
               "quadrature": quadrature_label(tol),
               "model_prior_probability": "equal (1/4 each; 1/2 for FE0 and FE with one study)"
               if evidence else ""})
