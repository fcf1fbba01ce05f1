"""Import a review as Cochrane ships it: RevMan 5 (.rm5 XML), the RevMan 5 "data and analyses" CSV
export, or a RevMan Web data package (a directory of CSV files).

Each reader returns the same :class:`ImportedReview` record: one outcome per comparison x outcome
(and one per subgroup), the study rows in the bayes_pip schema, the trials with risk-of-bias
judgements where the file has them, and the pooled estimates RevMan stored (written as
published.csv, so `dl` shows whether bayes_pip reproduces them). Files may be UTF-8 (with or
without a byte-order mark) or ISO-8859-1. Any defect raises InputError naming the file, the line or
row and the element, attribute or column.
"""

from __future__ import annotations

import csv
import io
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from bayes_pip import measures
from bayes_pip.errors import InputError



def measure_name(label: str) -> str | None:
    """bayes_pip's name for the effect measure a RevMan file names (None: not supported)."""
    found = measures.from_revman(label)
    return None if found is None else found.name


DATA_TYPES = {"DIC": "dichotomous", "DICHOTOMOUS": "dichotomous", "CON": "continuous",
              "CONTINUOUS": "continuous", "GIV": "giv", "IV": "giv",
              "GENERIC INVERSE VARIANCE": "giv", "O-E": "oe", "O_E": "oe"}

OUTCOME_FIELDS = ["outcome", "label", "comparison", "measure", "benefit", "timepoint", "mcid",
                  "outcome_type", "method", "model", "favours_left", "favours_right", "data_type"]
STUDY_FIELDS = ["outcome", "study", "events_t", "n_t", "events_c", "n_c", "mean_t",
                "sd_t", "mean_c", "sd_c", "yi", "sei", "provenance", "source"]
PUBLISHED_FIELDS = ["outcome", "measure", "estimate", "ci_low", "ci_high", "k", "participants",
                    "model", "grade", "source", "q", "i2", "tau2"]


@dataclass(frozen=True)
class ImportedReview:
    """A review in the bayes_pip schema, with what could not be imported."""

    source: str
    outcomes: list[dict]
    studies: list[dict]
    trials: list[dict]
    published: list[dict]
    skipped: list[str]


def slug(text: str, limit: int = 36) -> str:
    """snake_case of a name, cut at a word boundary within ``limit`` characters."""
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if len(s) > limit:
        s = s[:limit + 1].rsplit("_", 1)[0] if "_" in s[:limit + 1] else s[:limit]
    return s or "outcome"


def outcome_id(comparison: int, outcome: int, subgroup: int, name: str) -> str:
    sub = f"_s{subgroup}" if subgroup else ""
    return f"c{comparison}_o{outcome}{sub}_{slug(name)}"


def decode(raw: bytes, name: str) -> str:
    """UTF-8 (BOM or not) or ISO-8859-1 text; refuse binary files."""
    if b"\x00" in raw:
        raise InputError("file is binary, not a RevMan export", file=name)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def number(text, file, where, column, integer=False):
    text = (text or "").strip()
    if text == "":
        return None
    try:
        x = float(text)
    except ValueError:
        raise InputError(f"'{text}' is not a number", file=file, row=where, column=column) from None
    if not math.isfinite(x):
        raise InputError(f"'{text}' is not a finite number", file=file, row=where, column=column)
    if integer:
        if x != int(x):  # a count is never rounded: 12.6 events is an error in the file
            raise InputError(f"'{text}' is not a whole number (counts must be whole)",
                             file=file, row=where, column=column)
        return int(x)
    return x


def model_name(method: str, model: str) -> str:
    return f"{method} {model}".strip()


STORED_FIELDS = ("estimate", "ci_low", "ci_high", "n1", "n2", "q", "i2", "tau2")


