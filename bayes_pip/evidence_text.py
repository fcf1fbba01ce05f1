"""Words for the evidence checks: Bayes factors and model averaging, leave-one-out influence,
Egger's test and the LOO ranking of prior sets."""

from __future__ import annotations

from bayes_pip import measures
from bayes_pip.engines import evidence
from bayes_pip.formats import equals, num, num2, prob_text


def bf_text(log_bf: float) -> str:
    """A Bayes factor from its natural log: 3 significant digits (large ones in scientific
    notation); beyond 10^+-300, where the number itself would overflow, the bound and the log
    ("> 10^300 (log BF = 883)")."""
    value = evidence.bf_value(log_bf)
    if value is not None:
        return f"{value:.3g}"
    return f"{'>' if log_bf > 0 else '<'} 10^{300 if log_bf > 0 else -300} (log BF = {log_bf:.0f})"


def bma_text(b) -> str:
    """`bma` for the terminal: the four models, the Bayes factors, the averaged effect."""
    lines = [f"{b.label} ({b.outcome}), {b.measure}",
             "Data:   " + "; ".join([b.data_status] + ([f"k = {b.k}"] if "k = " not in
                                                           b.data_status else [])
                                        + [f"N = {b.participants}"]),
             "Prior:  " + (f"{b.prior.mu.describe()} (summary level: no prior on tau is used)"
                           if b.level == "summary"
                           else f"{b.prior.name}: {b.prior.describe()}"),
             "Method: exact marginal likelihoods by quadrature (no Monte Carlo error"
             + (f"; {b.likelihood} likelihood" if b.likelihood else "")
             + "); equal prior model probabilities", "",
             f"{'model':48s} {'log p(y|model)':>15s} {'prior':>6s} {'posterior':>10s}"]
    for m in b.models:
        lines.append(f"{m.title:48s} {m.log_marginal_likelihood:15.4f} "
                     f"{m.prior_probability:6.3f} {m.posterior_probability:10.4f}")
    lines.append("")
    if b.bf_effect is not None:
        lines.append(f"BF10 (an average effect, random effects):  {bf_text(b.log_bf_effect)}")
        lines.append(f"BF (heterogeneity, tau > 0 vs tau = 0):    {bf_text(b.log_bf_heterogeneity)}")
    lines.append(f"BF10 (an effect, fixed effect):             {bf_text(b.log_bf_effect_fixed)}")
    g = b.effect_given_effect
    lines += ["", f"BF10 for an effect by the width of the prior on the pooled effect: "
                  f"{bf_width_text(b)}" if len(b.bf_by_width) > 1 else "",
              f"Model-averaged: P(no effect, {b.measure} = "
              f"{measures.get(b.measure).null:g}) {equals(prob_text(b.p_null))}; "
              f"P(benefit) {equals(prob_text(b.p_benefit))}"
              + (f" (random-effects model alone: {prob_text(b.p_benefit_random_effects)})"
                 if b.p_benefit_random_effects is not None else ""),
              f"Given an effect: {b.measure} median {num(g.median)} [95% CrI {num(g.ci_low)}, "
              f"{num(g.ci_high)}] (the model-averaged distribution has a point mass at the "
              "null, so it has no single interval to report)"]
    lines += [f"Note: {n}" for n in b.notes]
    lines.append("Note: a Bayes factor for an effect depends on the width of the prior on the "
                 "pooled effect (a wider prior favours no effect: Lindley's paradox); it answers "
                 "whether there is any effect, not which direction an effect takes, so it can "
                 "favour no effect while P(benefit) under the same prior is high.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# robustness
# ---------------------------------------------------------------------------------------------


def influence_text(r) -> str:
    """`influence` for the terminal: leave-one-out (DL and Bayesian), influence diagnostics."""
    m = r.measure
    lines = [f"{r.label} ({r.outcome}), {m}; k = {r.k}; {r.data_status}",
             f"Bayesian columns: exact engine, prior {r.prior.name} ({r.prior.describe()})", "",
             "Leave one study out",
             f"{'omitted':24s} {'DL ' + m + ' [95% CI]':>24s} {'tau^2':>7s} {'I^2':>5s} "
             f"{'Bayes ' + m + ' [95% CrI]':>26s} {'tau':>5s} {'P(benefit)':>10s}"]
    for x in (r.full, *r.leave_one_out):
        dl_ci = f"{num2(x.estimate)} [{num2(x.ci_low)}, {num2(x.ci_high)}]"
        b_ci = f"{num2(x.bayes_median)} [{num2(x.bayes_ci_low)}, {num2(x.bayes_ci_high)}]"
        name = "(none: all studies)" if x is r.full else x.study
        lines.append(f"{name:24s} {dl_ci:>24s} {x.tau2:7.3f} {x.i2:4.0f}% {b_ci:>26s} "
                     f"{x.bayes_tau_median:5.2f} {prob_text(x.p_benefit):>10s}")
    lines += ["", "Influence on the DerSimonian-Laird fit (Viechtbauer & Cheung 2010; metafor "
              "influence())",
              f"{'study':24s} {'rstudent':>8s} {'dffits':>7s} {'cook.d':>7s} {'cov.r':>6s} "
              f"{'tau2.del':>8s} {'QE.del':>7s} {'hat':>5s} {'weight':>6s} {'dfbetas':>7s}"]
    for x in r.influence:
        lines.append(f"{x.study:24s} {x.rstudent:8.3f} {x.dffits:7.3f} {x.cook_d:7.3f} "
                     f"{x.cov_r:6.3f} {x.tau2_del:8.4f} {x.qe_del:7.3f} {x.hat:5.3f} "
                     f"{x.weight:5.1f}% {x.dfbetas:7.3f}{' *' if x.influential else ''}")
    flagged = [x.study for x in r.influence if x.influential]
    lines.append("* influential by metafor's criteria: " + (", ".join(flagged) if flagged
                                                           else "none"))
    lines += [f"Note: {n}" for n in r.notes]
    return "\n".join(lines)


def egger_text(e) -> str:
    m = e.measure
    return "\n".join([
        f"{e.label} ({e.outcome}), {m}; k = {e.k}",
        "Egger's regression test for funnel-plot asymmetry (weighted regression of the "
        f"{measures.get(m).analysis_label} on its standard error, weights 1/v):",
        f"  slope {e.slope:.4f}, t = {e.t:.3f} (df = {e.df}), p = {e.p:.4g}",
        f"  limit estimate (standard error -> 0): {m} {num2(e.limit)} "
        f"[{num2(e.limit_ci_low)}, {num2(e.limit_ci_high)}]",
        *(f"Note: {n}" for n in e.notes)])


def loo_text(rows, k: int) -> str:
    """The PSIS-LOO ranking of prior sets, with what it can and cannot say."""
    lines = ["", "Leave-one-study-out predictive accuracy (PSIS-LOO, ArviZ; best first)",
             f"{'prior':18s} {'elpd_loo':>9s} {'SE':>6s} {'p_loo':>6s} {'diff':>6s} "
             f"{'diff SE':>7s} {'max Pareto k':>12s}"]
    for r in rows:
        warn = f"  k > 0.7: {', '.join(r.high_pareto_k)}" if r.high_pareto_k else ""
        lines.append(f"{r.prior:18s} {r.elpd_loo:9.2f} {r.se:6.2f} {r.p_loo:6.2f} "
                     f"{r.elpd_diff:6.2f} {r.elpd_diff_se:7.2f} {r.pareto_k_max:12.2f}{warn}")
    if k < 5:
        lines.append(f"Note: with {k} studies each left-out study is a large part of the data; "
                     "differences in elpd are within their SE and mostly reflect the tails of "
                     "the priors. Do not choose a prior by this ranking.")
    else:
        lines.append("Note: an elpd difference smaller than about twice its SE (diff SE) does "
                     "not distinguish the priors.")
    if any(r.high_pareto_k for r in rows):
        lines.append("Note: Pareto k > 0.7 marks studies whose PSIS estimate is unreliable "
                     "(an exact refit without the study would be needed).")
    return "\n".join(lines)


def bma_prior_text(b) -> str:
    """'the N(0, 4^2) prior on the pooled log RR (prior set halfnormal-0.5)'; at summary level
    without the set's name (its prior on tau is not used)."""
    text = f"the {b.prior.mu_short} prior on the pooled {measures.get(b.measure).analysis_label}"
    return text if b.level == "summary" else f"{text} (prior set {b.prior.name})"


def bf_width_text(b) -> str:
    """'sceptical width (SD 0.175): 1.46; SD 1: 0.710; ...': the Bayes factor for an effect
    under each width of a centred prior on the pooled effect."""
    parts = []
    for w in b.bf_by_width:
        what = (f"{w.label} (N({w.mean:.3g}, {w.sd:.3g}^2))" if w.label == "the prior used"
                else f"{w.label} (SD {w.sd:.3g})" if w.label == "sceptical width"
                else w.label)
        parts.append(f"{what}: {bf_text(w.log_bf_effect)}")
    return "; ".join(parts)


def bma_sentence(b) -> str:
    """The evidence for an effect (and for heterogeneity), placed so that it cannot be read as
    contradicting P(benefit): what a Bayes factor asks, the prior on the pooled effect it
    depends on, how it moves with that prior's width, and the model-averaged result as
    P(no effect), P(benefit) and the effect given that there is one (numbers from ``b``)."""
    null = f"{b.measure} = {measures.get(b.measure).null:g}"
    out = [f"A Bayes factor answers a different question from the posterior probability of "
           f"benefit: whether the data are better predicted by no effect at all ({null}) or by "
           f"an effect of the sizes the prior on the pooled effect allows, so it depends on "
           f"that prior's width (a wider prior favours no effect)."]
    if b.bf_effect is not None or b.log_bf_effect is not None:
        out.append(f"Under {bma_prior_text(b)}, the data were {bf_text(b.log_bf_effect)} times "
                   f"as likely under a random-effects model with an average effect as under one "
                   f"without, and {bf_text(b.log_bf_heterogeneity)} times as likely with "
                   "between-study heterogeneity as without.")
    else:
        out.append(f"Under {bma_prior_text(b)}, the data were "
                   f"{bf_text(b.log_bf_effect_fixed)} times as likely with an effect as without "
                   "(fixed effect only: heterogeneity cannot be assessed here).")
    if len(b.bf_by_width) > 1:
        out.append(f"By the width of a centred normal prior on the pooled effect, the Bayes "
                   f"factor for an effect was: {bf_width_text(b)}.")
    if b.p_null is not None:
        g = b.effect_given_effect
        out.append(f"Averaged over the models with equal prior probabilities, the probability "
                   f"of no effect was {prob_text(b.p_null)} and of a benefit "
                   f"{prob_text(b.p_benefit)}; given that there is an effect, the {b.measure} "
                   f"was {num(g.median)} (95% CrI {num(g.ci_low)} to {num(g.ci_high)}).")
    return " ".join(out)
