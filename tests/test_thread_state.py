"""The sampler threads keep their Python thread state from a chain's first draw to its last
(bayes_pip.engines.thread_state): the draws are those of the plain model to the bit, the state
really persists between callbacks, and no thread state is left behind."""

from __future__ import annotations

import ctypes
import threading

import numpy as np
import pytest

from bayes_pip.engines.base import SamplerSettings
from bayes_pip.engines.thread_state import kept_per_chain

Y = np.array([-1.5, -2.0, -0.8, -1.9])
V = np.array([0.2, 0.3, 0.25, 0.4])

_api = ctypes.pythonapi
_api.PyInterpreterState_Get.restype = ctypes.c_void_p
_api.PyInterpreterState_ThreadHead.restype = ctypes.c_void_p
_api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
_api.PyThreadState_Next.restype = ctypes.c_void_p
_api.PyThreadState_Next.argtypes = [ctypes.c_void_p]


def thread_states() -> int:
    """How many thread states the interpreter holds (public C API)."""
    t = _api.PyInterpreterState_ThreadHead(_api.PyInterpreterState_Get())
    n = 0
    while t:
        n += 1
        t = _api.PyThreadState_Next(t)
    return n


def prior_block():
    from bayes_pip.engines.pymc_models import prior_data
    from bayes_pip.prior_families import HalfNormal, Normal
    from bayes_pip.priors import ResolvedPrior

    pr = ResolvedPrior(name="t", title="t", source="test", mu=Normal(0, 2), tau=HalfNormal(0.5),
                       mu_source="", tau_source="")
    return pr, prior_data(pr)


def sample(model, chains=2, tune=50, draws=50, cores=1):
    import nutpie

    return nutpie.sample(model, draws=draws, tune=tune, chains=chains, cores=cores, seed=3,
                         progress_bar=False)


@pytest.mark.parametrize("cores", [1, 2])
def test_state_persists_through_a_chain_and_is_released(cores):
    """With the hold, a thread-local value set in one expansion callback is still there in the
    next (it lives in the thread's state), through every draw of the chain; after sampling, the
    interpreter holds as many thread states as before."""
    from nutpie.compiled_pyfunc import from_pyfunc

    from bayes_pip.engines.fast_normal import VAR_NAMES, callbacks, data_block

    logp_grad, expand, _ = callbacks()
    _, pdata = prior_block()
    block = data_block(Y, V, pdata)
    seen = []

    def build(draws_per_chain):
        local = threading.local()

        def make_expand(seed1, seed2, chain):
            def expand_point(x, block):
                local.n = getattr(local, "n", 0) + 1
                seen.append(local.n)
                tau, mu = expand(x, block)
                return {"u": np.array(x[0]), "z_mu": np.array(x[1]), "tau": np.array(tau),
                        "mu": np.array(mu)}
            return expand_point

        return from_pyfunc(2, lambda: logp_grad, kept_per_chain(make_expand, draws_per_chain),
                           [np.dtype("float64")] * 4, [()] * 4, list(VAR_NAMES),
                           shared_data={"block": block},
                           make_initial_point_fn=lambda s: np.random.default_rng(s).uniform(-1, 1, 2))

    before = thread_states()
    sample(build(100), cores=cores)
    assert thread_states() == before
    # every draw of both chains (2 x 100) was counted in a state that lived on
    assert max(seen) >= 100 and len(seen) == 200
    seen.clear()
    sample(build(None), cores=cores)
    # without the hold each callback runs in a fresh thread state (why the module exists)
    assert max(seen) == 1 and len(seen) == 200
    assert thread_states() == before


def test_draws_equal_those_of_the_plain_model():
    """The hold changes no draw: the engine's fit equals the plain from_pyfunc model's, bit for
    bit, under the same seed."""
    from bayes_pip.engines.fast_normal import compiled_model

    pr, pdata = prior_block()
    kept = sample(compiled_model(Y, V, pdata, 100), chains=4)
    plain = sample(compiled_model(Y, V, pdata), chains=4)
    for name in ("mu", "tau"):
        np.testing.assert_array_equal(kept.posterior[name].values, plain.posterior[name].values)


def test_engine_fit_keeps_no_thread_state():
    """A whole normal-normal fit through the engine leaves no thread state behind."""
    from bayes_pip.engines.normal_nuts import sample_normal_normal

    pr, _ = prior_block()
    settings = SamplerSettings(draws=200, tune=200)
    sample_normal_normal(Y, V, pr, 1, settings, list("abcd"))
    before = thread_states()
    for seed in range(3):
        sample_normal_normal(Y, V, pr, seed, settings, list("abcd"))
    assert thread_states() == before
