"""Report pages as documents: one function per section, each returning blocks
(:mod:`bayes_pip.document`); a page is its sections in order. The per-outcome page, the summary
of findings, and the files they make (pages rendered as Markdown and HTML, figures as PNG, the
records as JSON).
"""

from __future__ import annotations

import csv
import io

from bayes_pip import figures, measures
from bayes_pip.design import rob_columns, rob_domain, trial_names
from bayes_pip.document import (Code, Document, Facts, Figures, Heading, Items, LazyPNG, Link,
                                Paragraph, Quote, Strong, Table, html_page, local_href, markdown)
from bayes_pip.output import json_text
from bayes_pip.record import record_dict
from bayes_pip.evidence_text import bma_sentence
from bayes_pip.summarise import (conflict_lines, discussion_sentences, engine_text, level_text,
                                 mcse_words, not_independent_text, p_benefit_extremes,
                                 p_value_text, prior_range_text, prior_used, shared_studies)
from bayes_pip.formats import num, prob_text
from bayes_pip.formats import (interval_text)


def provenance_text(metadata: dict, directory) -> str:
    """The limits paragraph of a data set (dataset.toml), or a plain pointer to its sources."""
    return metadata.get("limits") or (f"Study data from {directory}; each row's source is in "
                                      "studies.csv.")



def published_text(p: dict | None) -> str:
    return "-" if not p else f"{p.estimate:g} [{p.ci_low:g}, {p.ci_high:g}]"


def dl_text_short(d: dict | None) -> str:
    return "-" if not d else f"{num(d.estimate)} [{num(d.ci_low)}, {num(d.ci_high)}]"


def sensitivity_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["prior", f"{rows[0].measure} median [95% CrI]", "tau median",
              "95% prediction interval", "P(benefit)", "P(beyond MCID)", "P(harm)",
              "prior-data conflict"]
    body = []
    for r in rows:
        pred = ("-" if not r.prediction else
                f"[{num(r.prediction.ci_low)}, {num(r.prediction.ci_high)}]")
        c = r.prior_data_conflict
        body.append([r.prior.shown, interval_text(r.effect),
                     num(r.tau.median) if r.tau else "-", pred,
                     prob_text(r.p_benefit, r.probability_draws),
                     prob_text(r.p_mcid, r.probability_draws) if r.p_mcid is not None else "-",
                     prob_text(r.p_harm, r.probability_draws) if r.p_harm is not None else "-",
                     "-" if c is None else (f"yes (p = {p_value_text(c.p_value)})" if c.flagged
                                            else "no")])
    s = rows[0]
    if s.dl:
        d = s.dl
        pred = ("-" if not d.prediction else
                f"[{num(d.prediction.ci_low)}, {num(d.prediction.ci_high)}]")
        body.append([d.method_label, dl_text_short(d), num(d.tau), pred, "-", "-", "-", "-"])
    if s.published:
        body.append(["published (review)", published_text(s.published), "-", "-", "-", "-",
                     "-", "-"])
    return header, body


def study_table(main: dict) -> tuple[list[str], list[list[str]]]:
    header = ["study", f"observed {main.measure} [95% CI]", "shrunken median [95% CrI]",
              "provenance"]
    body = []
    for st in main.studies:
        obs = next(s for s in main.dl.studies if s.study == st.study)
        body.append([st.study, dl_text_short(obs), interval_text(st), obs.provenance])
    return header, body


def bma_likelihood(b) -> str:
    """Which likelihood a report's Bayes factors use, in words."""
    if b.likelihood == "binomial-normal":
        return ("with the binomial-normal likelihood on the arm counts, as the headline fit "
                "(not comparable with normal-normal marginal likelihoods)")
    return "with the normal-normal likelihood on each study's effect estimate"


def bma_table(b) -> tuple[list[str], list[list[str]]]:
    header = ["model", "log marginal likelihood", "prior probability", "posterior probability"]
    return header, [[m.title, f"{m.log_marginal_likelihood:.3f}", f"{m.prior_probability:.3f}",
                     f"{m.posterior_probability:.3f}"] for m in b.models]


