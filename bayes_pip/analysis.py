"""One outcome, one prior, one engine: the pipeline every command calls.

data (resolved once) -> effects -> engine (from the registry) -> summary record.
Returns a frozen :class:`FitRecord`; the CLI and the reports only read it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from importlib import metadata

import numpy as np

from bayes_pip import engines
from bayes_pip.classical import classical_from
from bayes_pip.data import Dataset, Resolved
from bayes_pip.engines.base import Problem, SamplerSettings
from bayes_pip.engines.conjugate import conjugate_idata, se_from_ci
from bayes_pip.engines.mixture import MixturePosterior
from bayes_pip.payloads import NormalEffects
from bayes_pip.priors import (Normal, applicable_priors, default_prior_name, load_prior_sets,
                              resolve_prior)
from bayes_pip.errors import ConvergenceError, InputError
from bayes_pip.record import (BMARecord, WidthBayesFactor, Diagnostics, EggerRecord, FitFailure, FitRecord,
                              InfluenceRecord, InfluenceRow, Interval, LeaveOneOutRow, Likelihood,
                              LikelihoodChoice, LooRow, ModelEvidence, PublishedResult,
                              Reconstructed, Settings)
from bayes_pip.posterior_stats import (benefit_probability, posterior_summary, prior_data_conflict,
                                       tau_bands)
from bayes_pip.version import __version__

DEFAULT_SEED = 20150603  # any fixed number; stored with every output


def versions(engine) -> dict:
    """Versions of bayes_pip and of the packages an engine uses."""
    found = {"bayes_pip": __version__}
    for n in engine.packages:
        try:
            found[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            found[n] = None
    return found


def labelled(idata, outcome):
    """The fit's InferenceData (or the function that makes it) with each model quantity
    labelled with its scale ("pooled effect, log RR")."""
    from bayes_pip.engines.idata import label_scales

    if idata is None:
        return None
    scale = outcome.scale.analysis_label
    if callable(idata):
        return functools.partial(label_scales, idata, scale)
    return label_scales(idata, scale)


def summary_level_notes() -> list[str]:
    return ["Re-analysis of the published pooled estimate (normal likelihood on the analysis "
            "scale, SE recovered from the 95% CI): it cannot re-estimate heterogeneity, so there "
            "is no tau, no prediction interval and no study-level shrinkage."]


def fit_outcome(dataset: Dataset, outcome_id: str, prior_name: str | None = None,
                engine: str = engines.AUTO, level: str = "auto", seed: int = DEFAULT_SEED,
                settings=None, progress: bool = False, prior_sets=None,
                precomputed=None) -> FitRecord:
    """Fit one outcome under one prior set and summarise the posterior.

    Raises InputError for bad choices, ConvergenceError when MCMC misses the thresholds
    (R-hat <= 1.01, bulk and tail ESS >= 400, no divergences).
    """
    require_direction(dataset, [outcome_id], "fit")
    return fit_resolved(dataset.resolve(outcome_id, level), prior_name, engine, seed, settings,
                        progress, prior_sets, precomputed)


def require_direction(dataset: Dataset, outcome_ids, command: str) -> None:
    """Refuse outcomes whose direction of benefit is not set (an import without --benefit):
    ``command`` reports P(benefit), which needs it. `dl` and `compare-priors` work without."""
    unknown = [o for o in outcome_ids if dataset.outcome(o).benefit == "unknown"]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise InputError(f"outcome '{unknown[0]}'{more} has no direction of benefit (benefit "
                         f"'unknown'); `{command}` needs it for P(benefit): set benefit to lower "
                         "or higher in outcomes.csv, or import again with --benefit "
                         "lower|higher|from-labels", file=str(dataset.directory / "outcomes.csv"))


# --engine auto: an RR or OR outcome is sparse when some arm of some study has fewer than this
# many events or non-events (the textbook condition for a normal approximation to a binomial
# count, n p >= 5 and n (1 - p) >= 5, on which the normal approximation of a log RR or log OR
# rests)
SPARSE_COUNT = 5
SPARSE_RULE = (f"an arm with fewer than {SPARSE_COUNT} events or {SPARSE_COUNT} non-events "
               "(the usual condition for a normal approximation to a binomial count)")


def sparse_arms(resolved: Resolved) -> list[tuple[str, str, int, int]]:
    """The arms of an RR/OR outcome's study rows (or of every reconstructed table) with fewer
    than SPARSE_COUNT events or non-events: (study, "intervention" or "control", events, n),
    each once; empty for other measures and at summary level."""
    if resolved.outcome.scale.link is None or resolved.level not in ("study", "reconstructed"):
        return []
    frames = (resolved.table_rows() if resolved.level == "reconstructed" else [resolved.rows])
    found = []
    for rows in frames:
        for r in rows.itertuples(index=False):
            for arm, e, n in (("intervention", r.events_t, r.n_t),
                              ("control", r.events_c, r.n_c)):
                if min(e, n - e) < SPARSE_COUNT:
                    found.append((str(r.study), arm, int(e), int(n)))
    return list(dict.fromkeys(found))


def choose_engine(resolved: Resolved, arms=None) -> str:
    """The engine --engine auto uses: binomial-exact on sparse arm counts, else the default
    (``arms``: :func:`sparse_arms` of ``resolved``, when already found)."""
    arms = sparse_arms(resolved) if arms is None else arms
    return "binomial-exact" if arms else engines.DEFAULT


def fit_resolved(resolved: Resolved, prior_name: str | None = None,
                 engine: str = engines.AUTO, seed: int = DEFAULT_SEED, settings=None,
                 progress: bool = False, prior_sets=None, precomputed=None) -> FitRecord:
    """Fit a resolved outcome (see :meth:`bayes_pip.data.Dataset.resolve`).

    ``engine`` "auto" chooses by the data (:func:`choose_engine`); on sparse arm counts the
    record carries the normal-normal result under the same prior beside the binomial-normal
    headline (``likelihood_choice``).
    ``precomputed``: exact posteriors already computed by the batched engine, keyed by
    :func:`exact_key` (sweeps with ``--engine exact``); other engines ignore it.
    """
    if engine != engines.AUTO:
        return fit_engine(resolved, prior_name, engine, seed, settings, progress, prior_sets,
                          precomputed)
    arms = sparse_arms(resolved)
    chosen = choose_engine(resolved, arms)
    if chosen == engines.DEFAULT:
        return fit_engine(resolved, prior_name, chosen, seed, settings, progress, prior_sets,
                          precomputed)
    record = fit_engine(resolved, prior_name, chosen, seed, settings, progress, prior_sets)
    normal = fit_engine(resolved, prior_name, "exact", seed, None, False, prior_sets,
                        precomputed)
    return dataclasses.replace(record, likelihood_choice=likelihood_choice(record, normal,
                                                                           arms))


def likelihood_choice(binomial: FitRecord, normal: FitRecord, arms) -> LikelihoodChoice:
    """The binomial-normal headline's companion: the normal-normal result and why they differ."""
    from bayes_pip.summarise import num

    m = binomial.measure
    words = [f"{study} {arm}: {e} of {n}" for study, arm, e, n in arms]
    shown = "; ".join(words[:3]) + (f"; and {len(words) - 3} more" if len(words) > 3 else "")
    zero = any(e == 0 or e == n for _, _, e, n in arms)
    e, f = binomial.effect, normal.effect
    sentence = (f"The binomial-normal model on the arm counts gives {m} {num(e.median)} (95% "
                f"CrI {num(e.ci_low)} to {num(e.ci_high)}) and the normal-normal model on each "
                f"study's log {m} gives {num(f.median)} ({num(f.ci_low)} to {num(f.ci_high)}) "
                f"under the same prior; they differ because with so few events or non-events "
                f"in an arm ({shown}) a study's log {m} is far from normal with a known "
                f"variance, as the normal-normal model assumes"
                + (", and its zero cells need 0.5 added" if zero else "")
                + ", while the binomial model uses the counts as they are.")
    return LikelihoodChoice(rule=SPARSE_RULE, sparse_arms=tuple(words),
                            normal_normal_engine=normal.engine, normal_normal=normal.effect,
                            normal_normal_p_benefit=normal.p_benefit, sentence=sentence)


