"""Sweeps on a Dask LocalCluster: the same JSON, byte for byte, as the serial sweep; a failing
task is reported in its place; the serial path never imports Dask."""

import json
import subprocess
import sys

import pytest

from bayes_pip.cluster import parse_scheduler, run_tasks
from bayes_pip.errors import InputError
from conftest import run_main

pytest.importorskip("distributed")


@pytest.mark.slow
def test_sweep_on_a_local_cluster_equals_the_serial_sweep():
    serial = run_main("sweep", "--engine", "exact", "--json")
    assert serial.returncode == 0, serial.stderr
    spread = run_main("sweep", "--engine", "exact", "--json", "--scheduler", "local:2")
    assert spread.returncode == 0, spread.stderr
    assert spread.stdout == serial.stdout
    rows = json.loads(serial.stdout)
    assert len(rows) > 30 and all(r["engine"] in ("exact", "conjugate") for r in rows)
    assert any(r["settings"].get("quadrature", {}).get("method", "").endswith(
        "(batched engine)") for r in rows)


def halve(x):
    if x == 3:
        raise ValueError("three is not allowed")
    return x / 2


@pytest.mark.slow
def test_a_failing_task_is_reported_and_the_others_kept():
    seen = []
    out = run_tasks("local:2", halve, [(1,), (3,), (8,)], ["one", "three", "eight"],
                    progress=lambda i, n, what: seen.append((i, n)))
    assert out[0] == (True, 0.5) and out[2] == (True, 4.0)
    assert out[1] == (False, "ValueError: three is not allowed")
    assert sorted(seen) == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("spec, expected", [("local", None), ("local:1", ("local", 1)),
                                            ("tcp://10.0.0.1:8786",
                                             ("address", "tcp://10.0.0.1:8786"))])
def test_scheduler_specs(spec, expected):
    kind, value = parse_scheduler(spec)
    if expected is None:
        assert kind == "local" and value >= 1
    else:
        assert (kind, value) == expected


@pytest.mark.parametrize("spec", ["local:0", "local:two", " ", "local:512"])
def test_bad_scheduler_specs_are_refused(spec):
    with pytest.raises(InputError, match="scheduler"):
        parse_scheduler(spec)


def test_bad_scheduler_is_a_one_line_error():
    r = run_main("sweep", "--engine", "exact", "--scheduler", "local:x")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "local workers" in r.stderr


def test_serial_sweep_never_imports_dask():
    code = ("import sys, contextlib, io\nfrom bayes_pip.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['sweep', '--engine', 'exact', '--priors', 'halfnormal-0.5']) == 0\n"
            "print([m for m in ('dask', 'distributed') if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_local_workers_are_capped_by_the_machine(monkeypatch):
    """local:512 was accepted on two cores; the cap is one worker per core and per GB."""
    import bayes_pip.cluster as cluster

    monkeypatch.setattr(cluster.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(cluster.os, "sysconf", lambda name: {"SC_PHYS_PAGES": 3 * 2**18,
                                                             "SC_PAGE_SIZE": 4096}[name])
    assert cluster.local_worker_limit() == 2   # two cores, 3 GB
    with pytest.raises(InputError, match="from 1 to 2 on this machine"):
        parse_scheduler("local:3")
    monkeypatch.setattr(cluster.os, "sysconf", lambda name: {"SC_PHYS_PAGES": 2**18,
                                                             "SC_PAGE_SIZE": 4096}[name])
    assert cluster.local_worker_limit() == 1   # 1 GB of memory
