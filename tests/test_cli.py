"""The command line as a researcher uses it: output, exit codes, reproducibility, reports."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from bayes_pip.data import bundled_data_dir
from conftest import run_cli, run_main

CRINS = str(bundled_data_dir().parent / "crins2014")


def test_list_shows_every_outcome_with_its_status():
    r = run_cli("list", "--json")
    assert r.returncode == 0, r.stderr
    rows = {x["outcome"]: x for x in json.loads(r.stdout)}
    assert len(rows) == 11   # ten outcomes with one effect per study, one categorical
    assert rows["maternal_sensitivity_post"]["data"] == "no data yet"
    cat = rows["attachment_category_post"]
    assert cat["measure"] == "categorical" and cat["k"] == 2
    assert cat["participants"] == 54 + 46 + 54 + 28 + 22   # data/pip/categories.csv
    assert "1 reconstructed" in cat["data"]
    assert rows["parental_depression_incidence"]["level"] == "summary"
    assert rows["secure_attachment_post"]["level"] == "reconstructed"
    assert "not printed data" in rows["secure_attachment_post"]["data"]
    assert rows["secure_attachment_post"]["k"] == 2  # Barlow 2015 abstract: 2 studies, 168
    assert rows["secure_attachment_post"]["participants"] == 168
    assert rows["parent_reported_depression_vs_alternative"]["level"] == "study"
    text = run_main("list").stdout
    assert "parental_depression_incidence" in text and "no data yet" in text


@pytest.mark.parametrize("outcome", ["parent_reported_depression", "secure_attachment_post",
                                     "parent_reported_depression_vs_alternative"])
def test_dl_runs_on_every_bundled_outcome_with_study_rows(outcome):
    r = run_main("dl", outcome, "--json", "--level", "study")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for key in ("outcome", "measure", "k", "estimate", "ci_low", "ci_high", "mu", "se", "tau2",
                "q", "i2", "p", "excluded"):
        assert key in d
    assert run_main("dl", outcome, "--level", "study").returncode == 0


def test_dl_reports_disagreement_with_published_result():
    d = json.loads(run_main("dl", "parent_reported_depression", "--json", "--level",
                           "study").stdout)
    assert d["published"]["reproduced"] is False
    assert "1 of the 4 studies" in d["published"]["agreement"]


def test_dl_crins_matches_metafor(metafor_cases):
    d = json.loads(run_main("dl", "acute_rejection", "--data", CRINS, "--json").stdout)
    ref = metafor_cases["crins_or"]["dl"]
    assert d["mu"] == pytest.approx(ref["mu"], rel=1e-10)
    assert d["tau2"] == pytest.approx(ref["tau2"], rel=1e-10)
    assert d["i2"] == pytest.approx(ref["i2"], rel=1e-10)


def test_unknown_outcome_is_a_clear_one_line_error():
    r = run_main("fit", "secure_attachment")
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "unknown outcome 'secure_attachment'" in r.stderr
    assert "secure_attachment_post" in r.stderr  # suggestion


def test_outcome_without_data_is_refused():
    r = run_main("fit", "maternal_sensitivity_post", "--engine", "exact")
    assert r.returncode == 2
    assert "neither study rows nor a published result" in r.stderr


def test_fit_exact_json_has_the_documented_keys():
    r = run_main("fit", "acute_rejection", "--data", CRINS, "--engine", "exact", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    for key in ("outcome", "measure", "engine", "prior", "mu", "effect", "tau", "prediction",
                "p_benefit", "p_mcid", "studies", "diagnostics", "dl", "level", "settings"):
        assert key in s, key
    assert set(s["prior"]["mu"]) >= {"family", "mean", "sd"}
    assert s["prior"]["tau"]["family"] == "halfnormal" and s["prior"]["tau"]["scale"] == 0.5
    assert set(s["mu"]) == {"mean", "sd", "median", "ci_low", "ci_high"}
    assert s["diagnostics"] is None and s["level"] == "study"
    assert len(s["studies"]) == 6


@pytest.mark.slow  # two NUTS fits in new processes (in-process: test_pymc)
def test_fit_pymc_same_seed_gives_byte_identical_json(tmp_path):
    args = ("fit", "acute_rejection", "--engine", "pymc", "--data", CRINS, "--json", "--seed",
            "123")
    a, b = run_cli(*args), run_cli(*args)
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    s = json.loads(a.stdout)
    assert s["settings"]["seed"] == 123 and s["settings"]["versions"]["pymc"]
    d = s["diagnostics"]
    assert d["rhat_max"] <= 1.01 and d["ess_bulk_min"] >= 400 and d["divergences"] == 0


def test_convergence_failure_exits_3_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    r = run_main("fit", "acute_rejection", "--engine", "pymc", "--data", CRINS, "--draws", "20",
                "--tune", "20", "--out", str(out))
    assert r.returncode == 3, r.stderr
    assert "ESS" in r.stderr and "Try more draws" in r.stderr
    assert not out.exists() or not any(out.iterdir())


def test_report_numbers_equal_the_fit_records(exact_report):
    out = exact_report[1]
    sof = list(csv.DictReader((out / "summary_of_findings.csv").open()))
    assert len(sof) == 7
    md_sof = (out / "summary_of_findings.md").read_text()
    for row in sof:
        fits = json.loads((out / f"{row['outcome']}.json").read_text())
        main = fits["main"]
        e = main["effect"]
        # the CSV holds numbers (full precision), the Markdown the formatted text
        assert [float(row[c]) for c in ("bayes_median", "bayes_ci_low", "bayes_ci_high")] == \
            [e["median"], e["ci_low"], e["ci_high"]]
        assert row["level"] == main["level"] and int(row["k"]) == main["k"]
        ps = [f["p_benefit"] for f in fits["priors"]]
        assert float(row["p_benefit"]) == main["p_benefit"]
        assert float(row["p_benefit_min"]) == min(ps) and float(row["p_benefit_max"]) == max(ps)
        assert f"{e['median']:.2f} [{e['ci_low']:.2f}, {e['ci_high']:.2f}]" in md_sof
        md = (out / f"{row['outcome']}.md").read_text()
        html = (out / f"{row['outcome']}.html").read_text()
        sentence = (f"the posterior median {main['measure']} was {e['median']:.2f} (95% CrI "
                    f"{e['ci_low']:.2f} to {e['ci_high']:.2f})")
        assert sentence in md and sentence in html
        for f in fits["priors"]:
            # the table names the set, or at summary level the prior on the pooled effect alone
            mu = f["prior"]["mu"]
            role = f["prior"]["name"] + " " if f["prior"]["name"] in ("sceptical", "enthusiastic") else ""
            shown = (f["prior"]["name"] if main["level"] != "summary"
                     else f"{role}N({mu['mean']:.3g}, {mu['sd']:.3g}^2)")
            assert f"| {shown} | {f['effect']['median']:.2f} [" in md
            assert fmt_p(f["p_benefit"]) in md
        assert "src=\"data:image/png;base64," in html and "http" not in html.split("<body>")[1].split("Priors")[0]
        for png in out.glob(f"{row['outcome']}_*.png"):
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            import matplotlib.image
            assert matplotlib.image.imread(png).shape[0] > 100
    assert not list(out.glob(".*"))  # no staging leftovers


def fmt_p(p):
    return "> 0.999" if p > 0.999 else "< 0.001" if p < 0.001 else f"{p:.3f}"


def test_every_command_has_help():
    r = run_cli("--help")
    commands = re.findall(r"^    (\S+)\s", r.stdout, flags=re.M)
    assert {"list", "dl", "fit", "compare-priors", "sweep", "report"} <= set(commands)
    for c in commands:  # in-process: argparse's --help is the same with or without a new interpreter
        h = run_main(c, "--help")
        assert h.returncode == 0 and "Example" in h.stdout, c


def test_fit_out_writes_json_and_netcdf_with_seed_and_prior(tmp_path):
    import arviz as az

    out = tmp_path / "fits"
    r = run_main("fit", "acute_rejection", "--engine", "pymc", "--data", CRINS, "--prior", "turner",
                "--seed", "9", "--out", str(out))
    assert r.returncode == 0, r.stderr
    stem = out / "acute_rejection__turner__pymc"
    summary = json.loads(stem.with_suffix(".json").read_text())
    idata = az.from_netcdf(str(stem.with_suffix(".nc")))
    assert idata.posterior.attrs["seed"] == 9
    assert "lognormal_tau2" in idata.posterior.attrs["prior"]
    mu = idata.posterior["mu"].values
    assert float(np.median(mu)) == pytest.approx(summary["mu"]["median"], rel=1e-12)
    assert idata.posterior["theta"].sizes["study"] == 6
    assert sorted(p.name for p in out.iterdir()) == [stem.name + ".json", stem.name + ".nc"]


def test_sweep_carries_on_past_a_failed_fit(monkeypatch, capsys):
    """One forced convergence failure: every other fit is printed (text and JSON), the failure
    is an object with outcome, prior and error, and the exit code is 3."""
    import json as json_module

    from bayes_pip import cli, sweeps
    from bayes_pip.errors import ConvergenceError

    real = sweeps.fit_outcome

    def flaky(dataset, outcome_id, prior_name=None, *args, **kwargs):
        if outcome_id == "acute_rejection" and prior_name == "turner":
            raise ConvergenceError("outcome 'acute_rejection', prior 'turner': forced failure")
        return real(dataset, outcome_id, prior_name, *args, **kwargs)

    monkeypatch.setattr(sweeps, "fit_outcome", flaky)
    assert cli.main(["sweep", "--data", CRINS, "--engine", "exact", "--json"]) == 3
    rows = json_module.loads(capsys.readouterr().out)
    failed = [r for r in rows if "error" in r]
    assert failed == [{"schema_version": 2, "outcome": "acute_rejection", "prior": "turner",
                       "error": "outcome 'acute_rejection', prior 'turner': forced failure"}]
    assert len(rows) >= 5 and all("p_benefit" in r for r in rows if r not in failed)
    assert cli.main(["sweep", "--data", CRINS, "--engine", "exact"]) == 3
    out = capsys.readouterr()
    assert "1 of" in out.out and "forced failure" in out.out
    assert "halfnormal-0.5" in out.out and "fits failed the convergence checks" in out.err


def test_list_counts_the_studies_pooled_and_names_the_excluded():
    """dat-style double-zero study: `list` shows k and N of the studies pooled (as `dl` does)
    and names the study left out, with the reason."""
    import json as json_module

    data = str(Path(__file__).parent / "bad_inputs" / "double_zero_excluded")
    r = run_main("list", "--data", data, "--json")
    row = next(x for x in json_module.loads(r.stdout) if x["outcome"] == "rejection")
    assert (row["k"], row["study_rows"], row["excluded"]) == (2, 3, ["Schuller 2005"])
    dl = json_module.loads(run_main("dl", "rejection", "--data", data, "--json").stdout)
    assert (row["k"], row["participants"]) == (dl["k"], dl["participants"]) == (2, 137)
    text = run_main("list", "--data", data).stdout
    assert "1 of them excluded (no events or only events in both arms: Schuller 2005)" in text


def test_probabilities_from_draws_are_never_printed_as_certain():
    from bayes_pip.formats import prob_text

    assert prob_text(1.0, 8000) == "> 1 - 1/8000"
    assert prob_text(0.0, 8000) == "< 1/8000"
    assert prob_text(0.99993) == "> 0.999"      # exact engines: the value itself is known
    assert prob_text(0.5, 8000) == "0.500"
    fit = json.loads((Path(__file__).parent / "golden" /
                      "fit__crins2014__acute_rejection__pymc__auto__pip.json").read_text())
    assert fit["probability_draws"] == fit["diagnostics"]["chains"] * fit["diagnostics"]["draws"]


def test_one_trial_is_never_called_a_meta_analysis():
    import bayes_pip as bp
    from bayes_pip.summarise import discussion_sentences

    fit = bp.fit(None, "parent_reported_depression_vs_alternative", engine="exact")
    assert fit.k == 1
    text = " ".join(discussion_sentences(fit, [fit]))
    assert "meta-analysis of 1" not in text and "meta-analysis" not in text
    assert text.startswith("One trial (134 participants)") and "prior-driven" in text


def test_priors_command_sweep_level_report_prior_and_json(tmp_path, capsys):
    from bayes_pip.cli import main

    assert main(["priors", "secure_attachment_post", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in listed if p["default"]] == ["halfnormal-0.5"]
    assert all(p["source"] and p["tau"]["source"] for p in listed)
    assert "rhodes" not in [p["name"] for p in listed]  # an SMD prior, not for RR
    assert main(["sweep", "--engine", "exact", "--level", "study", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["level"] for r in rows} == {"study"}
    partial = [r for r in rows if r["outcome"] == "parent_reported_depression"][0]
    assert any("Partial data: study rows for 1 of the 4" in n for n in partial["notes"])
    assert main(["report", "secure_attachment_post", "--engine", "exact", "--prior", "turner",
                 "--out", str(tmp_path / "r"), "--json"]) == 0
    fits = json.loads(capsys.readouterr().out)["secure_attachment_post"]
    assert fits[0]["prior"]["name"] == "turner" and len(fits) > 1
    assert "turner prior" in (tmp_path / "r" / "secure_attachment_post.md").read_text()


def test_summary_of_findings_csv_is_numeric_and_flags_shared_trials(exact_report):
    import pandas as pd

    out = exact_report[1]
    sof = pd.read_csv(out / "summary_of_findings.csv")
    for column in ("bayes_median", "bayes_ci_low", "bayes_ci_high", "p_benefit", "p_harm",
                   "p_benefit_min", "p_benefit_max", "published_estimate"):
        assert sof[column].dtype == float, column
    shared = dict(zip(sof["outcome"], sof["shares_studies_with"].fillna("")))
    # the four attachment outcomes: the same two trials (Barlow 2015: 2 studies, 168 infants)
    assert set(shared["secure_attachment_post"].split()) == {
        "avoidant_attachment_post", "disorganised_attachment_post", "insecure_to_secure_post"}
    assert shared["parental_depression_incidence"] == ""
    assert "Not independent" in (out / "summary_of_findings.md").read_text()


def test_sentences_use_the_outcome_phrase_and_call_an_unsourced_mcid_assumed(tmp_path):
    import shutil

    import pandas as pd

    import bayes_pip as bp
    from bayes_pip.data import bundled_data_dir
    from bayes_pip.summarise import discussion_sentences

    fit = bp.fit(None, "insecure_to_secure_post", engine="exact")
    text = " ".join(discussion_sentences(fit, [fit]))
    assert ("the probability that PIP increases the chance that an insecurely attached infant "
            "becomes securely attached was") in text
    assert "infant attachment change" not in text.lower()    # the label is never spliced in
    assert "(RR 1.25; an assumed value, not from a published source)" in text
    # with a source for the MCID and no phrase: the source is named, the label quoted as a name
    d = tmp_path / "pip"
    shutil.copytree(bundled_data_dir(), d)
    o = pd.read_csv(d / "outcomes.csv", dtype=str, keep_default_na=False)
    o.loc[o.outcome == "insecure_to_secure_post", "mcid_source"] = "Team consensus 2026 (minutes)"
    o.loc[o.outcome == "insecure_to_secure_post", "phrase"] = ""
    o.to_csv(d / "outcomes.csv", index=False)
    fit = bp.fit(d, "insecure_to_secure_post", engine="exact")
    text = " ".join(discussion_sentences(fit, [fit]))
    assert "(RR 1.25; from Team consensus 2026 (minutes))" in text
    assert "increases the outcome 'Infant attachment change, insecure to secure' was" in text
    assert fit.to_dict()["mcid_source"] == "Team consensus 2026 (minutes)"


def test_dl_pools_the_data_fit_uses():
    """`dl` describes the same data as `fit`: the reconstructed tables by default (pooled as the
    review did, which reproduces its printed RR 8.93 [1.25, 63.7] by construction), the study
    rows with --level study, and at summary level it says what can be run instead."""
    import bayes_pip as bp

    r = run_main("dl", "secure_attachment_post", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    fit = bp.fit(None, "secure_attachment_post", engine="exact")
    assert d["k"] == 2 and d["method"] == "MH-random" and d["participants"] == 168
    assert (d["estimate"], d["ci_low"], d["ci_high"]) == (fit.dl.estimate, fit.dl.ci_low,
                                                          fit.dl.ci_high)
    assert round(d["estimate"], 2) == 8.93 and round(d["ci_high"], 2) == 63.70
    assert "reconstructed" in d["data_status"] and "by construction" in d["data_status"]
    r = run_main("dl", "secure_attachment_post", "--json", "--level", "study")
    d = json.loads(r.stdout)
    assert d["k"] == 1 and "data_status" not in d and round(d["estimate"], 2) == 4.04
    r = run_main("dl", "parent_reported_depression")
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert "`fit parent_reported_depression` re-analyses that estimate" in r.stderr
    assert "`dl parent_reported_depression --level study` pools the 1 of its 4 studies" in r.stderr


def test_list_and_dl_agree_on_double_zero_studies():
    """A study with no events in either arm is left out of a ratio but pooled for a risk
    difference; `list` counts what `dl` pools for both."""
    import pandas as pd

    import bayes_pip as bp
    from bayes_pip.classical import classical_analysis
    from bayes_pip.listing import outcome_listing

    outcomes = pd.DataFrame([{"outcome": m.lower(), "label": m, "comparison": "a_vs_b",
                              "measure": m, "benefit": "lower"} for m in ("RR", "RD")])
    studies = pd.DataFrame([{"outcome": o, "study": s, "events_t": e1, "n_t": 40,
                             "events_c": e2, "n_c": 40, "source": "test"}
                            for o in ("rr", "rd")
                            for s, e1, e2 in (("A", 3, 8), ("B", 0, 0), ("C", 5, 9))])
    data = bp.load(outcomes=outcomes, studies=studies)
    rows = {r["outcome"]: r for r in outcome_listing(data)}
    for o, k in (("rr", 2), ("rd", 3)):
        assert rows[o]["k"] == k == classical_analysis(data, o).record().k, o
    assert rows["rr"]["excluded"] == ["B"] and rows["rd"]["excluded"] == []
    # the M-H risk difference names whose variance it printed (RevMan's, not rma.mh's)
    from bayes_pip.summarise import dl_text

    mh = classical_analysis(data, "rd", method="MH-fixed")
    assert "Greenland & Robins' (1985) variance, as RevMan" in dl_text(mh.record(), mh.outcome)
    dl = classical_analysis(data, "rd", method="DL")
    assert "Greenland" not in dl_text(dl.record(), dl.outcome)