def fit_engine(resolved: Resolved, prior_name: str | None, engine: str, seed: int = DEFAULT_SEED,
               settings=None, progress: bool = False, prior_sets=None,
               precomputed=None) -> FitRecord:
    """Fit a resolved outcome with the named engine."""
    outcome = resolved.outcome
    sets = load_prior_sets() if prior_sets is None else prior_sets
    prior_name = prior_name or default_prior_name(outcome.measure)
    prior = resolve_prior(prior_name, outcome, sets)
    requested = engines.get(engine)
    base = {
        "outcome": outcome.outcome, "label": outcome.label, "comparison": outcome.comparison,
        "intervention": outcome.intervention, "measure": outcome.measure,
        "phrase": outcome.noun_phrase, "mcid_source": outcome.mcid_source,
        "benefit": outcome.benefit, "level": resolved.level,
        "data_status": resolved.status.description,
    }
    published = resolved.published
    notes = list(prior.notes)

    if resolved.level == "summary":
        scale = outcome.scale
        y = float(scale.to_analysis(published.estimate))
        se = se_from_ci(float(scale.to_analysis(published.ci_low)),
                        float(scale.to_analysis(published.ci_high)))
        used = engines.get(engines.SUMMARY_ENGINE)
        post = used.fit(Problem(outcome, "summary", estimate=y, se=se,
                                payload=NormalEffects(("published pooled estimate",), [y],
                                                      [se**2])), prior).posterior
        notes = summary_level_notes() + notes
        if requested.model != used.model:
            notes.append(f"--engine {engine} does not apply at summary level; the "
                         "closed-form normal-normal posterior was used")
        return FitRecord(**base, engine=used.name, k=published.k,
                         participants=published.participants, prior=prior.summary_level(),
                         **posterior_summary(post, outcome, [], with_tau=False),
                         prior_data_conflict=prior_data_conflict(y, se, prior.mu),
                         likelihood=Likelihood(y, se, published.source), diagnostics=None,
                         dl=None, published=published_record(published), notes=tuple(notes),
                         settings=Settings(None, versions=versions(used)), posterior=post,
                         draws=labelled(functools.partial(conjugate_idata, post, y, se, prior,
                                                          seed), outcome))

    if resolved.level == "reconstructed":
        return fit_reconstructed(resolved, prior_name, engine, seed, settings, progress, sets,
                                 precomputed)

    classical = classical_from(resolved)
    es = classical.effects
    notes += [f"Design: {n}" for n in resolved.adjustments]
    if es.k == 1:
        notes.append("A single study: the posterior of tau is essentially its prior, and the "
                     "pooled effect carries that uncertainty.")
    if published is not None and es.k < published.k:
        notes.append(f"Partial data: study rows for {es.k} of the {published.k} studies the "
                     "review pooled; this is not a re-analysis of the review's result.")
    if requested.stochastic:
        settings = requested.settings_for(settings or SamplerSettings(), es.k)
    known = ((precomputed or {}).get(exact_key(es, prior))
             if engines.can(requested, "batch") else None)
    result = requested.fit(Problem(outcome, "study", effects=es, posterior=known), prior, seed,
                           settings, progress)
    used_settings = Settings(seed if requested.stochastic else None, **result.settings,
                             versions=versions(requested))
    return FitRecord(**base, engine=requested.name, k=es.k, participants=es.participants,
                     prior=prior,
                     baseline_prior=(prior.baseline_dict()
                                     if requested.model == "binomial-normal" else None),
                     **posterior_summary(result.posterior, outcome, es.study, observed=es.y,
                                         v=es.v),
                     prior_data_conflict=prior_data_conflict(float(classical.pooled.mu),
                                                             float(classical.pooled.se),
                                                             prior.mu),
                     tau_bands=tau_bands(result.posterior, prior.tau, outcome),
                     probability_draws=(result.diagnostics["chains"]
                                        * result.diagnostics["draws"]
                                        if result.diagnostics else None),
                     diagnostics=(Diagnostics(**result.diagnostics,
                                              mcse_effect=effect_mcse(result.idata, outcome))
                                  if result.diagnostics else None),
                     dl=classical.record(),
                     published=published_record(published) if published else None,
                     notes=tuple(notes), settings=used_settings,
                     draws=labelled(result.idata, outcome), posterior=result.posterior)


