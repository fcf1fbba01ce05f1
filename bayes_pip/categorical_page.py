"""The report page of a categorical outcome (one joint section for all its categories) and its
block in the summary of findings, on the document model of :mod:`bayes_pip.document`."""

from __future__ import annotations

from bayes_pip.categorical import LEVEL_WORDS, arm_level
from bayes_pip.formats import ci_text, equals, pct_text
from bayes_pip.document import (Document, Facts, Figures, Heading, Items, Link, Paragraph,
                                 Quote, Table, html_page, local_href, markdown)
from bayes_pip.output import json_text
from bayes_pip.formats import prob_text


def levels_sentence(fit) -> str:
    """'5 arms: 1 printed, 3 derived from printed numbers, 1 reconstructed (not printed data)'
    (each arm counted once, by its least direct cell)."""
    parts = [f"{n} {LEVEL_WORDS.get(level, level)}" for level, n in fit.levels.items()]
    return f"{len(fit.arms)} arms by their least direct cell: {', '.join(parts)}"


def headline(fit) -> str:
    """The discussion-section sentences: the favourable categories and the largest fall."""
    prob = lambda p: prob_text(p, fit.draws)  # noqa: E731
    rows = {r["category"]: r for r in fit.per_category}
    fav = [rows[c] for c in fit.favourable]
    others = [r for r in fit.per_category if not r["favourable"]]
    biggest = min(others, key=lambda r: r["rd"]["median"])
    parts = [f"the share classified {r['category']} from {pct_text(r['p_comparator'])} to "
             f"{pct_text(r['p_intervention'])} (RR {ci_text(r['rr'])})" for r in fav]
    joint = next(j for j in fit.joint
                 if j["statement"] == f"{fav[0]['category']} rises and "
                                      f"{biggest['category']} falls")
    every = next(j for j in fit.joint if "every other category" in j["statement"])
    return (f"In one hierarchical multinomial model of all {len(fit.categories)} categories "
            f"({fit.k} trials, {fit.participants} participants; {levels_sentence(fit)}), "
            f"{fit.intervention} changed {' and '.join(parts)} and "
            f"{biggest['category']} from {pct_text(biggest['p_comparator'])} to "
            f"{pct_text(biggest['p_intervention'])} (RR {ci_text(biggest['rr'])}), at {fit.baseline}. "
            f"The posterior probability that {joint['statement']} is {prob(joint['probability'])}"
            f"; that {every['statement']}, {prob(every['probability'])}. Prior "
            f"'{fit.prior['name']}'; tau {ci_text(fit.tau)} on the log odds ratio scale, with "
            f"{fit.k} trials mostly the prior's.")


def category_table(fit) -> Table:
    prob = lambda p: prob_text(p, fit.draws)  # noqa: E731
    body = tuple((r["category"], "higher" if r["favourable"] else "lower",
                  pct_text(r["p_comparator"]), pct_text(r["p_intervention"]), ci_text(r["rr"]), ci_text(r["rd"]),
                  prob(r["p_benefit"]), ci_text(p["rr"]))
                 for r, p in zip(fit.per_category, fit.prediction))
    return Table(("Category", "Better", "Comparator", fit.intervention, "RR [95% CrI]",
                  "RD [95% CrI]", "P(benefit)", "New trial RR [95% PrI]"), body)


def comparison_table(fit) -> Table:
    body = []
    for c in fit.comparison:
        sep = c.get("separate")
        pub = c.get("published")
        body.append((c["category"], ci_text(c["multinomial"]),
                     f"{ci_text(sep)} ({sep['engine']}, {sep['level']})" if sep else
                     c.get("separate_note") or c.get("separate_error") or "no data",
                     f"{pub['estimate']:.2f} [{pub['ci_low']:.2f}, {pub['ci_high']:.2f}]"
                     if pub else "not reported"))
    return Table(("Category", "Multinomial (this analysis)", "Separate analysis",
                  "Review (published)"), tuple(body))


def arms_table(fit) -> Table:
    body = tuple((a["study"], a["arm"], a["role"] if a["role"] in ("comparator", "intervention")
                  else "alternative", str(a["n"]),
                  ", ".join(f"{c} {'-' if v is None else v}" for c, v in a["counts"].items()),
                  arm_level(a["provenance"]))
                 for a in fit.arms)
    return Table(("Study", "Arm", "Role", "n", "Counts", "Level of evidence"), body)


