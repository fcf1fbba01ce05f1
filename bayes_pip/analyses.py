"""The unit a command analyses: an :class:`Analysis` names the outcomes (or categories) it
draws on and the model that fits them; ``fit``, ``compare-priors``, ``report``, ``list``, the
API and the file names all start from it.

Two models exist today, one per row of outcomes.csv:

- ``random-effects``: one outcome with one effect per study (RR, OR, SMD, MD, ...), the simple
  case; its record is the :class:`bayes_pip.record.FitRecord` of :mod:`bayes_pip.analysis`.
- ``multinomial``: one classification into named categories (measure ``categorical``), all
  categories in one hierarchical model; its record is
  :class:`bayes_pip.categorical.CategoricalFit`, which carries the analysis it answers.

A new kind of analysis (post and follow-up together, a network of treatments) is one class
here with the members of :class:`Model` plus an entry in :data:`MODELS`, and an engine that
accepts its payload (:mod:`bayes_pip.payloads`). Commands never branch on the measure.
"""

from __future__ import annotations

from typing import Protocol

from bayes_pip.errors import InputError
from bayes_pip.record import Analysis


class Model(Protocol):
    """An analysis model: which analyses of a dataset it makes and how it fits them."""

    name: str
    describe: str

    def analyses(self, dataset) -> list[Analysis]: ...

    def refuse(self, command: str, analysis: Analysis, given: dict) -> None:
        """One line for a command, or an option given to it (``given``: option -> given),
        that this model cannot run."""

    def check_engine(self, engine: str, analysis: Analysis) -> None: ...

    def settings(self, engine: str, draws: int, tune: int, target_accept, chains=None):
        """The sampler settings of a fit with ``engine`` (None where nothing samples)."""

    def prior_outcome(self, outcome): ...

    def fit(self, dataset, analysis: Analysis, prior, engine, level, seed, settings, progress,
            prior_sets): ...

    def compare(self, dataset, analysis: Analysis, prior_names, engine, level, seed, settings,
                progress, prior_sets) -> list: ...

    def text(self, record) -> str: ...

    def comparison_text(self, records: list) -> str: ...

    def write(self, out_dir, record) -> list:
        """Write the record's files into ``out_dir`` (str or Path): all or none."""


class OneOutcome:
    """One outcome, one effect per study: the random-effects meta-analysis."""

    name = "random-effects"
    describe = "random-effects meta-analysis of one effect per study"

    def refuse(self, command: str, analysis, given: dict) -> None:
        return None                       # takes every option of every command

    def analyses(self, dataset) -> list[Analysis]:
        return [Analysis(o, self.name, (o,)) for o in dataset.outcome_ids()]

    def check_engine(self, engine, analysis) -> None:
        return None                       # the registry refuses unknown or unfit engines

    def settings(self, engine, draws, tune, target_accept, chains=None):
        from bayes_pip import engines

        return (sampler_settings(draws, tune, target_accept, chains)
                if engines.stochastic(engine) else None)

    def prior_outcome(self, outcome):
        return outcome

    def fit(self, dataset, analysis, prior, engine, level, seed, settings, progress,
            prior_sets):
        from bayes_pip.analysis import fit_outcome

        return fit_outcome(dataset, analysis.id, prior_name=prior, engine=engine, level=level,
                           seed=seed, settings=settings, progress=progress,
                           prior_sets=prior_sets)

    def compare(self, dataset, analysis, prior_names, engine, level, seed, settings, progress,
                prior_sets):
        from bayes_pip.analysis import compare_priors

        return compare_priors(dataset, analysis.id, prior_names, engine, level, seed, settings,
                              progress, prior_sets)

    def text(self, record) -> str:
        from bayes_pip.summarise import fit_text

        return fit_text(record)

    def comparison_text(self, records) -> str:
        from bayes_pip.summarise import comparison_text

        return comparison_text(records)

    def write(self, out_dir, record) -> list:
        from bayes_pip.output import write_fit

        return write_fit(out_dir, record)