def stored_estimate(get, fields: dict, file, where, oid, measure, method, model, source):
    """The pooled result RevMan stored for an outcome, as a published.csv row (None if absent).

    ``fields`` maps estimate, ci_low, ci_high, n1, n2, q, i2, tau2 to the format's own names.
    """
    value = {key: number(get(fields[key]), file, where, fields[key], key in ("n1", "n2"))
             for key in STORED_FIELDS}
    est, lo, hi = value["estimate"], value["ci_low"], value["ci_high"]
    if est is None or lo is None or hi is None or not lo < est < hi:
        return None
    return {"outcome": oid, "measure": measure, "estimate": est, "ci_low": lo, "ci_high": hi,
            "k": None, "participants": (value["n1"] or 0) + (value["n2"] or 0),
            "model": model_name(method, model), "grade": "", "source": source,
            "q": value["q"], "i2": value["i2"], "tau2": value["tau2"]}


def count_studies(published: list[dict], studies: list[dict]) -> list[dict]:
    """Fill each stored estimate's k with the number of study rows of its outcome."""
    for p in published:
        p["k"] = sum(1 for s in studies if s["outcome"] == p["outcome"])
    return [p for p in published if p is not None]


# ---------------------------------------------------------------------------------------------
# RevMan 5 .rm5 (XML)
# ---------------------------------------------------------------------------------------------

RM5_STORED = dict(estimate="EFFECT_SIZE", ci_low="CI_START", ci_high="CI_END", n1="TOTAL_1",
                  n2="TOTAL_2", q="CHI2", i2="I2", tau2="TAU2")
CSV_STORED = dict(estimate="Effect Estimate", ci_low="CI Start", ci_high="CI End", n1="Total 1",
                  n2="Total 2", q="Q", i2="I²(Q)", tau2="Tau²")
PACKAGE_STORED = dict(estimate="Mean", ci_low="CI start", ci_high="CI end", n1="Experimental N",
                      n2="Control N", q="Heterogeneity Chi²", i2="Heterogeneity I²",
                      tau2="Heterogeneity Tau²")


