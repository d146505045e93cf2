"""Avaatech bAXIL batch exports (CSV): fitted line intensities, one row per measured point.

Layout (header cells quoted with a leading space; data cells bare)::

    " Spectrum" ," Sample" ," User" ," Live time" ," Real time" ," Excitation" ," Mg-Ka Chi2" ...
    ZUG18-7!0!0!  50.0!2019-02-20!09-54-32!30!10!1500!50.0!0.0!No-Filter!2.0!12.0!Run1!Rep0!Sett Low.spe,...

``Spectrum`` is the measured spectrum's file name, whose 17 ``!``-separated fields carry the
point's metadata (core, section, ?, depth mm, date, time, live s, kV, uA, X mm, Y mm, filter,
slit DC mm, slit CC mm, run, replicate, setting; parsed by ``avaatech_spe.parse_bang_name``).
Every other column is either a point column (``Live time``, ``Throughput``, ...) or
``<line> <quantity>`` with quantity Chi2, Area, AreaStd, cps or cpsStd; line names go through
:func:`xrfhub.lines.unify_line` (``P -Ka`` -> ``P-Ka``, ``Rh-La-Inc`` -> ``Rh-La-inc``).

Where a table has metadata columns as well (``CoreID``, ``SectionID``, ``X Position-mm``,
``CoreDepth`` ..., as in the Avaatech workbook, see ``avaatech_xlsx``), the columns win and the
``Spectrum`` cell may be free text. This module holds that shared row logic
(:func:`table_part`, :func:`assemble`) for both readers.

Depth (recorded per point in ``depth_rule`` and in ``metadata['depth_rule']``):

* with a ``CoreDepth`` column: depth = CoreDepth, in mm or cm as the data say (the unit for
  which CoreDepth - X is constant within each section; ``depth_unit=`` forces one), and the
  section top is depth - X;
* otherwise depth = section top + X: the top from the section token (3-4 digits cm, 5-6 digits
  mm, and any all-zero token such as bAXIL's ``0`` is the core top, 0 mm) or
  ``section_top_mm_override``; X from the ``X Position`` column or Spectrum field 10, else the
  depth field 4. Field 4 is kept as ``depth_field_mm``.

Core id: a ``CoreID`` column, else Spectrum field 1, else ``core=`` (the CLI's ``--core``); a
core id of ``0`` or blank is the scanner software's placeholder and counts as none. Negative
areas are kept as written and flagged ``"negative"``.
"""
from __future__ import annotations

import csv
import datetime as dt
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..lines import unify_line
from ..records import ElementTable
from .avaatech_spe import parse_bang_name, parse_space_name, section_top_mm
from .lab_csv import read_text, split_lines

FORMAT = "avaatech-baxil-csv"
KIND = "elements"
DESCRIPTION = "Avaatech bAXIL batch export (CSV: Spectrum + per-line Chi2/Area/AreaStd/cps/cpsStd)"

#: Quantity word of a ``<line> <quantity>`` column (lower-cased) -> key of ElementTable.values.
QUANTITIES = {"area": "area", "areastd": "area_std", "chi2": "chi2", "cps": "cps", "cpsstd": "cps_std"}
#: Columns every ElementTable.points row has, in this order.
POINT_COLUMNS = ("core", "section", "section_top_mm", "position_mm", "depth_mm", "tube_kv", "run",
                 "replicate", "valid", "source", "spectrum")
#: Metadata column (lower-cased, letters and digits only) -> point column.
METADATA_COLUMNS = {
    "spectrum": "spectrum", "sample": "sample", "user": "user", "excitation": "excitation",
    "livetime": "live_time_s", "realtime": "real_time_s", "throughput": "throughput_cps",
    "coreid": "core_id", "sectionid": "section_id", "coredepth": "core_depth", "dateid": "date_id",
    "acquisitiontime": "acquisition_time", "tubevoltagekv": "tube_kv", "tubecurrentua": "tube_ua",
    "tubecurrentma": "tube_ma", "xpositionmm": "position_mm", "ypositionmm": "y_mm", "filter": "filter",
    "slitsizedcmm": "slit_dc_mm", "slitsizeccmm": "slit_cc_mm", "runcount": "run",
    "replicatenrcount": "replicate", "settingmca": "setting",
}
_MISSING = frozenset({"", "nan", "na", "n/a", "-"})
_PLACEHOLDER_CORES = frozenset({"", "0", "nan", "none"})
_SEPARATORS = (",", ";", "\t")
_REPLICATE = re.compile(r"^(?:rep)?\s*([0-9]{1,9})$", re.IGNORECASE)  # fits the store's int32
_HYPHEN_TIME = re.compile(r"^\s*(\d{1,2})-(\d{2})-(\d{2})\s*$")


