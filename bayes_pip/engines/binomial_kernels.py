"""Compiled kernels of the exact binomial-normal engine (numba, cached once per installation).

Two integrals per study i with arm counts (e0 of n0 comparator, e1 of n1 intervention):

- ``study_table``: g_i(theta) = int Bin(e0 | p0(b)) Bin(e1 | p1(b, theta)) N(b; m_b, s_b^2) db on a
  grid of theta, by the trapezoidal rule in b on a grid centred at the mode of the integrand,
  walked outward on each side until the integrand is below e^-46 of its maximum. The trapezoidal
  rule is spectrally accurate for a smooth integrand that vanishes at both ends; the rule with
  twice the step is computed alongside from every other node, the step (from sigma/2, sigma from
  the curvature at the mode) is halved until the two agree to 1e-11, and their relative
  difference is returned as an error estimate (it bounds the error of the coarser rule, so it
  overstates the error of the one used).
- ``log_lik_grid``: L_i(mu, tau) = int g_i(theta) N(theta; mu, tau^2) dtheta for every (mu, tau) on
  a grid, by adaptive Gauss-Hermite quadrature around the mode of the integrand (Newton steps on
  log g_i from its cubic spline). Where the integrand is narrower than half g_i's narrowest
  feature (so that g_i is near-quadratic in log across it), first rules of 8 and 6 points,
  accepted when they agree to 1e-8 in log L (46-68% of the node-study pairs on the benchmark
  data; against a brute-force integral of the same spline the 8-point rule then errs by at most
  1.2e-7 in log L, the 24-point rule by 2.7e-8; without the narrowness condition, 8 and 6
  points agreed where both missed a zero-cell study's step, by 2e-6); else rules of 24 and 12
  points (the smaller one as the error estimate), accepted when they agree to 1e-7 in log L
  (GH_TOLERANCE): the cubic spline's third
  derivative jumps at its knots, so Gauss-Hermite converges only algebraically on it and rules
  of 20 and 24 nodes already differ by about 1e-9 at most nodes; asking for 1e-10 sent 38% of
  the nodes (92-98% of the posterior mass) to the trapezoidal walk for no gain (the posterior
  moved by at most 4e-10). A kink of the log link within 8 scales of the mode (beyond the
  24-node rule's outermost node, 6.9) goes to the walk.

The grid kernels run their rows (or points) on every core (numba parallel ranges); each value
is summed in the same order as in a serial loop, so the numbers do not depend on the number of
threads.

Links (as :func:`bayes_pip.engines.pymc_models.binomial_normal_model` defines them):
logit: logit p0 = b, logit p1 = b + theta;
log:   log p0 = min(0, -theta) - softplus(-b), log p1 = log p0 + theta.
"""

from __future__ import annotations

import math

import numba
import numpy as np

LOG_DROP = 46.0       # the walk stops where the integrand is below e^-46 of its maximum
MAX_STEPS = 100_000   # per side of one walk (a budget; reached only by a degenerate input)
GH_TOLERANCE = 1e-7   # Gauss-Hermite rules that differ by more fall back to the trapezoidal walk
KINK_REACH = 8.0      # a kink within this many scales of the mode sends the integral to the walk
KINK_STEPS = 8.0      # steps per scale of that walk
TRAPEZOID_TOLERANCE = 1e-10  # the wide-integrand trapezoidal rules of steps d and 2d agree to this
SMALL_X, SMALL_W = np.polynomial.hermite.hermgauss(8)      # first try: 8 points,
SMALLER_X, SMALLER_W = np.polynomial.hermite.hermgauss(6)  # checked against 6,
SMALL_TOLERANCE = 1e-8   # accepted when they agree to this (else the 24/12 rules, then the walk)
SMALL_REACH = 0.5        # tried only where the integrand's scale is below this x g's narrowest


TAIL_SLOPE = 0.05   # the closed-form tail beyond the spline grid needs step |d log f/dt| at most
TAIL_CURVE = 0.0025  # this and step^2 / tau^2 at most this (Euler-Maclaurin then errs < 1e-10)


