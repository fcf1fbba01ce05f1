"""The typed, frozen records a fit produces; ``to_dict()`` is the JSON the CLI prints.

Readers (summaries, reports, figures, the CLI, notebook users) use attributes, so a misspelt
field fails where it is written, not inside a report. Field order is the JSON key order; a field
marked ``omit_none`` is left out of the JSON when it is None (as the JSON has always done), and a
field marked ``json=False`` (draws, posterior objects) is never serialised.

The JSON is pinned by tests/test_golden.py; every record printed or written carries
``schema_version`` (:data:`SCHEMA_VERSION`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

OMIT_NONE = {"omit_none": True}
NOT_JSON = {"json": False}

# the version of the JSON the tool writes, first key of every record it prints or writes.
# 2: study columns named by role (events_t/n_t/mean_t/sd_t/arm_t for the intervention arm,
# _c for the comparator; they were events_pip/events_ctrl ...); records without the key are 1
SCHEMA_VERSION = 2


def versioned(obj):
    """A JSON record (or each record of a list) with ``schema_version`` as its first key."""
    if isinstance(obj, dict):
        return {"schema_version": SCHEMA_VERSION, **obj}
    if isinstance(obj, list):
        return [versioned(o) if isinstance(o, dict) else o for o in obj]
    return obj


def to_json_value(value):
    """Records -> dicts in field order; objects with ``to_dict`` -> theirs; tuples -> lists.
    A record inside another is written without ``schema_version`` (its parent carries it)."""
    if isinstance(value, Record):
        return record_dict(value)
    if hasattr(value, "to_dict") and not isinstance(value, type):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return record_dict(value)
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json_value(v) for k, v in value.items()}
    return value


def record_dict(obj) -> dict:
    out = {}
    for f in dataclasses.fields(obj):
        if not f.metadata.get("json", True):
            continue
        value = getattr(obj, f.name)
        if value is None and f.metadata.get("omit_none"):
            continue
        out[f.name] = to_json_value(value)
    return out


class Record:
    """Mixin: ``to_dict()`` by field order (see the module notes), led by ``schema_version``."""

    def to_dict(self) -> dict:
        return versioned(record_dict(self))


class Keyed(Record):
    """A record that also answers ``rec["key"]`` (the field of that JSON key), for readers of
    the dicts these records replaced (the moderator analyses)."""

    def __getitem__(self, key: str):
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None


# ---------------------------------------------------------------------------------------------
# pieces
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Interval(Record):
    """Median and central 95% interval (natural scale for effects)."""

    median: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Bounds(Record):
    """A 95% interval without a point (the DL prediction interval)."""

    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class MuSummary(Record):
    """The pooled effect on the analysis scale (log RR, log OR, SMD, MD)."""

    mean: float
    sd: float
    median: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class TauSummary(Record):
    """The between-study SD tau."""

    mean: float
    median: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class StudyEstimate(Record):
    """A study's shrunken effect (natural scale) and, where known, its observed one."""

    study: str
    median: float
    ci_low: float
    ci_high: float
    observed: float | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class Diagnostics(Record):
    """MCMC convergence diagnostics over mu and tau."""

    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    chains: int
    draws: int
    converged: bool
    # Monte Carlo SE of the printed pooled effect (median, 2.5% and 97.5% quantiles; natural
    # scale, delta method; ArviZ az.mcse, method "quantile")
    mcse_effect: tuple[float, float, float] | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class Conflict(Record):
    """Prior-data conflict on the pooled effect (Box 1980): the prior-predictive two-sided tail
    probability of the data's own pooled estimate."""

    estimate: float      # the data's pooled estimate (analysis scale: DL, or the published one)
    se: float
    z: float             # (estimate - prior mean) / sqrt(prior sd^2 + se^2)
    p_value: float
    flagged: bool        # p_value < CONFLICT_P


@dataclass(frozen=True)
class TauBands(Record):
    """Prior and posterior probability of tau in Spiegelhalter, Abrams & Myles' (2004, Sec.
    5.7.3) bands for log ratios: below 0.1 (low), 0.1-0.5 (reasonable), 0.5-1 (fairly high),
    above 1 (fairly extreme)."""

    bands: tuple[str, ...]
    prior: tuple[float, ...]
    posterior: tuple[float, ...]


@dataclass(frozen=True)
class Likelihood(Record):
    """Summary level: the published estimate (analysis scale) and its SE, as the likelihood."""

    estimate: float
    se: float
    source: str


@dataclass(frozen=True)
class PublishedResult(Record):
    """A pooled result as the review printed it (natural scale)."""

    estimate: float
    ci_low: float
    ci_high: float
    k: int
    participants: int | None
    model: str
    grade: str
    source: str