# --------------------------------------------------------------------------- header


def line_column(cell: str) -> tuple[str, str] | None:
    """``("Ca-Ka", "area")`` for a ``Ca-Ka Area`` column; None for a column of another kind."""
    parts = str(cell).strip().rsplit(None, 1)
    if len(parts) != 2 or parts[1].lower() not in QUANTITIES:
        return None
    try:
        return unify_line(parts[0]), QUANTITIES[parts[1].lower()]
    except ValueError:
        return None


def metadata_column(cell: str) -> str:
    """The point column a metadata header names (unknown headers become snake_case)."""
    key = re.sub(r"[^a-z0-9]", "", str(cell).lower())
    return METADATA_COLUMNS.get(key) or re.sub(r"\W+", "_", str(cell).strip()).strip("_").lower()


def _header_cells(line: str) -> tuple[str, list[str]]:
    """Separator and stripped header cells: the separator that gives the most cells wins."""
    best: tuple[str, list[str]] = (",", [])
    for sep in _SEPARATORS:
        try:
            cells = next(csv.reader([line], delimiter=sep), [])
        except csv.Error:
            continue
        if len(cells) > len(best[1]):
            best = (sep, cells)
    return best[0], [c.strip().strip('"').strip() for c in best[1]]


def sniff(head: bytes, name: str = "") -> bool:
    """A first line naming a ``Spectrum`` column and ``<line> Area``-style columns."""
    if b"\x00" in head:
        return False
    text = head.lstrip(b"\xef\xbb\xbf").decode("latin-1").lstrip()
    first = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    if not first or first[0] in "$/#":
        return False
    _sep, cells = _header_cells(first)
    return any(c.lower() == "spectrum" for c in cells) and any(line_column(c) for c in cells)


# --------------------------------------------------------------------------- cells


def _number(cell, path, line: int, field: str, what: str = "a number", decimal: str = ".") -> float:
    """A cell as float (NaN when empty); InputError naming line and column when not a number."""
    if cell is None:
        return math.nan
    if isinstance(cell, bool):
        raise InputError(path, f"expected {what}, found {cell!r}", line=line, field=field)
    if isinstance(cell, (int, float, np.integer, np.floating)):
        return float(cell)
    text = str(cell).strip()
    if text.lower() in _MISSING:
        return math.nan
    try:
        value = float(text.replace(",", ".") if decimal == "," else text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(path, f"expected {what}, found {text[:40]!r}", line=line, field=field)
    return value


def _drop_trailing_empty(cells: list, keep: int = 0) -> list:
    """``cells`` without trailing blank cells, never fewer than ``keep``; one slice, since a
    damaged line may hold a hundred thousand separators."""
    end = len(cells)
    while end > keep and not str(cells[end - 1]).strip():
        end -= 1
    return cells[:end]


def _text(cell) -> str:
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))  # a spreadsheet's SectionID 100.0 is the token "100"
    return str(cell).strip()


def _run(value) -> str:
    text = _text(value)
    return f"Run{int(text)}" if re.fullmatch(r"[0-9]{1,9}", text) else text


def _replicate(value, path, line: int, field: str) -> int:
    match = _REPLICATE.match(_text(value))
    if not match:
        raise InputError(path, f"replicate {value!r} is neither 'RepN' nor a whole number", line=line, field=field)
    return int(match.group(1))


def _iso(date_cell, time_cell) -> str:
    """ISO 8601 from a workbook's date and time cells ("" when there is no readable date)."""
    day, clock = date_cell, time_cell
    for fmt in ("%Y-%m-%d", "%m-%d-%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y-%m-%d %H:%M:%S"):
        if isinstance(day, str):
            try:
                day = dt.datetime.strptime(day.strip(), fmt)
            except ValueError:
                continue
    if not isinstance(day, dt.date):
        return ""
    day = day.date() if isinstance(day, dt.datetime) else day
    clock = clock.time() if isinstance(clock, dt.datetime) else clock
    if isinstance(clock, str):
        try:
            clock = dt.time.fromisoformat(clock.strip())
        except ValueError:
            clock = None
    return dt.datetime.combine(day, clock).isoformat() if isinstance(clock, dt.time) else day.isoformat()


