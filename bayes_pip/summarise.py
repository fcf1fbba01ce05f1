"""Turn analysis records into tables and short texts a researcher can paste.

Reads records (dicts from ``to_dict``), never refits.
"""

from __future__ import annotations



from bayes_pip.data import Outcome
from bayes_pip import engines, measures
from bayes_pip.reconstruct import consistent_text, which_tables
from bayes_pip.record import (DLRecord, FitFailure)
from bayes_pip.posterior_stats import (CONFLICT_P)
from bayes_pip.formats import (ci_text, equals, num, num2, prob_text, short)
from bayes_pip import direction


def direction_phrase(outcome: Outcome) -> str:
    """'RR < 1 is benefit' style phrase for an outcome."""
    null = f"{outcome.scale.null:g}"
    if outcome.benefit == "unknown":
        return (f"direction of benefit not set ({outcome.measure} below or above {null}?): "
                "P(benefit) needs it")
    sign = direction.of(outcome).sign
    return f"{outcome.measure} {sign} {null} favours {intervention_name(outcome)}"


def intervention_name(outcome) -> str:
    """How texts name the intervention (an Outcome or a fit record; from dataset.toml)."""
    return outcome.intervention



def dl_text(d: DLRecord, outcome: Outcome) -> str:
    """Human-readable DL table for one outcome."""
    m = d.measure
    model = ("fixed-effect" if d.method in ("IV-fixed", "MH-fixed", "Peto") else "random-effects")
    ci_words = ("95% CI: Hartung-Knapp-Sidik-Jonkman, t(k-1)" if d.ci_method == "hksj"
                else "95% CI: Wald (normal)")
    heading = (f"Classical {model} meta-analysis ({d.method_label}), k = {d.k}, "
               f"N = {d.participants}; {ci_words}")
    if d.k == 1:
        heading = f"A single study (nothing is pooled), N = {d.participants}; {ci_words}"
    lines = [f"{outcome.label} ({d.outcome}), {m}, {direction_phrase(outcome)}", heading]
    if d.data_status:
        lines.append(f"Data: {d.data_status}")
    lines += ["", f"{'study':28s} {m:>8s} {'95% CI':>18s} {'weight':>7s}"]
    for s in d.studies:
        ci = f"[{num(s.ci_low)}, {num(s.ci_high)}]"
        flag = " (0.5 added)" if s.corrected else ""
        prov = f" ({s.provenance})" if s.provenance else ""
        lines.append(f"{s.study:28s} {num(s.estimate):>8s} {ci:>18s} "
                     f"{num(s.weight, 1):>6s}%{flag}{prov}")
    ci = f"[{num(d.ci_low)}, {num(d.ci_high)}]"
    lines.append(f"{'Pooled (' + d.method + ')':28s} {num(d.estimate):>8s} {ci:>18s} "
                 f"{'100.0':>6s}%")
    if d.pi_low is not None:
        pi = f"[{num(d.pi_low)}, {num(d.pi_high)}]"
        lines.append(f"{'95% prediction interval':28s} {'':>8s} {pi:>18s} ({d.pi_distribution})")
    het = (f"Heterogeneity: tau^2 = {d.tau2:.4f} (tau = {d.tau:.3f}"
           + (f"; {d.tau2_method}" if d.tau2_method else "") + ")")
    if d.tau2_ci_low is not None:
        het += (f", 95% CI [{d.tau2_ci_low:.4f}, {d.tau2_ci_high:.4f}] (Q-profile)")
    i2 = f"I^2 = {d.i2:.1f}%"
    if d.i2_ci_low is not None:
        i2 += f" [{d.i2_ci_low:.1f}%, {d.i2_ci_high:.1f}%]"
    lines += [
        "",
        f"{het}, Q = {d.q:.2f} (df = {d.df}), {i2}",
        (f"Test for overall effect (HKSJ): t = {d.t_hksj:.2f} (df = {d.df}), "
         f"p = {d.p_hksj:.4g}" if d.t_hksj is not None else
         f"Test for overall effect: z = {d.z:.2f}, p = {d.p:.4g}"),
    ]
    if d.k == 1:
        lines.append("Note: a single study; the pooled result is that study's estimate and "
                     "heterogeneity cannot be estimated.")
    elif d.k < 3:
        lines.append("Note: fewer than 3 studies; no prediction interval, and tau^2 is very "
                     "imprecise.")
    if d.excluded:
        lines.append(f"Excluded (no events or only events in both arms): "
                     f"{', '.join(d.excluded)}")
    for note in d.adjustments or ():
        lines.append(f"Design: {note}")
    if m == "RD" and d.method in ("MH-fixed", "MH-random"):
        lines.append("Note: the M-H risk difference's SE is Greenland & Robins' (1985) variance, "
                     "as RevMan; metafor's rma.mh uses Sato, Greenland & Robins (1989), up to 2% "
                     "apart.")
    pub = d.published
    if pub:
        lines += ["",
                  f"Published ({pub.source}): {m} {pub.estimate:g} "
                  f"[{pub.ci_low:g}, {pub.ci_high:g}], k = {pub.k}, "
                  f"GRADE {pub.grade or 'not given'}",
                  f"This analysis {pub.agreement}."]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# posterior summaries (one grammar for the exact, conjugate and MCMC engines)
