"""Typed records of the moderator analyses: classical meta-regression, subgroups (RevMan's test
for subgroup differences) and Bayesian meta-regression (:mod:`bayes_pip.moderation`).

Readers (texts, figures, report pages) use attributes. ``to_dict()`` is the JSON the CLI prints,
with the keys in field order, as for every record (:mod:`bayes_pip.record`). For notebooks that
read these records as the dicts they used to be, every record and row also answers
``rec["key"]`` with the field of that JSON key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bayes_pip.metareg import Subgroup
from bayes_pip.record import OMIT_NONE, Interval, Keyed


# -- rows -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModeratorColumn(Keyed):
    """One moderator: its kind, levels (categorical), each study's value and its source."""

    name: str
    kind: str                      # "numeric" or "categorical"
    levels: list | None            # the levels, the first the reference (categorical)
    values: dict                   # study -> value
    sources: dict                  # study -> where the value comes from


@dataclass(frozen=True)
class StudyPoint(Keyed):
    """A study in a bubble plot: observed effect (natural scale), weight, moderator value."""

    study: str
    estimate: float
    weight: float
    value: object


@dataclass(frozen=True)
class FittedEffect(Keyed):
    """The fitted effect at one moderator value (natural scale) with its 95% interval."""

    at: str
    estimate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class FittedBenefit(FittedEffect):
    """A Bayesian fitted effect with P(benefit) there (None without a direction of benefit)."""

    p_benefit: float | None = None


@dataclass(frozen=True)
class RegressionLine(Keyed):
    """The fitted effect over the range of one numeric moderator (41 points, natural scale):
    the classical line keys its centre ``estimate``, the Bayesian one ``median``."""

    x: list
    estimate: list | None = field(default=None, metadata=OMIT_NONE)
    median: list | None = field(default=None, metadata=OMIT_NONE)
    ci_low: list = ()
    ci_high: list = ()

    @property
    def centre(self) -> list:
        return self.median if self.median is not None else self.estimate


@dataclass(frozen=True)
class Coefficient(Keyed):
    """A classical meta-regression coefficient (analysis scale) with its Wald (or t) test."""

    name: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p: float


@dataclass(frozen=True)
class CoefficientPrior(Keyed):
    """The prior of one coefficient: flat, or normal(mean, sd) per unit of the moderator."""

    family: str
    mean: float | None = field(default=None, metadata=OMIT_NONE)
    sd: float | None = field(default=None, metadata=OMIT_NONE)

    def describe(self) -> str:
        return "flat" if self.family == "flat" else f"N(0, {self.sd:.3g}^2)"


@dataclass(frozen=True)
class BayesCoefficient(Keyed):
    """A coefficient's posterior (analysis scale); P(more benefit) for the moderator terms."""

    name: str
    mean: float
    sd: float
    median: float
    ci_low: float
    ci_high: float
    p_benefit: float | None
    prior: CoefficientPrior


@dataclass(frozen=True)
class NaturalSubgroup(Keyed):
    """A subgroup's pooled estimate on the natural scale."""

    level: str
    estimate: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class SubgroupStudy(Keyed):
    """A study of a subgroup forest plot: its level and effect with 95% CI (natural scale)."""

    study: str
    level: str
    estimate: float
    ci_low: float
    ci_high: float


# -- records ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class MetaRegressionRecord(Keyed):
    """Classical meta-regression (metafor ``rma(mods=)``): `dl --moderator`."""

    outcome: str
    label: str
    measure: str
    benefit: str
    fitted: tuple[FittedEffect, ...]
    study_effects: tuple[StudyPoint, ...]
    line: RegressionLine | None
    analysis: str                  # "meta-regression"
    method: str
    test: str                      # "z" or "knha" (Knapp-Hartung)
    level: str
    k: int
    studies: tuple[str, ...]
    moderators: tuple[ModeratorColumn, ...]
    scale: str
    coefficients: tuple[Coefficient, ...]
    tau2: float
    tau2_without_moderators: float
    qm: float
    qm_df: int
    qm_df2: int | None
    qm_p: float
    qe: float
    qe_df: int
    qe_p: float
    r2: float
    i2: float
    notes: tuple[str, ...]


@dataclass(frozen=True)
class SubgroupRecord(Keyed):
    """Subgroup analysis with the test for subgroup differences: `dl --subgroup`."""

    outcome: str
    label: str
    measure: str
    benefit: str
    analysis: str                  # "subgroups"
    subgroup: str
    level: str
    k: int
    studies: tuple[str, ...]
    moderators: tuple[ModeratorColumn, ...]
    scale: str
    subgroups: tuple[Subgroup, ...]    # pooled per level, analysis scale (metareg)
    q_between: float
    df_between: int
    p_between: float
    method: str
    tau: str                       # "separate" or "common"
    subgroups_natural: tuple[NaturalSubgroup, ...]
    study_effects: tuple[SubgroupStudy, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class BayesMetaRegressionRecord(Keyed):
    """Bayesian meta-regression by an engine with the "regression" capability:
    `fit --moderator` / `fit --subgroup`."""

    outcome: str
    label: str
    measure: str
    benefit: str
    intervention: str
    analysis: str                  # "Bayesian meta-regression"
    engine: str
    level: str
    k: int
    studies: tuple[str, ...]
    moderators: tuple[ModeratorColumn, ...]
    prior: dict                    # the prior set's JSON plus the coefficients' priors
    scale: str
    coefficients: tuple[BayesCoefficient, ...]
    tau: Interval
    fitted: tuple[FittedBenefit, ...]
    study_effects: tuple[StudyPoint, ...]
    line: RegressionLine | None
    diagnostics: dict | None
    seed: int | None
    notes: tuple[str, ...]

    @property
    def prior_name(self) -> str:
        return self.prior["name"]

    @classmethod
    def from_dict(cls, d: dict) -> "BayesMetaRegressionRecord":
        """The record back from its JSON (a `fit --moderator` file, a report's "moderators")."""
        def rows(kind, items):
            return tuple(kind(**i) for i in items)

        line = d.get("line")
        return cls(**{
            **{k: v for k, v in d.items() if k != "schema_version"},
            "studies": tuple(d["studies"]), "notes": tuple(d["notes"]),
            "moderators": rows(ModeratorColumn, d["moderators"]),
            "coefficients": tuple(BayesCoefficient(**{**c, "prior": CoefficientPrior(
                **c["prior"])}) for c in d["coefficients"]),
            "tau": Interval(**d["tau"]), "fitted": rows(FittedBenefit, d["fitted"]),
            "study_effects": rows(StudyPoint, d["study_effects"]),
            "line": None if line is None else RegressionLine(**line)})