# ---------------------------------------------------------------------------------------------
# sections of an outcome's page
# ---------------------------------------------------------------------------------------------

def benefit_condition(main) -> str:
    """'RR < 1': the pooled effect favours the intervention."""
    return (f"{main.measure} {'>' if main.benefit == 'higher' else '<'} "
            f"{measures.get(main.measure).null:g}")


def heading_section(main) -> list:
    settings = main.settings
    facts = [("Data", level_text(main)), ("Engine", engine_text(main)),
             ("Main prior", (f"{main.prior.name}: {prior_used(main)}" if main.prior.tau_used
                             else prior_used(main))),
             ("Direction of benefit", benefit_condition(main)),
             ("Seed and versions", (f"seed {settings.seed}" if settings.seed is not None
                                    else "closed form, no random numbers") + "; " + ", ".join(
                 f"{k} {v}" for k, v in settings.versions.items()))]
    if main.published:
        p = main.published
        facts.append(("Published result", f"{main.measure} {published_text(p)}, k = {p.k}, "
                      f"N = {p.participants}, GRADE {p.grade or 'not given'} ({p.source})"))
    if main.diagnostics and main.diagnostics.mcse_effect:
        se = main.diagnostics.mcse_effect
        facts.append(("Monte Carlo SE of the pooled effect", f"median {num(se[0])}, limits "
                      f"{num(se[1])} and {num(se[2])} ({mcse_words(main)})"))
    if main.dl and main.dl.published:
        agreement = main.dl.published.agreement
        if main.level == "reconstructed" and main.dl.published.reproduced:
            agreement += " (by construction: the tables were reconstructed to match it)"
        facts.append(("Agreement with the review", agreement))
    return [Heading(main.label, 1),
            Paragraph(("Outcome ", Code(main.outcome), f" ({main.comparison}).")),
            Facts(tuple(facts))]


def discussion_section(main, rows) -> list:
    return [Heading("For the discussion section"),
            Quote(" ".join(discussion_sentences(main, rows)))]


def sensitivity_section(main, rows) -> list:
    explain = (f"P(benefit): posterior probability that the pooled effect favours "
               f"{main.intervention} ({benefit_condition(main)})")
    if main.mcid is not None:
        explain += f"; P(beyond MCID): beyond {main.measure} {main.mcid:g}"
    return ([Heading("Sensitivity to the prior"), Table(*sensitivity_table(rows)),
             Paragraph(explain + ".")]
            + [Paragraph(line) for line in conflict_lines(rows)])


BMA_TITLE = "Is there an effect? Bayes factors and model averaging"


def bma_section(outcome_id: str, bma) -> list:
    if bma is None:
        return []
    if isinstance(bma, str):
        return [Heading(BMA_TITLE), Paragraph(f"Not computed: {bma}")]
    return [Heading(BMA_TITLE), Quote(bma_sentence(bma)), Table(*bma_table(bma)),
            Paragraph((f"Exact marginal likelihoods (quadrature) {bma_likelihood(bma)}; ",
                       Code(f"python -m bayes_pip bma {outcome_id}"),
                       " prints the details."))]


def moderator_section(moderator) -> list:
    """A Bayesian meta-regression record (:func:`bayes_pip.moderation.bayes_moderators`), or the
    one-line reason it could not be fitted."""
    if moderator is None:
        return []
    if isinstance(moderator, str):
        return [Heading("Moderators"), Paragraph(f"Not analysed: {moderator}")]
    from bayes_pip.moderation_text import analysis_line, coefficient_table, sentence, value_lines

    rec = moderator
    blocks = [Heading(f"Moderators: {', '.join(m.name for m in rec.moderators)}"),
              Quote(sentence(rec)), Table(*coefficient_table(rec)), Paragraph(analysis_line(rec)),
              Items(tuple(rec.notes), note=True), Items(tuple(value_lines(rec)))]
    if len(rec.moderators) == 1:
        name = f"{rec.outcome}_moderator_{rec.moderators[0].name}.png"
        blocks.append(Figures(((name, drawn(figures.bubble_plot, rec)),)))
    return blocks


