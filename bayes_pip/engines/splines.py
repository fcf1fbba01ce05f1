"""Not-a-knot cubic splines for the exact binomial engine: the same coefficients as SciPy's
``scipy.interpolate.CubicSpline(x, y)`` (the same banded system, solved by
``scipy.linalg.solve_banded``; tested equal to 1e-12), with the few piecewise-polynomial
operations the engine uses (values, derivatives, integrals, the antiderivative).

Why not CubicSpline itself: importing scipy.interpolate imports scipy.optimize, which alone costs
a cold `fit --engine binomial-exact` about a quarter of a second, a tenth of its time, and
nothing else on that path needs it.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_banded


def not_a_knot(x, y) -> np.ndarray:
    """Coefficients (4, len(x) - 1) of the not-a-knot cubic spline through (x, y), highest
    power first, each piece in powers of (t - x[i]) (SciPy's PPoly layout)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 3:
        raise ValueError("a not-a-knot cubic spline needs at least 3 points")
    dx = np.diff(x)
    slope = np.diff(y) / dx
    if n == 3:  # both conditions coincide: the parabola through the three points
        a = np.array([[1.0, 1.0, 0.0], [dx[1], 2 * (dx[0] + dx[1]), dx[0]], [0.0, 1.0, 1.0]])
        b = np.array([2 * slope[0], 3 * (dx[0] * slope[1] + dx[1] * slope[0]), 2 * slope[1]])
        s = np.linalg.solve(a, b)
    else:
        a = np.zeros((3, n))
        b = np.empty(n)
        a[1, 1:-1] = 2 * (dx[:-1] + dx[1:])
        a[0, 2:] = dx[:-1]
        a[-1, :-2] = dx[1:]
        b[1:-1] = 3 * (dx[1:] * slope[:-1] + dx[:-1] * slope[1:])
        a[1, 0] = dx[1]
        a[0, 1] = d = x[2] - x[0]
        b[0] = ((dx[0] + 2 * d) * dx[1] * slope[0] + dx[0] ** 2 * slope[1]) / d
        a[1, -1] = dx[-2]
        a[-1, -2] = d = x[-1] - x[-3]
        b[-1] = (dx[-1] ** 2 * slope[-2] + (2 * d + dx[-1]) * dx[-2] * slope[-1]) / d
        s = solve_banded((1, 1), a, b, overwrite_ab=True, overwrite_b=True,
                         check_finite=False)
    t = (s[:-1] + s[1:] - 2 * slope) / dx
    return np.stack((t / dx, (slope - s[:-1]) / dx - t, s[:-1], y[:-1]))


class Spline:
    """A piecewise polynomial (coefficients ``c``: (degree + 1, pieces), highest power first)
    on breakpoints ``x``; evaluated beyond its ends by its first and last pieces."""

    def __init__(self, c, x):
        self.c = np.asarray(c, float)
        self.x = np.asarray(x, float)

    @classmethod
    def through(cls, x, y) -> "Spline":
        """The not-a-knot cubic spline through (x, y)."""
        return cls(not_a_knot(x, y), x)

    def __call__(self, t, nu: int = 0):
        t = np.asarray(t, float)
        i = np.clip(np.searchsorted(self.x, t, side="right") - 1, 0, self.c.shape[1] - 1)
        d = t - self.x[i]
        c = self.c
        for _ in range(nu):  # differentiate the coefficients
            k = c.shape[0] - 1
            c = c[:-1] * np.arange(k, 0, -1)[:, None]
        out = c[0][i]
        for row in c[1:]:
            out = out * d + row[i]
        return out

    def antiderivative(self) -> "Spline":
        """The antiderivative that is 0 at the first breakpoint (continuous across pieces)."""
        k = self.c.shape[0]
        c = np.zeros((k + 1, self.c.shape[1]))
        c[:-1] = self.c / np.arange(k, 0, -1)[:, None]
        h = np.diff(self.x)
        # each piece's integral over its own width, accumulated into the constants
        widths = np.zeros(self.c.shape[1])
        for row in c[:-1]:
            widths = (widths + row) * h
        c[-1, 1:] = np.cumsum(widths)[:-1]
        return Spline(c, self.x)

    def integrate(self, a: float, b: float) -> float:
        anti = self.antiderivative()
        return float(anti(b) - anti(a))
