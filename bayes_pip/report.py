"""Files under an output directory, written atomically.

Every file is written to a temporary file in the same directory and renamed into place, so a
reader (or a concurrent run) sees either the old file or the new one, never half of one. A
multi-file output is staged in a temporary directory and its files are renamed only once all of
them have been produced.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same directory and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def staged_directory(target: Path):
    """Yield a private staging directory; on success move its files into ``target`` atomically.

    On any error the staging directory is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".bayes_pip-stage-", dir=target))
    try:
        yield stage
        for src in sorted(stage.rglob("*")):
            if src.is_file():
                dest = target / src.relative_to(stage)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def json_text(obj) -> str:
    return json.dumps(obj, indent=2, allow_nan=False) + "\n"


def write_fit(out_dir: Path, result) -> list[Path]:
    """Write a fit's JSON summary and, for MCMC, its InferenceData as netCDF."""
    s = result.summary
    stem = f"{s['outcome']}__{s['prior']['name']}__{s['engine']}"
    written = []
    with staged_directory(Path(out_dir)) as stage:
        (stage / f"{stem}.json").write_text(json_text(s), encoding="utf-8")
        written.append(Path(out_dir) / f"{stem}.json")
        if result.idata is not None:
            result.idata.to_netcdf(str(stage / f"{stem}.nc"), engine="h5netcdf")
            written.append(Path(out_dir) / f"{stem}.nc")
    return written
