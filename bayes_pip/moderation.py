"""Review objective 2: which programme features modify the effect (meta-regression, subgroups).

Moderators are columns of studies.csv (per row) or trials.csv (per trial), joined by study; a
column ``<name>_source`` beside a moderator says where each value comes from. A moderator is
numeric when every value given parses as a number, categorical otherwise (levels sorted, the first
is the reference). Studies without a value are left out, and every output names them.

- :func:`classical_moderators` / :func:`classical_subgroups`: metafor-equivalent meta-regression and
  RevMan's test for subgroup differences (:mod:`bayes_pip.metareg`).
- :func:`bayes_moderators`: the Bayesian meta-regression, exact (quadrature over tau, the method of
  bayesmeta ``bmr``) or PyMC (NUTS with a design matrix), with the prior set's tau prior and its
  coefficient priors (``[coefficients]`` in the prior file; default Normal(0, 1) per SD of a
  numeric moderator, per contrast of a categorical one; intercept flat).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from bayes_pip import dl, metareg, posterior_stats
from bayes_pip.classical import classical_from
from bayes_pip.design import trial_names
from bayes_pip.data import Dataset, Resolved
from bayes_pip.tables import identifier_problem
from bayes_pip.validate import COUNT_COLUMNS, CONTINUOUS_COLUMNS, OUTCOME_COLUMNS, STUDY_COLUMNS
from bayes_pip.engines.draws import DrawQueries
from bayes_pip.errors import InputError


MISSING = ("", "nan")   # a moderator cell that gives no value


MAX_COEFFICIENTS = 50  # design columns (intercept included)


NUMERIC_MAX = 1e9    # moderator values beyond this make the design matrix ill-conditioned


EXPLORATORY_K = 10   # Cochrane Handbook 10.11.5.1: meta-regression needs about 10 studies per moderator


RESERVED = {"outcome", "study", "source", "provenance", "notes", "yi", "sei", "arm_t",
            "arm_c", "design", "arms", "randomised_n", "timepoints", "review_comparisons",
            *COUNT_COLUMNS, *CONTINUOUS_COLUMNS, *OUTCOME_COLUMNS, *STUDY_COLUMNS}


@dataclasses.dataclass(frozen=True)
class ModeratorData:
    """One outcome's effects with moderator values (studies without a value left out)."""
    outcome: object
    level: str
    study: tuple[str, ...]
    tables: tuple[tuple[np.ndarray, np.ndarray], ...]   # (y, v) per table (one at study level)
    moderators: tuple[metareg.Moderator, ...]
    sources: dict                  # moderator -> {study: source text}
    dropped: tuple[str, ...]       # studies without a value of some moderator
    published_k: int | None = None
    aliases: tuple[str, ...] = ()  # other columns that split these studies the same way

    @property
    def k(self) -> int:
        return len(self.study)

    def design(self):
        X, columns = metareg.design_matrix(list(self.moderators))
        if len(columns) > MAX_COEFFICIENTS:
            raise InputError(f"outcome '{self.outcome.outcome}': the moderators give "
                             f"{len(columns)} coefficients (at most {MAX_COEFFICIENTS}); a "
                             "categorical moderator with a level per study cannot be estimated")
        return X, columns

    def notes(self) -> list[str]:
        out = []
        if self.dropped:
            out.append(f"Left out for want of a moderator value: {', '.join(self.dropped)}.")
        if self.k < EXPLORATORY_K:
            out.append(f"Exploratory: {self.k} studies. With fewer than {EXPLORATORY_K} studies "
                       "a moderator analysis cannot separate the moderator from everything else "
                       "that differs between the trials (Cochrane Handbook 10.11.5.1).")
        if self.level == "reconstructed":
            n = len(self.tables)
            out.append(f"Reconstructed data: {n} integer table{'s' if n > 1 else ''} consistent "
                       "with the printed results given the bounds in constraints.csv (some may "
                       "be inferred: `reconstruct OUTCOME` lists them), not printed data"
                       + ("; results are averaged over all of them." if n > 1 else "."))
        if self.aliases:
            out.append(f"Aliased: {', '.join(self.aliases)} split{'s' if len(self.aliases) == 1 else ''} "
                       f"these studies the same way as {', '.join(m.name for m in self.moderators)}, "
                       "so the data cannot tell them apart.")
        if self.published_k is not None and self.k < self.published_k:
            out.append(f"Partial data: {self.k} of the {self.published_k} studies the review "
                       "pooled.")
        return out

    def moderator_dicts(self) -> list[dict]:
        return [{"name": m.name, "kind": m.kind,
                 "levels": m.levels if m.kind == "categorical" else None,
                 "values": {s: v for s, v in zip(self.study, m.values)},
                 "sources": self.sources.get(m.name, {})} for m in self.moderators]


