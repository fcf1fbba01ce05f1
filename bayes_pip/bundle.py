"""Reports as a library: :func:`build_report` fits what a report needs and returns a
:class:`ReportBundle` (per outcome: the fits across priors, Bayes factors, moderators and the
page; with every outcome also the summary of findings). Nothing is written until
:meth:`ReportBundle.write`; the CLI's `report` parses options, calls this, writes and prints.

Each outcome is resolved once (its reconstruction, level and design adjustments) and that one
resolution serves the fits under every prior and the Bayes factors.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path

from bayes_pip import engines
from bayes_pip.analysis import (DEFAULT_SEED, compare_resolved, default_priors, outcomes_with_data,
                                require_direction)
from bayes_pip.checks import bma_resolved
from bayes_pip.data import Dataset
from bayes_pip.document import Document, LazyPNG, Paragraph, html_page, markdown
from bayes_pip.errors import InputError
from bayes_pip.output import write_report_files
from bayes_pip.pages import (outcome_files, outcome_page, provenance_text, shared_trials_text,
                             sof_csv_rows, sof_rows, summary_of_findings)
from bayes_pip.priors import load_prior_sets, prior_for

# the likelihood of a report's Bayes factors follows its engine's (normal-normal otherwise)
BMA_LIKELIHOOD = {"auto": "auto", "binomial": "binomial-exact", "binomial-exact": "binomial-exact"}


@dataclass
class OutcomeReport:
    """One outcome's part of a report: ``fits[0]`` is the main fit; ``bma`` and ``moderator``
    are records, or the one-line reason they could not be computed (None: not asked for)."""
    outcome: str
    fits: list
    bma: object
    moderator: object
    page: Document

    def files(self) -> dict[str, bytes | str]:
        return outcome_files(self.page, self.fits, self.bma, self.moderator)

    def markdown(self) -> str:
        return markdown(self.page)

    def html(self) -> str:
        return html_page(self.page)


@dataclass
class CategoricalReport:
    """A categorical outcome's part of a report: the multinomial fit and its page."""
    outcome: str
    fit: object        # bayes_pip.categorical.CategoricalFit
    page: Document

    def files(self) -> dict[str, bytes | str]:
        from bayes_pip.categorical_page import categorical_files

        return categorical_files(self.page, self.fit)

    def markdown(self) -> str:
        return markdown(self.page)

    def html(self) -> str:
        return html_page(self.page)


@dataclass
class ReportBundle:
    outcomes: dict[str, OutcomeReport]
    skipped: list[str] = field(default_factory=list)   # outcomes without data
    categorical: dict[str, CategoricalReport] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)   # categorical outcomes the engine cannot fit
    certainty: dict = field(default_factory=dict)       # outcome -> certainty.Certainty (--all)
    summary: Document | None = None                     # the summary of findings (all outcomes)
    summary_files: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)      # e.g. a prior replaced where it does not apply

    @property
    def fits(self) -> dict[str, list]:
        return {o: r.fits for o, r in self.outcomes.items()}

    def files(self) -> dict[str, bytes | str]:
        """Every file of the report: {relative name: content}."""
        out: dict[str, bytes | str] = {}
        for r in (*self.outcomes.values(), *self.categorical.values()):
            out.update(r.files())
        out.update(self.summary_files)
        return out

    def write(self, out_dir) -> list[Path]:
        """Write every file into ``out_dir``: all of them or none."""
        return write_report_files(Path(out_dir), self.files())

    def main_file(self) -> str:
        return ("summary_of_findings.md" if self.summary is not None
                else f"{next(iter({**self.outcomes, **self.categorical}))}.md")

    def rows(self) -> list[dict]:
        """One summary-of-findings row per outcome, numbers as text (as printed)."""
        return sof_rows(self.fits)

    def to_frame(self):
        """The summary of findings as a pandas DataFrame (numbers as numbers)."""
        import pandas as pd

        return pd.DataFrame(sof_csv_rows(self.fits))

    def to_dict(self) -> dict:
        """The records behind the report, one list of fits per outcome (`report --json`)."""
        out = {o: [f.to_dict() for f in fits] for o, fits in self.fits.items()}
        out.update({o: [r.fit.to_dict()] for o, r in self.categorical.items()})
        return out


def trial_sets(dataset: Dataset) -> dict[str, dict[str, tuple | None]]:
    """Per outcome with data (at its default level): the trials it pools and, where the counts
    are known (study rows of a dichotomous outcome, a unique reconstructed table), each trial's
    cells (events_t, n_t, events_c, n_c), so that identical tables can be named."""
    out: dict[str, dict[str, tuple | None]] = {}
    for o in outcomes_with_data(dataset):
        level = dataset.status(o).level
        if level == "reconstructed":
            rec = dataset.reconstruction(o)
            out[o] = {s: (tuple(int(x) for x in rec.tables[0][j]) if rec.n_solutions == 1
                          else None) for j, s in enumerate(rec.studies)}
        elif level == "study":
            rows = dataset.study_rows(o)
            cells = ("events_t", "n_t", "events_c", "n_c")
            if all(c in rows.columns for c in cells) and dataset.outcome(o).scale.is_dichotomous:
                out[o] = {r["study"]: tuple(r[c] for c in cells) for _, r in rows.iterrows()}
            else:
                out[o] = {s: None for s in rows["study"]}
    return out


