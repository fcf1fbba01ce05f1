"""The batched exact engine against the one-at-a-time exact engine (same model, same method):
1e-8 on simulated meta-analyses of mixed k (1 to 30) under mixed prior sets."""

from types import SimpleNamespace as NS

import numpy as np
import pytest

from bayes_pip.engines.exact import exact_posterior
from bayes_pip.engines.batch import exact_batch
from bayes_pip.engines.exact_batch import batch_posterior
from bayes_pip.prior_families import (HalfCauchy, HalfNormal, LogNormalTau2, LogTTau2, Normal,
                                      Uniform)

PRIORS = [NS(mu=Normal(0, 4), tau=HalfNormal(0.5)),
          NS(mu=Normal(0, 10), tau=HalfCauchy(1.0)),
          NS(mu=Normal(0, float("inf")), tau=LogNormalTau2(-2.56, 1.74)),
          NS(mu=Normal(0.1, 2), tau=LogTTau2(-2.0, 1.5)),
          NS(mu=Normal(0, 4), tau=Uniform(2.0))]
TOL = 1e-8  # |batch - one at a time| <= TOL * max(1, |value|)


def simulated(n, seed, k_max=30):
    rng = np.random.default_rng(seed)
    k = rng.integers(1, k_max + 1, n)
    mask = np.arange(k_max)[None, :] < k[:, None]
    tau = rng.choice([0.0, 0.1, 0.3, 1.0], n)
    v = rng.uniform(0.01, 0.5, (n, k_max))
    y = rng.normal(rng.normal(0, 0.5, n)[:, None], np.sqrt(v + tau[:, None] ** 2))
    priors = [PRIORS[i] for i in rng.integers(0, len(PRIORS), n)]
    benefit = rng.choice(["lower", "higher"], n)
    return y, v, mask, priors, benefit


def close(a, b):
    return abs(a - b) <= TOL * max(1.0, abs(b))


def check_against_one_at_a_time(n, seed):
    y, v, mask, priors, benefit = simulated(n, seed)
    out = exact_batch(y, v, mask, priors, benefit=benefit)
    assert (out.error.values == "").all()
    for i in range(n):
        p = exact_posterior(y[i, mask[i]], v[i, mask[i]], priors[i].mu, priors[i].tau)
        assert int(out.k[i]) == mask[i].sum()
        for j, q in enumerate(out["quantile"].values):
            assert close(out.mu.values[i, j], p.quantile("mu", q)), (i, q)
            assert close(out.theta_new.values[i, j], p.quantile("predict", q)), (i, q)
            assert close(out.tau.values[i, j], p.quantile("tau", q)), (i, q)
        assert close(out.mu_mean.values[i], p.mean("mu"))
        assert close(out.mu_sd.values[i], p.sd("mu"))
        lower = benefit[i] == "lower"
        assert close(out.p_benefit.values[i], p.cdf("mu", 0.0) if lower else p.sf("mu", 0.0))
        assert close(out.p_benefit_new.values[i],
                     p.cdf("predict", 0.0) if lower else p.sf("predict", 0.0))


def test_batch_equals_one_at_a_time():
    check_against_one_at_a_time(120, seed=1)


@pytest.mark.slow
def test_batch_equals_one_at_a_time_on_1000_meta_analyses():
    check_against_one_at_a_time(1000, seed=2)


def test_rows_keep_their_own_errors():
    """A row without a posterior says why and carries NaN; the others are unaffected."""
    flat = NS(mu=Normal(0, float("inf")), tau=Uniform(float("inf")))
    y = np.array([[0.1, np.nan, np.nan], [0.2, 0.3, 0.1], [0.1, 0.2, 0.0]])
    v = np.array([[0.1, np.nan, np.nan], [0.1, 0.2, 0.1], [0.1, -1.0, 0.1]])
    out = exact_batch(y, v, prior=[flat, PRIORS[0], PRIORS[0]])
    assert "at least 3 studies" in out.error.values[0]
    assert out.error.values[1] == ""
    assert "positive" in out.error.values[2]
    assert np.isnan(out.mu.values[[0, 2]]).all()
    ref = exact_posterior([0.2, 0.3, 0.1], [0.1, 0.2, 0.1], Normal(0, 4), HalfNormal(0.5))
    assert close(out.mu.values[1, 1], ref.quantile("mu", 0.5))


