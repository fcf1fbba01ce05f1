"""Where the bundled prior sets (models/) and data sets (data/) are.

In a source checkout (and an editable install) they sit at the repository root; a built wheel
carries them inside the package as ``bayes_pip/_bundled/{models,data}`` (pyproject.toml maps
them there), so `pip install .` works without the repository.
"""

from __future__ import annotations

from pathlib import Path

INSTALLED = Path(__file__).resolve().parent / "_bundled"
CHECKOUT = Path(__file__).resolve().parents[1]


def bundled_path(*parts: str) -> Path:
    """``bundled_path("models")``, ``bundled_path("data", "pip")``."""
    base = INSTALLED if INSTALLED.is_dir() else CHECKOUT
    return base.joinpath(*parts)
