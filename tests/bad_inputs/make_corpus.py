"""Build the bad-input corpus: one directory per rule, each a small data set with one defect.

Run from this directory: python make_corpus.py (writes the case directories and cases.json).
The base data set is two outcomes of the Crins et al. 2014 example plus an SMD outcome with the
Chen & Peace counts (statsmodels test data).
"""

import json
import shutil
from pathlib import Path

HERE = Path(__file__).parent

OUTCOMES = """outcome,label,comparison,measure,benefit,timepoint,mcid
rejection,Acute rejection,il2ra_vs_control,OR,lower,6 months,0.8
score,Symptom score,x_vs_control,SMD,higher,post,0.2
"""
STUDIES = """outcome,study,events_t,n_t,events_c,n_c,mean_t,sd_t,mean_c,sd_c,source
rejection,Heffron 2003,14,61,15,20,,,,,Crins 2014
rejection,Gibelli 2004,16,28,19,28,,,,,Crins 2014
rejection,Schuller 2005,3,18,8,12,,,,,Crins 2014
score,Carroll,,60,,60,94,22,92,20,Chen & Peace
score,Grant,,65,,65,98,21,92,22,Chen & Peace
"""
PUBLISHED = """outcome,measure,estimate,ci_low,ci_high,k,participants,model,grade,source
rejection,OR,0.2,0.1,0.4,3,167,random effects,low,made-up row for validation tests
"""

