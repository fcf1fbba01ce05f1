"""Trial designs that change what a study row may contribute: multi-arm and cluster trials.

Multi-arm trials (Cochrane Handbook, section 23.3.4). studies.csv rows may name the arms they
compare (``arm_t``, ``arm_c``). When one arm of a study appears in two or more rows of one
meta-analysis, its participants would be counted more than once. The tool refuses by default and
offers the Handbook's remedies:

- ``split``: divide the shared arm between the comparisons (its events and participants, or
  for continuous data its participants, divided by the number of comparisons; means and SDs
  unchanged);
- ``combine``: merge the other arms into one group: events and participants added
  (dichotomous), or N = n1 + n2, M = (n1 M1 + n2 M2) / N,
  SD = sqrt(((n1 - 1) SD1^2 + (n2 - 1) SD2^2 + n1 n2 / N (M1 - M2)^2) / (N - 1)) (Handbook
  Table 6.5.a), applied pairwise for more than two arms.

Cluster-randomised trials (Handbook, section 23.1.4). With an intra-cluster correlation ``icc``
and a mean cluster size ``cluster_size`` (per row in studies.csv, or per trial in trials.csv),
the design effect is DE = 1 + (cluster_size - 1) icc; events and participants of both arms are
divided by DE (effective sample sizes; the SE of a generic inverse-variance row is multiplied by
sqrt(DE)). A trial marked ``cluster_randomised = yes`` in trials.csv without them is refused.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from bayes_pip.errors import InputError

MULTI_ARM = ("refuse", "split", "combine")
ARM_COLUMNS = ("arm_t", "arm_c")
HANDBOOK = "Cochrane Handbook 23.3.4"
ARM_SIDES = ("t", "c")  # the column suffixes: intervention (t) and comparator (c)
ARM_WORD = {"t": "intervention", "c": "comparator"}


def arm_label(row, side: str) -> str:
    value = row.get(f"arm_{side}", "") if hasattr(row, "get") else ""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def row_names(rows: pd.DataFrame) -> list[str]:
    """Study labels for the analysis: a study with several rows is named with its arms."""
    counts = rows["study"].value_counts()
    names = []
    for r in rows.to_dict("records"):
        if counts[r["study"]] > 1:
            names.append(f"{r['study']} ({arm_label(r, 't') or 'intervention arm'} vs "
                         f"{arm_label(r, 'c') or 'comparator arm'})")
        else:
            names.append(str(r["study"]))
    return names


ROW_NAME = re.compile(r"(?P<trial>.+) \((?P<t>.+) vs (?P<c>.+)\)")


def trial_names(name: str) -> tuple[str, ...]:
    """The trials.csv names a study label may stand for: itself, and for a multi-arm row label
    from :func:`row_names`, 'Study (arm vs arm)', also the trial 'Study'."""
    m = ROW_NAME.fullmatch(name)
    return (name, m["trial"]) if m else (name,)


def shared_arms(rows: pd.DataFrame) -> list[tuple[str, str, str, int]]:
    """(study, side, arm label, number of rows) for every arm used by more than one row."""
    found = []
    for study, group in rows.groupby("study", sort=False):
        if len(group) < 2:
            continue
        for side in ARM_SIDES:
            column = f"arm_{side}"
            labels = group[column] if column in group.columns else pd.Series([""] * len(group))
            for label, count in labels.value_counts().items():
                if count > 1:
                    found.append((str(study), side, str(label), int(count)))
    return found


def adjust_multi_arm(rows: pd.DataFrame, outcome_id: str, mode: str, continuous: bool,
                     file: str) -> tuple[pd.DataFrame, list[str]]:
    """Apply the multi-arm remedy ``mode`` to one meta-analysis's rows; notes say what was done."""
    shared = shared_arms(rows)
    if not shared:
        return rows, []
    study, side, label, count = shared[0]
    arm = ARM_WORD[side]
    if mode == "refuse":
        raise InputError(f"outcome '{outcome_id}': study '{study}' uses its {arm} arm "
                         f"'{label}' in {count} comparisons of this meta-analysis (its "
                         f"participants would count {count} times); choose --multi-arm split "
                         "(divide that arm between the comparisons) or --multi-arm combine "
                         f"(merge the other arms into one group), {HANDBOOK}", file=file)
    if "yi" in rows.columns and rows["yi"].notna().any():
        raise InputError(f"outcome '{outcome_id}': study '{study}' shares an arm between generic "
                         "inverse-variance rows (yi, sei), which cannot be split or combined; "
                         "give its arm-level data", file=file)
    rows = rows.copy()
    notes = []
    if mode == "split":
        for study, side, label, count in shared:
            mask = (rows["study"] == study) & (rows[f"arm_{side}"] == label)
            columns = [f"n_{side}"] + ([] if continuous else [f"events_{side}"])
            for column in columns:
                rows.loc[mask, column] = rows.loc[mask, column].astype(float) / count
            rows.loc[mask, "provenance"] = rows.loc[mask, "provenance"].astype(str) + \
                f"; shared {ARM_WORD[side]} arm split 1/{count}"
            notes.append(f"Multi-arm trial {study}: its {ARM_WORD[side]}"
                         f" arm '{label}' feeds {count} comparisons of this meta-analysis and was "
                         f"split between them ({HANDBOOK}): events and participants divided by "
                         f"{count}" + (" (participants only; means and SDs unchanged)"
                                       if continuous else "") + ".")
        return rows, notes
    # combine: merge the arms on the other side of each shared arm into one group
    keep = []
    for study, group in rows.groupby("study", sort=False):
        here = [s for s in shared if s[0] == study]
        if not here:
            keep.append(group)
            continue
        sides = {s[1] for s in here}
        if len(sides) > 1 or len(here) > 1:
            raise InputError(f"outcome '{outcome_id}': study '{study}' shares more than one arm "
                             "between its comparisons; --multi-arm combine merges one side "
                             "only: use --multi-arm split", file=file)
        _, side, label, count = here[0]
        other = "c" if side == "t" else "t"
        merged = group.iloc[[0]].copy()
        if continuous:
            n, m, sd = combine_means(group[f"n_{other}"].astype(float).to_numpy(),
                                     group[f"mean_{other}"].astype(float).to_numpy(),
                                     group[f"sd_{other}"].astype(float).to_numpy())
            merged[f"n_{other}"], merged[f"mean_{other}"], merged[f"sd_{other}"] = n, m, sd
        else:
            merged[f"n_{other}"] = group[f"n_{other}"].astype(float).sum()
            merged[f"events_{other}"] = group[f"events_{other}"].astype(float).sum()
        arms = " + ".join(str(x) for x in group[f"arm_{other}"])
        merged[f"arm_{other}"] = arms
        merged["provenance"] = str(group["provenance"].iloc[0]) + f"; {count} arms combined"
        keep.append(merged)
        notes.append(f"Multi-arm trial {study}: its {ARM_WORD[other]} "
                     f"arms {arms} were combined into one group against the shared arm "
                     f"'{label}' ({HANDBOOK}" + ("; Table 6.5.a for means and SDs)."
                                                 if continuous else ")."))
    return pd.concat(keep, ignore_index=True), notes