@dataclass(frozen=True)
class Agreement(PublishedResult):
    """The published result beside the DL re-analysis: reproduced to the printed digits?"""

    reproduced: bool
    agreement: str


@dataclass(frozen=True)
class DLStudy(Record):
    """One study in the classical analysis: natural-scale estimate and CI, analysis-scale y, se."""

    study: str
    estimate: float
    ci_low: float
    ci_high: float
    y: float
    se: float
    weight: float
    corrected: bool
    provenance: str
    # the arms as analysed: participants and (dichotomous outcomes) events
    n_t: int | None = field(default=None, metadata=OMIT_NONE)
    n_c: int | None = field(default=None, metadata=OMIT_NONE)
    events_t: int | None = field(default=None, metadata=OMIT_NONE)
    events_c: int | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class DLRecord(Record):
    """The classical (DerSimonian-Laird or Mantel-Haenszel) analysis of one outcome: `dl --json`."""

    outcome: str
    measure: str
    method: str
    k: int
    participants: int
    estimate: float
    ci_low: float
    ci_high: float
    mu: float
    se: float
    z: float
    p: float
    tau2: float
    tau: float
    q: float
    df: int
    i2: float
    prediction: Bounds | None
    excluded: tuple[str, ...]
    studies: tuple[DLStudy, ...]
    published: Agreement | None
    # heterogeneity and intervals (random-effects methods; left out of the JSON otherwise)
    tau2_method: str | None = field(default=None, metadata=OMIT_NONE)
    ci_method: str = "wald"
    tau2_ci_low: float | None = field(default=None, metadata=OMIT_NONE)   # Q-profile 95%
    tau2_ci_high: float | None = field(default=None, metadata=OMIT_NONE)
    i2_ci_low: float | None = field(default=None, metadata=OMIT_NONE)
    i2_ci_high: float | None = field(default=None, metadata=OMIT_NONE)
    pi_low: float | None = field(default=None, metadata=OMIT_NONE)        # natural scale
    pi_high: float | None = field(default=None, metadata=OMIT_NONE)
    pi_distribution: str | None = field(default=None, metadata=OMIT_NONE)
    t_hksj: float | None = field(default=None, metadata=OMIT_NONE)   # with --ci hksj: t(k-1)
    p_hksj: float | None = field(default=None, metadata=OMIT_NONE)
    # multi-arm and cluster adjustments applied to the study rows (design.py)
    adjustments: tuple[str, ...] | None = field(default=None, metadata=OMIT_NONE)
    # what the rows are when they are not printed study rows (reconstructed tables)
    data_status: str | None = field(default=None, metadata=OMIT_NONE)

    @property
    def method_label(self) -> str:
        """How the classical analysis pooled, in words a methods section uses."""
        return METHOD_LABELS.get(self.method, self.method)


METHOD_LABELS = {"DL": "DerSimonian-Laird", "REML": "REML random effects",
                 "PM": "Paule-Mandel random effects", "MH-random": "RevMan M-H random effects",
                 "IV-fixed": "inverse-variance fixed effect", "MH-fixed": "M-H fixed effect",
                 "Peto": "Peto fixed effect"}


@dataclass(frozen=True)
class Reconstructed(Record):
    """Reconstructed data: how many integer tables reproduce every printed number, how many
    were fitted, and how much the answer moves between them."""

    label: str
    n_tables: int
    tables_fitted: int
    sampling: str
    effect_median_range: tuple[float, float]
    p_benefit_range: tuple[float, float]
    tables: tuple[tuple[dict, ...], ...]
    # what the tables rest on besides print (inferred bounds, with their source rows) and the
    # arms analysed far below their upper bound (e.g. the number randomised)
    assumptions: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class LikelihoodChoice(Record):
    """Why the headline uses the binomial-normal likelihood (--engine auto on sparse arm
    counts), and the normal-normal result under the same prior beside it."""

    rule: str                  # the rule that chose the likelihood, in words
    sparse_arms: tuple[str, ...]  # the arms that met it, e.g. "Cicchetti 2006b control: 1 of 54"
    normal_normal_engine: str
    normal_normal: Interval    # pooled effect, natural scale
    normal_normal_p_benefit: float
    sentence: str              # the one sentence on why the two differ


