"""Categorical outcomes: the data (categories.csv, the categorical row of outcomes.csv), the
hierarchical multinomial model (engines/multinomial_nuts.py) and `fit` of the bundled infant
attachment classification."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_pip import payloads
from bayes_pip.categorical import softmax_with_reference
from bayes_pip.errors import InputError

from conftest import run_main

DATA = Path(__file__).resolve().parents[1] / "data"
OUTCOME = "attachment_category_post"
REFERENCE = Path(__file__).parent / "reference" / "multinomial_reference.txt"


@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory):
    """`fit attachment_category_post --out DIR` on the bundled data (one fit): the text it
    prints and the directory with the record, the figure and the draws."""
    out = tmp_path_factory.mktemp("categorical") / "fit"
    r = run_main("fit", OUTCOME, "--out", str(out))
    assert r.returncode == 0, r.stderr
    return r.stdout, out


@pytest.fixture(scope="module")
def bundled_fit(bundled_run):
    """The JSON record that run wrote (what `fit --json` prints)."""
    return json.loads((bundled_run[1] / f"{OUTCOME}__halfnormal-0.5__multinomial.json")
                      .read_text())


def test_fit_prints_the_joint_analysis_with_every_level_of_evidence(bundled_fit):
    f = bundled_fit
    assert f["categories"] == ["secure", "avoidant", "resistant", "disorganised"]
    assert f["analysis"] == {"id": OUTCOME, "model": "multinomial", "outcomes": [OUTCOME],
                             "parts": f["categories"]}
    assert f["k"] == 2 and f["participants"] == 54 + 46 + 54 + 28 + 22
    assert f["diagnostics"]["converged"] and f["diagnostics"]["divergences"] == 0
    # counts as given in data/pip/categories.csv, with their provenance per cell
    arms = {(a["study"], a["role"]): a for a in f["arms"]}
    assert arms[("Cicchetti 2006b", "comparator")]["counts"] == {
        "secure": 1, "avoidant": 10, "resistant": 1, "disorganised": 42}
    tpp = arms[("Cicchetti 1999a", "intervention")]["provenance"]
    assert tpp["secure"] == "derived" and tpp["avoidant"] == "reconstructed"
    assert arms[("Cicchetti 2006b", "comparator")]["provenance"]["secure"] == "printed"
    # per category: RR = p_intervention / p_comparator is a summary of draws; its median lies
    # between the ratio's bounds and P(benefit) follows each category's favourable direction
    rows = {r["category"]: r for r in f["per_category"]}
    assert rows["secure"]["favourable"] and not rows["disorganised"]["favourable"]
    for r in rows.values():
        assert r["rr"]["ci_low"] < r["rr"]["median"] < r["rr"]["ci_high"]
        assert 0 <= r["p_benefit"] <= 1
    assert rows["secure"]["p_benefit"] > 0.99 and rows["disorganised"]["p_benefit"] > 0.99
    # the joint statements are no more probable than either of their parts
    joint = {j["statement"]: j["probability"] for j in f["joint"]}
    both = joint["secure rises and disorganised falls"]
    assert both <= min(rows["secure"]["p_benefit"], rows["disorganised"]["p_benefit"]) + 1e-12
    every = joint["secure rises and every other category falls"]
    assert every <= min(p for s, p in joint.items() if " and " in s and "every" not in s)
    # the alternative treatment of the three-arm trial comes from the same fit: one trial
    assert [a["trials"] for a in f["alternatives"]] == [1]
    # the comparison table: separate analyses on the reconstructed tables, review's RRs
    comp = {c["category"]: c for c in f["comparison"]}
    assert comp["secure"]["published"]["estimate"] == 8.93
    assert comp["secure"]["separate"]["level"] == "reconstructed"
    assert comp["resistant"]["separate"] is None
    assert any("28 vs 54" in n and "14 vs 54" in n for n in f["data_differences"])
    assert f["prior"]["name"] == "halfnormal-0.5" and f["prior"]["baseline"]["sd"] == 10
    assert f["prior"]["described"] == {"mu": "Normal(0, 4^2)",
                                       "tau": "tau ~ half-normal(scale 0.5)",
                                       "baseline": "Normal(0, 10^2)"}


def test_the_text_names_levels_and_says_which_to_quote(bundled_run):
    text, out = bundled_run
    stem = f"{OUTCOME}__halfnormal-0.5__multinomial"
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}.{x}" for x in ("json", "nc", "png")]
    assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for phrase in ("analysed together", "Joint probabilities", "P(secure rises and "
                   "disorganised falls)", "reconstructed (not printed data)",
                   "Which to quote: the multinomial model", "not a meta-analysis: one trial",
                   "Data differ: Cicchetti 2006b has 28 vs 54"):
        assert phrase in text, phrase


@pytest.mark.parametrize("args, message", [
    (("fit", OUTCOME, "--engine", "exact"), "is fitted by --engine multinomial"),
    (("fit", OUTCOME, "--moderator", "duration_months"), "--moderator is not available"),
    (("dl", OUTCOME), "is categorical"),
    (("compare-priors", OUTCOME, "--loo"), "--loo are not available"),
    (("fit", "secure_attachment_post", "--engine", "multinomial"), "--engine multinomial fits"),
])
def test_commands_that_cannot_take_it_refuse_in_one_line(args, message):
    r = run_main(*args)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr


def copy_data(tmp_path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA / "pip", target)
    return target


@pytest.mark.parametrize("edit, column, message", [
    (lambda f: f.assign(count=f["count"].astype(object).where(f.index != 3, "2.5")), "count",
     "not a whole number"),
    (lambda f: f.assign(category=f["category"].where(f.index != 0, "insecure")), "category",
     "unknown category 'insecure'"),
    (lambda f: pd.concat([f, f.iloc[[0]]]), "category", "appear twice"),
    (lambda f: f[~((f["study"] == "Cicchetti 1999a") & (f["arm_role"] == "comparator"))],
     "arm_role", "needs exactly one comparator arm"),
    (lambda f: f[~((f["study"] == "Cicchetti 2006b") & (f["category"] == "resistant")
                   & (f["arm_role"] == "comparator"))], "category", "same categories"),
    (lambda f: f.assign(provenance=f["provenance"].where(f.index != 1, "guessed")),
     "provenance", "'guessed' is not allowed"),
])
def test_bad_category_files_are_one_line_errors(tmp_path, edit, column, message):
    data = copy_data(tmp_path)
    frame = pd.read_csv(data / "categories.csv", dtype=str, keep_default_na=False)
    edit(frame).to_csv(data / "categories.csv", index=False)
    r = run_main("list", "--data", str(data))
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert f"column '{column}'" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.parametrize("column, value, message", [
    ("reference", "insecure", "reference 'insecure' is not one of the categories"),
    ("favourable", "secure;avoidant;resistant;disorganised", "not all of them"),
    ("categories", "secure", "needs 2 to 20 category names"),
    ("separate", "secure_attachment_post", "one outcome id per category"),
    ("mcid", "1.25", "takes no mcid"),
])
def test_bad_categorical_outcome_rows_are_one_line_errors(tmp_path, column, value, message):
    data = copy_data(tmp_path)
    frame = pd.read_csv(data / "outcomes.csv", dtype=str, keep_default_na=False)
    frame.loc[frame["outcome"] == OUTCOME, column] = value
    frame.to_csv(data / "outcomes.csv", index=False)
    r = run_main("list", "--data", str(data))
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1


def test_a_categorical_outcome_has_no_place_in_studies_csv(tmp_path):
    data = copy_data(tmp_path)
    with open(data / "studies.csv", "a") as fh:
        fh.write(f"{OUTCOME},X 2020,1,10,2,10,,,,,printed,somewhere\n")
    r = run_main("list", "--data", str(data))
    assert r.returncode == 2 and "its counts go in categories.csv" in r.stderr


def test_an_arm_a_study_did_not_have_is_allowed_but_not_the_comparator():
    counts = np.array([[[5, 5], [6, 4], [np.nan, np.nan]], [[3, 7], [8, 2], [5, 5]]])
    cc = payloads.CategoryCounts(("a", "b"), ("c", "t", "alt"), ("x", "y"), counts)
    assert cc.k == 2
    with pytest.raises(InputError, match="first arm"):
        payloads.CategoryCounts(("a",), ("c", "t"), ("x", "y"),
                                np.array([[[np.nan, np.nan], [6, 4]]]))


def test_probabilities_from_reference_logits_closed_form():
    """softmax with the reference logit fixed at 0 (closed form for two and three categories)."""
    p = softmax_with_reference(np.array([np.log(3.0)]), 1)
    np.testing.assert_allclose(p, [0.75, 0.25], atol=1e-15)
    p = softmax_with_reference(np.array([[0.0, np.log(2.0)]]), 0)
    np.testing.assert_allclose(p, [[0.25, 0.25, 0.5]], atol=1e-15)


# (shape (studies, treatments, categories), reference category, a study without its last category)
SHAPES = [((3, 2, 4), 0, True), ((2, 3, 3), 1, True), ((4, 2, 2), 1, False), ((1, 2, 3), 2, False)]
# tau family code, a, b, c (half-normal, half-Cauchy, log-normal and log-t on tau^2, uniform)
FAMILIES = [(0, 0.5, 1.0, 1.0), (1, 0.3, 1.0, 1.0), (2, -2.34, 1.72, 1.0), (3, -3.85, 1.93, 5.0),
            (4, 2.0, 1.0, 1.0)]


@pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS:UserWarning")
@pytest.mark.parametrize("shape,reference,unreported", SHAPES)
def test_compiled_log_density_equals_the_pymc_model(shape, reference, unreported):
    """The numba log density and gradient the engine samples (engines/fast_multinomial.py) equal
    the PyMC model's compiled logp and dlogp (the specification) at random points, for every
    tau-prior family, several shapes and reference categories, and with an unreported category
    (1e-10 relative; measured: 1e-13)."""
    from bayes_pip.engines import fast_multinomial as fm
    from bayes_pip.engines import multinomial_nuts as mn

    rng = np.random.default_rng(sum(shape) + reference)
    k, n_t, n_c = shape
    counts = rng.integers(0, 30, shape).astype(float)
    if unreported:
        counts[1, :, n_c - 1] = np.nan
    cc = payloads.CategoryCounts(tuple(f"s{i}" for i in range(k)),
                                 tuple(f"t{i}" for i in range(n_t)),
                                 tuple(f"c{i}" for i in range(n_c)), counts)
    base = {"counts": np.nan_to_num(counts), "reported": (~np.isnan(counts[:, 0, :])).astype(float),
            "mu_mean": 0.1, "mu_sd": 2.0, "baseline_mean": -0.5, "baseline_sd": 3.0}
    assert mn.model_data(cc, _prior()).keys() >= base.keys()
    j = n_c - 1
    import pymc as pm

    model = mn.multinomial_model(shape, reference, {**base, "tau_family": np.int64(0),
                                                    "tau_a": 1.0, "tau_b": 1.0, "tau_c": 1.0})
    # the same graph evaluated by PyTensor's Python implementations: no C compilation (about
    # 10 s per shape), and the specification is the graph, not its backend
    logp = model.compile_logp(mode="FAST_COMPILE")
    dlogp = model.compile_dlogp(mode="FAST_COMPILE")
    for family, a, b, c in FAMILIES:
        data = {**base, "tau_family": np.int64(family), "tau_a": a, "tau_b": b, "tau_c": c}
        with model:
            pm.set_data({n: data[n] for n in ("tau_family", "tau_a", "tau_b", "tau_c")})
        block = fm.data_block(data["counts"], data["reported"], reference, data,
                              mn.exchangeable_cholesky(n_t - 1), mn.exchangeable_cholesky(j))
        for _ in range(3):
            point = {"u": rng.normal(-1, 0.7), "b": rng.normal(0, 1, (k, j)),
                     "d": rng.normal(0, 1, (n_t - 1, j)), "z": rng.normal(0, 1, (k, n_t - 1, j))}
            x = np.concatenate([[point["u"]], *(point[n].ravel() for n in ("b", "d", "z"))])
            lp, grad = fm.logp_grad(x, block)
            assert lp == pytest.approx(float(logp(point)), rel=1e-10)
            want = dlogp(point)
            assert np.abs(grad - want).max() <= 1e-10 * max(1.0, np.abs(want).max())


def _prior():
    from bayes_pip.prior_families import HalfNormal, Normal
    from bayes_pip.priors import ResolvedPrior

    return ResolvedPrior(name="test", title="", source="", mu=Normal(0.0, 1.0),
                         tau=HalfNormal(0.5), mu_source="", tau_source="")


@pytest.mark.slow
def test_one_large_trial_gives_the_dirichlet_posterior():
    """One trial of 1,000 per arm: with the model's wide priors the category probabilities of
    each arm are, to within 0.004, those of the Dirichlet(counts) posterior (a flat prior on
    the logits), whose marginals are Beta(n_c, n - n_c): means and 2.5% / 97.5% quantiles."""
    from bayes_pip.engines import get
    from bayes_pip.engines.base import Problem, SamplerSettings
    from bayes_pip.prior_families import HalfNormal, Normal
    from bayes_pip.priors import ResolvedPrior

    counts = np.array([[[400, 300, 200, 100], [100, 200, 300, 400]]], float)
    cc = payloads.CategoryCounts(("one",), ("comparator", "intervention"),
                                 ("a", "b", "c", "d"), counts, "d")
    prior = ResolvedPrior(name="wide", title="", source="", mu=Normal(0.0, 10.0),
                          tau=HalfNormal(0.01), mu_source="", tau_source="",
                          baseline=Normal(0.0, 10.0))
    fit = get("multinomial").fit(Problem(None, "study", payload=cc), prior, 11,
                                 SamplerSettings(draws=2000))
    post = fit.idata.posterior
    b = post["b"].values.reshape(-1, 1, 3)
    d = post["d"].values.reshape(-1, 1, 3)
    for arm, eta in ((0, b[:, 0]), (1, b[:, 0] + d[:, 0])):
        p = softmax_with_reference(eta, 3)
        n = counts[0, arm]
        for c in range(4):
            beta = stats.beta(n[c], n.sum() - n[c])
            assert p[:, c].mean() == pytest.approx(beta.mean(), abs=0.004)
            for q in (0.025, 0.975):
                assert np.quantile(p[:, c], q) == pytest.approx(beta.ppf(q), abs=0.004)


@pytest.mark.slow
def test_recovery_of_known_effects_on_simulated_trials():
    """Twelve replicates of 8 simulated trials (3 categories, 60 to 150 per arm) from the model
    with known d and tau: the 95% credible interval of each of the 2 pooled log odds ratios
    holds the truth in at least 21 of the 24 cases (nominal 22.8; P(fewer than 21) = 0.03
    under the nominal rate), and the posterior medians are within 0.25 of the truth on
    average."""
    from bayes_pip.engines import get
    from bayes_pip.engines.base import Problem, SamplerSettings
    from bayes_pip.engines.multinomial_nuts import exchangeable_cholesky
    from bayes_pip.prior_families import HalfNormal, Normal
    from bayes_pip.priors import ResolvedPrior

    rng = np.random.default_rng(2028)
    truth_d, truth_tau = np.array([0.8, -0.5]), 0.3
    prior = ResolvedPrior(name="hn", title="", source="", mu=Normal(0.0, 4.0),
                          tau=HalfNormal(0.5), mu_source="", tau_source="",
                          baseline=Normal(0.0, 10.0))
    inside, errors = 0, []
    for rep in range(12):
        k = 8
        b = rng.normal([0.3, -0.2], 0.5, size=(k, 2))
        delta = truth_d + truth_tau * rng.standard_normal((k, 2)) @ exchangeable_cholesky(2).T
        counts = np.empty((k, 2, 3))
        for i in range(k):
            for t, eta in ((0, b[i]), (1, b[i] + delta[i])):
                p = softmax_with_reference(eta, 2)
                counts[i, t] = rng.multinomial(rng.integers(60, 151), p)
        cc = payloads.CategoryCounts(tuple(f"s{i}" for i in range(k)), ("c", "t"),
                                     ("x", "y", "z"), counts, "z")
        fit = get("multinomial").fit(Problem(None, "study", payload=cc), prior, rep,
                                     SamplerSettings())
        d = fit.idata.posterior["d"].values.reshape(-1, 2)
        lo, med, hi = np.quantile(d, [0.025, 0.5, 0.975], axis=0)
        inside += int(((lo <= truth_d) & (truth_d <= hi)).sum())
        errors.extend(np.abs(med - truth_d))
    assert inside >= 21, inside
    assert np.mean(errors) < 0.25


def reference_values() -> dict:
    rows = {}
    for line in REFERENCE.read_text().splitlines():
        parts = line.split()
        if len(parts) == 8 and parts[0] != "name":
            rows[parts[0]] = dict(zip(("mean", "se_mean", "sd", "q05", "q50", "q95"),
                                      map(float, parts[1:7])))
    return rows


@pytest.mark.slow
@pytest.mark.skipif(not REFERENCE.exists(), reason="reference not computed")
def test_agrees_with_an_independent_stan_fit(bundled_fit_long):
    """The same model written independently in Stan (tests/reference/multinomial_reference.R,
    rstan, 4 x 20,000 draws): posterior means of every d, tau and the per-category RR agree
    within 3 combined Monte Carlo standard errors, and the medians within 3 MCSE of a median."""
    ref = reference_values()
    post = bundled_fit_long
    checked = 0
    for name, ours in post.items():
        r = ref[name]
        se_ours = ours.std(ddof=1) / np.sqrt(ours.size / 4)   # ESS at least a quarter of N
        tol = 3 * np.hypot(se_ours, r["se_mean"])
        assert ours.mean() == pytest.approx(r["mean"], abs=tol), name
        checked += 1
    assert checked == 6 + 1 + 4


@pytest.fixture(scope="module")
def bundled_fit_long():
    """Draws of d, tau and the per-category RR of the bundled data under the reference's
    prior, named as the Stan script names them (d[t,c], tau, rr[c])."""
    from bayes_pip.categorical_data import categorical_outcome
    from bayes_pip.categorical import resolve_prior
    from bayes_pip.data import load_dataset
    from bayes_pip.engines import get
    from bayes_pip.engines.base import Problem, SamplerSettings

    ds = load_dataset()
    co = categorical_outcome(ds, OUTCOME)
    prior = resolve_prior(ds, co, "halfnormal-0.5", None)
    fit = get("multinomial").fit(Problem(co.outcome, "study", payload=co.payload()), prior,
                                 5, SamplerSettings(draws=10000))
    post = fit.idata.posterior
    out = {}
    d = post["d"].values.reshape(-1, 2, 3)
    for t in range(2):
        for c in range(3):
            out[f"d[{t + 1},{c + 1}]"] = d[:, t, c]
    out["tau"] = post["tau"].values.ravel()
    b = post["b"].values.reshape(-1, 2, 3)
    p0 = softmax_with_reference(b, 3).mean(axis=1)
    p1 = softmax_with_reference(b + d[:, None, 0, :], 3).mean(axis=1)
    for c in range(4):
        out[f"rr[{c + 1}]"] = p1[:, c] / p0[:, c]
    return out


def test_report_gives_the_categorical_outcome_one_joint_page(tmp_path):
    out = tmp_path / "r"
    r = run_main("report", OUTCOME, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        f"{OUTCOME}.html", f"{OUTCOME}.json", f"{OUTCOME}.md", f"{OUTCOME}_categories.png"]
    page = (out / f"{OUTCOME}.md").read_text()
    for phrase in ("## For the discussion section", "## Joint probabilities",
                   "## Each category on its own (sensitivity view)",
                   "## Arms and levels of evidence", "reconstructed (not printed data)",
                   "Which to quote: the multinomial model"):
        assert phrase in page, phrase
    record = json.loads((out / f"{OUTCOME}.json").read_text())
    assert record["schema_version"] == 2 and record["engine"] == "multinomial"


def test_report_all_with_another_engine_says_what_it_left_out(exact_report, tmp_path):
    r, out = exact_report
    assert f"Not analysed with --engine exact: {OUTCOME}" in r.stdout
    assert not (out / f"{OUTCOME}.md").exists()
    summary = (out / "summary_of_findings.md").read_text()
    assert f"Not analysed with --engine exact: {OUTCOME}" in summary
    r = run_main("report", OUTCOME, "--engine", "exact", "--out", str(tmp_path / "s"))
    assert r.returncode == 2 and "is fitted by --engine multinomial" in r.stderr


def test_priors_and_compare_priors_take_the_categorical_outcome_as_odds_ratios():
    r = run_main("priors", OUTCOME)
    assert r.returncode == 0 and "as for an odds-ratio outcome" in r.stdout
    assert "halfnormal-0.5 (default)" in r.stdout
    r = run_main("compare-priors", OUTCOME, "--priors", "halfnormal-0.5,halfnormal-1.0", "--json")
    assert r.returncode == 0, r.stderr
    fits = json.loads(r.stdout)
    assert [f["prior"]["name"] for f in fits] == ["halfnormal-0.5", "halfnormal-1.0"]
    # each set's own tau prior is used: the wider half-normal leaves tau wider (measured: 97.5%
    # quantile 1.87 against 1.08); the vague set (uniform tau) samples twice as long
    assert fits[1]["tau"]["ci_high"] > 1.5 * fits[0]["tau"]["ci_high"]
    assert fits[0]["comparison"] == []   # the separate analyses belong to `fit` and reports


@pytest.mark.slow
def test_a_category_a_trial_did_not_report_is_left_out_of_its_likelihood():
    """One trial reporting categories a and c only (b missing in both arms): the model
    conditions on the reported categories, so P(a | a or c) of each arm follows the
    Beta(n_a, n_c) posterior of a flat prior on the logit (means and 95% quantiles within
    0.005), while b itself stays with its prior."""
    from bayes_pip.engines import get
    from bayes_pip.engines.base import Problem, SamplerSettings
    from bayes_pip.prior_families import HalfNormal, Normal
    from bayes_pip.priors import ResolvedPrior

    counts = np.array([[[600, np.nan, 400], [300, np.nan, 700]]])
    cc = payloads.CategoryCounts(("one",), ("comparator", "intervention"), ("a", "b", "c"),
                                 counts, "c")
    prior = ResolvedPrior(name="wide", title="", source="", mu=Normal(0.0, 10.0),
                          tau=HalfNormal(0.01), mu_source="", tau_source="",
                          baseline=Normal(0.0, 10.0))
    fit = get("multinomial").fit(Problem(None, "study", payload=cc), prior, 3, SamplerSettings())
    post = fit.idata.posterior
    b = post["b"].values.reshape(-1, 2)
    d = post["d"].values.reshape(-1, 2)
    for arm, eta in ((0, b), (1, b + d)):
        p = softmax_with_reference(eta, 2)
        share = p[:, 0] / (p[:, 0] + p[:, 2])
        n_a, n_c = counts[0, arm, 0], counts[0, arm, 2]
        beta = stats.beta(n_a, n_c)
        assert share.mean() == pytest.approx(beta.mean(), abs=0.005)
        for q in (0.025, 0.975):
            assert np.quantile(share, q) == pytest.approx(beta.ppf(q), abs=0.005)
    # b's logit is not informed by the data: its spread is the baseline prior's (sd 10)
    assert b[:, 1].std() > 5


def test_the_api_fits_a_categorical_outcome_like_the_cli(bundled_fit):
    """bp.fit on a categorical outcome returns the multinomial record; same seed, same numbers
    as `fit --json`."""
    import bayes_pip as bp

    f = bp.fit(bp.load(), OUTCOME)
    assert f.engine == "multinomial"
    assert f.per_category[0]["rr"] == bundled_fit["per_category"][0]["rr"]
    with pytest.raises(InputError, match="is fitted by engine 'multinomial'"):
        bp.fit(bp.load(), OUTCOME, engine="exact")


def test_a_category_no_comparator_arm_ever_reached_gives_finite_output(tmp_path):
    """A category with no participant in any arm (resistant set to 0 everywhere): every
    printed number stays finite (the JSON has no NaN or infinity) and the fit converges."""
    data = copy_data(tmp_path)
    frame = pd.read_csv(data / "categories.csv", dtype=str, keep_default_na=False)
    frame.loc[frame["category"] == "resistant", "count"] = "0"
    frame.to_csv(data / "categories.csv", index=False)
    r = run_main("fit", OUTCOME, "--data", str(data), "--json")
    assert r.returncode == 0, r.stderr
    f = json.loads(r.stdout)
    rows = {x["category"]: x for x in f["per_category"]}
    assert np.isfinite(rows["resistant"]["rr"]["ci_high"])


def test_a_report_reuses_its_own_fits_for_the_separate_column(monkeypatch):
    """Inside `report --all` the separate analyses are the report's own main fits (not fitted a
    second time): the known fits given are the ones the table shows, and nothing is fitted."""
    from types import SimpleNamespace

    import bayes_pip.analysis
    from bayes_pip.categorical import categorical_outcome, compare_separate
    from bayes_pip.data import load_dataset

    def no_fit(*args, **kwargs):
        raise AssertionError("a separate outcome with a known fit was fitted again")

    monkeypatch.setattr(bayes_pip.analysis, "fit_outcome", no_fit)
    ds = load_dataset()
    co = categorical_outcome(ds, OUTCOME)
    known = {o: SimpleNamespace(effect=SimpleNamespace(median=1.5 + i, ci_low=1.1, ci_high=2.2),
                                engine="exact", level="reconstructed", k=2, p_benefit=0.9)
             for i, o in enumerate(o for o in co.separate if o)}
    rows = [{"category": c, "rr": None, "p_benefit": None} for c in co.categories]
    comparison, _ = compare_separate(ds, co, rows, None, 1, None, known)
    secure = next(c for c in comparison if c["category"] == "secure")
    assert secure["separate"] == {"median": 1.5, "ci_low": 1.1, "ci_high": 2.2,
                                  "engine": "exact", "level": "reconstructed", "k": 2,
                                  "p_benefit": 0.9}
    assert secure["separate_outcome"] == "secure_attachment_post"


def test_reconstruct_says_a_categorical_outcome_is_not_reconstructed():
    r = run_main("reconstruct", OUTCOME)
    assert r.returncode == 2 and "is categorical" in r.stderr and r.stderr.count("\n") == 1