def dataset_label(dataset: Dataset) -> str:
    meta = dataset.metadata
    if meta["title"] and meta["citation"]:
        return f"{meta['title']} ({meta['citation']})"
    return meta["title"] or str(dataset.directory)


def moderator_record(dataset, resolved_level, outcome_id, names, kind, prior_name, engine, seed,
                     settings, sets, strict):
    """A report's meta-regression record, or (``strict`` False) the one-line reason it could
    not be fitted."""
    from bayes_pip import moderation

    data = dataset.with_moderator_kind(names[0], "categorical") if kind == "subgroup" else dataset
    try:
        return moderation.bayes_moderators(data, outcome_id, names, prior_name, engine, seed,
                                           settings, resolved_level, sets)
    except InputError as exc:
        if strict:
            raise
        return str(exc)


def build_report(dataset: Dataset, outcomes: list[str] | str | None = None,
                 prior: str | None = None, engine: str = engines.AUTO, level: str = "auto",
                 seed: int = DEFAULT_SEED, settings=None, prior_sets=None,
                 moderators: list[str] | None = None, subgroup: str | None = None,
                 progress=None, certainty_rule=None, jobs: int = 1) -> ReportBundle:
    """The report of one outcome, a list of outcomes, or (``outcomes`` None) every outcome with
    data plus the summary of findings.

    ``prior``: the main prior (first in each outcome's comparison, the others that apply after
    it); ``moderators`` / ``subgroup``: a Bayesian meta-regression section per outcome;
    ``certainty_rule``: the TOML file of the certainty rule (default: the shipped one).
    ``progress(i, n, what)`` is called before each outcome; ``jobs`` > 1 fits that many
    outcomes at a time in worker processes (the same bundle as the serial run).
    """
    everything = outcomes is None
    ids = (outcomes_with_data(dataset) if everything
           else [outcomes] if isinstance(outcomes, str) else list(outcomes))
    categorical, left_out = categorical_ids(dataset, ids, everything, engine)
    ids = [o for o in ids if o not in categorical]
    if not ids and not categorical:
        raise InputError("nothing to report: no outcome has study rows or a published result",
                         file=str(dataset.directory))
    for o in ids:
        dataset.outcome(o)   # unknown ids: one line naming the known ones
    if categorical and (moderators or subgroup):
        raise InputError(f"--moderator and --subgroup are not available for the categorical "
                         f"outcome '{categorical[0]}'")
    require_direction(dataset, ids, "report")
    if moderators and subgroup:
        raise InputError("give --moderator or --subgroup, not both")
    sets = load_prior_sets() if prior_sets is None else prior_sets
    if prior is not None and prior not in sets:
        raise InputError(f"unknown prior '{prior}' (available: {', '.join(sets)})")
    mod_names = moderators or ([subgroup] if subgroup else None)
    if mod_names:
        from bayes_pip.moderation import check_engine

        check_engine(engine)
    rule = None
    if everything:   # a bad rule file is refused before any fitting, not after
        from bayes_pip.certainty import load_rule

        rule = load_rule(certainty_rule)
    provenance = provenance_text(dataset.metadata, dataset.directory)
    trials = trial_sets(dataset)
    labels = {o: dataset.outcome(o).label for o in trials}
    reports, substituted = {}, []
    job = functools.partial(outcome_report, dataset, len(ids) > 1, prior, engine, level, seed,
                            settings, sets, mod_names, "subgroup" if subgroup else "moderator",
                            everything, provenance, trials, labels)
    for outcome_id, (report, why) in zip(ids, _each(job, ids, jobs, progress)):
        reports[outcome_id] = report
        if why:
            substituted.append(why)
    joint = {}
    for outcome_id in categorical:
        if progress:
            progress(len(ids), len(ids) + len(categorical), outcome_id)
        known = ({o: r.fits[0] for o, r in reports.items()} if engine == engines.AUTO
                 else None)
        joint[outcome_id] = categorical_report(dataset, outcome_id, prior, seed, settings, sets,
                                               provenance, known)
    if progress:
        progress(len(ids), len(ids), "writing files")
    bundle = ReportBundle(reports, notes=substituted, categorical=joint, left_out=left_out)
    if everything:
        from bayes_pip.categorical_page import sof_block

        bundle.skipped = [o for o in dataset.outcome_ids() if o not in reports]
        extra, files = certainty_part(dataset, bundle, rule)
        bundle.summary, bundle.summary_files = summary_of_findings(
            bundle.fits, bundle.skipped, dataset_label(dataset), provenance, dataset.trials,
            extra + sof_block({o: r.fit for o, r in joint.items()}) + [
                Paragraph(n, note=True) for n in left_out])
        bundle.summary_files.update(files)
    return bundle


