"""The CSV grammar of data files: reading a table safely (size, encoding, line ends, header,
blank rows), numbers and identifiers as the schema allows them, and where a value sits (file,
row as a spreadsheet shows it, column). Nothing here knows what a column means; that is
:mod:`bayes_pip.validate`."""

from __future__ import annotations

import csv
import io
import math
import re
import stat
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_pip.errors import DataWarning, InputError


MAX_FILE_BYTES = 50_000_000  # a Cochrane review's tables are kilobytes


NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


# identifiers from data files are data, never paths: outcome and prior ids name output files, so
# they are restricted to a safe set; study names are labels (spaces allowed) without control
# characters. See check_identifier / check_label.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


ID_MAX = 100


LABEL_MAX = 200


RESERVED_IDS = frozenset({"summary_of_findings", "con", "prn", "aux", "nul", *(
    f"{d}{i}" for d in ("com", "lpt") for i in range(1, 10))})


def read_table(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """Read one CSV as strings, refusing empty, binary or undecodable files and missing columns.

    A UTF-8 byte-order mark and CRLF line ends (as in Cochrane exports) are accepted; ISO-8859-1
    files are decoded as such when they are not valid UTF-8.
    """
    name = str(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):
            raise InputError("is not a regular file (a pipe, device or socket); give a CSV file",
                             file=name)
        if info.st_size > MAX_FILE_BYTES:
            raise InputError(f"is {info.st_size / 1e6:.0f} MB; the limit is "
                             f"{MAX_FILE_BYTES / 1e6:.0f} MB per CSV file", file=name)
        raw = path.read_bytes()
    except IsADirectoryError:
        raise InputError("is a directory, expected a CSV file", file=name) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", file=name) from None
    return parse_table(raw, name, required)


def parse_table(raw: bytes, name: str, required: tuple[str, ...]) -> pd.DataFrame:
    """Parse CSV bytes as strings (see :func:`read_table`); ``name`` labels error messages."""
    if not raw.strip():
        raise InputError("file is empty (expected a header row and data rows)", file=name)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or (
            b"\x00" in raw[:200] and raw[:200].count(b"\x00") * 3 >= len(raw[:200])):
        raise InputError("file is UTF-16 text; save it as UTF-8 (in Excel: CSV UTF-8)",
                         file=name)
    if b"\x00" in raw:
        raise InputError("file is binary, not a CSV text file", file=name)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        if any(0x80 <= ord(ch) < 0xA0 for ch in text):
            raise InputError("cannot decode file as UTF-8 or ISO-8859-1 text (it may be "
                             "Windows-1252); save it as UTF-8", file=name) from None
    # line ends as Windows (CRLF), Unix (LF) or classic Mac OS (CR only) write them
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    header = next(csv.reader(io.StringIO(text)), [])
    names = [h.strip() for h in header]
    for column in names:
        if column and names.count(column) > 1:
            raise InputError("column name appears twice in the header", file=name, row=1,
                             column=column)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                            skipinitialspace=True, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"not a readable CSV file ({str(exc).strip().splitlines()[0]})",
                         file=name) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    blank = (frame == "").all(axis=1).to_numpy()
    if blank.any():  # blank lines at the end are fine; inside the table they would shift rows
        last = int(np.flatnonzero(~blank)[-1]) if (~blank).any() else -1
        inner = np.flatnonzero(blank[:last + 1])
        if inner.size:
            raise InputError("row is empty; remove empty lines inside the table", file=name,
                             row=csv_row(int(inner[0])))
        frame = frame.iloc[:last + 1]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(f"missing required column(s) {', '.join(missing)} "
                         f"(required: {', '.join(required)})", file=name, column=missing[0])
    frame = frame.apply(lambda col: col.str.strip())
    return frame


def csv_row(index: int) -> int:
    """Row number as a spreadsheet shows it: the header is row 1, the first data row is row 2."""
    return int(index) + 2


