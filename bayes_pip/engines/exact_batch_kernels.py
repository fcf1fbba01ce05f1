"""The compiled kernels of the batched exact normal-normal engine (engines/exact_batch.py, where
the method is described): per row the two-stage scan in log tau, the composite Gauss-Legendre
quadrature and the summaries (mixture quantiles by safeguarded Halley iterations, tail
probabilities, moments). numba, parallel over rows, cached on disk."""

from __future__ import annotations

import math

import numba
import numpy as np

from bayes_pip.engines.tau_kernels import UNIFORM, log_prior_u

SCOUT_COARSE = 57      # stage 1: log(s) - 40 ... log(s) + 30 in steps of 1.25
SCOUT_POINTS = 101     # stage 2: the live range found by stage 1
LOG_TAU_BELOW, LOG_TAU_ABOVE = 40.0, 30.0
LOG_NEGLIGIBLE = math.log(1e-16)
LOG_FLAT_TAU2 = math.log(1e-8)   # log(tau^2 / min(v)) below which the grid is not needed
MERGE_TAU2 = 1e-13     # tau^2 / min(v) below which a node's conditional normals equal tau = 0's
DROP_WEIGHT = 1e-300     # mixture components lighter than this are left out of the summaries
HALLEY_STEP = 1e-9      # mixture quantiles: Halley iterations stop at a step this small
HALLEY_ACCEPT = 1e-5    # ... or at a Halley step that moves the CDF by at most this
COARSE = 5             # adjacent mixture components merged for the first quantile iterations


# summary columns of the kernel's output
(MU_MEAN, MU_SD, TAU_MEAN, P_MU_BELOW, P_MU_ABOVE, P_NEW_BELOW, P_NEW_ABOVE, CUM0, TOTAL,
 LOG_ML, N_FIXED) = range(11)


@numba.njit(cache=True)
def _moments(y, v, k, tau, w0, m0):
    """m(tau), V(tau) and log p(y | tau) (up to a constant) for one meta-analysis.

    ``w0 = inf``: mu fixed at m0 (the models with no average effect): m0, 0 and
    log p(y | tau, mu = m0) up to the same constant minus log(w0) / 2."""
    s = tau * tau
    if math.isinf(w0):
        sum_log = 0.0
        resid = 0.0
        for i in range(k):
            sum_log += math.log(v[i] + s)
            resid += (y[i] - m0) ** 2 / (v[i] + s)
        return m0, 0.0, -0.5 * sum_log - 0.5 * resid
    big_w = w0
    swy = w0 * m0
    sum_log = 0.0
    for i in range(k):
        w = 1.0 / (v[i] + s)
        big_w += w
        swy += w * y[i]
        sum_log += math.log(v[i] + s)
    m = swy / big_w
    resid = w0 * (m0 - m) ** 2
    for i in range(k):
        r = y[i] - m
        resid += r * r / (v[i] + s)
    return m, 1.0 / big_w, -0.5 * sum_log - 0.5 * math.log(big_w) - 0.5 * resid


@numba.njit(cache=True)
def _log_density(y, v, k, u, w0, m0, family, a, b, c):
    lp = log_prior_u(u, family, a, b, c)
    if not math.isfinite(lp):
        return -math.inf
    value = _moments(y, v, k, math.exp(u), w0, m0)[2] + lp
    return value if math.isfinite(value) else -math.inf


@numba.njit(cache=True)
def _ndtr(z):
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


@numba.njit(cache=True)
def _scan(y, v, k, lo, hi, npts, w0, m0, family, a, b, c, logd):
    step = (hi - lo) / (npts - 1)
    best = -math.inf
    for j in range(npts):
        logd[j] = _log_density(y, v, k, lo + j * step, w0, m0, family, a, b, c)
        if logd[j] > best:
            best = logd[j]
    first = -1
    last = -1
    for j in range(npts):
        if logd[j] - best > LOG_NEGLIGIBLE:
            if first < 0:
                first = j
            last = j
    return best, first, last, step


