"""Cold-start timings of this checkout against an earlier revision, in one run.

    python benchmarks/compare_revisions.py [REV] [--quick] [--select TEXT]
    (default REV: 86b51e9, before the reshape; --select: only the commands whose name contains
    TEXT)

The earlier revision is checked out into a temporary git worktree and run from there with
PYTHONPATH (same interpreter, same installed packages); each command runs alternately for both,
5 times (the multinomial fit and the two `report --all`: 2 times), after one warm-up run each (numba's
on-disk cache filled). Prints medians of wall and CPU time (user + system of the child) and
their ratios, and `python -c "import pymc"` as the floor of any command that samples.
"""

from __future__ import annotations

import os
import resource
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
        "fit --engine binomial-exact (PIP secure, k = 2)": ["fit", "secure_attachment_post",
                                                            "--engine", "binomial-exact"],
        "fit --engine binomial-exact (Crins, k = 6)": ["fit", "acute_rejection", "--data",
                                                       crins, "--engine", "binomial-exact"],
        "sweep (Crins, pymc, every prior)": ["sweep", "--data", crins, "--engine", "pymc"],
        "bma (Crins, binomial likelihood)": ["bma", "acute_rejection", "--data", crins],
        "list": ["list"],
        "fit (multinomial, attachment categories)": ["fit", "attachment_category_post"],
        "report --all --engine exact": ["report", "--all", "--engine", "exact", "--out",
                                        "REPORT_DIR"],
        "report --all": ["report", "--all", "--out", "REPORT_DIR"],
    }


HEAVY = {"fit (multinomial, attachment categories)", "report --all", "report --all --engine exact"}


class Failed(Exception):
    """A command a revision cannot run (e.g. an engine it did not have yet)."""


def timed(tree: Path, args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one fresh process."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with tempfile.TemporaryDirectory() as out:
        args = [out if a == "REPORT_DIR" else a for a in args]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "bayes_pip", *args], cwd=tree, env=env,
                           capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise Failed(f"{args[0]} failed: {r.stderr.strip().splitlines()[-1][:120]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, cpu


def import_pymc() -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import pymc"], capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (time.perf_counter() - start,
            after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def main() -> None:
    argv = sys.argv[1:]
    select = ""
    if "--select" in argv:
        i = argv.index("--select")
        select = argv[i + 1]
        del argv[i:i + 2]
    args = [a for a in argv if not a.startswith("--")]
    quick = "--quick" in argv
    rev = args[0] if args else "86b51e9"
    with tempfile.TemporaryDirectory(prefix="bayes_pip_rev_") as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), rev],
                       check=True, capture_output=True)
        try:
            new_cmds, old_cmds = commands(ROOT), commands(old)
            print(f"cold start, medians: this checkout vs {rev} ({os.cpu_count()} cores)")
            print(f"{'command':48s} {'wall now':>9s} {rev:>9s} {'ratio':>6s}   "
                  f"{'CPU now':>8s} {rev:>9s} {'ratio':>6s}")
            floor = [import_pymc() for _ in range(3)]
            w, c = (statistics.median(x) for x in zip(*floor))
            label = 'python -c "import pymc" (reference)'
            print(f"{label:48s} {w:8.2f}s {'':>9s} {'':>6s}   {c:7.2f}s")
            for name in new_cmds:
                if (quick and name in HEAVY) or select not in name:
                    continue
                timed(ROOT, new_cmds[name])
                try:
                    timed(old, old_cmds[name])
                except Failed as exc:     # the older revision cannot run it: this one alone
                    runs = [timed(ROOT, new_cmds[name])
                            for _ in range(2 if name in HEAVY else REPEATS)]
                    wa, ca = (statistics.median(x) for x in zip(*runs))
                    print(f"{name:48s} {wa:8.2f}s {'n/a':>9s} {'':>6s}   {ca:7.2f}s "
                          f"{'n/a':>9s}   ({rev}: {exc})", flush=True)
                    continue
                now, before = [], []
                for _ in range(2 if name in HEAVY else REPEATS):
                    now.append(timed(ROOT, new_cmds[name]))
                    before.append(timed(old, old_cmds[name]))
                (wa, ca), (wb, cb) = ([statistics.median(x) for x in zip(*runs)]
                                      for runs in (now, before))
                print(f"{name:48s} {wa:8.2f}s {wb:8.2f}s {wa / wb:5.2f}x   "
                      f"{ca:7.2f}s {cb:8.2f}s {ca / cb:5.2f}x", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           capture_output=True)


if __name__ == "__main__":
    main()
