"""PyMC model builders, sampling with nutpie, and convergence diagnostics.

Two models; data and prior parameters are ``pm.Data`` so one compiled model serves every outcome
and every prior (nutpie's ``with_data`` swaps them without recompiling):

- normal-normal: y_i ~ N(mu, v_i + tau^2), the study effects theta_i integrated out, so the sampler
  sees a two-dimensional posterior without a funnel; theta_i and a new study's theta are then drawn
  from their exact conditional normals for every posterior draw (Roever 2020, JSS Sec. 2.8).
- binomial-normal: events ~ Binomial(n, p) in each arm, with logit (OR) or log (RR) link; study
  effects non-centred, theta_i = mu + tau z_i; no continuity correction.

The prior on tau is chosen by a family code so that one compiled model serves every prior set:
the sampler works on u in R with tau = exp(u) (tau = upper * logistic(u) for the uniform prior) and
the log-density of u includes the Jacobian.

PyMC, pytensor and nutpie are imported lazily: `list`, `dl` and the exact engine never load them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from bayes_pip import measures
from bayes_pip.errors import InputError
from bayes_pip.priors import (HalfCauchy, HalfNormal, LogNormalTau2, LogTTau2, ResolvedPrior,
                              Uniform)

TAU_FAMILY_CODES = {"halfnormal": 0, "halfcauchy": 1, "lognormal_tau2": 2, "logt_tau2": 3,
                    "uniform": 4}

# convergence thresholds (Vehtari et al. 2021, Bayesian Analysis 16(2):667-718)
RHAT_MAX = 1.01
ESS_MIN = 400


@dataclass(frozen=True)
class SamplerSettings:
    draws: int = 2000
    tune: int = 1000
    chains: int = 4
    cores: int = 2
    target_accept: float = 0.95

    @staticmethod
    def default_target_accept(engine: str) -> float:
        """0.95 for the whitened normal-normal model; 0.99 for the binomial-normal model, whose
        non-centred study effects are weakly identified with one or two studies."""
        return 0.99 if engine == "binomial" else 0.95

    def to_dict(self) -> dict:
        return {"draws": self.draws, "tune": self.tune, "chains": self.chains,
                "cores": self.cores, "target_accept": self.target_accept, "sampler": "nutpie NUTS"}


def prior_data(prior: ResolvedPrior) -> dict:
    """Prior parameters as the data the compiled model reads (unused slots stay at safe 1.0)."""
    tau = prior.tau
    if getattr(prior.mu, "proper", True) is False:
        raise InputError("the PyMC engine needs a proper prior on mu (use --engine exact)")
    a, b, c = 1.0, 1.0, 1.0
    if isinstance(tau, (HalfNormal, HalfCauchy)):
        a = tau.scale
    elif isinstance(tau, LogNormalTau2):
        a, b = tau.mu / 2, tau.sigma / 2
    elif isinstance(tau, LogTTau2):
        a, b, c = tau.location / 2, tau.scale / 2, tau.df
    elif isinstance(tau, Uniform):
        if not tau.proper:
            raise InputError("the PyMC engine needs a proper prior on tau (use --engine exact)")
        a = tau.upper
    else:
        raise InputError(f"the PyMC engine does not know the tau family {tau.family}")
    return {"mu_mean": np.float64(prior.mu.mean), "mu_sd": np.float64(prior.mu.sd),
            "tau_family": np.int64(TAU_FAMILY_CODES[tau.family]), "tau_a": np.float64(a),
            "tau_b": np.float64(b), "tau_c": np.float64(c)}


def tau_prior_block(family, a, b, c):
    """Unconstrained u, tau = g(u), and the log-density of u under each tau prior family."""
    import pymc as pm
    import pytensor.tensor as pt

    u = pm.Flat("u")
    is_uniform = pt.eq(family, TAU_FAMILY_CODES["uniform"])
    tau = pm.Deterministic("tau", pt.switch(is_uniform, a * pt.sigmoid(u), pt.exp(u)))
    e = pt.exp(u)
    log_2pi = math.log(2 * math.pi)
    halfnormal = math.log(2) - 0.5 * log_2pi - pt.log(a) - e**2 / (2 * a**2) + u
    halfcauchy = math.log(2 / math.pi) - pt.log(a) - pt.log1p((e / a) ** 2) + u
    lognormal = -0.5 * ((u - a) / b) ** 2 - pt.log(b) - 0.5 * log_2pi
    logt = (pt.gammaln((c + 1) / 2) - pt.gammaln(c / 2) - 0.5 * pt.log(c * math.pi) - pt.log(b)
            - (c + 1) / 2 * pt.log1p(((u - a) / b) ** 2 / c))
    uniform = -pt.softplus(-u) - pt.softplus(u)
    logp = pt.switch(pt.eq(family, 0), halfnormal,
                     pt.switch(pt.eq(family, 1), halfcauchy,
                               pt.switch(pt.eq(family, 2), lognormal,
                                         pt.switch(pt.eq(family, 3), logt, uniform))))
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


def binomial_normal_model(events_pip, n_pip, events_ctrl, n_ctrl, link, prior: ResolvedPrior,
                          centred: bool = False):
    """Binomial-normal model on arm counts; link 'logit' (log OR) or 'log' (log RR).

    Notes
    -----
    Non-centred (default): theta_i = mu + tau z_i, z_i ~ N(0, 1).
    Centred (for a single study, where the non-centred form diverges): mu is integrated out,
    theta ~ MVN(m0 1, tau^2 I + s0^2 J), and mu is drawn afterwards from its exact conditional
    N((m0/s0^2 + sum theta_i/tau^2)/P, 1/P), P = 1/s0^2 + k/tau^2 (see sample_binomial_normal).
    Control-arm baseline b_i ~ N(0, 2^2):
    logit: logit p_ctrl = b_i, logit p_pip = b_i + theta_i.
    log:   log p_ctrl = m_i - softplus(-b_i), m_i = min(0, -theta_i), log p_pip = log p_ctrl + theta_i,
           which keeps both risks below 1 for any theta_i (log-binomial model).
    """
    import pymc as pm
    import pytensor.tensor as pt

    with pm.Model() as model:
        e1 = pm.Data("events_pip", np.asarray(events_pip, float))
        n1 = pm.Data("n_pip", np.asarray(n_pip, float))
        e0 = pm.Data("events_ctrl", np.asarray(events_ctrl, float))
        n0 = pm.Data("n_ctrl", np.asarray(n_ctrl, float))
        mu_mean, mu_sd, tau = prior_block(prior)
        base = pm.Normal("baseline", 0.0, 2.0, shape=e1.shape)
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

    from bayes_pip.priors import Normal

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

    model = compiled(kind, size).with_data(**data)
    return nutpie.sample(model, draws=settings.draws, tune=settings.tune, chains=settings.chains,
                         cores=settings.cores, seed=seed, target_accept=settings.target_accept,
                         progress_bar=progress)


def conditional_theta_draws(mu, tau, y, v, rng):
    """theta_i | mu, tau, y_i ~ N(B mu + (1-B) y_i, v_i (1-B)), B = v_i/(v_i + tau^2), per draw."""
    mu = mu[..., None]
    tau2 = tau[..., None] ** 2
    b = v / (v + tau2)
    mean = b * mu + (1 - b) * y
    sd = np.sqrt(v * tau2 / (v + tau2))
    return mean + sd * rng.standard_normal(mean.shape)


def sample_normal_normal(y, v, prior: ResolvedPrior, seed: int, settings: SamplerSettings,
                         study_names, progress: bool = False):
    """Sample (mu, tau) with nutpie's NUTS, then theta_i and theta_new exactly; InferenceData.

    The model is :func:`normal_normal_model`, run through its hand-written twin in
    :mod:`bayes_pip.fast_normal` (compiled once per installation instead of once per process;
    tests check the two log densities and gradients agree).
    """
    import nutpie
    import xarray as xr

    from bayes_pip.fast_normal import compiled_model

    y = np.asarray(y, float)
    v = np.asarray(v, float)
    model = compiled_model(y, v, prior_data(prior))
    idata = nutpie.sample(model, draws=settings.draws, tune=settings.tune, chains=settings.chains,
                          cores=settings.cores, seed=seed, target_accept=settings.target_accept,
                          progress_bar=progress)
    post = idata.posterior
    rng = np.random.default_rng([seed, 1])
    mu, tau = post["mu"].values, post["tau"].values
    theta = conditional_theta_draws(mu, tau, y, v, rng)
    theta_new = mu + tau * rng.standard_normal(mu.shape)
    idata.posterior = post.assign(
        theta=xr.DataArray(theta, dims=("chain", "draw", "study"),
                           coords={"study": list(study_names)}),
        theta_new=xr.DataArray(theta_new, dims=("chain", "draw")))
    return idata


def sample_binomial_normal(es, prior: ResolvedPrior, seed: int, settings: SamplerSettings,
                           progress: bool = False, centred: bool | None = None):
    """Binomial-normal fit on arm counts (RR: log link, OR: logit link); returns InferenceData."""
    import xarray as xr

    k = es.k
    centred = k <= CENTRED_MAX_K if centred is None else centred
    kind = f"binomial-{measures.get(es.measure).link}" + ("-centred" if centred else "")
    # centred models are not padded: prior-only padded thetas would form a funnel with tau
    size = k if centred else padded_size(k)

    def pad(x):  # padded studies have n = 0: a zero log-likelihood, their parameters stay prior
        out = np.zeros(size)
        out[:k] = np.asarray(x, float)
        return out

    data = {"events_pip": pad(es.events_pip), "n_pip": pad(es.n_pip),
            "events_ctrl": pad(es.events_ctrl), "n_ctrl": pad(es.n_ctrl), **prior_data(prior)}
    idata = run_nutpie(kind, data, seed, settings, progress, size)
    post = idata.posterior
    rng = np.random.default_rng([seed, 2])
    tau = post["tau"].values
    theta = post["theta"].values[..., :k]
    if centred:  # mu | theta, tau from its conditional normal (only the k real studies)
        m0, s0 = float(prior.mu.mean), float(prior.mu.sd)
        precision = 1 / s0**2 + k / tau**2
        mean = (m0 / s0**2 + theta.sum(axis=-1) / tau**2) / precision
        mu = mean + rng.standard_normal(tau.shape) / np.sqrt(precision)
        post = post.assign(mu=(("chain", "draw"), mu))
    else:
        mu = post["mu"].values
    theta_new = mu + tau * rng.standard_normal(mu.shape)
    post = post.drop_vars([n for n in ("theta", "z", "baseline") if n in post]).drop_dims(
        [d for d in post.dims if d not in ("chain", "draw")], errors="ignore")
    idata.posterior = post.assign(
        theta=xr.DataArray(theta, dims=("chain", "draw", "study"),
                           coords={"study": list(es.study)}),
        theta_new=xr.DataArray(theta_new, dims=("chain", "draw")))
    return idata


def diagnostics(idata, variables=("mu", "tau")) -> dict:
    """R-hat (rank-normalised), bulk and tail ESS over mu and tau, and divergent transitions."""
    import arviz as az

    sub = idata.posterior[list(variables)]
    rhat = az.rhat(sub)
    ess_bulk = az.ess(sub, method="bulk")
    ess_tail = az.ess(sub, method="tail")
    divergences = int(idata.sample_stats["diverging"].values.sum())
    d = {
        "rhat_max": float(max(float(rhat[v].max()) for v in variables)),
        "ess_bulk_min": float(min(float(ess_bulk[v].min()) for v in variables)),
        "ess_tail_min": float(min(float(ess_tail[v].min()) for v in variables)),
        "divergences": divergences,
        "chains": int(idata.posterior.sizes["chain"]),
        "draws": int(idata.posterior.sizes["draw"]),
    }
    d["converged"] = (d["rhat_max"] <= RHAT_MAX and d["ess_bulk_min"] >= ESS_MIN
                      and d["ess_tail_min"] >= ESS_MIN and divergences == 0)
    return d


def convergence_problems(d: dict) -> list[str]:
    """Human-readable list of failed checks (empty when the fit converged)."""
    problems = []
    if d["rhat_max"] > RHAT_MAX:
        problems.append(f"R-hat {d['rhat_max']:.3f} > {RHAT_MAX}")
    if d["ess_bulk_min"] < ESS_MIN:
        problems.append(f"bulk ESS {d['ess_bulk_min']:.0f} < {ESS_MIN}")
    if d["ess_tail_min"] < ESS_MIN:
        problems.append(f"tail ESS {d['ess_tail_min']:.0f} < {ESS_MIN}")
    if d["divergences"]:
        problems.append(f"{d['divergences']} divergent transitions")
    return problems