# ---------------------------------------------------------------------------------------------


def benefit_words(s: dict) -> str:
    """'P(RR > 1: PIP increases infant secure attachment)' style label from a fit summary."""
    null = f"{measures.get(s.measure).null:g}"
    return f"{s.measure} {direction.of(s).sign} {null}: favours {s.intervention}"


def mcid_words(s: dict) -> str:
    """'RR > 1.25 (MCID, assumed)' or '(MCID)' when the data name its source."""
    assumed = "" if getattr(s, "mcid_source", "") else ", assumed"
    return f"{s.measure} {direction.of(s).sign} {s.mcid:g} (MCID{assumed})"




def level_text(s: dict) -> str:
    if s.level == "summary":
        return (f"published pooled result (k = {s.k}, N = {s.participants}); a re-analysis "
                "of the published pooled estimate, which cannot re-estimate heterogeneity")
    if s.level == "reconstructed":
        r = s.reconstruction
        return (f"reconstructed study-level tables (k = {s.k}, N = {s.participants}): "
                f"{which_tables(r.n_tables, len(r.assumptions))} "
                f"{consistent_text(len(r.assumptions))}, not printed data")
    return f"study-level data (k = {s.k}, N = {s.participants})"


def engine_text(s: dict) -> str:
    """The engine's own sentence about how this fit was computed."""
    return engines.get(s.engine).describe(s)



def p_value_text(p: float) -> str:
    """A tail probability to 2 significant digits, or more where 2 would round it across the
    conflict threshold (0.0496 is not printed as 0.05 under a 'p < 0.05' rule)."""
    for digits in range(2, 7):
        text = f"{p:.{digits}g}"
        if (float(text) < CONFLICT_P) == (p < CONFLICT_P):
            return text
    return f"{p:.6g}"



def mcse_words(s) -> str:
    """Whether the second decimal of the pooled effect can change with another seed."""
    worst = max(s.diagnostics.mcse_effect)
    return ("MCMC; the second decimal is stable" if 2 * worst < 0.005 else
            "MCMC; values within about 2 SE can change with the seed; --engine exact has no "
            "Monte Carlo error")


