"""Reconstruct the integer 2x2 tables consistent with a review's printed pooled result.

When a review prints a pooled risk ratio (or odds ratio) with its 95% CI, the number of studies
and of participants, and its method, and other sources print some arm sizes and counts, the
integer tables (events and totals per arm and study) that reproduce every printed number are
few. This module enumerates all of them, vectorised over candidates in chunks, with RevMan 5's
own algorithm for the review's method, and keeps those whose pooled estimate and CI round to the
printed values.

Plain data in, plain data out: the data layer reads ``constraints.csv`` and calls
:func:`reconstruct_outcome` and :func:`reconstruct_jointly`.

References
----------
Di Pietrantonj C. Four-fold table cell frequencies imputation in meta analysis. Stat Med
2006;25:2299-2322 (the idea: enumerate integer tables consistent with printed summaries).
Deeks JJ, Higgins JPT. Statistical algorithms in Review Manager 5 (2010): "M-H, Random".
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from bayes_pip import dl, measures
from bayes_pip.effects import double_zero

ARMS = ("t", "c")  # the intervention and the comparator arm
# the arm codes before columns were named by role (still read; bayes_pip.data warns)
OLD_ARMS = {"pip": "t", "ctrl": "c"}
FIELDS = ("n", "events")
METHODS = ("MH-random", "DL", "MH-fixed", "IV-fixed")
CHUNK = 1 << 20              # candidates evaluated per vectorised step
# the default search budget: more candidates than this are refused before searching (about 20 s
# at k = 2; --max-candidates raises it)
MAX_CANDIDATES = 10**7
MAX_KEPT = 100_000           # solutions kept per outcome (the count is always exact)


@dataclass(frozen=True)
class Printed:
    """A printed pooled result: value, CI and the decimals each was printed with."""

    estimate: float
    ci_low: float
    ci_high: float
    decimals: tuple[int, int, int]
    k: int
    participants: int | None

    def half_units(self) -> np.ndarray:
        """Half a unit in the last printed decimal of each value (the rounding tolerance)."""
        return 0.5 * 10.0 ** -np.asarray(self.decimals, float)


@dataclass(frozen=True)
class CellRange:
    """Bounds on one cell of one study: ``arm`` t/c (intervention/comparator; the old codes
    pip/ctrl are read as t/c), ``field`` n/events."""

    study: str
    arm: str
    field: str
    low: int
    high: int
    group: str = ""   # cells with the same group hold the same number (arm sizes shared
                      # across outcomes)
    partition: str = ""  # event cells of one classification (same study, arm, partition) sum
                         # to at most the arm size

    def __post_init__(self):
        object.__setattr__(self, "arm", OLD_ARMS.get(self.arm, self.arm))


@dataclass(frozen=True)
class Problem:
    """One outcome to reconstruct."""

    outcome: str
    measure: str
    method: str
    printed: Printed
    studies: tuple[str, ...]
    cells: tuple[CellRange, ...]


@dataclass(frozen=True)
class Reconstruction:
    """Every integer table consistent with a printed result.

    ``tables`` has shape (n_kept, k, 4) with columns events_t, n_t, events_c, n_c in
    the order of ``studies``; ``n_solutions`` counts all of them (``tables`` may be capped).
    """

    outcome: str
    measure: str
    method: str
    studies: tuple[str, ...]
    printed: Printed
    n_candidates: int
    n_solutions: int
    tables: np.ndarray
    diagnosis: str = ""           # why nothing was consistent, when nothing was
    joint: tuple[str, ...] = ()   # outcomes reconstructed jointly with this one
    n_single: int | None = None   # solutions before the joint constraints
    searched: bool = True         # False: over the search budget, nothing was tested
    # the bounds that rest on inference rather than print, in words with their source row
    inferred: tuple[str, ...] = ()
    # arms whose size is bounded above but not fixed: (study, arm, upper bound, why), e.g. the
    # number randomised; an analysed arm far below it is flagged
    upper_bounds: tuple[tuple[str, str, int, str], ...] = ()

    @property
    def which(self) -> str:
        return which_tables(self.n_solutions, len(self.inferred))

    @property
    def consistent(self) -> str:
        return consistent_text(len(self.inferred))

    def arm_flags(self, tables=None) -> tuple[str, ...]:
        """Arms analysed far below their upper bound in ``tables`` (default: every kept table)."""
        return arm_flags(self.upper_bounds, self.studies,
                         self.tables if tables is None else tables)

    @property
    def cell_ranges(self) -> list[dict]:
        out = []
        for j, study in enumerate(self.studies):
            row = {"study": study}
            for c, name in enumerate(("events_t", "n_t", "events_c", "n_c")):
                column = self.tables[:, j, c] if len(self.tables) else np.array([])
                row[name] = ([int(column.min()), int(column.max())] if column.size else None)
            out.append(row)
        return out

    def reproduces(self) -> list[dict]:
        """The pooled estimate and CI each kept table gives (natural scale, full precision)."""
        return [dict(zip(("estimate", "ci_low", "ci_high"), map(float, row)))
                for row in pooled_natural(self.tables, self.measure, self.method).T]

    def reproduces_estimates(self) -> np.ndarray:
        """The pooled estimate (natural scale) of each kept table."""
        return pooled_natural(self.tables, self.measure, self.method)[0]

    def to_dict(self, limit: int = 1000) -> dict:
        names = ("events_t", "n_t", "events_c", "n_c")
        tables = [[{"study": s, **{n: int(t[j, c]) for c, n in enumerate(names)}}
                   for j, s in enumerate(self.studies)] for t in self.tables[:limit]]
        p = self.printed
        return {
            "outcome": self.outcome, "measure": self.measure, "method": self.method,
            "printed": {"estimate": p.estimate, "ci_low": p.ci_low, "ci_high": p.ci_high,
                        "decimals": list(p.decimals), "k": p.k,
                        "participants": p.participants},
            "n_candidates": self.n_candidates, "n_solutions": self.n_solutions,
            "n_solutions_before_joint": self.n_single, "joint_with": list(self.joint),
            "solutions": tables, "solutions_shown": len(tables),
            "cell_ranges": self.cell_ranges,
            "reproduces": self.reproduces()[:limit],
            "diagnosis": self.diagnosis or None, "searched": self.searched,
        }


ARM_WORDS = {"t": "intervention", "c": "comparator"}
# an analysed arm below this share of its upper bound (e.g. the number randomised) is flagged
FLAG_SHARE = 0.5


def which_tables(n_tables: int, n_inferred: int) -> str:
    """'the only integer table' only when uniqueness rests on printed bounds alone."""
    if n_tables == 1:
        return "one integer table" if n_inferred else "the only integer table"
    return f"{n_tables} integer tables"


def consistent_text(n_inferred: int) -> str:
    """'consistent with every printed number', with the condition it holds under."""
    if not n_inferred:
        return "consistent with every printed number"
    return (f"consistent with every printed number given {n_inferred} inferred "
            f"bound{'s' if n_inferred > 1 else ''}")


def arm_flags(upper_bounds, studies, tables) -> tuple[str, ...]:
    """Arms analysed far below their upper bound (e.g. the number randomised) in ``tables``
    (n_tables, k, 4: events_t, n_t, events_c, n_c in the order of ``studies``)."""
    tables = np.asarray(tables)
    out = []
    for study, arm, bound, why in upper_bounds:
        if study not in studies or not len(tables):
            continue
        sizes = tables[:, list(studies).index(study), 1 if arm == "t" else 3]
        lo, hi = int(sizes.min()), int(sizes.max())
        if hi >= FLAG_SHARE * bound:
            continue
        n = f"{lo}" if lo == hi else f"{lo} to {hi}"
        out.append(f"{study}, {ARM_WORDS[arm]} arm: {n} analysed, {100 * hi / bound:.0f}% of "
                   f"its upper bound {bound} ({why})")
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# RevMan's pooled result for many candidate tables at once
# ---------------------------------------------------------------------------------------------

def pooled_natural(tables: np.ndarray, measure: str, method: str) -> np.ndarray:
    """Pooled estimate, CI low and CI high on the natural scale, shape (3, n_tables).

    ``tables`` (n, k, 4): events_t, n_t, events_c, n_c. Studies with no events or only
    events in both arms are left out, as RevMan does; 0.5 is added to every cell of a study with
    a zero cell for the study's log effect and variance (not for the M-H estimate itself).
    """
    scale = measures.get(measure)
    t = np.asarray(tables, float)
    a, n1, c, n2 = t[..., 0], t[..., 1], t[..., 2], t[..., 3]
    mask = ~double_zero(a, n1, c, n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        y, v = scale.effect(a, n1, c, n2)
        y, v = np.where(mask, y, 0.0), np.where(mask, v, 1.0)
        if method == "MH-random":
            r = dl.mantel_haenszel_random(a, n1, c, n2, measure, y, v, mask)
        elif method == "MH-fixed":
            r = dl.mantel_haenszel(a, n1, c, n2, measure, y, v, mask)
        elif method == "DL":
            r = dl.dersimonian_laird(y, v, mask)
        elif method == "IV-fixed":
            r = dl.inverse_variance_fixed(y, v, mask)
        else:
            raise ValueError(f"unknown method {method}")
        out = np.stack([r.mu, r.ci_low, r.ci_high])
        out = scale.to_natural(out)
    # a study left out changes k: such a table does not reproduce a k-study analysis
    return np.where(mask.all(axis=-1), out, np.nan)


def matches(values: np.ndarray, printed: Printed) -> np.ndarray:
    """Which candidates round to the printed estimate, CI low and CI high (shape (3, n))."""
    target = np.array([printed.estimate, printed.ci_low, printed.ci_high])[:, None]
    tol = printed.half_units()[:, None] * (1 + 1e-9) + 1e-12
    with np.errstate(invalid="ignore"):
        return np.abs(values - target) <= tol


# ---------------------------------------------------------------------------------------------
# enumeration
# ---------------------------------------------------------------------------------------------

def cell_bounds(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds (k, 4) of every cell: events_t, n_t, events_c, n_c."""
    k = len(problem.studies)
    total = problem.printed.participants
    n_high = total - (2 * k - 1) if total is not None else None
    low = np.zeros((k, 4), dtype=np.int64)
    high = np.zeros((k, 4), dtype=np.int64)
    low[:, [1, 3]] = 1
    high[:, [1, 3]] = n_high if n_high is not None else -1
    high[:, [0, 2]] = -1   # events: at most n (applied per candidate)
    col = {("t", "events"): 0, ("t", "n"): 1, ("c", "events"): 2, ("c", "n"): 3}
    for cell in problem.cells:
        j = problem.studies.index(cell.study)
        c = col[(cell.arm, cell.field)]
        low[j, c] = max(low[j, c], cell.low)
        high[j, c] = cell.high if high[j, c] < 0 else min(high[j, c], cell.high)
    if (high[:, [1, 3]] < 0).any():
        raise ValueError("without the number of participants every arm size needs a maximum")
    return low, high


