"""bayes_pip: Bayesian re-analysis of systematic reviews, beside the classical DerSimonian-Laird
analysis.

The public Python API (see :mod:`bayes_pip.api` and README, "Python API"):

    import bayes_pip as bp
    data = bp.load()                     # or bp.load("data/crins2014"), bp.load(outcomes=df, ...)
    fit = bp.fit(data, "secure_attachment_post", prior="sceptical", engine="exact")
    fits = bp.compare_priors(data, "secure_attachment_post")
    bp.list_analyses(data)               # each analysis: id, model, outcomes, categories
    rep = bp.report(data, engine="exact")   # every outcome's page + the summary of findings
    rep.to_frame(); rep.write("reports")
    bf = bp.bma(data, "secure_attachment_post").bf_effect   # exact Bayes factor
    fig = bp.figures.forest_plot(fit)
    out = bp.exact_batch(y, v, mask, bp.prior(data, "secure_attachment_post"))  # many at once
    reg = bp.bayes_meta_regression(data, "secure_attachment_post", "population_group")
    run = bp.run_database("metas.csv", "out", measure="OR", benefit="lower")  # a whole database

Names are loaded on first use, so `python -m bayes_pip list` does not pay for them.
"""

from bayes_pip.version import __version__

# API names never repeat a submodule's name (bayes_pip.dl, bayes_pip.priors are modules)
__all__ = ["__version__", "load", "fit", "compare_priors", "report", "classical_fit", "outcomes",
           "prior_sets", "prior", "bma", "influence", "reconstruction", "exact_batch",
           "meta_regression", "subgroups", "bayes_meta_regression", "figures", "run_database",
           "list_analyses"]


def __getattr__(name):
    if name == "figures":
        import importlib

        return importlib.import_module("bayes_pip.figures")
    if name in __all__:
        from bayes_pip import api

        return getattr(api, name)
    raise AttributeError(f"module 'bayes_pip' has no attribute {name!r}")


def __dir__():
    """The public API (loaded lazily, so it is listed here rather than found by dir())."""
    return sorted(set(__all__) | set(globals()))