def _spectrum_fields(cell: str, path, line: int) -> dict:
    """Metadata from a Spectrum cell: 17 ``!`` fields, or a space-separated name; {} if neither."""
    stem = re.sub(r"\.spe$", "", cell.strip(), flags=re.IGNORECASE)
    if "!" in stem:
        fields = stem.split("!")
        if len(fields) == 17:
            # bAXIL writes the time as 09-54-32 and the replicate as Rep0, where
            # parse_bang_name expects hh:mm:ss and a bare number.
            fields[5] = _HYPHEN_TIME.sub(r"\1:\2:\3", fields[5])
            match = _REPLICATE.match(fields[15].strip())
            fields[15] = match.group(1) if match else fields[15]
        try:
            out = parse_bang_name("!".join(fields), path)
        except InputError as exc:
            raise InputError(path, f"Spectrum {cell.strip()[:80]!r}: {exc.reason}; expected 17 '!'-separated "
                                   "fields (core!section!?!depth mm!date!time!live s!kV!uA!X mm!Y mm!filter!"
                                   "slit DC!slit CC!run!replicate!setting)", line=line, field="Spectrum") from None
        out["setting"] = fields[16].strip()
        return out
    parsed = parse_space_name(stem)
    return parsed if "section" in parsed and "position_mm" in parsed else {}


def _top_from_token(token: str, path, line: int, field: str) -> float:
    if re.fullmatch(r"[0-9]+", token) and not token.strip("0"):
        return 0.0  # bAXIL's section "0": the core top, whatever the unit
    try:
        return section_top_mm(token, path, field)
    except InputError as exc:
        raise InputError(path, exc.reason + " (option section_top_mm_override)", line=line, field=field) from None


# --------------------------------------------------------------------------- rows -> points


def _depth_unit(depth: np.ndarray, position: np.ndarray, sections: list[str]) -> tuple[float, str]:
    """Unit of a CoreDepth column: the one for which CoreDepth - X is constant per section."""
    ok = np.isfinite(depth) & np.isfinite(position)
    if not ok.any():
        return 1.0, "mm (assumed: no X position to compare with)"
    scores = {}
    for unit, factor in (("mm", 1.0), ("cm", 10.0)):
        top = depth * factor - position
        spread = 0.0
        for s in set(np.asarray(sections, dtype=object)[ok]):
            sel = ok & (np.asarray(sections, dtype=object) == s)
            spread += float(np.ptp(top[sel]))
        scores[unit] = spread + (1e9 if (top[ok] < -1.0).any() else 0.0)
    unit = min(scores, key=lambda u: (scores[u], u != "mm"))
    return (1.0 if unit == "mm" else 10.0), f"{unit} (CoreDepth - X constant per section)"


