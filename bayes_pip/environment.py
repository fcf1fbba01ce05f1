"""Odd environments: an account without a writable HOME must still run every engine.

ArviZ (on import), matplotlib and numba's on-disk cache write below the user's cache and
config directories. When those cannot be created, point them at a private temporary directory
for this process (numba then recompiles the normal-normal density once per process instead of
once per installation).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            pass
        return True
    except OSError:
        return False


def ensure_writable_caches() -> None:
    """Set XDG_CACHE_HOME and MPLCONFIGDIR to a private temporary directory when the defaults
    (below HOME) are not writable. Does nothing in a normal account."""
    home = Path(os.path.expanduser("~"))
    cache = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")
    config = Path(os.environ.get("MPLCONFIGDIR") or home / ".config" / "matplotlib")
    if writable(cache) and writable(config):
        return
    private = Path(tempfile.mkdtemp(prefix="bayes_pip-cache-"))
    if not writable(cache):
        os.environ["XDG_CACHE_HOME"] = str(private / "cache")
    if not writable(config):
        os.environ["MPLCONFIGDIR"] = str(private / "matplotlib")
