"""Priors as values: load ``models/*.toml`` into prior objects every engine can use.

A prior set names a prior on the pooled effect ``mu`` (analysis scale: log RR, log OR, SMD, MD) and
on the between-study standard deviation ``tau``, each with its source. Each distribution object
knows its log-density, CDF and quantiles (for the exact engine and for plots) and can build its
PyMC variable.

Parametrisations (as in R bayesmeta 3.4, ``TurnerEtAlPrior`` / ``RhodesEtAlPrior``):

- ``lognormal_tau2``: log(tau^2) ~ Normal(mu, sigma^2)  <=>  log(tau) ~ Normal(mu/2, (sigma/2)^2)
- ``logt_tau2``:      log(tau^2) ~ t_df(location, scale)  <=>  log(tau) ~ t_df(location/2, scale/2)
"""

from __future__ import annotations

import dataclasses
import functools
import math
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from scipy import special

from bayes_pip import measures
from bayes_pip.bundled import bundled_path
from bayes_pip.data import Outcome
from bayes_pip.tables import identifier_problem
from bayes_pip.validate import COMPARISON_TYPES
from bayes_pip.errors import InputError
# the families keep their public import path here (bayes_pip.priors.HalfNormal, ...)
from bayes_pip.prior_families import (MU_FAMILIES, MU_PARAMS, TAU_CLASSES, TAU_FAMILIES,
                                      HalfCauchy, HalfNormal, LogNormalTau2, LogTTau2, Normal,
                                      TauFamily, Uniform)

__all__ = ["HalfCauchy", "HalfNormal", "LogNormalTau2", "LogTTau2", "Normal", "TauFamily",
           "Uniform", "TAU_CLASSES", "TAU_FAMILIES", "MU_FAMILIES", "MU_PARAMS", "PriorSet",
           "ResolvedPrior", "models_dir", "default_coefficients", "load_prior_sets",
           "read_prior_set", "default_prior_name", "applicable_priors", "prior_for",
           "mcid_on_analysis_scale", "resolve_prior"]



# Densities and quantiles are written with scipy.special (scipy.stats costs ~0.5 s of start-up);
# tests/test_priors.py checks each against scipy.stats and the R formulas.


def models_dir() -> Path:
    """The bundled prior sets (models/ in the repository, carried by the wheel)."""
    return bundled_path("models")


# ---------------------------------------------------------------------------------------------
# distributions for tau (support tau >= 0)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriorSet:
    """A prior set as written in its TOML file, before it is applied to an outcome."""

    name: str
    title: str
    source: str
    applies_to: tuple[str, ...]
    mu: dict
    tau: dict
    path: Path
    notes: str = ""
    order: int = 100
    baseline: dict | None = None
    coefficients: dict | None = None
    # the set to use instead on a measure this one does not apply to (e.g. turner -> rhodes on
    # an SMD): a report under one prior names what it used for such outcomes
    counterparts: dict = field(default_factory=dict)


# Meta-regression coefficients (one per moderator column; the intercept is always flat). A prior
# file may set them in a [coefficients] section: family = "normal" with sd per standardised unit
# (per SD of a numeric moderator across the studies analysed, per contrast for a categorical one),
# or family = "flat". Otherwise this default is used on unit-free measures (log ratios, SMD, RD).


DEFAULT_COEFFICIENT_SD = 1.0


DEFAULT_COEFFICIENT_SOURCE = (
    "bayes_pip default: Normal(0, 1^2) per SD of a numeric moderator (per contrast for a "
    "categorical one) on the analysis scale, so a change of more than 2 on the log-ratio or SMD "
    "scale per SD of a moderator is a priori unlikely; the intercept is flat (as bayesmeta bmr)")


COEFFICIENT_FAMILIES = ("normal", "flat")


def default_coefficients() -> dict:
    """The default coefficient prior of unit-free measures (a fresh dict: records may extend it)."""
    return {"family": "normal", "sd": DEFAULT_COEFFICIENT_SD, "per": "standardised",
            "source": DEFAULT_COEFFICIENT_SOURCE}


