"""Reconstruction speed: the vectorised enumeration against a plain per-table loop, in one run.

    python benchmarks/reconstruct.py

1. The bundled review's secure-attachment outcome (2 studies, both intervention arm sizes and
   both intervention event counts unknown, control arms bounded by constraints.csv): every
   candidate table tested with RevMan's M-H random-effects algorithm, alone and jointly with
   the three other attachment outcomes.
2. The same candidates tested one at a time by a scalar Python implementation of the same
   algorithm (the obvious alternative), timed on a sample and scaled to all candidates.
3. A harder case: additionally the control arm sizes of both studies unknown within +/- 5.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from bayes_pip import reconstruct as rc
from bayes_pip.data import load_dataset

Z = 1.959963984540054


def scalar_mh_random_rr(table):
    y, v, num, den = [], [], 0.0, 0.0
    for a, n1, c, n2 in table:
        n = n1 + n2
        num += a * n2 / n
        den += c * n1 / n
        if 0 in (a, c, n1 - a, n2 - c):
            a, c, n1, n2 = a + 0.5, c + 0.5, n1 + 1.0, n2 + 1.0
        y.append(math.log((a / n1) / (c / n2)))
        v.append(1 / a - 1 / n1 + 1 / c - 1 / n2)
    if num == 0 or den == 0:
        return math.nan, math.nan, math.nan
    mh = math.log(num / den)
    w = [1 / x for x in v]
    q = sum(wi * (yi - mh) ** 2 for wi, yi in zip(w, y))
    s1, s2 = sum(w), sum(wi * wi for wi in w)
    tau2 = max(0.0, (q - (len(y) - 1)) / (s1 - s2 / s1))
    ws = [1 / (x + tau2) for x in v]
    mu = sum(wi * yi for wi, yi in zip(ws, y)) / sum(ws)
    se = 1 / math.sqrt(sum(ws))
    return math.exp(mu), math.exp(mu - Z * se), math.exp(mu + Z * se)


def main() -> None:
    ds = load_dataset()
    problem = ds.reconstruction_problem("secure_attachment_post")
    t0 = time.perf_counter()
    single = rc.reconstruct_outcome(problem)
    t_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    linked = [ds.reconstruction_problem(o) for o in ds.linked_outcomes("secure_attachment_post")]
    joint = rc.reconstruct_jointly(linked)
    t_joint = time.perf_counter() - t0
    print(f"1. secure_attachment_post: {single.n_candidates} candidates, {single.n_solutions} "
          f"consistent, {t_single:.3f} s vectorised; jointly with {len(linked) - 1} outcomes "
          f"({sum(r.n_candidates for r in joint)} candidates): {joint[0].n_solutions} "
          f"consistent, {t_joint:.3f} s")

    low, high = rc.cell_bounds(problem)
    sample = []
    for block in rc.candidates(low, high, problem.printed.participants):
        sample.append(block)
        if sum(len(b) for b in sample) >= 5000:
            break
    sample = np.concatenate(sample)[:5000]
    t0 = time.perf_counter()
    for t in sample.tolist():
        scalar_mh_random_rr(t)
    per_table = (time.perf_counter() - t0) / len(sample)
    loop = per_table * single.n_candidates
    print(f"2. scalar loop: {per_table * 1e6:.1f} us per table, {loop:.2f} s for all "
          f"{single.n_candidates} candidates; vectorised is {loop / t_single:.0f}x faster")

    cells = []
    for c in problem.cells:
        if c.arm == "c" and c.field == "n":
            c = dataclasses.replace(c, low=c.low - 5, high=c.high + 5)
        cells.append(c)
    harder = dataclasses.replace(problem, cells=tuple(cells))
    t0 = time.perf_counter()
    r = rc.reconstruct_outcome(harder)
    t_hard = time.perf_counter() - t0
    print(f"3. control arm sizes also unknown (+/- 5): {r.n_candidates} candidates, "
          f"{r.n_solutions} consistent, {t_hard:.1f} s vectorised (scalar loop, estimated: "
          f"{per_table * r.n_candidates:.0f} s; ratio {per_table * r.n_candidates / t_hard:.0f}x)")


if __name__ == "__main__":
    main()
