"""A whole database of meta-analyses in one sitting: the `database` command against its
alternatives, one run.

    python benchmarks/database.py [N]        # N meta-analyses, default 100,000

Simulates N meta-analyses with a realistic size distribution (k log-normal with median 4,
rounded, clipped to 2..100: most have 2 to 6 studies, a few dozens; mu ~ N(0, 0.3^2),
tau ~ |N(0, 0.2^2)|, v ~ U(0.01, 0.3); SMD, benefit higher, default prior set), writes them as
one long CSV and prints, each in this run:
1. `python -m bayes_pip database` over the file (a fresh process, as a user runs it): wall and
   CPU time, peak memory, throughput per core (with model comparison, default tolerance);
2. the same file through the one-at-a-time exact engine (`exact_posterior` plus `evidence`, the
   same summaries) timed on a sample of 300 of its meta-analyses and scaled to N: time and ratio;
3. R bayesmeta per fit on the same sample, when R and bayesmeta are installed (skipped with the
   reason otherwise).
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

N = 100_000
SAMPLE = 300


def simulated(n, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    k = np.clip(np.rint(rng.lognormal(np.log(4), 0.8, n)), 2, 100).astype(int)
    meta = np.repeat(np.arange(n), k)
    mu = rng.normal(0, 0.3, n)[meta]
    tau = np.abs(rng.normal(0, 0.2, n))[meta]
    v = rng.uniform(0.01, 0.3, len(meta))
    y = rng.normal(mu, np.sqrt(v + tau ** 2))
    return pd.DataFrame({"meta_id": [f"MA{i:06d}" for i in meta], "y": y, "v": v})


def database_command(path, out):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "bayes_pip", "database", str(path), "--out",
                        str(out), "--measure", "SMD", "--benefit", "higher"],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"database command failed: {r.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss / 1024, json.loads((out / "run.json").read_text())


def one_at_a_time(sample: pd.DataFrame):
    from bayes_pip.database import resolved_prior
    from bayes_pip.engines import evidence as ev
    from bayes_pip.engines.exact import exact_posterior

    prior = resolved_prior(None, "SMD", "higher", None)
    groups = [(g.y.to_numpy(), g.v.to_numpy()) for _, g in sample.groupby("meta_id", sort=False)]
    t0 = time.perf_counter()
    for y, v in groups:
        p = exact_posterior(y, v, prior.mu, prior.tau)
        [p.quantile(t, q) for t in ("mu", "predict", "tau") for q in (0.025, 0.5, 0.975)]
        p.sf("mu", 0.0), p.sf("predict", 0.0)
        ev.evidence(y, v, prior.mu, prior.tau)
    return (time.perf_counter() - t0) / len(groups)


def bayesmeta_per_fit(sample: pd.DataFrame):
    from batch import bayesmeta_missing   # benchmarks/batch.py

    why = bayesmeta_missing()
    if why:
        return None, why
    with tempfile.TemporaryDirectory() as tmp:
        sample.to_csv(os.path.join(tmp, "s.csv"), index=False)
        code = (f"library(bayesmeta); d <- read.csv('{tmp}/s.csv'); g <- split(d, d$meta_id); "
                "t0 <- Sys.time(); for (x in g) { b <- bayesmeta(x$y, sqrt(x$v), "
                "mu.prior.mean=0, mu.prior.sd=4, tau.prior=function(t) dhalfnormal(t, 0.5)); "
                "b$qposterior(mu.p=c(0.025,0.5,0.975)); b$qposterior(tau.p=c(0.025,0.5,0.975)); "
                "b$bayesfactor }; cat(as.numeric(Sys.time() - t0, units='secs') / length(g))")
        r = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True)
    return float(r.stdout.strip()), ""


def main():
    warnings.filterwarnings("ignore")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else N
    table = simulated(n)
    k = table.groupby("meta_id", sort=False).size()
    print(f"bayes_pip whole-database benchmark: {n:,} simulated meta-analyses, "
          f"{len(table):,} studies (k median {k.median():.0f}, mean {k.mean():.1f}, "
          f"max {k.max()}); {os.cpu_count()} cores\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "metas.csv")
        table.to_csv(path, index=False)
        size = os.path.getsize(path) / 2 ** 20
        wall, cpu, peak, run = database_command(path, __import__("pathlib").Path(tmp) / "out")
    per_ma = wall / n
    print(f"1. database command ({size:.1f} MB CSV, model comparison, tol "
          f"{run['settings']['tol']:g}): {wall:.1f} s wall, {cpu:.1f} s CPU, peak memory {peak:.0f} MiB, "
          f"{run['without_posterior']} without a posterior")
    print(f"   throughput {n / cpu:,.0f} meta-analyses per CPU second "
          f"({cpu / n * 1e3:.2f} ms CPU each, start-up included)")
    ids = k.index.to_series().sample(min(SAMPLE, n), random_state=2)
    sample = table[table.meta_id.isin(set(ids))]
    one = one_at_a_time(sample)
    print(f"2. one-at-a-time exact engine + bma evidence: {one * 1e3:.2f} ms per meta-analysis "
          f"(sample of {len(ids)}), {one * n / 60:.1f} min for {n:,}; "
          f"ratio {one / per_ma:,.0f}x the database command's wall time")
    r_fit, why = bayesmeta_per_fit(sample)
    if r_fit is None:
        print(f"3. R bayesmeta per fit: skipped ({why})")
    else:
        print(f"3. R bayesmeta per fit: {r_fit * 1e3:.1f} ms, {r_fit * n / 3600:.2f} h for "
              f"{n:,}; ratio {r_fit / per_ma:,.0f}x the database command's wall time")


if __name__ == "__main__":
    main()
