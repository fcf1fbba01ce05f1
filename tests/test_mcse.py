"""Monte Carlo error where a digit could change: MCMC fits carry the Monte Carlo SE of the
printed pooled effect, equal to ArviZ's quantile MCSE carried to the natural scale, and the
exact engine's numbers for the same model lie within a few of those SEs."""

import math

import arviz as az
import numpy as np
import pytest

import bayes_pip as bp


@pytest.fixture(scope="module")
def fits():
    crins = bp.load("data/crins2014")
    return (bp.fit(crins, "acute_rejection", engine="pymc", seed=3),
            bp.fit(crins, "acute_rejection", engine="exact"))


def test_mcse_of_the_pooled_effect_equals_arviz_on_the_natural_scale(fits):
    pymc, _ = fits
    mu = pymc.idata.posterior["mu"]
    se = pymc.diagnostics.mcse_effect
    for got, q in zip(se, (0.5, 0.025, 0.975)):
        ref = float(az.mcse(mu, method="quantile", prob=q)["mu"])
        # OR = exp(mu): d OR / d mu = exp(mu) at the quantile
        assert got == pytest.approx(ref * math.exp(float(mu.quantile(q))), rel=1e-5)
    assert 0 < se[0] < se[2]        # the upper tail of a ratio is the least certain digit
    assert "Monte Carlo SE" in bp.summarise.fit_text(pymc)
    assert pymc.to_dict()["diagnostics"]["mcse_effect"] == list(se)


def test_exact_engine_lies_within_monte_carlo_error_of_nuts(fits):
    pymc, exact = fits
    assert exact.diagnostics is None          # quadrature: no Monte Carlo error to report
    se = pymc.diagnostics.mcse_effect
    for a, b, s in zip((pymc.effect.median, pymc.effect.ci_low, pymc.effect.ci_high),
                       (exact.effect.median, exact.effect.ci_low, exact.effect.ci_high), se):
        assert abs(a - b) < 4 * s + 1e-12, (a, b, s)
    assert np.isfinite(se).all()
