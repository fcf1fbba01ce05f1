"""Turn analysis records into tables and short texts a researcher can paste.

Reads records (dicts from ``to_dict``), never refits.
"""

from __future__ import annotations

from bayes_pip.classical import data_status
from bayes_pip.data import Dataset, Outcome


def outcome_listing(dataset: Dataset) -> list[dict]:
    """One row per outcome: id, label, measure, k, participants, benefit, data status, level."""
    rows = []
    for outcome_id in dataset.outcome_ids():
        o = dataset.outcome(outcome_id)
        status = data_status(dataset, outcome_id)
        published = dataset.published_result(outcome_id)
        if status.level == "summary":
            k, participants = published.k, published.participants
        else:
            k, participants = status.k_studies, status.participants
        rows.append({
            "outcome": o.outcome, "label": o.label, "comparison": o.comparison,
            "measure": o.measure, "benefit": o.benefit, "timepoint": o.timepoint, "mcid": o.mcid,
            "k": k, "participants": participants, "study_rows": status.k_studies,
            "published": published is not None, "level": status.level, "data": status.description,
        })
    return rows


def direction_phrase(outcome: Outcome) -> str:
    """'RR < 1 is benefit' style phrase for an outcome."""
    null = 1 if outcome.is_ratio else 0
    sign = "<" if outcome.benefit == "lower" else ">"
    return f"{outcome.measure} {sign} {null} favours {intervention_name(outcome)}"


def intervention_name(outcome: Outcome) -> str:
    """'PIP' for the review's comparisons, 'the intervention' for any other data set."""
    return "PIP" if outcome.comparison.startswith("pip_") else "the intervention"


def num(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def dl_text(d: dict, outcome: Outcome) -> str:
    """Human-readable DL table for one outcome."""
    m = d["measure"]
    lines = [
        f"{outcome.label} ({d['outcome']}), {m}, {direction_phrase(outcome)}",
        f"Classical random-effects meta-analysis ({d['method']}), k = {d['k']}, "
        f"N = {d['participants']}",
        "",
        f"{'study':28s} {m:>8s} {'95% CI':>18s} {'weight':>7s}",
    ]
    for s in d["studies"]:
        ci = f"[{num(s['ci_low'])}, {num(s['ci_high'])}]"
        flag = " (0.5 added)" if s["corrected"] else ""
        prov = f" ({s['provenance']})" if s["provenance"] else ""
        lines.append(f"{s['study']:28s} {num(s['estimate']):>8s} {ci:>18s} "
                     f"{num(s['weight'], 1):>6s}%{flag}{prov}")
    ci = f"[{num(d['ci_low'])}, {num(d['ci_high'])}]"
    lines.append(f"{'Pooled (' + d['method'] + ')':28s} {num(d['estimate']):>8s} {ci:>18s} "
                 f"{'100.0':>6s}%")
    if d["prediction"]:
        pi = f"[{num(d['prediction']['ci_low'])}, {num(d['prediction']['ci_high'])}]"
        lines.append(f"{'95% prediction interval':28s} {'':>8s} {pi:>18s}")
    lines += [
        "",
        f"Heterogeneity: tau^2 = {d['tau2']:.4f} (tau = {d['tau']:.3f}), Q = {d['q']:.2f} "
        f"(df = {d['df']}), I^2 = {d['i2']:.1f}%",
        f"Test for overall effect: z = {d['z']:.2f}, p = {d['p']:.4g}",
    ]
    if d["k"] == 1:
        lines.append("Note: a single study; the pooled result is that study's estimate and "
                     "heterogeneity cannot be estimated.")
    elif d["k"] < 3:
        lines.append("Note: fewer than 3 studies; no prediction interval, and tau^2 is very "
                     "imprecise.")
    if d["excluded"]:
        lines.append(f"Excluded (no events or only events in both arms): "
                     f"{', '.join(d['excluded'])}")
    pub = d.get("published")
    if pub:
        lines += ["",
                  f"Published ({pub['source']}): {m} {pub['estimate']:g} "
                  f"[{pub['ci_low']:g}, {pub['ci_high']:g}], k = {pub['k']}, "
                  f"GRADE {pub['grade'] or 'not given'}",
                  f"This analysis {pub['agreement']}."]
    return "\n".join(lines)
