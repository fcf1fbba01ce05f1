# Reference values for meta-regression and subgroup analysis, printed by metafor.
#
# Run from the repository root:
#     Rscript tests/reference/metareg_reference.R > tests/reference/metareg_values.json
# Produced with R 4.2.2, metafor 3.8-1 (Debian bookworm packages r-base-core, r-cran-metafor).
# Data (metadat, bundled with metafor):
# - dat.bcg: 13 BCG vaccine trials, log RR from escalc(measure = "RR"); continuous moderator
#   ablat (absolute latitude), categorical moderator alloc (random / alternate / systematic).
# - dat.bangertdrowns2004: 48 writing-to-learn studies, SMD yi and vi as printed in the data set;
#   continuous moderator length (treatment length in weeks; 2 studies missing it), categorical
#   moderator grade (1-4, taken as a factor).
# Tests read the JSON, never R.
suppressPackageStartupMessages({library(metafor); library(jsonlite)})

# Iterative estimators (REML, PM) run to convergence, not to metafor's default 1e-5
tight <- list(tol = 1e-12, threshold = 1e-12, maxiter = 10000, tau2.max = 1e6)

num <- function(x) unname(as.numeric(x))
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
bcg$study <- paste(bcg$author, bcg$year)
bd <- dat.bangertdrowns2004
bd$study <- paste(bd$author, bd$year)
bd$grade <- as.character(bd$grade)
sets <- list(bcg = list(data = bcg, continuous = "ablat", categorical = "alloc"),
             bangertdrowns = list(data = bd, continuous = "length", categorical = "grade"))

regression <- function(fit, base) {
  list(names = rownames(fit$beta), estimate = num(fit$beta), se = num(fit$se),
       ci_low = num(fit$ci.lb), ci_high = num(fit$ci.ub), z = num(fit$zval), p = num(fit$pval),
       tau2 = num(fit$tau2), qm = num(fit$QM), qm_df = num(fit$m), qm_p = num(fit$QMp),
       qe = num(fit$QE), qe_df = num(fit$k - fit$p), qe_p = num(fit$QEp), k = num(fit$k),
       r2 = num(fit$R2), tau2_without = num(base$tau2),
       # a prediction at chosen moderator values, from the first moderator only
       i2 = num(fit$I2))
}

out <- list()
for (name in names(sets)) {
  s <- sets[[name]]
  d <- s$data
  res <- list()
  for (moderator in c(s$continuous, s$categorical)) {
    keep <- !is.na(d[[moderator]])
    dd <- d[keep, ]
    x <- dd[[moderator]]
    fits <- list()
    for (method in c("DL", "REML", "PM")) {
      f <- if (moderator == s$categorical) rma(yi, vi, mods = ~ factor(x), data = dd, method = method, control = tight)
           else rma(yi, vi, mods = ~ x, data = dd, method = method, control = tight)
      base <- rma(yi, vi, data = dd, method = method, control = tight)
      fits[[method]] <- regression(f, base)
    }
    # Knapp-Hartung adjustment (t tests on k - p df, F test for QM), REML
    kh <- if (moderator == s$categorical)
            rma(yi, vi, mods = ~ factor(x), data = dd, method = "REML", test = "knha", control = tight)
          else rma(yi, vi, mods = ~ x, data = dd, method = "REML", test = "knha", control = tight)
    fits[["REML_knha"]] <- c(regression(kh, rma(yi, vi, data = dd, method = "REML", control = tight)),
                             list(qm_df2 = num(kh$QMdf[2])))
    entry <- list(studies = dd$study, yi = num(dd$yi), vi = num(dd$vi),
                  values = if (moderator == s$categorical) as.character(x) else num(x),
                  regression = fits)
    if (moderator == s$continuous) {
      # predicted effect at two chosen moderator values (DL and REML fits)
      at <- as.numeric(quantile(x, c(0.25, 0.75), type = 1))
      pr <- list()
      for (method in c("DL", "REML")) {
        f <- rma(yi, vi, mods = ~ x, data = dd, method = method, control = tight)
        p <- predict(f, newmods = at)
        pr[[method]] <- list(at = at, pred = num(p$pred), se = num(p$se), ci_low = num(p$ci.lb),
                             ci_high = num(p$ci.ub), pi_low = num(p$pi.lb), pi_high = num(p$pi.ub))
      }
      entry$predict <- pr
    } else {
      # test for subgroup differences: separate tau^2 per subgroup (RevMan), pooled by a
      # fixed-effect model on the subgroup estimates; and a common tau^2 (mixed-effects model)
      sub <- list()
      for (method in c("DL", "REML")) {
        levels <- sort(unique(x))
        groups <- lapply(levels, function(l) rma(yi, vi, data = dd[x == l, ], method = method, control = tight))
        est <- sapply(groups, function(g) g$b[1]); se <- sapply(groups, function(g) g$se)
        between <- rma(est, sei = se, method = "FE")
        common <- rma(yi, vi, mods = ~ factor(x), data = dd, method = method, control = tight)
        sub[[method]] <- list(levels = levels, k = sapply(groups, function(g) g$k),
                              estimate = num(est), se = num(se),
                              ci_low = sapply(groups, function(g) num(g$ci.lb)),
                              ci_high = sapply(groups, function(g) num(g$ci.ub)),
                              tau2 = sapply(groups, function(g) num(g$tau2)),
                              q_between = num(between$QE), df_between = length(levels) - 1,
                              p_between = num(between$QEp),
                              common_tau2 = num(common$tau2), common_q_between = num(common$QM),
                              common_p_between = num(common$QMp))
      }
      entry$subgroups <- sub
    }
    res[[moderator]] <- entry
  }
  # two moderators at once
  dd <- d[!is.na(d[[s$continuous]]), ]
  x1 <- dd[[s$continuous]]; x2 <- dd[[s$categorical]]
  two <- rma(yi, vi, mods = ~ x1 + factor(x2), data = dd, method = "REML", control = tight)
  res$both <- list(moderators = c(s$continuous, s$categorical), yi = num(dd$yi), vi = num(dd$vi),
                   values = list(num(x1), as.character(x2)),
                   regression = list(REML = regression(two, rma(yi, vi, data = dd, method = "REML", control = tight))))
  out[[name]] <- res
}
out$versions <- list(R = R.version.string, metafor = as.character(packageVersion("metafor")))
cat(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "\n")