def combine_means(n, mean, sd) -> tuple[float, float, float]:
    """Combine groups pairwise (Cochrane Handbook Table 6.5.a): (N, mean, SD)."""
    n_all, m_all, s_all = float(n[0]), float(mean[0]), float(sd[0])
    for n2, m2, s2 in zip(n[1:], mean[1:], sd[1:]):
        total = n_all + n2
        m_new = (n_all * m_all + n2 * m2) / total
        s_all = math.sqrt(((n_all - 1) * s_all**2 + (n2 - 1) * s2**2
                           + n_all * n2 / total * (m_all - m2) ** 2) / (total - 1))
        n_all, m_all = total, m_new
    return n_all, m_all, s_all


def design_effects(rows: pd.DataFrame, trials: pd.DataFrame | None, outcome_id: str,
                   file: str) -> tuple[pd.Series, list[str]]:
    """The design effect of every row (1 for individually randomised trials) and notes."""
    de = pd.Series(1.0, index=rows.index)
    notes = []
    by_trial = {}
    if trials is not None:
        for t in trials.to_dict("records"):
            by_trial[str(t["study"])] = t
    for i, r in zip(rows.index, rows.to_dict("records")):
        study = str(r["study"])
        trial = by_trial.get(study)
        icc, size, where = r.get("icc", math.nan), r.get("cluster_size", math.nan), "studies.csv"
        if (icc is None or math.isnan(icc)) and trial is not None:
            icc, size, where = trial.get("icc", math.nan), trial.get("cluster_size", math.nan), \
                "trials.csv"
        has = icc is not None and not math.isnan(icc)
        clustered = trial is not None and str(trial.get("cluster_randomised", "")) == "yes"
        if not has:
            if clustered:
                raise InputError(f"outcome '{outcome_id}': study '{study}' is cluster-randomised "
                                 "(trials.csv) but has no icc and cluster_size: give both (in "
                                 "studies.csv or trials.csv; icc 0 if its rows already allow for "
                                 "clustering) so its variance allows for clustering (Cochrane "
                                 "Handbook 23.1.4)", file=file)
            continue
        value = 1.0 + (float(size) - 1.0) * float(icc)
        de[i] = value
        source = ""
        if trial is not None and where == "trials.csv" and str(trial.get("cluster_source", "")):
            source = f"; {trial['cluster_source']}"
        notes.append(f"Cluster-randomised trial {study}: design effect {value:.3g} = 1 + "
                     f"({float(size):g} - 1) x {float(icc):g} (mean cluster size and ICC from "
                     f"{where}{source}); events and participants divided by it (effective sample "
                     "sizes, Cochrane Handbook 23.1.4).")
    return de, notes


def adjust_clusters(rows: pd.DataFrame, trials, outcome_id: str, continuous: bool,
                    file: str) -> tuple[pd.DataFrame, list[str]]:
    de, notes = design_effects(rows, trials, outcome_id, file)
    if not notes:
        return rows, []
    rows = rows.copy()
    adjusted = (de > 1.0).to_numpy()
    giv = "yi" in rows.columns and rows["yi"].notna().any()
    if giv:
        rows.loc[adjusted, "sei"] = rows.loc[adjusted, "sei"] * np.sqrt(de[adjusted])
    columns = ["n_t", "n_c"] + ([] if continuous or giv else ["events_t", "events_c"])
    for column in columns:
        rows.loc[adjusted, column] = rows.loc[adjusted, column].astype(float) / de[adjusted]
    rows.loc[adjusted, "provenance"] = [f"{p}; design effect {d:.3g}" for p, d in
                                        zip(rows.loc[adjusted, "provenance"], de[adjusted])]
    return rows, notes


def rob_columns(trials) -> list[str]:
    """The risk-of-bias columns of trials.csv: rob_<domain> (written by hand) or 'rob: <item>'
    (written by `import` from a RevMan file)."""
    return [c for c in trials.columns if c.startswith(("rob_", "rob: "))]


def rob_domain(column: str) -> str:
    """'rob_random_sequence' -> 'random sequence'; 'rob: Allocation concealment?' -> 'Allocation
    concealment?'."""
    return column[4:].replace("_", " ").strip(" :")
