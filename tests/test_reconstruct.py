"""Reconstruction of integer 2x2 tables from a printed pooled result (bayes_pip.reconstruct).

The reference is an independent, scalar implementation of RevMan 5's "M-H, Random" written here
from Deeks & Higgins, "Statistical algorithms in Review Manager 5" (2010), and a brute-force
enumeration with plain Python loops.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from bayes_pip import reconstruct as rc
from bayes_pip.cli import main
from bayes_pip.data import load_dataset

Z = 1.959963984540054


def revman_mh_random_rr(table):
    """RevMan 5 "M-H, Random" for risk ratios, one table [(a, n1, c, n2), ...], scalar floats.

    Study log RR and variance with 0.5 added to every cell of a study with a zero cell; the M-H
    pooled RR (no correction) for Q; DL tau^2 from that Q; inverse-variance random-effects mean.
    """
    y, v, r_num, r_den = [], [], 0.0, 0.0
    for a, n1, c, n2 in table:
        n = n1 + n2
        r_num += a * n2 / n
        r_den += c * n1 / n
        if 0 in (a, c, n1 - a, n2 - c):
            a, c, n1, n2 = a + 0.5, c + 0.5, n1 + 1.0, n2 + 1.0
        y.append(math.log((a / n1) / (c / n2)))
        v.append(1 / a - 1 / n1 + 1 / c - 1 / n2)
    if r_num == 0 or r_den == 0:  # no events in one arm of every study: not estimable
        return math.nan, math.nan, math.nan
    mh = math.log(r_num / r_den)
    w = [1 / vi for vi in v]
    q = sum(wi * (yi - mh) ** 2 for wi, yi in zip(w, y))
    s1, s2 = sum(w), sum(wi * wi for wi in w)
    tau2 = max(0.0, (q - (len(y) - 1)) / (s1 - s2 / s1))
    ws = [1 / (vi + tau2) for vi in v]
    mu = sum(wi * yi for wi, yi in zip(ws, y)) / sum(ws)
    se = 1 / math.sqrt(sum(ws))
    return math.exp(mu), math.exp(mu - Z * se), math.exp(mu + Z * se)


def printed_of(table, decimals=2):
    return tuple(round(x, decimals) for x in revman_mh_random_rr(table))


def reproduces(table, printed, decimals=(2, 2, 2)):
    if any(a == 0 and c == 0 for a, n1, c, n2 in table):
        return False
    got = revman_mh_random_rr(table)
    return all(abs(g - p) <= 0.5 * 10**-d * (1 + 1e-9) + 1e-12
               for g, p, d in zip(got, printed, decimals))


def problem(table, printed, cells, participants):
    studies = tuple(f"S{j + 1}" for j in range(len(table)))
    p = rc.Printed(*printed, decimals=(2, 2, 2), k=len(table), participants=participants)
    return rc.Problem("o", "RR", "MH-random", p, studies,
                      tuple(rc.CellRange(studies[j], arm, fld, lo, hi)
                            for j, arm, fld, lo, hi in cells))


@pytest.mark.parametrize("seed", range(6))
def test_random_tables_are_recovered_and_every_solution_reproduces_the_print(seed):
    """Random 2- and 3-study tables: the printed values (RevMan M-H random, rounded to 2
    decimals) are reconstructed with the control arms known and the intervention arms' sizes
    (within +/- 4 of the truth) and events unknown."""
    rng = np.random.default_rng(seed)
    k = 2 + seed % 2
    while True:
        n1 = rng.integers(15, 40, k)
        n2 = rng.integers(15, 40, k)
        a = rng.binomial(n1, rng.uniform(0.2, 0.7, k))
        c = rng.binomial(n2, rng.uniform(0.1, 0.5, k))
        table = [tuple(int(x) for x in t) for t in zip(a, n1, c, n2)]
        if all(x > 0 for t in table for x in (t[0], t[2])):
            break
    printed = printed_of(table)
    cells = []
    for j, (aj, n1j, cj, n2j) in enumerate(table):
        cells += [(j, "ctrl", "n", n2j, n2j), (j, "ctrl", "events", cj, cj),
                  (j, "pip", "n", n1j - 4, n1j + 4)]
    total = sum(t[1] + t[3] for t in table)
    rec = rc.reconstruct_outcome(problem(table, printed, cells, total))
    found = {tuple(map(tuple, t.tolist())) for t in rec.tables}
    assert tuple(table) in found
    assert rec.n_solutions == len(found) >= 1
    for t in found:
        assert reproduces(t, printed)
        assert sum(x[1] + x[3] for x in t) == total


def test_reconstruction_equals_brute_force_enumeration():
    """A small two-study space enumerated with plain loops and the scalar RevMan algorithm:
    the same set of tables, exactly."""
    truth = [(12, 20, 5, 22), (9, 18, 3, 17)]
    printed = printed_of(truth)
    total = 77
    cells = [(0, "ctrl", "n", 22, 22), (0, "ctrl", "events", 4, 6),
             (1, "ctrl", "n", 17, 17), (1, "ctrl", "events", 3, 3),
             (0, "pip", "n", 16, 24)]
    rec = rc.reconstruct_outcome(problem(truth, printed, cells, total))
    brute = set()
    tested = 0
    for n1a in range(16, 25):
        n1b = total - 22 - 17 - n1a
        if n1b < 1:
            continue
        for a1, c1, a2 in itertools.product(range(n1a + 1), range(4, 7), range(n1b + 1)):
            tested += 1
            t = ((a1, n1a, c1, 22), (a2, n1b, 3, 17))
            if reproduces(t, printed):
                brute.add(t)
    assert rec.n_candidates == tested
    assert {tuple(map(tuple, t.tolist())) for t in rec.tables} == brute
    assert tuple(truth) in brute


def test_no_consistent_table_says_which_printed_value_fails():
    truth = [(12, 20, 5, 22), (9, 18, 3, 17)]
    est, low, high = printed_of(truth)
    cells = [(0, "ctrl", "n", 22, 22), (0, "ctrl", "events", 5, 5), (1, "ctrl", "n", 17, 17),
             (1, "ctrl", "events", 3, 3), (0, "pip", "n", 20, 20)]
    rec = rc.reconstruct_outcome(problem(truth, (est, low, high + 5), cells, 77))
    assert rec.n_solutions == 0
    assert "give the estimate" in rec.diagnosis and "the upper limit" in rec.diagnosis


def test_joint_reconstruction_ties_arm_sizes_and_partitions():
    """Two outcomes of the same arms: a shared group for the intervention arm sizes narrows
    each outcome's set to the tables that fit together, and a partition keeps the categories
    within the arm size."""
    a_truth = [(12, 20, 5, 22), (9, 18, 3, 17)]
    b_truth = [(6, 20, 14, 22), (7, 18, 10, 17)]
    problems = []
    for name, truth in (("a", a_truth), ("b", b_truth)):
        p = printed_of(truth)
        cells = []
        for j, (aj, n1j, cj, n2j) in enumerate(truth):
            cells += [rc.CellRange(f"S{j + 1}", "ctrl", "n", n2j, n2j, group=f"c{j}"),
                      rc.CellRange(f"S{j + 1}", "ctrl", "events", cj, cj, partition="x"),
                      rc.CellRange(f"S{j + 1}", "pip", "n", n1j - 3, n1j + 3, group=f"p{j}"),
                      rc.CellRange(f"S{j + 1}", "pip", "events", 0, 40, partition="x")]
        problems.append(rc.Problem(name, "RR", "MH-random",
                                   rc.Printed(*p, (2, 2, 2), 2, 77), ("S1", "S2"), tuple(cells)))
    joint = rc.reconstruct_jointly(problems)
    for r, truth in zip(joint, (a_truth, b_truth)):
        tables = {tuple(map(tuple, t.tolist())) for t in r.tables}
        assert tuple(truth) in tables
        assert r.n_solutions <= r.n_single
    sizes = [{(int(t[0, 1]), int(t[1, 1])) for t in r.tables} for r in joint]
    assert sizes[0] == sizes[1]


# ---------------------------------------------------------------------------------------------
# the bundled PIP data
# ---------------------------------------------------------------------------------------------

# Each table below reproduces the review's printed RR and CI (Barlow et al. 2015, abstract)
# under constraints.csv; the joint reconstruction leaves exactly one for each outcome.
PIP_TABLES = {
    "secure_attachment_post": [(31, 46, 9, 54), (8, 14, 1, 54)],
    "avoidant_attachment_post": [(8, 46, 19, 54), (1, 14, 10, 54)],
    "disorganised_attachment_post": [(5, 46, 22, 54), (4, 14, 42, 54)],
    "insecure_to_secure_post": [(25, 46, 4, 54), (8, 14, 1, 54)],
}


def test_pip_attachment_tables_reproduce_the_printed_results():
    ds = load_dataset()
    for outcome, table in PIP_TABLES.items():
        rec = ds.reconstruction(outcome)
        assert rec.n_solutions == 1
        assert rec.tables[0].tolist() == [list(t) for t in table]
        pub = ds.published_result(outcome)
        decimals = rec.printed.decimals
        assert reproduces(table, (pub.estimate, pub.ci_low, pub.ci_high), decimals)
        assert sum(t[1] + t[3] for t in table) == pub.participants == 168
        # categories of one classification stay within the arm (secure + avoidant +
        # disorganised <= n; resistant takes the rest)
    arms = np.array([PIP_TABLES[o] for o in PIP_TABLES if o != "insecure_to_secure_post"])
    assert (arms[:, :, 0].sum(axis=0) <= arms[0, :, 1]).all()
    assert (arms[:, :, 2].sum(axis=0) <= arms[0, :, 3]).all()


def test_pip_secure_attachment_alone_has_two_tables_and_the_joint_one_is_unique():
    rec = load_dataset().reconstruction("secure_attachment_post")
    assert rec.n_single == 2 and rec.n_solutions == 1


def test_reconstruct_command_text_and_json(capsys):
    assert main(["reconstruct", "secure_attachment_post"]) == 0
    out = capsys.readouterr().out
    assert "Cicchetti 2006b: 8/14 vs 1/54" in out and "not printed data" in out
    assert main(["reconstruct", "disorganised_attachment_post", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n_solutions"] == 1 and d["method"] == "MH-random"
    assert [round(d["reproduces"][0][k], 2) for k in ("estimate", "ci_low", "ci_high")] == \
        [0.32, 0.17, 0.58]
    assert d["solutions"][0][1] == {"study": "Cicchetti 2006b", "events_t": 4, "n_t": 14,
                                    "events_c": 42, "n_c": 54}


def test_fit_at_the_reconstructed_level_is_hierarchical_and_labelled(capsys):
    assert main(["fit", "secure_attachment_post", "--engine", "exact", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["level"] == "reconstructed" and d["k"] == 2
    assert d["tau"] is not None and d["prediction"] is not None and len(d["studies"]) == 2
    assert d["reconstruction"]["n_tables"] == 1
    assert "not printed data" in d["data_status"]
    # the classical reference pools the table as the review did and reproduces the print
    assert (round(d["dl"]["estimate"], 2), round(d["dl"]["ci_low"], 2),
            round(d["dl"]["ci_high"], 2)) == (8.93, 1.25, 63.70)
    assert d["dl"]["method"] == "MH-random"
    assert main(["fit", "secure_attachment_post", "--engine", "exact"]) == 0
    text = capsys.readouterr().out
    assert "reconstructed" in text and "not printed data" in text


def test_pip_joint_reconstruction_recovers_the_inferred_control_arm_size():
    """The Cicchetti 2006b control arm (n = 54) is an inference; bounded only within 49-59, the
    four outcomes together still admit exactly one set of tables, with n = 54 (each outcome
    alone admits up to 15)."""
    import dataclasses

    ds = load_dataset()
    problems = []
    for o in ds.linked_outcomes("secure_attachment_post"):
        p = ds.reconstruction_problem(o)
        cells = tuple(dataclasses.replace(c, low=49, high=59)
                      if (c.study, c.arm, c.field) == ("Cicchetti 2006b", "c", "n") else c
                      for c in p.cells)
        problems.append(dataclasses.replace(p, cells=cells))
    joint = rc.reconstruct_jointly(problems)
    assert max(r.n_single for r in joint) > 1
    for r in joint:
        assert r.n_solutions == 1
        assert r.tables[0].tolist() == [list(t) for t in PIP_TABLES[r.outcome]]


# ---------------------------------------------------------------------------------------------
# constraints.csv is validated like every other file
# ---------------------------------------------------------------------------------------------

def write_review(tmp_path, constraints: str):
    d = tmp_path / "data"
    d.mkdir()
    (d / "outcomes.csv").write_text(
        "outcome,label,comparison,measure,benefit\nsec,Secure,pip_vs_control,RR,higher\n")
    (d / "published.csv").write_text(
        "outcome,measure,estimate,ci_low,ci_high,k,participants,model,grade,source\n"
        "sec,RR,8.93,1.25,63.7,2,168,random effects,low,abstract\n")
    (d / "constraints.csv").write_text(constraints)
    return d


HEADER = "outcome,study,arm,field,min,max,source\n"
GOOD = ("sec,A,c,n,54,54,s\nsec,A,c,events,9,9,s\n"
        "sec,B,c,n,54,54,s\nsec,B,c,events,1,1,s\n")


@pytest.mark.parametrize("rows, message", [
    ("sec,A,placebo,n,54,54,s\n" + GOOD, "row 2, column 'arm': 'placebo' is not allowed"),
    ("sec,A,t,n,60,50,s\n" + GOOD, "row 2, column 'min': min 60 is greater than max 50"),
    ("sec,A,t,n,5.5,50,s\n" + GOOD, "column 'min': '5.5' is not a whole number"),
    ("sec,A,t,n,1,1e300,s\n" + GOOD, "row 2, column 'max': max 1e+300 is more than"),
    ("sec,A,t,n,1,nan,s\n" + GOOD, "row 2, column 'max': 'nan' is not a finite number"),
    ("other,A,t,n,1,50,s\n" + GOOD, "row 2, column 'outcome': outcome 'other' is not defined"),
    ("sec,A,c,n,54,54,s\n" + GOOD, "this cell (outcome, study, arm, field) is bounded twice"),
    ("sec,A,c,n,54,54,\n" + GOOD[len("sec,A,c,n,54,54,s\n"):], "column 'source'"),
    ("sec,A,c,n,54,54,s\nsec,A,c,events,9,9,s\n",
     "constraints name 1 studies for outcome 'sec'; the review pooled 2"),
])
def test_bad_constraints_are_one_line_errors(tmp_path, rows, message):
    from conftest import run_main

    d = write_review(tmp_path, HEADER + rows)
    r = run_main("reconstruct", "sec", "--data", str(d))
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "constraints.csv" in r.stderr


def test_a_small_review_reconstructs_through_the_cli(tmp_path):
    from conftest import run_main

    d = write_review(tmp_path, HEADER + GOOD + "sec,A,t,n,1,66,s\nsec,B,t,n,1,53,s\n")
    r = run_main("reconstruct", "sec", "--data", str(d), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n_solutions"] == 2   # secure attachment alone: two tables (see the PIP data)
    assert {tuple(t[1].values())[1:] for t in out["solutions"]} == {(8, 14, 1, 54),
                                                                    (18, 51, 1, 54)}
    r = run_main("list", "--data", str(d))
    assert "reconstructed: 2 integer tables consistent" in r.stdout


# ---------------------------------------------------------------------------------------------
# the search has a budget: counted before enumerating, enumerated in bounded chunks
# ---------------------------------------------------------------------------------------------

# seed 1 draws the widest bounds (about 25 s of plain looping): it runs with the slow checks
@pytest.mark.parametrize("seed", [pytest.param(s, marks=pytest.mark.slow) if s == 1 else s
                                  for s in range(6)])
def test_candidate_count_and_order_equal_a_plain_loop(seed, monkeypatch):
    """Random bounds on two or three studies, with and without a total: the arithmetic count
    equals the number of tables a plain itertools loop yields, and the chunked enumeration
    (chunks forced down to 1,024 tables, so one arm-size vector spans several) gives exactly
    those tables in the same order."""
    rng = np.random.default_rng(seed)
    k = 2 + seed % 2
    low = np.zeros((k, 4), np.int64)
    high = np.zeros((k, 4), np.int64)
    for j in range(k):
        for c in (1, 3):
            a = int(rng.integers(1, 12))
            low[j, c], high[j, c] = a, a + int(rng.integers(0, 4))
        for c in (0, 2):
            low[j, c] = int(rng.integers(0, 3))
            high[j, c] = -1 if rng.random() < 0.5 else int(rng.integers(low[j, c], 14))
    total = None if seed % 3 == 0 else int((low[:, [1, 3]].sum() + high[:, [1, 3]].sum()) // 2)
    plain = []
    ranges = [range(low[j, c], high[j, c] + 1) for j in range(k) for c in (1, 3)]
    for sizes in itertools.product(*ranges):
        if total is not None and sum(sizes) != total:
            continue
        ev = []
        for j in range(k):
            for a, c in ((0, 0), (1, 2)):
                n = sizes[2 * j + a]
                cap = n if high[j, c] < 0 else min(n, high[j, c])
                ev.append(range(low[j, c], cap + 1))
        for events in itertools.product(*ev):
            plain.append([(events[2 * j], sizes[2 * j], events[2 * j + 1], sizes[2 * j + 1])
                          for j in range(k)])
    assert rc.count_candidates(low, high, total) == len(plain)
    monkeypatch.setattr(rc, "CHUNK_BYTES", 1)
    found = [t.tolist() for block in rc.candidates(low, high, total) for t in block]
    assert found == [[list(row) for row in t] for t in plain]


def test_a_search_over_the_budget_is_refused_before_it_starts(tmp_path):
    """20,000 participants and only the event counts known: ~1.3e12 arm-size vectors (the old
    search ran until killed). Counted in well under a second, refused with one line; `list`
    shows the published result and says why nothing was reconstructed; --max-candidates below
    the real count refuses the bundled secure-attachment search too."""
    import time

    from conftest import run_main

    d = write_review(tmp_path, HEADER + "sec,A,c,events,9,9,s\nsec,B,c,events,1,1,s\n"
                     "sec,A,t,events,3,3,s\nsec,B,t,events,5,5,s\n")
    published = d / "published.csv"
    published.write_text(published.read_text().replace(",168,", ",20000,"))
    start = time.perf_counter()
    r = run_main("reconstruct", "sec", "--data", str(d))
    assert time.perf_counter() - start < 10
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    # arm sizes at least the events (3, 9, 5, 1) summing to 20,000: C(19,982 + 3, 3) vectors
    assert math.comb(19_985, 3) == 1_330_135_889_320
    assert ("outcome 'sec': 1,330,135,889,320 candidate tables to test, more than the search "
            "budget of 10,000,000") in r.stderr
    r = run_main("list", "--data", str(d))
    assert r.returncode == 0 and "tables not reconstructed: 1,330,135,889,320 candidates" in r.stdout
    r = run_main("fit", "sec", "--data", str(d), "--engine", "exact", "--level", "reconstructed")
    assert r.returncode == 2 and "more than the search budget" in r.stderr
    r = run_main("reconstruct", "secure_attachment_post", "--max-candidates", "30000")
    assert r.returncode == 2 and "38,054 candidate tables to test" in r.stderr, r.stderr
