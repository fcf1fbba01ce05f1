"""Certainty of evidence stated as probabilities: a GRADE-style rating computed from the
posterior and the data by a versioned rule that is data (``models/certainty/*.toml``).

Per outcome (:func:`certainty_block`): the posterior mass beyond the MID on the side of benefit,
within it (trivial) and beyond it on the side of harm; P(a new study shows benefit); tau and
P(tau above the rule's bands); how far P(benefit) moves across the priors (with and without
those the data contradict); trials, participants and the optimal information size (OIS); the
anticipated absolute effects per 1,000 for dichotomous outcomes. Then (:func:`judge`) each GRADE
domain gets a judgement with its reason in words, and the overall certainty starts at the rule's
``start`` (high for randomised trials) and is rated down one level per step.

OIS (Guyatt et al. 2011, GRADE guidelines 6): the total sample size of one trial that detects
the MID with a two-sided test at the rule's alpha and power: dichotomous, per arm
(z_a + z_b)^2 [p0(1 - p0) + p1(1 - p1)] / (p1 - p0)^2 with p0 the pooled control risk and p1 the
risk at the MID; SMD, per arm 2 (z_a + z_b)^2 / MID^2; twice that in all.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scipy import stats

from bayes_pip import measures
from bayes_pip.bundled import bundled_path
from bayes_pip.errors import InputError

LEVELS = ("high", "moderate", "low", "very low")
STEPS = {"no": 0, "serious": 1, "very serious": 2, "extremely serious": 3}
NOT = ("not assessed", "not assessable")


def default_rule_path() -> Path:
    return bundled_path("models", "certainty", "bayes-grade-1.toml")


@dataclass(frozen=True)
class Rule:
    name: str
    version: str
    title: str
    sources: tuple
    start: str
    imprecision: dict
    inconsistency: dict
    risk_of_bias: dict
    path: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


def load_rule(path: str | Path | None = None) -> Rule:
    """The certainty rule of a TOML file (default: the shipped bayes-grade v1)."""
    path = Path(path) if path is not None else default_rule_path()
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the certainty rule ({exc.__class__.__name__})",
                         file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML ({str(exc).splitlines()[0]})", file=str(path)) from None
    need = {"imprecision": ("concentrated", "one_side", "both_sides", "ois_fraction", "alpha",
                            "power"),
            "inconsistency": ("reasonable_tau", "serious_mass", "extreme_tau", "min_trials"),
            "risk_of_bias": ("serious_share", "very_serious_share", "high", "unclear")}
    for key in ("name", "version", "start"):
        if not isinstance(spec.get(key), str):
            raise InputError(f"the certainty rule needs '{key}' (text)", file=str(path),
                             column=key)
    if spec["start"] not in LEVELS:
        raise InputError(f"start must be one of {', '.join(LEVELS)}", file=str(path),
                         column="start")
    for section, keys in need.items():
        table = spec.get(section)
        if not isinstance(table, dict) or any(k not in table for k in keys):
            missing = [k for k in keys if not isinstance(table, dict) or k not in table]
            raise InputError(f"the certainty rule's [{section}] needs {', '.join(missing)}",
                             file=str(path), column=section)
    return Rule(spec["name"], spec["version"], spec.get("title", ""),
                tuple(spec.get("sources", ())), spec["start"], dict(spec["imprecision"]),
                dict(spec["inconsistency"]), dict(spec["risk_of_bias"]), str(path))


@dataclass(frozen=True)
class Domain:
    name: str
    judgement: str     # no, serious, very serious, extremely serious, not assessed/assessable
    reason: str

    @property
    def steps(self) -> int:
        return STEPS.get(self.judgement, 0)


@dataclass
class Certainty:
    """One outcome's certainty block and rating."""

    outcome: str
    label: str
    measure: str
    level: str
    k: int
    participants: int | None
    prior: str
    mid: float | None
    p_benefit: float | None
    p_benefit_mid: float | None
    p_trivial: float | None
    p_harm_mid: float | None
    p_benefit_new_study: float | None
    tau_median: float | None
    p_tau_high: float | None
    p_tau_extreme: float | None
    prediction: tuple | None
    p_benefit_range: tuple | None           # (min, max) across the priors
    p_benefit_range_agreeing: tuple | None  # without the priors the data contradict
    ois: float | None
    ois_note: str
    control_risk: float | None
    per_1000: dict | None
    domains: list
    certainty: str
    rule: str
    review_grade: str | None
    difference: str
    statement: str
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["domains"] = [asdict(d) for d in self.domains]
        return out