def study_section(main) -> list:
    if not main.studies:
        return []
    return [Heading("Studies"), Table(*study_table(main))]


def reconstruction_section(main) -> list:
    """The reconstructed counts per study and arm, what they rest on besides print, the arms
    analysed far below their upper bound, and why agreement with the review proves nothing."""
    r = main.reconstruction
    if main.level != "reconstructed" or r is None:
        return []
    shown = r.tables[0]
    if r.tables_fitted == 1:
        intro = "The table fitted (reconstructed counts, events/total):"
        body = [[row["study"], f"{row['events_t']}/{row['n_t']}", f"{row['events_c']}/{row['n_c']}"]
                for row in shown]
    else:
        intro = (f"Ranges over the {r.tables_fitted} tables fitted (reconstructed counts, "
                 "events/total):")

        def span(values):
            lo, hi = min(values), max(values)
            return f"{lo}" if lo == hi else f"{lo}-{hi}"

        body = []
        for j, row in enumerate(shown):
            cells = [t[j] for t in r.tables]
            body.append([row["study"],
                         f"{span([c['events_t'] for c in cells])}/{span([c['n_t'] for c in cells])}",
                         f"{span([c['events_c'] for c in cells])}/{span([c['n_c'] for c in cells])}"])
    blocks = [Heading("Reconstructed tables"), Paragraph(intro),
              Table(["study", f"{main.intervention} (events/total)", "comparator (events/total)"],
                    body)]
    if r.assumptions:
        blocks += [Paragraph(f"The tables are consistent with every printed number given these "
                             f"{len(r.assumptions)} inferred bounds (assumptions, not print):"),
                   Items(tuple(r.assumptions))]
    if r.flags:
        blocks += [Paragraph("Arms analysed far below their upper bound (check before relying "
                             "on the result):"), Items(tuple(r.flags))]
    blocks.append(Paragraph(
        "Pooled as the review pooled them, these tables reproduce its printed result by "
        "construction (they were chosen to), so that agreement is not a check of the data.",
        note=True))
    return blocks


def drawn(plot, *args) -> LazyPNG:
    """The PNG of ``plot(*args)``, drawn when first needed (see LazyPNG)."""
    return LazyPNG(lambda: figures.png_bytes(plot(*args)))


def figure_section(main, rows, trials=None) -> list:
    o = main.outcome
    figs = {f"{o}_forest.png": drawn(figures.forest_plot, main, trials),
            f"{o}_posterior_mu.png": drawn(figures.posterior_density_plot, main),
            f"{o}_sensitivity.png": drawn(figures.sensitivity_plot, rows)}
    if main.tau:
        figs[f"{o}_prior_posterior_tau.png"] = drawn(figures.prior_posterior_plot, main, "tau")
    return [Heading("Figures"), Figures(tuple(figs.items()))]


def provenance_section(provenance: str, rows=()) -> list:
    notes = tuple(dict.fromkeys(n for r in rows for n in r.notes))
    return ([Heading("Provenance and limits"), Paragraph(provenance)]
            + ([Items(notes, note=True)] if notes else []))


def prior_section(rows) -> list:
    return [Heading("Priors"),
            Items(tuple((Strong(r.prior.shown), f" ({prior_used(r)}): {r.prior.source}")
                        if r.prior.tau_used else (Strong(r.prior.shown), f": {r.prior.mu_source}")
                        for r in rows))]


def trial_section(trials, studies, comparison=None) -> list:
    """Characteristics of included studies and risk of bias, from trials.csv."""
    blocks = []
    ch = characteristics_table(trials, studies, comparison)
    if ch:
        scope = ("" if studies is not None else
                 " (the trials of this comparison; the data do not say which of them the "
                 "published result pooled)" if comparison else " (every trial in the data)")
        blocks += [Heading(f"Characteristics of included studies{scope}"), Table(*ch)]
    if trials is not None and not trials.empty:
        rob = risk_of_bias_table(trials, studies, comparison)
        blocks.append(Heading("Risk of bias"))
        blocks.append(Table(*rob) if rob else Paragraph(
            "No risk-of-bias judgements in the data (trials.csv has no rob_<domain> columns); "
            "they are not assumed.", note=True))
    return blocks


