"""The tau-prior families' log densities for compiled code, defined once (numba).

The compiled engines use these: the batched exact engine (:mod:`bayes_pip.engines.exact_batch`)
on its grid in u = log tau, and the NUTS log densities of the normal-normal and multinomial
models (:mod:`bayes_pip.engines.fast_normal`, :mod:`bayes_pip.engines.fast_multinomial`), which
also need the derivative and the uniform prior's logistic transform (:func:`sampler_tau`). The NumPy/SciPy
densities of :mod:`bayes_pip.priors` are the specification; tests/test_priors.py checks these
kernels against them for every family over a grid of u.

A family is passed as (code, a, b, c) (:func:`tau_prior_code`): the TauFamily code and, for
half-normal and half-Cauchy, the scale a; for the log-normal and log-t priors on tau^2 the
location a, scale b and (log-t) degrees of freedom c, all on the log tau^2 scale as
``sampler_params`` gives them; for the uniform prior its upper bound a (inf: improper).
"""

from __future__ import annotations

import math

import numba

from bayes_pip.prior_families import TauFamily

# family codes as plain integers for numba (the single definition is bayes_pip.prior_families.TauFamily)
HALFNORMAL, HALFCAUCHY = int(TauFamily.HALFNORMAL), int(TauFamily.HALFCAUCHY)
LOGNORMAL_TAU2, LOGT_TAU2 = int(TauFamily.LOGNORMAL_TAU2), int(TauFamily.LOGT_TAU2)
UNIFORM = int(TauFamily.UNIFORM)
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def tau_prior_code(tau_prior) -> tuple[int, float, float, float]:
    """(family code, a, b, c): a prior on tau as the compiled kernels read it."""
    code = int(tau_prior.code)
    params = (tau_prior.upper,) if code == UNIFORM else tau_prior.sampler_params()
    params = tuple(float(p) for p in params) + (0.0,) * (3 - len(params))
    return (code, *params)


@numba.njit(cache=True)
def log_prior_u_grad(u, family, a, b, c):
    """log density of u = log tau under the prior on tau (Jacobian included) and its
    derivative in u. Uniform on (0, a): -inf above a; a = inf is the improper uniform."""
    if family == HALFNORMAL:
        t = math.exp(u)
        s = t * t
        return (math.log(2.0) - LOG_SQRT_2PI - math.log(a) - s / (2 * a * a) + u,
                -s / (a * a) + 1.0)
    if family == HALFCAUCHY:
        t = math.exp(u)
        s = t * t
        return (math.log(2 / math.pi) - math.log(a) - math.log1p(s / (a * a)) + u,
                -(2.0 * s / (a * a)) / (1.0 + s / (a * a)) + 1.0)
    if family == LOGNORMAL_TAU2:
        return (-0.5 * ((u - a) / b) ** 2 - math.log(b) - LOG_SQRT_2PI,
                -(u - a) / (b * b))
    if family == LOGT_TAU2:
        t = (u - a) / b
        return (math.lgamma((c + 1) / 2) - math.lgamma(c / 2) - 0.5 * math.log(c * math.pi)
                - math.log(b) - (c + 1) / 2 * math.log1p(t * t / c),
                -(c + 1) * (u - a) / (b * b * c + (u - a) ** 2))
    if math.isinf(a):
        return u, 1.0
    if math.exp(u) > a:
        return -math.inf, 0.0
    return u - math.log(a), 1.0


@numba.njit(cache=True)
def sampler_tau(u, family, a, b, c):
    """The NUTS engines' unconstrained tau: tau = a * logistic(u) under the uniform prior on
    (0, a), else tau = exp(u). Returns (tau, d tau / d u, log density of u under the prior on
    tau with the Jacobian, its derivative in u), as pymc_models.tau_prior_block defines them."""
    if family == UNIFORM:
        sig = 1.0 / (1.0 + math.exp(-u))
        # log(sigmoid(u)) + log(1 - sigmoid(u)), written stably
        lp = -(max(-u, 0.0) + math.log1p(math.exp(-abs(u)))) \
            - (max(u, 0.0) + math.log1p(math.exp(-abs(u))))
        return a * sig, a * sig * (1.0 - sig), lp, 1.0 - 2.0 / (1.0 + math.exp(-u))
    tau = math.exp(u)
    lp, dlp = log_prior_u_grad(u, family, a, b, c)
    return tau, tau, lp, dlp


@numba.njit(cache=True)
def log_prior_u(u, family, a, b, c):
    """log density of u = log tau under the prior on tau (Jacobian included)."""
    return log_prior_u_grad(u, family, a, b, c)[0]
