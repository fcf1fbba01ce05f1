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
    """`report --all --engine exact` on the bundled data, run once per test process and shared
    (read-only) by the tests that read its files or console output: (result, output dir)."""
    out = tmp_path_factory.mktemp("exact_report") / "r"
    r = run_main("report", "--all", "--engine", "exact", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return r, out


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600):
    """Run `python -m bayes_pip ARGS` as a user would; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "bayes_pip", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)
