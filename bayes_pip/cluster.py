"""Tasks on a Dask distributed cluster: sweeps of many fits and calibration replicates.

``--scheduler local`` starts a LocalCluster with one single-threaded worker process per core
(``local:N`` for N workers); any other value is the address of a running scheduler
(``tcp://host:8786``), so the same command scales out to a cluster. Dask is an optional extra
(``pip install -e '.[dask]'``): it is imported here only, and only when a scheduler is asked for.

Every task is a pure function of its inputs and its seed, so a distributed run gives the same
numbers as a serial one. A task that raises is reported in its place (``(False, message)``)
and the others carry on.
"""

from __future__ import annotations

import contextlib
import logging
import os

from bayes_pip.errors import InputError

INSTALL_HINT = "pip install -e '.[dask]' (or pip install 'dask[distributed]')"


WORKER_MEMORY = 1 << 30   # what one worker process (an interpreter with PyMC loaded) may need


def local_worker_limit() -> int:
    """The most local workers this machine can run: one per core, 1 GB of memory each."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        memory = WORKER_MEMORY * (cores or 1)
    return max(1, min(cores or 1, memory // WORKER_MEMORY))


def parse_scheduler(spec: str) -> tuple[str, object]:
    """'local' / 'local:N' -> ("local", N); anything else -> ("address", spec)."""
    spec = spec.strip()
    if spec == "local" or spec.startswith("local:"):
        _, _, count = spec.partition(":")
        if not count:
            return "local", max(os.cpu_count() or 1, 1)
        most = local_worker_limit()
        if not count.isdigit() or not 1 <= int(count) <= most:
            raise InputError(f"--scheduler {spec}: the number of local workers must be a whole "
                             f"number from 1 to {most} on this machine (its cores, and "
                             f"{WORKER_MEMORY >> 30} GB of memory per worker), e.g. local:{most}")
        return "local", int(count)
    if not spec:
        raise InputError("--scheduler needs 'local', 'local:N' or a scheduler address "
                         "(tcp://host:8786)")
    return "address", spec


@contextlib.contextmanager
def client_for(spec: str):
    """A dask.distributed Client for ``spec``, closed (with its LocalCluster) on exit."""
    kind, value = parse_scheduler(spec)
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise InputError(f"--scheduler needs Dask, which is not installed: {INSTALL_HINT}") \
            from None
    if kind == "local":
        cluster = LocalCluster(n_workers=value, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        cluster = None
        try:
            client = Client(value, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {value}: {exc}") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_tasks(scheduler: str, func, tasks: list[tuple], labels: list[str], progress=None
              ) -> list[tuple[bool, object]]:
    """``func(*task)`` for every task on the cluster; results in the order of ``tasks``, each
    ``(True, value)`` or ``(False, "ErrorType: message")``."""
    from dask.distributed import as_completed

    with client_for(scheduler) as client:
        futures = [client.submit(func, *task, pure=False, key=f"bayes_pip-{i}")
                   for i, task in enumerate(tasks)]
        index = {f.key: i for i, f in enumerate(futures)}
        done = 0
        for future in as_completed(futures):
            done += 1
            if progress:
                progress(done, len(futures), labels[index[future.key]])
        out = []
        for future in futures:
            if future.status == "error":
                exc = future.exception()
                out.append((False, f"{type(exc).__name__}: {exc}"))
            else:
                out.append((True, future.result()))
        return out
