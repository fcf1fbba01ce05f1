"""Effect sizes and classical pooling against metafor and published values.

Expected values come from tests/reference/metafor_values.json, printed by
``Rscript tests/reference/metafor_reference.R`` (R 4.2.2, metafor 3.8-1; the exact escalc/rma call
is stored in each case's ``call`` field), or from papers named at each test.
"""

from __future__ import annotations

import numpy as np
import pytest

from bayes_pip import dl, effects
from conftest import TOL

BINARY = ["bcg_rr", "bcg_or", "nielweise_rr", "nielweise_or", "crins_or", "crins_rr",
          "fleiss_or", "single_rr", "two_or"]
ALL = BINARY + ["normand_md", "chenpeace_smd"]


def case_effects(case):
    """Our effect sizes for a metafor case, applying RevMan's exclusion rule."""
    if case["measure"] in ("RR", "OR"):
        a, n1, c, n2 = (np.atleast_1d(np.asarray(case[x], float)) for x in ("ai", "n1i", "ci", "n2i"))
        keep = ~effects.double_zero(a, n1, c, n2)
        f = effects.log_risk_ratio if case["measure"] == "RR" else effects.log_odds_ratio
        return f(a[keep], n1[keep], c[keep], n2[keep])
    f = effects.hedges_g if case["measure"] == "SMD" else effects.mean_difference
    return f(*(np.asarray(case[x], float) for x in ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")))


@pytest.mark.parametrize("name", ALL)
def test_effect_sizes_match_metafor_escalc(metafor_cases, name):
    case = metafor_cases[name]
    y, v = case_effects(case)
    np.testing.assert_allclose(y, np.atleast_1d(case["yi"]), rtol=TOL["metafor"], atol=1e-13)
    np.testing.assert_allclose(v, np.atleast_1d(case["vi"]), rtol=TOL["metafor"], atol=1e-13)


@pytest.mark.parametrize("name", ALL)
def test_dersimonian_laird_matches_metafor_rma(metafor_cases, name):
    case = metafor_cases[name]
    ref = case["dl"]
    r = dl.dersimonian_laird(np.atleast_1d(case["yi"]), np.atleast_1d(case["vi"]))
    for key in ("mu", "se", "ci_low", "ci_high", "z", "p", "tau2", "q", "i2"):
        assert float(getattr(r, key)) == pytest.approx(ref[key], rel=TOL["metafor"], abs=1e-12), key
    assert int(r.k) == ref["k"]


@pytest.mark.parametrize("name", ALL)
def test_fixed_effect_matches_metafor_ee(metafor_cases, name):
    case = metafor_cases[name]
    ref = case["ee"]
    r = dl.inverse_variance_fixed(np.atleast_1d(case["yi"]), np.atleast_1d(case["vi"]))
    for key in ("mu", "se", "ci_low", "ci_high", "z", "p", "q", "i2"):
        assert float(getattr(r, key)) == pytest.approx(ref[key], rel=TOL["metafor"], abs=1e-12), key


@pytest.mark.parametrize("name", BINARY)
def test_mantel_haenszel_matches_metafor_rma_mh(metafor_cases, name):
    case = metafor_cases[name]
    a, n1, c, n2 = (np.atleast_1d(np.asarray(case[x], float)) for x in ("ai", "n1i", "ci", "n2i"))
    keep = ~effects.double_zero(a, n1, c, n2)
    y, v = np.atleast_1d(case["yi"]), np.atleast_1d(case["vi"])
    r = dl.mantel_haenszel(a[keep], n1[keep], c[keep], n2[keep], case["measure"], y, v)
    for key in ("mu", "se", "ci_low", "ci_high", "z", "q"):
        assert float(getattr(r, key)) == pytest.approx(case["mh"][key], rel=TOL["metafor"]), key
    rr = dl.mantel_haenszel_random(a[keep], n1[keep], c[keep], n2[keep], case["measure"], y, v)
    ref = case["mh_random"]
    for key in ("mu", "se", "ci_low", "ci_high", "tau2"):
        assert float(getattr(rr, key)) == pytest.approx(ref[key], rel=TOL["metafor"], abs=1e-12), key


def test_nielweise_double_zero_study_is_excluded(metafor_cases):
    # metafor case excludes Yucel 2004 (0/118 vs 0/105); RevMan does the same.
    case = metafor_cases["nielweise_rr"]
    assert case["excluded"] == ["Yucel 2004"]
    a, n1, c, n2 = (np.asarray(case[x], float) for x in ("ai", "n1i", "ci", "n2i"))
    assert list(np.asarray(case["study"])[effects.double_zero(a, n1, c, n2)]) == ["Yucel 2004"]


def test_bcg_matches_stata_metan_published_by_metafor():
    """BCG (dat.bcg), metafor tests/testthat/test_misc_metan_vs_rma.uni_with_dat.bcg.r (Stata metan)."""
    tpos = np.array([4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27])
    tneg = np.array([119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886])
    cpos = np.array([11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29])
    cneg = np.array([128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825])
    y, v = effects.log_risk_ratio(tpos, tpos + tneg, cpos, cpos + cneg)
    r = dl.dersimonian_laird(y, v)
    assert float(r.mu) == pytest.approx(-0.7141, abs=TOL["printed4"])
    assert float(r.ci_low) == pytest.approx(-1.0644, abs=TOL["printed4"])
    assert float(r.ci_high) == pytest.approx(-0.3638, abs=TOL["printed4"])
    assert float(r.tau2) == pytest.approx(0.3088, abs=TOL["printed4"])
    assert float(r.i2) == pytest.approx(92.1173, abs=TOL["printed4"])
    assert float(r.q) == pytest.approx(152.2330, abs=TOL["printed4"])
    mh = dl.mantel_haenszel(tpos, tpos + tneg, cpos, cpos + cneg, "RR", y, v)
    assert float(mh.mu) == pytest.approx(-0.4537, abs=TOL["printed4"])
    assert float(mh.z) == pytest.approx(-11.5338, abs=TOL["printed4"])
    assert float(mh.q) == pytest.approx(152.5676, abs=TOL["printed4"])


def test_clasp_dl_matches_dersimonian_kacker_2007():
    """CLASP, DerSimonian & Kacker 2007 Tables 3-4 (metafor test_analysis_example_dersimonian2007.r)."""
    n1 = np.array([156, 303, 565, 1570, 103, 4659])
    n2 = np.array([74, 303, 477, 1565, 105, 4650])
    ai = np.array([5, 5, 12, 69, 9, 313])
    ci = np.array([8, 17, 9, 94, 11, 352])
    r = dl.dersimonian_laird(*effects.log_odds_ratio(ai, n1, ci, n2))
    assert np.sqrt(float(r.tau2)) == pytest.approx(0.2323, abs=TOL["printed4"])
    assert float(r.mu) == pytest.approx(-0.3240, abs=TOL["printed4"])
    assert float(r.se) == pytest.approx(0.1540, abs=TOL["printed4"])


def test_pymare_example_matches_metafor_printout():
    """PyMARE README data, `rma(y, v, method="DL")` as printed in neurostuff/PyMARE#75."""
    r = dl.dersimonian_laird([-1, 0.5, 0.5, 0.5, 1, 1, 2, 10], [1, 1, 2.4, 0.5, 1, 1, 1.2, 1.5])
    assert float(r.tau2) == pytest.approx(7.6337, abs=TOL["printed4"])
    assert float(r.q) == pytest.approx(58.4539, abs=TOL["printed4"])
    assert float(r.i2) == pytest.approx(88.02, abs=5e-3)
    assert float(r.mu) == pytest.approx(1.7679, abs=TOL["printed4"])
    assert float(r.se) == pytest.approx(1.0491, abs=TOL["printed4"])
    assert float(r.p) == pytest.approx(0.0920, abs=TOL["printed4"])


def test_hedges_g_matches_r_meta_revman_approximation():
    """Chen & Peace data; R meta metacont(sm="SMD") RevMan-style TE and seTE^2 (statsmodels
    tests/test_meta.py), printed to 8 significant digits."""
    m1 = [94, 98, 98, 94, 98, 96]; sd1 = [22, 21, 28, 19, 21, 21]; n1 = [60, 65, 40, 200, 50, 85]
    m2 = [92, 92, 88, 82, 88, 92]; sd2 = [20, 22, 26, 17, 22, 22]; n2 = [60, 65, 40, 200, 45, 85]
    g, v = effects.hedges_g(m1, sd1, n1, m2, sd2, n2)
    np.testing.assert_allclose(g, [0.09452437, 0.27735640, 0.36654635, 0.66438510, 0.46180798,
                                   0.18516464], rtol=1e-7)
    np.testing.assert_allclose(v, [0.03337183, 0.03107435, 0.05088323, 0.01055725, 0.04339324,
                                   0.02363265], rtol=1e-6)


def assert_stored_digits(actual, stored: str):
    """actual agrees with a value stored as text to every decimal stored (half a unit of the last)."""
    places = len(stored.split(".")[1]) if "." in stored else 0
    assert abs(float(actual) - float(stored)) <= 0.5 * 10.0**-places + 1e-15, (actual, stored)


def test_fleiss_aspirin_mh_fixed_matches_revman():
    """RevMan 5 stored values in tests/fixtures/fleiss1993/Fleiss1993_CR.csv: OR 0.89686556
    [0.8405144, 0.95699471], Q 9.94605598, I^2 39.67458046, and each study's OR and SE."""
    ai = np.array([49, 44, 102, 32, 85, 246, 1570]); n1 = np.array([615, 758, 832, 317, 810, 2267, 8587])
    ci = np.array([67, 64, 126, 38, 52, 219, 1720]); n2 = np.array([624, 771, 850, 309, 406, 2257, 8600])
    y, v = effects.log_odds_ratio(ai, n1, ci, n2)
    r = dl.mantel_haenszel(ai, n1, ci, n2, "OR", y, v)
    assert_stored_digits(np.exp(float(r.mu)), "0.89686556")
    assert_stored_digits(np.exp(float(r.ci_low)), "0.8405144")
    assert_stored_digits(np.exp(float(r.ci_high)), "0.95699471")
    assert_stored_digits(r.q, "9.94605598")
    assert_stored_digits(r.i2, "39.67458046")
    for got, stored in zip(np.exp(y), ["0.71971415", "0.6807598", "0.80287019", "0.80073869",
                                       "0.79814324", "1.1327364", "0.89496936"]):
        assert_stored_digits(got, stored)
    for got, stored in zip(np.sqrt(v), ["0.19721981", "0.20289717", "0.14314855", "0.2544889",
                                        "0.18761568", "0.09806494", "0.03880977"]):
        assert_stored_digits(got, stored)


def simulated_meta_analyses(seed, n_meta, k_max):
    """Padded (n_meta, k_max) effects and variances with 1..k_max real studies per row."""
    rng = np.random.default_rng(seed)
    k = rng.integers(1, k_max + 1, size=n_meta)
    mask = np.arange(k_max)[None, :] < k[:, None]
    v = rng.uniform(0.01, 1.0, size=(n_meta, k_max))
    y = rng.normal(0, np.sqrt(v + rng.uniform(0, 0.5, size=(n_meta, 1))))
    return y, v, k, mask, rng


def test_vectorised_equals_loop_on_200000_meta_analyses():
    n_meta = 200_000
    y, v, k, mask, rng = simulated_meta_analyses(20151006, n_meta, 12)
    y[~mask] = np.nan  # padding must never leak into results
    v[~mask] = np.nan
    r = dl.dersimonian_laird(y, v, mask)
    idx = rng.choice(n_meta, size=2000, replace=False)
    for i in idx:
        one = dl.dersimonian_laird(y[i, : k[i]], v[i, : k[i]])
        for key in ("mu", "se", "tau2", "q", "i2", "p"):
            a, b = float(getattr(r, key)[i]), float(getattr(one, key))
            assert a == pytest.approx(b, rel=TOL["vectorised"], abs=TOL["vectorised"]), key
    assert np.all(np.isfinite(r.mu)) and np.all(r.tau2 >= 0)


def test_fused_kernel_equals_numpy_core(monkeypatch):
    """dersimonian_laird runs the fused kernel from FUSED_MIN_ROWS meta-analyses on: equal to
    the NumPy core to 1e-12, with masks that are not left-aligned, empty rows and two leading
    axes."""
    y, v, k, mask, rng = simulated_meta_analyses(7, 120_000, 9)
    mask = np.take_along_axis(mask, rng.permuted(np.tile(np.arange(9), (len(k), 1)), axis=1), 1)
    mask[:5] = False  # no studies at all
    assert len(k) >= dl.FUSED_MIN_ROWS
    fused = dl.dersimonian_laird(y, v, mask)
    monkeypatch.setattr(dl, "FUSED_MIN_ROWS", 10**9)
    with np.errstate(all="ignore"):
        core = dl.dersimonian_laird(y, v, mask)
    for key in ("mu", "se", "tau2", "q", "i2", "p", "ci_low", "ci_high", "z", "k", "df"):
        np.testing.assert_allclose(getattr(fused, key), getattr(core, key), rtol=1e-12,
                                   atol=1e-12, err_msg=key)
    monkeypatch.undo()
    shaped = dl.dersimonian_laird(y.reshape(400, 300, 9), v.reshape(400, 300, 9),
                                  mask.reshape(400, 300, 9))
    np.testing.assert_array_equal(shaped.mu.reshape(-1), fused.mu)
    assert shaped.mu.shape == (400, 300)


@pytest.mark.parametrize("name", ALL)
def test_prediction_interval_matches_higgins_2009_computed_in_r(metafor_cases, name):
    """t_{k-2} interval (Higgins, Thompson & Spiegelhalter 2009), evaluated in R from metafor's
    rma() fit (metafor_reference.R, pi_t); NaN below 3 studies."""
    case = metafor_cases[name]
    r = dl.dersimonian_laird(np.atleast_1d(case["yi"]), np.atleast_1d(case["vi"]))
    low, high = dl.prediction_interval(r)
    ref = case["dl"]["pi_t"]
    if ref[0] is None:
        assert np.isnan(low) and np.isnan(high)
    else:
        assert float(low) == pytest.approx(ref[0], rel=TOL["metafor"])
        assert float(high) == pytest.approx(ref[1], rel=TOL["metafor"])
