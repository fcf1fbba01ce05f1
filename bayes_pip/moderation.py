"""Review objective 2: which programme features modify the effect (meta-regression, subgroups).

The moderators and the design come from :mod:`bayes_pip.moderator_data` (columns of studies.csv or
trials.csv, numeric or categorical, studies without a value left out and named).

- :func:`classical_moderators` / :func:`classical_subgroups`: metafor-equivalent meta-regression and
  RevMan's test for subgroup differences (:mod:`bayes_pip.metareg`).
- :func:`bayes_moderators`: the Bayesian meta-regression by any registered engine with the
  "regression" capability (its ``regress``: today ``exact``, quadrature over tau, the method of
  bayesmeta ``bmr``, also for auto; and ``pymc``, NUTS with a design matrix), with the prior
  set's tau prior and its coefficient priors (``[coefficients]`` in the prior file; default
  Normal(0, 1) per SD of a numeric moderator, per contrast of a categorical one; intercept
  flat).
"""

from __future__ import annotations

import math

import numpy as np

from bayes_pip import dl, metareg, posterior_stats
from bayes_pip.data import Dataset
from bayes_pip.errors import InputError
from bayes_pip.moderation_record import (BayesCoefficient, BayesMetaRegressionRecord,
                                        Coefficient, CoefficientPrior, FittedBenefit,
                                        FittedEffect, MetaRegressionRecord,
                                        NaturalSubgroup, RegressionLine, StudyPoint,
                                        SubgroupRecord, SubgroupStudy)
from bayes_pip.moderator_data import (ModeratorData, analysis_name, analysis_scale,
                                      check_variation, moderator_data)
from bayes_pip.record import Interval, record_dict


# ---------------------------------------------------------------------------------------------
# classical
# ---------------------------------------------------------------------------------------------


def classical_moderators(dataset: Dataset, outcome_id: str, names: list[str],
                         method: str = "DL", test: str = "z") -> MetaRegressionRecord:
    """Meta-regression of one outcome's study rows on the named moderators (metafor ``rma``);
    ``test="knha"`` for the Knapp-Hartung adjustment (``dl --ci hksj``)."""
    if method not in metareg.METHODS:
        raise InputError(f"--method {method} does not apply to a meta-regression (allowed: "
                         f"{', '.join(metareg.METHODS)})")
    md = moderator_data(dataset, outcome_id, names, level=None)
    check_variation(md)
    X, columns = md.design()
    y, v = md.tables[0]
    try:
        fit = metareg.meta_regression(y, v, X, columns, method, test)
    except ValueError as exc:
        raise InputError(f"outcome '{outcome_id}': {exc}") from None

    def interval(rows):
        pr = fit.predict(rows)
        return pr["estimate"], pr["ci_low"], pr["ci_high"]

    fitted = fitted_effects(md, design_rows(md, X, columns), interval)
    study_effects = study_points(md, fit.tau2)
    line = regression_line(md, interval, "estimate")
    return MetaRegressionRecord(
        outcome=outcome_id, label=md.outcome.label, measure=md.outcome.measure,
        benefit=md.outcome.benefit, fitted=fitted,
        study_effects=study_effects, line=line, analysis="meta-regression", method=method,
        test=test, level=md.level, k=md.k, studies=tuple(md.study), moderators=md.columns(),
        scale=analysis_scale(md.outcome),
        coefficients=tuple(Coefficient(**{k: c[k] for k in ("name", "estimate", "se", "ci_low",
                                                             "ci_high", "p")})
                           for c in fit.coefficients()),
        tau2=fit.tau2, tau2_without_moderators=fit.tau2_without, qm=fit.qm, qm_df=fit.qm_df,
        qm_df2=fit.qm_df2, qm_p=fit.qm_p, qe=fit.qe, qe_df=fit.qe_df, qe_p=fit.qe_p, r2=fit.r2,
        i2=fit.i2, notes=tuple(md.notes() + fitted_note(md, X, columns)))


