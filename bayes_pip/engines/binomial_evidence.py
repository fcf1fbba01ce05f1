"""Marginal likelihoods of the four models (FE0: mu = 0 and tau = 0; FE: tau = 0; RE0: mu = 0;
RE) with the binomial-normal likelihood on arm counts: `bma` of a binary outcome with the
binomial likelihood. The study likelihoods, the (mu, log tau) grid and its marginals are those of
the exact binomial engine (engines/exact_binomial.py); this module integrates them under each
model."""

from __future__ import annotations

import math

import numpy as np

from bayes_pip.engines.binomial_tables import StudyTables, log_lik, study_tables
from bayes_pip.engines.exact_binomial import (ALIVE, BinomialExactPosterior, gl_nodes,
                                              posterior_grid, widen)
from bayes_pip.engines.marginals import CellMarginal
from bayes_pip.errors import InputError


class FixedEffectPosterior:
    """mu | arm counts under the fixed-effect binomial model (tau = 0): p(mu) prod_i g_i(mu) on
    composite Gauss-Legendre cells, with the query grammar for mu."""

    def __init__(self, edges, nodes, log_f, weights):
        top = float(log_f.max())
        mass = weights * np.exp(log_f - top)
        total = float(mass.sum())
        self.log_ml = top + math.log(total)
        self.marginal = CellMarginal(edges, mass / total, weights)

    def cdf(self, target, x: float) -> float:
        return float(np.clip(self.marginal.cdf(x), 0.0, 1.0))

    def sf(self, target, x: float) -> float:
        return 1.0 - self.cdf(target, x)

    def quantile(self, target, q: float) -> float:
        return self.marginal.quantile(q)


def fixed_effect(tables: StudyTables, mu_prior) -> FixedEffectPosterior:
    """The fixed-effect model: int p(mu) prod g_i(mu) dmu on 400 Gauss-Legendre cells over the
    region where the integrand is within ALIVE of its maximum (found on 4,001 points)."""
    t = tables
    lo, hi = float(np.min(t.centre - 12 * t.se)), float(np.max(t.centre + 12 * t.se))
    if mu_prior.proper:
        lo, hi = min(lo, mu_prior.mean), max(hi, mu_prior.mean)
    span = np.linspace(lo, hi, 4001)
    f0 = log_lik(t, span, np.zeros(1))[0][0] + mu_prior.logpdf(span)
    edges = np.linspace(*widen(span, np.flatnonzero(f0 > f0.max() - ALIVE)), 401)
    nodes, w = gl_nodes(edges)
    f = log_lik(t, nodes, np.zeros(1))[0][0] + mu_prior.logpdf(nodes)
    return FixedEffectPosterior(edges, nodes, f, w)


def log_marginal_likelihoods(post: BinomialExactPosterior) -> dict:
    """log p(data | model) for FE0 (mu = 0, tau = 0), FE (tau = 0), RE0 (mu = 0), RE."""
    t = post.tables
    logs = {"FE0": null_fixed(t), "FE": fixed_effect(t, post.mu_prior).log_ml}
    logs["RE0"] = null_random(t, post.tau_prior)
    logs["RE"] = post.log_marginal_likelihood
    return logs


def null_fixed(tables: StudyTables) -> float:
    """log p(data | mu = 0, tau = 0) = sum_i log g_i(0)."""
    return float(log_lik(tables, np.zeros(1), np.zeros(1))[0][0, 0])


def null_random(tables: StudyTables, tau_prior) -> float:
    """log p(data | mu = 0) = log int prod_i L_i(0, tau) p(tau) dtau (the exact engine's tau
    quadrature)."""
    from bayes_pip.engines.exact import tau_grid

    msg = ("the marginal likelihood does not converge within the quadrature range: the prior "
           "on tau is too vague for a Bayes factor")
    # a smooth one-dimensional integrand whose every point costs k two-dimensional integrals:
    # 401 scout points and 100 cells (within 5e-10 of 4001 and 400 on Crins 2014)
    grid = tau_grid(lambda tau: log_lik(tables, np.zeros(1), tau)[0][:, 0], tau_prior,
                    math.log(float(np.median(tables.se))), cells=100, unbounded=msg,
                    scout_points=401)
    return grid.shift + math.log(grid.total)


def binomial_evidence(e_t, n_t, e_c, n_c, link: str, mu_prior, tau_prior, baseline,
                      random_effects: bool = True, nulls: dict | None = None):
    """Log marginal likelihoods of FE0 and FE (and RE0 and RE with ``random_effects``) with
    the binomial likelihood, and the posteriors of mu under the effect models: (log_ml,
    {"FE": ..., "RE": ...}). ``nulls``: FE0 and RE0 already computed for the same data, tau
    prior and baseline (they do not depend on the prior of mu), e.g. by a call that differs
    only in ``mu_prior``."""
    if not getattr(mu_prior, "proper", True):
        raise InputError("Bayes factors need a proper prior on mu (a flat prior makes the "
                         "marginal likelihood arbitrary)")
    tables = study_tables(e_t, n_t, e_c, n_c, link, baseline)
    nulls = nulls or {}
    fe = fixed_effect(tables, mu_prior)
    logs = {"FE0": nulls["FE0"] if "FE0" in nulls else null_fixed(tables), "FE": fe.log_ml}
    parts = {"FE": fe}
    if random_effects:
        if not getattr(tau_prior, "proper", True):
            raise InputError("Bayes factors need a proper prior on tau")
        re = BinomialExactPosterior(tables, posterior_grid(tables, mu_prior, tau_prior),
                                    mu_prior, tau_prior)
        logs["RE0"] = nulls["RE0"] if "RE0" in nulls else null_random(tables, tau_prior)
        logs["RE"] = re.log_marginal_likelihood
        parts["RE"] = re
    return logs, parts
