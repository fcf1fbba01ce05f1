"""What `list` shows: one row per outcome of a data set with its data status."""

from __future__ import annotations

import numpy as np

from bayes_pip.data import Dataset, Outcome
from bayes_pip.effects import double_zero


def outcome_listing(dataset: Dataset) -> list[dict]:
    """One row per outcome: id, label, measure, k, participants, benefit, data status, level."""
    rows = []
    for outcome_id in dataset.outcome_ids():
        o = dataset.outcome(outcome_id)
        status = dataset.status(outcome_id)
        published = dataset.published_result(outcome_id)
        study_rows = dataset.study_rows(outcome_id)
        excluded = excluded_studies(study_rows, o)
        if status.level in ("summary", "reconstructed"):
            k, participants = published.k, published.participants
        else:  # the studies the analysis pools
            left_out = study_rows["study"].isin(excluded)
            k = status.k_studies - len(excluded)
            participants = status.participants - int(study_rows.loc[left_out, "n_t"].sum()
                                                      + study_rows.loc[left_out, "n_c"].sum())
        rows.append({
            "outcome": o.outcome, "label": o.label, "comparison": o.comparison,
            "measure": o.measure, "benefit": o.benefit, "timepoint": o.timepoint, "mcid": o.mcid,
            "k": k, "participants": participants, "study_rows": status.k_studies,
            "excluded": excluded, "published": published is not None, "level": status.level,
            "data": status.description,
        })
    for outcome_id in dataset.categorical_ids():
        rows.append(categorical_listing(dataset, outcome_id))
    return rows


def categorical_listing(dataset: Dataset, outcome_id: str) -> dict:
    """The `list` row of a categorical outcome: its trials, participants and levels by arm."""
    from bayes_pip.categorical_data import categorical_outcome

    o = dataset.outcome(outcome_id)
    row = {"outcome": o.outcome, "label": o.label, "comparison": o.comparison,
           "measure": o.measure, "benefit": o.benefit, "timepoint": o.timepoint, "mcid": None,
           "k": 0, "participants": 0, "study_rows": 0, "excluded": [], "published": False,
           "level": None, "data": "no rows in categories.csv"}
    if dataset.categories is None or not (dataset.categories["outcome"] == outcome_id).any():
        return row
    co = categorical_outcome(dataset, outcome_id)
    levels = ", ".join(f"{n} {level}" for level, n in co.levels().items())
    arms = sum(len(names) for names in co.arm_names)
    row.update(k=co.k, participants=int(np.nansum(co.counts)), study_rows=co.k, level="study",
               data=(f"category counts of {len(co.categories)} categories, {arms} arms "
                     f"(by their least direct cell: {levels}); fitted by the multinomial "
                     "model, all categories at once"))
    return row


def excluded_studies(rows, outcome: Outcome) -> list[str]:
    """Study rows a ratio analysis leaves out (no events, or only events, in both arms); a risk
    difference keeps them, as `dl` does (RevMan)."""
    if (rows.empty or not outcome.scale.is_dichotomous or "events_t" not in rows.columns
            or not outcome.scale.drops_double_zero):
        return []
    arm = rows["events_t"].notna() & rows["events_c"].notna()
    drop = arm & double_zero(rows["events_t"], rows["n_t"], rows["events_c"],
                             rows["n_c"])
    return [str(s) for s in rows.loc[drop, "study"]]