def shared_trials_text(outcome_id: str, trials: dict[str, dict[str, tuple | None]],
                       labels: dict[str, str], participants: int | None = None) -> str:
    """Which other outcomes rest on the same trials, in words a co-author can paste ('' when
    none). ``trials``: per outcome its trials and, where known, each trial's counts."""
    mine = trials.get(outcome_id, {})
    parts = []
    for other, theirs in trials.items():
        common = [s for s in mine if s in theirs]
        if other == outcome_id or not common:
            continue
        same = [s for s in common if mine[s] is not None and mine[s] == theirs[s]]
        scope = ("the same trials" if set(theirs) == set(mine) else ", ".join(common))
        text = f"{labels.get(other, other)} ({other}; {scope}"
        if same:
            text += f"; identical counts in {', '.join(same)}"
        parts.append(text + ")")
    if not parts:
        return ""
    who = f"; {participants} participants" if participants else ""
    return (f"Not independent evidence: the trials of this outcome ({', '.join(mine)}{who}) "
            f"also give "
            f"{'; '.join(parts)}. These results come from the same participants and should be "
            "read together, not counted as separate findings.")


def outcome_page(fits: list, provenance: str, bma=None, moderator=None, trials=None,
                 shared: str = "") -> Document:
    """One outcome's page. ``fits[0]`` is the main fit; ``bma`` (optional) the Bayes factors and
    model averaging under its prior, or the one-line reason they could not be computed;
    ``moderator`` (optional) a Bayesian meta-regression record, or the reason it was not fitted;
    ``shared`` the sentence naming other outcomes that rest on the same trials."""
    main, rows = fits[0], list(fits)
    studies = [st.study for st in main.studies] if main.studies else None
    blocks = (heading_section(main) + discussion_section(main, rows)
              + ([Paragraph(shared)] if shared else [])
              + sensitivity_section(main, rows) + bma_section(main.outcome, bma)
              + moderator_section(moderator) + study_section(main)
              + reconstruction_section(main)
              + trial_section(trials, studies, main.comparison)
              + figure_section(main, rows, trials)
              + provenance_section(provenance, rows) + prior_section(rows))
    return Document(main.label, blocks)


def outcome_files(page: Document, fits: list, bma=None, moderator=None) -> dict[str, bytes | str]:
    """Files of one outcome's report: {relative name: content} (the page as Markdown and HTML,
    its figures, and the records as JSON)."""
    o = fits[0].outcome
    files: dict[str, bytes | str] = dict(page.figures())
    files[f"{o}.md"] = markdown(page)
    files[f"{o}.html"] = html_page(page)
    extra = {}
    if bma is not None:
        extra["bma"] = {"not_computed": bma} if isinstance(bma, str) else bma.to_dict()
    if moderator is not None:
        extra["moderators"] = ({"not_analysed": moderator} if isinstance(moderator, str)
                               else record_dict(moderator))
    files[f"{o}.json"] = json_text({"main": fits[0].to_dict(),
                                    "priors": [r.to_dict() for r in fits], **extra})
    return files


# the CSV is for analysis: one value per column, numbers as numbers (empty when not defined)
SOF_CSV_COLUMNS = ["outcome", "label", "measure", "level", "k", "participants",
                   "published_estimate", "published_ci_low", "published_ci_high", "grade",
                   "classical_method", "classical_estimate", "classical_ci_low",
                   "classical_ci_high", "prior", "bayes_median", "bayes_ci_low", "bayes_ci_high",
                   "tau_median", "prediction_low", "prediction_high", "p_benefit", "p_harm",
                   "p_benefit_new_study", "p_benefit_min", "p_benefit_min_prior",
                   "p_benefit_max", "p_benefit_max_prior", "conflicting_priors",
                   "shares_studies_with", "likelihood", "normal_normal_median",
                   "normal_normal_ci_low", "normal_normal_ci_high"]


