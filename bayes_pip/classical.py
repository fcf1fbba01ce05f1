"""The classical reference analysis of one outcome: effect sizes, DL pooling, the review's result.

Stage order: data (validated rows) -> effects (y, v) -> dl (pooled) -> this record -> CLI/report.
The record is inert: printing and reporting read it and never refit.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from bayes_pip import dl as dlcore
from bayes_pip.data import Dataset, Outcome, Published, Resolved
from bayes_pip.tables import printed_decimals as decimals_printed
from bayes_pip.effects import EffectSizes, effect_sizes
from bayes_pip.errors import InputError
from bayes_pip.record import METHOD_LABELS, Agreement, Bounds, DLRecord, DLStudy

METHODS = ("DL", "REML", "PM", "MH-random", "IV-fixed", "MH-fixed", "Peto")
FIXED_METHODS = ("IV-fixed", "MH-fixed", "Peto")
CI_METHODS = ("wald", "hksj")
PI_DISTRIBUTIONS = {"t": "t(k-2) (Higgins, Thompson & Spiegelhalter 2009)",
                    "z": "normal (metafor predict() with a z test)"}
PI_HKSJ = "t(k-1) with the Hartung-Knapp SE (metafor predict() of a test='knha' fit)"


@dataclass(frozen=True)
class ClassicalAnalysis:
    """DL (or M-H) analysis of one outcome with the per-study effects it pooled."""

    outcome: Outcome
    effects: EffectSizes
    pooled: dlcore.PooledResult
    prediction: tuple[float, float]
    published: Published | None
    provenance: tuple[str, ...]
    ci_method: str = "wald"
    pi_distribution: str = "t"
    adjustments: tuple[str, ...] = ()
    data_status: str | None = None   # reconstructed tables: what they are (None: study rows)
    pi_asked: bool = True   # False: --pi not given, so a knha fit uses metafor's knha interval

    def record(self) -> DLRecord:
        """The typed record: natural-scale estimate beside analysis-scale mu, se, tau2."""
        to_natural = self.outcome.scale.to_natural
        p = self.pooled
        prediction = None
        if not math.isnan(self.prediction[0]):
            prediction = Bounds(float(to_natural(self.prediction[0])),
                                float(to_natural(self.prediction[1])))
        es = self.effects

        def count(values, i):
            return None if values is None or not np.isfinite(values[i]) else int(values[i])

        studies = tuple(
            DLStudy(study=s, estimate=float(to_natural(y)),
                    ci_low=float(to_natural(y - dlcore.Z_975 * math.sqrt(v))),
                    ci_high=float(to_natural(y + dlcore.Z_975 * math.sqrt(v))),
                    y=float(y), se=math.sqrt(v), weight=float(w), corrected=bool(c),
                    provenance=prov, n_t=count(es.n_t, i), n_c=count(es.n_c, i),
                    events_t=count(es.events_t, i), events_c=count(es.events_c, i))
            for i, (s, y, v, w, c, prov) in enumerate(zip(es.study, es.y, es.v, self.weights(),
                                                          es.corrected, self.provenance)))
        est = to_natural(float(p.mu))
        ci_low = float(to_natural(float(p.ci_low)))
        ci_high = float(to_natural(float(p.ci_high)))
        extra = {}
        random = p.method not in FIXED_METHODS
        es = self.effects
        if random:
            extra["tau2_method"] = "DL" if p.method == "MH-random" else p.method
            if es.k > 1:
                low, high = dlcore.q_profile_tau2_ci(es.y, es.v)
                extra.update(tau2_ci_low=float(low), tau2_ci_high=float(high),
                             i2_ci_low=float(dlcore.i2_from_tau2(low, es.v)),
                             i2_ci_high=float(dlcore.i2_from_tau2(high, es.v)))
            pi = dlcore.prediction_interval(p, self.pi_distribution)
            if not math.isnan(float(pi[0])):
                extra.update(pi_low=float(to_natural(float(pi[0]))),
                             pi_high=float(to_natural(float(pi[1]))))
            extra["pi_distribution"] = PI_DISTRIBUTIONS[self.pi_distribution]
            if self.ci_method == "hksj" and es.k > 1:
                se_hk, low, high, p_hk = dlcore.hartung_knapp(p, es.y, es.v)
                knha_pi = not self.pi_asked
                ci_low = float(to_natural(float(low)))
                ci_high = float(to_natural(float(high)))
                extra.update(ci_method="hksj", t_hksj=float(p.mu / se_hk), p_hksj=float(p_hk))
            if self.ci_method == "hksj" and es.k > 1 and knha_pi:
                # the prediction interval of a Knapp-Hartung fit, as metafor's predict() of a
                # test="knha" model gives it: t(k-1) and the Hartung-Knapp SE (unless --pi asks
                # for another)
                crit = float(special.stdtrit(es.k - 1, 0.975))
                half = crit * math.sqrt(float(se_hk) ** 2 + float(p.tau2))
                extra.update(pi_low=float(to_natural(float(p.mu) - half)),
                             pi_high=float(to_natural(float(p.mu) + half)),
                             pi_distribution=PI_HKSJ)
        agreement = None
        if self.published is not None:
            agreement = published_agreement(self.published, est, ci_low, ci_high, int(p.k),
                                            p.method, review_method(self.outcome))
        return DLRecord(
            outcome=self.outcome.outcome, measure=self.outcome.measure, method=p.method,
            k=int(p.k), participants=self.effects.participants, estimate=est, ci_low=ci_low,
            ci_high=ci_high, mu=float(p.mu), se=float(p.se), z=float(p.z), p=float(p.p),
            tau2=float(p.tau2), tau=math.sqrt(float(p.tau2)), q=float(p.q), df=int(p.df),
            i2=float(p.i2), prediction=prediction, excluded=tuple(self.effects.excluded),
            studies=studies, published=agreement,
            adjustments=tuple(self.adjustments) or None, data_status=self.data_status, **extra)

    def to_dict(self) -> dict:
        """The `dl --json` object."""
        return self.record().to_dict()

    def weights(self) -> np.ndarray:
        """Percentage weights of each study in the pooled estimate (as RevMan prints them).

        Mantel-Haenszel fixed effect: OR w_i = b_i c_i / N_i, RR w_i = c_i n1_i / N_i, RD
        w_i = n1_i n2_i / N_i (Deeks & Higgins 2010); otherwise inverse-variance weights
        1/(v_i + tau^2) (Peto: V_i).
        """
        es = self.effects
        if self.pooled.method == "MH-fixed":
            total = es.n_t + es.n_c
            if es.measure == "OR":
                w = (es.n_t - es.events_t) * es.events_c / total
            elif es.measure == "RD":
                w = es.n_t * es.n_c / total
            else:
                w = es.events_c * es.n_t / total
        else:
            w = 1.0 / (es.v + float(self.pooled.tau2))
        return 100 * w / w.sum()


def printed_decimals(*values: float) -> int:
    """Decimals the most precise of several published values was printed with."""
    return max((decimals_printed(x) for x in values), default=0)


def published_agreement(published: Published, estimate: float, ci_low: float, ci_high: float,
                        k: int, method: str | None = None,
                        review_method: str | None = None) -> Agreement:
    """Compare the classical result with the review's printed one, to the printed precision.
    ``review_method``: the method the review names (an imported RevMan file), so that a method
    difference is never blamed on the data."""
    places = min(printed_decimals(published.estimate, published.ci_low, published.ci_high), 10)
    ours = [round(x, places) for x in (estimate, ci_low, ci_high)]
    theirs = [published.estimate, published.ci_low, published.ci_high]
    reproduced = all(abs(a - b) < 0.5 * 10 ** -places + 1e-12 for a, b in zip(ours, theirs))
    if reproduced:
        verdict = f"reproduces the published result to {places} decimals"
    elif k < published.k:
        verdict = (f"does not reproduce the published result: {k} of the {published.k} "
                   "studies the review pooled have study-level data here")
    elif review_method and method and review_method != method:
        verdict = (f"does not reproduce the published result: pooled here by "
                   f"{METHOD_LABELS.get(method, method)}, the review pooled by "
                   f"{METHOD_LABELS.get(review_method, review_method)} (`dl --method file` "
                   "pools as the review did)")
    else:
        verdict = ("does not reproduce the published result with the same number of studies: "
                   "check the extracted data and the review's analysis method")
    return Agreement(published.estimate, published.ci_low, published.ci_high, published.k,
                     published.participants, published.model, published.grade, published.source,
                     reproduced, verdict)


def review_method(outcome: Outcome) -> str | None:
    """The method the review names (outcomes.csv method and model), or None."""
    try:
        return method_from_file(outcome) if outcome.method else None
    except InputError:
        return None


def method_from_file(outcome: Outcome) -> str:
    """The pooling method an imported RevMan file names: M-H or inverse variance, fixed or random
    (RevMan's inverse-variance random effects is DerSimonian-Laird)."""
    method, model = outcome.method.upper(), outcome.model.lower()
    if not method:
        raise InputError(f"outcome '{outcome.outcome}' names no analysis method (the method and "
                         "model columns of outcomes.csv); choose --method")
    table = {("MH", "fixed"): "MH-fixed", ("MH", "random"): "MH-random",
             ("IV", "fixed"): "IV-fixed", ("IV", "random"): "DL", ("PETO", "fixed"): "Peto"}
    if (method, model) not in table:
        raise InputError(f"outcome '{outcome.outcome}': method {method} {model} is not "
                         "supported (supported: MH or IV, fixed or random; Peto fixed)")
    return table[(method, model)]


def check_effects(es: EffectSizes, outcome_id: str, file: str) -> None:
    """Every derived effect and variance must be usable before any engine runs: finite, the
    variance positive, and its inverse and the study's Q contribution finite."""
    with np.errstate(all="ignore"):
        ok = (np.isfinite(es.y) & np.isfinite(es.v) & (es.v > 0) & np.isfinite(1 / es.v)
              & np.isfinite(es.y**2 / es.v))
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise InputError(f"outcome '{outcome_id}', study '{es.study[i]}': the {es.measure} "
                         f"effect ({es.y[i]:.3g}) or its variance ({es.v[i]:.3g}) is not usable "
                         "(it must be finite with a finite, positive variance); check that "
                         "study's means, SDs and counts", file=file)


def classical_analysis(dataset: Dataset, outcome_id: str, method: str | None = None,
                       ci: str = "wald", pi: str | None = None,
                       level: str = "auto") -> ClassicalAnalysis:
    """Effect sizes and pooled result of one outcome at the level `fit` uses (``level`` auto,
    study or reconstructed): its study rows, or its reconstructed table. ``method`` None: DL for
    study rows, the review's own method for a reconstructed table (the one its tables were
    reconstructed under). A summary-level outcome has nothing to pool: the error says what can
    be run instead."""
    resolved = dataset.resolve(outcome_id, level=level)
    if resolved.level == "summary":
        p, k = resolved.published, resolved.status.k_studies
        rows = (f"; `dl {outcome_id} --level study` pools the {k} of its {p.k} studies that "
                "have study rows" if k else "")
        raise InputError(
            f"outcome '{outcome_id}' has only its published pooled result ({resolved.outcome.measure} "
            f"{p.estimate:g} [{p.ci_low:g}, {p.ci_high:g}], k = {p.k}), no study rows to pool: "
            f"`fit {outcome_id}` re-analyses that estimate{rows}",
            file=str(dataset.directory / "published.csv"))
    if resolved.level != "reconstructed":
        return classical_from(resolved, method or review_method(resolved.outcome) or "DL", ci,
                              pi)
    rec = resolved.reconstruction
    analysis = classical_from(resolved.with_rows(resolved.table_rows()[0]), method or rec.method,
                              ci, pi)
    status = resolved.status.description
    if method is None:
        status += (f"; pooled as the review did ({rec.method}), so agreement with the published "
                   "result holds by construction")
    if rec.n_solutions > 1:
        status += (f"; the first of the {rec.n_solutions} tables is pooled here (`reconstruct "
                   f"{outcome_id}` lists them all)")
    return dataclasses.replace(analysis, data_status=status)


def classical_from(resolved: Resolved, method: str = "DL", ci: str = "wald",
                   pi: str | None = None) -> ClassicalAnalysis:
    """Effect sizes and pooled result of a resolved outcome's study rows.

    ``method``: DL, REML, PM (tau^2 estimators, inverse-variance random effects), MH-random
    (RevMan), IV-fixed, MH-fixed or file; ``ci``: wald or hksj (Hartung-Knapp-Sidik-Jonkman,
    t(k-1), variance factor not truncated: metafor test="knha"); ``pi``: t (t(k-2), default) or
    z for the prediction interval."""
    outcome = resolved.outcome
    outcome_id = outcome.outcome
    if method == "file":
        method = method_from_file(outcome)
    rows = resolved.rows
    if rows.empty:
        raise InputError(f"outcome '{outcome_id}' has no study rows to pool",
                         file=resolved.studies_file)
    with np.errstate(all="ignore"):  # overflow or 0/0 is caught by check_effects, by study
        es = effect_sizes(rows, outcome.scale)
    check_effects(es, outcome_id, resolved.studies_file)
    if es.k == 0:
        raise InputError(f"outcome '{outcome_id}': every study has no events (or only events) "
                         f"in both arms, nothing to pool ({', '.join(es.excluded)})",
                         file=resolved.studies_file)
    allowed = outcome.scale.methods
    if allowed is not None and method not in allowed:
        if method != "DL":  # DL is the default: a measure with its own method uses that one
            raise InputError(f"outcome '{outcome_id}' is {outcome.measure}, pooled by "
                             f"{' or '.join(allowed)} only (RevMan); not --method {method}")
        method = allowed[0]
    if method == "Peto" and outcome.measure != "PETO_OR":
        raise InputError(f"--method Peto pools Peto odds ratios (measure PETO_OR); "
                         f"'{outcome_id}' is {outcome.measure}")
    if method in ("MH-fixed", "MH-random") and not outcome.scale.mantel_haenszel:
        raise InputError(f"--method {method} needs an RR, OR or RD outcome, "
                         f"'{outcome_id}' is {outcome.measure}")
    asked = pi is not None
    pi = pi or "t"
    if ci not in CI_METHODS or pi not in PI_DISTRIBUTIONS:
        raise InputError(f"--ci must be one of {', '.join(CI_METHODS)} and --pi one of "
                         f"{', '.join(PI_DISTRIBUTIONS)}")
    if ci == "hksj" and method in FIXED_METHODS:
        raise InputError("--ci hksj applies to random-effects methods (DL, REML, PM, MH-random)")
    if method in ("DL", "REML", "PM"):
        try:
            pooled = dlcore.random_effects(es.y, es.v, method=method)
        except dlcore.NotConverged as exc:
            raise InputError(f"outcome '{outcome_id}': {exc}; try --method DL") from None
    elif method == "IV-fixed":
        pooled = dlcore.inverse_variance_fixed(es.y, es.v)
    elif method == "Peto":  # sum(O - E) / sum(V): the inverse-variance mean of (O - E)/V
        pooled = dataclasses.replace(dlcore.inverse_variance_fixed(es.y, es.v), method="Peto")
    elif method == "MH-fixed":
        pooled = dlcore.mantel_haenszel(es.events_t, es.n_t, es.events_c, es.n_c,
                                        outcome.measure, es.y, es.v)
    elif method == "MH-random":
        pooled = dlcore.mantel_haenszel_random(es.events_t, es.n_t, es.events_c,
                                               es.n_c, outcome.measure, es.y, es.v)
    else:
        raise InputError(f"unknown method '{method}' (allowed: {', '.join(METHODS)})")
    low, high = dlcore.prediction_interval(pooled)
    if pooled.method in FIXED_METHODS:  # no heterogeneity, no prediction interval
        low = high = math.nan
    keep = ~rows["study"].isin(es.excluded)
    provenance = tuple(str(p) for p in rows.loc[keep, "provenance"])
    return ClassicalAnalysis(outcome, es, pooled, (float(low), float(high)),
                             resolved.published, provenance, ci, pi, resolved.adjustments,
                             pi_asked=asked)
