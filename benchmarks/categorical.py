"""The multinomial analysis of the bundled attachment classification against separate
per-category analyses, measured in one run.

    python benchmarks/categorical.py

- cold: `python -m bayes_pip fit attachment_category_post --json` in a new process (imports,
  compiling the model for its shape, 4 x 2,000 draws, and the separate analyses it sets beside
  the joint one);
- warm: the multinomial fit alone (engine only, and the full `fit_categorical` without the
  separate analyses) in the same process after one fit, best of 3;
- the separate analyses of the categories that have data (secure, avoidant, disorganised
  attachment on their reconstructed tables): with the default `--engine auto` (binomial-exact)
  and with binomial NUTS (`--engine binomial`), warm, summed over the categories;
- ratios: one multinomial fit against the separate fits, both warm.
"""

from __future__ import annotations

import subprocess
import sys
import time

from bayes_pip.analysis import fit_outcome
from bayes_pip.categorical import fit_categorical
from bayes_pip.data import load_dataset

OUTCOME = "attachment_category_post"
SEPARATE = ("secure_attachment_post", "avoidant_attachment_post",
            "disorganised_attachment_post")


def best(f, repeat=3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bayes_pip", "fit", OUTCOME, "--json"], check=True,
                   capture_output=True)
    cold = time.perf_counter() - t
    ds = load_dataset()
    fit_categorical(ds, OUTCOME, separate=False)          # compile once
    warm = best(lambda: fit_categorical(ds, OUTCOME, separate=False))
    for engine in ("auto", "binomial"):
        for o in SEPARATE:
            fit_outcome(ds, o, engine=engine)             # compile / warm up once
    sep = {engine: best(lambda: [fit_outcome(ds, o, engine=engine) for o in SEPARATE])
           for engine in ("auto", "binomial")}
    print(f"cold `fit {OUTCOME}` (new process, separate analyses included): {cold:.1f} s")
    print(f"warm multinomial fit (4 categories, 2 trials, 5 arms): {warm:.2f} s")
    for engine, s in sep.items():
        print(f"warm separate fits of {len(SEPARATE)} categories, --engine {engine}: {s:.2f} s "
              f"(multinomial / separate = {warm / s:.2f})")


if __name__ == "__main__":
    main()