def fit_text(s: dict) -> str:
    """A short table a researcher can paste."""
    m = s.measure
    prior = s.prior
    lines = [
        f"{s.label} ({s.outcome}), {m}",
        f"Data:   {level_text(s)}",
        f"Prior:  {prior_phrase(s) if s.level == 'summary' else prior.name + ': ' + prior.title}",
        f"Engine: {engine_text(s)}",
        *([f"Baseline: control-arm baseline ~ Normal({s.baseline_prior['mean']:g}, "
           f"{s.baseline_prior['sd']:g}^2) per study ({s.baseline_prior['source']})"]
          if s.baseline_prior else []),
        "",
        f"{'':34s} {'median':>8s}  95% credible interval",
        f"{'Pooled ' + m:34s} {s.effect.median:8.2f}  "
        f"[{s.effect.ci_low:.2f}, {s.effect.ci_high:.2f}]",
    ]
    if s.diagnostics and s.diagnostics.mcse_effect:
        lines.append(f"{'  Monte Carlo SE':34s} {s.diagnostics.mcse_effect[0]:8.2f}  "
                     f"[{s.diagnostics.mcse_effect[1]:.2f}, {s.diagnostics.mcse_effect[2]:.2f}]"
                     f"  ({mcse_words(s)})")
    if s.tau:
        lines.append(f"{'Heterogeneity tau':34s} {s.tau.median:8.2f}  "
                     f"[{s.tau.ci_low:.2f}, {s.tau.ci_high:.2f}]")
        lines.append(f"{'Prediction (new study) ' + m:34s} {s.prediction.median:8.2f}  "
                     f"[{s.prediction.ci_low:.2f}, {s.prediction.ci_high:.2f}]")
    if s.i2:
        lines.append(f"{'Heterogeneity I^2':34s} {100 * s.i2.median:7.0f}%  "
                     f"[{100 * s.i2.ci_low:.0f}%, {100 * s.i2.ci_high:.0f}%]")
    lines += ["", f"P({benefit_words(s)}) {equals(prob_text(s.p_benefit, s.probability_draws))}"]
    if s.p_mcid is not None:
        lines.append(f"P({mcid_words(s)}) {equals(prob_text(s.p_mcid, s.probability_draws))}")
    if s.p_harm is not None:
        lines.append(f"P(harm: {harm_words(s)}) {equals(prob_text(s.p_harm, s.probability_draws))}")
    if s.p_trivial is not None:
        lines.append(f"P(trivial: {trivial_words(s)}) "
                     f"{equals(prob_text(s.p_trivial, s.probability_draws))}")
    if s.p_benefit_new_study is not None:
        lines.append(f"P(a new study's true effect favours {intervention_name(s)}) "
                     f"{equals(prob_text(s.p_benefit_new_study, s.probability_draws))}")
    if s.tau_bands:
        b = s.tau_bands
        lines.append("Heterogeneity bands (Spiegelhalter et al. 2004), prior -> posterior: "
                     + "; ".join(f"{name} {prob_text(p)} -> {prob_text(q, s.probability_draws)}"
                                 for name, p, q in zip(b.bands, b.prior, b.posterior)))
    if s.in_conflict:
        c = s.prior_data_conflict
        lines.append(f"Prior-data conflict: the data's pooled estimate is in the prior's "
                     f"{p_value_text(c.p_value)} tail (Box's prior-predictive check): the prior on the "
                     "pooled effect and the data disagree, so this result mixes two "
                     "contradicting sources.")
    if s.studies:
        lines += ["", f"{'Study':28s} {'observed':>9s}  {'shrunken median [95% CrI]':>28s}"]
        for st in s.studies:
            lines.append(f"{st.study:28s} {float('nan') if st.observed is None else st.observed:9.2f}  "
                         f"{ci_text(st):>28s}")
    if s.likelihood_choice:
        c = s.likelihood_choice
        lines += ["", f"Normal-normal beside it ({c.normal_normal_engine} engine, same prior): "
                      f"{m} {num(c.normal_normal.median)} [{num(c.normal_normal.ci_low)}, "
                      f"{num(c.normal_normal.ci_high)}], P(benefit) "
                      f"{equals(prob_text(c.normal_normal_p_benefit))}",
                  f"Likelihood: binomial-normal, chosen by --engine auto for {c.rule}. "
                  + c.sentence]
    if s.dl:
        d = s.dl
        lines += ["", f"{d.method_label} reference: {m} {d.estimate:.2f} "
                      f"[{d.ci_low:.2f}, {d.ci_high:.2f}], tau^2 = {d.tau2:.3f}, "
                      f"I^2 = {d.i2:.0f}%"]
    if s.published:
        p = s.published
        lines.append(f"Published (review): {m} {p.estimate:g} [{p.ci_low:g}, "
                     f"{p.ci_high:g}], k = {p.k}, GRADE {p.grade or 'not given'}")
    for note in s.notes:
        lines.append(f"Note: {note}")
    return "\n".join(lines)


def harm_words(s) -> str:
    null = f"{measures.get(s.measure).null:g}"
    return f"{s.measure} {'>' if s.benefit == 'lower' else '<'} {null}"


def trivial_words(s) -> str:
    scale = measures.get(s.measure)
    if scale.is_ratio:
        low, high = sorted((s.mcid, 1 / s.mcid))
        return f"{low:.3g} < {s.measure} < {high:.3g}"
    return f"|{s.measure}| < {abs(s.mcid):g}"



