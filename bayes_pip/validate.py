"""The data schema and its checks: what each file of a data directory must hold
(outcomes.csv, studies.csv, trials.csv, published.csv, constraints.csv, dataset.toml), checked
once at load time; each problem is one InputError naming the file, row and column. The CSV
grammar is :mod:`bayes_pip.tables`; what an outcome's data support is :mod:`bayes_pip.data`."""

from __future__ import annotations

import difflib
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_pip import measures, reconstruct
from bayes_pip import design
from bayes_pip.categorical_data import (CATEGORICAL, refuse_categorical_rows,
                                        validate_outcome_fields)
from bayes_pip.errors import DataWarning, InputError

from bayes_pip.tables import (csv_row, parse_number, check_choice, identifier_problem,
                              check_identifier, check_label, check_nonempty, warn_missing_sources)


DICHOTOMOUS_MEASURES = measures.names_where(lambda m: m.is_dichotomous)


BENEFITS = ("lower", "higher", "unknown")  # unknown: an import without --benefit; no P(benefit)


# intervention comparison types of the empirical heterogeneity priors (Turner et al. 2015 Table IV
# columns; Rhodes et al. 2015 Table 3 columns, where every non-pharmacological type is one column)
COMPARISON_TYPES = ("nonpharm_vs_control", "nonpharm_vs_pharm", "nonpharm_vs_nonpharm",
                    "pharm_vs_control", "pharm_vs_pharm")


OUTCOME_COLUMNS = ("outcome", "label", "comparison", "measure", "benefit")


STUDY_COLUMNS = ("outcome", "study", "source")


PUBLISHED_COLUMNS = ("outcome", "measure", "estimate", "ci_low", "ci_high", "k", "source")


TRIAL_COLUMNS = ("study", "source")


CONSTRAINT_COLUMNS = ("outcome", "study", "arm", "field", "min", "max", "source")


PROVENANCES = ("printed", "derived", "inferred")


MAX_ARM = 10_000_000  # participants in one trial arm (bounds in constraints.csv)


COUNT_COLUMNS = ("events_t", "n_t", "events_c", "n_c")


CONTINUOUS_COLUMNS = ("mean_t", "sd_t", "mean_c", "sd_c")


def validate_outcomes(frame: pd.DataFrame, file: str) -> pd.DataFrame:
    if frame.empty:
        raise InputError("no outcome rows (expected at least one outcome)", file=file)
    for column in ("outcome", "label", "comparison"):
        check_nonempty(frame, column, file)
    check_identifier(frame, "outcome", file)
    check_label(frame, "label", file)
    check_label(frame, "comparison", file)
    check_choice(frame, "measure", (*measures.NAMES, CATEGORICAL), file)
    check_choice(frame, "benefit", BENEFITS, file)
    duplicated = frame["outcome"].duplicated()
    if duplicated.any():
        i = int(np.flatnonzero(duplicated)[0])
        raise InputError(f"outcome '{frame['outcome'].iloc[i]}' is defined twice", file=file,
                         row=csv_row(i), column="outcome")
    frame = frame.copy()
    for optional in ("timepoint", "outcome_type", "comparison_type", "phrase", "mcid_source"):
        if optional not in frame.columns:
            frame[optional] = ""
    check_label(frame, "phrase", file)
    for i, value in enumerate(frame["comparison_type"]):
        if isinstance(value, str) and value and value not in COMPARISON_TYPES:
            raise InputError(f"unknown comparison type {value[:40]!r} (allowed: "
                             f"{', '.join(COMPARISON_TYPES)}, or empty)", file=file,
                             row=csv_row(i), column="comparison_type")
    mcid = parse_number(frame, "mcid", file, required=False)
    for i, (m, measure, benefit) in enumerate(zip(mcid, frame["measure"], frame["benefit"])):
        if math.isnan(m):
            continue
        if measure == CATEGORICAL:
            raise InputError("a categorical outcome takes no mcid (its effects are per "
                             "category)", file=file, row=csv_row(i), column="mcid")
        scale = measures.get(measure)
        if benefit == "unknown":
            raise InputError(f"mcid {m:g} needs a direction of benefit: set benefit to lower or "
                             "higher, or leave mcid empty", file=file, row=csv_row(i),
                             column="mcid")
        if scale.is_ratio and m <= 0:
            raise InputError(f"mcid {m:g} must be a ratio greater than 0 for {measure}",
                             file=file, row=csv_row(i), column="mcid")
        # the MCID is an effect in the direction of benefit, beyond no effect
        if (m < scale.null) != (benefit == "lower") or m == scale.null:
            side = "below" if benefit == "lower" else "above"
            raise InputError(f"mcid {m:g} is on the side of harm: with benefit '{benefit}' it "
                             f"must be {side} {scale.null:g} ({measure})", file=file,
                             row=csv_row(i), column="mcid")
    frame["mcid"] = mcid
    return validate_outcome_fields(frame, file)


