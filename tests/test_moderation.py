"""Moderators from the data files: `dl --moderator/--subgroup` and `fit --moderator` against
metafor and bayesmeta (tests/reference/metareg_values.json, REFERENCES §9), on a data directory
written from dat.bcg, and on the bundled PIP data."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_main

REF = json.loads((Path(__file__).parent / "reference" / "metareg_values.json").read_text())
FLAT_HN = '''name = "flat-hn"
title = "half-normal(0.5) on tau, flat coefficients"
applies_to = ["RR"]
source = "test"
[mu]
family = "normal"
mean = 0.0
sd = 4.0
[tau]
family = "halfnormal"
scale = 0.5
[coefficients]
family = "flat"
'''


@pytest.fixture(scope="module")
def bcg_dir(tmp_path_factory):
    """dat.bcg as a data directory: log RR and SE per trial (generic inverse variance), latitude
    and allocation in trials.csv with a source column."""
    d = tmp_path_factory.mktemp("bcg")
    a, c = REF["bcg"]["ablat"], REF["bcg"]["alloc"]
    pd.DataFrame({"outcome": ["tb"], "label": ["Tuberculosis"], "comparison": ["vaccine"],
                  "measure": ["RR"], "benefit": ["lower"]}).to_csv(d / "outcomes.csv", index=False)
    pd.DataFrame({"outcome": "tb", "study": a["studies"], "yi": a["yi"],
                  "sei": np.sqrt(a["vi"]), "provenance": "printed",
                  "source": "metafor dat.bcg"}).to_csv(d / "studies.csv", index=False)
    pd.DataFrame({"study": a["studies"], "source": "metafor dat.bcg", "ablat": a["values"],
                  "ablat_source": "dat.bcg ablat", "alloc": c["values"]}).to_csv(
        d / "trials.csv", index=False)
    (d / "flat.toml").write_text(FLAT_HN)
    return d


@pytest.mark.parametrize("method", ("DL", "REML"))
def test_dl_moderator_json_matches_metafor(bcg_dir, method):
    r = run_main("dl", "tb", "--data", str(bcg_dir), "--moderator", "ablat", "--method", method,
                 "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    ref = REF["bcg"]["ablat"]["regression"][method]
    assert [c["name"] for c in out["coefficients"]] == ["intercept", "ablat"]
    for key in ("estimate", "se", "ci_low", "ci_high", "p"):
        np.testing.assert_allclose([c[key] for c in out["coefficients"]], ref[key], rtol=1e-6)
    for key in ("tau2", "qm", "qe", "r2"):
        assert out[key] == pytest.approx(ref[key], rel=1e-6), key
    assert out["moderators"][0]["sources"]["Aronson 1948"] == "dat.bcg ablat"


def test_dl_subgroup_json_matches_metafor(bcg_dir):
    r = run_main("dl", "tb", "--data", str(bcg_dir), "--subgroup", "alloc", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    ref = REF["bcg"]["alloc"]["subgroups"]["DL"]
    assert [s["level"] for s in out["subgroups"]] == ref["levels"]
    np.testing.assert_allclose([s["estimate"] for s in out["subgroups"]], ref["estimate"], rtol=1e-6)
    assert out["q_between"] == pytest.approx(ref["q_between"], rel=1e-6)
    assert out["df_between"] == 2 and out["p_between"] == pytest.approx(ref["p_between"], rel=1e-6)
    text = run_main("dl", "tb", "--data", str(bcg_dir), "--subgroup", "alloc").stdout
    assert f"Q = {ref['q_between']:.3g}, df = 2" in text


def test_fit_moderator_matches_bayesmeta_bmr(bcg_dir, tmp_path):
    r = run_main("fit", "tb", "--data", str(bcg_dir), "--moderator", "ablat", "--engine", "exact",
                 "--prior", "flat-hn", "--prior-file", str(bcg_dir / "flat.toml"), "--json",
                 "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    slope = out["coefficients"][1]
    assert slope["name"] == "ablat" and slope["prior"] == {"family": "flat"}
    np.testing.assert_allclose([slope["ci_low"], slope["median"], slope["ci_high"]],
                               [-0.04537845647, -0.02905552953, -0.01136760282], atol=1e-4)
    assert out["tau"]["median"] == pytest.approx(0.2949258678, abs=1e-6)
    # benefit is lower: P(benefit) of the slope is P(slope < 0)
    assert slope["p_benefit"] > 0.99
    assert out["prior"]["coefficients"]["family"] == "flat"
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["tb__ablat__flat-hn.json", "tb__ablat__flat-hn__bubble.png"]
    assert json.loads((tmp_path / "out" / files[0]).read_text())["coefficients"] == out["coefficients"]


def test_fit_moderator_text_numbers_equal_the_record(bcg_dir):
    args = ("fit", "tb", "--data", str(bcg_dir), "--moderator", "alloc", "--engine", "exact")
    rec = json.loads(run_main(*args, "--json").stdout)
    text = run_main(*args).stdout
    c = rec["coefficients"][1]
    assert c["name"] == "alloc: random vs alternate"
    assert (f"factor of {math.exp(c['median']):.2f} (95% credible interval "
            f"{math.exp(c['ci_low']):.2f} to {math.exp(c['ci_high']):.2f})") in text
    assert f"is {c['p_benefit']:.2f}" in text
    # default coefficient prior: N(0, 1) per contrast, intercept flat
    assert [x["prior"] for x in rec["coefficients"]][:2] == [
        {"family": "flat"}, {"family": "normal", "mean": 0.0, "sd": 1.0}]
    assert "exploratory" not in text.lower()  # 13 studies


def test_default_coefficient_prior_is_per_sd_of_a_numeric_moderator(bcg_dir):
    rec = json.loads(run_main("fit", "tb", "--data", str(bcg_dir), "--moderator", "ablat",
                              "--engine", "exact", "--json").stdout)
    sd = float(np.std(REF["bcg"]["ablat"]["values"], ddof=1))
    assert rec["coefficients"][1]["prior"]["sd"] == pytest.approx(1.0 / sd, rel=1e-12)


@pytest.mark.parametrize("args,message", [
    (("--moderator", "nope"), "unknown moderator 'nope'"),
    (("--moderator", "../x"), "is not a valid id"),
    (("--moderator", "ablat", "--subgroup", "alloc"), "not both"),
    (("--moderator", "ablat", "--moderator", "ablat"), "given twice"),
])
def test_moderator_input_errors_exit_2(bcg_dir, args, message):
    for command in ("dl", "fit"):
        r = run_main(command, "tb", "--data", str(bcg_dir), *args, "--engine", "exact") \
            if command == "fit" else run_main(command, "tb", "--data", str(bcg_dir), *args)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
        assert r.stderr.count("\n") == 1


def test_pip_attachment_moderator_is_honest_about_two_trials(tmp_path):
    args = ("fit", "secure_attachment_post", "--moderator", "population_group", "--engine", "exact")
    r = run_main(*args)
    assert r.returncode == 0, r.stderr
    assert "reconstructed level, k = 2" in r.stdout
    assert "With 2 studies, this is exploratory." in r.stdout
    assert "Reconstructed data" in r.stdout
    rec = json.loads(run_main(*args, "--json").stdout)
    assert rec["moderators"][0]["sources"]["Cicchetti 2006b"].startswith("coded from the printed")
    # two moderators that split the two trials the same way are refused, not fitted
    r = run_main(*args, "--moderator", "control_type")
    assert r.returncode == 2 and "confounded" in r.stderr
    # a moderator known for only one of the trials
    r = run_main("dl", "secure_attachment_post", "--moderator", "duration_months")
    assert r.returncode == 2
    r = run_main("fit", "secure_attachment_post", "--moderator", "duration_months",
                 "--engine", "exact")
    assert r.returncode == 2 and "does not vary" in r.stderr and "Cicchetti 1999a" in r.stderr


@pytest.mark.slow
def test_pymc_meta_regression_matches_exact_within_4_mcse(bcg_dir):
    import arviz as az

    from bayes_pip import moderation
    from bayes_pip.data import load_dataset
    from bayes_pip.engines.base import SamplerSettings

    d = load_dataset(bcg_dir)
    exact = moderation.bayes_moderators(d, "tb", ["ablat"], engine="exact")
    ds = moderation.moderator_data(d, "tb", ["ablat"])
    from bayes_pip.priors import resolve_prior
    prior = resolve_prior("halfnormal-0.5", ds.outcome)
    X, cols = ds.design()
    from bayes_pip import engines
    from bayes_pip.payloads import NormalEffects

    (y, v), = ds.tables
    post, diag = engines.get("pymc").regress((NormalEffects(ds.study, y, v, X),), cols, prior,
                                             moderation.coefficient_prior(ds, cols, prior), 7,
                                             SamplerSettings(), "tb on ablat")
    assert diag["converged"]
    beta = post.idata.posterior["beta"]
    idata = post.idata
    mcse_mean = az.mcse(idata, var_names=["beta"], method="mean")["beta"].values
    mcse_q = [az.mcse(idata, var_names=["beta"], method="quantile", prob=q)["beta"].values
              for q in (0.025, 0.975)]
    for j in range(2):
        e = exact["coefficients"][j]
        assert abs(float(beta[..., j].mean()) - e["mean"]) < 4 * mcse_mean[j]
        assert abs(post.quantile(("beta", j), 0.025) - e["ci_low"]) < 4 * mcse_q[0][j]
        assert abs(post.quantile(("beta", j), 0.975) - e["ci_high"]) < 4 * mcse_q[1][j]


def test_aliased_columns_are_named():
    r = run_main("fit", "secure_attachment_post", "--moderator", "population_group", "--engine",
                 "exact", "--json")
    notes = " ".join(json.loads(r.stdout)["notes"])
    assert "Aliased:" in notes and "control_type" in notes


def test_compare_priors_with_a_moderator(bcg_dir):
    r = run_main("compare-priors", "tb", "--data", str(bcg_dir), "--moderator", "ablat",
                 "--engine", "exact", "--priors", "halfnormal-0.5,flat-hn", "--prior-file",
                 str(bcg_dir / "flat.toml"), "--json")
    assert r.returncode == 0, r.stderr
    recs = json.loads(r.stdout)
    assert [x["prior"]["name"] for x in recs] == ["halfnormal-0.5", "flat-hn"]
    assert recs[1]["coefficients"][1]["median"] == pytest.approx(-0.02905552953, abs=1e-6)
    text = run_main("compare-priors", "tb", "--data", str(bcg_dir), "--moderator", "ablat",
                    "--engine", "exact", "--priors", "halfnormal-0.5").stdout
    c = recs[0]["coefficients"][1]
    assert f"median {c['median']:.3g} [{c['ci_low']:.3g}, {c['ci_high']:.3g}]" in text


def test_report_with_a_moderator_has_a_section_or_says_why_not(tmp_path):
    out = tmp_path / "rep"
    r = run_main("report", "--all", "--moderator", "population_group", "--engine", "exact",
                 "--out", str(out))
    assert r.returncode == 0, r.stderr
    md = (out / "secure_attachment_post.md").read_text()
    rec = json.loads((out / "secure_attachment_post.json").read_text())["moderators"]
    assert "## Moderators: population_group" in md and sentence_in(rec, md)
    assert (out / "secure_attachment_post_moderator_population_group.png").stat().st_size > 1000
    page = (out / "secure_attachment_post.html").read_text()
    assert 'alt="secure_attachment_post_moderator_population_group.png"' in page
    assert "Not analysed: outcome 'parental_depression_incidence' has only the published" in (
        out / "parental_depression_incidence.md").read_text()


def sentence_in(rec, text):
    from bayes_pip.moderation_text import sentence

    return sentence(rec) in text


def test_dl_out_writes_json_and_figures_with_plain_ticks(bcg_dir, tmp_path):
    from bayes_pip import figures, moderation
    from bayes_pip.data import load_dataset

    out = tmp_path / "dl"
    assert run_main("dl", "tb", "--data", str(bcg_dir), "--subgroup", "alloc", "--out",
                    str(out)).returncode == 0
    assert run_main("dl", "tb", "--data", str(bcg_dir), "--moderator", "ablat", "--out",
                    str(out)).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "tb__ablat__DL__metareg.json", "tb__ablat__DL__metareg__bubble.png",
        "tb__alloc__DL__subgroups.json", "tb__alloc__DL__subgroups.png"]
    d = load_dataset(bcg_dir)
    sub = moderation.classical_subgroups(d, "tb", "alloc")
    # the natural-scale subgroup estimates are the exp of the analysis-scale ones
    for s, n in zip(sub["subgroups"], sub["subgroups_natural"]):
        assert n["estimate"] == pytest.approx(math.exp(s["estimate"]), rel=1e-12)
    reg = moderation.classical_moderators(d, "tb", ["ablat"], "REML")
    line = reg["line"]
    ref = REF["bcg"]["ablat"]["regression"]["REML"]["estimate"]
    assert line["estimate"][0] == pytest.approx(math.exp(ref[0] + ref[1] * line["x"][0]), rel=1e-6)
    for fig in (figures.subgroup_forest_plot(sub), figures.bubble_plot(reg)):
        fig.canvas.draw()
        for ax in fig.axes:
            ticks = [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
            assert ticks and not any("times" in t or "x10" in t or "$" in t for t in ticks), ticks


def test_prediction_at_chosen_values_and_the_api(bcg_dir):
    import bayes_pip as bp
    from bayes_pip.engines.exact_regression import exact_regression
    from bayes_pip.prior_families import HalfNormal

    rec = bp.bayes_meta_regression(bcg_dir, "tb", "ablat", prior="flat-hn",
                                   prior_dir=bcg_dir / "flat.toml", at=[12, 52])
    a = REF["bcg"]["ablat"]
    X = np.column_stack([np.ones(13), a["values"]])
    post = exact_regression(a["yi"], a["vi"], X, ["intercept", "ablat"], HalfNormal(0.5))
    at12 = next(f for f in rec["fitted"] if f["at"] == "ablat = 12")
    assert at12["estimate"] == pytest.approx(math.exp(post.quantile(("fitted", [1.0, 12.0]), 0.5)),
                                             rel=1e-9)
    assert at12["p_benefit"] == pytest.approx(post.cdf(("fitted", [1.0, 12.0]), 0.0), abs=1e-12)
    reg = bp.meta_regression(bcg_dir, "tb", "ablat", method="PM")
    assert reg["tau2"] == pytest.approx(REF["bcg"]["ablat"]["regression"]["PM"]["tau2"], rel=1e-6)
    sub = bp.subgroups(bcg_dir, "tb", "alloc", tau="common")
    assert sub["q_between"] == pytest.approx(
        REF["bcg"]["alloc"]["subgroups"]["DL"]["common_q_between"], rel=1e-6)
    r = run_main("fit", "tb", "--data", str(bcg_dir), "--moderator", "alloc", "--engine",
                 "exact", "--at", "12")
    assert r.returncode == 2 and "one numeric moderator" in r.stderr


def test_dl_moderator_knapp_hartung_matches_metafor(bcg_dir):
    r = run_main("dl", "tb", "--data", str(bcg_dir), "--moderator", "ablat", "--method", "REML",
                 "--ci", "hksj", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    ref = REF["bcg"]["ablat"]["regression"]["REML_knha"]
    np.testing.assert_allclose([c["ci_low"] for c in out["coefficients"]], ref["ci_low"], rtol=1e-6)
    np.testing.assert_allclose([c["p"] for c in out["coefficients"]], ref["p"], rtol=1e-6)
    assert out["test"] == "knha" and out["qm_df2"] == 11
    assert out["qm"] == pytest.approx(ref["qm"], rel=1e-6)
    text = run_main("dl", "tb", "--data", str(bcg_dir), "--moderator", "ablat", "--method",
                    "REML", "--ci", "hksj").stdout
    assert f"F(1, 11) = {ref['qm']:.3g}, p = {ref['qm_p']:.3g}" in text
    r = run_main("dl", "tb", "--data", str(bcg_dir), "--subgroup", "alloc", "--ci", "hksj")
    assert r.returncode == 2 and "applies to a meta-regression" in r.stderr


@pytest.mark.parametrize("value", ["inf", "-inf", "1e300"])
def test_non_finite_or_huge_numeric_moderator_is_refused(bcg_dir, tmp_path, value):
    import shutil

    d = tmp_path / "bcg"
    shutil.copytree(bcg_dir, d)
    t = pd.read_csv(d / "trials.csv", dtype=str, keep_default_na=False)
    t.loc[3, "ablat"] = value
    t.to_csv(d / "trials.csv", index=False)
    for args in (("dl", "tb"), ("fit", "tb", "--engine", "exact")):
        r = run_main(*args, "--data", str(d), "--moderator", "ablat")
        assert r.returncode == 2, (value, r.stderr)
        assert "Hart & Sutherland 1977" in r.stderr and "finite number" in r.stderr
        assert r.stderr.count("\n") == 1


def test_an_empty_or_nan_moderator_value_leaves_the_study_out_and_names_it(bcg_dir, tmp_path):
    import shutil

    d = tmp_path / "bcg"
    shutil.copytree(bcg_dir, d)
    t = pd.read_csv(d / "trials.csv", dtype=str, keep_default_na=False)
    t.loc[3, "ablat"] = "nan"
    t.loc[4, "ablat"] = ""
    t.to_csv(d / "trials.csv", index=False)
    out = json.loads(run_main("dl", "tb", "--data", str(d), "--moderator", "ablat",
                              "--json").stdout)
    assert out["k"] == 11
    assert "Left out for want of a moderator value: Hart & Sutherland 1977, " \
           "Frimodt-Moller et al 1973." in out["notes"]


def test_a_categorical_moderator_with_a_level_per_study_is_refused_beyond_the_cap(tmp_path):
    rng = np.random.default_rng(3)
    k = 60
    pd.DataFrame({"outcome": ["o"], "label": ["O"], "comparison": ["a_vs_b"], "measure": ["SMD"],
                  "benefit": ["lower"]}).to_csv(tmp_path / "outcomes.csv", index=False)
    study = [f"S{i:02d}" for i in range(k)]
    pd.DataFrame({"outcome": "o", "study": study, "yi": rng.normal(0, 0.3, k),
                  "sei": np.full(k, 0.2), "provenance": "simulated", "source": "test"}).to_csv(
        tmp_path / "studies.csv", index=False)
    pd.DataFrame({"study": study, "source": "test", "site": [f"site {i}" for i in range(k)]}).to_csv(
        tmp_path / "trials.csv", index=False)
    r = run_main("fit", "o", "--data", str(tmp_path), "--moderator", "site", "--engine", "exact")
    assert r.returncode == 2 and "60 coefficients (at most 50)" in r.stderr


def test_bubble_plot_points_and_slope_probability_against_independent_references(bcg_dir):
    """The classical record's study weights are 1/(v_i + tau^2) with metafor's residual tau^2;
    the Bayesian slope's P(benefit) equals P(slope < 0) from scipy's adaptive quadrature."""
    from test_metareg import independent_cdf

    from bayes_pip.prior_families import HalfNormal

    a = REF["bcg"]["ablat"]
    reg = json.loads(run_main("dl", "tb", "--data", str(bcg_dir), "--moderator", "ablat",
                              "--method", "REML", "--json").stdout)
    tau2 = REF["bcg"]["ablat"]["regression"]["REML"]["tau2"]
    np.testing.assert_allclose([p["weight"] for p in reg["study_effects"]],
                               1.0 / (np.array(a["vi"]) + tau2), rtol=1e-6)
    assert [p["value"] for p in reg["study_effects"]] == a["values"]
    rec = json.loads(run_main("fit", "tb", "--data", str(bcg_dir), "--moderator", "ablat",
                              "--engine", "exact", "--prior", "flat-hn", "--prior-file",
                              str(bcg_dir / "flat.toml"), "--json").stdout)
    X = np.column_stack([np.ones(13), a["values"]])
    p_neg = independent_cdf(a["yi"], a["vi"], X, HalfNormal(0.5), 1, 0.0)
    assert rec["coefficients"][1]["p_benefit"] == pytest.approx(p_neg, abs=1e-7)


def test_moderator_records_are_typed_and_read_back_from_their_json(bcg_dir):
    """The three moderator analyses return typed records (attributes; rec["key"] reads the
    field of that JSON key); the Bayesian record is rebuilt from its JSON equal to the original,
    and its JSON keys keep the order the CLI has always printed."""
    import bayes_pip as bp
    from bayes_pip.moderation_record import (BayesMetaRegressionRecord, MetaRegressionRecord,
                                             SubgroupRecord)

    rec = bp.bayes_meta_regression(bcg_dir, "tb", "ablat", engine="exact")
    assert isinstance(rec, BayesMetaRegressionRecord)
    assert rec.coefficients[1].median == rec["coefficients"][1]["median"]
    d = rec.to_dict()
    assert list(d)[:7] == ["schema_version", "outcome", "label", "measure", "benefit",
                           "intervention", "analysis"]
    assert list(d["coefficients"][1]) == ["name", "mean", "sd", "median", "ci_low", "ci_high",
                                          "p_benefit", "prior"]
    assert list(d["line"]) == ["x", "median", "ci_low", "ci_high"]
    back = BayesMetaRegressionRecord.from_dict(json.loads(json.dumps(d)))
    assert back == rec
    with pytest.raises(KeyError):
        rec["no_such_key"]
    reg = bp.meta_regression(bcg_dir, "tb", "ablat")
    assert isinstance(reg, MetaRegressionRecord) and list(reg.to_dict()["line"]) == [
        "x", "estimate", "ci_low", "ci_high"]
    sub = bp.subgroups(bcg_dir, "tb", "alloc")
    assert isinstance(sub, SubgroupRecord)
    assert sub.to_dict()["subgroups"][0] == {
        "level": sub.subgroups[0].level, "k": sub.subgroups[0].k,
        "estimate": sub.subgroups[0].estimate, "se": sub.subgroups[0].se,
        "ci_low": sub.subgroups[0].ci_low, "ci_high": sub.subgroups[0].ci_high,
        "tau2": sub.subgroups[0].tau2}


def test_no_residual_degrees_of_freedom_is_said_and_tau_is_the_prior():
    """Secure attachment on population_group: 2 studies, 2 coefficients. The record and the
    discussion sentence say that the residual tau is the prior's, and it is: its median and 95%
    limits are within 0.05 of the half-normal(0.5) prior's (0.0157, 0.337, 1.12). With 13
    studies (dat.bcg) neither appears."""
    from scipy import stats

    from bayes_pip.moderation_text import sentence

    r = run_main("fit", "secure_attachment_post", "--moderator", "population_group", "--json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert any(n.startswith("No residual degrees of freedom: 2 studies and 2 coefficients")
               for n in rec["notes"])
    assert "cannot estimate the residual heterogeneity" in sentence(rec)
    prior = stats.halfnorm(scale=0.5)
    for key, q in (("ci_low", 0.025), ("median", 0.5), ("ci_high", 0.975)):
        assert rec["tau"][key] == pytest.approx(prior.ppf(q), abs=0.05)


def test_enough_studies_leave_no_residual_note(bcg_dir):
    import bayes_pip as bp
    from bayes_pip.moderation_text import sentence

    rec = bp.bayes_meta_regression(bcg_dir, "tb", "ablat", engine="exact")
    assert not any(n.startswith("No residual") for n in rec.notes)
    assert "cannot estimate the residual" not in sentence(rec)
