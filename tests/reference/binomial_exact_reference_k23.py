"""Independent reference for the exact binomial-normal engine with two and three studies, by
SciPy's adaptive quadrature (QUADPACK) and polynomial interpolation at Chebyshev points only: no
code of bayes_pip is used.

For each study i, g_i(theta) = int Bin(e_ci | p_c(b)) Bin(e_ti | p_t(b, theta)) N(b; 0, 10^2) db
is computed by QUADPACK at 2 x 201 Chebyshev points of [-40, 0] and [0, 40] (the log link's kink
at theta = 0 is a piece boundary) and log g_i is interpolated by the polynomial through them
(barycentric form; checked against direct QUADPACK at 40 other points, the largest error is
stored as interpolation_error). Then

    L_i(mu, tau)   = int g_i(theta) N(theta; mu, tau^2) dtheta   (composite Gauss-Legendre, panels
                     doubled until two rules agree to 1e-12; the kink at theta = 0 a panel edge)
    p(data)        = int int p(mu) p(tau) prod_i L_i(mu, tau) dmu dtau
    P(tau <= t)    = int_0^t  int p(mu) p(tau) prod_i L_i dmu dtau / p(data)
    P(mu <= x)     = int_0^oo int_-oo^x p(mu) p(tau) prod_i L_i dmu dtau / p(data)

the outer two a nested scipy.integrate.quad (epsrel 1e-9). A different method from the engine's
at every level (QUADPACK and polynomial interpolation of the b integral in place of a trapezoidal
walk and a cubic spline; composite Gauss-Legendre on theta in place of adaptive Gauss-Hermite
around a mode; nested QUADPACK in place of a Gauss-Legendre tensor grid in (mu, log tau)).

Run: python tests/reference/binomial_exact_reference_k23.py [CASE ...] > out.json (all cases
when none is named, in two processes; the committed JSON joins a run of each case: about 25
minutes of CPU for the k = 2 case, more for k = 3). Priors: mu ~ N(0, 2^2), tau ~
half-normal(0.5), baseline ~ N(0, 10^2). (A k = 2 case under a half-Cauchy prior on tau did not
finish in an hour of CPU, the outer integral's infinite range being slow for nested QUADPACK;
the half-Cauchy prior is checked at k = 1. The k = 3 double-zero case did not finish in 45
minutes of CPU either, so the committed JSON holds the k = 2 case only; binomial_models_reference.py
checks the k = 3 case's FE0, FE and RE0 marginal likelihoods, and
binomial_exact_reference_k3.py its posterior by another method.)
"""

import json
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy import integrate, interpolate, optimize, special

sys.path.insert(0, str(Path(__file__).parent))
from binomial_exact_reference import log_p  # noqa: E402  (the k = 1 script's link functions)

M0, S0, TAU_SCALE, B_SD = 0.0, 2.0, 0.5, 10.0
SPAN = 40.0
DEGREE = 200
OUTER = dict(epsabs=0.0, epsrel=1e-9, limit=200)
B_OPTS = dict(epsabs=0.0, epsrel=1e-12, limit=400)
SQRT_2PI = math.sqrt(2 * math.pi)
GL_X, GL_W = np.polynomial.legendre.leggauss(16)

CASES = {
    # Cicchetti 2006b and 1999a secure attachment, reconstructed tables, RR (log link)
    "secure_k2_rr": dict(e_t=[17, 9], n_t=[28, 40], e_c=[1, 3], n_c=[54, 38], link="log",
                         mu_x=[0.5, 1.0, 1.5, 2.0, 3.0], tau_t=[0.1, 0.3, 0.6, 1.0]),
    # three studies, OR (logit link), one with no events in either arm (fewer reference points:
    # each costs about five minutes of CPU here)
    "double_zero_k3_or": dict(e_t=[2, 5, 0], n_t=[30, 40, 20], e_c=[6, 9, 0], n_c=[30, 41, 22],
                              link="logit", mu_x=[-1.2, -0.6, 0.0], tau_t=[0.2, 0.6]),
}


def arm(e, n, lp, lq):
    return (e * lp if e > 0 else 0.0) + ((n - e) * lq if n - e > 0 else 0.0)


def log_g(theta, e_t, n_t, e_c, n_c, link):
    """log g(theta), binomial coefficients and the baseline prior's constant included."""
    def h(b):
        lp0, lq0, lp1, lq1 = log_p(b, theta, link)
        return arm(e_c, n_c, lp0, lq0) + arm(e_t, n_t, lp1, lq1) - 0.5 * (b / B_SD) ** 2
    # the integrand's mode (log-concave in b), so that QUADPACK is told where the mass is
    top = optimize.minimize_scalar(lambda b: -h(b), bounds=(-150, 150), method="bounded",
                                   options=dict(xatol=1e-10))
    b0, f0 = float(top.x), -float(top.fun)
    edges = sorted({-150.0, 150.0, *(b0 + d for d in (-20.0, -5.0, 0.0, 5.0, 20.0)
                                      if -150 < b0 + d < 150)})
    total = sum(integrate.quad(lambda b: math.exp(h(b) - f0), a, c, **B_OPTS)[0]
                for a, c in zip(edges[:-1], edges[1:]))
    coef = (special.gammaln(n_c + 1) - special.gammaln(e_c + 1) - special.gammaln(n_c - e_c + 1)
            + special.gammaln(n_t + 1) - special.gammaln(e_t + 1)
            - special.gammaln(n_t - e_t + 1))
    return f0 + math.log(total) + coef - math.log(B_SD * SQRT_2PI)


