"""The compiled kernels of the batched exact normal-normal engine (engines/exact_batch.py, where
the method is described): per row the two-stage scan in log tau, the adaptive Gauss-Kronrod
quadrature and the summaries (mixture quantiles by safeguarded Halley iterations, tail
probabilities, moments, tau quantiles by Newton iterations on the adaptive integral). numba,
parallel over rows, cached on disk."""

from __future__ import annotations

import math

import numba
import numpy as np

from bayes_pip.engines.tau_kernels import LOG_SQRT_2PI, UNIFORM, log_prior_u

SCOUT_COARSE = 57      # the scan: log(s) - 40 ... log(s) + 30 in steps of 1.25
LOG_TAU_BELOW, LOG_TAU_ABOVE = 40.0, 30.0
LOG_NEGLIGIBLE = math.log(1e-16)
LOG_FLAT_TAU2 = math.log(1e-8)   # log(tau^2 / min(v)) below which the grid is not needed
MERGE_TAU2 = 1e-13     # tau^2 / min(v) below which a node's conditional normals equal tau = 0's
DROP_WEIGHT = 1e-300     # mixture components lighter than this are left out of the summaries
HALLEY_STEP = 1e-9      # mixture quantiles: Halley iterations stop at a step this small
HALLEY_ACCEPT = 1e-5    # ... or at a Halley step that moves the CDF by at most this
INITIAL_CELLS = 4      # equal cells the adaptive quadrature starts from
TAU_Q_EPS = 1e-11      # tau quantiles: error estimate allowed in the partial integral (x total)
TAU_Q_STEP = 1e-9      # ... and Newton iterations stop at a step this small
PARTIAL_BUDGET = 200   # intervals one adaptive partial integral may use
ROWS_PER_TASK = 32     # rows sharing one set of scratch arrays in the parallel loop

NK = 15                # nodes per cell (the Gauss-Kronrod rule: engines/exact.py)


# summary columns of the kernel's output
(MU_MEAN, MU_SD, TAU_MEAN, P_MU_BELOW, P_MU_ABOVE, P_NEW_BELOW, P_NEW_ABOVE, CUM0, TOTAL,
 LOG_ML, N_CELLS, QUAD_ERROR, LOG_DENSITY0, DENSITY0_ERROR, N_FIXED) = range(15)


@numba.njit(cache=True)
def _log_block(v, start, stop, s, prod):
    """log of prod_{start <= i < stop} (v_i + s), given that product: term by term where the
    product left [1e-280, 1e280]."""
    if prod > 1e-280 and prod < 1e280:
        return math.log(prod)
    total = 0.0
    for i in range(start, stop):
        total += math.log(v[i] + s)
    return total