def available(dataset: Dataset) -> list[str]:
    """Columns that can serve as moderators."""
    names = []
    for frame in (dataset.studies, dataset.trials):
        if frame is None:
            continue
        for c in frame.columns:
            if c not in RESERVED and not c.endswith("_source") and c not in names \
                    and not c.startswith("cluster") and c not in ("icc", "multi_arm"):
                names.append(c)
    return names


def lookup(dataset: Dataset, rows, study: tuple[str, ...], name: str):
    """Values and sources of one moderator for the studies analysed."""
    in_rows = name in rows.columns
    trials = dataset.trials
    in_trials = trials is not None and name in trials.columns
    if not (in_rows or in_trials) or name in RESERVED:
        choices = available(dataset)
        raise InputError(f"unknown moderator '{name[:60]}': not a column of studies.csv or "
                         f"trials.csv (available: {', '.join(choices) or 'none'})",
                         file=str(dataset.directory / "trials.csv"), column=name)
    values, sources = [], {}
    by_study = {}
    if in_trials:
        for r in trials.to_dict("records"):
            by_study[str(r["study"])] = (str(r[name]).strip(),
                                          str(r.get(f"{name}_source", r.get("source", ""))))
    row_of = {str(r["study"]): r for r in rows.to_dict("records")} if in_rows else {}
    for s in study:
        r = row_of.get(s)
        if r is not None and str(r[name]).strip() not in MISSING:
            value, source = str(r[name]).strip(), str(r.get(f"{name}_source", r.get("source", "")))
        else:
            value, source = next((by_study[t] for t in trial_names(s) if t in by_study),
                                 ("", ""))
        if value in MISSING:
            values.append(None)
        else:
            values.append(value)
            sources[s] = source
    return values, sources


def is_number(text) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def declared(dataset: Dataset, name: str) -> str | None:
    """The kind dataset.toml (or --subgroup) declares for a moderator, if any."""
    table = dataset.metadata.get("moderators")
    return table.get(name, {}).get("kind") if isinstance(table, dict) else None


def kind_of(dataset: Dataset, name: str, values) -> str:
    return declared(dataset, name) or (
        "numeric" if all(is_number(v) for v in values) else "categorical")


def moderator_data(dataset: Dataset, outcome_id: str, names: list[str],
                   level: str | None = None, as_levels: bool = False) -> ModeratorData:
    """Resolve an outcome and join the named moderators to its studies (``as_levels``: the
    values are subgroup labels, so numbers mixed with text are fine)."""
    if not names:
        raise InputError("give at least one --moderator")
    if len(set(names)) < len(names):
        raise InputError("a moderator is given twice")
    for name in names:
        problem = identifier_problem(name)
        if problem:
            raise InputError(f"moderator name {name[:60]!r} {problem}")
    resolved: Resolved = dataset.resolve(outcome_id, level=level)
    if resolved.level == "summary":
        raise InputError(f"outcome '{outcome_id}' has only the published pooled result: a "
                         "moderator analysis needs study rows (or reconstructed tables)")
    frames = resolved.table_rows() if resolved.level == "reconstructed" else [resolved.rows]
    effects = [classical_from(resolved.with_rows(f) if resolved.level == "reconstructed"
                              else resolved).effects for f in frames]
    study = effects[0].study
    rows = frames[0]
    raw, sources = {}, {}
    for name in names:
        raw[name], sources[name] = lookup(dataset, rows, study, name)
    keep = [all(raw[n][i] is not None for n in names) for i in range(len(study))]
    dropped = tuple(s for s, k in zip(study, keep) if not k)
    idx = np.flatnonzero(keep)
    mods = []
    for name in names:
        vals = [raw[name][i] for i in idx]
        kind = kind_of(dataset, name, vals)
        numbers = [i for i in idx if is_number(raw[name][i])]
        if kind == "categorical" and numbers and len(numbers) < len(idx) and not as_levels \
                and not declared(dataset, name):   # "12 weeks" or "NA" among numbers: never silently categories
            i = next(i for i in idx if not is_number(raw[name][i]))
            raise InputError(f"moderator '{name}' of {study[i]} is {raw[name][i]!r} where the "
                             f"other studies give numbers (e.g. {raw[name][numbers[0]]!r}): give "
                             "a number, leave the cell empty when it is not known, or declare "
                             f"[moderators.{name}] kind = \"categorical\" in dataset.toml",
                             file=str(dataset.directory / ("studies.csv" if name in rows.columns
                                                            else "trials.csv")), column=name)
        if kind == "numeric":
            for i in idx:
                x = float(raw[name][i])
                if not math.isfinite(x) or abs(x) > NUMERIC_MAX:
                    raise InputError(f"moderator '{name}' of {study[i]} is {raw[name][i]!r}: a "
                                     f"numeric moderator must be a finite number of at most "
                                     f"{NUMERIC_MAX:g} in absolute value",
                                     file=str(dataset.directory / ("studies.csv" if name in
                                                                    rows.columns else
                                                                    "trials.csv")),
                                     column=name)
        mods.append(metareg.Moderator(name, tuple(float(v) for v in vals) if kind == "numeric"
                                      else tuple(vals), kind))
    aliases = tuple(other for other in available(dataset) if other not in names
                    and same_split(lookup(dataset, rows, study, other)[0], raw, names, idx))
    published = resolved.published
    return ModeratorData(outcome=resolved.outcome, level=resolved.level or "study", aliases=aliases,
                         study=tuple(study[i] for i in idx),
                         tables=tuple((es.y[idx], es.v[idx]) for es in effects),
                         moderators=tuple(mods), sources=sources, dropped=dropped,
                         published_k=None if published is None else published.k)