def comparison_text(rows: list[dict]) -> str:
    """One row per prior, plus the DL reference: the sensitivity table for a discussion section."""
    s = rows[0]
    m = s.measure
    width = max([16] + [len(r.prior.shown) for r in rows])
    lines = [f"{s.label} ({s.outcome}), {m}: sensitivity to the prior",
             f"Data: {level_text(s)}",
             f"Engine: {s.engine}" + (" (--engine auto: sparse arm counts, so the "
                                      "binomial-normal likelihood; `fit` shows the normal-normal "
                                      "result beside it)" if s.likelihood_choice else ""), "",
             f"{'prior':{width}s} {m + ' median [95% CrI]':>26s} {'tau':>6s} "
             f"{'prediction [95%]':>18s} {'P(benefit)':>10s} {'P(>MCID)':>9s} "
             f"{'P(harm)':>8s}"]
    for r in rows:
        tau = f"{r.tau.median:.2f}" if r.tau else "-"
        pred = (f"[{num2(r.prediction.ci_low)}, {num2(r.prediction.ci_high)}]"
                if r.prediction else "-")
        pm = prob_text(r.p_mcid, r.probability_draws) if r.p_mcid is not None else "-"
        ph = prob_text(r.p_harm, r.probability_draws) if r.p_harm is not None else "-"
        flag = " *" if r.in_conflict else ""
        pb = prob_text(r.p_benefit, r.probability_draws) if r.p_benefit is not None else "-"
        lines.append(f"{r.prior.shown:{width}s} {ci_text(r.effect):>26s} {tau:>6s} "
                     f"{pred:>18s} {pb:>10s} {pm:>9s} {ph:>8s}{flag}")
    d = s.dl
    if d:
        pred = (f"[{d.prediction.ci_low:.2f}, {d.prediction.ci_high:.2f}]"
                if d.prediction else "-")
        ci = f"{d.estimate:.2f} [{d.ci_low:.2f}, {d.ci_high:.2f}]"
        label = "DL (classical)" if d.method == "DL" else d.method
        lines.append(f"{label:{width}s} {ci:>26s} {d.tau:6.2f} {pred:>18s} "
                     f"{'-':>10s} {'-':>9s}")
    p = s.published
    if p:
        ci = f"{short(p.estimate)} [{short(p.ci_low)}, {short(p.ci_high)}]"
        lines.append(f"{'published':{width}s} {ci:>26s}   ({p.model or 'model not given'}, "
                     f"k = {p.k})")
    if s.p_benefit is None:
        lines += ["", f"P(benefit): not computed: the direction of benefit of '{s.outcome}' is "
                      "not set (benefit 'unknown'); set benefit to lower or higher in "
                      "outcomes.csv, or import again with --benefit."]
    else:
        lines += ["", f"P(benefit) = P({benefit_words(s)})."]
    if s.p_mcid is not None:
        lines.append(f"P(>MCID) = P({mcid_words(s)}).")
    lines += conflict_lines(rows)
    for r in rows:
        lines.append(f"{r.prior.shown}: {prior_used(r)}" if r.level != "summary"
                     else f"{r.prior.shown}: {r.prior.mu_source}")
    for note in dict.fromkeys(n for r in rows for n in r.prior.notes):
        lines.append(f"Note: {note}")
    if s.level == "summary":
        lines.append("Note: " + summary_level_note_short())
    return "\n".join(lines)


def split_conflicting(rows: list) -> tuple[list, list]:
    """The fits whose prior the data contradict (Box's check) and the others."""
    return [r for r in rows if r.in_conflict], [r for r in rows if not r.in_conflict]


def p_benefit_extremes(rows: list) -> tuple:
    """The fits with the lowest and the highest P(benefit)."""
    return min(rows, key=lambda r: r.p_benefit), max(rows, key=lambda r: r.p_benefit)


def conflict_lines(rows: list) -> list[str]:
    """Which priors the data contradict (Box's check), and the P(benefit) range without them."""
    flagged, rest = split_conflicting(rows)
    if not flagged:
        return ["Prior-data conflict (Box's prior-predictive check on the pooled effect, "
                "p < 0.05): none."]
    out = ["Prior-data conflict (*; Box's prior-predictive check on the pooled effect, "
           "p < 0.05): " + ", ".join(f"{r.prior.shown} (p = {p_value_text(r.prior_data_conflict.p_value)})"
                       for r in flagged)
           + ". The data contradict these priors; their rows mix two disagreeing sources."]
    if rest and rows[0].p_benefit is not None:
        lo, hi = p_benefit_extremes(rest)
        all_lo, all_hi = p_benefit_extremes(rows)
        out.append(f"P(benefit) across all priors: {prob_text(all_lo.p_benefit)} to "
                   f"{prob_text(all_hi.p_benefit)}; without the conflicting ones: "
                   f"{prob_text(lo.p_benefit)} to {prob_text(hi.p_benefit)}.")
    return out


