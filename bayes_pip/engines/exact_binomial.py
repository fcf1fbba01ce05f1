"""Exact binomial-normal posterior by nested quadrature (no MCMC): `--engine binomial-exact`.

Model (as the binomial NUTS engine, :func:`bayes_pip.engines.pymc_models.binomial_normal_model`):
events ~ Binomial(n, p) in each arm; logit link (OR): logit p_c = b_i, logit p_t = b_i + theta_i;
log link (RR): log p_c = min(0, -theta_i) - softplus(-b_i), log p_t = log p_c + theta_i;
theta_i ~ N(mu, tau^2), b_i ~ the prior set's baseline prior, mu and tau under the prior set.
No continuity correction: zero cells and double zeros enter through their binomial likelihood.

Method
------
The likelihood factorises over studies given (mu, tau):

    p(data | mu, tau) = prod_i L_i(mu, tau),   L_i = int g_i(theta) N(theta; mu, tau^2) dtheta,
    g_i(theta) = int Bin(e_ci | p_c(b)) Bin(e_ti | p_t(b, theta)) N(b; m_b, s_b^2) db.

1. g_i on a uniform grid of 1,201 theta values per study (engines/binomial_tables.py; step
   min(0.05, s_i/4), s_i the study's approximate SE): each b integral by the trapezoidal rule
   around its mode (walked until the integrand falls below e^-46 of its maximum; the step
   starts at sigma/3 and is halved until the rule of twice the step agrees to 1e-11; the
   studies in parallel); log g_i is then a cubic spline (in two pieces joined at theta = 0
   for the log link, whose g_i has a kink there; linear beyond the grid, where log g_i is
   asymptotically linear in theta).
2. L_i(mu, tau) by adaptive Gauss-Hermite quadrature around the mode of g_i(theta)
   N(theta; mu, tau^2) (8 nodes checked by 6 where the integrand is narrow against g_i's
   features, else 24 checked by 12), or by a trapezoidal walk where the rules differ or the log
   link's kink is in reach (on the spline's knots, every 2^p-th where the integrand is wide);
   at tau = 0, L_i = g_i(mu).
3. p(mu, log tau | data) on a tensor grid of composite 5-point Gauss-Legendre cells (32 x 32
   cells) over the region a two-pass scout finds (log density within 30 of its maximum), with
   cell edges at prior discontinuities; below tau = 1e-4 s_min, L_i(mu, tau) = L_i(mu, 0) to
   within 1e-8 relative, so that tail is the tau = 0 row times the prior mass below it. Cells
   whose scouting neighbourhood lies below e^-35 of the maximum are left at zero mass (not
   integrated: 67% of the nodes are integrated on dat.collins1985a's first ten trials).
4. Marginals: mu and log tau by Lagrange interpolation of the log marginal density inside a cell
   (CDF: Gauss-Legendre over the partial cell); a new study's effect and each study's shrunken
   effect as normal mixtures over the grid, evaluated on a sinh grid (fine at the centre,
   reaching heavy tails) and integrated by a cubic spline; rows of tau below the mu cell width
   enter through their interpolated mu density, convolved by Gauss-Hermite (fewer points for
   rows of tau far below the cell width). The log marginal likelihood is the grid's normaliser
   (binomial coefficients and every prior constant included), so Bayes factors use the
   binomial likelihood.

Error budget (checked in tests/test_exact_binomial.py against an independent integration by
SciPy's adaptive quadrature): posterior quantiles of mu and tau to 1e-5 absolute, the log
marginal likelihood to 1e-6 relative. The b-integral and Gauss-Hermite error estimates are
stored with every fit (``settings["quadrature"]``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bayes_pip.engines import idata as idata_groups
from bayes_pip.engines.binomial_tables import (GH_CHECK, GH_MAIN, StudyTables, kernels,
                                              log_lik, log_lik_each, study_tables)
from bayes_pip.engines.marginals import GL_W, GL_X, CellMarginal, CurveMarginal
from bayes_pip.errors import InputError

CELLS = 32               # Gauss-Legendre cells per dimension of the (mu, log tau) grid
SCOUT = 41               # points per dimension of each scouting pass
ALIVE = 30.0             # log-density drop that bounds the region kept
LIVE_MARGIN = 5.0        # nodes integrated: scouted within ALIVE + LIVE_MARGIN of the maximum
CURVE_DU = 1 / 48        # step in u of the sinh grid of the curve densities (new study, studies)
KEEP_ELEMENTS = 2 * 10**7  # each study's log L_i at every node is kept up to this many values
NEGLIGIBLE = 1e-14       # node mass below which a node is left out of the mixture densities
# Gauss-Hermite rules of the row convolutions (curve densities), by tau / (mu cell width): a
# row's function varies on the scale of a cell or more, so an n-point rule errs by about
# (tau / width)^(2n): each rule is used where that is below 1e-16 (20 points above 0.158)
CURVE_RULES = (3, 6, 10, 20)
CURVE_REACH = (0.002, 0.046, 0.158, math.inf)  # tau / width up to which each rule is used
GH_CURVE_X = np.zeros((len(CURVE_RULES), max(CURVE_RULES)))
GH_CURVE_W = np.zeros_like(GH_CURVE_X)
for _o, _n in enumerate(CURVE_RULES):
    GH_CURVE_X[_o, :_n], GH_CURVE_W[_o, :_n] = np.polynomial.hermite.hermgauss(_n)
# log f at the five Gauss-Legendre nodes of a cell -> coefficients of t^0..t^4 (t in [-1, 1])
GL_TO_POLY = np.linalg.inv(np.vander(GL_X, increasing=True))


# ---------------------------------------------------------------------------------------------
# steps 2-3: the (mu, log tau) grid
# ---------------------------------------------------------------------------------------------

def log_joint(tables, mu, log_tau, mu_prior, tau_prior, ll=None, live=None, rough=False):
    """log p(mu, log tau, data) on a grid (rows: log tau), and the Gauss-Hermite error (``ll``:
    the log likelihood and its error when already computed; ``live``: only there; ``rough``:
    for scouting, see log_lik)."""
    tau = np.exp(log_tau)
    ll, err = log_lik(tables, mu, tau, live, rough) if ll is None else ll
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        value = ll + mu_prior.logpdf(mu)[None, :] + (tau_prior.logpdf(tau) + log_tau)[:, None]
    return np.where(np.isfinite(value), value, -np.inf), err


def widen(x, index):
    """x one grid step beyond the first and the last of ``index`` (clipped to x's ends)."""
    return x[max(index.min() - 1, 0)], x[min(index.max() + 1, len(x) - 1)]


def live_region(tables, mu, lt, mu_prior, tau_prior, values=False):
    """Where the log joint density on the grid (mu, log tau) is within ALIVE of its maximum:
    the mask, and (mu_lo, mu_hi), (lt_lo, lt_hi) one grid step beyond it (and with ``values``,
    the log joint density on the grid)."""
    lj, _ = log_joint(tables, mu, lt, mu_prior, tau_prior, rough=True)
    if not np.isfinite(lj).any():
        raise InputError("the priors give zero density everywhere the data allow")
    alive = lj > lj.max() - ALIVE
    rows, cols = np.nonzero(alive)
    if values:
        return alive, widen(mu, cols), widen(lt, rows), lj
    return alive, widen(mu, cols), widen(lt, rows)


def live_nodes(lj, mu, lt, mu_nodes, lt_nodes) -> np.ndarray:
    """The nodes (len(lt_nodes), len(mu_nodes)) of the final grid worth integrating: whole
    Gauss-Legendre cells (so that the marginals' interpolation inside a cell sees the same
    terms at each of its nodes) with a node in a scouting cell that has a corner whose log joint
    density is within ALIVE + LIVE_MARGIN of the maximum. The rest carry less than e^-ALIVE of
    the peak density (the log density would have to rise by LIVE_MARGIN inside one scouting
    cell, where it is smooth and the scouting grid resolves the region's width by about 40
    points); they are left at zero mass."""
    near = lj > lj.max() - ALIVE - LIVE_MARGIN
    # a scouting cell is live when any of its four corners is
    cell = near[:-1, :-1] | near[1:, :-1] | near[:-1, 1:] | near[1:, 1:]
    r = np.clip(np.searchsorted(lt, lt_nodes) - 1, 0, len(lt) - 2)
    c = np.clip(np.searchsorted(mu, mu_nodes) - 1, 0, len(mu) - 2)
    node = cell[r[:, None], c[None, :]]
    m = len(GL_X)
    block = node.reshape(len(lt_nodes) // m, m, len(mu_nodes) // m, m).any(axis=(1, 3))
    return np.repeat(np.repeat(block, m, axis=0), m, axis=1)


def scout_box(tables, mu_prior, tau_prior):
    """(mu_lo, mu_hi, lt_lo, lt_hi): the region where p(mu, log tau | data) lives, from a coarse
    grid grown until the live region is inside it (tau's floor and the prior's upper bound
    excepted)."""
    y, s = tables.centre, tables.se
    mu_lo, mu_hi = float(np.min(y - 8 * s)), float(np.max(y + 8 * s))
    if mu_prior.proper:
        mu_lo, mu_hi = min(mu_lo, mu_prior.mean), max(mu_hi, mu_prior.mean)
    top_cap = math.inf
    breaks = [b for b in getattr(tau_prior, "breakpoints", ()) if b > 0]
    if breaks:
        top_cap = math.log(max(breaks))
    lt_hi = min(math.log(max(float(s.max()), float(np.ptp(y)))) + 3.0, top_cap)
    lt_lo = tables.log_tau_floor
    for _ in range(12):
        alive, mu_box, lt_box = live_region(tables, np.linspace(mu_lo, mu_hi, SCOUT),
                                            np.linspace(lt_lo, lt_hi, SCOUT), mu_prior,
                                            tau_prior)
        grow = False
        width = mu_hi - mu_lo
        if alive[:, 0].any():
            mu_lo -= width
            grow = True
        if alive[:, -1].any():
            mu_hi += width
            grow = True
        if alive[-1, :].any() and lt_hi < top_cap:
            lt_hi = min(lt_hi + 3.0, top_cap)
            grow = True
        if not grow:
            return (*mu_box, *lt_box)
    raise InputError("the binomial-normal posterior is not contained in a bounded region; "
                     "the priors are probably too vague for these data")


def gl_nodes(edges):
    half = 0.5 * np.diff(edges)[:, None]
    nodes = (edges[:-1, None] + half * (GL_X[None, :] + 1)).ravel()
    return nodes, (half * GL_W[None, :]).ravel()


@dataclass(frozen=True)
class Grid:
    mu_edges: np.ndarray
    lt_edges: np.ndarray
    mu: np.ndarray            # mu nodes
    wmu: np.ndarray           # their Gauss-Legendre weights
    tau: np.ndarray           # tau nodes, first 0 (the row below the floor)
    wlt: np.ndarray           # weights in log tau (first: 0, the tail row's mass is separate)
    mass: np.ndarray          # (len tau, len mu) posterior probability of each node, sums to 1
    log_ml: float             # log p(data)
    tail_prior: float         # P_prior(tau < floor) (its row carries that prior mass)
    gh_error: float           # largest Gauss-Hermite estimate over nodes that carry mass
    edge_mass: float          # posterior mass in the outer cells of the grid
    each: np.ndarray | None = None  # log L_i at every live node (k, len tau, len mu), when kept


def posterior_grid(tables, mu_prior, tau_prior, cells: int = CELLS) -> Grid:
    floor = tables.log_tau_floor
    box = scout_box(tables, mu_prior, tau_prior)
    # second pass inside the first box (sharper edges for a narrow posterior)
    lt = np.linspace(box[2], box[3], SCOUT)
    mu = np.linspace(box[0], box[1], SCOUT)
    alive, (mu_lo, mu_hi), (lt_lo, lt_hi), lj_scout = live_region(
        tables, mu, lt, mu_prior, tau_prior, values=True)
    touches_floor = bool(alive[0].any()) and lt[0] <= floor + 1e-12
    mu_edges = np.linspace(mu_lo, mu_hi, cells + 1)
    lt_edges = np.linspace(lt_lo, lt_hi, cells + 1)
    jumps = [math.log(b) for b in getattr(tau_prior, "breakpoints", ()) if b > 0]
    jumps = [j for j in jumps if lt_lo < j < lt_hi]
    if jumps:
        lt_edges = np.union1d(lt_edges, jumps)
    mu_nodes, wmu = gl_nodes(mu_edges)
    lt_nodes, wlt = gl_nodes(lt_edges)
    live = live_nodes(lj_scout, mu, lt, mu_nodes, lt_nodes)
    each = None
    if len(tables.lo) * (len(lt_nodes) + 1) * len(mu_nodes) <= KEEP_ELEMENTS:
        # each study's log L_i at every live node, kept for the study-effect densities (the
        # tau = 0 row in full)
        each, err = log_lik_each(tables, mu_nodes, np.concatenate([[0.0], np.exp(lt_nodes)]),
                                 np.vstack([np.ones((1, len(mu_nodes)), np.bool_), live]))
        ll0 = each[:, :1].sum(axis=0)
        lj, err = log_joint(tables, mu_nodes, lt_nodes, mu_prior, tau_prior,
                            ll=(each[:, 1:].sum(axis=0), err[1:]))
    else:
        lj, err = log_joint(tables, mu_nodes, lt_nodes, mu_prior, tau_prior, live=live)
        ll0, _ = log_lik(tables, mu_nodes, np.zeros(1))
    tail_prior = float(tau_prior.cdf(math.exp(lt_lo))) if touches_floor else 0.0
    with np.errstate(divide="ignore"):
        lj0 = ll0[0] + mu_prior.logpdf(mu_nodes) + (math.log(tail_prior) if tail_prior > 0
                                                     else -np.inf)
    shift = float(max(lj.max(), lj0.max()))
    mass = np.vstack([np.exp(lj0 - shift) * wmu,
                      np.exp(lj - shift) * wlt[:, None] * wmu[None, :]])
    total = float(mass.sum())
    mass /= total
    carried = mass[1:] > 1e-12
    gh_error = float(err[carried].max()) if carried.any() else 0.0
    edge = (mass[:, :5].sum() + mass[:, -5:].sum() + mass[-5:, :].sum())
    return Grid(mu_edges=mu_edges, lt_edges=lt_edges, mu=mu_nodes, wmu=wmu,
                tau=np.concatenate([[0.0], np.exp(lt_nodes)]), wlt=np.concatenate([[0.0], wlt]),
                mass=mass, log_ml=shift + math.log(total), tail_prior=tail_prior,
                gh_error=gh_error, edge_mass=float(edge), each=each)


# ---------------------------------------------------------------------------------------------
# step 4: marginals
# ---------------------------------------------------------------------------------------------

# CellMarginal (mu, tau) and CurveMarginal (a new study's effect, each study's) are in
# engines/marginals.py


@dataclass
class BinomialExactPosterior:
    """p(mu, tau | arm counts) on a quadrature grid, with the Posterior query grammar."""

    tables: StudyTables
    grid: Grid
    mu_prior: object
    tau_prior: object
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def log_marginal_likelihood(self) -> float:
        return self.grid.log_ml

    # ----- marginals, built on first use -----
    def _mu(self) -> CellMarginal:
        if "mu" not in self._cache:
            g = self.grid
            self._cache["mu"] = CellMarginal(g.mu_edges, g.mass.sum(axis=0), g.wmu)
        return self._cache["mu"]

    def _tau(self) -> CellMarginal:
        if "tau" not in self._cache:
            g = self.grid
            self._cache["tau"] = CellMarginal(g.lt_edges, g.mass[1:].sum(axis=1), g.wlt[1:],
                                              below=float(g.mass[0].sum()))
        return self._cache["tau"]

    def _curve(self, target) -> CurveMarginal:
        if target not in self._cache:
            self._cache[target] = self._build_curve(target)
        return self._cache[target]

    def _build_curve(self, target) -> CurveMarginal:
        """The density of a new study's effect, or of study i's effect, on a sinh grid.

        Given (mu, tau), a new study's effect is N(mu, tau^2) and study i's effect has density
        g_i(theta) N(theta; mu, tau^2) / L_i(mu, tau). Nodes whose tau is at least the mu cell
        width are these components, sampled on the grid (whose step is below half that width
        wherever they sit). For the rows of narrower tau, the mu nodes are too far apart for a
        sum over them, so each row's node masses (divided by L_i for a study: the smooth
        leave-one-out part) are interpolated inside their cells and convolved with N(0, tau^2)
        by Gauss-Hermite (20 points, fewer for rows of tau far below the cell width: CURVE_RULES;
        then multiplied by g_i for a study)."""
        g = self.grid
        k = kernels()
        t = self.tables
        width = g.mu_edges[1] - g.mu_edges[0]
        study = target[1] if isinstance(target, tuple) else None
        scale = width if study is None else min(width, t.sharpest[study])
        tau_rows = np.repeat(g.tau, len(g.mu))
        mu_rows = np.tile(g.mu, len(g.tau))
        mass = g.mass.ravel()
        wide = (mass > NEGLIGIBLE) & (tau_rows >= width)
        mu_n, tau_n, mass_n = mu_rows[wide], tau_rows[wide], mass[wide]
        rows = np.flatnonzero((g.tau < width) & (g.mass.sum(axis=1) > NEGLIGIBLE))
        with np.errstate(divide="ignore"):
            log_node = np.log(g.mass[rows] / g.wmu[None, :])
        if study is None:
            centre = float(np.sum(g.mass.sum(axis=0) * g.mu))
        else:
            one = slice(study, study + 1)
            args = (t.lo[one], t.h[one], t.coefs[one], t.modes[one], t.precs[one],
                    t.sharpest[one], *GH_MAIN,
                    *GH_CHECK, t.kink)
            if g.each is not None:
                log_l_rows = g.each[study][rows].ravel()
                log_l = g.each[study].ravel()[wide]
            else:
                log_l_rows = k.log_lik_points(np.tile(g.mu, len(rows)),
                                              np.repeat(g.tau[rows], len(g.mu)), *args)[:, 0]
                log_l = k.log_lik_points(mu_n, tau_n, *args)[:, 0]
            with np.errstate(invalid="ignore"):  # nodes left out: -inf - -inf, dropped below
                log_node = log_node - log_l_rows.reshape(log_node.shape)
            # mass-weighted centres of g_i(theta) N(theta; mu, tau^2)
            it2 = np.divide(1.0, tau_rows**2, out=np.zeros_like(tau_rows), where=tau_rows > 0)
            prec = t.precs[study]
            centres = np.where(tau_rows > 0, (prec * t.modes[study] + mu_rows * it2)
                               / np.where(tau_rows > 0, prec + it2, 1.0), mu_rows)
            centre = float(np.sum(mass * centres))
        log_node = np.where(np.isfinite(log_node), log_node, -745.0)
        top = float(log_node.max()) if log_node.size else 0.0
        log_node = log_node - top  # the row values as exp(log_node + top)
        reach = np.concatenate([mu_n - 10 * tau_n, mu_n + 10 * tau_n, g.mu_edges[[0, -1]],
                                [centre - 40 * scale, centre + 40 * scale]])
        u = np.arange(math.asinh((reach.min() - centre) / scale),
                      math.asinh((reach.max() - centre) / scale) + CURVE_DU, CURVE_DU)
        x = centre + scale * np.sinh(u)
        cells = len(g.mu_edges) - 1
        poly = np.ascontiguousarray(log_node.reshape(len(rows), cells, len(GL_X)) @ GL_TO_POLY.T)
        order = np.searchsorted(CURVE_REACH, g.tau[rows] / width).astype(np.int64)
        dens = k.row_convolution(x, g.mu_edges, poly, g.tau[rows], order, GH_CURVE_X,
                                 GH_CURVE_W, np.array(CURVE_RULES, np.int64))
        if study is None:
            dens *= math.exp(top)
            dens += k.mixture_density(x, mu_n, tau_n, mass_n, 0.0, 1.0, np.zeros((4, 1)), 0.0,
                                      False)
        else:
            lo, h, coef = t.lo[study], t.h[study], t.coefs[study]
            shift = float(np.max(log_l)) if len(log_l) else 0.0
            dens = dens * np.exp(k.spline_values(x, lo, h, coef)[0] + top)
            dens += k.mixture_density(x, mu_n, tau_n, mass_n * np.exp(shift - log_l), lo, h,
                                      coef, shift, True)
        return CurveMarginal(centre, scale, u, dens)

    # ----- the grammar -----
    def cdf(self, target, x: float) -> float:
        if target == "mu":
            return float(np.clip(self._mu().cdf(x), 0, 1))
        if target == "tau":
            return self._tau_cdf(x)
        return self._curve(self._key(target)).cdf(x)

    def sf(self, target, x: float) -> float:
        return 1.0 - self.cdf(target, x)

    def quantile(self, target, q: float) -> float:
        if target == "mu":
            return self._mu().quantile(q)
        if target == "tau":
            return self._tau_quantile(q)
        return self._curve(self._key(target)).quantile(q)

    def mean(self, target) -> float:
        g = self.grid
        if target == "mu":
            return float(np.sum(g.mass.sum(axis=0) * g.mu))
        if target == "tau":
            return float(np.sum(g.mass.sum(axis=1) * g.tau))
        if target == "predict":
            return self.mean("mu")
        return self._curve(self._key(target)).moments()[0]

    def sd(self, target) -> float:
        g = self.grid
        if target in ("mu", "predict"):
            m = self.mean("mu")
            second = np.sum(g.mass.sum(axis=0) * g.mu**2)
            if target == "predict":
                second += np.sum(g.mass.sum(axis=1) * g.tau**2)
            return float(math.sqrt(max(second - m * m, 0.0)))
        if target == "tau":
            m = self.mean("tau")
            return float(math.sqrt(max(np.sum(g.mass.sum(axis=1) * g.tau**2) - m * m, 0.0)))
        return self._curve(self._key(target)).moments()[1]

    def density(self, target, x) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, float))
        if target == "mu":
            return np.exp(self._mu().log_density(x))
        if target == "tau":
            out = np.zeros_like(x)
            pos = x > 0
            out[pos] = np.exp(self._tau().log_density(np.log(x[pos]))) / x[pos]
            return out
        return self._curve(self._key(target)).density(x)

    @staticmethod
    def _key(target):
        if target == "predict" or (isinstance(target, tuple) and target[0] == "study"):
            return target
        raise ValueError(f"unknown target {target!r}")

    def _tau_cdf(self, t: float) -> float:
        if t <= 0:
            return 0.0
        m = self._tau()
        lt = math.log(t)
        if lt <= m.edges[0]:  # the tail row: the prior's shape below the floor
            lower = float(self.tau_prior.cdf(math.exp(m.edges[0])))
            return float(m.below * self.tau_prior.cdf(t) / lower) if lower > 0 else 0.0
        return float(np.clip(m.cdf(lt), 0.0, 1.0))

    def _tau_quantile(self, q: float) -> float:
        m = self._tau()
        if q <= m.below:
            lower = float(self.tau_prior.cdf(math.exp(m.edges[0])))
            return float(self.tau_prior.ppf(q / m.below * lower))
        return float(math.exp(m.quantile(q)))


