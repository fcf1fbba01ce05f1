"""PyMC model specifications shared by the NUTS engines, and nutpie sampling helpers.

Two models; data and prior parameters are ``pm.Data`` so one compiled model serves every outcome
and every prior (nutpie's ``with_data`` swaps them without recompiling):

- normal-normal: y_i ~ N(mu, v_i + tau^2), the study effects theta_i integrated out, so the sampler
  sees a two-dimensional posterior without a funnel; theta_i and a new study's theta are then drawn
  from their exact conditional normals for every posterior draw (Roever 2020, JSS Sec. 2.8).
- binomial-normal: events ~ Binomial(n, p) in each arm, with logit (OR) or log (RR) link; study
  effects non-centred, theta_i = mu + tau z_i; no continuity correction.

The prior on tau is chosen by its TauFamily code (bayes_pip.priors) so that one compiled model
serves every prior set:
the sampler works on u in R with tau = exp(u) (tau = upper * logistic(u) for the uniform prior) and
the log-density of u includes the Jacobian.

PyMC, pytensor and nutpie are imported lazily: `list`, `dl` and the exact engine never load them.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from bayes_pip.engines.base import SamplerSettings
from bayes_pip.errors import InputError
from bayes_pip.prior_families import HalfNormal, TauFamily
from bayes_pip.priors import ResolvedPrior


def prior_data(prior: ResolvedPrior) -> dict:
    """Prior parameters as the data the compiled model reads (unused slots stay at safe 1.0)."""
    if getattr(prior.mu, "proper", True) is False:
        raise InputError("the PyMC engine needs a proper prior on mu (use --engine exact)")
    if not hasattr(prior.tau, "sampler_params"):
        raise InputError(f"the PyMC engine does not know the tau family {prior.tau.family}")
    a, b, c = (*prior.tau.sampler_params(), 1.0, 1.0)[:3]
    return {"mu_mean": np.float64(prior.mu.mean), "mu_sd": np.float64(prior.mu.sd),
            "tau_family": np.int64(prior.tau.code), "tau_a": np.float64(a),
            "tau_b": np.float64(b), "tau_c": np.float64(c)}


def tau_prior_block(family, a, b, c):
    """Unconstrained u, tau = g(u), and the log-density of u under each tau prior family."""
    import pymc as pm
    import pytensor.tensor as pt

    u = pm.Flat("u")
    is_uniform = pt.eq(family, int(TauFamily.UNIFORM))
    tau = pm.Deterministic("tau", pt.switch(is_uniform, a * pt.sigmoid(u), pt.exp(u)))
    e = pt.exp(u)
    log_2pi = math.log(2 * math.pi)
    halfnormal = math.log(2) - 0.5 * log_2pi - pt.log(a) - e**2 / (2 * a**2) + u
    halfcauchy = math.log(2 / math.pi) - pt.log(a) - pt.log1p((e / a) ** 2) + u
    lognormal = -0.5 * ((u - a) / b) ** 2 - pt.log(b) - 0.5 * log_2pi
    logt = (pt.gammaln((c + 1) / 2) - pt.gammaln(c / 2) - 0.5 * pt.log(c * math.pi) - pt.log(b)
            - (c + 1) / 2 * pt.log1p(((u - a) / b) ** 2 / c))
    uniform = -pt.softplus(-u) - pt.softplus(u)
    by_family = {TauFamily.HALFNORMAL: halfnormal, TauFamily.HALFCAUCHY: halfcauchy,
                 TauFamily.LOGNORMAL_TAU2: lognormal, TauFamily.LOGT_TAU2: logt,
                 TauFamily.UNIFORM: uniform}
    logp = by_family[TauFamily.UNIFORM]
    for code in reversed([f for f in TauFamily if f != TauFamily.UNIFORM]):
        logp = pt.switch(pt.eq(family, int(code)), by_family[code], logp)
    pm.Potential("tau_prior", logp)
    return tau


def prior_block(prior: ResolvedPrior):
    """Prior parameters as pm.Data (swapped by with_data, never recompiled) and the tau block.

    Returns (mu_mean, mu_sd, tau); call inside a model context.
    """
    import pymc as pm

    d = prior_data(prior)
    mu_mean, mu_sd = pm.Data("mu_mean", d["mu_mean"]), pm.Data("mu_sd", d["mu_sd"])
    family = pm.Data("tau_family", d["tau_family"])
    a, b, c = pm.Data("tau_a", d["tau_a"]), pm.Data("tau_b", d["tau_b"]), pm.Data("tau_c", d["tau_c"])
    return mu_mean, mu_sd, tau_prior_block(family, a, b, c)


def normal_normal_spec(y, v, prior: ResolvedPrior, study=None):
    """The normal-normal random-effects model as written in a paper, in idiomatic PyMC.

    y_i ~ N(mu, v_i + tau^2) (theta_i integrated out), mu and tau under the prior set's own
    PyMC distributions. This is the specification; :func:`normal_normal_model` is the same
    posterior in the parametrisation the sampler uses, and tests check that the two log densities
    differ only by the change of variables (tests/test_pymc.py).
    """
    import pymc as pm
    import pytensor.tensor as pt

    y = np.asarray(y, float)
    study = list(study) if study is not None else [f"study {i + 1}" for i in range(len(y))]
    with pm.Model(coords={"study": study}) as model:
        y_obs = pm.Data("y_obs", y, dims="study")
        v_obs = pm.Data("v", np.asarray(v, float), dims="study")
        mu = prior.mu.pymc("mu")
        tau = prior.tau.pymc("tau")
        pm.Normal("y", mu=mu, sigma=pt.sqrt(v_obs + tau**2), observed=y_obs, dims="study")
    return model


def normal_normal_model(y, v, prior: ResolvedPrior):
    """Marginal normal-normal model, sampled as (tau, mu | tau) with an exact whitening of mu.

    Notes
    -----
    The posterior is p(tau | y) p(mu | tau, y). With w_i = 1/(v_i + tau^2), w_0 = 1/s0^2:
    W = w_0 + sum w_i, m = (w_0 m0 + sum w_i y_i)/W, and p(mu | tau, y) = N(m, 1/W). So the sampler
    draws u (tau = g(u)) under log p(y | tau) + log p(tau) + log|g'(u)| and a standard normal z,
    and sets mu = m(tau) + z / sqrt(W(tau)). The target is exactly the posterior of
    mu ~ N(m0, s0^2), tau ~ p(tau), y_i ~ N(mu, v_i + tau^2), but mu and tau are independent in
    (z, u): no funnel whatever k is (k = 1 included).
    """
    import pymc as pm
    import pytensor.tensor as pt

    with pm.Model() as model:
        y_obs = pm.Data("y", np.asarray(y, float))
        v_obs = pm.Data("v", np.asarray(v, float))
        mu_mean, mu_sd, tau = prior_block(prior)
        # the likelihood with theta_i and mu integrated out: log p(y | tau)
        w = 1.0 / (v_obs + tau**2)
        w0 = 1.0 / mu_sd**2
        big_w = w0 + pt.sum(w)
        m = (w0 * mu_mean + pt.sum(w * y_obs)) / big_w
        resid = pt.sum(w * (y_obs - m) ** 2) + w0 * (mu_mean - m) ** 2
        pm.Potential("marginal_likelihood",
                     -0.5 * pt.sum(pt.log(v_obs + tau**2)) - 0.5 * pt.log(big_w) - 0.5 * resid)
        # mu | tau, y ~ N(m, 1/W), whitened
        z = pm.Normal("z_mu", 0.0, 1.0)
        pm.Deterministic("mu", m + z / pt.sqrt(big_w))
    return model


CENTRED_MAX_K = 1  # binomial models with at most this many studies sample theta centred


def binomial_normal_model(events_t, n_t, events_c, n_c, link, prior: ResolvedPrior,
                          centred: bool = False):
    """Binomial-normal model on arm counts; link 'logit' (log OR) or 'log' (log RR).

    Notes
    -----
    Non-centred (default): theta_i = mu + tau z_i, z_i ~ N(0, 1).
    Centred (for a single study, where the non-centred form diverges): mu is integrated out,
    theta ~ MVN(m0 1, tau^2 I + s0^2 J), and mu is drawn afterwards from its exact conditional
    N((m0/s0^2 + sum theta_i/tau^2)/P, 1/P), P = 1/s0^2 + k/tau^2 (see sample_binomial_normal).
    Control-arm baseline b_i ~ N(m_b, s_b^2), the prior set's baseline prior (default N(0, 10^2)):
    logit: logit p_ctrl = b_i, logit p_pip = b_i + theta_i.
    log:   log p_ctrl = m_i - softplus(-b_i), m_i = min(0, -theta_i), log p_pip = log p_ctrl + theta_i,
           which keeps both risks below 1 for any theta_i (log-binomial model).
    """
    import pymc as pm
    import pytensor.tensor as pt

    with pm.Model() as model:
        e1 = pm.Data("events_t", np.asarray(events_t, float))
        n1 = pm.Data("n_t", np.asarray(n_t, float))
        e0 = pm.Data("events_c", np.asarray(events_c, float))
        n0 = pm.Data("n_c", np.asarray(n_c, float))
        mu_mean, mu_sd, tau = prior_block(prior)
        base_mean = pm.Data("baseline_mean", np.float64(prior.baseline.mean))
        base_sd = pm.Data("baseline_sd", np.float64(prior.baseline.sd))
        base = pm.Normal("baseline", base_mean, base_sd, shape=e1.shape)
        if centred:
            n = e1.shape[0]
            cov = tau**2 * pt.eye(n) + mu_sd**2 * pt.ones((n, n))
            theta = pm.MvNormal("theta", mu=mu_mean * pt.ones(n), cov=cov)
        else:
            mu = pm.Normal("mu", mu=mu_mean, sigma=mu_sd)
            z = pm.Normal("z", 0.0, 1.0, shape=e1.shape)
            theta = pm.Deterministic("theta", mu + tau * z)
        if link == "logit":
            p0 = pm.math.invlogit(base)
            p1 = pm.math.invlogit(base + theta)
        else:
            log_p0 = pt.minimum(0.0, -theta) - pt.softplus(-base)
            p0 = pt.exp(log_p0)
            p1 = pt.exp(log_p0 + theta)
        pm.Binomial("events_ctrl_like", n=n0, p=p0, observed=e0)
        pm.Binomial("events_pip_like", n=n1, p=p1, observed=e1)
    return model


def quiet_imports():
    """Import PyMC/pytensor/nutpie without pytensor's BLAS advice (nutpie compiles with numba,
    so pytensor's C BLAS is never used)."""
    import warnings

    warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS",
                            category=UserWarning)
    import nutpie  # noqa: F401
    import pymc  # noqa: F401


