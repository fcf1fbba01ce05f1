"""A whole database of meta-analyses in one sitting: a long table (one row per study, with a
meta-analysis id) in, one row per meta-analysis out, streamed in chunks.

Each meta-analysis gets the exact normal-normal posterior and, by default, the model comparison
of ``bma`` (FE0, FE, RE0, RE), from the batched exact engine (:mod:`bayes_pip.engines.batch`).
The input is read in chunks of study rows; a meta-analysis is analysed once all its rows are in,
so memory is bounded by the chunk size (plus the largest meta-analysis), whatever the number of
meta-analyses. Output goes to ``results.csv.partial`` in the output directory, one chunk at a
time, with ``progress.json`` recording how much of it is complete; an interrupted run continues
from there (``resume=True``), and only a finished run becomes ``results.csv`` (with ``run.json``:
input, settings, versions, counts). Rows of one meta-analysis must be consecutive.

Input columns: ``meta_id``; ``y`` (the effect on the analysis scale: log OR or log RR for
ratios); ``v`` (its variance) or ``se`` (its standard error); optional ``measure`` and
``benefit`` (constant within a meta-analysis; else the options of the same name).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_pip import measures
from bayes_pip.engines.exact_batch import TOL
from bayes_pip.errors import InputError
from bayes_pip.tables import NUMBER, csv_row

CHUNK_ROWS = 100_000        # study rows read at a time (memory: a few tens of MB)
ID_MAX = 200
RESULTS, PARTIAL, PROGRESS, RUN = "results.csv", "results.csv.partial", "progress.json", "run.json"
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
BENEFITS = ("lower", "higher")
QUANTILE_NAMES = {0.025: "lower", 0.5: "median", 0.975: "upper"}
OUTPUT_COLUMNS = (
    "meta_id", "k", "measure", "benefit", "prior",
    "mu_mean", "mu_sd", "mu_lower", "mu_median", "mu_upper",
    "tau_mean", "tau_lower", "tau_median", "tau_upper",
    "new_lower", "new_median", "new_upper", "p_benefit", "p_benefit_new")
EVIDENCE_COLUMNS = (
    "log_ml_FE0", "log_ml_FE", "log_ml_RE0", "log_ml_RE",
    "prob_FE0", "prob_FE", "prob_RE0", "prob_RE",
    "log_bf_effect", "log_bf_heterogeneity", "log_bf_effect_fixed",
    "p_benefit_averaged", "p_null")


@dataclass(frozen=True)
class Settings:
    """What a database run computes; a resumed run must ask for the same."""
    prior: str | None = None      # prior set name (None: each measure's default)
    measure: str | None = None    # for rows without a measure column
    benefit: str | None = None    # for rows without a benefit column
    evidence: bool = True
    tol: float = TOL              # the quadrature's error estimate allowed, per meta-analysis
    prior_dir: str | None = None

    def columns(self) -> tuple[str, ...]:
        return OUTPUT_COLUMNS + (EVIDENCE_COLUMNS if self.evidence else ()) + ("error",)


@dataclass
class Block:
    """Complete meta-analyses: study values in input order, ``starts`` of each meta-analysis."""
    ids: np.ndarray
    starts: np.ndarray
    y: np.ndarray
    v: np.ndarray
    measure: np.ndarray
    benefit: np.ndarray
    rows: int                     # data rows of the file read up to this block's last one

    @property
    def k(self) -> np.ndarray:
        return np.diff(np.append(self.starts, len(self.y)))


# reading ------------------------------------------------------------------------------------

def _check_start(path: Path, settings: Settings) -> list[str]:
    name = str(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except IsADirectoryError:
        raise InputError("is a directory, expected a CSV file", file=name) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", file=name) from None
    if not head.strip():
        raise InputError("file is empty (expected a header row and data rows)", file=name)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        raise InputError("is not a UTF-8 CSV text file (UTF-16 or binary); save it as UTF-8",
                         file=name)
    first = head.decode("utf-8-sig", errors="replace").splitlines()[0]
    header = [h.strip().strip('"') for h in first.split(",")]
    missing = [c for c in ("meta_id", "y") if c not in header]
    if not ({"v", "se"} & set(header)):
        missing.append("v (or se)")
    if missing:
        raise InputError(f"missing required column(s) {', '.join(missing)} (required: meta_id, "
                         "y, and v or se; optional: measure, benefit)", file=name, row=1)
    if "v" in header and "se" in header:
        raise InputError("has both v and se; give one of them", file=name, row=1)
    for column, option in (("measure", settings.measure), ("benefit", settings.benefit)):
        if column not in header and option is None:
            allowed = ", ".join(BAYESIAN if column == "measure" else BENEFITS)
            raise InputError(f"has no {column} column: give --{column} ({allowed}) or add the "
                             "column", file=name, row=1)
    return header


BAYESIAN = measures.names_where(lambda m: m.bayesian)


def _numbers(text: pd.Series, rows: np.ndarray, name: str, column: str,
             positive: bool) -> np.ndarray:
    """The column as floats; ``rows``: each value's data-row index in the file (for messages)."""
    ok = text.str.fullmatch(NUMBER.pattern).to_numpy(dtype=bool)
    values = np.full(len(text), np.nan)
    values[ok] = text[ok].astype(float).to_numpy()
    good = ok & np.isfinite(values) & ((values > 0) if positive else True)
    if not good.all():
        i = int(np.flatnonzero(~good)[0])
        what = "a positive finite number" if positive else "a finite number"
        shown = text.iloc[i][:40]
        raise InputError(f"'{shown}' is not {what} (plain decimals such as 0.35 or 1.5e-3)",
                         file=name, row=csv_row(rows[i]), column=column)
    return values


