"""Paper-grade output: figures with estimate/weight columns and plain ticks, the posterior
density plot, clipped sensitivity rows, characteristics and risk-of-bias tables, grouped
'not independent' flags."""
import re
import shutil

import numpy as np
import pandas as pd
import pytest

import bayes_pip as bp
from bayes_pip import figures, formats
from conftest import run_main


def texts(fig):
    fig.canvas.draw()
    out = []
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts]
        out += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
    return out


@pytest.fixture(scope="module")
def secure():
    return bp.compare_priors(None, "secure_attachment_post", engine="exact")


def test_forest_plot_has_estimate_and_weight_columns(secure):
    main = secure[0]
    t = texts(figures.forest_plot(main))
    assert "estimate [95% interval]" in t and f"weight\n({main.dl.method})" in t
    for s in main.dl.studies:   # the observed estimate and its weight, as the DL record has them
        assert formats.interval_label(s.estimate, s.ci_low, s.ci_high) in t
        assert f"{s.weight:.1f}%" in t
    e = main.effect
    assert formats.interval_label(e.median, e.ci_low, e.ci_high) in t
    assert not any("x10" in x or "times" in x or "$" in x for x in t)


def test_posterior_density_plot_shades_p_benefit_and_marks_an_assumed_mcid(secure):
    main = secure[0]
    fig = figures.posterior_density_plot(main)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"P(benefit) = {main.p_benefit:.3f}" in labels
    assert "MCID RR 1.25, assumed" in labels
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert "1" in ticks and not any("e-" in x or "x10" in x for x in ticks)
    # the range is the posterior's, not the prior's (the vague prior's 0.0001 ... 10000)
    lo, hi = ax.get_xlim()
    assert np.exp(hi) < 100 and np.exp(lo) > 0.3


def test_sensitivity_plot_clips_an_extreme_row_with_an_arrow(secure):
    vague = next(r for r in secure if r.prior.name == "vague")
    fig = figures.sensitivity_plot(secure)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert hi < vague.effect.ci_high and lo > vague.effect.ci_low   # clipped, not squashed
    t = texts(fig)
    assert f"{vague.effect.ci_high:.3g}" in t                        # its end printed at the arrow
    assert any(x.startswith(f"{secure[0].effect.median:.2f} [") and "P(benefit)" in x for x in t)
    assert ax.get_xlabel() == "RR: estimate (95% interval)"


def test_reports_carry_characteristics_risk_of_bias_and_grouped_flags(tmp_path, exact_report):
    from bayes_pip.data import bundled_data_dir

    out = exact_report[1]   # report --all --engine exact of the bundled data
    md = (out / "secure_attachment_post.md").read_text()
    assert "## Characteristics of included studies\n" in md
    section = md.split("## Characteristics of included studies", 1)[1].split("## Risk", 1)[0]
    assert "| Cicchetti 1999a |" in section and "| Cooper 2003 |" not in section
    assert "No risk-of-bias judgements in the data" in md
    sof = (out / "summary_of_findings.md").read_text()
    assert ("Not independent: secure_attachment_post, avoidant_attachment_post, "
            "disorganised_attachment_post, insecure_to_secure_post rest on the same trials "
            "(Cicchetti 1999a, Cicchetti 2006b).") in sof
    assert "Classical [95% CI]" in sof and "DL [95% CI]" not in sof
    assert (out / "secure_attachment_post_posterior_mu.png").exists()
    # risk-of-bias judgements given as rob_<domain> columns become a table, domains as columns
    d = tmp_path / "pip"
    shutil.copytree(bundled_data_dir(), d)
    t = pd.read_csv(d / "trials.csv", dtype=str, keep_default_na=False)
    t["rob_random_sequence"] = ["low", "unclear", "low", "low", "unclear", "low", "high", "low"]
    t["rob_blinding_of_assessors"] = ["low"] * 8
    t.to_csv(d / "trials.csv", index=False)
    assert run_main("report", "secure_attachment_post", "--engine", "exact", "--data", str(d),
                    "--out", str(tmp_path / "r2")).returncode == 0
    md = (tmp_path / "r2" / "secure_attachment_post.md").read_text()
    assert "| study | random sequence | blinding of assessors |" in md
    assert "| Cicchetti 2006b | unclear | low |" in md
    t.loc[0, "rob_random_sequence"] = "probably low"
    t.to_csv(d / "trials.csv", index=False)
    r = run_main("list", "--data", str(d))
    assert r.returncode == 2 and "column 'rob_random_sequence'" in r.stderr
    assert "'probably low' is not allowed (allowed: low, high, unclear" in r.stderr


