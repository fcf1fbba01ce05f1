"""bayes_pip: Bayesian re-analysis of systematic reviews, beside the classical DerSimonian-Laird analysis."""

__version__ = "0.1.0"