# study columns are named by role: _t the intervention arm, _c the comparator arm (metafor's
# escalc calls them 1 and 2); the names before that are still read, with a warning
OLD_STUDY_COLUMNS = {f"{field}_{old}": f"{field}_{new}"
                     for field in ("events", "n", "mean", "sd", "arm")
                     for old, new in (("pip", "t"), ("ctrl", "c"))}


def neutral_columns(frame: pd.DataFrame, file: str) -> pd.DataFrame:
    """``frame`` with old study column names (events_pip, n_ctrl, ...) renamed by role
    (events_t, n_c, ...), warning once in one line naming the file; a file with both the old
    and the new name of one column is refused."""
    old = [c for c in frame.columns if c in OLD_STUDY_COLUMNS]
    if not old:
        return frame
    both = [c for c in old if OLD_STUDY_COLUMNS[c] in frame.columns]
    if both:
        raise InputError(f"columns '{both[0]}' and '{OLD_STUDY_COLUMNS[both[0]]}' are the same "
                         "column under its old and new name; keep the new one", file=file,
                         row=1, column=both[0])
    warnings.warn(DataWarning(
        f"{file}: old column names {', '.join(old)} read as "
        f"{', '.join(OLD_STUDY_COLUMNS[c] for c in old)} (_t intervention, _c comparator); "
        "rename them, the old names are deprecated"))
    return frame.rename(columns=OLD_STUDY_COLUMNS)


