# Reference values for bayes_pip's effect sizes and classical pooling, printed by metafor.
#
# Run from the repository root:
#     Rscript tests/reference/metafor_reference.R > tests/reference/metafor_values.json
# Produced with R 4.2.2, metafor 3.8-1, metadat (Debian bookworm packages r-base-core, r-cran-metafor).
# Tests read the JSON; they never need R.
suppressPackageStartupMessages({library(metafor); library(jsonlite)})

num <- function(x) as.numeric(x)
# prediction interval: Higgins, Thompson & Spiegelhalter 2009 (t with k - 2 df), as RevMan 5.4 and
# the Cochrane Handbook; metafor 3.8's predict() gives the z-based interval, printed beside it
pi_t <- function(res) if (res$k < 3) c(NA, NA) else
  num(res$beta) + c(-1, 1) * qt(0.975, res$k - 2) * sqrt(res$tau2 + num(res$se)^2)
dl_record <- function(res) list(
  mu = num(res$beta), se = num(res$se), ci_low = num(res$ci.lb), ci_high = num(res$ci.ub),
  z = num(res$zval), p = num(res$pval), tau2 = num(res$tau2), q = num(res$QE),
  i2 = num(res$I2), k = res$k, pi_t = pi_t(res),
  pi_z = c(num(predict(res)$pi.lb), num(predict(res)$pi.ub)))
fixed_record <- function(res) list(
  mu = num(res$beta), se = num(res$se), ci_low = num(res$ci.lb), ci_high = num(res$ci.ub),
  z = num(res$zval), p = num(res$pval), q = num(res$QE), i2 = num(res$I2), k = res$k)

binary_case <- function(name, study, ai, n1i, ci, n2i, measure) {
  # RevMan: studies with no events (or only events) in both arms are excluded; 0.5 is added to
  # every cell of a study with a zero cell (metafor to="only0", the default).
  drop <- (ai == 0 & ci == 0) | (ai == n1i & ci == n2i)
  es <- escalc(measure = measure, ai = ai, n1i = n1i, ci = ci, n2i = n2i, add = 1/2, to = "only0",
               subset = !drop)
  dl <- rma(yi, vi, data = es, method = "DL")
  ee <- rma(yi, vi, data = es, method = "EE")
  mh <- rma.mh(measure = measure, ai = ai, n1i = n1i, ci = ci, n2i = n2i, subset = !drop)
  # RevMan 5 "M-H, Random": DL tau^2 from Q around the M-H estimate, then IV weights 1/(v + tau^2)
  w <- 1 / es$vi
  tau2_mh <- max(0, (mh$QE - (mh$k - 1)) / (sum(w) - sum(w^2) / sum(w)))
  mh_random <- rma(yi, vi, data = es, tau2 = tau2_mh, method = "DL")
  list(name = name, measure = measure,
       call = sprintf('escalc(measure="%s", add=1/2, to="only0", subset=!drop); rma(yi, vi, method="DL"); rma.mh(measure="%s")', measure, measure),
       study = study, ai = ai, n1i = n1i, ci = ci, n2i = n2i,
       excluded = as.list(study[drop]), yi = num(es$yi), vi = num(es$vi),
       dl = dl_record(dl), ee = fixed_record(ee),
       mh = list(mu = num(mh$beta), se = num(mh$se), ci_low = num(mh$ci.lb), ci_high = num(mh$ci.ub),
                 z = num(mh$zval), q = num(mh$QE), i2 = num(mh$I2)),
       mh_random = c(dl_record(mh_random), list(q_mh = num(mh$QE))))
}

cases <- list()

# 1. BCG vaccine (Colditz et al. 1994; metadat dat.bcg): 13 trials, strong heterogeneity
b <- dat.bcg
cases$bcg_rr <- binary_case("dat.bcg", paste(b$author, b$year), b$tpos, b$tpos + b$tneg,
                            b$cpos, b$cpos + b$cneg, "RR")
cases$bcg_or <- binary_case("dat.bcg", paste(b$author, b$year), b$tpos, b$tpos + b$tneg,
                            b$cpos, b$cpos + b$cneg, "OR")

# 2. Nielweise 2007 (metadat dat.nielweise2007): rare events, zero cells, one double-zero study
n <- dat.nielweise2007
cases$nielweise_rr <- binary_case("dat.nielweise2007", paste(n$author, n$year), n$ai, n$n1i, n$ci, n$n2i, "RR")
cases$nielweise_or <- binary_case("dat.nielweise2007", paste(n$author, n$year), n$ai, n$n1i, n$ci, n$n2i, "OR")

# 3. Crins et al. 2014 (bayesmeta JSS paper Table 3): six paediatric liver transplant trials
crins <- list(study = c("Heffron 2003", "Gibelli 2004", "Schuller 2005", "Ganschow 2005", "Spada 2006", "Gras 2008"),
              ai = c(14, 16, 3, 9, 4, 0), n1i = c(61, 28, 18, 54, 36, 50),
              ci = c(15, 19, 8, 29, 11, 3), n2i = c(20, 28, 12, 54, 36, 34))
