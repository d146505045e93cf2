"""Readers: one module per source format, chosen by content.

Every reader module exposes ``FORMAT`` (the name ``--format`` takes), ``KIND`` (the store kind it
fills), ``DESCRIPTION``, ``sniff(head: bytes, name: str) -> bool`` and ``read(path, *, source,
**options)``. Recognition is by content (the first bytes of the file), never by suffix alone:
Avaatech and ITRAX both write ``.spe``, ITRAX tables have many names, and lab exports are
plain text. A reader whose format the first bytes cannot settle (every workbook starts as the
same zip) also exposes ``confirm(raw: bytes, name: str) -> bool``, asked on the whole file
before it is chosen; when it says no, detection goes on to the next reader, and when no reader
takes the file, the last that declined says why (``declined(path, raw) -> str``) where it can.
"""
from __future__ import annotations

import functools
import importlib
from pathlib import Path
from types import ModuleType

from ..errors import InputError, UnknownFormatError

#: Reader modules in sniffing order (most specific first).
_MODULES = (
    "avaatech_spe",
    "baxil_axml",
    "baxil_csv",
    "avaatech_xlsx",
    "lab_xlsx",
    "itrax_spe",
    "itrax_results",
    "mca_amptek",
    "mca_spec",
    "xrd_raw4",
    "xrd_uxd",
    "pxrf_export",
    "lab_pangaea",
    "lab_iodp",
    "lab_csv",
    "xrd_nexus",
    "xrd_labels",
    "xrd_text",
)

SNIFF_BYTES = 8192


@functools.lru_cache(maxsize=None)
def _load(name: str) -> ModuleType | None:
    """Reader module ``name`` of ``_MODULES``, imported once (None when it is not installed)."""
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.endswith(name):
            return None
        raise


@functools.lru_cache(maxsize=1)
def readers() -> dict[str, ModuleType]:
    """Installed readers by format name (modules that fail to import are skipped).

    Cached: detection asks for them once per file, and 13 ``import_module`` lookups per file
    cost seconds over a large ingest. Do not modify the returned mapping."""
    found = {}
    for name in _MODULES:
        module = _load(name)
        if module is not None:
            found[module.FORMAT] = module
    return found


def known_formats() -> str:
    return ", ".join(f"{fmt} ({m.DESCRIPTION})" for fmt, m in readers().items())


def detect(path: str | Path, head: bytes | None = None, raw: bytes | None = None) -> ModuleType:
    """The reader whose ``sniff`` accepts the file's first bytes (and whose ``confirm``, where
    it has one, the whole file: ``raw``, else read from ``path``)."""
    path = Path(path)
    if head is None:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    if not head.strip():
        raise UnknownFormatError(path, "the file is empty")
    # in sniffing order, each reader imported when first asked: a folder of one format imports
    # its reader and those before it, not all seventeen (a tenth of a second of every command)
    declined = None  # the last reader that knew the container but not what is inside
    for name in _MODULES:
        module = _load(name)
        if module is not None and module.sniff(head, path.name):
            confirm = getattr(module, "confirm", None)
            if confirm is None:
                return module
            if raw is None:
                raw = path.read_bytes()
            if confirm(raw, str(path)):
                return module
            declined = module
    if declined is not None and hasattr(declined, "declined"):  # it can say what it looked for
        raise UnknownFormatError(path, declined.declined(path, raw))
    container = _unread_container(head)
    if container:
        raise UnknownFormatError(path, f"{container}: xrfhub reads Excel workbooks as .xlsx, and text tables; "
                                       "save it as .xlsx or CSV (File > Save As) and ingest that")
    raise UnknownFormatError(path, f"unrecognised content; known formats: {known_formats()}. "
                                   "Use --format to name one")


def _unread_container(head: bytes) -> str | None:
    """What a spreadsheet this package cannot read is, when its first bytes say (else None):
    an old binary workbook or an OpenDocument one is a lab table in another container, and the
    user's fix is one Save As, which a list of formats would not tell them."""
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "an Excel 97-2003 workbook (.xls) or another OLE2 compound file"
    if head.startswith(b"PK\x03\x04") and b"application/vnd.oasis.opendocument.spreadsheet" in head[:200]:
        return "an OpenDocument spreadsheet (.ods)"
    return None


def get(format_name: str) -> ModuleType:
    try:
        return readers()[format_name]
    except KeyError:
        raise InputError("--format", f"unknown format {format_name!r}; known formats: {known_formats()}") from None