def trials_of(trials, studies: list[str] | None, comparison: str | None):
    """The trials.csv rows of the given studies (multi-arm row names map to their trial), or,
    without study names, those whose review_comparisons name the comparison."""
    if studies is not None:
        names = {t for x in studies for t in trial_names(str(x))}
        return trials[trials["study"].isin(names)]
    if comparison and "review_comparisons" in trials.columns:
        keep = [comparison in [c.strip() for c in str(v).split(";")]
                for v in trials["review_comparisons"]]
        return trials[keep]
    return trials


def characteristics_table(trials, studies: list[str] | None = None, comparison: str | None = None):
    """Characteristics of included studies from trials.csv (the columns present, in a fixed
    order), restricted to ``studies`` (or the comparison's trials); None without trials.csv."""
    if trials is None or trials.empty:
        return None
    wanted = [c for c in ("study", "design", "randomised_n", "population", "intervention",
                          "comparator", "country", "timepoints", "multi_arm",
                          "cluster_randomised") if c in trials.columns]
    rows = trials_of(trials, studies, comparison)
    if rows.empty:
        return None
    head = [c.replace("_", " ") for c in wanted]
    body = [[str(r[c]) for c in wanted] for _, r in rows.iterrows()]
    return head, body


def risk_of_bias_table(trials, studies: list[str] | None = None, comparison: str | None = None):
    """Risk-of-bias judgements (trials.csv columns rob_<domain>: low, high or unclear), domains
    as columns; None when the data hold no judgements."""
    if trials is None or trials.empty:
        return None
    domains = rob_columns(trials)
    if not domains:
        return None
    rows = trials_of(trials, studies, comparison)
    head = ["study"] + [rob_domain(d) for d in domains]
    body = [[str(r["study"])] + [str(r[d]) or "not given" for d in domains]
            for _, r in rows.iterrows()]
    return head, body


def sof_csv_rows(all_fits: dict[str, list]) -> list[dict]:
    """The numeric summary-of-findings rows (CSV), straight from the fit records."""
    shared = shared_studies(all_fits)
    out = []
    for outcome_id, fits in all_fits.items():
        main = fits[0]
        low, high = p_benefit_extremes(fits)
        p, d = main.published, main.dl
        out.append({
            "outcome": outcome_id, "label": main.label, "measure": main.measure,
            "level": main.level, "k": main.k, "participants": main.participants,
            "published_estimate": p.estimate if p else "",
            "published_ci_low": p.ci_low if p else "", "published_ci_high": p.ci_high if p else "",
            "grade": (p.grade if p else "") or "",
            "classical_method": d.method if d else "", "classical_estimate": d.estimate if d else "",
            "classical_ci_low": d.ci_low if d else "", "classical_ci_high": d.ci_high if d else "",
            "prior": main.prior.name, "bayes_median": main.effect.median,
            "bayes_ci_low": main.effect.ci_low, "bayes_ci_high": main.effect.ci_high,
            "tau_median": main.tau.median if main.tau else "",
            "prediction_low": main.prediction.ci_low if main.prediction else "",
            "prediction_high": main.prediction.ci_high if main.prediction else "",
            "p_benefit": main.p_benefit, "p_harm": main.p_harm,
            "p_benefit_new_study": ("" if main.p_benefit_new_study is None
                                    else main.p_benefit_new_study),
            "p_benefit_min": low.p_benefit, "p_benefit_min_prior": low.prior.name,
            "p_benefit_max": high.p_benefit, "p_benefit_max_prior": high.prior.name,
            "conflicting_priors": " ".join(f.prior.name for f in fits if f.in_conflict),
            "shares_studies_with": " ".join(shared[outcome_id]),
            **likelihood_columns(main),
        })
    return out


def likelihood_columns(main) -> dict:
    """The headline's likelihood and, on sparse arm counts, the normal-normal result beside it."""
    c = main.likelihood_choice
    binomial = main.baseline_prior is not None
    nn = c.normal_normal if c else None
    return {"likelihood": "binomial-normal" if binomial else "normal-normal",
            "normal_normal_median": nn.median if nn else "",
            "normal_normal_ci_low": nn.ci_low if nn else "",
            "normal_normal_ci_high": nn.ci_high if nn else ""}