def padded_size(k: int) -> int:
    """Binomial models have one parameter per study, so nutpie needs a fixed k: pad to 4, 8, 16..."""
    return max(4, 1 << (k - 1).bit_length())


@functools.lru_cache(maxsize=None)
def compiled(kind: str, size: int = 2):
    """Compile a model structure once per process (placeholder data; real data via with_data).

    Binomial models are compiled once per padded study count ``size``. (The normal-normal
    model runs through bayes_pip.fast_normal instead, compiled once per installation.)
    """
    quiet_imports()
    import nutpie

    from bayes_pip.prior_families import Normal

    placeholder = ResolvedPrior(name="placeholder", title="", source="", mu=Normal(0.0, 1.0),
                                tau=HalfNormal(0.5), mu_source="", tau_source="")
    link = kind.split("-")[1]  # binomial-<link>[-centred]
    ones = np.ones(size)
    model = binomial_normal_model(ones, 10 * ones, 2 * ones, 10 * ones, link, placeholder,
                                  centred=kind.endswith("centred"))
    return nutpie.compile_pymc_model(model)


def run_nutpie(kind: str, data: dict, seed: int, settings: SamplerSettings, progress: bool,
               size: int = 2):
    import nutpie

    from bayes_pip.engines.mcmc import interrupts_propagate

    model = compiled(kind, size).with_data(**data)
    with interrupts_propagate():
        return nutpie.sample(model, draws=settings.draws, tune=settings.tune, chains=settings.chains,
                         cores=settings.cores, seed=seed, target_accept=settings.target_accept,
                         progress_bar=progress)


