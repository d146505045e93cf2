"""The errors xrfhub raises on purpose.

Every failure a user can cause is one of these: the message names the file (and the line or
field when there is one) and says what was expected, so the CLI can print it and exit non-zero
without a traceback.
"""
from __future__ import annotations

from os import PathLike


class XrfhubError(Exception):
    """Base class of every error xrfhub raises deliberately."""

    exit_code = 1


class InputError(XrfhubError, ValueError):
    """A source file cannot be read as what it claims to be.

    Parameters
    ----------
    path : the offending file.
    message : what was wrong and what was expected.
    line : 1-based line number, when the problem sits on one line.
    field : the header key, column or attribute at fault, when there is one.
    """

    exit_code = 2
    #: the other files an ingest refused with this one (it reads every file before it refuses,
    #: so a user fixes them in one round, not one per run)
    others: tuple["InputError", ...] = ()

    def __init__(self, path: str | PathLike, message: str, *, line: int | None = None,
                 field: str | None = None, lacks: frozenset[str] = frozenset()):
        self.path = str(path)
        self.line = line
        self.field = field
        self.reason = message
        #: facts the file does not give that a user (or the ingest, from elsewhere) can supply:
        #: "core", "depth_unit", "units"; empty when the file is wrong, not incomplete
        self.lacks = frozenset(lacks)
        where = self.path
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self):  # keep path/line/field when errors travel back from dask workers
        return (_rebuild_input_error, (type(self), self.path, self.reason, self.line, self.field, self.lacks))


def _rebuild_input_error(cls, path, reason, line, field, lacks=frozenset()):
    err = cls(path, reason, line=line, field=field)
    err.lacks = lacks  # set after: subclasses need not take it
    return err


class UnknownFormatError(InputError):
    """No reader recognises the file's content."""


class StoreError(XrfhubError):
    """The store is missing, locked, damaged or asked for something it does not hold."""

    exit_code = 3


class NotInIndexError(StoreError, KeyError):
    """A selection asked for a core or an exact depth the dataset does not hold.

    A ``KeyError`` so that code written for xarray's own ``sel`` keeps working, and a
    :class:`~xrfhub.errors.StoreError` so that the CLI reports it without a traceback.
    """

    #: a misspelled core or a depth the store does not hold is the user's input, not a store
    #: problem: ``xrfhub query`` exits 2 (docs/bad-input.md)
    exit_code = 2

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


class StoreLockedError(StoreError):
    """Another process is writing the store."""

    exit_code = 4


class ConfigError(XrfhubError, ValueError):
    """A plugin, stage, target or configuration value that does not exist or does not fit."""

    exit_code = 2


class NotStored(XrfhubError):
    """A file recognised and deliberately not stored (not an error): e.g. an ITRAX section sum
    spectrum, or a result table superseded by a newer evaluation of the same points.

    Raised by a reader; ingest records the file with the reason in the store's manifest (so
    re-ingesting finds it known) and says so in its report, instead of refusing it.
    """

    exit_code = 0

    def __init__(self, path: str | PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