def sof_rows(all_fits: dict[str, list]) -> list[dict]:
    """One summary-of-findings row per outcome (numbers straight from the fit records)."""
    out = []
    for outcome_id, fits in all_fits.items():
        main = fits[0]
        low, high = p_benefit_extremes(fits)
        out.append({
            "outcome": outcome_id, "label": main.label, "measure": main.measure,
            "level": main.level, "k": main.k, "participants": main.participants,
            "published": published_text(main.published),
            "grade": (main.published.grade if main.published else "") or "-",
            "dl": dl_text_short(main.dl),
            "bayes_prior": main.prior.shown,
            "bayes": interval_text(main.effect) + (
                f" (binomial-normal; normal-normal "
                f"{interval_text(main.likelihood_choice.normal_normal)})"
                if main.likelihood_choice else ""),
            "p_benefit": prob_text(main.p_benefit, main.probability_draws),
            "p_benefit_min": prob_text(low.p_benefit, low.probability_draws),
            "p_benefit_max": prob_text(high.p_benefit, high.probability_draws),
            "p_benefit_range": prior_range_text(fits),
            "prediction": ("-" if not main.prediction else
                           f"[{num(main.prediction.ci_low)}, "
                           f"{num(main.prediction.ci_high)}]"),
        })
    return out


SOF_HEADER = ["Outcome", "Measure", "Level", "k", "N", "Published [95% CI]", "GRADE",
              "Classical [95% CI]", "Prior", "Bayesian median [95% CrI]", "P(benefit)",
              "P(benefit) across priors", "95% prediction interval"]


def sof_table_rows(rows: list[dict]) -> list[list[str]]:
    return [[r["label"], r["measure"], r["level"], r["k"], r["participants"], r["published"],
             r["grade"], r["dl"], r["bayes_prior"], r["bayes"], r["p_benefit"],
             f"{r['p_benefit_min']} to {r['p_benefit_max']}", r["prediction"]] for r in rows]


def summary_page(all_fits: dict[str, list], skipped: list[str], dataset_label: str,
                 provenance: str, trials=None, extra=()) -> Document:
    title = "Summary of findings: Bayesian re-analysis"
    intro = (f"Data: {dataset_label}. One row per outcome with data; P(benefit) is the posterior "
             "probability that the pooled effect favours the intervention under the main prior; "
             "the range runs over every prior that applies (see each outcome's report).")
    sparse = [fits[0] for fits in all_fits.values() if fits[0].likelihood_choice]
    if sparse:
        intro += (" Rows marked binomial-normal have sparse arm counts ("
                  f"{sparse[0].likelihood_choice.rule}): their headline is the exact "
                  "binomial-normal model on the arm counts, with the normal-normal model on each "
                  "study's effect estimate under the same prior beside it.")
    links = []
    for o in all_fits:
        links += [", " if links else "", Link(o, local_href(o + ".html"))]
    blocks = [Heading(title, 1), Paragraph(intro),
              Table(SOF_HEADER, sof_table_rows(sof_rows(all_fits))),
              Paragraph(("Reports: ", *links)), *extra]
    not_independent = not_independent_text(all_fits)
    if not_independent:
        blocks.append(Paragraph(not_independent, note=True))
    if skipped:
        blocks.append(Paragraph(f"Outcomes without data (not analysed): {', '.join(skipped)}.",
                                note=True))
    blocks += trial_section(trials, None)
    blocks += provenance_section(provenance)
    return Document(title, blocks, wide=True)


def summary_of_findings(all_fits: dict[str, list], skipped: list[str], dataset_label: str,
                        provenance: str, trials=None, extra=()) -> tuple[Document, dict[str, str]]:
    """The summary-of-findings page and its files (Markdown, HTML, and the numbers as CSV)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SOF_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sof_csv_rows(all_fits))
    page = summary_page(all_fits, skipped, dataset_label, provenance, trials, extra)
    return page, {"summary_of_findings.csv": buf.getvalue(),
                  "summary_of_findings.md": markdown(page),
                  "summary_of_findings.html": html_page(page)}
