"""The exact binomial-normal engine (`--engine binomial-exact`) against an independent integration,
against the binomial NUTS engine, and through the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bayes_pip.engines.exact_binomial import (binomial_posterior, log_marginal_likelihoods,
                                              study_tables, log_lik)
from bayes_pip.priors import HalfCauchy, HalfNormal, Normal

from conftest import run_main

REFERENCE = Path(__file__).parent / "reference"
# tests/reference/binomial_exact_reference.py: nested scipy.integrate.quad (QUADPACK, epsrel
# 1e-10), k = 1, mu ~ N(0, 2^2), tau ~ half-normal(0.5), baseline ~ N(0, 10^2)
K1 = json.loads((REFERENCE / "binomial_exact_reference.json").read_text())
BASELINE = Normal(0.0, 10.0)
CDF_TOL = 1e-6   # posterior CDFs; quantile error = CDF error / density, below 1e-5 for density > 0.1
LOG_ML_TOL = 1e-6


def k1_posterior(case):
    d = K1[case]["data"]
    tau_prior = HalfCauchy(0.5) if d.get("tau") == "halfcauchy" else HalfNormal(0.5)
    return binomial_posterior([d["e_t"]], [d["n_t"]], [d["e_c"]], [d["n_c"]], d["link"],
                              Normal(0.0, 2.0), tau_prior, BASELINE)


@pytest.mark.parametrize("case", ["secure_k1_rr", "zero_cell_k1_or"])
def test_one_study_equals_independent_adaptive_quadrature(case):
    """CDFs of mu and tau and the log marginal likelihood equal QUADPACK's nested integral
    (measured differences: CDFs <= 1.2e-7, log p(data) <= 1e-8)."""
    ref = K1[case]
    d = ref["data"]
    post = binomial_posterior([d["e_t"]], [d["n_t"]], [d["e_c"]], [d["n_c"]], d["link"],
                              Normal(0.0, 2.0), HalfNormal(0.5), BASELINE)
    for t, value in ref["tau_cdf"].items():
        assert post.cdf("tau", float(t)) == pytest.approx(value, abs=CDF_TOL), t
    for x, value in ref["mu_cdf"].items():
        assert post.cdf("mu", float(x)) == pytest.approx(value, abs=CDF_TOL), x
    assert post.log_marginal_likelihood == pytest.approx(ref["log_marginal_likelihood"],
                                                         rel=LOG_ML_TOL)
    # the grammar is consistent: quantile inverts the CDF
    for q in (0.025, 0.5, 0.975):
        assert post.cdf("mu", post.quantile("mu", q)) == pytest.approx(q, abs=1e-10)
        assert post.cdf("tau", post.quantile("tau", q)) == pytest.approx(q, abs=1e-10)


@pytest.mark.parametrize("case", ["secure_k1_rr", "zero_cell_k1_or", "secure_k1_rr_halfcauchy"])
def test_prediction_and_study_effect_equal_independent_quadrature(case):
    """CDFs of a new study's effect and of the study's own effect equal QUADPACK's (measured
    differences <= 3.3e-8), including under a heavy-tailed half-Cauchy prior on tau, whose
    prediction reaches far tails (before the sinh grid, its median was printed as -0.05 with
    mu's median at 2.2)."""
    post = k1_posterior(case)
    for x, value in K1[case]["predict_cdf"].items():
        assert post.cdf("predict", float(x)) == pytest.approx(value, abs=CDF_TOL), x
    for x, value in K1[case]["study_cdf"].items():
        assert post.cdf(("study", 0), float(x)) == pytest.approx(value, abs=CDF_TOL), x


def test_heavy_tailed_tau_prior_within_the_error_budget():
    """Under half-Cauchy(0.5) the CDFs of mu and tau meet the stated budget, 1e-5 on quantiles:
    |CDF error| <= 1e-5 x density (measured: mu 1.7e-6 at x = 2, tau 3e-7 at t = 1), and the
    log marginal likelihood 1e-6 relative (measured 3e-9)."""
    case = "secure_k1_rr_halfcauchy"
    post = k1_posterior(case)
    for target, key in (("mu", "mu_cdf"), ("tau", "tau_cdf")):
        for x, value in K1[case][key].items():
            dens = float(post.density(target, [float(x)])[0])
            assert abs(post.cdf(target, float(x)) - value) <= 1e-5 * dens + 1e-12, (target, x)
    assert post.log_marginal_likelihood == pytest.approx(K1[case]["log_marginal_likelihood"],
                                                         rel=LOG_ML_TOL)


def test_links_are_one_model_at_no_effect():
    """At theta = 0 the log and logit links give the same arm risks, so the no-effect,
    no-heterogeneity likelihood (FE0) is the same number under both (a closed-form identity)."""
    args = ([17, 9], [28, 40], [1, 3], [54, 38])
    values = [float(log_lik(study_tables(*args, link, BASELINE), np.zeros(1), np.zeros(1))[0][0, 0])
              for link in ("log", "logit")]
    assert values[0] == pytest.approx(values[1], abs=1e-9)


def test_zero_cells_and_double_zeros_need_no_correction():
    """A study with no events in either arm enters through its binomial likelihood (no 0.5 added),
    and every summary is finite; with such a study added the pooled effect barely moves (it
    carries almost no information about the odds ratio)."""
    base = ([2, 5], [30, 40], [6, 9], [30, 41])
    with_dz = tuple(a + [b] for a, b in zip(base, (0, 20, 0, 22)))
    a = binomial_posterior(*base, "logit", Normal(0, 2), HalfNormal(0.5), BASELINE)
    b = binomial_posterior(*with_dz, "logit", Normal(0, 2), HalfNormal(0.5), BASELINE)
    for post in (a, b):
        values = [post.quantile(t, q) for t in ("mu", "tau", "predict", ("study", 0))
                  for q in (0.025, 0.5, 0.975)]
        assert np.isfinite(values).all()
        assert post.grid.gh_error < 1e-6 and post.tables.b_error < 1e-9
    assert abs(a.quantile("mu", 0.5) - b.quantile("mu", 0.5)) < 0.05
    assert np.isfinite(b.quantile(("study", 2), 0.5))


def test_model_comparison_uses_the_binomial_likelihood():
    """The four log marginal likelihoods are finite, RE is the grid's normaliser, and a strong
    effect (Cicchetti 2006b's secure attachment counts) is favoured over no effect."""
    post = binomial_posterior([17, 9], [28, 40], [1, 3], [54, 38], "log", Normal(0, 2),
                              HalfNormal(0.5), BASELINE)
    ml = log_marginal_likelihoods(post)
    assert set(ml) == {"FE0", "FE", "RE0", "RE"}
    assert all(math.isfinite(v) for v in ml.values())
    assert ml["RE"] == post.log_marginal_likelihood
    assert ml["RE"] - ml["RE0"] > math.log(10)


def test_cli_fits_reconstructed_tables_and_refuses_continuous_outcomes():
    """`fit --engine binomial-exact` on the bundled review: secure attachment (reconstructed
    tables, RR) runs and prints the engine; an SMD outcome is refused with one line, exit 2."""
    r = run_main("fit", "secure_attachment_post", "--engine", "binomial-exact")
    assert r.returncode == 0, r.stderr
    assert "exact binomial-normal posterior" in r.stdout
    line = next(s for s in r.stdout.splitlines() if s.startswith("Pooled RR"))
    median = float(line.split()[2])
    assert 5.0 < median < 10.0
    r = run_main("fit", "parent_reported_depression_vs_alternative", "--engine", "binomial-exact")
    assert r.returncode == 2
    assert "needs an RR or OR outcome" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_interrupt_inside_a_compiled_kernel_exits_130(monkeypatch):
    """Ctrl-C during a numba kernel comes back as a SystemError raised from KeyboardInterrupt
    (seen with `fit --engine binomial-exact`, which then ended in exit 1 and a traceback): the
    CLI treats it as the interrupt it is, exit 130 with one line."""
    from bayes_pip.engines import exact_binomial

    def interrupted(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError("CPUDispatcher returned a result with an exception set") from exc

    monkeypatch.setattr(exact_binomial, "binomial_posterior", interrupted)
    r = run_main("fit", "secure_attachment_post", "--engine", "binomial-exact")
    assert r.returncode == 130
    assert r.stderr == "bayes_pip: interrupted; nothing was written\n"


@pytest.mark.slow
@pytest.mark.parametrize("outcome, data", [("acute_rejection", "crins2014"),
                                           ("secure_attachment_post", "pip")])
def test_agrees_with_binomial_nuts_within_monte_carlo_error(outcome, data):
    """The same model and prior sampled by NUTS (binomial engine, 4 x 5,000 draws): posterior
    quantiles of mu and tau within 3 Monte Carlo SEs (ArviZ's quantile MCSE) of the exact ones."""
    import arviz as az

    import bayes_pip as bp

    path = Path(__file__).resolve().parents[1] / "data" / data
    exact = bp.fit(bp.load(path), outcome, engine="binomial-exact")
    nuts = bp.fit(bp.load(path), outcome, engine="binomial", draws=5000, seed=3)
    idata = nuts.idata
    for name in ("mu", "tau"):
        draws = idata.posterior[name].values
        for q in (0.05, 0.5, 0.95):
            mcse = float(az.mcse(idata, var_names=[name], method="quantile", prob=q)[name])
            sampled = float(np.quantile(draws, q))
            assert abs(exact.posterior.quantile(name, q) - sampled) < 3 * mcse + 1e-3, \
                (name, q, sampled, exact.posterior.quantile(name, q), mcse)
