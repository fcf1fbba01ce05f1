"""The figure of a categorical outcome: the category distribution of every arm (observed, with
its level of evidence) and the pooled distributions under the comparator and the intervention
(posterior medians at the stated baseline), as stacked bars."""

from __future__ import annotations

import numpy as np

from bayes_pip.figures import new_figure, plain, png_bytes

# favourable categories in blues, the others in warm colours (colour-blind safe pairs)
FAVOURABLE = ("#2166ac", "#4393c3", "#92c5de")
OTHER = ("#fdb863", "#e08214", "#b35806", "#8c510a", "#543005")


def colours(categories, favourable) -> list:
    fav, other = iter(FAVOURABLE), iter(OTHER)
    return [next(fav, "#2166ac") if c in favourable else next(other, "#543005")
            for c in categories]


def category_figure(fit) -> bytes:
    """Stacked bars: one per arm (observed proportions) and two pooled rows."""
    cats = fit.categories
    rows, labels = [], []
    for a in fit.arms:
        counts = np.array([np.nan if v is None else v for v in a["counts"].values()], float)
        rows.append(np.nan_to_num(counts) / np.nansum(counts))
        levels = sorted({p or "unstated" for p in a["provenance"].values()})
        labels.append(plain(f"{a['study']}: {a['arm']} (n = {a['n']}; {', '.join(levels)})"))
    pooled = [("Pooled: comparator", [r["p_comparator"]["median"] for r in fit.per_category]),
              (f"Pooled: {fit.intervention}",
               [r["p_intervention"]["median"] for r in fit.per_category])]
    for label, p in pooled:
        p = np.asarray(p, float)
        rows.append(p / p.sum())
        labels.append(plain(label + " (posterior medians, rescaled to 100%)"))
    rows = np.array(rows)
    fig, ax = new_figure((10, 0.55 * len(rows) + 2.2))
    y = np.arange(len(rows))[::-1].astype(float)
    y[-2:] -= 0.5    # a gap before the pooled rows
    left = np.zeros(len(rows))
    for c, (name, colour) in enumerate(zip(cats, colours(cats, fit.favourable))):
        ax.barh(y, rows[:, c], left=left, color=colour, edgecolor="white", height=0.8,
                label=name + (" (favourable)" if name in fit.favourable else ""))
        for yi, li, w in zip(y, left, rows[:, c]):
            if w >= 0.06:
                ax.text(li + w / 2, yi, f"{100 * w:.0f}%", ha="center", va="center",
                        fontsize=8, color="white" if name in fit.favourable else "black")
        left += rows[:, c]
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_xticklabels([f"{int(100 * t)}%" for t in np.linspace(0, 1, 6)])
    ax.set_xlabel("share of the arm in each category")
    ax.set_title(plain(f"{fit.label}: {fit.k} trials, multinomial model, prior "
                       f"'{fit.prior['name']}'"), fontsize=10)
    ax.legend(ncol=len(cats), loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=8,
              frameon=False)
    return png_bytes(fig)