def classical_subgroups(dataset: Dataset, outcome_id: str, name: str, method: str = "DL",
                        tau: str = "separate") -> SubgroupRecord:
    """Subgroup analysis with the test for subgroup differences (RevMan 5)."""
    if method not in metareg.METHODS:
        raise InputError(f"--method {method} does not apply to a subgroup analysis (allowed: "
                         f"{', '.join(metareg.METHODS)})")
    md = moderator_data(dataset, outcome_id, [name], level=None, as_levels=True)
    check_variation(md)
    y, v = md.tables[0]
    try:
        result = metareg.subgroup_analysis(y, v, md.moderators[0].values, method, tau)
    except ValueError as exc:
        hint = ("; with --tau common the subgroups share one tau^2, which needs more studies "
                "than subgroups (--tau separate pools each subgroup on its own)"
                if tau == "common" else "")
        raise InputError(f"outcome '{outcome_id}', subgroups by {name}: {exc}{hint}") from None
    scale = md.outcome.scale
    z = dl.Z_975
    study_effects = tuple(SubgroupStudy(
        s, str(md.moderators[0].values[i]), float(scale.to_natural(y[i])),
        float(scale.to_natural(y[i] - z * math.sqrt(v[i]))),
        float(scale.to_natural(y[i] + z * math.sqrt(v[i])))) for i, s in enumerate(md.study))
    natural = tuple(NaturalSubgroup(g.level, float(scale.to_natural(g.estimate)),
                                    float(scale.to_natural(g.ci_low)),
                                    float(scale.to_natural(g.ci_high)))
                    for g in result.subgroups)
    return SubgroupRecord(
        outcome=outcome_id, label=md.outcome.label, measure=md.outcome.measure,
        benefit=md.outcome.benefit, analysis="subgroups", subgroup=name, level=md.level,
        k=md.k, studies=tuple(md.study), moderators=md.columns(),
        scale=f"subgroup estimates on the {analysis_name(md.outcome)} scale; natural-scale "
              "copies in subgroups_natural",
        subgroups=tuple(result.subgroups),
        q_between=result.q_between, df_between=result.df_between, p_between=result.p_between,
        method=result.method, tau=result.tau, subgroups_natural=natural,
        study_effects=study_effects, notes=tuple(md.notes()))


# ---------------------------------------------------------------------------------------------
# Bayesian
# ---------------------------------------------------------------------------------------------


def coefficient_prior(md: ModeratorData, columns, prior):
    """Independent normal (or flat) priors per design column, per unit of the moderator as given:
    sd = s / SD(x) for a numeric moderator (SD across the studies analysed), s per contrast of a
    categorical one; the intercept is flat."""
    from bayes_pip.engines.exact_regression import CoefficientPrior

    spec = prior.coefficients
    sd = np.full(len(columns), math.inf)
    if spec["family"] == "normal":
        j = 1
        for m in md.moderators:
            if m.kind == "numeric":
                spread = float(np.std(np.asarray(m.values, float), ddof=1))
                sd[j] = spec["sd"] / spread
                j += 1
            else:
                n = len(m.levels) - 1
                sd[j:j + n] = spec["sd"]
                j += n
    return CoefficientPrior(np.zeros(len(columns)), sd)


# --engine auto fits a meta-regression by quadrature (the method of bayesmeta's bmr): no Monte
# Carlo error, and well under a second where NUTS needs target_accept 0.99 and a compile
AUTO_ENGINE = "exact"


def regression_engine(name: str):
    """The engine that fits a meta-regression for ``--engine name`` (auto: AUTO_ENGINE), asked
    by its capability; one line naming those that can, for any other."""
    from bayes_pip import engines

    name = AUTO_ENGINE if name == engines.AUTO else name
    engine = engines.get(name)
    if not engines.can(engine, "regression"):
        raise InputError(f"--moderator runs with --engine "
                         f"{' or '.join(engines.regression_engines())} (auto: {AUTO_ENGINE}), "
                         f"not {name}")
    return engine


def check_engine(engine: str) -> None:
    """Refuse, before anything is fitted, an engine that cannot fit a meta-regression."""
    regression_engine(engine)


def benefit_probability(post, target, outcome):
    """P(target beyond 0 in the direction of benefit); None when the direction is unknown."""
    if outcome.benefit not in ("higher", "lower"):
        return None
    return posterior_stats.benefit_probability(post, outcome, 0.0, target)


def study_points(md: ModeratorData, tau2: float) -> tuple[StudyPoint, ...]:
    """Each study's observed effect (natural scale), its weight 1/(v + tau^2) and its value of
    the first moderator: the points of a bubble plot."""
    y, v = md.tables[0]
    scale = md.outcome.scale
    return tuple(StudyPoint(s, float(scale.to_natural(y[i])), float(1.0 / (v[i] + tau2)),
                            md.moderators[0].values[i]) for i, s in enumerate(md.study))


# at most this many distinct moderator values are shown as fitted effects; beyond it each numeric
# moderator is shown at its minimum, quartiles and maximum (k = 20,000 distinct doses printed
# 20,000 lines and took the exact engine 200 s)


MAX_FITTED_ROWS = 12


QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)


def numeric_columns(md: ModeratorData, columns) -> list[int]:
    return [columns.index(m.name) for m in md.moderators if m.kind == "numeric"]


