"""Many meta-analyses at once: the batched exact engine against its alternatives, one run.

    python benchmarks/batch.py          # the Dask part needs pip install -e '.[dask]'

Prints, each as a ratio against the batched engine (simulated meta-analyses, k = 6, half-normal
0.5 prior on tau, N(0, 4^2) on mu):
1. the batched exact engine (``bp.exact_batch``) on 100,000 meta-analyses: wall time and peak
   memory (in a child process, so the figure is the batch's own);
2. the one-at-a-time exact engine (``exact_posterior`` and the same summaries), per fit;
3. R bayesmeta per fit, when R and bayesmeta are installed (skipped with a note otherwise);
4. the PyMC normal-normal engine (compile-once nutpie path) per fit;
5. a Dask LocalCluster with one worker per core against the serial run, for PyMC fits (one task
   per fit) and for the batched exact engine (100,000 meta-analyses in chunks).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from types import SimpleNamespace

import numpy as np

from bayes_pip.prior_families import HalfNormal, Normal

PRIOR = SimpleNamespace(mu=Normal(0, 4), tau=HalfNormal(0.5))
N_BATCH = 100_000
K = 6


def simulated(n, seed=1):
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.02, 0.3, (n, K))
    y = rng.normal(rng.normal(0, 0.3, (n, 1)), np.sqrt(v + 0.04))
    return y, v


CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np
    from types import SimpleNamespace
    from bayes_pip.api import exact_batch
    from bayes_pip.prior_families import HalfNormal, Normal
    n, k = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(1)
    v = rng.uniform(0.02, 0.3, (n, k))
    y = rng.normal(rng.normal(0, 0.3, (n, 1)), np.sqrt(v + 0.04))
    exact_batch(y[:10], v[:10], prior=SimpleNamespace(mu=Normal(0, 4), tau=HalfNormal(0.5)))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    out = exact_batch(y, v, prior=SimpleNamespace(mu=Normal(0, 4), tau=HalfNormal(0.5)))
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mib": peak / 1024, "before_mib": base / 1024,
                      "failed": int((out.error.values != "").sum())}))
""")


def batched_in_child(n):
    r = subprocess.run([sys.executable, "-c", CHILD, str(n), str(K)], capture_output=True,
                       text=True, check=True)
    return json.loads(r.stdout)


def per_fit_exact(n=200):
    from bayes_pip.engines.exact import exact_posterior

    y, v = simulated(n, seed=2)
    t0 = time.perf_counter()
    for i in range(n):
        p = exact_posterior(y[i], v[i], PRIOR.mu, PRIOR.tau)
        [p.quantile(t, q) for t in ("mu", "predict", "tau") for q in (0.025, 0.5, 0.975)]
        p.cdf("mu", 0.0), p.cdf("predict", 0.0)
    return (time.perf_counter() - t0) / n


def bayesmeta_missing() -> str:
    """Why R bayesmeta cannot be timed here ('' when it can)."""
    if shutil.which("Rscript") is None:
        return "R is not installed"
    if subprocess.run(["Rscript", "-e", "library(bayesmeta)"], capture_output=True).returncode:
        return "the R package bayesmeta is not installed (not on Debian; CRAN unreachable)"
    return ""


def bayesmeta_per_fit(n=50):
    why = bayesmeta_missing()
    if why:
        return None, why
    y, v = simulated(n, seed=3)
    with tempfile.TemporaryDirectory() as tmp:
        np.savetxt(os.path.join(tmp, "y.csv"), y, delimiter=",")
        np.savetxt(os.path.join(tmp, "v.csv"), v, delimiter=",")
        code = (f"library(bayesmeta); y <- as.matrix(read.csv('{tmp}/y.csv', header=FALSE)); "
                f"v <- as.matrix(read.csv('{tmp}/v.csv', header=FALSE)); t0 <- Sys.time(); "
                "for (i in 1:nrow(y)) { b <- bayesmeta(y[i,], sqrt(v[i,]), "
                "mu.prior.mean=0, mu.prior.sd=4, tau.prior=function(t) dhalfnormal(t, 0.5)); "
                "b$qposterior(mu.p=c(0.025,0.5,0.975)); b$qposterior(tau.p=c(0.025,0.5,0.975)) }; "
                "cat(as.numeric(Sys.time() - t0, units='secs') / nrow(y))")
        r = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True)
    return float(r.stdout.strip()), ""