class SearchBudgetExceeded(ValueError):
    """The enumeration would test more candidates (or walk more arm-size prefixes) than the
    budget allows; nothing was searched."""

    def __init__(self, outcome: str, n_candidates: float, budget: int, what: str = "candidate tables"):
        self.outcome, self.n_candidates, self.budget = outcome, n_candidates, budget
        super().__init__(
            f"outcome '{outcome}': {n_candidates:,.0f} {what} to test, more than the search "
            f"budget of {budget:,}; bound more arm sizes or event counts in constraints.csv "
            "(min and max), or raise the budget with --max-candidates")


def pruned_bounds(low: np.ndarray, high: np.ndarray):
    """Arm-size bounds (2k,) raised to the events' lower bounds (events never exceed n), the
    events' lower bounds and caps (2k,; -1 = only n), and whether any table is possible."""
    ev_lo = low[:, [0, 2]].ravel()
    ev_cap = high[:, [0, 2]].ravel()
    n_lo = np.maximum(low[:, [1, 3]].ravel(), ev_lo)
    n_hi = high[:, [1, 3]].ravel()
    possible = bool(((ev_cap < 0) | (ev_cap >= ev_lo)).all() and (n_lo <= n_hi).all())
    return n_lo, n_hi, ev_lo, ev_cap, possible


