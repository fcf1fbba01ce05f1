"""The batched exact engine's cost per meta-analysis: this checkout against an earlier revision,
in one run.

    python benchmarks/batch_revisions.py [REV]    (default REV: 198f301, before the batched
                                                   model comparison and the adaptive quadrature)

The earlier revision is checked out into a temporary git worktree. Each configuration runs in a
fresh child process (same interpreter and packages, PYTHONPATH set to the tree), after a warm-up
batch that fills numba's cache, on one thread (NUMBA_NUM_THREADS=1, so CPU time is the work
itself) and on all cores; each child times the batch three times and reports the fastest (the
machine's speed drifts by up to a third between runs). Simulated meta-analyses: mu ~ N(0, 0.3^2), tau 0.2, v_i ~ U(0.02, 0.3),
prior N(0, 4^2) on mu and half-normal(0.5) on tau; three quantiles of mu, tau and a new study.
Prints microseconds per meta-analysis (CPU and wall) and the ratio old / new.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N = {2: 20_000, 6: 20_000, 30: 5_000}

CHILD = textwrap.dedent("""
    import json, os, sys, time
    import numpy as np
    from types import SimpleNamespace
    from bayes_pip.api import exact_batch
    from bayes_pip.prior_families import HalfNormal, Normal
    n, k, extra = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
    prior = SimpleNamespace(mu=Normal(0, 4), tau=HalfNormal(0.5))
    rng = np.random.default_rng(1)
    v = rng.uniform(0.02, 0.3, (n, k))
    y = rng.normal(rng.normal(0, 0.3, (n, 1)), np.sqrt(v + 0.04))
    if extra:
        from bayes_pip.engines.batch import exact_batch as run
        call = lambda a, b: run(a, b, prior=prior, **extra)
    else:
        call = lambda a, b: exact_batch(a, b, prior=prior)
    call(y[:50], v[:50])
    cpu, wall = [], []
    for _ in range(3):
        c0, t0 = os.times(), time.perf_counter()
        out = call(y, v)
        c1, t1 = os.times(), time.perf_counter()
        cpu.append((c1.user - c0.user) + (c1.system - c0.system))
        wall.append(t1 - t0)
    print(json.dumps({"cpu": min(cpu) / n, "wall": min(wall) / n,
                      "failed": int((out.error.values != "").sum())}))
""")


def child(tree: Path, n: int, k: int, extra: dict, threads: int | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if threads:
        env["NUMBA_NUM_THREADS"] = str(threads)
    r = subprocess.run([sys.executable, "-c", CHILD, str(n), str(k), json.dumps(extra)],
                       cwd=tree, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{tree}: k = {k} {extra} failed: {r.stderr[-800:]}")
    return json.loads(r.stdout)


def main() -> None:
    rev = sys.argv[1] if len(sys.argv) > 1 else "198f301"
    configs = [("posteriors (default, tol 1e-10)", {}),
               ("posteriors, tol 1e-8", {"tol": 1e-8}),
               ("+ model comparison (tol 1e-10)", {"evidence": True})]
    with tempfile.TemporaryDirectory(prefix="bayes_pip_rev_") as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), rev],
                       check=True, capture_output=True)
        try:
            print(f"batched exact engine, microseconds per meta-analysis: this checkout vs {rev} "
                  f"({os.cpu_count()} cores)")
            print(f"{'k':>3s} {'threads':>7s} {'configuration':34s} {'CPU now':>8s} "
                  f"{'CPU ' + rev:>12s} {'ratio':>6s} {'wall now':>9s} {'wall ' + rev:>12s} "
                  f"{'ratio':>6s}")
            for k, n in N.items():
                for threads in (1, None):
                    before = child(old, n, k, {}, threads)
                    for name, extra in configs:
                        now = child(ROOT, n, k, extra, threads)
                        assert now["failed"] == 0 and before["failed"] == 0
                        print(f"{k:3d} {threads or os.cpu_count():7d} {name:34s} "
                              f"{now['cpu'] * 1e6:8.0f} {before['cpu'] * 1e6:12.0f} "
                              f"{before['cpu'] / now['cpu']:5.1f}x {now['wall'] * 1e6:9.0f} "
                              f"{before['wall'] * 1e6:12.0f} {before['wall'] / now['wall']:5.1f}x",
                              flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           capture_output=True)


if __name__ == "__main__":
    main()
