"""The data schema names arms by role (_t intervention, _c comparator): old names are still
read with a one-line warning naming the file, and every JSON record says its schema version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bayes_pip.record import SCHEMA_VERSION
from conftest import run_main

DATA = Path(__file__).resolve().parents[1] / "data"
OLD = {f"{f}_{new}": f"{f}_{old}" for f in ("events", "n", "mean", "sd", "arm")
       for old, new in (("pip", "t"), ("ctrl", "c"))}


def old_names_copy(tmp_path, name):
    """A copy of a bundled data set written with the old column names and arm codes."""
    d = tmp_path / name
    shutil.copytree(DATA / name, d)
    studies = (d / "studies.csv").read_text().splitlines(keepends=True)
    header = ",".join(OLD.get(c, c) for c in studies[0].rstrip("\n").split(","))
    (d / "studies.csv").write_text(header + "\n" + "".join(studies[1:]))
    if (d / "constraints.csv").exists():
        text = (d / "constraints.csv").read_text()
        lines = text.splitlines(keepends=True)
        fixed = [lines[0]] + [",".join(p if i != 2 else {"t": "pip", "c": "ctrl"}.get(p, p)
                                       for i, p in enumerate(line.split(",", 3)))
                              for line in lines[1:]]
        (d / "constraints.csv").write_text("".join(fixed))
    return d


def test_old_column_names_are_read_with_one_warning(tmp_path):
    d = old_names_copy(tmp_path, "crins2014")
    assert "events_pip" in (d / "studies.csv").read_text()
    old = run_main("fit", "acute_rejection", "--data", str(d), "--engine", "exact", "--json")
    new = run_main("fit", "acute_rejection", "--data", str(DATA / "crins2014"), "--engine",
                   "exact", "--json")
    assert old.returncode == 0 == new.returncode
    warning = old.stderr.strip().splitlines()
    assert len(warning) == 1 and str(d / "studies.csv") in warning[0]
    assert "old column names events_pip, n_pip, events_ctrl, n_ctrl, mean_pip" \
        in warning[0] and "deprecated" in warning[0]
    a, b = json.loads(old.stdout), json.loads(new.stdout)
    assert a["effect"] == b["effect"] and a["tau"] == b["tau"]
    assert new.stderr == ""


def test_old_arm_codes_in_constraints_are_read_with_one_warning(tmp_path):
    d = old_names_copy(tmp_path, "pip")
    assert ",Cicchetti 1999a,pip,n," in (d / "constraints.csv").read_text()
    old = run_main("fit", "secure_attachment_post", "--data", str(d), "--engine", "exact",
                   "--json")
    new = run_main("fit", "secure_attachment_post", "--engine", "exact", "--json")
    assert old.returncode == 0 == new.returncode
    lines = old.stderr.strip().splitlines()
    assert any(str(d / "constraints.csv") in line and "pip/ctrl read as t/c" in line
               for line in lines)
    assert json.loads(old.stdout)["effect"] == json.loads(new.stdout)["effect"]


def test_a_column_under_both_names_is_refused(tmp_path):
    d = tmp_path / "both"
    shutil.copytree(DATA / "crins2014", d)
    text = (d / "studies.csv").read_text().splitlines()
    (d / "studies.csv").write_text("\n".join([text[0] + ",n_pip"]
                                             + [line + ",1" for line in text[1:]]) + "\n")
    r = run_main("list", "--data", str(d))
    assert r.returncode == 2 and "'n_pip' and 'n_t' are the same column" in r.stderr
    assert r.stderr.count("\n") == 1


def test_every_json_record_leads_with_its_schema_version(tmp_path):
    for args in (("fit", "parent_reported_depression_vs_alternative", "--engine", "exact"),
                 ("dl", "secure_attachment_post"), ("list",),
                 ("compare-priors", "secure_attachment_post", "--engine", "exact")):
        out = json.loads(run_main(*args, "--json").stdout)
        records = out if isinstance(out, list) else [out]
        assert records and all(next(iter(r)) == "schema_version"
                               and r["schema_version"] == SCHEMA_VERSION for r in records), args
        # records nested inside a record do not repeat it
        assert all("schema_version" not in json.dumps(v) for r in records
                   for k, v in r.items() if k != "schema_version")
