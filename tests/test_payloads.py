"""Likelihood payloads and engines as plug-ins: payloads built from data, engines that refuse
what they cannot fit in one line, and a toy engine from one module outside the package that
runs `fit`, `compare-priors` and `calibrate` without any other file naming it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_pip import engines, payloads
from bayes_pip.engines.base import Problem
from bayes_pip.errors import InputError
from conftest import run_main

DATA = Path(__file__).resolve().parents[1] / "data"
CRINS = str(DATA / "crins2014")


@pytest.fixture()
def toy():
    engines.register("toy", "toy_engine")
    yield engines.get("toy")
    engines.REGISTRY.pop("toy")


def attachment_categories():
    """The three-arm trial (Cicchetti 2006b) of the bundled category counts, by arm name."""
    frame = pd.read_csv(DATA / "pip" / "categories.csv")
    return payloads.category_counts(frame[frame["study"] == "Cicchetti 2006b"],
                                    "attachment_category_post",
                                    ("secure", "avoidant", "resistant", "disorganised"),
                                    reference="disorganised")


def test_category_counts_from_the_bundled_file():
    """Cicchetti 2006b by arm and Strange Situation category (data/pip/categories.csv): the
    arm totals are the analysed sizes the source gives (28, 22, 54)."""
    cc = attachment_categories()
    assert cc.study == ("Cicchetti 2006b",) and cc.counts.shape == (1, 3, 4)
    assert cc.arms[2] == "CS (community standard)"
    np.testing.assert_array_equal(cc.counts.sum(axis=2), [[28, 22, 54]])
    np.testing.assert_array_equal(cc.counts[0, 2], [1, 10, 1, 42])


def contrasts_from_categories(cc):
    """Log odds of secure attachment, each active arm against the shared control: two
    correlated contrasts per study, covariance from the shared arm (0.5 added to every cell,
    as the review's zero-cell rule does)."""
    secure = cc.counts[:, :, 0] + 0.5
    other = cc.counts.sum(axis=2) - cc.counts[:, :, 0] + 0.5
    logit, var = np.log(secure / other), 1 / secure + 1 / other
    y = [logit[i, :2] - logit[i, 2] for i in range(cc.k)]
    S = [np.diag(var[i, :2]) + var[i, 2] for i in range(cc.k)]
    return payloads.Contrasts(cc.study, (("IPP vs CS", "PPI vs CS"),) * cc.k, tuple(y), tuple(S))


def test_contrasts_from_a_three_arm_trial():
    c = contrasts_from_categories(attachment_categories())
    # closed form: log OR of secure, IPP vs CS = log((17.5/11.5) / (1.5/53.5))
    assert c.y[0][0] == pytest.approx(np.log(17.5 / 11.5) - np.log(1.5 / 53.5), abs=1e-12)
    # the shared control arm's variance is the covariance of the two contrasts
    assert c.S[0][0, 1] == pytest.approx(1 / 1.5 + 1 / 53.5, abs=1e-12)


@pytest.mark.parametrize("name", ["exact", "pymc", "binomial-exact", "binomial", "conjugate"])
@pytest.mark.parametrize("shape", ["categories", "contrasts"])
def test_engines_refuse_payloads_they_cannot_fit(name, shape):
    cc = attachment_categories()
    payload = cc if shape == "categories" else contrasts_from_categories(cc)
    engine = engines.get(name)
    with pytest.raises(InputError) as err:
        engine.fit(Problem(None, "study", payload=payload), None, 1, None)
    message = str(err.value)
    assert "\n" not in message and f"--engine {name} fits" in message
    assert payload.kind in message


@pytest.mark.parametrize("bad, message", [
    (dict(counts=np.array([[[1, 2], [3, -1]]])), "whole numbers >= 0"),
    (dict(counts=np.array([[[1, 2.5], [3, 1]]])), "whole numbers >= 0"),
    (dict(counts=np.array([[[1, np.nan], [3, 1]]])), "missing in every arm"),
    (dict(counts=np.array([[[0, 0], [3, 1]]])), "at least one patient"),
    (dict(counts=np.ones((1, 2, 3))), "counts need shape"),
    (dict(reference="other"), "reference category 'other'"),
])
def test_bad_category_counts_are_one_line_errors(bad, message):
    args = dict(study=("s",), arms=("t", "c"), categories=("a", "b"),
                counts=np.array([[[1, 2], [3, 1]]]), reference=None)
    with pytest.raises(InputError, match=message) as err:
        payloads.CategoryCounts(**{**args, **bad})
    assert "\n" not in str(err.value)


def test_a_category_missing_in_a_study_is_kept_not_refused():
    cc = payloads.CategoryCounts(("s1", "s2"), ("t", "c"), ("a", "b", "c"),
                                 np.array([[[1, 2, 3], [3, 1, 2]],
                                           [[4, 5, np.nan], [6, 7, np.nan]]]))
    assert np.isnan(cc.counts[1, :, 2]).all() and cc.k == 2


def test_category_file_errors_name_the_cell():
    frame = pd.read_csv(DATA / "pip" / "categories.csv")
    doubled = pd.concat([frame, frame.iloc[[0]]])
    with pytest.raises(InputError, match="appears twice"):
        payloads.category_counts(doubled, "attachment_category_post")
    with pytest.raises(InputError, match="unknown category 'disorganised'"):
        payloads.category_counts(frame, "attachment_category_post", ("avoidant", "resistant"))


def test_bad_contrasts_are_one_line_errors():
    with pytest.raises(InputError, match="positive definite"):
        payloads.Contrasts(("s",), (("a", "b"),), (np.zeros(2),), (np.array([[1, 2], [2, 1]]),))
    with pytest.raises(InputError, match="2 contrasts but y"):
        payloads.Contrasts(("s",), (("a", "b"),), (np.zeros(3),), (np.eye(2),))


def test_an_engine_without_regression_refuses_moderators(toy):
    data = payloads.NormalEffects(("a", "b", "c"), [0.1, 0.2, 0.3], [0.1, 0.1, 0.1],
                                  X=np.ones((3, 2)))
    with pytest.raises(InputError, match="does not fit a meta-regression"):
        toy.fit(Problem(None, "study", payload=data), None, 1, None)


def test_meta_regression_runs_through_the_engine_registry(toy):
    """`fit --moderator` asks the engine for its "regression" capability: auto fits with the
    exact engine (the record says so), an engine without it (the toy, binomial-exact) is
    refused in one line naming those that can, and a regression engine's fit() refuses a
    design matrix instead of ignoring it."""
    assert set(engines.regression_engines()) >= {"exact", "pymc"}
    assert "toy" not in engines.regression_engines()
    r = run_main("fit", "secure_attachment_post", "--moderator", "population_group", "--json")
    assert r.returncode == 0, r.stderr
    auto = json.loads(r.stdout)
    exact = json.loads(run_main("fit", "secure_attachment_post", "--moderator",
                                "population_group", "--engine", "exact", "--json").stdout)
    assert auto["engine"] == "exact" and auto == exact
    for name in ("toy", "binomial-exact"):
        r = run_main("fit", "secure_attachment_post", "--moderator", "population_group",
                     "--engine", name)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.strip().splitlines() == [
            f"bayes_pip: error: --moderator runs with --engine pymc or exact (auto: exact), "
            f"not {name}"]
    data = payloads.NormalEffects(("a", "b", "c"), [0.1, 0.2, 0.3], [0.1, 0.1, 0.1],
                                  X=np.ones((3, 2)))
    with pytest.raises(InputError, match="through `fit --moderator`"):
        engines.get("exact").fit(Problem(None, "study", payload=data), None, 1, None)


def test_toy_engine_fits_through_the_cli(toy):
    """`fit --engine toy`: the record says which engine ran and its numbers agree with the
    exact engine (a 401 x 300 grid against Gauss-Legendre quadrature: 0.01 on the OR scale)."""
    fits = {}
    for name in ("toy", "exact"):
        r = run_main("fit", "acute_rejection", "--data", CRINS, "--engine", name,
                     "--prior", "halfnormal-0.5", "--json")
        assert r.returncode == 0, r.stderr
        fits[name] = json.loads(r.stdout)
    toy_fit, exact_fit = fits["toy"], fits["exact"]
    assert toy_fit["engine"] == "toy"
    for key in ("median", "ci_low", "ci_high"):
        assert toy_fit["effect"][key] == pytest.approx(exact_fit["effect"][key], abs=0.01)
    assert toy_fit["p_benefit"] == pytest.approx(exact_fit["p_benefit"], abs=0.002)
    text = run_main("fit", "acute_rejection", "--data", CRINS, "--engine", "toy").stdout
    assert "toy grid posterior" in text


def test_toy_engine_compare_priors_and_calibrate(toy, tmp_path):
    r = run_main("compare-priors", "acute_rejection", "--data", CRINS, "--engine", "toy",
                 "--priors", "halfnormal-0.5,halfcauchy-0.5,turner", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    rows = rows["fits"] if isinstance(rows, dict) else rows
    assert [row["prior"]["name"] for row in rows] == ["halfnormal-0.5", "halfcauchy-0.5",
                                                       "turner"]
    assert {row["engine"] for row in rows} == {"toy"}
    r = run_main("calibrate", "--engine", "toy", "--k", "3", "--reps", "40", "--json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["engine"] == "toy" and rec["design"]["sigma_i"] == "Uniform(0.2, 1)"
    # the same replicates as the exact engine's batch: the PITs agree to the grid's accuracy
    exact = json.loads(run_main("calibrate", "--engine", "exact", "--k", "3", "--reps", "40",
                                "--json").stdout)
    assert [c["p_value"] for c in rec["checks"]] == pytest.approx(
        [c["p_value"] for c in exact["checks"]], abs=0.05)
