"""Property-based tests (hypothesis): invariants that hold for any valid input."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bayes_pip import dl, effects
from bayes_pip.engines.exact import exact_posterior
from bayes_pip.prior_families import HalfNormal, LogNormalTau2, Normal

finite = st.floats(-5, 5, allow_nan=False)
variance = st.floats(0.005, 4, allow_nan=False)
studies = st.lists(st.tuples(finite, variance), min_size=1, max_size=12)


@given(studies, st.randoms())
def test_dl_invariant_to_study_order(rows, rnd):
    y, v = map(np.array, zip(*rows))
    perm = list(range(len(y)))
    rnd.shuffle(perm)
    a, b = dl.dersimonian_laird(y, v), dl.dersimonian_laird(y[perm], v[perm])
    for key in ("mu", "se", "tau2", "q", "i2"):
        assert np.isclose(getattr(a, key), getattr(b, key), rtol=1e-9, atol=1e-12)


@given(studies)
def test_tau2_nonnegative_and_i2_in_range(rows):
    y, v = map(np.array, zip(*rows))
    r = dl.dersimonian_laird(y, v)
    assert r.tau2 >= 0
    assert 0 <= r.i2 <= 100


@given(st.lists(studies, min_size=1, max_size=20))
def test_vectorised_equals_looped(metas):
    k_max = max(len(m) for m in metas)
    y = np.full((len(metas), k_max), np.nan)
    v = np.full((len(metas), k_max), np.nan)
    mask = np.zeros((len(metas), k_max), bool)
    for i, m in enumerate(metas):
        y[i, : len(m)], v[i, : len(m)] = zip(*m)
        mask[i, : len(m)] = True
    r = dl.dersimonian_laird(y, v, mask)
    for i, m in enumerate(metas):
        one = dl.dersimonian_laird(*map(np.array, zip(*m)))
        assert np.isclose(r.mu[i], one.mu, rtol=1e-12, atol=1e-12)
        assert np.isclose(r.tau2[i], one.tau2, rtol=1e-12, atol=1e-12)


counts = st.integers(1, 500).flatmap(
    lambda n1: st.integers(1, 500).flatmap(
        lambda n2: st.tuples(st.integers(0, n1), st.just(n1), st.integers(0, n2), st.just(n2))))


@given(counts)
def test_swapping_arms_negates_log_effects(c):
    a, n1, cc, n2 = c
    for f in (effects.log_risk_ratio, effects.log_odds_ratio):
        y1, v1 = f(a, n1, cc, n2)
        y2, v2 = f(cc, n2, a, n1)
        assert np.isclose(y1, -y2, atol=1e-12) and np.isclose(v1, v2, rtol=1e-12)


@given(st.tuples(finite, st.floats(0.1, 5), st.integers(2, 300), finite, st.floats(0.1, 5),
                 st.integers(2, 300)))
def test_swapping_arms_negates_smd_and_md(x):
    m1, s1, n1, m2, s2, n2 = x
    for f in (effects.hedges_g, effects.mean_difference):
        y1, v1 = f(m1, s1, n1, m2, s2, n2)
        y2, v2 = f(m2, s2, n2, m1, s1, n1)
        assert np.isclose(y1, -y2, atol=1e-12) and np.isclose(v1, v2, rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(finite, variance), min_size=1, max_size=6),
       st.sampled_from([HalfNormal(0.5), HalfNormal(1.0), LogNormalTau2(-2.34, 1.72)]))
@example(rows=[(0.0, 1.0), (0.0, 1.0), (0.0, 2.0), (0.0, 0.25)], tau_prior=HalfNormal(0.5))  # once gave 1 + 2e-16
def test_exact_cdfs_monotone_within_unit_interval(rows, tau_prior):
    y, v = map(np.array, zip(*rows))
    post = exact_posterior(y, v, Normal(0, 4), tau_prior)
    for target, grid in (("mu", np.linspace(-8, 8, 41)), ("predict", np.linspace(-8, 8, 41)),
                         ("tau", np.linspace(0, 5, 41))):
        values = np.array([post.cdf(target, x) for x in grid])
        assert np.all((values >= 0) & (values <= 1))
        assert np.all(np.diff(values) >= -1e-12)
