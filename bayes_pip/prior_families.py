"""The prior families of bayes_pip: normal priors on the pooled effect and the heterogeneity\npriors on tau (half-normal, half-Cauchy, uniform, log-normal and log-t on tau^2), each with its\ndensity, CDF, quantiles, PyMC distribution and sampler parameters."""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy import special

from bayes_pip.errors import InputError

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def normal_logpdf(z):
    return -0.5 * np.asarray(z, float) ** 2 - LOG_SQRT_2PI


def t_logpdf(z, df):
    z = np.asarray(z, float)
    return (special.gammaln((df + 1) / 2) - special.gammaln(df / 2) - 0.5 * math.log(df * math.pi)
            - (df + 1) / 2 * np.log1p(z * z / df))


class TauFamily(enum.IntEnum):
    """The tau-prior families, named once. The integer is the code the compiled samplers switch
    on (one compiled model serves every family); ``key`` is the name prior files use."""

    HALFNORMAL = 0
    HALFCAUCHY = 1
    LOGNORMAL_TAU2 = 2
    LOGT_TAU2 = 3
    UNIFORM = 4

    @property
    def key(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class HalfNormal:
    """tau ~ half-normal(scale): p(tau) = 2/scale * phi(tau/scale), tau >= 0."""

    scale: float
    code: ClassVar[TauFamily] = TauFamily.HALFNORMAL
    family: str = field(default=TauFamily.HALFNORMAL.key, init=False)

    def sampler_params(self) -> tuple[float, ...]:
        """Parameters as the compiled samplers read them (see TauFamily)."""
        return (self.scale,)

    def logpdf(self, tau):
        tau = np.asarray(tau, float)
        return np.where(tau >= 0, math.log(2 / self.scale) + normal_logpdf(tau / self.scale),
                        -np.inf)

    def cdf(self, tau):
        return np.where(np.asarray(tau) > 0, special.erf(np.asarray(tau, float)
                                                        / (self.scale * math.sqrt(2))), 0.0)

    def ppf(self, q):
        return self.scale * special.ndtri((1 + np.asarray(q, float)) / 2)

    def params(self) -> dict:
        return {"scale": self.scale}

    def describe(self) -> str:
        return f"tau ~ half-normal(scale {self.scale:g})"

    def pymc(self, name: str):
        import pymc as pm
        return pm.HalfNormal(name, sigma=self.scale)


@dataclass(frozen=True)
class HalfCauchy:
    """tau ~ half-Cauchy(scale): p(tau) = 2 / (pi scale (1 + (tau/scale)^2)), tau >= 0."""

    scale: float
    code: ClassVar[TauFamily] = TauFamily.HALFCAUCHY
    family: str = field(default=TauFamily.HALFCAUCHY.key, init=False)

    def sampler_params(self) -> tuple[float, ...]:
        return (self.scale,)

    def logpdf(self, tau):
        tau = np.asarray(tau, float)
        return np.where(tau >= 0, math.log(2 / (math.pi * self.scale))
                        - np.log1p((tau / self.scale) ** 2), -np.inf)

    def cdf(self, tau):
        return np.where(np.asarray(tau) > 0, 2 / math.pi * np.arctan(np.asarray(tau, float)
                                                                    / self.scale), 0.0)

    def ppf(self, q):
        return self.scale * np.tan(math.pi * np.asarray(q, float) / 2)

    def params(self) -> dict:
        return {"scale": self.scale}

    def describe(self) -> str:
        return f"tau ~ half-Cauchy(scale {self.scale:g})"

    def pymc(self, name: str):
        import pymc as pm
        return pm.HalfCauchy(name, beta=self.scale)


@dataclass(frozen=True)
class Uniform:
    """tau ~ Uniform(0, upper); ``upper = inf`` is the improper uniform prior (exact engine only)."""

    upper: float
    code: ClassVar[TauFamily] = TauFamily.UNIFORM
    family: str = field(default=TauFamily.UNIFORM.key, init=False)

    def sampler_params(self) -> tuple[float, ...]:
        if not self.proper:
            raise InputError("the PyMC engine needs a proper prior on tau (use --engine exact)")
        return (self.upper,)

    @property
    def proper(self) -> bool:
        return math.isfinite(self.upper)

    @property
    def breakpoints(self) -> tuple[float, ...]:
        """Where the density jumps (the end of the support): quadrature cells end there."""
        return (self.upper,) if self.proper else ()

    def logpdf(self, tau):
        tau = np.asarray(tau, float)
        inside = (tau >= 0) & (tau <= self.upper)
        value = -math.log(self.upper) if self.proper else 0.0
        return np.where(inside, value, -np.inf)

    def cdf(self, tau):
        if not self.proper:
            raise ValueError("the improper uniform prior has no CDF")
        return np.clip(np.asarray(tau, float) / self.upper, 0, 1)

    def ppf(self, q):
        if not self.proper:
            raise ValueError("the improper uniform prior has no quantiles")
        return np.asarray(q, float) * self.upper

    def params(self) -> dict:
        return {"lower": 0.0, "upper": self.upper if self.proper else None}

    def describe(self) -> str:
        return f"tau ~ Uniform(0, {self.upper:g})"

    def pymc(self, name: str):
        import pymc as pm
        if not self.proper:
            raise InputError("the PyMC engine needs a proper prior on tau (use --engine exact)")
        return pm.Uniform(name, lower=0.0, upper=self.upper)


@dataclass(frozen=True)
class LogNormalTau2:
    """log(tau^2) ~ Normal(mu, sigma^2) (Turner et al. 2015); so log(tau) ~ Normal(mu/2, sigma/2)."""

    mu: float
    sigma: float
    code: ClassVar[TauFamily] = TauFamily.LOGNORMAL_TAU2
    family: str = field(default=TauFamily.LOGNORMAL_TAU2.key, init=False)

    def sampler_params(self) -> tuple[float, ...]:
        """(mean, sd) of log(tau)."""
        return (self.mu / 2, self.sigma / 2)

    def logpdf(self, tau):
        tau = np.asarray(tau, float)
        m, sd = self.mu / 2, self.sigma / 2
        safe = np.where(tau > 0, tau, 1.0)
        value = normal_logpdf((np.log(safe) - m) / sd) - math.log(sd) - np.log(safe)
        return np.where(tau > 0, value, -np.inf)

    def cdf(self, tau):
        tau = np.asarray(tau, float)
        safe = np.where(tau > 0, tau, 1.0)
        return np.where(tau > 0, special.ndtr((np.log(safe) - self.mu / 2) / (self.sigma / 2)), 0.0)

    def ppf(self, q):
        return np.exp(self.mu / 2 + self.sigma / 2 * special.ndtri(np.asarray(q, float)))

    def params(self) -> dict:
        return {"mu": self.mu, "sigma": self.sigma}

    def describe(self) -> str:
        return f"tau^2 ~ log-normal({self.mu:g}, {self.sigma:g}^2)"

    def pymc(self, name: str):
        import pymc as pm
        return pm.LogNormal(name, mu=self.mu / 2, sigma=self.sigma / 2)


@dataclass(frozen=True)
class LogTTau2:
    """log(tau^2) ~ t_df(location, scale) (Rhodes et al. 2015); so log(tau) ~ t_df(loc/2, scale/2)."""

    location: float
    scale: float
    df: float = 5.0
    code: ClassVar[TauFamily] = TauFamily.LOGT_TAU2
    family: str = field(default=TauFamily.LOGT_TAU2.key, init=False)

    def sampler_params(self) -> tuple[float, ...]:
        """(location, scale, df) of log(tau)."""
        return (self.location / 2, self.scale / 2, self.df)

    def logpdf(self, tau):
        tau = np.asarray(tau, float)
        loc, sc = self.location / 2, self.scale / 2
        safe = np.where(tau > 0, tau, 1.0)
        value = t_logpdf((np.log(safe) - loc) / sc, self.df) - math.log(sc) - np.log(safe)
        return np.where(tau > 0, value, -np.inf)

    def cdf(self, tau):
        tau = np.asarray(tau, float)
        safe = np.where(tau > 0, tau, 1.0)
        z = (np.log(safe) - self.location / 2) / (self.scale / 2)
        return np.where(tau > 0, special.stdtr(self.df, z), 0.0)

    def ppf(self, q):
        return np.exp(self.location / 2 + self.scale / 2
                      * special.stdtrit(self.df, np.asarray(q, float)))

    def params(self) -> dict:
        return {"location": self.location, "scale": self.scale, "df": self.df}

    def describe(self) -> str:
        return f"log(tau^2) ~ t{self.df:g}({self.location:g}, {self.scale:g})"

    def pymc(self, name: str):
        import pymc as pm
        log_tau = pm.StudentT(f"log_{name}", nu=self.df, mu=self.location / 2,
                              sigma=self.scale / 2)
        return pm.Deterministic(name, pm.math.exp(log_tau))


# ---------------------------------------------------------------------------------------------
# distributions for mu
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Normal:
    """mu ~ Normal(mean, sd^2); ``sd = inf`` is the improper flat prior (exact engine only)."""

    mean: float
    sd: float
    family: str = field(default="normal", init=False)

    @property
    def proper(self) -> bool:
        return math.isfinite(self.sd)

    def logpdf(self, x):
        if not self.proper:
            return np.zeros_like(np.asarray(x, float))
        return normal_logpdf((np.asarray(x, float) - self.mean) / self.sd) - math.log(self.sd)

    def cdf(self, x):
        return special.ndtr((np.asarray(x, float) - self.mean) / self.sd)

    def ppf(self, q):
        return self.mean + self.sd * special.ndtri(np.asarray(q, float))

    def params(self) -> dict:
        return {"mean": self.mean, "sd": self.sd if self.proper else None}

    def describe(self) -> str:
        return f"mu ~ Normal({self.mean:g}, {self.sd:g}^2)" if self.proper else "mu ~ flat"

    def pymc(self, name: str):
        import pymc as pm
        if not self.proper:
            raise InputError("the PyMC engine needs a proper prior on mu (use --engine exact)")
        return pm.Normal(name, mu=self.mean, sigma=self.sd)


TAU_CLASSES = {cls.code: cls for cls in (HalfNormal, HalfCauchy, LogNormalTau2, LogTTau2, Uniform)}


TAU_FAMILIES = {family.key: (TAU_CLASSES[family], tuple(
    f.name for f in dataclasses.fields(TAU_CLASSES[family]) if f.init)) for family in TauFamily}


MU_FAMILIES = ("normal", "sceptical", "enthusiastic")


MU_PARAMS = {"normal": ("mean", "sd"), "sceptical": ("tail_probability",),
             "enthusiastic": ("tail_probability",)}


# ---------------------------------------------------------------------------------------------
# prior sets (models/*.toml)
# ---------------------------------------------------------------------------------------------
