"""The exact normal-normal posterior for many meta-analyses at once (no Python loop over them).

The same model as :mod:`bayes_pip.engines.exact`: mu is integrated out analytically given tau,
and p(log tau | y) is integrated numerically. Per row:

1. One scan of log tau (57 points, log(s) - 40 ... log(s) + 30 in steps of 1.25 around the
   median within-study standard deviation s) finds the range where the density exceeds 1e-16
   of its largest value. The range starts no lower than tau^2 = 1e-8 min(v_i): below it
   p(y | tau) equals p(y | 0) to about 1e-8 relative, so the mass there is p(y | 0) times the
   prior's probability, carried by a node at tau = 0.
2. Adaptive Gauss-Kronrod quadrature over the range: it starts as four equal cells, each
   integrated by the 15-point Kronrod rule with the embedded 7-point Gauss rule beside it; while
   the sum over the cells of |Kronrod - Gauss| exceeds ``tol`` (default 1e-10) of the integral,
   the cell with the largest difference is halved. |Kronrod - Gauss| estimates the Gauss rule's
   error; the Kronrod result that is used is far more accurate. The cells gather where the
   likelihood turns (tau^2 near the v_i) and the prior cuts off; the count is reported per row
   (N_CELLS, typically 7 to 14 against the 200 uniform cells of the earlier design), and a row
   that has not met ``tol`` after MAX_CELLS cells gets an error instead of numbers.
3. Summaries from the cells' nodes, a mixture of the conditional normals of mu | tau: mean, sd,
   tail probabilities; quantiles of mu and of a new study's effect by safeguarded Halley
   iterations, started on the embedded Gauss rule's smaller mixture and finished on the full
   one; quantiles of tau from the holding cell's Legendre expansion, confirmed by Newton steps
   on the adaptively integrated partial cell; the normaliser gives the log marginal likelihood,
   and the mixture's density of mu at 0 the model with mu = 0 by Savage-Dickey (``mu_zero``
   integrates that model itself, for rows where the density is not accurate enough).

The data are padded ``(n_meta, k_max)`` arrays with a mask, as in the vectorised
DerSimonian-Laird core. The rows run in one compiled loop (numba, parallel over the machine's
cores, cached on disk); rows that share a prior set run together, and memory is bounded by
running the rows in blocks. Nodes with tau^2 below 1e-13 of the smallest within-study variance
are merged into the tau = 0 node in the summaries (their conditional normals are equal to
~1e-13).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from bayes_pip.engines.exact import (GAUSS_W, KRONROD_W, KRONROD_X, ExactPosterior,
                                     check_proper)
from bayes_pip.engines.exact_batch_kernels import (CUM0, LOG_ML, N_CELLS, N_FIXED, NK, QUAD_ERROR,
                                                   TOTAL, integrate_rows, scout_rows)
from bayes_pip.engines.tau_kernels import tau_prior_code
from bayes_pip.errors import InputError

TOL = 1e-10            # the quadrature's error estimate allowed, relative to the integral
MAX_CELLS = 64         # Gauss-Kronrod cells per row at most (15 nodes each)
# a cell's Legendre coefficients from its 15 Kronrod nodes' masses, n = 0 ... 11 (the rule is
# exact to degree 23, so to 2n): (2n + 1)/2 P_n(node); tau quantiles start from the expansion
LEGENDRE = np.array([(2 * n + 1) / 2 * special.eval_legendre(n, KRONROD_X) for n in range(12)])
UPPER_TAIL_MAX = 1e-10
BLOCK_ROWS = 20_000    # rows per block (memory: the outputs plus per-thread scratch)
QUANTILES = (0.025, 0.5, 0.975)


# ---------------------------------------------------------------------------------------------
# the Python side: input checks, priors grouped, blocks, the tails that need a prior's CDF
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchPosterior:
    """Exact posteriors of ``n`` meta-analyses: summaries per row, and (with ``store``) the
    quadrature nodes of every row. ``error`` says, per row, why it has no posterior ("" if none)."""

    y: np.ndarray            # (n, k_max), left-aligned
    v: np.ndarray
    k: np.ndarray
    mu_prior: tuple
    tau_prior: tuple
    quantiles: tuple
    summary: np.ndarray      # (n, N_FIXED + 3 len(quantiles)); NaN where error
    error: np.ndarray
    nodes: dict | None

    @property
    def n(self) -> int:
        return self.y.shape[0]

    def column(self, name: str) -> np.ndarray:
        nq = len(self.quantiles)
        block = {"mu": 0, "predict": 1, "tau": 2}
        if name in block:
            start = N_FIXED + block[name] * nq
            return self.summary[:, start:start + nq]
        return self.summary[:, globals()[name.upper()]]

    def row(self, i: int) -> ExactPosterior:
        """Meta-analysis ``i`` as the one-at-a-time engine's posterior object (needs ``store``)."""
        if self.error[i]:
            raise InputError(self.error[i])
        if self.nodes is None:
            raise ValueError("batch_posterior(..., store=True) keeps the nodes rows need")
        kr = int(self.k[i])
        nd = self.nodes
        nc = int(self.summary[i, N_CELLS])
        cells, nodes = slice(0, nc + 1), slice(0, nc * NK + 1)
        return ExactPosterior(y=self.y[i, :kr].copy(), v=self.v[i, :kr].copy(),
                              mu_prior=self.mu_prior[i], tau_prior=self.tau_prior[i],
                              edges=nd["edges"][i, cells], cum_edges=nd["cum_edges"][i, cells],
                              log_shift=float(nd["shift"][i]),
                              total=float(self.summary[i, TOTAL]), tau=nd["tau"][i, nodes],
                              weight=nd["weight"][i, nodes], mu_mean=nd["mu_mean"][i, nodes],
                              mu_var=nd["mu_var"][i, nodes], adaptive=True)


