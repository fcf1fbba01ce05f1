"""The CLI's JSON is pinned (tests/golden/, written by make_golden.py before the package was
reshaped): moving code must not change a key, a label or a number the tool prints. Numbers are
compared with the tolerances of tests/golden/compare.py (floating-point reordering by another
library build; Monte Carlo error where a library change moves MCMC draws)."""

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
sys.path.insert(0, str(GOLDEN))

from cases import all_cases, argv  # noqa: E402
from compare import assert_matches  # noqa: E402

from bayes_pip.cli import main  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"


def data_dir(name):
    from bayes_pip.data import bundled_data_dir

    return bundled_data_dir().parent / name


# binomial-normal fits take 10-30 s each: they run with the slow checks (CI runs both)
@pytest.mark.parametrize("kind,case,filename", [
    pytest.param(*c, marks=pytest.mark.slow) if "__binomial__" in c[2] else c
    for c in all_cases()], ids=[c[2][:-5] for c in all_cases()])
def test_output_matches_pinned(kind, case, filename):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv(kind, case, data_dir))
    assert code == 0
    assert_matches(json.loads(out.getvalue()),
                   json.loads((GOLDEN / filename).read_text(encoding="utf-8")))
