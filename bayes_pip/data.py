"""Read and validate a review's data directory.

A data directory holds (see README, "Data schema"):

- ``outcomes.csv``  one row per outcome: outcome, label, comparison, measure, benefit, timepoint, mcid
- ``studies.csv``   one row per study x outcome (arm-level counts or means/SDs), with its source
- ``trials.csv``    optional, one row per trial (design, population, risk of bias, source)
- ``published.csv`` optional, pooled results as the review printed them
- ``constraints.csv`` optional, bounds on arm sizes and counts (with their sources) from which
  the integer tables behind a printed pooled result are reconstructed (:mod:`bayes_pip.reconstruct`)

Everything is validated once, here, at load time. Any problem raises :class:`InputError` naming the
file, the row (as a spreadsheet shows it: the header is row 1) and the column. Extra columns are kept.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import math
import re
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_pip import measures, reconstruct
from bayes_pip.bundled import bundled_path
from bayes_pip import design
from bayes_pip.errors import DataWarning, InputError

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
LEVELS = ("auto", "study", "reconstructed", "summary")
MAX_FILE_BYTES = 50_000_000  # a Cochrane review's tables are kilobytes
NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

# identifiers from data files are data, never paths: outcome and prior ids name output files, so
# they are restricted to a safe set; study names are labels (spaces allowed) without control
# characters. See check_identifier / check_label.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
ID_MAX = 100
LABEL_MAX = 200
RESERVED_IDS = frozenset({"summary_of_findings", "con", "prn", "aux", "nul", *(
    f"{d}{i}" for d in ("com", "lpt") for i in range(1, 10))})


def bundled_data_dir() -> Path:
    """Directory of the bundled PIP review data (Barlow et al. 2015, CD010534.pub2)."""
    return bundled_path("data", "pip")


# ---------------------------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """One outcome definition (a row of outcomes.csv)."""

    outcome: str
    label: str
    comparison: str
    measure: str
    benefit: str
    timepoint: str
    mcid: float | None
    outcome_type: str = ""
    comparison_type: str = ""   # one of COMPARISON_TYPES; picks the empirical prior's column
    intervention: str = "the intervention"   # how texts name it (dataset.toml)
    method: str = ""   # analysis method a RevMan file names (MH, IV, Peto), if any
    model: str = ""    # fixed or random, if the source names it
    phrase: str = ""   # noun phrase for sentences ("the incidence of parental depression")
    mcid_source: str = ""  # where the MCID comes from; empty: an assumed value

    @property
    def noun_phrase(self) -> str:
        """What sentences say the intervention changes: the ``phrase`` column, or the label
        quoted as a name (never spliced into a sentence as if it were a noun phrase)."""
        return self.phrase or f"the outcome '{self.label}'"

    @property
    def scale(self) -> measures.Measure:
        """What the outcome's measure is (scale, null, transforms): see :mod:`bayes_pip.measures`."""
        return measures.get(self.measure)

    @property
    def is_ratio(self) -> bool:
        return self.scale.is_ratio

    @property
    def is_dichotomous(self) -> bool:
        return self.scale.is_dichotomous


@dataclass(frozen=True)
class Published:
    """A pooled result as the review printed it (a row of published.csv)."""

    outcome: str
    measure: str
    estimate: float
    ci_low: float
    ci_high: float
    k: int
    participants: int | None
    model: str
    grade: str
    source: str


@dataclass(frozen=True)
class DataStatus:
    """What an outcome has: study rows (k, participants), a published result, the level to use."""

    k_studies: int
    participants: int
    published_k: int | None
    level: str | None  # "study", "summary" or None (nothing to analyse)
    description: str