def test_mask_need_not_be_left_aligned():
    y = np.array([[9.0, -0.5, 9.0, 0.3]])
    v = np.array([[1.0, 0.2, 1.0, 0.1]])
    mask = np.array([[False, True, False, True]])
    out = exact_batch(y, v, mask, PRIORS[0])
    ref = exact_posterior([-0.5, 0.3], [0.2, 0.1], Normal(0, 4), HalfNormal(0.5))
    assert close(out.mu.values[0, 0], ref.quantile("mu", 0.025))
    assert close(out.tau.values[0, 2], ref.quantile("tau", 0.975))


def test_stored_rows_are_full_posteriors():
    """With store=True, each row is the one-at-a-time engine's posterior object (shrinkage,
    densities and CDFs of tau work on it) and equals that engine's fit."""
    y, v, mask, priors, _ = simulated(12, seed=3, k_max=8)
    post = batch_posterior(y, v, mask, priors, store=True)
    for i in range(12):
        row = post.row(i)
        ref = exact_posterior(y[i, mask[i]], v[i, mask[i]], priors[i].mu, priors[i].tau)
        assert close(row.quantile(("study", 0), 0.5), ref.quantile(("study", 0), 0.5))
        assert close(row.cdf("tau", 0.2), ref.cdf("tau", 0.2))
        assert close(float(row.density("mu", [0.1])[0]), float(ref.density("mu", [0.1])[0]))


def test_benefit_must_be_a_direction():
    from bayes_pip.errors import InputError
    with pytest.raises(InputError, match="lower' or 'higher"):
        exact_batch([[0.1]], [[0.1]], prior=PRIORS[0], benefit="up")


def test_api_batch_reproduces_a_fit():
    """bp.exact_batch on an outcome's effects with bp.prior gives the numbers of bp.fit."""
    import bayes_pip as bp
    from bayes_pip.classical import classical_from

    data = bp.load(str(__import__("pathlib").Path(__file__).parents[1] / "data" / "crins2014"))
    fit = bp.fit(data, "acute_rejection", engine="exact")
    es = classical_from(data.resolve("acute_rejection", "study")).effects
    out = bp.exact_batch([es.y], [es.v], prior=bp.prior(data, "acute_rejection"),
                         benefit=fit.benefit)
    assert close(np.exp(out.mu.sel(quantile=0.5).item()), fit.effect.median)
    assert close(np.exp(out.mu.sel(quantile=0.025).item()), fit.effect.ci_low)
    assert close(out.p_benefit.item(), fit.p_benefit)


