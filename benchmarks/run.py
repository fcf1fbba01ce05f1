"""Benchmarks: bayes_pip against the obvious alternatives, measured in one run on one machine.

    python benchmarks/run.py            # needs the bench extra: pip install -e '.[bench]'
    python benchmarks/run.py --sweep-only   # items 1 and 2 only (no extra needed)

Prints, each as a ratio against its alternative:
1. prior-sensitivity sweep (every study-level outcome of the bundled data sets and of the imported
   Fleiss 1993 RevMan example, under every applicable prior)
   with the pymc engine (the log density compiled once per installation, nutpie's NUTS) vs a
   fresh ``pm.sample`` per fit of the usual non-centred model (theta_i = mu + tau z_i), once
   with PyMC's defaults and once at bayes_pip's draws; both include compilation; convergence of
   each;
2. peak resident memory of the sweep;
3. exact-engine time per fit;
4. cold ``python -m bayes_pip fit OUTCOME --engine exact`` wall time;
5. the vectorised DerSimonian-Laird core vs a statsmodels ``combine_effects`` loop, per
   meta-analysis, at k = 6.
"""

from __future__ import annotations

import resource
import subprocess
import tempfile
from pathlib import Path
import sys
import time
import warnings

import numpy as np

from bayes_pip.analysis import applicable_priors, fit_outcome, outcomes_with_data
from bayes_pip.classical import classical_analysis
from bayes_pip.data import bundled_data_dir, load_dataset
from bayes_pip.engines.base import SamplerSettings
from bayes_pip.engines.normal_nuts import ENGINE as NUTS_ENGINE
from bayes_pip.priors import resolve_prior

DATASETS = [bundled_data_dir(), bundled_data_dir().parent / "crins2014"]
FLEISS_RM5 = Path(__file__).parents[1] / "tests" / "fixtures" / "fleiss1993" / "Fleiss1993.rm5"


def imported_fleiss(tmp: Path) -> Path:
    """The Fleiss 1993 RevMan example review, imported (a third, complete study-level data set)."""
    from bayes_pip.output import write_report_files
    from bayes_pip.revman import read_review, review_files

    files, _ = review_files(read_review(FLEISS_RM5), "from-labels")
    write_report_files(tmp, files)
    return tmp


def study_level_jobs():
    """(dataset, outcome, prior) for every study-level fit of the bundled data sets."""
    jobs = []
    for directory in DATASETS:
        ds = load_dataset(directory)
        for o in outcomes_with_data(ds):
            if ds.status(o).level == "study":
                jobs += [(ds, o, p) for p in applicable_priors(ds.outcome(o))]
    return jobs


def sweep_bayes_pip(jobs):
    t0 = time.perf_counter()
    results = [fit_outcome(ds, o, p, engine="pymc") for ds, o, p in jobs]
    return time.perf_counter() - t0, results


def obvious_fit(ds, outcome_id, prior_name, seed, settings=None):
    """A fresh PyMC fit of the usual non-centred random-effects model: default ``pm.sample``,
    or with ``settings`` (SamplerSettings) its draws, tuning, chains and the pymc engine's
    target_accept for this number of studies."""
    import arviz as az
    import pymc as pm

    outcome = ds.outcome(outcome_id)
    prior = resolve_prior(prior_name, outcome)
    es = classical_analysis(ds, outcome_id).effects
    extra = {}
    if settings is not None:
        extra = {"draws": settings.draws, "tune": settings.tune, "chains": settings.chains,
                 "target_accept": NUTS_ENGINE.target_accept_for(es.k)}
    with pm.Model():
        mu = pm.Normal("mu", prior.mu.mean, prior.mu.sd)
        tau = prior.tau.pymc("tau")
        z = pm.Normal("z", 0, 1, shape=es.k)
        pm.Normal("y", mu + tau * z, np.sqrt(es.v), observed=es.y)
        idata = pm.sample(random_seed=seed, progressbar=False, compute_convergence_checks=False,
                          **extra)
    sub = idata.posterior[["mu", "tau"]]
    ok = (float(az.rhat(sub).to_array().max()) <= 1.01
          and float(az.ess(sub).to_array().min()) >= 400
          and int(idata.sample_stats["diverging"].sum()) == 0)
    return ok


def sweep_obvious(jobs, settings=None):
    t0 = time.perf_counter()
    converged = [obvious_fit(ds, o, p, seed=i, settings=settings)
                 for i, (ds, o, p) in enumerate(jobs)]
    return time.perf_counter() - t0, converged


