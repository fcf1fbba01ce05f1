# Reference for the hierarchical multinomial model (bayes_pip/engines/multinomial_nuts.py),
# written independently in Stan and sampled by rstan: the bundled attachment categories
# (data/pip/categories.csv), prior set halfnormal-0.5 as for an OR outcome (each pooled log OR
# N(0, 4^2), tau half-normal(0.5), comparator logits N(0, 10^2)); reference category
# disorganised. Prints posterior quantiles of d, tau and the per-category RR of the intervention
# at the average comparator distribution, with the MCSE of each mean and the effective sample size.
# Run: Rscript tests/reference/multinomial_reference.R > tests/reference/multinomial_reference.txt
suppressMessages(library(rstan))
code <- "
data {
  int K; int T; int C; int ref;
  int counts[K, T, C];
  int present[K, T];
  int reported[K, C];
  real mu_sd; real tau_scale; real base_sd;
}
transformed data {
  matrix[T - 1, T - 1] LA = cholesky_decompose(rep_matrix(0.5, T - 1, T - 1)
                                                + diag_matrix(rep_vector(0.5, T - 1)));
  matrix[C - 1, C - 1] LR = cholesky_decompose(rep_matrix(0.5, C - 1, C - 1)
                                                + diag_matrix(rep_vector(0.5, C - 1)));
}
parameters {
  matrix[K, C - 1] b;
  matrix[T - 1, C - 1] d;
  real<lower=0> tau;
  matrix[T - 1, C - 1] z[K];
}
model {
  to_vector(b) ~ normal(0, base_sd);
  to_vector(d) ~ normal(0, mu_sd);
  tau ~ normal(0, tau_scale);
  for (k in 1:K) {
    matrix[T - 1, C - 1] delta = d + tau * LA * z[k] * LR';
    to_vector(z[k]) ~ std_normal();
    for (t in 1:T) {
      if (present[k, t]) {
        vector[C] eta;
        int j = 1;
        for (c in 1:C) {
          if (c == ref) { eta[c] = 0; }
          else { eta[c] = b[k, j] + (t > 1 ? delta[t - 1, j] : 0); j += 1; }
          if (!reported[k, c]) eta[c] = -1e4;
        }
        target += dot_product(to_vector(counts[k, t]), log_softmax(eta));
      }
    }
  }
}
generated quantities {
  vector[C] rr;
  {
    vector[C] p0 = rep_vector(0, C);
    vector[C] p1 = rep_vector(0, C);
    for (k in 1:K) {
      vector[C] e0; vector[C] e1; int j = 1;
      for (c in 1:C) {
        if (c == ref) { e0[c] = 0; e1[c] = 0; }
        else { e0[c] = b[k, j]; e1[c] = b[k, j] + d[1, j]; j += 1; }
      }
      p0 += softmax(e0) / K; p1 += softmax(e1) / K;
    }
    rr = p1 ./ p0;
  }
}
"
# categories: secure, avoidant, resistant, disorganised (ref = 4); treatments: comparator,
# intervention, PPI; studies: Cicchetti 1999a (no PPI arm), Cicchetti 2006b
counts <- array(0L, dim = c(2, 3, 4))
counts[1, 1, ] <- c(9L, 19L, 4L, 22L);  counts[1, 2, ] <- c(31L, 8L, 2L, 5L)
counts[2, 1, ] <- c(1L, 10L, 1L, 42L);  counts[2, 2, ] <- c(17L, 2L, 0L, 9L)
counts[2, 3, ] <- c(12L, 0L, 0L, 10L)
present <- matrix(c(1L, 1L, 0L, 1L, 1L, 1L), 2, 3, byrow = TRUE)
reported <- matrix(1L, 2, 4)
data <- list(K = 2, T = 3, C = 4, ref = 4, counts = counts, present = present,
             reported = reported, mu_sd = 4, tau_scale = 0.5, base_sd = 10)
# Debian ships BH as a virtual package: Boost headers are the system ones
if (!file.exists(rstan_options("boost_lib"))) rstan_options(boost_lib = "/usr/include")
model <- stan_model(model_code = code)
fit <- sampling(model, data = data, chains = 4, iter = 22000, warmup = 2000, seed = 20150603,
                control = list(adapt_delta = 0.99), refresh = 0)
draws <- as.matrix(fit, pars = c("d", "tau", "rr"))
sp <- get_sampler_params(fit, inc_warmup = FALSE)
cat("divergences", sum(sapply(sp, function(x) sum(x[, "divergent__"]))), "\n")
cat("max_rhat", max(summary(fit, pars = c("d", "tau", "rr"))$summary[, "Rhat"]), "\n")
s <- summary(fit, pars = c("d", "tau", "rr"), probs = c(0.05, 0.5, 0.95))$summary
cat("name mean se_mean sd q05 q50 q95 n_eff\n")
for (name in rownames(s)) {
  cat(sprintf("%s %.6f %.6f %.6f %.6f %.6f %.6f %.0f\n", name, s[name, "mean"],
              s[name, "se_mean"], s[name, "sd"], s[name, "5%"], s[name, "50%"],
              s[name, "95%"], s[name, "n_eff"]))
}
