"""A categorical outcome as one analysis: the hierarchical multinomial model of all its
categories at once (:mod:`bayes_pip.engines.multinomial_nuts`), summarised per category, jointly,
and beside the separate risk-ratio analyses of each category.

What the researcher gets (:class:`CategoricalFit`):

- per category, the probability under the comparator and under the intervention at a stated
  baseline (the average of the included trials' comparator-arm distributions), the risk ratio
  and risk difference with 95% credible intervals, and P(benefit) in the category's favourable
  direction (favourable categories up, the others down);
- joint probabilities: each favourable category rising while each other category falls, all at
  once, and the favourable share rising;
- the same for a new trial (prediction), the heterogeneity tau, and the intervention against
  each alternative treatment of a multi-arm trial from the same fit;
- the observed counts of every arm with the level of evidence of each (printed, derived,
  inferred, reconstructed) and its fitted distribution;
- a table that sets the per-category risk ratios beside the separate analysis of each category
  and the review's published result, with one sentence on which to quote.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bayes_pip import engines
from bayes_pip.analysis import DEFAULT_SEED
from bayes_pip.categorical_data import CategoricalOutcome, categorical_outcome
from bayes_pip.engines.base import Problem, SamplerSettings
from bayes_pip.errors import ConvergenceError, InputError
from bayes_pip.formats import ci_text, equals, pct_text
from bayes_pip.record import Analysis

ENGINE = "multinomial"
BASELINE = "the average of the trials' fitted comparator-arm distributions"


def softmax_with_reference(eta: np.ndarray, reference: int) -> np.ndarray:
    """Probabilities from non-reference logits (last axis): the reference logit is 0."""
    full = np.insert(eta, reference, 0.0, axis=-1)
    full = full - full.max(axis=-1, keepdims=True)
    e = np.exp(full)
    return e / e.sum(axis=-1, keepdims=True)


def interval(x: np.ndarray) -> dict:
    lo, med, hi = np.quantile(x, [0.025, 0.5, 0.975])
    return {"median": float(med), "ci_low": float(lo), "ci_high": float(hi)}


@dataclass
class CategoricalFit:
    """The multinomial analysis of one categorical outcome under one prior set."""

    outcome: str
    label: str
    categories: list
    reference: str
    favourable: list
    intervention: str
    prior: dict
    engine: str
    seed: int
    settings: dict
    versions: dict
    k: int
    participants: int
    levels: dict
    baseline: str
    per_category: list            # one dict per category (intervention vs comparator)
    joint: list                   # joint statements with their probabilities
    prediction: list              # per category, a new trial (intervention vs comparator)
    alternatives: list            # per alternative treatment: per-category comparison
    tau: dict
    arms: list                    # per study and arm: counts, provenance, fitted distribution
    comparison: list              # per category: this model, the separate analysis, published
    quote: str                    # which to quote and why
    data_differences: list        # where the separate analyses rest on other arms
    diagnostics: dict
    draws: int
    notes: list = field(default_factory=list)
    analysis: dict = field(default_factory=dict)   # the Analysis it answers (bayes_pip.analyses)
    idata: object = field(default=None, repr=False)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(dataclasses.replace(self, idata=None))
        out.pop("idata")
        return out


def require_engine(engine: str, outcome_id: str) -> None:
    """Only the multinomial engine (or auto, which picks it) fits a categorical outcome."""
    if engine not in (engines.AUTO, ENGINE):
        raise InputError(f"--engine {engine} fits one effect per study; the categorical "
                         f"outcome '{outcome_id}' is fitted by --engine {ENGINE} (or auto)")


def as_odds_ratio(outcome):
    """The outcome as the prior sets see it: every effect of the model is a log odds ratio."""
    return dataclasses.replace(outcome, measure="OR", mcid=None)


def resolve_prior(dataset, co: CategoricalOutcome, prior_name, prior_sets):
    """The prior set resolved as for an odds-ratio outcome (every effect is a log OR)."""
    from bayes_pip.priors import default_prior_name, resolve_prior as resolve

    return resolve(prior_name or default_prior_name("OR"), as_odds_ratio(co.outcome),
                   prior_sets)


def fit_categorical(dataset, outcome_id: str, prior_name: str | None = None,
                    seed: int = DEFAULT_SEED,
                    settings: SamplerSettings | None = None, progress: bool = False,
                    prior_sets=None, separate: bool = True, known=None) -> CategoricalFit:
    """Fit the multinomial model of ``outcome_id`` and summarise it (see the module).

    ``known``: fits of the separate single-category outcomes already made (a report's main
    fits, same prior and engine auto), used instead of fitting them again."""
    from bayes_pip.analysis import versions

    co = categorical_outcome(dataset, outcome_id)
    prior = resolve_prior(dataset, co, prior_name, prior_sets)
    engine = engines.get(ENGINE)
    settings = settings or SamplerSettings()
    result = engine.fit(Problem(co.outcome, "study", payload=co.payload()), prior, seed,
                        settings, progress)
    post = result.idata.posterior
    summary = summarise(co, post["b"].values, post["d"].values, post["tau"].values, seed)
    comparison, quote = compare_separate(dataset, co, summary["per_category"], prior_name,
                                         seed, prior_sets, known) if separate else ([], "")
    differences = data_differences(dataset, co) if separate else []
    counts = co.counts
    k = co.k
    return CategoricalFit(
        outcome=outcome_id, label=co.outcome.label, categories=list(co.categories),
        reference=co.reference, favourable=list(co.favourable),
        intervention=co.outcome.intervention,
        prior={**prior.to_dict(), "baseline": prior.baseline_dict(),
               "described": {"mu": bare(prior.mu.describe()), "tau": prior.tau.describe(),
                             "baseline": bare(prior.baseline.describe())}},
        engine=ENGINE, seed=seed,
        settings=result.settings,
        versions=versions(engine), k=k, participants=int(np.nansum(counts)),
        levels=co.levels(), baseline=BASELINE, comparison=comparison, quote=quote,
        data_differences=differences,
        diagnostics=dict(result.diagnostics), draws=int(post.sizes["chain"] * post.sizes["draw"]),
        idata=result.idata, notes=notes(co),
        analysis=Analysis(outcome_id, "multinomial", (outcome_id,), co.categories).to_dict(),
        **summary)


def bare(described: str) -> str:
    """'mu ~ Normal(0, 4^2)' -> 'Normal(0, 4^2)'."""
    return described.split("~", 1)[-1].strip()


def notes(co: CategoricalOutcome) -> list:
    out = []
    if co.k < 3:
        out.append(f"{co.k} {'trial' if co.k == 1 else 'trials'}: tau rests on the prior "
                   "more than on the data; compare the priors before quoting it")
    return out


def summarise(co: CategoricalOutcome, b, d, tau, seed: int) -> dict:
    """Per-category, joint and predictive summaries from draws of b (chain, draw, k, J),
    d (chain, draw, T - 1, J) and tau (chain, draw)."""
    from bayes_pip.engines.multinomial_nuts import CORRELATION, exchangeable_cholesky

    r = co.categories.index(co.reference)
    b = b.reshape(-1, *b.shape[2:])
    d = d.reshape(-1, *d.shape[2:])
    tau = tau.ravel()
    p0 = softmax_with_reference(b, r).mean(axis=1)                        # (draws, C)
    p_t = [softmax_with_reference(b + d[:, None, t, :], r).mean(axis=1)
           for t in range(d.shape[1])]
    rng = np.random.default_rng([seed, 7])
    j = d.shape[-1]
    z = rng.standard_normal((len(tau), j)) @ exchangeable_cholesky(j).T
    p_new = softmax_with_reference(b + (d[:, 0, :] + tau[:, None] * z)[:, None, :], r).mean(axis=1)
    per_category = [category_row(co, c, p0[:, c], p_t[0][:, c]) for c in range(len(co.categories))]
    prediction = [category_row(co, c, p0[:, c], p_new[:, c]) for c in range(len(co.categories))]
    alternatives = [{"treatment": co.treatments[t + 1],
                     "trials": int((~np.isnan(co.counts[:, t + 1, 0])).sum()),
                     "per_category": [category_row(co, c, p_t[t][:, c], p_t[0][:, c])
                                      for c in range(len(co.categories))]}
                    for t in range(1, d.shape[1])]
    return {"per_category": per_category, "prediction": prediction,
            "alternatives": alternatives, "joint": joint(co, p0, p_t[0]),
            "tau": {**interval(tau), "mean": float(tau.mean()),
                    "correlation": CORRELATION},
            "arms": arms(co, b, d, r)}


def category_row(co: CategoricalOutcome, c: int, p_ref, p_int) -> dict:
    """One category: P under the comparison arm and under the intervention, RR, RD and
    P(benefit) in the category's favourable direction."""
    name = co.categories[c]
    up = name in co.favourable
    rd = p_int - p_ref
    # a probability that underflowed to 0 in a draw would make the ratio infinite
    p_ref = np.maximum(p_ref, np.finfo(float).tiny)
    return {"category": name, "favourable": up,
            "p_comparator": interval(p_ref), "p_intervention": interval(p_int),
            "rr": interval(p_int / p_ref), "rd": interval(rd),
            "p_benefit": float(np.mean(rd > 0) if up else np.mean(rd < 0))}


