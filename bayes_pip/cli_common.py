"""What every command of the CLI shares: argument types and limits, option groups, opening the
data and the prior sets, sampler settings, and printing records (text or JSON)."""

from __future__ import annotations

import argparse
import inspect
import json
import sys

from bayes_pip.errors import InputError

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


def output_record(args, record, as_text, write=None) -> int:
    """With --out, ``write()`` writes the files and returns their paths; then the record is
    printed as JSON (--json) or text."""
    if getattr(args, "out", None) and write is not None:
        for path in write():
            sys.stderr.write(f"wrote {path}\n")
    if args.json:   # a typed record or a list of them (a moderator analysis under each prior)
        print_json([r.to_dict() for r in record] if isinstance(record, list)
                   else record.to_dict())
    else:
        print(as_text(record))
    return EXIT_OK


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


class LazyHelp:
    """A help string computed when --help is printed, not when the parser is built (the
    engines' help needs their modules; importing them all costs a cold `list` 0.3 s)."""

    def __init__(self, make):
        self.make = make

    def __str__(self) -> str:
        return self.make()

    def __bool__(self) -> bool:
        return True

    def strip(self) -> str:
        return str(self).strip()

    def __mod__(self, params) -> str:
        return str(self) % params


def add_fit_options(p: argparse.ArgumentParser, prior: bool = True) -> None:
    from bayes_pip import engines
    from bayes_pip.analysis import DEFAULT_SEED
    from bayes_pip.data import LEVELS

    add_data_option(p)
    add_prior_options(p, "prior set from models/ (default: halfnormal-0.5; vague for MD)"
                      if prior else None)
    p.add_argument("--engine", choices=engines.selectable(), default=engines.AUTO,
                   help=LazyHelp(lambda: engines.help_text() + ". At summary level every "
                                 "engine gives the closed-form (conjugate) posterior"))
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


def whole_numbers(text: str, option: str, low: int, high: int) -> list[int]:
    """'2,5,10' -> [2, 5, 10], each from low to high."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or not all(p.isdigit() and low <= int(p) <= high for p in parts):
        raise InputError(f"{option} {text}: give comma-separated whole numbers from {low} to "
                         f"{high} (e.g. 2,5,10)")
    return sorted(set(int(p) for p in parts))


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


def moderator_names(args) -> list[str]:
    if args.moderator and args.subgroup:
        raise InputError("give --moderator or --subgroup, not both")
    return args.moderator or [args.subgroup]


def moderator_engine(args) -> str:
    from bayes_pip.moderation import check_engine

    check_engine(args.engine)
    return args.engine