@dataclass(frozen=True)
class Settings(Record):
    """How a fit was computed: seed (None: no random numbers), engine settings, versions."""

    seed: int | None
    quadrature: dict | None = field(default=None, metadata=OMIT_NONE)
    sampler: dict | None = field(default=None, metadata=OMIT_NONE)
    versions: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# the fit
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FitRecord(Record):
    """One outcome under one prior set with one engine: everything `fit` prints.

    ``idata`` (ArviZ InferenceData: posterior, prior, observed_data and log_likelihood groups,
    for every engine) and ``posterior`` (the engine's posterior object, which answers
    cdf/sf/quantile/mean/sd/density questions) travel with the record but are not JSON. For the
    exact and conjugate engines the draws are made (independently, seeded) on first access.
    """

    outcome: str
    label: str
    comparison: str
    # how texts name the intervention of this comparison (dataset.toml; "the intervention")
    intervention: str = field(default="the intervention", kw_only=True)
    # what sentences say the intervention changes, and where the MCID comes from ("" = assumed)
    phrase: str = field(default="", kw_only=True)
    mcid_source: str = field(default="", kw_only=True)
    measure: str
    benefit: str
    level: str
    data_status: str
    engine: str
    k: int
    participants: int | None
    prior: Any                      # bayes_pip.priors.ResolvedPrior (its to_dict is the JSON)
    # binomial-normal fits: the prior on each study's control-arm baseline
    baseline_prior: dict | None = field(default=None, kw_only=True, metadata=OMIT_NONE)
    mu: MuSummary
    effect: Interval
    tau: TauSummary | None
    prediction: Interval | None
    p_benefit: float
    p_mcid: float | None
    mcid: float | None
    studies: tuple[StudyEstimate, ...]
    p_benefit_new_study: float | None = field(default=None, metadata=OMIT_NONE)
    # MCMC: the number of posterior draws the probabilities rest on (a probability of 0 or 1
    # from N draws means below 1/N or above 1 - 1/N)
    probability_draws: int | None = field(default=None, metadata=OMIT_NONE)
    # P(effect beyond no effect in the direction of harm); P(|effect| within the MCID band
    # around no effect: a trivial effect), where the outcome has an MCID
    p_harm: float | None = field(default=None, metadata=OMIT_NONE)
    p_trivial: float | None = field(default=None, metadata=OMIT_NONE)
    # study level: tau^2 and I^2 (Higgins-Thompson typical within-study variance) posteriors
    tau2: Interval | None = field(default=None, metadata=OMIT_NONE)
    i2: Interval | None = field(default=None, metadata=OMIT_NONE)
    prior_data_conflict: Conflict | None = field(default=None, metadata=OMIT_NONE)
    tau_bands: TauBands | None = field(default=None, metadata=OMIT_NONE)
    likelihood: Likelihood | None = field(default=None, metadata=OMIT_NONE)
    # level "reconstructed": the tables behind the fit (the posterior is their mixture)
    reconstruction: Reconstructed | None = field(default=None, metadata=OMIT_NONE)
    # --engine auto on sparse arm counts: the likelihood chosen and the normal-normal beside it
    likelihood_choice: LikelihoodChoice | None = field(default=None, metadata=OMIT_NONE)
    diagnostics: Diagnostics | None = None
    dl: DLRecord | None = None
    published: PublishedResult | None = None
    notes: tuple[str, ...] = ()
    settings: Settings = field(default_factory=lambda: Settings(None))
    draws: Any = field(default=None, compare=False, repr=False, metadata=NOT_JSON)
    posterior: Any = field(default=None, compare=False, repr=False, metadata=NOT_JSON)

    @property
    def mcmc(self) -> bool:
        """True when the fit is a Markov chain Monte Carlo trace (not exact or closed form)."""
        return self.diagnostics is not None

    @property
    def in_conflict(self) -> bool:
        """True when Box's check flags the prior as contradicted by the data (p < 0.05)."""
        return bool(self.prior_data_conflict and self.prior_data_conflict.flagged)

    @property
    def idata(self):
        """ArviZ InferenceData of this fit (made on first access for non-MCMC engines)."""
        cached = self.__dict__.get("_idata")
        if cached is None and self.draws is not None:
            cached = self.draws() if callable(self.draws) else self.draws
            object.__setattr__(self, "_idata", cached)
        return cached


@dataclass(frozen=True)
class FitFailure(Record):
    """A fit in a sweep that did not give a result (convergence failure): what and why."""

    outcome: str
    prior: str
    error: str


# ---------------------------------------------------------------------------------------------
# model comparison
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelEvidence(Record):
    """One model of the comparison: its marginal likelihood and probabilities."""

    name: str
    title: str
    log_marginal_likelihood: float
    prior_probability: float
    posterior_probability: float


@dataclass(frozen=True)
class WidthBayesFactor(Record):
    """BF10 for an effect under mu ~ Normal(mean, sd^2) (analysis scale)."""

    label: str           # "sceptical width", "the prior used", "vague"
    mean: float
    sd: float
    log_bf_effect: float
    bf_effect: float | None


