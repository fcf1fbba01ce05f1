"""Classical meta-regression and subgroup analysis (NumPy/SciPy only).

A design matrix X (intercept first) enters the random-effects model y_i ~ N(x_i' beta, v_i + tau^2).
The formulas are those of metafor ``rma.uni`` with ``mods``; the tests check every number against
metafor 3.8 (tests/reference/metareg_reference.R).

- beta = (X' W X)^-1 X' W y with W = diag(1/(v_i + tau^2)); cov(beta) = (X' W X)^-1; z tests.
- QE = (y - X b_0)' W_0 (y - X b_0) with W_0 = diag(1/v_i) (residual heterogeneity, k - p df).
- QM = Wald test of every coefficient except the intercept (p - 1 df).
- Residual tau^2: DL (method of moments with P = W_0 - W_0 X (X' W_0 X)^-1 X' W_0:
  tau^2 = max(0, (QE - (k - p)) / tr P)), REML (Fisher scoring on the restricted likelihood,
  truncated at 0) or PM (the generalised QE(tau^2) equals k - p).
- R^2 = max(0, (tau^2_RE - tau^2) / tau^2_RE), tau^2_RE from the model without moderators, same
  method and studies (0 when tau^2_RE = 0); residual I^2 = tau^2 / (tau^2 + (k - p) / tr P).

Subgroup analysis follows RevMan 5's test for subgroup differences: each subgroup is pooled with its
own tau^2, and the subgroup estimates are compared by a fixed-effect Q with G - 1 df. With
``tau="common"`` one tau^2 is shared (the mixed-effects model with a factor), and Q between is its QM.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import optimize, stats

from . import dl
from .record import Keyed

METHODS = ("DL", "REML", "PM")
TESTS = ("z", "knha")
TAU_MODES = ("separate", "common")
ITERATIONS = 1000
TOLERANCE = 1e-12


@dataclasses.dataclass(frozen=True)
class MetaRegression:
    """A fitted mixed-effects meta-regression (coefficients in the order of the design columns)."""
    names: tuple[str, ...]
    estimate: np.ndarray
    se: np.ndarray
    cov: np.ndarray
    z: np.ndarray
    p: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    tau2: float
    tau2_without: float
    qm: float
    qm_df: int
    qm_p: float
    qe: float
    qe_df: int
    qe_p: float
    r2: float          # percent
    i2: float          # residual I^2, percent
    k: int
    method: str
    test: str = "z"          # "knha": Knapp-Hartung t tests on k - p df and an F test for QM
    qm_df2: int | None = None

    def predict(self, x_new) -> dict:
        """Predicted effect at design rows x_new (intercept included): estimate, SE, 95% CI and
        95% prediction interval (normal quantiles, as metafor ``predict`` with a z test)."""
        x_new = np.atleast_2d(np.asarray(x_new, float))
        pred = x_new @ self.estimate
        se = np.sqrt(np.einsum("ij,jk,ik->i", x_new, self.cov, x_new))
        z = dl.Z_975
        half_pi = z * np.sqrt(se**2 + self.tau2)
        return {"estimate": pred, "se": se, "ci_low": pred - z * se, "ci_high": pred + z * se,
                "pi_low": pred - half_pi, "pi_high": pred + half_pi}

    def coefficients(self) -> list[dict]:
        return [{"name": n, "estimate": float(e), "se": float(s), "ci_low": float(lo),
                 "ci_high": float(hi), "z": float(z), "p": float(p)}
                for n, e, s, lo, hi, z, p in zip(self.names, self.estimate, self.se, self.ci_low,
                                                 self.ci_high, self.z, self.p)]


class _Residual:
    """The residual projection P = W - W X A X' W (A = (X' W X)^-1) for weights w, never formed:
    every quantity the estimators need is O(k p^2) in time and O(k p) in memory (a dense k x k P
    took 2.5 GB at k = 10,000)."""

    def __init__(self, X, w):
        self.X, self.w = X, w
        self.wx = X * w[:, None]
        self.a = np.linalg.inv(X.T @ self.wx)

    def apply(self, y):
        """P y = w (y - X b), b the weighted least-squares fit."""
        return self.w * (y - self.X @ (self.a @ (self.wx.T @ y)))

    def quadratic(self, y) -> float:
        """y' P y: the weighted residual sum of squares."""
        return float(y @ self.apply(y))

    def trace(self) -> float:
        """tr P = sum w - tr(A X' W^2 X)."""
        return float(self.w.sum() - np.sum(self.a * (self.wx.T @ self.wx)))

    def trace_square(self) -> float:
        """tr P^2 = tr W^2 - 2 tr(A X' W^3 X) + tr(A X' W^2 X A X' W^2 X)."""
        m2 = self.wx.T @ self.wx
        m3 = self.wx.T @ (self.wx * self.w[:, None])
        am2 = self.a @ m2
        return float(np.sum(self.w**2) - 2.0 * np.sum(self.a * m3) + np.sum(am2 * am2.T))