@numba.njit(cache=True)
def log_erfcx(z):
    """log(exp(z^2) erfc(z)), finite for every z (asymptotic series beyond z = 25)."""
    if z < 25.0:
        return math.log(math.erfc(z)) + z * z
    w = 1.0 / (2.0 * z * z)
    series = 1.0 - w * (1.0 - 3.0 * w * (1.0 - 5.0 * w * (1.0 - 7.0 * w * (1.0 - 9.0 * w))))
    return -math.log(z * math.sqrt(math.pi)) + math.log(series)


@numba.njit(cache=True)
def log_tail_sum(slope, it2, step):
    """log sum_{j >= 1} exp(slope u_j - it2 u_j^2 / 2), u_j = j step: the trapezoidal nodes of a
    walk beyond the end of the spline grid, where log g is linear, so that the integrand
    relative to its value at the last node taken is exactly exp(slope u - it2 u^2 / 2) (slope:
    its derivative along the walk). Euler-Maclaurin on the closed-form integral:
    step sum = int_0^inf f - step/2 f(0) - step^2/12 f'(0) + step^4/720 f^(3)(0) - ..., whose next
    term is below 1e-10 relative to the integral under TAIL_SLOPE and TAIL_CURVE."""
    z = -slope / math.sqrt(2.0 * it2)
    log_int = 0.5 * math.log(math.pi / (2.0 * it2)) + log_erfcx(z)
    corr = (step / 2.0 + step * step / 12.0 * slope
            - step ** 4 / 720.0 * (slope ** 3 - 3.0 * slope * it2))
    return log_int + math.log1p(-corr * math.exp(-log_int)) - math.log(step)


@numba.njit(cache=True)
def tail_in_closed_form(t, side, j, mu, it2, step, lo, hi, d1):
    """Whether a walk at node j (t, derivative of log g d1) may end with the closed-form tail:
    beyond the spline grid, at an even node (shared by the rule of twice the step), where the
    integrand changes slowly against the step."""
    if j % 2 != 0 or (side > 0 and t < hi) or (side < 0 and t > lo):
        return False
    slope = side * (d1 - (t - mu) * it2)
    return abs(slope) * step <= TAIL_SLOPE and it2 * step * step <= TAIL_CURVE


@numba.njit(cache=True)
def softplus(x):
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@numba.njit(cache=True)
def log1mexp(a):
    """log(1 - exp(a)) for a < 0, accurate at both ends."""
    if a > -0.6931471805599453:
        return math.log(-math.expm1(a))
    return math.log1p(-math.exp(a))


@numba.njit(cache=True)
def arm_term(e, n, log_p, log_q):
    out = 0.0
    if e > 0.0:
        out += e * log_p
    if n - e > 0.0:
        out += (n - e) * log_q
    return out


@numba.njit(cache=True)
def log_integrand(b, theta, e0, n0, e1, n1, logit, mb, sb):
    """log of Bin(e0 | p0) Bin(e1 | p1) exp(-(b - m_b)^2 / (2 s_b^2)), without the binomial
    coefficients and the normal constant (added by the caller)."""
    if logit:  # softplus(x) = x + softplus(-x)
        lp0 = -softplus(-b)
        lq0 = lp0 - b
        x = b + theta
        lp1 = -softplus(-x)
        lq1 = lp1 - x
    else:
        s = -softplus(-b)
        lp0 = min(0.0, -theta) + s
        lp1 = lp0 + theta
        lq0 = log1mexp(lp0)
        lq1 = log1mexp(lp1)
    z = (b - mb) / sb
    return arm_term(e0, n0, lp0, lq0) + arm_term(e1, n1, lp1, lq1) - 0.5 * z * z


@numba.njit(cache=True)
def b_mode(theta, e0, n0, e1, n1, logit, mb, sb, start):
    """Mode of the (near-)concave log integrand in b: Newton steps (derivatives by central
    differences) kept inside a bracket of the derivative's sign change; and its curvature."""
    b = start
    delta = 1e-4
    lo = -math.inf
    hi = math.inf
    d2 = -1.0
    for _ in range(200):
        f0 = log_integrand(b, theta, e0, n0, e1, n1, logit, mb, sb)
        fp = log_integrand(b + delta, theta, e0, n0, e1, n1, logit, mb, sb)
        fm = log_integrand(b - delta, theta, e0, n0, e1, n1, logit, mb, sb)
        d1 = (fp - fm) / (2 * delta)
        d2 = (fp - 2 * f0 + fm) / (delta * delta)
        if d1 > 0:
            lo = b
        else:
            hi = b
        step = -d1 / d2 if d2 < 0.0 else (sb if d1 > 0 else -sb)
        if step > 2 * sb:
            step = 2 * sb
        elif step < -2 * sb:
            step = -2 * sb
        new = b + step
        if math.isfinite(lo) and math.isfinite(hi) and (new <= lo or new >= hi):
            new = 0.5 * (lo + hi)
        if abs(new - b) < 1e-10 * (1.0 + abs(b)):
            b = new
            break
        b = new
    return b, d2


