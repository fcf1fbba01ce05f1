"""The CLI's commands over many outcomes or simulations: sweep, calibrate, report and import."""

from __future__ import annotations

import sys

from bayes_pip.errors import InputError
from bayes_pip.cli_common import (EXIT_CONVERGENCE, EXIT_OK, IMPORTED_FILES, TAU_SCALE_RANGE, emit,
                                  open_dataset, output_record, print_json, prior_list, prior_sets,
                                  progress_printer, sampler_settings, whole_numbers)

def cmd_sweep(args) -> int:
    """Fit every outcome with data under every applicable prior (a prior-sensitivity sweep).

    The PyMC model is compiled once and reused for every fit. A fit that fails the convergence
    checks is reported with its reason and the sweep carries on; the exit code is then 3.

    Example: python -m bayes_pip sweep --json > sweep.json
    """
    from bayes_pip.sweeps import engine_applies, sweep
    from bayes_pip.analysis import has_level, outcomes_with_data
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
                          progress_printer(sys.stderr.isatty()), args.certainty_rule,
                          args.jobs)
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


def cmd_database(args) -> int:
    """A whole database of meta-analyses: one row per study in, one row per meta-analysis out.

    INPUT is a CSV with columns meta_id, y (the study's effect on the analysis scale: log OR or
    log RR for ratios, SMD, MD, RD), v (its variance) or se (its standard error), and optionally
    measure and benefit (else --measure and --benefit); rows of one meta-analysis consecutive.
    Every meta-analysis gets the exact normal-normal posterior (mu, tau, a new study's effect,
    P(benefit)) and the model comparison of `bma` (log marginal likelihoods of FE0, FE, RE0, RE,
    Bayes factors, model-averaged P(benefit)), under --prior (default: each measure's default
    prior set). Writes DIR/results.csv and DIR/run.json (input, settings, priors used,
    versions). The input is streamed in chunks (memory does not grow with the number of
    meta-analyses); Ctrl-C keeps the finished chunks and --resume continues from them.

    Example: python -m bayes_pip database metas.csv --measure OR --benefit lower --out db
    """
    from bayes_pip import database
    from bayes_pip.errors import Terminated

    from bayes_pip.engines.batch import TOL_RANGE

    if not TOL_RANGE[0] <= args.tol <= TOL_RANGE[1]:
        raise InputError(f"--tol {args.tol:g}: give a number from {TOL_RANGE[0]:g} to "
                         f"{TOL_RANGE[1]:g}")
    if args.resume and args.restart:
        raise InputError("give --resume or --restart, not both")
    if args.prior_dir and args.prior_file:
        raise InputError("give --prior-dir or --prior-file, not both")
    settings = database.Settings(prior=args.prior, measure=args.measure, benefit=args.benefit,
                                 evidence=not args.no_evidence, tol=args.tol,
                                 prior_dir=args.prior_dir or args.prior_file)
    try:
        record = database.run(args.input, args.out, settings, args.resume, args.restart,
                              args.scheduler, progress=progress_printer(sys.stderr.isatty()))
    except (KeyboardInterrupt, Terminated) as exc:
        done = database.progress_of(args.out)
        sys.stderr.write(f"\nbayes_pip: {'interrupted' if isinstance(exc, KeyboardInterrupt) else 'terminated'}"
                         f"; {done}; run the same command with --resume to continue\n")
        return 130 if isinstance(exc, KeyboardInterrupt) else 143
    from bayes_pip.formats import counted

    print(f"{counted(record['meta_analyses'], 'meta-analysis', 'meta-analyses')} "
          f"({counted(record['studies'], 'study', 'studies')}) in "
          f"{record['wall_seconds']:.1f} s; {record['without_posterior']:,} without a posterior "
          f"(the error column says why). Wrote {args.out}/{database.RESULTS} and "
          f"{args.out}/{database.RUN}.")
    for p in record["priors_used"]:
        print(f"  {p['measure']} (benefit {p['benefit']}): prior {p['prior']}: "
              f"{p['description']}" + (f" ({p['note']})" if p["note"] else ""))
    return EXIT_OK