def analysis_name(outcome) -> str:
    return f"log {outcome.measure}" if outcome.scale.is_ratio else outcome.measure


def analysis_scale(outcome) -> str:
    return (f"coefficients per unit of each moderator as given, on the "
            f"{analysis_name(outcome)} scale")


def partition(labels) -> set:
    groups = {}
    for i, x in enumerate(labels):
        groups.setdefault(x, []).append(i)
    return {tuple(g) for g in groups.values()}


def same_split(values, raw, names, idx) -> bool:
    """Whether another column, known for every kept study, splits them exactly as the named
    moderators do together (and into more than one group)."""
    other = [values[i] for i in idx]
    if any(v is None for v in other) or len(idx) < 2:
        return False
    joint = [tuple(raw[n][i] for n in names) for i in idx]
    return len(set(other)) > 1 and partition(other) == partition(joint)


def check_variation(md: ModeratorData) -> None:
    for m in md.moderators:
        distinct = set(m.values)
        if len(distinct) < 2:
            shown = ", ".join(f"{s}: {v}" for s, v in zip(md.study, m.values)) or "no study"
            raise InputError(f"outcome '{md.outcome.outcome}': moderator '{m.name}' does not "
                             f"vary across the studies with a value ({shown}); nothing to "
                             f"compare" + (f" (no value for {', '.join(md.dropped)})"
                                           if md.dropped else ""))


# ---------------------------------------------------------------------------------------------
# classical
# ---------------------------------------------------------------------------------------------


def classical_moderators(dataset: Dataset, outcome_id: str, names: list[str],
                         method: str = "DL", test: str = "z") -> dict:
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
    return {"outcome": outcome_id, "label": md.outcome.label, "measure": md.outcome.measure,
            "benefit": md.outcome.benefit, "fitted": fitted, "study_effects": study_effects,
            "line": line,
            "analysis": "meta-regression", "method": method, "test": test,
            "level": md.level, "k": md.k,
            "studies": list(md.study), "moderators": md.moderator_dicts(),
            "scale": analysis_scale(md.outcome),
            "coefficients": [{k: c[k] for k in ("name", "estimate", "se", "ci_low", "ci_high", "p")}
                             for c in fit.coefficients()],
            "tau2": fit.tau2, "tau2_without_moderators": fit.tau2_without,
            "qm": fit.qm, "qm_df": fit.qm_df, "qm_df2": fit.qm_df2, "qm_p": fit.qm_p,
            "qe": fit.qe,
            "qe_df": fit.qe_df, "qe_p": fit.qe_p, "r2": fit.r2, "i2": fit.i2,
            "notes": md.notes() + fitted_note(md, X, columns)}


