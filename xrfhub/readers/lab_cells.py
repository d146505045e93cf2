"""What a lab table's cells hold, where the header does not say it.

Not a reader: ``lab_csv.table_from_cells`` (the step every lab reader ends with) calls these.

* **Values.** A cell is a number, a flagged number (PANGAEA's ``?``, ``*``, ``/``), a marker of
  no value (``ND``, ``n.a.``), or a censored value: ``<0.0001`` is below a detection limit, and
  no value is stored for it (half the limit would be a guess); the limit is kept as its flag.
* **Intervals in one cell.** ``33-34`` under a depth header, or under no header in a table with
  no depth column (benchtop XRF exports), is a sample's top and bottom.
* **Unnamed columns.** One with no number in it (a measurement time, notes) is listed and not
  read; one of numbers stays unnamed and is refused: what its numbers are is not known.
* **The unit of a depth interval** whose header gives none: the one of mm, cm and m in which the
  samples are core slices of 2-50 mm thick, said and kept with the data; none or several: asked.
"""
from __future__ import annotations

import math
import re

import numpy as np

from .. import properties as P
from . import lab_rules

#: Cells that mean "no value" in hand-made tables (compared lower-case, stripped).
MISSING = frozenset({"", "nan", "na", "n/a", "n.a.", "nd", "n.d.", "-", "--", "null", "none"})
#: Cells that say "below the detection (or quantification) limit" without giving it: no value,
#: flagged "<" (a value below a stated limit, "<0.0001", keeps the limit as its flag).
BELOW_LIMIT = frozenset({"<lod", "<dl", "<d.l.", "<loq", "<mdl", "<ql", "bdl", "b.d.l.", "bld", "<bdl"})
#: PANGAEA quality prefixes -> does the value stay? ("/" = not valid: the value is dropped).
FLAG_KEEPS = {"?": True, "*": True, "/": False}

#: A number whose commas group thousands (``1,234`` or ``12,345.6``), read where the decimal
#: mark is a point: a comma-separated file quotes such cells, and a lab's spreadsheet writes them.
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
#: A sample's interval written in one cell, top-bottom (``33-34``, ``33.5 - 34.5``, ``33–34``).
_RANGE = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*[-\u2013]\s*(\d+(?:[.,]\d+)?)\s*$")
#: Plausible thickness of a discrete lab sample (a slice of core), in mm: 2 mm to 5 cm. A depth
#: interval without a unit is read in the one unit of mm, cm and m that makes its samples this
#: thick; a table where none or several do is refused.
SLICE_MM = (2.0, 50.0)
_DEPTH_UNITS_TRIED = (("mm", 1.0), ("cm", 10.0), ("m", 1000.0))


def parse_value(text: str, decimal: str = ".") -> tuple[float, str] | None:
    """``(value, flag)`` of one cell, or ``None`` when it is not a number.

    A PANGAEA prefix ``?`` (questionable) or ``*`` (unknown) keeps the value and sets the flag;
    ``/`` (not valid) sets the flag and drops the value. Missing-value markers give NaN. A
    censored value (``<0.0001``, below a detection limit; ``>5000``) gives NaN with the limit as
    its flag; ``<LOD``, ``bdl`` and the like give NaN flagged ``<``.
    """
    text = text.strip()
    flag = ""
    if text.lower().replace(" ", "") in BELOW_LIMIT:  # "< LOD" as analysers write it too
        return math.nan, "<"
    if text[:1] in "<>" and len(text) > 1:
        # censored: below a detection limit (or above a range). The value is not known, so none is
        # stored; the flag keeps the limit as written ("<0.0001"). Half the limit would be a guess.
        limit = text[1:].strip()
        bound = parse_value(limit, decimal) if limit[:1] not in "<>" else None
        if bound is None or bound[1] or math.isnan(bound[0]):
            return None
        return math.nan, text[0] + limit
    if text[:1] in FLAG_KEEPS:
        flag, text = text[0], text[1:].strip()
    if text.lower() in MISSING:
        return math.nan, flag
    if decimal == ",":
        text = text.replace(",", ".")
    elif _THOUSANDS.match(text):  # "1,234.5" with decimal points: the commas group thousands
        text = text.replace(",", "")
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return (value if FLAG_KEEPS.get(flag, True) else math.nan), flag


