"""One-dimensional marginals of a quadrature posterior, with the cdf / quantile / density
grammar: known at the five Gauss-Legendre nodes of each cell (CellMarginal: the exact binomial
engine's mu and tau), or as a density on a sinh-spaced curve (CurveMarginal: a new study's effect
and each study's own effect, with heavy tails)."""

from __future__ import annotations

import math

import numpy as np
from bayes_pip.engines.splines import Spline

GL_X, GL_W = np.polynomial.legendre.leggauss(5)


INVERT_STEPS = 200  # budget of the root search (it takes up to about 35 steps)


def invert(cdf, lo: float, hi: float, q: float) -> float:
    """The x in [lo, hi] with cdf(x) = q (an end when q lies outside the cell), to 1e-13
    relative: the Illinois variant of the false-position method on the bracket (superlinear on
    a smooth monotone CDF, never leaving the bracket; tested equal to scipy.optimize.brentq at
    xtol = rtol = 1e-13). Not brentq itself: importing scipy.optimize costs a cold
    `fit --engine binomial-exact` about a quarter of a second, and nothing else on that path
    needs it."""
    a, b = float(lo), float(hi)
    fa, fb = cdf(a) - q, cdf(b) - q
    if fa > 0:
        return a
    if fb < 0:
        return b
    side = 0
    x = 0.5 * (a + b)
    for _ in range(INVERT_STEPS):
        x = b - fb * (b - a) / (fb - fa) if fb != fa else 0.5 * (a + b)
        if not a < x < b:
            x = 0.5 * (a + b)
        fx = cdf(x) - q
        if fx == 0.0:
            return x
        if (fx > 0) == (fb > 0):  # x replaces b; halve the stale end's value when it stays
            b, fb = x, fx
            if side == -1:
                fa *= 0.5
            side = -1
        else:
            a, fa = x, fx
            if side == 1:
                fb *= 0.5
            side = 1
        if b - a <= 1e-13 * (1.0 + abs(x)):
            return 0.5 * (a + b)
    return x


def lagrange_basis(t):
    """Lagrange basis of the five Gauss-Legendre nodes at points t in [-1, 1]: (len t, 5)."""
    t = np.atleast_1d(t)[:, None]
    out = np.ones((t.shape[0], 5))
    for a in range(5):
        for b in range(5):
            if a != b:
                out[:, a] *= (t[:, 0] - GL_X[b]) / (GL_X[a] - GL_X[b])
    return out


class CellMarginal:
    """A one-dimensional marginal known at the Gauss-Legendre nodes of its cells: the log density
    is interpolated inside a cell, the CDF integrates the interpolant over the partial cell."""

    def __init__(self, edges, node_mass, node_weight, below: float = 0.0):
        self.edges = edges
        self.mass = node_mass.reshape(-1, 5)
        with np.errstate(divide="ignore"):
            self.logd = np.log(np.maximum(node_mass / node_weight, 1e-300)).reshape(-1, 5)
        self.below = below  # mass below the first edge
        self.cum = below + np.concatenate([[0.0], np.cumsum(self.mass.sum(axis=1))])

    def log_density(self, x):
        x = np.atleast_1d(np.asarray(x, float))
        c = np.clip(np.searchsorted(self.edges, x) - 1, 0, len(self.edges) - 2)
        a, b = self.edges[c], self.edges[c + 1]
        t = 2 * (x - a) / (b - a) - 1
        basis = lagrange_basis(t)
        out = np.sum(basis * self.logd[c], axis=1)
        return np.where((x < self.edges[0]) | (x > self.edges[-1]), -np.inf, out)

    def cdf(self, x: float) -> float:
        if x <= self.edges[0]:
            return self.below
        if x >= self.edges[-1]:
            return float(self.cum[-1])
        c = int(np.clip(np.searchsorted(self.edges, x) - 1, 0, len(self.edges) - 2))
        a = self.edges[c]
        half = 0.5 * (x - a)
        pts = a + half * (GL_X + 1)
        partial = half * np.sum(GL_W * np.exp(self.log_density(pts)))
        return float(min(self.cum[c] + partial, self.cum[-1]))

    def quantile(self, q: float) -> float:
        c = int(np.clip(np.searchsorted(self.cum, q) - 1, 0, len(self.edges) - 2))
        return invert(self.cdf, self.edges[c], self.edges[c + 1], q)


class CurveMarginal:
    """A marginal given by its density on the grid x = c + a sinh(u), u uniform: steps of about
    a du near c, growing in proportion to |x - c| in the tails (so a heavy-tailed prediction is
    resolved at its centre and reaches its far tails with a few thousand points). The density in
    u is integrated by a cubic spline."""

    def __init__(self, centre: float, scale: float, u, density_x):
        self.c, self.a, self.u = centre, scale, u
        jac = scale * np.cosh(u)
        total = Spline.through(u, density_x * jac).integrate(u[0], u[-1])
        self.density_u = Spline.through(u, density_x * jac / total)
        self.cdf_u = self.density_u.antiderivative()
        self.cum = self.cdf_u(u)

    def to_u(self, x):
        return np.arcsinh((np.asarray(x, float) - self.c) / self.a)

    def to_x(self, u):
        return self.c + self.a * np.sinh(u)

    def cdf(self, x: float) -> float:
        u = float(np.clip(self.to_u(x), self.u[0], self.u[-1]))
        return float(np.clip(self.cdf_u(u), 0.0, 1.0))

    def quantile(self, q: float) -> float:
        j = int(np.clip(np.searchsorted(self.cum, q) - 1, 0, len(self.u) - 2))
        return float(self.to_x(invert(lambda u: float(self.cdf_u(u)), self.u[j], self.u[j + 1],
                                      q)))

    def density(self, x):
        u = self.to_u(np.atleast_1d(np.asarray(x, float)))
        inside = (u >= self.u[0]) & (u <= self.u[-1])
        f = np.maximum(self.density_u(np.clip(u, self.u[0], self.u[-1])), 0.0)
        return np.where(inside, f / (self.a * np.cosh(u)), 0.0)

    def moments(self):
        f = np.maximum(self.density_u(self.u), 0.0)
        x = self.to_x(self.u)
        m = Spline.through(self.u, x * f).integrate(self.u[0], self.u[-1])
        m2 = Spline.through(self.u, x**2 * f).integrate(self.u[0], self.u[-1])
        return float(m), float(math.sqrt(max(m2 - m * m, 0.0)))
