"""The exact binomial-normal engine (`--engine binomial-exact`) against an independent integration,
against the binomial NUTS engine, and through the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bayes_pip.engines.binomial_evidence import log_marginal_likelihoods
from bayes_pip.engines.exact_binomial import binomial_posterior, log_lik, study_tables
from bayes_pip.prior_families import HalfCauchy, HalfNormal, Normal

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


# tests/reference/binomial_exact_reference_k23.py: k = 2 and 3 by QUADPACK and polynomial
# interpolation at every level but the theta integral (composite Gauss-Legendre, doubled to
# 1e-12); binomial_models_reference.py: the no-effect and fixed-effect models of the same cases
K23 = json.loads((REFERENCE / "binomial_exact_reference_k23.json").read_text())
MODELS = json.loads((REFERENCE / "binomial_models_reference.json").read_text())
K23_CASES = [name for name in K23 if name != "priors"]


def k23_posterior(case):
    d = K23[case]["data"]
    tau_prior = HalfCauchy(0.5) if d.get("tau") == "halfcauchy" else HalfNormal(0.5)
    return binomial_posterior(d["e_t"], d["n_t"], d["e_c"], d["n_c"], d["link"],
                              Normal(0.0, 2.0), tau_prior, BASELINE)


# tests/reference/binomial_exact_reference_k3.py: the k = 3 double-zero case, which the nested
# QUADPACK above did not finish: the same g_i, then FFT convolution and the trapezoidal rule on a
# fine grid (checked at two resolutions, 9e-13, and against the k = 1 nested QUADPACK, 3.4e-13)
K3 = json.loads((REFERENCE / "binomial_exact_reference_k3.json").read_text())


def assert_matches_reference(post, ref):
    """CDFs of mu and tau within 1e-5 x density (the quantile budget) and CDF_TOL, and the log
    marginal likelihood within LOG_ML_TOL relative, at every point of an independent reference."""
    for target, key in (("mu", "mu_cdf"), ("tau", "tau_cdf")):
        for x, value in ref[key].items():
            dens = float(post.density(target, [float(x)])[0])
            assert abs(post.cdf(target, float(x)) - value) <= 1e-5 * dens + 1e-12, (target, x)
            assert post.cdf(target, float(x)) == pytest.approx(value, abs=CDF_TOL), (target, x)
    assert post.log_marginal_likelihood == pytest.approx(ref["log_marginal_likelihood"],
                                                         rel=LOG_ML_TOL)


def test_three_studies_with_a_double_zero_equal_independent_integration():
    """k = 3, OR, one study with no events in either arm: quantiles of mu and tau within 1e-5
    (|CDF error| <= 1e-5 x density; measured <= 5e-8 in CDF) and the log marginal likelihood
    within 1e-6 relative (measured 4e-10)."""
    ref = K3["double_zero_k3_or"]
    assert ref["self_check"] < 1e-10 and K3["check_against_k1"] < 1e-10
    d = ref["data"]
    post = binomial_posterior(d["e_t"], d["n_t"], d["e_c"], d["n_c"], d["link"],
                              Normal(0.0, 2.0), HalfNormal(0.5), BASELINE)
    assert_matches_reference(post, ref)


@pytest.mark.parametrize("case", K23_CASES)
def test_two_and_three_studies_equal_independent_integration(case):
    """Every case of the k = 2, 3 reference (today k = 2: Cicchetti 2006b and 1999a secure
    attachment, reconstructed tables, RR, log link; the k = 3 double-zero case did not finish
    and is checked above against binomial_exact_reference_k3.py):
    quantiles of mu and tau within 1e-5 (|CDF error| <= 1e-5 x density at every reference
    point; measured <= 1.4e-7 in CDF), log marginal likelihood within 1e-6 relative (measured
    3e-10)."""
    ref = K23[case]
    post = k23_posterior(case)
    assert_matches_reference(post, ref)


# the data of binomial_models_reference.py's cases (binomial_exact_reference_k23.CASES)
MODELS_DATA = {
    "secure_k2_rr": dict(e_t=[17, 9], n_t=[28, 40], e_c=[1, 3], n_c=[54, 38], link="log"),
    "double_zero_k3_or": dict(e_t=[2, 5, 0], n_t=[30, 40, 20], e_c=[6, 9, 0], n_c=[30, 41, 22],
                              link="logit"),
}


@pytest.mark.parametrize("case", sorted(MODELS))
def test_model_comparison_equals_independent_integration(case):
    """The four log marginal likelihoods `bma` uses with the binomial likelihood: FE0, FE and
    RE0 against binomial_models_reference.py (k = 2, log link; k = 3, OR with a double zero),
    RE against the k = 2 reference (1e-6 relative; measured: FE0 3e-14, FE 2e-8, RE0 1e-6
    absolute = 5e-8 relative)."""
    d = MODELS_DATA[case]
    post = binomial_posterior(d["e_t"], d["n_t"], d["e_c"], d["n_c"], d["link"],
                              Normal(0.0, 2.0), HalfNormal(0.5), BASELINE)
    ml = log_marginal_likelihoods(post)
    for model, value in MODELS[case].items():
        assert ml[model] == pytest.approx(value, rel=LOG_ML_TOL), model
    if case in K23:
        assert ml["RE"] == pytest.approx(K23[case]["log_marginal_likelihood"], rel=LOG_ML_TOL)


def test_heavy_tailed_tau_prior_within_the_error_budget():
    """Under half-Cauchy(0.5) the CDFs of mu and tau meet the stated budget, 1e-5 on quantiles:
    |CDF error| <= 1e-5 x density (measured: mu 3.1e-7, tau 2.9e-7), and the log marginal
    likelihood 1e-6 relative (measured 1.2e-9)."""
    case = "secure_k1_rr_halfcauchy"
    post = k1_posterior(case)
    for target, key in (("mu", "mu_cdf"), ("tau", "tau_cdf")):
        for x, value in K1[case][key].items():
            dens = float(post.density(target, [float(x)])[0])
            assert abs(post.cdf(target, float(x)) - value) <= 1e-5 * dens + 1e-12, (target, x)
    assert post.log_marginal_likelihood == pytest.approx(K1[case]["log_marginal_likelihood"],
                                                         rel=LOG_ML_TOL)


# dat.collins1985a deaths, first 10 trials (OR; three single-zero trials, one near-double-zero)
COLLINS10 = dict(e_t=[1, 1, 0, 4, 4, 0, 2, 0, 1, 6], n_t=[50, 56, 14, 58, 40, 20, 46, 18, 45, 21],
                 e_c=[1, 0, 4, 5, 5, 2, 5, 1, 0, 4], n_c=[50, 53, 15, 55, 48, 20, 47, 19, 43, 19])


@pytest.mark.parametrize("case", ["collins10", "secure_k2_rr"])
def test_study_likelihoods_equal_a_brute_force_integral_of_the_same_spline(case):
    """L_i(mu, tau) at every rule the engine chooses (8/6 and 24/12 Gauss-Hermite, the
    trapezoidal walk with a stride over the knots where the integrand is wide, the log link's
    kink walk) equals a brute-force trapezoidal integral of the same spline times the normal
    (400,001 points over +-15 scales): within 3e-7 in log L (measured: 1.2e-7, at small tau
    with the log link), over nodes from tau = 0.01 to 5 and across mu."""
    from bayes_pip.engines.binomial_kernels import spline_values

    d = COLLINS10 if case == "collins10" else MODELS_DATA["secure_k2_rr"]
    link = "logit" if case == "collins10" else "log"
    tables = study_tables(d["e_t"], d["n_t"], d["e_c"], d["n_c"], link, BASELINE)
    mu = np.linspace(-3.0, 3.0, 7)
    tau = np.array([0.01, 0.05, 0.2, 0.7, 2.0, 5.0])
    from bayes_pip.engines.exact_binomial import log_lik_each
    each, _ = log_lik_each(tables, mu, tau)
    worst = 0.0
    for i in range(len(d["e_t"])):
        for m, t in enumerate(tau):
            for j, x in enumerate(mu):
                half = 15 * max(t, 0.5)
                grid = np.linspace(min(x, tables.modes[i]) - half,
                                   max(x, tables.modes[i]) + half, 400_001)
                log_g = spline_values(grid, tables.lo[i], tables.h[i], tables.coefs[i])[0]
                f = np.exp(log_g - 0.5 * ((grid - x) / t) ** 2) / (t * math.sqrt(2 * math.pi))
                worst = max(worst, abs(each[i, m, j] - math.log(np.trapezoid(f, grid))))
    assert worst < 3e-7


@pytest.mark.parametrize("case", sorted(MODELS_DATA))
def test_study_likelihoods_at_huge_tau_equal_adaptive_quadrature(case):
    """Where a heavy-tailed tau prior reaches tau = 1e3 to 1e5, the integrand is far wider than
    the spline grid: L_i(mu, tau) equals scipy's adaptive quadrature of the same spline (linear
    beyond its grid) times the normal, over the whole line, within 3e-7 in log L (the budget of
    the brute-force test above; measured 7e-8). A walk node by node was cut off by its step
    budget there and missed by 3.2 (the double-zero study at tau = 1e5)."""
    from scipy import integrate

    from bayes_pip.engines.binomial_kernels import spline_eval
    from bayes_pip.engines.exact_binomial import log_lik_each

    d = MODELS_DATA[case]
    tables = study_tables(d["e_t"], d["n_t"], d["e_c"], d["n_c"], d["link"], BASELINE)
    mu, tau = np.array([-2.0, 1.5]), np.array([1e3, 1e5])
    each, _ = log_lik_each(tables, mu, tau)
    for i in range(len(d["e_t"])):
        lo, h, coef = tables.lo[i], tables.h[i], tables.coefs[i]
        for m, t in enumerate(tau):
            for j, x in enumerate(mu):
                def f(theta):
                    return math.exp(spline_eval(theta, lo, h, coef)[0]
                                    - 0.5 * ((theta - x) / t) ** 2) / (t * math.sqrt(2 * math.pi))
                edges = [-np.inf, *sorted({lo, lo + coef.shape[1] * h, 0.0, x}), np.inf]
                total = sum(integrate.quad(f, a, b, epsabs=0, epsrel=1e-13, limit=500)[0]
                            for a, b in zip(edges[:-1], edges[1:]))
                assert each[i, m, j] == pytest.approx(math.log(total), abs=3e-7), (i, t, x)


def test_nodes_left_out_carry_no_posterior_mass(monkeypatch):
    """The cells left out of the grid (scouted below e^-35 of the peak) change no summary:
    integrating every node gives the same quantiles of mu, tau, a new study's effect and a
    study's effect, and the same log marginal likelihood, to 1e-12; and they are left out
    (a quarter or more of the nodes here)."""
    from bayes_pip.engines import exact_binomial as ebin

    d = COLLINS10
    args = (d["e_t"], d["n_t"], d["e_c"], d["n_c"], "logit", Normal(0.0, 2.0), HalfNormal(0.5),
            BASELINE)
    lean = binomial_posterior(*args)
    assert np.isfinite(lean.grid.each[0]).mean() < 0.75
    monkeypatch.setattr(ebin, "LIVE_MARGIN", 1e9)
    full = binomial_posterior(*args)
    assert np.isfinite(full.grid.each[0]).all()
    for target in ("mu", "tau", "predict", ("study", 2)):
        for q in (0.025, 0.5, 0.975):
            assert lean.quantile(target, q) == pytest.approx(full.quantile(target, q),
                                                             abs=1e-12), (target, q)
    assert lean.log_marginal_likelihood == pytest.approx(full.log_marginal_likelihood,
                                                         rel=1e-13)


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


def test_bayes_factors_by_prior_width_reuse_the_null_models(monkeypatch):
    """`bma`'s Bayes factor for each width of the prior on mu recomputes only the models with
    an effect: mu = 0 (FE0, RE0) does not depend on that prior, so RE0, whose every tau node
    costs k two-dimensional integrals, is integrated once; a factor equals a full
    recomputation."""
    import bayes_pip as bp
    from bayes_pip.checks import bma_outcome
    from bayes_pip.engines import binomial_evidence as eb

    calls = []
    original = eb.null_random
    monkeypatch.setattr(eb, "null_random", lambda *a: calls.append(1) or original(*a))
    crins = bp.load("data/crins2014")
    b = bma_outcome(crins, "acute_rejection", engine="binomial-exact")
    assert len(calls) == 1 and len(b.bf_by_width) >= 3
    resolved = crins.resolve("acute_rejection")
    rows = resolved.rows
    width = next(w for w in b.bf_by_width if w.sd != b.prior.mu.sd)   # one recomputed width
    logs, _ = eb.binomial_evidence(rows.events_t.to_numpy(), rows.n_t.to_numpy(),
                                   rows.events_c.to_numpy(), rows.n_c.to_numpy(),
                                   resolved.outcome.scale.link, Normal(width.mean, width.sd),
                                   b.prior.tau, b.prior.baseline)
    assert width.log_bf_effect == pytest.approx(logs["RE"] - logs["RE0"], abs=1e-12)


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
    from bayes_pip.engines import binomial_engine

    def interrupted(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError("CPUDispatcher returned a result with an exception set") from exc

    monkeypatch.setattr(binomial_engine, "binomial_posterior", interrupted)
    r = run_main("fit", "secure_attachment_post", "--engine", "binomial-exact")
    assert r.returncode == 130
    assert r.stderr == "bayes_pip: interrupted; nothing was written\n"


def within_mcse(exact_post, idata):
    """Posterior quantiles of mu and tau (5%, 50%, 95%) of the exact posterior within 3 Monte
    Carlo SEs (ArviZ's quantile MCSE) of the NUTS draws."""
    import arviz as az

    for name in ("mu", "tau"):
        draws = idata.posterior[name].values
        for q in (0.05, 0.5, 0.95):
            mcse = float(az.mcse(idata, var_names=[name], method="quantile", prob=q)[name])
            sampled = float(np.quantile(draws, q))
            assert abs(exact_post.quantile(name, q) - sampled) < 3 * mcse + 1e-3, \
                (name, q, sampled, exact_post.quantile(name, q), mcse)


@pytest.mark.slow
@pytest.mark.parametrize("outcome, data", [("acute_rejection", "crins2014"),
                                           ("secure_attachment_post", "pip"),
                                           ("disorganised_attachment_post", "pip")])
def test_agrees_with_binomial_nuts_within_monte_carlo_error(outcome, data):
    """The same model and prior sampled by NUTS (binomial engine, 4 x 5,000 draws): Crins 2014
    (OR, k = 6, a zero cell) and two reconstructed PIP outcomes (RR, log link, k = 2)."""
    import bayes_pip as bp

    path = Path(__file__).resolve().parents[1] / "data" / data
    exact = bp.fit(bp.load(path), outcome, engine="binomial-exact")
    nuts = bp.fit(bp.load(path), outcome, engine="binomial", draws=5000, seed=3)
    within_mcse(exact.posterior, nuts.idata)


@pytest.mark.slow
def test_agrees_with_binomial_nuts_on_rare_events_with_double_zeros():
    """Deaths in dat.collins1985a (24 trials, OR; two trials with no death in either arm,
    eight more with a zero cell; tests/reference/rare_events_glmm.R): exact against NUTS
    within 3 MCSE."""
    import pandas as pd

    from bayes_pip import measures
    from bayes_pip.effects import effect_sizes
    from bayes_pip.engines.base import SamplerSettings
    from bayes_pip.engines.binomial_nuts import sample_binomial_normal
    from bayes_pip.engines.diagnostics import gate
    from bayes_pip.priors import ResolvedPrior

    ref = json.loads((REFERENCE / "rare_events_values.json").read_text())
    counts = [ref[k] for k in ("events_t", "n_t", "events_c", "n_c")]
    double = sum(a == 0 and c == 0 for a, c in zip(counts[0], counts[2]))
    assert double == 2
    rows = pd.DataFrame({"study": [f"{t} {i}" for i, t in enumerate(ref["trial"])],
                         **{k: ref[k] for k in ("events_t", "n_t", "events_c",
                                                "n_c")}})
    es = effect_sizes(rows, measures.get("OR"))
    prior = ResolvedPrior("p", "", "", Normal(0, 4), HalfNormal(0.5), "", "")
    settings = SamplerSettings(draws=5000)
    idata = sample_binomial_normal(es, prior, 3, settings)
    assert not gate(idata, settings.chains, settings.draws)[1]
    exact = binomial_posterior(*counts, "logit", prior.mu, prior.tau, prior.baseline)
    within_mcse(exact, idata)


# ---------------------------------------------------------------------------------------------
# --engine auto: the binomial-normal headline on sparse arm counts
# ---------------------------------------------------------------------------------------------

def rr_data(rows):
    import pandas as pd

    import bayes_pip as bp

    outcomes = pd.DataFrame([{"outcome": "o1", "label": "x", "comparison": "a_vs_b",
                              "measure": "RR", "benefit": "lower"},
                             {"outcome": "o2", "label": "y", "comparison": "a_vs_b",
                              "measure": "SMD", "benefit": "lower"}])
    studies = pd.DataFrame(
        [{"outcome": "o1", "study": f"S{i}", "events_t": a, "n_t": b, "events_c": c,
          "n_c": d, "source": "t"} for i, (a, b, c, d) in enumerate(rows)]
        + [{"outcome": "o2", "study": "T1", "mean_t": 1.0, "sd_t": 1.0, "n_t": 10,
            "mean_c": 1.2, "sd_c": 1.0, "n_c": 10, "source": "t"}])
    return bp.load(outcomes=outcomes, studies=studies)


@pytest.mark.parametrize("rows, chosen", [
    ([(5, 20, 6, 20), (10, 30, 15, 30)], "pymc"),            # 5 events, 15 non-events: not sparse
    ([(4, 20, 6, 20), (10, 30, 15, 30)], "binomial-exact"),  # 4 events
    ([(16, 20, 6, 20), (10, 30, 15, 30)], "binomial-exact"),  # 4 non-events
    ([(0, 20, 0, 20), (10, 30, 15, 30)], "binomial-exact"),   # a double zero
])
def test_auto_chooses_the_binomial_likelihood_on_sparse_arms_only(rows, chosen):
    """The rule: an arm with fewer than 5 events or 5 non-events (n p >= 5 and n (1 - p) >= 5,
    the usual condition for a normal approximation to a binomial count) makes an RR/OR outcome
    sparse; an SMD outcome never is."""
    from bayes_pip.analysis import choose_engine

    ds = rr_data(rows)
    assert choose_engine(ds.resolve("o1", "auto")) == chosen
    assert choose_engine(ds.resolve("o2", "auto")) == "pymc"


def test_auto_headline_is_binomial_with_the_normal_normal_beside_it():
    """`fit secure_attachment_post` (Cicchetti 2006b control arm: 1 of 54) headlines the exact
    binomial-normal posterior and carries the normal-normal result under the same prior, equal
    to `--engine exact`'s; the text gives both and the one sentence on why they differ; the
    record equals `--engine binomial-exact`'s apart from that field."""
    auto = json.loads(run_main("fit", "secure_attachment_post", "--json").stdout)
    exact = json.loads(run_main("fit", "secure_attachment_post", "--engine", "exact",
                                "--json").stdout)
    binomial = json.loads(run_main("fit", "secure_attachment_post", "--engine",
                                   "binomial-exact", "--json").stdout)
    assert auto["engine"] == "binomial-exact"
    choice = auto.pop("likelihood_choice")
    assert auto == binomial
    assert choice["normal_normal"] == exact["effect"]
    assert choice["normal_normal_p_benefit"] == exact["p_benefit"]
    assert "Cicchetti 2006b control: 1 of 54" in choice["sparse_arms"]
    text = run_main("fit", "secure_attachment_post").stdout
    e, f = binomial["effect"], exact["effect"]
    assert (f"gives RR {e['median']:.2f} (95% CrI {e['ci_low']:.2f} to {e['ci_high']:.2f}) and "
            f"the normal-normal model on each study's log RR gives {f['median']:.2f} "
            f"({f['ci_low']:.2f} to {f['ci_high']:.2f})") in text
    assert "zero cells" not in text     # no zero cell in these tables


def test_report_headlines_the_binomial_result_and_bma_uses_its_likelihood(tmp_path):
    """The report of a sparse outcome: the discussion paragraph carries the sentence, and its
    Bayes factors use the binomial likelihood (log marginal likelihoods equal the engine's)."""
    import bayes_pip as bp
    from bayes_pip.checks import bma_outcome

    out = tmp_path / "r"
    r = run_main("report", "secure_attachment_post", "--out", str(out))
    assert r.returncode == 0, r.stderr
    md = (out / "secure_attachment_post.md").read_text()
    assert "The binomial-normal model on the arm counts gives RR" in md
    b = bma_outcome(bp.load(), "secure_attachment_post")
    assert b.likelihood == "binomial-normal"
    table = bp.load().resolve("secure_attachment_post", "auto").table_rows()[0]
    post = binomial_posterior(table.events_t, table.n_t, table.events_c, table.n_c,
                              "log", b.prior.mu, b.prior.tau, b.prior.baseline)
    ml = log_marginal_likelihoods(post)
    assert {m.name: m.log_marginal_likelihood for m in b.models} == ml
    assert "with the binomial-normal likelihood on the arm counts" in md
    normal = bma_outcome(bp.load(), "secure_attachment_post", engine="exact")
    assert normal.likelihood == "normal-normal"
    assert normal.models[0].log_marginal_likelihood != b.models[0].log_marginal_likelihood


def test_numbers_do_not_depend_on_the_number_of_threads():
    """The grid kernels run on every core; each value is summed in serial order, so one thread
    and two give the same numbers to the last bit."""
    import numba

    args = ([2, 5, 0], [30, 40, 20], [6, 9, 0], [30, 41, 22], "logit", Normal(0, 2),
            HalfNormal(0.5), BASELINE)
    targets = ["mu", "tau", "predict", ("study", 2)]
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = binomial_posterior(*args)
        one = [serial.quantile(t, q) for t in targets for q in (0.025, 0.5, 0.975)]
    finally:
        numba.set_num_threads(before)
    post = binomial_posterior(*args)
    assert [post.quantile(t, q) for t in targets for q in (0.025, 0.5, 0.975)] == one
    assert post.log_marginal_likelihood == serial.log_marginal_likelihood


def test_sweep_with_the_binomial_engine_leaves_out_means_and_sds():
    """`sweep --engine binomial-exact` fits the outcomes with arm counts (the summary-level ones
    by the conjugate posterior, as every engine) and names the SMD outcome it leaves out, instead
    of failing on it after the other fits."""
    r = run_main("sweep", "--engine", "binomial-exact", "--priors", "halfnormal-0.5", "--json")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == ("bayes_pip: --engine binomial-exact needs arm counts (RR or OR); "
                                "left out: parent_reported_depression_vs_alternative")
    rows = json.loads(r.stdout)
    outcomes = {row["outcome"]: row["engine"] for row in rows}
    assert "parent_reported_depression_vs_alternative" not in outcomes
    assert outcomes["secure_attachment_post"] == "binomial-exact"
    assert outcomes["parental_depression_incidence"] == "conjugate"


@pytest.mark.parametrize("n", [3, 4, 7, 1201])
def test_splines_equal_scipy_cubic_spline(n):
    """The engine's not-a-knot splines (written out so that a cold fit need not import
    scipy.interpolate and with it scipy.optimize) equal SciPy's CubicSpline: coefficients,
    values and first and second derivatives inside and beyond the ends, the integral and the
    antiderivative, to 1e-12 relative (measured 7e-16)."""
    from scipy.interpolate import CubicSpline

    from bayes_pip.engines.splines import Spline

    rng = np.random.default_rng(n)
    x = np.sort(rng.uniform(-5, 5, n)) if n < 100 else np.linspace(-3, 3, n)
    y = np.sin(x) + rng.normal(0, 0.1, n)
    ref, ours = CubicSpline(x, y), Spline.through(x, y)
    assert np.allclose(ours.c, ref.c, rtol=1e-12, atol=1e-12 * np.abs(ref.c).max())
    t = np.linspace(x[0] - 1, x[-1] + 1, 501)
    for nu in (0, 1, 2):
        want = ref(t, nu)
        assert np.abs(ours(t, nu) - want).max() <= 1e-12 * (1 + np.abs(want).max())
    assert ours.integrate(x[0], x[-1]) == pytest.approx(ref.integrate(x[0], x[-1]), rel=1e-12,
                                                        abs=1e-12)
    want = ref.antiderivative()(t)
    assert np.abs(ours.antiderivative()(t) - want).max() <= 1e-12 * (1 + np.abs(want).max())


def test_quantile_inversion_equals_brentq():
    """The bracketed root search behind every quantile equals scipy.optimize.brentq (xtol = rtol
    = 1e-13) on CDFs from narrow to heavy-tailed and far from 0, and returns the bracket's end
    when q lies outside it."""
    from scipy import optimize, stats

    from bayes_pip.engines.marginals import invert

    rng = np.random.default_rng(3)
    for dist in (stats.norm(0.3, 0.2), stats.t(2, 1, 3), stats.lognorm(1.5),
                 stats.cauchy(0, 1e-3), stats.norm(1e4, 1)):
        for q in rng.uniform(0.001, 0.999, 60):
            x0 = float(dist.ppf(q))
            lo, hi = x0 - rng.uniform(0.01, 2), x0 + rng.uniform(0.01, 2)
            want = optimize.brentq(lambda x: dist.cdf(x) - q, lo, hi, xtol=1e-13, rtol=1e-13)
            assert invert(dist.cdf, lo, hi, q) == pytest.approx(want, rel=2e-13, abs=2e-13)
    assert invert(stats.norm.cdf, 1.0, 2.0, 0.5) == 1.0
    assert invert(stats.norm.cdf, -2.0, -1.0, 0.5) == -1.0


def test_study_tables_are_built_once_per_outcome_and_give_the_same_posterior():
    """The tables depend on the counts, link and baseline prior only: a second prior reuses
    them (the same object), and the posterior equals one from freshly built tables to the bit."""
    from bayes_pip.engines import binomial_tables
    from bayes_pip.prior_families import HalfNormal, Normal

    counts = ([17, 4, 0], [28, 30, 25], [1, 2, 0], [54, 31, 26])
    binomial_tables._TABLES.clear()
    first = binomial_posterior(*counts, "log", Normal(0, 4), HalfNormal(0.5), Normal(0, 10))
    second = binomial_posterior(*counts, "log", Normal(0, 2), HalfNormal(1.0), Normal(0, 10))
    assert second.tables is first.tables
    other = binomial_tables.study_tables(*counts, "log", Normal(-1, 2))
    assert other is not first.tables            # another baseline prior: other tables
    binomial_tables._TABLES.clear()
    fresh = binomial_posterior(*counts, "log", Normal(0, 2), HalfNormal(1.0), Normal(0, 10))
    assert fresh.tables is not second.tables
    for q in (0.025, 0.5, 0.975):
        assert fresh.quantile("mu", q) == second.quantile("mu", q)
        assert fresh.quantile("tau", q) == second.quantile("tau", q)
    assert fresh.log_marginal_likelihood == second.log_marginal_likelihood
    binomial_tables._TABLES.clear()
    for i in range(binomial_tables.TABLES_KEPT + 3):    # bounded: the oldest are dropped
        binomial_tables.study_tables([i], [30], [1], [30], "logit", Normal(0, 10))
    assert len(binomial_tables._TABLES) == binomial_tables.TABLES_KEPT