# -- the numbers -----------------------------------------------------------------------------

def regions(fit) -> tuple[float | None, float | None, float | None]:
    """P(benefit beyond the MID), P(within the MID: trivial), P(harm beyond the MID) of the
    pooled effect: the fit's own P(beyond the MCID) and P(trivial), and what is left."""
    if fit.p_mcid is None or fit.p_trivial is None:
        return None, None, None
    return fit.p_mcid, fit.p_trivial, max(0.0, 1.0 - fit.p_mcid - fit.p_trivial)


def control_risk(fit) -> float | None:
    """The pooled control-arm risk of the analysed study rows (events / participants)."""
    studies = fit.dl.studies if fit.dl is not None else ()
    pairs = [(s.events_c, s.n_c) for s in studies if s.events_c is not None and s.n_c]
    if not pairs:
        return None
    return sum(e for e, _ in pairs) / sum(n for _, n in pairs)


def risk_at(p0: float, measure: str, effect: float) -> float:
    """The intervention-arm risk for control risk ``p0`` and a natural-scale effect."""
    if measure == "RR":
        return min(1.0, p0 * effect)
    if measure in ("OR", "PETO_OR"):
        odds = p0 / (1 - p0) * effect
        return odds / (1 + odds)
    if measure == "RD":
        return min(1.0, max(0.0, p0 + effect))
    raise ValueError(measure)


def optimal_information_size(measure: str, mid: float | None, p0: float | None,
                             rule: Rule) -> tuple[float | None, str]:
    """OIS (total participants) and how it was computed, or None and why not."""
    if mid is None:
        return None, "no MID: the OIS needs one"
    z = stats.norm.ppf(1 - rule.imprecision["alpha"] / 2) + stats.norm.ppf(
        rule.imprecision["power"])
    if measure == "SMD":
        n = 2 * z**2 / mid**2
        return 2 * math.ceil(n), (f"2 x 2 (z_a + z_b)^2 / MID^2 with MID {mid:g}, alpha "
                                  f"{rule.imprecision['alpha']:g}, power "
                                  f"{rule.imprecision['power']:g}")
    if measure in ("RR", "OR", "PETO_OR", "RD"):
        if p0 is None or not 0 < p0 < 1:
            return None, "no control-arm risk in the data (published pooled result only)"
        p1 = risk_at(p0, measure, mid)
        if p1 == p0:
            return None, "the MID gives no change in risk"
        n = z**2 * (p0 * (1 - p0) + p1 * (1 - p1)) / (p1 - p0) ** 2
        return 2 * math.ceil(n), (f"2 x (z_a + z_b)^2 [p0(1-p0) + p1(1-p1)] / (p1-p0)^2 with "
                                  f"control risk p0 {p0:.3f} and p1 {p1:.3f} at the MID")
    return None, f"not defined here for {measure} (needs an SD)"


# -- the judgements --------------------------------------------------------------------------

