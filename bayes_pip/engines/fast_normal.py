"""The normal-normal model of :func:`bayes_pip.engines.pymc_models.normal_normal_model` as numba
functions compiled once per installation (numba's on-disk cache) and sampled by nutpie through
its public ``nutpie.compiled_pyfunc.from_pyfunc`` interface.

Why: nutpie compiles a PyMC model with numba in every new process (about 10 s here, and numba
cannot cache those callbacks), which made every `fit` pay 10 s before sampling for 0.1 s. The
marginal normal-normal model has two parameters, so its log density and gradient are written out
below; tests check them against the PyMC model's own compiled logp and gradient for every prior
family (tests/test_pymc.py). The PyMC model stays the specification; this is how it is run.

Parameters (unconstrained): u, with tau = exp(u) (tau = upper * logistic(u) for the uniform
prior), and z ~ N(0, 1) with mu = m(tau) + z / sqrt(W(tau)); see normal_normal_model's notes.
The data block passed to the log density is one float64 array:
[k, mu_mean, mu_sd, tau_family, tau_a, tau_b, tau_c, y_1..y_k, v_1..v_k].
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayes_pip.engines.tau_kernels import sampler_tau

HEADER = 7
VAR_NAMES = ["u", "z_mu", "tau", "mu"]


# Module-level functions (not closures): numba caches a function that calls another jitted
# function by its global name; as closures, the callers missed the on-disk cache in every
# new process and were recompiled (about 2 s per cold fit).
@numba.njit(cache=True)
def log_density(u, z, d):
    k = int(d[0])
    m0, s0, family, a, b, c = d[1], d[2], int(d[3]), d[4], d[5], d[6]
    # log density of u under the tau prior (Jacobian included), as tau_prior_block
    tau, dtau, prior, dprior = sampler_tau(u, family, a, b, c)
    s = tau * tau
    w0 = 1.0 / (s0 * s0)
    sum_w = 0.0
    sum_wy = 0.0
    sum_w2 = 0.0
    sum_log = 0.0
    for i in range(k):
        w = 1.0 / (d[HEADER + k + i] + s)
        sum_w += w
        sum_wy += w * d[HEADER + i]
        sum_w2 += w * w
        sum_log += math.log(d[HEADER + k + i] + s)
    big_w = w0 + sum_w
    m = (w0 * m0 + sum_wy) / big_w
    resid = w0 * (m0 - m) ** 2
    sum_w2r2 = 0.0
    for i in range(k):
        w = 1.0 / (d[HEADER + k + i] + s)
        r = d[HEADER + i] - m
        resid += w * r * r
        sum_w2r2 += w * w * r * r
    f = -0.5 * sum_log - 0.5 * math.log(big_w) - 0.5 * resid
    # d f / d(tau^2): envelope theorem for m (Notes of normal_normal_model)
    dfds = -0.5 * sum_w + 0.5 * sum_w2 / big_w + 0.5 * sum_w2r2
    du = dfds * 2.0 * tau * dtau
    lp = f + prior - 0.5 * z * z - 0.5 * math.log(2 * math.pi)
    return lp, du + dprior, -z, m + z / math.sqrt(big_w), tau

@numba.njit(cache=True)
def logp_grad(x, block):
    lp, du, dz, mu, tau = log_density(x[0], x[1], block)
    grad = np.empty(2)
    grad[0] = du
    grad[1] = dz
    return lp, grad

@numba.njit(cache=True)
def expand(x, block):
    lp, du, dz, mu, tau = log_density(x[0], x[1], block)
    return tau, mu



def callbacks():
    """Log density with gradient, expansion to (tau, mu), and the raw density; cached on disk."""
    return logp_grad, expand, log_density


def data_block(y, v, prior_data: dict) -> np.ndarray:
    y = np.asarray(y, float)
    v = np.asarray(v, float)
    head = [len(y), prior_data["mu_mean"], prior_data["mu_sd"], prior_data["tau_family"],
            prior_data["tau_a"], prior_data["tau_b"], prior_data["tau_c"]]
    return np.ascontiguousarray(np.concatenate([np.asarray(head, float), y, v]))


def compiled_model(y, v, prior_data: dict, draws_per_chain: int | None = None):
    """A nutpie model (public ``from_pyfunc`` interface) over the cached numba functions, holding
    this fit's data block. ``draws_per_chain`` (tune + draws): each chain keeps its thread's
    Python state from its first draw to its last (:mod:`bayes_pip.engines.thread_state`)."""
    from nutpie.compiled_pyfunc import from_pyfunc

    from bayes_pip.engines.thread_state import kept_per_chain

    logp_grad, expand, _ = callbacks()
    block = data_block(y, v, prior_data)
    scale = math.log(math.sqrt(float(np.median(v))))

    def make_logp():
        return logp_grad

    def make_expand(seed1, seed2, chain):
        def expand_point(x, block):
            tau, mu = expand(x, block)
            return {"u": np.array(x[0]), "z_mu": np.array(x[1]), "tau": np.array(tau),
                    "mu": np.array(mu)}
        return expand_point

    def initial_point(seed):
        rng = np.random.default_rng(seed)
        return np.array([scale + rng.uniform(-2, 2), rng.uniform(-2, 2)])

    return from_pyfunc(2, make_logp, kept_per_chain(make_expand, draws_per_chain),
                       [np.dtype("float64")] * len(VAR_NAMES),
                       [()] * len(VAR_NAMES), list(VAR_NAMES), shared_data={"block": block},
                       make_initial_point_fn=initial_point)


def log_density_at(u, z, y, v, prior_data: dict):
    """(logp, d/du, d/dz, mu, tau) at one point, for tests."""
    return callbacks()[2](float(u), float(z), data_block(y, v, prior_data))