def data_status(rows: pd.DataFrame, published: Published | None,
                reconstruction: reconstruct.Reconstruction | None = None) -> DataStatus:
    """Decide which level an outcome is analysed at (the level policy).

    Study level when the study rows cover all the studies the review pooled (or there is no
    published result); otherwise tables reconstructed from every printed number when at least
    one is consistent (constraints.csv); otherwise the published pooled estimate (summary
    level); otherwise nothing.
    """
    k = len(rows)
    participants = int(rows["n_t"].sum() + rows["n_c"].sum()) if k else 0
    if k and (published is None or k >= published.k):
        return DataStatus(k, participants, published.k if published else None, "study",
                          f"study data, k = {k}")
    if reconstruction is not None and reconstruction.n_solutions:
        return DataStatus(k, participants, published.k, "reconstructed",
                          reconstructed_phrase(reconstruction))
    if published is not None:
        what = (f"study data for {k} of {published.k} studies; published pooled result used"
                if k else "published pooled result only")
        if reconstruction is not None and not reconstruction.searched:
            what += (f" (tables not reconstructed: {reconstruction.n_candidates:,} candidates "
                     "exceed the search budget; see `reconstruct --max-candidates`)")
        return DataStatus(k, participants, published.k, "summary", what)
    return DataStatus(0, 0, None, None, "no data yet")


def forced_status(status: DataStatus, level: str, published: Published | None,
                  rec: reconstruct.Reconstruction | None) -> DataStatus:
    """The data status of a level chosen with --level (not the one the policy would choose)."""
    if level == "study":
        part = (f" of the {published.k} the review pooled (partial)"
                if published is not None and status.k_studies < published.k else "")
        what = f"study data for {status.k_studies} studies{part}"
        if status.k_studies == 1:
            what = f"study data for 1 study{part}"
    elif level == "reconstructed":
        what = reconstructed_phrase(rec)
    else:
        what = ("published pooled result used" + (
            f" (study data for {status.k_studies} of {published.k} studies not used)"
            if status.k_studies else ""))
    return DataStatus(status.k_studies, status.participants, status.published_k, level, what)


def reconstructed_phrase(r: reconstruct.Reconstruction) -> str:
    """How reconstructed data are labelled everywhere: never as printed data."""
    n = r.n_solutions
    which = ("the only table" if n == 1 else f"{n} tables")
    return (f"reconstructed: {which} consistent with every printed number "
            f"(k = {len(r.studies)}; not printed data)")


@dataclass(frozen=True)
class Resolved:
    """One outcome looked up once: its definition, study rows, published result, data status
    and the level it is analysed at. Every later stage reads this record."""

    outcome: Outcome
    rows: pd.DataFrame
    published: Published | None
    status: DataStatus
    level: str | None
    directory: Path
    reconstruction: reconstruct.Reconstruction | None = None
    adjustments: tuple[str, ...] = ()  # multi-arm and cluster adjustments applied to the rows

    def with_rows(self, rows: pd.DataFrame) -> "Resolved":
        """The same outcome at study level on ``rows`` (e.g. one reconstructed table)."""
        return dataclasses.replace(self, rows=rows, level="study", reconstruction=None)

    def table_rows(self) -> list[pd.DataFrame]:
        """Each reconstructed table as study rows (the studies.csv columns), provenance
        'reconstructed'."""
        r = self.reconstruction
        rows = []
        for t in r.tables:
            rows.append(pd.DataFrame({
                "outcome": self.outcome.outcome, "study": list(r.studies),
                "events_t": t[:, 0].astype(float), "n_t": t[:, 1].astype(float),
                "events_c": t[:, 2].astype(float), "n_c": t[:, 3].astype(float),
                "provenance": "reconstructed", "source": "reconstructed (constraints.csv)"}))
        return rows

    @property
    def studies_file(self) -> str:
        return str(self.directory / "studies.csv")