@numba.njit(cache=True)
def trapezoid_walk(b, h, theta, e0, n0, e1, n1, logit, mb, sb):
    """Trapezoidal sums with steps h and 2h over the grid b + j h, walked outward until the
    integrand falls below e^-LOG_DROP of its maximum: (log max, fine sum, coarse sum)."""
    fmax = log_integrand(b, theta, e0, n0, e1, n1, logit, mb, sb)
    fine = 1.0
    coarse = 1.0
    for side in (1.0, -1.0):
        j = 1
        while j < MAX_STEPS:
            f = log_integrand(b + side * j * h, theta, e0, n0, e1, n1, logit, mb, sb)
            if f > fmax:  # rescale both sums to the new maximum
                scale = math.exp(fmax - f)
                fine *= scale
                coarse *= scale
                fmax = f
            term = math.exp(f - fmax)
            fine += term
            if j % 2 == 0:
                coarse += term
            if f < fmax - LOG_DROP and j > 4:
                break
            j += 1
    return fmax, fine * h, coarse * 2 * h


@numba.njit(cache=True)
def b_integral(theta, e0, n0, e1, n1, logit, mb, sb, start):
    """log of the integral over b of exp(log_integrand), its relative error estimate, and the
    mode in b (the next theta's starting point). The step starts at sigma/3 (sigma from the
    curvature at the mode) and is halved until the rules with steps h and 2h agree to 1e-11
    (at most 10 halvings)."""
    b, d2 = b_mode(theta, e0, n0, e1, n1, logit, mb, sb, start)
    sigma = 1.0 / math.sqrt(-d2) if d2 < 0.0 else sb
    # sigma / 2 would be accurate too, but its check (step sigma, error about e^(-2 pi^2)) fails
    # the tolerance on a near-normal integrand: start where the check can pass (step 2 sigma / 3,
    # error about e^(-2 pi^2 9 / 4) = 7e-20)
    h = min(sigma, sb) / 3.0
    err = 1.0
    fmax, fine = 0.0, 1.0
    for _ in range(11):
        fmax, fine, coarse = trapezoid_walk(b, h, theta, e0, n0, e1, n1, logit, mb, sb)
        err = abs(fine - coarse) / fine
        if err < 1e-11:
            break
        h *= 0.5
    return fmax + math.log(fine), err, b


@numba.njit(cache=True)
def study_table(theta, e0, n0, e1, n1, logit, mb, sb, start):
    """log g_i(theta) (up to the caller's constants) on a grid of theta, and the largest error
    estimate of the b integrals."""
    out = np.empty(theta.shape[0])
    worst = 0.0
    # walk the grid from the middle outward so that each b integral starts near its mode
    mid = theta.shape[0] // 2
    b_mid = start
    for direction in (1, -1):
        b = b_mid
        i = mid if direction == 1 else mid - 1
        while 0 <= i < theta.shape[0]:
            val, err, b = b_integral(theta[i], e0, n0, e1, n1, logit, mb, sb, b)
            out[i] = val
            if err > worst:
                worst = err
            if i == mid:
                b_mid = b
            i += direction
    return out, worst


@numba.njit(cache=True, parallel=True)
def study_tables(theta, e0, n0, e1, n1, logit, mb, sb, start):
    """study_table for every study (rows of ``theta``; the counts and starts are arrays), the
    studies in parallel: (k, len) values and the largest error estimate per study."""
    out = np.empty(theta.shape)
    worst = np.empty(theta.shape[0])
    for i in numba.prange(theta.shape[0]):
        out[i], worst[i] = study_table(theta[i], e0[i], n0[i], e1[i], n1[i], logit, mb, sb,
                                       start[i])
    return out, worst