def judge_imprecision(p_good, p_trivial, p_bad, p_benefit, p_harm, participants, ois,
                      rule: Rule) -> Domain:
    r = rule.imprecision
    if p_good is None:
        top = max(p_benefit or 0.0, p_harm or 0.0)
        if top >= r["one_side"]:
            return Domain("imprecision", "serious", f"no MID to judge the size against; the "
                          f"direction is settled (P = {top:.3f})")
        return Domain("imprecision", "very serious", "no MID to judge the size against, and "
                      f"the direction is not settled (P(benefit) {p_benefit:.3f})")
    masses = {"benefit beyond the MID": p_good, "a trivial effect": p_trivial,
              "harm beyond the MID": p_bad}
    where, top = max(masses.items(), key=lambda kv: kv[1])
    short = ois is not None and participants is not None and \
        participants < r["ois_fraction"] * ois
    below = ois is not None and participants is not None and participants < ois
    if p_good >= r["both_sides"] and p_bad >= r["both_sides"]:
        judgement = "very serious"
        reason = (f"the posterior reaches important benefit ({p_good:.3f}) and important "
                  f"harm ({p_bad:.3f})")
    elif top >= r["concentrated"]:
        judgement = "no"
        reason = f"{top:.3f} of the posterior is on {where}"
    elif max(p_benefit or 0.0, p_harm or 0.0) >= r["one_side"]:
        judgement = "serious"
        reason = (f"the direction is settled (P {max(p_benefit or 0, p_harm or 0):.3f}) but not "
                  f"the size: P(beyond the MID) {max(p_good, p_bad):.3f}, P(trivial) "
                  f"{p_trivial:.3f}")
    else:
        judgement = "serious" if top >= 0.5 else "very serious"
        reason = (f"no region holds {r['concentrated']:g} of the posterior (benefit beyond the "
                  f"MID {p_good:.3f}, trivial {p_trivial:.3f}, harm beyond the MID {p_bad:.3f})")
    if short or (judgement == "no" and below):   # one level more for too little information
        order = list(STEPS)
        judgement = order[min(3, order.index(judgement) + 1)]
        reason += (f"; {participants} participants, {participants / ois:.0%} of the optimal "
                   f"information size {ois:,.0f}")
    return Domain("imprecision", judgement, reason)


def judge_inconsistency(k, p_tau_high, p_tau_extreme, prediction, mid_band,
                        level, rule: Rule) -> Domain:
    r = rule.inconsistency
    if level == "summary":
        return Domain("inconsistency", "not assessable", "published pooled result only: "
                      "heterogeneity is not re-estimated")
    if k < r["min_trials"] or p_tau_high is None:
        return Domain("inconsistency", "not assessable", f"{k} trial: no heterogeneity to see")
    both = (prediction is not None and mid_band is not None
            and prediction[0] < mid_band[0] and prediction[1] > mid_band[1])
    prior_note = f"; with {k} trials tau rests largely on its prior" if k < 3 else ""
    if p_tau_extreme >= r["serious_mass"]:
        return Domain("inconsistency", "very serious",
                      f"P(tau > {r['extreme_tau']:g}) = {p_tau_extreme:.3f}{prior_note}")
    if p_tau_high >= r["serious_mass"] or both:
        why = (f"P(tau > {r['reasonable_tau']:g}) = {p_tau_high:.3f}"
               if p_tau_high >= r["serious_mass"] else
               "the 95% prediction interval reaches beyond the MID on both sides")
        return Domain("inconsistency", "serious", why + prior_note)
    return Domain("inconsistency", "no", f"P(tau > {r['reasonable_tau']:g}) = "
                  f"{p_tau_high:.3f}{prior_note}")


