"""Command-line interface: parse arguments, call the library, print, map errors to exit codes.

No statistics here. Exit codes: 0 ok; 2 bad input or usage; 3 MCMC convergence failure;
1 internal error.
"""

from __future__ import annotations

import argparse
import dataclasses
import contextlib
import inspect
import json
import os
import signal
import sys
import threading
import traceback
import warnings

from bayes_pip.version import __version__
from bayes_pip.environment import ensure_writable_caches
from bayes_pip.errors import (ConvergenceError, InputError, OutputComplete, SamplerError,
                              Terminated)

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_CONVERGENCE = 0, 1, 2, 3


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit code 2."""

    def error(self, message):
        self.exit(EXIT_INPUT, f"bayes_pip: error: {message} (see `python -m bayes_pip "
                              f"{self.prog.split()[-1] if ' ' in self.prog else ''} --help`)\n")


def int_in(low: int, high: int):
    """argparse type: a whole number in [low, high]."""
    def parse(text: str) -> int:
        if not text.isascii() or not text.lstrip("-").isdigit():
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
        value = int(text, 10)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value
    return parse


def probability_open(text: str) -> float:
    """argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be strictly between 0 and 1")
    return value


SEED_MAX = 4_294_967_295  # 2^32 - 1, what NumPy seeds accept
DRAWS_MAX = 1_000_000  # per chain; 4 chains x 10^6 draws of mu and tau is 64 MB
IMPORTED_FILES = ("outcomes.csv", "studies.csv", "trials.csv", "published.csv")  # `import`
TAU_SCALE_RANGE = (1e-6, 100.0)  # calibrate --tau-scale (1e-300 crashed inside numba)
MAX_BUDGET = 1_000_000_000_000  # --max-candidates: 10^12 candidate tables (days of search)


def print_json(obj) -> None:
    from bayes_pip.record import versioned

    sys.stdout.write(json.dumps(versioned(obj), indent=2, allow_nan=False) + "\n")


# ---------------------------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------------------------

def cmd_list(args) -> int:
    """List the outcomes of a data directory with their data status.

    Example: python -m bayes_pip list
    """
    from bayes_pip.summarise import outcome_listing

    dataset = open_dataset(args)
    rows = outcome_listing(dataset)
    if args.json:
        print_json(rows)
        return EXIT_OK
    print(f"Outcomes in {dataset.directory}")
    header = f"{'outcome':44s} {'measure':11s} {'k':>2s} {'N':>5s} {'benefit':8s} data"
    print(header)
    print("-" * len(header))
    for r in rows:
        k = str(r["k"]) if r["k"] else "-"
        n = str(r["participants"]) if r["participants"] else "-"
        excluded = (f"; {len(r['excluded'])} of them excluded (no events or only events in "
                    f"both arms: {', '.join(r['excluded'])})" if r["excluded"] else "")
        print(f"{r['outcome']:44s} {r['measure']:11s} {k:>2s} {n:>5s} {r['benefit']:8s} "
              f"{r['data']}{excluded}")
    print("\nk and N: studies and participants the analysis pools (study rows, or the published "
          "pooled result).\nbenefit: which direction of the intervention-vs-control effect is "
          "good.")
    unknown = [r["outcome"] for r in rows if r["benefit"] == "unknown"]
    if unknown:
        print(f"{len(unknown)} outcome(s) have benefit 'unknown': P(benefit) needs a direction; "
              "set benefit to lower or higher in outcomes.csv before `fit` or `report` (`dl` and "
              "`compare-priors` work without it).")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# dl
# ---------------------------------------------------------------------------------------------

def cmd_dl(args) -> int:
    """Classical random-effects meta-analysis (DerSimonian-Laird) of one outcome, on the data `fit`
    uses: its study rows, or its reconstructed table (pooled as the review did); --level study
    pools the study rows only.

    Example: python -m bayes_pip dl parent_reported_depression_vs_alternative --json
    """
    from bayes_pip.classical import classical_analysis
    from bayes_pip.summarise import dl_text

    dataset = open_dataset(args)
    if args.moderator or args.subgroup:
        args.method = args.method or "DL"
        return moderator_dl(args, dataset)
    analysis = classical_analysis(dataset, args.outcome, method=args.method, ci=args.ci,
                                  pi=args.pi, level=args.level)
    if args.json:
        print_json(analysis.to_dict())
    else:
        print(dl_text(analysis.record(), analysis.outcome))
    return EXIT_OK


def moderator_dl(args, dataset) -> int:
    """`dl --moderator` (meta-regression) and `dl --subgroup` (test for subgroup differences)."""
    from bayes_pip import moderation

    moderator_names(args)   # one of --moderator and --subgroup
    if args.subgroup and args.ci != "wald":
        raise InputError("--ci hksj applies to a meta-regression (--moderator); the test for "
                         "subgroup differences is RevMan's Q between")
    if args.out:
        from bayes_pip.output import check_output_dir
        check_output_dir(args.out)
    if args.subgroup:
        rec = moderation.classical_subgroups(dataset, args.outcome, args.subgroup,
                                             method=args.method, tau=args.tau)
    else:
        rec = moderation.classical_moderators(dataset, args.outcome, args.moderator,
                                              method=args.method,
                                              test="knha" if args.ci == "hksj" else "z")
    if args.out:
        from bayes_pip import figures
        from bayes_pip.output import json_text, write_report_files

        name = args.subgroup or "__".join(args.moderator)
        kind = "subgroups" if args.subgroup else "metareg"
        stem = f"{args.outcome}__{name}__{args.method}__{kind}"
        files = {f"{stem}.json": json_text(rec)}
        if args.subgroup:
            files[f"{stem}.png"] = figures.png_bytes(figures.subgroup_forest_plot(rec))
        elif len(args.moderator) == 1:
            files[f"{stem}__bubble.png"] = figures.png_bytes(figures.bubble_plot(rec))
    return output_record(args, rec, moderation.classical_text,
                         lambda: write_report_files(args.out, files))