def parse_number(frame: pd.DataFrame, column: str, file: str, *, required: bool,
                 integer: bool = False, minimum: float | None = None,
                 strictly_positive: bool = False) -> pd.Series:
    """Parse a column of strings into floats, with one clear error for the first bad cell."""
    values = []
    for i, text in enumerate(frame[column] if column in frame.columns else [""] * len(frame)):
        if text == "":
            if required:
                raise InputError("value is missing (a number is required here)", file=file,
                                 row=csv_row(i), column=column)
            values.append(math.nan)
            continue
        if text.lower().lstrip("+-") in ("inf", "infinity", "nan"):
            raise InputError(f"'{text}' is not a finite number", file=file, row=csv_row(i),
                             column=column)
        if not NUMBER.fullmatch(text):
            raise InputError(f"'{text}' is not a number (plain decimal numbers only, such as 12, "
                             "0.35 or 1.5e-3)", file=file, row=csv_row(i), column=column)
        x = float(text)
        if not math.isfinite(x):
            raise InputError(f"'{text}' is not a finite number", file=file, row=csv_row(i),
                             column=column)
        if integer and x != round(x):
            raise InputError(f"'{text}' is not a whole number (counts must be whole)", file=file,
                             row=csv_row(i), column=column)
        if strictly_positive and x <= 0:
            raise InputError(f"{text} must be greater than 0", file=file, row=csv_row(i),
                             column=column)
        if minimum is not None and x < minimum:
            raise InputError(f"{text} must be at least {minimum:g}", file=file, row=csv_row(i),
                             column=column)
        values.append(x)
    return pd.Series(values, index=frame.index, dtype=float)


def check_choice(frame: pd.DataFrame, column: str, allowed: tuple[str, ...], file: str) -> None:
    for i, value in enumerate(frame[column]):
        if value not in allowed:
            raise InputError(f"'{value}' is not allowed (allowed: {', '.join(allowed)})",
                             file=file, row=csv_row(i), column=column)


def identifier_problem(value: str) -> str | None:
    """Why ``value`` cannot be an id (outcome or prior name), or None when it can."""
    if len(value) > ID_MAX:
        return f"is longer than {ID_MAX} characters"
    if not ID_PATTERN.fullmatch(value) or ".." in value:
        return ("is not a valid id (allowed: letters, digits, '_', '-' and '.', starting with a "
                "letter or digit, no '..')")
    if value.lower().split(".")[0] in RESERVED_IDS:
        return "is a reserved name"
    return None


def check_identifier(frame: pd.DataFrame, column: str, file: str) -> None:
    for i, value in enumerate(frame[column]):
        problem = identifier_problem(value)
        if problem:
            raise InputError(f"{value[:60]!r} {problem}", file=file, row=csv_row(i),
                             column=column)


def check_label(frame: pd.DataFrame, column: str, file: str) -> None:
    """Labels (study names, outcome labels): printable text of bounded length."""
    for i, value in enumerate(frame[column]):
        if len(value) > LABEL_MAX:
            raise InputError(f"is longer than {LABEL_MAX} characters", file=file,
                             row=csv_row(i), column=column)
        if any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in value):
            raise InputError("contains a control character", file=file, row=csv_row(i),
                             column=column)


def check_nonempty(frame: pd.DataFrame, column: str, file: str) -> None:
    for i, value in enumerate(frame[column]):
        if value == "":
            raise InputError("value is missing", file=file, row=csv_row(i), column=column)


def warn_missing_sources(frame: pd.DataFrame, file: str) -> None:
    """User data may leave ``source`` empty; say how many rows (the bundled data never do)."""
    rows = [csv_row(i) for i, value in enumerate(frame["source"]) if value == ""]
    if rows:
        shown = ", ".join(str(r) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
        warnings.warn(DataWarning(
            f"{file}: {len(rows)} of {len(frame)} rows have no source (rows {shown}); every "
            "number in a report should say where it comes from"), stacklevel=2)


def printed_decimals(x: float) -> int:
    """Decimals a value was printed with, read back from the CSV number (63.7 -> 1, 0.58 -> 2).

    A trailing zero the source printed (63.70) is not in the CSV, so the tolerance derived from
    this is never narrower than the printed one (a conservative reconstruction)."""
    text = repr(float(x))
    return len(text.split(".")[1].rstrip("0")) if "e" not in text and "." in text else 0