def _labels(frame, column, default, allowed, rows, name) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), default, dtype=object)
    text = frame[column].to_numpy(dtype=object)
    if default is not None:       # an empty cell takes the option's value
        text = np.where(text == "", default, text)
    bad = ~np.isin(text, list(allowed))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"'{str(text[i])[:40]}' is not allowed (allowed: {', '.join(allowed)})",
                         file=name, row=csv_row(rows[i]), column=column)
    return text


def blocks(path, settings: Settings, chunk_rows: int = CHUNK_ROWS, skip_rows: int = 0):
    """The meta-analyses of the file at ``path``, as Blocks of complete meta-analyses, after the
    first ``skip_rows`` data rows. Every value is checked; the first bad one is an InputError
    naming file, row and column."""
    path = Path(path)
    name = str(path)
    header = _check_start(path, settings)
    variance = "v" if "v" in header else "se"
    seen: set = set()
    carry = None
    start = skip_rows          # data-row index of the chunk's first row
    try:
        reader = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunk_rows,
                             skipinitialspace=True, skip_blank_lines=False, encoding="utf-8-sig",
                             skiprows=(lambda i: 0 < i <= skip_rows) if skip_rows else None)
        for frame in reader:
            frame.columns = [str(c).strip() for c in frame.columns]
            frame = frame.apply(lambda col: col.str.strip())
            real = ~(frame == "").all(axis=1).to_numpy()
            index = np.flatnonzero(real) + start
            n_in = len(frame)
            frame = frame[real]
            ids = frame["meta_id"].to_numpy(dtype=object)
            lengths = frame["meta_id"].str.len().to_numpy()
            bad = (lengths == 0) | (lengths > ID_MAX) | \
                frame["meta_id"].str.contains(CONTROL).to_numpy(dtype=bool)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(f"meta_id must be 1 to {ID_MAX} printable characters",
                                 file=name, row=csv_row(index[i]), column="meta_id")
            y = _numbers(frame["y"], index, name, "y", False)
            v = _numbers(frame[variance], index, name, variance, True)
            if variance == "se":
                v = v * v
                if not (np.isfinite(v) & (v > 0)).all():
                    i = int(np.flatnonzero(~(np.isfinite(v) & (v > 0)))[0])
                    raise InputError("se squared is not a positive finite variance", file=name,
                                     row=csv_row(index[i]), column="se")
            meas = _labels(frame, "measure", settings.measure, BAYESIAN, index, name)
            ben = _labels(frame, "benefit", settings.benefit, BENEFITS, index, name)
            part = (ids, y, v, meas, ben, index)
            if carry is not None:
                part = tuple(np.concatenate([a, b]) for a, b in zip(carry, part))
            start += n_in
            if not len(part[0]):
                continue
            block, carry = _split(part, seen, name, final=False)
            if block is not None:
                yield block
        if carry is not None and len(carry[0]):
            block, _ = _split(carry, seen, name, final=True)
            yield block
    except UnicodeDecodeError:
        raise InputError("cannot decode the file as UTF-8 text; save it as UTF-8",
                         file=name) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"not a readable CSV file ({str(exc).strip().splitlines()[0]})",
                         file=name) from None


