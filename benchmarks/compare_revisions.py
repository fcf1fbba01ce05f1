"""Cold-start timings of this checkout against an earlier revision, in one run.

    python benchmarks/compare_revisions.py [REV]     (default REV: 86b51e9, before the reshape)

The earlier revision is checked out into a temporary git worktree and run from there with
PYTHONPATH (same interpreter, same installed packages); each command runs alternately for both,
5 times, after one warm-up run each (numba's on-disk cache filled). Prints medians and ratios.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 5


def crins_dir(tree: Path) -> Path:
    for candidate in (tree / "data" / "crins2014", tree / "bayes_pip" / "datasets" / "crins2014"):
        if candidate.is_dir():
            return candidate
    raise SystemExit(f"no crins2014 data in {tree}")


def commands(tree: Path) -> dict[str, list[str]]:
    crins = str(crins_dir(tree))
    return {
        "fit --engine pymc (k = 1)": ["fit", "parent_reported_depression_vs_alternative",
                                      "--engine", "pymc"],
        "fit --engine pymc (Crins, k = 6)": ["fit", "acute_rejection", "--data", crins,
                                             "--engine", "pymc"],
        "fit --engine exact": ["fit", "acute_rejection", "--data", crins, "--engine", "exact"],
        "sweep (Crins, pymc, every prior)": ["sweep", "--data", crins, "--engine", "pymc"],
        "list": ["list"],
    }


def timed(tree: Path, args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "bayes_pip", *args], cwd=tree, env=env,
                       capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"{tree}: {args} failed: {r.stderr[-500:]}")
    return elapsed


def main() -> None:
    rev = sys.argv[1] if len(sys.argv) > 1 else "86b51e9"
    with tempfile.TemporaryDirectory(prefix="bayes_pip_rev_") as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), rev],
                       check=True, capture_output=True)
        try:
            new_cmds, old_cmds = commands(ROOT), commands(old)
            print(f"cold start, median of {REPEATS} runs: this checkout vs {rev}")
            print(f"{'command':36s} {'now':>8s} {rev:>8s} {'ratio':>7s}")
            for name in new_cmds:
                timed(ROOT, new_cmds[name])
                timed(old, old_cmds[name])
                now, before = [], []
                for _ in range(REPEATS):
                    now.append(timed(ROOT, new_cmds[name]))
                    before.append(timed(old, old_cmds[name]))
                a, b = statistics.median(now), statistics.median(before)
                print(f"{name:36s} {a:7.2f}s {b:7.2f}s {a / b:6.2f}x")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           capture_output=True)


if __name__ == "__main__":
    main()