# at most this many reconstructed tables are fitted (exact engine; MCMC engines): beyond it a
# stratified sample, evenly spaced over the tables ordered by their pooled estimate, is fitted
MAX_TABLES = {False: 200, True: 20}


def tables_to_fit(resolved: Resolved, engine: str) -> tuple[list, str]:
    """The reconstructed tables a fit uses (all, or a stratified sample) and how they were
    chosen, in words."""
    rec = resolved.reconstruction
    tables = resolved.table_rows()
    kept = len(tables)
    cap = MAX_TABLES[engines.get(engine).stochastic]
    sampling = "the only table" if kept == 1 else f"all {kept} tables"
    if kept > cap:
        order = np.argsort(rec.reproduces_estimates(), kind="stable")
        picks = order[np.unique(np.linspace(0, kept - 1, cap).round().astype(int))]
        tables = [tables[i] for i in picks]
        sampling = (f"a stratified sample of {len(tables)} of {kept} tables, evenly spaced "
                    "over the tables ordered by their pooled estimate")
    if rec.n_solutions > len(rec.tables):
        sampling += f" (the first {len(rec.tables)} tables found were kept)"
    return tables, sampling


QUANTILES = (0.5, 0.025, 0.975)


def effect_mcse(idata, outcome) -> tuple[float, float, float] | None:
    """Monte Carlo SE of the pooled effect's median and 95% limits from MCMC draws (ArviZ
    ``az.mcse(method="quantile")`` on the analysis scale, carried to the natural scale by the
    delta method), so that a printed digit is known to be stable or not."""
    import arviz as az

    if idata is None or callable(idata) or "mu" not in idata.posterior:
        return None
    mu = idata.posterior["mu"]
    scale = outcome.scale
    out = []
    for q in QUANTILES:
        se = float(az.mcse(mu, method="quantile", prob=q).to_array().values.ravel()[0])
        x = float(mu.quantile(q).values)
        h = 1e-6 * max(1.0, abs(x))
        slope = abs(float(scale.to_natural(x + h)) - float(scale.to_natural(x - h))) / (2 * h)
        out.append(se * slope)
    return tuple(out)