# name: (file edits, CLI args after the data option, expected exit code, expected message part)
CASES = {
    "missing_column": ({"studies.csv": ("n_c,", "n_control,")}, ["dl", "rejection"], 2,
                       "missing required column(s) n_c"),
    "non_numeric": ({"studies.csv": ("Heffron 2003,14,", "Heffron 2003,fourteen,")},
                    ["dl", "rejection"], 2, "row 2, column 'events_t': 'fourteen' is not a number"),
    "non_finite": ({"studies.csv": ("Carroll,,60,,60,94,22", "Carroll,,60,,60,inf,22")},
                   ["dl", "score"], 2, "column 'mean_t': 'inf' is not a finite number"),
    "negative_count": ({"studies.csv": ("Gibelli 2004,16,", "Gibelli 2004,-16,")},
                       ["dl", "rejection"], 2, "row 3, column 'events_t': -16 must be at least 0"),
    "fractional_count": ({"studies.csv": ("Gibelli 2004,16,28", "Gibelli 2004,16,28.5")},
                         ["dl", "rejection"], 2, "column 'n_t': '28.5' is not a whole number"),
    "events_exceed_n": ({"studies.csv": ("Schuller 2005,3,18,8,12", "Schuller 2005,3,18,18,12")},
                        ["dl", "rejection"], 2, "row 4, column 'events_c': 18 events is more than n_c = 12"),
    "zero_n": ({"studies.csv": ("Schuller 2005,3,18", "Schuller 2005,0,0")},
               ["dl", "rejection"], 2, "column 'n_t': 0 must be greater than 0"),
    "sd_not_positive": ({"studies.csv": ("Grant,,65,,65,98,21", "Grant,,65,,65,98,0")},
                        ["dl", "score"], 2, "row 6, column 'sd_t': SD 0 must be greater than 0"),
    "duplicate_study": ({"studies.csv": ("Gibelli 2004,16,28,19,28", "Heffron 2003,16,28,19,28")},
                        ["dl", "rejection"], 2, "study 'Heffron 2003' appears twice for outcome 'rejection'"),
    "unknown_outcome_arg": ({}, ["fit", "rejections", "--engine", "exact"], 2,
                            "unknown outcome 'rejections'; did you mean rejection"),
    "outcome_without_data": ({"outcomes.csv": ("score,Symptom", "extra,Extra,x,SMD,lower,post,\nscore,Symptom")},
                             ["fit", "extra", "--engine", "exact"], 2,
                             "outcome 'extra' has neither study rows nor a published result"),
    "unknown_measure": ({"outcomes.csv": (",OR,lower", ",HR,lower")}, ["list"], 2,
                        "row 2, column 'measure': 'HR' is not allowed (allowed: RR, OR, SMD, MD, RD, PETO_OR, categorical)"),
    "unknown_benefit": ({"outcomes.csv": (",SMD,higher", ",SMD,up")}, ["list"], 2,
                        "row 3, column 'benefit': 'up' is not allowed (allowed: lower, higher, unknown)"),
    "unknown_comparison_type": ({"outcomes.csv": (
        "mcid\nrejection,Acute rejection,il2ra_vs_control,OR,lower,6 months,0.8\nscore,Symptom "
        "score,x_vs_control,SMD,higher,post,0.2\n", "mcid,comparison_type\nrejection,Acute "
        "rejection,il2ra_vs_control,OR,lower,6 months,0.8,drug_vs_control\nscore,Symptom "
        "score,x_vs_control,SMD,higher,post,0.2,\n")},
                                ["list"], 2,
                                "row 2, column 'comparison_type': unknown comparison type "
                                "'drug_vs_control' (allowed: nonpharm_vs_control"),
    "undefined_outcome_in_studies": ({"studies.csv": ("score,Grant", "scores,Grant")}, ["list"], 2,
                                     "outcome 'scores' is not defined in outcomes.csv; did you mean 'score'?"),
    "published_outside_ci": ({"published.csv": ("0.2,0.1,0.4", "0.5,0.1,0.4")}, ["list"], 2,
                             "estimate 0.5 is not inside its CI [0.1, 0.4]"),
    "empty_file": ({"studies.csv": None}, ["list"], 2, "studies.csv: file is empty"),
    "binary_file": ({"outcomes.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"}, ["list"], 2,
                    "outcomes.csv: file is binary"),
    "undecodable_file": ({"outcomes.csv": OUTCOMES.encode("utf-8").replace(b"Acute", b"\x81\x8d\x90cute")},
                         ["list"], 2, "outcomes.csv: cannot decode file"),
    "missing_outcomes_file": ({"outcomes.csv": False}, ["list"], 2, "outcomes.csv: missing file"),
    # identifiers are data, never paths (and never markup)
    "outcome_id_path": ({"outcomes.csv": ("\nrejection,", "\n../../escaped,"),
                         "studies.csv": ("\nrejection,Heffron", "\n../../escaped,Heffron"),
                         "published.csv": ("\nrejection,", "\n../../escaped,")},
                        ["list"], 2, "row 2, column 'outcome': '../../escaped' is not a valid id"),
    "outcome_id_absolute": ({"outcomes.csv": ("\nscore,", "\n/tmp/escaped,")}, ["list"], 2,
                            "row 3, column 'outcome': '/tmp/escaped' is not a valid id"),
    "outcome_id_scheme": ({"outcomes.csv": ("\nscore,", "\njavascript:alert(1),")}, ["list"], 2,
                          "'javascript:alert(1)' is not a valid id"),
    "outcome_id_hidden": ({"outcomes.csv": ("\nscore,", "\n.score,")}, ["list"], 2,
                          "'.score' is not a valid id"),
    "outcome_id_reserved": ({"outcomes.csv": ("\nscore,", "\nsummary_of_findings,")}, ["list"],
                            2, "'summary_of_findings' is a reserved name"),
    "outcome_id_too_long": ({"outcomes.csv": ("\nscore,", "\n" + "s" * 101 + ",")}, ["list"], 2,
                            "is longer than 100 characters"),
    "study_control_character": ({"studies.csv": ("Gibelli 2004", "Gibelli\x1b[31m 2004")},
                                ["list"], 2, "row 3, column 'study': contains a control character"),
    # derived quantities are checked before any engine runs
    "effect_not_finite": ({"studies.csv": ("Grant,,65,,65,98,21,92,22",
                                           "Grant,,65,,65,98,1e-300,92,1e-300")},
                          ["dl", "score"], 2, "study 'Grant': the SMD effect"),
    "means_overflow": ({"outcomes.csv": (",SMD,higher", ",MD,higher"),
                        "studies.csv": ("Grant,,65,,65,98,21", "Grant,,65,,65,1e300,21")},
                       ["dl", "score"], 2, "study 'Grant': the MD effect"),
    "giv_mixed_with_arms": ({"studies.csv": "GIVMIX"}, ["list"], 2,
                            "outcome 'rejection' mixes generic inverse-variance rows"),
    "mcid_on_harm_side": ({"outcomes.csv": ("lower,6 months,0.8", "lower,6 months,1.25")}, ["list"],
                          2, "row 2, column 'mcid': mcid 1.25 is on the side of harm"),
    "nothing_to_report": ({"studies.csv": "HEADERONLY", "published.csv": False},
                          ["sweep", "--engine", "exact"], 2, "nothing to fit"),
    # CSV grammar
    "duplicate_header": ({"studies.csv": ("events_t,n_t,events_c", "events_t,n_t,events_t")},
                         ["list"], 2, "row 1, column 'events_t': column name appears twice"),
    "underscore_number": ({"studies.csv": ("Gibelli 2004,16,28", "Gibelli 2004,1_6,28")},
                          ["dl", "rejection"], 2, "row 3, column 'events_t': '1_6' is not a number"),
    "non_ascii_digits": ({"studies.csv": ("Gibelli 2004,16,28", "Gibelli 2004,\u0661\u0666,28")},
                         ["dl", "rejection"], 2, "row 3, column 'events_t'"),
    "blank_line_inside": ({"studies.csv": ("\nrejection,Gibelli", "\n\nrejection,Gibelli")}, ["list"], 2,
                          "row 3: row is empty; remove empty lines inside the table"),
    "utf16_file": ({"outcomes.csv": b"\xff\xfe" + OUTCOMES.encode("utf-16-le")}, ["list"], 2,
                   "outcomes.csv: file is UTF-16 text; save it as UTF-8"),
    "windows_1252_file": ({"outcomes.csv": OUTCOMES.replace("Acute", "\u201cAcute\u201d").encode("cp1252")},
                          ["list"], 2, "save it as UTF-8"),
}
# legitimate oddities that must run (exit 0) and what the output must say
GOOD = {
    "bom_crlf_extra_columns": ({"studies.csv": "BOMCRLF", "outcomes.csv": ("timepoint,mcid", "timepoint,mcid,reviewer_note")},
                               ["dl", "rejection"], 0, "Pooled (DL)"),
    "zero_cells": ({"studies.csv": ("Schuller 2005,3,18,8,12", "Schuller 2005,0,18,8,12")},
                   ["dl", "rejection"], 0, "(0.5 added)"),
    "double_zero_excluded": ({"studies.csv": ("Schuller 2005,3,18,8,12", "Schuller 2005,0,18,0,12")},
                             ["dl", "rejection"], 0, "Excluded (no events or only events in both arms): Schuller 2005"),
    "single_study": ({"studies.csv": ("score,Grant,,65,,65,98,21,92,22,Chen & Peace\n", "")},
                     ["dl", "score"], 0, "Note: a single study"),
    "tau_zero": ({}, ["dl", "score"], 0, "tau^2 = 0.0000"),
    "blank_lines_at_end": ({"studies.csv": ("Grant,,65,,65,98,21,92,22,Chen & Peace\n",
                                            "Grant,,65,,65,98,21,92,22,Chen & Peace\n\n\n")},
                           ["dl", "score"], 0,
                           "Pooled (DL)"),
}