def read_unnamed(header: list[str], rows, decimal: str, roles: dict[int, str] | None, metadata: dict):
    """Columns read by what they hold where the header does not say (benchtop XRF exports leave
    the sample's interval and the measurement time without a name; hand-made tables write an
    interval under a depth header):

    * a column of ``top-bottom`` ranges (``33-34``) is the samples' interval, split into ``top``
      and ``bottom`` columns: the one depth column when it holds only ranges (its unit kept),
      or an unnamed column in a table with no depth column (no unit: as any depth header
      without one);
    * an unnamed column with no number in it (dates, notes) is listed and not read;
    * an unnamed column of numbers stays unnamed, and is refused: what its numbers are is not known.

    Returns the header, the rows, the roles (indices shifted by a split), the indices of the
    columns not read, and each column's number in the file (for messages).
    """
    roles = roles or {}
    fields = [P.split_header(h) for h in header]
    role = lambda j: roles.get(j) or (P.column_role(fields[j]) if fields[j].text else "")  # noqa: E731
    depth = [j for j in range(len(header)) if role(j) in (P.MID, P.TOP, P.BOTTOM)]
    unnamed = [i for i, f in enumerate(fields) if not f.text]
    range_col, unit, text_cols = None, "", set()
    if len(depth) == 1 and role(depth[0]) == P.MID and depth[0] not in roles and _all_ranges(rows, depth[0]):
        range_col, unit = depth[0], fields[depth[0]].unit
    for i in unnamed:
        cells = [c[i].strip() for _, c in rows if i < len(c) and c[i].strip()]
        if range_col is None and not depth and _all_ranges(rows, i):
            range_col = i
        elif not any(_RANGE.match(c) or ((v := parse_value(c, decimal)) is not None and not math.isnan(v[0]))
                     for c in cells):
            text_cols.add(i)
    for i in text_cols:
        header[i] = f"unnamed column {i + 1}"
    if range_col is None:
        return header, rows, roles, text_cols, list(range(1, len(header) + 1))
    i = range_col
    example = next(c[i].strip() for _, c in rows if i < len(c) and _RANGE.match(c[i]))
    named = f"({header[i]!r})" if header[i].strip() else "(no name)"
    metadata["depth_interval"] = f"column {i + 1} {named} holds each sample's interval, top-bottom ({example!r})"

    def split(cells):
        if i >= len(cells):
            return list(cells)
        match = _RANGE.match(cells[i])
        return [*cells[:i], *(match.groups() if match else (cells[i], "")), *cells[i + 1:]]

    shift = lambda j: j + 1 if j > i else j  # noqa: E731 - the columns right of the split move by one
    halves = [f"top [{unit}]", f"bottom [{unit}]"] if unit else ["top", "bottom"]
    return ([*header[:i], *halves, *header[i + 1:]], [(line, split(c)) for line, c in rows],
            {shift(j): r for j, r in roles.items()}, {shift(j) for j in text_cols},
            [*range(1, i + 2), *range(i + 1, len(header) + 1)])  # both halves are the file's column i + 1


def _all_ranges(rows, i: int) -> bool:
    """Every filled cell of column ``i`` a ``top-bottom`` range or a QC label, one at least a range."""
    cells = [c[i].strip() for _, c in rows if i < len(c) and c[i].strip()]
    ranges = [bool(_RANGE.match(c)) for c in cells]
    return any(ranges) and all(r or lab_rules.qc_kind([c]) for r, c in zip(ranges, cells))


def sample_totals(rows, columns: list[int], identity: list[int], decimal: str) -> list[float]:
    """Each sample row's sum of ``columns`` (QC rows and missing values left out)."""
    out = []
    for _, cells in rows:
        if not any(c.strip() for c in cells) or lab_rules.qc_kind([cells[j] for j in identity if j < len(cells)]):
            continue
        parsed = [parse_value(cells[i], decimal) for i in columns if i < len(cells)]
        out.append(sum(v[0] for v in parsed if v is not None and not math.isnan(v[0])))
    return out


def unit_from_slices(rows, top_i: int, bot_i: int, decimal: str) -> tuple[str, str]:
    """The unit of a depth interval whose header gives none, from the thickness of its samples:
    ``(unit, why)`` where exactly one of mm, cm and m makes the median sample a slice of
    :data:`SLICE_MM`; ``("", why not)`` otherwise."""
    thick = []
    for _, cells in rows:
        if max(top_i, bot_i) < len(cells):
            top, bot = parse_value(cells[top_i], decimal), parse_value(cells[bot_i], decimal)
            if top and bot and bot[0] > top[0]:  # NaN compares False: missing depths drop out
                thick.append(bot[0] - top[0])
    if not thick:
        return "", "no sample interval to tell its unit by"
    med = float(np.median(thick))
    fits = [unit for unit, factor in _DEPTH_UNITS_TRIED if SLICE_MM[0] <= med * factor <= SLICE_MM[1]]
    span = f"a core slice of {SLICE_MM[0]:g}-{SLICE_MM[1]:g} mm"
    if len(fits) == 1:
        return fits[0], (f"taken as {fits[0]}: the header gives no unit, and {fits[0]} is the only one of "
                         f"mm, cm and m in which its samples' median thickness ({med:g}) is {span}; "
                         "pass --depth-unit to say otherwise")
    where = f"in {' and in '.join(fits)}" if fits else "in none of mm, cm and m"
    return "", f"its samples' median thickness ({med:g}) is {span} {where}"
