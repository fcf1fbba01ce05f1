"""The exact binomial-normal engine, `--engine binomial-exact`: the posterior of
:mod:`bayes_pip.engines.exact_binomial` and the marginal likelihoods of
:mod:`bayes_pip.engines.binomial_evidence` behind the Engine protocol."""

from __future__ import annotations

import functools

from bayes_pip.engines import payload_for
from bayes_pip.engines.base import EngineResult, Problem
from bayes_pip.engines.exact_binomial import binomial_idata, binomial_posterior
from bayes_pip.errors import InputError
from bayes_pip.payloads import ArmCounts


class ExactBinomialEngine:
    """Binomial-normal model by nested quadrature: no Monte Carlo error, no seed."""

    name = "binomial-exact"
    model = "binomial-normal"
    help = ("binomial-exact: binomial-normal model on arm counts (RR/OR) by nested quadrature, "
            "no Monte Carlo error")
    packages = ("numpy", "scipy", "numba")
    accepts = (ArmCounts,)
    capabilities = frozenset({"marginal_likelihood"})
    stochastic = "stochastic" in capabilities  # derived, never declared twice

    def fit(self, problem: Problem, prior, seed, settings=None, progress=False) -> EngineResult:
        outcome = problem.outcome
        if outcome is not None and outcome.scale.link is None:
            raise InputError(f"--engine {self.name} needs an RR or OR outcome; "
                             f"'{outcome.outcome}' is {outcome.measure}")
        arms = payload_for(self, problem)
        post = binomial_posterior(arms.events[:, 0], arms.n[:, 0], arms.events[:, 1],
                                  arms.n[:, 1], arms.link, prior.mu, prior.tau, prior.baseline)
        draws = functools.partial(binomial_idata, post, arms, prior, seed)
        g = post.grid
        return EngineResult(post, draws, settings={"quadrature": {
            "method": "nested: trapezoid in the baseline, adaptive Gauss-Hermite in theta, "
                      "Gauss-Legendre in (mu, log tau)",
            "nodes": int(g.mass.size), "b_error": post.tables.b_error,
            "gh_error": g.gh_error, "edge_mass": g.edge_mass}})

    def evidence(self, payload, prior, random_effects, mu_prior=None, nulls=None,
                 with_posteriors=True):
        """Log marginal likelihoods of FE0, FE (RE0, RE) with the binomial likelihood and the
        posteriors of mu given an effect (capability "marginal_likelihood"); ``nulls``: FE0
        and RE0 already computed for the same data (they do not depend on the prior of mu)."""
        from bayes_pip.engines.binomial_evidence import binomial_evidence  # bma only
        from bayes_pip.engines.evidence import weigh

        log_ml, parts = binomial_evidence(
            payload.events[:, 0], payload.n[:, 0], payload.events[:, 1], payload.n[:, 1],
            payload.link, prior.mu if mu_prior is None else mu_prior, prior.tau,
            prior.baseline, random_effects, nulls)
        return weigh(log_ml), parts

    def describe(self, fit) -> str:
        return ("exact binomial-normal posterior (arm counts; nested quadrature, no Monte Carlo "
                "error)")


ENGINE = ExactBinomialEngine()