def joint(co: CategoricalOutcome, p0, p1) -> list:
    """Joint statements about the change in the category distribution."""
    rd = p1 - p0
    fav = [i for i, c in enumerate(co.categories) if c in co.favourable]
    bad = [i for i, c in enumerate(co.categories) if c not in co.favourable]
    out = []
    for f in fav:
        for u in bad:
            out.append({"statement": f"{co.categories[f]} rises and {co.categories[u]} falls",
                        "probability": float(np.mean((rd[:, f] > 0) & (rd[:, u] < 0)))})
    every = np.all(rd[:, fav] > 0, axis=1) & np.all(rd[:, bad] < 0, axis=1)
    out.append({"statement": (f"{' and '.join(co.categories[i] for i in fav)} "
                              f"{'rises' if len(fav) == 1 else 'rise'} and every other "
                              "category falls"),
                "probability": float(np.mean(every))})
    share = rd[:, fav].sum(axis=1)
    out.append({"statement": (f"the share of {' or '.join(co.categories[i] for i in fav)} "
                              "rises (the distribution shifts toward it)"),
                "probability": float(np.mean(share > 0)),
                "expected_change": {**interval(share), "mean": float(share.mean())}})
    return out


def arms(co: CategoricalOutcome, b, d, r: int) -> list:
    """Observed counts of every arm with their provenance, and the fitted distribution of the
    arm at the pooled effect (the study's own baseline)."""
    out = []
    for i, study in enumerate(co.study):
        for t, treatment in enumerate(co.treatments):
            if np.isnan(co.counts[i, t]).all():
                continue
            eta = b[:, i, :] + (d[:, t - 1, :] if t else 0.0)
            fitted = softmax_with_reference(eta, r).mean(axis=0)
            out.append({"study": study, "arm": co.arm_names[i][treatment], "role": treatment,
                        "counts": {c: (None if np.isnan(v) else int(v))
                                   for c, v in zip(co.categories, co.counts[i, t])},
                        "n": int(np.nansum(co.counts[i, t])),
                        "provenance": co.provenance[i][treatment],
                        "fitted": dict(zip(co.categories, map(float, fitted)))})
    return out


