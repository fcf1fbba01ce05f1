# Reference values for the binomial-normal engine on rare events (tests/test_pymc.py):
# metafor's rma.glmm (unconditional model with fixed study effects, UM.FS) on the deaths of
# dat.collins1985a, and the data it used. Run: Rscript tests/reference/rare_events_glmm.R
# Printed with R 4.2.2 and metafor 3.8-1 (Debian r-base-core, r-cran-metafor).
library(metafor)
d <- dat.collins1985a
keep <- !is.na(d$d.xti) & !is.na(d$d.xci)
d <- d[keep, ]
fit <- rma.glmm(measure = "OR", ai = d.xti, n1i = nti, ci = d.xci, n2i = nci, data = d,
                model = "UM.FS")
num <- function(x) formatC(x, digits = 15, format = "g")
vec <- function(x) paste0("[", paste(x, collapse = ", "), "]")
cat("{\n")
cat('  "call": "rma.glmm(measure=\\"OR\\", ai=d.xti, n1i=nti, ci=d.xci, n2i=nci, data=dat.collins1985a (rows with death counts), model=\\"UM.FS\\")",\n')
cat('  "versions": "', R.version.string, ', metafor ', as.character(packageVersion("metafor")), '",\n', sep = "")
cat('  "trial": [', paste0('"', d$trial, '"', collapse = ", "), "],\n", sep = "")
cat('  "events_t": ', vec(d$d.xti), ",\n", sep = "")
cat('  "n_t": ', vec(d$nti), ",\n", sep = "")
cat('  "events_c": ', vec(d$d.xci), ",\n", sep = "")
cat('  "n_c": ', vec(d$nci), ",\n", sep = "")
cat('  "log_or": ', num(coef(fit)), ",\n", sep = "")
cat('  "se": ', num(fit$se), ",\n", sep = "")
cat('  "ci_low": ', num(fit$ci.lb), ",\n", sep = "")
cat('  "ci_high": ', num(fit$ci.ub), ",\n", sep = "")
cat('  "tau2": ', num(fit$tau2), "\n", sep = "")
cat("}\n")
