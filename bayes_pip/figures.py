"""Figures: forest plot, posterior density, prior vs posterior (tau), sensitivity to the prior.

Every function takes fit records and returns a matplotlib Figure (built without pyplot, so no
global state and no backend is forced: a notebook shows it, the report saves it with
:func:`png_bytes`). Nothing here computes a statistic that is printed.
"""

from __future__ import annotations

import io

import numpy as np

from bayes_pip import measures
from bayes_pip.design import rob_columns, rob_domain, trial_names
from bayes_pip.formats import equals, prob_text
from bayes_pip.formats import (interval_label)
from bayes_pip import direction
from bayes_pip.moderation_record import BayesMetaRegressionRecord


def new_figure(figsize):
    """A Figure with one Axes, outside pyplot's global state."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def plain(text: str) -> str:
    """Text from data files drawn literally: a '$' never starts matplotlib mathtext."""
    return str(text).replace("$", r"\$")


def png_bytes(fig) -> bytes:
    """The figure as PNG (130 dpi, tight bounding box, no software stamp)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def log_axis(ax) -> None:
    """Log x axis with plain tick labels for ratio measures: 0.1, 1, 10 and, between them,
    0.2 and 0.5 when the axis spans up to 2.5 decades (0.3 ... 0.8 when less than one);
    never '3x10^-1'."""
    import math

    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))

    def minor(v, _):
        if v <= 0:
            return ""
        mantissa = round(v / 10 ** math.floor(math.log10(v) + 1e-9))
        low, high = ax.get_xlim()
        decades = math.log10(high / max(low, 1e-300))
        keep = (2, 3, 4, 5, 6, 8) if decades < 1 else (2, 5) if decades <= 2.5 else ()
        return f"{v:.3g}" if mantissa in keep else ""

    ax.xaxis.set_minor_formatter(FuncFormatter(minor))




ROB_MARKS = {"low": ("+", "#2ca02c"), "high": ("-", "#d62728"), "unclear": ("?", "#e6b800"),
             "unknown": ("?", "#e6b800")}   # RevMan's 'unknown' is an unclear judgement


def rob_marks(trials, studies) -> tuple[list[str], dict[str, list[str]]]:
    """Risk-of-bias domains (trials.csv rob_<domain>) and, per study row name, its trial's
    judgement in each ('' when not given); no domains when the data hold none."""
    if trials is None or trials.empty:
        return [], {}
    domains = rob_columns(trials)
    if not domains:
        return [], {}
    by_trial = {str(r["study"]): r for _, r in trials.iterrows()}
    out = {}
    for study in studies:
        row = next((by_trial[t] for t in trial_names(str(study)) if t in by_trial), None)
        out[study] = [str(row[d]).strip().lower() if row is not None else "" for d in domains]
    return domains, out


