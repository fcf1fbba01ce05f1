"""The Python API: the README example runs, records equal the CLI's JSON, and every engine's
InferenceData holds exact, checked draws and log-likelihoods."""

import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

import bayes_pip as bp

sys.path.insert(0, str(Path(__file__).parent / "golden"))
from compare import assert_matches  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_api_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = readme_example().replace('fig.savefig("acute_rejection_forest.png"',
                                    f'fig.savefig({str(tmp_path / "forest.png")!r}')
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert (tmp_path / "forest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert namespace["fit"].k == 1
    assert len(namespace["table"]) == len(namespace["fits"]) >= 3
    report = namespace["report"]
    frame = report.to_frame()
    assert list(frame["outcome"]) == ["secure_attachment_post", "avoidant_attachment_post"]
    assert frame["p_benefit"].iloc[0] == report.outcomes["secure_attachment_post"].fits[0].p_benefit
    assert "avoidant_attachment_post" in frame["shares_studies_with"].iloc[0]
    assert set(report.files()) >= {"secure_attachment_post.md", "avoidant_attachment_post.html"}


def test_api_fit_equals_cli_json():
    fit = bp.fit(None, "parent_reported_depression_vs_alternative", engine="exact")
    pinned = json.loads((GOLDEN / "fit__pip__parent_reported_depression_vs_alternative__exact__"
                                  "auto__pip.json").read_text())
    assert_matches(fit.to_dict(), pinned)


def test_dataframes_are_validated_like_files():
    import pandas as pd

    from bayes_pip.errors import InputError

    outcomes = pd.DataFrame([{"outcome": "o1", "label": "x", "comparison": "a_vs_b",
                              "measure": "RR", "benefit": "lower"}])
    studies = pd.DataFrame([{"outcome": "o1", "study": "A", "events_t": 60, "n_t": 50,
                             "events_c": 9, "n_c": 48, "source": "t"}])
    with pytest.raises(InputError, match=r"studies.csv, row 2, column 'events_t'"):
        bp.load(outcomes=outcomes, studies=studies)


def test_exact_draws_follow_the_exact_posterior():
    """Independent draws from the exact engine: KS test of tau and mu against the quadrature
    CDFs (fixed seed, so deterministic), and draw quantiles within 4 Monte Carlo SEs."""
    fit = bp.fit("data/crins2014", "acute_rejection", engine="exact")
    post = fit.posterior
    draws = fit.idata.posterior
    for target in ("tau", "mu"):
        x = draws[target].values.ravel()
        ks = stats.kstest(x, np.vectorize(lambda t: post.cdf(target, t)))
        assert ks.pvalue > 0.01, (target, ks)
        for q in (0.025, 0.5, 0.975):
            mcse = math.sqrt(q * (1 - q) / len(x)) / post.density(target, [post.quantile(
                target, q)])[0]
            assert abs(np.quantile(x, q) - post.quantile(target, q)) < 4 * mcse, (target, q)


def test_log_likelihood_is_the_marginal_normal_per_study():
    fit = bp.fit("data/crins2014", "acute_rejection", engine="exact")
    idata = fit.idata
    mu = idata.posterior["mu"].values[0, :5]
    tau = idata.posterior["tau"].values[0, :5]
    y = idata.observed_data["y"].values
    v = idata.constant_data["v"].values
    expected = stats.norm.logpdf(y[None, :], mu[:, None], np.sqrt(v[None, :] + tau[:, None] ** 2))
    np.testing.assert_allclose(idata.log_likelihood["y"].values[0, :5], expected, rtol=1e-12)
    assert list(idata.log_likelihood["y"].coords["study"].values) == [
        s.study for s in fit.studies]
    assert {"posterior", "prior", "observed_data", "log_likelihood"} <= set(idata.groups())


def test_loo_agrees_between_exact_and_pymc():
    """The same model by quadrature draws and by NUTS gives the same PSIS-LOO (within 3 SE of
    the Monte Carlo difference, here 0.05 on elpd)."""
    import arviz as az

    exact = az.loo(bp.fit("data/crins2014", "acute_rejection", engine="exact").idata)
    mcmc = az.loo(bp.fit("data/crins2014", "acute_rejection", engine="pymc").idata)
    assert abs(exact.elpd_loo - mcmc.elpd_loo) < 0.05


@pytest.mark.slow  # long MCMC (binomial-normal); CI runs it with -m slow
def test_binomial_log_likelihood_per_arm():
    """Per-arm binomial log-likelihood, checked against the closed form
    log C(n, e) + e log p + (n - e) log(1 - p) with p from the logit link."""
    fit = bp.fit("data/crins2014", "acute_rejection", engine="binomial")
    idata = fit.idata
    loglik = idata.log_likelihood["events"]
    assert loglik.dims[-2:] == ("study", "arm")
    events = idata.observed_data["events"].values
    n = idata.observed_data["n"].values
    total = loglik.values.sum(axis=(-1, -2))
    assert np.all(np.isfinite(total)) and np.all(total < 0)
    # by hand from the stored draws: p_ctrl = expit(baseline), p_pip = expit(baseline + theta)
    base = idata.posterior["baseline"].values[0, :3]
    theta = idata.posterior["theta"].values[0, :3]
    for p_arm, arm in ((special.expit(base + theta), 0), (special.expit(base), 1)):
        e, size = events[:, arm], n[:, arm]
        expected = (special.gammaln(size + 1) - special.gammaln(e + 1)
                    - special.gammaln(size - e + 1) + e * np.log(p_arm)
                    + (size - e) * np.log1p(-p_arm))
        np.testing.assert_allclose(loglik.values[0, :3, :, arm], expected, rtol=1e-10)


def test_summary_level_idata_has_the_published_estimate():
    fit = bp.fit(None, "secure_attachment_post", level="summary")
    assert fit.engine == "conjugate"
    idata = fit.idata
    y = float(idata.observed_data["y"].values[0])
    assert y == pytest.approx(fit.likelihood.estimate)
    mu = idata.posterior["mu"].values.ravel()
    assert abs(mu.mean() - fit.posterior.mean("mu")) < 4 * fit.posterior.sd("mu") / math.sqrt(
        mu.size)


def test_compare_priors_is_a_list_with_a_tidy_frame():
    fits = bp.compare_priors("data/crins2014", "acute_rejection", engine="exact",
                             priors=["halfnormal-0.5", "sceptical"])
    assert isinstance(fits, list) and [f.prior.name for f in fits] == ["halfnormal-0.5",
                                                                      "sceptical"]
    frame = fits.to_frame()
    assert list(frame["prior"]) == ["halfnormal-0.5", "sceptical"]
    for f, (_, row) in zip(fits, frame.iterrows()):
        assert (row["median"], row["ci_low"], row["ci_high"]) == (
            f.effect.median, f.effect.ci_low, f.effect.ci_high)
        assert row["p_benefit"] == f.p_benefit and row["tau_median"] == f.tau.median
        assert row["conflict"] == f.prior_data_conflict.flagged
    assert list(frame["conflict"]) == [False, True]   # Box's check flags the sceptical prior


@pytest.mark.parametrize("engine, level, scale", [
    ("pymc", "study", "SMD"), ("exact", "auto", "log RR"), ("binomial-exact", "auto", "log RR"),
    ("exact", "summary", "log RR")])
def test_idata_posterior_holds_model_quantities_on_named_scales(engine, level, scale):
    """The posterior group holds mu, tau, theta, theta_new (and a binomial model's baseline),
    each labelled with its scale; a sampler's own parametrisation (u = log tau, the whitened
    mu) is in unconstrained_posterior."""
    outcome = ("parent_reported_depression" if engine == "pymc" else
               "parental_depression_incidence" if level == "summary" else
               "secure_attachment_post")
    fit = bp.fit(bp.load(), outcome, engine=engine, level=level)
    post = fit.idata.posterior
    assert set(post.data_vars) <= {"mu", "tau", "theta", "theta_new", "baseline"}
    assert scale in post["mu"].attrs["scale"]
    if engine == "pymc":
        assert set(fit.idata.unconstrained_posterior.data_vars) == {"u", "z_mu"}
