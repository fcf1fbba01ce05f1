"""Words for moderator analyses (meta-regression and subgroups): the classical and Bayesian\nrecords as text, the discussion sentence, and the comparison across priors."""

from __future__ import annotations

import math


from bayes_pip import formats
from bayes_pip.formats import p_text, sig
from bayes_pip.moderation_record import BayesMetaRegressionRecord, SubgroupRecord
from bayes_pip.moderator_data import EXPLORATORY_K




def study_names(studies, limit: int = 12) -> str:
    """The studies by name, the first ``limit`` of a long list and how many more."""
    if len(studies) <= limit:
        return ", ".join(studies)
    return f"{', '.join(studies[:limit])} and {len(studies) - limit:,} more"


def header(rec) -> list[str]:
    mods = "; ".join(f"{m.name} ({m.kind}" + (f": {', '.join(m.levels)}" if m.levels else "")
                     + ")" for m in rec.moderators)
    return [f"{rec.label} [{rec.outcome}], {rec.measure}, {rec.level} level, "
            f"k = {rec.k}: {study_names(rec.studies)}",
            f"Moderators: {mods}"]


def classical_text(rec) -> str:
    """A classical meta-regression (MetaRegressionRecord) or subgroup analysis
    (SubgroupRecord) as text."""
    lines = header(rec)
    if isinstance(rec, SubgroupRecord):
        lines.append(f"Subgroups by {rec.subgroup} ({rec.method}, {rec.tau} tau^2; "
                     f"{rec.measure} [95% CI]):")
        for s, n in zip(rec.subgroups, rec.subgroups_natural):
            lines.append(f"  {s.level:<28} k = {s.k:<3} {sig(n.estimate)} "
                         f"[{sig(n.ci_low)}, {sig(n.ci_high)}]  tau^2 {sig(s.tau2)}")
        lines.append(f"Test for subgroup differences: Q = {sig(rec.q_between)}, df = "
                     f"{rec.df_between}, {p_text(rec.p_between)}")
    else:
        kh = rec.test == "knha"
        lines.append(f"Meta-regression ({rec.method}"
                     + (", Knapp-Hartung: t tests on k - p df, F test for QM" if kh else "")
                     + f"); {rec.scale}:")
        for c in rec.coefficients:
            lines.append(f"  {c.name:<44} {sig(c.estimate)} (SE {sig(c.se)}) "
                         f"[{sig(c.ci_low)}, {sig(c.ci_high)}]  {p_text(c.p)}")
        qm_name = f"F({rec.qm_df}, {rec.qm_df2})" if kh else f"QM (df {rec.qm_df})"
        lines.append(f"{qm_name} = {sig(rec.qm)}, {p_text(rec.qm_p)}; "
                     f"QE = {sig(rec.qe)} (df {rec.qe_df}, {p_text(rec.qe_p)}); "
                     f"residual tau^2 = {sig(rec.tau2)} (without moderators "
                     f"{sig(rec.tau2_without_moderators)}); R^2 = {sig(rec.r2)}%")
    lines += rec.notes
    return "\n".join(lines)


def bayes_text(rec) -> str:
    """A Bayesian meta-regression (BayesMetaRegressionRecord) as text."""
    lines = header(rec)
    p = rec.prior
    params = ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}"
                       for k, v in p["tau"].items() if k not in ("family", "source"))
    lines.append(f"Prior '{rec.prior_name}': tau {p['tau']['family']} ({params}); "
                 "coefficients " + ", ".join(c.prior.describe() for c in rec.coefficients)
                 + f" ({rec.engine} engine)")
    lines.append(f"Posterior, {rec.scale}:")
    for c in rec.coefficients:
        pb = "" if c.p_benefit is None else f"  P(more benefit) {formats.prob_text(c.p_benefit)}"
        lines.append(f"  {c.name:<44} median {sig(c.median)} [{sig(c.ci_low)}, "
                     f"{sig(c.ci_high)}]{pb}")
    t = rec.tau
    lines.append(f"  tau (residual heterogeneity)                 median {sig(t.median)} "
                 f"[{sig(t.ci_low)}, {sig(t.ci_high)}]")
    lines.append(f"Fitted {rec.measure} (natural scale):")
    for f in rec.fitted:
        pb = "" if f.p_benefit is None else f"  P(benefit) {formats.prob_text(f.p_benefit)}"
        lines.append(f"  {f.at:<44} {sig(f.estimate)} [{sig(f.ci_low)}, "
                     f"{sig(f.ci_high)}]{pb}")
    if rec.benefit not in ("higher", "lower"):
        lines.append("P(benefit) needs the outcome's direction of benefit (outcomes.csv).")
    lines += [sentence(rec), *rec.notes]
    return "\n".join(lines)


