"""What every MCMC engine does after sampling: the convergence gate, provenance on the trace,
and the posterior object. Sampler-neutral: any engine that returns ArviZ InferenceData with
``mu``, ``tau``, ``theta`` (dim ``study``) and ``theta_new`` can use it."""

from __future__ import annotations

import contextlib
import signal
import threading

from bayes_pip.version import __version__
from bayes_pip.engines.base import EngineResult, Problem
from bayes_pip.engines.diagnostics import gate
from bayes_pip.engines.draws import DrawsPosterior
from bayes_pip.errors import ConvergenceError, SamplerError

PYMC_PACKAGES = ("numpy", "scipy", "pandas", "pymc", "pytensor", "nutpie", "arviz")


@contextlib.contextmanager
def interrupts_propagate():
    """Around a sampler call: Ctrl-C stops the sampler and is raised again afterwards.

    nutpie answers KeyboardInterrupt by returning the draws made so far; a partial trace must
    never become a result, so the interrupt is remembered and re-raised once the sampler has
    stopped.
    """
    seen = []
    if threading.current_thread() is not threading.main_thread():
        try:
            yield
        except (RuntimeError, ValueError) as exc:
            raise SamplerError(f"the sampler could not run ({str(exc)[:200]})") from None
        return

    def handler(signum, frame):
        seen.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    except (RuntimeError, ValueError) as exc:  # nutpie's errors (initialisation, numerics)
        if seen:
            raise KeyboardInterrupt from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SamplerError(f"the sampler could not run ({first[:200]})") from None
    finally:
        signal.signal(signal.SIGINT, previous)
    if seen:
        raise KeyboardInterrupt


# the samplers' own parametrisations (u = log tau or the uniform prior's logit, the whitened
# mu): kept out of the posterior group, in ArviZ's unconstrained_posterior group
INTERNAL = ("u", "z_mu")


def separate_internals(idata):
    """Move the samplers' internal variables to ``unconstrained_posterior`` (the analysis
    labels the model quantities with their scales: bayes_pip.engines.idata.label_scales)."""
    internal = [v for v in INTERNAL if v in idata.posterior]
    if internal:
        idata.add_groups({"unconstrained_posterior": idata.posterior[internal]})
        idata.posterior = idata.posterior.drop_vars(internal)
    return idata


# the sampler an MCMC engine names in its stored settings, unless it says otherwise (sampler)
SAMPLER = "nutpie NUTS"

# what a convergence failure suggests, unless the engine says otherwise (convergence_hint)
HINT = ("Try more draws or tuning (--draws, --tune), a higher --target-accept, or --engine exact "
        "for the normal-normal model.")


def finish(engine, idata, problem: Problem, prior, seed: int, settings,
           variables=("mu", "tau"), posterior=DrawsPosterior) -> EngineResult:
    """Check convergence over ``variables`` (raise ConvergenceError), label the trace, wrap the
    draws in ``posterior`` (a function of the InferenceData)."""
    diagnostics, problems = gate(idata, settings.chains, settings.draws, variables)
    idata = separate_internals(idata)
    idata.posterior.attrs.update({"prior": str(prior.to_dict()), "seed": seed,
                                  "outcome": problem.name, "engine": engine.name,
                                  "bayes_pip_version": __version__})
    if problems:
        raise ConvergenceError(
            f"outcome '{problem.name}', prior '{prior.name}', engine {engine.name}: "
            f"{'; '.join(problems)}. {getattr(engine, 'convergence_hint', HINT)}")
    stored = settings.to_dict(getattr(engine, "sampler", SAMPLER))
    return EngineResult(posterior(idata), idata, diagnostics, {"sampler": stored})


def describe(model: str, fit, framework: str = "PyMC") -> str:
    """'PyMC normal-normal, NUTS 4 chains x 2000 draws, seed ...; R-hat ...: converged'
    (``framework``: what the engine's model is written in)."""
    d = fit.diagnostics
    return (f"{framework} {model}, NUTS {d.chains} chains x {d.draws} draws, seed "
            f"{fit.settings.seed}; R-hat {d.rhat_max:.3f}, ESS bulk "
            f"{d.ess_bulk_min:.0f} / tail {d.ess_tail_min:.0f}, "
            f"{d.divergences} divergences: converged")