cases$crins_or <- binary_case("Crins 2014", crins$study, crins$ai, crins$n1i, crins$ci, crins$n2i, "OR")
cases$crins_rr <- binary_case("Crins 2014", crins$study, crins$ai, crins$n1i, crins$ci, crins$n2i, "RR")

# 4. Fleiss 1993 aspirin after myocardial infarction (R meta package's Fleiss93; RevMan fixture)
f <- list(study = c("MRC-1", "CDP", "MRC-2", "GASP", "PARIS", "AMIS", "ISIS-2"),
          ai = c(49, 44, 102, 32, 85, 246, 1570), n1i = c(615, 758, 832, 317, 810, 2267, 8587),
          ci = c(67, 64, 126, 38, 52, 219, 1720), n2i = c(624, 771, 850, 309, 406, 2257, 8600))
cases$fleiss_or <- binary_case("Fleiss 1993", f$study, f$ai, f$n1i, f$ci, f$n2i, "OR")

# 5. Normand 1999 (metadat dat.normand1999): length of stay, mean difference (continuous)
nd <- dat.normand1999
es <- escalc(measure = "MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nd)
cases$normand_md <- list(name = "dat.normand1999", measure = "MD",
  call = 'escalc(measure="MD", m1i, sd1i, n1i, m2i, sd2i, n2i); rma(yi, vi, method="DL")',
  study = nd$source, m1i = nd$m1i, sd1i = nd$sd1i, n1i = nd$n1i, m2i = nd$m2i, sd2i = nd$sd2i, n2i = nd$n2i,
  yi = num(es$yi), vi = num(es$vi), dl = dl_record(rma(yi, vi, data = es, method = "DL")),
  ee = fixed_record(rma(yi, vi, data = es, method = "EE")))

# 6. Chen & Peace SMD data (statsmodels test_meta.py): RevMan 5 Hedges' g (approximate J), pooled by metafor
cp <- list(study = c("Carroll", "Grant", "Peck", "Donat", "Stewart", "Young"),
           m1i = c(94, 98, 98, 94, 98, 96), sd1i = c(22, 21, 28, 19, 21, 21), n1i = c(60, 65, 40, 200, 50, 85),
           m2i = c(92, 92, 88, 82, 88, 92), sd2i = c(20, 22, 26, 17, 22, 22), n2i = c(60, 65, 40, 200, 45, 85))
N <- cp$n1i + cp$n2i
s <- sqrt(((cp$n1i - 1) * cp$sd1i^2 + (cp$n2i - 1) * cp$sd2i^2) / (N - 2))
g <- (cp$m1i - cp$m2i) / s * (1 - 3 / (4 * N - 9))
vg <- N / (cp$n1i * cp$n2i) + g^2 / (2 * (N - 3.94))
cases$chenpeace_smd <- c(cp, list(name = "Chen & Peace", measure = "SMD",
  call = 'RevMan 5 Hedges g (Deeks & Higgins 2010) in R; rma(yi, vi, method="DL")',
  yi = g, vi = vg, dl = dl_record(rma(g, vg, method = "DL")), ee = fixed_record(rma(g, vg, method = "EE"))))

# 7. A single study (k = 1): DL reduces to the study itself, tau^2 = 0
cases$single_rr <- binary_case("Crins 2014, Heffron only", crins$study[1], crins$ai[1], crins$n1i[1],
                               crins$ci[1], crins$n2i[1], "RR")

# 8. Two studies (k = 2)
cases$two_or <- binary_case("Crins 2014, Heffron and Spada", crins$study[c(1, 5)], crins$ai[c(1, 5)],
                            crins$n1i[c(1, 5)], crins$ci[c(1, 5)], crins$n2i[c(1, 5)], "OR")

# 9. Binomial-normal GLMM (frequentist counterpart of the binomial-normal engine):
#    rma.glmm(measure="OR", model="UM.FS", method="ML") (needs lme4)
glmm <- function(name, ai, n1i, ci, n2i) {
  r <- rma.glmm(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, model = "UM.FS", method = "ML")
  list(name = name, call = 'rma.glmm(measure="OR", model="UM.FS", method="ML")',
       ai = ai, n1i = n1i, ci = ci, n2i = n2i,
       mu = num(r$beta), se = num(r$se), tau2 = num(r$tau2))
}
glmm_cases <- list(
  crins_or = glmm("Crins 2014", crins$ai, crins$n1i, crins$ci, crins$n2i),
  bcg_or = glmm("dat.bcg", b$tpos, b$tpos + b$tneg, b$cpos, b$cpos + b$cneg))

out <- list(software = list(R = R.version.string, metafor = as.character(packageVersion("metafor"))),
            cases = cases, glmm = glmm_cases)
cat(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"))
cat("\n")
