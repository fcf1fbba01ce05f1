"""The normal-normal model of :func:`bayes_pip.pymc_models.normal_normal_model` as a numba C
callback that is compiled once per installation (numba's on-disk cache) and sampled by nutpie.

Why: nutpie compiles a PyMC model with numba in every new process (about 10 s here, and numba
cannot cache those callbacks), which made every `fit` pay 10 s before sampling for 0.1 s. The
marginal normal-normal model has two parameters, so its log density and gradient are written out
below; tests check them against the PyMC model's own compiled logp and gradient for every prior
family (tests/test_pymc.py). The PyMC model stays the specification; this is how it is run.

Parameters (unconstrained): u, with tau = exp(u) (tau = upper * logistic(u) for the uniform
prior), and z ~ N(0, 1) with mu = m(tau) + z / sqrt(W(tau)); see normal_normal_model's notes.
The data block passed to the callback is one float64 array:
[k, mu_mean, mu_sd, tau_family, tau_a, tau_b, tau_c, y_1..y_k, v_1..v_k].
"""

from __future__ import annotations

import functools
import math

import numpy as np

HEADER = 7
VAR_NAMES = ["u", "z_mu", "tau", "mu"]


@functools.lru_cache(maxsize=None)
def callbacks():
    """The two C callbacks (log density with gradient; expansion to tau and mu), cached on disk."""
    import numba
    from numba import types

    @numba.njit(cache=True)
    def log_density(u, z, d):
        k = int(d[0])
        m0, s0, family, a, b, c = d[1], d[2], int(d[3]), d[4], d[5], d[6]
        if family == 4:
            sig = 1.0 / (1.0 + math.exp(-u))
            tau = a * sig
            dtau = a * sig * (1.0 - sig)
        else:
            tau = math.exp(u)
            dtau = tau
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
        # log density of u under the tau prior (Jacobian included), as tau_prior_block
        if family == 0:
            prior = math.log(2.0) - 0.5 * math.log(2 * math.pi) - math.log(a) - s / (2 * a * a) + u
            dprior = -s / (a * a) + 1.0
        elif family == 1:
            prior = math.log(2 / math.pi) - math.log(a) - math.log1p(s / (a * a)) + u
            dprior = -(2.0 * s / (a * a)) / (1.0 + s / (a * a)) + 1.0
        elif family == 2:
            prior = -0.5 * ((u - a) / b) ** 2 - math.log(b) - 0.5 * math.log(2 * math.pi)
            dprior = -(u - a) / (b * b)
        elif family == 3:
            t = (u - a) / b
            prior = (math.lgamma((c + 1) / 2) - math.lgamma(c / 2) - 0.5 * math.log(c * math.pi)
                     - math.log(b) - (c + 1) / 2 * math.log1p(t * t / c))
            dprior = -(c + 1) * (u - a) / (b * b * c + (u - a) ** 2)
        else:
            # log(sigmoid(u)) + log(1 - sigmoid(u)), written stably
            prior = -(max(-u, 0.0) + math.log1p(math.exp(-abs(u)))) \
                - (max(u, 0.0) + math.log1p(math.exp(-abs(u))))
            dprior = 1.0 - 2.0 / (1.0 + math.exp(-u))
        lp = f + prior - 0.5 * z * z - 0.5 * math.log(2 * math.pi)
        return lp, du + dprior, -z, m + z / math.sqrt(big_w), tau

    def data_view(ptr):
        head = numba.carray(ptr, (HEADER,), dtype=np.float64)
        return numba.carray(ptr, (HEADER + 2 * int(head[0]),), dtype=np.float64)

    data_view = numba.njit(cache=True)(data_view)

    logp_sig = types.int64(types.uint64, types.CPointer(types.double),
                           types.CPointer(types.double), types.CPointer(types.double),
                           types.voidptr)

    @numba.cfunc(logp_sig, cache=True)
    def logp_c(dim, x_, out_, logp_, data_):
        if dim != 2:
            return -1
        x = numba.carray(x_, (2,))
        out = numba.carray(out_, (2,))
        lp = numba.carray(logp_, (1,))
        lp_val, du, dz, mu, tau = log_density(x[0], x[1], data_view(data_))
        lp[0] = lp_val
        out[0] = du
        out[1] = dz
        if not (math.isfinite(du) and math.isfinite(dz)):
            return 3
        if not math.isfinite(lp_val):
            return 4
        return 0

    expand_sig = types.int64(types.uint64, types.uint64, types.CPointer(types.double),
                             types.CPointer(types.double), types.voidptr)

    @numba.cfunc(expand_sig, cache=True)
    def expand_c(dim, expanded, x_, out_, data_):
        if dim != 2 or expanded != 4:
            return -1
        x = numba.carray(x_, (2,))
        out = numba.carray(out_, (4,))
        lp_val, du, dz, mu, tau = log_density(x[0], x[1], data_view(data_))
        out[0] = x[0]
        out[1] = x[1]
        out[2] = tau
        out[3] = mu
        return 0

    return logp_c, expand_c, log_density


def data_block(y, v, prior_data: dict) -> np.ndarray:
    y = np.asarray(y, float)
    v = np.asarray(v, float)
    head = [len(y), prior_data["mu_mean"], prior_data["mu_sd"], prior_data["tau_family"],
            prior_data["tau_a"], prior_data["tau_b"], prior_data["tau_c"]]
    return np.ascontiguousarray(np.concatenate([np.asarray(head, float), y, v]))


def compiled_model(y, v, prior_data: dict):
    """A nutpie model object over the cached callbacks, holding this fit's data block.

    Uses nutpie's CompiledPyMCModel record (nutpie 0.16; pinned in pyproject.toml): it only needs
    the two callbacks, an initial-point function and the data pointer.
    """
    from nutpie.compile_pymc import CompiledPyMCModel

    logp_c, expand_c, _ = callbacks()
    block = data_block(y, v, prior_data)
    scale = math.log(math.sqrt(float(np.median(v))))

    def initial_point(seed):
        rng = np.random.default_rng(seed)
        return np.array([scale + rng.uniform(-2, 2), rng.uniform(-2, 2)])

    names = list(VAR_NAMES)
    return CompiledPyMCModel(
        _n_dim=2, dims={}, _coords={}, _shapes={n: () for n in names},
        compiled_logp_func=logp_c, compiled_expand_func=expand_c,
        initial_point_func=initial_point, shared_data={"block": block}, user_data=block,
        n_expanded=4, shape_info=(names, [slice(i, i + 1) for i in range(4)], [()] * 4),
        logp_func=None, expand_func=None)


def log_density_at(u, z, y, v, prior_data: dict):
    """(logp, d/du, d/dz, mu, tau) at one point, for tests."""
    return callbacks()[2](float(u), float(z), data_block(y, v, prior_data))
