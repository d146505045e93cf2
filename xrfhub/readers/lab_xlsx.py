"""Lab tables kept as Excel workbooks: the sheet a lab would otherwise export to CSV.

Most lab results live in spreadsheets, so a workbook is read as its CSV export would be: the
sheet whose header row (within its first rows) names a lab value (``CaCO3 [%]``, ``TOC``, a
column with a unit such as ``wt%``, or three element concentrations) is the table, and its rows
go through the same validation as a CSV's (:func:`xrfhub.readers.lab_csv.table_from_cells`):
core column or ``--core``, depth as mid-depth or top/bottom with units, ``--units`` for
concentrations without one, QC rows kept apart, a units row under the header. Row numbers in
messages and in the store are the sheet's own row numbers, as Excel shows them.

Sheets without such a header (notes, methods, plots' data) are skipped and named in the
table's metadata. Two table sheets in one workbook are refused rather than merged: their row
numbers would clash, and whether they are two cores, two labs or a draft and its copy is the
user's to say (save each as its own workbook or CSV).
"""
from __future__ import annotations

from pathlib import Path

from .. import properties as P
from ..errors import InputError
from ..records import LabTable
from . import lab_rules, workbook
from .lab_csv import check_options, table_from_cells

FORMAT = "lab-xlsx"
KIND = "samples"
DESCRIPTION = "Lab table as an Excel workbook (.xlsx; one sheet: core, depth or top/bottom, values)"

def sniff(head: bytes, name: str = "") -> bool:
    """Any workbook (whether a sheet is a lab table is :func:`confirm`'s question)."""
    return workbook.sniff(head, name)


def confirm(raw: bytes, name: str = "") -> bool:
    """A workbook with a sheet whose header names a lab value. Other workbooks (a core log, a
    plot's data) are not claimed: in a folder they are passed over like any file no reader
    knows, and named explicitly they are refused with what was looked for."""
    try:
        sheets = workbook.load_sheets(name or "workbook", raw)
    except InputError:
        return True  # damaged: read says how
    return any(_header_row(rows) is not None for _title, rows in sheets)


def declined(path, raw: bytes) -> str:
    """Why no reader took this workbook (after every workbook reader's ``confirm`` said no)."""
    return f"an Excel workbook, but {_no_table(workbook.read_sheets(path, raw))}"


def _no_table(sheets) -> str:
    names = ", ".join(repr(title) for title, _rows in sheets) or "none"
    return f"{workbook.NO_TABLE}; sheets: {names}"


def _header_row(rows: list[tuple]) -> int | None:
    """Index of the first row that names a lab value (the rule ``lab_csv.sniff`` applies to a CSV)."""
    for i, row in enumerate(rows[:workbook.HEADER_SEARCH_ROWS]):
        fields = [P.split_header(workbook.cell_text(c)) for c in row]
        fields = [f for f in fields if f.text]
        values = [f for f in fields if P.column_role(f) == P.PROPERTY]
        known = any(P.is_known_property(f.name) or P.unit_key(f.unit) in P.VALUE_UNITS for f in values)
        if known or sum(lab_rules.is_concentration(f.name) for f in values) >= 3:
            return i
    return None


def read(path, *, source: str | None = None, raw: bytes | None = None, core: str | None = None,
         depth_unit: str | None = None, ignore_columns=(), units=None, **options) -> LabTable:
    """Read the lab-table sheet of a workbook (options as :func:`xrfhub.readers.lab_csv.read`)."""
    check_options(options, set(), FORMAT)
    path = Path(path)
    sheets = workbook.read_sheets(path, raw)
    tables = [(title, rows, at) for title, rows in sheets if (at := _header_row(rows)) is not None]
    if not tables:
        raise InputError(path, _no_table(sheets))
    if len(tables) > 1:
        raise InputError(path, f"sheets {', '.join(repr(t) for t, _r, _a in tables)} each hold a lab table: "
                               "one table per workbook (save each sheet as its own workbook or CSV, so that "
                               "each keeps its own row numbers)")
    title, rows, at = tables[0]
    header = [workbook.cell_text(c) for c in rows[at]]
    body = [(at + 2 + i, [workbook.cell_text(c) for c in row])
            for i, row in enumerate(rows[at + 1:]) if any(workbook.cell_text(c) for c in row)]
    meta = {"format": FORMAT, "sheet": title, "header_row": str(at + 1)}
    skipped = [t for t, _rows in sheets if t != title]
    if skipped:
        meta["skipped_sheets"] = "\t".join(skipped)
    if body and (row_units := lab_rules.units_row(header, body[0][1])) is not None:
        header = [f"{h} [{u}]" if h.strip() and u and not P.split_header(h).unit else h
                  for h, u in zip(header, row_units)]
        meta["units_row"] = f"row {body[0][0]}"
        body = body[1:]
    where = f"{path}, sheet {title!r}"  # messages then read "<file>, sheet 'Data', line 7: ..."
    return table_from_cells(where, header, body, source=source or path.name, decimal=".", core=core,
                            depth_unit=depth_unit, ignore_columns=ignore_columns, metadata=meta, units=units)
