"""Odd environments: an account without a writable HOME must still run every engine.

ArviZ (on import), matplotlib, numba's on-disk cache, PyTensor (the binomial engine) and Dask
(the worker nannies) write below the user's cache and config directories. When those cannot be created, point them at a private temporary directory
for this process (numba then recompiles the normal-normal density once per process instead of
once per installation).
"""

from __future__ import annotations

import os
import tempfile
import warnings
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
    """Point every cache and config directory below HOME that cannot be written (XDG cache,
    matplotlib, PyTensor's compiledir, Dask's config and temporary directories) at a private
    temporary directory. Does nothing in a normal account.

    Also silences ArviZ's once-a-day notice about its coming 1.0 (a FutureWarning printed on
    import): bayes_pip pins arviz < 1, so it asks nothing of a user and would break the
    one-line error output of the command that happened to import ArviZ first that day."""
    warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor",
                            category=FutureWarning)
    home = Path(os.path.expanduser("~"))
    cache = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")
    config = Path(os.environ.get("MPLCONFIGDIR") or home / ".config" / "matplotlib")
    pytensor_set = "base_compiledir" in os.environ.get("PYTENSOR_FLAGS", "")
    pytensor = home / ".pytensor"
    dask_config = Path(os.environ.get("DASK_CONFIG") or home / ".config" / "dask")
    wanted = [writable(cache), writable(config), pytensor_set or writable(pytensor),
              writable(dask_config)]
    if all(wanted):
        return
    private = Path(tempfile.mkdtemp(prefix="bayes_pip-cache-"))
    if not wanted[0]:
        os.environ["XDG_CACHE_HOME"] = str(private / "cache")
    if not wanted[1]:
        os.environ["MPLCONFIGDIR"] = str(private / "matplotlib")
    if not wanted[2]:
        flags = os.environ.get("PYTENSOR_FLAGS", "")
        os.environ["PYTENSOR_FLAGS"] = ",".join(
            f for f in (flags, f"base_compiledir={private / 'pytensor'}") if f)
    if not wanted[3]:
        os.environ["DASK_CONFIG"] = str(private / "dask")
        os.environ.setdefault("DASK_TEMPORARY_DIRECTORY", str(private / "dask-worker-space"))
