"""Statistics on a posterior for the records: intervals, P(benefit), P(harm), P(trivial),
Spiegelhalter's tau bands, Box's prior-data conflict check and the posterior summary of a fit.
Words about them are in :mod:`bayes_pip.summarise`."""

from __future__ import annotations

from bayes_pip.data import Outcome
from bayes_pip import dl, measures
from bayes_pip.record import (Conflict, Interval, MuSummary,
                              StudyEstimate, TauBands, TauSummary)
from bayes_pip import direction


CRI = (0.025, 0.975)


def interval(post, target, measure: str | None = None) -> Interval:
    """Median and central 95% interval of a target, on the natural scale if ``measure`` given."""
    values = [post.quantile(target, q) for q in (0.5, *CRI)]
    if measure is not None:
        values = [float(measures.get(measure).to_natural(x)) for x in values]
    return Interval(*values)


def benefit_probability(post, outcome: Outcome, threshold: float, target="mu") -> float:
    """P(target (default mu) beyond ``threshold`` in the outcome's direction of benefit | data)."""
    return direction.of(outcome).p_better(post, target, threshold)


def harm_probability(post, outcome: Outcome) -> float:
    """P(mu beyond no effect in the direction of harm | data)."""
    return direction.of(outcome).p_worse(post, "mu", 0.0)


def trivial_probability(post, outcome: Outcome) -> float | None:
    """P(the pooled effect lies within +/- the MCID of no effect | data) (analysis scale: a
    ratio MCID of 0.75 gives the band 0.75 to 1/0.75)."""
    if outcome.mcid is None:
        return None
    delta = abs(float(outcome.scale.to_analysis(outcome.mcid)))
    return max(post.cdf("mu", delta) - post.cdf("mu", -delta), 0.0)


# Spiegelhalter, Abrams & Myles (2004, Sec. 5.7.3): the band edges on tau and their names


TAU_BAND_EDGES = (0.1, 0.5, 1.0)


TAU_BAND_NAMES = ("tau < 0.1 (low)", "0.1-0.5 (reasonable)", "0.5-1 (fairly high)",
                  "tau > 1 (fairly extreme)")


def tau_bands(post, tau_prior, outcome: Outcome) -> TauBands | None:
    """Prior and posterior probabilities of Spiegelhalter's heterogeneity bands (log ratios)."""
    if not outcome.scale.is_ratio:
        return None

    def probs(cdf):
        cum = [cdf(e) for e in TAU_BAND_EDGES]
        return tuple(float(max(b - a, 0.0)) for a, b in zip([0.0] + cum, cum + [1.0]))

    return TauBands(TAU_BAND_NAMES, probs(lambda x: float(tau_prior.cdf(x))),
                    probs(lambda x: post.cdf("tau", x)))


CONFLICT_P = 0.05  # flag a prior whose prior-predictive tail probability is below this


def prior_data_conflict(estimate: float, se: float, mu_prior) -> Conflict | None:
    """Box's (1980) prior-predictive check for the pooled effect: under the prior, the data's
    pooled estimate is distributed N(m0, s0^2 + se^2); a two-sided tail probability below
    0.05 flags a prior that the data contradict (e.g. a sceptical prior against a clear
    effect). None for a flat prior."""
    import math

    from scipy import special

    if not math.isfinite(getattr(mu_prior, "sd", math.inf)):
        return None
    z = (estimate - mu_prior.mean) / math.sqrt(mu_prior.sd**2 + se**2)
    p = float(2 * special.ndtr(-abs(z)))
    return Conflict(float(estimate), float(se), float(z), p, p < CONFLICT_P)


def posterior_summary(post, outcome: Outcome, study_names, observed=None, with_tau=True,
                      v=None) -> dict:
    """The posterior fields of a :class:`FitRecord`: mu, effect, tau, prediction,
    probabilities, studies (and, given the within-study variances ``v``, tau^2 and I^2)."""
    m = outcome.measure
    mu = interval(post, "mu")
    known = outcome.benefit != "unknown"  # without a direction there is no P(benefit)
    d = {
        "mu": MuSummary(post.mean("mu"), post.sd("mu"), mu.median, mu.ci_low, mu.ci_high),
        "effect": interval(post, "mu", m),
        "tau": None,
        "prediction": None,
        "p_benefit": benefit_probability(post, outcome, 0.0) if known else None,
        "p_mcid": None,
        "mcid": outcome.mcid,
        "studies": (),
    }
    if outcome.mcid is not None:
        d["p_mcid"] = benefit_probability(post, outcome,
                                          float(outcome.scale.to_analysis(outcome.mcid)))
    d["p_harm"] = harm_probability(post, outcome) if known else None
    d["p_trivial"] = trivial_probability(post, outcome)
    if with_tau and v is not None and len(v) > 1:
        # I^2(tau) = tau^2 / (tau^2 + s^2) is increasing in tau: its quantiles are tau's
        s2 = float(dl.typical_within_variance(v))
        tq = [post.quantile("tau", q) for q in (0.5, *CRI)]
        d["tau2"] = Interval(*(t * t for t in tq))
        d["i2"] = Interval(*(t * t / (t * t + s2) for t in tq))
    if with_tau:
        tau = interval(post, "tau")
        d["tau"] = TauSummary(post.mean("tau"), tau.median, tau.ci_low, tau.ci_high)
        d["prediction"] = interval(post, "predict", m)
        d["p_benefit_new_study"] = benefit_probability_new(post, outcome) if known else None
        batch = getattr(post, "study_quantiles", None)   # every study at once, where offered
        table = (batch((0.5, *CRI)) if batch is not None else
                 [[post.quantile(("study", i), q) for q in (0.5, *CRI)]
                  for i in range(len(study_names))])
        natural = measures.get(m).to_natural
        d["studies"] = tuple(
            StudyEstimate(name, *(float(natural(x)) for x in table[i]),
                          observed=None if observed is None
                          else float(outcome.scale.to_natural(observed[i])))
            for i, name in enumerate(study_names))
    return d


def benefit_probability_new(post, outcome: Outcome) -> float:
    """P(a new study's true effect lies in the direction of benefit | data)."""
    return direction.of(outcome).p_better(post, "predict", 0.0)


# ---------------------------------------------------------------------------------------------
# text for the terminal and for reports
# ---------------------------------------------------------------------------------------------