def compare_separate(dataset, co: CategoricalOutcome, rows, prior_name, seed, prior_sets,
                     known=None):
    """Per category: this model's RR, the separate analysis of that category (its own outcome,
    engine auto, same prior set) and the review's published RR."""
    from bayes_pip.analysis import fit_outcome

    out = []
    for row, other in zip(rows, co.separate):
        entry = {"category": row["category"], "multinomial": row["rr"],
                 "multinomial_p_benefit": row["p_benefit"], "separate_outcome": other or None,
                 "separate": None, "published": None}
        if other:
            published = dataset.published_result(other)
            if published is not None:
                entry["published"] = {"estimate": published.estimate,
                                      "ci_low": published.ci_low,
                                      "ci_high": published.ci_high, "k": published.k}
            status = dataset.status(other)
            if status.level is not None and status.level != "summary":
                try:
                    fit = (known or {}).get(other) or fit_outcome(
                        dataset, other, prior_name=prior_name, seed=seed, prior_sets=prior_sets)
                except (InputError, ConvergenceError) as exc:
                    entry["separate_error"] = str(exc)
                else:
                    entry["separate"] = {"median": fit.effect.median,
                                         "ci_low": fit.effect.ci_low,
                                         "ci_high": fit.effect.ci_high, "engine": fit.engine,
                                         "level": fit.level, "k": fit.k,
                                         "p_benefit": fit.p_benefit}
            elif status.level == "summary":
                entry["separate_note"] = "published pooled result only"
        out.append(entry)
    quote = ("Which to quote: the multinomial model. It analyses the one classification the "
             "trials made (the categories of an arm sum to its size, so a rise in one category "
             "is a fall elsewhere), each arm enters once, and the joint statements above exist "
             "only in it. The separate risk ratios treat each category as an independent "
             "outcome of the same trials and infants; keep them as a sensitivity view.")
    return out, quote