@dataclass(frozen=True)
class Dataset:
    """A validated data directory: frames keep every column the user gave, in file order."""

    directory: Path
    outcomes: pd.DataFrame
    studies: pd.DataFrame
    trials: pd.DataFrame | None
    published: pd.DataFrame | None
    constraints: pd.DataFrame | None = None
    metadata: dict = field(default_factory=lambda: dict(METADATA_DEFAULTS))
    multi_arm: str = "refuse"   # how a shared arm in one meta-analysis is handled (design.py)
    search_budget: int = reconstruct.MAX_CANDIDATES  # candidate tables a reconstruction may test
    _reconstructed: dict = field(default_factory=dict, compare=False, repr=False)

    def with_search_budget(self, budget: int) -> "Dataset":
        """The same data with another reconstruction budget (--max-candidates)."""
        return dataclasses.replace(self, search_budget=int(budget), _reconstructed={})

    def with_moderator_kind(self, name: str, kind: str) -> "Dataset":
        """The same data with a moderator read as ``kind`` (e.g. a numeric code as categories)."""
        declared = dict(self.metadata.get("moderators") or {})
        declared[name] = {"kind": kind}
        return dataclasses.replace(self, metadata={**self.metadata, "moderators": declared})

    def with_multi_arm(self, mode: str) -> "Dataset":
        """The same data with a multi-arm remedy (refuse, split or combine)."""
        if mode not in design.MULTI_ARM:
            raise InputError(f"--multi-arm must be one of {', '.join(design.MULTI_ARM)}")
        return dataclasses.replace(self, multi_arm=mode, _reconstructed=self._reconstructed)

    def intervention_for(self, comparison: str) -> str:
        """The intervention's name in sentences for a comparison (dataset.toml)."""
        table = self.metadata.get("comparisons", {}).get(comparison, {})
        return table.get("intervention") or self.metadata["intervention"]

    def outcome_ids(self) -> list[str]:
        return list(self.outcomes["outcome"])

    def outcome(self, outcome_id: str) -> Outcome:
        """The outcome definition, or an InputError that suggests close names."""
        rows = self.outcomes[self.outcomes["outcome"] == outcome_id]
        if rows.empty:
            close = difflib.get_close_matches(outcome_id, self.outcome_ids(), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else "; run `python -m bayes_pip list`"
            raise InputError(f"unknown outcome '{outcome_id}'{hint}",
                             file=str(self.directory / "outcomes.csv"))
        r = rows.iloc[0]
        mcid = r.get("mcid")
        return Outcome(outcome=r["outcome"], label=r["label"], comparison=r["comparison"],
                       measure=r["measure"], benefit=r["benefit"],
                       timepoint=str(r.get("timepoint", "") or ""),
                       mcid=None if mcid is None or pd.isna(mcid) else float(mcid),
                       outcome_type=str(r.get("outcome_type", "") or ""),
                       comparison_type=str(r.get("comparison_type", "") or ""),
                       intervention=self.intervention_for(r["comparison"]),
                       method=str(r.get("method", "") or ""), model=str(r.get("model", "") or ""),
                       phrase=str(r.get("phrase", "") or "").strip(),
                       mcid_source=str(r.get("mcid_source", "") or "").strip())

    def status(self, outcome_id: str) -> DataStatus:
        return data_status(self.study_rows(outcome_id), self.published_result(outcome_id),
                           self.reconstruction(outcome_id))

    # -- reconstruction (constraints.csv) --------------------------------------------------

    def reconstruction(self, outcome_id: str) -> reconstruct.Reconstruction | None:
        """The tables consistent with an outcome's printed result, or None without constraints.

        Outcomes tied by a shared ``group`` or ``partition`` are reconstructed together, once
        per data set.
        """
        if self.constraints is None or outcome_id not in set(self.constraints["outcome"]):
            return None
        if outcome_id not in self._reconstructed:
            linked = self.linked_outcomes(outcome_id)
            problems = [self.reconstruction_problem(o) for o in linked]
            try:
                results = reconstruct.reconstruct_jointly(problems, budget=self.search_budget)
            except ValueError as exc:
                raise InputError(str(exc), file=self.constraints_file) from None
            self._reconstructed.update({r.outcome: r for r in results})
        return self._reconstructed[outcome_id]

    @property
    def constraints_file(self) -> str:
        return str(self.directory / "constraints.csv")

    def linked_outcomes(self, outcome_id: str) -> list[str]:
        """The outcome and every outcome it shares a group or partition with (transitively)."""
        frame = self.constraints
        keys = {}
        for o, g, p, s, a in zip(frame["outcome"], frame["group"], frame["partition"],
                                 frame["study"], frame["arm"]):
            keys.setdefault(o, set())
            if g:
                keys[o].add(("group", g))
            if p:
                keys[o].add(("partition", s, a, p))
        found, todo = [outcome_id], [outcome_id]
        while todo:
            mine = keys.get(todo.pop(), set())
            for other, theirs in keys.items():
                if other not in found and mine & theirs:
                    found.append(other)
                    todo.append(other)
        order = list(dict.fromkeys(frame["outcome"]))
        return sorted(found, key=order.index)

    def reconstruction_problem(self, outcome_id: str) -> reconstruct.Problem:
        outcome = self.outcome(outcome_id)
        published = self.published_result(outcome_id)
        rows = self.constraints[self.constraints["outcome"] == outcome_id]
        file = self.constraints_file
        if published is None:
            raise InputError(f"outcome '{outcome_id}' has constraints but no published pooled "
                             "result to reconstruct", file=file, column="outcome")
        if not outcome.scale.is_dichotomous:
            raise InputError(f"outcome '{outcome_id}' is {outcome.measure}; reconstruction "
                             "needs a dichotomous outcome (RR, OR)", file=file, column="outcome")
        studies = tuple(dict.fromkeys(rows["study"]))
        if len(studies) != published.k:
            raise InputError(f"constraints name {len(studies)} studies for outcome "
                             f"'{outcome_id}'; the review pooled {published.k} (name each "
                             "study at least once)", file=file, column="study")
        cells = tuple(reconstruct.CellRange(r.study, r.arm, r.field, int(r.min), int(r.max),
                                            r.group, r.partition)
                      for r in rows.itertuples(index=False))
        model = published.model.lower()
        method = "MH-fixed" if "fixed" in model else "MH-random"
        decimals = tuple(printed_decimals(x) for x in
                         (published.estimate, published.ci_low, published.ci_high))
        printed = reconstruct.Printed(published.estimate, published.ci_low, published.ci_high,
                                      decimals, published.k, published.participants)
        if printed.participants is None and any(
                not ((rows["study"] == s) & (rows["arm"] == a) & (rows["field"] == "n")).any()
                for s in studies for a in reconstruct.ARMS):
            raise InputError(f"outcome '{outcome_id}': without the number of participants in "
                             "published.csv every arm size needs a row in constraints.csv",
                             file=file, column="field")
        return reconstruct.Problem(outcome_id, outcome.measure, method, printed, studies, cells)

    def resolve(self, outcome_id: str, level: str | None = "auto") -> Resolved:
        """Look an outcome up once and choose its level (``--level`` auto/study/summary).

        ``level=None`` resolves without choosing a level (the classical analysis of the rows).
        Raises InputError when the outcome is unknown or the level has nothing to analyse.
        """
        outcome = self.outcome(outcome_id)
        rows = self.study_rows(outcome_id)
        published = self.published_result(outcome_id)
        rec = self.reconstruction(outcome_id)
        status = data_status(rows, published, rec)
        studies_file = str(self.directory / "studies.csv")
        if level == "reconstructed":
            if rec is None:
                raise InputError(f"outcome '{outcome_id}' has no rows in constraints.csv to "
                                 "reconstruct its tables from", file=self.constraints_file)
            if not rec.n_solutions:
                raise InputError(f"outcome '{outcome_id}': {rec.diagnosis}",
                                 file=self.constraints_file)
        if level == "auto":
            if status.level is None:
                raise InputError(f"outcome '{outcome_id}' has neither study rows nor a published "
                                 "result to analyse", file=studies_file)
            level = status.level
        elif level == "study" and status.k_studies == 0:
            raise InputError(f"outcome '{outcome_id}' has no study rows (try --level summary)",
                             file=studies_file)
        elif level == "summary" and published is None:
            raise InputError(f"outcome '{outcome_id}' has no published pooled result",
                             file=str(self.directory / "published.csv"))
        if level is not None and level != status.level:
            status = forced_status(status, level, published, rec)
        notes = ()
        if level in (None, "study") and not rows.empty:
            rows, notes = self.design_adjusted(outcome, rows)
        return Resolved(outcome, rows, published, status, level, self.directory,
                        rec if level == "reconstructed" else None, tuple(notes))

    def design_adjusted(self, outcome: Outcome, rows: pd.DataFrame):
        """Study rows with the multi-arm remedy and the cluster design effects applied, each
        study labelled uniquely; and notes saying what was done (design.py)."""
        file = str(self.directory / "studies.csv")
        continuous = not outcome.scale.is_dichotomous
        rows, notes = design.adjust_multi_arm(rows, outcome.outcome, self.multi_arm, continuous,
                                              file)
        rows, cluster_notes = design.adjust_clusters(rows, self.trials, outcome.outcome,
                                                     continuous, file)
        rows = rows.assign(study=design.row_names(rows))
        return rows.reset_index(drop=True), notes + cluster_notes

    def study_rows(self, outcome_id: str) -> pd.DataFrame:
        return self.studies[self.studies["outcome"] == outcome_id].reset_index(drop=True)

    def published_result(self, outcome_id: str) -> Published | None:
        if self.published is None:
            return None
        rows = self.published[self.published["outcome"] == outcome_id]
        if rows.empty:
            return None
        r = rows.iloc[0]
        participants = r.get("participants")
        return Published(
            outcome=r["outcome"], measure=r["measure"], estimate=float(r["estimate"]),
            ci_low=float(r["ci_low"]), ci_high=float(r["ci_high"]), k=int(r["k"]),
            participants=None if participants is None or pd.isna(participants) else int(participants),
            model=str(r.get("model", "") or ""), grade=str(r.get("grade", "") or ""),
            source=str(r["source"]))


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------

def read_table(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """Read one CSV as strings, refusing empty, binary or undecodable files and missing columns.

    A UTF-8 byte-order mark and CRLF line ends (as in Cochrane exports) are accepted; ISO-8859-1
    files are decoded as such when they are not valid UTF-8.
    """
    name = str(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):
            raise InputError("is not a regular file (a pipe, device or socket); give a CSV file",
                             file=name)
        if info.st_size > MAX_FILE_BYTES:
            raise InputError(f"is {info.st_size / 1e6:.0f} MB; the limit is "
                             f"{MAX_FILE_BYTES / 1e6:.0f} MB per CSV file", file=name)
        raw = path.read_bytes()
    except IsADirectoryError:
        raise InputError("is a directory, expected a CSV file", file=name) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", file=name) from None
    return parse_table(raw, name, required)


def parse_table(raw: bytes, name: str, required: tuple[str, ...]) -> pd.DataFrame:
    """Parse CSV bytes as strings (see :func:`read_table`); ``name`` labels error messages."""
    if not raw.strip():
        raise InputError("file is empty (expected a header row and data rows)", file=name)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or (
            b"\x00" in raw[:200] and raw[:200].count(b"\x00") * 3 >= len(raw[:200])):
        raise InputError("file is UTF-16 text; save it as UTF-8 (in Excel: CSV UTF-8)",
                         file=name)
    if b"\x00" in raw:
        raise InputError("file is binary, not a CSV text file", file=name)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        if any(0x80 <= ord(ch) < 0xA0 for ch in text):
            raise InputError("cannot decode file as UTF-8 or ISO-8859-1 text (it may be "
                             "Windows-1252); save it as UTF-8", file=name) from None
    # line ends as Windows (CRLF), Unix (LF) or classic Mac OS (CR only) write them
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    header = next(csv.reader(io.StringIO(text)), [])
    names = [h.strip() for h in header]
    for column in names:
        if column and names.count(column) > 1:
            raise InputError("column name appears twice in the header", file=name, row=1,
                             column=column)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                            skipinitialspace=True, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"not a readable CSV file ({str(exc).strip().splitlines()[0]})",
                         file=name) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    blank = (frame == "").all(axis=1).to_numpy()
    if blank.any():  # blank lines at the end are fine; inside the table they would shift rows
        last = int(np.flatnonzero(~blank)[-1]) if (~blank).any() else -1
        inner = np.flatnonzero(blank[:last + 1])
        if inner.size:
            raise InputError("row is empty; remove empty lines inside the table", file=name,
                             row=csv_row(int(inner[0])))
        frame = frame.iloc[:last + 1]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(f"missing required column(s) {', '.join(missing)} "
                         f"(required: {', '.join(required)})", file=name, column=missing[0])
    frame = frame.apply(lambda col: col.str.strip())
    return frame


def csv_row(index: int) -> int:
    """Row number as a spreadsheet shows it: the header is row 1, the first data row is row 2."""
    return int(index) + 2


def parse_number(frame: pd.DataFrame, column: str, file: str, *, required: bool,
                 integer: bool = False, minimum: float | None = None,
                 strictly_positive: bool = False) -> pd.Series:
    """Parse a column of strings into floats, with one clear error for the first bad cell."""
    values = []
    for i, text in enumerate(frame[column] if column in frame.columns else [""] * len(frame)):
        if text == "":
            if required:
                raise InputError("value is missing (a number is required here)", file=file,
                                 row=csv_row(i), column=column)
            values.append(math.nan)
            continue
        if text.lower().lstrip("+-") in ("inf", "infinity", "nan"):
            raise InputError(f"'{text}' is not a finite number", file=file, row=csv_row(i),
                             column=column)
        if not NUMBER.fullmatch(text):
            raise InputError(f"'{text}' is not a number (plain decimal numbers only, such as 12, "
                             "0.35 or 1.5e-3)", file=file, row=csv_row(i), column=column)
        x = float(text)
        if not math.isfinite(x):
            raise InputError(f"'{text}' is not a finite number", file=file, row=csv_row(i),
                             column=column)
        if integer and x != round(x):
            raise InputError(f"'{text}' is not a whole number (counts must be whole)", file=file,
                             row=csv_row(i), column=column)
        if strictly_positive and x <= 0:
            raise InputError(f"{text} must be greater than 0", file=file, row=csv_row(i),
                             column=column)
        if minimum is not None and x < minimum:
            raise InputError(f"{text} must be at least {minimum:g}", file=file, row=csv_row(i),
                             column=column)
        values.append(x)
    return pd.Series(values, index=frame.index, dtype=float)


def check_choice(frame: pd.DataFrame, column: str, allowed: tuple[str, ...], file: str) -> None:
    for i, value in enumerate(frame[column]):
        if value not in allowed:
            raise InputError(f"'{value}' is not allowed (allowed: {', '.join(allowed)})",
                             file=file, row=csv_row(i), column=column)


def identifier_problem(value: str) -> str | None:
    """Why ``value`` cannot be an id (outcome or prior name), or None when it can."""
    if len(value) > ID_MAX:
        return f"is longer than {ID_MAX} characters"
    if not ID_PATTERN.fullmatch(value) or ".." in value:
        return ("is not a valid id (allowed: letters, digits, '_', '-' and '.', starting with a "
                "letter or digit, no '..')")
    if value.lower().split(".")[0] in RESERVED_IDS:
        return "is a reserved name"
    return None


def check_identifier(frame: pd.DataFrame, column: str, file: str) -> None:
    for i, value in enumerate(frame[column]):
        problem = identifier_problem(value)
        if problem:
            raise InputError(f"{value[:60]!r} {problem}", file=file, row=csv_row(i),
                             column=column)


def check_label(frame: pd.DataFrame, column: str, file: str) -> None:
    """Labels (study names, outcome labels): printable text of bounded length."""
    for i, value in enumerate(frame[column]):
        if len(value) > LABEL_MAX:
            raise InputError(f"is longer than {LABEL_MAX} characters", file=file,
                             row=csv_row(i), column=column)
        if any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in value):
            raise InputError("contains a control character", file=file, row=csv_row(i),
                             column=column)