def count_candidates(low, high, total) -> float:
    """How many candidate tables the enumeration will test, without enumerating them: the
    coefficient of z^total in prod_cells sum_n width(n) z^n (width(n): the event counts possible
    in an arm of size n), by polynomial products (FFT for long ones). Exact below 2^53 for the
    direct products; the FFT estimate only decides the budget (the enumeration counts exactly)."""
    n_lo, n_hi, ev_lo, ev_cap, possible = pruned_bounds(low, high)
    if not possible:
        return 0.0
    polys = []
    for a, b, e, c in zip(n_lo, n_hi, ev_lo, ev_cap):
        n = np.arange(a, b + 1, dtype=float)
        polys.append(np.maximum((n if c < 0 else np.minimum(n, c)) - e + 1, 0.0))
    if total is None:
        return float(np.prod([p.sum() for p in polys]))
    need = total - int(n_lo.sum())   # the degree wanted, counted from the lowest sizes
    if need < 0:
        return 0.0
    product = np.ones(1)
    for p in polys:
        p = p[:need + 1]
        if len(product) * len(p) <= 10**7:
            product = np.convolve(product, p)[:need + 1]
        else:
            from scipy import signal   # lazily: importing it costs a cold `list` 0.4 s

            product = np.maximum(signal.fftconvolve(product, p)[:need + 1], 0.0)
    return float(product[need]) if need < len(product) else 0.0