def moderator_names(args) -> list[str]:
    if args.moderator and args.subgroup:
        raise InputError("give --moderator or --subgroup, not both")
    return args.moderator or [args.subgroup]


def moderator_engine(args) -> str:
    from bayes_pip.moderation import check_engine

    check_engine(args.engine)
    return args.engine


def moderator_fit(args, dataset) -> int:
    """`fit --moderator` / `fit --subgroup`: Bayesian meta-regression."""
    from bayes_pip import moderation

    names = moderator_names(args)
    if args.subgroup:
        dataset = dataset.with_moderator_kind(args.subgroup, "categorical")
    rec = moderation.bayes_moderators(dataset, args.outcome, names, prior_name=args.prior,
                                      engine=moderator_engine(args), seed=args.seed,
                                      settings=sampler_settings(args), level=args.level,
                                      prior_sets=prior_sets(args), at=args.at)
    if args.out:
        from bayes_pip import figures
        from bayes_pip.output import json_text, write_report_files

        stem = f"{args.outcome}__{'__'.join(names)}__{rec['prior']['name']}"
        files = {f"{stem}.json": json_text(rec)}
        if len(names) == 1:
            files[f"{stem}__bubble.png"] = figures.png_bytes(figures.bubble_plot(rec))
    return output_record(args, rec, moderation.bayes_text,
                         lambda: write_report_files(args.out, files))


# ---------------------------------------------------------------------------------------------
# reconstruct
# ---------------------------------------------------------------------------------------------

def cmd_reconstruct(args) -> int:
    """Every integer 2x2 table consistent with the review's printed numbers for one outcome.

    Reads the outcome's published pooled result (estimate and 95% CI as printed, k, number of
    participants, random or fixed effects) and constraints.csv in the data directory (bounds on
    arm sizes and counts, each with its source), and tests every candidate table with RevMan 5's
    own algorithm (M-H random effects: DerSimonian-Laird with Q from the M-H estimate). Outcomes
    that share arms (a `group` in constraints.csv) are reconstructed together. Such tables are
    reconstructed, not printed data; `fit --level reconstructed` fits them.

    Example: python -m bayes_pip reconstruct secure_attachment_post
    """
    from bayes_pip.errors import InputError
    from bayes_pip.summarise import reconstruction_text

    dataset = open_dataset(args)
    dataset.outcome(args.outcome)
    rec = dataset.reconstruction(args.outcome)
    if rec is None:
        raise InputError(f"outcome '{args.outcome}' has no rows in constraints.csv (see README, "
                         "'Reconstructed tables')", file=dataset.constraints_file)
    if not rec.searched:
        raise InputError(rec.diagnosis, file=dataset.constraints_file)
    if args.json:
        print_json(rec.to_dict())
    else:
        print(reconstruction_text(rec, dataset.outcome(args.outcome)))
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# priors
# ---------------------------------------------------------------------------------------------

