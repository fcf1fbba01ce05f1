"""What an engine is: the Posterior query grammar every engine answers, the problem it is given,
and what it returns.

Targets of the grammar: ``"mu"`` (the pooled effect, analysis scale), ``"tau"`` (between-study
SD), ``"predict"`` (a new study's true effect) and ``("study", i)`` (study i's shrunken effect).
The exact engine answers in closed form or by quadrature, MCMC engines from draws; summaries,
reports and figures only ask these questions, so they never know which engine ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

Target = str | tuple[str, int]


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

    def to_dict(self) -> dict:
        return {"draws": self.draws, "tune": self.tune, "chains": self.chains,
                "cores": self.cores, "target_accept": self.target_accept, "sampler": "nutpie NUTS"}


@dataclass(frozen=True)
class Problem:
    """What an engine fits: one outcome's effects (study level) or its published pooled
    estimate (summary level), already resolved and validated upstream."""

    outcome: Any                  # bayes_pip.data.Outcome
    level: str                    # "study" or "summary"
    effects: Any = None           # bayes_pip.effects.EffectSizes (study level)
    estimate: float | None = None  # summary level: pooled estimate on the analysis scale
    se: float | None = None        # and its standard error
    posterior: Any = None          # already computed (the batched exact engine, in sweeps)


@dataclass(frozen=True)
class EngineResult:
    """An engine's answer: the posterior, its draws (MCMC) and how it was computed."""

    posterior: Posterior
    idata: Any = None              # arviz.InferenceData, or a function that makes it on demand
    diagnostics: dict | None = None
    settings: dict = field(default_factory=dict)  # engine settings stored with the fit


class Engine(Protocol):
    """An engine plug-in: one module in bayes_pip/engines plus one line in the registry."""

    name: str          # the --engine value and the "engine" field of the JSON
    model: str         # "normal-normal" or "binomial-normal"
    help: str          # one line for --help
    stochastic: bool   # True when the result depends on the seed
    packages: tuple[str, ...]  # packages whose versions are stored with a fit

    def fit(self, problem: Problem, prior, seed: int, settings, progress: bool
            ) -> EngineResult: ...

    def describe(self, fit) -> str: ...