def _key(obj):
    try:
        hash(obj)
        return obj
    except TypeError:
        return repr(obj)


def _per_row_priors(n, prior):
    """One prior set (with ``.mu`` and ``.tau``) for every row, or a sequence of them."""
    if prior is None:
        raise InputError("exact_batch needs a prior: a prior set (with .mu and .tau) or one per row")
    if hasattr(prior, "mu") and hasattr(prior, "tau"):
        return [prior.mu] * n, [prior.tau] * n
    prior = list(prior)
    if len(prior) != n:
        raise InputError(f"{len(prior)} priors for {n} meta-analyses")
    return [p.mu for p in prior], [p.tau for p in prior]


def _left_aligned(y, v, mask):
    """Move each row's real studies to the front (the compiled loop reads the first k)."""
    order = np.argsort(~mask, axis=1, kind="stable")
    y = np.take_along_axis(y, order, 1)
    v = np.take_along_axis(v, order, 1)
    mask = np.take_along_axis(mask, order, 1)
    return np.where(mask, y, 0.0), np.where(mask, v, 1.0), mask.sum(axis=1)


def batch_posterior(y, v, mask=None, prior=None, quantiles=QUANTILES, store: bool = False,
                    tol: float = TOL, mu_zero: bool = False) -> BatchPosterior:
    """Exact posteriors of the meta-analyses in the rows of ``y``, ``v`` (padded, ``mask`` marks
    real studies; without it every finite cell is a study). Every row also gets its log marginal
    likelihood (column LOG_ML; NaN under an improper prior on mu), the number of quadrature cells
    it took (N_CELLS) and the quadrature's error estimate relative to the integral (QUAD_ERROR).
    ``tol``: the error estimate allowed (cells are halved until it is met, at most MAX_CELLS;
    a row that does not meet it gets an error).

    ``mu_zero``: the model with mu = 0 (no average effect) instead; only TOTAL and LOG_ML are
    computed (its marginal likelihood, for Bayes factors)."""
    y = np.atleast_2d(np.asarray(y, float))
    v = np.atleast_2d(np.asarray(v, float))
    if y.shape != v.shape or y.ndim != 2:
        raise InputError(f"y and v must be (n_meta, k_max) arrays of one shape, not {y.shape} "
                         f"and {v.shape}")
    mask = (np.isfinite(y) & np.isfinite(v) if mask is None
            else np.broadcast_to(np.asarray(mask, bool), y.shape))
    n = y.shape[0]
    mus, taus = _per_row_priors(n, prior)
    error = np.full(n, "", dtype=object)
    bad = np.any(mask & ~(np.isfinite(y) & np.isfinite(v) & (v > 0)), axis=1)
    error[bad] = "every study needs a finite effect and a positive, finite variance"
    y, v, k = _left_aligned(y, v, mask)
    error[k == 0] = "no studies"
    kmax = max(int(k.max()) if n else 1, 1)
    y = np.ascontiguousarray(y[:, :kmax])
    v = np.ascontiguousarray(v[:, :kmax])
    k = k.astype(np.int64)
    qs = np.asarray(quantiles, float)
    zqs = special.ndtri(qs)
    nq = len(qs)
    summary = np.full((n, N_FIXED + 3 * nq), np.nan)
    nn = MAX_CELLS * NK + 1
    nodes = None
    if store:
        nodes = {"edges": np.full((n, MAX_CELLS + 1), np.nan),
                 "cum_edges": np.full((n, MAX_CELLS + 1), np.nan),
                 "tau": np.full((n, nn), np.nan), "weight": np.full((n, nn), np.nan),
                 "mu_mean": np.full((n, nn), np.nan), "mu_var": np.full((n, nn), np.nan),
                 "shift": np.full(n, np.nan)}
    groups: dict = {}
    for i, pair in enumerate(zip(mus, taus)):
        groups.setdefault(_key(pair), []).append(i)
    for members in groups.values():
        members = np.asarray(members)
        mu_p, tau_p = mus[members[0]], taus[members[0]]
        for kk in np.unique(k[members]):
            try:
                check_proper(int(kk), mu_p, tau_p)
            except InputError as exc:
                sel = members[(k[members] == kk) & (error[members] == "")]
                error[sel] = str(exc)
        rows = members[error[members] == ""]
        for start in range(0, len(rows), BLOCK_ROWS):
            _run_block(rows[start:start + BLOCK_ROWS], y, v, k, mu_p, tau_p, tol, qs, zqs,
                       summary, nodes, error, mu_zero)
    # every row without a posterior says why (an extreme row can pass the scouting and still
    # give no finite summary, e.g. within-study variances of 1e300)
    wanted = [TOTAL, LOG_ML] if mu_zero else \
        [j for j in range(summary.shape[1]) if j != LOG_ML]   # LOG_ML: NaN if mu is improper
    silent = (error == "") & ~np.isfinite(summary[:, wanted]).all(axis=1)
    error[silent] = ("no finite posterior: the effects or variances are too extreme for the "
                     "quadrature (|y| up to %g, v from %g to %g)")
    for i in np.flatnonzero(silent):
        real = slice(0, int(k[i]))
        error[i] = error[i] % (np.abs(y[i, real]).max(), v[i, real].min(), v[i, real].max())
    summary[error != ""] = np.nan
    return BatchPosterior(y=y, v=v, k=k, mu_prior=tuple(mus), tau_prior=tuple(taus),
                          quantiles=tuple(float(q) for q in qs), summary=summary, error=error,
                          nodes=nodes)


