# Reference values for leave-one-out, influence diagnostics and Egger's test, printed by metafor.
#
# Run from the repository root:
#     Rscript tests/reference/robustness_reference.R > tests/reference/robustness_values.json
# Produced with R 4.2.2, metafor 3.8-1 (Debian bookworm packages r-base-core, r-cran-metafor).
# Inputs are the yi/vi of tests/reference/metafor_values.json (escalc as printed there), so the
# effect sizes are exactly those the other reference tests use. Tests read the JSON, never R.
suppressPackageStartupMessages({library(metafor); library(jsonlite)})

num <- function(x) as.numeric(x)
cases <- fromJSON("tests/reference/metafor_values.json", simplifyVector = TRUE)$cases
out <- list()
for (name in c("bcg_rr", "crins_or", "nielweise_or", "fleiss_or")) {
  c <- cases[[name]]
  yi <- num(c$yi); vi <- num(c$vi)
  res <- rma(yi, vi, method = "DL")
  l1o <- leave1out(res)
  inf <- influence(res)
  rec <- list(
    name = name, yi = yi, vi = vi,
    call = "res <- rma(yi, vi, method='DL'); leave1out(res); influence(res)",
    leave1out = list(estimate = num(l1o$estimate), se = num(l1o$se), zval = num(l1o$zval),
                     pval = num(l1o$pval), ci_low = num(l1o$ci.lb), ci_high = num(l1o$ci.ub),
                     Q = num(l1o$Q), Qp = num(l1o$Qp), tau2 = num(l1o$tau2), I2 = num(l1o$I2)),
    influence = list(rstudent = num(inf$inf$rstudent), dffits = num(inf$inf$dffits),
                     cook_d = num(inf$inf$cook.d), cov_r = num(inf$inf$cov.r),
                     tau2_del = num(inf$inf$tau2.del), QE_del = num(inf$inf$QE.del),
                     hat = num(inf$inf$hat), weight = num(inf$inf$weight),
                     dfbs = num(inf$dfbs$intrcpt), is_infl = as.logical(inf$is.infl)))
  if (length(yi) >= 10) {
    eg <- regtest(res, model = "lm", predictor = "sei")
    rec$egger <- list(call = "regtest(res, model='lm', predictor='sei')",
                      t = num(eg$zval), p = num(eg$pval), df = num(eg$dfs),
                      limit = num(eg$est), limit_ci_low = num(eg$ci.lb),
                      limit_ci_high = num(eg$ci.ub))
  }
  out[[name]] <- rec
}
cat(toJSON(list(versions = list(R = R.version.string,
                                metafor = as.character(packageVersion("metafor"))),
                cases = out), digits = NA, auto_unbox = TRUE, pretty = TRUE))
cat("\n")