def fit_reconstructed(resolved: Resolved, prior_name, engine, seed, settings, progress, sets,
                      precomputed=None) -> FitRecord:
    """Fit every reconstructed table (or a stratified sample) at study level and report the
    equal-weight mixture of their posteriors, with the spread across tables."""
    rec = resolved.reconstruction
    tables, sampling = tables_to_fit(resolved, engine)
    fits = []
    for rows in tables:
        fits.append(fit_resolved(resolved.with_rows(rows), prior_name, engine, seed, settings,
                                 progress, sets, precomputed))
    first = fits[0]
    label = data_status_label(rec)
    construction = (f"pooled as the review did ({rec.method}), it reproduces the review's "
                    "printed result by construction (the tables were chosen to), so that "
                    "agreement is not a check of the data")
    if len(fits) == 1:
        head = f"Data: {label}; {construction}."
    else:
        head = (f"Data: {label}. The posterior is the equal-weight mixture over the tables "
                f"fitted ({sampling}); each, {construction}.")
    notes = [head] + [n for n in first.notes]
    summary = Reconstructed(
        label=label, n_tables=rec.n_solutions, tables_fitted=len(fits), sampling=sampling,
        effect_median_range=(min(f.effect.median for f in fits),
                             max(f.effect.median for f in fits)),
        p_benefit_range=(min(f.p_benefit for f in fits), max(f.p_benefit for f in fits)),
        tables=tuple(tuple({"study": row.study, "events_t": int(row.events_t),
                            "n_t": int(row.n_t), "events_c": int(row.events_c),
                            "n_c": int(row.n_c)} for row in r.itertuples(index=False))
                     for r in tables[:20]),
        assumptions=rec.inferred,
        flags=rec.arm_flags([r[["events_t", "n_t", "events_c", "n_c"]].to_numpy()
                             for r in tables]))
    # the classical reference pools the (first) table as the review did (RevMan's method)
    dl_record = classical_from(resolved.with_rows(tables[0]), rec.method).record()
    if len(fits) == 1:
        return dataclasses.replace(first, level="reconstructed", dl=dl_record,
                                   data_status=resolved.status.description,
                                   reconstruction=summary, notes=tuple(notes))
    post = MixturePosterior([f.posterior for f in fits])
    outcome = resolved.outcome
    observed = np.median([[s.observed for s in f.studies] for f in fits], axis=0)
    fields = posterior_summary(post, outcome, rec.studies,
                               observed=outcome.scale.to_analysis(observed))
    fields["tau2"] = fields["i2"] = None  # I^2 depends on each table's variances: not mixed
    mixed = dataclasses.replace(first, **fields, level="reconstructed", dl=dl_record,
                                data_status=resolved.status.description,
                                reconstruction=summary, notes=tuple(notes),
                                draws=None, posterior=post,
                                probability_draws=(sum(f.probability_draws for f in fits)
                                                   if first.probability_draws else None))
    return mixed


def data_status_label(rec) -> str:
    which = rec.which if rec.n_solutions == 1 else f"one of {rec.which}"
    return f"reconstructed, {which} {rec.consistent}"


def published_record(p) -> PublishedResult:
    return PublishedResult(p.estimate, p.ci_low, p.ci_high, p.k, p.participants, p.model,
                           p.grade, p.source)


