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
from bayes_pip.priors import (applicable_priors, default_prior_name, load_prior_sets,
                              resolve_prior)
from bayes_pip.errors import InputError
from bayes_pip.record import (Diagnostics, FitRecord,
                              Likelihood,
                              LikelihoodChoice, PublishedResult,
                              Reconstructed, Settings)
from bayes_pip.posterior_stats import (posterior_summary, prior_data_conflict,
                                       tau_bands)
from bayes_pip.version import __version__


DEFAULT_SEED = 20150603  # any fixed number; stored with every output


def versions(engine) -> dict:
    """Versions of bayes_pip and of the packages an engine uses."""
    return {"bayes_pip": __version__, **{n: package_version(n) for n in engine.packages}}


@functools.cache
def package_version(name: str) -> str | None:
    """An installed package's version (None if absent), read once per process (reading the
    installed metadata took about 9 ms a fit)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


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
    from bayes_pip.formats import num

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

    classical, dl_record = classical_of(resolved)
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
                     dl=dl_record,
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


def classical_of(resolved: Resolved, method: str = "DL"):
    """The classical analysis of ``resolved`` and its record (DL, or the review's method for
    reconstructed tables), computed once per resolved outcome and method: the fits of one
    outcome under several priors share them."""
    key = ("classical", method)
    if key not in resolved.memo:
        analysis = classical_from(resolved, method)
        resolved.memo[key] = (analysis, analysis.record())
    return resolved.memo[key]


def fit_reconstructed(resolved: Resolved, prior_name, engine, seed, settings, progress, sets,
                      precomputed=None) -> FitRecord:
    """Fit every reconstructed table (or a stratified sample) at study level and report the
    equal-weight mixture of their posteriors, with the spread across tables."""
    rec = resolved.reconstruction
    key = ("tables", engines.get(engine).stochastic)
    if key not in resolved.memo:   # each table as an outcome of its own, made once
        tables, sampling = tables_to_fit(resolved, engine)
        resolved.memo[key] = ([resolved.with_rows(rows) for rows in tables], tables, sampling)
    children, tables, sampling = resolved.memo[key]
    fits = [fit_resolved(child, prior_name, engine, seed, settings, progress, sets, precomputed)
            for child in children]
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
    dl_record = classical_of(children[0], rec.method)[1]
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


def exact_key(effects, prior) -> tuple:
    """What identifies an exact normal-normal problem: the effects, variances and the priors."""
    return (np.asarray(effects.y, float).tobytes(), np.asarray(effects.v, float).tobytes(),
            prior.mu, prior.tau)
