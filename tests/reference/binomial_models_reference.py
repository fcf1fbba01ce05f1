"""Independent reference for the binomial-normal model comparison (`bma` with the binomial
likelihood): the log marginal likelihoods of the no-effect and fixed-effect models for the cases
of binomial_exact_reference_k23.py, by its g_i and L_i (QUADPACK and polynomial interpolation;
no code of bayes_pip):

    FE0: sum_i log g_i(0)
    FE:  log int N(mu; 0, 2^2) prod_i g_i(mu) dmu                     (QUADPACK, epsrel 1e-11)
    RE0: log int p(tau) prod_i L_i(0, tau) dtau                        (QUADPACK, epsrel 1e-11)

(the random-effects model RE is binomial_exact_reference_k23.json's log_marginal_likelihood).
Run: python tests/reference/binomial_models_reference.py > tests/reference/binomial_models_reference.json
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy import integrate

sys.path.insert(0, str(Path(__file__).parent))
import binomial_exact_reference_k23 as k23  # noqa: E402

OPTS = dict(epsabs=0.0, epsrel=1e-11, limit=400)


def models(name):
    c = k23.CASES[name]
    family = c.get("tau", "halfnormal")
    studies = [k23.Study(*a, c["link"]) for a in zip(c["e_t"], c["n_t"], c["e_c"], c["n_c"])]
    fe0 = sum(float(s.log_g(0.0)) for s in studies)
    grid = np.linspace(-15, 15, 30001)
    log_f = sum(s.log_g(grid) for s in studies) - 0.5 * (grid / k23.S0) ** 2
    top, at = float(log_f.max()), float(grid[np.argmax(log_f)])

    def f(mu):
        value = sum(float(s.log_g(mu)) for s in studies) - 0.5 * (mu / k23.S0) ** 2
        return math.exp(value - top)
    fe = sum(integrate.quad(f, a, b, points=[at] if a < at < b else None, **OPTS)[0]
             for a, b in ((-15.0, 0.0), (0.0, 15.0)))
    fe = top + math.log(fe) - math.log(k23.S0 * k23.SQRT_2PI)
    shifts = [float(np.max(s.log_g(np.linspace(-k23.SPAN, k23.SPAN, 4001)))) for s in studies]
    base = sum(shifts)

    def g(tau):
        return math.exp(sum(s.log_l(0.0, tau, sh) for s, sh in zip(studies, shifts)) - base
                        + k23.log_tau_pdf(tau, family))
    parts = [(0.0, 0.5), (0.5, 6.0)] + ([(6.0, math.inf)] if family == "halfcauchy" else [])
    re0 = base + math.log(sum(integrate.quad(g, a, b, **OPTS)[0] for a, b in parts))
    return {"FE0": fe0, "FE": fe, "RE0": re0}


def main():
    out = {name: models(name) for name in k23.CASES}
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
