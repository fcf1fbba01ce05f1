"""Engines as plug-ins: one module each, found through this registry.

An engine module defines ``ENGINE``, an object with the attributes and methods of
:class:`bayes_pip.engines.base.Engine` (name, model, help, stochastic, packages, fit, describe).
Adding an engine (say a NumPyro or Stan one) is one new module plus one line below; `--engine`
choices, `--help`, stored versions and the engine's sentence in reports all read the object.
Modules are imported on first use, so `list`, `dl` and the exact engine never load PyMC.
"""

from __future__ import annotations

import importlib

from bayes_pip.errors import InputError

# name -> module; "conjugate" is chosen by the data (summary level), not by --engine
REGISTRY = {
    "pymc": "bayes_pip.engines.normal_nuts",
    "binomial": "bayes_pip.engines.binomial_nuts",
    "binomial-exact": "bayes_pip.engines.exact_binomial",
    "exact": "bayes_pip.engines.exact",
    "conjugate": "bayes_pip.engines.conjugate",
}
SUMMARY_ENGINE = "conjugate"
CHOICES = tuple(name for name in REGISTRY if name != SUMMARY_ENGINE)  # what --engine offers
DEFAULT = "pymc"  # the normal-normal engine, where the data do not call for another
# chosen per outcome by the data (bayes_pip.analysis.choose_engine): binomial-exact for RR/OR
# outcomes with sparse arm counts, DEFAULT otherwise
AUTO = "auto"
SELECTABLE = (AUTO, *CHOICES)  # what --engine offers


def get(name: str):
    """The engine registered as ``name``."""
    if name not in REGISTRY:
        raise InputError(f"unknown engine '{name}' (allowed: {', '.join(CHOICES)})")
    return importlib.import_module(REGISTRY[name]).ENGINE


def help_text() -> str:
    """One line per selectable engine, for `--help`."""
    return "; ".join([AUTO_HELP] + [get(name).help for name in CHOICES])


AUTO_HELP = ("auto (default): binomial-exact for an RR or OR outcome with sparse arm counts (an "
             "arm with fewer than 5 events or 5 non-events), with the normal-normal result "
             "beside it; pymc otherwise")


def stochastic(name: str) -> bool:
    """Whether the engine ``name`` may sample (auto may choose pymc)."""
    return name == AUTO or get(name).stochastic