def priors_for(dataset: Dataset, outcome_id: str, level: str, prior_sets=None) -> list[str]:
    """Prior sets compared by default: all that apply; at summary level one per distinct mu prior."""
    return default_priors(dataset.outcome(outcome_id), level, prior_sets)


def default_priors(outcome, level: str, prior_sets=None) -> list[str]:
    """:func:`priors_for` of an outcome record."""
    sets = load_prior_sets() if prior_sets is None else prior_sets
    names = applicable_priors(outcome, sets)
    default = default_prior_name(outcome.measure)
    names = [default] + [n for n in names if n != default] if default in names else names
    if level != "summary":
        return names
    seen, keep = set(), []
    for name in names:
        mu = resolve_prior(name, outcome, sets).mu
        key = (round(mu.mean, 12), round(mu.sd, 12) if math.isfinite(mu.sd) else None)
        if key not in seen:
            seen.add(key)
            keep.append(name)
    return keep


def compare_priors(dataset: Dataset, outcome_id: str, prior_names: list[str] | None = None,
                   engine: str = engines.AUTO, level: str = "auto", seed: int = DEFAULT_SEED,
                   settings=None, progress=None, prior_sets=None) -> list[FitRecord]:
    """Fits of one outcome under several prior sets (default: all that apply).

    A fit that fails the convergence checks raises ConvergenceError: a comparison never mixes
    converged and unconverged rows.
    """
    return compare_resolved(dataset.resolve(outcome_id, level), prior_names, engine, seed,
                            settings, progress, prior_sets)


def compare_resolved(resolved: Resolved, prior_names: list[str] | None = None,
                     engine: str = engines.AUTO, seed: int = DEFAULT_SEED, settings=None,
                     progress=None, prior_sets=None) -> list[FitRecord]:
    """:func:`compare_priors` of an outcome already resolved."""
    outcome_id = resolved.outcome.outcome
    sets = load_prior_sets() if prior_sets is None else prior_sets
    names = prior_names or default_priors(resolved.outcome, resolved.level, sets)
    rows = []
    for i, name in enumerate(names):
        if progress:
            progress(i, len(names), f"{outcome_id}: {name}")
        rows.append(fit_resolved(resolved, name, engine, seed, settings, prior_sets=sets))
    return rows


def outcomes_with_data(dataset: Dataset) -> list[str]:
    return [o for o in dataset.outcome_ids() if dataset.status(o).level is not None]


def has_level(dataset: Dataset, outcome_id: str, level: str) -> bool:
    """Whether an outcome can be analysed at ``level`` (auto: at some level)."""
    try:
        dataset.resolve(outcome_id, level)
    except InputError:
        return False
    return True


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


def exact_key(effects, prior) -> tuple:
    """What identifies an exact normal-normal problem: the effects, variances and the priors."""
    return (np.asarray(effects.y, float).tobytes(), np.asarray(effects.v, float).tobytes(),
            prior.mu, prior.tau)


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

BMA_ENGINES = (engines.AUTO, "exact", "binomial-exact")


def bma_outcome(dataset: Dataset, outcome_id: str, prior_name: str | None = None,
                level: str = "auto", prior_sets=None, engine: str = engines.AUTO) -> BMARecord:
    """Marginal likelihoods of {fixed, random effects} x {mu = 0, mu free}, Bayes factors and
    the model-averaged pooled effect (equal prior model probabilities).

    At summary level (the published pooled estimate, one observation) only the two fixed-effect
    models are defined; reconstructed data use their table (refused when there are several).
    ``engine``: "exact" (normal-normal likelihood), "binomial-exact" (binomial-normal on arm
    counts, RR/OR) or "auto" (binomial-normal on sparse arm counts, as `fit`).
    """
    require_direction(dataset, [outcome_id], "bma")
    return bma_resolved(dataset.resolve(outcome_id, level), prior_name, prior_sets, engine)


