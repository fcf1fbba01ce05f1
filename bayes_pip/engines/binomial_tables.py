"""Step 1 of the exact binomial-normal engine (engines/exact_binomial.py): each study's
likelihood of its own effect, g_i(theta), tabulated and splined, and the study likelihoods
L_i(mu, tau) on a (mu, tau) grid through the compiled kernels (engines/binomial_kernels.py)."""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass

import numpy as np
from scipy import special

from bayes_pip.engines.splines import not_a_knot

THETA_POINTS = 1201      # grid of g_i(theta) per study
THETA_STEP = 0.05        # largest step of that grid (analysis scale)
TAU_FLOOR = 1e-4         # below tau = 1e-4 x the smallest study SE, L(mu, tau) = L(mu, 0)
GH_MAIN = np.polynomial.hermite.hermgauss(24)
GH_CHECK = np.polynomial.hermite.hermgauss(12)
LOG_2PI = math.log(2 * math.pi)


_LOCK = threading.Lock()


class SerialKernels:
    """The compiled kernels behind one lock: they run their loops on every core (numba's
    parallel ranges), and numba's fallback threading layer (workqueue, where OpenMP and TBB are
    missing) aborts the process when two threads enter it at once; one caller at a time keeps
    them safe to call from threads."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        kernel = getattr(self._module, name)

        def call(*args):
            with _LOCK:
                return kernel(*args)
        return call


@functools.cache
def kernels():
    """The compiled kernels, imported on first use (so that `list` and `--help` never load
    numba)."""
    from bayes_pip.engines import binomial_kernels

    return SerialKernels(binomial_kernels)


@dataclass(frozen=True)
class StudyTables:
    """log g_i(theta) per study as cubic splines on uniform grids (with every constant)."""
    kink: bool               # log link: g_i has a kink at theta = 0
    lo: np.ndarray           # first grid point per study
    h: np.ndarray            # grid step per study
    coefs: np.ndarray        # (k, 4, THETA_POINTS - 1) PPoly coefficients
    modes: np.ndarray        # theta at the maximum of g_i (0 where g_i is monotone)
    precs: np.ndarray        # -d2 log g_i at the mode (0 where monotone)
    sharpest: np.ndarray     # 1 / sqrt(max -d2 log g_i): the narrowest feature of g_i
    centre: np.ndarray       # approximate effect (0.5 added to every cell), for scouting only
    se: np.ndarray           # its approximate SE
    b_error: float           # largest relative error estimate of the b integrals

    def args(self):
        return self.lo, self.h, self.coefs, self.modes, self.precs, self.sharpest

    @property
    def log_tau_floor(self) -> float:
        """log tau below which L_i(mu, tau) = L_i(mu, 0) (1e-4 x the smallest study SE)."""
        return math.log(TAU_FLOOR * float(self.se.min()))


# the last few outcomes' tables, kept in this process: they depend on the counts, the link and
# the baseline prior only, so the fits of one outcome under several mu / tau priors
# (compare-priors, a report) build them once. Bounded: TABLES_KEPT entries of at most
# TABLES_MAX_STUDIES studies (about 40 kB per study).
TABLES_KEPT = 16
TABLES_MAX_STUDIES = 100
_TABLES: dict = {}
_TABLES_LOCK = threading.Lock()


def study_tables(e_t, n_t, e_c, n_c, link: str, baseline) -> StudyTables:
    """log g_i(theta) of every study (see :class:`StudyTables`), from the cache of this process
    when the same counts, link and baseline prior were tabulated before (callers never write
    to them)."""
    counts = tuple(np.ascontiguousarray(a, float) for a in (e_t, n_t, e_c, n_c))
    key = (*(a.tobytes() for a in counts), link, float(baseline.mean), float(baseline.sd))
    with _TABLES_LOCK:
        found = _TABLES.pop(key, None)
        if found is not None:
            _TABLES[key] = found            # most recently used last
            return found
    tables = build_tables(*counts, link, baseline)
    if len(counts[0]) <= TABLES_MAX_STUDIES:   # (not flagged read-only: numba would compile
        with _TABLES_LOCK:                      # every kernel again for read-only arrays)
            _TABLES[key] = tables
            while len(_TABLES) > TABLES_KEPT:
                _TABLES.pop(next(iter(_TABLES)))
    return tables


def build_tables(e_t, n_t, e_c, n_c, link: str, baseline) -> StudyTables:
    e_t, n_t, e_c, n_c = (np.asarray(a, float) for a in (e_t, n_t, e_c, n_c))
    logit = link == "logit"
    a, b, c, d = e_t + 0.5, n_t - e_t + 0.5, e_c + 0.5, n_c - e_c + 0.5
    if logit:
        centre = np.log(a * d / (b * c))
        se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    else:
        centre = np.log((a / (n_t + 1)) / (c / (n_c + 1)))
        se = np.sqrt(1 / a - 1 / (n_t + 1) + 1 / c - 1 / (n_c + 1))
    mb, sb = float(baseline.mean), float(baseline.sd)
    start = np.log(c / d) if logit else np.log(c / (n_c + 1))
    k = len(e_t)
    lo, h = np.empty(k), np.empty(k)
    coefs = np.empty((k, 4, THETA_POINTS - 1))
    modes, precs, sharpest = np.zeros(k), np.zeros(k), np.empty(k)
    h[:] = np.minimum(THETA_STEP, se / 4)
    # grid points are whole multiples of the step, so theta = 0 (the log link's kink) is one
    first = np.round(centre / h).astype(np.int64) - (THETA_POINTS - 1) // 2
    lo[:] = first * h
    grids = (first[:, None] + np.arange(THETA_POINTS)[None, :]) * h[:, None]
    tables, errs = kernels().study_tables(grids, e_c, n_c, e_t, n_t, logit, mb, sb,
                                          np.asarray(start, float))
    worst = float(errs.max()) if k else 0.0
    for i in range(k):
        grid, table = grids[i], tables[i]
        const = (log_binom(n_c[i], e_c[i]) + log_binom(n_t[i], e_t[i]) - math.log(sb)
                 - 0.5 * LOG_2PI)
        coefs[i] = piecewise_spline(grid, table + const, None if logit else -int(first[i]))
        sharpest[i] = 1 / math.sqrt(max(float(np.max(-2.0 * coefs[i][1])), 1e-12))
        top = int(np.argmax(table))
        if 0 < top < THETA_POINTS - 1:
            modes[i] = grid[top]
            precs[i] = max(-2.0 * float(coefs[i][1, min(top, THETA_POINTS - 2)]), 0.0)
    return StudyTables(not logit, lo, h, coefs, modes, precs, sharpest, centre, se, worst)


def piecewise_spline(grid, values, kink: int | None) -> np.ndarray:
    """PPoly coefficients of a cubic spline through the values, in two pieces joined at the
    node ``kink`` (the log link's kink at theta = 0) when it lies inside the grid."""
    if kink is None or not 2 <= kink <= len(grid) - 3:
        return not_a_knot(grid, values)
    left = not_a_knot(grid[:kink + 1], values[:kink + 1])
    right = not_a_knot(grid[kink:], values[kink:])
    return np.concatenate([left, right], axis=1)


def log_binom(n, e) -> float:
    return float(special.gammaln(n + 1) - special.gammaln(e + 1) - special.gammaln(n - e + 1))


def log_lik(tables: StudyTables, mu, tau, live=None, rough: bool = False):
    """sum_i log L_i(mu_j, tau_m): (len(tau), len(mu)), and the Gauss-Hermite error estimate;
    with ``live`` (a boolean (len(tau), len(mu)) mask), only there (-inf elsewhere); ``rough``:
    the first Gauss-Hermite rule without its check and fallback, for scouting (where it fails,
    e.g. a zero-cell study against a wide normal, it errs by far less than the scouting
    margins)."""
    mu, tau = np.asarray(mu, float), np.asarray(tau, float)
    return kernels().log_lik_grid(mu, tau, all_live(tau, mu) if live is None else live,
                                  *tables.args(), *GH_MAIN, *GH_CHECK, tables.kink, rough)


def log_lik_each(tables: StudyTables, mu, tau, live=None):
    """log L_i(mu_j, tau_m) per study: (k, len(tau), len(mu)), and the Gauss-Hermite error
    estimate; with ``live``, only there (-inf elsewhere)."""
    mu, tau = np.asarray(mu, float), np.asarray(tau, float)
    nodes = np.flatnonzero(all_live(tau, mu) if live is None else live)
    nodes = nodes[np.random.default_rng(0).permutation(len(nodes))]  # balance the threads
    rows, cols = np.divmod(nodes, len(mu))
    return kernels().log_lik_each(mu, tau, rows, cols, *tables.args(), *GH_MAIN, *GH_CHECK,
                                  tables.kink)


def all_live(tau, mu) -> np.ndarray:
    return np.ones((len(tau), len(mu)), dtype=np.bool_)