def read_rm5(path: Path) -> ImportedReview:
    name = str(path)
    try:
        root = ET.fromstring(path.read_bytes())
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise InputError(f"not well-formed XML ({exc.msg if hasattr(exc, 'msg') else exc})",
                         file=name, row=line) from None
    if root.tag != "COCHRANE_REVIEW":
        raise InputError(f"root element is <{root.tag}>, expected <COCHRANE_REVIEW> (a RevMan 5 "
                         "file)", file=name)

    def attr(el, key, required=True):
        value = el.get(key)
        if value is None and required:
            raise InputError(f"<{el.tag}> lacks the attribute {key}", file=name, column=key)
        return value

    studies = {}
    for st in root.iter("STUDY"):
        studies[attr(st, "ID")] = (attr(st, "NAME"), st.get("YEAR", ""))
    rob_items = {}
    for item in root.iter("QUALITY_ITEM"):
        label = (item.findtext("NAME") or attr(item, "ID")).strip()
        for entry in item.iter("QUALITY_ITEM_DATA_ENTRY"):
            rob_items.setdefault(attr(entry, "STUDY_ID"), {})[f"rob: {label}"] = \
                attr(entry, "RESULT").lower()

    outcomes, rows, published, skipped = [], [], [], []
    tags = {"DICH_OUTCOME": ("dichotomous", "DICH_DATA"), "CONT_OUTCOME": ("continuous", "CONT_DATA"),
            "IV_OUTCOME": ("giv", "IV_DATA")}
    for cmp_el in root.iter("COMPARISON"):
        c_no = number(attr(cmp_el, "NO"), name, f"<{cmp_el.tag}>", "NO", True)
        c_name = (cmp_el.findtext("NAME") or "").strip()
        for out_el in cmp_el:
            if out_el.tag not in tags:
                continue
            kind, data_tag = tags[out_el.tag]
            o_no = number(attr(out_el, "NO"), name, f"<{out_el.tag}>", "NO", True)
            o_name = (out_el.findtext("NAME") or "").strip()
            measure = measure_name(attr(out_el, "EFFECT_MEASURE"))
            base = outcome_id(c_no, o_no, 0, o_name)
            if measure is None:
                skipped.append(f"{base} ({attr(out_el, 'EFFECT_MEASURE')}: measure not supported)")
                continue
            method = attr(out_el, "METHOD", required=False) or "IV"
            model = "random" if attr(out_el, "RANDOM", required=False) == "YES" else "fixed"
            groups = [(0, out_el)] + [(number(attr(sg, "NO"), name, f"<{sg.tag}>", "NO", True), sg) for sg in out_el.iter(out_el.tag.replace("_OUTCOME", "_SUBGROUP"))]
            for s_no, group in groups:
                oid = base if not s_no else outcome_id(c_no, o_no, s_no, f"{o_name} {group.findtext('NAME') or ''}")
                outcomes.append({
                    "outcome": oid, "label": o_name if not s_no else f"{o_name}: {(group.findtext('NAME') or '').strip()}",
                    "comparison": c_name, "measure": measure, "method": method, "model": model,
                    "favours_left": (out_el.findtext("GRAPH_LABEL_1") or "").strip(),
                    "favours_right": (out_el.findtext("GRAPH_LABEL_2") or "").strip(),
                    "data_type": kind})
                for d in group.iter(data_tag):
                    sid = attr(d, "STUDY_ID")
                    if sid not in studies:
                        raise InputError(f"<{data_tag}> refers to study {sid}, which is not in "
                                         "STUDIES_AND_REFERENCES", file=name, column="STUDY_ID")
                    where = f"<{data_tag} STUDY_ID=\"{sid}\">"
                    row = {"outcome": oid, "study": studies[sid][0], "provenance": "printed",
                           "source": f"{path.name}: comparison {c_no}, outcome {o_no}"}
                    row.update(study_values(kind, d.get, name, where))
                    rows.append(row)
                stored = stored_estimate(
                    group.get, RM5_STORED, name, f"<{out_el.tag} NO=\"{o_no}\">", oid, measure,
                    method, model, f"RevMan 5 stored estimate, {path.name}")
                if stored:
                    published.append(stored)
    trials = [{"study": nm, "year": yr, "source": f"{path.name}", **rob_items.get(sid, {})}
              for sid, (nm, yr) in studies.items()]
    return ImportedReview(name, outcomes, rows, trials, count_studies(published, rows), skipped)


def study_values(kind: str, get, file, where) -> dict:
    """Arm-level (or GIV) values of one study from a getter over RevMan field names."""
    if kind == "dichotomous":
        return {"events_t": number(get("EVENTS_1"), file, where, "EVENTS_1", True),
                "n_t": number(get("TOTAL_1"), file, where, "TOTAL_1", True),
                "events_c": number(get("EVENTS_2"), file, where, "EVENTS_2", True),
                "n_c": number(get("TOTAL_2"), file, where, "TOTAL_2", True)}
    if kind == "continuous":
        return {"mean_t": number(get("MEAN_1"), file, where, "MEAN_1"),
                "sd_t": number(get("SD_1"), file, where, "SD_1"),
                "n_t": number(get("TOTAL_1"), file, where, "TOTAL_1", True),
                "mean_c": number(get("MEAN_2"), file, where, "MEAN_2"),
                "sd_c": number(get("SD_2"), file, where, "SD_2"),
                "n_c": number(get("TOTAL_2"), file, where, "TOTAL_2", True)}
    return {"yi": number(get("EFFECT_SIZE"), file, where, "EFFECT_SIZE"),
            "sei": number(get("SE"), file, where, "SE"),
            "n_t": number(get("TOTAL_1"), file, where, "TOTAL_1", True),
            "n_c": number(get("TOTAL_2"), file, where, "TOTAL_2", True)}