def bma_resolved(resolved: Resolved, prior_name: str | None = None, prior_sets=None,
                 engine: str = engines.AUTO) -> BMARecord:
    """:func:`bma_outcome` of an outcome already resolved."""
    from bayes_pip.engines import evidence as ev
    from bayes_pip.engines.exact import exact_posterior

    level_used, status = resolved.level, resolved.status.description
    outcome = resolved.outcome
    sets = load_prior_sets() if prior_sets is None else prior_sets
    prior = resolve_prior(prior_name or default_prior_name(outcome.measure), outcome, sets)
    scale = outcome.scale
    notes = list(prior.notes)
    if resolved.level == "summary":
        p = resolved.published
        y = np.array([float(scale.to_analysis(p.estimate))])
        se = se_from_ci(float(scale.to_analysis(p.ci_low)), float(scale.to_analysis(p.ci_high)))
        v = np.array([se**2])
        k, participants, random_effects = p.k, p.participants, False
        notes.insert(0, "Summary level: the published pooled estimate is one observation, so "
                        "only the fixed-effect models (mu = 0 against mu free) are compared; "
                        "heterogeneity cannot be tested.")
    else:
        if resolved.level == "reconstructed":
            notes.insert(0, f"Data: {data_status_label(resolved.reconstruction)}.")
        table = single_table(resolved, "Bayes factors are given for a single table (try "
                                       "--level summary)")
        es = classical_from(table).effects
        y, v = es.y, es.v
        k, participants, random_effects = es.k, es.participants, es.k > 1
        if es.k == 1:
            notes.insert(0, "A single study: heterogeneity cannot be tested; only the "
                            "fixed-effect models are compared.")
    binomial = resolved.level != "summary" and (
        engine == "binomial-exact" or (engine == engines.AUTO and sparse_arms(table)))
    if binomial:
        if scale.link is None:
            raise InputError(f"--engine binomial-exact needs an RR or OR outcome; "
                             f"'{outcome.outcome}' is {outcome.measure}")
        from bayes_pip.engines.exact_binomial import binomial_evidence

        log_ml, parts = binomial_evidence(es.events_t, es.n_t, es.events_c, es.n_c,
                                          scale.link, prior.mu, prior.tau, prior.baseline,
                                          random_effects)
        e = ev.weigh(log_ml)
        why = (f"--engine auto: {SPARSE_RULE}" if engine == engines.AUTO
               else "--engine binomial-exact")
        notes.insert(0, f"Likelihood: binomial-normal on the arm counts ({why}); each "
                        "study's control-arm baseline ~ "
                        f"Normal({prior.baseline.mean:g}, {prior.baseline.sd:g}^2). The "
                        "marginal likelihoods are not comparable with those of the "
                        "normal-normal model (a different likelihood), only with each other.")
    else:
        e = ev.evidence(y, v, prior.mu, prior.tau, random_effects=random_effects)
        parts = {"FE": ev.fixed_effect_posterior(y, v, prior.mu)}
        if random_effects:
            parts["RE"] = exact_posterior(y, v, prior.mu, prior.tau)
    averaged = ev.AveragedMu(e, parts)
    mu = Interval(*(averaged.quantile(q) for q in (0.5, 0.025, 0.975)))
    natural = Interval(*(float(scale.to_natural(x)) for x in (mu.median, mu.ci_low, mu.ci_high)))
    given = averaged.given_effect()
    given_effect = Interval(*(float(scale.to_natural(given.quantile(q)))
                              for q in (0.5, 0.025, 0.975)))

    def log_bf(mu_prior) -> float:
        if binomial:
            from bayes_pip.engines.exact_binomial import binomial_evidence

            logs, _ = binomial_evidence(es.events_t, es.n_t, es.events_c, es.n_c, scale.link,
                                        mu_prior, prior.tau, prior.baseline, random_effects)
            other = ev.weigh(logs)
        else:
            other = ev.evidence(y, v, mu_prior, prior.tau, random_effects=random_effects)
        return other.log_bf_effect if random_effects else other.log_bf_effect_fixed

    by_width = []
    for label, mean, sd in bf_widths(outcome, prior):
        value = (e.log_bf_effect if random_effects else e.log_bf_effect_fixed) \
            if (mean, sd) == (prior.mu.mean, prior.mu.sd) else log_bf(Normal(mean, sd))
        by_width.append(WidthBayesFactor(label, mean, sd, value, ev.bf_value(value)))
    # P(mu < 0) leaves out the null models' point mass at 0 (not a benefit)
    benefit = averaged.cdf(0.0) - averaged.null if outcome.benefit == "lower" \
        else averaged.sf(0.0)
    p_re = benefit_probability(parts["RE"], outcome, 0.0) if random_effects else None
    models = tuple(ModelEvidence(m, ev.MODEL_TITLES[m], e.log_ml[m], e.prior_probability[m],
                                 e.posterior_probability[m]) for m in e.posterior_probability)
    return BMARecord(
        outcome=outcome.outcome, label=outcome.label, measure=outcome.measure,
        benefit=outcome.benefit, level=level_used, data_status=status, k=k,
        participants=participants, prior=prior,
        bf_effect=e.bf_effect if random_effects else None,
        bf_heterogeneity=e.bf_heterogeneity if random_effects else None,
        bf_effect_fixed=ev.bf_value(e.log_bf_effect_fixed), models=models, mu=mu,
        effect=natural, p_benefit=float(benefit), p_benefit_random_effects=p_re,
        log_bf_effect=e.log_bf_effect if random_effects else None,
        log_bf_heterogeneity=e.log_bf_heterogeneity if random_effects else None,
        log_bf_effect_fixed=e.log_bf_effect_fixed,
        likelihood="binomial-normal" if binomial else "normal-normal",
        notes=tuple(notes), settings=Settings(None, versions=versions(
            engines.get("binomial-exact" if binomial else "exact"))),
        p_null=float(averaged.null), effect_given_effect=given_effect,
        bf_by_width=tuple(by_width))