def test_readme_batch_example_runs(monkeypatch):
    import re
    from pathlib import Path

    root = Path(__file__).parents[1]
    monkeypatch.chdir(root)
    text = (root / "README.md").read_text()
    section = text[text.index("## Many meta-analyses at once"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "100_000" in code
    namespace = {}
    exec(compile(code.replace("100_000", "2_000"), "README.md", "exec"), namespace)  # noqa: S102
    out = namespace["out"]
    assert out.sizes["meta"] == 2_000 and (out.error.values == "").all()
    assert ((out.p_benefit >= 0) & (out.p_benefit <= 1)).all()


def test_prior_by_name_equals_the_applied_prior_object():
    """exact_batch accepts a prior set's name (applied to an outcome of ``measure``) as it
    accepts the applied object, alone or one per meta-analysis."""
    import bayes_pip as bp
    from bayes_pip.errors import InputError

    rng = np.random.default_rng(5)
    v = rng.uniform(0.02, 0.3, (40, 5))
    y = rng.normal(0.2, np.sqrt(v + 0.04))
    obj = bp.prior("data/crins2014", "acute_rejection", "halfnormal-1.0")
    by_name = bp.exact_batch(y, v, prior="halfnormal-1.0")
    by_obj = bp.exact_batch(y, v, prior=obj)
    np.testing.assert_array_equal(by_name.mu.values, by_obj.mu.values)
    mixed = bp.exact_batch(y, v, prior=["halfnormal-1.0", obj] * 20)
    np.testing.assert_array_equal(mixed.p_benefit.values, by_obj.p_benefit.values)
    with pytest.raises(InputError, match="mcid"):
        bp.exact_batch(y, v, prior="sceptical")


def test_batch_marginal_likelihoods_equal_the_one_at_a_time_evidence():
    """Column LOG_ML: log p(y | RE), and with mu_zero log p(y | RE0), equal to
    engines.evidence (the one-at-a-time bma) to 1e-9 on simulated rows of mixed k and priors."""
    from bayes_pip.engines import evidence as ev
    from bayes_pip.engines.exact_batch_kernels import LOG_ML

    y, v, mask, priors, _ = simulated(150, seed=3)
    keep = [i for i in range(150) if priors[i].mu.proper and np.isfinite(priors[i].mu.sd)
            and mask[i].sum() > 1]
    sel = [priors[i] for i in keep]
    re = batch_posterior(y[keep], v[keep], mask[keep], sel, quantiles=())
    re0 = batch_posterior(y[keep], v[keep], mask[keep], sel, quantiles=(), mu_zero=True)
    assert (re.error == "").all() and (re0.error == "").all()
    for j, i in enumerate(keep):
        e = ev.evidence(y[i, mask[i]], v[i, mask[i]], priors[i].mu, priors[i].tau)
        assert re.summary[j, LOG_ML] == pytest.approx(e.log_ml["RE"], abs=1e-9), i
        assert re0.summary[j, LOG_ML] == pytest.approx(e.log_ml["RE0"], abs=1e-9), i
    # a flat prior on mu has no marginal likelihood
    flat = [i for i in range(150) if not np.isfinite(priors[i].mu.sd)][:3]
    out = batch_posterior(y[flat], v[flat], mask[flat], [priors[i] for i in flat])
    assert np.isnan(out.summary[:, LOG_ML]).all() and (out.error == "").all()


def test_batch_model_comparison_equals_bma_one_at_a_time():
    """exact_batch(evidence=True): the four log marginal likelihoods, the three Bayes factors,
    the posterior model probabilities, the model-averaged P(benefit) and p_null equal what bma
    computes one meta-analysis at a time (engines.evidence and AveragedMu over the exact
    posterior) to 1e-8, on simulated rows of mixed k (1 to 30; k = 1 compares FE0 and FE only)
    under four proper prior sets and both directions of benefit."""
    from bayes_pip.engines import evidence as ev

    y, v, mask, priors, benefit = simulated(160, seed=11)
    proper = [p for p in PRIORS if np.isfinite(p.mu.sd)]
    priors = [proper[i % len(proper)] for i in range(160)]
    mask[:12, 1:] = False                                       # a dozen single studies
    out = exact_batch(y, v, mask, priors, benefit=benefit, evidence=True)
    assert (out.error.values == "").all()
    assert list(out.model.values) == list(ev.MODELS)
    for i in range(160):
        yi, vi = y[i, mask[i]], v[i, mask[i]]
        re = len(yi) > 1
        e = ev.evidence(yi, vi, priors[i].mu, priors[i].tau, random_effects=re)
        parts = {"FE": ev.fixed_effect_posterior(yi, vi, priors[i].mu)}
        if re:
            parts["RE"] = exact_posterior(yi, vi, priors[i].mu, priors[i].tau)
        averaged = ev.AveragedMu(e, parts)
        for j, m in enumerate(ev.MODELS):
            got = out.log_ml.values[i, j], out.posterior_probability.values[i, j]
            if m in e.log_ml:
                assert close(got[0], e.log_ml[m]), (i, m)
                assert close(got[1], e.posterior_probability[m]), (i, m)
            else:
                assert np.isnan(got).all(), (i, m)
        assert close(out.log_bf_effect_fixed.values[i], e.log_bf_effect_fixed)
        if re:
            assert close(out.log_bf_effect.values[i], e.log_bf_effect), i
            assert close(out.log_bf_heterogeneity.values[i], e.log_bf_heterogeneity), i
        else:
            assert np.isnan(out.log_bf_effect.values[i])
        want = (averaged.cdf(0.0) - averaged.null if benefit[i] == "lower"
                else averaged.sf(0.0))
        assert close(out.p_benefit_averaged.values[i], want), i
        assert close(out.p_null.values[i], averaged.null), i


def test_batch_model_comparison_equals_the_bma_record():
    """The bma command's record (Crins 2014 acute rejection, normal-normal likelihood) against
    the batch row of the same data and prior: Bayes factors and P(benefit) to 1e-8."""
    import bayes_pip as bp
    from bayes_pip.checks import bma_outcome
    from bayes_pip.classical import classical_from

    data = bp.load("data/crins2014")
    b = bma_outcome(data, "acute_rejection", engine="exact")
    assert b.likelihood == "normal-normal" and b.k > 1
    es = classical_from(data.resolve("acute_rejection")).effects
    out = exact_batch([es.y], [es.v], prior=b.prior, benefit=b.benefit, evidence=True)
    assert close(float(out.log_bf_effect[0]), b.log_bf_effect)
    assert close(float(out.log_bf_heterogeneity[0]), b.log_bf_heterogeneity)
    assert close(float(out.log_bf_effect_fixed[0]), b.log_bf_effect_fixed)
    assert close(float(out.p_benefit_averaged[0]), b.p_benefit)
    for j, m in enumerate(b.models):
        assert out.model.values[j] == m.name
        assert close(float(out.log_ml[0, j]), m.log_marginal_likelihood)
        assert close(float(out.posterior_probability[0, j]), m.posterior_probability)


def test_batch_evidence_needs_proper_priors_and_a_looser_tolerance_agrees():
    """Evidence under a flat prior on mu is refused with the row; a tolerance of 1e-8 keeps log
    marginal likelihoods within 1e-8 and quantiles within 1e-7 of the default 1e-10, and every
    row's error estimate is at most its tolerance; tolerances outside 1e-13 ... 1e-4 are
    refused."""
    from bayes_pip.errors import InputError

    y, v, mask, priors, benefit = simulated(100, seed=5)
    with pytest.raises(InputError, match="meta-analysis [0-9]+: Bayes factors need a proper prior"):
        exact_batch(y, v, mask, priors, benefit=benefit, evidence=True)
    proper = [p if np.isfinite(p.mu.sd) else PRIORS[0] for p in priors]
    full = exact_batch(y, v, mask, proper, benefit=benefit, evidence=True)
    fast = exact_batch(y, v, mask, proper, benefit=benefit, evidence=True, tol=1e-8)
    assert float(abs(fast.log_ml - full.log_ml).max()) <= 1e-8
    for name in ("mu", "theta_new", "tau"):
        assert float(abs(fast[name] - full[name]).max()) <= 1e-7, name
    assert float(fast.quadrature_error.max()) <= 1e-8
    assert float(full.quadrature_error.max()) <= 1e-10
    assert float(fast.quadrature_cells.mean()) < float(full.quadrature_cells.mean())
    for bad in (0, 1e-20, 0.1, float("nan"), "1e-8", True):
        with pytest.raises(InputError, match="tol"):
            exact_batch(y, v, mask, proper, tol=bad)


def test_api_batch_forwards_evidence_and_tol():
    """bp.exact_batch(..., evidence=True, tol=1e-8) equals the engine's own call."""
    import bayes_pip as bp

    y, v = [[-2.31, -1.26]], [[0.359, 0.412]]
    obj = NS(mu=Normal(0, 4), tau=HalfNormal(0.5))
    a = bp.exact_batch(y, v, prior=obj, evidence=True, tol=1e-8)
    b = exact_batch(y, v, prior=obj, evidence=True, tol=1e-8)
    assert float(a.log_bf_effect[0]) == float(b.log_bf_effect[0])
    assert abs(float(a.log_bf_effect[0]) - 2.49879494) < 1e-7


def test_mixture_quantiles_solve_their_equation():
    """The mixture quantiles of mu and of a new study (Halley iterations that stop once a step
    moves the CDF by at most 1e-5: error of order 1e-13 in probability) put the posterior CDF,
    summed here with scipy over every stored node, at q to 1e-12 (measured 1.4e-13)."""
    from scipy.special import ndtr

    y, v, mask, priors, _ = simulated(300, seed=5)
    groups = {}
    for i, p in enumerate(priors):
        groups.setdefault(id(p), []).append(i)
    worst = 0.0
    for rows in groups.values():
        if not np.isfinite(priors[rows[0]].mu.sd):
            continue
        post = batch_posterior(y[rows], v[rows], mask[rows], priors[rows[0]], store=True)
        for r in range(len(rows)):
            row = post.row(r)
            w, m, var, tau = row.weight, row.mu_mean, row.mu_var, row.tau
            for name, sd in (("mu", np.sqrt(var)), ("predict", np.sqrt(var + tau**2))):
                for q, x in zip(post.quantiles, post.column(name)[r]):
                    worst = max(worst, abs(float(np.sum(w * ndtr((x - m) / sd))) - q))
    assert worst <= 1e-12


def test_gauss_kronrod_rule_is_exact_to_its_degrees():
    """The 15-point Kronrod rule integrates x^d on [-1, 1] exactly up to d = 23 and its
    embedded 7-point Gauss rule up to d = 13, and neither beyond (so the constants are right:
    a wrong digit in a node or weight breaks exactness)."""
    from bayes_pip.engines.exact import GAUSS_W, KRONROD_W, KRONROD_X

    def error(w, d):
        return abs(float(w @ KRONROD_X**d) - (2 / (d + 1) if d % 2 == 0 else 0.0))

    assert max(error(KRONROD_W, d) for d in range(24)) < 1e-15
    assert max(error(GAUSS_W, d) for d in range(14)) < 1e-15
    assert error(KRONROD_W, 24) > 1e-10 and error(GAUSS_W, 14) > 1e-6
    assert np.allclose(KRONROD_X[GAUSS_W > 0], np.polynomial.legendre.leggauss(7)[0],
                       rtol=0, atol=1e-15)


def test_adaptive_cells_on_variances_spanning_decades():
    """Within-study variances from 1e-4 to 10 and up to 100 studies (the posterior of log tau
    turns where tau^2 passes each v_i): equal to the one-at-a-time engine to 1e-8, every row's
    error estimate at most the tolerance, in fewer cells than the 200 of the uniform design."""
    rng = np.random.default_rng(11)
    n, k_max = 24, 100
    k = rng.integers(2, k_max + 1, n)
    mask = np.arange(k_max)[None, :] < k[:, None]
    v = 10.0 ** rng.uniform(-4, 1, (n, k_max))
    y = rng.normal(0.3, np.sqrt(v + 0.05))
    out = exact_batch(y, v, mask, PRIORS[1])
    assert (out.error.values == "").all()
    assert float(out.quadrature_error.max()) <= 1e-10
    assert float(out.quadrature_cells.max()) < 40
    for i in range(n):
        p = exact_posterior(y[i, mask[i]], v[i, mask[i]], PRIORS[1].mu, PRIORS[1].tau)
        for j, q in enumerate(out["quantile"].values):
            assert close(out.mu.values[i, j], p.quantile("mu", q)), (i, q)
            assert close(out.tau.values[i, j], p.quantile("tau", q)), (i, q)


def test_a_row_that_misses_the_tolerance_says_so(monkeypatch):
    """A row whose error estimate is still above the tolerance at the cell limit gets an error
    and NaN values instead of numbers that are not as accurate as asked."""
    from bayes_pip.engines import exact_batch as eb

    monkeypatch.setattr(eb, "MAX_CELLS", 4)
    y, v, mask, _, _ = simulated(6, seed=4, k_max=6)
    out = exact_batch(y, v, mask, PRIORS[0], tol=1e-13)
    rough = out.error.values != ""
    assert rough.any()
    for message in out.error.values[rough]:
        assert message.startswith("the quadrature's error estimate (") and \
            message.endswith("of the integral) is above the tolerance 1e-13 after 4 cells")
    assert np.isnan(out.mu.values[rough]).all() and np.isnan(out.quadrature_error.values[rough]).all()


def test_halley_returns_a_root_it_cannot_improve():
    """Started at the root to within rounding (the step falls below half an ulp of x, so it
    does not move x), the search returns x; it used to bisect towards the bracket's far end and
    then accept a point where the density, and so |step| x density, was tiny."""
    from bayes_pip.engines.exact_batch_kernels import _halley_quantile, _ndtr

    x = 100.3
    q = float(np.nextafter(_ndtr(0.3), 1.0))       # F(x) - q = -1e-16: the root is x + 3e-16
    one = np.ones(1)
    got = _halley_quantile(one, np.array([100.0]), one, 1, q, x, 60.0, 140.0, 1e-9, 1e-5)
    assert abs(got - x) < 1e-12


def test_sweep_and_cli_defaults_are_the_engine_tolerance():
    """The tolerance is stated in four places that must not drift apart."""
    import inspect

    import bayes_pip as bp
    from bayes_pip import database
    from bayes_pip.engines import exact_batch as eb, normal_exact

    assert eb.TOL == 1e-10
    assert inspect.signature(bp.exact_batch).parameters["tol"].default == eb.TOL
    assert inspect.signature(bp.run_database).parameters["tol"].default == eb.TOL
    assert database.Settings().tol == eb.TOL and normal_exact.TOL == eb.TOL
    from bayes_pip.cli import build_parser
    args = build_parser().parse_args(["database", "x.csv", "--out", "o"])
    assert args.tol == eb.TOL


def test_savage_dickey_null_equals_the_integrated_one(monkeypatch):
    """RE0's log marginal likelihood from the RE posterior's density of mu at 0 (Savage-Dickey,
    where its Kronrod and Gauss mixtures agree to DENSITY0_ACCEPT) equals RE0 integrated itself
    to 1e-10 (measured on 30,000 rows: 8e-12); rows of both kinds are in the sample."""
    from bayes_pip.engines import batch

    y, v, mask, priors, benefit = simulated(150, seed=8)
    proper = [p if np.isfinite(p.mu.sd) and getattr(p.tau, "proper", True) else PRIORS[0]
              for p in priors]
    post = batch_posterior(y, v, mask, proper)
    from bayes_pip.engines.exact_batch_kernels import DENSITY0_ERROR
    dickey = (post.summary[:, DENSITY0_ERROR] <= batch.DENSITY0_ACCEPT) & (post.k > 1)
    assert 10 < dickey.sum() < len(dickey) - 10
    fast = batch.batch_evidence(post, benefit == "lower")
    monkeypatch.setattr(batch, "DENSITY0_ACCEPT", -1.0)
    slow = batch.batch_evidence(post, benefit == "lower")
    both = np.isfinite(slow["log_ml"][:, 2])
    assert both.sum() == (post.k > 1).sum()
    assert np.abs(fast["log_ml"][both, 2] - slow["log_ml"][both, 2]).max() <= 1e-10