class _Header:
    """A classified header row: which columns are lines, which are point metadata."""

    def __init__(self, path, header: list[str], header_line: int, sheet: str, decimal: str, notes: list[str]):
        self.path, self.sheet, self.decimal = path, sheet, decimal
        self.where = f"sheet {sheet!r}, " if sheet else ""
        header = _drop_trailing_empty(header)
        self.names = header
        if not any(h.lower() == "spectrum" for h in header):
            raise InputError(path, f"{self.where}no 'Spectrum' column in the header row; expected an Avaatech "
                                   "export with a Spectrum column and '<line> Area' columns", line=header_line,
                             field=self.field("Spectrum"))
        self.lines: dict[tuple[str, str], int] = {}
        self.meta: dict[str, int] = {}
        for j, name in enumerate(header):
            if not name:
                raise InputError(path, f"{self.where}column {j + 1} has no name in the header row",
                                 line=header_line, field=self.field(f"column {j + 1}"))
            key = line_column(name)
            if key is None:
                self.meta.setdefault(metadata_column(name), j)
                if len(name.split()) > 1 and name.rsplit(None, 1)[-1].lower() in QUANTITIES:
                    notes.append(f"{self.where}column {name!r} names no XRF line; kept as a point column")
            elif key in self.lines:
                raise InputError(path, f"{self.where}columns {header[self.lines[key]]!r} and {name!r} are the same "
                                       f"line ({key[0]} {key[1]})", line=header_line, field=self.field(name))
            else:
                self.lines[key] = j
        if not self.lines:
            raise InputError(path, f"{self.where}no '<line> Area' columns (e.g. 'Ca-Ka Area'): nothing to read",
                             line=header_line, field=self.field("Area"))

    def field(self, name: str) -> str:
        return f"{self.sheet}!{name}" if self.sheet else name

    def label(self, key: str) -> str:
        """The header of a metadata column as written, for error messages."""
        return self.field(self.names[self.meta[key]]) if key in self.meta else self.field(key)

    def cell(self, cells: list, key: str):
        j = self.meta.get(key)
        return cells[j] if j is not None and j < len(cells) else None

    def number(self, cells: list, key: str, line: int) -> float:
        if key not in self.meta:
            return math.nan
        return _number(self.cell(cells, key), self.path, line, self.label(key), decimal=self.decimal)

    def values(self, rows: list[tuple[int, list]]) -> dict[tuple[str, str], np.ndarray]:
        """``(line, quantity) -> float per row``; InputError naming line and column on text."""
        out = {}
        for (ln, qty), j in self.lines.items():
            field, what = self.field(self.names[j]), f"{qty} of {ln} as a number"
            out[(ln, qty)] = np.array([_number(cells[j] if j < len(cells) else None, self.path, line, field, what,
                                               self.decimal) for line, cells in rows], dtype=np.float64)
        return out


def _point(h: _Header, line: int, cells: list, *, core: str | None, section_top_mm_override: float | None,
           default_kv: float) -> dict:
    """One point's metadata: columns first, then the Spectrum fields, then the options."""
    path, where = h.path, h.where
    spectrum = _text(h.cell(cells, "spectrum"))
    name = _spectrum_fields(spectrum, path, line)
    by_depth = "core_depth" in h.meta
    if not name and not (by_depth or "position_mm" in h.meta):
        raise InputError(path, f"{where}Spectrum {spectrum[:80]!r} carries no metadata and there are no "
                               "X Position/CoreDepth columns: expected 17 '!'-separated fields "
                               "(core!section!?!depth mm!date!time!live s!kV!uA!X mm!...)", line=line,
                         field=h.field("Spectrum"))
    column_core = _text(h.cell(cells, "core_id"))
    core_id = next((c for c in (column_core, name.get("core", "")) if c.lower() not in _PLACEHOLDER_CORES), core)
    if not core_id:
        found = f" (CoreID is {column_core!r})" if "core_id" in h.meta else ""
        raise InputError(path, f"{where}no usable core id in the file{found}: pass --core (core=)", line=line,
                         field=h.label("core_id") if "core_id" in h.meta else h.field("Spectrum"))
    section = _text(h.cell(cells, "section_id")) or name.get("section", "")
    x = h.number(cells, "position_mm", line)
    position = x if math.isfinite(x) else name.get("position_mm", math.nan)
    depth_field = name.get("depth_field_mm", math.nan)
    rec = {"core": core_id, "section": section, "position_mm": position, "file_line": line, "spectrum": spectrum}
    if by_depth:
        rec["core_depth"] = h.number(cells, "core_depth", line)
        if not math.isfinite(rec["core_depth"]):
            raise InputError(path, f"{where}CoreDepth is empty", line=line, field=h.label("core_depth"))
    else:
        rule = "section top + X"
        if not math.isfinite(position):
            if not math.isfinite(depth_field):
                raise InputError(path, f"{where}no position: expected an 'X Position-mm' column or X in Spectrum "
                                       "field 10", line=line, field=h.field("Spectrum"))
            position, rule = depth_field, "section top + Spectrum depth field"
        if section_top_mm_override is not None:
            top, rule = float(section_top_mm_override), rule.replace("section top", "section_top_mm_override")
        elif section:
            top = _top_from_token(section, path, line, h.label("section_id") if "section_id" in h.meta
                                  else h.field("Spectrum"))
        else:
            raise InputError(path, f"{where}no section token (SectionID column or Spectrum field 2); pass "
                                   "section_top_mm_override", line=line, field=h.field("Spectrum"))
        rec.update(position_mm=position, section_top_mm=top, depth_mm=top + position, depth_rule=rule)
    kv = h.number(cells, "tube_kv", line)
    rec["tube_kv"] = kv if math.isfinite(kv) else name.get("tube_kv", default_kv)
    ua, ma = h.number(cells, "tube_ua", line), h.number(cells, "tube_ma", line)
    rec["tube_ma"] = ua / 1000.0 if math.isfinite(ua) else ma if math.isfinite(ma) else name.get("tube_ma", math.nan)
    run, rep = h.cell(cells, "run"), h.cell(cells, "replicate")
    rec["run"] = _run(run) if _text(run) else name.get("run", "")
    rec["replicate"] = _replicate(rep, path, line, h.label("replicate")) if _text(rep) else name.get("replicate", 0)
    for key in ("live_time_s", "y_mm", "slit_dc_mm", "slit_cc_mm"):
        value = h.number(cells, key, line)
        rec[key] = value if math.isfinite(value) else name.get(key, math.nan)
    rec["real_time_s"] = h.number(cells, "real_time_s", line)
    rec["date"] = _iso(h.cell(cells, "date_id"), h.cell(cells, "acquisition_time")) if "date_id" in h.meta \
        else name.get("date", "")
    rec["filter"] = _text(h.cell(cells, "filter")) or name.get("filter", "")
    rec["setting"] = _text(h.cell(cells, "setting")) or name.get("setting", "")
    if "!" in spectrum:
        rec["depth_field_mm"] = depth_field
    for key in ("sample", "user", "excitation"):
        if key in h.meta:
            rec[key] = _text(h.cell(cells, key))
    if "throughput_cps" in h.meta:
        rec["throughput_cps"] = h.number(cells, "throughput_cps", line)
    for key in h.meta:  # whatever else the file offers, as written
        if key not in rec and key not in METADATA_COLUMNS.values():
            rec[key] = h.cell(cells, key)
    if h.sheet:
        rec["sheet"] = h.sheet
    return rec