def prior_range_text(rows: list) -> str:
    """'across 7 priors: 0.683 to 0.999; without the 1 in conflict with the data (sceptical):
    0.950 to 0.999': the range of P(benefit) over the priors, labelled, with and without the
    priors the data contradict."""
    def span(fits):
        lo, hi = p_benefit_extremes(fits)
        return (f"{prob_text(lo.p_benefit, lo.probability_draws)} to "
                f"{prob_text(hi.p_benefit, hi.probability_draws)}")

    text = f"across {len(rows)} prior{'s' if len(rows) > 1 else ''}: {span(rows)}"
    flagged, rest = split_conflicting(rows)
    if flagged and rest:
        text += (f"; without the {len(flagged)} in conflict with the data "
                 f"({', '.join(r.prior.shown for r in flagged)}): {span(rest)}")
    return text


def summary_level_note_short() -> str:
    return ("summary level: only the prior on the pooled effect matters; priors on tau are not "
            "used, so prior sets that differ only in tau are shown once.")


def shared_studies(all_fits: dict[str, list]) -> dict[str, list[str]]:
    """Outcomes whose fits pool some of the same studies (not independent evidence)."""
    names = {o: {s.study for s in fits[0].studies} for o, fits in all_fits.items()}
    return {o: [p for p in all_fits if p != o and names[o] & names[p]] for o in all_fits}


def shared_groups(all_fits: dict[str, list]) -> list[tuple[list[str], list[str]]]:
    """Groups of outcomes linked by shared studies (connected components), each with the
    studies its outcomes share."""
    names = {o: {s.study for s in fits[0].studies} for o, fits in all_fits.items()}
    links = shared_studies(all_fits)
    seen, groups = set(), []
    for o in all_fits:
        if o in seen or not links[o]:
            continue
        group, todo = [], [o]
        while todo:
            x = todo.pop()
            if x in seen:
                continue
            seen.add(x)
            group.append(x)
            todo += links[x]
        group = [g for g in all_fits if g in group]
        common = sorted({s for g in group for h in group if h != g for s in names[g] & names[h]})
        groups.append((group, common))
    return groups


def not_independent_text(all_fits: dict[str, list]) -> str:
    """One sentence per group of outcomes that rest on the same trials."""
    parts = []
    for group, common in shared_groups(all_fits):
        parts.append(f"{', '.join(group)} rest on the same trials ({', '.join(common)})")
    if not parts:
        return ""
    return ("Not independent: " + "; ".join(parts) + ". Their results share trials and "
            "participants and must not be counted as separate evidence.")


def sweep_text(rows: list) -> str:
    """Outcome x prior table: effect, P(benefit), P(>MCID); failed fits say why."""
    failed = [r for r in rows if isinstance(r, FitFailure)]
    width = max([16] + [len(r.prior.shown) for r in rows if not isinstance(r, FitFailure)])
    lines = [f"{'outcome':42s} {'level':13s} {'prior':{width}s} {'effect [95% CrI]':>24s} "
             f"{'P(benefit)':>10s} {'P(>MCID)':>9s}"]
    for r in rows:
        if isinstance(r, FitFailure):
            lines.append(f"{r.outcome:42s} {'-':13s} {r.prior:{width}s} "
                         f"{'FAILED (see below)':>24s}")
            continue
        pm = prob_text(r.p_mcid, r.probability_draws) if r.p_mcid is not None else "-"
        lines.append(f"{r.outcome:42s} {r.level:13s} {r.prior.shown:{width}s} "
                     f"{r.measure + ' ' + ci_text(r.effect):>24s} "
                     f"{prob_text(r.p_benefit, r.probability_draws):>10s} {pm:>9s}")
    if failed:
        lines += ["", f"{len(failed)} of {len(rows)} fits failed:"]
        lines += [f"  {r.outcome}, prior {r.prior}: {r.error}" for r in failed]
    by_outcome: dict[str, list] = {}
    for r in rows:
        if not isinstance(r, FitFailure):
            by_outcome.setdefault(r.outcome, []).append(r)
    shared = not_independent_text(by_outcome)
    if shared:
        lines += ["", shared]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# sentences for a discussion section
