"""Avaatech processed exports as an Excel workbook: one sheet per tube voltage.

Each sheet (``10kV``, ``30kV`` ...) holds a header row and one row per measured point::

    Spectrum | CoreID | SectionID | CoreDepth | DateID | TubeVoltage-kV | TubeCurrent-uA |
    X Position-mm | Y Position-mm | Filter | SlitSize DC-mm | SlitSize CC-mm | RunCount |
    Replicate Nr Count | Setting MCA | Acquisition time | Live time | Real time | Throughput |
    Mg-Ka Chi2 | Mg-Ka Area | Mg-Ka AreaStd | ...

Header cells may carry stray spaces (``'Ba-La AreaStd '``); ``Spectrum`` is free text here
(a sample name), the metadata sit in their own columns. The rows are read by the same logic as
the bAXIL CSV (:func:`xrfhub.readers.baxil_csv.table_part`): depth is ``CoreDepth``, whose unit
is decided from the data (in the known exports it equals ``X Position-mm`` with section 0, so
it is in mm; ``depth_unit=`` forces ``"mm"`` or ``"cm"``), and a ``CoreID`` of 0 is the
software's placeholder, so ``core=`` (``--core``) must name the core.

All sheets that look like an Avaatech export (a ``Spectrum`` column and ``<line> Area``
columns) become points of one table, each with its sheet's tube voltage (the
``TubeVoltage-kV`` column, else the number before ``kV`` in the sheet name); lines are the
union over sheets, NaN where a sheet lacks one. Other sheets are skipped and named in
``metadata['skipped_sheets']``.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..records import ElementTable
from . import workbook
from .baxil_csv import describe_depth_rule, assemble, line_column, table_part, vendor_lines

FORMAT = "avaatech-xlsx"
KIND = "elements"
DESCRIPTION = "Avaatech processed export as an Excel workbook (one sheet per tube voltage)"

_SHEET_KV = re.compile(r"(\d+(?:[.,]\d+)?)\s*kv", re.IGNORECASE)


def sniff(head: bytes, name: str = "") -> bool:
    """Any workbook (whether its sheets are an Avaatech export is :func:`confirm`'s question)."""
    return workbook.sniff(head, name)


def confirm(raw: bytes, name: str = "") -> bool:
    """A workbook with a sheet that looks like an Avaatech export; other workbooks go on to the
    next reader that sniffs workbooks (a lab table, see ``lab_xlsx``)."""
    try:
        sheets = workbook.load_sheets(name or "workbook", raw)
    except InputError:
        return True  # damaged: this reader's read says how
    return any(_header_row(rows) is not None for _title, rows in sheets)


def _header_row(rows: list[tuple]) -> int | None:
    """Index of the header row: the first with a ``Spectrum`` cell and a ``<line> Area`` cell."""
    for i, row in enumerate(rows[:workbook.HEADER_SEARCH_ROWS]):
        cells = [workbook.cell_text(c) for c in row]
        if any(c.lower() == "spectrum" for c in cells) and any(line_column(c) for c in cells):
            return i
    return None


def read(path, *, source: str | None = None, raw: bytes | None = None, core: str | None = None,
         section_top_mm_override: float | None = None, depth_unit: str | None = None,
         **_options) -> ElementTable:
    """Read every Avaatech sheet of a workbook into one :class:`ElementTable`."""
    path = Path(path)
    source = source or path.name
    parts, notes, used, skipped, depth_units, all_lines = [], [], [], [], [], {}
    for title, rows in workbook.read_sheets(path, raw):
        at = _header_row(rows)
        if at is None:
            skipped.append(title)
            continue
        header = [workbook.cell_text(c) for c in rows[at]]
        body = [(at + 2 + i, list(row) + [None] * (len(header) - len(row)))
                for i, row in enumerate(rows[at + 1:]) if any(workbook.cell_text(c) for c in row)]
        if not body:
            notes.append(f"sheet {title!r} has no data rows")
            skipped.append(title)
            continue
        kv = _SHEET_KV.search(title)
        facts: dict[str, str] = {}
        part = table_part(path, header, body, source=source, header_line=at + 1, core=core,
                          section_top_mm_override=section_top_mm_override, depth_unit=depth_unit,
                          default_kv=float(kv.group(1).replace(",", ".")) if kv else math.nan,
                          sheet=title, notes=notes, facts=facts)
        if "core_depth_unit" in facts:
            depth_units.append(f"{title}: {facts['core_depth_unit']}")
        parts.append((part[0].rename(columns={"file_line": "sheet_row"}), part[1]))
        used.append(title)
        all_lines.update(dict.fromkeys(vendor_lines(header).split("\t")))
    if not parts:
        raise InputError(path, "no sheet looks like an Avaatech export (a header row with 'Spectrum' and "
                               f"'<line> Area' columns within the first {workbook.HEADER_SEARCH_ROWS} rows); "
                               f"sheets: {', '.join(map(repr, skipped)) or 'none'}")
    points = pd.concat([p for p, _ in parts], ignore_index=True)
    metadata = {"instrument": "avaatech", "format": FORMAT, "sheets": "\t".join(used),
                "vendor_lines": "\t".join(all_lines), "depth_rule": describe_depth_rule(points)}
    if depth_units:
        metadata["core_depth_unit"] = "; ".join(depth_units)
    if skipped:
        metadata["skipped_sheets"] = "\t".join(skipped)
    if notes:
        metadata["warnings"] = "; ".join(notes)
    return assemble(source, parts, metadata)
