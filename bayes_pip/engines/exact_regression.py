"""Exact Bayesian meta-regression by one-dimensional quadrature over tau (the method of bayesmeta's
``bmr``; Roever & Friede 2023, Res Synth Methods 14(1)).

Model: y_i ~ N(theta_i, v_i), theta_i ~ N(x_i' beta, tau^2), i.e. y ~ N(X beta, diag(v + tau^2)), with a
normal prior N(m0, S0) on beta (each coefficient may be flat: precision 0) and a prior p(tau).

Notes
-----
Given tau, beta is conjugate. With W = diag(1/(v_i + tau^2)) and the prior precision P0 = S0^-1
(zero rows and columns for flat coefficients):

    P(tau) = X' W X + P0,     b(tau) = P^-1 (X' W y + P0 m0)              (beta | tau, y)
    log p(y | tau) = -1/2 sum log(v_i + tau^2) - 1/2 log|P| - 1/2 [(y - X b)' W (y - X b)
                     + (b - m0)' P0 (b - m0)]  + const
    a new study at x: theta_new | tau, y ~ N(x' b, x' P^-1 x + tau^2)

p(tau | y) is integrated with the exact engine's quadrature (:func:`exact.tau_grid`); each
coefficient, fitted value and prediction is then a normal mixture over the grid, answered by the
same methods as :class:`exact.ExactPosterior` (cdf, sf, quantile, mean, sd, density).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bayes_pip.engines import exact
from bayes_pip.errors import InputError


@dataclass(frozen=True)
class CoefficientPrior:
    """Independent normal priors on the coefficients (sd = inf: flat), per unit of each column."""
    mean: np.ndarray
    sd: np.ndarray

    @property
    def precision(self) -> np.ndarray:
        sd = np.asarray(self.sd, float)
        return np.where(np.isfinite(sd), 1.0 / np.where(np.isfinite(sd), sd, 1.0) ** 2, 0.0)

    @classmethod
    def flat(cls, p: int) -> "CoefficientPrior":
        return cls(np.zeros(p), np.full(p, np.inf))


def regression_moments(y, v, X, tau, prior: CoefficientPrior, chunk: int | None = None):
    """b(tau) (n, p), P(tau)^-1 (n, p, p) and log p(y | tau) (n) for every tau, in blocks of
    tau nodes so that the (nodes x k) and (nodes x p x p) arrays stay near 100 MB."""
    tau = np.atleast_1d(np.asarray(tau, float))
    k, p = X.shape
    chunk = chunk or max(1, 4_000_000 // max(k + p * p, 1))
    prec = prior.precision
    m0 = np.asarray(prior.mean, float)
    P0 = np.diag(prec)
    out_b, out_v, out_ll = [], [], []
    for i in range(0, len(tau), chunk):
        t2 = tau[i:i + chunk, None] ** 2
        w = 1.0 / (v[None, :] + t2)                                  # (n, k)
        P = np.einsum("ki,nk,kj->nij", X, w, X) + P0                  # (n, p, p)
        rhs = np.einsum("ki,nk,k->ni", X, w, y) + prec * m0           # (n, p)
        L = np.linalg.cholesky(P)
        b = np.linalg.solve(P, rhs[..., None])[..., 0]
        Vb = np.linalg.inv(P)
        resid = y[None, :] - b @ X.T
        quad = np.sum(w * resid**2, axis=1) + np.sum(prec * (b - m0) ** 2, axis=1)
        logdet = 2.0 * np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1)
        ll = -0.5 * np.sum(np.log(v[None, :] + t2), axis=1) - 0.5 * logdet - 0.5 * quad
        out_b.append(b)
        out_v.append(Vb)
        out_ll.append(ll)
    return np.concatenate(out_b), np.concatenate(out_v), np.concatenate(out_ll)


@dataclass(frozen=True)
class RegressionPosterior(exact.ExactPosterior):
    """p(tau | y) on the exact engine's grid with beta | tau, y normal at every node.

    Targets: ("beta", j) a coefficient; ("fitted", x) the mean effect at design row x;
    ("predict", x) a new study's effect at design row x; "tau".
    """
    X: np.ndarray = None
    names: tuple = ()
    coef_prior: CoefficientPrior = None
    beta_mean: np.ndarray = None     # (n, p)
    beta_cov: np.ndarray = None      # (n, p, p)

    def components(self, target):
        if isinstance(target, tuple) and target[0] == "beta":
            j = target[1] if isinstance(target[1], int) else self.names.index(target[1])
            return self.beta_mean[:, j], self.beta_cov[:, j, j]
        if isinstance(target, tuple) and target[0] in ("fitted", "predict"):
            x = np.asarray(target[1], float)
            m = self.beta_mean @ x
            var = np.einsum("i,nij,j->n", x, self.beta_cov, x)
            return m, var + (self.tau**2 if target[0] == "predict" else 0.0)
        raise ValueError(f"unknown meta-regression target {target!r}")

    def unnormalised(self, log_tau) -> np.ndarray:
        x = np.atleast_1d(np.asarray(log_tau, float))
        tau = np.exp(x)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            ll = regression_moments(self.y, self.v, self.X, tau, self.coef_prior)[2]
            value = ll + self.tau_prior.logpdf(tau) + x
        return np.exp(np.where(np.isfinite(value), value, -np.inf) - self.log_shift)


def exact_regression(y, v, X, names, tau_prior, coef_prior: CoefficientPrior | None = None,
                     cells: int = exact.CELLS) -> RegressionPosterior:
    """Posterior of a meta-regression of effects y (variances v) on the design X (intercept
    first) under a prior on tau and independent normal (or flat) priors on the coefficients.

    Examples
    --------
    >>> import numpy as np
    >>> from bayes_pip.priors import HalfNormal
    >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
    >>> post = exact_regression([0.1, 0.3, 0.4, 0.8], [0.04] * 4, X, ["intercept", "x"],
    ...                         HalfNormal(0.5))
    >>> round(post.quantile(("beta", "x"), 0.5), 2)
    0.22
    """
    y = np.atleast_1d(np.asarray(y, float))
    v = np.atleast_1d(np.asarray(v, float))
    X = np.asarray(X, float)
    k, p = X.shape
    coef_prior = CoefficientPrior.flat(p) if coef_prior is None else coef_prior
    flat = int(np.sum(coef_prior.precision == 0))
    if flat > k:
        raise InputError(f"{flat} coefficients with flat priors need at least {flat} studies "
                         f"(k = {k})")
    if np.linalg.matrix_rank(X) < p and flat:
        raise InputError("the moderators do not vary enough across the studies to estimate "
                         "their coefficients under a flat prior: " + ", ".join(names))
    if not getattr(tau_prior, "proper", True) and k - flat < 2:
        raise InputError(f"an improper prior on tau with {flat} flat coefficients needs at least "
                         f"{flat + 2} studies (k = {k}); choose a proper prior")
    grid = exact.tau_grid(lambda tau: regression_moments(y, v, X, tau, coef_prior)[2], tau_prior,
                          math.log(math.sqrt(float(np.median(v)))), cells)
    b, V, _ = regression_moments(y, v, X, grid.tau, coef_prior)
    return RegressionPosterior(
        y=y, v=v, mu_prior=None, tau_prior=tau_prior, edges=grid.edges,
        cum_edges=grid.cum_edges, log_shift=grid.shift, total=grid.total, tau=grid.tau,
        weight=grid.weight, mu_mean=b[:, 0], mu_var=V[:, 0, 0], X=X, names=tuple(names),
        coef_prior=coef_prior, beta_mean=b, beta_cov=V)