@numba.njit(cache=True)
def spline_eval(x, lo, h, coef):
    """Cubic spline (scipy PPoly coefficients on a uniform grid) with linear extrapolation:
    value, first and second derivative at x."""
    n = coef.shape[1]
    hi = lo + n * h
    if x <= lo:
        d1 = coef[2, 0]
        return coef[3, 0] + d1 * (x - lo), d1, 0.0
    if x >= hi:
        t = h
        a, b, c, d = coef[0, n - 1], coef[1, n - 1], coef[2, n - 1], coef[3, n - 1]
        val = ((a * t + b) * t + c) * t + d
        d1 = (3 * a * t + 2 * b) * t + c
        return val + d1 * (x - hi), d1, 0.0
    i = int((x - lo) / h)
    if i >= n:
        i = n - 1
    t = x - (lo + i * h)
    a, b, c, d = coef[0, i], coef[1, i], coef[2, i], coef[3, i]
    return ((a * t + b) * t + c) * t + d, (3 * a * t + 2 * b) * t + c, 6 * a * t + 2 * b


@numba.njit(cache=True)
def spline_values(x, lo, h, coef):
    """spline_eval at every point of x: (values, first, second derivatives)."""
    val = np.empty(x.shape[0])
    d1 = np.empty(x.shape[0])
    d2 = np.empty(x.shape[0])
    for p in range(x.shape[0]):
        val[p], d1[p], d2[p] = spline_eval(x[p], lo, h, coef)
    return val, d1, d2


@numba.njit(cache=True)
def log_convolution(mu, tau, lo, h, coef, mode, prec, sharp, x_main, w_main, x_check, w_check,
                    kink=False, rough=False):
    """log int g(theta) N(theta; mu, tau^2) dtheta (g = exp(spline)) by adaptive Gauss-Hermite,
    and |log(main rule) - log(check rule)|. tau = 0 gives log g(mu).

    With ``kink`` (the log link: g has a kink at theta = 0, where min(0, -theta) turns), a kink
    within reach of the integrand sends it to the trapezoidal walk on a grid through 0 with the
    Euler-Maclaurin correction for the jump of the derivative there."""
    if tau <= 0.0:
        return spline_eval(mu, lo, h, coef)[0], 0.0
    it2 = 1.0 / (tau * tau)
    c = (prec * mode + mu * it2) / (prec + it2)
    g2 = -(prec + it2)
    for _ in range(8):  # Newton steps towards the mode of log g(theta) - (theta - mu)^2/(2 tau^2)
        val, d1, d2 = spline_eval(c, lo, h, coef)
        g1 = d1 - (c - mu) * it2
        g2 = d2 - it2
        if g2 > -0.5 * it2:
            g2 = -0.5 * it2
        step = -g1 / g2
        width = 1.0 / math.sqrt(-g2)
        if step > 3 * width:
            step = 3 * width
        elif step < -3 * width:
            step = -3 * width
        c += step
        if abs(step) < 1e-10 * width:
            break
    val, d1, d2 = spline_eval(c, lo, h, coef)
    g2 = d2 - it2
    if g2 > -0.5 * it2:
        g2 = -0.5 * it2
    s = math.sqrt(2.0) / math.sqrt(-g2)
    top = val - 0.5 * (c - mu) ** 2 * it2
    log_norm = -0.5 * math.log(2 * math.pi) - math.log(tau)
    near_kink = kink and abs(c) < KINK_REACH * s
    if not near_kink and s < SMALL_REACH * sharp:
        # a near-normal integrand: small rules, accepted only when they agree closely
        small = gauss_hermite_sum(c, s, mu, it2, top, lo, h, coef, SMALL_X, SMALL_W)
        if rough:  # scouting: no check and no fallback
            return log_norm + math.log(s) + top + math.log(small), 0.0
        smaller = gauss_hermite_sum(c, s, mu, it2, top, lo, h, coef, SMALLER_X, SMALLER_W)
        err = abs(math.log(small) - math.log(smaller))
        if err < SMALL_TOLERANCE:
            return log_norm + math.log(s) + top + math.log(small), err
    main = gauss_hermite_sum(c, s, mu, it2, top, lo, h, coef, x_main, w_main)
    if rough:
        return log_norm + math.log(s) + top + math.log(main), 0.0
    check = gauss_hermite_sum(c, s, mu, it2, top, lo, h, coef, x_check, w_check)
    err = abs(math.log(main) - math.log(check))
    if err < GH_TOLERANCE and not near_kink:
        return log_norm + math.log(s) + top + math.log(main), err
    # fallback (a sharp feature of g, e.g. the step of a zero-cell study, against a wide normal,
    # or the kink of the log link): the trapezoidal rule walked outward from the mode (on whole
    # multiples of the step when there is a kink, so that 0 is a node of both rules)
    if not near_kink and s >= 8 * h:
        return wide_trapezoid(mu, it2, c, s, top, log_norm, lo, h, coef, sharp)
    step = min(h, s / KINK_STEPS) if near_kink else min(h, s / 8)
    anchor = c
    if near_kink:  # whole multiples of twice the step, so that 0 is a node of the coarse rule
        # too (it was not for an odd multiple: its Euler-Maclaurin correction then did not
        # apply, and the Richardson step carried that error into the result, up to 1.5e-5 in
        # log L)
        anchor = 2.0 * step * round(c / (2.0 * step))
    fine = math.exp(spline_eval(anchor, lo, h, coef)[0] - 0.5 * (anchor - mu) ** 2 * it2 - top)
    coarse = fine
    for side in (1.0, -1.0):
        j = 1
        while j < MAX_STEPS:
            t = anchor + side * j * step
            fine, coarse, top, done = walk_node(t, side, j, mu, it2, step, lo, h, coef, fine,
                                                coarse, top)
            if done:
                break
            j += 1
    fine *= step
    coarse *= 2 * step
    if near_kink:  # Euler-Maclaurin: int f = T_h - h^2/12 (f'(0-) - f'(0+)) + O(h^4)
        value = spline_eval(0.0, lo, h, coef)[0]
        f0 = math.exp(value - 0.5 * mu * mu * it2 - top)
        left, right = one_sided_slopes(lo, h, coef)
        jump = f0 * (left - right)  # the -(0 - mu)/tau^2 terms cancel
        fine -= step * step / 12.0 * jump
        coarse -= 4.0 * step * step / 12.0 * jump
        # what remains is O(h^4) (the jump of the third derivative): one Richardson step
        err = abs(fine - coarse) / 15.0
        fine += (fine - coarse) / 15.0
        return log_norm + top + math.log(fine), err / fine
    return log_norm + top + math.log(fine), abs(fine - coarse) / fine


