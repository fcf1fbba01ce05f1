"""The Python API for notebooks and scripts (``import bayes_pip as bp``).

    >>> import bayes_pip as bp
    >>> data = bp.load()                                   # the bundled PIP review
    >>> fit = bp.fit(data, "parent_reported_depression_vs_alternative", engine="exact")
    >>> round(fit.p_benefit, 3)                            # P(PIP beats the alternative)
    0.647
    >>> fit.idata                                          # ArviZ InferenceData, every engine

Every function returns the typed records the CLI prints (:mod:`bayes_pip.record`); ``to_dict()``
gives the same JSON as ``--json``. Figures come from :mod:`bayes_pip.figures` as matplotlib
Figures.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bayes_pip import analysis, checks, engines
from bayes_pip.environment import ensure_writable_caches
from bayes_pip.classical import classical_from
from bayes_pip.data import Dataset, load_dataset, load_frames
from bayes_pip.engines.base import SamplerSettings
from bayes_pip.errors import InputError
from bayes_pip.priors import load_prior_sets
from bayes_pip.record import BMARecord, DLRecord, FitRecord, InfluenceRecord

DEFAULT_SEED = analysis.DEFAULT_SEED
ensure_writable_caches()


def load(source: str | Path | Dataset | None = None, *, outcomes: pd.DataFrame | None = None,
         studies: pd.DataFrame | None = None, published: pd.DataFrame | None = None,
         trials: pd.DataFrame | None = None) -> Dataset:
    """A validated data set: the bundled PIP review (no arguments), a data directory, or
    DataFrames with the columns of outcomes.csv, studies.csv, published.csv and trials.csv."""
    if isinstance(source, Dataset):
        return source
    if outcomes is not None:
        if source is not None:
            raise ValueError("give a directory or DataFrames, not both")
        return load_frames(outcomes, studies, published, trials)
    return load_dataset(source)


def sampler(engine: str, draws: int, tune: int, chains: int, target_accept: float | None):
    if not engines.stochastic(engine):
        return None
    return SamplerSettings(draws=draws, tune=tune, chains=chains,
                           target_accept=target_accept)


def fit(data, outcome: str, prior: str | None = None, engine: str = engines.AUTO,
        level: str = "auto", seed: int = DEFAULT_SEED, draws: int = 2000, tune: int = 1000,
        chains: int = 4, target_accept: float | None = None,
        prior_dir: str | Path | None = None) -> FitRecord:
    """Fit one outcome under one prior set (default: the measure's default prior).

    ``prior_dir``: a team's own prior file, or directory of prior files, used beside the
    shipped ones (validated the same way). A categorical outcome is fitted by the multinomial
    model and returns a :class:`bayes_pip.categorical.CategoricalFit` (`fit OUTCOME` on the
    command line).
    """
    from bayes_pip.analyses import analysis_of, model_of

    dataset = load(data)
    sets = load_prior_sets(extra=prior_dir)
    unit = analysis_of(dataset, outcome)
    if unit.model == "multinomial":
        from bayes_pip.categorical import ENGINE

        if engine not in (engines.AUTO, ENGINE) or level != "auto":
            raise InputError(f"the categorical outcome '{outcome}' is fitted by engine "
                             f"'{ENGINE}' (or auto) at its own level")
    model = model_of(unit)
    settings = model.settings(engine, draws, tune, target_accept, chains)
    return model.fit(dataset, unit, prior, engine, level, seed, settings, False, sets)


def compare_priors(data, outcome: str, priors: list[str] | None = None,
                   engine: str = engines.AUTO, level: str = "auto", seed: int = DEFAULT_SEED,
                   draws: int = 2000, tune: int = 1000, chains: int = 4,
                   target_accept: float | None = None,
                   prior_dir: str | Path | None = None) -> "PriorComparison":
    """One outcome under every applicable prior set (or ``priors``); the first is the default.
    A list of fits with ``.to_frame()``: one row per prior, the numbers a sensitivity table
    prints."""
    return PriorComparison(analysis.compare_priors(
        load(data), outcome, priors, engine, level, seed,
        sampler(engine, draws, tune, chains, target_accept),
        prior_sets=load_prior_sets(extra=prior_dir)))


class PriorComparison(list):
    """The fits of one outcome under several priors (a list of FitRecord, main prior first)."""

    def to_frame(self):
        """One row per prior: pooled effect (natural scale), tau, prediction, P(benefit), P(harm),
        P(beyond the MCID) and the prior-data conflict check."""
        import pandas as pd

        rows = []
        for f in self:
            conflict = f.prior_data_conflict
            rows.append({
                "prior": f.prior.name, "shown_as": f.prior.shown, "level": f.level,
                "measure": f.measure, "median": f.effect.median, "ci_low": f.effect.ci_low,
                "ci_high": f.effect.ci_high,
                "tau_median": f.tau.median if f.tau else None,
                "prediction_low": f.prediction.ci_low if f.prediction else None,
                "prediction_high": f.prediction.ci_high if f.prediction else None,
                "p_benefit": f.p_benefit, "p_harm": f.p_harm, "p_mcid": f.p_mcid,
                "conflict_p": conflict.p_value if conflict else None,
                "conflict": bool(conflict and conflict.flagged)})
        return pd.DataFrame(rows)


def report(data=None, outcomes: list[str] | str | None = None, prior: str | None = None,
           engine: str = engines.AUTO, level: str = "auto", seed: int = DEFAULT_SEED,
           draws: int = 2000, tune: int = 1000, chains: int = 4,
           target_accept: float | None = None, moderators: list[str] | str | None = None,
           subgroup: str | None = None, prior_dir: str | Path | None = None, jobs: int = 1):
    """A report as objects (:class:`bayes_pip.bundle.ReportBundle`): one outcome, a list, or
    (``outcomes`` None) every outcome with data plus the summary of findings. Nothing is
    written until ``.write(directory)``; ``.to_frame()`` is the summary of findings as a
    DataFrame, ``.outcomes[id].markdown()`` one outcome's page. ``jobs``: outcomes fitted at a
    time in worker processes (the same bundle as serially).

        >>> rep = bp.report(bp.load(), engine="exact")
        >>> rep.to_frame()[["outcome", "bayes_median", "p_benefit"]]
    """
    from bayes_pip.bundle import build_report

    names = [moderators] if isinstance(moderators, str) else moderators
    return build_report(load(data), outcomes, prior, engine, level, seed,
                        sampler(engine, draws, tune, chains, target_accept),
                        load_prior_sets(extra=prior_dir), names, subgroup, jobs=jobs)


def classical_fit(data, outcome: str, method: str = "DL") -> DLRecord:
    """The classical analysis of an outcome's study rows (DL, MH-random, IV-fixed, MH-fixed)."""
    return classical_from(load(data).resolve(outcome, level=None), method).record()


def meta_regression(data, outcome: str, moderators: list[str] | str, method: str = "DL"):
    """Classical meta-regression on moderator columns (metafor ``rma(mods=)``): a
    :class:`bayes_pip.moderation_record.MetaRegressionRecord` (``to_dict()``: the JSON of
    ``dl OUTCOME --moderator NAME --json``; ``rec["tau2"]`` reads a field by its JSON key)."""
    from bayes_pip import moderation

    names = [moderators] if isinstance(moderators, str) else list(moderators)
    return moderation.classical_moderators(load(data), outcome, names, method)


def subgroups(data, outcome: str, moderator: str, method: str = "DL",
              tau: str = "separate"):
    """Subgroup analysis with RevMan's test for subgroup differences: a
    :class:`bayes_pip.moderation_record.SubgroupRecord` (``to_dict()``: the JSON of
    ``dl OUTCOME --subgroup NAME --json``)."""
    from bayes_pip import moderation

    return moderation.classical_subgroups(load(data), outcome, moderator, method, tau)


def bayes_meta_regression(data, outcome: str, moderators: list[str] | str,
                          prior: str | None = None, engine: str = "exact", level: str = "auto",
                          seed: int = DEFAULT_SEED, at: list[float] | None = None,
                          draws: int = 2000, tune: int = 1000, chains: int = 4,
                          target_accept: float | None = None,
                          prior_dir: str | Path | None = None):
    """Bayesian meta-regression by any engine with the "regression" capability (exact
    quadrature, also for auto, or PyMC): a
    :class:`bayes_pip.moderation_record.BayesMetaRegressionRecord` (``to_dict()``: the JSON of
    ``fit OUTCOME --moderator NAME --json``). ``at``: moderator values to predict the effect at (one numeric
    moderator)."""
    from bayes_pip import moderation

    names = [moderators] if isinstance(moderators, str) else list(moderators)
    fitter = moderation.regression_engine(engine).name   # refused in one line if it cannot
    return moderation.bayes_moderators(
        load(data), outcome, names, prior, engine, seed,
        sampler(fitter, draws, tune, chains, target_accept), level,
        load_prior_sets(extra=prior_dir), at=at)


def outcomes(data=None) -> pd.DataFrame:
    """The outcomes of a data set with measure, k, participants, benefit and data status."""
    from bayes_pip.listing import outcome_listing

    return pd.DataFrame(outcome_listing(load(data)))


def list_analyses(data=None) -> list:
    """The analyses a data set offers (:class:`bayes_pip.analyses.Analysis`: id, model, the
    outcomes it draws on and the categories its effects are indexed by), in the order of
    outcomes.csv; each id is what `fit` takes."""
    from bayes_pip.analyses import analyses

    return analyses(load(data))


def prior_sets(prior_dir: str | Path | None = None) -> list[str]:
    """Names of the prior sets (shipped, plus those in ``prior_dir``)."""
    return list(load_prior_sets(extra=prior_dir))


def bma(data, outcome: str, prior: str | None = None, level: str = "auto",
        prior_dir: str | Path | None = None) -> BMARecord:
    """Exact Bayes factors (effect, heterogeneity) and the model-averaged pooled effect."""
    return checks.bma_outcome(load(data), outcome, prior, level,
                                load_prior_sets(extra=prior_dir))


def influence(data, outcome: str, prior: str | None = None, level: str = "auto",
              prior_dir: str | Path | None = None) -> InfluenceRecord:
    """Each study left out in turn (DL and exact Bayesian) and metafor's influence diagnostics."""
    return checks.influence_outcome(load(data), outcome, prior, level,
                                      load_prior_sets(extra=prior_dir))


def reconstruction(data, outcome: str):
    """The integer tables consistent with an outcome's printed pooled result (or None when the
    data set has no constraints for it); ``.to_dict()`` is `reconstruct --json`."""
    return load(data).reconstruction(outcome)


def exact_batch(y, v, mask=None, prior=None, benefit="lower", quantiles=(0.025, 0.5, 0.975),
                measure: str = "OR", prior_dir: str | Path | None = None,
                evidence: bool = False, tol: float = 1e-10):
    """Exact normal-normal posteriors of many meta-analyses at once, as an xarray.Dataset
    (see :func:`bayes_pip.engines.batch.exact_batch`).

    ``prior``: a prior set applied to an outcome (``bp.prior(data, outcome, name)``, or any object
    with ``.mu`` and ``.tau``), a prior set's name (applied to an outcome of ``measure`` with no
    MCID or outcome type: e.g. "halfnormal-0.5"; sets that need them are refused with the
    reason), or a sequence of these, one per meta-analysis. ``evidence=True``: also the four
    models' log marginal likelihoods, Bayes factors and model-averaged P(benefit), as ``bma``
    gives them; ``tol``: the quadrature's error estimate allowed per row, relative to the
    integral (see the engine).
    """
    from bayes_pip.engines.batch import exact_batch as run

    def applied(p):
        return named_prior(p, measure, benefit, prior_dir) if isinstance(p, str) else p

    if isinstance(prior, (list, tuple)):
        prior = [applied(p) for p in prior]
    else:
        prior = applied(prior)
    return run(y, v, mask, prior, benefit, quantiles, evidence=evidence, tol=tol)


def run_database(input: str | Path, out: str | Path, prior: str | None = None,
                 measure: str | None = None, benefit: str | None = None, evidence: bool = True,
                 tol: float = 1e-10, resume: bool = False, restart: bool = False,
                 scheduler: str | None = None, prior_dir: str | Path | None = None) -> dict:
    """A whole database of meta-analyses (what ``python -m bayes_pip database`` runs): the CSV
    ``input`` (meta_id, y, v or se, optional measure and benefit; one row per study) streamed
    in chunks, ``out``/results.csv with one row per meta-analysis and ``out``/run.json; returns
    the run record. ``measure``/``benefit`` apply where the file has no such column or value;
    ``scheduler``: a Dask scheduler ('local', 'local:N' or an address); ``resume``: continue an
    interrupted run. See :mod:`bayes_pip.database`."""
    from bayes_pip import database

    settings = database.Settings(prior=prior, measure=measure, benefit=benefit,
                                 evidence=evidence, tol=tol,
                                 prior_dir=None if prior_dir is None else str(prior_dir))
    return database.run(input, out, settings, resume, restart, scheduler)


def named_prior(name: str, measure: str, benefit: str, prior_dir=None):
    """A prior set by name, applied to an anonymous outcome of ``measure``."""
    from bayes_pip.data import Outcome
    from bayes_pip.priors import resolve_prior

    return resolve_prior(name, Outcome.anonymous("batch", measure, benefit),
                         load_prior_sets(extra=prior_dir))


def prior(data, outcome: str, name: str | None = None, prior_dir: str | Path | None = None):
    """The prior set ``name`` (default: the outcome's default) applied to one outcome."""
    from bayes_pip.priors import default_prior_name, resolve_prior

    dataset = load(data)
    o = dataset.outcome(outcome)
    sets = load_prior_sets(extra=prior_dir)
    return resolve_prior(name or default_prior_name(o.measure), o, sets)