@numba.njit(cache=True)
def _moments(y, v, k, tau, w0, m0):
    """m(tau), V(tau) and log p(y | tau) (up to a constant) for one meta-analysis.

    One pass over the studies. sum_i log(v_i + s) is taken as the logarithms of products of 8
    terms (8 times fewer logarithms). The effects are centred at the first one (c): the
    residual sum of squares sum_i w_i (y_i - m)^2 + w0 (m0 - m)^2 is then
    sum w (y - c)^2 - (m - c) sum w (y - c), whose rounding error is of order k x machine
    epsilon relative to it (the centred mean is a weighted mean of the centred effects).

    ``w0 = inf``: mu fixed at m0 (the models with no average effect): m0, 0 and
    log p(y | tau, mu = m0) up to the same constant minus log(w0) / 2."""
    s = tau * tau
    fixed = math.isinf(w0)
    c = m0 if fixed else y[0]
    big_w = 0.0 if fixed else w0
    swy = w0 * (m0 - c) if w0 > 0 and not fixed else 0.0
    swyy = swy * (m0 - c)
    sum_log = 0.0
    prod = 1.0
    for i in range(k):
        d = v[i] + s
        w = 1.0 / d
        e = y[i] - c
        big_w += w
        swy += w * e
        swyy += w * e * e
        prod *= d
        if (i & 7) == 7:
            sum_log += _log_block(v, i - 7, i + 1, s, prod)
            prod = 1.0
    if k & 7:
        sum_log += _log_block(v, k - (k & 7), k, s, prod)
    if fixed:
        return m0, 0.0, -0.5 * sum_log - 0.5 * swyy
    centred = swy / big_w
    resid = max(swyy - centred * swy, 0.0)
    return c + centred, 1.0 / big_w, -0.5 * sum_log - 0.5 * math.log(big_w) - 0.5 * resid


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
    """Per row: the live range of p(log tau | y) (one scan in steps of 1.25; the adaptive
    quadrature places its cells inside it) and what the tail terms need.

    out columns: lo, hi, shift, at_bottom, at_top, log p(y | 0), log p(y | e^hi), scan mass, dead.
    """
    n = y.shape[0]
    for r in numba.prange(n):
        kr = k[r]
        yr = y[r]
        vr = v[r]
        centre = math.log(math.sqrt(np.median(vr[:kr])))
        logd = np.empty(SCOUT_COARSE)
        best, first, last, step = _scan(yr, vr, kr, centre - LOG_TAU_BELOW,
                                        centre + LOG_TAU_ABOVE, SCOUT_COARSE, w0, m0, family,
                                        a, b, c, logd)
        if first < 0:
            out[r, 8] = 1.0
            continue
        lo = centre - LOG_TAU_BELOW + max(first - 1, 0) * step
        hi = centre - LOG_TAU_BELOW + min(last + 1, SCOUT_COARSE - 1) * step
        at_bottom = first == 0
        at_top = last == SCOUT_COARSE - 1
        # below tau^2 = FLAT_TAU2 min(v), p(y | tau) is p(y | 0) to ~1e-8 relative: the lower
        # tail p(y | 0) P_prior(tau < e^lo) carries that range, so the cells need not
        vmin = math.inf
        for i in range(kr):
            vmin = min(vmin, vr[i])
        flat = 0.5 * (math.log(vmin) + LOG_FLAT_TAU2)
        if lo < flat < hi:
            lo = flat
            at_bottom = True
        if family == UNIFORM and not math.isinf(a):
            hi = min(hi, math.log(a))
        mass = 0.0
        for j in range(SCOUT_COARSE):
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
def _halley_quantile(w, m, inv_s, nc, q, x, lo, hi, tol, accept):
    """Safeguarded Halley iterations on F(x) = sum_j w_j Phi((x - m_j)/s_j) = q, j < nc (given
    the reciprocals ``inv_s`` of the s_j), until
    a step is below ``tol`` (relative to max(1, |x|)) or a Halley step moves F by at most
    ``accept`` (|step| F'(x) <= accept). Halley's error after a step e is C e^3 with
    C = (F''/2F')^2 - F^(3)/6F'; in probability that is (C / F'^2) (e F')^3, and C / F'^2 is 144
    at a normal's 2.5% quantile: accept = 1e-5 leaves 1.4e-13 in probability there, 2.5e-12
    standard deviations; far from the root F' can be tiny, so ``accept`` also asks |F(x) - q| <=
    accept. A step that leaves the bracket [lo, hi] is replaced by bisection."""
    for _ in range(200):
        f = -q
        d1 = 0.0
        d2 = 0.0
        for j in range(nc):
            z = (x - m[j]) * inv_s[j]
            phi = w[j] * math.exp(-0.5 * z * z) * inv_s[j]
            f += w[j] * _ndtr(z)
            d1 += phi
            d2 -= phi * z * inv_s[j]
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
        if d1 > 0 and (abs(new - x) <= tol * max(1.0, abs(x))
                       or (halley and abs(f) <= accept and abs(new - x) * d1 <= accept)):
            return new    # (a step below rounding may fall on the bracket's edge: converged)
        if not (new > lo and new < hi):
            new = 0.5 * (lo + hi)
        x = new
    return x


@numba.njit(cache=True)
def _mixture_quantile(w, m, inv_s, nc, q, x, gw, gm, g_inv_s, ng, lo, hi):
    """q-quantile of the normal mixture (w, m, 1 / inv_s)[:nc], searched in [lo, hi] from x:
    Halley iterations on a smaller mixture ((gw, gm, 1 / g_inv_s)[:ng], the embedded Gauss
    rule's nodes) find the neighbourhood, then on the full mixture until a step is below
    HALLEY_STEP or a Halley step moves its CDF by at most HALLEY_ACCEPT (the first step,
    usually)."""
    x = min(max(x, lo), hi)
    x = _halley_quantile(gw, gm, g_inv_s, ng, q, x, lo, hi, 1e-4, 0.0)
    x = min(max(x, lo), hi)
    return _halley_quantile(w, m, inv_s, nc, q, x, lo, hi, HALLEY_STEP, HALLEY_ACCEPT)