@numba.njit(cache=True, parallel=True)
def scout_rows(y, v, k, w0, m0, family, a, b, c, out):
    """Per row: the live range of p(log tau | y) and what the tail terms need.

    out columns: lo, hi, shift, at_bottom, at_top, log p(y | 0), log p(y | e^hi), scan mass, dead.
    """
    n = y.shape[0]
    for r in numba.prange(n):
        kr = k[r]
        yr = y[r]
        vr = v[r]
        centre = math.log(math.sqrt(np.median(vr[:kr])))
        logd = np.empty(SCOUT_POINTS)
        best, first, last, step = _scan(yr, vr, kr, centre - LOG_TAU_BELOW,
                                        centre + LOG_TAU_ABOVE, SCOUT_COARSE, w0, m0, family,
                                        a, b, c, logd)
        if first < 0:
            out[r, 8] = 1.0
            continue
        lo1 = centre - LOG_TAU_BELOW + max(first - 1, 0) * step
        hi1 = centre - LOG_TAU_BELOW + min(last + 1, SCOUT_COARSE - 1) * step
        at_bottom = first == 0
        # below tau^2 = FLAT_TAU2 min(v), p(y | tau) is p(y | 0) to ~1e-12: the lower tail
        # p(y | 0) P_prior(tau < e^lo) carries that range exactly, so the grid need not
        vmin = math.inf
        for i in range(kr):
            vmin = min(vmin, vr[i])
        flat = 0.5 * (math.log(vmin) + LOG_FLAT_TAU2)
        clipped = lo1 < flat < hi1
        if clipped:
            lo1 = flat
        at_top = last == SCOUT_COARSE - 1
        best, first, last, step = _scan(yr, vr, kr, lo1, hi1, SCOUT_POINTS, w0, m0, family,
                                        a, b, c, logd)
        if clipped:
            at_bottom = first == 0
        lo = lo1 if at_bottom else lo1 + max(first - 1, 0) * step
        hi = hi1 if at_top else lo1 + min(last + 1, SCOUT_POINTS - 1) * step
        if family == UNIFORM and not math.isinf(a):
            hi = min(hi, math.log(a))
        mass = 0.0
        for j in range(SCOUT_POINTS):
            mass += math.exp(logd[j] - best)
        out[r, 0] = lo
        out[r, 1] = hi
        out[r, 2] = best
        out[r, 3] = 1.0 if at_bottom else 0.0
        out[r, 4] = 1.0 if at_top else 0.0
        out[r, 5] = _moments(yr, vr, kr, 0.0, w0, m0)[2]
        out[r, 6] = _moments(yr, vr, kr, math.exp(hi), w0, m0)[2]
        out[r, 7] = mass * step
        out[r, 8] = 0.0


@numba.njit(cache=True)
def _halley_quantile(w, m, s, nc, q, x, lo, hi, tol, accept):
    """Safeguarded Halley iterations on F(x) = sum_j w_j Phi((x - m_j)/s_j) = q, j < nc, until
    a step is below ``tol`` (relative to max(1, |x|)) or a Halley step moves F by at most
    ``accept`` (|step| F'(x) <= accept). Halley's error after a step e is C e^3 with
    C = (F''/2F')^2 - F^(3)/6F'; in probability that is (C / F'^2) (e F')^3, and C / F'^2 is 144
    at a normal's 2.5% quantile: accept = 1e-5 leaves 1.4e-13 in probability there, 2.5e-12
    standard deviations. A step that leaves the bracket [lo, hi] is replaced by bisection, which
    is never accepted on ``accept``."""
    for _ in range(200):
        f = -q
        d1 = 0.0
        d2 = 0.0
        for j in range(nc):
            z = (x - m[j]) / s[j]
            phi = w[j] * math.exp(-0.5 * z * z) / s[j]
            f += w[j] * _ndtr(z)
            d1 += phi
            d2 -= phi * z / s[j]
        d1 /= math.sqrt(2 * math.pi)
        d2 /= math.sqrt(2 * math.pi)
        if f < 0:
            lo = x
        elif f > 0:
            hi = x
        else:
            return x
        den = 2 * d1 * d1 - f * d2
        halley = d1 > 0 and den > 0
        if halley:
            new = x - 2 * f * d1 / den
        elif d1 > 0:
            new = x - f / d1
        else:
            new = 0.5 * (lo + hi)
        if not (new > lo and new < hi):
            new = 0.5 * (lo + hi)
            halley = False
        if abs(new - x) <= tol * max(1.0, abs(x)) or (halley and abs(new - x) * d1 <= accept):
            return new
        x = new
    return x


