"""The exact binomial-normal engine against binomial-normal NUTS, measured in one run.

    python benchmarks/binomial.py

Per data set (the reconstructed PIP secure-attachment tables, k = 2; Crins 2014 acute
rejection, k = 6; the first 10 and all 24 trials of dat.collins1985a deaths, with double zeros):

- ``binomial-exact``: a full `fit` (posterior, every summary the tool prints, each study's
  shrunken effect) in a warm process, best of 3; and `python -m bayes_pip fit` in a new process
  for the bundled data sets (cold: imports and numba's cached kernels included; the collins
  subsets exist only in this script);
- ``binomial``: the NUTS engine on the same model and prior (nutpie, 4 chains x 2,000 draws,
  the tool's defaults), in the same warm process after one compile, with the Monte Carlo SE of
  its posterior median of mu (the exact engine has none);
- the ratio NUTS / exact at the tool's default draws, and at equal accuracy: the time NUTS
  would need for a Monte Carlo SE of 0.001 on the median of mu (extrapolated from this run as
  time x (MCSE / 0.001)^2, since the MCSE falls as one over the square root of the draws; the
  exact engine's error is below 1e-6 there).

``--exact-only``: the exact engine's warm times alone (no NUTS, no cold runs), e.g. to compare
revisions: ``PYTHONPATH=OTHER_CHECKOUT python benchmarks/binomial.py --exact-only``.

- ``NN exact``: the normal-normal exact engine (``--engine exact``, the model bayesmeta fits) on
  the same outcome in the same process, as the per-outcome yardstick in place of bayesmeta,
  which is not installable here (not on Debian, CRAN unreachable), so is not timed.

The cold column is left blank ("-") for the collins subsets, which exist only in this script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import bayes_pip as bp

ROOT = Path(__file__).resolve().parents[1]
COLLINS = json.loads((ROOT / "tests" / "reference" / "rare_events_values.json").read_text())


def collins(k: int):
    """dat.collins1985a deaths (first k trials) as a data set (OR, lower is better)."""
    outcomes = pd.DataFrame([{"outcome": "deaths", "label": "Deaths",
                              "comparison": "diuretic_vs_control", "measure": "OR",
                              "benefit": "lower"}])
    rows = pd.DataFrame({"outcome": "deaths",
                         "study": [f"{t} {i}" for i, t in enumerate(COLLINS["trial"])],
                         **{c: COLLINS[c] for c in ("events_t", "n_t", "events_c",
                                                    "n_c")},
                         "source": "metafor dat.collins1985a"}).iloc[:k]
    return bp.load(outcomes=outcomes, studies=rows)


CASES = [("PIP secure attachment (reconstructed, RR)", lambda: bp.load(),
          "secure_attachment_post", 2, []),
         ("Crins 2014 acute rejection (OR)", lambda: bp.load(ROOT / "data" / "crins2014"),
          "acute_rejection", 6, ["--data", str(ROOT / "data" / "crins2014")]),
         ("dat.collins1985a deaths, first 10 trials (OR)", lambda: collins(10), "deaths", 10,
          None),
         ("dat.collins1985a deaths, 24 trials (OR)", lambda: collins(24), "deaths", 24, None)]


def best_of(func, n=3):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - t0)
    return min(times), out


def cold(args) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bayes_pip", "fit", *args, "--engine",
                    "binomial-exact"], check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - t0


def exact_only():
    print(f"exact binomial-normal engine, warm fit (best of 7), bayes_pip from "
          f"{Path(bp.__file__).parents[1]}")
    for title, load, outcome, k, _ in CASES:
        ds = load()
        bp.fit(ds, outcome, engine="binomial-exact")
        warm, _ = best_of(lambda: bp.fit(ds, outcome, engine="binomial-exact"), n=7)
        print(f"{title:48s} k = {k:2d} {warm:7.3f}s", flush=True)


def main():
    if "--exact-only" in sys.argv:
        return exact_only()
    import arviz as az

    print(f"exact binomial-normal engine vs binomial-normal NUTS ({os.cpu_count()} cores)\n")
    print(f"{'data':48s} {'k':>3s} {'exact warm':>11s} {'exact cold':>11s} {'NN exact':>9s} "
          f"{'NUTS':>8s} {'NUTS/exact':>11s} {'MCSE 0.001':>11s} {'ratio':>7s}  mu median: exact "
          "vs NUTS (MCSE)")
    for title, load, outcome, k, cli in CASES:
        ds = load()
        bp.fit(ds, outcome, engine="binomial-exact")          # kernels loaded
        warm, exact = best_of(lambda: bp.fit(ds, outcome, engine="binomial-exact"))
        cold_text = f"{cold([outcome, *cli]):10.2f}s" if cli is not None else f"{'-':>11s}"
        normal, _ = best_of(lambda: bp.fit(ds, outcome, engine="exact"))
        bp.fit(ds, outcome, engine="binomial", seed=1)        # compile once
        t0 = time.perf_counter()
        nuts = bp.fit(ds, outcome, engine="binomial", seed=2)
        nuts_time = time.perf_counter() - t0
        mcse = float(az.mcse(nuts.idata, var_names=["mu"], method="quantile", prob=0.5)["mu"])
        sampled = float(np.median(nuts.idata.posterior["mu"].values))
        equal = nuts_time * (mcse / 0.001) ** 2
        print(f"{title:48s} {k:3d} {warm:10.2f}s {cold_text} {normal:8.2f}s {nuts_time:7.1f}s "
              f"{nuts_time / warm:10.1f}x {equal:10.0f}s {equal / warm:6.0f}x  "
              f"{exact.posterior.quantile('mu', 0.5):.4f} vs {sampled:.4f} ({mcse:.4f})")


if __name__ == "__main__":
    main()
