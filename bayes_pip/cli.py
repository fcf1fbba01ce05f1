"""Command-line interface: parse arguments, call the library, print, map errors to exit codes.

The parser and the entry point are here; the commands live in :mod:`bayes_pip.cli_commands`
(one outcome) and :mod:`bayes_pip.cli_batch` (many outcomes, simulations, import), what they
share in :mod:`bayes_pip.cli_common`. No statistics in any of them. Exit codes: 0 ok; 2 bad input or usage; 3 MCMC convergence failure;
1 internal error.
"""

from __future__ import annotations

import argparse
import contextlib
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
from bayes_pip.cli_batch import (cmd_calibrate, cmd_database, cmd_import, cmd_report,
                                 cmd_sweep)
from bayes_pip.cli_commands import (cmd_bma, cmd_compare_priors, cmd_dl, cmd_fit, cmd_funnel,
                                    cmd_influence, cmd_list, cmd_priors, cmd_reconstruct)
from bayes_pip.cli_common import (EXIT_CONVERGENCE, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK,
                                  ArgumentParser, DRAWS_MAX, SEED_MAX, add_command,
                                  add_data_option, add_fit_options, add_moderator_options,
                                  add_prior_options, add_scheduler_option, int_in, numbers_list)


def build_parser() -> argparse.ArgumentParser:
    from bayes_pip import engines
    from bayes_pip.classical import METHODS
    from bayes_pip.data import LEVELS
    from bayes_pip.measures import names_where

    BAYESIAN_MEASURES = names_where(lambda m: m.bayesian)

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
    p.add_argument("--engine", choices=engines.selectable(), default="auto",
                   help="an engine that gives marginal likelihoods (the others are refused): "
                        "exact: normal-normal on each study's effect; binomial-exact: "
                        "binomial-normal on arm counts (RR/OR); auto (default): binomial-normal "
                        "on sparse arm counts (an arm with fewer than 5 events or 5 "
                        "non-events), as `fit`")
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

    p = add_command(sub, "database", "a whole database of meta-analyses, streamed (exact)",
                    cmd_database)
    p.add_argument("input", help="CSV: meta_id, y, v (or se), optional measure and benefit")
    p.add_argument("--out", metavar="DIR", required=True,
                   help="output directory (results.csv, run.json)")
    p.add_argument("--prior", default=None, help="prior set for every meta-analysis (default: "
                   "each measure's default; one that does not apply to a measure is replaced "
                   "as fit replaces it, and the prior column names the one used)")
    add_prior_options(p)
    p.add_argument("--measure", choices=BAYESIAN_MEASURES, default=None,
                   help="measure of meta-analyses without a measure column or value")
    p.add_argument("--benefit", choices=("lower", "higher"), default=None,
                   help="direction of benefit where the file has no benefit column or value")
    p.add_argument("--no-evidence", action="store_true",
                   help="leave out the model comparison (marginal likelihoods, Bayes factors)")
    p.add_argument("--tol", type=float, default=1e-10,
                   help="the quadrature's error estimate allowed per meta-analysis, relative to "
                        "the integral (default 1e-10; adaptive cells are halved until it is met)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --out (same input and settings)")
    p.add_argument("--restart", action="store_true",
                   help="discard an interrupted run in --out and start again")
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
    p.add_argument("--jobs", type=int_in(1, 64), default=1, metavar="N",
                   help="fit N outcomes at a time in worker processes (default 1; the files "
                        "equal the serial run's)")
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