class Study:
    def __init__(self, e_t, n_t, e_c, n_c, link):
        self.args = (e_t, n_t, e_c, n_c, link)
        self.kink = link == "log"
        self.pieces = []
        for lo, hi in ((-SPAN, 0.0), (0.0, SPAN)):
            nodes = np.cos(np.pi * (np.arange(DEGREE + 1) + 0.5) / (DEGREE + 1))
            theta = lo + (hi - lo) * (nodes + 1) / 2
            values = [log_g(t, *self.args) for t in theta]
            self.pieces.append(interpolate.BarycentricInterpolator(theta, values))
        rng = np.random.default_rng(1)
        test = rng.uniform(-SPAN, SPAN, 40)
        self.interp_error = max(abs(float(self.log_g(t)) - log_g(t, *self.args)) for t in test)

    def log_g(self, theta):
        theta = np.asarray(theta, float)
        out = np.empty(theta.shape)
        neg = theta < 0
        out[neg] = self.pieces[0](theta[neg])
        out[~neg] = self.pieces[1](theta[~neg])
        return out

    def log_l(self, mu, tau, shift):
        """log L(mu, tau) (shift: a constant taken out before exponentiating), by composite
        16-point Gauss-Legendre over theta in mu +- 14 tau, panels doubled until two successive
        rules agree to 1e-12 relative; the log link's kink at theta = 0 is a panel edge."""
        if tau == 0:
            return float(self.log_g(mu))
        lo, hi = max(-SPAN, mu - 14 * tau), min(SPAN, mu + 14 * tau)
        if lo >= hi:
            return -math.inf
        cuts = [lo, hi] + ([0.0] if self.kink and lo < 0 < hi else [])
        cuts = np.array(sorted(cuts))
        previous = None
        panels = 8
        for _ in range(14):
            edges = np.concatenate([np.linspace(a, b, panels + 1)[:-1]
                                    for a, b in zip(cuts[:-1], cuts[1:])] + [cuts[-1:]])
            half = 0.5 * np.diff(edges)[:, None]
            theta = (edges[:-1, None] + half * (GL_X[None, :] + 1)).ravel()
            z = (theta - mu) / tau
            f = np.exp(self.log_g(theta) - shift - 0.5 * z * z) / (tau * SQRT_2PI)
            value = float(np.sum((half * GL_W[None, :]).ravel() * f))
            if previous is not None and abs(value - previous) <= 1e-12 * abs(value):
                break
            previous = value
            panels *= 2
        else:
            raise RuntimeError(f"theta integral did not converge at mu={mu}, tau={tau}")
        return shift + math.log(value) if value > 0 else -math.inf


def log_tau_pdf(tau, family):
    if family == "halfcauchy":
        return math.log(2 / (math.pi * TAU_SCALE * (1 + (tau / TAU_SCALE) ** 2)))
    return math.log(2 / (TAU_SCALE * SQRT_2PI)) - 0.5 * (tau / TAU_SCALE) ** 2


def run(name):
    c = CASES[name]
    family = c.get("tau", "halfnormal")
    studies = [Study(*a, c["link"]) for a in zip(c["e_t"], c["n_t"], c["e_c"], c["n_c"])]
    shifts = [float(np.max(s.log_g(np.linspace(-SPAN, SPAN, 4001)))) for s in studies]

    def log_joint(mu, tau):
        return (sum(s.log_l(mu, tau, sh) for s, sh in zip(studies, shifts))
                - 0.5 * ((mu - M0) / S0) ** 2 - math.log(S0 * SQRT_2PI)
                + log_tau_pdf(tau, family))

    best = optimize.minimize(lambda p: -log_joint(p[0], math.exp(p[1])), [0.5, math.log(0.3)],
                             method="Nelder-Mead", options=dict(xatol=1e-6, fatol=1e-9))
    mu_hat, tau_hat, top = float(best.x[0]), math.exp(best.x[1]), -float(best.fun)

    def density(mu, tau):
        return math.exp(log_joint(mu, tau) - top)

    def over_mu(tau, upper=math.inf):
        hi = min(upper, 15.0)
        pts = [p for p in (mu_hat,) if -15.0 < p < hi]
        return integrate.quad(lambda m: density(m, tau), -15.0, hi, points=pts or None,
                              **OUTER)[0]

    def over_tau(upper=math.inf, mu_upper=math.inf):
        tops = [12 * TAU_SCALE] if family == "halfnormal" else [12 * TAU_SCALE, math.inf]
        edges = [0.0, min(tau_hat, upper)] + [t for t in tops if t < upper] + \
            ([upper] if upper < tops[-1] else [])
        edges = sorted(set(edges))
        total = 0.0
        for a, b in zip(edges[:-1], edges[1:]):
            total += integrate.quad(lambda t: over_mu(t, mu_upper), a, b, **OUTER)[0]
        return total

    z = over_tau()
    out = {"data": {k: v for k, v in c.items() if k not in ("mu_x", "tau_t")},
           "interpolation_error": float(max(s.interp_error for s in studies)),
           "log_marginal_likelihood": top + math.log(z) + sum(0 for _ in studies),
           "tau_cdf": {}, "mu_cdf": {}}
    for t in c["tau_t"]:
        out["tau_cdf"][str(t)] = over_tau(upper=t) / z
    for x in c["mu_x"]:
        out["mu_cdf"][str(x)] = over_tau(mu_upper=x) / z
    print(name, out, file=sys.stderr, flush=True)
    return name, out


def main():
    out = {"priors": {"mu": [M0, S0], "tau_scale": TAU_SCALE, "baseline_sd": B_SD}}
    names = sys.argv[1:] or list(CASES)
    with ProcessPoolExecutor(min(2, len(names))) as pool:
        for name, res in pool.map(run, names):
            out[name] = res
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
