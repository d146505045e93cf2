"""PANGAEA text export (``.tab``): a metadata block, then a TAB-separated table.

Layout::

    /* DATA DESCRIPTION:
    Citation:<TAB>Author (2010): Title ...
    Event(s):<TAB>PS75/056-1 * LATITUDE: -55.16 * LONGITUDE: -114.79 * ...
    Parameter(s):<TAB>Event label (Event)
    <TAB>Depth, sediment/rock [m] (Depth sed) * ...
    <TAB>Calcium carbonate [%] (CaCO3) * ...
    */
    Event<TAB>Depth sed [m]<TAB>CaCO3 [%]
    PS75/056-1<TAB>0.05<TAB>?45.2

Records are ``Key:<TAB>value``; a line starting with TAB continues the record above (one
parameter or one event per line). ``Depth sed`` is the mid-depth unless ``Depth top`` and
``Depth bot`` exist. Columns in counts or counts per second (XRF core-scanner intensities, as
``xrfhub export --format pangaea`` writes beside the lab values) are not lab values and are read
past, listed in the metadata. Value prefixes are quality flags: ``?`` questionable and ``*`` unknown keep
the value, ``/`` (not valid) drops it; the flag is kept beside the value either way.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..records import LabTable
from ..properties import split_header, unit_key
from .lab_csv import check_options, read_text, split_lines, table_from_cells

FORMAT = "pangaea"
KIND = "samples"
DESCRIPTION = "PANGAEA text export (.tab)"

_OPENING = "/* DATA DESCRIPTION:"
#: units of XRF scanner intensities (``unit_key`` spelling)
INTENSITY_UNITS = frozenset({"cps", "counts", "cts", "counts/s", "count"})
_CLOSING = "*/"


def sniff(head: bytes, name: str = "") -> bool:
    """PANGAEA exports open with ``/* DATA DESCRIPTION:`` (after an optional BOM)."""
    return head.lstrip(b"\xef\xbb\xbf").lstrip().startswith(_OPENING.encode("ascii"))


def parse_description(path, lines: list[str]) -> tuple[dict[str, str], int]:
    """The metadata block as ``key -> value`` (continuations joined by newlines) and the index
    of the first line after the closing ``*/``."""
    if not lines or not lines[0].lstrip().startswith(_OPENING):
        raise InputError(path, f"not a PANGAEA export: the first line must be {_OPENING!r}", line=1)
    records: dict[str, list[str]] = {}
    key = None
    for index in range(1, len(lines)):
        line = lines[index]
        if line.strip() == _CLOSING:
            return {k: "\n".join(v) for k, v in records.items()}, index + 1
        if line.startswith("\t") and key is not None:
            records[key].append(line.strip())
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            records.setdefault(key, [])
            if value.strip():
                records[key].append(value.strip())
        elif line.strip():
            raise InputError(path, f"line {line.strip()[:40]!r} is neither a 'Key:<TAB>value' "
                             "record nor a TAB-indented continuation: the data description "
                             f"opened on line 1 was never closed by {_CLOSING!r} before it",
                             line=index + 1)
    raise InputError(path, f"the data description opened on line 1 is never closed by a line "
                     f"{_CLOSING!r} (truncated file?)", line=len(lines))


def events(description: dict[str, str]) -> list[str]:
    """Event labels of the ``Event(s):`` record: the first token of each ``label * ...`` line."""
    text = description.get("Event(s)", "")
    return [line.split(" * ")[0].strip() for line in text.split("\n") if line.strip()]


def read(path, *, source: str | None = None, raw: bytes | None = None, core: str | None = None,
         ignore_columns=(), **options) -> LabTable:
    """Read a PANGAEA text export.

    The core of each row is its ``Event`` column; a table without one takes the single event
    of the ``Event(s):`` record, or ``core`` when given (required when there are several).
    ``ignore_columns`` leaves columns out (e.g. a parameter in a unit that is not a mass
    fraction, like ``d13C [per mil PDB]``).
    """
    check_options(options, set(), FORMAT)
    text = read_text(path, raw)
    lines = split_lines(text)
    description, start = parse_description(path, lines)
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start >= len(lines):
        raise InputError(path, "no data table after the data description", line=len(lines))
    header = [cell.strip() for cell in lines[start].split("\t")]
    intensities = [h for h in header if unit_key(split_header(h).unit) in INTENSITY_UNITS]
    ignore_columns = tuple(ignore_columns) + tuple(intensities)
    rows = [(number + 1, lines[number].split("\t")) for number in range(start + 1, len(lines))]

    found = events(description)
    default_core = found[0] if len(found) == 1 else None
    if core is None and default_core is None and not any(
            h.strip().lower() in ("event", "event label") for h in header):
        listed = f"the data description lists {len(found)} events ({', '.join(found[:5])})" \
            if found else "the data description lists no event"
        raise InputError(path, f"the table has no Event column and {listed}: name the core: --core ID (Python: core='ID')",
                         line=start + 1)
    metadata = {"format": FORMAT, **description}
    if intensities:
        metadata["intensity_columns"] = "; ".join(intensities) + ": scanner intensities, not lab values"
    return table_from_cells(path, header, rows, source=source or Path(path).name, core=core,
                            default_core=default_core, ignore_columns=ignore_columns,
                            metadata=metadata)