# ---------------------------------------------------------------------------------------------
# RevMan 5 CSV export ("data and analyses")
# ---------------------------------------------------------------------------------------------

CSV_REQUIRED = ("Comparison Number", "Outcome Number", "Subgroup Number", "Name", "Data Type",
                "Statistical Method", "Effect Measure", "Analysis Model", "Events 1", "Mean 1",
                "SD 1", "Total 1", "Events 2", "Mean 2", "SD 2", "Total 2", "Effect Estimate",
                "CI Start", "CI End")


def read_csv_rows(path: Path, required) -> list[dict]:
    name = str(path)
    text = decode(path.read_bytes(), name)
    if not text.strip():
        raise InputError("file is empty", file=name)
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", file=name, column=missing[0])
    rows = list(reader)
    for i, r in enumerate(rows, start=2):
        short = [c for c in required if r.get(c) is None]
        if short:  # a short row: DictReader fills the missing cells with None
            raise InputError("row has fewer cells than the header", file=name, row=i,
                             column=short[0])
    return rows


def read_revman_csv(path: Path) -> ImportedReview:
    name = str(path)
    rows = read_csv_rows(path, CSV_REQUIRED)
    comparisons, outcomes, studies, published, skipped = {}, {}, [], [], []
    current = None
    for i, r in enumerate(rows, start=2):
        c_no = number(r["Comparison Number"], name, i, "Comparison Number", True)
        o_no = number(r["Outcome Number"], name, i, "Outcome Number", True)
        s_no = number(r["Subgroup Number"], name, i, "Subgroup Number", True) or 0
        if not o_no:
            comparisons[c_no] = r["Name"].strip()
            continue
        if r["Data Type"].strip():  # an outcome (or subgroup) header row
            kind = DATA_TYPES.get(r["Data Type"].strip().upper())
            measure = measure_name(r["Effect Measure"])
            oid = outcome_id(c_no, o_no, s_no, r["Name"].strip())
            if kind is None or measure is None or kind == "oe":
                skipped.append(f"{oid} ({r['Data Type']} / {r['Effect Measure']} not supported)")
                current = None
                continue
            method = r["Statistical Method"].strip() or "IV"
            model = r["Analysis Model"].strip().lower() or "fixed"
            current = (oid, kind, measure, c_no, o_no)
            outcomes[oid] = {"outcome": oid, "label": r["Name"].strip(),
                             "comparison": comparisons.get(c_no, ""), "measure": measure,
                             "method": method, "model": model,
                             "favours_left": r.get("Left Graph Label", "").strip(),
                             "favours_right": r.get("Right Graph Label", "").strip(),
                             "data_type": kind}
            stored = stored_estimate(lambda key: r.get(key, ""), CSV_STORED, name, i, oid,
                                     measure, method, model,
                                     f"RevMan 5 stored estimate, {path.name}")
            if stored:
                published.append(stored)
            continue
        if current is None:
            continue
        oid, kind, measure, c_no, o_no = current
        field = {"EVENTS_1": "Events 1", "TOTAL_1": "Total 1", "EVENTS_2": "Events 2",
                 "TOTAL_2": "Total 2", "MEAN_1": "Mean 1", "SD_1": "SD 1", "MEAN_2": "Mean 2",
                 "SD_2": "SD 2", "EFFECT_SIZE": "Effect Estimate", "SE": "SE"}
        row = {"outcome": oid, "study": r["Name"].strip(), "provenance": "printed",
               "source": f"{path.name}: comparison {c_no}, outcome {o_no}"}
        row.update(study_values(kind, lambda key: r.get(field[key], ""), name, i))
        studies.append(row)
    trials = [{"study": s, "year": "", "source": path.name}
              for s in sorted({r["study"] for r in studies})]
    return ImportedReview(name, list(outcomes.values()), studies, trials,
                          count_studies(published, studies), skipped)


