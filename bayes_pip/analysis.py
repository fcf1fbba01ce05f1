"""One outcome, one prior, one engine: the pipeline every command calls.

data (validated) -> effects -> engine (exact | pymc | binomial | conjugate) -> summary record.
Returns a frozen :class:`FitResult`; the CLI and the reports only read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import metadata

from bayes_pip import __version__
from bayes_pip.classical import classical_analysis, data_status, resolve_level
from bayes_pip.data import Dataset
from bayes_pip.errors import ConvergenceError, InputError
from bayes_pip.exact import exact_posterior, se_from_ci, summary_posterior
from bayes_pip.priors import (applicable_priors, default_prior_name, load_prior_sets,
                              resolve_prior)
from bayes_pip.summarise import DrawsPosterior, posterior_summary

ENGINES = ("pymc", "binomial", "exact")
DEFAULT_SEED = 20150603  # any fixed number; stored with every output


@dataclass(frozen=True)
class FitResult:
    """A summarised fit (``summary`` is the `fit --json` object) and, for MCMC, its draws."""

    summary: dict
    idata: object = field(default=None, compare=False, repr=False)
    posterior: object = field(default=None, compare=False, repr=False)
    prior: object = field(default=None, compare=False, repr=False)


def versions(engine: str) -> dict:
    names = ["numpy", "scipy", "pandas"]
    if engine in ("pymc", "binomial"):
        names += ["pymc", "pytensor", "nutpie", "arviz"]
    found = {"bayes_pip": __version__}
    for n in names:
        try:
            found[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            found[n] = None
    return found


def summary_level_notes() -> list[str]:
    return ["Re-analysis of the published pooled estimate (normal likelihood on the analysis "
            "scale, SE recovered from the 95% CI): it cannot re-estimate heterogeneity, so there "
            "is no tau, no prediction interval and no study-level shrinkage."]


def fit_outcome(dataset: Dataset, outcome_id: str, prior_name: str | None = None,
                engine: str = "pymc", level: str = "auto", seed: int = DEFAULT_SEED,
                settings=None, progress: bool = False) -> FitResult:
    """Fit one outcome under one prior set and summarise the posterior.

    Raises InputError for bad choices, ConvergenceError when MCMC misses the thresholds
    (R-hat <= 1.01, bulk and tail ESS >= 400, no divergences).
    """
    outcome = dataset.outcome(outcome_id)
    used_level = resolve_level(dataset, outcome_id, level)
    status = data_status(dataset, outcome_id)
    sets = load_prior_sets()
    prior_name = prior_name or default_prior_name(outcome.measure)
    prior = resolve_prior(prior_name, outcome, sets)
    if engine not in ENGINES:
        raise InputError(f"unknown engine '{engine}' (allowed: {', '.join(ENGINES)})")
    base = {
        "outcome": outcome.outcome, "label": outcome.label, "comparison": outcome.comparison,
        "measure": outcome.measure, "benefit": outcome.benefit, "level": used_level,
        "data_status": status.description,
    }
    published = dataset.published_result(outcome_id)
    notes = list(prior.notes)

    if used_level == "summary":
        scale = outcome.scale
        y = float(scale.to_analysis(published.estimate))
        se = se_from_ci(float(scale.to_analysis(published.ci_low)),
                        float(scale.to_analysis(published.ci_high)))
        post = summary_posterior(y, se, prior.mu)
        summary = {**base, "engine": "conjugate", "k": published.k,
                   "participants": published.participants, "prior": prior.to_dict(),
                   **posterior_summary(post, outcome, [], with_tau=False),
                   "likelihood": {"estimate": y, "se": se,
                                  "source": published.source},
                   "diagnostics": None, "dl": None,
                   "published": published_dict(published),
                   "notes": summary_level_notes() + notes,
                   "settings": {"seed": None, "versions": versions("exact")}}
        if engine != "exact" and engine != "pymc":
            summary["notes"].append(f"--engine {engine} does not apply at summary level; the "
                                    "closed-form normal-normal posterior was used")
        return FitResult(summary, None, post, prior)

    classical = classical_analysis(dataset, outcome_id)
    es = classical.effects
    if es.k == 1:
        notes.append("A single study: the posterior of tau is essentially its prior, and the "
                     "pooled effect carries that uncertainty.")
    settings_dict = {"seed": seed if engine != "exact" else None}
    idata = None
    if engine == "exact":
        post = exact_posterior(es.y, es.v, prior.mu, prior.tau)
        diagnostics = None
        settings_dict["quadrature"] = {"nodes": int(len(post.tau)), "method":
                                       "composite 5-point Gauss-Legendre in log tau"}
    else:
        from bayes_pip import pymc_models as pmm

        settings = settings or pmm.SamplerSettings(
            target_accept=pmm.SamplerSettings.default_target_accept(engine))
        if engine == "binomial":
            if outcome.scale.link is None:
                raise InputError(f"--engine binomial needs an RR or OR outcome; '{outcome_id}' "
                                 f"is {outcome.measure}")
            idata = pmm.sample_binomial_normal(es, prior, seed, settings, progress)
        else:
            idata = pmm.sample_normal_normal(es.y, es.v, prior, seed, settings, es.study, progress)
        diagnostics = pmm.diagnostics(idata)
        problems = pmm.convergence_problems(diagnostics)
        settings_dict["sampler"] = settings.to_dict()
        idata.posterior.attrs.update({"prior": str(prior.to_dict()), "seed": seed,
                                      "outcome": outcome_id, "engine": engine,
                                      "bayes_pip_version": __version__})
        if problems:
            raise ConvergenceError(
                f"outcome '{outcome_id}', prior '{prior.name}', engine {engine}: "
                f"{'; '.join(problems)}. Try more draws or tuning (--draws, --tune), a higher "
                "--target-accept, or --engine exact for the normal-normal model.")
        post = DrawsPosterior(idata)
    settings_dict["versions"] = versions(engine)
    summary = {**base, "engine": engine, "k": es.k, "participants": es.participants,
               "prior": prior.to_dict(),
               **posterior_summary(post, outcome, es.study, observed=es.y),
               "diagnostics": diagnostics, "dl": classical.to_dict(),
               "published": published_dict(published) if published else None,
               "notes": notes, "settings": settings_dict}
    return FitResult(summary, idata, post, prior)


def published_dict(p) -> dict:
    return {"estimate": p.estimate, "ci_low": p.ci_low, "ci_high": p.ci_high, "k": p.k,
            "participants": p.participants, "model": p.model, "grade": p.grade,
            "source": p.source}


def priors_for(dataset: Dataset, outcome_id: str, level: str) -> list[str]:
    """Prior sets compared by default: all that apply; at summary level one per distinct mu prior."""
    outcome = dataset.outcome(outcome_id)
    names = applicable_priors(outcome)
    default = default_prior_name(outcome.measure)
    names = [default] + [n for n in names if n != default] if default in names else names
    if level != "summary":
        return names
    seen, keep = set(), []
    for name in names:
        mu = resolve_prior(name, outcome).mu
        key = (round(mu.mean, 12), round(mu.sd, 12) if math.isfinite(mu.sd) else None)
        if key not in seen:
            seen.add(key)
            keep.append(name)
    return keep


def compare_priors(dataset: Dataset, outcome_id: str, prior_names: list[str] | None = None,
                   engine: str = "pymc", level: str = "auto", seed: int = DEFAULT_SEED,
                   settings=None, progress=None) -> list[FitResult]:
    """Fits of one outcome under several prior sets (default: all that apply).

    A fit that fails the convergence checks raises ConvergenceError: a comparison never mixes
    converged and unconverged rows.
    """
    used_level = resolve_level(dataset, outcome_id, level)
    names = prior_names or priors_for(dataset, outcome_id, used_level)
    rows = []
    for i, name in enumerate(names):
        if progress:
            progress(i, len(names), f"{outcome_id}: {name}")
        rows.append(fit_outcome(dataset, outcome_id, name, engine, used_level, seed, settings))
    return rows


def outcomes_with_data(dataset: Dataset) -> list[str]:
    return [o for o in dataset.outcome_ids() if data_status(dataset, o).level is not None]


def sweep(dataset: Dataset, prior_names: list[str] | None = None, engine: str = "pymc",
          seed: int = DEFAULT_SEED, settings=None, progress=None) -> list[dict]:
    """Every outcome with data x every applicable prior (or the given priors, where they apply)."""
    jobs = []
    for outcome_id in outcomes_with_data(dataset):
        level = data_status(dataset, outcome_id).level
        names = priors_for(dataset, outcome_id, level)
        if prior_names:
            names = [n for n in prior_names if n in applicable_priors(dataset.outcome(outcome_id))]
        jobs += [(outcome_id, name) for name in names]
    rows = []
    for i, (outcome_id, name) in enumerate(jobs):
        if progress:
            progress(i, len(jobs), f"{outcome_id}: {name}")
        rows.append(fit_outcome(dataset, outcome_id, name, engine, "auto", seed, settings).summary)
    if progress:
        progress(len(jobs), len(jobs), "done")
    return rows
