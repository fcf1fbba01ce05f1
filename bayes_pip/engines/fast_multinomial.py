"""The hierarchical multinomial model of :func:`bayes_pip.engines.multinomial_nuts.multinomial_model`
as numba functions compiled once per installation (numba's on-disk cache) and sampled by nutpie
through its public ``nutpie.compiled_pyfunc.from_pyfunc`` interface.

Why: nutpie compiles a PyMC model with numba in every new process, and numba cannot cache those
callbacks: 22 s of a cold `fit attachment_category_post` (and of `report --all`) went to compiling
a model that then sampled in about 2 s. The log density and its gradient are written out below
in the PyMC model's own unconstrained parameters (u, b, d, z, in that order); tests check both
against the PyMC model's compiled logp and gradient for every tau-prior family, several shapes,
reference categories and an unreported category (tests/test_categorical.py). The PyMC model
stays the specification; this is how it is run.

Data block (one float64 array): [k, treatments, categories, reference, mu_mean, mu_sd,
tau_family, tau_a, tau_b, tau_c, baseline_mean, baseline_sd], then counts (k x T x C), reported
(k x C), the Cholesky factor of the arms' correlation ((T-1) x (T-1)) and of the categories'
((C-1) x (C-1)), each row-major.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from bayes_pip.engines.tau_kernels import UNIFORM, sampler_tau

HEADER = 12
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
MASKED = -1e4   # as multinomial_nuts.MASKED: the logit of a category a study did not report


@numba.njit(cache=True)
def logp_grad(x, block):
    d = block
    k, n_t, n_c, ref = int(d[0]), int(d[1]), int(d[2]), int(d[3])
    m0, s0, family, a, b_, c_ = d[4], d[5], int(d[6]), d[7], d[8], d[9]
    bm, bs = d[10], d[11]
    j = n_c - 1
    n_a = n_t - 1
    o_counts = HEADER
    o_rep = o_counts + k * n_t * n_c
    o_ca = o_rep + k * n_c
    o_cr = o_ca + n_a * n_a
    o_b = 1
    o_d = o_b + k * j
    o_z = o_d + n_a * j
    grad = np.zeros(x.shape[0])
    tau, dtau, lp, dprior = sampler_tau(x[0], family, a, b_, c_)
    # priors of b, d and z
    for p in range(k * j):
        r = (x[o_b + p] - bm) / bs
        lp += -0.5 * r * r - math.log(bs) - LOG_SQRT_2PI
        grad[o_b + p] = -r / bs
    for p in range(n_a * j):
        r = (x[o_d + p] - m0) / s0
        lp += -0.5 * r * r - math.log(s0) - LOG_SQRT_2PI
        grad[o_d + p] = -r / s0
    for p in range(k * n_a * j):
        lp += -0.5 * x[o_z + p] ** 2 - LOG_SQRT_2PI
        grad[o_z + p] = -x[o_z + p]
    mixed = np.zeros((n_a, j))
    gdel = np.zeros((n_a, j))
    logits = np.empty(n_c)
    g_tau = 0.0
    for i in range(k):
        # mixed[t, c] = sum_s sum_c' z[i, s, c'] A[t, s] R[c, c']
        for t in range(n_a):
            for cc in range(j):
                acc = 0.0
                for s in range(t + 1):              # A lower triangular
                    ats = d[o_ca + t * n_a + s]
                    for c2 in range(cc + 1):        # R lower triangular
                        acc += x[o_z + (i * n_a + s) * j + c2] * ats * d[o_cr + cc * j + c2]
                mixed[t, cc] = acc
        for t in range(n_t):
            # the arm's logits, the reference category at 0
            for fc in range(n_c):
                logits[fc] = (1.0 - d[o_rep + i * n_c + fc]) * MASKED
            for cc in range(j):
                fc = cc if cc < ref else cc + 1
                eta = x[o_b + i * j + cc]
                if t > 0:
                    eta += x[o_d + (t - 1) * j + cc] + tau * mixed[t - 1, cc]
                logits[fc] += eta
            top = logits[0]
            for fc in range(1, n_c):
                top = max(top, logits[fc])
            total = 0.0
            for fc in range(n_c):
                total += math.exp(logits[fc] - top)
            lse = top + math.log(total)
            n_arm = 0.0
            for fc in range(n_c):
                cnt = d[o_counts + (i * n_t + t) * n_c + fc]
                n_arm += cnt
                lp += cnt * (logits[fc] - lse)
            for cc in range(j):
                fc = cc if cc < ref else cc + 1
                g = d[o_counts + (i * n_t + t) * n_c + fc] - n_arm * math.exp(logits[fc] - lse)
                grad[o_b + i * j + cc] += g
                if t > 0:
                    gdel[t - 1, cc] = g
        if n_a > 0:
            for t in range(n_a):
                for cc in range(j):
                    grad[o_d + t * j + cc] += gdel[t, cc]
                    g_tau += gdel[t, cc] * mixed[t, cc]
            # dz[i, s, c'] = tau * sum_t sum_c gdel[t, c] A[t, s] R[c, c']
            for s in range(n_a):
                for c2 in range(j):
                    acc = 0.0
                    for t in range(s, n_a):
                        ats = d[o_ca + t * n_a + s]
                        for cc in range(c2, j):
                            acc += gdel[t, cc] * ats * d[o_cr + cc * j + c2]
                    grad[o_z + (i * n_a + s) * j + c2] += tau * acc
    grad[0] = g_tau * dtau + dprior
    return lp, grad


def data_block(counts, reported, reference: int, prior_data: dict, chol_a, chol_r) -> np.ndarray:
    k, n_t, n_c = counts.shape
    head = [k, n_t, n_c, reference, prior_data["mu_mean"], prior_data["mu_sd"],
            prior_data["tau_family"], prior_data["tau_a"], prior_data["tau_b"],
            prior_data["tau_c"], prior_data["baseline_mean"], prior_data["baseline_sd"]]
    parts = [np.asarray(head, float), np.asarray(counts, float).ravel(),
             np.asarray(reported, float).ravel(), np.asarray(chol_a, float).ravel(),
             np.asarray(chol_r, float).ravel()]
    return np.ascontiguousarray(np.concatenate(parts))


def compiled_model(data: dict, reference: int, chol_a, chol_r, draws_per_chain: int | None = None):
    """A nutpie model (public ``from_pyfunc`` interface) over the cached numba functions, holding
    this fit's data block; the draws are named b (k, C-1), d (T-1, C-1) and tau.
    ``draws_per_chain`` (tune + draws): each chain keeps its thread's Python state from its first
    draw to its last (:mod:`bayes_pip.engines.thread_state`)."""
    from nutpie.compiled_pyfunc import from_pyfunc

    from bayes_pip.engines.thread_state import kept_per_chain

    counts = np.asarray(data["counts"], float)
    k, n_t, n_c = counts.shape
    j, n_a = n_c - 1, n_t - 1
    block = data_block(counts, data["reported"], reference, data, chol_a, chol_r)
    family, a = int(data["tau_family"]), float(data["tau_a"])
    tau_args = (family, a, float(data["tau_b"]), float(data["tau_c"]))
    o_d = 1 + k * j
    o_z = o_d + n_a * j
    size = o_z + k * n_a * j
    base_mean, mu_mean = float(data["baseline_mean"]), float(data["mu_mean"])

    def make_logp():
        return logp_grad

    def make_expand(seed1, seed2, chain):
        def expand_point(x, block):
            return {"b": x[1:o_d].reshape(k, j).copy(), "d": x[o_d:o_z].reshape(n_a, j).copy(),
                    "tau": np.array(sampler_tau(x[0], *tau_args)[0])}
        return expand_point

    def initial_point(seed):
        rng = np.random.default_rng(seed)
        x = rng.uniform(-2, 2, size)
        x[1:o_d] += base_mean
        x[o_d:o_z] += mu_mean
        if family != UNIFORM:
            x[0] = math.log(0.3) + rng.uniform(-1, 1)
        return x

    return from_pyfunc(size, make_logp, kept_per_chain(make_expand, draws_per_chain),
                       [np.dtype("float64")] * 3,
                       [(k, j), (n_a, j), ()], ["b", "d", "tau"], shared_data={"block": block},
                       make_initial_point_fn=initial_point)
