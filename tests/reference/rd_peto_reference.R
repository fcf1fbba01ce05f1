# Reference values for the risk difference and Peto's odds ratio, printed by metafor.
#
# Run from the repository root:
#     Rscript tests/reference/rd_peto_reference.R > tests/reference/rd_peto_values.json
# Produced with R 4.2.2, metafor 3.8-1 (Debian bookworm packages r-base-core, r-cran-metafor).
# Data: Crins et al. 2014 (six trials; bayesmeta JSS paper Table 3; one trial with a zero cell),
# dat.egger2001 (magnesium after myocardial infarction: the classic Peto example; metadat) and
# dat.bcg (metadat). Tests read the JSON, never R.
suppressPackageStartupMessages({library(metafor); library(jsonlite)})

num <- function(x) as.numeric(x)
sets <- list(
  crins = list(study = c("Heffron 2003", "Gibelli 2004", "Schuller 2005", "Ganschow 2005",
                         "Spada 2006", "Gras 2008"),
               ai = c(14, 16, 3, 9, 4, 0), n1i = c(61, 28, 18, 54, 36, 50),
               ci = c(15, 19, 8, 29, 11, 3), n2i = c(20, 28, 12, 54, 36, 34)),
  magnesium = with(dat.egger2001, list(study = paste(study, year), ai = ai, n1i = n1i, ci = ci,
                                       n2i = n2i)),
  bcg = with(dat.bcg, list(study = paste(author, year), ai = tpos, n1i = tpos + tneg, ci = cpos,
                           n2i = cpos + cneg)))
out <- list()
for (name in names(sets)) {
  d <- sets[[name]]
  rd <- escalc(measure = "RD", ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i)
  dl <- rma(rd$yi, rd$vi, method = "DL")
  fe <- rma(rd$yi, rd$vi, method = "EE")
  mh <- rma.mh(measure = "RD", ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i)
  # add = 0: Peto's method needs no zero-cell correction; rma.peto pools the uncorrected values
  # (escalc's default adds 0.5 to a study with a zero cell, for display only)
  pe <- escalc(measure = "PETO", ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i, add = 0)
  peto <- rma.peto(ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i)
  pooled <- function(r) list(estimate = num(r$beta), se = num(r$se), ci_low = num(r$ci.lb),
                             ci_high = num(r$ci.ub), z = num(r$zval), p = num(r$pval),
                             Q = num(r$QE), tau2 = num(r$tau2), I2 = num(r$I2))
  out[[name]] <- list(
    study = d$study, ai = d$ai, n1i = d$n1i, ci = d$ci, n2i = d$n2i,
    rd = list(call = "escalc(measure='RD', ai, n1i, ci, n2i)", yi = num(rd$yi), vi = num(rd$vi)),
    rd_dl = c(list(call = "rma(yi, vi, method='DL') on the RD escalc"), pooled(dl)),
    rd_iv_fixed = c(list(call = "rma(yi, vi, method='EE') on the RD escalc"), pooled(fe)),
    rd_mh = c(list(call = "rma.mh(measure='RD', ai, n1i, ci, n2i)"), pooled(mh)),
    peto = list(call = "escalc(measure='PETO', ai, n1i, ci, n2i, add=0)", yi = num(pe$yi),
                vi = num(pe$vi)),
    peto_pooled = c(list(call = "rma.peto(ai, n1i, ci, n2i) (log OR scale)"), pooled(peto)))
}
cat(toJSON(list(versions = list(R = R.version.string,
                                metafor = as.character(packageVersion("metafor"))),
                cases = out), digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"))
cat("\n")
