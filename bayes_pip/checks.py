"""Checks beside the main fit: Bayes factors and model averaging (bma), leave one study out\n(influence), Egger's test (funnel) and the LOO ranking of prior sets."""

from __future__ import annotations

import math

import numpy as np

from bayes_pip import engines
from bayes_pip.classical import classical_from
from bayes_pip.data import Dataset, Resolved
from bayes_pip.engines.base import Problem
from bayes_pip.engines.conjugate import se_from_ci
from bayes_pip.prior_families import Normal
from bayes_pip.priors import default_prior_name, load_prior_sets, resolve_prior
from bayes_pip.errors import InputError
from bayes_pip.payloads import NormalEffects
from bayes_pip.record import (BMARecord, WidthBayesFactor, EggerRecord, FitRecord,
                              InfluenceRecord, InfluenceRow, Interval, LeaveOneOutRow, LooRow, ModelEvidence, Settings)
from bayes_pip.posterior_stats import (benefit_probability)
from bayes_pip.analysis import (SPARSE_RULE, data_status_label, require_direction, sparse_arms,
                                versions)
from bayes_pip import direction


# --engine auto for `bma`: the binomial-normal evidence on sparse arm counts (as `fit`), the
# normal-normal one otherwise; any engine with the "marginal_likelihood" capability can be named
AUTO_EVIDENCE = {True: "binomial-exact", False: "exact"}


def evidence_engine(name: str, sparse: bool, summary: bool):
    """The engine whose ``evidence`` a `bma` uses: ``name``, or for auto the one the data call
    for; the normal-normal one at summary level (one published estimate). One line for an
    engine that gives no marginal likelihood."""
    if summary:
        name = AUTO_EVIDENCE[False]
    engine = engines.get(AUTO_EVIDENCE[sparse] if name == engines.AUTO else name)
    if not engines.can(engine, "marginal_likelihood"):
        able = [n for n in engines.choices() if engines.can(n, "marginal_likelihood")]
        raise InputError(f"--engine {engine.name} gives no marginal likelihood; `bma` runs with "
                         f"auto or {', '.join(able)}")
    return engine


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
    summary = resolved.level == "summary"
    used = evidence_engine(engine, not summary and bool(sparse_arms(table)), summary)
    binomial = used.model == "binomial-normal"
    if binomial and scale.link is None:
        raise InputError(f"--engine {used.name} needs an RR or OR outcome; "
                         f"'{outcome.outcome}' is {outcome.measure}")
    if summary:
        payload = NormalEffects(("published pooled estimate",), y, v)
    else:
        payload = engines.payload_for(used, Problem(outcome, "study", effects=es))
    e, parts = used.evidence(payload, prior, random_effects)
    if binomial:
        why = (f"--engine auto: {SPARSE_RULE}" if engine == engines.AUTO
               else f"--engine {used.name}")
        notes.insert(0, f"Likelihood: binomial-normal on the arm counts ({why}); each "
                        "study's control-arm baseline ~ "
                        f"Normal({prior.baseline.mean:g}, {prior.baseline.sd:g}^2). The "
                        "marginal likelihoods are not comparable with those of the "
                        "normal-normal model (a different likelihood), only with each other.")
    averaged = ev.AveragedMu(e, parts)
    mu = Interval(*(averaged.quantile(q) for q in (0.5, 0.025, 0.975)))
    natural = Interval(*(float(scale.to_natural(x)) for x in (mu.median, mu.ci_low, mu.ci_high)))
    given = averaged.given_effect()
    given_effect = Interval(*(float(scale.to_natural(given.quantile(q)))
                              for q in (0.5, 0.025, 0.975)))

    nulls = {m: e.log_ml[m] for m in ("FE0", "RE0") if m in e.log_ml}  # free of mu's prior

    def log_bf(mu_prior) -> float:
        other, _ = used.evidence(payload, prior, random_effects, mu_prior, nulls,
                                 with_posteriors=False)
        return other.log_bf_effect if random_effects else other.log_bf_effect_fixed

    by_width = []
    for label, mean, sd in bf_widths(outcome, prior):
        value = (e.log_bf_effect if random_effects else e.log_bf_effect_fixed) \
            if (mean, sd) == (prior.mu.mean, prior.mu.sd) else log_bf(Normal(mean, sd))
        by_width.append(WidthBayesFactor(label, mean, sd, value, ev.bf_value(value)))
    # P(mu < 0) leaves out the null models' point mass at 0 (not a benefit)
    benefit = averaged.cdf(0.0) - averaged.null if direction.of(outcome).lower \
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
        likelihood=used.model, notes=tuple(notes), settings=Settings(None, versions=versions(
            used)),
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