def categorical_page(fit, provenance: str, figure=None) -> Document:
    prob = lambda p: prob_text(p, fit.draws)  # noqa: E731
    d = fit.diagnostics
    blocks = [Heading(fit.label, 1),
              Paragraph(f"One classification into {len(fit.categories)} categories "
                        f"({', '.join(fit.categories)}) analysed as one outcome: in each arm "
                        "the categories sum to the arm size, so a rise in one is a fall "
                        "elsewhere. The separate analyses of single categories are kept below "
                        "as a sensitivity view."),
              Heading("For the discussion section", 2), Quote(headline(fit)),
              Heading(f"{fit.intervention} vs comparator, per category", 2),
              Paragraph(f"Probabilities at {fit.baseline}; P(benefit) in each category's "
                        "favourable direction.", note=True),
              category_table(fit),
              Heading("Joint probabilities", 2),
              Items(tuple(f"P({j['statement']}) {equals(prob(j['probability']))}"
                          + (f"; expected change {ci_text(j['expected_change'])}"
                             if "expected_change" in j else "") for j in fit.joint))]
    for alt in fit.alternatives:
        n = alt["trials"]
        blocks += [Heading(f"{fit.intervention} vs {alt['treatment']}", 2),
                   Paragraph(f"From the same fit; {n} {'trial' if n == 1 else 'trials'}"
                             + (" (one trial: not a meta-analysis)." if n == 1 else "."),
                             note=True),
                   Table(("Category", "RR [95% CrI]", "RD [95% CrI]", "P(benefit)"),
                         tuple((r["category"], ci_text(r["rr"]), ci_text(r["rd"]), prob(r["p_benefit"]))
                               for r in alt["per_category"]))]
    blocks += [Heading("Each category on its own (sensitivity view)", 2), comparison_table(fit)]
    blocks += [Paragraph(n) for n in fit.data_differences]
    blocks += [Paragraph(fit.quote),
               Heading("Arms and levels of evidence", 2), arms_table(fit)]
    if figure is not None:
        blocks.append(Figures(((figure_name(fit), figure),)))
    blocks += [Heading("Model, prior and convergence", 2),
               Facts((("Model", "hierarchical multinomial, baseline-category logits against "
                                f"'{fit.reference}', one tau, correlation "
                                f"{fit.tau['correlation']:g} between categories and between "
                                "active arms; each arm once"),
                      ("Prior", f"'{fit.prior['name']}' as for an odds-ratio outcome: each "
                                f"pooled log OR {fit.prior['described']['mu']}; "
                                f"{fit.prior['described']['tau']}; comparator logits "
                                f"{fit.prior['described']['baseline']}"),
                      ("Heterogeneity", f"tau {ci_text(fit.tau)}"),
                      ("Sampler", f"NUTS {d['chains']} x {d['draws']} draws, seed {fit.seed}; "
                                  f"R-hat {d['rhat_max']:.3f}, ESS bulk {d['ess_bulk_min']:.0f} "
                                  f"/ tail {d['ess_tail_min']:.0f}, {d['divergences']} "
                                  "divergences: converged")))]
    blocks += [Paragraph(f"Note: {n}", note=True) for n in fit.notes]
    blocks += [Heading("Provenance", 2), Paragraph(provenance, note=True)]
    return Document(fit.label, blocks, wide=True)


def figure_name(fit) -> str:
    return f"{fit.outcome}_categories.png"


def categorical_files(page: Document, fit) -> dict[str, bytes | str]:
    files: dict[str, bytes | str] = dict(page.figures())
    files[f"{fit.outcome}.md"] = markdown(page)
    files[f"{fit.outcome}.html"] = html_page(page)
    files[f"{fit.outcome}.json"] = json_text(fit.to_dict())
    return files


def sof_block(fits: dict) -> list:
    """The summary of findings' block for the categorical outcomes: one table row per category,
    and a sentence that the separate rows above are a sensitivity view of the same trials."""
    blocks = []
    for outcome, fit in fits.items():
        separate = [c["separate_outcome"] for c in fit.comparison if c.get("separate")]
        blocks += [Heading(f"{fit.label}: all categories in one model", 2),
                   Paragraph(headline(fit)), category_table(fit)]
        if separate:
            blocks.append(Paragraph(
                (f"The rows {', '.join(separate)} in the table above analyse single categories "
                 "of this classification on their own, on the same trials and infants: a "
                 "sensitivity view, not independent evidence (see ",
                 Link(outcome, local_href(outcome + ".html")), ")."), note=True))
    return blocks