def judge_risk_of_bias(fit, trials, rule: Rule) -> Domain:
    from bayes_pip.design import rob_columns, trial_names

    r = rule.risk_of_bias
    if fit.level == "summary":
        return Domain("risk of bias", "not assessed", "published pooled result only: the "
                      "trials behind it are not itemised per outcome")
    columns = rob_columns(trials) if trials is not None else []
    if not columns:
        return Domain("risk of bias", "not assessed", "no risk-of-bias columns in trials.csv")
    studies = fit.dl.studies if fit.dl is not None else ()
    total = sum(s.weight for s in studies) or 1.0
    high = unclear = 0.0
    missing = []
    for s in studies:
        rows = trials[trials["study"].isin(trial_names(s.study))]
        if rows.empty:
            missing.append(s.study)
            continue
        values = [str(v).strip().lower() for v in rows.iloc[0][columns]]
        if any(v in r["high"] for v in values):
            high += s.weight / total
        elif any(v in r["unclear"] or v == "" for v in values):
            unclear += s.weight / total
    if missing:
        return Domain("risk of bias", "not assessed", f"no trials.csv row for "
                      f"{', '.join(missing[:3])}")
    reason = (f"studies at high risk carry {high:.0%} of the weight, unclear {unclear:.0%} "
              f"({len(columns)} domain{'s' if len(columns) > 1 else ''})")
    if high >= r["very_serious_share"]:
        return Domain("risk of bias", "very serious", reason)
    if high >= r["serious_share"] or high + unclear >= r["very_serious_share"]:
        return Domain("risk of bias", "serious", reason)
    return Domain("risk of bias", "no", reason)


def judged_by_metadata(metadata: dict, outcome: str, domain: str) -> Domain:
    """indirectness / publication bias: a judgement the data set states (dataset.toml,
    [certainty.<domain>] or [certainty.<outcome>.<domain>] with judgement, reason, source),
    never invented."""
    table = metadata.get("certainty") or {}
    key = domain.replace(" ", "_")
    spec = (table.get(outcome) or {}).get(key) or table.get(key)
    if not isinstance(spec, dict) or spec.get("judgement") not in STEPS:
        return Domain(domain, "not assessed", "no judgement with a source in the data set")
    return Domain(domain, spec["judgement"],
                  f"{spec.get('reason', '')} (source: {spec.get('source', 'not given')})")


def overall(start: str, domains: list) -> str:
    steps = sum(d.steps for d in domains)
    return LEVELS[min(len(LEVELS) - 1, LEVELS.index(start) + steps)]


GRADE_WORDS = {"high": "{who} {verbs} {what}",
               "moderate": "{who} probably {verbs} {what}",
               "low": "{who} may {verb} {what}",
               "very low": "The evidence is very uncertain about the effect of {who} on {what}"}
VERBS = {"up": ("increases", "increase"), "down": ("reduces", "reduce"),
         "none": ("makes little or no difference to", "make little or no difference to")}


def statement(fit, certainty: str, p_trivial) -> str:
    """The discussion sentence in GRADE's words ('Low-certainty evidence suggests ...')."""
    who = fit.intervention
    what = fit.phrase or f"the outcome '{fit.label}'"
    if certainty == "very low":
        text = GRADE_WORDS["very low"].format(who=who, what=what)
    else:
        if p_trivial is not None and p_trivial >= 0.5:
            verbs, verb = VERBS["none"]
        else:
            up = fit.effect.median > measures.get(fit.measure).null
            verbs, verb = VERBS["up" if up else "down"]
        text = (f"{certainty.capitalize()}-certainty evidence suggests that "
                + GRADE_WORDS[certainty].format(who=who, verbs=verbs, verb=verb, what=what))
    return text + "."


def difference_text(ours: str, review: str | None, domains: list) -> str:
    if not review:
        return "the review printed no rating for this outcome"
    review = review.strip().lower()
    if review == ours:
        return "same rating as the review"
    not_here = [d.name for d in domains if d.judgement in NOT]
    down = [f"{d.name} ({d.judgement})" for d in domains if d.steps]
    if review not in LEVELS:
        return f"the review's rating '{review}' is not a GRADE level"
    if LEVELS.index(ours) < LEVELS.index(review):
        return (f"higher than the review's {review}: "
                + (f"{', '.join(not_here)} could not be assessed here from the data, while the "
                   "review could judge them" if not_here else
                   "the posterior is more precise than the review's interval"))
    return (f"lower than the review's {review}: rated down here for {', '.join(down)}"
            if down else f"lower than the review's {review}")


