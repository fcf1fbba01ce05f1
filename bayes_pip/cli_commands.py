"""The CLI's commands on one outcome: list, dl, reconstruct, priors, bma, influence, funnel,
fit (categorical outcomes included) and compare-priors. Each parses nothing (the parser is in
:mod:`bayes_pip.cli`), calls the library and prints."""

from __future__ import annotations

import sys

from bayes_pip.analyses import analysis_of, model_of
from bayes_pip.errors import InputError
from bayes_pip.cli_common import (EXIT_OK, emit, moderator_engine, moderator_names, open_dataset,
                                  output_record, print_json, prior_list, prior_sets,
                                  progress_printer, sampler_settings)

def cmd_list(args) -> int:
    """List the outcomes of a data directory with their data status.

    Example: python -m bayes_pip list
    """
    from bayes_pip.listing import outcome_listing

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
    from bayes_pip import moderation, moderation_text

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
        files = {f"{stem}.json": json_text(rec.to_dict())}
        if args.subgroup:
            files[f"{stem}.png"] = figures.png_bytes(figures.subgroup_forest_plot(rec))
        elif len(args.moderator) == 1:
            files[f"{stem}__bubble.png"] = figures.png_bytes(figures.bubble_plot(rec))
    return output_record(args, rec, moderation_text.classical_text,
                         lambda: write_report_files(args.out, files))


def moderator_fit(args, dataset) -> int:
    """`fit --moderator` / `fit --subgroup`: Bayesian meta-regression."""
    from bayes_pip import moderation, moderation_text

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

        stem = f"{args.outcome}__{'__'.join(names)}__{rec.prior_name}"
        files = {f"{stem}.json": json_text(rec.to_dict())}
        if len(names) == 1:
            files[f"{stem}__bubble.png"] = figures.png_bytes(figures.bubble_plot(rec))
    return output_record(args, rec, moderation_text.bayes_text,
                         lambda: write_report_files(args.out, files))


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
    analysis = analysis_of(dataset, args.outcome)
    model_of(analysis).refuse("reconstruct", analysis, {})
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


def cmd_priors(args) -> int:
    """The prior sets that apply to one outcome, as applied to it, with their sources.

    Example: python -m bayes_pip priors secure_attachment_post
    """
    from bayes_pip.priors import applicable_priors, default_prior_name, resolve_prior

    dataset = open_dataset(args)
    analysis = analysis_of(dataset, args.outcome)
    outcome = model_of(analysis).prior_outcome(dataset.outcome(args.outcome))
    categorical = analysis.model == "multinomial"
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


def cmd_bma(args) -> int:
    """Bayes factors and model averaging for one outcome, exactly (no Monte Carlo error).

    Marginal likelihoods of four normal-normal models (fixed or random effects, with or without
    an average effect) by quadrature over tau, the Bayes factors BF10 for an effect and for
    heterogeneity, posterior model probabilities (equal prior odds), and the model-averaged
    pooled effect with P(benefit). At summary level only the fixed-effect models apply.

    Example: python -m bayes_pip bma secure_attachment_post
    """
    from bayes_pip.checks import bma_outcome
    from bayes_pip.evidence_text import bma_text

    dataset = open_dataset(args)
    record = bma_outcome(dataset, args.outcome, args.prior, args.level, prior_sets(args),
                         args.engine)
    return output_record(args, record, bma_text)


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
    from bayes_pip.checks import influence_outcome
    from bayes_pip.output import check_output_dir, json_text, write_report_files
    from bayes_pip.evidence_text import influence_text

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
    from bayes_pip.checks import egger_outcome
    from bayes_pip.output import check_output_dir, json_text, write_report_files
    from bayes_pip.evidence_text import egger_text

    if args.out:
        check_output_dir(args.out)
    dataset = open_dataset(args)
    record = egger_outcome(dataset, args.outcome, args.level)
    return output_record(args, record, egger_text, lambda: write_report_files(args.out, {
        f"{record.outcome}_funnel.json": json_text(record.to_dict()),
        f"{record.outcome}_funnel.png": figures.png_bytes(figures.funnel_plot(record))}))


def cmd_fit(args) -> int:
    """Bayesian random-effects meta-analysis of one outcome under one prior.

    Prints the pooled effect and 95% credible interval on the natural scale (RR, SMD), tau, the
    prediction interval for a new study, each study's shrunken estimate, the probability that PIP
    beats control (and beats the MCID), beside the DerSimonian-Laird reference.

    Example: python -m bayes_pip fit secure_attachment_post --prior sceptical
    """
    from bayes_pip.output import check_output_dir

    if args.out:
        check_output_dir(args.out)
    dataset = open_dataset(args)
    analysis = analysis_of(dataset, args.outcome)
    model = model_of(analysis)
    model.refuse("fit", analysis, {"--moderator": args.moderator, "--subgroup": args.subgroup,
                                   "--level": args.level not in (None, "auto")})
    model.check_engine(args.engine, analysis)
    if args.moderator or args.subgroup:
        return moderator_fit(args, dataset)
    result = model.fit(dataset, analysis, args.prior, args.engine, args.level, args.seed,
                       model.settings(args.engine, args.draws, args.tune, args.target_accept),
                       sys.stderr.isatty() and not args.json, prior_sets(args))
    return output_record(args, result, model.text, lambda: model.write(args.out, result))


def cmd_compare_priors(args) -> int:
    """Fit one outcome under every applicable prior (or --priors a,b,...) beside the DL result.

    --loo adds a ranking of the prior sets by PSIS leave-one-study-out predictive accuracy
    (ArviZ), with Pareto k warnings, and says when the ranking cannot be used.

    Example: python -m bayes_pip compare-priors secure_attachment_post
    """
    dataset = open_dataset(args)
    analysis = analysis_of(dataset, args.outcome)
    model = model_of(analysis)
    model.refuse("compare-priors", analysis, {"--moderator": args.moderator,
                                              "--subgroup": args.subgroup, "--loo": args.loo})
    model.check_engine(args.engine, analysis)
    if args.moderator or args.subgroup:
        from bayes_pip import moderation, moderation_text

        if args.loo:
            raise InputError("--loo does not apply to a moderator analysis")
        names = moderator_names(args)
        if args.subgroup:
            dataset = dataset.with_moderator_kind(args.subgroup, "categorical")
        records = moderation.compare_moderator_priors(
            dataset, args.outcome, names, prior_list(args), moderator_engine(args), args.seed,
            sampler_settings(args), args.level, prior_sets(args))
        return output_record(args, records, moderation_text.comparison_text)
    fits = model.compare(dataset, analysis, prior_list(args), args.engine, args.level,
                         args.seed,
                         model.settings(args.engine, args.draws, args.tune, args.target_accept),
                         progress_printer(sys.stderr.isatty() and not args.json),
                         prior_sets(args))
    if not args.loo:
        return emit(fits, args.json, model.comparison_text)
    from bayes_pip.checks import loo_comparison
    from bayes_pip.evidence_text import loo_text

    loo = loo_comparison(fits)
    if args.json:
        print_json({"fits": [f.to_dict() for f in fits], "loo": [r.to_dict() for r in loo]})
    else:
        print(model.comparison_text(fits) + "\n" + loo_text(loo, fits[0].k))
    return EXIT_OK
