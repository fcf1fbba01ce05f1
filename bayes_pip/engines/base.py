"""What an engine is: the Posterior query grammar every engine answers, the problem it is given,
and what it returns.

Targets of the grammar: ``"mu"`` (the pooled effect, analysis scale), ``"tau"`` (between-study
SD), ``"predict"`` (a new study's true effect) and ``("study", i)`` (study i's shrunken effect);
models with more than one pooled quantity index them by coordinate (``("mu", "secure")``,
``("beta", "duration_months")``, ``("d", "PIP vs PPI")``) with the same grammar.
The exact engine answers in closed form or by quadrature, MCMC engines from draws; summaries,
reports and figures only ask these questions, so they never know which engine ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bayes_pip import payloads

Target = str | tuple[str, int | str]  # "mu", ("study", 0), ("mu", "secure"), ("beta", "x")


@runtime_checkable
class Posterior(Protocol):
    """The questions every engine's posterior answers (bayesmeta's d/p/q grammar)."""

    def cdf(self, target: Target, x: float) -> float: ...
    def sf(self, target: Target, x: float) -> float: ...
    def quantile(self, target: Target, q: float) -> float: ...
    def mean(self, target: Target) -> float: ...
    def sd(self, target: Target) -> float: ...
    def density(self, target: Target, x) -> np.ndarray: ...


@dataclass(frozen=True)
class SamplerSettings:
    draws: int = 2000
    tune: int = 1000
    chains: int = 4
    cores: int | None = None            # None: the engine's default (threads for the chains)
    target_accept: float | None = None  # None: the engine's default for the number of studies

    def to_dict(self, sampler: str = "nutpie NUTS") -> dict:
        """The settings as stored with a fit; ``sampler``: the engine's (Engine.sampler)."""
        return {"draws": self.draws, "tune": self.tune, "chains": self.chains,
                "cores": self.cores, "target_accept": self.target_accept, "sampler": sampler}


@dataclass(frozen=True)
class Problem:
    """What an engine fits: one outcome's effects (study level) or its published pooled
    estimate (summary level), already resolved and validated upstream.

    The data reach the engine as a likelihood payload (:mod:`bayes_pip.payloads`): either
    ``payload`` itself, or the payloads ``effects`` can give (normal effects, and arm counts
    for a ratio measure); :func:`bayes_pip.engines.payload_for` picks the one an engine takes.
    """

    outcome: Any                  # bayes_pip.data.Outcome (None for simulated data)
    level: str                    # "study" or "summary"
    effects: Any = None           # bayes_pip.effects.EffectSizes (study level)
    estimate: float | None = None  # summary level: pooled estimate on the analysis scale
    se: float | None = None        # and its standard error
    posterior: Any = None          # already computed (the batched exact engine, in sweeps)
    payload: Any = None            # a payload given directly (simulations, new data shapes)

    @property
    def name(self) -> str:
        """The outcome id, for messages."""
        return self.outcome.outcome if self.outcome is not None else "simulated data"

    @property
    def payloads(self) -> tuple:
        """Every payload this problem can give, in order of preference."""
        if self.payload is not None:
            return (self.payload,)
        if self.effects is None:
            return ()
        from bayes_pip import measures

        link = measures.get(self.effects.measure).link if self.effects.measure else None
        return payloads.from_effects(self.effects, link)


@dataclass(frozen=True)
class EngineResult:
    """An engine's answer: the posterior, its draws (MCMC) and how it was computed."""

    posterior: Posterior
    idata: Any = None              # arviz.InferenceData, or a function that makes it on demand
    diagnostics: dict | None = None
    # engine settings stored with the fit: {"quadrature": {...}} for an engine that does not
    # sample, {"sampler": {...}} for one that does (the keys of bayes_pip.record.Settings)
    settings: dict = field(default_factory=dict)


# what an engine can do beyond fitting one problem (Engine.capabilities)
CAPABILITIES = {
    "stochastic": "the result depends on the seed (MCMC); draws carry Monte Carlo error",
    "batch": "fits many meta-analyses at once: fit_batch(y, v, prior) with .row(r) posteriors",
    "marginal_likelihood": "compares models (`bma`): evidence(payload, prior, random_effects, "
                           "mu_prior, nulls) gives the Evidence of FE0, FE, RE0, RE and the "
                           "posteriors of mu under FE and RE",
    "regression": "fits a meta-regression: regress(payloads, columns, prior, coefficients, seed, "
                  "settings, name) on NormalEffects with their design matrix X gives a posterior "
                  "of \"tau\", (\"beta\", j) and (\"fitted\", x), and its diagnostics",
}


class Engine(Protocol):
    """An engine plug-in: one module in bayes_pip/engines (or anywhere, registered with
    :func:`bayes_pip.engines.register`) defining ``ENGINE``.

    Optional, by capability: ``fit_batch`` ("batch"), ``regress`` ("regression"), ``evidence``
    ("marginal_likelihood"); for an MCMC
    engine, ``sampler`` (the name stored with its settings; default "nutpie NUTS"),
    ``convergence_hint`` (what a failed convergence check suggests) and ``draws`` (draws
    without the convergence gate, for calibration)."""

    name: str          # the --engine value and the "engine" field of the JSON
    model: str         # "normal-normal" or "binomial-normal"
    help: str          # one line for --help
    stochastic: bool   # True when the result depends on the seed ("stochastic" in capabilities)
    packages: tuple[str, ...]  # packages whose versions are stored with a fit
    accepts: tuple[type, ...]  # payload types it fits (bayes_pip.payloads), preferred first
    capabilities: frozenset    # a subset of CAPABILITIES

    def fit(self, problem: Problem, prior, seed: int, settings, progress: bool
            ) -> EngineResult: ...

    def describe(self, fit) -> str: ...