@numba.njit(cache=True)
def _mixture_quantile(w, m, s, nc, q, zq, gw, gm, gs, ng):
    """q-quantile of the normal mixture (w, m, s)[:nc]: Halley iterations on a coarse mixture
    (groups of adjacent components merged by their first two moments: (gw, gm, gs)[:ng]) find
    the neighbourhood, then on the full mixture until a step is below HALLEY_STEP or a Halley
    step moves its CDF by at most HALLEY_ACCEPT (the first step, usually)."""
    lo = math.inf
    hi = -math.inf
    mean = 0.0
    second = 0.0
    for j in range(nc):
        lo = min(lo, m[j] - 40 * s[j])
        hi = max(hi, m[j] + 40 * s[j])
        mean += w[j] * m[j]
        second += w[j] * (s[j] * s[j] + m[j] * m[j])
    x = mean + math.sqrt(max(second - mean * mean, 0.0)) * zq
    x = min(max(x, lo), hi)
    x = _halley_quantile(gw, gm, gs, ng, q, x, lo, hi, 1e-4, 0.0)
    x = min(max(x, lo), hi)
    return _halley_quantile(w, m, s, nc, q, x, lo, hi, HALLEY_STEP, HALLEY_ACCEPT)


@numba.njit(cache=True)
def _coarse(w, m, s, nc, size, gw, gm, gs):
    """Merge runs of ``size`` adjacent components, matching their weight, mean and variance."""
    ng = 0
    for start in range(0, nc, size):
        tw = 0.0
        tm = 0.0
        t2 = 0.0
        for j in range(start, min(start + size, nc)):
            tw += w[j]
            tm += w[j] * m[j]
            t2 += w[j] * (s[j] * s[j] + m[j] * m[j])
        if tw > 0:
            gw[ng] = tw
            gm[ng] = tm / tw
            gs[ng] = math.sqrt(max(t2 / tw - gm[ng] * gm[ng], 1e-300))
            ng += 1
    return ng


