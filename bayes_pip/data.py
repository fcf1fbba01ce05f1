"""Read and validate a review's data directory.

A data directory holds (see README, "Data schema"):

- ``outcomes.csv``  one row per outcome: outcome, label, comparison, measure, benefit, timepoint, mcid
- ``studies.csv``   one row per study x outcome (arm-level counts or means/SDs), with its source
- ``trials.csv``    optional, one row per trial (design, population, risk of bias, source)
- ``published.csv`` optional, pooled results as the review printed them
- ``constraints.csv`` optional, bounds on arm sizes and counts (with their sources) from which
  the integer tables behind a printed pooled result are reconstructed (:mod:`bayes_pip.reconstruct`)

Everything is validated once, at load time (:mod:`bayes_pip.validate`, on the CSV grammar of
:mod:`bayes_pip.tables`). Any problem raises :class:`InputError` naming the file, the row (as a
spreadsheet shows it: the header is row 1) and the column. Extra columns are kept.

This module holds what the validated data mean for an analysis: an outcome, its published
result, its data status, and the level policy (:meth:`Dataset.resolve`: study rows,
reconstructed tables or the published pooled estimate, resolved once per outcome).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bayes_pip import measures, reconstruct
from bayes_pip.bundled import bundled_path
from bayes_pip import design
from bayes_pip.categorical_data import CATEGORICAL, CATEGORY_COLUMNS, validate_categories
from bayes_pip.errors import InputError
from bayes_pip.tables import (csv_row, read_table, parse_table, printed_decimals)
from bayes_pip.validate import (OUTCOME_COLUMNS, STUDY_COLUMNS,
                                PUBLISHED_COLUMNS, TRIAL_COLUMNS, CONSTRAINT_COLUMNS,
                                COUNT_COLUMNS, CONTINUOUS_COLUMNS, validate_outcomes,
                                validate_studies, validate_trials, warn_shared_arms,
                                validate_published, METADATA_DEFAULTS, read_metadata,
                                validate_constraints)


LEVELS = ("auto", "study", "reconstructed", "summary")


def bundled_data_dir() -> Path:
    """Directory of the bundled PIP review data (Barlow et al. 2015, CD010534.pub2)."""
    return bundled_path("data", "pip")


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

    @classmethod
    def anonymous(cls, name: str, measure: str, benefit: str) -> "Outcome":
        """An outcome known only by its measure and direction of benefit (the batched engine,
        a whole-database run): what prior sets are resolved against."""
        return cls(outcome=name, label=name, comparison=name, measure=measure, benefit=benefit,
                   timepoint="", mcid=None)

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
    """How reconstructed data are labelled everywhere: never as printed data, and never as
    unique where uniqueness rests on inferred bounds."""
    return f"reconstructed: {r.which} {r.consistent} (k = {len(r.studies)}; not printed data)"


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
    # what is computed from the data alone, once, whatever the prior (the classical analysis,
    # the reconstructed tables as outcomes): see analysis.classical_of
    memo: dict = field(default_factory=dict, init=False, compare=False, repr=False)

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
    categories: pd.DataFrame | None = None   # categories.csv (categorical outcomes)
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
        """The outcomes analysed one effect per study (every measure but categorical)."""
        return list(self.outcomes.loc[self.outcomes["measure"] != CATEGORICAL, "outcome"])

    def categorical_ids(self) -> list[str]:
        """The categorical outcomes (one classification into named categories)."""
        return list(self.outcomes.loc[self.outcomes["measure"] == CATEGORICAL, "outcome"])

    def outcome(self, outcome_id: str) -> Outcome:
        """The outcome definition, or an InputError that suggests close names."""
        rows = self.outcomes[self.outcomes["outcome"] == outcome_id]
        if rows.empty:
            close = difflib.get_close_matches(outcome_id, list(self.outcomes["outcome"]), n=3,
                                              cutoff=0.5)
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
            self._reconstructed.update({r.outcome: self.with_assumptions(r) for r in results})
        return self._reconstructed[outcome_id]

    def with_assumptions(self, r: reconstruct.Reconstruction) -> reconstruct.Reconstruction:
        """A reconstruction with what it rests on besides print: its inferred bounds (with
        their constraints.csv rows and sources) and the arms bounded only from above."""
        rows = self.constraints[self.constraints["outcome"] == r.outcome]
        inferred, upper = [], []
        for index, row in zip(rows.index, rows.itertuples(index=False)):
            arm = reconstruct.ARM_WORDS[row.arm]
            what = "size" if row.field == "n" else "events"
            value = f"{row.min}" if row.min == row.max else f"{row.min} to {row.max}"
            if row.provenance == "inferred":
                inferred.append(f"{row.study}, {arm} arm {what} {value} (constraints.csv row "
                                f"{csv_row(index)}): {row.source}")
            if row.field == "n" and row.min < row.max:
                why = row.source.split(" (", 1)[0].split(";", 1)[0]
                upper.append((row.study, row.arm, int(row.max),
                              f"{why}; constraints.csv row {csv_row(index)}"))
        return dataclasses.replace(r, inferred=tuple(inferred), upper_bounds=tuple(upper))

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
        if outcome.measure == CATEGORICAL:
            raise InputError(f"outcome '{outcome_id}' is categorical ({outcome.label}): "
                             f"`fit {outcome_id}` analyses it with the multinomial model; this "
                             "command takes outcomes with one effect per study")
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
    categories_path = directory / "categories.csv"
    categories = (validate_categories(read_table(categories_path, CATEGORY_COLUMNS), outcomes,
                                      str(categories_path))
                  if categories_path.exists() else None)
    return Dataset(directory=directory, outcomes=outcomes, studies=studies, trials=trials,
                   published=published, constraints=constraints, categories=categories,
                   metadata=read_metadata(directory / "dataset.toml"))


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