@numba.njit(cache=True)
def _kronrod(y, v, k, lo_c, hi_c, w0, m0, family, a, b, c, shift, kx, kw, gw, tau, dens, mm, var,
             base):
    """The 15-point Kronrod and 7-point Gauss rules on [lo_c, hi_c] for the shifted posterior
    density of log tau: (Kronrod's integral, |Kronrod - Gauss|, and the same two for tau times
    the density, the integrand of tau's mean, whose upper tail is heavier). With ``base`` >= 0
    the nodes' tau, density and conditional moments of mu are written from position base on."""
    half = 0.5 * (hi_c - lo_c)
    mid = lo_c + half
    big = 0.0
    small = 0.0
    big_t = 0.0
    small_t = 0.0
    for g in range(NK):
        u = mid + half * kx[g]
        t = math.exp(u)
        mj, vj, log_lik = _moments(y, v, k, t, w0, m0)
        value = log_lik + log_prior_u(u, family, a, b, c)
        d = math.exp(value - shift) if math.isfinite(value) else 0.0
        big += kw[g] * d
        small += gw[g] * d
        big_t += kw[g] * d * t
        small_t += gw[g] * d * t
        if base >= 0:
            tau[base + g] = t
            dens[base + g] = d
            mm[base + g] = mj
            var[base + g] = vj
    return half * big, half * abs(big - small), half * big_t, half * abs(big_t - small_t)


@numba.njit(cache=True)
def _partial(y, v, k, lo_c, hi_c, w0, m0, family, a, b, c, shift, kx, kw, gw, eps, stack_lo,
             stack_hi):
    """The shifted density's integral over [lo_c, hi_c] by adaptive Gauss-Kronrod: an interval
    whose |Kronrod - Gauss| exceeds its share of ``eps`` (by length) is halved, to a depth of
    len(stack_lo) - 2 halvings and at most PARTIAL_BUDGET intervals in all (then every interval
    left is taken as it is)."""
    span = hi_c - lo_c
    if span <= 0:
        return 0.0
    stack_lo[0] = lo_c
    stack_hi[0] = hi_c
    top = 1
    total = 0.0
    used = 0
    while top > 0:
        top -= 1
        used += 1
        left = stack_lo[top]
        right = stack_hi[top]
        part, err, _, _ = _kronrod(y, v, k, left, right, w0, m0, family, a, b, c, shift, kx, kw, gw,
                             stack_lo, stack_lo, stack_lo, stack_lo, -1)
        if not (err > eps * (right - left) / span) or top >= stack_lo.shape[0] - 2 \
                or used >= PARTIAL_BUDGET:
            total += part
        else:
            middle = 0.5 * (left + right)
            stack_lo[top] = middle
            stack_hi[top] = right
            stack_lo[top + 1] = left
            stack_hi[top + 1] = middle
            top += 2
    return total


