"""Write the pinned CLI outputs of tests/golden/cases.py (run once, before code moves):

    python tests/golden/make_golden.py [NAME-PART ...]

With arguments, only the cases whose file name contains one of them are rewritten (re-pin what
an intended change of output touched, and say so in the commit).
"""

import contextlib
import io
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from cases import all_cases, argv  # noqa: E402

from bayes_pip.cli import main  # noqa: E402
from bayes_pip.data import bundled_data_dir  # noqa: E402


def data_dir(name):
    return bundled_data_dir().parent / name


only = sys.argv[1:]
for kind, case, filename in all_cases():
    if only and not any(part in filename for part in only):
        continue
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv(kind, case, data_dir))
    assert code == 0, (case, code)
    (HERE / filename).write_text(out.getvalue(), encoding="utf-8")
    print(filename)