def _depth_from_core_depth(points: pd.DataFrame, depth_unit: str | None, path) -> tuple[pd.DataFrame, str]:
    """Depth, section top and rule of points that carry a CoreDepth (see the module docstring)."""
    depth = points["core_depth"].to_numpy(float)
    position = points["position_mm"].to_numpy(float)
    if depth_unit is not None:
        factor = {"mm": 1.0, "cm": 10.0}.get(str(depth_unit).lower())
        if factor is None:
            raise InputError(path, f"depth_unit {depth_unit!r}: expected 'mm' or 'cm'", field="depth_unit")
        how = f"{depth_unit} (option depth_unit)"
    else:
        factor, how = _depth_unit(depth, position, list(points["section"]))
    points["depth_mm"] = depth * factor
    known = np.isfinite(position)  # without X the point is its own section top
    points["section_top_mm"] = np.where(known, points["depth_mm"] - position, 0.0)
    points["position_mm"] = np.where(known, position, points["depth_mm"])
    points["depth_rule"] = f"CoreDepth [{'mm' if factor == 1.0 else 'cm'}]"
    return points.drop(columns="core_depth"), how


def table_part(path, header: list[str], rows: list[tuple[int, list]], *, source: str, header_line: int = 1,
               core: str | None = None, section_top_mm_override: float | None = None,
               depth_unit: str | None = None, default_kv: float = math.nan, decimal: str = ".", sheet: str = "",
               notes: list[str] | None = None,
               facts: dict[str, str] | None = None) -> tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
    """Points and ``(line, quantity) -> values`` of one table (a CSV file or one sheet).

    ``rows`` are ``(line or sheet row, cells)``; cells are strings or spreadsheet values.
    ``notes`` collects warnings and ``facts`` what was decided (``core_depth_unit``) for
    ``ElementTable.metadata``.
    """
    notes = notes if notes is not None else []
    h = _Header(path, header, header_line, sheet, decimal, notes)
    if not rows:
        raise InputError(path, f"{h.where}no data rows below the header", line=header_line)
    points = pd.DataFrame.from_records([
        _point(h, line, cells, core=core, section_top_mm_override=section_top_mm_override, default_kv=default_kv)
        for line, cells in rows])
    if "core_depth" in points:
        points, how = _depth_from_core_depth(points, depth_unit, path)
        if facts is not None:
            facts["core_depth_unit"] = how
    points["valid"] = True
    points["source"] = source
    points["replicate"] = points["replicate"].astype(np.int32)
    if "depth_field_mm" in points:
        differs = np.abs(points["depth_field_mm"] - points["position_mm"]) > 1e-6
        if differs.any():
            notes.append(f"{h.where}Spectrum depth field differs from X in {int(differs.sum())} points; X used")
    return points, h.values(rows)