def exact_per_fit(repeats=50):
    ds = load_dataset(DATASETS[1])
    fit_outcome(ds, "acute_rejection", engine="exact")
    t0 = time.perf_counter()
    for _ in range(repeats):
        fit_outcome(ds, "acute_rejection", engine="exact")
    return (time.perf_counter() - t0) / repeats


def cold_cli(repeats=3):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bayes_pip", "fit", "acute_rejection", "--data",
                        str(DATASETS[1]), "--engine", "exact"], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


def dl_throughput(n_vectorised=200_000, n_loop=300, k=6):
    """bayes_pip.dl.dersimonian_laird (the fused kernel from FUSED_MIN_ROWS rows on), the NumPy
    core forced, and a statsmodels combine_effects loop, per meta-analysis, in one run."""
    from statsmodels.stats.meta_analysis import combine_effects

    from bayes_pip import dl

    rng = np.random.default_rng(1)
    v = rng.uniform(0.02, 0.5, size=(n_vectorised, k))
    y = rng.normal(0, np.sqrt(v + 0.1))
    dl.dersimonian_laird(y, v)  # compile (or load numba's cache)

    def best_of_3():
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            result = dl.dersimonian_laird(y, v)
            times.append(time.perf_counter() - t0)
        return min(times) / n_vectorised, result

    per_vec, r = best_of_3()
    threshold, dl.FUSED_MIN_ROWS = dl.FUSED_MIN_ROWS, 10**12
    per_numpy, _ = best_of_3()
    dl.FUSED_MIN_ROWS = threshold
    t0 = time.perf_counter()
    for i in range(n_loop):
        res = combine_effects(y[i], v[i], method_re="dl")
    per_loop = (time.perf_counter() - t0) / n_loop
    # the two agree (statsmodels' DL tau^2 and random-effects mean)
    assert np.isclose(res.tau2, r.tau2[n_loop - 1]) and np.isclose(res.mean_effect_re, r.mu[n_loop - 1])
    return per_numpy, per_vec, per_loop


def main():
    warnings.filterwarnings("ignore")
    DATASETS.append(imported_fleiss(Path(tempfile.mkdtemp(prefix="bayes_pip_bench_"))))
    jobs = study_level_jobs()
    print(f"bayes_pip benchmarks ({len(jobs)} study-level fits in the sweep)\n")

    t_ours, results = sweep_bayes_pip(jobs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    ok = sum(r.diagnostics.converged for r in results)
    print(f"1. sweep, bayes_pip pymc engine:       {t_ours:7.1f} s  ({ok}/{len(jobs)} converged)")
    print(f"2. peak RSS after the sweep:            {peak:7.0f} MiB")
    t_obv, conv = sweep_obvious(jobs)
    print(f"   sweep, fresh pm.sample per fit:      {t_obv:7.1f} s  ({sum(conv)}/{len(jobs)} "
          "converged: R-hat <= 1.01, ESS >= 400, no divergences)")
    print(f"   ratio: {t_obv / t_ours:.1f}x faster ({t_obv / len(jobs):.2f} s vs "
          f"{t_ours / len(jobs):.2f} s per fit, compilation included)")
    same = SamplerSettings()   # the pymc engine's defaults
    t_same, conv = sweep_obvious(jobs, same)
    print(f"   sweep, fresh pm.sample per fit at bayes_pip's draws ({same.chains} x "
          f"{same.draws:,}, tune {same.tune:,}, same target_accept): {t_same:7.1f} s  "
          f"({sum(conv)}/{len(jobs)} converged)")
    print(f"   ratio: {t_same / t_ours:.1f}x faster ({t_same / len(jobs):.2f} s vs "
          f"{t_ours / len(jobs):.2f} s per fit)")
    if "--sweep-only" in sys.argv:
        return
    per_fit = exact_per_fit()
    print(f"3. exact engine per fit (k = 6):        {per_fit * 1000:7.1f} ms")
    best, median = cold_cli()
    print(f"4. cold `fit --engine exact` wall time: {best:7.2f} s (median {median:.2f} s)")
    per_numpy, per_vec, per_loop = dl_throughput()
    print(f"5. DL per meta-analysis (k = 6), 200,000 at once (best of 3): "
          f"{per_vec * 1e9:.0f} ns (bayes_pip.dl.dersimonian_laird, fused), NumPy core {per_numpy * 1e9:.0f} ns; statsmodels "
          f"combine_effects loop {per_loop * 1e6:.0f} us")
    print(f"   ratio vs statsmodels: fused {per_loop / per_vec:,.0f}x, NumPy {per_loop / per_numpy:,.0f}x")


if __name__ == "__main__":
    main()