def _residual_q(y, X, w):
    return _Residual(X, w).quadratic(y)


def _tau2_dl(y, v, X):
    k, p = X.shape
    P = _Residual(X, 1.0 / v)
    return max(0.0, (P.quadratic(y) - (k - p)) / P.trace())


def _tau2_reml(y, v, X, start):
    tau2 = start
    for _ in range(ITERATIONS):
        P = _Residual(X, 1.0 / (v + tau2))
        Py = P.apply(y)
        score = float(Py @ Py) - P.trace()
        info = P.trace_square()
        new = max(0.0, tau2 + score / info)
        if abs(new - tau2) <= TOLERANCE * max(1.0, new):
            return new
        tau2 = new
    raise dl.NotConverged("REML Fisher scoring did not converge for the meta-regression")


def _tau2_pm(y, v, X):
    k, p = X.shape
    target = k - p
    def excess(t):
        return _residual_q(y, X, 1.0 / (v + t)) - target
    if excess(0.0) <= 0:
        return 0.0
    high = 1.0
    while excess(high) > 0:
        high *= 4.0
    return float(optimize.brentq(excess, 0.0, high, xtol=1e-15, rtol=1e-14, maxiter=ITERATIONS))


def residual_tau2(y, v, X, method: str = "DL") -> float:
    """Residual between-study variance of the model with design X by DL, REML or PM."""
    y, v, X = np.asarray(y, float), np.asarray(v, float), np.asarray(X, float)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (allowed: {', '.join(METHODS)})")
    if X.shape[0] <= X.shape[1]:
        return 0.0
    if method == "DL":
        return _tau2_dl(y, v, X)
    if method == "PM":
        return _tau2_pm(y, v, X)
    return _tau2_reml(y, v, X, _tau2_dl(y, v, X))


def check_design(X, names) -> None:
    k, p = X.shape
    if k < p + 1:
        raise ValueError(f"{k} studies cannot estimate {p} coefficients and a residual: at least "
                         f"{p + 1} studies are needed")
    if np.linalg.matrix_rank(X) < p:
        raise ValueError("the moderator does not vary across the studies (or one moderator is a "
                         "copy of another), so its effect cannot be estimated: columns "
                         + ", ".join(names))


def meta_regression(y, v, X, names, method: str = "DL", test: str = "z") -> MetaRegression:
    """Mixed-effects meta-regression of effects y (variances v) on the design X (intercept first).

    ``test="knha"``: the Knapp-Hartung adjustment as metafor ``test="knha"``: the covariance is
    multiplied by s^2 = sum w_i (y_i - x_i' b)^2 / (k - p) (not truncated at 1), coefficients get
    t tests on k - p df, and QM becomes an F statistic on (p - 1, k - p) df."""
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r} (allowed: {', '.join(TESTS)})")
    y, v, X = np.asarray(y, float), np.asarray(v, float), np.asarray(X, float)
    names = tuple(names)
    check_design(X, names)
    k, p = X.shape
    tau2 = residual_tau2(y, v, X, method)
    w = 1.0 / (v + tau2)
    wx = X * w[:, None]
    cov = np.linalg.inv(X.T @ wx)
    beta = cov @ (wx.T @ y)
    df2 = None
    if test == "knha":
        df2 = k - p
        cov = cov * float(np.sum(w * (y - X @ beta) ** 2) / df2)
    se = np.sqrt(np.diag(cov))
    z = beta / se
    if test == "knha":
        pval = 2.0 * stats.t.sf(np.abs(z), df2)
        zc = stats.t.ppf(0.975, df2)
    else:
        pval = 2.0 * stats.norm.sf(np.abs(z))
        zc = dl.Z_975
    b = beta[1:]
    qm = float(b @ np.linalg.solve(cov[1:, 1:], b)) if p > 1 else 0.0
    if test == "knha" and p > 1:
        qm /= p - 1
    P0 = _Residual(X, 1.0 / v)
    qe = max(0.0, P0.quadratic(y))
    vt = (k - p) / P0.trace()
    ones = np.ones((k, 1))
    tau2_without = residual_tau2(y, v, ones, method)
    r2 = 0.0 if tau2_without <= 0 else max(0.0, 100.0 * (tau2_without - tau2) / tau2_without)
    return MetaRegression(
        names=names, estimate=beta, se=se, cov=cov, z=z, p=pval, ci_low=beta - zc * se,
        ci_high=beta + zc * se, tau2=float(tau2), tau2_without=float(tau2_without), qm=qm,
        qm_df=p - 1, qm_p=(1.0 if p == 1 else float(stats.f.sf(qm, p - 1, df2)) if df2
                           else float(stats.chi2.sf(qm, p - 1))), qe=qe, qe_df=k - p,
        qe_p=float(stats.chi2.sf(qe, k - p)), r2=float(r2), i2=float(100.0 * tau2 / (vt + tau2)),
        k=k, method=method, test=test, qm_df2=df2)


