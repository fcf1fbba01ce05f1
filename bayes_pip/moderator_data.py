"""Moderator data for review objective 2: from the data files to the design of a
meta-regression or subgroup analysis (the fits are in :mod:`bayes_pip.moderation`).

Moderators are columns of studies.csv (per row) or trials.csv (per trial), joined by study; a
column ``<name>_source`` beside a moderator says where each value comes from. A moderator is
numeric when every value given parses as a number, categorical otherwise (levels sorted, the first
is the reference). Studies without a value are left out, and every output names them.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from bayes_pip import metareg
from bayes_pip.classical import classical_from
from bayes_pip.design import trial_names
from bayes_pip.data import Dataset, Resolved
from bayes_pip.tables import identifier_problem
from bayes_pip.validate import COUNT_COLUMNS, CONTINUOUS_COLUMNS, OUTCOME_COLUMNS, STUDY_COLUMNS
from bayes_pip.errors import InputError
from bayes_pip.moderation_record import ModeratorColumn


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

    def columns(self) -> tuple[ModeratorColumn, ...]:
        """Each moderator as recorded: kind, levels, each study's value and its source."""
        return tuple(ModeratorColumn(m.name, m.kind,
                                     m.levels if m.kind == "categorical" else None,
                                     {s: v for s, v in zip(self.study, m.values)},
                                     self.sources.get(m.name, {})) for m in self.moderators)


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
