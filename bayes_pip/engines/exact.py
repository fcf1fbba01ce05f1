"""Exact normal-normal posterior by one-dimensional quadrature over tau (no Monte Carlo error).

Model: y_i ~ N(theta_i, v_i), theta_i ~ N(mu, tau^2), with priors p(mu) (normal or flat) and p(tau).
Given tau, mu is conjugate and is integrated out analytically; the remaining one-dimensional
posterior p(tau | y) is evaluated on a fine grid in log(tau) and integrated by the trapezoidal rule
(spectrally accurate for smooth integrands that vanish at both ends). The marginals of mu, of a new
study's effect and of each study's shrunken effect are then finite normal mixtures over the grid.

Notes
-----
With w_i(tau) = 1/(v_i + tau^2) and, for a Normal(m0, s0^2) prior on mu, w_0 = 1/s0^2 (0 if flat):

    W(tau)      = w_0 + sum w_i
    m(tau)      = (w_0 m0 + sum w_i y_i) / W,        V(tau) = 1 / W          (mu | tau, y)
    log p(y|tau) = -1/2 sum log(v_i + tau^2) - 1/2 log W - 1/2 [w_0 (m0 - m)^2 + sum w_i (y_i - m)^2]
    theta_new | tau, y ~ N(m, V + tau^2)
    theta_i | tau, y   ~ N(B_i m + (1 - B_i) y_i, v_i (1 - B_i) + B_i^2 V),  B_i = v_i / (v_i + tau^2)

References
----------
Roever C. Bayesian random-effects meta-analysis using the bayesmeta R package. J Stat Softw
2020;93(6), Sections 2.4-2.8 and Appendix C. Roever C, Friede T. Discrete approximation of a mixture
distribution via restricted divergence. J Comput Graph Stat 2017;26(1):217-222.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from bayes_pip.engines import idata as idata_groups
from bayes_pip.errors import InputError

SCOUT_POINTS = 4001    # coarse pass that finds where p(log tau | y) lives
CELLS = 1500           # composite Gauss-Legendre cells over that range
NODES_PER_CELL = 5     # 5-point Gauss-Legendre: exact for polynomials of degree 9 in each cell
LOG_TAU_BELOW = 40.0   # the scouting range: log(s) - 40 ... log(s) + 30 around a data scale s
LOG_TAU_ABOVE = 30.0
UPPER_TAIL_MAX = 1e-10 # largest posterior mass allowed above the range (bounded, then ignored)
NEGLIGIBLE = 1e-16     # density (relative to its maximum) treated as zero when trimming the range
GL_X, GL_W = np.polynomial.legendre.leggauss(NODES_PER_CELL)
PARTIAL_EPS = 1e-12    # tau's CDF inside a cell: error estimate allowed (x the normaliser)

# 15-point Gauss-Kronrod rule on [-1, 1] with its embedded 7-point Gauss-Legendre rule (the
# QUADPACK qk15 constants; tests check their degrees of exactness, 23 and 13). The batched
# engine's cells use it; tau's CDF inside a cell is integrated with it adaptively.
_XGK = (0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
        0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
        0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
        0.207784955007898467600689403773245, 0.0)
_WGK = (0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
        0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
        0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
        0.204432940075298892414161999234649, 0.209482141084727828012999174891714)
_WG = (0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
       0.381830050505118944950369775488975, 0.417959183673469387755102040816327)
KRONROD_X = np.array([-x for x in _XGK[:-1]] + list(_XGK[::-1]))
KRONROD_W = np.array(list(_WGK[:-1]) + list(_WGK[::-1]))
GAUSS_W = np.zeros(15)           # the 7-point rule's weights at its nodes (the odd positions)
GAUSS_W[1::2] = list(_WG[:-1]) + list(_WG[::-1])


def adaptive_integral(f, lo: float, hi: float, eps: float, depth: int = 40,
                      budget: int = 200) -> float:
    """The integral of the vectorised ``f`` over [lo, hi] by adaptive Gauss-Kronrod (15 points,
    the 7-point Gauss rule inside it as the error estimate): an interval whose |Kronrod - Gauss|
    exceeds its share of ``eps`` (by length) is halved, at most ``depth`` times and into at most
    ``budget`` intervals in all (then every interval left is taken as it is)."""
    span = hi - lo
    if span <= 0:
        return 0.0
    total = 0.0
    stack = [(lo, hi, 0)]
    used = 0
    while stack:
        left, right, level = stack.pop()
        used += 1
        half = 0.5 * (right - left)
        d = f(left + half * (KRONROD_X + 1))
        big, small = half * (KRONROD_W @ d), half * (GAUSS_W @ d)
        if not abs(big - small) > eps * (right - left) / span or level >= depth \
                or used >= budget:
            total += big
        else:
            middle = left + half
            stack += [(middle, right, level + 1), (left, middle, level + 1)]
    return float(total)


@dataclass(frozen=True)
class ExactPosterior:
    """p(tau | y) by composite Gauss-Legendre quadrature in log tau, with the conditional normals
    of mu, theta_new and theta_i at every node."""

    y: np.ndarray
    v: np.ndarray
    mu_prior: object
    tau_prior: object
    edges: np.ndarray        # cell boundaries in log tau
    cum_edges: np.ndarray    # P(log tau <= edge | y)
    log_shift: float         # log-density offset; normaliser is `total`
    total: float
    tau: np.ndarray          # quadrature nodes (tau values)
    weight: np.ndarray       # posterior probability carried by each node, sums to 1
    mu_mean: np.ndarray      # m(tau) at each node
    mu_var: np.ndarray       # V(tau) at each node
    adaptive: bool = False   # wide adaptive cells (batched rows): tau's CDF inside a cell is
                             # integrated adaptively, else by the cell's 5-point rule

    # ----- one grammar for every target: "mu", "tau", "predict", ("study", i) -----

    def components(self, target):
        """Means and variances of the normal mixture for a target (not for tau)."""
        if target == "mu":
            return self.mu_mean, self.mu_var
        if target == "predict":
            return self.mu_mean, self.mu_var + self.tau**2
        if isinstance(target, tuple) and target[0] == "study":
            i = target[1]
            b = self.v[i] / (self.v[i] + self.tau**2)
            return b * self.mu_mean + (1 - b) * self.y[i], self.v[i] * (1 - b) + b**2 * self.mu_var
        raise ValueError(f"unknown target {target!r}")

    def cdf(self, target, x: float) -> float:
        """P(target <= x | y)."""
        if target == "tau":
            return self.tau_cdf(x)
        m, var = self.components(target)
        return float(np.clip(np.sum(self.weight * special.ndtr((x - m) / np.sqrt(var))), 0, 1))

    def sf(self, target, x: float) -> float:
        """P(target > x | y), accurate in the far upper tail."""
        if target == "tau":
            return 1.0 - self.tau_cdf(x)
        m, var = self.components(target)
        return float(np.clip(np.sum(self.weight * special.ndtr((m - x) / np.sqrt(var))), 0, 1))

    def density(self, target, x) -> np.ndarray:
        """Posterior density of a target at points x (tau: exact; others: the normal mixture)."""
        x = np.atleast_1d(np.asarray(x, float))
        if target == "tau":
            out = np.zeros_like(x)
            pos = x > 0
            out[pos] = self.density_log_tau(np.log(x[pos])) / x[pos]
            return out
        m, var = self.components(target)
        sd = np.sqrt(var)
        z = (x[:, None] - m[None, :]) / sd[None, :]
        return np.sum(self.weight[None, :] * np.exp(-0.5 * z**2) / (sd * math.sqrt(2 * math.pi)),
                      axis=1)

    def mean(self, target) -> float:
        if target == "tau":
            return float(np.sum(self.weight * self.tau))
        m, _ = self.components(target)
        return float(np.sum(self.weight * m))

    def sd(self, target) -> float:
        if target == "tau":
            return float(math.sqrt(max(np.sum(self.weight * self.tau**2) - self.mean("tau")**2, 0)))
        m, var = self.components(target)
        mean = np.sum(self.weight * m)
        return float(math.sqrt(max(np.sum(self.weight * (var + m**2)) - mean**2, 0.0)))

    def quantile(self, target, q: float) -> float:
        """The q-quantile of a target, by root-finding on its mixture CDF (tau: on the grid CDF)."""
        if target == "tau":
            return self.tau_quantile(q)
        m, var = self.components(target)
        sd = np.sqrt(var)
        lo = float(np.min(m - 40 * sd))
        hi = float(np.max(m + 40 * sd))
        return float(optimize.brentq(lambda x: np.sum(self.weight * special.ndtr((x - m) / sd)) - q,
                                     lo, hi, xtol=1e-13, rtol=1e-13, maxiter=200))

    def study_quantiles(self, qs) -> np.ndarray:
        """Quantiles (k, len(qs)) of every study's effect. Up to STUDY_BATCH_K studies, one
        root search per study and quantile on this posterior (:meth:`quantile`). Above it (one
        brentq over the 7,501-node mixture per study and quantile took a minute at k =
        10,000), all studies at once by a safeguarded Newton iteration on the same posterior
        integrated over fewer cells of the same range (:func:`study_cells`): with many studies
        p(log tau | y) is a smooth peak, which 5-point Gauss-Legendre resolves to rounding error
        on far fewer cells (tests: within 1e-11 of the full grid at k = 150 to 2,000)."""
        k = len(self.y)
        if k <= STUDY_BATCH_K:
            return np.array([[self.quantile(("study", i), q) for q in qs] for i in range(k)])
        coarse = exact_posterior(self.y, self.v, self.mu_prior, self.tau_prior, study_cells(k))
        out = np.empty((k, len(qs)))
        tau2 = coarse.tau**2
        block = max(1, CHUNK_ELEMENTS // len(coarse.tau))
        for start in range(0, k, block):
            rows = slice(start, min(start + block, k))
            v, y = self.v[rows, None], self.y[rows, None]
            b = v / (v + tau2)
            m = b * coarse.mu_mean + (1 - b) * y
            sd = np.sqrt(v * (1 - b) + b**2 * coarse.mu_var)
            for j, q in enumerate(qs):
                out[rows, j] = mixture_quantiles(coarse.weight, m, sd, q)
        return out

    # ----- tau: exact density, integrated by Gauss-Legendre inside a cell -----

    def unnormalised(self, log_tau) -> np.ndarray:
        """Unnormalised posterior density of log tau at arbitrary points."""
        x = np.atleast_1d(np.asarray(log_tau, float))
        return np.exp(log_density(self.y, self.v, x, self.mu_prior, self.tau_prior) - self.log_shift)

    def density_log_tau(self, log_tau) -> np.ndarray:
        """Normalised posterior density of log tau."""
        return self.unnormalised(log_tau) / self.total

    def tau_cdf(self, t: float) -> float:
        if t <= 0:
            return 0.0
        lt = math.log(t)
        if lt <= self.edges[0]:  # inside the analytic lower tail: the prior's shape
            lower = float(self.tau_prior.cdf(math.exp(self.edges[0])))
            return float(self.cum_edges[0] * self.tau_prior.cdf(t) / lower) if lower > 0 else 0.0
        if lt >= self.edges[-1]:
            return 1.0
        j = int(np.searchsorted(self.edges, lt) - 1)
        a = self.edges[j]
        if self.adaptive:
            partial = adaptive_integral(self.unnormalised, a, lt, PARTIAL_EPS * self.total)
        else:
            half = 0.5 * (lt - a)
            partial = half * np.sum(GL_W * self.unnormalised(a + half * (GL_X + 1)))
        return float(min(max(self.cum_edges[j] + partial / self.total, 0.0), 1.0))

    def tau_quantile(self, q: float) -> float:
        j = int(np.clip(np.searchsorted(self.cum_edges, q) - 1, 0, len(self.edges) - 2))
        return float(math.exp(optimize.brentq(lambda lt: self.tau_cdf(math.exp(lt)) - q,
                                              self.edges[j], self.edges[j + 1], xtol=1e-14,
                                              rtol=1e-14)))


STUDY_BATCH_K = 100   # above this many studies, study quantiles are solved all at once
# cells of the posterior those quantiles integrate over: the peak of p(log tau | y) narrows as
# k grows (measured against the full grid: 60 cells 2e-7 at k = 150 but 3e-14 from k = 500 on;
# 300 cells 5e-13 at k = 150)
STUDY_CELLS = ((500, 300), (None, 60))   # (fewer than k studies, cells), last: any k


def study_cells(k: int) -> int:
    return next(cells for bound, cells in STUDY_CELLS if bound is None or k < bound)


def mixture_quantiles(w, m, sd, q, tol: float = 1e-13, iterations: int = 200) -> np.ndarray:
    """The q-quantile of each row's normal mixture sum_j w_j N(m_ij, sd_ij^2): Newton steps
    inside a shrinking bracket (bisection where a step would leave it), from the bracket
    [min(m - 40 sd), max(m + 40 sd)] that :meth:`ExactPosterior.quantile` searches."""
    lo = np.min(m - 40 * sd, axis=1)
    hi = np.max(m + 40 * sd, axis=1)
    x = m @ w
    active = np.arange(len(x))
    for _ in range(iterations):
        if not len(active):
            break
        z = (x[active, None] - m[active]) / sd[active]
        f = special.ndtr(z) @ w - q
        dens = (np.exp(-0.5 * z * z) / sd[active]) @ w / math.sqrt(2 * math.pi)
        below = f < 0
        lo[active] = np.where(below, x[active], lo[active])
        hi[active] = np.where(below, hi[active], x[active])
        with np.errstate(divide="ignore", invalid="ignore"):
            step = x[active] - f / dens
        inside = (step >= lo[active]) & (step <= hi[active]) & np.isfinite(step)
        new = np.where(f == 0, x[active], np.where(inside, step, 0.5 * (lo[active] + hi[active])))
        done = np.abs(new - x[active]) <= tol * (1 + np.abs(new))
        x[active] = new
        active = active[~done]
    return x


def check_proper(k: int, mu_prior, tau_prior) -> None:
    """Refuse prior/data combinations whose posterior is improper (Roever 2020, Table 1)."""
    tau_proper = getattr(tau_prior, "proper", True)
    mu_proper = getattr(mu_prior, "proper", True)
    if not tau_proper and not mu_proper and k < 3:
        raise InputError(f"an improper uniform prior on tau with a flat prior on mu needs at least "
                         f"3 studies (k = {k}); choose a proper prior")
    if not tau_proper and k < 2:
        raise InputError("an improper prior on tau needs at least 2 studies; choose a proper prior")


CHUNK_ELEMENTS = 2_000_000  # tau nodes x studies per block: memory stays ~100 MB for any k
# above this many tau nodes x studies the compiled kernel (numba, imported only then) computes
# the conditional moments: k > about 1,300 on the 7,501-node grid
COMPILED_ELEMENTS = 10_000_000


def conditional_moments(y, v, tau, mu_prior):
    """m(tau), V(tau) and log p(y | tau) (up to a constant) for every tau on the grid.

    Computed in blocks of tau nodes so that memory is bounded whatever the number of studies
    (each block is the same vectorised arithmetic, so the result does not depend on the blocks).
    """
    tau = np.asarray(tau, float)
    if len(y) * len(tau) > COMPILED_ELEMENTS:   # many studies: one compiled pass, no k x n arrays
        from bayes_pip.engines import exact_kernels

        proper = getattr(mu_prior, "proper", True)
        return exact_kernels.conditional_moments(
            np.ascontiguousarray(y, dtype=float), np.ascontiguousarray(v, dtype=float),
            np.ascontiguousarray(tau), 1.0 / mu_prior.sd**2 if proper else 0.0,
            float(mu_prior.mean) if proper else 0.0)
    step = max(1, CHUNK_ELEMENTS // max(len(y), 1))
    if len(tau) <= step:
        return _conditional_moments(y, v, tau, mu_prior)
    parts = [_conditional_moments(y, v, tau[i:i + step], mu_prior)
             for i in range(0, len(tau), step)]
    return tuple(np.concatenate([p[j] for p in parts]) for j in range(3))


def _conditional_moments(y, v, tau, mu_prior):
    tau2 = tau[:, None] ** 2
    w = 1.0 / (v[None, :] + tau2)
    if getattr(mu_prior, "proper", True):
        w0, m0 = 1.0 / mu_prior.sd**2, mu_prior.mean
    else:
        w0, m0 = 0.0, 0.0
    big_w = w0 + w.sum(axis=1)
    m = (w0 * m0 + (w * y[None, :]).sum(axis=1)) / big_w
    resid = (w * (y[None, :] - m[:, None]) ** 2).sum(axis=1) + w0 * (m0 - m) ** 2
    log_lik = -0.5 * np.log(v[None, :] + tau2).sum(axis=1) - 0.5 * np.log(big_w) - 0.5 * resid
    return m, 1.0 / big_w, log_lik


def log_density(y, v, log_tau, mu_prior, tau_prior) -> np.ndarray:
    """log p(log tau | y) up to a constant: log p(y | tau) + log p(tau) + log tau."""
    tau = np.exp(log_tau)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        value = conditional_moments(y, v, tau, mu_prior)[2] + tau_prior.logpdf(tau) + log_tau
    return np.where(np.isfinite(value), value, -np.inf)


def exact_posterior(y, v, mu_prior, tau_prior, cells: int = CELLS) -> ExactPosterior:
    """Normal-normal posterior for effects ``y`` with variances ``v`` under the given priors.

    A coarse scan of log tau finds where the posterior density exceeds 1e-16 of its maximum;
    that range is split into ``cells`` cells, each integrated by 5-point Gauss-Legendre. Below the
    range p(y | tau) equals p(y | 0), so the lower tail is p(y | 0) P_prior(tau < e^lo), carried
    by a node at tau = 0.

    Examples
    --------
    >>> from bayes_pip.priors import Normal, HalfNormal
    >>> post = exact_posterior([-2.31, -1.26], [0.359, 0.412], Normal(0, 4), HalfNormal(0.5))
    >>> round(post.quantile("mu", 0.5), 2)
    -1.78
    """
    y = np.atleast_1d(np.asarray(y, float))
    v = np.atleast_1d(np.asarray(v, float))
    check_proper(len(y), mu_prior, tau_prior)
    grid = tau_grid(lambda tau: conditional_moments(y, v, tau, mu_prior)[2], tau_prior,
                    math.log(math.sqrt(float(np.median(v)))), cells)
    m, var, _ = conditional_moments(y, v, grid.tau, mu_prior)
    return ExactPosterior(y=y, v=v, mu_prior=mu_prior, tau_prior=tau_prior, edges=grid.edges,
                          cum_edges=grid.cum_edges, log_shift=grid.shift, total=grid.total,
                          tau=grid.tau, weight=grid.weight, mu_mean=m, mu_var=var)


@dataclass(frozen=True)
class TauGrid:
    """Quadrature over log tau: cell edges, their posterior CDF, and the nodes with their weights
    (the first node is tau = 0 and carries the lower tail)."""
    edges: np.ndarray
    cum_edges: np.ndarray
    shift: float
    total: float
    tau: np.ndarray
    weight: np.ndarray


def tau_grid(log_lik, tau_prior, centre: float, cells: int = CELLS,
             unbounded: str | None = None, scout_points: int = SCOUT_POINTS) -> TauGrid:
    """Composite Gauss-Legendre quadrature of p(log tau | y) ∝ L(tau) p(tau) tau, for any
    log-likelihood ``log_lik(tau_array)`` that is constant near tau = 0 and decreasing for large tau
    (every normal model with tau integrated over: the meta-analysis and the meta-regression).
    ``centre`` is log of a typical within-study SD, around which the scan starts. With
    ``unbounded`` (a message), any posterior mass at the top of the scan is refused with it
    (marginal likelihoods), instead of bounded and ignored below 1e-10. ``scout_points``:
    fewer for a log-likelihood that is costly to evaluate (the binomial-normal one)."""
    def log_dens(log_tau):
        tau = np.exp(log_tau)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            value = log_lik(tau) + tau_prior.logpdf(tau) + log_tau
        return np.where(np.isfinite(value), value, -np.inf)

    # ---- scout: where does p(log tau | y) live? ----
    scout = np.linspace(centre - LOG_TAU_BELOW, centre + LOG_TAU_ABOVE, scout_points)
    scout_logd = log_dens(scout)
    if not np.isfinite(scout_logd).any():
        raise InputError("the prior on tau gives zero density everywhere the data allow")
    shift = float(np.max(scout_logd))
    alive = np.flatnonzero(scout_logd - shift > math.log(NEGLIGIBLE))
    lo, hi = scout[max(alive[0] - 1, 0)], scout[min(alive[-1] + 1, len(scout) - 1)]
    if alive[-1] == len(scout) - 1 and unbounded:
        raise InputError(unbounded)
    if alive[-1] == len(scout) - 1:
        # heavy-tailed prior with few studies: bound the mass above the range by
        # p(y | tau_hi) P_prior(tau > tau_hi) (p(y | tau) decreases for large tau)
        log_lik_hi = log_lik(np.exp([hi]))[0]
        try:
            upper = math.exp(log_lik_hi - shift) * float(1 - tau_prior.cdf(math.exp(hi)))
        except ValueError:
            upper = math.inf
        scale_mass = float(np.sum(np.exp(scout_logd - shift)) * (scout[1] - scout[0]))
        if not upper / scale_mass < UPPER_TAIL_MAX:
            raise InputError("the posterior of tau is not contained in the quadrature range; "
                             "the prior on tau is probably too vague (or improper) for this "
                             "number of studies")
    # ---- below lo, p(y | tau) = p(y | 0) to within 1e-30: the tail is L(0) * P_prior(tau < e^lo)
    tail_mass = 0.0
    if alive[0] == 0:
        log_lik0 = log_lik(np.zeros(1))[0]
        tail_mass = math.exp(log_lik0 - shift) * float(tau_prior.cdf(math.exp(lo)))
    # ---- composite Gauss-Legendre over [lo, hi] ----
    # cell boundaries also at every point where the prior density jumps or its support ends
    # (tau = upper for a uniform prior), so that no cell integrates across a discontinuity
    jumps = [math.log(b) for b in getattr(tau_prior, "breakpoints", ()) if b > 0]
    jumps = [j for j in jumps if lo < j < hi]
    edges = np.linspace(lo, hi, cells + 1)
    if jumps:
        edges = np.union1d(edges, jumps)
        cells = len(edges) - 1
        half = 0.5 * np.diff(edges)[:, None]
    else:  # equal cells
        half = 0.5 * (edges[1] - edges[0])
    nodes = (edges[:-1, None] + half * (GL_X[None, :] + 1)).ravel()
    dens = np.exp(log_dens(nodes) - shift)
    mass = np.concatenate([[tail_mass], (half * GL_W[None, :]
                                          * dens.reshape(cells, NODES_PER_CELL)).ravel()])
    total = float(mass.sum())
    cum_edges = np.concatenate([[tail_mass], tail_mass + np.cumsum(
        mass[1:].reshape(cells, -1).sum(axis=1))]) / total
    tau = np.concatenate([[0.0], np.exp(nodes)])
    return TauGrid(edges=edges, cum_edges=cum_edges, shift=shift, total=total, tau=tau,
                   weight=mass / total)


# ---------------------------------------------------------------------------------------------
# independent draws as InferenceData
# ---------------------------------------------------------------------------------------------

def exact_tau_draws(post, u) -> np.ndarray:
    """Invert the exact engine's CDF of tau at uniforms ``u``."""
    u = np.asarray(u, float)
    cum = post.cum_edges
    tau = np.empty_like(u)
    low = u < cum[0]
    if low.any():  # below the quadrature range the posterior has the prior's shape
        lower = float(post.tau_prior.cdf(math.exp(post.edges[0])))
        tau[low] = post.tau_prior.ppf(u[low] / cum[0] * lower)
    rest = ~low
    j = np.clip(np.searchsorted(cum, u[rest], side="right") - 1, 0, len(cum) - 2)
    width = np.maximum(cum[j + 1] - cum[j], 1e-300)
    frac = np.clip((u[rest] - cum[j]) / width, 0.0, 1.0)
    tau[rest] = np.exp(post.edges[j] + frac * (post.edges[j + 1] - post.edges[j]))
    return tau


def exact_idata(post, effects, prior, seed: int, draws: int = idata_groups.DRAWS,
                chains: int = idata_groups.CHAINS):
    """Independent posterior draws from the exact engine as InferenceData (with all groups)."""
    az = idata_groups.az_module()
    rng = np.random.default_rng([seed, 5])
    shape = (chains, draws)
    tau = exact_tau_draws(post, rng.uniform(size=shape)).reshape(shape)
    m, var, _ = conditional_moments(post.y, post.v, tau.ravel(), post.mu_prior)
    mu = (m + np.sqrt(var) * rng.standard_normal(m.shape)).reshape(shape)
    theta = idata_groups.conditional_theta_draws(mu, tau, post.y, post.v, rng)
    theta_new = mu + tau * rng.standard_normal(shape)
    idata = az.from_dict(posterior={"mu": mu, "tau": tau, "theta": theta, "theta_new": theta_new},
                         coords=idata_groups.study_coords(effects), dims={"theta": ["study"]},
                         attrs={"engine": "exact", "draws": "independent (not MCMC)",
                                "seed": seed})
    return idata_groups.add_normal_groups(idata, effects, prior, seed)
