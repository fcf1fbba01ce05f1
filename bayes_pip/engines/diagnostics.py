"""The convergence gate for any sampler that returns ArviZ InferenceData.

A fit passes when every monitored variable has rank-normalised R-hat <= 1.01 and bulk and tail
ESS >= 400 (Vehtari et al. 2021, Bayesian Analysis 16(2):667-718), there are no divergent
transitions, every draw that was asked for is there, and every diagnostic is a finite number: a
NaN R-hat or ESS (a partial or NaN-padded trace) fails the gate instead of comparing False
against a threshold.
"""

from __future__ import annotations

import math

RHAT_MAX = 1.01
ESS_MIN = 400


def diagnostics(idata, variables=("mu", "tau")) -> dict:
    """R-hat (rank-normalised), bulk and tail ESS over ``variables``, and divergent transitions."""
    import arviz as az

    sub = idata.posterior[list(variables)]
    rhat = az.rhat(sub)
    ess_bulk = az.ess(sub, method="bulk")
    ess_tail = az.ess(sub, method="tail")
    stats = getattr(idata, "sample_stats", None)
    divergences = (int(stats["diverging"].values.sum())
                   if stats is not None and "diverging" in stats else 0)
    d = {
        "rhat_max": float(max(float(rhat[v].max()) for v in variables)),
        "ess_bulk_min": float(min(float(ess_bulk[v].min()) for v in variables)),
        "ess_tail_min": float(min(float(ess_tail[v].min()) for v in variables)),
        "divergences": divergences,
        "chains": int(idata.posterior.sizes["chain"]),
        "draws": int(idata.posterior.sizes["draw"]),
    }
    d["converged"] = not problems(d)
    return d


def gate(idata, chains: int, draws: int, variables=("mu", "tau")) -> tuple[dict, list[str]]:
    """Diagnostics of a trace and the list of failed checks, for what was asked for."""
    import numpy as np

    d = diagnostics(idata, variables)
    found = problems(d, chains, draws)
    if not all(np.isfinite(idata.posterior[v].values).all() for v in variables):
        found.append("the trace holds non-finite draws")
    return d, found


def problems(d: dict, chains: int | None = None, draws: int | None = None) -> list[str]:
    """Human-readable list of failed checks (empty when the fit converged).

    ``chains`` and ``draws``, when given, are what was asked for: a trace with fewer (an
    interrupted run) fails.
    """
    found = []
    for key in ("rhat_max", "ess_bulk_min", "ess_tail_min"):
        if not math.isfinite(d[key]):
            found.append(f"{key.replace('_', ' ')} is not a number (incomplete or broken trace)")
    if math.isfinite(d["rhat_max"]) and d["rhat_max"] > RHAT_MAX:
        found.append(f"R-hat {d['rhat_max']:.3f} > {RHAT_MAX}")
    if math.isfinite(d["ess_bulk_min"]) and d["ess_bulk_min"] < ESS_MIN:
        found.append(f"bulk ESS {d['ess_bulk_min']:.0f} < {ESS_MIN}")
    if math.isfinite(d["ess_tail_min"]) and d["ess_tail_min"] < ESS_MIN:
        found.append(f"tail ESS {d['ess_tail_min']:.0f} < {ESS_MIN}")
    if d["divergences"]:
        found.append(f"{d['divergences']} divergent transitions")
    if chains is not None and d["chains"] != chains:
        found.append(f"{d['chains']} of {chains} chains returned")
    if draws is not None and d["draws"] != draws:
        found.append(f"{d['draws']} of {draws} draws per chain returned")
    return found