@numba.njit(cache=True)
def wide_trapezoid(mu, it2, c, s, top, log_norm, lo, h, coef, sharp):
    """log int g(theta) N(theta; mu, tau^2) dtheta where the integrand (width s) is wide against
    the spline's step h: the trapezoidal rule on the spline's own knots (where it equals the
    tabulated g exactly), every 2^p-th knot with 2^p h at most a quarter of the narrowest
    feature (min(s, the narrowest feature of g)); the step is halved until the rule of twice
    the step agrees to TRAPEZOID_TOLERANCE (the rules are spectrally accurate on this smooth
    integrand, so their difference bounds the coarser one's error), down to h. Returns (log
    value, relative error estimate)."""
    width = min(s, sharp)
    stride = 1
    while 2 * stride * h <= 0.25 * width:
        stride *= 2
    anchor = lo + h * round((c - lo) / h)
    fine = 0.0
    err = 1.0
    while True:
        step = stride * h
        fine = math.exp(spline_eval(anchor, lo, h, coef)[0] - 0.5 * (anchor - mu) ** 2 * it2
                        - top)
        coarse = fine
        for side in (1.0, -1.0):
            j = 1
            while j < MAX_STEPS:
                t = anchor + side * j * step
                fine, coarse, top, done = walk_node(t, side, j, mu, it2, step, lo, h, coef, fine,
                                                    coarse, top)
                if done:
                    break
                j += 1
        fine *= step
        coarse *= 2 * step
        err = abs(fine - coarse) / fine
        if err < TRAPEZOID_TOLERANCE or stride == 1:
            break
        stride //= 2
    return log_norm + top + math.log(fine), err