def data_differences(dataset, co: CategoricalOutcome) -> list:
    """Where the separate analyses rest on other arm sizes than the category counts (e.g.
    reconstructed review tables against completers from another source): part of any
    difference is then the data, not the model."""
    out = []
    for other in dict.fromkeys(o for o in co.separate if o):
        status = dataset.status(other)
        if status.level not in ("study", "reconstructed"):
            continue
        resolved = dataset.resolve(other)
        frames = (resolved.table_rows() if resolved.level == "reconstructed"
                  else [resolved.rows])
        rows = frames[0]
        for r in rows.itertuples(index=False):
            if r.study not in co.study:
                out.append(f"{r.study} is in the separate analysis of '{other}' but has no "
                           "category counts")
                continue
            i = co.study.index(r.study)
            mine = (int(np.nansum(co.counts[i, 1])), int(np.nansum(co.counts[i, 0])))
            theirs = (int(r.n_t), int(r.n_c))
            if mine != theirs:
                out.append(f"Data differ: {r.study} has {mine[0]} vs {mine[1]} infants in the "
                           f"category counts but {theirs[0]} vs {theirs[1]} in the "
                           f"{'reconstructed ' if resolved.level == 'reconstructed' else ''}"
                           f"tables of the separate analyses, so part of any difference "
                           "between the columns is the data, not the model.")
        break   # the separate outcomes share their trials' arms; one says it
    return list(dict.fromkeys(out))


def write_categorical(out_dir, result) -> list[Path]:
    """Write a categorical fit's JSON, category figure and InferenceData: all or none."""
    from bayes_pip.figures_categorical import category_figure
    from bayes_pip.output import check_free_space, inside, json_text, staged_directory

    stem = f"{result.outcome}__{result.prior['name']}__{result.engine}"
    names = [f"{stem}.json", f"{stem}.png", f"{stem}.nc"]
    with staged_directory(Path(out_dir)) as stage:
        inside(stage, names[0]).write_text(json_text(result.to_dict()), encoding="utf-8")
        inside(stage, names[1]).write_bytes(category_figure(result))
        check_free_space(stage, result.idata, Path(out_dir))
        result.idata.to_netcdf(str(inside(stage, names[2])), engine="h5netcdf")
    return [Path(out_dir) / n for n in names]


# -- words ---------------------------------------------------------------------------------

LEVEL_WORDS = {"printed": "printed", "derived": "derived from printed numbers",
               "inferred": "inferred", "reconstructed": "reconstructed (not printed data)",
               "unstated": "provenance not stated"}




def arm_level(provenance: dict) -> str:
    """'printed' for an arm of one level, else each level with its categories."""
    kinds: dict[str, list] = {}
    for category, p in provenance.items():
        kinds.setdefault(p or "unstated", []).append(category)
    if len(kinds) == 1:
        return LEVEL_WORDS.get(next(iter(kinds)), next(iter(kinds)))
    return "; ".join(f"{', '.join(cats)} {LEVEL_WORDS.get(k, k)}" for k, cats in kinds.items())