@dataclasses.dataclass(frozen=True)
class Subgroup(Keyed):
    """One subgroup pooled on the analysis scale (RevMan 5)."""
    level: str
    k: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    tau2: float


@dataclasses.dataclass(frozen=True)
class SubgroupAnalysis:
    """Per-level pooled estimates and the test for subgroup differences."""
    subgroups: tuple[Subgroup, ...]
    q_between: float
    df_between: int
    p_between: float
    method: str
    tau: str

    def to_dict(self) -> dict:
        return {"subgroups": [dataclasses.asdict(s) for s in self.subgroups],
                "q_between": self.q_between, "df_between": self.df_between,
                "p_between": self.p_between, "method": self.method, "tau": self.tau}


def levels_of(groups) -> list[str]:
    """Distinct levels in sorted order (the first is the reference of a categorical moderator)."""
    return sorted({str(g) for g in groups})


def subgroup_analysis(y, v, groups, method: str = "DL", tau: str = "separate") -> SubgroupAnalysis:
    """Pool each subgroup and test for differences between them (RevMan 5 with the default
    ``tau="separate"``; ``tau="common"`` shares one tau^2 and uses the mixed-effects model's QM)."""
    y, v = np.asarray(y, float), np.asarray(v, float)
    groups = np.asarray([str(g) for g in groups])
    if tau not in TAU_MODES:
        raise ValueError(f"unknown tau mode {tau!r} (allowed: {', '.join(TAU_MODES)})")
    levels = levels_of(groups)
    if len(levels) < 2:
        raise ValueError("a subgroup analysis needs at least two subgroups; every study has "
                         f"the value '{levels[0]}'" if levels else "no studies")
    zc = dl.Z_975
    if tau == "separate":
        rows = []
        for level in levels:
            sel = groups == level
            pooled = dl.random_effects(y[sel], v[sel], method=method)
            est, se = float(pooled.mu), float(pooled.se)
            rows.append(Subgroup(level, int(sel.sum()), est, se, est - zc * se, est + zc * se,
                                 float(pooled.tau2)))
        est = np.array([r.estimate for r in rows])
        w = 1.0 / np.array([r.se for r in rows]) ** 2
        q = float(np.sum(w * (est - np.sum(w * est) / np.sum(w)) ** 2))
    else:
        X, names = factor_design(groups, levels, "group")
        fit = meta_regression(y, v, X, names, method)
        rows = []
        for level in levels:
            sel = groups == level
            w = 1.0 / (v[sel] + fit.tau2)
            est = float(np.sum(w * y[sel]) / np.sum(w))
            se = float(1.0 / np.sqrt(np.sum(w)))
            rows.append(Subgroup(level, int(sel.sum()), est, se, est - zc * se, est + zc * se,
                                 fit.tau2))
        q = fit.qm
    df = len(levels) - 1
    return SubgroupAnalysis(tuple(rows), q, df, float(stats.chi2.sf(q, df)), method, tau)


def factor_design(values, levels, name):
    """Intercept plus one indicator per non-reference level (treatment contrasts, as R's factor)."""
    values = np.asarray([str(x) for x in values])
    columns = [np.ones(len(values))] + [(values == lvl).astype(float) for lvl in levels[1:]]
    names = ["intercept"] + [f"{name}: {lvl} vs {levels[0]}" for lvl in levels[1:]]
    return np.column_stack(columns), names


@dataclasses.dataclass(frozen=True)
class Moderator:
    """One moderator's values per study: numeric (per unit as given) or categorical (levels sorted,
    the first is the reference)."""
    name: str
    values: tuple
    kind: str                      # "numeric" or "categorical"
    unit: str = ""

    @property
    def levels(self) -> list[str]:
        return levels_of(self.values) if self.kind == "categorical" else []


def design_matrix(moderators) -> tuple[np.ndarray, list[str]]:
    """Design matrix with an intercept first, then each moderator's columns (a numeric moderator per
    unit as given; a categorical one as indicators against its first level)."""
    if not moderators:
        raise ValueError("no moderator given")
    k = len(moderators[0].values)
    columns, names = [np.ones(k)], ["intercept"]
    for m in moderators:
        if m.kind == "numeric":
            columns.append(np.asarray(m.values, float))
            names.append(m.name)
        else:
            X, n = factor_design(m.values, m.levels, m.name)
            columns.extend(X[:, 1:].T)
            names.extend(n[1:])
    return np.column_stack(columns), names