def sentence(rec) -> str:
    """One sentence per moderator coefficient, its uncertainty and the caution; numbers equal
    the record's (a BayesMetaRegressionRecord, or its JSON)."""
    if isinstance(rec, dict):
        rec = BayesMetaRegressionRecord.from_dict(rec)
    parts = []
    who = rec.intervention
    for c in rec.coefficients[1:]:
        if ": " in c.name:
            name, levels = c.name.split(": ", 1)
            level, reference = levels.split(" vs ", 1)
            what = f"{name} '{level}' compared with '{reference}'"
            more = f"the effect is more favourable to {who} with '{level}'"
        else:
            what = f"each one-unit increase in {c.name}"
            more = f"the effect becomes more favourable to {who} as {c.name} increases"
        direction = ("" if c.p_benefit is None else
                     f"; the probability that {more} is {formats.prob_text(c.p_benefit)}")
        parts.append(f"For {what}, the {rec.measure} changes by a factor of "
                     f"{math.exp(c.median):.2f} (95% credible interval "
                     f"{math.exp(c.ci_low):.2f} to {math.exp(c.ci_high):.2f}){direction}."
                     if rec.measure in ("RR", "OR", "PETO_OR") else
                     f"For {what}, the {rec.measure} changes by {c.median:.2f} (95% "
                     f"credible interval {c.ci_low:.2f} to {c.ci_high:.2f}){direction}.")
    k = rec.k
    if k < EXPLORATORY_K:
        parts.append(f"With {k} {'study' if k == 1 else 'studies'}, this is exploratory.")
    if k <= len(rec.coefficients):
        parts.append("With as many coefficients as studies, these studies cannot estimate the "
                     "residual heterogeneity; its interval is the prior's.")
    return " ".join(parts)


def comparison_text(records: list) -> str:
    """One row per prior: each moderator coefficient's median [95% CrI] and P(more benefit)."""
    first = records[0]
    lines = header(first) + [f"Posterior of each moderator coefficient under each prior "
                             f"({first.scale}):"]
    for c in range(1, len(first.coefficients)):
        lines.append(f"  {first.coefficients[c].name}")
        for rec in records:
            x = rec.coefficients[c]
            pb = "-" if x.p_benefit is None else formats.prob_text(x.p_benefit)
            lines.append(f"    {rec.prior_name:<22} {x.prior.describe():<14} median "
                         f"{sig(x.median)} [{sig(x.ci_low)}, {sig(x.ci_high)}]  "
                         f"P(more benefit) {pb}")
    lines += first.notes
    return "\n".join(lines)


def coefficient_table(rec) -> tuple[list[str], list[list[str]]]:
    """A Bayesian meta-regression's coefficients as a report table: header and rows."""
    head = ["coefficient", "prior", "median [95% CrI]", "P(more benefit)"]
    body = [[c.name, c.prior.describe(), f"{sig(c.median)} [{sig(c.ci_low)}, {sig(c.ci_high)}]",
             "-" if c.p_benefit is None else formats.prob_text(c.p_benefit)]
            for c in rec.coefficients]
    return head, body


def analysis_line(rec) -> str:
    """'...scale; prior 'halfnormal-0.5', exact engine, reconstructed level.'"""
    return f"{rec.scale}; prior '{rec.prior_name}', {rec.engine} engine, {rec.level} level."


def value_lines(rec) -> list[str]:
    """Each study's value of each moderator with its source."""
    return [f"{m.name} in {s}: {m.values[s]} ({m.sources.get(s, 'no source')})"
            for m in rec.moderators for s in rec.studies]
