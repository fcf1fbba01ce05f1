"""The direction of benefit as one value: which side of no effect is good for the
intervention, with the probabilities and words that follow from it. Every place that asks
"is lower better?" asks this instead."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Direction:
    """``benefit``: "lower" (effects below no effect favour the intervention) or "higher"."""

    benefit: str

    @property
    def lower(self) -> bool:
        return self.benefit == "lower"

    @property
    def sign(self) -> str:
        """The comparison that means benefit: '<' or '>'."""
        return "<" if self.lower else ">"

    @property
    def side(self) -> str:
        """Where benefit lies on a plotted axis: 'left' or 'right'."""
        return "left" if self.lower else "right"

    @property
    def verb(self) -> str:
        """'reduces' or 'increases'."""
        return "reduces" if self.lower else "increases"

    def p_better(self, post, target="mu", threshold: float = 0.0) -> float:
        """P(target beyond ``threshold`` on the side of benefit) from a posterior."""
        return post.cdf(target, threshold) if self.lower else post.sf(target, threshold)

    def p_worse(self, post, target="mu", threshold: float = 0.0) -> float:
        """P(target beyond ``threshold`` on the side of harm) from a posterior."""
        return post.sf(target, threshold) if self.lower else post.cdf(target, threshold)

    def better(self, x, reference):
        """Whether (elementwise) x is on the side of benefit of ``reference``."""
        return x < reference if self.lower else x > reference


def of(thing) -> Direction:
    """The Direction of an outcome, a fit record, or a 'lower'/'higher' string."""
    return Direction(thing if isinstance(thing, str) else thing.benefit)