def bf_widths(outcome, prior) -> list[tuple[str, float, float]]:
    """Priors on the pooled effect whose Bayes factors a report shows beside the one used:
    centred normals of the sceptical width (5% beyond the MCID), of SD 1 and of SD 10 on a
    log-ratio or SMD scale, and the prior used; ordered by width."""
    out = [("the prior used", prior.mu.mean, prior.mu.sd)]
    if not math.isfinite(prior.mu.sd):
        return []
    if outcome.mcid is not None:
        sd = abs(float(outcome.scale.to_analysis(outcome.mcid))) / 1.6448536269514722
        if sd > 0:
            out.append(("sceptical width", 0.0, sd))
    if outcome.scale.unit_free:
        out += [("SD 1", 0.0, 1.0), ("vague, SD 10", 0.0, 10.0)]
    seen, keep = set(), []
    for label, mean, sd in out:
        key = (round(mean, 9), round(sd, 9))
        if key not in seen:
            seen.add(key)
            keep.append((label, mean, sd))
    return sorted(keep, key=lambda w: w[2])


# ---------------------------------------------------------------------------------------------
# robustness: leave one study out, influence, small-study effects
# ---------------------------------------------------------------------------------------------

def single_table(resolved: Resolved, refusal: str) -> Resolved:
    """A resolved outcome at study level: its printed rows, or its only reconstructed table
    (with several, refused: ``refusal`` says what is given for one table only)."""
    if resolved.level != "reconstructed":
        return resolved
    rec = resolved.reconstruction
    if rec.n_solutions != 1:
        raise InputError(f"outcome '{resolved.outcome.outcome}' has {rec.n_solutions} "
                         f"reconstructed tables; {refusal}")
    return resolved.with_rows(resolved.table_rows()[0])


def study_level(dataset: Dataset, outcome_id: str, level: str, what: str):
    """The outcome at study level (printed or the single reconstructed table), with the level
    and data status it was resolved at."""
    resolved = dataset.resolve(outcome_id, level)
    if resolved.level == "summary":
        raise InputError(f"{what} needs study-level data; outcome '{outcome_id}' is analysed "
                         "from its published pooled result only")
    return (single_table(resolved, f"{what} is given for a single table"), resolved.level,
            resolved.status.description)