# The binomial-normal model's control-arm baseline b_i (logit of the control risk for OR; the
# log-risk parameter for RR). A prior file may set it in a [baseline] section; otherwise this wide
# normal is used, so that with rare events the control risks come from the data. (A narrow
# N(0, 2^2), the earlier hidden default, moved the log OR of a rare-event review by about 0.2
# towards benefit; see tests/test_pymc.py.)


DEFAULT_BASELINE_SD = 10.0


DEFAULT_BASELINE_SOURCE = ("bayes_pip default: a wide normal on each study's control-arm "
                           "baseline (logit or log-risk scale), so that rare-event control risks "
                           "are informed by the data")


@dataclass(frozen=True)
class ResolvedPrior:
    """A prior set applied to one outcome: concrete distributions for mu and tau, with sources."""

    name: str
    title: str
    source: str
    mu: Normal
    tau: object
    mu_source: str
    tau_source: str
    notes: tuple[str, ...] = ()
    baseline: Normal = Normal(0.0, DEFAULT_BASELINE_SD)
    baseline_source: str = DEFAULT_BASELINE_SOURCE
    tau_used: bool = True   # False at summary level: heterogeneity is not modelled
    coefficients: dict = dataclasses.field(default_factory=default_coefficients)
    mu_role: str = ""       # "sceptical" / "enthusiastic" when mu is anchored at the MCID

    @property
    def mu_short(self) -> str:
        """The prior on the pooled effect in a few characters: "N(0, 4^2)", "sceptical N(0, 0.175^2)"."""
        text = f"N({self.mu.mean:.3g}, {self.mu.sd:.3g}^2)" if self.mu.proper else "flat"
        return f"{self.mu_role} {text}" if self.mu_role else text

    @property
    def shown(self) -> str:
        """How the prior is named in tables, titles and text: the set's name where tau is used,
        else (summary level) only the prior on the pooled effect, so that a set named after its tau
        prior (halfnormal-0.5) is never shown where tau is not used."""
        return self.name if self.tau_used else self.mu_short

    def summary_level(self) -> "ResolvedPrior":
        """The prior as a summary-level fit uses it: only the prior on the pooled effect."""
        return dataclasses.replace(self, tau_used=False)

    def baseline_dict(self) -> dict:
        """The binomial-normal model's control-arm baseline prior, as stored with such fits."""
        return {"family": self.baseline.family, **self.baseline.params(),
                "scale": "per study: logit of the control risk (OR), log-risk parameter (RR)",
                "source": self.baseline_source}

    def to_dict(self) -> dict:
        tau = ({"family": self.tau.family, **self.tau.params(), "source": self.tau_source}
               if self.tau_used else
               "not modelled (summary level: the published pooled estimate has no "
               "between-study information, so no prior on tau is used)")
        return {
            "name": self.name, "title": self.title, "source": self.source,
            "mu": {"family": self.mu.family, **self.mu.params(), "source": self.mu_source},
            "tau": tau,
            "notes": list(self.notes),
        }

    def describe(self) -> str:
        if not self.tau_used:
            return f"{self.mu.describe()}; heterogeneity not modelled"
        return f"{self.mu.describe()}; {self.tau.describe()}"


MAX_PRIOR_BYTES = 1_000_000  # a prior file is a few hundred bytes