def classical_subgroups(dataset: Dataset, outcome_id: str, name: str, method: str = "DL",
                        tau: str = "separate") -> dict:
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
    study_effects = [{"study": s, "level": str(md.moderators[0].values[i]),
                      "estimate": float(scale.to_natural(y[i])),
                      "ci_low": float(scale.to_natural(y[i] - z * math.sqrt(v[i]))),
                      "ci_high": float(scale.to_natural(y[i] + z * math.sqrt(v[i])))}
                     for i, s in enumerate(md.study)]
    natural = [{"level": g.level, "estimate": float(scale.to_natural(g.estimate)),
                "ci_low": float(scale.to_natural(g.ci_low)),
                "ci_high": float(scale.to_natural(g.ci_high))} for g in result.subgroups]
    return {"outcome": outcome_id, "label": md.outcome.label, "measure": md.outcome.measure,
            "benefit": md.outcome.benefit, "analysis": "subgroups", "subgroup": name,
            "level": md.level, "k": md.k, "studies": list(md.study),
            "moderators": md.moderator_dicts(),
            "scale": f"subgroup estimates on the {analysis_name(md.outcome)} scale; "
                     f"natural-scale copies in subgroups_natural",
            **result.to_dict(), "subgroups_natural": natural, "study_effects": study_effects,
            "notes": md.notes()}


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


ENGINES = ("exact", "pymc")


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise InputError(f"--moderator runs with --engine {' or '.join(ENGINES)}, not {engine}")


def benefit_probability(post, target, outcome):
    """P(target beyond 0 in the direction of benefit); None when the direction is unknown."""
    if outcome.benefit not in ("higher", "lower"):
        return None
    return posterior_stats.benefit_probability(post, outcome, 0.0, target)


def study_points(md: ModeratorData, tau2: float) -> list[dict]:
    """Each study's observed effect (natural scale), its weight 1/(v + tau^2) and its value of
    the first moderator: the points of a bubble plot."""
    y, v = md.tables[0]
    scale = md.outcome.scale
    return [{"study": s, "estimate": float(scale.to_natural(y[i])),
             "weight": float(1.0 / (v[i] + tau2)), "value": md.moderators[0].values[i]}
            for i, s in enumerate(md.study)]


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


def fitted_effects(md: ModeratorData, labelled_rows, interval) -> list[dict]:
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
        out.append({"at": label, "estimate": est, "ci_low": low, "ci_high": high})
    return out


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
    return {"x": grid.tolist(), **{key: [float(scale.to_natural(t)) for t in part]
                                   for key, part in zip((centre, "ci_low", "ci_high"), parts)}}


def bayes_moderators(dataset: Dataset, outcome_id: str, names: list[str],
                     prior_name: str | None = None, engine: str = "exact", seed: int = 1,
                     settings=None, level: str | None = "auto", prior_sets=None,
                     at: list[float] | None = None) -> dict:
    """Bayesian meta-regression of one outcome on the named moderators; ``at``: values of a
    single numeric moderator at which to predict the effect (besides those in the data)."""
    from bayes_pip.engines.exact_regression import exact_regression
    from bayes_pip.engines.mixture import MixturePosterior
    from bayes_pip.priors import default_prior_name, load_prior_sets, resolve_prior

    check_engine(engine)
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
    diagnostics = None
    if engine == "exact":
        parts = [exact_regression(y, v, X, columns, prior.tau, cprior) for y, v in md.tables]
        post = parts[0] if len(parts) == 1 else MixturePosterior(parts)
    else:
        if len(md.tables) > 1:
            raise InputError(f"outcome '{outcome_id}' is analysed on {len(md.tables)} "
                             "reconstructed tables; use --engine exact (which averages over them)")
        post, diagnostics = pymc_regression(md, X, columns, prior, cprior, seed, settings)
    coefficients = []
    for j, name in enumerate(columns):
        t = ("beta", j)
        coefficients.append({
            "name": name, "mean": post.mean(t), "sd": post.sd(t), "median": post.quantile(t, 0.5),
            "ci_low": post.quantile(t, 0.025), "ci_high": post.quantile(t, 0.975),
            "p_benefit": None if j == 0 else benefit_probability(post, t, outcome),
            "prior": {"family": "flat"} if not np.isfinite(cprior.sd[j])
            else {"family": "normal", "mean": 0.0, "sd": float(cprior.sd[j])}})

    def interval(rows):
        return tuple(np.array([post.quantile(("fitted", r), q) for r in rows])
                     for q in (0.5, 0.025, 0.975))

    labelled = design_rows(md, X, columns, at)
    fitted = fitted_effects(md, labelled, interval)
    for f, (row, _) in zip(fitted, labelled):
        f["p_benefit"] = benefit_probability(post, ("fitted", row), outcome)
    tau = {"median": post.quantile("tau", 0.5), "ci_low": post.quantile("tau", 0.025),
           "ci_high": post.quantile("tau", 0.975)}
    study_effects = study_points(md, tau["median"] ** 2)
    line = regression_line(md, interval, "median")
    prior_dict = prior.to_dict()
    prior_dict["coefficients"] = {**prior.coefficients, "per_unit": [
        c["prior"] for c in coefficients]}
    record = {"outcome": outcome_id, "label": outcome.label, "measure": outcome.measure,
              "benefit": outcome.benefit, "intervention": outcome.intervention,
              "analysis": "Bayesian meta-regression",
              "engine": engine, "level": md.level, "k": md.k, "studies": list(md.study),
              "moderators": md.moderator_dicts(), "prior": prior_dict,
              "scale": analysis_scale(outcome),
              "coefficients": coefficients,
              "tau": tau,
              "fitted": fitted, "study_effects": study_effects, "line": line,
              "diagnostics": diagnostics,
              "seed": seed if engine == "pymc" else None,
              "notes": md.notes() + fitted_note(md, X, columns)}
    return record


