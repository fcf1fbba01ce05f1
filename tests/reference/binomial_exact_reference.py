"""Independent reference for the exact binomial-normal engine, one study (k = 1), by SciPy's
adaptive quadrature (QUADPACK) only: no code of bayes_pip is used.

With one study, mu can be integrated analytically given (theta, tau): theta | tau ~ N(m0, s0^2 +
tau^2) marginally, and mu | theta, tau ~ N((m0/s0^2 + theta/tau^2)/P, 1/P), P = 1/s0^2 + 1/tau^2.
So, with g(theta) = int Bin(e_c | p_c(b)) Bin(e_t | p_t(b, theta)) N(b; 0, 10^2) db:

    p(data)          = int g(theta) int p(tau) N(theta; m0, s0^2 + tau^2) dtau dtheta
    P(tau <= t)      = int g(theta) int_0^t p(tau) N(theta; m0, s0^2 + tau^2) dtau dtheta / p(data)
    P(mu <= x)       = int g(theta) int p(tau) N(theta; ...) Phi((x - E[mu | .]) / sd) dtau dtheta / p(data)
    P(theta_new <= x) as P(mu <= x) with sd^2 + tau^2 in place of sd^2
    P(theta_1 <= x)  = int_{-inf}^x g(theta) int p(tau) N(theta; ...) dtau dtheta / p(data)

each a nested scipy.integrate.quad (epsrel 1e-10; the log link's kink at theta = 0 is a
breakpoint). Run: python tests/reference/binomial_exact_reference.py > tests/reference/binomial_exact_reference.json
(about three minutes here). Priors: mu ~ N(0, 2^2), tau ~ half-normal(0.5) (half-Cauchy(0.5) in
the heavy-tailed case), baseline ~ N(0, 10^2).
"""

import json
import math
import sys

from scipy import integrate, special

M0, S0, TAU_SCALE, B_SD = 0.0, 2.0, 0.5, 10.0
OPTS = dict(epsabs=0.0, epsrel=1e-10, limit=400)
SQRT_2PI = math.sqrt(2 * math.pi)

CASES = {
    # Cicchetti 2006b secure attachment, reconstructed arm (17/28) against control (1/54), RR
    "secure_k1_rr": dict(e_t=17, n_t=28, e_c=1, n_c=54, link="log"),
    # a zero cell in the intervention arm, OR
    "zero_cell_k1_or": dict(e_t=0, n_t=20, e_c=5, n_c=22, link="logit"),
    # the secure attachment arm under a heavy-tailed prior on tau (a wide prediction)
    "secure_k1_rr_halfcauchy": dict(e_t=17, n_t=28, e_c=1, n_c=54, link="log",
                                    tau="halfcauchy"),
}


def log_expit(x):
    return -math.log1p(math.exp(-x)) if x > 0 else x - math.log1p(math.exp(x))


def log_p(b, theta, link):
    if link == "logit":
        return log_expit(b), log_expit(-b), log_expit(b + theta), log_expit(-(b + theta))
    lp0 = min(0.0, -theta) + log_expit(b)
    lp1 = lp0 + theta
    return lp0, log1m(lp0), lp1, log1m(lp1)


def log1m(lp):
    """log(1 - exp(lp)); -inf where the risk rounds to 1."""
    return math.log(-math.expm1(lp)) if lp < 0 else -math.inf


def g(theta, c):
    def f(b):
        lp0, lq0, lp1, lq1 = log_p(b, theta, c["link"])
        val = (c["e_c"] * lp0 + (c["n_c"] - c["e_c"]) * lq0 + c["e_t"] * lp1
               + (c["n_t"] - c["e_t"]) * lq1)
        if math.isnan(val):  # 0 x -inf: an arm with no events (or all) at a risk of 0 (or 1)
            val = -math.inf
        return math.exp(val - 0.5 * (b / B_SD) ** 2 - math.log(B_SD * SQRT_2PI))
    parts = [(-150, -20), (-20, 20), (20, 150)]
    total = sum(integrate.quad(f, a, b, **OPTS)[0] for a, b in parts)
    coef = (special.gammaln(c["n_c"] + 1) - special.gammaln(c["e_c"] + 1)
            - special.gammaln(c["n_c"] - c["e_c"] + 1) + special.gammaln(c["n_t"] + 1)
            - special.gammaln(c["e_t"] + 1) - special.gammaln(c["n_t"] - c["e_t"] + 1))
    return total * math.exp(coef)


def tau_pdf(tau, family):
    if family == "halfcauchy":
        return 2 / (math.pi * TAU_SCALE * (1 + (tau / TAU_SCALE) ** 2))
    return 2 * normal_pdf(tau, TAU_SCALE)


def normal_pdf(x, sd):
    return math.exp(-0.5 * (x / sd) ** 2) / (sd * SQRT_2PI)


def inner(theta, family, upper=math.inf, x=None, predict=False):
    def f(tau):
        val = tau_pdf(tau, family) * normal_pdf(theta - M0, math.sqrt(S0**2 + tau**2))
        if x is not None:
            if tau == 0:
                return val * (1.0 if theta <= x else 0.0)
            prec = 1 / S0**2 + 1 / tau**2
            mean = (M0 / S0**2 + theta / tau**2) / prec
            sd = math.sqrt(1 / prec + (tau**2 if predict else 0.0))
            val *= 0.5 * math.erfc(-(x - mean) / (sd * math.sqrt(2)))
        return val
    if family == "halfcauchy":  # heavy tail: split at 12 scales, QUADPACK's infinite range above
        parts = [(0, min(upper, 12 * TAU_SCALE))]
        if upper > 12 * TAU_SCALE:
            parts.append((12 * TAU_SCALE, upper))
        return sum(integrate.quad(f, a, b, **OPTS)[0] for a, b in parts)
    return integrate.quad(f, 0, min(upper, 12 * TAU_SCALE), **OPTS)[0]


def outer(c, study_below=None, **kw):
    """int g(theta) inner(theta) dtheta over theta (below ``study_below`` when given)."""
    pts = [0.0] if c["link"] == "log" else []
    if kw.get("x") is not None:
        pts.append(kw["x"])
    lo, hi = -25.0, 25.0
    if study_below is not None:
        hi = study_below
        pts = [p for p in pts if p < hi]
    edges = sorted(set([lo, hi] + pts))
    family = c.get("tau", "halfnormal")
    return sum(integrate.quad(lambda t: g(t, c) * inner(t, family, **kw), a, b, **OPTS)[0]
               for a, b in zip(edges[:-1], edges[1:]))


def main():
    out = {"priors": {"mu": [M0, S0], "tau_halfnormal": TAU_SCALE, "baseline_sd": B_SD}}
    for name, c in CASES.items():
        z = outer(c)
        res = {"data": c, "log_marginal_likelihood": math.log(z), "tau_cdf": {}, "mu_cdf": {},
               "predict_cdf": {}, "study_cdf": {}}
        for t in (0.05, 0.2, 0.5, 1.0):
            res["tau_cdf"][str(t)] = outer(c, upper=t) / z
        for x in (-1.0, 0.0, 1.0, 2.0, 3.0):
            res["mu_cdf"][str(x)] = outer(c, x=x) / z
        for x in (-1.0, 0.0, 1.0, 2.0, 3.0, 5.0):
            res["predict_cdf"][str(x)] = outer(c, x=x, predict=True) / z
        for x in (0.0, 1.0, 2.0, 3.0, 4.0):
            res["study_cdf"][str(x)] = outer(c, study_below=x) / z
        out[name] = res
        print(name, res, file=sys.stderr)
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