# at most this many arm-size prefixes are walked in Python (about 5 s), whatever the count
MAX_PREFIXES = 1_000_000
# memory of one chunk of candidates (tables and the work arrays of the pooled result)
CHUNK_BYTES = 64 << 20


def arm_size_blocks(n_lo, n_hi, total, outcome: str = ""):
    """Every vector of the 2k arm sizes within bounds (summing to ``total`` when given), as
    arrays (m, 2k) in lexicographic order: all but the last cell (or two) walked with pruning,
    the last ones vectorised. Raises SearchBudgetExceeded past MAX_PREFIXES prefixes."""
    lo, hi = [int(x) for x in n_lo], [int(x) for x in n_hi]
    cells = len(lo)
    visited = 0
    if total is None:
        for combo in itertools.product(*(range(a, b + 1) for a, b in zip(lo[:-1], hi[:-1]))):
            visited += 1
            if visited > MAX_PREFIXES:
                raise SearchBudgetExceeded(outcome, visited, MAX_PREFIXES, "arm-size prefixes")
            last = np.arange(lo[-1], hi[-1] + 1)
            yield np.column_stack([np.tile(np.array(combo, np.int64), (len(last), 1)), last])
        return
    suffix_lo = [sum(lo[i:]) for i in range(cells)] + [0]
    suffix_hi = [sum(hi[i:]) for i in range(cells)] + [0]
    stack = [(0, (), 0)]
    while stack:   # depth first, the smallest value first (a stack of pending prefixes)
        i, prefix, used = stack.pop()
        if i == cells - 2:   # vectorise the last two cells: x + last = total - used
            visited += 1
            if visited > MAX_PREFIXES:
                raise SearchBudgetExceeded(outcome, visited, MAX_PREFIXES, "arm-size prefixes")
            rest = total - used
            x = np.arange(max(lo[i], rest - hi[i + 1]), min(hi[i], rest - lo[i + 1]) + 1)
            if len(x):
                head = np.tile(np.array(prefix, np.int64), (len(x), 1))
                yield np.column_stack([head, x, rest - x])
            continue
        # the values that leave the remaining cells a feasible sum, as one range
        first = max(lo[i], total - used - suffix_hi[i + 1])
        last = min(hi[i], total - used - suffix_lo[i + 1])
        stack.extend((i + 1, prefix + (v,), used + v) for v in range(last, first - 1, -1))