def cmd_priors(args) -> int:
    """The prior sets that apply to one outcome, as applied to it, with their sources.

    Example: python -m bayes_pip priors secure_attachment_post
    """
    from bayes_pip.priors import applicable_priors, default_prior_name, resolve_prior

    dataset = open_dataset(args)
    outcome = dataset.outcome(args.outcome)
    categorical = args.outcome in dataset.categorical_ids()
    if categorical:   # every effect of the multinomial model is a log odds ratio
        outcome = dataclasses.replace(outcome, measure="OR", mcid=None)
    sets = prior_sets(args)
    resolved = [resolve_prior(n, outcome, sets) for n in applicable_priors(outcome, sets)]
    default = default_prior_name(outcome.measure)
    if args.json:
        print_json([{**p.to_dict(), "default": p.name == default} for p in resolved])
        return EXIT_OK
    level = "study" if categorical else dataset.status(args.outcome).level
    if categorical:
        print(f"{outcome.label} ({outcome.outcome}) is categorical: the multinomial model "
              "takes each prior set as for an odds-ratio outcome (each pooled log odds ratio, "
              "the tau of every log odds ratio), with the [baseline] prior on each trial's "
              "comparator logits.\n")
    if level == "summary":  # only the prior on the pooled effect is used: list those
        print(f"Priors on the pooled effect for {outcome.label} ({outcome.outcome}), "
              f"{outcome.measure}: analysed from its published pooled result, so "
              "heterogeneity is not modelled and priors on tau are not used.")
        groups: dict = {}
        for p in resolved:
            groups.setdefault(p.summary_level().shown, []).append(p)
        for shown, group in groups.items():
            p = group[0]
            sets_named = ", ".join(g.name + (" (default)" if g.name == default else "")
                                   for g in group)
            print(f"\n{shown}: {p.mu.describe()} on the "
                  f"{outcome.scale.analysis_label} scale (prior sets: {sets_named})")
            print(f"  source: {p.mu_source}")
        return EXIT_OK
    print(f"Prior sets for {outcome.label} ({outcome.outcome}), {outcome.measure}:")
    for p in resolved:
        print(f"\n{p.name}{' (default)' if p.name == default else ''}: {p.title}")
        print(f"  {p.describe()}")
        print(f"  mu: {p.mu_source}")
        print(f"  tau: {p.tau_source}")
        for note in p.notes:
            print(f"  note: {note}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# bma
# ---------------------------------------------------------------------------------------------

def cmd_bma(args) -> int:
    """Bayes factors and model averaging for one outcome, exactly (no Monte Carlo error).

    Marginal likelihoods of four normal-normal models (fixed or random effects, with or without
    an average effect) by quadrature over tau, the Bayes factors BF10 for an effect and for
    heterogeneity, posterior model probabilities (equal prior odds), and the model-averaged
    pooled effect with P(benefit). At summary level only the fixed-effect models apply.

    Example: python -m bayes_pip bma secure_attachment_post
    """
    from bayes_pip.analysis import bma_outcome
    from bayes_pip.summarise import bma_text

    dataset = open_dataset(args)
    record = bma_outcome(dataset, args.outcome, args.prior, args.level, prior_sets(args),
                         args.engine)
    return output_record(args, record, bma_text)


# ---------------------------------------------------------------------------------------------
# influence and funnel
# ---------------------------------------------------------------------------------------------

def output_record(args, record, as_text, write=None) -> int:
    """With --out, ``write()`` writes the files and returns their paths; then the record is
    printed as JSON (--json) or text."""
    if getattr(args, "out", None) and write is not None:
        for path in write():
            sys.stderr.write(f"wrote {path}\n")
    if args.json:   # a typed record, or a plain dict / list (moderator analyses)
        print_json(record.to_dict() if hasattr(record, "to_dict") else record)
    else:
        print(as_text(record))
    return EXIT_OK


def cmd_influence(args) -> int:
    """Leave each study out in turn, and the influence of each study on the pooled result.

    For every study: the DerSimonian-Laird result and the exact Bayesian posterior (pooled
    effect, tau, P(benefit)) without it, and metafor's influence diagnostics of the DL model
    (externally standardised residual, DFFITS, Cook's distance, COVRATIO, tau^2 and Q without
    the study, hat value, weight, DFBETAS) with its flag for influential studies. Needs at least
    3 studies. --out DIR also writes the JSON and a plot.

    Example: python -m bayes_pip influence acute_rejection --data data/crins2014
    """
    from bayes_pip import figures
    from bayes_pip.analysis import influence_outcome
    from bayes_pip.output import check_output_dir, json_text, write_report_files
    from bayes_pip.summarise import influence_text

    if args.out:
        check_output_dir(args.out)
    dataset = open_dataset(args)
    record = influence_outcome(dataset, args.outcome, args.prior, args.level, prior_sets(args),
                               progress_printer(sys.stderr.isatty()))
    return output_record(args, record, influence_text, lambda: write_report_files(args.out, {
        f"{record.outcome}_influence.json": json_text(record.to_dict()),
        f"{record.outcome}_leave_one_out.png":
            figures.png_bytes(figures.leave_one_out_plot(record))}))


def cmd_funnel(args) -> int:
    """Funnel plot and Egger's regression test for small-study effects (10 studies or more).

    Egger's test regresses each study's effect (log scale for ratios) on its standard error with
    weights 1/v (metafor regtest(model="lm")); the intercept is the limit estimate as the
    standard error goes to 0. Refused with fewer than 10 studies. --out DIR writes the JSON and
    the funnel plot.

    Example: python -m bayes_pip funnel aspirin_mortality --data mydata
    """
    from bayes_pip import figures
    from bayes_pip.analysis import egger_outcome
    from bayes_pip.output import check_output_dir, json_text, write_report_files
    from bayes_pip.summarise import egger_text

    if args.out:
        check_output_dir(args.out)
    dataset = open_dataset(args)
    record = egger_outcome(dataset, args.outcome, args.level)
    return output_record(args, record, egger_text, lambda: write_report_files(args.out, {
        f"{record.outcome}_funnel.json": json_text(record.to_dict()),
        f"{record.outcome}_funnel.png": figures.png_bytes(figures.funnel_plot(record))}))


# ---------------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------------

def cmd_fit(args) -> int:
    """Bayesian random-effects meta-analysis of one outcome under one prior.

    Prints the pooled effect and 95% credible interval on the natural scale (RR, SMD), tau, the
    prediction interval for a new study, each study's shrunken estimate, the probability that PIP
    beats control (and beats the MCID), beside the DerSimonian-Laird reference.

    Example: python -m bayes_pip fit secure_attachment_post --prior sceptical
    """
    from bayes_pip.analysis import fit_outcome
    from bayes_pip.output import check_output_dir, write_fit
    from bayes_pip.summarise import fit_text

    if args.out:
        check_output_dir(args.out)
    dataset = open_dataset(args)
    if args.outcome in dataset.categorical_ids():
        return categorical_fit(args, dataset)
    if args.moderator or args.subgroup:
        return moderator_fit(args, dataset)
    result = fit_outcome(dataset, args.outcome, prior_name=args.prior, engine=args.engine,
                         level=args.level, seed=args.seed, settings=sampler_settings(args),
                         progress=sys.stderr.isatty() and not args.json,
                         prior_sets=prior_sets(args))
    return output_record(args, result, fit_text, lambda: write_fit(args.out, result))


def categorical_fit(args, dataset) -> int:
    """`fit` of a categorical outcome: the multinomial model of all its categories."""
    from bayes_pip.categorical import (ENGINE, categorical_text, fit_categorical,
                                       write_categorical)
    from bayes_pip.engines.base import SamplerSettings

    for option, given in (("--moderator", args.moderator), ("--subgroup", args.subgroup),
                          ("--level", args.level not in (None, "auto"))):
        if given:
            raise InputError(f"{option} is not available for the categorical outcome "
                             f"'{args.outcome}' (the multinomial model fits its category counts)")
    if args.engine not in ("auto", ENGINE):
        raise InputError(f"--engine {args.engine} fits one effect per study; the categorical "
                         f"outcome '{args.outcome}' is fitted by --engine {ENGINE} (or auto)")
    settings = SamplerSettings(draws=args.draws, tune=args.tune, target_accept=args.target_accept)
    result = fit_categorical(dataset, args.outcome, prior_name=args.prior, seed=args.seed,
                             settings=settings, progress=sys.stderr.isatty() and not args.json,
                             prior_sets=prior_sets(args))
    return output_record(args, result, categorical_text,
                         lambda: write_categorical(args.out, result))


def categorical_compare(args, dataset) -> int:
    """`compare-priors` of a categorical outcome: the multinomial model under each prior set
    that applies to an odds-ratio outcome (or --priors)."""
    from bayes_pip.categorical import (ENGINE, as_odds_ratio, categorical_comparison_text,
                                       categorical_outcome, fit_categorical)
    from bayes_pip.engines.base import SamplerSettings
    from bayes_pip.priors import applicable_priors

    if args.moderator or args.subgroup or args.loo:
        raise InputError("--moderator, --subgroup and --loo are not available for the "
                         f"categorical outcome '{args.outcome}'")
    if args.engine not in ("auto", ENGINE):
        raise InputError(f"--engine {args.engine} fits one effect per study; the categorical "
                         f"outcome '{args.outcome}' is fitted by --engine {ENGINE} (or auto)")
    sets = prior_sets(args)
    co = categorical_outcome(dataset, args.outcome)
    names = prior_list(args) or applicable_priors(as_odds_ratio(co.outcome), sets)
    settings = SamplerSettings(draws=args.draws, tune=args.tune, target_accept=args.target_accept)
    fits = [fit_categorical(dataset, args.outcome, prior_name=n, seed=args.seed,
                            settings=settings, prior_sets=sets, separate=False) for n in names]
    return emit(fits, args.json, categorical_comparison_text)


def sampler_settings(args):
    from bayes_pip import engines
    from bayes_pip.engines.base import SamplerSettings

    if not engines.stochastic(args.engine):
        return None
    target = args.target_accept  # None: the engine's default for the number of studies
    return SamplerSettings(draws=args.draws, tune=args.tune, target_accept=target)


def prior_sets(args):
    """The shipped prior sets plus a team's own (--prior-dir), loaded and checked once."""
    from bayes_pip.priors import load_prior_sets

    if args.prior_dir and args.prior_file:
        raise InputError("give --prior-dir or --prior-file, not both")
    return load_prior_sets(extra=args.prior_dir or args.prior_file)


def add_moderator_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--moderator", action="append", default=None, metavar="NAME",
                   help="meta-regression on a column of studies.csv or trials.csv (repeat for "
                        "several); numeric per unit as given, or categorical against its first "
                        "level")
    p.add_argument("--subgroup", default=None, metavar="NAME",
                   help="subgroup analysis by a column of studies.csv or trials.csv")


