"""Normal-normal meta-regression sampled by NUTS: the regression of the `pymc` engine
(:meth:`bayes_pip.engines.normal_nuts.NormalNormalNUTS.regress`).

y_i ~ N(x_i' beta, v_i + tau^2) with the prior set's tau prior and independent normal (or flat)
coefficient priors (:func:`bayes_pip.engines.pymc_models.meta_regression_model`), compiled by
nutpie and sampled with the convergence gate every fit passes."""

from __future__ import annotations

import numpy as np

from bayes_pip.engines.draws import DrawQueries
from bayes_pip.errors import InputError


def sample_regression(payloads, columns, prior, coefficients, seed, settings, name: str):
    """(RegressionDraws, diagnostics) of the meta-regression of one payload (NormalEffects with
    its design matrix X); ``name`` says what is fitted, in messages."""
    import nutpie

    from bayes_pip.engines import mcmc
    from bayes_pip.engines.base import SamplerSettings
    from bayes_pip.engines.diagnostics import gate
    from bayes_pip.engines.pymc_models import meta_regression_model, quiet_imports
    from bayes_pip.errors import ConvergenceError

    if len(payloads) > 1:
        raise InputError(f"{name}: the outcome is analysed on {len(payloads)} reconstructed "
                         "tables; use --engine exact (which averages over them)")
    (data,) = payloads
    quiet_imports()
    settings = settings or SamplerSettings()
    target = settings.target_accept or 0.99   # 0.95 left 2 divergences in 8,000 draws on dat.bcg
    model = meta_regression_model(data.y, data.v, data.X, columns, data.study, prior,
                                  coefficients.mean, coefficients.sd)
    compiled = nutpie.compile_pymc_model(model)
    with mcmc.interrupts_propagate():
        idata = nutpie.sample(compiled, draws=settings.draws, tune=settings.tune,
                              chains=settings.chains, cores=settings.cores or 2, seed=seed,
                              target_accept=target, progress_bar=False)
    diagnostics, problems = gate(idata, settings.chains, settings.draws, ("beta", "tau"))
    if problems:
        raise ConvergenceError(f"{name}: {'; '.join(problems)}. Try more draws, a higher "
                               "--target-accept, or --engine exact.")
    return RegressionDraws(idata), diagnostics


class RegressionDraws(DrawQueries):
    """Posterior draws of a meta-regression answering the exact engine's questions: targets
    "tau", ("beta", j) and ("fitted", x) (the mean effect at design row x)."""

    def __init__(self, idata):
        post = idata.posterior
        self.beta = post["beta"].values.reshape(-1, post["beta"].shape[-1])
        self.tau = post["tau"].values.ravel()
        self.idata = idata

    def values(self, target):
        if target == "tau":
            return self.tau
        if target[0] == "beta":
            return self.beta[:, target[1]]
        if target[0] == "fitted":
            return self.beta @ np.asarray(target[1], float)
        raise ValueError(f"unknown target {target!r}")
