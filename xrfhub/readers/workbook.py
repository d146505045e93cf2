"""Excel workbooks (.xlsx) as rows of cell values: what the workbook readers share.

Not a reader itself: ``avaatech_xlsx`` (vendor element tables) and ``lab_xlsx`` (lab tables)
both sniff a workbook, and which one it is can only be told from its sheets, which sit
compressed inside the zip (the first bytes say "workbook", never "which"). So detection asks
each workbook reader to :func:`confirm` on the whole file, and both read through
:func:`load_sheets`, which keeps the last workbook it opened: the confirming reader and the
reading one then open it once between them.
"""
from __future__ import annotations

import datetime as dt
import io
import itertools
import math
import threading
from pathlib import Path

from ..errors import InputError

ZIP_MAGIC = b"PK\x03\x04"
#: Excel's own row limit; openpyxl fills the gap up to a row's number with empty rows, so a
#: damaged ``<row r="18446744073709551616">`` would otherwise never end
EXCEL_MAX_ROWS = 1_048_576

#: rows of a sheet searched for its header (titles, notes or a blank row often sit above it)
HEADER_SEARCH_ROWS = 20
#: what a workbook no reader confirms lacks (said by ``readers.detect`` and ``lab_xlsx.read``)
NO_TABLE = ("no sheet holds a table xrfhub reads: expected a lab table (a header row naming a lab value such "
            "as 'CaCO3 [%]' or 'TOC', and a depth column) or an Avaatech export ('Spectrum' and "
            f"'<line> Area' columns) within a sheet's first {HEADER_SEARCH_ROWS} rows")

_last: tuple[bytes, list] | None = None
_lock = threading.Lock()


def sniff(head: bytes, name: str = "") -> bool:
    """A zip that is an Office workbook: named ``.xlsx``/``.xlsm`` or holding ``xl/`` parts."""
    return head.startswith(ZIP_MAGIC) and (name.lower().endswith((".xlsx", ".xlsm")) or b"xl/" in head)


def cell_text(value) -> str:
    """A cell as the text a CSV export of it would hold: numbers without Excel's float noise
    in the integers (``12.0`` -> ``12``), dates in ISO form, empty cells empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return str(value).strip()


def _rows(sheet, path) -> list[tuple]:
    rows = list(itertools.islice(sheet.iter_rows(values_only=True), EXCEL_MAX_ROWS + 1))
    if len(rows) > EXCEL_MAX_ROWS:
        raise InputError(path, f"sheet {sheet.title!r} has more rows than Excel allows "
                               f"({EXCEL_MAX_ROWS:,}): a damaged workbook")
    return rows


def read_sheets(path, raw: bytes | None = None) -> list[tuple[str, list[tuple]]]:
    """The sheets of the workbook at ``path`` (its bytes ``raw`` when the caller has them)."""
    path = Path(path)
    if raw is None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    if not raw.startswith(ZIP_MAGIC):
        raise InputError(path, "not an .xlsx workbook (no zip signature): expected an Excel workbook")
    return load_sheets(path, raw)


def load_sheets(path, data: bytes) -> list[tuple[str, list[tuple]]]:
    """``(sheet name, rows of cell values)`` for every worksheet; InputError if unreadable."""
    global _last
    with _lock:
        if _last is not None and _last[0] is data:
            return _last[1]
    import openpyxl  # imported here: only workbook reading needs it

    path = Path(path)
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure of the zip/XML parser is a damaged file
        raise InputError(path, f"not a readable .xlsx workbook ({type(exc).__name__}: {exc}); "
                               "expected an Excel workbook (.xlsx)") from None
    try:
        sheets = [(sheet.title, _rows(sheet, path)) for sheet in book.worksheets]
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a sheet part that is cut off or not XML
        raise InputError(path, f"damaged worksheet in the workbook ({type(exc).__name__}: {exc})") from None
    finally:
        book.close()
    with _lock:
        _last = (data, sheets)
    return sheets