def numbers_list(text: str) -> list[float]:
    """'12,52' -> [12.0, 52.0] (the analysis checks that they are finite)."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated numbers, e.g. 12,52")
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated numbers, e.g. 12,52")
    return values


def add_fit_options(p: argparse.ArgumentParser, prior: bool = True) -> None:
    from bayes_pip import engines
    from bayes_pip.analysis import DEFAULT_SEED
    from bayes_pip.data import LEVELS

    add_data_option(p)
    add_prior_options(p, "prior set from models/ (default: halfnormal-0.5; vague for MD)"
                      if prior else None)
    p.add_argument("--engine", choices=engines.selectable(), default=engines.AUTO,
                   help=engines.help_text() + ". At summary level every engine gives the "
                        "closed-form (conjugate) posterior")
    p.add_argument("--level", choices=LEVELS, default="auto",
                   help="study: study rows; reconstructed: the integer tables consistent with "
                        "the printed results (see `reconstruct`); summary: the published pooled "
                        "estimate; auto (default): the first of these the data allow")
    p.add_argument("--seed", type=int_in(0, SEED_MAX), default=DEFAULT_SEED,
                   help="random seed, 0 to 2^32-1 (default %(default)s)")
    p.add_argument("--draws", type=int_in(1, DRAWS_MAX), default=2000,
                   help="draws per chain, 1 to 10^6 (default %(default)s)")
    p.add_argument("--tune", type=int_in(1, DRAWS_MAX), default=1000,
                   help="tuning steps per chain, 1 to 10^6 (default %(default)s)")
    p.add_argument("--target-accept", type=probability_open, default=None,
                   help="NUTS target acceptance, between 0 and 1 (default: pymc 0.95, or 0.99 "
                        "with 3 studies or fewer; binomial 0.99, or 0.995 with 2 or fewer)")
    p.add_argument("--json", action="store_true", help="print JSON")


# ---------------------------------------------------------------------------------------------
# compare-priors and sweep
# ---------------------------------------------------------------------------------------------

def progress_printer(enabled: bool):
    """A one-line progress display on stderr when it is a terminal."""
    if not enabled:
        return None

    def show(i, n, what):
        sys.stderr.write(f"\r[{i}/{n}] {what[:70]:70s}")
        if i == n:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def add_scheduler_option(p) -> None:
    p.add_argument("--scheduler", default=None, metavar="local[:N]|ADDRESS",
                   help="run the fits on a Dask cluster: 'local' (one worker per core), "
                        "'local:N', or a scheduler address such as tcp://host:8786 (needs "
                        "pip install -e '.[dask]'); results equal a serial run")


def prior_list(args) -> list[str] | None:
    """--priors a,b,c as a list (None: every prior that applies)."""
    return [n.strip() for n in args.priors.split(",") if n.strip()] if args.priors else None


def emit(records, as_json: bool, as_text) -> int:
    print_json([r.to_dict() for r in records]) if as_json else print(as_text(records))
    return EXIT_OK


def cmd_compare_priors(args) -> int:
    """Fit one outcome under every applicable prior (or --priors a,b,...) beside the DL result.

    --loo adds a ranking of the prior sets by PSIS leave-one-study-out predictive accuracy
    (ArviZ), with Pareto k warnings, and says when the ranking cannot be used.

    Example: python -m bayes_pip compare-priors secure_attachment_post
    """
    from bayes_pip.analysis import compare_priors
    from bayes_pip.summarise import comparison_text

    dataset = open_dataset(args)
    if args.outcome in dataset.categorical_ids():
        return categorical_compare(args, dataset)
    if args.moderator or args.subgroup:
        from bayes_pip import moderation

        if args.loo:
            raise InputError("--loo does not apply to a moderator analysis")
        names = moderator_names(args)
        if args.subgroup:
            dataset = dataset.with_moderator_kind(args.subgroup, "categorical")
        records = moderation.compare_moderator_priors(
            dataset, args.outcome, names, prior_list(args), moderator_engine(args), args.seed,
            sampler_settings(args), args.level, prior_sets(args))
        return output_record(args, records, moderation.comparison_text)
    fits = compare_priors(dataset, args.outcome, prior_list(args), args.engine, args.level,
                          args.seed, sampler_settings(args),
                          progress_printer(sys.stderr.isatty() and not args.json),
                          prior_sets(args))
    if not args.loo:
        return emit(fits, args.json, comparison_text)
    from bayes_pip.analysis import loo_comparison
    from bayes_pip.summarise import loo_text

    loo = loo_comparison(fits)
    if args.json:
        print_json({"fits": [f.to_dict() for f in fits], "loo": [r.to_dict() for r in loo]})
    else:
        print(comparison_text(fits) + "\n" + loo_text(loo, fits[0].k))
    return EXIT_OK


def cmd_sweep(args) -> int:
    """Fit every outcome with data under every applicable prior (a prior-sensitivity sweep).

    The PyMC model is compiled once and reused for every fit. A fit that fails the convergence
    checks is reported with its reason and the sweep carries on; the exit code is then 3.

    Example: python -m bayes_pip sweep --json > sweep.json
    """
    from bayes_pip.analysis import engine_applies, has_level, outcomes_with_data, sweep
    from bayes_pip.record import FitFailure
    from bayes_pip.summarise import sweep_text

    dataset = open_dataset(args)
    left_out = [o for o in outcomes_with_data(dataset)
                if (args.level == "auto" or has_level(dataset, o, args.level))
                and not engine_applies(dataset, o, args.level, args.engine)]
    if left_out:
        sys.stderr.write(f"bayes_pip: --engine {args.engine} needs arm counts (RR or OR); "
                         f"left out: {', '.join(left_out)}\n")
    rows = sweep(dataset, prior_list(args), args.engine, args.seed, sampler_settings(args),
                 progress_printer(sys.stderr.isatty()), prior_sets(args), args.level,
                 args.scheduler)
    emit(rows, args.json, sweep_text)
    failed = sum(isinstance(r, FitFailure) for r in rows)
    if failed:
        sys.stderr.write(f"bayes_pip: {failed} of {len(rows)} fits failed the convergence "
                         "checks (listed with the results)\n")
        return EXIT_CONVERGENCE
    return EXIT_OK


def cmd_calibrate(args) -> int:
    """Simulation-based calibration of an engine: rank histograms (PNG) and uniformity tests.

    Simulates meta-analyses from the prior (mu ~ N(0, 1), tau ~ half-normal(--tau-scale),
    sigma_i ~ U(0.2, 1); the bayesmeta calibration design; for binomial-exact, OR arm counts
    from the binomial-normal model), fits each with the engine and checks that the truth's
    position in its posterior is uniform (p > 0.01). --out DIR writes
    calibration.json and calibration.png. Exit code 3 when a check fails.

    Example: python -m bayes_pip calibrate --engine exact --k 2,5,10 --reps 500 --out sbc
    """
    from bayes_pip import engines
    from bayes_pip.calibration import calibrate, calibration_text, rank_histograms
    from bayes_pip.figures import png_bytes
    from bayes_pip.output import check_output_dir, json_text, write_report_files

    ks = whole_numbers(args.k, "--k", 1, 500)
    if not 10 <= args.reps <= 1_000_000:
        raise InputError(f"--reps {args.reps}: give a number of replicates from 10 to 1000000")
    if not TAU_SCALE_RANGE[0] <= args.tau_scale <= TAU_SCALE_RANGE[1]:
        raise InputError(f"--tau-scale {args.tau_scale:g}: give a half-normal scale from "
                         f"{TAU_SCALE_RANGE[0]:g} to {TAU_SCALE_RANGE[1]:g} (the range a prior "
                         "file accepts for a scale, capped at 100)")
    if args.out:
        check_output_dir(args.out)
    from bayes_pip.engines.base import SamplerSettings

    settings = SamplerSettings(draws=args.draws, tune=args.tune, chains=2)
    record = calibrate(args.engine, ks, args.reps, args.seed, args.tau_scale, args.scheduler,
                       settings if engines.stochastic(args.engine) else None,
                       progress_printer(sys.stderr.isatty() and not args.json))
    output_record(args, record, calibration_text, lambda: write_report_files(args.out, {
        "calibration.json": json_text(record.to_dict()),
        "calibration.png": png_bytes(rank_histograms(record))}))
    if not record.passed:
        sys.stderr.write("bayes_pip: a calibration check failed (p <= 0.01)\n")
        return EXIT_CONVERGENCE
    return EXIT_OK


def whole_numbers(text: str, option: str, low: int, high: int) -> list[int]:
    """'2,5,10' -> [2, 5, 10], each from low to high."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or not all(p.isdigit() and low <= int(p) <= high for p in parts):
        raise InputError(f"{option} {text}: give comma-separated whole numbers from {low} to "
                         f"{high} (e.g. 2,5,10)")
    return sorted(set(int(p) for p in parts))


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------