def _split(part, seen, name, final):
    """Complete meta-analyses of ``part`` as a Block, and the (maybe unfinished) last one."""
    ids, y, v, meas, ben, index = part
    change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate([[0], change])
    for column, values in (("measure", meas), ("benefit", ben)):
        first = np.repeat(values[starts], np.diff(np.append(starts, len(values))))
        if (values != first).any():
            i = int(np.flatnonzero(values != first)[0])
            raise InputError(f"'{values[i]}' differs from the first row of meta-analysis "
                             f"'{ids[i]}' ('{first[i]}'); one {column} per meta-analysis",
                             file=name, row=csv_row(index[i]), column=column)
    end = len(ids) if final else starts[-1]
    keep = starts[starts < end] if not final else starts
    for s in keep:
        key = ids[s]
        if key in seen:
            raise InputError(f"meta-analysis '{key}' appears again after other rows; the rows of "
                             "one meta-analysis must be consecutive (sort the file by meta_id)",
                             file=name, row=csv_row(index[s]), column="meta_id")
        seen.add(key)
    block = None
    if len(keep):
        block = Block(ids=ids[keep], starts=keep, y=y[:end], v=v[:end], measure=meas[keep],
                      benefit=ben[keep], rows=int(index[end - 1]) + 1)
    carry = tuple(a[end:] for a in part)
    return block, carry


# analysing ----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=64)
def resolved_prior(name: str | None, measure: str, benefit: str, prior_dir: str | None):
    """The prior set used for a meta-analysis of ``measure``: ``name`` where it applies, else its
    counterpart or the measure's default (as ``fit`` chooses), applied to an anonymous outcome."""
    from bayes_pip.data import Outcome
    from bayes_pip.priors import default_prior_name, load_prior_sets, prior_for, resolve_prior

    outcome = Outcome.anonymous("meta", measure, benefit)
    sets = load_prior_sets(extra=prior_dir)
    if name is not None and name not in sets:
        raise InputError(f"--prior {name}: no such prior set (available: {', '.join(sets)})")
    used, _ = prior_for(name or default_prior_name(measure), outcome, sets)
    return resolve_prior(used, outcome, sets)


def analyse(block: Block, settings: Settings) -> pd.DataFrame:
    """One output row per meta-analysis of ``block`` (in its order)."""
    from bayes_pip.engines.batch import exact_batch

    k = block.k
    n = len(k)
    columns = settings.columns()
    numeric = {c: np.full(n, np.nan) for c in columns
               if c not in ("meta_id", "k", "measure", "benefit", "prior", "error")}
    prior_used = np.empty(n, dtype=object)
    error = np.full(n, "", dtype=object)
    bucket = np.ceil(np.log2(k)).astype(int)      # padding stays under 2x the studies
    pairs = pd.MultiIndex.from_arrays([block.measure, block.benefit, bucket])
    codes, uniques = pd.factorize(pairs)
    for code, (measure, benefit, width) in enumerate(uniques):
        sel = np.flatnonzero(codes == code)
        prior = resolved_prior(settings.prior, measure, benefit, settings.prior_dir)
        prior_used[sel] = prior.name
        ks = k[sel]
        offsets = np.concatenate([[0], np.cumsum(ks)[:-1]])
        total = int(ks.sum())
        study = np.repeat(block.starts[sel] - offsets, ks) + np.arange(total)
        row = np.repeat(np.arange(len(sel)), ks)
        col = np.arange(total) - np.repeat(offsets, ks)
        # a fixed width per bucket: a row's numbers do not depend on its neighbours
        y = np.full((len(sel), 2 ** int(width)), np.nan)
        v = np.full_like(y, np.nan)
        y[row, col] = block.y[study]
        v[row, col] = block.v[study]
        try:
            ds = exact_batch(y, v, None, prior, benefit, tuple(QUANTILE_NAMES),
                             evidence=settings.evidence, tol=settings.tol)
        except InputError as exc:     # e.g. an improper prior and evidence asked for
            error[sel] = str(exc)
            continue
        for var in ("mu", "tau"):
            for q, label in QUANTILE_NAMES.items():
                numeric[f"{var}_{label}"][sel] = ds[var].sel(quantile=q).values
        for q, label in QUANTILE_NAMES.items():
            numeric[f"new_{label}"][sel] = ds["theta_new"].sel(quantile=q).values
        for c in ("mu_mean", "mu_sd", "tau_mean", "p_benefit", "p_benefit_new"):
            numeric[c][sel] = ds[c].values
        if settings.evidence:
            for i, model in enumerate(ds["model"].values):
                numeric[f"log_ml_{model}"][sel] = ds["log_ml"].values[:, i]
                numeric[f"prob_{model}"][sel] = ds["posterior_probability"].values[:, i]
            for c in EVIDENCE_COLUMNS[8:]:
                numeric[c][sel] = ds[c].values
        error[sel] = ds["error"].values
    frame = pd.DataFrame({"meta_id": block.ids, "k": k, "measure": block.measure,
                          "benefit": block.benefit, "prior": prior_used, **numeric,
                          "error": error})
    return frame[list(columns)]