def meta_regression_model(y, v, X, names, study, prior: ResolvedPrior, coef_mean, coef_sd):
    """Bayesian meta-regression as written in a paper: y_i ~ N(x_i' beta, v_i + tau^2) (theta_i
    integrated out), beta_j ~ N(m_j, s_j^2) or flat (s_j infinite), tau under the prior set's own
    PyMC distribution. Coordinates: ``coefficient`` (intercept first, then each moderator column)
    and ``study``."""
    import pymc as pm
    import pytensor.tensor as pt

    coef_sd = np.asarray(coef_sd, float)
    with pm.Model(coords={"coefficient": list(names), "study": list(study)}) as model:
        x = pm.Data("X", np.asarray(X, float), dims=("study", "coefficient"))
        y_obs = pm.Data("y_obs", np.asarray(y, float), dims="study")
        v_obs = pm.Data("v", np.asarray(v, float), dims="study")
        parts = []
        for j, name in enumerate(names):
            if np.isfinite(coef_sd[j]):
                parts.append(pm.Normal(f"beta_{j}", float(coef_mean[j]), float(coef_sd[j])))
            else:
                parts.append(pm.Flat(f"beta_{j}"))
        beta = pm.Deterministic("beta", pt.stack(parts), dims="coefficient")
        tau = prior.tau.pymc("tau")
        pm.Normal("y", mu=pt.dot(x, beta), sigma=pt.sqrt(v_obs + tau**2), observed=y_obs,
                  dims="study")
    return model
