"""Many meta-analyses at once: every outcome x every prior (sweep), serially, batched through\nan engine that fits batches, or on a Dask cluster."""

from __future__ import annotations

import dataclasses

import numpy as np

from bayes_pip import engines
from bayes_pip.classical import classical_from
from bayes_pip.data import Dataset
from bayes_pip.priors import (applicable_priors, load_prior_sets,
                              resolve_prior)
from bayes_pip.errors import ConvergenceError, InputError
from bayes_pip.record import (FitFailure, FitRecord)
from bayes_pip.analysis import (DEFAULT_SEED, fit_outcome, has_level, outcomes_with_data,
                                priors_for, require_direction, tables_to_fit)
from bayes_pip.analysis import exact_key


def sweep(dataset: Dataset, prior_names: list[str] | None = None, engine: str = engines.AUTO,
          seed: int = DEFAULT_SEED, settings=None, progress=None, prior_sets=None,
          level: str = "auto", scheduler: str | None = None) -> list[FitRecord | FitFailure]:
    """Every outcome with data x every applicable prior (or the given priors, where they apply).

    A fit that fails the convergence checks does not stop the sweep: it is returned as a
    :class:`FitFailure` (outcome, prior, error) in its place. With ``scheduler`` ("local",
    "local:N" or a Dask scheduler address) the fits run on a Dask cluster (one task per fit; with
    the exact engine one task per chunk of fits, batched); the records equal the serial ones.
    """
    sets = load_prior_sets() if prior_sets is None else prior_sets
    jobs = []
    for outcome_id in outcomes_with_data(dataset):
        if level != "auto" and not has_level(dataset, outcome_id, level):
            continue  # --level study: outcomes without study rows are not swept
        if not engine_applies(dataset, outcome_id, level, engine):
            continue  # a binomial engine on means and SDs: left out (the CLI names them)
        used = dataset.resolve(outcome_id, level).level
        names = priors_for(dataset, outcome_id, used, sets)
        if prior_names:
            names = [n for n in prior_names
                     if n in applicable_priors(dataset.outcome(outcome_id), sets)]
        jobs += [(outcome_id, name) for name in names]
    require_direction(dataset, list(dict.fromkeys(o for o, _ in jobs)), "sweep")
    if not jobs:
        raise InputError("nothing to fit: no outcome with data has a prior set that applies"
                         + (f" at level {level}" if level != "auto" else "")
                         + " (see `list` and the applies_to of each prior file)")
    if scheduler:
        return sweep_on_cluster(dataset, jobs, engine, level, seed, settings, sets, progress,
                                scheduler)
    rows = fit_jobs(dataset, jobs, engine, level, seed, settings, sets, progress)
    if progress:
        progress(len(jobs), len(jobs), "done")
    return rows


def engine_applies(dataset: Dataset, outcome_id: str, level: str, engine: str) -> bool:
    """False for a binomial-normal engine on an outcome analysed from means and SDs (the
    engine needs arm counts); at summary level every engine gives the conjugate posterior."""
    if engine == engines.AUTO or engines.get(engine).model != "binomial-normal":
        return True
    resolved = dataset.resolve(outcome_id, level)
    return resolved.level == "summary" or resolved.outcome.scale.link is not None


def fit_jobs(dataset: Dataset, jobs, engine, level, seed, settings, sets, progress=None,
             strip: bool = False) -> list[FitRecord | FitFailure]:
    """The fits of a sweep, in order; with the exact engine all computed in one batch.
    ``strip`` drops the draws and posterior objects (a cluster sends back what the JSON needs)."""
    precomputed = (batch_exact(dataset, jobs, level, sets, engine) if batched(engine)
                   else None)
    rows = []
    for i, (outcome_id, name) in enumerate(jobs):
        if progress:
            progress(i, len(jobs), f"{outcome_id}: {name}")
        try:
            row = fit_outcome(dataset, outcome_id, name, engine, level, seed, settings,
                              prior_sets=sets, precomputed=precomputed)
            rows.append(dataclasses.replace(row, draws=None, posterior=None) if strip else row)
        except ConvergenceError as exc:
            rows.append(FitFailure(outcome_id, name, str(exc)))
    return rows


EXACT_CHUNK = 16  # fits per cluster task with the exact engine (batched inside the task)


def sweep_on_cluster(dataset, jobs, engine, level, seed, settings, sets, progress, scheduler):
    from bayes_pip.cluster import run_tasks

    size = EXACT_CHUNK if batched(engine) else 1
    chunks = [jobs[i:i + size] for i in range(0, len(jobs), size)]
    tasks = [(dataset, chunk, engine, level, seed, settings, sets, None, True)
             for chunk in chunks]
    labels = [", ".join(f"{o}: {n}" for o, n in chunk) for chunk in chunks]
    rows = []
    for chunk, (ok, value) in zip(chunks, run_tasks(scheduler, fit_jobs, tasks, labels,
                                                    progress)):
        rows += value if ok else [FitFailure(o, n, f"the task failed on the cluster: {value}")
                                  for o, n in chunk]
    return rows



def batched(engine: str) -> bool:
    """Whether a sweep with ``engine`` fits its problems in one batch (capability "batch")."""
    return engine != engines.AUTO and engines.can(engine, "batch")


def batch_exact(dataset: Dataset, jobs, level: str, sets, engine: str = "exact") -> dict:
    """Posteriors of every study-level problem of a sweep (each reconstructed table included),
    computed in one call of a batching engine's ``fit_batch``; keyed by :func:`exact_key`."""
    problems = {}
    for outcome_id, name in jobs:
        try:
            resolved = dataset.resolve(outcome_id, level)
            prior = resolve_prior(name, resolved.outcome, sets)
        except InputError:
            continue  # the fit itself reports it
        if resolved.level == "study":
            variants = [resolved]
        elif resolved.level == "reconstructed":
            variants = [resolved.with_rows(r) for r in tables_to_fit(resolved, engine)[0]]
        else:
            continue  # summary level: the closed-form engine
        for r in variants:
            es = classical_from(r).effects
            problems.setdefault(exact_key(es, prior), (es, prior))
    if not problems:
        return {}
    keys = list(problems)
    k_max = max(problems[key][0].k for key in keys)
    y = np.full((len(keys), k_max), np.nan)
    v = np.full((len(keys), k_max), np.nan)
    for i, key in enumerate(keys):
        es = problems[key][0]
        y[i, :es.k], v[i, :es.k] = es.y, es.v
    post = engines.get(engine).fit_batch(y, v, prior=[problems[key][1] for key in keys],
                                         store=True)
    return {key: post.row(i) for i, key in enumerate(keys) if not post.error[i]}


# ---------------------------------------------------------------------------------------------
# Bayes factors and model averaging (exact, by quadrature)
# ---------------------------------------------------------------------------------------------