def design_label(m: metareg.Moderator, row, columns) -> str:
    if m.kind == "numeric":
        return f"{m.name} = {row[columns.index(m.name)]:g}"
    for level in m.levels[1:]:
        if row[columns.index(f"{m.name}: {level} vs {m.levels[0]}")] == 1:
            return f"{m.name} = {level}"
    return f"{m.name} = {m.levels[0]}"


def pymc_regression(md: ModeratorData, X, columns, prior, cprior, seed, settings):
    """NUTS (nutpie) on the PyMC meta-regression; the same convergence gate as every fit."""
    import nutpie

    from bayes_pip.engines import mcmc
    from bayes_pip.engines.base import SamplerSettings
    from bayes_pip.engines.diagnostics import gate
    from bayes_pip.engines.pymc_models import meta_regression_model, quiet_imports
    from bayes_pip.errors import ConvergenceError

    quiet_imports()
    settings = settings or SamplerSettings()
    target = settings.target_accept or 0.99   # 0.95 left 2 divergences in 8,000 draws on dat.bcg
    y, v = md.tables[0]
    model = meta_regression_model(y, v, X, columns, md.study, prior, cprior.mean, cprior.sd)
    compiled = nutpie.compile_pymc_model(model)
    with mcmc.interrupts_propagate():
        idata = nutpie.sample(compiled, draws=settings.draws, tune=settings.tune,
                              chains=settings.chains, cores=settings.cores or 2, seed=seed,
                              target_accept=target, progress_bar=False)
    diagnostics, problems = gate(idata, settings.chains, settings.draws, ("beta", "tau"))
    if problems:
        raise ConvergenceError(f"outcome '{md.outcome.outcome}', meta-regression on "
                               f"{', '.join(m.name for m in md.moderators)}: "
                               f"{'; '.join(problems)}. Try more draws, a higher "
                               "--target-accept, or --engine exact.")
    return RegressionDraws(idata), diagnostics


class RegressionDraws(DrawQueries):
    """Posterior draws of a meta-regression answering the exact engine's questions: targets
    "tau", ("beta", j) and ("fitted", x) (the mean effect at design row x)."""

    def __init__(self, idata):
        post = idata.posterior
        self.beta = post["beta"].values.reshape(-1, post["beta"].shape[-1])
        self.tau = post["tau"].values.ravel()
        self.idata = idata

    def values(self, target):
        if target == "tau":
            return self.tau
        if target[0] == "beta":
            return self.beta[:, target[1]]
        if target[0] == "fitted":
            return self.beta @ np.asarray(target[1], float)
        raise ValueError(f"unknown target {target!r}")


# ---------------------------------------------------------------------------------------------
# text
# ---------------------------------------------------------------------------------------------


def compare_moderator_priors(dataset: Dataset, outcome_id: str, names: list[str],
                             prior_names: list[str] | None = None, engine: str = "exact",
                             seed: int = 1, settings=None, level: str | None = "auto",
                             prior_sets=None) -> list[dict]:
    """The meta-regression under every prior set that applies (or the named ones)."""
    from bayes_pip.analysis import priors_for
    from bayes_pip.priors import load_prior_sets

    sets = load_prior_sets() if prior_sets is None else prior_sets
    if prior_names is None:
        prior_names = priors_for(dataset, outcome_id, dataset.resolve(outcome_id, level).level,
                                 sets)
    return [bayes_moderators(dataset, outcome_id, names, n, engine, seed, settings, level, sets)
            for n in prior_names]
