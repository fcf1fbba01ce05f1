"""The whole-database run (`database` command, bayes_pip.database): streamed output equal to the
in-memory one, to the batched engine and to bma one at a time; resume after an interrupt; bad
input refused before anything is written; memory bounded by the chunk."""

from __future__ import annotations

import json
import numpy as np
import pandas as pd
import pytest

from conftest import run_main
from bayes_pip import database
from bayes_pip.engines.batch import exact_batch
from bayes_pip.errors import InputError

SETTINGS = database.Settings(measure="OR", benefit="lower")


def long_table(n=60, seed=3, k_max=12, se=False):
    """n simulated meta-analyses (k from 1 to k_max), one row per study."""
    rng = np.random.default_rng(seed)
    k = rng.integers(1, k_max + 1, n)
    ids = np.repeat([f"review-{i:03d}" for i in range(n)], k)
    mu = np.repeat(rng.normal(0, 0.5, n), k)
    tau = np.repeat(rng.choice([0.0, 0.2, 0.6], n), k)
    s = rng.uniform(0.1, 0.9, len(ids))
    table = pd.DataFrame({"meta_id": ids, "y": rng.normal(mu, np.sqrt(tau**2 + s**2))})
    if se:
        table["se"] = s
    else:
        table["v"] = s**2
    return table


def written(table, tmp_path, name="in.csv"):
    path = tmp_path / name
    table.to_csv(path, index=False)
    return path


def test_streamed_output_equals_in_memory_one(tmp_path):
    """Chunks of 17 rows split meta-analyses across chunk boundaries; the file is byte-identical
    to the in-memory table (each row's numbers do not depend on its neighbours)."""
    table = long_table()
    path = written(table, tmp_path)
    record = database.run(path, tmp_path / "out", SETTINGS, chunk_rows=17)
    text = (tmp_path / "out" / "results.csv").read_text()
    memory = database.analyse_table(table, SETTINGS)
    assert text == memory.to_csv(index=False, lineterminator="\n")
    assert record["meta_analyses"] == 60 and record["studies"] == len(table)
    assert not (tmp_path / "out" / "progress.json").exists()
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["schema_version"] and run["settings"]["tol"] == 1e-10
    assert run["priors_used"][0]["prior"] == "halfnormal-0.5"


def test_rows_equal_the_batched_engine_and_bma(tmp_path):
    """Every row equals the batched engine on the padded arrays (exactly: the same computation);
    two rows' Bayes factors equal bma one at a time (1e-8, the batched engine's tolerance)."""
    from bayes_pip.engines import evidence as ev

    table = long_table(n=25, seed=5)
    out = database.analyse_table(table, SETTINGS)
    prior = database.resolved_prior(None, "OR", "lower", None)
    groups = [g for _, g in table.groupby("meta_id", sort=False)]
    k_max = max(len(g) for g in groups)
    y = np.full((len(groups), k_max), np.nan)
    v = np.full_like(y, np.nan)
    for i, g in enumerate(groups):
        y[i, :len(g)], v[i, :len(g)] = g.y, g.v
    ref = exact_batch(y, v, None, prior, "lower", evidence=True)
    assert (out.k.to_numpy() == ref.k.values).all()
    for column, values in (("mu_median", ref.mu.sel(quantile=0.5)),
                           ("tau_upper", ref.tau.sel(quantile=0.975)),
                           ("new_lower", ref.theta_new.sel(quantile=0.025)),
                           ("p_benefit", ref.p_benefit), ("log_bf_effect", ref.log_bf_effect),
                           ("prob_RE", ref.posterior_probability.sel(model="RE")),
                           ("p_benefit_averaged", ref.p_benefit_averaged)):
        np.testing.assert_allclose(out[column].to_numpy(), np.asarray(values), rtol=1e-12,
                                   atol=1e-14, err_msg=column)
    for i in np.flatnonzero(out.k.to_numpy() > 1)[:2]:
        g = groups[i]
        one = ev.evidence(g.y.to_numpy(), g.v.to_numpy(), prior.mu, prior.tau)
        assert abs(out.log_bf_effect[i] - one.log_bf_effect) < 1e-8 * max(1, abs(one.log_bf_effect))
        assert abs(out.log_ml_RE[i] - one.log_ml["RE"]) < 1e-8 * max(1, abs(one.log_ml["RE"]))


def test_se_column_equals_variance_column(tmp_path):
    with_se = long_table(n=20, se=True)
    with_v = with_se.assign(v=with_se.se**2).drop(columns="se")
    a = database.analyse_table(with_se, SETTINGS)
    b = database.analyse_table(with_v, SETTINGS)
    pd.testing.assert_frame_equal(a, b)