def cmd_report(args) -> int:
    """Write reports: per outcome a Markdown file, a self-contained HTML file, PNG figures (forest
    plot, prior vs posterior, sensitivity) and the fits as JSON; with --all also a
    summary-of-findings table (Markdown, HTML, CSV) across outcomes.

    Example: python -m bayes_pip report --all --out reports
    """
    from bayes_pip.bundle import build_report
    from bayes_pip.output import check_output_dir

    if bool(args.outcome) == bool(args.all):
        raise InputError("give one OUTCOME or --all")
    check_output_dir(args.out)
    bundle = build_report(open_dataset(args), None if args.all else args.outcome, args.prior,
                          args.engine, args.level, args.seed, sampler_settings(args),
                          prior_sets(args), args.moderator, args.subgroup,
                          progress_printer(sys.stderr.isatty()), args.certainty_rule)
    written = bundle.write(args.out)
    done = (f"Wrote {len(written)} files to {args.out}/ (start with "
            f"{args.out}/{bundle.main_file()}).")
    if args.json:  # the records behind the reports, one list of fits per outcome
        print_json(bundle.to_dict())
        sys.stderr.write(done + "\n")
        return EXIT_OK
    print(done)
    if args.all:
        from bayes_pip.summarise import not_independent_text

        for r in bundle.rows():
            print(f"  {r['outcome']:42s} {r['level']:13s} {r['measure']:3s} {r['bayes']:>22s}  "
                  f"P(benefit) {r['p_benefit']} ({r['p_benefit_range']})")
        shared = not_independent_text(bundle.fits)
        if shared:
            print(shared)
        for o, r in bundle.categorical.items():
            print(f"  {o:42s} categorical, all categories in one model: "
                  + "; ".join(f"{c['category']} RR {c['rr']['median']:.2f} "
                              f"[{c['rr']['ci_low']:.2f}, {c['rr']['ci_high']:.2f}]"
                              for c in r.fit.per_category))
            separate = [c["separate_outcome"] for c in r.fit.comparison if c.get("separate")]
            if separate:
                print(f"  (the rows {', '.join(separate)} above analyse its categories one at a "
                      "time: a sensitivity view of the same trials)")
    for note in bundle.notes + bundle.left_out:
        print(f"Note: {note}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# import
# ---------------------------------------------------------------------------------------------

def cmd_import(args) -> int:
    """Convert a RevMan 5 file (.rm5), a RevMan 5 CSV export or a RevMan Web data package
    (directory) into a bayes_pip data directory (outcomes.csv, studies.csv, trials.csv with
    risk-of-bias judgements, published.csv with the estimates RevMan stored).

    The direction of benefit cannot be read from the data: give --benefit lower|higher, or
    --benefit from-labels to take it from RevMan's "Favours ..." labels; otherwise the benefit
    column says 'unknown' (list, dl and compare-priors work; fit and report ask for it) and the
    labels are printed as a hint.

    Example: python -m bayes_pip import review.rm5 --out data/myreview --benefit from-labels
    """
    from pathlib import Path

    from bayes_pip.output import check_output_dir, replace_directory
    from bayes_pip.revman import read_review, review_files, validate_files

    out = check_output_dir(args.out)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise InputError("is not empty; give an empty or new directory, or --force to replace "
                         "its whole content", file=str(out))
    if out.exists() and args.force:   # --force replaces an earlier import, nothing else
        other = sorted(p.name for p in out.iterdir() if p.name not in IMPORTED_FILES)
        if other:
            raise InputError(f"--force replaces only an earlier import ({', '.join(IMPORTED_FILES)}"
                             f"), and this directory also holds {', '.join(other[:3])}"
                             + (f" and {len(other) - 3} more" if len(other) > 3 else "")
                             + "; give a new directory", file=str(out))
    if Path(args.source).resolve() == out.resolve() or out.resolve() in Path(
            args.source).resolve().parents:
        raise InputError("--out may not contain the file being imported", file=str(out))
    review = read_review(args.source)
    if not review.outcomes:
        raise InputError("no outcome with data that bayes_pip can analyse (RR, OR, SMD, MD, "
                         "RD, PETO_OR)", file=args.source)
    files, hints = review_files(review, args.benefit)
    validate_files(files, str(out))  # everything checked in memory before anything is written
    replace_directory(out, files)
    print(f"Imported {len(review.outcomes)} outcomes, {len(review.studies)} study rows and "
          f"{len(review.trials)} trials from {args.source} into {args.out}/")
    for s in review.skipped:
        print(f"  skipped: {s}")
    for h in hints:
        print(f"  to do: {h}")
    if hints:
        print(f"Until then `list`, `dl` and `compare-priors` work (without P(benefit)); `fit` and "
              f"`report` need the direction. Next: python -m bayes_pip list --data {args.out}")
    else:
        print(f"Next: python -m bayes_pip list --data {args.out}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------------

def add_data_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="DIR", default=None,
                   help="data directory with outcomes.csv, studies.csv, published.csv "
                        "(default: the bundled PIP review data)")
    p.add_argument("--multi-arm", choices=("refuse", "split", "combine"), default="refuse",
                   help="a multi-arm trial whose arm appears in two comparisons of one "
                        "meta-analysis: refuse (default), split the shared arm between them, or "
                        "combine the other arms into one group (Cochrane Handbook 23.3.4)")
    p.add_argument("--max-candidates", type=int_in(1, MAX_BUDGET), default=None, metavar="N",
                   help="search budget of a reconstruction from constraints.csv: more candidate "
                        "tables than this are not searched (default 10,000,000, about 20 s at "
                        "k = 2)")


def open_dataset(args):
    """The --data directory, validated, with the --multi-arm remedy and the search budget."""
    from bayes_pip.data import load_dataset

    dataset = load_dataset(args.data).with_multi_arm(getattr(args, "multi_arm", "refuse"))
    budget = getattr(args, "max_candidates", None)
    return dataset if budget is None else dataset.with_search_budget(budget)


def add_prior_options(p: argparse.ArgumentParser, prior_help: str | None = None) -> None:
    """--prior (when ``prior_help``), --prior-dir and --prior-file."""
    if prior_help:
        p.add_argument("--prior", default=None, help=prior_help)
    p.add_argument("--prior-dir", metavar="DIR", default=None,
                   help="a directory of your own prior files (*.toml, the format of models/), "
                        "used beside the shipped ones; a name may not repeat a shipped one")
    p.add_argument("--prior-file", metavar="FILE", default=None,
                   help="one prior file of your own (*.toml), used beside the shipped ones")


def add_command(sub, name: str, summary: str, func) -> argparse.ArgumentParser:
    """A subcommand whose --help is its function's docstring (with an example)."""
    p = sub.add_parser(name, help=summary, description=inspect.cleandoc(func.__doc__),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    from bayes_pip.analysis import BMA_ENGINES
    from bayes_pip import engines
    from bayes_pip.classical import METHODS
    from bayes_pip.data import LEVELS

    parser = ArgumentParser(
        prog="bayes_pip",
        description="Bayesian re-analysis of systematic reviews (bundled: Barlow et al. 2015, "
                    "parent-infant psychotherapy, Cochrane CD010534.pub2).",
        epilog="Exit codes: 0 ok, 2 bad input or usage, 3 MCMC did not converge, 1 internal error.")
    parser.add_argument("--version", action="version", version=f"bayes_pip {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)

    p = add_command(sub, "list", "outcomes, measure, k, direction of benefit, data status",
                    cmd_list)
    add_data_option(p)
    p.add_argument("--json", action="store_true", help="print a JSON list")

    p = add_command(sub, "dl", "DerSimonian-Laird analysis of one outcome",
                    cmd_dl)
    p.add_argument("outcome", help="outcome id (see `list`)")
    add_data_option(p)
    p.add_argument("--method", choices=METHODS + ("file",), default=None,
                   help="pooling method: by default the review's own where the data name "
                        "it (an imported RevMan file; reconstructed tables), else DL (as metafor "
                        "rma method='DL'); MH-random "
                        "(RevMan 'M-H, Random'), IV-fixed, MH-fixed, Peto (PETO_OR outcomes, "
                        "their only method), or file: the method and "
                        "model an imported RevMan file names; REML and PM (Paule-Mandel) are "
                        "tau^2 estimators for inverse-variance random effects")
    p.add_argument("--ci", choices=("wald", "hksj"), default="wald",
                   help="confidence interval of the pooled effect: wald (normal, default) or "
                        "hksj (Hartung-Knapp-Sidik-Jonkman, t(k-1); the variance factor is not "
                        "truncated at 1, as metafor test='knha')")
    p.add_argument("--pi", choices=("t", "z"), default=None,
                   help="prediction interval: t (t(k-2), Higgins-Thompson-Spiegelhalter; "
                        "default) or z (metafor's predict() with a z test); with --ci hksj it "
                        "is t(k-1) with the Hartung-Knapp SE, as metafor's predict() of a knha "
                        "fit")
    p.add_argument("--level", choices=("auto", "study", "reconstructed"), default="auto",
                   help="the data pooled, as `fit` chooses them: auto (default: the study rows, "
                        "or the reconstructed tables where `fit` uses them), study (the study "
                        "rows only) or reconstructed")
    add_moderator_options(p)
    p.add_argument("--out", metavar="DIR", default=None,
                   help="with --moderator or --subgroup: also write the JSON and a bubble plot "
                        "or subgroup forest plot to DIR")
    p.add_argument("--tau", choices=("separate", "common"), default="separate",
                   help="with --subgroup: a tau^2 per subgroup (RevMan, default) or one shared "
                        "tau^2 (the mixed-effects model; Q between is its QM)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = add_command(sub, "reconstruct", "integer 2x2 tables consistent with the printed "
                    "pooled result of one outcome", cmd_reconstruct)
    p.add_argument("outcome", help="outcome id (see `list`)")
    add_data_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = add_command(sub, "priors", "the prior sets that apply to one outcome, with sources",
                    cmd_priors)
    p.add_argument("outcome", help="outcome id (see `list`)")
    add_data_option(p)
    add_prior_options(p)
    p.add_argument("--json", action="store_true", help="print a JSON list")

    p = add_command(sub, "bma", "Bayes factors and the model-averaged effect of one outcome",
                    cmd_bma)
    p.add_argument("outcome", help="outcome id (see `list`)")
    add_data_option(p)
    add_prior_options(p, "prior set from models/ (default: halfnormal-0.5; vague for MD)")
    p.add_argument("--level", choices=LEVELS, default="auto",
                   help="study, reconstructed or summary (default auto: the first the data allow)")
    p.add_argument("--engine", choices=BMA_ENGINES, default="auto",
                   help="likelihood of the marginal likelihoods: exact: normal-normal on each "
                        "study's effect; binomial-exact: binomial-normal on arm counts (RR/OR); "
                        "auto (default): binomial-normal on sparse arm counts (an arm with fewer "
                        "than 5 events or 5 non-events), as `fit`")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = add_command(sub, "influence", "leave each study out; influence diagnostics",
                    cmd_influence)
    p.add_argument("outcome", help="outcome id (see `list`)")
    add_data_option(p)
    add_prior_options(p, "prior set for the Bayesian columns (default: halfnormal-0.5; vague "
                         "for MD)")
    p.add_argument("--level", choices=LEVELS, default="auto",
                   help="study or reconstructed (default auto)")
    p.add_argument("--out", metavar="DIR", default=None, help="also write JSON and a plot to DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = add_command(sub, "funnel", "funnel plot and Egger's test (10 studies or more)",
                    cmd_funnel)
    p.add_argument("outcome", help="outcome id (see `list`)")
    add_data_option(p)
    p.add_argument("--level", choices=LEVELS, default="auto",
                   help="study or reconstructed (default auto)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="also write JSON and the funnel plot to DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = add_command(sub, "fit", "Bayesian fit of one outcome: posterior, P(PIP beats control)",
                    cmd_fit)
    p.add_argument("outcome", help="outcome id (see `list`)")
    add_fit_options(p)
    p.add_argument("--out", metavar="DIR", default=None,
                   help="also write the JSON summary (and netCDF draws for MCMC) to DIR; with "
                        "--moderator, the JSON and a bubble plot")
    add_moderator_options(p)
    p.add_argument("--at", type=numbers_list, default=None, metavar="X1,X2,...",
                   help="with one numeric --moderator: also predict the effect at these values "
                        "(e.g. --at 12,52)")

    p = add_command(sub, "compare-priors", "one outcome under every applicable prior",
                    cmd_compare_priors)
    p.add_argument("outcome", help="outcome id (see `list`)")
    p.add_argument("--priors", default=None, metavar="A,B,...",
                   help="comma-separated prior sets (default: every prior that applies)")
    p.add_argument("--loo", action="store_true",
                   help="also rank the prior sets by PSIS leave-one-study-out predictive "
                        "accuracy (ArviZ); --json then prints {fits, loo}")
    add_fit_options(p, prior=False)
    add_moderator_options(p)

    p = add_command(sub, "sweep", "every outcome x every applicable prior",
                    cmd_sweep)
    p.add_argument("--priors", default=None, metavar="A,B,...",
                   help="comma-separated prior sets (default: every prior that applies)")
    add_fit_options(p, prior=False)
    add_scheduler_option(p)

    p = add_command(sub, "calibrate", "simulation-based calibration of an engine",
                    cmd_calibrate)
    p.add_argument("--engine", choices=engines.choices(), default="exact",
                   help="exact: the batched exact engine; binomial-exact and binomial: the "
                        "binomial-normal engines on simulated OR arm counts; pymc: the PyMC "
                        "normal-normal engine; any registered engine is calibrated by the "
                        "payload it accepts")
    p.add_argument("--k", default="2,5,10", metavar="K1,K2,...",
                   help="numbers of studies per simulated meta-analysis (default 2,5,10)")
    p.add_argument("--reps", type=int, default=500,
                   help="replicates per number of studies (default 500)")
    p.add_argument("--tau-scale", type=float, default=0.5,
                   help="scale of the half-normal prior on tau (default 0.5)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="write calibration.json and calibration.png here")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.add_argument("--seed", type=int_in(0, SEED_MAX), default=1,
                   help="random seed, 0 to 2^32-1 (default 1)")
    p.add_argument("--draws", type=int_in(10, DRAWS_MAX), default=500,
                   help="pymc: draws per chain (2 chains; default 500)")
    p.add_argument("--tune", type=int_in(10, DRAWS_MAX), default=500,
                   help="pymc: tuning steps per chain (default 500)")
    add_scheduler_option(p)

    p = add_command(sub, "report", "Markdown/HTML/PNG reports for one outcome or --all",
                    cmd_report)
    p.add_argument("outcome", nargs="?", help="outcome id (see `list`)")
    p.add_argument("--all", action="store_true", help="every outcome with data, plus a "
                   "summary-of-findings table")
    p.add_argument("--out", metavar="DIR", default="reports", help="output directory "
                   "(default: reports)")
    p.add_argument("--prior", default=None,
                   help="the primary analysis's prior set (default: halfnormal-0.5; vague for "
                        "MD); the other applicable priors form the sensitivity analysis")
    add_fit_options(p, prior=False)
    add_moderator_options(p)
    p.add_argument("--certainty-rule", metavar="FILE", default=None,
                   help="TOML file of the certainty rule for the summary of findings (default: "
                        "the shipped models/certainty/bayes-grade-1.toml)")

    p = add_command(sub, "import", "convert RevMan 5 / RevMan Web files into a data directory",
                    cmd_import)
    p.add_argument("source", help=".rm5 file, RevMan 5 CSV export, or RevMan Web data package "
                   "directory")
    p.add_argument("--out", metavar="DIR", required=True, help="data directory to write")
    p.add_argument("--force", action="store_true",
                   help="replace the whole content of a non-empty --out directory")
    p.add_argument("--benefit", choices=("lower", "higher", "from-labels"), default=None,
                   help="direction of benefit for every outcome (default: leave for you to fill)")
    return parser


def terminate(signum, frame):
    raise Terminated


def interrupt_behind(exc: BaseException):
    """KeyboardInterrupt or Terminated when ``exc`` was caused by one (a signal that arrived
    inside compiled code, e.g. a numba kernel, comes back as a SystemError raised from it)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (KeyboardInterrupt, Terminated)):
            return type(exc)
        exc = exc.__cause__ or exc.__context__
    return None


def show_data_warning(message, category, filename, lineno, file=None, line=None):
    """Data warnings as one line each on stderr; other warnings as Python prints them."""
    from bayes_pip.errors import DataWarning

    if issubclass(category, DataWarning):
        sys.stderr.write(f"bayes_pip: warning: {message}\n")
    else:
        ORIGINAL_SHOWWARNING(message, category, filename, lineno, file, line)


ORIGINAL_SHOWWARNING = warnings.showwarning


# control characters that data text could carry to a terminal (an escape sequence in a moderator
# level or a study name); newline, tab and the progress line's carriage return are kept
UNPRINTABLE = {c: None for c in [*range(0x00, 0x09), 0x0b, 0x0c, *range(0x0e, 0x20), 0x7f,
                                 *range(0x80, 0xa0)]}


class PrintableStream:
    """A text stream that drops control characters from everything written to it."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(text.translate(UNPRINTABLE))

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def printable_streams():
    """stdout and stderr without control characters while a command runs."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = PrintableStream(out), PrintableStream(err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err


def main(argv: list[str] | None = None) -> int:
    ensure_writable_caches()
    warnings.showwarning = show_data_warning
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, terminate)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_INPUT
    try:
        with printable_streams():
            return args.func(args)
    except InputError as exc:
        sys.stderr.write(f"bayes_pip: error: {str(exc).translate(UNPRINTABLE)}\n")
        return EXIT_INPUT
    except ConvergenceError as exc:
        sys.stderr.write(f"bayes_pip: convergence failure: {exc}\n")
        return EXIT_CONVERGENCE
    except SamplerError as exc:
        sys.stderr.write(f"bayes_pip: sampler failure (exit 1): {exc}\n")
        # the sampler's threads may not survive interpreter teardown after such a failure:
        # leave now, with the message written and nothing else to clean up
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERNAL)
    except OutputComplete as exc:
        name, code = (("interrupted", 130) if exc.signum == signal.SIGINT
                      else ("terminated", 143))
        sys.stderr.write(f"bayes_pip: {name} after the output was complete: the new files are "
                         f"all in {exc.target}\n")
        return code
    except KeyboardInterrupt:
        sys.stderr.write("bayes_pip: interrupted; nothing was written\n")
        return 130
    except Terminated:
        sys.stderr.write("bayes_pip: terminated; nothing was written\n")
        return 143
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence: exit 1 with a pointer
        signalled = interrupt_behind(exc)
        if signalled is not None:  # compiled code re-raised the interrupt as its own error
            name, code = ("interrupted", 130) if signalled is KeyboardInterrupt \
                else ("terminated", 143)
            sys.stderr.write(f"bayes_pip: {name}; nothing was written\n")
            return code
        traceback.print_exc()
        sys.stderr.write("bayes_pip: internal error (exit 1). This is a bug in bayes_pip, not in "
                         "your data: please report it with the command you ran and the output "
                         "above.\n")
        return EXIT_INTERNAL
