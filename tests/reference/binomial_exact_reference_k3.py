"""Independent reference for the exact binomial-normal engine with three studies (a double zero
among them), where the nested QUADPACK of binomial_exact_reference_k23.py did not finish: the
same g_i(theta) (QUADPACK over the baseline at 2 x 201 Chebyshev points, barycentric
interpolation; that script's ``Study``), then, with no code of bayes_pip:

    L_i(., tau)  = g_i * N(0, tau^2)            a discrete convolution (FFT) on a uniform theta
                                                grid of step h over [-40, 40]: the trapezoidal
                                                rule, whose error for a smooth integrand is
                                                O(exp(-2 pi^2 tau^2 / h^2)); below tau = 4h, the
                                                expansion g + tau^2/2 g'' + tau^4/8 g'''' (finite
                                                differences; its next term is O(tau^6));
    the mu integral                              the trapezoidal rule on the same grid (exact to
                                                rounding for this analytic, decaying integrand),
                                                with the Euler-Maclaurin end correction up to
                                                h^4 for P(mu <= x) (x a grid point);
    the tau integral                             composite 16-point Gauss-Legendre on [0, 6] with
                                                the reference points of tau as panel edges.

Each case is computed twice, at (h, panels) = (0.002, 24) and (0.001, 48); the JSON keeps the
finer run and the largest difference between the two (``self_check``). The k = 1 zero-cell case
of binomial_exact_reference.py (nested QUADPACK, a different method) is computed too, as a check
of this method (``check_against_k1``).

Run (from tests/reference): python binomial_exact_reference_k3.py >
binomial_exact_reference_k3.json (33 s here; the committed JSON: self_check 9e-13, and the k = 1
case equals the nested QUADPACK to 3.4e-13). Priors: mu ~ N(0, 2^2), tau ~ half-normal(0.5),
baseline ~ N(0, 10^2).
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy import signal

sys.path.insert(0, str(Path(__file__).parent))
from binomial_exact_reference_k23 import SPAN, Study  # noqa: E402

M0, S0, TAU_SCALE = 0.0, 2.0, 0.5
TAU_MAX = 6.0   # 12 prior scales (as the k = 2, 3 script)
GL_X, GL_W = np.polynomial.legendre.leggauss(16)
SQRT_2PI = math.sqrt(2 * math.pi)

CASES = {
    # three studies, OR (logit link), one with no events in either arm: the k = 2, 3 script's case
    "double_zero_k3_or": dict(e_t=[2, 5, 0], n_t=[30, 40, 20], e_c=[6, 9, 0], n_c=[30, 41, 22],
                              link="logit", mu_x=[-1.2, -0.6, 0.0], tau_t=[0.2, 0.6]),
    # binomial_exact_reference.py's k = 1 zero-cell case, to check this method against QUADPACK
    "zero_cell_k1_or": dict(e_t=[0], n_t=[20], e_c=[5], n_c=[22], link="logit",
                            mu_x=[-1.0, 0.0, 1.0, 2.0, 3.0], tau_t=[0.05, 0.2, 0.5, 1.0]),
}


def study_likelihoods(log_g, h, tau):
    """L_i(mu, tau) / exp(shift_i) for every mu on the grid (rows: studies)."""
    out = np.empty_like(log_g)
    for i, lg in enumerate(log_g):
        g = np.exp(lg)
        if tau < 4 * h:
            d2 = np.gradient(np.gradient(g, h), h)
            d4 = np.gradient(np.gradient(d2, h), h)
            out[i] = g + tau ** 2 / 2 * d2 + tau ** 4 / 8 * d4
            continue
        half = min(int(math.ceil(14 * tau / h)), (len(g) - 1) // 2)
        d = np.arange(-half, half + 1) * h
        kernel = np.exp(-0.5 * (d / tau) ** 2) / (tau * SQRT_2PI)
        out[i] = h * signal.fftconvolve(g, kernel, mode="same")
    return np.clip(out, 0.0, None)


def partial(f, h, j):
    """int_{-inf}^{x_j} f by the trapezoidal rule with the Euler-Maclaurin end correction."""
    d1 = (f[j + 1] - f[j - 1]) / (2 * h)
    d3 = (f[j + 2] - 2 * f[j + 1] + 2 * f[j - 1] - f[j - 2]) / (2 * h ** 3)
    return h * f[:j].sum() + h / 2 * f[j] - h ** 2 / 12 * d1 + h ** 4 / 720 * d3


def integrate_case(c, studies, h, panels):
    n = int(round(2 * SPAN / h)) + 1
    theta = np.linspace(-SPAN, SPAN, n)
    log_g = np.array([s.log_g(theta) for s in studies])
    shifts = log_g.max(axis=1)
    log_g -= shifts[:, None]
    prior_mu = np.exp(-0.5 * ((theta - M0) / S0) ** 2) / (S0 * SQRT_2PI)
    edges = np.unique(np.concatenate([np.linspace(0, TAU_MAX, panels + 1), c["tau_t"]]))
    mu_index = {x: int(round((x + SPAN) / h)) for x in c["mu_x"]}
    z = 0.0
    tau_mass = {t: 0.0 for t in c["tau_t"]}
    mu_mass = {x: 0.0 for x in c["mu_x"]}
    for a, b in zip(edges[:-1], edges[1:]):
        for xq, wq in zip(GL_X, GL_W):
            tau = a + (b - a) * (xq + 1) / 2
            prior_tau = 2 / (TAU_SCALE * SQRT_2PI) * math.exp(-0.5 * (tau / TAU_SCALE) ** 2)
            w = wq * (b - a) / 2 * prior_tau
            f = prior_mu * np.prod(study_likelihoods(log_g, h, tau), axis=0)
            total = h * f.sum()
            z += w * total
            for t in c["tau_t"]:
                if b <= t:
                    tau_mass[t] += w * total
            for x, j in mu_index.items():
                mu_mass[x] += w * partial(f, h, j)
    return {"log_marginal_likelihood": float(math.log(z) + shifts.sum()),
            "tau_cdf": {str(t): tau_mass[t] / z for t in c["tau_t"]},
            "mu_cdf": {str(x): mu_mass[x] / z for x in c["mu_x"]}}


def largest_difference(a, b):
    out = abs(a["log_marginal_likelihood"] - b["log_marginal_likelihood"])
    for key in ("tau_cdf", "mu_cdf"):
        out = max(out, max(abs(a[key][k] - b[key][k]) for k in a[key]))
    return out


def main():
    out = {"priors": {"mu": [M0, S0], "tau_scale": TAU_SCALE, "baseline_sd": 10.0}}
    for name, c in CASES.items():
        studies = [Study(*a, c["link"]) for a in zip(c["e_t"], c["n_t"], c["e_c"], c["n_c"])]
        coarse = integrate_case(c, studies, 0.002, 24)
        fine = integrate_case(c, studies, 0.001, 48)
        out[name] = {"data": {k: v for k, v in c.items() if k not in ("mu_x", "tau_t")},
                     "interpolation_error": float(max(s.interp_error for s in studies)),
                     "self_check": largest_difference(coarse, fine), **fine}
        print(name, out[name], file=sys.stderr, flush=True)
    k1 = json.loads((Path(__file__).parent / "binomial_exact_reference.json").read_text())
    out["check_against_k1"] = largest_difference(out["zero_cell_k1_or"], {
        "log_marginal_likelihood": k1["zero_cell_k1_or"]["log_marginal_likelihood"],
        "tau_cdf": k1["zero_cell_k1_or"]["tau_cdf"],
        "mu_cdf": k1["zero_cell_k1_or"]["mu_cdf"]})
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