# ---------------------------------------------------------------------------------------------
# RevMan Web data package (directory)
# ---------------------------------------------------------------------------------------------

def find_one(directory: Path, pattern: str) -> Path:
    found = sorted(directory.rglob(pattern))
    if not found:
        raise InputError(f"no file matching {pattern} (expected a RevMan Web data package)",
                         file=str(directory))
    return found[0]


def read_data_package(directory: Path) -> ImportedReview:
    data_path = find_one(directory, "*data-rows.csv")
    settings_path = find_one(directory, "*overall-estimates-and-settings.csv")
    rows = read_csv_rows(data_path, ("Analysis group", "Analysis number", "Analysis name",
                                     "Subgroup", "Study", "Experimental cases", "Experimental N",
                                     "Control cases", "Control N", "Experimental mean",
                                     "Experimental SD", "Control mean", "Control SD"))
    settings = read_csv_rows(settings_path, ("Analysis group", "Analysis number", "Analysis name",
                                             "Data type", "Statistical method", "Effect measure",
                                             "Analysis model", "Mean", "CI start", "CI end"))
    name_s, name_d = str(settings_path), str(data_path)
    outcomes, published, skipped, kinds = {}, [], [], {}
    for i, s in enumerate(settings, start=2):
        c_no = number(s["Analysis group"], name_s, i, "Analysis group", True)
        o_no = number(s["Analysis number"], name_s, i, "Analysis number", True)
        oid = outcome_id(c_no, o_no, 0, s["Analysis name"].strip())
        kind = DATA_TYPES.get(s["Data type"].strip().upper())
        measure = measure_name(s["Effect measure"])
        if kind is None or measure is None or kind == "oe":
            skipped.append(f"{oid} ({s['Data type']} / {s['Effect measure']} not supported)")
            continue
        model = "random" if "random" in s["Analysis model"].lower() else "fixed"
        method = s["Statistical method"].strip() or "IV"
        kinds[(c_no, o_no)] = (oid, kind, measure)
        outcomes[oid] = {"outcome": oid, "label": s["Analysis name"].strip(),
                         "comparison": s.get("Analysis group name", "").strip(),
                         "measure": measure, "method": method, "model": model,
                         "favours_left": "", "favours_right": "", "data_type": kind}
        stored = stored_estimate(lambda key: s.get(key, ""), PACKAGE_STORED, name_s, i, oid,
                                 measure, method, model,
                                 f"RevMan Web stored estimate, {settings_path.name}")
        if stored:
            published.append(stored)
    studies = []
    field = {"EVENTS_1": "Experimental cases", "TOTAL_1": "Experimental N",
             "EVENTS_2": "Control cases", "TOTAL_2": "Control N", "MEAN_1": "Experimental mean",
             "SD_1": "Experimental SD", "MEAN_2": "Control mean", "SD_2": "Control SD",
             "EFFECT_SIZE": "GIV Mean", "SE": "GIV SE"}
    for i, r in enumerate(rows, start=2):
        key = (number(r["Analysis group"], name_d, i, "Analysis group", True),
               number(r["Analysis number"], name_d, i, "Analysis number", True))
        if key not in kinds:
            continue
        oid, kind, measure = kinds[key]
        row = {"outcome": oid, "study": r["Study"].strip(), "provenance": "printed",
               "source": f"{data_path.name}: analysis {key[0]}.{key[1]}"}
        row.update(study_values(kind, lambda k: r.get(field[k], ""), name_d, i))
        studies.append(row)
    published = count_studies(published, studies)
    trials = {}
    info = sorted(directory.rglob("*study-information.csv"))
    for r in (read_csv_rows(info[0], ("Study",)) if info else []):
        trials[r["Study"].strip()] = {"study": r["Study"].strip(), "year": r.get("Year", ""),
                                      "source": info[0].name}
    rob = sorted(directory.rglob("*risk-of-bias.csv"))
    for r in (read_csv_rows(rob[0], ("Study",)) if rob else []):
        entry = trials.setdefault(r["Study"].strip(), {"study": r["Study"].strip(), "year": "",
                                                        "source": rob[0].name})
        for column, value in r.items():
            m = re.match(r"Domain \(judgement\): (.*)", column or "")
            if m:
                entry[f"rob: {m.group(1).strip()}"] = value.strip().lower()
    return ImportedReview(str(directory), list(outcomes.values()), studies, list(trials.values()),
                          published, skipped)