def test_resume_after_an_interrupt_gives_the_uninterrupted_file(tmp_path):
    table = long_table(n=80, seed=8)
    path = written(table, tmp_path)
    out = tmp_path / "out"
    calls = []

    def interrupt_after_three(done, total, what):
        calls.append(done)
        if len(calls) == 3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        database.run(path, out, SETTINGS, chunk_rows=23, progress=interrupt_after_three)
    assert not (out / "results.csv").exists()
    state = json.loads((out / "progress.json").read_text())
    assert state["metas_done"] == calls[-1] and 0 < calls[-1] < 80
    assert "are kept in" in database.progress_of(out)
    with open(out / "results.csv.partial", "ab") as f:   # a chunk cut off mid-write
        f.write(b"review-999,3,OR,lower,halfnormal-0.5,0.12")
    with pytest.raises(InputError, match="unfinished run"):
        database.run(path, out, SETTINGS, chunk_rows=23)
    with pytest.raises(InputError, match="settings differ"):
        database.run(path, out, database.Settings(measure="OR", benefit="lower", tol=1e-8),
                     resume=True)
    database.run(path, out, SETTINGS, chunk_rows=31, resume=True)
    database.run(path, tmp_path / "fresh", SETTINGS)
    assert (out / "results.csv").read_bytes() == (tmp_path / "fresh" / "results.csv").read_bytes()
    assert not (out / "progress.json").exists() and not (out / "results.csv.partial").exists()


def test_blocks_hold_at_most_a_chunk_and_one_meta_analysis(tmp_path):
    """Memory is bounded by the chunk: no block holds more study rows than the chunk plus the
    largest meta-analysis, and every meta-analysis arrives whole, once."""
    table = long_table(n=200, seed=9, k_max=40)
    path = written(table, tmp_path)
    sizes, ids = [], []
    for b in database.blocks(path, SETTINGS, chunk_rows=50):
        sizes.append(len(b.y))
        ids.extend(b.ids)
        assert b.k.sum() == len(b.y)
    assert max(sizes) <= 50 + 40
    assert ids == list(dict.fromkeys(table.meta_id))


def test_measures_and_benefits_from_columns_and_the_prior_used(tmp_path):
    """Per-meta-analysis measure and benefit; turner on an SMD meta-analysis is replaced by its
    counterpart (rhodes) and the prior column says so; benefit higher flips P(benefit)."""
    table = long_table(n=4, seed=11)
    ids = table.meta_id.unique()
    table["measure"] = table.meta_id.map(dict(zip(ids, ["OR", "SMD", "OR", "RR"])))
    table["benefit"] = table.meta_id.map(dict(zip(ids, ["lower", "higher", "higher", "lower"])))
    out = database.analyse_table(table, database.Settings(prior="turner"))
    assert list(out.prior) == ["turner", "rhodes", "turner", "turner"]
    flipped = database.analyse_table(table.assign(benefit="lower", measure="OR"),
                                     database.Settings(prior="turner"))
    assert abs(out.p_benefit[2] + flipped.p_benefit[2] - 1) < 1e-12
    record = database.run(written(table, tmp_path), tmp_path / "out",
                          database.Settings(prior="turner"))
    used = {p["measure"]: p for p in record["priors_used"]}
    assert used["SMD"]["prior"] == "rhodes" and "'turner' does not apply to SMD" in used["SMD"]["note"]
    assert used["OR"]["note"] == "" and used["OR"]["asked_for"] == "turner"


