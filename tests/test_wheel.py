"""`pip install .` (a real wheel, not the editable checkout) carries the bundled priors and data:
build the wheel, install it into a fresh virtual environment that borrows this environment's
third-party packages, and run `list` and `fit --engine exact` from a directory outside the
repository."""

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))
from compare import assert_matches  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp / "dist"), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("bayes_pip-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")],
                   check=True)
    python = tmp / "venv" / "bin" / "python"
    target = subprocess.run([str(python), "-c", "import sysconfig; "
                             "print(sysconfig.get_paths()['purelib'])"],
                            check=True, capture_output=True, text=True).stdout.strip()
    # third-party packages from this environment, appended after the venv's own site-packages
    # (a plain path: the editable install's finder in this environment is not loaded)
    Path(target, "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--target", target, str(wheel)], check=True, capture_output=True)
    return python, tmp


def run(python, tmp, *args):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(python), "-m", "bayes_pip", *args], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=300)


def test_wheel_carries_priors_and_data(wheel_env):
    python, tmp = wheel_env
    where = subprocess.run([str(python), "-c", "import bayes_pip.bundled as b; "
                            "print(b.bundled_path('models'))"], cwd=tmp, capture_output=True,
                           text=True, check=True).stdout.strip()
    assert Path(where).parts[-3:] == ("bayes_pip", "_bundled", "models")
    assert str(tmp) in where  # the installed copy, not the checkout
    listing = run(python, tmp, "list", "--json")
    assert listing.returncode == 0, listing.stderr
    outcomes = {r["outcome"]: r for r in json.loads(listing.stdout)}
    assert outcomes["secure_attachment_post"]["k"] == 2
    assert outcomes["attachment_category_post"]["k"] == 2    # data/pip/categories.csv
    rule = subprocess.run([str(python), "-c", "from bayes_pip.certainty import load_rule; "
                           "r = load_rule(); print(r.label, r.path)"], cwd=tmp,
                          capture_output=True, text=True, check=True).stdout.split()
    assert rule[:2] == ["bayes-grade", "v1"] and str(tmp) in rule[2]   # the installed rule
    fit = run(python, tmp, "fit", "parent_reported_depression_vs_alternative", "--engine",
              "exact", "--json")
    assert fit.returncode == 0, fit.stderr
    s = json.loads(fit.stdout)
    # the same numbers as the checkout (tests/golden, written before the data moved)
    golden = json.loads((ROOT / "tests" / "golden" / "fit__pip__parent_reported_depression_"
                         "vs_alternative__exact__auto__pip.json").read_text())
    assert_matches(s, golden)