def pymc_fits(n):
    """(y, v) rows fitted by the PyMC engine one at a time."""
    y, v = simulated(n, seed=4)
    return [(y[i], v[i], i) for i in range(n)]


def pymc_one(y, v, seed):
    from bayes_pip.engines.base import SamplerSettings
    from bayes_pip.engines.normal_nuts import sample_normal_normal

    idata = sample_normal_normal(y, v, PRIOR, seed=seed, settings=SamplerSettings(),
                                 study_names=[str(i) for i in range(len(y))])
    return float(idata.posterior["mu"].median())


def exact_chunk(y, v):
    from bayes_pip.api import exact_batch

    return exact_batch(y, v, prior=PRIOR).mu.values


def main():
    warnings.filterwarnings("ignore")
    print(f"bayes_pip batched exact engine benchmark (k = {K}; {os.cpu_count()} cores)\n")
    b = batched_in_child(N_BATCH)
    per_batch = b["seconds"] / N_BATCH
    print(f"1. batched exact, {N_BATCH:,} meta-analyses: {b['seconds']:6.1f} s "
          f"({per_batch * 1e6:.0f} us each), peak memory {b['peak_mib']:.0f} MiB "
          f"({b['before_mib']:.0f} MiB before the batch), {b['failed']} failed")
    one = per_fit_exact()
    print(f"2. one-at-a-time exact engine:  {one * 1e3:7.2f} ms per fit   "
          f"ratio {one / per_batch:,.0f}x slower than batched")
    r_fit, why = bayesmeta_per_fit()
    if r_fit is None:
        print(f"3. R bayesmeta per fit:         skipped ({why})")
    else:
        print(f"3. R bayesmeta per fit:         {r_fit * 1e3:7.2f} ms per fit   "
              f"ratio {r_fit / per_batch:,.0f}x slower than batched")
    jobs = pymc_fits(8)
    pymc_one(*jobs[0])  # load the compiled model
    t0 = time.perf_counter()
    serial = [pymc_one(*j) for j in jobs]
    t_pymc = time.perf_counter() - t0
    per_pymc = t_pymc / len(jobs)
    print(f"4. PyMC engine per fit:         {per_pymc * 1e3:7.0f} ms per fit   "
          f"ratio {per_pymc / per_batch:,.0f}x slower than batched")
    try:
        from bayes_pip.cluster import client_for  # noqa: F401  (Dask installed?)
        import distributed  # noqa: F401
    except ImportError:
        print("5. Dask: skipped (pip install -e '.[dask]')")
        return
    from bayes_pip.cluster import run_tasks

    t0 = time.perf_counter()
    spread = run_tasks("local", pymc_one, jobs, [str(j[2]) for j in jobs])
    t_dask = time.perf_counter() - t0
    same = [value for _, value in spread] == serial
    print(f"5. Dask LocalCluster ({os.cpu_count()} workers), {len(jobs)} PyMC fits: "
          f"{t_dask:.1f} s vs serial {t_pymc:.1f} s: ratio {t_pymc / t_dask:.2f}x "
          f"(cluster start-up included; results identical: {same})")
    y, v = simulated(N_BATCH)
    t0 = time.perf_counter()
    exact_chunk(y, v)
    t_serial = time.perf_counter() - t0
    chunks = [(y[i:i + 25_000], v[i:i + 25_000]) for i in range(0, N_BATCH, 25_000)]
    t0 = time.perf_counter()
    run_tasks("local", exact_chunk, chunks, [str(i) for i in range(len(chunks))])
    t_dask = time.perf_counter() - t0
    print(f"   batched exact, {N_BATCH:,} meta-analyses in {len(chunks)} chunks: {t_dask:.1f} s "
          f"vs serial {t_serial:.1f} s (numba already uses both cores): ratio "
          f"{t_serial / t_dask:.2f}x")


if __name__ == "__main__":
    main()