class Multinomial:
    """One classification into named categories: every category in one multinomial model."""

    name = "multinomial"
    describe = "hierarchical multinomial model of all categories at once"

    def analyses(self, dataset) -> list[Analysis]:
        from bayes_pip.categorical_data import split_list

        rows = dataset.outcomes.set_index("outcome")
        return [Analysis(o, self.name, (o,), tuple(split_list(rows.at[o, "categories"])))
                for o in dataset.categorical_ids()]

    def refuse(self, command: str, analysis, given: dict) -> None:
        o = analysis.id
        if command == "reconstruct":
            raise InputError(f"outcome '{o}' is categorical: its category counts are given in "
                             "categories.csv, not reconstructed (reconstruction works on the "
                             "2x2 tables of RR/OR outcomes)")
        if command == "compare-priors" and any(given.values()):
            names = list(given)
            raise InputError(f"{', '.join(names[:-1])} and {names[-1]} are not available for "
                             f"the categorical outcome '{o}'")
        for option, present in given.items():
            if present:
                raise InputError(f"{option} is not available for the categorical outcome "
                                 f"'{o}' (the multinomial model fits its category counts)")

    def check_engine(self, engine, analysis) -> None:
        from bayes_pip.categorical import require_engine

        require_engine(engine, analysis.id)

    def prior_outcome(self, outcome):
        from bayes_pip.categorical import as_odds_ratio

        return as_odds_ratio(outcome)

    def settings(self, engine, draws, tune, target_accept, chains=None):
        return sampler_settings(draws, tune, target_accept, chains)   # always samples

    def fit(self, dataset, analysis, prior, engine, level, seed, settings, progress,
            prior_sets):
        from bayes_pip.categorical import fit_categorical

        self.check_engine(engine, analysis)
        return fit_categorical(dataset, analysis.id, prior_name=prior, seed=seed,
                               settings=settings, progress=progress, prior_sets=prior_sets)

    def compare(self, dataset, analysis, prior_names, engine, level, seed, settings, progress,
                prior_sets):
        from bayes_pip.categorical import fit_categorical
        from bayes_pip.priors import applicable_priors, load_prior_sets, resolve_prior

        self.check_engine(engine, analysis)
        sets = load_prior_sets() if prior_sets is None else prior_sets
        outcome = self.prior_outcome(dataset.outcome(analysis.id))
        names = prior_names or applicable_priors(outcome, sets)
        for name in names:          # a prior that cannot apply is refused before any fit
            resolve_prior(name, outcome, sets)
        fits = []
        for i, name in enumerate(names):
            if progress:
                progress(i, len(names), f"{analysis.id}: {name}")
            fits.append(fit_categorical(dataset, analysis.id, prior_name=name, seed=seed,
                                        settings=settings, prior_sets=sets,
                                        separate=False))
        return fits

    def text(self, record) -> str:
        from bayes_pip.categorical import categorical_text

        return categorical_text(record)

    def comparison_text(self, records) -> str:
        from bayes_pip.categorical import categorical_comparison_text

        return categorical_comparison_text(records)

    def write(self, out_dir, record) -> list:
        from bayes_pip.categorical import write_categorical

        return write_categorical(out_dir, record)


def sampler_settings(draws, tune, target_accept, chains=None):
    from bayes_pip.engines.base import SamplerSettings

    more = {} if chains is None else {"chains": chains}
    return SamplerSettings(draws=draws, tune=tune, target_accept=target_accept, **more)


MODELS: dict[str, Model] = {m.name: m for m in (OneOutcome(), Multinomial())}


def analyses(dataset) -> list[Analysis]:
    """Every analysis a dataset offers: those named by an outcome row in the order of
    outcomes.csv, then any that a model composes of several outcomes."""
    found = {a.id: a for m in MODELS.values() for a in m.analyses(dataset)}
    rows = [o for o in dataset.outcomes["outcome"] if o in found]
    named = set(rows)
    return [found[o] for o in rows] + [a for o, a in found.items() if o not in named]


def analysis_of(dataset, analysis_id: str) -> Analysis:
    """The analysis ``analysis_id`` of ``dataset``; an unknown id is refused in one line
    naming the known ones."""
    for model in MODELS.values():
        for a in model.analyses(dataset):
            if a.id == analysis_id:
                return a
    dataset.outcome(analysis_id)          # unknown ids: the dataset's own one-line error
    raise InputError(f"no analysis '{analysis_id}' in {dataset.directory}")


def model_of(analysis: Analysis) -> Model:
    return MODELS[analysis.model]