def assemble(source: str, parts: list[tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]]],
             metadata: dict[str, str]) -> ElementTable:
    """One ElementTable from table parts: lines are the union in order of appearance, NaN where
    a part lacks a line; quantities are those any part has."""
    lines: list[str] = []
    quantities: list[str] = []
    for _points, columns in parts:
        for ln, qty in columns:
            if ln not in lines:
                lines.append(ln)
            if qty not in quantities:
                quantities.append(qty)
    quantities.sort(key=list(QUANTITIES.values()).index)
    n = sum(len(p) for p, _ in parts)
    values = {q: np.full((n, len(lines)), np.nan) for q in quantities}
    start = 0
    for points, columns in parts:
        for (ln, qty), column in columns.items():
            values[qty][start:start + len(points), lines.index(ln)] = column
        start += len(points)
    points = pd.concat([p for p, _ in parts], ignore_index=True)
    points = points[list(POINT_COLUMNS) + [c for c in points.columns if c not in POINT_COLUMNS]]
    area = values.get("area")
    flags = np.where(area < 0, "negative", "").astype("<U8") if area is not None \
        else np.full((n, len(lines)), "", dtype="<U8")
    return ElementTable(source=source, points=points, lines=lines, values=values, flags=flags, metadata=metadata)


# --------------------------------------------------------------------------- reader


def read(path, *, source: str | None = None, raw: bytes | None = None, core: str | None = None,
         section_top_mm_override: float | None = None, depth_unit: str | None = None,
         **_options) -> ElementTable:
    """Read a bAXIL batch CSV into an :class:`ElementTable` (see the module docstring)."""
    path = Path(path)
    text = read_text(path, raw)
    lines = split_lines(text)
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None:
        raise InputError(path, "the file is empty: expected a bAXIL batch export with a header row")
    sep, header = _header_cells(lines[start])
    rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(lines[start + 1:], delimiter=sep)
    first_line = start + 2
    try:
        for cells in reader:
            line = first_line
            first_line = start + 2 + reader.line_num
            if not any(c.strip() for c in cells):
                continue
            cells = _drop_trailing_empty(cells, keep=len(header))
            if len(cells) != len(header):
                raise InputError(path, f"row has {len(cells)} cells, the header has {len(header)} "
                                       "(truncated or damaged file?)", line=line)
            rows.append((line, cells))
    except csv.Error as exc:
        raise InputError(path, f"cannot split the row: {exc}", line=start + 2 + reader.line_num) from None
    decimal = "," if sep != "," else "."
    notes: list[str] = []
    part = table_part(path, header, rows, source=source or path.name, header_line=start + 1, core=core,
                      section_top_mm_override=section_top_mm_override, depth_unit=depth_unit,
                      decimal=decimal, notes=notes)
    metadata = {"instrument": "avaatech", "format": FORMAT, "vendor_lines": vendor_lines(header),
                "depth_rule": describe_depth_rule(part[0])}
    if notes:
        metadata["warnings"] = "; ".join(notes)
    return assemble(source or path.name, [part], metadata)


def vendor_lines(header: list[str]) -> str:
    """The line names as the vendor wrote them, tab-joined, each once (for provenance)."""
    seen: dict[str, None] = {}
    for h in header:
        if line_column(h):
            seen.setdefault(h.strip().rsplit(None, 1)[0], None)
    return "\t".join(seen)


def describe_depth_rule(points: pd.DataFrame) -> str:
    """The depth rules the points used, in words, for ``ElementTable.metadata['depth_rule']``."""
    used = sorted(set(points["depth_rule"]))
    return "; ".join(f"depth_mm = {rule}" for rule in used) + (
        " (section top from the token: 3-4 digits cm, 5-6 digits mm, all zeros = 0 mm; X = position in section)"
        if any(r.startswith("section") for r in used) else "")