def design_rows(md: ModeratorData, X, columns, at=None) -> list[tuple[np.ndarray, str]]:
    """The distinct moderator values of the data (plus ``at``, values of one numeric moderator)
    as design rows, each with its label ('population_group = prison'). With more than
    MAX_FITTED_ROWS distinct rows, each numeric moderator is taken at its nearest quantile in
    QUANTILES (the combinations that occur), so the list stays short whatever k is."""
    rows = np.unique(X, axis=0)
    if len(rows) > MAX_FITTED_ROWS:
        snapped = np.array(X, float)
        for j in numeric_columns(md, columns):
            q = np.quantile(snapped[:, j], QUANTILES)
            snapped[:, j] = q[np.abs(snapped[:, j][:, None] - q[None, :]).argmin(axis=1)]
        rows = np.unique(snapped, axis=0)
    if at:
        if len(md.moderators) != 1 or md.moderators[0].kind != "numeric":
            raise InputError("--at gives values of one numeric moderator")
        if not all(isinstance(a, (int, float)) and math.isfinite(a) for a in at):
            raise InputError("--at values must be finite numbers")
        extra = np.column_stack([np.ones(len(at)), np.asarray(at, float)])
        rows = np.unique(np.vstack([rows, extra]), axis=0)
    return [(row, ", ".join(design_label(m, row, columns) for m in md.moderators))
            for row in rows]


def fitted_effects(md: ModeratorData, labelled_rows, interval) -> tuple[FittedEffect, ...]:
    """The fitted effect at each labelled design row, natural scale; ``interval(rows)`` gives
    the estimate and the 95% limits on the analysis scale for an array of design rows. A value
    that the measure's scale cannot represent (an --at far outside the data) is refused."""
    scale = md.outcome.scale
    out = []
    for row, label in labelled_rows:
        try:
            with np.errstate(all="ignore"):
                parts = [float(a[0]) for a in interval(row[None, :])]
                natural = [float(scale.to_natural(a)) for a in parts]
        except (ValueError, ArithmeticError):  # a quantile search that met inf or nan
            parts = natural = [math.nan]
        representable = all(math.isfinite(x) for x in parts + natural) and not (
            scale.log_scale and min(natural) <= 0.0)   # exp underflowed: a ratio of exactly 0
        if not representable:
            ranges = "; ".join(f"{m.name} from {min(map(float, m.values)):g} to "
                               f"{max(map(float, m.values)):g}" for m in md.moderators
                               if m.kind == "numeric")
            raise InputError(f"the fitted {md.outcome.measure} at {label} is beyond what a "
                             "floating-point number can hold: give --at values nearer the data "
                             f"({ranges})")
        est, low, high = natural
        out.append(FittedEffect(label, est, low, high))
    return tuple(out)


def fitted_note(md: ModeratorData, X, columns) -> list[str]:
    """Says so when the fitted effects are shown at quantiles rather than every value."""
    distinct = len(np.unique(X, axis=0))
    if distinct <= MAX_FITTED_ROWS or not numeric_columns(md, columns):
        return []
    names = ", ".join(m.name for m in md.moderators if m.kind == "numeric")
    return [f"Fitted effects are shown at the minimum, quartiles and maximum of {names} "
            f"({distinct:,} distinct moderator values in the data)."]


def regression_line(md: ModeratorData, interval, centre: str):
    """The fitted effect and its 95% band over the range of one numeric moderator (41 points,
    natural scale), keyed ``centre``, ci_low and ci_high; None for other designs."""
    if len(md.moderators) != 1 or md.moderators[0].kind != "numeric":
        return None
    x = np.asarray(md.moderators[0].values, float)
    grid = np.linspace(x.min(), x.max(), 41)
    scale = md.outcome.scale
    parts = interval(np.column_stack([np.ones_like(grid), grid]))
    return RegressionLine(grid.tolist(), **{key: [float(scale.to_natural(t)) for t in part]
                                            for key, part in zip((centre, "ci_low", "ci_high"),
                                                                 parts)})