@numba.njit(cache=True)
def walk_node(t, side, j, mu, it2, step, lo, h, coef, fine, coarse, top):
    """One node j of a trapezoidal walk from the mode (the sums of the rules of steps ``step``
    and 2 ``step``, relative to exp(top)): adds its term, and ends the walk (done) where the
    integrand has fallen below e^-LOG_DROP, or beyond the spline grid with the rest of both
    sums in closed form (there the integrand is a normal density times exp(linear), as wide as
    tau: walked node by node, a tau of 1e5 took more than MAX_STEPS nodes, and the truncated
    walk missed up to 3.2 in log L). Returns (fine, coarse, top, done)."""
    value, d1, _ = spline_eval(t, lo, h, coef)
    f = value - 0.5 * (t - mu) ** 2 * it2 - top
    if f > 0.0:  # a higher point than the mode found: rescale the sums
        fine *= math.exp(-f)
        coarse *= math.exp(-f)
        top += f
        f = 0.0
    term = math.exp(f)
    fine += term
    if j % 2 == 0:
        coarse += term
    if f < -LOG_DROP and j > 4:
        return fine, coarse, top, True
    if tail_in_closed_form(t, side, j, mu, it2, step, lo, lo + coef.shape[1] * h, d1):
        slope = side * (d1 - (t - mu) * it2)
        rest_fine = f + log_tail_sum(slope, it2, step)
        rest_coarse = f + log_tail_sum(slope, it2, 2.0 * step)
        most = max(rest_fine, rest_coarse)
        if most > 0.0:
            fine *= math.exp(-most)
            coarse *= math.exp(-most)
            top += most
            rest_fine -= most
            rest_coarse -= most
        fine += math.exp(rest_fine)
        coarse += math.exp(rest_coarse)
        return fine, coarse, top, True
    return fine, coarse, top, False


@numba.njit(cache=True)
def gauss_hermite_sum(c, s, mu, it2, top, lo, h, coef, x, w):
    """sum_q w_q exp(f(c + s x_q) - top + x_q^2), f = log g - (theta - mu)^2 / (2 tau^2)."""
    total = 0.0
    for q in range(x.shape[0]):
        t = c + s * x[q]
        f = spline_eval(t, lo, h, coef)[0] - 0.5 * (t - mu) ** 2 * it2
        total += w[q] * math.exp(f - top + x[q] * x[q])
    return total


@numba.njit(cache=True)
def one_sided_slopes(lo, h, coef):
    """d log g / d theta just left and just right of theta = 0 (a grid node)."""
    i0 = int(round(-lo / h))
    n = coef.shape[1]
    if i0 <= 0 or i0 >= n:
        d = spline_eval(0.0, lo, h, coef)[1]
        return d, d
    a, b, c = coef[0, i0 - 1], coef[1, i0 - 1], coef[2, i0 - 1]
    left = (3 * a * h + 2 * b) * h + c
    return left, coef[2, i0]


@numba.njit(cache=True, parallel=True)
def log_lik_grid(mu, tau, live, lo, h, coefs, modes, precs, sharps, x_main, w_main, x_check,
                 w_check, kink, rough):
    """sum_i log L_i(mu_j, tau_m) for every tau (rows) and mu (columns) where ``live[m, j]``
    (-inf elsewhere), and the largest Gauss-Hermite error estimate at each point (``rough``:
    the main rule alone, for scouting)."""
    out = np.zeros((tau.shape[0], mu.shape[0]))
    err = np.zeros((tau.shape[0], mu.shape[0]))
    for m in numba.prange(tau.shape[0]):  # rows in parallel; each row sums studies in order
        for j in range(mu.shape[0]):
            if not live[m, j]:
                out[m, j] = -np.inf
        for i in range(coefs.shape[0]):
            for j in range(mu.shape[0]):
                if not live[m, j]:
                    continue
                val, e = log_convolution(mu[j], tau[m], lo[i], h[i], coefs[i], modes[i],
                                         precs[i], sharps[i], x_main, w_main, x_check, w_check,
                                         kink, rough)
                out[m, j] += val
                if e > err[m, j]:
                    err[m, j] = e
    return out, err


