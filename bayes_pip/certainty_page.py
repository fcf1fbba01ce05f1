"""The certainty-of-evidence table of the summary of findings (GRADEpro-like, from
:mod:`bayes_pip.certainty`), its CSV and JSON, and the rows of outcomes without numbers."""

from __future__ import annotations

import csv
import io

from bayes_pip.document import Heading, Items, Paragraph, Table
from bayes_pip.output import json_text
from bayes_pip.formats import prob_text

HEADER = ("Outcome", "Participants (studies)", "Anticipated absolute effect per 1,000",
          "Relative effect [95% CrI]", "P(benefit beyond the MID)", "Certainty (Bayesian)",
          "Rated down for", "Review's GRADE", "Comment")

CSV_COLUMNS = ["outcome", "label", "measure", "level", "k", "participants", "prior", "mid",
               "p_benefit", "p_benefit_mid", "p_trivial", "p_harm_mid", "p_benefit_new_study",
               "tau_median", "p_tau_high", "p_tau_extreme", "ois", "control_risk",
               "control_per_1000", "intervention_per_1000", "intervention_per_1000_low",
               "intervention_per_1000_high", "risk_of_bias", "inconsistency", "indirectness",
               "imprecision", "publication_bias", "certainty", "review_grade", "rule"]


def absolute_text(c) -> str:
    a = c.per_1000
    if a is None:
        return ("not computed: no control-arm risk (published pooled result only)"
                if c.measure in ("RR", "OR", "RD") else "not defined for " + c.measure)
    cap = " (capped at 1,000)" if a.get("capped") else ""
    return (f"comparator {a['control']}; intervention {a['intervention']} "
            f"({a['intervention_low']} to {a['intervention_high']}){cap}")


def rated_down(c) -> str:
    down = [f"{d.name} ({d.judgement})" for d in c.domains if d.steps]
    return "; ".join(down) or "none"


def prior_share(c) -> str:
    """How far P(benefit) moves across the priors (and without those the data contradict)."""
    if c.p_benefit_range is None or c.p_benefit is None:
        return ""
    lo, hi = c.p_benefit_range
    text = f"P(benefit) {prob_text(lo)} to {prob_text(hi)} across the priors"
    if c.p_benefit_range_agreeing is not None:
        a, b = c.p_benefit_range_agreeing
        text += f" ({prob_text(a)} to {prob_text(b)} without those the data contradict)"
    return text


def certainty_row(c, relative: str) -> tuple:
    comment = "; ".join([c.difference, *c.notes, prior_share(c)]).rstrip("; ")
    mid = "-" if c.p_benefit_mid is None else prob_text(c.p_benefit_mid)
    return (c.label, f"{c.participants if c.participants is not None else '-'} ({c.k})",
            absolute_text(c), relative, mid, c.certainty, rated_down(c),
            c.review_grade or "-", comment)


def no_number_rows(dataset, skipped: list[str]) -> list[tuple]:
    """Rows for the outcomes the data set knows but cannot analyse: what is known."""
    rows = []
    for o in skipped:
        out = dataset.outcome(o)
        status = dataset.status(o)
        rows.append((out.label, "-", "-", "-", "-", "not rated", "-", "-",
                     f"no estimate: {status.description} (outcomes.csv lists it; no study "
                     "rows, reconstruction or published pooled result)"))
    return rows


def certainty_section(blocks_by_outcome: dict, relative: dict, rule, no_numbers=()) -> list:
    rows = [certainty_row(c, relative[o]) for o, c in blocks_by_outcome.items()]
    rows += list(no_numbers)
    reasons = []
    for c in blocks_by_outcome.values():
        reasons.append(f"{c.label}: " + "; ".join(f"{d.name}: {d.judgement} ({d.reason})"
                                                  for d in c.domains))
    return [Heading("Certainty of the evidence (Bayesian, GRADE-style)", 2),
            Paragraph(f"Rule {rule.label} ({rule.title}; models/certainty, a TOML file a team "
                      "can change). Certainty starts high for randomised trials and is rated "
                      "down one level per step; probabilities are posterior probabilities "
                      "under each outcome's main prior; the MID is outcomes.csv's mcid. "
                      "Domains without data in the data set are named as not assessed, never "
                      "judged by assumption, so a rating here can be higher than the review's."),
            Table(HEADER, tuple(rows)),
            Heading("Why each domain was judged so", 3), Items(tuple(reasons), note=True),
            Heading("For the discussion section", 3),
            Items(tuple(c.statement for c in blocks_by_outcome.values()))]


def certainty_files(blocks_by_outcome: dict, rule) -> dict[str, str]:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for c in blocks_by_outcome.values():
        d = c.to_dict()
        row = {k: d.get(k) for k in CSV_COLUMNS}
        a = c.per_1000 or {}
        row.update(control_per_1000=a.get("control"), intervention_per_1000=a.get("intervention"),
                   intervention_per_1000_low=a.get("intervention_low"),
                   intervention_per_1000_high=a.get("intervention_high"))
        for dom in c.domains:
            row[dom.name.replace(" ", "_")] = dom.judgement
        writer.writerow(row)
    return {"certainty.csv": buf.getvalue(),
            "certainty.json": json_text({"rule": rule.label, "rule_sources": list(rule.sources),
                                         "outcomes": [c.to_dict() for c in
                                                      blocks_by_outcome.values()]})}