def bayes_moderators(dataset: Dataset, outcome_id: str, names: list[str],
                     prior_name: str | None = None, engine: str = "exact", seed: int = 1,
                     settings=None, level: str | None = "auto", prior_sets=None,
                     at: list[float] | None = None) -> BayesMetaRegressionRecord:
    """Bayesian meta-regression of one outcome on the named moderators; ``at``: values of a
    single numeric moderator at which to predict the effect (besides those in the data)."""
    from bayes_pip.payloads import NormalEffects
    from bayes_pip.priors import default_prior_name, load_prior_sets, resolve_prior

    fitter = regression_engine(engine)
    md = moderator_data(dataset, outcome_id, names, level=level)
    check_variation(md)
    outcome = md.outcome
    sets = load_prior_sets() if prior_sets is None else prior_sets
    prior_name = prior_name or default_prior_name(outcome.measure)
    prior = resolve_prior(prior_name, outcome, sets)
    X, columns = md.design()
    cprior = coefficient_prior(md, columns, prior)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise InputError(f"outcome '{outcome_id}': the moderators {', '.join(names)} are "
                         "confounded with each other in these studies (the same split of the "
                         "trials); give one of them")
    payloads = tuple(NormalEffects(md.study, y, v, X) for y, v in md.tables)
    post, diagnostics = fitter.regress(
        payloads, columns, prior, cprior, seed, settings,
        f"outcome '{outcome_id}', meta-regression on {', '.join(m.name for m in md.moderators)}")
    coefficients = []
    for j, name in enumerate(columns):
        t = ("beta", j)
        coefficients.append(BayesCoefficient(
            name=name, mean=post.mean(t), sd=post.sd(t), median=post.quantile(t, 0.5),
            ci_low=post.quantile(t, 0.025), ci_high=post.quantile(t, 0.975),
            p_benefit=None if j == 0 else benefit_probability(post, t, outcome),
            prior=CoefficientPrior("flat") if not np.isfinite(cprior.sd[j])
            else CoefficientPrior("normal", 0.0, float(cprior.sd[j]))))

    def interval(rows):
        return tuple(np.array([post.quantile(("fitted", r), q) for r in rows])
                     for q in (0.5, 0.025, 0.975))

    labelled = design_rows(md, X, columns, at)
    fitted = tuple(FittedBenefit(**vars(f), p_benefit=benefit_probability(
                       post, ("fitted", row), outcome))
                   for f, (row, _) in zip(fitted_effects(md, labelled, interval), labelled))
    tau = Interval(post.quantile("tau", 0.5), post.quantile("tau", 0.025),
                   post.quantile("tau", 0.975))
    study_effects = study_points(md, tau.median ** 2)
    line = regression_line(md, interval, "median")
    prior_dict = prior.to_dict()
    prior_dict["coefficients"] = {**prior.coefficients, "per_unit": [
        record_dict(c.prior) for c in coefficients]}
    return BayesMetaRegressionRecord(
        outcome=outcome_id, label=outcome.label, measure=outcome.measure,
        benefit=outcome.benefit, intervention=outcome.intervention,
        analysis="Bayesian meta-regression", engine=fitter.name, level=md.level, k=md.k,
        studies=tuple(md.study), moderators=md.columns(), prior=prior_dict,
        scale=analysis_scale(outcome), coefficients=tuple(coefficients), tau=tau,
        fitted=fitted, study_effects=study_effects, line=line, diagnostics=diagnostics,
        seed=seed if fitter.stochastic else None,
        notes=tuple(md.notes() + fitted_note(md, X, columns) + residual_note(md.k, X, prior)))


def residual_note(k: int, X, prior) -> list[str]:
    """Says so when no study is left beyond the coefficients: the residual tau is then the
    prior's (the data cannot estimate it)."""
    if k > X.shape[1]:
        return []
    return [f"No residual degrees of freedom: {k} {'study' if k == 1 else 'studies'} and "
            f"{X.shape[1]} coefficients, so the residual tau shown is essentially its prior "
            f"({prior.tau.describe()}), not an estimate from these studies."]


def design_label(m: metareg.Moderator, row, columns) -> str:
    if m.kind == "numeric":
        return f"{m.name} = {row[columns.index(m.name)]:g}"
    for level in m.levels[1:]:
        if row[columns.index(f"{m.name}: {level} vs {m.levels[0]}")] == 1:
            return f"{m.name} = {level}"
    return f"{m.name} = {m.levels[0]}"


# ---------------------------------------------------------------------------------------------
# text
# ---------------------------------------------------------------------------------------------


def compare_moderator_priors(dataset: Dataset, outcome_id: str, names: list[str],
                             prior_names: list[str] | None = None, engine: str = "exact",
                             seed: int = 1, settings=None, level: str | None = "auto",
                             prior_sets=None) -> list[BayesMetaRegressionRecord]:
    """The meta-regression under every prior set that applies (or the named ones)."""
    from bayes_pip.analysis import priors_for
    from bayes_pip.priors import load_prior_sets

    sets = load_prior_sets() if prior_sets is None else prior_sets
    if prior_names is None:
        prior_names = priors_for(dataset, outcome_id, dataset.resolve(outcome_id, level).level,
                                 sets)
    return [bayes_moderators(dataset, outcome_id, names, n, engine, seed, settings, level, sets)
            for n in prior_names]
