"""Likelihood payloads: the data an engine is given, by shape.

An analysis hands its engine one payload; each engine declares the payload types it accepts
(``Engine.accepts``), and :func:`bayes_pip.engines.payload_for` picks the first one the analysis
can give or refuses in one line. Four shapes cover the analyses a review needs:

- :class:`NormalEffects`: one effect per study on the analysis scale with its known variance
  (log RR, log OR, SMD, MD; the normal-normal model);
- :class:`ArmCounts`: events and patients in each arm of each two-arm study (the
  binomial-normal model);
- :class:`CategoryCounts`: counts of a categorical outcome by study, arm and category (a
  multinomial model; e.g. the four Strange Situation attachment categories);
- :class:`Contrasts`: per-study vectors of contrasts with their covariance matrix (multi-arm
  trials, several outcomes of one trial).

Every payload carries ``study`` (names, in order) and ``X``: the design matrix of a
meta-regression, one row per study (``None`` is the intercept-only model). Construction checks
shapes and values and raises :class:`~bayes_pip.errors.InputError` with one line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes_pip.errors import InputError


def _design(X, k: int, name: str):
    if X is None:
        return None
    X = np.asarray(X, float)
    if X.ndim != 2 or X.shape[0] != k:
        raise InputError(f"{name}: the design matrix needs one row per study ({k}), not shape "
                         f"{X.shape}")
    if not np.isfinite(X).all():
        raise InputError(f"{name}: the design matrix has a missing or non-finite value")
    return X


def _counts(values, name: str, what: str) -> np.ndarray:
    a = np.asarray(values, float)
    if not np.isfinite(a).all() or (a < 0).any() or (a != np.round(a)).any():
        raise InputError(f"{name}: {what} must be whole numbers >= 0")
    return a


class _Studies:
    """What every payload shares: ``study`` names and their number ``k``."""

    @property
    def k(self) -> int:
        return len(self.study)


@dataclass(frozen=True)
class NormalEffects(_Studies):
    """y_i ~ N(theta_i, v_i): one effect per study with its known sampling variance."""

    study: tuple
    y: np.ndarray
    v: np.ndarray
    X: np.ndarray | None = None
    kind = "normal effects"

    def __post_init__(self):
        y, v = np.asarray(self.y, float), np.asarray(self.v, float)
        k = len(self.study)
        if y.shape != (k,) or v.shape != (k,):
            raise InputError(f"{self.kind}: y and v need one value per study ({k})")
        if not (np.isfinite(y).all() and np.isfinite(v).all() and (v > 0).all()):
            raise InputError(f"{self.kind}: every y must be finite and every v finite and > 0")
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "v", v)
        object.__setattr__(self, "X", _design(self.X, k, self.kind))


@dataclass(frozen=True)
class ArmCounts(_Studies):
    """events[i, a] ~ Binomial(n[i, a], p[i, a]); arm 0 is the intervention, arm 1 the
    comparator; ``link`` is "log" (RR) or "logit" (OR)."""

    study: tuple
    events: np.ndarray   # shape (k, 2)
    n: np.ndarray        # shape (k, 2)
    link: str
    X: np.ndarray | None = None
    kind = "arm counts"

    def __post_init__(self):
        k = len(self.study)
        events = _counts(self.events, self.kind, "events")
        n = _counts(self.n, self.kind, "arm sizes")
        if events.shape != (k, 2) or n.shape != (k, 2):
            raise InputError(f"{self.kind}: events and n need shape (studies, 2), got "
                             f"{events.shape} and {n.shape}")
        if (events > n).any() or (n < 1).any():
            raise InputError(f"{self.kind}: every arm needs n >= 1 and events <= n")
        if self.link not in ("log", "logit"):
            raise InputError(f"{self.kind}: link must be log or logit, not {self.link}")
        object.__setattr__(self, "events", events)
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "X", _design(self.X, k, self.kind))


@dataclass(frozen=True)
class CategoryCounts(_Studies):
    """counts[i, a, c]: patients of study i, arm a in category c (arms and categories named).

    A category a study did not report is NaN in every arm of that study (handled by the model,
    not refused); an arm a study did not have is NaN in every category (the first arm, the
    comparator, is in every study); ``reference`` names the reference category of the model."""

    study: tuple
    arms: tuple
    categories: tuple
    counts: np.ndarray   # shape (k, arms, categories)
    reference: str | None = None
    X: np.ndarray | None = None
    kind = "category counts"

    def __post_init__(self):
        k, a, c = len(self.study), len(self.arms), len(self.categories)
        counts = np.asarray(self.counts, float)
        if counts.shape != (k, a, c):
            raise InputError(f"{self.kind}: counts need shape (studies {k}, arms {a}, "
                             f"categories {c}), got {counts.shape}")
        if a < 2 or c < 2:
            raise InputError(f"{self.kind}: need at least two arms and two categories")
        seen = counts[~np.isnan(counts)]
        _counts(seen, self.kind, "counts")
        # an arm a study did not have is NaN in every category; the first arm (the comparator
        # of a multi-treatment model) is in every study
        present = ~np.isnan(counts).all(axis=2)
        if not present[:, 0].all():
            raise InputError(f"{self.kind}: every study needs the first arm "
                             f"('{self.arms[0]}')")
        reported = ~np.isnan(counts[:, :1, :])
        if (~np.isnan(counts) != (reported & present[:, :, None])).any():
            raise InputError(f"{self.kind}: a category missing in one arm of a study must be "
                             "missing in every arm of it")
        if (np.nansum(counts, axis=2)[present] < 1).any():
            raise InputError(f"{self.kind}: every arm needs at least one patient")
        if self.reference is not None and self.reference not in self.categories:
            raise InputError(f"{self.kind}: reference category '{self.reference}' is not one "
                             f"of {', '.join(self.categories)}")
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "X", _design(self.X, k, self.kind))


@dataclass(frozen=True)
class Contrasts(_Studies):
    """y_i ~ N(theta_i, S_i): per study a vector of contrasts (named by ``labels[i]``) with
    its covariance matrix; studies may carry different numbers of contrasts."""

    study: tuple
    labels: tuple        # per study: the names of its contrasts
    y: tuple             # per study: a vector
    S: tuple             # per study: a symmetric positive definite matrix
    X: np.ndarray | None = None
    kind = "contrasts"

    def __post_init__(self):
        k = len(self.study)
        if not (len(self.labels) == len(self.y) == len(self.S) == k):
            raise InputError(f"{self.kind}: labels, y and S need one entry per study ({k})")
        ys, Ss = [], []
        for name, lab, y, S in zip(self.study, self.labels, self.y, self.S):
            y, S = np.atleast_1d(np.asarray(y, float)), np.atleast_2d(np.asarray(S, float))
            if y.shape != (len(lab),) or S.shape != (len(lab), len(lab)):
                raise InputError(f"{self.kind}: study '{name}' has {len(lab)} contrasts but y "
                                 f"of shape {y.shape} and S of shape {S.shape}")
            if not (np.isfinite(y).all() and np.isfinite(S).all()):
                raise InputError(f"{self.kind}: study '{name}' has a non-finite value")
            if not np.allclose(S, S.T) or np.linalg.eigvalsh(S).min() <= 0:
                raise InputError(f"{self.kind}: study '{name}': S must be symmetric positive "
                                 "definite")
            ys.append(y)
            Ss.append(S)
        object.__setattr__(self, "y", tuple(ys))
        object.__setattr__(self, "S", tuple(Ss))
        object.__setattr__(self, "X", _design(self.X, k, self.kind))


PAYLOADS = (NormalEffects, ArmCounts, CategoryCounts, Contrasts)


def from_effects(effects, link: str | None) -> tuple:
    """The payloads one outcome's study effects can give: NormalEffects always, ArmCounts too
    for a ratio measure (``link`` "log" or "logit") with arm counts."""
    out = [NormalEffects(tuple(effects.study), effects.y, effects.v)]
    if link is not None and effects.events_t is not None:
        out.append(ArmCounts(tuple(effects.study),
                             np.stack([effects.events_t, effects.events_c], axis=-1),
                             np.stack([effects.n_t, effects.n_c], axis=-1), link))
    return tuple(out)


def category_counts(frame, outcome: str, categories=None, reference=None) -> CategoryCounts:
    """A CategoryCounts payload from a long table (columns outcome, study, arm, category,
    count), one row per study x arm x category; categories a study did not report are NaN."""
    rows = frame[frame["outcome"] == outcome]
    if rows.empty:
        raise InputError(f"no category counts for outcome '{outcome}'")
    if rows.duplicated(["study", "arm", "category"]).any():
        first = rows[rows.duplicated(["study", "arm", "category"])].iloc[0]
        raise InputError(f"outcome '{outcome}': study '{first['study']}', arm '{first['arm']}', "
                         f"category '{first['category']}' appears twice")
    study = tuple(dict.fromkeys(rows["study"]))
    arms = tuple(dict.fromkeys(rows["arm"]))
    cats = tuple(categories or dict.fromkeys(rows["category"]))
    unknown = set(rows["category"]) - set(cats)
    if unknown:
        raise InputError(f"outcome '{outcome}': unknown category '{sorted(unknown)[0]}' "
                         f"(allowed: {', '.join(cats)})")
    counts = np.full((len(study), len(arms), len(cats)), np.nan)
    for r in rows.itertuples(index=False):
        counts[study.index(r.study), arms.index(r.arm), cats.index(r.category)] = r.count
    # an arm a study did not have (a two-arm trial among three-arm ones) is left out by the model
    present = ~np.isnan(counts).all(axis=2)
    if not present.all():
        i, a = map(int, np.argwhere(~present)[0])
        raise InputError(f"outcome '{outcome}': study '{study[i]}' has no counts for arm "
                         f"'{arms[a]}' (every study needs every arm here)")
    return CategoryCounts(study, arms, cats, counts, reference)


def describe(payload) -> str:
    """'arm counts (2 studies)'."""
    return f"{payload.kind} ({payload.k} {'study' if payload.k == 1 else 'studies'})"


__all__ = ["NormalEffects", "ArmCounts", "CategoryCounts", "Contrasts", "PAYLOADS",
           "from_effects", "category_counts", "describe"]
