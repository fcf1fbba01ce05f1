"""An engine registered from outside the package with the "marginal_likelihood" capability only
(tests/test_bma.py): it gives the exact engine's evidence under another name, so `bma` must
reach it through the capability, never through a list of names."""

from __future__ import annotations

from bayes_pip import engines
from bayes_pip.payloads import NormalEffects


class EvidenceOnly:
    name = "evidence-only"
    model = "normal-normal"
    help = "evidence-only: the normal-normal evidence of the exact engine (a test engine)"
    packages = ("numpy",)
    accepts = (NormalEffects,)
    capabilities = frozenset({"marginal_likelihood"})
    stochastic = False

    def fit(self, problem, prior, seed=None, settings=None, progress=False):
        return engines.get("exact").fit(problem, prior, seed, settings, progress)

    def evidence(self, payload, prior, random_effects, mu_prior=None, nulls=None,
                 with_posteriors=True):
        self.calls = getattr(self, "calls", 0) + 1
        return engines.get("exact").evidence(payload, prior, random_effects, mu_prior, nulls,
                                             with_posteriors)

    def describe(self, fit) -> str:
        return "exact normal-normal posterior (through a test engine)"


ENGINE = EvidenceOnly()
