"""Normal-normal model by quadrature over tau: `--engine exact`.

The posterior of (mu, tau) is computed by :func:`bayes_pip.engines.exact.exact_posterior`
(composite Gauss-Legendre in log tau, mu | tau in closed form); many meta-analyses at once by
:func:`bayes_pip.engines.exact_batch.batch_posterior` (``fit_batch``, used by sweeps and
calibration: adaptive Gauss-Kronrod cells in log tau).
"""

from __future__ import annotations

import functools

from bayes_pip.engines import payload_for
from bayes_pip.engines.base import EngineResult, Problem
from bayes_pip.engines.exact import exact_idata, exact_posterior
from bayes_pip.payloads import NormalEffects

TOL = 1e-10   # the batched engine's quadrature tolerance for sweeps (engines.exact_batch.TOL)


class ExactEngine:
    """Normal-normal model by quadrature over tau: no Monte Carlo error, no seed."""

    name = "exact"
    model = "normal-normal"
    help = "exact: normal-normal posterior by quadrature over tau, no Monte Carlo error"
    packages = ("numpy", "scipy", "pandas")
    accepts = (NormalEffects,)
    capabilities = frozenset({"batch", "marginal_likelihood", "regression"})
    stochastic = "stochastic" in capabilities  # derived, never declared twice

    def fit(self, problem: Problem, prior, seed, settings=None, progress=False) -> EngineResult:
        es = payload_for(self, problem)
        method = "composite 5-point Gauss-Legendre in log tau"
        if problem.posterior is not None:  # computed with the other fits of a sweep
            from bayes_pip.engines.batch import quadrature_label

            post = problem.posterior
            method = quadrature_label(TOL) + " (batched engine)"
        else:
            post = exact_posterior(es.y, es.v, prior.mu, prior.tau)
        draws = functools.partial(exact_idata, post, es, prior, seed)
        return EngineResult(post, draws, settings={"quadrature": {
            "nodes": int(len(post.tau)), "method": method}})

    def regress(self, payloads, columns, prior, coefficients, seed=None, settings=None,
                name=""):
        """Meta-regression by quadrature over tau with the coefficients conjugate (the method of
        bayesmeta ``bmr``; :mod:`bayes_pip.engines.exact_regression`), on each payload (one
        per reconstructed table), their equal-weight mixture over several: (posterior, None)."""
        from bayes_pip.engines.exact_regression import exact_regression
        from bayes_pip.engines.mixture import MixturePosterior

        parts = [exact_regression(p.y, p.v, p.X, columns, prior.tau, coefficients)
                 for p in payloads]
        return (parts[0] if len(parts) == 1 else MixturePosterior(parts)), None

    def evidence(self, payload, prior, random_effects, mu_prior=None, nulls=None,
                 with_posteriors=True):
        """Log marginal likelihoods of FE0, FE (RE0, RE) and the posteriors of mu given an
        effect (capability "marginal_likelihood"): :func:`evidence.normal_evidence`."""
        from bayes_pip.engines.evidence import normal_evidence

        return normal_evidence(payload, prior, random_effects, mu_prior, nulls, with_posteriors)

    def fit_batch(self, y, v, prior, mask=None, store: bool = True):
        """Many meta-analyses at once: ``y``, ``v`` of shape (analyses, studies), NaN-padded;
        ``prior`` one prior set or one per analysis. Returns a BatchPosterior whose
        ``row(r)`` answers the Posterior grammar (with ``store``)."""
        from bayes_pip.engines.exact_batch import batch_posterior  # numba: loaded on use

        return batch_posterior(y, v, mask, prior=prior, store=store, tol=TOL)

    def describe(self, fit) -> str:
        return "exact normal-normal posterior (quadrature over tau, no Monte Carlo error)"


ENGINE = ExactEngine()