def _prior_cdf(tau_p, tau):
    if not getattr(tau_p, "proper", True):   # improper uniform: the integral of 1 up to tau
        return np.asarray(tau, float)
    return np.asarray(tau_p.cdf(tau), float)


def _run_block(rows, y, v, k, mu_p, tau_p, tol, qs, zqs, summary, nodes, error, mu_zero):
    if mu_zero:
        w0, m0 = math.inf, 0.0
        log_w0 = 0.0
    elif mu_p.proper:
        w0, m0 = 1.0 / mu_p.sd**2, float(mu_p.mean)
        log_w0 = math.log(w0)
    else:
        w0, m0 = 0.0, 0.0
        log_w0 = math.nan      # no marginal likelihood under a flat prior on mu
    family, a, b, c = tau_prior_code(tau_p)
    yb, vb, kb = y[rows], v[rows], k[rows]
    sc = np.zeros((len(rows), 9))
    scout_rows(yb, vb, kb, w0, m0, family, a, b, c, sc)
    lo, hi, shift = sc[:, 0], sc[:, 1], sc[:, 2]
    at_bottom, at_top, dead = sc[:, 3] > 0, sc[:, 4] > 0, sc[:, 8] > 0
    error[rows[dead]] = "the prior on tau gives zero density everywhere the data allow"
    with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
        tail = np.where(at_bottom & ~dead,
                        np.exp(sc[:, 5] - shift) * _prior_cdf(tau_p, np.exp(np.where(dead, 0, lo))),
                        0.0)
        if getattr(tau_p, "proper", True):
            upper = np.exp(sc[:, 6] - shift) * (1.0 - _prior_cdf(tau_p, np.exp(hi)))
        else:
            upper = np.full(len(rows), np.inf)
        escaped = at_top & ~dead & ~(upper / sc[:, 7] < UPPER_TAIL_MAX)
    error[rows[escaped]] = ("the posterior of tau is not contained in the quadrature range; the "
                            "prior on tau is probably too vague (or improper) for this number of "
                            "studies")
    good = ~dead & ~escaped
    r = rows[good]
    if not len(r):
        return
    nq = len(qs)
    out = np.full((len(r), N_FIXED + 3 * nq), np.nan)
    nn = MAX_CELLS * NK + 1
    if nodes is not None:
        store = [np.full((len(r), MAX_CELLS + 1), np.nan) for _ in range(2)] + \
            [np.full((len(r), nn), np.nan) for _ in range(4)]
    else:
        store = [np.empty((1, 1))] * 6
    integrate_rows(y[r], v[r], k[r], w0, m0, family, a, b, c, lo[good], hi[good], shift[good],
                   tail[good], tol, MAX_CELLS, KRONROD_X, KRONROD_W, GAUSS_W, LEGENDRE, qs, zqs,
                   out, nodes is not None, *store)
    rough = ~(out[:, QUAD_ERROR] <= tol)
    error[r[rough]] = [f"the quadrature's error estimate ({e:.2g} of the integral) is above the "
                       f"tolerance {tol:g} after {MAX_CELLS} cells" for e in out[rough, QUAD_ERROR]]
    # log p(y): the kernel's log densities omit -k/2 log(2 pi) + log(w0)/2 (see exact_batch_kernels._moments)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, LOG_ML] = (shift[good] + np.log(out[:, TOTAL]) - 0.5 * k[r] * math.log(2 * math.pi)
                          + 0.5 * log_w0)
    # tau quantiles that fall in the prior-shaped lower tail (below the quadrature range)
    tq = out[:, N_FIXED + 2 * nq:]
    cum0 = out[:, CUM0]
    for j, q in enumerate(qs):
        low = np.isnan(tq[:, j])
        if low.any():
            lower = _prior_cdf(tau_p, np.exp(lo[good][low]))
            tq[low, j] = tau_p.ppf(q / cum0[low] * lower)
    summary[r] = out
    if nodes is not None:
        for name, arr in zip(("edges", "cum_edges", "tau", "weight", "mu_mean", "mu_var"), store):
            nodes[name][r] = arr
        nodes["shift"][r] = shift[good]
