# Reference values for tau^2 estimators, Hartung-Knapp-Sidik-Jonkman intervals, Q-profile
# confidence intervals and prediction intervals, printed by metafor.
#
# Run from the repository root:
#     Rscript tests/reference/heterogeneity_reference.R > tests/reference/heterogeneity_values.json
# Produced with R 4.2.2, metafor 3.8-1 (Debian bookworm packages r-base-core, r-cran-metafor).
# Inputs are the yi/vi of tests/reference/metafor_values.json. Tests read the JSON, never R.
# Root-finding and Fisher-scoring tolerances are tightened to 1e-12 (metafor's defaults,
# tol = .Machine$double.eps^0.25 and threshold = 1e-5, stop near 1e-5 relative).
suppressPackageStartupMessages({library(metafor); library(jsonlite)})

num <- function(x) as.numeric(x)
cases <- fromJSON("tests/reference/metafor_values.json", simplifyVector = TRUE)$cases
out <- list()
for (name in c("bcg_rr", "crins_or", "nielweise_or", "normand_md", "fleiss_or")) {
  c <- cases[[name]]
  yi <- num(c$yi); vi <- num(c$vi)
  rec <- list(name = name, yi = yi, vi = vi)
  for (method in c("DL", "REML", "PM")) {
    tight <- list(tol = 1e-12, threshold = 1e-12, maxiter = 10000, tau2.max = 1e6)
    res <- rma(yi, vi, method = method, control = tight)
    ci <- confint(res, control = list(tol = 1e-12, tau2.max = 1e6))$random
    hk <- rma(yi, vi, method = method, test = "knha", control = tight)
    pr <- predict(res)
    prk <- predict(hk)
    k <- res$k
    rec[[method]] <- list(
      call = sprintf("rma(yi, vi, method='%s', control=list(tol=1e-12, threshold=1e-12, maxiter=10000, tau2.max=1e6)); confint(res, control=list(tol=1e-12, tau2.max=1e6)); predict(res); rma(..., test='knha'); predict() of the knha fit", method),
      mu = num(res$beta), se = num(res$se), ci_low = num(res$ci.lb), ci_high = num(res$ci.ub),
      tau2 = num(res$tau2), i2 = num(res$I2), q = num(res$QE),
      tau2_ci_low = num(ci["tau^2", "ci.lb"]), tau2_ci_high = num(ci["tau^2", "ci.ub"]),
      i2_ci_low = num(ci["I^2(%)", "ci.lb"]), i2_ci_high = num(ci["I^2(%)", "ci.ub"]),
      pi_z = c(num(pr$pi.lb), num(pr$pi.ub)),
      pi_t = if (k < 3) c(NA, NA) else
        num(res$beta) + c(-1, 1) * qt(0.975, k - 2) * sqrt(res$tau2 + num(res$se)^2),
      hksj_se = num(hk$se), hksj_ci_low = num(hk$ci.lb), hksj_ci_high = num(hk$ci.ub),
      hksj_p = num(hk$pval),
      hksj_pi = c(num(prk$pi.lb), num(prk$pi.ub)))
  }
  out[[name]] <- rec
}
cat(toJSON(list(versions = list(R = R.version.string,
                                metafor = as.character(packageVersion("metafor"))),
                cases = out), digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"))
cat("\n")