# ---------------------------------------------------------------------------------------------
# dispatch and writing
# ---------------------------------------------------------------------------------------------

def read_review(path: str | Path) -> ImportedReview:
    """Read any of the three formats, chosen by what the path is."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or directory", file=str(path))
    if path.is_dir():
        return read_data_package(path)
    head = path.read_bytes()[:400].lstrip(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"<"):
        return read_rm5(path)
    if head.startswith(b"Comparison Number"):
        return read_revman_csv(path)
    raise InputError("not a RevMan file: expected RevMan 5 XML (.rm5), a RevMan 5 CSV export or "
                     "a RevMan Web data package directory", file=str(path))


def benefit_from_labels(o: dict) -> str:
    """RevMan draws 'Favours experimental' on the side where the experimental arm does better."""
    left, right = o["favours_left"].lower(), o["favours_right"].lower()
    experimental = ("experimental", "intervention", "treatment")
    if any(w in left for w in experimental) and "control" in right:
        return "lower"
    if any(w in right for w in experimental) and "control" in left:
        return "higher"
    return ""


def table_csv(rows: list[dict], fields: list[str]) -> str:
    extra = sorted({k for r in rows for k in r} - set(fields))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields + extra, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else (repr(v) if isinstance(v, float) else v))
                         for k, v in r.items()})
    return buf.getvalue()


def review_files(review: ImportedReview, benefit: str | None) -> tuple[dict[str, str], list[str]]:
    """outcomes/studies/trials/published CSV text, and hints for the user."""
    hints = []
    outcomes = []
    for o in review.outcomes:
        o = dict(o)
        chosen = benefit_from_labels(o) if benefit == "from-labels" else (benefit or "")
        o.update({"benefit": chosen or "unknown", "timepoint": "", "mcid": "",
                  "outcome_type": ""})
        if not chosen:
            hint = benefit_from_labels(o) or "?"
            hints.append(f"{o['outcome']}: set benefit (lower or higher); RevMan labels: left "
                         f"'{o['favours_left']}', right '{o['favours_right']}' (suggests {hint})")
        outcomes.append(o)
    studies = sorted(review.studies, key=lambda r: (r["outcome"], r["study"]))
    files = {"outcomes.csv": table_csv(outcomes, OUTCOME_FIELDS),
             "studies.csv": table_csv(studies, STUDY_FIELDS),
             "trials.csv": table_csv(sorted(review.trials, key=lambda t: t["study"]),
                                     ["study", "year", "source"])}
    if review.published:
        files["published.csv"] = table_csv(review.published, PUBLISHED_FIELDS)
    return files, hints


def validate_files(files: dict[str, str], where: str) -> None:
    """Check the files an import would write exactly as `load` will read them, in memory.

    A benefit left 'unknown' (for the user to set) is valid data: `list`, `dl` and
    `compare-priors` work; `fit` and `report` ask for it.
    """
    import pandas as pd

    from bayes_pip.data import load_frames

    def frame(name):
        return pd.read_csv(io.StringIO(files[name]), dtype=str, keep_default_na=False) \
            if name in files else None

    outcomes = frame("outcomes.csv")
    try:
        load_frames(outcomes, frame("studies.csv"), frame("published.csv"), frame("trials.csv"))
    except InputError as exc:
        exc.file = (exc.file or "").replace("<DataFrames>", where)
        raise InputError(exc.message, exc.file, exc.row, exc.column) from None
