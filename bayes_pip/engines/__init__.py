"""Engines as plug-ins: one module each, found through this registry.

An engine module defines ``ENGINE``, an object with the attributes and methods of
:class:`bayes_pip.engines.base.Engine` (name, model, help, stochastic, packages, accepts,
capabilities, fit, describe). Adding an engine (say a NumPyro or Stan one) is one new module
plus one line below, or a call to :func:`register` from outside the package; `--engine`
choices, `--help`, stored versions, calibration and the engine's sentence in reports all read
the object. Modules are imported on first use, so `list`, `dl` and the exact engine never load
PyMC.
"""

from __future__ import annotations

import importlib

from bayes_pip.errors import InputError

# name -> module; "conjugate" is chosen by the data (summary level), not by --engine
REGISTRY = {
    "pymc": "bayes_pip.engines.normal_nuts",
    "binomial": "bayes_pip.engines.binomial_nuts",
    "binomial-exact": "bayes_pip.engines.binomial_engine",
    "exact": "bayes_pip.engines.normal_exact",
    "multinomial": "bayes_pip.engines.multinomial_nuts",
    "conjugate": "bayes_pip.engines.conjugate",
}
SUMMARY_ENGINE = "conjugate"
DEFAULT = "pymc"  # the normal-normal engine, where the data do not call for another
# chosen per outcome by the data (bayes_pip.analysis.choose_engine): binomial-exact for RR/OR
# outcomes with sparse arm counts, DEFAULT otherwise
AUTO = "auto"


def choices() -> tuple[str, ...]:
    """The registered engines --engine offers (the summary-level engine is chosen by the data)."""
    return tuple(name for name in REGISTRY if name != SUMMARY_ENGINE)


def selectable() -> tuple[str, ...]:
    """What --engine offers: auto and every registered engine."""
    return (AUTO, *choices())


def register(name: str, module: str) -> None:
    """Register the engine defined as ``ENGINE`` in ``module`` (an importable module name)
    under ``name``; it is then offered by --engine and found by :func:`get`."""
    REGISTRY[name] = module


def get(name: str):
    """The engine registered as ``name``."""
    if name not in REGISTRY:
        raise InputError(f"unknown engine '{name}' (allowed: {', '.join(choices())})")
    return importlib.import_module(REGISTRY[name]).ENGINE


def help_text() -> str:
    """One line per selectable engine, for `--help`."""
    return "; ".join([AUTO_HELP] + [get(name).help for name in choices()])


def can(engine, capability: str) -> bool:
    """Whether ``engine`` (an object or a registered name) has ``capability``
    (:data:`bayes_pip.engines.base.CAPABILITIES`)."""
    engine = get(engine) if isinstance(engine, str) else engine
    return capability in engine.capabilities


def payload_for(engine, problem):
    """The payload of ``problem`` that ``engine`` fits: the first type in ``engine.accepts``
    the problem can give; a one-line InputError when there is none, or when the payload has
    moderator columns and the engine cannot fit a regression."""
    from bayes_pip.payloads import describe

    given = problem.payloads
    for kind in engine.accepts:
        for payload in given:
            if isinstance(payload, kind):
                if payload.X is not None and not can(engine, "regression"):
                    raise InputError(f"--engine {engine.name} does not fit a meta-regression "
                                     f"({problem.name} has {payload.X.shape[1]} design "
                                     "columns)")
                if payload.X is not None:  # fit() is the model without moderators
                    raise InputError(f"{problem.name} has {payload.X.shape[1]} design columns: "
                                     f"--engine {engine.name} fits them through `fit "
                                     "--moderator` (its regress), not fit")
                return payload
    has = " or ".join(describe(p) for p in given) or "no study data"
    takes = " or ".join(k.kind for k in engine.accepts)
    raise InputError(f"--engine {engine.name} fits {takes}; {problem.name} has {has}")


AUTO_HELP = ("auto (default): binomial-exact for an RR or OR outcome with sparse arm counts (an "
             "arm with fewer than 5 events or 5 non-events), with the normal-normal result "
             "beside it; pymc otherwise")


def regression_engines() -> tuple[str, ...]:
    """The registered engines that fit a meta-regression (capability "regression")."""
    return tuple(name for name in choices() if can(name, "regression"))


def stochastic(name: str) -> bool:
    """Whether the engine ``name`` may sample (auto may choose pymc)."""
    return name == AUTO or can(name, "stochastic")
