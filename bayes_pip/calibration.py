"""Simulation-based calibration of an engine (Talts et al. 2018, arXiv:1804.06788), as a command.

The design of the bayesmeta calibration study (Roever 2020, J Stat Softw 93(6), Appendix E):
draw mu ~ N(0, 1) and tau ~ half-normal(scale) from the prior, sigma_i ~ U(0.2, 1),
theta_i ~ N(mu, tau^2), y_i ~ N(theta_i, sigma_i^2); fit with the same prior; record where the
true mu and tau fall in their posteriors. If the engine is right these positions are uniform:

- exact engine (batched): the posterior CDF at the truth (probability integral transform),
  tested with Kolmogorov-Smirnov;
- PyMC engine: the rank of the truth among 99 thinned posterior draws (0..99), tested with a
  chi-square test on 10 equal bins.

A replicate's seed is derived from (seed, k, replicate), so a run on a Dask cluster equals the
serial run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
from scipy import stats

from bayes_pip.engines.base import SamplerSettings
from bayes_pip.errors import InputError
from bayes_pip.priors import HalfNormal, Normal

MU_PRIOR = Normal(0.0, 1.0)
SIGMA_RANGE = (0.2, 1.0)
THINNED = 99          # PyMC: posterior draws kept per replicate (ranks 0..99)
BINS = 10             # PyMC: chi-square bins (ranks 0-9, 10-19, ..., 90-99)
ALPHA = 0.01          # a check passes when its uniformity p-value exceeds this
ENGINES = ("exact", "pymc")


@dataclass(frozen=True)
class CalibrationCheck:
    k: int
    parameter: str        # "mu" or "tau"
    test: str
    p_value: float
    values: tuple         # PITs (exact) or ranks (PyMC), one per replicate

    @property
    def passed(self) -> bool:
        return bool(self.p_value > ALPHA)

    def to_dict(self) -> dict:
        return {"k": self.k, "parameter": self.parameter, "test": self.test,
                "p_value": self.p_value, "passed": self.passed}


@dataclass(frozen=True)
class CalibrationRecord:
    engine: str
    ks: tuple
    reps: int
    tau_scale: float
    seed: int
    checks: tuple = ()
    settings: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_dict(self) -> dict:
        return {"engine": self.engine, "k": list(self.ks), "reps": self.reps,
                "design": {"mu_prior": "Normal(0, 1^2)",
                           "tau_prior": f"half-normal(scale {self.tau_scale:g})",
                           "sigma_i": "Uniform(0.2, 1)",
                           "source": "Roever 2020, J Stat Softw 93(6), Appendix E"},
                "alpha": ALPHA, "seed": self.seed, "passed": self.passed,
                "checks": [c.to_dict() for c in self.checks], "settings": self.settings}


def simulate(seed: int, k: int, rep: int, tau_scale: float):
    """One replicate: (mu, tau, y, v), from its own stream."""
    rng = np.random.default_rng([seed, k, rep])
    mu = rng.normal(MU_PRIOR.mean, MU_PRIOR.sd)
    tau = abs(rng.normal(0.0, tau_scale))
    sigma = rng.uniform(*SIGMA_RANGE, size=k)
    y = rng.normal(rng.normal(mu, tau, size=k), sigma)
    return mu, tau, y, sigma**2


def pymc_ranks(seed: int, k: int, rep: int, tau_scale: float, settings: SamplerSettings):
    """Ranks of the true mu and tau among THINNED draws of the PyMC engine (one replicate)."""
    from bayes_pip.engines.normal_nuts import sample_normal_normal

    mu, tau, y, v = simulate(seed, k, rep, tau_scale)
    prior = SimpleNamespace(mu=MU_PRIOR, tau=HalfNormal(tau_scale))
    idata = sample_normal_normal(y, v, prior, seed=int(rep), settings=settings,
                                 study_names=[str(i) for i in range(k)])
    out = []
    for name, truth in (("mu", mu), ("tau", tau)):
        draws = idata.posterior[name].values.ravel()
        thin = draws[np.linspace(0, draws.size - 1, THINNED).astype(int)]
        out.append(int(np.sum(thin < truth)))
    return tuple(out)


def exact_pits(seed: int, k: int, reps: int, tau_scale: float):
    """Posterior CDFs at the truth for every replicate, from one batched exact fit."""
    from bayes_pip.engines.exact_batch import batch_posterior

    sims = [simulate(seed, k, r, tau_scale) for r in range(reps)]
    y = np.array([s[2] for s in sims])
    v = np.array([s[3] for s in sims])
    post = batch_posterior(y, v, prior=SimpleNamespace(mu=MU_PRIOR, tau=HalfNormal(tau_scale)),
                           store=True)
    mu_pit = [post.row(r).cdf("mu", sims[r][0]) for r in range(reps)]
    tau_pit = [post.row(r).cdf("tau", sims[r][1]) for r in range(reps)]
    return mu_pit, tau_pit


def calibrate(engine: str = "exact", ks=(2, 5, 10), reps: int = 500, seed: int = 1,
              tau_scale: float = 0.5, scheduler: str | None = None, settings=None,
              progress=None) -> CalibrationRecord:
    """Run the calibration study for ``engine`` at each number of studies in ``ks``."""
    if engine not in ENGINES:
        raise InputError(f"calibrate --engine must be one of {', '.join(ENGINES)}, not {engine}")
    ks = tuple(int(k) for k in ks)
    checks = []
    if engine == "exact":
        tasks = [(seed, k, reps, tau_scale) for k in ks]
        results = _run(exact_pits, tasks, [f"k = {k}" for k in ks], scheduler, progress)
        for k, (mu_pit, tau_pit) in zip(ks, results):
            for name, pit in (("mu", mu_pit), ("tau", tau_pit)):
                checks.append(CalibrationCheck(k, name, "Kolmogorov-Smirnov on the posterior "
                                               "CDF at the truth", float(
                                                   stats.kstest(pit, "uniform").pvalue),
                                               tuple(float(p) for p in pit)))
        used = {"quadrature": "batched exact engine"}
    else:
        settings = settings or SamplerSettings(draws=500, tune=500, chains=2)
        tasks = [(seed, k, r, tau_scale, settings) for k in ks for r in range(reps)]
        labels = [f"k = {t[1]}, replicate {t[2] + 1}" for t in tasks]
        results = _run(pymc_ranks, tasks, labels, scheduler, progress)
        for i, k in enumerate(ks):
            block = results[i * reps:(i + 1) * reps]
            for j, name in enumerate(("mu", "tau")):
                ranks = np.array([b[j] for b in block])
                counts = np.bincount(ranks * BINS // (THINNED + 1), minlength=BINS)
                checks.append(CalibrationCheck(k, name, f"chi-square on {BINS} bins of the rank "
                                               f"among {THINNED} thinned draws",
                                               float(stats.chisquare(counts).pvalue),
                                               tuple(int(r) for r in ranks)))
        used = settings.to_dict()
    return CalibrationRecord(engine, ks, reps, tau_scale, seed, tuple(checks), used)


def _run(func, tasks, labels, scheduler, progress):
    if scheduler:
        from bayes_pip.cluster import run_tasks

        out = run_tasks(scheduler, func, tasks, labels, progress)
        failed = [(label, msg) for label, (ok, msg) in zip(labels, out) if not ok]
        if failed:
            raise InputError(f"{len(failed)} calibration tasks failed on the cluster; the first: "
                             f"{failed[0][0]}: {failed[0][1]}")
        return [value for _, value in out]
    results = []
    for i, task in enumerate(tasks):
        if progress:
            progress(i, len(tasks), labels[i])
        results.append(func(*task))
    if progress:
        progress(len(tasks), len(tasks), "done")
    return results


def calibration_text(rec: CalibrationRecord) -> str:
    lines = [f"Simulation-based calibration, {rec.engine} engine: {rec.reps} replicates per k; "
             f"mu ~ N(0, 1), tau ~ half-normal({rec.tau_scale:g}), sigma_i ~ U(0.2, 1)",
             f"{'k':>4s} {'parameter':9s} {'p (uniformity)':>15s}  result"]
    for c in rec.checks:
        lines.append(f"{c.k:4d} {c.parameter:9s} {c.p_value:15.3f}  "
                     f"{'uniform' if c.passed else 'NOT UNIFORM (p <= 0.01)'}")
    lines.append(f"test: {rec.checks[0].test}" if rec.checks else "")
    if rec.engine == "pymc" and rec.reps < 5 * BINS:
        lines.append(f"Note: with {rec.reps} replicates fewer than 5 are expected per bin; the "
                     f"chi-square p-value is rough (use --reps {5 * BINS} or more).")
    return "\n".join(lines)


def rank_histograms(rec: CalibrationRecord):
    """Rank (or PIT) histograms, one panel per k and parameter, with the 99% band of counts a
    uniform distribution gives."""
    from matplotlib.figure import Figure

    nk = len(rec.ks)
    fig = Figure(figsize=(7.5, 1.9 * nk + 0.8))
    axes = fig.subplots(nk, 2, squeeze=False)
    bins = 20 if rec.engine == "exact" else BINS
    for c in rec.checks:
        ax = axes[rec.ks.index(c.k), 0 if c.parameter == "mu" else 1]
        values = np.asarray(c.values, float)
        if rec.engine == "exact":
            edges = np.linspace(0, 1, bins + 1)
            xlabel = "posterior CDF at the true value"
        else:
            edges = np.linspace(0, THINNED + 1, bins + 1)
            xlabel = f"rank of the true value among {THINNED} draws"
        counts, _ = np.histogram(values, edges)
        expected = len(values) / bins
        lo, hi = stats.binom.ppf([0.005, 0.995], len(values), 1 / bins)
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#9db4d6",
               edgecolor="white", lw=0.5, label="replicates per bin")
        ax.axhline(expected, color="black", lw=0.8, label="expected if uniform")
        for bound in (lo, hi):
            ax.axhline(bound, color="black", lw=0.8, ls=":",
                       label="99% range per bin if uniform" if bound == lo else None)
        ax.set_ylim(0, max(counts.max(), hi) * 1.15)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_title(f"{'mu' if c.parameter == 'mu' else 'tau'}, k = {c.k}: p = {c.p_value:.3f}",
                     fontsize=9)
        ax.tick_params(labelsize=8)
        if rec.ks.index(c.k) == nk - 1:
            ax.set_xlabel(xlabel, fontsize=8)
        if c.parameter == "mu":
            ax.set_ylabel("replicates", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"Simulation-based calibration, {rec.engine} engine ({rec.reps} replicates "
                 "per k)", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
