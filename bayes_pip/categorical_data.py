"""Categorical outcomes: their definition in outcomes.csv and their counts in categories.csv.

A categorical outcome (measure ``categorical``) is one classification of every participant into
named categories, e.g. the four Strange Situation attachment categories. Its outcomes.csv row
names them:

- ``categories``: the categories, separated by ``;`` (at least two);
- ``reference``: the reference category of the model's baseline-category logits;
- ``favourable``: the categories whose rise is a benefit (the others: a fall is a benefit);
- ``separate`` (optional): the ids of the outcomes that analyse each category on its own as a
  risk ratio, in the order of ``categories`` (empty entries allowed), for the comparison table.

``categories.csv`` holds the counts, one row per study x arm x category: outcome, study, arm
(its name), arm_role (intervention, comparator or alternative), category, count, provenance
(printed, derived, inferred or reconstructed), source. A category a study did not report is left
out of its rows in every arm (the model conditions on the reported ones); an arm a study did not
have is simply absent, but every study needs an intervention and a comparator arm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_pip.errors import InputError
from bayes_pip.tables import (check_choice, check_label, check_nonempty, csv_row, identifier_problem,
                              parse_number, warn_missing_sources)

CATEGORICAL = "categorical"
OUTCOME_FIELDS = ("categories", "reference", "favourable", "separate")
CATEGORY_COLUMNS = ("outcome", "study", "arm", "arm_role", "category", "count", "source")
ROLES = ("intervention", "comparator", "alternative")
CATEGORY_PROVENANCES = ("printed", "derived", "inferred", "reconstructed")
MAX_CATEGORIES = 20
MAX_COUNT = 10_000_000


def split_list(text: str) -> list[str]:
    return [part.strip() for part in str(text or "").split(";")] if str(text or "").strip() else []


def validate_outcome_fields(frame: pd.DataFrame, file: str) -> pd.DataFrame:
    """The categorical columns of outcomes.csv: given (and consistent) on categorical rows,
    empty on every other row."""
    frame = frame.copy()
    for column in OUTCOME_FIELDS:
        if column not in frame.columns:
            frame[column] = ""
    for i, row in enumerate(frame.itertuples(index=False)):
        if row.measure != CATEGORICAL:
            for column in OUTCOME_FIELDS:
                if getattr(row, column):
                    raise InputError(f"only a categorical outcome takes '{column}' (this one is "
                                     f"{row.measure})", file=file, row=csv_row(i), column=column)
            continue
        where = dict(file=file, row=csv_row(i))
        cats = split_list(row.categories)
        if len(cats) < 2 or len(cats) > MAX_CATEGORIES or "" in cats:
            raise InputError(f"a categorical outcome needs 2 to {MAX_CATEGORIES} category names "
                             "separated by ';' (e.g. secure;avoidant;resistant;disorganised)",
                             **where, column="categories")
        for name in cats:
            if identifier_problem(name):
                raise InputError(f"category {name[:40]!r} {identifier_problem(name)}", **where,
                                 column="categories")
        if len(set(cats)) < len(cats):
            raise InputError("a category is named twice", **where, column="categories")
        if row.reference not in cats:
            raise InputError(f"reference {row.reference[:40]!r} is not one of the categories "
                             f"({', '.join(cats)})", **where, column="reference")
        favourable = split_list(row.favourable)
        unknown = [f for f in favourable if f not in cats]
        if unknown or not favourable or len(favourable) == len(cats):
            raise InputError(f"favourable must name one or more of the categories "
                             f"({', '.join(cats)}), not all of them", **where,
                             column="favourable")
        separate = split_list(row.separate)
        if separate and len(separate) != len(cats):
            raise InputError(f"separate names one outcome id per category ({len(cats)}, "
                             "separated by ';', empty where there is none)", **where,
                             column="separate")
        if row.benefit != "higher":
            raise InputError("a categorical outcome's benefit is 'higher' (its favourable "
                             "categories rising)", **where, column="benefit")
    known = set(frame["outcome"])
    for i, text in enumerate(frame["separate"]):
        for other in split_list(text):
            if other and other not in known:
                raise InputError(f"separate names outcome '{other[:60]}', which is not defined "
                                 "in outcomes.csv", file=file, row=csv_row(i), column="separate")
    return frame


def refuse_categorical_rows(frame: pd.DataFrame, outcomes: pd.DataFrame, file: str,
                            what: str) -> None:
    """studies.csv, published.csv and constraints.csv have no place for a categorical outcome."""
    categorical = set(outcomes.loc[outcomes["measure"] == CATEGORICAL, "outcome"])
    for i, outcome in enumerate(frame["outcome"]):
        if outcome in categorical:
            raise InputError(f"outcome '{outcome}' is categorical: its counts go in "
                             f"categories.csv, not in {what}", file=file, row=csv_row(i),
                             column="outcome")


def validate_categories(frame: pd.DataFrame, outcomes: pd.DataFrame, file: str) -> pd.DataFrame:
    """categories.csv: every check of the other files (one line naming file, row and column)."""
    frame = frame.copy()
    if "provenance" not in frame.columns:
        frame["provenance"] = ""
    for column in ("outcome", "study", "arm", "arm_role", "category"):
        check_nonempty(frame, column, file)
    for column in ("study", "arm"):
        check_label(frame, column, file)
    warn_missing_sources(frame, file)
    check_choice(frame, "arm_role", ROLES, file)
    for i, value in enumerate(frame["provenance"]):
        if value and value not in CATEGORY_PROVENANCES:
            raise InputError(f"'{value[:40]}' is not allowed (allowed: "
                             f"{', '.join(CATEGORY_PROVENANCES)}, or empty)", file=file,
                             row=csv_row(i), column="provenance")
    defined = {r.outcome: r for r in outcomes.itertuples(index=False)}
    for i, (outcome, category) in enumerate(zip(frame["outcome"], frame["category"])):
        row = defined.get(outcome)
        if row is None or row.measure != CATEGORICAL:
            why = "is not defined in outcomes.csv" if row is None else f"is {row.measure}"
            raise InputError(f"outcome '{outcome[:60]}' {why} (categories.csv holds "
                             "categorical outcomes)", file=file, row=csv_row(i),
                             column="outcome")
        if category not in split_list(row.categories):
            raise InputError(f"unknown category '{category[:40]}' (allowed: "
                             f"{row.categories.replace(';', ', ')})", file=file,
                             row=csv_row(i), column="category")
    count = parse_number(frame, "count", file, required=True, integer=True, minimum=0)
    for i, c in enumerate(count):
        if c > MAX_COUNT:
            raise InputError(f"count {c:g} is more than bayes_pip accepts for one cell "
                             f"({MAX_COUNT:,})", file=file, row=csv_row(i), column="count")
    frame["count"] = count
    twice = frame.duplicated(["outcome", "study", "arm", "category"])
    if twice.any():
        i = int(np.flatnonzero(twice)[0])
        raise InputError("this study, arm and category appear twice", file=file,
                         row=csv_row(i), column="category")
    for (outcome, study), rows in frame.groupby(["outcome", "study"], sort=False):
        where = dict(file=file, row=csv_row(int(frame.index.get_loc(rows.index[0]))))
        roles = rows.drop_duplicates("arm")
        if rows.groupby("arm")["arm_role"].nunique().max() > 1:
            raise InputError(f"study '{study}': an arm has two roles", **where,
                             column="arm_role")
        role_counts = roles["arm_role"].value_counts()
        for role in ("intervention", "comparator"):
            if role_counts.get(role, 0) != 1:
                raise InputError(f"outcome '{outcome}', study '{study}' needs exactly one "
                                 f"{role} arm (has {role_counts.get(role, 0)})", **where,
                                 column="arm_role")
        per_arm = rows.groupby("arm", sort=False)["category"].apply(frozenset)
        if per_arm.nunique() > 1:
            raise InputError(f"outcome '{outcome}', study '{study}': every arm must report the "
                             "same categories (a category a study did not report is left out "
                             "in all its arms)", **where, column="category")
        if len(per_arm.iloc[0]) < 2:
            raise InputError(f"outcome '{outcome}', study '{study}' reports fewer than two "
                             "categories", **where, column="category")
        if (rows.groupby("arm")["count"].sum() < 1).any():
            raise InputError(f"outcome '{outcome}', study '{study}': an arm has no participants",
                             **where, column="count")
    return frame


@dataclass(frozen=True)
class CategoricalOutcome:
    """A categorical outcome: its definition and its counts by study, treatment and category.

    Treatments are the comparator (index 0), the intervention (1) and each alternative
    treatment by name; ``counts[i, t, c]`` is NaN where study i had no arm of treatment t, and
    in every arm of a category study i did not report."""

    outcome: object          # bayes_pip.data.Outcome (measure "categorical")
    categories: tuple
    reference: str
    favourable: tuple
    separate: tuple          # per category: the outcome id analysing it alone, or ""
    study: tuple
    treatments: tuple        # ("comparator", "intervention", *alternatives by arm name)
    counts: np.ndarray       # (k, treatments, categories)
    arm_names: tuple         # per study: {treatment: arm name}
    provenance: tuple        # per study: {treatment: {category: provenance}}
    source: tuple            # per study: {treatment: {category: source}}

    @property
    def k(self) -> int:
        return len(self.study)

    def payload(self):
        from bayes_pip.payloads import CategoryCounts

        return CategoryCounts(self.study, self.treatments, self.categories, self.counts,
                              self.reference)

    def levels(self) -> dict:
        """How many arms rest on each level of evidence (worst cell of the arm)."""
        order = {p: n for n, p in enumerate(("printed", "derived", "inferred", "reconstructed",
                                             ""))}
        out: dict[str, int] = {}
        for study in self.provenance:
            for cells in study.values():
                worst = max(cells.values(), key=lambda p: order.get(p, 0))
                out[worst or "unstated"] = out.get(worst or "unstated", 0) + 1
        return out


def categorical_outcome(dataset, outcome_id: str) -> CategoricalOutcome:
    """The categorical outcome ``outcome_id`` of ``dataset`` with its counts."""
    outcome = dataset.outcome(outcome_id)
    file = str(dataset.directory / "categories.csv")
    if outcome.measure != CATEGORICAL:
        raise InputError(f"outcome '{outcome_id}' is {outcome.measure}, not categorical")
    row = dataset.outcomes[dataset.outcomes["outcome"] == outcome_id].iloc[0]
    frame = dataset.categories
    rows = (frame[frame["outcome"] == outcome_id] if frame is not None
            else pd.DataFrame(columns=CATEGORY_COLUMNS))
    if rows.empty:
        raise InputError(f"categorical outcome '{outcome_id}' has no rows in categories.csv",
                         file=file)
    cats = tuple(split_list(row["categories"]))
    alternatives = tuple(dict.fromkeys(rows.loc[rows["arm_role"] == "alternative", "arm"]))
    treatments = ("comparator", "intervention", *alternatives)
    study = tuple(dict.fromkeys(rows["study"]))
    counts = np.full((len(study), len(treatments), len(cats)), np.nan)
    names = [dict() for _ in study]
    prov = [dict() for _ in study]
    src = [dict() for _ in study]
    for r in rows.itertuples(index=False):
        i = study.index(r.study)
        t = treatments.index(r.arm if r.arm_role == "alternative" else r.arm_role)
        counts[i, t, cats.index(r.category)] = r.count
        names[i][treatments[t]] = r.arm
        prov[i].setdefault(treatments[t], {})[r.category] = r.provenance
        src[i].setdefault(treatments[t], {})[r.category] = r.source
    separate = tuple(split_list(row["separate"])) or ("",) * len(cats)
    return CategoricalOutcome(outcome, cats, str(row["reference"]),
                              tuple(split_list(row["favourable"])), separate, study, treatments,
                              counts, tuple(names), tuple(prov), tuple(src))
