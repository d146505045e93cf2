"""Stable identifiers: UUIDs for cores, scans and runs; DOI and IGSN where someone gives them.

The UUIDs are name-based (RFC 4122 version 5) under one xrfhub namespace, so the same core id
gives the same UUID in every file, generation, rebuild and export (NeXus ``entry_identifier_uuid``,
the hub's ``core_uuids`` attribute, the RO-Crate's ``identifier``), without a table to keep in
sync. They identify a core *within the name space of core ids*; a persistent, global identity
is the IGSN (a core) or DOI (a data set), which xrfhub never invents: they come from a lab table
or from ``--identifiers FILE``.

``--identifiers FILE`` is a CSV (comma or TAB) with a header naming ``core`` and any of ``igsn``,
``doi``; the row whose core is ``dataset`` gives the DOI of the whole store.
"""
from __future__ import annotations

import csv
import io
import re
import uuid
from pathlib import Path

from .errors import InputError

#: the namespace of every xrfhub UUID (itself uuid5 of the project's URL in the URL namespace)
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/xrfhub/xrfhub")
DATASET = "dataset"
_DOI = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)?(10\.\d{4,9}/\S+)$", re.IGNORECASE)
_IGSN = re.compile(r"^(?:https?://(?:hdl\.handle\.net/10273/|igsn\.org/)|igsn:)?([A-Z0-9][A-Z0-9.\-/]{3,})$",
                   re.IGNORECASE)


def core_uuid(core: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"core:{core}"))


def scan_uuid(core: str, scan: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"scan:{core}/{scan}"))


def run_uuid(run: str) -> str:
    """A prediction run or an ingest (its log time stamp): ``run`` is its id."""
    return str(uuid.uuid5(NAMESPACE, f"run:{run}"))


def normalise_doi(value: str, where: str = "") -> str:
    """``10.xxxx/yyy`` from a DOI written bare, as ``doi:`` or as a doi.org URL."""
    m = _DOI.match(value.strip())
    if not m:
        raise ValueError(f"{where}{value!r} is not a DOI (expected 10.NNNN/suffix)")
    return m.group(1)


def normalise_igsn(value: str, where: str = "") -> str:
    m = _IGSN.match(value.strip())
    if not m:
        raise ValueError(f"{where}{value!r} is not an IGSN (letters, digits, '.', '-', '/')")
    return m.group(1).upper()


def read_identifiers(path) -> dict[str, dict[str, str]]:
    """``core -> {"igsn": ..., "doi": ...}`` from an identifiers CSV (see the module doc).

    Refuses a file without a ``core`` column, a core listed twice, or a value that is not a DOI
    or IGSN, naming the file and line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the identifiers file: {exc}") from exc
    dialect = "excel-tab" if "\t" in text.partition("\n")[0] else "excel"
    rows = list(csv.reader(io.StringIO(text), dialect))
    if not rows:
        raise InputError(path, "the identifiers file is empty; expected a header 'core,igsn,doi'", line=1)
    header = [h.strip().lower() for h in rows[0]]
    if "core" not in header or not {"igsn", "doi"} & set(header):
        raise InputError(path, f"header {rows[0]} must name 'core' and at least one of 'igsn', 'doi'", line=1)
    out: dict[str, dict[str, str]] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        cells = dict(zip(header, (c.strip() for c in row)))
        core = cells.get("core", "")
        if not core:
            raise InputError(path, "the core cell is empty", line=number)
        if core in out:
            raise InputError(path, f"core {core!r} is listed twice", line=number)
        entry = {}
        try:
            if cells.get("doi"):
                entry["doi"] = normalise_doi(cells["doi"], "doi ")
            if cells.get("igsn"):
                if core == DATASET:
                    raise ValueError("the 'dataset' row takes a DOI, not an IGSN")
                entry["igsn"] = normalise_igsn(cells["igsn"], "igsn ")
        except ValueError as exc:
            raise InputError(path, str(exc), line=number) from exc
        out[core] = entry
    return out
