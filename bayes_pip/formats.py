"""Every number format the tool prints, in one place: effects and intervals, probabilities,
significant digits, percentages. Texts, pages and figures format through these, so one number is
printed the same way everywhere."""

from __future__ import annotations

import math


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """'1 study', '2 studies', '10,000 meta-analyses' (``plural`` default: singular + 's')."""
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"


def num(x: float | None, digits: int = 2) -> str:
    """A number to fixed decimals (effects: 0.74, 8.93, -0.22); '-' when there is none."""
    if x is None:
        return "-"
    if not math.isfinite(x):   # never printed as a number: say what happened
        return "(beyond float range)" if x == x else "(not defined)"
    return f"{x:.{digits}f}"


def num2(x: float, digits: int = 2) -> str:
    """Fixed decimals, or 3 significant digits for values of 1000 and more (vague-prior tails)."""
    return f"{x:.3g}" if abs(x) >= 1000 else f"{x:.{digits}f}"


def _part(d, key: str):
    return d[key] if isinstance(d, dict) else getattr(d, key)


def ci_text(d, digits: int = 2) -> str:
    """'5.59 [2.16, 20.70]': the median and interval of an Interval record or such a dict."""
    return (f"{num2(_part(d, 'median'), digits)} [{num2(_part(d, 'ci_low'), digits)}, "
            f"{num2(_part(d, 'ci_high'), digits)}]")


def interval_text(d) -> str:
    """'median [low, high]' of an Interval-like record; '-' when there is none."""
    if not d:
        return "-"
    return f"{num(d.median)} [{num(d.ci_low)}, {num(d.ci_high)}]"


def pct_text(d) -> str:
    """'62% [44%, 77%]': a probability's median and interval as percentages."""
    return (f"{100 * _part(d, 'median'):.0f}% [{100 * _part(d, 'ci_low'):.0f}%, "
            f"{100 * _part(d, 'ci_high'):.0f}%]")


def equals(text: str) -> str:
    """'= 0.951', or '> 0.999' as it stands (never '= > 0.999')."""
    return text if text[:1] in "<>" else f"= {text}"


def prob_text(p: float, draws: int | None = None) -> str:
    """A probability to 3 decimals, without rounding to a certainty the data do not give.

    From ``draws`` posterior draws a probability of exactly 0 or 1 only says it is below 1/N or
    above 1 - 1/N, and is printed so.
    """
    if draws and p >= 1:
        return f"> 1 - 1/{draws}"
    if draws and p <= 0:
        return f"< 1/{draws}"
    if p > 0.999:
        return "> 0.999"
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}"


def short(x: float) -> str:
    """A published number as printed (0.74, 63.7), or to 4 decimals when stored at full precision."""
    text = f"{x:g}"
    return f"{x:.4f}" if len(text.split(".")[-1]) > 4 else text


def sig(x, digits: int = 3) -> str:
    """Significant digits; '-' for a missing or non-finite value (moderator tables)."""
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


def p_text(p) -> str:
    """'p = 0.236'; a p-value that underflowed to 0 as the bound it is ('p < 1e-300')."""
    return "p < 1e-300" if p == 0 else f"p = {sig(p)}"


def num_label(x: float) -> str:
    """Two decimals; three significant digits from 100 up and below 0.01 (never '0.00')."""
    return f"{x:.3g}" if abs(x) >= 100 or (x != 0 and abs(x) < 0.01) else f"{x:.2f}"


def interval_label(est, lo, hi) -> str:
    """'0.74 [0.52, 1.05]': an estimate and its interval as the figures print them."""
    return f"{num_label(est)} [{num_label(lo)}, {num_label(hi)}]"
