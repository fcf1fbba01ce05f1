"""Files under an output directory, written atomically (the one place that writes files).

Every output is staged in a private temporary directory inside the target and its files are
renamed into place only once all of them have been produced, so a reader (or a concurrent run)
sees either the old file or the new one, never half of one, and a failed run leaves nothing.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from bayes_pip.errors import InputError, OutputComplete
from bayes_pip.record import versioned


WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG}


@contextlib.contextmanager
def write_errors_are_input_errors(target: Path):
    """Disk full, quota, permissions: a one-line error naming the output (exit 2)."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in WRITE_ERRORS:
            raise
        raise InputError(f"cannot write the output ({exc.strerror})", file=str(target)) from None


def check_output_dir(target) -> Path:
    """Before any work: ``target`` is a directory, or can be created as one (its nearest
    existing ancestor is a writable directory; no file or dangling link on the way)."""
    target = Path(target)
    if target.is_symlink() and not target.exists():
        raise InputError("is a dangling symbolic link; give a directory", file=str(target))
    if target.exists():
        if not target.is_dir():
            raise InputError("exists and is not a directory; give a directory", file=str(target))
        ancestor = target
    else:
        ancestor = target.parent
        while not ancestor.exists():
            if ancestor.is_symlink():
                raise InputError(f"{ancestor} is a dangling symbolic link", file=str(target))
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise InputError(f"cannot create it: {ancestor} is a file, not a directory",
                             file=str(target))
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"cannot write there: {ancestor} is not writable", file=str(target))
    return target


@contextlib.contextmanager
def signals_deferred(target: Path):
    """Hold Ctrl-C and SIGTERM until the block has finished, then report them.

    Python runs signal handlers in the main thread only, so replacing the handlers holds a
    signal whichever thread the kernel delivers it to (blocking it with pthread_sigmask held
    it for the main thread only: a SIGTERM taken by a worker thread stopped a report set half
    moved). A signal that arrived is raised afterwards as OutputComplete: the output is whole.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:
        raise OutputComplete(caught[0], str(target))


@contextlib.contextmanager
def staged_directory(target: Path):
    """Yield a private staging directory; on success move its files into ``target`` atomically.

    On any error the staging directory is removed and ``target`` is left as it was.
    """
    target = check_output_dir(target)
    created = not target.exists()
    try:
        target.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".bayes_pip-stage-", dir=target))
    except OSError as exc:
        raise InputError(f"cannot create the output directory ({exc.strerror})",
                         file=str(target)) from None
    done = False
    try:
        with write_errors_are_input_errors(target):
            yield stage
        # Ctrl-C or SIGTERM wait until the whole set is in place (no mix of old and new files)
        with signals_deferred(target):
            for src in sorted(stage.rglob("*")):
                if src.is_file():
                    dest = target / src.relative_to(stage)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(src, dest)
            done = True
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not done:
            shutil.rmtree(target, ignore_errors=True)  # it was made for this run only


def json_text(obj) -> str:
    return json.dumps(versioned(obj), indent=2, allow_nan=False) + "\n"


def check_free_space(stage: Path, idata, target: Path) -> None:
    """Refuse (exit 2) before writing InferenceData that the disk has no room for: h5py does
    not survive running out of space mid-write (SIGSEGV, a half-written file left behind)."""
    need = sum(int(idata[g].nbytes) for g in idata.groups()) * 1.2 + (1 << 20)
    free = shutil.disk_usage(stage).free
    if free < need:
        raise InputError(f"cannot write the output (not enough free space: the draws need about "
                         f"{need / 1e6:.1f} MB, {free / 1e6:.1f} MB are free)", file=str(target))


def write_fit(out_dir: Path, result) -> list[Path]:
    """Write a fit's JSON summary and, for MCMC, its InferenceData as netCDF."""
    s = result
    stem = f"{s.outcome}__{s.prior.name}__{s.engine}"
    written = []
    with staged_directory(Path(out_dir)) as stage:
        inside(stage, f"{stem}.json").write_text(json_text(s.to_dict()), encoding="utf-8")
        written.append(Path(out_dir) / f"{stem}.json")
        if result.mcmc:
            check_free_space(stage, result.idata, Path(out_dir))
            result.idata.to_netcdf(str(inside(stage, f"{stem}.nc")), engine="h5netcdf")
            written.append(Path(out_dir) / f"{stem}.nc")
    return written


def inside(stage: Path, name: str) -> Path:
    """``stage / name``, refusing any name that would leave the staging directory."""
    target = (stage / name).resolve()
    if Path(name).is_absolute() or ".." in Path(name).parts or not target.is_relative_to(
            stage.resolve()):
        raise InputError(f"refusing to write {name!r}: it is not a file name inside the output "
                         "directory")
    return target


def write_report_files(out_dir: Path, files: dict[str, bytes | str]) -> list[Path]:
    """Stage every file, then move them into ``out_dir``: all of them or none."""
    with staged_directory(Path(out_dir)) as stage:
        for name, content in files.items():
            raw = content.encode("utf-8") if isinstance(content, str) else content
            target = inside(stage, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(raw)
    return [Path(out_dir) / name for name in files]


def replace_directory(out_dir, files: dict[str, bytes | str]) -> list[Path]:
    """Write ``files`` as the whole content of ``out_dir``: staged in a sibling directory, then
    swapped in (a previous content is removed only once the new one is in place)."""
    target = check_output_dir(out_dir)
    here = Path.cwd().resolve()
    if target.resolve() == here or target.resolve() in here.parents:
        raise InputError("is the current directory or one above it; it would be replaced as a "
                         "whole: give a new directory", file=str(out_dir))
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.bayes_pip-stage-", dir=target.parent))
    backup = None
    try:
        with write_errors_are_input_errors(target):
            for name, content in files.items():
                raw = content.encode("utf-8") if isinstance(content, str) else content
                inside(stage, name).write_bytes(raw)
        with signals_deferred(target):
            if target.exists():
                backup = target.parent / f".{target.name}.bayes_pip-old-{os.getpid()}"
                os.rename(target, backup)
            os.rename(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    return [target / name for name in files]