def binomial_posterior(e_t, n_t, e_c, n_c, link: str, mu_prior, tau_prior, baseline,
                       cells: int = CELLS) -> BinomialExactPosterior:
    """The exact binomial-normal posterior of one outcome's arm counts.

    Examples
    --------
    >>> from bayes_pip.priors import Normal, HalfNormal
    >>> post = binomial_posterior([17], [28], [1], [54], "log", Normal(0, 4), HalfNormal(0.5),
    ...                           Normal(0, 10))
    >>> round(post.quantile("mu", 0.5), 2) > 1
    True
    """
    if len(np.atleast_1d(e_t)) == 0:
        raise InputError("no studies to pool")
    if not getattr(tau_prior, "proper", True) or not getattr(mu_prior, "proper", True):
        raise InputError("the exact binomial-normal engine needs proper priors on mu and tau")
    tables = study_tables(e_t, n_t, e_c, n_c, link, baseline)
    grid = posterior_grid(tables, mu_prior, tau_prior, cells)
    return BinomialExactPosterior(tables, grid, mu_prior, tau_prior)


# ---------------------------------------------------------------------------------------------
# independent draws as InferenceData
# ---------------------------------------------------------------------------------------------

def binomial_idata(post: BinomialExactPosterior, effects, prior, seed: int,
                   draws: int = idata_groups.DRAWS, chains: int = idata_groups.CHAINS):
    """Independent draws (not MCMC): (mu, tau) from the quadrature grid (a node by its mass,
    then uniform within the node's share of its Gauss-Legendre cells), theta_i | mu, tau from
    the normal at the mode of g_i(theta) N(theta; mu, tau^2), a new study's theta ~ N(mu, tau^2).
    The summaries the tool prints never use these draws: they come from the grid."""
    az = idata_groups.az_module()
    rng = np.random.default_rng([seed, 5])
    g = post.grid
    shape = (chains, draws)
    n = chains * draws
    flat = g.mass.ravel()
    pick = rng.choice(flat.size, size=n, p=flat / flat.sum())
    row, col = np.divmod(pick, len(g.mu))
    # jitter within the node's share of its cell (a node's weight is the width it stands for)
    mu = g.mu[col] + g.wmu[col] * (rng.uniform(size=n) - 0.5)
    log_tau = np.log(np.maximum(g.tau, 1e-300))[row] + g.wlt[row] * (rng.uniform(size=n) - 0.5)
    tail = post.tau_prior.ppf(rng.uniform(size=n) * g.tail_prior) if g.tail_prior > 0 else 0.0
    tau = np.where(row == 0, tail, np.exp(log_tau))
    t = post.tables
    theta = np.empty((n, len(t.lo)))
    for i in range(len(t.lo)):
        prec = t.precs[i]
        it2 = np.where(tau > 0, 1 / np.maximum(tau, 1e-300) ** 2, np.inf)
        total = prec + it2
        centre = np.where(np.isfinite(it2), (prec * t.modes[i] + mu * it2) / total, mu)
        sd = np.where(np.isfinite(it2), 1 / np.sqrt(total), 0.0)
        theta[:, i] = centre + sd * rng.standard_normal(n)
    theta_new = mu + tau * rng.standard_normal(n)
    idata = az.from_dict(
        posterior={"mu": mu.reshape(shape), "tau": tau.reshape(shape),
                   "theta": theta.reshape(*shape, -1), "theta_new": theta_new.reshape(shape)},
        coords=idata_groups.study_coords(effects), dims={"theta": ["study"]},
        attrs={"engine": "binomial-exact", "draws": "independent (not MCMC)", "seed": seed})
    return idata