def categorical_text(f: CategoricalFit) -> str:
    """What `fit` prints for a categorical outcome."""
    from bayes_pip.formats import prob_text

    def prob(p):
        return prob_text(p, f.draws)

    prior = f.prior
    lines = [f"{f.label} ({f.outcome}): one classification into {len(f.categories)} categories "
             f"({', '.join(f.categories)}), analysed together",
             f"Model: hierarchical multinomial (baseline-category logits against "
             f"'{f.reference}'; one tau shared by every log odds ratio, correlation "
             f"{f.tau['correlation']:g} between categories and between the active arms of a "
             "trial); each arm enters once",
             f"Data: k = {f.k} trials, {f.participants} participants in {len(f.arms)} arms; "
             "levels of evidence by arm below",
             f"Prior '{prior['name']}' (as for an odds-ratio outcome): each pooled log odds "
             f"ratio {prior['described']['mu']}; {prior['described']['tau']}; each trial's "
             f"comparator logits {prior['described']['baseline']}",
             "",
             f"{f.intervention} vs comparator, per category (probabilities at {f.baseline}):",
             f"  {'category':<14}{'comparator':>17}{f.intervention:>17}"
             f"{'RR [95% CrI]':>22}{'RD [95% CrI]':>24}  P(benefit)"]
    for row in f.per_category:
        arrow = "higher is better" if row["favourable"] else "lower is better"
        lines.append(f"  {row['category']:<14}{pct_text(row['p_comparator']):>17}"
                     f"{pct_text(row['p_intervention']):>17}{ci_text(row['rr']):>22}"
                     f"{ci_text(row['rd']):>24}  {prob(row['p_benefit'])} ({arrow})")
    lines += ["", "Joint probabilities (the categories move together: they share the infants):"]
    for j in f.joint:
        extra = ""
        if "expected_change" in j:
            extra = f"; expected change {ci_text(j['expected_change'])}"
        lines.append(f"  P({j['statement']}) {equals(prob(j['probability']))}{extra}")
    lines += ["", "A new trial (prediction, same baseline): RR per category"]
    lines.append("  " + "; ".join(f"{r['category']} {ci_text(r['rr'])}" for r in f.prediction))
    lines.append(f"Heterogeneity: tau {ci_text(f.tau)} (log odds ratio scale)")
    for alt in f.alternatives:
        n = alt["trials"]
        lines += ["", f"{f.intervention} vs {alt['treatment']} ({n} "
                      f"{'trial' if n == 1 else 'trials'}, from the same fit; "
                      f"{'not a meta-analysis: one trial' if n == 1 else 'pooled'}):"]
        for row in alt["per_category"]:
            lines.append(f"  {row['category']:<14} RR {ci_text(row['rr'])}, RD {ci_text(row['rd'])}, "
                         f"P(benefit) {prob(row['p_benefit'])}")
    lines += ["", "Arms (observed counts; level of evidence; fitted distribution in the order "
                  "of the categories, at the pooled effect):"]
    for a in f.arms:
        counts = ", ".join(f"{c} {v if v is not None else '-'}" for c, v in a["counts"].items())
        fitted = ", ".join(f"{100 * v:.0f}%" for v in a["fitted"].values())
        role = a["role"] if a["role"] in ("comparator", "intervention") else "alternative"
        lines.append(f"  {a['study']}, {a['arm']} ({role}), n = {a['n']}: {counts}")
        lines.append(f"      {arm_level(a['provenance'])}; fitted {fitted}")
    if f.comparison:
        lines += ["", "Each category on its own (the separate analyses) and as the review "
                      "printed it, RR [95% interval]:",
                  f"  {'category':<14}{'multinomial':>22}  {'separate analysis':<52}"
                  f"{'review (published)'}"]
        for c in f.comparison:
            sep = c.get("separate")
            sep_text = (f"{ci_text(sep)} ({sep['engine']}, {sep['level']})" if sep else
                        c.get("separate_note") or c.get("separate_error") or
                        ("no data" if c["separate_outcome"] else "-"))
            pub = c.get("published")
            pub_text = (f"{pub['estimate']:.2f} [{pub['ci_low']:.2f}, {pub['ci_high']:.2f}]"
                        if pub else "not reported")
            lines.append(f"  {c['category']:<14}{ci_text(c['multinomial']):>22}  {sep_text:<52}"
                         f"{pub_text}")
        lines += [f"  {n}" for n in f.data_differences]
        lines.append(f"  {f.quote}")
    d = f.diagnostics
    lines += ["", f"PyMC multinomial-normal, NUTS {d['chains']} chains x {d['draws']} draws, "
                  f"seed {f.seed}; R-hat {d['rhat_max']:.3f}, ESS bulk {d['ess_bulk_min']:.0f} "
                  f"/ tail {d['ess_tail_min']:.0f}, {d['divergences']} divergences: converged"]
    lines += [f"Note: {n}" for n in f.notes]
    return "\n".join(lines)



def categorical_comparison_text(fits: list) -> str:
    """`compare-priors` of a categorical outcome: per prior, each category's RR, the joint
    probability of the first favourable category rising while the category that falls most
    falls, and tau."""
    from bayes_pip.formats import prob_text

    first = fits[0]
    fav = first.favourable[0]
    biggest = min((r for r in first.per_category if not r["favourable"]),
                  key=lambda r: r["rd"]["median"])["category"]
    statement = f"{fav} rises and {biggest} falls"
    header = (f"  {'prior':<16}" + "".join(f"{c + ' RR':>24}" for c in first.categories)
              + f"{'P(' + statement + ')':>40}{'tau':>22}")
    lines = [f"{first.label} ({first.outcome}): the multinomial model under each prior set "
             f"(as for an odds-ratio outcome), k = {first.k}, {first.participants} participants",
             header]
    for f in fits:
        joint = next(j["probability"] for j in f.joint if j["statement"] == statement)
        lines.append(f"  {f.prior['name']:<16}"
                     + "".join(f"{ci_text(r['rr']):>24}" for r in f.per_category)
                     + f"{prob_text(joint, f.draws):>40}{ci_text(f.tau):>22}")
    return "\n".join(lines)