def candidates(low, high, total, outcome: str = "", budget: int | None = None):
    """Candidate tables (m, k, 4) in chunks of bounded memory, whatever the shape of the search:
    the event counts of every arm-size vector are enumerated by a mixed-radix index, split
    across chunks when one vector alone has more candidates than a chunk holds. Stops with
    SearchBudgetExceeded past ``budget`` candidates (a guard behind the count)."""
    k = low.shape[0]
    n_lo, n_hi, ev_lo, ev_cap, possible = pruned_bounds(low, high)
    if not possible:
        return
    chunk = max(1024, CHUNK_BYTES // (k * 4 * 8 * 8))
    seen = 0
    pending, pending_size = [], 0
    for sizes in arm_size_blocks(n_lo, n_hi, total, outcome):
        ev_hi = np.where(ev_cap < 0, sizes, np.minimum(ev_cap, sizes))
        widths = np.maximum(ev_hi - ev_lo + 1, 0)
        counts = np.prod(widths.astype(float), axis=1)
        seen += counts.sum()
        if budget is not None and seen > budget:
            raise SearchBudgetExceeded(outcome, seen, budget)
        keep = counts > 0
        sizes, widths, counts = sizes[keep], widths[keep], counts[keep].astype(np.int64)
        ends = np.cumsum(counts)
        for start in range(0, int(ends[-1]) if len(ends) else 0, chunk):
            flat = np.arange(start, min(start + chunk, int(ends[-1])), dtype=np.int64)
            row = np.searchsorted(ends, flat, side="right")
            local = flat - (ends[row] - counts[row])
            events = np.empty((len(flat), 2 * k), dtype=np.int64)
            for j in range(2 * k - 1, -1, -1):   # the last cell varies fastest
                w = widths[row, j]
                events[:, j] = ev_lo[j] + local % w
                local //= w
            block = np.empty((len(flat), k, 4), dtype=np.int64)
            block[..., 0], block[..., 2] = events[:, 0::2], events[:, 1::2]
            n = sizes[row]
            block[..., 1], block[..., 3] = n[:, 0::2], n[:, 1::2]
            pending.append(block)
            pending_size += len(block)
            if pending_size >= chunk:
                yield np.concatenate(pending)
                pending, pending_size = [], 0
    if pending:
        yield np.concatenate(pending)


def reconstruct_outcome(problem: Problem, budget: int = MAX_CANDIDATES) -> Reconstruction:
    """Every integer table that reproduces the printed pooled result of one outcome. Raises
    SearchBudgetExceeded, before searching, when there are more than ``budget`` candidates."""
    low, high = cell_bounds(problem)
    total = problem.printed.participants
    estimate = count_candidates(low, high, total)
    if estimate > budget:
        raise SearchBudgetExceeded(problem.outcome, estimate, budget)
    kept, count, n_candidates = [], 0, 0
    partial = np.zeros(4, dtype=np.int64)  # candidates matching estimate / +low / +high / all
    for block in candidates(low, high, total, problem.outcome, budget):
        n_candidates += len(block)
        ok = matches(pooled_natural(block, problem.measure, problem.method), problem.printed)
        partial += [ok[0].sum(), (ok[0] & ok[1]).sum(), (ok[0] & ok[2]).sum(), ok.all(0).sum()]
        hit = block[ok.all(axis=0)]
        count += len(hit)
        if sum(len(h) for h in kept) < MAX_KEPT:
            kept.append(hit)
    tables = (np.concatenate(kept)[:MAX_KEPT] if kept
              else np.zeros((0, len(problem.studies), 4), dtype=np.int64))
    diagnosis = ""
    if count == 0:
        p = problem.printed
        diagnosis = (f"none of {n_candidates} candidate tables reproduces the printed result: "
                     f"{partial[0]} give the estimate {p.estimate:g}, {partial[1]} of them also "
                     f"the lower limit {p.ci_low:g} and {partial[2]} the upper limit "
                     f"{p.ci_high:g}")
        if n_candidates == 0:
            diagnosis = ("no candidate table satisfies the constraints (arm sizes cannot sum "
                         "to the number of participants within their bounds)")
    return Reconstruction(problem.outcome, problem.measure, problem.method, problem.studies,
                          problem.printed, n_candidates, count, tables, diagnosis)


# ---------------------------------------------------------------------------------------------
# joint reconstruction across outcomes that share trials and arms
# ---------------------------------------------------------------------------------------------

@dataclass
class _Links:
    groups: dict = field(default_factory=dict)      # group -> [(outcome index, j, column)]
    partitions: dict = field(default_factory=dict)  # (study, arm, partition) -> [(outcome, j, c)]


def _links(problems: list[Problem]) -> _Links:
    links = _Links()
    col = {("t", "events"): 0, ("t", "n"): 1, ("c", "events"): 2, ("c", "n"): 3}
    for i, p in enumerate(problems):
        for cell in p.cells:
            where = (i, p.studies.index(cell.study), col[(cell.arm, cell.field)])
            if cell.group:
                links.groups.setdefault(cell.group, []).append(where)
            if cell.partition and cell.field == "events":
                links.partitions.setdefault((cell.study, cell.arm, cell.partition),
                                            []).append(where)
    return links


def not_searched(problems: list[Problem], exc: SearchBudgetExceeded) -> list[Reconstruction]:
    """The outcomes of one linked set, none searched because one exceeds the budget."""
    names = tuple(p.outcome for p in problems)
    out = []
    for p in problems:
        why = str(exc) if p.outcome == exc.outcome else (
            f"outcome '{p.outcome}' is reconstructed jointly with '{exc.outcome}', which is over "
            f"the search budget: {exc}")
        out.append(Reconstruction(p.outcome, p.measure, p.method, p.studies, p.printed,
                                  int(exc.n_candidates) if p.outcome == exc.outcome else 0, 0,
                                  np.zeros((0, len(p.studies), 4), dtype=np.int64), why, names,
                                  None, searched=False))
    return out


def reconstruct_jointly(problems: list[Problem], max_joint: int = 5_000_000,
                        budget: int = MAX_CANDIDATES) -> list[Reconstruction]:
    """Reconstruct outcomes that share arms together.

    Cells with the same ``group`` must hold the same number in every outcome (e.g. the arm sizes
    of the attachment outcomes of one trial), and event cells of one ``partition`` (categories
    of one classification: secure, avoidant, resistant, disorganised) sum to at most the arm
    size. Each outcome keeps the tables that belong to at least one joint solution.
    """
    try:
        single = [reconstruct_outcome(p, budget) for p in problems]
    except SearchBudgetExceeded as exc:
        return not_searched(problems, exc)
    if len(problems) == 1:
        return single
    links = _links(problems)
    sets = [r.tables for r in single]
    # 1. shared values: keep only values feasible in every outcome of the group (to a fixpoint)
    changed = True
    while changed and all(len(s) for s in sets):
        changed = False
        for members in links.groups.values():
            common = None
            for i, j, c in members:
                values = set(np.unique(sets[i][:, j, c]).tolist())
                common = values if common is None else common & values
            for i, j, c in members:
                keep = np.isin(sets[i][:, j, c], list(common))
                if not keep.all():
                    sets[i], changed = sets[i][keep], True
    # 2. joint combinations (exact group equality and partition sums), when they fit in memory
    sizes = [len(s) for s in sets]
    if all(sizes) and math.prod(sizes) <= max_joint and (links.groups or links.partitions):
        index = np.stack(np.meshgrid(*[np.arange(n) for n in sizes], indexing="ij"),
                         -1).reshape(-1, len(sets))
        ok = np.ones(len(index), bool)
        for members in links.groups.values():
            first = None
            for i, j, c in members:
                values = sets[i][index[:, i], j, c]
                first = values if first is None else first
                ok &= values == first
        n_col = {0: 1, 2: 3}
        for members in links.partitions.values():
            total = sum(sets[i][index[:, i], j, c] for i, j, c in members)
            i, j, c = members[0]
            ok &= total <= sets[i][index[:, i], j, n_col[c]]
        index = index[ok]
        sets = [s[np.unique(index[:, i])] for i, s in enumerate(sets)]
    names = tuple(p.outcome for p in problems)
    out = []
    for r, s in zip(single, sets):
        diagnosis = r.diagnosis
        if r.n_solutions and not len(s):
            diagnosis = (f"{r.n_solutions} tables reproduce this outcome alone, but none is "
                         f"consistent with the outcomes it shares arms with "
                         f"({', '.join(n for n in names if n != r.outcome)})")
        capped = r.n_solutions > len(r.tables)
        out.append(Reconstruction(r.outcome, r.measure, r.method, r.studies, r.printed,
                                  r.n_candidates, len(s) if not capped else r.n_solutions, s,
                                  diagnosis, names, r.n_solutions))
    return out