def read_prior_text(path: Path) -> str:
    """The text of a prior file: a regular file (never a pipe or a device, which would hang or
    never end) of at most MAX_PRIOR_BYTES."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise InputError("is not a regular file (a directory, pipe, device or socket); give "
                             "a TOML prior file", file=str(path))
        if info.st_size > MAX_PRIOR_BYTES:
            raise InputError(f"is {info.st_size:,} bytes; a prior file may have at most "
                             f"{MAX_PRIOR_BYTES:,}", file=str(path))
        with open(path, "rb") as handle:
            raw = handle.read(MAX_PRIOR_BYTES + 1)
        return raw[:MAX_PRIOR_BYTES].decode("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", file=str(path)) from None
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", file=str(path)) from None


def check_structure(spec: dict, path: Path) -> None:
    """Each key of a prior file holds the kind of value it must (text, a list, a table, a whole
    number), so a misplaced value is named when the file is read, never met later."""
    def need(value, kinds, where: str, what: str) -> None:
        if isinstance(value, bool) or not isinstance(value, kinds):
            shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
            raise InputError(f"{shown[:60]} is not allowed here (must be {what})",
                             file=str(path), column=where)

    for key in ("title", "source"):
        need(spec[key], str, key, "text in quotes")
    if "notes" in spec:
        need(spec["notes"], str, "notes", "text in quotes")
    if "counterparts" in spec:
        need(spec["counterparts"], dict, "counterparts", "a table: measure = \"prior name\"")
        for measure, other in spec["counterparts"].items():
            need(other, str, f"counterparts.{measure}", "a prior name in quotes")
    if "order" in spec:
        need(spec["order"], int, "order", "a whole number, e.g. order = 10")
        if not 0 <= spec["order"] <= 10**6:
            raise InputError(f"{spec['order']} is outside 0..1000000", file=str(path),
                             column="order")
    for key in ("mu", "tau", "baseline", "coefficients"):
        if key in spec:
            need(spec[key], dict, key, f"a table: a [{key}] section with family = ...")
            for name, value in spec[key].items():
                if name in ("source", "family", "default_outcome_type", "derived_for"):
                    need(value, str, f"{key}.{name}", "text in quotes")
    tau = spec["tau"]
    for key in ("by_outcome_type", "by_comparison_type"):
        if key in tau:
            need(tau[key], dict, f"tau.{key}", "a table")
            for cell, value in tau[key].items():
                if cell != "source":
                    need(value, dict, f"tau.{key}.{cell}", "a table")


def read_prior_set(path: Path) -> PriorSet:
    """Parse one models/*.toml file, with a clear error for a malformed one."""
    text = read_prior_text(path)
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not a readable TOML prior file ({exc})", file=str(path)) from None
    except RecursionError:
        raise InputError("not a readable TOML prior file (values nested too deeply)",
                         file=str(path)) from None
    for key in ("name", "title", "source", "applies_to", "mu", "tau"):
        if key not in spec:
            raise InputError(f"missing key '{key}'", file=str(path), column=key)
    check_structure(spec, path)
    if not isinstance(spec["name"], str) or identifier_problem(spec["name"]):
        raise InputError(f"prior name {str(spec['name'])[:60]!r} "
                         f"{identifier_problem(str(spec['name'])) or 'must be text'}",
                         file=str(path), column="name")
    if spec["mu"].get("family") not in MU_FAMILIES:
        raise InputError(f"unknown mu family {spec['mu'].get('family')!r} "
                         f"(allowed: {', '.join(MU_FAMILIES)})", file=str(path), column="mu.family")
    if spec["tau"].get("family") not in TAU_FAMILIES:
        raise InputError(f"unknown tau family {spec['tau'].get('family')!r} "
                         f"(allowed: {', '.join(TAU_FAMILIES)})", file=str(path),
                         column="tau.family")
    check_parameters(spec, path)
    return PriorSet(name=spec["name"], title=spec["title"], source=spec["source"],
                    applies_to=tuple(spec["applies_to"]), mu=spec["mu"], tau=spec["tau"],
                    path=path, notes=spec.get("notes", ""), order=int(spec.get("order", 100)),
                    baseline=spec.get("baseline"), coefficients=spec.get("coefficients"),
                    counterparts=dict(spec.get("counterparts", {})))


# parameter -> (must be > 0, may be infinite); everything else must be a finite number


POSITIVE = {"scale": (True, False), "sigma": (True, False), "df": (True, False),
            "upper": (True, True), "sd": (True, True), "tail_probability": (True, False)}


SCALE_RANGE = (1e-6, 1e6)  # scales and locations a sampler can start from (analysis scale)


def check_parameters(spec: dict, path: Path) -> None:
    """Every parameter of a prior file is a number in its range, named with its field when not
    (so a bad file fails when it is read, with its name, never inside a sampler)."""
    def check(section: str, params: dict) -> None:
        if not isinstance(params, dict):
            raise InputError(f"{str(params)[:60]!r} is not allowed here (must be a table of "
                             "parameters)", file=str(path), column=section)
        names = (MU_PARAMS.get(params.get("family"), ()) if section in ("mu", "baseline") else
                 TAU_FAMILIES[spec["tau"]["family"]][1])
        for name in names:
            if name not in params:
                if section == "mu" and name == "tail_probability":
                    continue
                raise InputError(f"missing parameter '{name}'", file=str(path),
                                 column=f"{section}.{name}")
            value = params[name]
            positive, infinite_ok = POSITIVE.get(name, (False, False))
            bad = (isinstance(value, bool) or not isinstance(value, (int, float))
                   or math.isnan(value) or (math.isinf(value) and not infinite_ok)
                   or (positive and value <= 0)
                   or (name == "tail_probability" and not value < 0.5))
            if not bad and math.isfinite(value) and name != "tail_probability" and not (
                    (positive and SCALE_RANGE[0] <= value <= SCALE_RANGE[1])
                    or (not positive and abs(value) <= SCALE_RANGE[1])):
                raise InputError(f"{value!r} is outside the range bayes_pip accepts "
                                 f"({'from 1e-06 to ' if positive else 'at most '}1e+06 in "
                                 "absolute value)", file=str(path), column=f"{section}.{name}")
            if bad:
                rule = ("a number greater than 0" if positive else "a finite number")
                if name == "tail_probability":
                    rule = "a probability between 0 and 0.5"
                raise InputError(f"{value!r} is not allowed (must be {rule})", file=str(path),
                                 column=f"{section}.{name}")

    check("mu", spec["mu"])
    if "baseline" in spec:
        if not isinstance(spec["baseline"], dict) or spec["baseline"].get("family") != "normal":
            raise InputError("the baseline prior must be a table with family = \"normal\", mean "
                             "and sd", file=str(path), column="baseline.family")
        check("baseline", spec["baseline"])
    if "coefficients" in spec:
        c = spec["coefficients"]
        if not isinstance(c, dict) or c.get("family") not in COEFFICIENT_FAMILIES:
            raise InputError("the coefficients prior must be a table with family = \"normal\" "
                             "(and sd, per standardised unit) or family = \"flat\"",
                             file=str(path), column="coefficients.family")
        if c["family"] == "normal":
            sd = c.get("sd")
            if (isinstance(sd, bool) or not isinstance(sd, (int, float)) or not math.isfinite(sd)
                    or not SCALE_RANGE[0] <= sd <= SCALE_RANGE[1]):
                raise InputError(f"{sd!r} is not allowed (must be a number from 1e-06 to 1e+06)",
                                 file=str(path), column="coefficients.sd")
    tau = spec["tau"]
    table = tau.get("by_outcome_type")
    if table is None:
        check("tau", tau)
    else:
        if "default_outcome_type" in tau and tau["default_outcome_type"] not in table:
            raise InputError(f"default_outcome_type {tau['default_outcome_type']!r} has no cell",
                             file=str(path), column="tau.default_outcome_type")
        for cell, params in table.items():
            check(f"tau.by_outcome_type.{cell}", params)
        defaults = tau.get("default_comparison_types", list(COMPARISON_TYPES))
        if not isinstance(defaults, list) or not set(defaults) <= set(COMPARISON_TYPES):
            raise InputError(f"default_comparison_types {defaults!r} must list types from "
                             f"{', '.join(COMPARISON_TYPES)}", file=str(path),
                             column="tau.default_comparison_types")
        for ctype, column in tau.get("by_comparison_type", {}).items():
            if ctype not in COMPARISON_TYPES or not isinstance(column, dict):
                raise InputError(f"unknown comparison type {ctype!r} (allowed: "
                                 f"{', '.join(COMPARISON_TYPES)})", file=str(path),
                                 column="tau.by_comparison_type")
            for cell, params in column.items():
                if cell != "source":
                    check(f"tau.by_comparison_type.{ctype}.{cell}", params)
    applies = spec["applies_to"]
    if not isinstance(applies, list) or not all(m in measures.NAMES for m in applies):
        raise InputError(f"applies_to {applies!r} must list measures from "
                         f"{', '.join(measures.NAMES)}", file=str(path), column="applies_to")


def load_prior_sets(directory: Path | None = None, extra: Path | str | None = None
                    ) -> dict[str, PriorSet]:
    """All prior sets in models/ (or ``directory``), by name, in their stated order (then by
    name), plus those in ``extra``: a team's own prior file (`--prior-file`) or directory of
    prior files (`--prior-dir`).

    A name defined twice is refused (a team's file never silently replaces a shipped one).
    """
    sets = dict(read_prior_sets(models_dir() if directory is None else Path(directory)))
    if extra is None:
        return sets
    extra = Path(extra)
    if extra.is_file():  # one prior file (--prior-file)
        one = read_prior_set(extra)
        found = {one.name: one}
    elif extra.is_dir():
        found = dict(read_prior_sets(extra.resolve()))
        if not found:
            raise InputError("no prior files (*.toml) in this directory", file=str(extra))
    else:
        raise InputError("not a prior file or a directory of prior files (*.toml)",
                         file=str(extra))
    for name, p in found.items():
        if name in sets:
            raise InputError(f"prior name '{name}' is already defined in {sets[name].path}; "
                             "give the set another name", file=str(p.path), column="name")
    merged = {**sets, **found}
    return dict(sorted(merged.items(), key=lambda item: (item[1].order, item[0])))


def read_prior_sets(directory: Path) -> tuple[tuple[str, PriorSet], ...]:
    """The prior sets of a directory, read again whenever a file changes (cached by each file's
    modification time and size)."""
    paths = sorted(Path(directory).glob("*.toml"))
    signature = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    return read_prior_files(Path(directory), signature)


@functools.lru_cache(maxsize=16)
def read_prior_files(directory: Path, signature) -> tuple[tuple[str, PriorSet], ...]:
    found = [read_prior_set(Path(path)) for path, _, _ in signature]
    names = [p.name for p in found]
    for p in found:
        if names.count(p.name) > 1:
            raise InputError(f"prior name '{p.name}' is defined by more than one file in "
                             f"{directory}", file=str(p.path), column="name")
    return tuple((p.name, p) for p in sorted(found, key=lambda p: (p.order, p.name)))


def default_prior_name(measure: str) -> str:
    """Default prior: half-normal(0.5) on tau (Friede et al. 2017) for RR/OR/SMD; vague for MD."""
    return measures.get(measure).default_prior


def applicable_priors(outcome: Outcome, sets: dict[str, PriorSet] | None = None) -> list[str]:
    """Names of the prior sets that apply to an outcome's measure (and, if needed, its mcid)."""
    sets = load_prior_sets() if sets is None else sets
    names = []
    for name, p in sets.items():
        if outcome.measure not in p.applies_to:
            continue
        if p.mu["family"] in ("sceptical", "enthusiastic") and outcome.mcid is None:
            continue
        if "by_outcome_type" in p.tau and tau_cell(p.tau, outcome)[0] is None:
            continue
        names.append(name)
    return names


def prior_for(name: str, outcome: Outcome, sets: dict[str, PriorSet] | None = None
              ) -> tuple[str, str]:
    """The prior set to use for ``outcome`` when ``name`` was asked for: ``name`` where it
    applies, else its counterpart for the outcome's measure (turner -> rhodes on an SMD), else the
    measure's default; with the reason in words ('' when ``name`` applies)."""
    sets = load_prior_sets() if sets is None else sets
    names = applicable_priors(outcome, sets)
    if name in names or name not in sets:
        return name, ""
    other = sets[name].counterparts.get(outcome.measure)
    if other not in names:
        other = default_prior_name(outcome.measure)
        if other not in names:
            other = names[0] if names else name
        why = "the default for"
    else:
        why = "its counterpart for"
    return other, (f"prior '{name}' does not apply to {outcome.measure} outcomes; {why} "
                   f"{outcome.measure}, '{other}', is used for '{outcome.outcome}'")


def mcid_on_analysis_scale(outcome: Outcome) -> float:
    """The outcome's MCID on the analysis scale (log for ratios), signed in the benefit direction."""
    if outcome.mcid is None:
        raise InputError(f"outcome '{outcome.outcome}' has no mcid in outcomes.csv; the "
                         "sceptical and enthusiastic priors are defined from it")
    return math.log(outcome.mcid) if outcome.scale.log_scale else outcome.mcid


# a location on a log scale whose exponential a float can hold with room for the interval


MAX_LOG_LOCATION = 700


def resolve_mu(spec: dict, outcome: Outcome, file: str) -> Normal:
    """Build the mu prior; sceptical/enthusiastic priors are anchored at the outcome's MCID.

    Notes
    -----
    Spiegelhalter, Freedman & Parmar 1994 (JRSS A 157:357-416): the sceptical prior is centred on
    no effect with probability ``tail`` of an effect beyond the MCID (delta) in the direction of
    benefit: Normal(0, (|delta| / z_{1-tail})^2). The enthusiastic prior is centred on the MCID
    with probability ``tail`` of harm (an effect beyond no effect in the other direction):
    Normal(delta, (|delta| / z_{1-tail})^2).
    """
    family = spec["family"]
    if family == "normal":
        mean = float(spec["mean"])
        if outcome.scale.log_scale and abs(mean) > MAX_LOG_LOCATION:
            raise InputError(f"mean {mean:g} on the log {outcome.measure} scale (a pooled "
                             f"{outcome.measure} of exp({mean:g})) is beyond what a "
                             f"floating-point number holds: |mean| at most {MAX_LOG_LOCATION} "
                             f"for {outcome.measure} outcomes", file=file, column="mu.mean")
        return Normal(mean, float(spec["sd"]))
    tail = float(spec.get("tail_probability", 0.05))
    delta = mcid_on_analysis_scale(outcome)
    sd = abs(delta) / float(special.ndtri(1 - tail))
    return Normal(0.0 if family == "sceptical" else delta, sd)


def tau_cell(spec: dict, outcome: Outcome) -> tuple[dict | None, str, str, str, dict | None]:
    """The cell of an empirical prior table (Turner, Rhodes) for an outcome: its parameters (None
    when the table has no such cell), the column's source, the outcome type and the comparison
    type used, and the column looked in (None when the table has no column for that type).

    A table file holds its default column in ``by_outcome_type`` (used for every comparison type
    listed in ``default_comparison_types``) and other columns in
    ``by_comparison_type.<type>``, each with its own ``source``.
    """
    wanted = outcome.outcome_type or spec["default_outcome_type"]
    defaults = spec.get("default_comparison_types", list(COMPARISON_TYPES))
    ctype = outcome.comparison_type or defaults[0]
    columns = spec.get("by_comparison_type", {})
    if ctype in columns:
        column = {c: v for c, v in columns[ctype].items() if c != "source"}
        return column.get(wanted), columns[ctype].get("source", ""), wanted, ctype, column
    if ctype not in defaults:
        return None, "", wanted, ctype, None
    column = spec["by_outcome_type"]
    return column.get(wanted), "", wanted, ctype, column


def resolve_tau(spec: dict, outcome: Outcome, file: str) -> tuple[object, str, tuple[str, ...]]:
    """Build the tau prior; an outcome-type table (Turner, Rhodes) picks the outcome's cell."""
    cls, names = TAU_FAMILIES[spec["family"]]
    notes: tuple[str, ...] = ()
    params = spec
    source = spec.get("source", "")
    if "by_outcome_type" in spec:
        params, column_source, wanted, ctype, column = tau_cell(spec, outcome)
        if column is None:
            raise InputError(f"comparison type '{ctype}' of outcome '{outcome.outcome}' has "
                             "no column in this prior", file=file, column="comparison_type")
        if params is None:
            raise InputError(f"outcome type '{wanted}' of outcome '{outcome.outcome}' has no "
                             f"cell in this prior (available: {', '.join(column)})", file=file,
                             column="outcome_type")
        source = f"{column_source or source}; cell: {wanted}"
        given = [] if outcome.outcome_type else ["outcome_type"]
        if ctype != outcome.comparison_type and "default_comparison_types" in spec:
            given.append("comparison_type")
        cell = (f"tau prior table cell used: outcome type '{wanted}', "
                f"comparison type '{ctype}'")
        if given:
            cell += (f" ({' and '.join(given)} not given in outcomes.csv: the prior's default; "
                     f"add the column{'s' if len(given) > 1 else ''} to choose the cell)")
        notes = (cell,)
    derived = spec.get("derived_for")
    if derived and outcome.measure != derived:
        notes += (f"this tau prior was derived for log {derived} meta-analyses; applied here to "
                  f"the log {outcome.measure} as an approximation",)
    kwargs = {n: float(params[n]) for n in names if n in params}
    return cls(**kwargs), source, notes


def resolve_prior(name: str, outcome: Outcome, sets: dict[str, PriorSet] | None = None
                  ) -> ResolvedPrior:
    """Apply a named prior set to an outcome."""
    sets = load_prior_sets() if sets is None else sets
    if not outcome.scale.bayesian:
        raise InputError(f"outcome '{outcome.outcome}' is {outcome.measure}: Peto's odds ratio is "
                         "a fixed-effect method with no Bayesian model here; `dl` pools it, and a "
                         "Bayesian analysis of the same tables uses measure OR")
    if name not in sets:
        raise InputError(f"unknown prior '{name}' (available: {', '.join(sets)})")
    p = sets[name]
    if outcome.measure not in p.applies_to:
        hint = ""
        if not outcome.scale.unit_free:
            # a scale-free tau prior cannot be carried to natural units without a unit
            hint = ("; a tau prior on a mean difference must be in the outcome's own units: "
                    "write a prior file (--prior-file) whose scale is a multiple of the "
                    "unit-information SD, s_u = sqrt(sum(n_i) / sum(1 / se_i^2)) (Roever et al. "
                    "2021, Res Synth Methods 12:448-474, Eq. 6), e.g. half-normal(0.5 s_u)")
        raise InputError(f"prior '{name}' is for {', '.join(p.applies_to)} outcomes, "
                         f"'{outcome.outcome}' is {outcome.measure}{hint}", file=str(p.path))
    mu = resolve_mu(p.mu, outcome, str(p.path))
    tau, tau_source, notes = resolve_tau(p.tau, outcome, str(p.path))
    mu_source = p.mu.get("source", "")
    if p.mu["family"] in ("sceptical", "enthusiastic"):
        mu_source = (f"{mu_source}; anchored at the outcome's mcid {outcome.mcid:g} "
                     f"({outcome.measure}, natural scale)")
    baseline, baseline_source = Normal(0.0, DEFAULT_BASELINE_SD), DEFAULT_BASELINE_SOURCE
    if p.baseline is not None:
        baseline = Normal(float(p.baseline["mean"]), float(p.baseline["sd"]))
        baseline_source = p.baseline.get("source", "")
    if p.coefficients is not None:
        coefficients = {"family": p.coefficients["family"], "per": "standardised",
                        "source": p.coefficients.get("source", "")}
        if p.coefficients["family"] == "normal":
            coefficients["sd"] = float(p.coefficients["sd"])
    elif outcome.scale.unit_free:
        coefficients = default_coefficients()
    else:  # natural units (MD): no default scale exists
        coefficients = {"family": "flat", "per": "standardised",
                        "source": "flat: a mean difference is in the outcome's own units, so "
                                  "bayes_pip has no default scale for its coefficients"}
    return ResolvedPrior(name=p.name, title=p.title, source=p.source, mu=mu, tau=tau,
                         mu_source=mu_source, tau_source=tau_source, notes=notes,
                         baseline=baseline, baseline_source=baseline_source,
                         coefficients=coefficients,
                         mu_role=p.mu["family"] if p.mu["family"] in ("sceptical",
                                                                      "enthusiastic") else "")