def test_a_run_stopped_before_its_first_chunk_leaves_nothing(tmp_path, monkeypatch):
    """Ctrl-C (or a failure) while the first chunk is analysed: no empty partial file, and no
    output directory where there was none (a directory the user gave stays, empty)."""
    def interrupted(block, settings):
        raise KeyboardInterrupt
    path = written(long_table(n=5), tmp_path)
    out = tmp_path / "new" / "out"
    with monkeypatch.context() as m:
        m.setattr(database, "analyse", interrupted)
        with pytest.raises(KeyboardInterrupt):
            database.run(path, out, SETTINGS)
    assert not out.exists() and (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    with monkeypatch.context() as m:
        m.setattr(database, "analyse", interrupted)
        with pytest.raises(KeyboardInterrupt):
            database.run(path, kept, SETTINGS)
    assert kept.exists() and not list(kept.iterdir())    # the directory was the user's


def test_an_effect_too_large_to_square_is_a_row_that_says_why(tmp_path):
    """|y| = 1e300 overflows the fixed-effect sums quietly (no warning on the console): the row
    has no numbers and its error column says why; the other row is untouched."""
    import warnings

    table = pd.DataFrame({"meta_id": ["a", "a", "b", "b"], "y": [1e300, 0.1, 0.2, -0.1],
                          "v": [0.2, 0.2, 0.1, 0.3]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = database.analyse_table(table, SETTINGS)
    assert out.error[0] != "" and out.drop(columns=["meta_id", "k", "measure", "benefit",
                                                     "prior", "error"]).iloc[0].isna().all()
    assert out.error[1] == "" and np.isfinite(out.log_ml_RE[1])


def test_a_row_without_a_posterior_says_why(tmp_path):
    table = pd.DataFrame({"meta_id": ["a", "a", "b", "b"], "y": [0.1, 0.3, 0.2, -0.1],
                          "v": [0.1, 0.2, 1e300, 1e300]})
    out = database.analyse_table(table, SETTINGS)
    assert out.error[0] == "" and np.isfinite(out.mu_median[0])
    assert "no finite posterior" in out.error[1] and np.isnan(out.mu_median[1])


BAD = [
    ("meta_id,y,v\na,0.1,0.2\nb,0.1,0.2\na,0.3,0.1\n", "row 4, column 'meta_id'", "consecutive"),
    ("meta_id,y,v\na,0.1,0.2\na,abc,0.2\n", "row 3, column 'y'", "not a finite number"),
    ("meta_id,y,v\na,0.1,0.2\na,0.1,-0.2\n", "row 3, column 'v'", "positive"),
    ("meta_id,y,v\na,0.1,0.2\na,inf,0.2\n", "row 3, column 'y'", "finite"),
    ("meta_id,y\na,0.1\n", "row 1", "v (or se)"),
    ("meta_id,y,v,measure\na,0.1,0.2,OR\na,0.1,0.2,RR\n", "row 3, column 'measure'",
     "one measure per meta-analysis"),
    ("meta_id,y,v,benefit\na,0.1,0.2,up\n", "row 2, column 'benefit'", "not allowed"),
    ("meta_id,y,v\n,0.1,0.2\n", "row 2, column 'meta_id'", "printable"),
    ("", "", "empty"),
    ("meta_id,y,v\n", "", "no meta-analyses"),
]


@pytest.mark.parametrize("text,where,what", BAD)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, text, where, what):
    path = tmp_path / "in.csv"
    path.write_text(text)
    out = tmp_path / "out"
    r = run_main("database", str(path), "--out", str(out), "--measure", "OR", "--benefit",
                 "lower")
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert where in r.stderr and what in r.stderr, r.stderr
    assert not out.exists()


def test_cli_names_what_it_needs_and_runs(tmp_path):
    path = written(long_table(n=10), tmp_path)
    r = run_main("database", str(path), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "--measure" in r.stderr
    r = run_main("database", str(path), "--out", str(tmp_path / "o"), "--measure", "OR",
                 "--benefit", "lower", "--prior", "nope")
    assert r.returncode == 2 and "no such prior set" in r.stderr
    for tol in ("0", "1e-3", "nan"):
        r = run_main("database", str(path), "--out", str(tmp_path / "o"), "--measure", "OR",
                     "--benefit", "lower", "--tol", tol)
        assert r.returncode == 2 and f"--tol {float(tol):g}: give a number from 1e-13 to " \
            "0.0001" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not (tmp_path / "o").exists()
    with pytest.raises(InputError, match="tol=0: give the quadrature's relative error tolerance"):
        database.run(path, tmp_path / "o", database.Settings(measure="OR", benefit="lower", tol=0))
    assert not (tmp_path / "o").exists()
    r = run_main("database", str(path), "--out", str(tmp_path / "o"), "--measure", "OR",
                 "--benefit", "lower", "--no-evidence")
    assert r.returncode == 0, r.stderr
    assert "10 meta-analyses" in r.stdout and "halfnormal-0.5" in r.stdout
    out = pd.read_csv(tmp_path / "o" / "results.csv")
    assert "log_bf_effect" not in out.columns and len(out) == 10
    one = written(long_table(n=10).query("meta_id == 'review-000'").head(1), tmp_path, "one.csv")
    r = run_main("database", str(one), "--out", str(tmp_path / "one"), "--measure", "OR",
                 "--benefit", "lower", "--no-evidence")
    assert r.returncode == 0 and r.stdout.startswith("1 meta-analysis (1 study) in "), r.stdout


@pytest.mark.slow
def test_dask_run_equals_serial(tmp_path):
    path = written(long_table(n=40), tmp_path)
    database.run(path, tmp_path / "serial", SETTINGS, chunk_rows=20)
    database.run(path, tmp_path / "dask", SETTINGS, chunk_rows=20, scheduler="local:2")
    assert (tmp_path / "serial" / "results.csv").read_bytes() == \
        (tmp_path / "dask" / "results.csv").read_bytes()
