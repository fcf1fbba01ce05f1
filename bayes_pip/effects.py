"""Study effect sizes exactly as RevMan 5 computes them.

Sign convention: always PIP (experimental) minus, or over, control. Functions take NumPy arrays
of arm-level data and return ``(y, v)``: the effect on the analysis scale and its variance.

References
----------
Deeks JJ, Higgins JPT. Statistical algorithms in Review Manager 5. The Cochrane Collaboration, 2010
(sections "Dichotomous data", "Continuous data").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CONTINUITY_CORRECTION = 0.5


@dataclass(frozen=True)
class EffectSizes:
    """Per-study effects of one outcome on the analysis scale (log RR, log OR, SMD, MD).

    ``study``, ``y``, ``v`` cover the studies that enter pooling; ``excluded`` lists studies left
    out (no events, or only events, in both arms); ``corrected`` marks studies that had 0.5 added
    to every cell. Arm counts are kept for the Mantel-Haenszel and binomial-normal analyses.
    """

    measure: str
    study: tuple[str, ...]
    y: np.ndarray
    v: np.ndarray
    n_t: np.ndarray
    n_c: np.ndarray
    events_t: np.ndarray | None
    events_c: np.ndarray | None
    corrected: tuple[bool, ...]
    excluded: tuple[str, ...]

    @property
    def k(self) -> int:
        return len(self.study)

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(self.v)

    @property
    def participants(self) -> int:
        return int(np.sum(self.n_t) + np.sum(self.n_c))


def double_zero(a, n1, c, n2) -> np.ndarray:
    """Studies RevMan excludes from ratio pooling: no events in both arms, or only events in both."""
    a, n1, c, n2 = map(np.asarray, (a, n1, c, n2))
    return ((a == 0) & (c == 0)) | ((a == n1) & (c == n2))


def zero_cell_corrected(a, n1, c, n2):
    """Add 0.5 to all four cells of each study with a zero cell (RevMan 5; metafor ``to="only0"``).

    Returns the corrected (a, n1, c, n2) and a boolean array marking corrected studies.
    """
    a, n1, c, n2 = (np.asarray(x, dtype=float) for x in (a, n1, c, n2))
    b, d = n1 - a, n2 - c
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    add = np.where(zero, CONTINUITY_CORRECTION, 0.0)
    return a + add, n1 + 2 * add, c + add, n2 + 2 * add, zero


def log_risk_ratio(a, n1, c, n2):
    """Log risk ratio and its variance.

    Notes
    -----
    y = log((a/n1) / (c/n2)),  v = 1/a - 1/n1 + 1/c - 1/n2, after the zero-cell correction.
    """
    a, n1, c, n2, _ = zero_cell_corrected(a, n1, c, n2)
    y = np.log(a / n1) - np.log(c / n2)
    v = 1 / a - 1 / n1 + 1 / c - 1 / n2
    return y, v


def log_odds_ratio(a, n1, c, n2):
    """Log odds ratio and its variance.

    Notes
    -----
    y = log(a d / (b c)),  v = 1/a + 1/b + 1/c + 1/d, after the zero-cell correction.
    """
    a, n1, c, n2, _ = zero_cell_corrected(a, n1, c, n2)
    b, d = n1 - a, n2 - c
    y = np.log(a) + np.log(d) - np.log(b) - np.log(c)
    v = 1 / a + 1 / b + 1 / c + 1 / d
    return y, v


def risk_difference(a, n1, c, n2):
    """Risk difference and its variance.

    Notes
    -----
    y = a/n1 - c/n2,  v = p1 (1 - p1)/n1 + p2 (1 - p2)/n2 (= a b / n1^3 + c d / n2^3, RevMan 5),
    after the zero-cell correction (metafor ``escalc(measure="RD")``, ``to="only0"``). Studies
    with no events (or only events) in both arms are kept: their risk difference is defined.
    """
    a, n1, c, n2, _ = zero_cell_corrected(a, n1, c, n2)
    p1, p2 = a / n1, c / n2
    return p1 - p2, p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2


def peto_log_odds_ratio(a, n1, c, n2):
    """Peto's one-step log odds ratio and its variance (no zero-cell correction needed).

    Notes
    -----
    O - E = a - n1 (a + c) / N,  V = n1 n2 (a + c)(b + d) / (N^2 (N - 1)),
    y = (O - E) / V,  v = 1 / V  (Yusuf et al. 1985; RevMan 5; metafor ``escalc("PETO")``).
    """
    a, n1, c, n2 = (np.asarray(x, dtype=float) for x in (a, n1, c, n2))
    total = n1 + n2
    events = a + c
    o_minus_e = a - n1 * events / total
    var = n1 * n2 * events * (total - events) / (total**2 * (total - 1))
    return o_minus_e / var, 1.0 / var


def hedges_g(m1, sd1, n1, m2, sd2, n2):
    """Hedges' adjusted g as RevMan 5 computes it.

    Notes
    -----
    s = sqrt(((n1-1) sd1^2 + (n2-1) sd2^2) / (N-2)),  g = (m1 - m2) / s * (1 - 3/(4N - 9)),
    v = N/(n1 n2) + g^2 / (2 (N - 3.94)),  N = n1 + n2.
    """
    m1, sd1, n1, m2, sd2, n2 = (np.asarray(x, dtype=float) for x in (m1, sd1, n1, m2, sd2, n2))
    total = n1 + n2
    pooled_sd = np.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (total - 2))
    g = (m1 - m2) / pooled_sd * (1 - 3 / (4 * total - 9))
    v = total / (n1 * n2) + g**2 / (2 * (total - 3.94))
    return g, v


def mean_difference(m1, sd1, n1, m2, sd2, n2):
    """Mean difference and its variance (unpooled SDs, RevMan 5): v = sd1^2/n1 + sd2^2/n2."""
    m1, sd1, n1, m2, sd2, n2 = (np.asarray(x, dtype=float) for x in (m1, sd1, n1, m2, sd2, n2))
    return m1 - m2, sd1**2 / n1 + sd2**2 / n2


def effect_sizes(rows: pd.DataFrame, measure) -> EffectSizes:
    """Effect sizes for one outcome's study rows (a frame validated by :mod:`bayes_pip.data`).

    ``measure`` is a :class:`bayes_pip.measures.Measure`: its ``effect`` formula is applied to the
    arm-level columns its data type names.
    """
    study = rows["study"].to_numpy(dtype=object)
    n1 = rows["n_t"].to_numpy(dtype=float)
    n2 = rows["n_c"].to_numpy(dtype=float)
    if "yi" in rows.columns and rows["yi"].notna().all() and len(rows):
        # generic inverse variance: the effect and its SE as given (RevMan "GIV")
        return EffectSizes(measure.name, tuple(study), rows["yi"].to_numpy(float),
                           rows["sei"].to_numpy(float) ** 2, n1, n2, None, None,
                           (False,) * len(study), ())
    if measure.is_dichotomous:
        a = rows["events_t"].to_numpy(dtype=float)
        c = rows["events_c"].to_numpy(dtype=float)
        drop = double_zero(a, n1, c, n2) if measure.drops_double_zero else np.zeros(len(a), bool)
        keep = ~drop
        a, n1, c, n2, study = a[keep], n1[keep], c[keep], n2[keep], study[keep]
        y, v = measure.effect(a, n1, c, n2)
        corrected = (zero_cell_corrected(a, n1, c, n2)[4] if measure.zero_cell_correction
                     else np.zeros(len(a), bool))
        return EffectSizes(measure.name, tuple(study), y, v, n1, n2, a, c,
                           tuple(bool(x) for x in corrected),
                           tuple(rows["study"].to_numpy(dtype=object)[drop]))
    args = [rows[c].to_numpy(dtype=float) for c in
            ("mean_t", "sd_t", "n_t", "mean_c", "sd_c", "n_c")]
    y, v = measure.effect(*args)
    return EffectSizes(measure.name, tuple(study), y, v, n1, n2, None, None,
                       (False,) * len(study), ())