def build(name, edits):
    d = HERE / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir()
    files = {"outcomes.csv": OUTCOMES, "studies.csv": STUDIES, "published.csv": PUBLISHED}
    for fname, edit in edits.items():
        if edit is False:
            files.pop(fname)
        elif edit is None:
            files[fname] = ""
        elif isinstance(edit, bytes):
            files[fname] = edit
        elif edit == "HEADERONLY":
            files[fname] = files[fname].splitlines()[0] + "\n"
        elif edit == "GIVMIX":
            lines = files[fname].splitlines()
            lines[0] += ",yi,sei"
            lines[1] = "rejection,Heffron 2003,,,,,,,,,Crins 2014,-1.2,0.4"
            files[fname] = "\n".join(line if i < 2 else line + ",,"
                                     for i, line in enumerate(lines)) + "\n"
        elif edit == "BOMCRLF":
            files[fname] = b"\xef\xbb\xbf" + files[fname].replace("\n", "\r\n").encode()
        else:
            old, new = edit
            assert old in files[fname], (name, old)
            files[fname] = files[fname].replace(old, new, 1)
    for fname, content in files.items():
        (d / fname).write_bytes(content if isinstance(content, bytes) else content.encode())


if __name__ == "__main__":
    spec = []
    for group in (CASES, GOOD):
        for name, (edits, args, code, message) in group.items():
            build(name, edits)
            spec.append({"name": name, "args": args, "exit": code, "message": message})
    (HERE / "cases.json").write_text(json.dumps(spec, indent=1) + "\n")
