"""What each effect measure is, written once: data type, scale, null, transforms, RevMan names.

Every other module asks this table (``measures.get(name)``) instead of comparing strings such as
("RR", "OR"). Adding a measure (risk difference, Peto OR) is one entry here plus its effect-size
formula in :mod:`bayes_pip.effects`.

Analysis scale: log RR, log OR, SMD, MD (what the models pool). Natural scale: RR, OR, SMD, MD
(what a reader sees). ``null`` is the no-effect value on the natural scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from bayes_pip import effects
from bayes_pip.errors import InputError

DICHOTOMOUS = "dichotomous"
CONTINUOUS = "continuous"


@dataclass(frozen=True)
class Measure:
    """One effect measure.

    ``effect`` computes (y, v) on the analysis scale from arm-level arrays: (a, n1, c, n2) for
    dichotomous data, (m1, sd1, n1, m2, sd2, n2) for continuous data. ``link`` is the binomial
    model's link (None where the binomial-normal model does not apply). ``default_prior`` is the
    prior set a fit uses when none is named.
    """

    name: str
    title: str
    data_type: str
    log_scale: bool
    effect: Callable
    revman_names: tuple[str, ...]
    link: str | None
    mantel_haenszel: bool
    default_prior: str
    unit_free: bool = True  # False: the outcome's own units (MD), so scale-free tau priors do not apply
    methods: tuple[str, ...] | None = None  # classical methods allowed (None: all that apply)
    bayesian: bool = True   # False: no Bayesian engine analyses it (Peto's fixed-effect OR)
    drops_double_zero: bool = True       # studies with no (or only) events in both arms left out
    zero_cell_correction: bool = True    # 0.5 added to every cell of a study with a zero cell

    @property
    def is_ratio(self) -> bool:
        return self.log_scale

    @property
    def is_dichotomous(self) -> bool:
        return self.data_type == DICHOTOMOUS

    @property
    def null(self) -> float:
        """No effect on the natural scale (1 for ratios, 0 for differences)."""
        return 1.0 if self.log_scale else 0.0

    @property
    def analysis_label(self) -> str:
        """The analysis-scale name ('log RR', 'SMD')."""
        return f"log {self.name}" if self.log_scale else self.name

    def to_natural(self, x):
        """Analysis scale -> natural scale (exponentiate ratios)."""
        return np.exp(x) if self.log_scale else x

    def to_analysis(self, x):
        """Natural scale -> analysis scale (log of ratios)."""
        return np.log(x) if self.log_scale else x


MEASURES: dict[str, Measure] = {m.name: m for m in (
    Measure("RR", "risk ratio", DICHOTOMOUS, True, effects.log_risk_ratio,
            ("RR", "RISK RATIO"), "log", True, "halfnormal-0.5"),
    Measure("OR", "odds ratio", DICHOTOMOUS, True, effects.log_odds_ratio,
            ("OR", "ODDS RATIO"), "logit", True, "halfnormal-0.5"),
    Measure("SMD", "standardised mean difference (Hedges' g)", CONTINUOUS, False,
            effects.hedges_g, ("SMD", "STANDARDIZED MEAN DIFFERENCE", "STD. MEAN DIFFERENCE"),
            None, False, "halfnormal-0.5"),
    # MD is on the outcome's own scale, so a unit-free tau prior does not apply: vague default
    Measure("MD", "mean difference", CONTINUOUS, False, effects.mean_difference,
            ("MD", "MEAN DIFFERENCE"), None, False, "vague", unit_free=False),
    # RD: double-zero studies kept (RD = 0 is defined); normal-normal engines on the RD scale;
    # no log-scale tau prior applies, so the vague prior set is the default
    Measure("RD", "risk difference", DICHOTOMOUS, False, effects.risk_difference,
            ("RD", "RISK DIFFERENCE"), None, True, "vague", drops_double_zero=False),
    # Peto's one-step OR: pooled by Peto's fixed-effect method only (RevMan); a Bayesian
    # analysis of the same tables uses measure OR
    Measure("PETO_OR", "Peto odds ratio", DICHOTOMOUS, True, effects.peto_log_odds_ratio,
            ("PETO_OR", "PETO ODDS RATIO", "PETO OR"), None, False, "halfnormal-0.5",
            methods=("Peto",), bayesian=False, zero_cell_correction=False),
)}
NAMES = tuple(MEASURES)


def get(name: str) -> Measure:
    """The measure called ``name`` (as outcomes.csv writes it)."""
    try:
        return MEASURES[name]
    except KeyError:
        raise InputError(f"unknown measure '{name}' (allowed: {', '.join(NAMES)})") from None


def from_revman(label: str) -> Measure | None:
    """The measure a RevMan file names ('Risk Ratio', 'Std. Mean Difference'), or None."""
    key = label.strip().upper()
    return next((m for m in MEASURES.values() if key in m.revman_names), None)


def names_where(predicate: Callable[[Measure], bool]) -> tuple[str, ...]:
    """Names of the measures with a property (e.g. ``lambda m: m.is_ratio``)."""
    return tuple(m.name for m in MEASURES.values() if predicate(m))