@dataclass(frozen=True)
class BMARecord(Record):
    """Bayes factors and the model-averaged pooled effect of one outcome (`bma --json`)."""

    outcome: str
    label: str
    measure: str
    benefit: str
    level: str
    data_status: str
    k: int
    participants: int | None
    prior: Any
    bf_effect: float | None          # BF10: mu free against mu = 0 (random effects)
    bf_heterogeneity: float | None   # tau > 0 against tau = 0 (mu free)
    bf_effect_fixed: float | None    # BF10 under the fixed-effect model
    models: tuple[ModelEvidence, ...]
    mu: Interval                      # model-averaged, analysis scale
    effect: Interval                  # model-averaged, natural scale
    p_benefit: float                  # model-averaged P(effect in the direction of benefit)
    p_benefit_random_effects: float | None
    # the same three on the natural-log scale, always finite; a Bayes factor beyond 10^+-300
    # is given only here (its field above is then null)
    log_bf_effect: float | None = None
    log_bf_heterogeneity: float | None = None
    log_bf_effect_fixed: float = 0.0
    likelihood: str | None = field(default=None, metadata=OMIT_NONE)  # normal- or binomial-normal
    notes: tuple[str, ...] = ()
    settings: Settings = field(default_factory=lambda: Settings(None))
    # the model-averaged result stated without an interval across the point mass at the null:
    # P(no effect) and the effect given that there is one (natural scale)
    p_null: float | None = None
    effect_given_effect: Interval | None = None
    # the Bayes factor for an effect under other widths of the prior on the pooled effect
    # (centred normal priors, analysis scale): it depends on the width (Lindley's paradox)
    bf_by_width: tuple[WidthBayesFactor, ...] = ()


# ---------------------------------------------------------------------------------------------
# robustness: leave one study out, influence, small-study effects
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LeaveOneOutRow(Record):
    """The analysis without one study: DL (natural scale) and the exact Bayesian fit."""

    study: str
    estimate: float
    ci_low: float
    ci_high: float
    tau2: float
    i2: float
    q: float
    bayes_median: float | None
    bayes_ci_low: float | None
    bayes_ci_high: float | None
    bayes_tau_median: float | None
    p_benefit: float | None


@dataclass(frozen=True)
class InfluenceRow(Record):
    """metafor's influence diagnostics of one study (DL model)."""

    study: str
    rstudent: float
    dffits: float
    cook_d: float
    cov_r: float
    tau2_del: float
    qe_del: float
    hat: float
    weight: float
    dfbetas: float
    influential: bool


@dataclass(frozen=True)
class InfluenceRecord(Record):
    """`influence --json`: each study left out in turn, and its influence on the DL fit."""

    outcome: str
    label: str
    measure: str
    benefit: str
    level: str
    data_status: str
    k: int
    prior: Any
    full: LeaveOneOutRow             # all studies (study = "all studies")
    leave_one_out: tuple[LeaveOneOutRow, ...]
    influence: tuple[InfluenceRow, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class EggerRecord(Record):
    """`funnel --json`: Egger's regression test (analysis scale) with the data it used."""

    outcome: str
    label: str
    measure: str
    k: int
    slope: float
    t: float
    df: int
    p: float
    limit: float            # natural scale: the estimate as the standard error goes to 0
    limit_ci_low: float
    limit_ci_high: float
    y: tuple[float, ...]
    se: tuple[float, ...]
    pooled: float           # DL pooled estimate, analysis scale (the funnel's centre)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class LooRow(Record):
    """PSIS leave-one-study-out predictive accuracy of one fit (ArviZ ``az.loo``)."""

    prior: str
    elpd_loo: float
    se: float
    p_loo: float
    elpd_diff: float          # best elpd_loo minus this one (0 for the best)
    pareto_k_max: float
    high_pareto_k: tuple[str, ...]   # studies with Pareto k > 0.7 (estimate unreliable)
    elpd_diff_se: float = 0.0        # SE of the paired difference from the best (az.compare dse)


@dataclass(frozen=True)
class Analysis:
    """What one fit answers: ``id`` names its records and files (an outcome id today), ``model``
    the model (a key of :data:`MODELS`), ``outcomes`` the outcome rows it draws on and ``parts``
    the coordinates its effects are indexed by (the categories; empty for one pooled effect)."""

    id: str
    model: str
    outcomes: tuple[str, ...]
    parts: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"id": self.id, "model": self.model, "outcomes": list(self.outcomes),
                "parts": list(self.parts)}