@numba.njit(cache=True, parallel=True)
def log_lik_each(mu, tau, rows, cols, lo, h, coefs, modes, precs, sharps, x_main, w_main,
                 x_check, w_check, kink):
    """log L_i(mu_j, tau_m) per study (studies x tau x mu) at the nodes (rows[n], cols[n])
    (-inf elsewhere), and the largest Gauss-Hermite error estimate at each node (tau x mu; 0
    elsewhere). The nodes run in parallel in the order given (a shuffled order spreads the
    costly ones, at large tau, over the threads); each node's values do not depend on it."""
    out = np.full((coefs.shape[0], tau.shape[0], mu.shape[0]), -np.inf)
    err = np.zeros((tau.shape[0], mu.shape[0]))
    for n in numba.prange(rows.shape[0]):
        m = rows[n]
        j = cols[n]
        for i in range(coefs.shape[0]):
            val, e = log_convolution(mu[j], tau[m], lo[i], h[i], coefs[i], modes[i],
                                     precs[i], sharps[i], x_main, w_main, x_check, w_check,
                                     kink)
            out[i, m, j] = val
            if e > err[m, j]:
                err[m, j] = e
    return out, err


@numba.njit(cache=True, parallel=True)
def log_lik_points(mu, tau, lo, h, coefs, modes, precs, sharps, x_main, w_main, x_check, w_check,
                   kink):
    """log L_i(mu_n, tau_n) per study for paired points: shape (points, studies)."""
    out = np.empty((mu.shape[0], coefs.shape[0]))
    for n in numba.prange(mu.shape[0]):
        for i in range(coefs.shape[0]):
            out[n, i] = log_convolution(mu[n], tau[n], lo[i], h[i], coefs[i], modes[i],
                                        precs[i], sharps[i], x_main, w_main, x_check, w_check, kink)[0]
    return out


@numba.njit(cache=True, parallel=True)
def mixture_density(x, mu, tau, mass, lo, h, coef, shift, with_study):
    """sum_n mass_n N(x; mu_n, tau_n^2) [g(x) / L(mu_n, tau_n)] at points x (the bracket only when
    ``with_study``: then ``mass`` already holds mass_n exp(shift) / L(mu_n, tau_n), and g is
    exp(spline - shift))."""
    out = np.zeros(x.shape[0])
    inv = 1.0 / tau
    scale = mass * inv / math.sqrt(2 * math.pi)
    reach = 9.0 * tau
    for p in numba.prange(x.shape[0]):  # points in parallel; each sums the nodes in order
        total = 0.0
        for n in range(mu.shape[0]):
            d = x[p] - mu[n]
            if d > reach[n] or d < -reach[n]:
                continue
            z = d * inv[n]
            total += scale[n] * math.exp(-0.5 * z * z)
        out[p] = total
        if with_study:
            out[p] *= math.exp(spline_eval(x[p], lo, h, coef)[0] - shift)
    return out



@numba.njit(cache=True, parallel=True)
def row_convolution(x, edges, poly, tau_rows, order, gh_x, gh_w, gh_n):
    """sum_r sum_q w_q / sqrt(pi) f_r(x - sqrt(2) tau_r z_q) at points x, where log f_r inside
    cell c of the uniform ``edges`` is the polynomial ``poly[r, c]`` (coefficients of t^0..t^4,
    t in [-1, 1] across the cell; f_r = 0 outside the edges), and row r takes the Gauss-Hermite
    rule ``order[r]`` (``gh_x[o, :gh_n[o]]``, ``gh_w[o, :gh_n[o]]``)."""
    cells = edges.shape[0] - 1
    first = edges[0]
    last = edges[cells]
    width = (last - first) / cells
    degree = poly.shape[2] - 1
    out = np.zeros(x.shape[0])
    root2 = math.sqrt(2.0)
    inv_root_pi = 1.0 / math.sqrt(math.pi)
    for p in numba.prange(x.shape[0]):
        total = 0.0
        for r in range(tau_rows.shape[0]):
            o = order[r]
            for q in range(gh_n[o]):
                y = x[p] - root2 * tau_rows[r] * gh_x[o, q]
                if y < first or y > last:
                    continue
                c = int((y - first) / width)
                if c > cells - 1:
                    c = cells - 1
                a = edges[c]
                t = 2.0 * (y - a) / (edges[c + 1] - a) - 1.0
                value = poly[r, c, degree]
                for d in range(degree - 1, -1, -1):
                    value = value * t + poly[r, c, d]
                total += gh_w[o, q] * math.exp(value)
        out[p] = total * inv_root_pi
    return out