def check_nonempty(frame: pd.DataFrame, column: str, file: str) -> None:
    for i, value in enumerate(frame[column]):
        if value == "":
            raise InputError("value is missing", file=file, row=csv_row(i), column=column)


def warn_missing_sources(frame: pd.DataFrame, file: str) -> None:
    """User data may leave ``source`` empty; say how many rows (the bundled data never do)."""
    rows = [csv_row(i) for i, value in enumerate(frame["source"]) if value == ""]
    if rows:
        shown = ", ".join(str(r) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
        warnings.warn(DataWarning(
            f"{file}: {len(rows)} of {len(frame)} rows have no source (rows {shown}); every "
            "number in a report should say where it comes from"), stacklevel=2)


# ---------------------------------------------------------------------------------------------
# validation, one file at a time
# ---------------------------------------------------------------------------------------------

def validate_outcomes(frame: pd.DataFrame, file: str) -> pd.DataFrame:
    if frame.empty:
        raise InputError("no outcome rows (expected at least one outcome)", file=file)
    for column in ("outcome", "label", "comparison"):
        check_nonempty(frame, column, file)
    check_identifier(frame, "outcome", file)
    check_label(frame, "label", file)
    check_label(frame, "comparison", file)
    check_choice(frame, "measure", measures.NAMES, file)
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
        scale = measures.get(measure)
        if math.isnan(m):
            continue
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
    return frame


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


def load_dataset(directory: str | Path | None = None) -> Dataset:
    """Read and validate a data directory (default: the bundled PIP review data)."""
    directory = bundled_data_dir() if directory is None else Path(directory)
    if not directory.exists():
        raise InputError("data directory does not exist", file=str(directory))
    if not directory.is_dir():
        raise InputError("is not a directory (--data expects a directory with outcomes.csv "
                         "and studies.csv)", file=str(directory))
    outcomes_path = directory / "outcomes.csv"
    if not outcomes_path.exists():
        raise InputError("missing file (a data directory needs outcomes.csv)", file=str(outcomes_path))
    outcomes = validate_outcomes(read_table(outcomes_path, OUTCOME_COLUMNS), str(outcomes_path))

    studies_path = directory / "studies.csv"
    if studies_path.exists():
        studies = validate_studies(read_table(studies_path, STUDY_COLUMNS), outcomes,
                                   str(studies_path))
    else:
        studies = pd.DataFrame(columns=list(STUDY_COLUMNS) + list(COUNT_COLUMNS)
                               + list(CONTINUOUS_COLUMNS) + ["provenance"])
    published_path = directory / "published.csv"
    published = (validate_published(read_table(published_path, PUBLISHED_COLUMNS), outcomes,
                                    str(published_path))
                 if published_path.exists() else None)
    trials_path = directory / "trials.csv"
    trials = (validate_trials(read_table(trials_path, TRIAL_COLUMNS), str(trials_path))
              if trials_path.exists() else None)
    warn_shared_arms(studies, outcomes)
    constraints_path = directory / "constraints.csv"
    constraints = (validate_constraints(read_table(constraints_path, CONSTRAINT_COLUMNS),
                                        outcomes, str(constraints_path))
                   if constraints_path.exists() else None)
    return Dataset(directory=directory, outcomes=outcomes, studies=studies, trials=trials,
                   published=published, constraints=constraints,
                   metadata=read_metadata(directory / "dataset.toml"))


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


def printed_decimals(x: float) -> int:
    """Decimals a value was printed with, read back from the CSV number (63.7 -> 1, 0.58 -> 2).

    A trailing zero the source printed (63.70) is not in the CSV, so the tolerance derived from
    this is never narrower than the printed one (a conservative reconstruction)."""
    text = repr(float(x))
    return len(text.split(".")[1].rstrip("0")) if "e" not in text and "." in text else 0


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


IN_MEMORY = Path("<DataFrames>")


def load_frames(outcomes: pd.DataFrame, studies: pd.DataFrame | None = None,
                published: pd.DataFrame | None = None, trials: pd.DataFrame | None = None
                ) -> Dataset:
    """Validate in-memory tables (the columns of outcomes.csv, studies.csv, ...) as a Dataset.

    Each frame goes through exactly the checks a CSV file does (it is written as CSV text and
    read back), so errors name the table, row and column the same way.
    """
    def text(frame, label, required):
        if not isinstance(frame, pd.DataFrame):
            raise InputError(f"expected a pandas DataFrame, got {type(frame).__name__}",
                             file=label)
        return parse_table(frame.to_csv(index=False).encode("utf-8"), label, required)

    label = str(IN_MEMORY / "outcomes.csv")
    out = validate_outcomes(text(outcomes, label, OUTCOME_COLUMNS), label)
    if studies is not None:
        label = str(IN_MEMORY / "studies.csv")
        st = validate_studies(text(studies, label, STUDY_COLUMNS), out, label)
    else:
        st = pd.DataFrame(columns=list(STUDY_COLUMNS) + list(COUNT_COLUMNS)
                          + list(CONTINUOUS_COLUMNS) + ["provenance"])
    pub = None
    if published is not None:
        label = str(IN_MEMORY / "published.csv")
        pub = validate_published(text(published, label, PUBLISHED_COLUMNS), out, label)
    tr = None
    if trials is not None:
        tr = validate_trials(text(trials, str(IN_MEMORY / "trials.csv"), TRIAL_COLUMNS),
                             str(IN_MEMORY / "trials.csv"))
    warn_shared_arms(st, out)
    return Dataset(directory=IN_MEMORY, outcomes=out, studies=st, trials=tr, published=pub)