def certainty_block(fits: list, trials=None, metadata: dict | None = None,
                    rule: Rule | None = None) -> Certainty:
    """The certainty block of one outcome from its fits (``fits[0]`` the main prior)."""
    from bayes_pip.summarise import p_benefit_extremes, split_conflicting

    rule = rule or load_rule()
    fit = fits[0]
    post = fit.posterior
    m = measures.get(fit.measure)
    mid = fit.mcid
    p_good, p_triv, p_bad = regions(fit)
    p_tau_high = p_tau_extreme = None
    if fit.tau is not None and post is not None and fit.level != "summary":
        p_tau_high = float(post.sf("tau", rule.inconsistency["reasonable_tau"]))
        p_tau_extreme = float(post.sf("tau", rule.inconsistency["extreme_tau"]))
    band = None   # the MID on either side of no effect, natural scale
    if mid is not None:
        band = tuple(sorted((mid, float(m.to_natural(-m.to_analysis(mid))))))
    prediction = ((fit.prediction.ci_low, fit.prediction.ci_high)
                  if fit.prediction is not None else None)
    conflicting, agreeing = split_conflicting(fits)
    lo, hi = p_benefit_extremes(fits)
    rng = (lo.p_benefit, hi.p_benefit)
    rng_ok = None
    if conflicting and agreeing:
        a, b = p_benefit_extremes(agreeing)
        rng_ok = (a.p_benefit, b.p_benefit)
    p0 = control_risk(fit) if m.is_dichotomous else None
    ois, ois_note = optimal_information_size(fit.measure, mid, p0, rule)
    per_1000 = None
    if p0 is not None and fit.measure in ("RR", "OR", "RD"):
        e = fit.effect
        per_1000 = {"control": round(1000 * p0),
                    **{key: round(1000 * risk_at(p0, fit.measure, x)) for key, x in
                       (("intervention", e.median), ("intervention_low", e.ci_low),
                        ("intervention_high", e.ci_high))},
                    # an RR times the control risk beyond 1 is shown as 1,000 per 1,000
                    "capped": bool(fit.measure == "RR" and p0 * e.ci_high > 1)}
    domains = [judge_risk_of_bias(fit, trials, rule),
               judge_inconsistency(fit.k, p_tau_high, p_tau_extreme, prediction, band,
                                   fit.level, rule),
               judged_by_metadata(metadata or {}, fit.outcome, "indirectness"),
               judge_imprecision(p_good, p_triv, p_bad, fit.p_benefit, fit.p_harm,
                                 fit.participants, ois, rule),
               judged_by_metadata(metadata or {}, fit.outcome, "publication bias")]
    rating = overall(rule.start, domains)
    review = fit.published.grade if fit.published is not None else None
    notes = []
    if fit.level == "reconstructed":
        notes.append("rests on reconstructed tables (not printed data)")
    if fit.level == "summary":
        notes.append("a re-analysis of the published pooled estimate")
    return Certainty(
        outcome=fit.outcome, label=fit.label, measure=fit.measure, level=fit.level, k=fit.k,
        participants=fit.participants, prior=fit.prior.name, mid=mid, p_benefit=fit.p_benefit,
        p_benefit_mid=p_good, p_trivial=p_triv, p_harm_mid=p_bad,
        p_benefit_new_study=fit.p_benefit_new_study,
        tau_median=fit.tau.median if fit.tau is not None else None,
        p_tau_high=p_tau_high, p_tau_extreme=p_tau_extreme, prediction=prediction,
        p_benefit_range=rng, p_benefit_range_agreeing=rng_ok, ois=ois, ois_note=ois_note,
        control_risk=p0, per_1000=per_1000, domains=domains, certainty=rating,
        rule=rule.label, review_grade=review, difference=difference_text(rating, review, domains),
        statement=statement(fit, rating, p_triv), notes=notes)