# ---------------------------------------------------------------------------------------------


def prior_used(s) -> str:
    """The prior a fit actually used: its title, or at summary level only the prior on the
    pooled effect ('Normal(0, 4^2) on log RR; heterogeneity not modelled')."""
    if s.level != "summary":
        return s.prior.title
    mu = s.prior.mu
    return (f"Normal({mu.mean:.3g}, {mu.sd:.3g}^2) on {measures.get(s.measure).analysis_label}; "
            "heterogeneity not modelled")


def prior_phrase(s: dict) -> str:
    """'halfnormal-0.5 prior (...)'; at summary level only the prior on the pooled effect counts,
    and it is named by itself ('a N(0, 4^2) prior on the pooled log RR')."""
    p = s.prior
    if s.level == "summary":
        return (f"{p.mu_short} prior on the pooled effect ({measures.get(s.measure).analysis_label}"
                " scale; heterogeneity not modelled)")
    return f"{p.name} prior ({p.title[0].lower() + p.title[1:]})"


def discussion_sentences(main: dict, rows: list[dict]) -> list[str]:
    """Ready-to-paste sentences; every number comes from the fit records given."""
    who = main.intervention
    verb = direction.of(main).verb
    what = main.phrase or f"the outcome '{main.label}'"
    out = []
    if main.level == "summary":
        p = main.published
        out.append(
            f"Re-analysing the review's published pooled estimate ({main.measure} "
            f"{p.estimate:g}, 95% CI {p.ci_low:g} to {p.ci_high:g}; {p.k} studies, "
            f"{p.participants} participants) with a Bayesian normal model, which cannot "
            "re-estimate between-study heterogeneity:")
    elif main.level == "reconstructed":
        r = main.reconstruction
        n = len(r.assumptions)
        which = ("the only set of integer 2x2 tables" if r.n_tables == 1 and not n else
                 "the one set of integer 2x2 tables" if r.n_tables == 1 else
                 f"each of the {r.n_tables} sets of integer 2x2 tables")
        given = (f", given {n} inferred bound{'s' if n > 1 else ''} on the arms "
                 "(assumptions listed with the data)" if n else "")
        out.append(f"In a Bayesian random-effects meta-analysis of {main.k} studies "
                   f"({main.participants} participants), fitted to {which} consistent with "
                   f"every number the review printed for this outcome{given} "
                   "(reconstructed, not printed data):")
    elif main.k == 1:
        # one trial is one trial: never "a meta-analysis of 1 study"
        out.append(f"One trial ({main.participants} participants), analysed with a Bayesian "
                   "random-effects model whose between-study heterogeneity comes from the prior "
                   "alone (prior-driven):")
    else:
        out.append(f"In a Bayesian random-effects meta-analysis of {main.k} studies "
                   f"({main.participants} participants):")
    e = main.effect
    under = "under" if out and out[-1].endswith(":") else "Under"
    out.append(f"{under} the {prior_phrase(main)} the posterior median {main.measure} was "
               f"{num(e.median)} (95% CrI {num(e.ci_low)} to "
               f"{num(e.ci_high)}); the probability that {who} {verb} {what} was "
               f"{prob_text(main.p_benefit, main.probability_draws)}.")
    if main.likelihood_choice is not None:
        out.append(main.likelihood_choice.sentence)
    if main.p_mcid is not None:
        origin = (f"from {main.mcid_source}" if main.mcid_source
                  else "an assumed value, not from a published source")
        out.append(f"The probability of an effect beyond the minimal clinically important "
                   f"difference ({main.measure} {main.mcid:g}; {origin}) was "
                   f"{prob_text(main.p_mcid, main.probability_draws)}.")
    if main.p_harm is not None:
        out.append(f"The probability of harm ({harm_words(main)}) was "
                   f"{prob_text(main.p_harm, main.probability_draws)}.")
    if main.p_benefit_new_study is not None:
        out.append(f"The probability that the true effect in a new study would favour {who} "
                   f"was {prob_text(main.p_benefit_new_study, main.probability_draws)}.")
    if main.tau_bands is not None:
        b = main.tau_bands
        out.append(f"The posterior probability of fairly high or extreme heterogeneity (tau "
                   f"above 0.5 on the log scale; Spiegelhalter et al. 2004) was "
                   f"{prob_text(sum(b.posterior[2:]), main.probability_draws)} (prior "
                   f"{prob_text(sum(b.prior[2:]))}).")
    if main.prediction:
        pr = main.prediction
        out.append(f"The 95% prediction interval for the effect in a new study was "
                   f"{num(pr.ci_low)} to {num(pr.ci_high)} (between-study SD tau, "
                   f"median {num(main.tau.median)}).")
    if len(rows) > 1:
        lo, hi = p_benefit_extremes(rows)
        out.append(f"Across the {len(rows)} priors considered, the probability that {who} "
                   f"{verb} {what} ranged from {prob_text(lo.p_benefit, lo.probability_draws)} "
                   f"({lo.prior.shown} prior) to {prob_text(hi.p_benefit, hi.probability_draws)} "
                   f"({hi.prior.shown} prior).")
        flagged, rest = split_conflicting(rows)
        if flagged and rest:
            lo, hi = p_benefit_extremes(rest)
            names = ", ".join(r.prior.shown for r in flagged)
            out.append(f"The data contradict {len(flagged)} of these priors ({names}; Box's "
                       f"prior-predictive check, p < 0.05); without them it ranged from "
                       f"{prob_text(lo.p_benefit, lo.probability_draws)} to "
                       f"{prob_text(hi.p_benefit, hi.probability_draws)}.")
    return out