def influence_outcome(dataset: Dataset, outcome_id: str, prior_name: str | None = None,
                      level: str = "auto", prior_sets=None, progress=None) -> InfluenceRecord:
    """Each study left out in turn (DL and the exact Bayesian posterior) and metafor's influence
    diagnostics of the DL model; ``progress(i, n, study)`` after each refit."""
    from bayes_pip import robustness
    from bayes_pip.engines.exact import exact_posterior

    require_direction(dataset, [outcome_id], "influence")
    resolved, level_used, status = study_level(dataset, outcome_id, level, "leave-one-out")
    outcome = resolved.outcome
    classical = classical_from(resolved)
    es = classical.effects
    if es.k < 3:
        raise InputError(f"leave-one-out needs at least 3 studies; outcome '{outcome_id}' has "
                         f"{es.k}")
    sets = load_prior_sets() if prior_sets is None else prior_sets
    prior = resolve_prior(prior_name or default_prior_name(outcome.measure), outcome, sets)
    scale = outcome.scale
    loo = robustness.leave_one_out(es.y, es.v)
    infl = robustness.influence(es.y, es.v)

    def row(name, estimate, low, high, tau2, i2, q, keep):
        post = exact_posterior(es.y[keep], es.v[keep], prior.mu, prior.tau)
        nat = [float(scale.to_natural(post.quantile("mu", p))) for p in (0.5, 0.025, 0.975)]
        return LeaveOneOutRow(name, float(scale.to_natural(estimate)),
                              float(scale.to_natural(low)), float(scale.to_natural(high)),
                              float(tau2), float(i2), float(q), *nat,
                              post.quantile("tau", 0.5), benefit_probability(post, outcome, 0.0))

    full_dl = classical.pooled
    every = np.ones(es.k, bool)
    full = row("all studies", full_dl.mu, full_dl.ci_low, full_dl.ci_high, full_dl.tau2,
               full_dl.i2, full_dl.q, every)
    rows = []
    for i, name in enumerate(es.study):
        rows.append(row(name, loo.estimate[i], loo.ci_low[i], loo.ci_high[i], loo.tau2[i],
                        loo.i2[i], loo.q[i], every & (np.arange(es.k) != i)))
        if progress:
            progress(i + 1, es.k, f"without {name}")
    rows = tuple(rows)
    diag = tuple(InfluenceRow(name, *(float(getattr(infl, f)[i]) for f in (
        "rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "qe_del", "hat", "weight",
        "dfbetas")), bool(infl.influential[i])) for i, name in enumerate(es.study))
    notes = []
    if level_used == "reconstructed":
        notes.append(f"Data: {status}.")
    if es.k < 5:
        notes.append(f"With {es.k} studies each leave-one-out analysis rests on {es.k - 1}: "
                     "expect large changes; the influence criteria were designed for more studies.")
    return InfluenceRecord(outcome.outcome, outcome.label, outcome.measure, outcome.benefit,
                           level_used, status, es.k, prior, full, rows, diag, tuple(notes))


def egger_outcome(dataset: Dataset, outcome_id: str, level: str = "auto") -> EggerRecord:
    """Egger's regression test for small-study effects (refused with fewer than 10 studies)."""
    from bayes_pip import robustness

    resolved, _, _ = study_level(dataset, outcome_id, level, "a funnel plot")
    outcome = resolved.outcome
    classical = classical_from(resolved)
    es = classical.effects
    if es.k < robustness.EGGER_MIN_K:
        raise InputError(f"funnel plots and Egger's test need at least "
                         f"{robustness.EGGER_MIN_K} studies (Cochrane Handbook 10.4.3.1: with "
                         f"fewer the test has too little power); outcome '{outcome_id}' has "
                         f"{es.k}")
    e = robustness.egger_test(es.y, es.v)
    scale = outcome.scale
    return EggerRecord(outcome.outcome, outcome.label, outcome.measure, es.k, e.slope, e.t,
                       e.df, e.p, float(scale.to_natural(e.limit)),
                       float(scale.to_natural(e.limit_ci_low)),
                       float(scale.to_natural(e.limit_ci_high)),
                       tuple(map(float, es.y)), tuple(map(float, np.sqrt(es.v))),
                       float(classical.pooled.mu),
                       ("Asymmetry can come from small-study effects of many kinds (publication "
                        "bias, heterogeneity, chance), not only from missing studies.",))


PARETO_K_HIGH = 0.7  # Vehtari, Gelman & Gabry 2017: above it the PSIS estimate is unreliable


def loo_comparison(fits: list[FitRecord]) -> tuple[LooRow, ...]:
    """PSIS-LOO (ArviZ) of each fit on its per-study log-likelihood, best first."""
    import warnings

    import arviz as az

    rows = []
    for f in fits:
        if f.level == "summary":
            raise InputError("leave-one-study-out needs study-level data; this outcome is "
                             "analysed from its published pooled result")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # high Pareto k is reported in the table instead
            loo = az.loo(f.idata, pointwise=True)
        k = np.asarray(loo.pareto_k).ravel()
        names = [s.study for s in f.studies] or [f"study {i + 1}" for i in range(len(k))]
        rows.append((f.prior.name, float(loo.elpd_loo), float(loo.se), float(loo.p_loo),
                     float(k.max()), tuple(n for n, v in zip(names, k) if v > PARETO_K_HIGH),
                     np.asarray(loo.loo_i).ravel()))
    best = max(rows, key=lambda r: r[1])
    out = []
    for name, elpd, se, p, kmax, high, pointwise in rows:
        # the SE of a paired difference, as az.compare computes it (dse): sqrt(n var(d_i))
        d = best[6] - pointwise
        out.append(LooRow(name, elpd, se, p, best[1] - elpd, kmax, high,
                          float(np.sqrt(len(d) * np.var(d)))))
    return tuple(sorted(out, key=lambda r: r.elpd_diff))
