"""Leave-one-out, influence diagnostics and Egger's test against metafor 3.8-1
(tests/reference/robustness_reference.R printed tests/reference/robustness_values.json:
``res <- rma(yi, vi, method="DL"); leave1out(res); influence(res)``;
``regtest(res, model="lm", predictor="sei")``)."""

from __future__ import annotations

import warnings
import json

import numpy as np
import pytest

from bayes_pip import robustness as rb
from conftest import REFERENCE

CASES = json.loads((REFERENCE / "robustness_values.json").read_text())["cases"]
TOL = 1e-6  # the tolerance; the agreement is in fact near 1e-12


@pytest.mark.parametrize("name", sorted(CASES))
def test_leave_one_out_matches_metafor(name):
    c = CASES[name]
    r = rb.leave_one_out(c["yi"], c["vi"])
    ref = c["leave1out"]
    for ours, theirs in (("estimate", "estimate"), ("se", "se"), ("ci_low", "ci_low"),
                         ("ci_high", "ci_high"), ("z", "zval"), ("p", "pval"), ("q", "Q"),
                         ("q_p", "Qp"), ("tau2", "tau2"), ("i2", "I2")):
        np.testing.assert_allclose(getattr(r, ours), ref[theirs], rtol=TOL, atol=TOL,
                                   err_msg=f"{name} {ours}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_influence_matches_metafor(name):
    c = CASES[name]
    r = rb.influence(c["yi"], c["vi"])
    ref = c["influence"]
    for ours, theirs in (("rstudent", "rstudent"), ("dffits", "dffits"), ("cook_d", "cook_d"),
                         ("cov_r", "cov_r"), ("tau2_del", "tau2_del"), ("qe_del", "QE_del"),
                         ("hat", "hat"), ("weight", "weight"), ("dfbetas", "dfbs")):
        np.testing.assert_allclose(getattr(r, ours), ref[theirs], rtol=TOL, atol=TOL,
                                   err_msg=f"{name} {ours}")
    assert r.influential.tolist() == ref["is_infl"]


@pytest.mark.parametrize("name", [n for n in sorted(CASES) if "egger" in CASES[n]])
def test_egger_matches_metafor_regtest(name):
    c = CASES[name]
    r = rb.egger_test(c["yi"], c["vi"])
    ref = c["egger"]
    assert r.df == ref["df"]
    for ours, theirs in (("t", "t"), ("p", "p"), ("limit", "limit"),
                         ("limit_ci_low", "limit_ci_low"), ("limit_ci_high", "limit_ci_high")):
        assert getattr(r, ours) == pytest.approx(ref[theirs], rel=TOL, abs=TOL), ours


# ---------------------------------------------------------------------------------------------
# through the CLI
# ---------------------------------------------------------------------------------------------

def bcg_dir(tmp_path):
    c = json.loads((REFERENCE / "metafor_values.json").read_text())["cases"]["bcg_rr"]
    d = tmp_path / "bcg"
    d.mkdir()
    (d / "outcomes.csv").write_text("outcome,label,comparison,measure,benefit\n"
                                    "tb,Tuberculosis,bcg_vs_control,RR,lower\n")
    rows = ["outcome,study,events_t,n_t,events_c,n_c,source"]
    rows += [f"tb,{s},{a},{n1},{c2},{n2},metafor dat.bcg"
             for s, a, n1, c2, n2 in zip(c["study"], c["ai"], c["n1i"], c["ci"], c["n2i"])]
    (d / "studies.csv").write_text("\n".join(rows) + "\n")
    return d


def test_influence_and_funnel_commands(tmp_path):
    from conftest import run_main

    d = bcg_dir(tmp_path)
    r = run_main("influence", "tb", "--data", str(d), "--json", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    ref = CASES["bcg_rr"]
    assert [x["dffits"] for x in out["influence"]] == pytest.approx(
        ref["influence"]["dffits"], abs=1e-9)
    assert [x["estimate"] for x in out["leave_one_out"]] == pytest.approx(
        np.exp(ref["leave1out"]["estimate"]), rel=1e-9)
    assert (tmp_path / "o" / "tb_leave_one_out.png").read_bytes()[:4] == b"\x89PNG"
    # the Bayesian column without study 1 is the exact fit of the other 12 studies
    from bayes_pip.engines.exact import exact_posterior
    from bayes_pip.prior_families import HalfNormal, Normal

    post = exact_posterior(ref["yi"][1:], ref["vi"][1:], Normal(0, 4), HalfNormal(0.5))
    assert out["leave_one_out"][0]["bayes_median"] == pytest.approx(
        np.exp(post.quantile("mu", 0.5)), rel=1e-12)
    r = run_main("funnel", "tb", "--data", str(d), "--json", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    e = json.loads(r.stdout)
    assert (e["t"], e["p"]) == pytest.approx((ref["egger"]["t"], ref["egger"]["p"]), rel=1e-9)
    assert e["limit"] == pytest.approx(np.exp(ref["egger"]["limit"]), rel=1e-9)
    assert (tmp_path / "o" / "tb_funnel.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [
    (["funnel", "acute_rejection", "--data", "data/crins2014"],
     "need at least 10 studies (Cochrane Handbook 10.4.3.1"),
    (["influence", "parental_depression_incidence"], "needs study-level data"),
    (["funnel", "parental_depression_incidence"], "needs study-level data"),
    (["influence", "secure_attachment_post"], "leave-one-out needs at least 3 studies"),
])
def test_robustness_refusals_are_one_line(args, message):
    from conftest import run_main

    r = run_main(*args)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1


def test_psis_loo_approximates_exact_leave_one_out():
    """elpd_loo from ArviZ's PSIS on the exact engine's draws against the exact value
    sum_i log p(y_i | y_-i) = sum_i [log p(y) - log p(y_-i)] (marginal likelihoods by
    quadrature), Crins 2014, halfnormal-0.5: within 3 of PSIS's Monte Carlo SEs (<= 0.1)."""
    import bayes_pip as bp
    from bayes_pip.checks import loo_comparison
    from bayes_pip.engines import evidence as ev
    from bayes_pip.prior_families import HalfNormal, Normal

    fit = bp.fit("data/crins2014", "acute_rejection", engine="exact")
    row = loo_comparison([fit])[0]
    y = np.array(CASES["crins_or"]["yi"])
    v = np.array(CASES["crins_or"]["vi"])
    full = ev.evidence(y, v, Normal(0, 4), HalfNormal(0.5)).log_ml["RE"]
    exact = sum(full - ev.evidence(np.delete(y, i), np.delete(v, i), Normal(0, 4),
                                   HalfNormal(0.5)).log_ml["RE"] for i in range(len(y)))
    assert row.elpd_loo == pytest.approx(exact, abs=0.1)
    assert row.pareto_k_max < 0.7 and row.elpd_diff == 0


def test_loo_difference_se_equals_arviz_compare():
    """Each elpd difference carries its SE, equal to az.compare's dse (paired over studies)."""
    import arviz as az

    import bayes_pip as bp
    from bayes_pip.checks import loo_comparison

    fits = [bp.fit("data/crins2014", "acute_rejection", engine="exact", prior=p)
            for p in ("halfnormal-0.5", "sceptical", "vague")]
    rows = {r.prior: r for r in loo_comparison(fits)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = az.compare({f.prior.name: f.idata for f in fits}, ic="loo")
    for name, r in rows.items():
        assert r.elpd_diff == pytest.approx(ref.loc[name, "elpd_diff"], abs=1e-9)
        assert r.elpd_diff_se == pytest.approx(ref.loc[name, "dse"], abs=1e-9)
    assert min(r.elpd_diff_se for r in rows.values()) == 0
    assert max(r.elpd_diff_se for r in rows.values()) > 0.1