@numba.njit(cache=True, parallel=True)
def integrate_rows(y, v, k, w0, m0, family, a, b, c, lo, hi, shift, tail, cells, gl_x, gl_w,
                   qs, zqs, out, store, edges_out, cum_out, tau_out, weight_out, m_out,
                   var_out):
    """Per row: quadrature nodes and weights, then every summary (see the module notes).

    out columns: the fixed ones (MU_MEAN ... CUM0), then mu, new-study and tau quantiles
    (len(qs) each). With ``store``, the nodes are written to the *_out arrays as well.
    """
    n = y.shape[0]
    npc = gl_x.shape[0]
    nq = qs.shape[0]
    nn = cells * npc + 1
    for r in numba.prange(n):
        kr = k[r]
        yr = y[r]
        vr = v[r]
        width = (hi[r] - lo[r]) / cells
        half = 0.5 * width
        tau = np.empty(nn)
        mass = np.empty(nn)
        mm = np.empty(nn)
        var = np.empty(nn)
        cum = np.empty(cells + 1)
        tau[0] = 0.0
        mass[0] = tail[r]
        cum[0] = tail[r]
        mm[0], var[0], _ = _moments(yr, vr, kr, 0.0, w0, m0)
        for cidx in range(cells):
            a_c = lo[r] + cidx * width
            cell_mass = 0.0
            for g in range(npc):
                u = a_c + half * (gl_x[g] + 1.0)
                j = 1 + cidx * npc + g
                t = math.exp(u)
                mj, vj, log_lik = _moments(yr, vr, kr, t, w0, m0)
                lp = log_prior_u(u, family, a, b, c)
                value = log_lik + lp
                d = math.exp(value - shift[r]) if math.isfinite(value) else 0.0
                mass[j] = half * gl_w[g] * d
                tau[j] = t
                mm[j] = mj
                var[j] = vj
                cell_mass += mass[j]
            cum[cidx + 1] = cum[cidx] + cell_mass
        total = cum[cells]
        if math.isinf(w0):    # mu fixed: only the normaliser (the marginal likelihood) is wanted
            out[r, CUM0] = cum[0] / total
            out[r, TOTAL] = total
            continue
        vmin = math.inf
        for i in range(kr):
            vmin = min(vmin, vr[i])
        for j in range(nn):
            mass[j] /= total
        for cidx in range(cells + 1):
            cum[cidx] /= total
        if store:
            for cidx in range(cells + 1):
                edges_out[r, cidx] = lo[r] + cidx * width
                cum_out[r, cidx] = cum[cidx]
            for j in range(nn):
                tau_out[r, j] = tau[j]
                weight_out[r, j] = mass[j]
                m_out[r, j] = mm[j]
                var_out[r, j] = var[j]
        # compressed mixture: merge nodes indistinguishable from tau = 0, drop empty ones
        cw = np.empty(nn)
        cm = np.empty(nn)
        cv = np.empty(nn)
        ct = np.empty(nn)
        cw[0] = mass[0]
        cm[0] = mm[0]
        cv[0] = var[0]
        ct[0] = 0.0
        nc = 1
        tau_mean = 0.0
        for j in range(1, nn):
            tau_mean += mass[j] * tau[j]
            if tau[j] * tau[j] < MERGE_TAU2 * vmin:
                cw[0] += mass[j]
            elif mass[j] > DROP_WEIGHT:
                cw[nc] = mass[j]
                cm[nc] = mm[j]
                cv[nc] = var[j]
                ct[nc] = tau[j]
                nc += 1
        mean = 0.0
        second = 0.0
        pb = 0.0
        pa = 0.0
        nb = 0.0
        na = 0.0
        for j in range(nc):
            sd = math.sqrt(cv[j])
            sdn = math.sqrt(cv[j] + ct[j] * ct[j])
            mean += cw[j] * cm[j]
            second += cw[j] * (cv[j] + cm[j] * cm[j])
            # one tail per component, on its small side (the other is 1 minus it, exactly
            # enough: a sum of tiny probabilities only arises from the small sides)
            t_mu = _ndtr(-abs(cm[j]) / sd)
            t_new = _ndtr(-abs(cm[j]) / sdn)
            if cm[j] > 0:
                pb += cw[j] * t_mu
                pa += cw[j] * (1.0 - t_mu)
                nb += cw[j] * t_new
                na += cw[j] * (1.0 - t_new)
            else:
                pb += cw[j] * (1.0 - t_mu)
                pa += cw[j] * t_mu
                nb += cw[j] * (1.0 - t_new)
                na += cw[j] * t_new
        out[r, MU_MEAN] = mean
        out[r, MU_SD] = math.sqrt(max(second - mean * mean, 0.0))
        out[r, TAU_MEAN] = tau_mean
        out[r, P_MU_BELOW] = min(max(pb, 0.0), 1.0)
        out[r, P_MU_ABOVE] = min(max(pa, 0.0), 1.0)
        out[r, P_NEW_BELOW] = min(max(nb, 0.0), 1.0)
        out[r, P_NEW_ABOVE] = min(max(na, 0.0), 1.0)
        out[r, CUM0] = cum[0]
        out[r, TOTAL] = total
        sd_mu = np.empty(nc)
        sd_new = np.empty(nc)
        for j in range(nc):
            sd_mu[j] = math.sqrt(cv[j])
            sd_new[j] = math.sqrt(cv[j] + ct[j] * ct[j])
        gw = np.empty(nc)
        gm = np.empty(nc)
        gs_mu = np.empty(nc)
        gs_new = np.empty(nc)
        ng = _coarse(cw, cm, sd_mu, nc, COARSE, gw, gm, gs_mu)
        _coarse(cw, cm, sd_new, nc, COARSE, gw, gm, gs_new)
        for iq in range(nq):
            out[r, N_FIXED + iq] = _mixture_quantile(cw, cm, sd_mu, nc, qs[iq], zqs[iq],
                                                     gw, gm, gs_mu, ng)
            out[r, N_FIXED + nq + iq] = _mixture_quantile(cw, cm, sd_new, nc, qs[iq], zqs[iq],
                                                          gw, gm, gs_new, ng)
            # tau: the cell holding the quantile, then Newton on the integral inside it
            q = qs[iq]
            if q < cum[0]:
                out[r, N_FIXED + 2 * nq + iq] = math.nan  # in the prior-shaped lower tail
                continue
            cidx = 0
            while cidx < cells - 1 and cum[cidx + 1] < q:
                cidx += 1
            a_c = lo[r] + cidx * width
            lo_x = a_c
            hi_x = a_c + width
            span = max(cum[cidx + 1] - cum[cidx], 1e-300)
            x = a_c + width * min(max((q - cum[cidx]) / span, 0.0), 1.0)
            for _ in range(100):
                hx = 0.5 * (x - a_c)
                part = 0.0
                for g in range(npc):
                    u = a_c + hx * (gl_x[g] + 1.0)
                    part += gl_w[g] * math.exp(
                        _log_density(yr, vr, kr, u, w0, m0, family, a, b, c) - shift[r])
                f = cum[cidx] + hx * part / total - q
                deriv = math.exp(_log_density(yr, vr, kr, x, w0, m0, family, a, b, c)
                                 - shift[r]) / total
                if f < 0:
                    lo_x = x
                elif f > 0:
                    hi_x = x
                else:
                    break
                new = x - f / deriv if deriv > 0 else 0.5 * (lo_x + hi_x)
                if not (new > lo_x and new < hi_x):
                    new = 0.5 * (lo_x + hi_x)
                if abs(new - x) <= 1e-14 * max(1.0, abs(x)):
                    x = new
                    break
                x = new
            out[r, N_FIXED + 2 * nq + iq] = math.exp(x)
