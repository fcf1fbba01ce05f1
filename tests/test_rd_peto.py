"""Risk difference and Peto's odds ratio against metafor (tests/reference/rd_peto_reference.R
printed tests/reference/rd_peto_values.json): per-study effects and every pooled method, 1e-10."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_pip import dl
from bayes_pip.effects import effect_sizes
from bayes_pip import measures

REF = json.loads((Path(__file__).parent / "reference" / "rd_peto_values.json").read_text())
CASES = sorted(REF["cases"])
TOL = 1e-10


def rows(case):
    return pd.DataFrame({"study": case["study"], "events_t": case["ai"], "n_t": case["n1i"],
                         "events_c": case["ci"], "n_c": case["n2i"]})


def check_pooled(r, ref, keys=("estimate", "se", "ci_low", "ci_high", "z", "p", "Q", "tau2")):
    ours = {"estimate": r.mu, "se": r.se, "ci_low": r.ci_low, "ci_high": r.ci_high, "z": r.z,
            "p": r.p, "Q": r.q, "tau2": r.tau2, "I2": r.i2}
    for key in keys:
        assert float(ours[key]) == pytest.approx(ref[key], rel=TOL, abs=TOL), key


@pytest.mark.parametrize("name", CASES)
def test_risk_difference_matches_metafor(name):
    case = REF["cases"][name]
    es = effect_sizes(rows(case), measures.get("RD"))
    assert es.k == len(case["study"])  # double-zero studies are kept for RD
    np.testing.assert_allclose(es.y, case["rd"]["yi"], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(es.v, case["rd"]["vi"], rtol=TOL, atol=TOL)
    check_pooled(dl.dersimonian_laird(es.y, es.v), case["rd_dl"], keys=(
        "estimate", "se", "ci_low", "ci_high", "z", "p", "Q", "tau2", "I2"))
    check_pooled(dl.inverse_variance_fixed(es.y, es.v), case["rd_iv_fixed"])
    a, n1, c, n2 = (np.asarray(case[k], float) for k in ("ai", "n1i", "ci", "n2i"))
    # metafor's rma.mh uses the Sato, Greenland & Robins (1989) variance
    sato = dl.mantel_haenszel(a, n1, c, n2, "RD", es.y, es.v, rd_variance="sato")
    check_pooled(sato, case["rd_mh"], keys=("estimate", "se", "ci_low", "ci_high", "z", "p", "Q"))
    # RevMan 5 (Deeks & Higgins 2010) the Greenland & Robins (1985) one, written out per study
    revman = dl.mantel_haenszel(a, n1, c, n2, "RD", es.y, es.v)
    j = k = 0.0
    for ai, n1i, ci, n2i in zip(a, n1, c, n2):
        bi, di, ni = n1i - ai, n2i - ci, n1i + n2i
        j += (ai * bi * n2i**3 + ci * di * n1i**3) / (n1i * n2i * ni**2)
        k += n1i * n2i / ni
    assert float(revman.mu) == pytest.approx(case["rd_mh"]["estimate"], rel=TOL, abs=TOL)
    assert float(revman.se) == pytest.approx(np.sqrt(j / k**2), rel=TOL)


@pytest.mark.parametrize("name", CASES)
def test_peto_odds_ratio_matches_metafor(name):
    from bayes_pip.classical import classical_from
    from bayes_pip.data import load_frames

    case = REF["cases"][name]
    es = effect_sizes(rows(case), measures.get("PETO_OR"))
    keep = np.isfinite(case["peto"]["yi"]) if None not in case["peto"]["yi"] else None
    np.testing.assert_allclose(es.y, case["peto"]["yi"], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(es.v, case["peto"]["vi"], rtol=TOL, atol=TOL)
    assert keep is None or keep.all()
    data = load_frames(
        pd.DataFrame({"outcome": ["o"], "label": ["o"], "comparison": ["c"],
                      "measure": ["PETO_OR"], "benefit": ["lower"]}),
        rows(case).assign(outcome="o", provenance="metafor data", source="metafor"))
    analysis = classical_from(data.resolve("o", "study"))  # the default method becomes Peto
    assert analysis.pooled.method == "Peto"
    check_pooled(analysis.pooled, case["peto_pooled"], keys=(
        "estimate", "se", "ci_low", "ci_high", "z", "p", "Q"))
    rec = analysis.record()
    assert rec.estimate == pytest.approx(np.exp(case["peto_pooled"]["estimate"]), rel=TOL)
    assert rec.prediction is None and rec.tau2 == 0


def crins_as(tmp_path, measure, mcid):
    import shutil

    src = Path(__file__).parents[1] / "data" / "crins2014"
    for name in ("outcomes.csv", "studies.csv"):
        shutil.copy(src / name, tmp_path / name)
    o = pd.read_csv(tmp_path / "outcomes.csv", dtype=str, keep_default_na=False)
    o["measure"], o["mcid"] = measure, mcid
    o.to_csv(tmp_path / "outcomes.csv", index=False)
    return str(tmp_path)


def test_risk_difference_runs_through_the_engines(tmp_path):
    from conftest import run_main

    data = crins_as(tmp_path, "RD", "-0.1")
    r = run_main("fit", "acute_rejection", "--data", data, "--engine", "exact", "--json")
    assert r.returncode == 0, r.stderr
    fit = json.loads(r.stdout)
    assert fit["measure"] == "RD" and fit["prior"]["name"] == "vague"
    case = REF["cases"]["crins"]
    assert fit["dl"]["estimate"] == pytest.approx(case["rd_dl"]["estimate"], rel=1e-10)
    r = run_main("fit", "acute_rejection", "--data", data, "--engine", "binomial")
    assert r.returncode == 2 and "RR or OR" in r.stderr


def test_peto_odds_ratio_is_classical_only(tmp_path):
    from conftest import run_main

    data = crins_as(tmp_path, "PETO_OR", "0.8")
    r = run_main("dl", "acute_rejection", "--data", data, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["method"] == "Peto"
    r = run_main("dl", "acute_rejection", "--data", data, "--method", "REML")
    assert r.returncode == 2 and "Peto only" in r.stderr
    r = run_main("fit", "acute_rejection", "--data", data, "--engine", "exact")
    assert r.returncode == 2 and "measure OR" in r.stderr and r.stderr.count("\n") == 1