@numba.njit(cache=True, parallel=True)
def integrate_rows(y, v, k, w0, m0, family, a, b, c, lo, hi, shift, tail, tol, max_cells, kx, kw,
                   gw, legendre, qs, zqs, out, store, edges_out, cum_out, tau_out, weight_out,
                   m_out, var_out):
    """Per row: adaptive quadrature nodes and weights, then every summary (see the module notes).

    The range [lo, hi] starts as INITIAL_CELLS equal cells, each integrated by the 15-point
    Gauss-Kronrod rule; while the sum of |Kronrod - Gauss| over the cells exceeds ``tol`` times
    the integral, the cell with the largest difference is halved (at most ``max_cells`` cells).

    out columns: the fixed ones (MU_MEAN ... QUAD_ERROR), then mu, new-study and tau quantiles
    (len(qs) each). With ``store``, the cells (sorted) and nodes are written to the *_out arrays;
    positions past a row's cells stay as they were.
    """
    n = y.shape[0]
    nq = qs.shape[0]
    cap = max_cells * NK
    for task in numba.prange((n + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        # scratch shared by the task's rows
        raw_tau = np.empty(cap)
        raw_dens = np.empty(cap)
        raw_m = np.empty(cap)
        raw_var = np.empty(cap)
        left = np.empty(max_cells)
        right = np.empty(max_cells)
        value = np.empty(max_cells)
        error = np.empty(max_cells)
        value_t = np.empty(max_cells)
        error_t = np.empty(max_cells)
        tau = np.empty(cap + 1)
        mass = np.empty(cap + 1)
        mm = np.empty(cap + 1)
        var = np.empty(cap + 1)
        cw = np.empty(cap + 1)
        cm = np.empty(cap + 1)
        cv = np.empty(cap + 1)
        ct = np.empty(cap + 1)
        sd_mu = np.empty(cap + 1)
        sd_new = np.empty(cap + 1)
        gw_c = np.empty(cap + 1)
        gm = np.empty(cap + 1)
        gs_mu = np.empty(cap + 1)
        gs_new = np.empty(cap + 1)
        edges = np.empty(max_cells + 1)
        cum = np.empty(max_cells + 1)
        stack_lo = np.empty(42)
        stack_hi = np.empty(42)
        for r in range(task * ROWS_PER_TASK, min(n, (task + 1) * ROWS_PER_TASK)):
            kr = k[r]
            yr = y[r]
            vr = v[r]
            sh = shift[r]
            start_cells = min(INITIAL_CELLS, max_cells)
            width = (hi[r] - lo[r]) / start_cells
            for ci in range(start_cells):
                left[ci] = lo[r] + ci * width
                right[ci] = hi[r] if ci == start_cells - 1 else lo[r] + (ci + 1) * width
                value[ci], error[ci], value_t[ci], error_t[ci] = _kronrod(
                    yr, vr, kr, left[ci], right[ci], w0, m0, family, a, b, c, sh, kx, kw, gw,
                    raw_tau, raw_dens, raw_m, raw_var, ci * NK)
            nc = start_cells
            while True:
                # both integrals (the density's and tau's mean's) to tol; the cell that adds most
                # to the two relative error estimates is halved
                total = tail[r]
                err_sum = 0.0
                total_t = 0.0
                err_sum_t = 0.0
                for ci in range(nc):
                    total += value[ci]
                    err_sum += error[ci]
                    total_t += value_t[ci]
                    err_sum_t += error_t[ci]
                rel = err_sum / total
                rel_t = err_sum_t / total_t if total_t > 0 else 0.0
                if not (rel > tol or rel_t > tol) or nc >= max_cells:
                    break
                worst = 0
                score_worst = -1.0
                for ci in range(nc):
                    score = error[ci] / total + (error_t[ci] / total_t if total_t > 0 else 0.0)
                    if score > score_worst:
                        worst = ci
                        score_worst = score
                middle = 0.5 * (left[worst] + right[worst])
                left[nc] = middle
                right[nc] = right[worst]
                right[worst] = middle
                value[worst], error[worst], value_t[worst], error_t[worst] = _kronrod(
                    yr, vr, kr, left[worst], middle, w0, m0, family, a, b, c, sh, kx, kw, gw,
                    raw_tau, raw_dens, raw_m, raw_var, worst * NK)
                value[nc], error[nc], value_t[nc], error_t[nc] = _kronrod(
                    yr, vr, kr, middle, right[nc], w0, m0, family, a, b, c, sh, kx, kw, gw,
                    raw_tau, raw_dens, raw_m, raw_var, nc * NK)
                nc += 1
            out[r, N_CELLS] = nc
            out[r, QUAD_ERROR] = max(rel, rel_t)   # NaN if either is
            # the cells in order of log tau, the node at tau = 0 (the lower tail) first
            order = np.argsort(left[:nc])
            nn = nc * NK + 1
            tau[0] = 0.0
            mass[0] = tail[r]
            cum[0] = tail[r]
            mm[0], var[0], _ = _moments(yr, vr, kr, 0.0, w0, m0)
            for i in range(nc):
                ci = order[i]
                half = 0.5 * (right[ci] - left[ci])
                edges[i] = left[ci]
                for g in range(NK):
                    j = 1 + i * NK + g
                    tau[j] = raw_tau[ci * NK + g]
                    mass[j] = half * kw[g] * raw_dens[ci * NK + g]
                    mm[j] = raw_m[ci * NK + g]
                    var[j] = raw_var[ci * NK + g]
                cum[i + 1] = cum[i] + value[ci]
            edges[nc] = hi[r]
            total = cum[nc]
            out[r, TOTAL] = total
            if math.isinf(w0):   # mu fixed: only the normaliser (the marginal likelihood) is wanted
                out[r, CUM0] = cum[0] / total
                continue
            vmin = math.inf
            for i in range(kr):
                vmin = min(vmin, vr[i])
            for j in range(nn):
                mass[j] /= total
            for i in range(nc + 1):
                cum[i] /= total
            if store:
                for i in range(nc + 1):
                    edges_out[r, i] = edges[i]
                    cum_out[r, i] = cum[i]
                for j in range(nn):
                    tau_out[r, j] = tau[j]
                    weight_out[r, j] = mass[j]
                    m_out[r, j] = mm[j]
                    var_out[r, j] = var[j]
            # the summaries' mixture: nodes indistinguishable from tau = 0 merged into it, empty
            # ones dropped; and the embedded 7-point Gauss rule's mixture (renormalised), where
            # the quantile searches start
            cw[0] = mass[0]
            cm[0] = mm[0]
            cv[0] = var[0]
            ct[0] = 0.0
            ncomp = 1
            tau_mean = 0.0
            gw_c[0] = mass[0]
            gm[0] = mm[0]
            gs_mu[0] = math.sqrt(var[0])
            gs_new[0] = gs_mu[0]
            ng = 1
            gauss_sum = mass[0]
            for i in range(nc):
                for g in range(NK):
                    j = 1 + i * NK + g
                    tau_mean += mass[j] * tau[j]
                    if tau[j] * tau[j] < MERGE_TAU2 * vmin:
                        cw[0] += mass[j]
                    elif mass[j] > DROP_WEIGHT:
                        cw[ncomp] = mass[j]
                        cm[ncomp] = mm[j]
                        cv[ncomp] = var[j]
                        ct[ncomp] = tau[j]
                        ncomp += 1
                    if gw[g] > 0:
                        wj = mass[j] * (gw[g] / kw[g])
                        gauss_sum += wj
                        gw_c[ng] = wj
                        gm[ng] = mm[j]
                        gs_mu[ng] = math.sqrt(var[j])
                        gs_new[ng] = math.sqrt(var[j] + tau[j] * tau[j])
                        ng += 1
            for j in range(ng):
                gw_c[j] /= gauss_sum
            mean = 0.0
            second = 0.0
            pb = 0.0
            pa = 0.0
            nb = 0.0
            na = 0.0
            for j in range(ncomp):
                sd_mu[j] = math.sqrt(cv[j])
                sd_new[j] = math.sqrt(cv[j] + ct[j] * ct[j])
                mean += cw[j] * cm[j]
                second += cw[j] * (cv[j] + cm[j] * cm[j])
                # one tail per component, on its small side (the other is 1 minus it, exactly
                # enough: a sum of tiny probabilities only arises from the small sides)
                t_mu = _ndtr(-abs(cm[j]) / sd_mu[j])
                t_new = _ndtr(-abs(cm[j]) / sd_new[j])
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
            # the posterior density of mu at 0 (Savage-Dickey: p(y | mu = 0) is p(y) times it
            # over the prior's), with the Kronrod and the embedded Gauss mixtures' difference
            dens = 0.0
            for j in range(ncomp):
                z = cm[j] / sd_mu[j]
                dens += cw[j] * math.exp(-0.5 * z * z) / sd_mu[j]
            dens_gauss = 0.0
            for j in range(ng):
                z = gm[j] / gs_mu[j]
                dens_gauss += gw_c[j] * math.exp(-0.5 * z * z) / gs_mu[j]
            out[r, LOG_DENSITY0] = math.log(dens) - LOG_SQRT_2PI if dens > 0 else -math.inf
            out[r, DENSITY0_ERROR] = abs(dens - dens_gauss) / dens if dens > 0 else math.inf
            # the quantile searches: brackets m -/+ 40 sd over the components, starts from the
            # normal with the mixture's mean and sd, reciprocals of the sds
            lo_mu = math.inf
            hi_mu = -math.inf
            lo_new = math.inf
            hi_new = -math.inf
            second_new = 0.0
            for j in range(ncomp):
                lo_mu = min(lo_mu, cm[j] - 40 * sd_mu[j])
                hi_mu = max(hi_mu, cm[j] + 40 * sd_mu[j])
                lo_new = min(lo_new, cm[j] - 40 * sd_new[j])
                hi_new = max(hi_new, cm[j] + 40 * sd_new[j])
                second_new += cw[j] * (sd_new[j] * sd_new[j] + cm[j] * cm[j])
                sd_mu[j] = 1.0 / sd_mu[j]
                sd_new[j] = 1.0 / sd_new[j]
            for j in range(ng):
                gs_mu[j] = 1.0 / gs_mu[j]
                gs_new[j] = 1.0 / gs_new[j]
            spread_new = math.sqrt(max(second_new - mean * mean, 0.0))
            for iq in range(nq):
                out[r, N_FIXED + iq] = _mixture_quantile(
                    cw, cm, sd_mu, ncomp, qs[iq], mean + out[r, MU_SD] * zqs[iq], gw_c, gm,
                    gs_mu, ng, lo_mu, hi_mu)
                out[r, N_FIXED + nq + iq] = _mixture_quantile(
                    cw, cm, sd_new, ncomp, qs[iq], mean + spread_new * zqs[iq], gw_c, gm,
                    gs_new, ng, lo_new, hi_new)
                out[r, N_FIXED + 2 * nq + iq] = _tau_quantile(
                    yr, vr, kr, w0, m0, family, a, b, c, sh, total, edges, cum, mass, nc, qs[iq],
                    kx, kw, gw, legendre, stack_lo, stack_hi)


@numba.njit(cache=True)
def _tau_quantile(y, v, k, w0, m0, family, a, b, c, shift, total, edges, cum, mass, nc, q, kx,
                  kw, gw, legendre, stack_lo, stack_hi):
    """The q-quantile of tau: the cell holding it; a start from the cell's Legendre expansion
    (coefficients from its 15 nodes: ``legendre`` (n, 15) holds (2n + 1)/2 P_n(node)), solved
    for q; then Newton iterations on the adaptive integral from the cell's left edge (usually
    one, to confirm). NaN if it lies in the prior-shaped lower tail (below the quadrature range;
    the caller solves it with the prior's CDF)."""
    if q < cum[0]:
        return math.nan
    cidx = 0
    while cidx < nc - 1 and cum[cidx + 1] < q:
        cidx += 1
    a_c = edges[cidx]
    lo_x = a_c
    hi_x = edges[cidx + 1]
    span = max(cum[cidx + 1] - cum[cidx], 1e-300)
    start = 2.0 * min(max((q - cum[cidx]) / span, 0.0), 1.0) - 1.0
    coef = np.zeros(legendre.shape[0])
    for n in range(legendre.shape[0]):
        for g in range(NK):
            coef[n] += legendre[n, g] * mass[1 + cidx * NK + g]
    t = _cell_cdf_root(coef, q - cum[cidx], start)
    x = a_c + 0.5 * (hi_x - a_c) * (t + 1.0)
    if not (x > lo_x and x < hi_x):
        x = 0.5 * (lo_x + hi_x)
    for _ in range(100):
        part = _partial(y, v, k, a_c, x, w0, m0, family, a, b, c, shift, kx, kw, gw,
                        TAU_Q_EPS * total, stack_lo, stack_hi)
        f = cum[cidx] + part / total - q
        deriv = math.exp(_log_density(y, v, k, x, w0, m0, family, a, b, c) - shift) / total
        if f < 0:
            lo_x = x
        elif f > 0:
            hi_x = x
        else:
            break
        new = x - f / deriv if deriv > 0 else 0.5 * (lo_x + hi_x)
        if not (new > lo_x and new < hi_x):
            new = 0.5 * (lo_x + hi_x)
        if abs(new - x) <= TAU_Q_STEP * max(1.0, abs(x)):
            x = new
            break
        x = new
    return math.exp(x)


@numba.njit(cache=True)
def _cell_cdf_root(c, target, t):
    """Solve sum_n c_n I_n(t) = target for t in [-1, 1], where I_n(t) is the integral of the
    Legendre polynomial P_n from -1 to t: safeguarded Newton iterations from ``t``."""
    lo = -1.0
    hi = 1.0
    nleg = c.shape[0]
    for _ in range(60):
        p_prev = 1.0          # P_0
        p = t                 # P_1
        value = c[0] * (t + 1.0)
        slope = c[0]
        for n in range(1, nleg):
            p_next = ((2 * n + 1) * t * p - n * p_prev) / (n + 1)
            value += c[n] * (p_next - p_prev) / (2 * n + 1)
            slope += c[n] * p
            p_prev = p
            p = p_next
        f = value - target
        if f < 0:
            lo = t
        else:
            hi = t
        new = t - f / slope if slope > 0 else 0.5 * (lo + hi)
        if not (new > lo and new < hi):
            new = 0.5 * (lo + hi)
        if abs(new - t) <= 1e-13:
            return new
        t = new
    return t