def forest_plot(main, trials=None):
    """Forest plot of one fit: per study the observed estimate (square, area by its DL weight)
    and the shrunken estimate (circle) on one row, with estimate [95% interval], weight (the
    model that gave it named) and per-arm events/N columns, and risk-of-bias marks when
    ``trials`` (trials.csv) holds judgements; pooled diamonds for DL (or the published result)
    and the Bayesian posterior; the prediction interval for a new study. Natural scale, plain log
    ticks for ratios."""
    from matplotlib.lines import Line2D
    from matplotlib.transforms import blended_transform_factory

    m = main.measure
    rows = []  # (label, kind, payload)
    for st in main.studies:
        dl_row = next((s for s in main.dl.studies if s.study == st.study), None) if main.dl \
            else None
        rows.append((st.study, "study", (dl_row, st)))
    one = main.level == "study" and main.k == 1   # one trial: nothing is pooled or predicted
    pooled = []
    if main.dl and not one:
        d = main.dl
        pooled.append((f"{d.method_label} (k = {d.k})", "dl", (d.estimate, d.ci_low, d.ci_high)))
    if main.published:
        p = main.published
        pooled.append((f"Published (k = {p.k})", "dl", (p.estimate, p.ci_low, p.ci_high)))
    e = main.effect
    if main.level == "summary":   # only the prior on the pooled effect was used
        mu = main.prior.mu
        label = f"Bayesian, Normal({mu.mean:.3g}, {mu.sd:.3g}^2) on the pooled effect"
    elif main.baseline_prior is not None:   # arm counts: say which likelihood
        label = f"Bayesian binomial-normal, prior {main.prior.shown}"
    else:
        label = f"Bayesian, prior {main.prior.shown}"
    if one:
        label += "\n(one trial; tau from the prior)"
    pooled.append((label, "bayes_one" if one else "bayes", (e.median, e.ci_low, e.ci_high)))
    if main.prediction and not one:
        pr = main.prediction
        pooled.append(("Prediction, new study", "predict", (pr.median, pr.ci_low, pr.ci_high)))
    if main.likelihood_choice:   # sparse counts: the normal-normal result beside the headline
        f = main.likelihood_choice.normal_normal
        pooled.append(("Normal-normal model, same prior", "bayes",
                       (f.median, f.ci_low, f.ci_high)))
    rows += pooled
    n = len(rows)
    fig, ax = new_figure((10, 0.42 * n + 1.9))
    colours = {"observed": "#444444", "shrunken": "#1f77b4", "dl": "#d62728",
               "bayes": "#1f77b4", "bayes_one": "#1f77b4", "predict": "#9467bd"}
    weights = [r[2][0].weight for r in rows if r[1] == "study" and r[2][0] is not None]
    wmax = max(weights) if weights else 1.0
    text = blended_transform_factory(ax.transAxes, ax.transData)
    for i, (label, kind, payload) in enumerate(rows):
        yy = n - i
        if kind == "study":
            obs, st = payload
            if obs is not None:
                ax.plot([obs.ci_low, obs.ci_high], [yy + 0.14] * 2, color=colours["observed"],
                        lw=1.2)
                ax.plot([obs.estimate], [yy + 0.14], marker="s", color=colours["observed"],
                        ms=4 + 8 * (obs.weight / wmax) ** 0.5, ls="none")
                ax.text(1.02, yy + 0.14, interval_label(obs.estimate, obs.ci_low, obs.ci_high),
                        transform=text, va="center", fontsize=8)
                ax.text(1.32, yy, f"{obs.weight:.1f}%", transform=text, va="center",
                        fontsize=8, ha="right")
                for x, events, total in ((1.46, obs.events_t, obs.n_t),
                                         (1.60, obs.events_c, obs.n_c)):
                    if total is not None:
                        ax.text(x, yy, f"{events}/{total}" if events is not None else f"{total}",
                                transform=text, va="center", fontsize=8, ha="right")
            ax.plot([st.ci_low, st.ci_high], [yy - 0.14] * 2, color=colours["shrunken"], lw=1.2)
            ax.plot([st.median], [yy - 0.14], marker="o", color=colours["shrunken"], ms=5,
                    ls="none")
            ax.text(1.02, yy - 0.16, interval_label(st.median, st.ci_low, st.ci_high),
                    transform=text, va="center", fontsize=8, color=colours["shrunken"])
            continue
        est, lo, hi = payload
        if kind == "predict":
            ax.plot([lo, hi], [yy, yy], color=colours[kind], lw=2.4)
            ax.plot([est], [yy], marker="|", color=colours[kind], ms=10)
        elif kind == "bayes_one":   # an interval, not a pooled diamond
            ax.plot([lo, hi], [yy, yy], color=colours[kind], lw=2)
            ax.plot([est], [yy], marker="o", color=colours[kind], ms=7, ls="none")
        else:
            ax.fill([lo, est, hi, est], [yy, yy + 0.28, yy, yy - 0.28], color=colours[kind])
        ax.text(1.02, yy, interval_label(est, lo, hi), transform=text, va="center", fontsize=8,
                color=colours[kind] if kind != "dl" else "black")
    domains, marks = rob_marks(trials, [r[0] for r in rows if r[1] == "study"])
    if domains and any(any(m) for m in marks.values()):
        x0, step = 1.68, 0.045
        for j, d in enumerate(domains):
            ax.text(x0 + j * step, n + 0.5, chr(65 + j), transform=text, fontsize=8,
                    ha="center", va="bottom", fontweight="bold")
        for i, (label, kind, _) in enumerate(rows):
            if kind != "study":
                continue
            for j, judgement in enumerate(marks.get(label, [])):
                sign, colour = ROB_MARKS.get(judgement, ("", "#bbbbbb"))
                ax.text(x0 + j * step, n - i, sign or " ", transform=text, fontsize=8,
                        ha="center", va="center", color="white", fontweight="bold",
                        bbox=dict(boxstyle="circle,pad=0.25", fc=colour, ec="none"))
        key = "; ".join(f"{chr(65 + j)} {rob_domain(d)}" for j, d in enumerate(domains))
        ax.annotate(f"Risk of bias (trials.csv): {key}. + low, ? unclear, - high, grey not given",
                    xy=(0, 0), xycoords="axes fraction", xytext=(0, -72),
                    textcoords="offset points", fontsize=7, color="#555555", va="top")
    if pooled and main.studies:
        ax.axhline(len(pooled) + 0.5, color="grey", lw=0.6)
    ax.set_yticks(range(n, 0, -1), [plain(r[0]) for r in rows])
    ax.set_ylim(0.4, n + 0.9)
    ax.text(1.02, n + 0.65, "estimate [95% interval]", transform=text, fontsize=8,
            fontweight="bold")
    if weights:
        ax.text(1.32, n + 0.5, f"weight\n({main.dl.method})", transform=text, fontsize=8,
                ha="right", fontweight="bold", va="bottom")
        first = next(r[2][0] for r in rows if r[1] == "study" and r[2][0] is not None)
        if first.n_t is not None:
            what = "events/N" if first.events_t is not None else "N"
            name = plain(main.intervention).removeprefix("the ")
            for x, arm in ((1.46, name if len(name) <= 14 else "intervention"),
                           (1.60, "control")):
                ax.text(x, n + 0.5, f"{arm}\n{what}", transform=text, fontsize=8,
                        ha="right", fontweight="bold", va="bottom")
    ax.axvline(measures.get(m).null, color="grey", ls="--", lw=1)
    if measures.get(m).log_scale:
        log_axis(ax)
    handles = [Line2D([], [], marker="s", color=colours["observed"], ls="none",
                      label="observed (CI; area: weight)"),
               Line2D([], [], marker="o", color=colours["shrunken"], ls="none",
                      label="shrunken (posterior CrI)"),
               Line2D([], [], marker="D", color=colours["dl"], ls="none", label="classical pooled"),
               Line2D([], [], marker="D", color=colours["bayes"], ls="none",
                      label="Bayesian pooled"),
               Line2D([], [], color=colours["predict"], lw=2.4, label="prediction interval")]
    if not main.prediction or one:
        handles = handles[:-1]
    if one:   # the one trial's estimate under the model, not a pooled result
        handles[3] = Line2D([], [], marker="o", color=colours["bayes"], label="Bayesian (95% CrI)")
        if not main.published:
            del handles[2]
    if not main.studies:
        handles = handles[2:]
    axes_height = 0.42 * n + 0.8   # inches, roughly: the figure less title and x label
    ax.legend(handles=handles, fontsize=7, frameon=False, loc="upper center",
              bbox_to_anchor=(0.5, -0.62 / axes_height), ncol=len(handles))
    favours = f"favours {plain(main.intervention)}"
    ax.set_xlabel(f"{m} (95% interval); {direction.of(main).side} of the dashed line {favours}")
    level = {"reconstructed": " (reconstructed tables, not printed data)",
             "summary": " (published pooled estimate)"}.get(main.level, "")
    ax.set_title(plain(main.label) + level, fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    return fig


def prior_posterior_plot(fit, target: str = "tau"):
    """Prior and posterior density of tau. For the pooled effect (``target="mu"``) this is
    :func:`posterior_density_plot`, which draws the prior over the posterior's own range (a wide
    prior's 0.0001-10000 range used to reduce the posterior to a spike)."""
    if target == "mu":
        return posterior_density_plot(fit)
    prior = fit.prior.tau
    hi = max(fit.tau.ci_high, float(prior.ppf(0.95))) * 1.2
    x = np.linspace(1e-4, hi, 400)
    fig, ax = new_figure((6.5, 3.6))
    ax.plot(x, np.exp(prior.logpdf(x)), color="grey", ls="--", label=f"prior: {prior.describe()}")
    ax.plot(x, fit.posterior.density("tau", x), color="#1f77b4", lw=2, label="posterior")
    ax.set_xlabel("between-study SD tau")
    ax.set_ylabel("density")
    ax.set_title(f"{plain(fit.label)}: prior vs posterior (tau)", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    if fit.level == "study" and fit.k == 1:
        ax.text(0.97, 0.62, "One trial: the data carry no information\nabout heterogeneity; "
                "the posterior of tau\nis its prior.", transform=ax.transAxes, ha="right",
                va="top", fontsize=8, color="#555555")
    return fig


def posterior_density_plot(fit):
    """Posterior density of the pooled effect over its own range (natural-scale ticks), the area
    in the direction of benefit shaded and labelled with P(benefit), the MCID marked (and called
    assumed unless the data name its source), and the prior drawn over the same range."""
    s = fit
    post = fit.posterior
    scale = measures.get(s.measure)
    lo, hi = post.quantile("mu", 0.005), post.quantile("mu", 0.995)
    null = float(scale.to_analysis(scale.null))
    mcid = None if s.mcid is None else float(scale.to_analysis(s.mcid))
    for extra in (null, mcid):   # show the null and the MCID when they are near the posterior
        if extra is not None and lo - (hi - lo) <= extra <= hi + (hi - lo):
            lo, hi = min(lo, extra), max(hi, extra)
    pad = 0.08 * (hi - lo)
    x = np.linspace(lo - pad, hi + pad, 600)
    dens = post.density("mu", x)
    fig, ax = new_figure((6.5, 3.6))
    good = direction.of(s).better(x, null)
    ax.fill_between(x, 0, dens, where=good, color="#1f77b4", alpha=0.25, lw=0,
                    label=f"P(benefit) {equals(prob_text(s.p_benefit, s.probability_draws))}")
    ax.plot(x, dens, color="#1f77b4", lw=2, label="posterior")
    prior = fit.prior.mu
    if getattr(prior, "proper", True):
        ax.plot(x, np.exp(prior.logpdf(x)), color="grey", ls="--", lw=1,
                label=f"prior: {prior.describe()}")
    ax.axvline(null, color="grey", lw=0.8)
    if mcid is not None and x[0] <= mcid <= x[-1]:
        assumed = "" if getattr(s, "mcid_source", "") else ", assumed"
        ax.axvline(mcid, color="#d62728", ls=":", lw=1.2,
                   label=f"MCID {s.measure} {s.mcid:g}{assumed}")
    if scale.log_scale:   # ticks at plain natural-scale values: 0.25, 0.5, 1, 2, 4 or decades
        decades = (x[-1] - x[0]) / np.log(10)
        nice = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 2, 2.5, 3, 4,
                         5, 10] if decades < 0.8 else
                        [0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 4, 5, 10, 20] if decades < 1.5 else
                        [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]
                        if decades < 3.5 else [10.0 ** k for k in range(-12, 13)])
        logs = np.log(nice)
        keep = (logs >= x[0]) & (logs <= x[-1])
        ax.set_xticks(logs[keep], [f"{v:g}" for v in nice[keep]])
        ax.set_xlabel(f"pooled {s.measure} (log axis)")
    else:
        ax.set_xlabel(f"pooled {s.measure}")
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(bottom=0)
    ax.set_ylabel(f"posterior density ({scale.analysis_label} scale)")
    ax.set_title(f"{plain(s.label)}: pooled effect, prior {plain(s.prior.shown)}", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    return fig


def sensitivity_plot(rows: list):
    """Pooled effect (estimate and 95% interval) under each prior, beside DL and the published
    result, with P(benefit) in a column at the right. An interval far wider than the others (a
    vague prior with few studies) is clipped at the frame with an arrow and its end printed,
    instead of squashing every other row."""
    from matplotlib.transforms import blended_transform_factory

    s = rows[0]
    m = s.measure
    scale = measures.get(m)
    # priors the data contradict (Box's check) are marked: grey, with an asterisk
    items = [(r.prior.shown + (" *" if r.in_conflict else ""), r.effect.median, r.effect.ci_low,
              r.effect.ci_high, f"P(benefit) {prob_text(r.p_benefit, r.probability_draws)}",
              "#8c8c8c" if r.in_conflict else "#1f77b4") for r in rows]
    if s.dl:
        d = s.dl
        items.append((d.method_label, d.estimate, d.ci_low, d.ci_high, "", "#d62728"))
    if s.published:
        p = s.published
        items.append(("published", p.estimate, p.ci_low, p.ci_high, "", "#d62728"))
    fig, ax = new_figure((8.5, 0.45 * (len(items) + 1) + 1.3))

    def t(v):   # the plotting coordinate: log for ratios
        return float(np.log(v)) if scale.log_scale else float(v)

    widths = np.array([t(hi) - t(lo) for _, _, lo, hi, _, _ in items])
    typical = float(np.median(widths))
    core = [it for it, w in zip(items, widths) if w <= 2.5 * typical] or items
    lo_core = min(min(t(it[2]), t(it[1])) for it in core)
    hi_core = max(max(t(it[3]), t(it[1])) for it in core)
    null = t(scale.null)
    lo_core, hi_core = min(lo_core, null), max(hi_core, null)
    pad = 0.08 * (hi_core - lo_core)
    left, right = lo_core - pad, hi_core + pad
    text = blended_transform_factory(ax.transAxes, ax.transData)
    back = (lambda z: float(np.exp(z))) if scale.log_scale else (lambda z: z)
    for i, (label, est, lo, hi, note, colour) in enumerate(items):
        yy = len(items) - i
        a, b = max(t(lo), left), min(t(hi), right)
        ax.plot([back(a), back(b)], [yy, yy], color=colour, lw=1.5)
        if left <= t(est) <= right:
            ax.plot([est], [yy], "D", color=colour)
        for end, edge, sign in ((t(lo), left, -1), (t(hi), right, 1)):
            if (end < edge) if sign < 0 else (end > edge):
                ax.annotate("", xy=(back(edge), yy), xytext=(back(edge - sign * 0.06 * (right - left)), yy),
                            arrowprops=dict(arrowstyle="->", color=colour, lw=1.5))
                ax.text(back(edge - sign * 0.01 * (right - left)), yy + 0.22, f"{back(end):.3g}",
                        ha="right" if sign > 0 else "left", fontsize=7, color=colour)
        ax.text(1.02, yy, interval_label(est, lo, hi)
                + (f"   {note}" if note else ""), transform=text, va="center", fontsize=8)
    ax.set_xlim(back(left), back(right))
    ax.set_ylim(0.4, len(items) + 0.8)
    ax.set_yticks(range(len(items), 0, -1), [plain(it[0]) for it in items])
    ax.axvline(scale.null, color="grey", ls="--", lw=1)
    if scale.log_scale:
        log_axis(ax)
    ax.set_xlabel(f"{m}: estimate (95% interval)")
    ax.text(1.02, len(items) + 0.55, "estimate [95% interval]", transform=text, fontsize=8,
            fontweight="bold")
    ax.set_title(f"{plain(s.label)}: sensitivity to the prior", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    if any(r.in_conflict for r in rows):
        ax.annotate("* prior in conflict with the data (Box's prior-predictive check on the "
                    "pooled effect, p < 0.05)", xy=(0, 0), xycoords="axes fraction",
                    xytext=(0, -36), textcoords="offset points", fontsize=8, color="#555555",
                    va="top")
    return fig


def leave_one_out_plot(r):
    """Pooled effect with each study left out: DL (red) and Bayesian (blue) rows per study."""
    m = r.measure
    rows = [("all studies", r.full)] + [(f"without {plain(x.study)}", x) for x in r.leave_one_out]
    fig, ax = new_figure((7.5, 0.55 * len(rows) + 1.2))
    for i, (label, x) in enumerate(rows):
        yy = len(rows) - 1 - i
        ax.errorbar([x.estimate], [yy + 0.15], xerr=[[x.estimate - x.ci_low],
                                                    [x.ci_high - x.estimate]],
                    fmt="D", color="tab:red", ms=5, capsize=0,
                    label="DerSimonian-Laird (95% CI)" if i == 0 else None)
        ax.errorbar([x.bayes_median], [yy - 0.15], xerr=[[x.bayes_median - x.bayes_ci_low],
                                                        [x.bayes_ci_high - x.bayes_median]],
                    fmt="o", color="tab:blue", ms=5, capsize=0,
                    label=f"Bayesian, prior {plain(r.prior.shown)} (95% CrI)" if i == 0 else None)
    ax.set_yticks(range(len(rows)), [label for label, _ in reversed(rows)])
    null = measures.get(m).null
    ax.axvline(null, color="grey", ls="--", lw=1)
    if measures.get(m).is_ratio:
        log_axis(ax)
    ax.set_xlabel(f"{m} (95% interval)")
    ax.set_title(plain(f"{r.label}: leave one study out"))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8,
              frameon=False)
    return fig


def funnel_plot(e):
    """Funnel plot on the analysis scale: effect against standard error (inverted), with the
    pseudo 95% confidence region around the pooled estimate and Egger's line."""
    y = np.asarray(e.y)
    se = np.asarray(e.se)
    fig, ax = new_figure((6, 4.8))
    top = float(se.max()) * 1.05
    grid = np.linspace(0, top, 50)
    ax.fill_betweenx(grid, e.pooled - 1.96 * grid, e.pooled + 1.96 * grid, color="0.92",
                     label="pseudo 95% confidence region")
    ax.axvline(e.pooled, color="grey", lw=1, label="DL pooled estimate")
    ax.scatter(y, se, color="black", s=18, zorder=3, label="studies")
    limit = float(measures.get(e.measure).to_analysis(e.limit))
    ax.plot(limit + e.slope * grid, grid, color="tab:red", lw=1,
            label=f"Egger's line (p = {e.p:.3g})")
    ax.set_ylim(top, 0)
    ax.set_xlabel(f"{measures.get(e.measure).analysis_label}")
    ax.set_ylabel("standard error")
    ax.set_title(plain(f"{e.label}: funnel plot"))
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    return fig


def bubble_plot(rec):
    """Meta-regression on one moderator: each study's observed effect (area by its weight,
    1/(v_i + tau^2) at the posterior median of tau) against the moderator, with the posterior
    median regression line and its 95% credible band (numeric moderator) or each level's fitted
    effect with its 95% interval (categorical moderator). Natural scale; log axis for ratios."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    studies = rec.study_effects
    mod = rec.moderators[0]
    bayes = isinstance(rec, BayesMetaRegressionRecord)
    fig, ax = new_figure((6.4, 4.2))
    categorical = mod.kind == "categorical"
    levels = mod.levels or []
    xs = [levels.index(s.value) if categorical else s.value for s in studies]
    w = np.array([s.weight for s in studies])
    sizes = 40 + 400 * w / w.max()
    if rec.line:
        line = rec.line
        ax.fill_between(line.x, line.ci_low, line.ci_high, color="tab:blue", alpha=0.18,
                        lw=0, label="95% credible band" if bayes else "95% confidence band")
        ax.plot(line.x, line.centre, color="tab:blue", lw=1.6,
                label="posterior median" if bayes else "fitted line")
    if categorical:
        for f in rec.fitted:
            i = levels.index(f.at.split(" = ", 1)[1])
            ax.errorbar([i + 0.12], [f.estimate], yerr=[[f.estimate - f.ci_low],
                        [f.ci_high - f.estimate]], fmt="D", color="tab:blue", ms=7,
                        capsize=4, label=("fitted effect (95% CrI)" if bayes else
                                          "fitted effect (95% CI)") if i == 0 else None)
        ax.set_xticks(range(len(levels)), [plain(v) for v in levels])
        ax.set_xlim(-0.6, len(levels) - 0.4)
    ax.scatter(xs, [s.estimate for s in studies], s=sizes, facecolor="none",
               edgecolor="black", lw=1.2, label="study (area: weight)", zorder=3)
    if len(studies) <= 8:  # more labels than that overlap; the JSON lists every study
        for x, s in zip(xs, studies):
            ax.annotate(plain(s.study), (x, s.estimate), textcoords="offset points",
                        xytext=(-8, 6), ha="right", fontsize=8, annotation_clip=True)
    null = measures.get(rec.measure).null
    ax.axhline(null, color="grey", lw=0.8, ls="--")
    if measures.get(rec.measure).is_ratio:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(plain(mod.name))
    ax.set_ylabel(plain(f"{rec.measure} ({rec.label})"))
    how = f"prior {rec.prior_name}" if bayes else f"{rec.method} meta-regression"
    ax.set_title(plain(f"{rec.label}: {rec.k} studies ({rec.level} level), {how}"),
                 fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="best")
    return fig


def subgroup_forest_plot(rec):
    """Forest plot grouped by subgroup: each study's estimate and 95% CI, each subgroup's pooled
    estimate (diamond), and the test for subgroup differences beneath (as RevMan prints it)."""
    m = rec.measure
    rows = []  # (label, estimate, low, high, kind)
    for s, n in zip(rec.subgroups, rec.subgroups_natural):
        rows.append((f"{s.level}", None, None, None, "header"))
        for st in rec.study_effects:
            if st.level == s.level:
                rows.append((f"  {st.study}", st.estimate, st.ci_low, st.ci_high, "study"))
        rows.append((f"  Subtotal (k = {s.k}, tau^2 = {s.tau2:.3g})", n.estimate,
                     n.ci_low, n.ci_high, "pooled"))
    fig, ax = new_figure((8, 0.36 * len(rows) + 1.6))
    labels = []
    for i, (label, est, lo, hi, kind) in enumerate(rows):
        yy = len(rows) - i
        labels.append(plain(label))
        if kind == "header":
            continue
        if kind == "study":
            ax.plot([lo, hi], [yy, yy], color="#444444", lw=1.2)
            ax.plot([est], [yy], marker="s", color="#444444", ms=5)
        else:
            ax.fill([lo, est, hi, est], [yy, yy + 0.3, yy, yy - 0.3], color="#d62728")
    ax.set_yticks(range(len(rows), 0, -1), labels)
    for tick, (_, _, _, _, kind) in zip(ax.get_yticklabels(), rows):
        if kind == "header":
            tick.set_fontweight("bold")
    ax.axvline(measures.get(m).null, color="grey", ls="--", lw=1)
    if measures.get(m).log_scale:
        log_axis(ax)
    ax.set_xlabel(f"{m} (95% CI); {rec.method} random effects within subgroups ({rec.tau} "
                  f"tau^2)\nTest for subgroup differences: Chi^2 = {rec.q_between:.2f}, "
                  f"df = {rec.df_between}, p = {rec.p_between:.2g}")
    ax.set_title(plain(f"{rec.label}: subgroups by {rec.subgroup}"), fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    return fig