def validate_studies(frame: pd.DataFrame, outcomes: pd.DataFrame, file: str) -> pd.DataFrame:
    frame = neutral_columns(frame.copy(), file)
    if not {"yi", "sei"} <= set(frame.columns):
        missing = [c for c in ("n_t", "n_c") if c not in frame.columns]
        if missing:
            raise InputError(f"missing required column(s) {', '.join(missing)} (required: "
                             "outcome, study, n_t, n_c, source; or yi and sei for generic "
                             "inverse variance)", file=file, column=missing[0])
    for column in ("outcome", "study"):
        check_nonempty(frame, column, file)
    warn_missing_sources(frame, file)
    check_label(frame, "study", file)
    measure_of = dict(zip(outcomes["outcome"], outcomes["measure"]))
    for i, outcome in enumerate(frame["outcome"]):
        if outcome not in measure_of:
            close = difflib.get_close_matches(outcome, list(measure_of), n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise InputError(f"outcome '{outcome}' is not defined in outcomes.csv{hint}",
                             file=file, row=csv_row(i), column="outcome")
    refuse_categorical_rows(frame, outcomes, file, "studies.csv")
    for column in design.ARM_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
        check_label(frame, column, file)
    duplicated = frame.duplicated(subset=["outcome", "study", *design.ARM_COLUMNS])
    if duplicated.any():
        i = int(np.flatnonzero(duplicated)[0])
        raise InputError(f"study '{frame['study'].iloc[i]}' appears twice for outcome "
                         f"'{frame['outcome'].iloc[i]}' (a multi-arm trial's rows name their arms "
                         "in arm_t and arm_c)", file=file, row=csv_row(i), column="study")
    validate_cluster_columns(frame, file)
    measure = frame["outcome"].map(measure_of)
    # generic inverse variance rows give the effect (analysis scale) and its SE directly
    for column in ("yi", "sei"):
        frame[column] = parse_number(frame, column, file, required=False,
                                     strictly_positive=column == "sei")
    giv = (frame["yi"].notna() & frame["sei"].notna()).to_numpy()
    half = (frame["yi"].notna() ^ frame["sei"].notna()).to_numpy()
    if half.any():
        i = int(np.flatnonzero(half)[0])
        raise InputError("yi and sei must be given together (generic inverse variance)",
                         file=file, row=csv_row(i), column="sei" if frame["yi"].notna().iloc[i] else "yi")
    for outcome_id in frame["outcome"].unique():
        rows = (frame["outcome"] == outcome_id).to_numpy()
        if giv[rows].any() and not giv[rows].all():
            i = int(np.flatnonzero(rows & (giv != giv[np.flatnonzero(rows)[0]]))[0])
            raise InputError(f"outcome '{outcome_id}' mixes generic inverse-variance rows (yi, sei)"
                             " with arm-level rows; give every study of an outcome the same way",
                             file=file, row=csv_row(i), column="yi")
    dichotomous = measure.isin(DICHOTOMOUS_MEASURES).to_numpy() & ~giv
    continuous = ~measure.isin(DICHOTOMOUS_MEASURES).to_numpy() & ~giv
    # arm sizes: required unless the row gives yi and sei
    for column in ("n_t", "n_c"):
        values = parse_number(frame, column, file, required=False, integer=True, minimum=0)
        for i in np.flatnonzero(~giv & ~(values > 0).to_numpy()):
            if math.isnan(values.iloc[i]):
                raise InputError("value is missing (a number is required here)", file=file,
                                 row=csv_row(i), column=column)
            raise InputError(f"{values.iloc[i]:g} must be greater than 0", file=file,
                             row=csv_row(i), column=column)
        frame[column] = values.fillna(0.0)
    # event counts: required for RR/OR rows
    for column in ("events_t", "events_c"):
        if dichotomous.any() and column not in frame.columns:
            raise InputError(f"missing required column {column} (needed for RR/OR outcomes)",
                             file=file, column=column)
        values = parse_number(frame, column, file, required=False, integer=True, minimum=0)
        for i in np.flatnonzero(dichotomous & values.isna().to_numpy()):
            raise InputError("value is missing (event counts are required for RR/OR outcomes)",
                             file=file, row=csv_row(i), column=column)
        frame[column] = values
    for events, n in (("events_t", "n_t"), ("events_c", "n_c")):
        too_many = (dichotomous & (frame[events] > frame[n]).to_numpy())
        if too_many.any():
            i = int(np.flatnonzero(too_many)[0])
            raise InputError(f"{frame[events].iloc[i]:g} events is more than {n} = "
                             f"{frame[n].iloc[i]:g}", file=file, row=csv_row(i), column=events)
    # means and SDs: required for SMD/MD rows
    for column in CONTINUOUS_COLUMNS:
        if continuous.any() and column not in frame.columns:
            raise InputError(f"missing required column {column} (needed for SMD/MD outcomes)",
                             file=file, column=column)
        values = parse_number(frame, column, file, required=False)
        for i in np.flatnonzero(continuous & values.isna().to_numpy()):
            raise InputError("value is missing (means and SDs are required for SMD/MD outcomes)",
                             file=file, row=csv_row(i), column=column)
        if column.startswith("sd"):
            bad = continuous & (values <= 0).to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(f"SD {values.iloc[i]:g} must be greater than 0", file=file,
                                 row=csv_row(i), column=column)
        frame[column] = values
    for column in ("n_t", "n_c"):
        small = continuous & (frame[column] < 2).to_numpy()
        if small.any():
            i = int(np.flatnonzero(small)[0])
            raise InputError("an arm with a mean and SD needs at least 2 participants",
                             file=file, row=csv_row(i), column=column)
    if "provenance" not in frame.columns:
        frame["provenance"] = ""
    return frame


def validate_cluster_columns(frame: pd.DataFrame, file: str) -> None:
    """Optional icc (0 <= icc < 1) and cluster_size (mean cluster size, >= 1), given together."""
    icc = parse_number(frame, "icc", file, required=False, minimum=0)
    size = parse_number(frame, "cluster_size", file, required=False, minimum=1)
    for i in np.flatnonzero((icc >= 1).to_numpy()):
        raise InputError(f"icc {icc.iloc[i]:g} must be below 1 (an intra-cluster correlation)",
                         file=file, row=csv_row(i), column="icc")
    half = (icc.notna() ^ size.notna()).to_numpy()
    for i in np.flatnonzero(half):
        raise InputError("icc and cluster_size must be given together (the design effect is "
                         "1 + (cluster_size - 1) icc)", file=file, row=csv_row(i),
                         column="cluster_size" if icc.notna().iloc[i] else "icc")
    frame["icc"], frame["cluster_size"] = icc, size


RISK_OF_BIAS_VALUES = ("low", "high", "unclear", "")   # trials.csv rob_<domain> judgements


def validate_trials(frame: pd.DataFrame, file: str) -> pd.DataFrame:
    """trials.csv: free-text characteristics, plus the design columns the analysis reads."""
    frame = frame.copy()
    warn_missing_sources(frame, file)
    if "cluster_randomised" in frame.columns:
        check_choice(frame, "cluster_randomised", ("yes", "no", ""), file)
    for column in frame.columns:   # risk-of-bias judgements, one column per domain
        if column.startswith("rob_"):
            check_choice(frame, column, RISK_OF_BIAS_VALUES, file)
    validate_cluster_columns(frame, file)
    return frame


def warn_shared_arms(studies: pd.DataFrame, outcomes: pd.DataFrame) -> None:
    """An arm in two comparisons of the review is fine for separate analyses (a shared control);
    say so, since pooling those comparisons together would count it twice."""
    if not set(design.ARM_COLUMNS) <= set(studies.columns):
        return
    labelled = studies[(studies["arm_t"] != "") | (studies["arm_c"] != "")]
    if labelled.empty:
        return
    comparison = dict(zip(outcomes["outcome"], outcomes["comparison"]))
    for side in ("t", "c"):
        used = labelled[labelled[f"arm_{side}"] != ""]
        for (study, arm), group in used.groupby(["study", f"arm_{side}"], sort=False):
            comparisons = sorted({comparison[o] for o in group["outcome"]})
            if len(comparisons) > 1:
                warnings.warn(DataWarning(
                    f"study '{study}': its arm '{arm}' is in comparisons "
                    f"{' and '.join(comparisons)}; fine for separate meta-analyses, but never "
                    "pool those comparisons together (the arm would count twice)"), stacklevel=2)


def validate_published(frame: pd.DataFrame, outcomes: pd.DataFrame, file: str) -> pd.DataFrame:
    frame = frame.copy()
    measure_of = dict(zip(outcomes["outcome"], outcomes["measure"]))
    warn_missing_sources(frame, file)
    for i, (outcome, measure) in enumerate(zip(frame["outcome"], frame["measure"])):
        if outcome not in measure_of:
            raise InputError(f"outcome '{outcome}' is not defined in outcomes.csv", file=file,
                             row=csv_row(i), column="outcome")
        if measure_of[outcome] == CATEGORICAL:
            raise InputError(f"outcome '{outcome}' is categorical: its counts go in "
                             "categories.csv, not in published.csv", file=file, row=csv_row(i),
                             column="outcome")
        if measure != measure_of[outcome]:
            raise InputError(f"measure {measure} differs from outcomes.csv ({measure_of[outcome]})",
                             file=file, row=csv_row(i), column="measure")
    if frame["outcome"].duplicated().any():
        i = int(np.flatnonzero(frame["outcome"].duplicated())[0])
        raise InputError(f"outcome '{frame['outcome'].iloc[i]}' has two published results",
                         file=file, row=csv_row(i), column="outcome")
    for column in ("estimate", "ci_low", "ci_high"):
        frame[column] = parse_number(frame, column, file, required=True)
    frame["k"] = parse_number(frame, "k", file, required=True, integer=True, strictly_positive=True)
    frame["participants"] = parse_number(frame, "participants", file, required=False,
                                         integer=True, strictly_positive=True)
    for i, r in enumerate(frame.itertuples(index=False)):
        if measures.get(r.measure).is_ratio:
            for column in ("estimate", "ci_low", "ci_high"):
                if getattr(r, column) <= 0:
                    raise InputError(f"a {r.measure} must be greater than 0", file=file,
                                     row=csv_row(i), column=column)
        if not r.ci_low < r.estimate < r.ci_high:
            raise InputError(f"estimate {r.estimate:g} is not inside its CI "
                             f"[{r.ci_low:g}, {r.ci_high:g}]", file=file, row=csv_row(i),
                             column="estimate")
        scale = measures.get(r.measure)
        with np.errstate(all="ignore"):
            width = float(scale.to_analysis(r.ci_high) - scale.to_analysis(r.ci_low))
        if not math.isfinite(width):   # the standard error recovered from it would be inf
            raise InputError(f"the CI [{r.ci_low:g}, {r.ci_high:g}] is wider than a "
                             "floating-point number can hold; check the printed values",
                             file=file, row=csv_row(i), column="ci_high")
    for column in ("model", "grade"):
        if column not in frame.columns:
            frame[column] = ""
    return frame


METADATA_DEFAULTS = {"title": "", "citation": "", "intervention": "the intervention",
                     "comparator": "control", "limits": "", "comparisons": {}}


METADATA_TEXT_MAX = 4000


def read_metadata(path: Path) -> dict:
    """dataset.toml (optional): title, citation, intervention and comparator names, a limits
    paragraph, and per-comparison intervention names; every value is plain text."""
    import tomllib

    meta = dict(METADATA_DEFAULTS)
    if not path.exists():
        return meta
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"not a readable TOML file ({exc})", file=str(path)) from None
    for key, value in spec.items():
        if key not in METADATA_DEFAULTS:
            raise InputError(f"unknown key '{key[:40]}' (allowed: "
                             f"{', '.join(METADATA_DEFAULTS)})", file=str(path), column=key)
        if key == "comparisons":
            ok = isinstance(value, dict) and all(
                isinstance(v, dict) and set(v) <= {"intervention"}
                and all(isinstance(x, str) and len(x) <= 200 for x in v.values())
                for v in value.values())
            if not ok:
                raise InputError("comparisons must be tables with an 'intervention' text",
                                 file=str(path), column="comparisons")
        elif not isinstance(value, str) or len(value) > METADATA_TEXT_MAX or any(
                ord(ch) < 32 and ch not in "\n\t" for ch in value):
            raise InputError(f"must be text of at most {METADATA_TEXT_MAX} characters",
                             file=str(path), column=key)
        meta[key] = value
    return meta


