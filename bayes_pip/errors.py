"""Typed errors shared by every stage.

The CLI maps them onto exit codes: InputError -> 2, ConvergenceError -> 3. Anything else is an
internal failure (exit 1).
"""

from __future__ import annotations


class InputError(Exception):
    """A problem with what the user gave us: a file, a row, a column, an option.

    The message is one line: ``file, row N, column 'c': what is wrong (what is allowed)``.
    """

    def __init__(self, message: str, file: str | None = None, row: int | None = None,
                 column: str | None = None):
        self.message = message
        self.file = file
        self.row = row
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class ConvergenceError(Exception):
    """MCMC output that fails the convergence checks; never summarised silently."""


class Terminated(BaseException):
    """SIGTERM arrived: stop the work like Ctrl-C does (exit 143), leaving nothing half-written.

    A BaseException, so that library code catching Exception (or a sampler catching
    KeyboardInterrupt to return a partial trace) does not swallow it.
    """


class OutputComplete(BaseException):
    """Ctrl-C or SIGTERM arrived while the finished output was being moved into place: the move
    completed (the new set is whole) and the command stops there (exit 130 or 143)."""

    def __init__(self, signum: int, target: str):
        self.signum, self.target = signum, target
        super().__init__(target)


class SamplerError(Exception):
    """The sampler could not run (for instance no finite starting point): exit 1 with a message."""


class DataWarning(UserWarning):
    """Data that load but lack something a report should have (e.g. rows without a source).
    The CLI prints each as one 'bayes_pip: warning:' line on stderr."""