def test_summary_level_texts_name_only_the_prior_on_the_pooled_effect(tmp_path):
    r = run_main("compare-priors", "parental_depression_incidence", "--engine", "exact")
    assert r.returncode == 0
    assert "\nN(0, 4^2)  " in r.stdout and "\nsceptical N(0, 0.175^2)  " in r.stdout
    assert "halfnormal" not in r.stdout
    assert "half-normal(0.5) on tau" not in r.stdout
    assert run_main("report", "parental_depression_incidence", "--engine", "exact", "--out",
                    str(tmp_path)).returncode == 0
    md = (tmp_path / "parental_depression_incidence.md").read_text()
    assert "**Main prior:** Normal(0, 4^2) on log RR; heterogeneity not modelled" in md
    for path in tmp_path.iterdir():  # Markdown, HTML, JSON text of the summary of findings
        if path.suffix in (".md", ".html"):
            assert "halfnormal" not in path.read_text(), path.name
    # every other place a summary-level prior is named: the fit, the prior list, the Bayes factors
    for command in (("fit", "--engine", "exact"), ("priors",), ("bma",)):
        r = run_main(command[0], "parental_depression_incidence", *command[1:])
        assert r.returncode == 0 and "N(0, 4^2)" in r.stdout, command
        # `priors` names the sets that share each prior on the pooled effect, in parentheses
        assert "halfnormal" not in re.sub(r"\(prior sets: .*", "", r.stdout), command
    assert "on tau" not in md.split("## Priors", 1)[1].split("):", 1)[0]


def test_a_single_trial_is_drawn_as_one_trial():
    """k = 1: no pooled diamond and no prediction bar (only the review's published diamond, which
    pools two trials, where there is one); the tau figure says the data carry no information."""
    import matplotlib.patches
    from matplotlib import pyplot as plt

    for outcome, level, diamonds in (("parent_reported_depression_vs_alternative", "auto", 0),
                                     ("secure_attachment_post", "study", 1)):
        fit = bp.fit(None, outcome, engine="exact", level=level)
        assert fit.k == 1 and fit.level == "study"
        fig = figures.forest_plot(fit)
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert not any(lab.startswith(("Prediction", "DerSimonian")) for lab in labels), labels
        assert any("one trial; tau from the prior" in lab for lab in labels)
        assert sum(isinstance(p, matplotlib.patches.Polygon) for p in ax.patches) == diamonds
        plt.close(fig)
        fig = figures.prior_posterior_plot(fit, "tau")
        assert any("no information" in t.get_text() for t in fig.axes[0].texts)
        plt.close(fig)
    fit = bp.fit(None, "secure_attachment_post", engine="exact")   # k = 2: pooled as before
    ax = figures.forest_plot(fit).axes[0]
    assert sum(isinstance(p, matplotlib.patches.Polygon) for p in ax.patches) == 3
    assert "Prediction, new study" in [t.get_text() for t in ax.get_yticklabels()]


def test_forest_plot_has_arm_columns_and_names_the_weights_model():
    """Per study the arms as analysed (events/N, from studies.csv) beside the estimate, and the
    weight column names the classical model that gave the weights."""
    from matplotlib import pyplot as plt

    fit = bp.fit("data/crins2014", "acute_rejection", engine="exact")
    rows = pd.read_csv("data/crins2014/studies.csv")
    fig = figures.forest_plot(fit)
    texts = [t.get_text() for t in fig.axes[0].texts]
    for _, r in rows.iterrows():
        assert f"{r['events_t']}/{r['n_t']}" in texts and f"{r['events_c']}/{r['n_c']}" in texts
    assert "weight\n(DL)" in texts and "IL-2RA\nevents/N" in texts and "control\nevents/N" in texts
    for s, r in zip(fit.dl.studies, rows.itertuples()):
        assert (s.events_t, s.n_t, s.events_c, s.n_c) == (r.events_t, r.n_t, r.events_c, r.n_c)
    plt.close(fig)


def test_forest_plot_marks_risk_of_bias_beside_each_study():
    """trials.csv judgements (rob_<domain>, or 'rob: <item>' from a RevMan import) are drawn
    beside the studies: + low, ? unclear (RevMan's 'unknown'), - high, with a key naming the
    domains; without judgements nothing is drawn."""
    from matplotlib import pyplot as plt

    data = bp.load()
    fit = bp.fit(data, "secure_attachment_post", engine="exact")
    trials = data.trials.copy()
    order = list(trials["study"])
    trials["rob_random_sequence"] = ["low" if s == "Cicchetti 1999a" else "high" for s in order]
    trials["rob: Allocation concealment?"] = ["unknown"] * len(order)
    fig = figures.forest_plot(fit, trials)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("+") == 1 and texts.count("-") == 1 and texts.count("?") == 2
    assert "A" in texts and "B" in texts
    key = [t for t in texts if t.startswith("Risk of bias")]
    assert key and "A random sequence; B Allocation concealment?" in key[0]
    plt.close(fig)
    fig = figures.forest_plot(fit, data.trials)
    assert not any(t.get_text().startswith("Risk of bias") for t in fig.axes[0].texts)
    plt.close(fig)