def analyse_table(table: pd.DataFrame, settings: Settings = Settings()) -> pd.DataFrame:
    """In memory: the output rows for a long table (columns as the file's; rows of one
    meta-analysis consecutive). The streamed run writes the same rows."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.csv"
        table.to_csv(path, index=False)
        parts = [analyse(b, settings) for b in blocks(path, settings, chunk_rows=len(table) + 1)]
    return pd.concat(parts, ignore_index=True) if parts else \
        pd.DataFrame(columns=list(settings.columns()))


# the run ------------------------------------------------------------------------------------

def fingerprint(path: Path, settings: Settings) -> dict:
    """What a resumed run must share with the interrupted one: the input file (path, size,
    modification time) and the settings."""
    info = path.stat()
    return {"input": str(path.resolve()), "size": info.st_size, "mtime_ns": info.st_mtime_ns,
            "settings": asdict(settings)}


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


def count(path, settings: Settings, chunk_rows: int = CHUNK_ROWS) -> tuple[int, int]:
    """Check every row of the file; the numbers of meta-analyses and studies."""
    metas = studies = 0
    for b in blocks(path, settings, chunk_rows):
        metas += len(b.ids)
        studies += len(b.y)
    return metas, studies


def _start(out: Path, path: Path, settings: Settings, resume: bool, restart: bool):
    """(meta-analyses done, data rows done, output bytes done) to continue from."""
    progress = out / PROGRESS
    if progress.exists() and not (resume or restart):
        state = json.loads(progress.read_text())
        raise InputError(f"holds an unfinished run ({state['metas_done']:,} meta-analyses done); "
                         "add --resume to continue it or --restart to start again",
                         file=str(out))
    if resume and progress.exists():
        state = json.loads(progress.read_text())
        now = fingerprint(path, settings)
        changed = [key for key in now if state["fingerprint"].get(key) != now[key]]
        if changed:
            raise InputError(f"cannot resume: the {' and '.join(changed)} differ from the "
                             "interrupted run's; use --restart to start again", file=str(out))
        partial = out / PARTIAL
        if not partial.exists() or partial.stat().st_size < state["bytes_done"]:
            raise InputError(f"cannot resume: {PARTIAL} is missing or shorter than recorded; "
                             "use --restart", file=str(out))
        with open(partial, "r+b") as f:    # drop a chunk that was being written
            f.truncate(state["bytes_done"])
        return state["metas_done"], state["rows_done"], state["bytes_done"]
    return 0, 0, 0


def run(path, out, settings: Settings = Settings(), resume: bool = False, restart: bool = False,
        scheduler: str | None = None, chunk_rows: int = CHUNK_ROWS, progress=None) -> dict:
    """Analyse every meta-analysis in the CSV at ``path``; write ``out``/results.csv (one row per
    meta-analysis) and ``out``/run.json. Returns the run record (run.json's content).

    Bad input is found before anything is written (InputError). An interrupt (Ctrl-C, SIGTERM)
    leaves the finished chunks in ``out``/results.csv.partial; ``resume=True`` continues."""
    from bayes_pip.output import check_output_dir, signals_deferred, write_errors_are_input_errors
    from bayes_pip.analysis import versions

    path, out = Path(path), check_output_dir(out)
    began = time.perf_counter(), time.process_time()
    total, studies = count(path, settings, chunk_rows)   # every row checked before any output
    if not total:
        raise InputError("has no meta-analyses (only a header)", file=str(path))
    # a tolerance out of range (bp.run_database; the command line checks its own --tol) and an
    # unknown --prior fail here, before any output
    from bayes_pip.engines.batch import check_tol

    check_tol(settings.tol)
    resolved_prior(settings.prior, settings.measure or BAYESIAN[0], settings.benefit or "lower",
                   settings.prior_dir)
    # an unreachable scheduler fails here, before any output
    with _cluster(scheduler) as client, write_errors_are_input_errors(out):
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        metas, rows, size = _start(out, path, settings, resume, restart)
        mode = "r+b" if size else "wb"
        stamp = fingerprint(path, settings)
        with _kept_if_begun(out, created, fresh=not size), open(out / PARTIAL, mode) as sink:
            sink.seek(size)
            for frame, block in _results(path, settings, chunk_rows, rows, client):
                text = frame.to_csv(index=False, header=(size == 0), lineterminator="\n")
                data = text.encode()
                sink.write(data)
                sink.flush()
                os.fsync(sink.fileno())
                size += len(data)
                metas += len(frame)
                rows = block.rows
                _write_json(out / PROGRESS, {"fingerprint": stamp, "metas_done": metas,
                                             "metas_total": total, "rows_done": rows,
                                             "bytes_done": size})
                if progress:
                    rate = metas / max(time.perf_counter() - began[0], 1e-9)
                    progress(metas, total, f"meta-analyses ({rate:,.0f} per second)")
        errors, priors_used = _summary(out / PARTIAL, settings)
        from bayes_pip.engines.batch import quadrature_label
        record = {
            "command": "database", "input": str(path), "meta_analyses": total,
            "studies": studies, "without_posterior": errors,
            "settings": asdict(settings),
            "priors_used": priors_used,
            "engine": "exact (batched), normal-normal",
            "quadrature": quadrature_label(settings.tol),
            "scale": "effects on the analysis scale of y (log OR / log RR for ratios)",
            "model_prior_probability": "equal (1/4 each; 1/2 for FE0 and FE with one study)"
            if settings.evidence else None,
            "versions": versions(_Packages),
            "wall_seconds": round(time.perf_counter() - began[0], 3),
            "cpu_seconds_main_process": round(time.process_time() - began[1], 3),
        }
        with signals_deferred(out):
            from bayes_pip.record import versioned

            _write_json(out / RUN, versioned(record))
            os.replace(out / PARTIAL, out / RESULTS)
            with contextlib.suppress(FileNotFoundError):
                (out / PROGRESS).unlink()
    return record


class _Packages:
    packages = ("numpy", "scipy", "numba", "pandas", "xarray")


def _summary(results: Path, settings: Settings) -> tuple[int, list[dict]]:
    """From the written rows (a resumed run has not seen them all), in one chunked read: how
    many have no posterior, and the prior sets used, one entry per measure and benefit."""
    used: dict = {}
    errors = 0
    for part in pd.read_csv(results, usecols=["measure", "benefit", "prior", "error"],
                            dtype=str, keep_default_na=False, chunksize=CHUNK_ROWS):
        errors += int(part["error"].ne("").sum())
        keys = part[["measure", "benefit", "prior"]].drop_duplicates()
        used.update(dict.fromkeys(keys.itertuples(index=False, name=None)))
    out = []
    for measure, benefit, name in used:
        p = resolved_prior(settings.prior, measure, benefit, settings.prior_dir)
        note = ""
        if settings.prior is not None and name != settings.prior:
            note = (f"prior '{settings.prior}' does not apply to {measure}; '{name}' is used "
                    f"(as fit chooses)")
        out.append({"measure": measure, "benefit": benefit, "prior": name,
                    "asked_for": settings.prior, "note": note, "description": p.describe()})
    return errors, out


def _cluster(scheduler):
    """A Dask client for ``scheduler`` (None: no cluster, a serial run)."""
    if scheduler is None:
        return contextlib.nullcontext()
    from bayes_pip.cluster import client_for

    return client_for(scheduler)


@contextlib.contextmanager
def _kept_if_begun(out: Path, created: bool, fresh: bool):
    """A fresh run stopped before its first chunk was written leaves nothing behind: not the
    empty partial file, nor the output directory it created."""
    try:
        yield
    except BaseException:
        if fresh and not (out / PROGRESS).exists():
            with contextlib.suppress(OSError):
                (out / PARTIAL).unlink()
                if created:
                    out.rmdir()
        raise


def _results(path, settings, chunk_rows, skip_rows, client):
    """(output rows, block) per block, in input order: here, or (``client``) on a Dask cluster
    with a few blocks in flight per worker (memory stays bounded)."""
    source = blocks(path, settings, chunk_rows, skip_rows)
    if client is None:
        for block in source:
            yield analyse(block, settings), block
        return
    from collections import deque

    window = 2 * max(len(client.scheduler_info().get("workers", {})), 1)
    pending: deque = deque()
    for block in source:
        pending.append((client.submit(analyse, block, settings, pure=False), block))
        if len(pending) >= window:
            future, done = pending.popleft()
            yield future.result(), done
    while pending:
        future, done = pending.popleft()
        yield future.result(), done


def progress_of(out) -> str:
    """How far an interrupted run got, in words."""
    try:
        state = json.loads((Path(out) / PROGRESS).read_text())
    except (OSError, ValueError):
        return "no meta-analysis was finished"
    return (f"{state['metas_done']:,} of {state['metas_total']:,} meta-analyses are kept in "
            f"{Path(out) / PARTIAL}")
