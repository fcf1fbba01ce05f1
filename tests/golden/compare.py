"""Compare a CLI JSON output with its pinned copy in tests/golden/.

Keys, strings, integers and booleans must be identical. Floats are compared with a tolerance,
because a different build of NumPy/SciPy/PyTensor may order floating-point operations
differently:

- deterministic outputs (exact and conjugate engines, DL, list): relative 1e-9 (the pinned files
  and today's libraries differ by at most 4e-15 here);
- MCMC outputs (``"engine"`` pymc or binomial): the same seed gives byte-identical draws with
  the same libraries (tests/test_cli.py), but when a library build changes the last bit of a
  gradient, NUTS trajectories diverge and the draws are a different Monte Carlo sample. Their
  estimates must then agree within Monte Carlo error: absolute 0.05 or relative 5 % (a posterior
  sd of 0.35 with ESS > 2000 gives a Monte Carlo SE near 0.008); effective sample sizes within
  50 %.
"""

import math

DETERMINISTIC = {"rel": 1e-9, "abs": 1e-12}
MCMC = {"rel": 0.05, "abs": 0.05}
ESS = {"rel": 0.5, "abs": 0.0}


def differences(got, want, mcmc: bool, path: str = "") -> list[str]:
    """Every place where ``got`` differs from ``want`` beyond the tolerance, as readable lines."""
    out: list[str] = []
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return [f"{path or '.'}: keys {sorted(got) if isinstance(got, dict) else got!r} "
                    f"!= {sorted(want)}"]
        for key in want:
            out += differences(got[key], want[key], mcmc, f"{path}.{key}")
    elif isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: {got!r} != {want!r}"]
        for i, (g, w) in enumerate(zip(got, want)):
            out += differences(g, w, mcmc, f"{path}[{i}]")
    elif isinstance(want, float) and isinstance(got, float):
        tol = DETERMINISTIC
        if mcmc:
            tol = ESS if path.rsplit(".", 1)[-1].startswith("ess") else MCMC
        if not math.isclose(got, want, rel_tol=tol["rel"], abs_tol=tol["abs"]):
            out.append(f"{path}: {got!r} != {want!r}")
    elif type(got) is not type(want) or got != want:
        out.append(f"{path}: {got!r} != {want!r}")
    return out


def is_mcmc(record) -> bool:
    """True for an output (or a list of outputs) sampled by MCMC."""
    if isinstance(record, list):
        return any(is_mcmc(r) for r in record)
    return isinstance(record, dict) and record.get("engine") in ("pymc", "binomial")


def assert_matches(got, want) -> None:
    diff = differences(got, want, is_mcmc(want))
    assert not diff, "output differs from the pinned copy:\n" + "\n".join(diff[:20])