def validate_constraints(frame: pd.DataFrame, outcomes: pd.DataFrame, file: str) -> pd.DataFrame:
    """constraints.csv: one row per bounded cell (outcome, study, arm t|c, field n|events,
    min, max, source; optional group, partition, provenance). The old arm codes pip|ctrl are
    read as t|c with a warning."""
    frame = frame.copy()
    old = frame["arm"].isin(list(reconstruct.OLD_ARMS))
    if old.any():
        warnings.warn(DataWarning(
            f"{file}: old arm codes pip/ctrl read as t/c (t intervention, c comparator); "
            "rename them, the old codes are deprecated"))
        frame.loc[old, "arm"] = frame.loc[old, "arm"].map(reconstruct.OLD_ARMS)
    for optional in ("group", "partition", "provenance"):
        if optional not in frame.columns:
            frame[optional] = ""
    check_label(frame, "study", file)
    check_nonempty(frame, "source", file)
    check_choice(frame, "arm", reconstruct.ARMS, file)
    check_choice(frame, "field", reconstruct.FIELDS, file)
    known = set(outcomes["outcome"])
    for i, o in enumerate(frame["outcome"]):
        if o not in known:
            raise InputError(f"outcome '{o}' is not defined in outcomes.csv", file=file,
                             row=csv_row(i), column="outcome")
    refuse_categorical_rows(frame, outcomes, file, "constraints.csv")
    for i, value in enumerate(frame["provenance"]):
        if value and value not in PROVENANCES:
            raise InputError(f"'{value[:40]}' is not allowed (allowed: "
                             f"{', '.join(PROVENANCES)}, or empty)", file=file, row=csv_row(i),
                             column="provenance")
    for column in ("group", "partition"):
        for i, value in enumerate(frame[column]):
            if value and identifier_problem(value):
                raise InputError(f"{column} {value[:40]!r} {identifier_problem(value)}",
                                 file=file, row=csv_row(i), column=column)
    low = parse_number(frame, "min", file, required=True, integer=True, minimum=0)
    high = parse_number(frame, "max", file, required=True, integer=True, minimum=0)
    for i, (a, b, fld) in enumerate(zip(low, high, frame["field"])):
        if b > MAX_ARM:
            raise InputError(f"max {b:g} is more than bayes_pip accepts for one arm "
                             f"({MAX_ARM:,})", file=file, row=csv_row(i), column="max")
        if a > b:
            raise InputError(f"min {a:g} is greater than max {b:g}", file=file, row=csv_row(i),
                             column="min")
        if fld == "n" and b < 1:
            raise InputError("an arm size must be at least 1", file=file, row=csv_row(i),
                             column="max")
    frame["min"], frame["max"] = low.astype(int), high.astype(int)
    key = frame[["outcome", "study", "arm", "field"]].duplicated()
    if key.any():
        i = int(np.flatnonzero(key)[0])
        raise InputError("this cell (outcome, study, arm, field) is bounded twice", file=file,
                         row=csv_row(i), column="field")
    return frame

