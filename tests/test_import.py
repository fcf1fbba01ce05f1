"""RevMan import: the Fleiss 1993 example review (distributed with R's meta package) in the three
formats Cochrane ships, tests/fixtures/fleiss1993. The expected numbers are the ones RevMan stored
in those files (RevMan 5.0.23 .rm5 at full double precision; the CSV export to 8 decimals; the
RevMan Web data package to 6 decimals)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import run_main

FIX = Path(__file__).parent / "fixtures" / "fleiss1993"
RM5 = FIX / "Fleiss1993.rm5"
CSV_EXPORT = FIX / "Fleiss1993_CR.csv"
PACKAGE = FIX / "Fleiss1993_cochrane_data_package"
ASPIRIN = "c1_o1_aspirin_for_preventing_death_after"
MENTAL = "c1_o2_mental_health_treatment_versus"
DATA_COLUMNS = ["outcome", "study", "events_t", "n_t", "events_c", "n_c", "mean_t",
                "sd_t", "mean_c", "sd_c"]


def imported(tmp_path, source, *extra):
    out = tmp_path / Path(source).name.replace(".", "_")
    r = run_main("import", str(source), "--out", str(out), "--benefit", "lower", *extra)
    assert r.returncode == 0, r.stderr
    return out


def read(path):
    return list(csv.DictReader(open(path, encoding="utf-8")))


def as_numbers(rows):
    return [[r["outcome"], r["study"]] + [float(r[c]) if r[c] else None for c in DATA_COLUMNS[2:]]
            for r in rows]


def test_three_formats_import_to_identical_data(tmp_path):
    dirs = [imported(tmp_path, s) for s in (RM5, CSV_EXPORT, PACKAGE)]
    studies = [as_numbers(read(d / "studies.csv")) for d in dirs]
    assert studies[0] == studies[1] == studies[2]
    assert len(studies[0]) == 12
    outcomes = [read(d / "outcomes.csv") for d in dirs]
    for key in ("outcome", "label", "method", "model", "data_type"):
        assert [o[key] for o in outcomes[0]] == [o[key] for o in outcomes[1]] == \
               [o[key] for o in outcomes[2]], key
    # The fixtures disagree on one thing: the CSV export analyses outcome 1.2 as a mean
    # difference (with RevMan's MD results in the file), the .rm5 and the data package as an SMD.
    assert [o["measure"] for o in outcomes[0]] == ["OR", "SMD"]
    assert [o["measure"] for o in outcomes[1]] == ["OR", "MD"]
    assert [o["measure"] for o in outcomes[2]] == ["OR", "SMD"]
    # risk of bias: judgements where the file has them
    rob = read(dirs[2] / "trials.csv")
    assert {r["rob: Allocation concealment?"] for r in rob} == {"not applicable"}
    assert {r["rob: Allocation concealment?"] for r in read(dirs[0] / "trials.csv")} == {"unknown"}


STORED = {  # (file, digits tolerance) -> pooled OR, CI, Q, I2 as stored by RevMan
    "rm5": (RM5, 1e-10, dict(estimate=0.8968655609130709, ci_low=0.8405144008917793,
                             ci_high=0.9569947088336491, q=9.946055983220074, i2=39.67458045558399)),
    "csv": (CSV_EXPORT, 5e-9, dict(estimate=0.89686556, ci_low=0.8405144, ci_high=0.95699471,
                                   q=9.94605598, i2=39.67458046)),
    "package": (PACKAGE, 5e-7, dict(estimate=0.896866, ci_low=0.840514, ci_high=0.956995,
                                    q=9.946056, i2=39.67458)),
}


@pytest.mark.parametrize("fmt", list(STORED))
def test_aspirin_mh_fixed_reproduces_revman(tmp_path, fmt):
    source, tol, ref = STORED[fmt]
    d = imported(tmp_path, source)
    r = run_main("dl", ASPIRIN, "--data", str(d), "--method", "file", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["method"] == "MH-fixed"
    for key, value in ref.items():
        assert abs(res[key] - value) <= tol * max(1, abs(value)), (key, res[key], value)
    assert res["published"]["reproduced"] is True


def test_aspirin_per_study_or_ci_and_weights_match_rm5(tmp_path):
    # DICH_DATA attributes in Fleiss1993.rm5 (EFFECT_SIZE, CI_START, CI_END, WEIGHT)
    stored = {"MRC-1": (0.7197141500975687, 0.4889745274989256, 1.0593362817898602, 3.176490004091248),
              "CDP": (0.6807598039215687, 0.45739090373983604, 1.0132119087766858, 3.1016891143394365),
              "MRC-2": (0.8028701891715591, 0.6064528819242718, 1.062902922672345, 5.675380442715663),
              "GASP": (0.8007386888273315, 0.4862610363759706, 1.318597213882381, 1.795484618258711),
              "PARIS": (0.7981432360742705, 0.5525633542165779, 1.1528680293941878, 3.2176243566716805),
              "AMIS": (1.1327364047365673, 0.9346646778747347, 1.3727829808793592, 10.153491219997628),
              "ISIS-2": (0.8949693601254097, 0.8294175772940908, 0.965701930475584, 72.87984024392564)}
    d = imported(tmp_path, RM5)
    res = json.loads(run_main("dl", ASPIRIN, "--data", str(d), "--method", "file", "--json").stdout)
    for s in res["studies"]:
        est, lo, hi, w = stored[s["study"]]
        assert s["estimate"] == pytest.approx(est, rel=1e-12)
        assert s["ci_low"] == pytest.approx(lo, rel=1e-12)
        assert s["ci_high"] == pytest.approx(hi, rel=1e-12)
        assert s["weight"] == pytest.approx(w, rel=1e-10)


def test_mental_health_md_matches_revman_csv_export(tmp_path):
    # Fleiss1993_CR.csv, outcome 1.2 (CON, IV, MD, Fixed): -0.70938839 [-1.25848502, -0.16029176],
    # Q 5.66012379, I2 29.33016758; per study MD and SE
    d = imported(tmp_path, CSV_EXPORT)
    res = json.loads(run_main("dl", MENTAL, "--data", str(d), "--method", "file", "--json").stdout)
    assert res["method"] == "IV-fixed" and res["measure"] == "MD"
    for key, value in dict(estimate=-0.70938839, ci_low=-1.25848502, ci_high=-0.16029176,
                           q=5.66012379, i2=29.33016758).items():
        assert abs(res[key] - value) <= 5e-9, key
    per_study = {"Davis": (-1.5, 1.67630546), "Florell": (-1.2, 0.45085474),
                 "Gruen": (-2.4, 1.89175731), "Hart": (0.2, 0.49580742), "Wilson": (-0.88, 0.56631484)}
    for s in res["studies"]:
        assert abs(s["estimate"] - per_study[s["study"]][0]) <= 5e-9
        assert abs(s["se"] - per_study[s["study"]][1]) <= 5e-9


def test_iso_8859_1_csv_export_imports_the_same(tmp_path):
    latin = tmp_path / "Fleiss1993_latin1.csv"
    latin.write_bytes(CSV_EXPORT.read_text(encoding="utf-8").encode("latin-1"))
    a = as_numbers(read(imported(tmp_path, CSV_EXPORT) / "studies.csv"))
    b = as_numbers(read(imported(tmp_path, latin) / "studies.csv"))
    assert a == b


@pytest.mark.parametrize("name, mangle, message", [
    ("broken.rm5", lambda t: t[: len(t) // 2], "not well-formed XML"),
    ("no_study_id.rm5", lambda t: t.replace(' STUDY_ID="STD-CDP" TOTAL_1', ' TOTAL_1', 1),
     "<DICH_DATA> lacks the attribute STUDY_ID"),
    ("bad_number.rm5", lambda t: t.replace('EVENTS_1="44"', 'EVENTS_1="forty"', 1),
     "'forty' is not a number"),
    ("not_revman.csv", lambda t: "a,b\n1,2\n", "not a RevMan file"),
])
def test_malformed_files_get_a_clear_error_and_write_nothing(tmp_path, name, mangle, message):
    bad = tmp_path / name
    bad.write_text(mangle(RM5.read_text(encoding="latin-1")), encoding="latin-1")
    out = tmp_path / "out"
    r = run_main("import", str(bad), "--out", str(out))
    assert r.returncode == 2
    assert message in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not out.exists()


def test_imported_review_fits_with_every_engine(tmp_path):
    d = imported(tmp_path, RM5)
    r = run_main("fit", ASPIRIN, "--data", str(d), "--engine", "exact", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["k"] == 7


def test_no_review_specific_words_in_another_review(tmp_path):
    """Nothing in the code names PIP: on the imported Fleiss review and on Crins 2014 every text,
    report and figure label says 'the intervention' (or the data set's own name)."""

    d = imported(tmp_path, RM5)
    out = tmp_path / "reports"
    r = run_main("report", "--all", "--engine", "exact", "--data", str(d), "--out", str(out))
    assert r.returncode == 0, r.stderr
    import re

    texts = [re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", p.read_text())
             for p in out.glob("*") if p.suffix in (".md", ".html", ".csv", ".json")]
    assert texts and not any("PIP" in t or "parent-infant" in t for t in texts)
    for args in (["fit", "acute_rejection", "--engine", "exact"],
                 ["compare-priors", "acute_rejection", "--engine", "exact"],
                 ["dl", "acute_rejection"], ["bma", "acute_rejection"]):
        r = run_main(*args, "--data", "data/crins2014")
        assert r.returncode == 0 and "PIP" not in r.stdout, (args, r.stderr)
    assert "favours IL-2RA" in run_main("fit", "acute_rejection", "--engine", "exact",
                                        "--data", "data/crins2014").stdout


def test_import_without_benefit_leaves_usable_data(tmp_path):
    """Without --benefit the column says 'unknown': list, dl and compare-priors work (and say
    P(benefit) needs a direction); fit and report exit 2 naming the outcome and --benefit."""
    from conftest import run_main

    out = tmp_path / "fleiss"
    r = run_main("import", str(RM5), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert {row["benefit"] for row in read(out / "outcomes.csv")} == {"unknown"}
    r = run_main("list", "--data", str(out))
    assert r.returncode == 0 and "unknown" in r.stdout and "P(benefit) needs a direction" in r.stdout
    r = run_main("dl", ASPIRIN, "--data", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["k"] == 7
    r = run_main("compare-priors", ASPIRIN, "--data", str(out), "--engine", "exact", "--json")
    assert r.returncode == 0, r.stderr
    fits = json.loads(r.stdout)
    assert all(f["p_benefit"] is None and f.get("p_harm") is None for f in fits)
    assert all(f["effect"]["median"] > 0 for f in fits)
    r = run_main("compare-priors", ASPIRIN, "--data", str(out), "--engine", "exact")
    assert "P(benefit): not computed" in r.stdout
    for command in (["fit", ASPIRIN, "--engine", "exact"], ["report", ASPIRIN, "--out",
                                                            str(tmp_path / "rep")]):
        r = run_main(*command, "--data", str(out))
        assert r.returncode == 2, r.stdout
        assert ASPIRIN in r.stderr and "--benefit" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "rep").exists()


def test_empty_source_cells_load_with_a_warning(tmp_path):
    import shutil

    import pandas as pd

    from conftest import run_main

    src = Path(__file__).parents[1] / "data" / "crins2014"
    for name in ("outcomes.csv", "studies.csv"):
        shutil.copy(src / name, tmp_path / name)
    rows = pd.read_csv(tmp_path / "studies.csv", dtype=str, keep_default_na=False)
    rows.loc[[0, 2], "source"] = ""
    rows.to_csv(tmp_path / "studies.csv", index=False)
    r = run_main("dl", "acute_rejection", "--data", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "warning:" in r.stderr and "2 of 6 rows have no source (rows 2, 4)" in r.stderr


@pytest.mark.parametrize("name", ["pip", "crins2014"])
def test_bundled_data_give_a_source_for_every_row(name):
    import warnings

    import pandas as pd

    from bayes_pip.data import load_dataset
    from bayes_pip.errors import DataWarning

    directory = Path(__file__).parents[1] / "data" / name
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        load_dataset(directory)
    for path in directory.glob("*.csv"):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "source" in frame.columns:
            assert (frame["source"].str.strip() != "").all(), path.name


@pytest.mark.parametrize("measure, method, expected_method", [("RD", "MH", "MH-fixed"),
                                                              ("PETO_OR", "PETO", "Peto")])
def test_revman_risk_difference_and_peto_are_imported(tmp_path, measure, method,
                                                      expected_method):
    """RevMan 5 writes EFFECT_MEASURE="RD" and, for Peto's method, METHOD="PETO" with
    EFFECT_MEASURE="PETO_OR"; the Fleiss file relabelled so (its stored OR then no longer
    applies, so only the mapping and the pooling method are checked)."""
    from conftest import run_main

    text = RM5.read_text(encoding="utf-8")
    text = text.replace('EFFECT_MEASURE="OR"', f'EFFECT_MEASURE="{measure}"', 1)
    text = text.replace('METHOD="MH"', f'METHOD="{method}"', 1)
    source = tmp_path / "relabelled.rm5"
    source.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    r = run_main("import", str(source), "--out", str(out), "--benefit", "lower")
    assert r.returncode == 0, r.stderr
    rows = {row["outcome"]: row for row in read(out / "outcomes.csv")}
    assert rows[ASPIRIN]["measure"] == measure
    r = run_main("dl", ASPIRIN, "--data", str(out), "--method", "file", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["method"] == expected_method


def test_every_report_figure_of_the_fleiss_review_has_plain_ticks_and_no_pip(tmp_path):
    """Each figure `report` draws, on the imported Fleiss review: tick labels are plain numbers
    (never '10^-1' or 'x10'), and no label names PIP."""
    import bayes_pip as bp
    from bayes_pip import figures

    d = imported(tmp_path, RM5)
    data = bp.load(d)
    for outcome in data.outcome_ids():
        fits = bp.compare_priors(data, outcome, engine="exact")
        for fig in (figures.forest_plot(fits[0]), figures.posterior_density_plot(fits[0]),
                    figures.sensitivity_plot(fits),
                    figures.prior_posterior_plot(fits[0], "tau")):
            fig.canvas.draw()
            for ax in fig.axes:
                ticks = [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
                words = ticks + [t.get_text() for t in ax.texts] + [ax.get_title(),
                                                                      ax.get_xlabel()]
                assert any(t for t in ticks), outcome
                assert not any("x10" in t or "times" in t or "^{" in t or "$" in t
                               for t in ticks), (outcome, ticks)
                assert not any("PIP" in w for w in words), (outcome, words)


def test_dl_on_an_imported_review_pools_by_its_own_method(tmp_path):
    """Without --method, dl pools as the imported file says (M-H fixed effect here) and
    reproduces RevMan's stored result; with --method DL the mismatch is named as a method
    difference, never blamed on the data."""
    out = tmp_path / "fleiss"
    assert run_main("import", str(FIX / "Fleiss1993.rm5"), "--out", str(out)).returncode == 0
    o = "c1_o1_aspirin_for_preventing_death_after"
    d = json.loads(run_main("dl", o, "--data", str(out), "--json").stdout)
    assert d["method"] == "MH-fixed" and d["published"]["reproduced"] is True
    d = json.loads(run_main("dl", o, "--data", str(out), "--json", "--method", "DL").stdout)
    assert d["published"]["reproduced"] is False
    assert d["published"]["agreement"] == (
        "does not reproduce the published result: pooled here by DerSimonian-Laird, the review "
        "pooled by M-H fixed effect (`dl --method file` pools as the review did)")


def test_the_discussion_text_checks_hold_on_the_imported_fleiss_review(tmp_path):
    """The discussion-text checks of the bundled review, on a review the tool has never seen:
    every Bayes-factor paragraph names its prior on the pooled effect and gives the Bayes factor
    by that prior's width; no probability is printed as 1.000 or 0.000; every P(benefit) range
    over priors is labelled; no reconstruction wording, no developer text; the summary of
    findings lists both outcomes."""
    import re

    d = imported(tmp_path, RM5)
    out = tmp_path / "reports"
    r = run_main("report", "--all", "--engine", "exact", "--data", str(d), "--out", str(out))
    assert r.returncode == 0, r.stderr
    for outcome in (ASPIRIN, MENTAL):
        md = (out / f"{outcome}.md").read_text()
        bf = next(line for line in md.splitlines() if "A Bayes factor answers" in line)
        assert re.search(r"Under the N\(0, 4\^2\) prior on the pooled (log OR|SMD)", bf)
        assert "By the width of a centred normal prior" in bf and "vague, SD 10: " in bf
        assert "the probability of no effect was" in bf
        assert re.search(r"[Aa]cross (the )?\d+ priors", md), outcome
    texts = {p.name: p.read_text() for p in out.glob("*") if p.suffix in (".md", ".html")}
    for name, text in texts.items():
        text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text).replace(
            str(tmp_path), "DATA")   # the data directory is named in the provenance
        assert not re.search(r"(?<![\d.])[01]\.000(?!\d)", text), name
        assert "the only set" not in text and "only integer table" not in text, name
        assert "tests/" not in text and "test_" not in text, name
    summary = texts["summary_of_findings.md"]
    assert ASPIRIN in summary and MENTAL in summary
