"""Shared test helpers: reference values, tolerances and a CLI runner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# reproducible property tests: the same examples on every run (CI must not flake)
settings.register_profile("bayes_pip", derandomize=True, max_examples=200, deadline=None)
settings.load_profile("bayes_pip")

HERE = Path(__file__).parent
REFERENCE = HERE / "reference"

# Code that runs every numba kernel with the types the tests use, so that numba's on-disk cache
# holds them: the binomial-exact kernels (both links, and the Bayes factors), and the batched
# exact engine with its model comparison plus the fused DerSimonian-Laird pass.
WARM_UP = (
    "from bayes_pip.cli import main\n"
    "crins = {crins!r}\n"
    "main(['fit', 'acute_rejection', '--data', crins, '--engine', 'binomial-exact'])\n"
    "main(['fit', 'secure_attachment_post', '--engine', 'binomial-exact'])\n"
    "main(['bma', 'acute_rejection', '--data', crins])\n",
    "import numpy as np\n"
    "import bayes_pip as bp\n"
    "from bayes_pip.dl_fused import fused_rows\n"
    "y = np.array([[0.1, 0.3, np.nan], [0.2, -0.1, 0.4]])\n"
    "bp.exact_batch(y, np.full((2, 3), 0.04), prior='halfnormal-0.5', evidence=True)\n"
    "fused_rows(np.zeros((2, 3)), np.ones((2, 3)), None, 1.96)\n",
)


def pytest_configure(config):
    """With xdist (-n), the controller compiles the numba kernels into numba's on-disk cache
    before the workers start, in two processes at once (about 17 s in a fresh clone), so that
    the workers load them instead of each compiling them again (about 30 s of CPU per process;
    a warm cache makes this about 2 s). The tests do not depend on it: a worker compiles what it
    does not find."""
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    crins = str(HERE.parent / "data" / "crins2014")
    procs = [subprocess.Popen([sys.executable, "-c", code.format(crins=crins)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              cwd=HERE.parent) for code in WARM_UP]
    for proc in procs:
        try:
            proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()

# One table of tolerances, named by what they compare (metafor's habit).
TOL = {
    "metafor": 1e-10,       # our NumPy vs metafor 3.8-1 printed with 15 significant digits
    "printed4": 5e-5,       # a value printed to 4 decimals
    "vectorised": 1e-12,    # vectorised vs looped NumPy
}


@pytest.fixture(scope="session")
def metafor_cases() -> dict:
    """Cases printed by tests/reference/metafor_reference.R (R 4.2.2, metafor 3.8-1)."""
    return json.loads((REFERENCE / "metafor_values.json").read_text())["cases"]


def run_main(*args: str):
    """Run the CLI's ``main`` in this process (its argument parsing, error handling and exit
    codes, without the 2 s start-up of a new interpreter); returns what run_cli returns."""
    import contextlib
    import io
    from types import SimpleNamespace

    from bayes_pip.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:   # argparse usage errors
            code = exc.code
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


@pytest.fixture(scope="session")
def exact_report(tmp_path_factory):
    """`report --all --engine exact` on the bundled data, run once per test session (the first
    xdist worker to ask runs it, under a file lock; the others read its files) and shared
    (read-only) by the tests that read its files or console output: (result, output dir)."""
    import fcntl
    from types import SimpleNamespace

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if base.name.startswith("popen-gw") else base   # one per session
    root = shared / "exact_report"
    root.mkdir(exist_ok=True)
    with open(shared / "exact_report.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "result.json").exists():
            r = run_main("report", "--all", "--engine", "exact", "--out", str(root / "r"))
            assert r.returncode == 0, r.stderr
            (root / "result.json").write_text(json.dumps(vars(r)))
    r = SimpleNamespace(**json.loads((root / "result.json").read_text()))
    return r, root / "r"


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600):
    """Run `python -m bayes_pip ARGS` as a user would; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "bayes_pip", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)