# ---------------------------------------------------------------------------------------------
# reconstructed tables
# ---------------------------------------------------------------------------------------------


def reconstruction_text(rec, outcome: Outcome, shown: int = 10) -> str:
    """The reconstruction of one outcome: what was printed, how many tables reproduce it."""
    p = rec.printed
    lines = [
        f"{outcome.label} ({rec.outcome}), {rec.measure}",
        f"Printed: {rec.measure} {p.estimate:g} [{p.ci_low:g}, {p.ci_high:g}], k = {p.k}, "
        f"N = {p.participants if p.participants is not None else 'not printed'}; pooled as "
        f"{rec.method} (RevMan 5); each value matched to the decimals printed "
        f"({', '.join(str(d) for d in p.decimals)})",
        f"Candidate tables tested: {rec.n_candidates}",
    ]
    if rec.n_single is not None and len(rec.joint) > 1:
        lines.append(f"Consistent with this outcome alone: {rec.n_single}; with the outcomes it "
                     f"shares arms with ({', '.join(o for o in rec.joint if o != rec.outcome)})"
                     f": {rec.n_solutions}")
    else:
        lines.append(f"Consistent tables: {rec.n_solutions}")
    if rec.diagnosis:
        lines += ["", f"No table is consistent: {rec.diagnosis}."]
        return "\n".join(lines)
    lines += ["", "Cell ranges over the consistent tables (events/n):",
              f"{'study':28s} {'intervention':>16s} {'control':>16s}"]
    for r in rec.cell_ranges:
        def span(v):
            return f"{v[0]}" if v[0] == v[1] else f"{v[0]}-{v[1]}"
        lines.append(f"{r['study']:28s} {span(r['events_t']) + '/' + span(r['n_t']):>16s} "
                     f"{span(r['events_c']) + '/' + span(r['n_c']):>16s}")
    lines += ["", f"Tables (first {min(shown, len(rec.tables))} of {rec.n_solutions}), with the "
              "pooled result each gives:"]
    for t, repro in zip(rec.tables[:shown], rec.reproduces()[:shown]):
        cells = "; ".join(f"{s}: {int(a)}/{int(n1)} vs {int(c)}/{int(n2)}"
                          for s, (a, n1, c, n2) in zip(rec.studies, t))
        lines.append(f"  {cells} -> {rec.measure} {repro['estimate']:.4f} "
                     f"[{repro['ci_low']:.4f}, {repro['ci_high']:.4f}]")
    if rec.inferred:
        lines += ["", "Inferred bounds (the tables are consistent with print given these):"]
        lines += [f"  {a}" for a in rec.inferred]
    flags = rec.arm_flags()
    if flags:
        lines += ["", "Arms analysed far below their upper bound (check before use):"]
        lines += [f"  {f}" for f in flags]
    lines += ["", "These are reconstructed tables, not printed data: every one reproduces the "
              "printed numbers by construction, and fits at --level reconstructed use all of "
              "them."]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Bayes factors and model averaging
# ---------------------------------------------------------------------------------------------