def outcome_report(dataset, several: bool, prior, engine, level, seed, settings, sets, mod_names,
                   mod_kind, everything, provenance, trials, labels, outcome_id):
    """One outcome's report and the note when its prior was replaced ('' otherwise): resolved
    once, its fits under every prior, Bayes factors, moderators and page. A module-level
    function of picklable arguments, so `report --jobs N` runs it in worker processes."""
    resolved = dataset.resolve(outcome_id, level)
    names, why = None, ""
    if prior:  # the primary analysis first, then the other priors that apply
        main = prior
        if several:   # a prior that does not apply to one outcome: its counterpart
            main, why = prior_for(prior, resolved.outcome, sets)
        names = [main] + [n for n in default_priors(resolved.outcome, resolved.level, sets)
                          if n != main]
    fits = compare_resolved(resolved, names, engine, seed, settings, prior_sets=sets)
    if why:
        fits[0] = dataclasses.replace(fits[0], notes=(why,) + tuple(fits[0].notes))
    try:  # Bayes factors under the main prior, where they are defined
        bma = bma_resolved(resolved, fits[0].prior.name, sets,
                           BMA_LIKELIHOOD.get(engine, "exact"))
    except InputError as exc:  # the section says why instead
        bma = str(exc)
    moderator = (moderator_record(dataset, level, outcome_id, mod_names,
                                  mod_kind,
                                  fits[0].prior.name, engine, seed, settings, sets,
                                  strict=not everything)
                 if mod_names else None)
    mine = trials.get(outcome_id, {}) if fits[0].level == dataset.status(outcome_id).level \
        else {st.study: None for st in fits[0].studies or ()}
    shared = shared_trials_text(outcome_id, {**trials, outcome_id: mine}, labels,
                                fits[0].participants)
    page = outcome_page(fits, provenance, bma, moderator, dataset.trials, shared)
    return OutcomeReport(outcome_id, fits, bma, moderator, page), why


def _each(job, ids, jobs, progress):
    """``job`` of every id in order: serially, or (``jobs`` > 1) in that many worker processes
    (spawned: a forked copy of a process with sampler threads is not safe), results in the
    order of ``ids`` whatever order they finish in, so the output equals the serial run's."""
    if jobs <= 1 or len(ids) <= 1:
        for i, outcome_id in enumerate(ids):
            if progress:
                progress(i, len(ids), outcome_id)
            yield job(outcome_id)
        return
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(
            min(jobs, len(ids)), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(job, outcome_id) for outcome_id in ids]
        try:
            for i, (outcome_id, future) in enumerate(zip(ids, futures)):
                if progress:
                    progress(i, len(ids), outcome_id)
                yield future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def certainty_part(dataset: Dataset, bundle: ReportBundle, rule):
    """The certainty table of the summary of findings (every outcome of outcomes.csv: rated,
    or listed with what is known) under ``rule`` (a loaded certainty.Rule), its files, and the
    blocks kept on the bundle."""
    from bayes_pip.certainty import certainty_block
    from bayes_pip.certainty_page import certainty_files, certainty_section, no_number_rows

    bundle.certainty = {o: certainty_block(r.fits, dataset.trials, dataset.metadata, rule)
                        for o, r in bundle.outcomes.items()}
    relative = {r["outcome"]: f"{r['measure']} {r['bayes']}" for r in bundle.rows()}
    section = certainty_section(bundle.certainty, relative, rule,
                                no_number_rows(dataset, bundle.skipped))
    if bundle.categorical:
        section.append(Paragraph(f"Categorical outcomes ({', '.join(bundle.categorical)}) are "
                                 f"not rated by {rule.label}; see their own section.",
                                 note=True))
    return section, certainty_files(bundle.certainty, rule)


def categorical_ids(dataset: Dataset, ids: list, everything: bool, engine: str):
    """The categorical outcomes a report fits, and a note for those it cannot with ``engine``
    (only the multinomial engine fits category counts)."""
    from bayes_pip.categorical import ENGINE, require_engine

    wanted = [o for o in (dataset.categorical_ids() if everything else ids)
              if o in dataset.categorical_ids()]
    if everything and dataset.categories is not None:
        wanted = [o for o in wanted if (dataset.categories["outcome"] == o).any()]
    if engine in (engines.AUTO, ENGINE) or not wanted:
        return wanted, []
    if not everything:
        require_engine(engine, wanted[0])
    return [], [f"Not analysed with --engine {engine}: {', '.join(wanted)} (categorical; "
                f"the {ENGINE} engine fits it, e.g. with the default --engine auto)"]


def categorical_report(dataset, outcome_id, prior, seed, settings, sets, provenance,
                       known=None):
    from bayes_pip.categorical import fit_categorical
    from bayes_pip.categorical_page import categorical_page
    from bayes_pip.figures_categorical import category_figure

    fit = fit_categorical(dataset, outcome_id, prior_name=prior, seed=seed, settings=settings,
                          prior_sets=sets, known=known)
    page = categorical_page(fit, provenance, LazyPNG(lambda: category_figure(fit)))
    return CategoricalReport(outcome_id, fit, page)
