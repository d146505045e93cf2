"""Plain lab tables: comma, semicolon or tab separated text with a header row.

One row per lab sample: a core column (``core``, ``core_id``, ``Core ID``, ``Event``, ...),
a depth as a mid-depth (``depth_m``, ``Depth [m]``, ``mid``) or an interval (``top_cm`` and
``bottom_cm``, ``Top [cm]``/``Bottom [cm]``), then values. The separator is sniffed from the
content; with ``;`` the decimal mark is a comma (the European spreadsheet export).

This module also holds ``table_from_cells``, the step every lab reader ends with: header cells
and row cells in, a validated ``LabTable`` out (units converted, flags split off, depths in mm).
PANGAEA and IODP readers only differ in how they find the header and the rows.
"""
from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .. import properties as P
from ..errors import ConfigError, InputError
from ..records import LabTable
from . import lab_rules
from .lab_cells import parse_value, read_unnamed, sample_totals, unit_from_slices

FORMAT = "lab-csv"
KIND = "samples"
DESCRIPTION = "Lab table as CSV (comma, semicolon or tab; core, depth or top/bottom, values)"

_SEPARATORS = ("\t", ";", ",")
#: Columns a lab table may have. Real exports have tens (an IODP report ~30, a PANGAEA data set
#: a few hundred at most); a header of thousands of cells is a damaged line or the wrong
#: separator, and building it would take seconds per thousand columns.
MAX_COLUMNS = 1_000
_COMMA_DECIMAL = re.compile(r"^[-+]?\d+,\d+$")
#: Columns that say a table's values are concentrations in a solution (an ICP digest), not yet
#: mass fractions of the sediment.
_SOLUTION_WORDS = ("dilution", "weight", "volume", "mass", "tare")
_DOT_DECIMAL = re.compile(r"^[-+]?\d*\.\d+$")


# --------------------------------------------------------------------------- reading text


def read_text(path, raw: bytes | None = None) -> str:
    """A text file's content: UTF-8 (BOM dropped) or else Latin-1; refuses binary data."""
    if raw is None:
        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError:
            raise InputError(path, "file not found") from None
        except OSError as exc:
            raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    if b"\x00" in raw[:65536]:
        raise InputError(path, "binary content (NUL bytes): expected a text table")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.lstrip("\ufeff")


def split_lines(text: str) -> list[str]:
    """Lines split at LF, CRLF or a bare CR (not at the other characters str.splitlines knows)."""
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


# --------------------------------------------------------------------------- cells -> LabTable


def _depth(cell: str, decimal: str, path, line: int, field: str) -> float:
    parsed = parse_value(cell, decimal)
    if parsed is None or parsed[1] or math.isnan(parsed[0]):
        what = "is empty" if not cell.strip() else f"is {cell.strip()!r}"
        raise InputError(path, f"depth {what}: every sample needs a numeric depth", line=line,
                         field=field)
    return parsed[0]


def _mark_duplicates(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def _used_width(header: list[str], rows) -> int:
    """Header columns up to the last one that is named or holds a value in some row: trailing
    empty columns are separators at line ends. One pass over the cells (a damaged line may end
    in a hundred thousand separators)."""
    width = len(header)
    used = next((i + 1 for i in range(width - 1, -1, -1) if header[i].strip()), 0)
    for _, cells in rows:
        for i in range(min(len(cells), width) - 1, used - 1, -1):
            if cells[i].strip():
                used = i + 1
                break
    return used


def table_from_cells(path, header: list[str], rows: list[tuple[int, list[str]]], *,
                     source: str | None = None, decimal: str = ".", core: str | None = None,
                     default_core: str | None = None, depth_unit: str | None = None,
                     ignore_columns=(), metadata: dict[str, str] | None = None,
                     roles: dict[int, str] | None = None, units=None) -> LabTable:
    """Validate header and rows of a lab table and build its ``LabTable``.

    ``rows`` are ``(line number, cells)``. ``core`` overrides any core column; ``default_core``
    is used when the table has no core column (PANGAEA's single event). ``depth_unit`` is the
    unit of depth columns whose header gives none. ``roles`` forces the role of columns by
    index (the IODP reader knows its layout better than the generic synonyms). Element and
    oxide columns without a unit take ``units`` (``"ppm"``, ``"Ca=ppm,Fe=wt%"``), or % when they
    are major oxides whose every sample totals 20-105 (``metadata['oxide_units']``), or are
    refused: a concentration is never taken as wt% by default. Known properties without a unit
    (CaCO3, TOC) are wt% by convention (``metadata['assumed_units']``); other columns without one
    (a weight, a dilution) are left out (``metadata['left_out']``). What the header does not
    say is read from the cells (``lab_cells``): intervals written ``33-34``, unnamed columns, a
    depth interval's unit. QC rows (blanks, standards, marked duplicates; see ``lab_rules``) are
    kept apart in ``LabTable.qc``. Facts a user could supply are named in one refusal, in
    ``InputError.lacks`` too.
    """
    metadata = dict(metadata or {})
    ignore = {str(c).strip() for c in ignore_columns}
    header = header[:_used_width(header, rows)]  # trailing separators on the header line
    check_width(path, header)
    header, rows, roles, unnamed_text, number = read_unnamed(header, rows, decimal, roles, metadata)
    fields = [P.split_header(h) for h in header]
    role_of = []
    unnamed = [i for i, f in enumerate(fields) if not f.text and i not in unnamed_text]
    for i, f in enumerate(fields):
        if i in unnamed_text:
            role_of.append("ignored")  # dates or notes under no name: listed, not read
        elif not f.text:
            role_of.append("unnamed")  # refused below, after the depth check says what is missing
        elif f.text in ignore or f.name in ignore:
            role_of.append("ignored")
        else:
            role_of.append((roles or {}).get(i) or P.column_role(f))
    cols = {role: [i for i, r in enumerate(role_of) if r == role] for role in set(role_of)}

    top_i, bot_i, mid_i = (cols.get(r, [None])[0] for r in (P.TOP, P.BOTTOM, P.MID))
    if (top_i is None) != (bot_i is None) and mid_i is None:
        have = fields[top_i if top_i is not None else bot_i].text
        raise InputError(path, f"depth interval incomplete: found {have!r} but not its "
                         "partner; give top and bottom, or a mid-depth column", field=have)
    if mid_i is None and top_i is None:
        named = [f.text for f in fields if f.text]
        shown = named[:8] + ([f"... {len(named) - 8} more"] if len(named) > 8 else [])
        hint = (f"; column(s) {', '.join(str(number[i]) for i in unnamed)} have no name: if one holds depths, "
                "name it (e.g. 'depth_cm', 'top_cm'/'bottom_cm')") if unnamed else ""
        raise InputError(path, "no depth column: expected a mid-depth (depth, mid, depth_m, "
                         "'Depth [m]', 'sample depth (cm)') or top and bottom (top_cm/bottom_cm, "
                         f"'Depth top [m]'/'Depth bot [m]'); the header has {shown}{hint}")
    if unnamed:
        raise InputError(path, f"column {number[unnamed[0]]} has no name in the header row",
                         field=f"column {number[unnamed[0]]}")
    # facts the table does not give (its core, its depth unit, its concentrations' units) are all
    # named in one refusal, so that a user adds every option in one round, not one per run
    missing: list[tuple[str, str | None]] = []
    lacks = set()
    core_i = cols.get(P.CORE, [None])[0]
    if core is None and core_i is None and default_core is None:
        lacks.add("core")
        missing.append(("no core column (core, core_id, 'Core ID', Event, Site/Hole): "
                        "add one, or name the core: --core ID (Python: core='ID')", None))
    interval = top_i is not None and bot_i is not None
    depth_cols = [top_i, bot_i] if interval else [mid_i]
    factors = {}
    sliced = None
    if interval and not depth_unit and not fields[top_i].unit and not fields[bot_i].unit:
        sliced = unit_from_slices(rows, top_i, bot_i, decimal)
        if sliced[0]:
            depth_unit = sliced[0]
            metadata["assumed_depth_unit"] = sliced[1]
    for i in depth_cols:
        unit = fields[i].unit or depth_unit
        if not unit:
            if i == depth_cols[0]:
                lacks.add("depth_unit")
                why = f" ({sliced[1]})" if sliced else ""
                missing.append((f"depth column has no unit ({fields[i].text!r}){why}: write it in the header "
                                "('depth_cm', 'Depth [m]') or pass --depth-unit m|cm|mm", fields[i].text))
            continue
        factors[i] = P.depth_factor(unit, path=path, field=fields[i].text)

    sample_i = cols.get(P.SAMPLE_ID, [None])[0]
    identity = [i for i in (*depth_cols, core_i, sample_i) if i is not None]  # cells that tell QC rows

    prop_i = cols.get(P.PROPERTY, [])
    names = _mark_duplicates([P.canonical_property(fields[i].name) for i in prop_i])
    default_unit, column_units = lab_rules.parse_units_option(units, path)
    given = {}
    for i in prop_i:
        if not fields[i].unit:
            unit = column_units.get(fields[i].name) or column_units.get(fields[i].text)
            if unit is None and lab_rules.is_concentration(fields[i].name):
                unit = default_unit
            if unit:
                given[i] = unit
    concentrations = [i for i in prop_i if lab_rules.is_concentration(fields[i].name)]
    if concentrations and not column_units and not any(fields[i].unit for i in concentrations):
        # no column's unit is written or given: major oxides' totals may say it; they outweigh a
        # --units meant for a folder's other tables (SiO2 60 as ppm is no rock), as closure does
        why = lab_rules.oxides_in_percent([fields[i].name for i in concentrations],
                                          sample_totals(rows, concentrations, identity, decimal))
        if why:
            given.update({i: "%" for i in concentrations})
            metadata["oxide_units"] = f"--units {default_unit} not used: {why}" if default_unit else why
    unitless = [fields[i].text for i in prop_i
                if not fields[i].unit and i not in given and lab_rules.is_concentration(fields[i].name)]
    # a column of no unit that is neither a concentration nor a property known to be written in
    # wt% (a sample's weight in g, a dilution factor) is no lab value: left out, and said so
    left_out = [i for i in prop_i if not fields[i].unit and i not in given
                and not lab_rules.is_concentration(fields[i].name) and not P.is_known_property(fields[i].name)]
    if unitless:
        listed = ", ".join(unitless[:10]) + (f" and {len(unitless) - 10} more" if len(unitless) > 10 else "")
        solution = [fields[i].text for i in left_out if any(w in fields[i].name.lower() for w in _SOLUTION_WORDS)]
        lacks.add("units")
        hint = (f"; the table also has {', '.join(repr(t) for t in solution)}: its values may be "
                "concentrations in a solution (mg/L of a digest), to be converted to mass fractions "
                "of the sediment before they are stored" if solution else "")
        missing.append((f"element concentrations without a unit ({listed}): never taken as wt%; write "
                        "the unit in the header ('Ca [ppm]'), as a units row under the header, or pass "
                        f"--units (e.g. --units ppm, or --units Ca=mg/kg,Fe=wt%){hint}", unitless[0]))
    if missing:
        raise InputError(path, "; and ".join(m for m, _ in missing), field=missing[0][1], lacks=frozenset(lacks))
    if left_out:
        metadata["left_out"] = (f"{', '.join(fields[i].text for i in left_out)}: no unit, and not a lab "
                                "property stored as a mass fraction (CaCO3, TOC, an element, ...); "
                                "--units NAME=wt% keeps one as a mass fraction")
        prop_i = [i for i in prop_i if i not in left_out]
        names = _mark_duplicates([P.canonical_property(fields[i].name) for i in prop_i])
    units, pfactor, assumed = {}, {}, []
    for i, name in zip(prop_i, names):
        if not name:
            raise InputError(path, "property column name has no letters or digits",
                             field=fields[i].text)
        unit = fields[i].unit or given.get(i, "")
        units[name] = unit
        if i in given:
            metadata[f"unit:{name}"] = f"{unit} (read from the oxide total)" if "oxide_units" in metadata \
                else f"{unit} (given with --units)"
        if unit:
            pfactor[i] = P.value_factor(unit, path=path, field=fields[i].text)
        else:
            pfactor[i] = 1.0
            assumed.append(name)
        if fields[i].text != name:
            metadata[f"column:{name}"] = fields[i].text
    if assumed:
        metadata["assumed_units"] = ", ".join(assumed) + ": no unit in header, taken as wt%"
    skipped = [fields[i].text for i, r in enumerate(role_of)
               if r in (P.ANCILLARY, "ignored") or (r in (P.MID, P.TOP, P.BOTTOM, P.CORE, P.SAMPLE_ID)
                                                     and i not in (*depth_cols, core_i, sample_i))]
    if skipped:
        earlier = metadata.get("ignored_columns")
        metadata["ignored_columns"] = "; ".join(([earlier] if earlier else []) + skipped)

    out = {"core": [], "sample_id": [], "top_mm": [], "bottom_mm": [], "mid_mm": [], "line": []}
    values = {name: [] for name in names}
    flags = {name: [] for name in names}
    width = len(fields)
    qc_rows = []
    for line, cells in rows:
        if not any(c.strip() for c in cells):
            continue
        kind = lab_rules.qc_kind([cells[i] for i in identity if i < len(cells)])
        if kind:  # a blank, standard or duplicate: kept apart, not a sample of the core
            label = next(cells[i].strip() for i in identity if i < len(cells) and
                         lab_rules.qc_kind([cells[i]]))
            qc_rows.append({"line": line, "qc": kind, "label": label,
                            "values": {fields[i].text: c.strip() for i, c in enumerate(cells[:width])
                                       if c.strip() and fields[i].text}})
            continue
        if len(cells) > width:
            extra = [c for c in cells[width:] if c.strip()]
            if extra:
                raise InputError(path, f"row has {len(cells)} cells but the header {width} columns "
                                 f"(extra: {extra[:3]})", line=line)
            cells = cells[:width]
        cells = list(cells) + [""] * (width - len(cells))
        if core is not None:
            core_id = core
        elif core_i is not None:
            core_id = cells[core_i].strip()
            if not core_id:
                raise InputError(path, "core id is empty", line=line, field=fields[core_i].text)
        else:
            core_id = default_core
        if interval:
            top = _depth(cells[top_i], decimal, path, line, fields[top_i].text) * factors[top_i]
            bot = _depth(cells[bot_i], decimal, path, line, fields[bot_i].text) * factors[bot_i]
            if bot < top:
                raise InputError(path, f"bottom depth {cells[bot_i].strip()} is above top depth "
                                 f"{cells[top_i].strip()}", line=line, field=fields[bot_i].text)
            mid = (top + bot) / 2.0
        else:
            top = bot = math.nan
            mid = _depth(cells[mid_i], decimal, path, line, fields[mid_i].text) * factors[mid_i]
        out["core"].append(core_id)
        out["sample_id"].append(cells[sample_i].strip() if sample_i is not None else "")
        out["top_mm"].append(top)
        out["bottom_mm"].append(bot)
        out["mid_mm"].append(mid)
        out["line"].append(line)
        for i, name in zip(prop_i, names):
            parsed = parse_value(cells[i], decimal)
            if parsed is None:
                hint = " (decimal comma? pass decimal=',')" if "," in cells[i] and decimal == "." else ""
                raise InputError(path, f"value {cells[i].strip()!r} is not a number{hint}; "
                                 "expected a number, optionally prefixed by a flag ?, / or *, "
                                 "or empty", line=line, field=fields[i].text)
            values[name].append(parsed[0] * pfactor[i])
            flags[name].append(parsed[1])
    if not out["line"]:
        raise InputError(path, "no data rows: the table is empty" if not qc_rows else
                         f"no sample rows: all {len(qc_rows)} rows are QC rows ({qc_summary(qc_rows)})")

    samples = pd.DataFrame({
        "core": pd.Series(out["core"], dtype=object),
        **({"sample_id": pd.Series(out["sample_id"], dtype=object)} if sample_i is not None else {}),
        "top_mm": np.asarray(out["top_mm"], dtype=np.float64),
        "bottom_mm": np.asarray(out["bottom_mm"], dtype=np.float64),
        "mid_mm": np.asarray(out["mid_mm"], dtype=np.float64),
        "line": np.asarray(out["line"], dtype=np.int64),
        **{name: np.asarray(values[name], dtype=np.float64) for name in names},
    })
    flag_frame = pd.DataFrame({name: pd.Series(flags[name], dtype=object) for name in names},
                              index=samples.index)
    if qc_rows:
        metadata["qc_rows"] = f"{len(qc_rows)} QC row(s) kept apart: " + qc_summary(qc_rows)
    return LabTable(source=source or Path(path).name, samples=samples, flags=flag_frame,
                    units=units, metadata=metadata, qc=qc_rows)


def qc_summary(qc_rows: list[dict]) -> str:
    """``BLANK (lines 62, 63), MESS-4 (lines 64, 65, 66)``."""
    by_label: dict[str, list[int]] = {}
    for row in qc_rows:
        by_label.setdefault(row["label"], []).append(row["line"])
    return ", ".join(f"{label} ({'line' if len(lines) == 1 else 'lines'} {', '.join(map(str, lines))})"
                     for label, lines in by_label.items())


# --------------------------------------------------------------------------- delimited text


def _records(lines: list[str], sep: str) -> list[tuple[int, list[str]]]:
    """Rows of delimited text with their 1-based line numbers (quoted fields may span lines)."""
    # strict: a quote left open (a file cut inside a quoted cell) is an error, not a long cell
    reader = csv.reader(io.StringIO("\n".join(lines) + "\n"), delimiter=sep, quotechar='"',
                        skipinitialspace=sep != "\t", strict=True)
    out, start = [], 1
    try:
        for cells in reader:
            out.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise csv.Error(f"line {reader.line_num}: {exc}") from None
    return out


def sniff_separator(lines: list[str]) -> str | None:
    """The separator that splits the header into most columns with rows that agree.

    Scored over the first 20 lines: a separator whose rows have as many cells as the header
    (trailing empties allowed) beats one that does not; then more columns win; ties go to
    tab, then semicolon, then comma (PANGAEA-style names contain commas).
    """
    sample = [line for line in lines[:20] if line.strip()]
    if not sample:
        return None
    best, best_score = None, None
    for rank, sep in enumerate(_SEPARATORS):
        try:
            records = _records(sample, sep)
        except csv.Error:  # a broken row further down: judge by the header alone
            try:
                records = _records(sample[:1], sep) + [(0, [])]
            except csv.Error:
                continue
        header = records[0][1]
        n = len([c for c in header if c.strip()]) if header else 0
        if n < 2:
            continue
        agree = all(len([c for c in cells if c.strip()]) <= len(header) and
                    len(cells) >= n for _, cells in records[1:])
        score = (agree, n, -rank)
        if best_score is None or score > best_score:
            best, best_score = sep, score
    return best


def _guess_decimal(sep: str, rows: list[tuple[int, list[str]]]) -> str:
    if sep == ";":
        return ","
    if sep == ",":
        return "."
    cells = [c.strip() for _, r in rows[:200] for c in r]
    commas = sum(bool(_COMMA_DECIMAL.match(c)) for c in cells)
    dots = sum(bool(_DOT_DECIMAL.match(c)) for c in cells)
    return "," if commas and not dots else "."


def parse_delimited(path, text: str, *, sep: str | None = None):
    """Header cells, ``(line, cells)`` rows and the separator of delimited text."""
    lines = split_lines(text)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise InputError(path, "no data rows: the file is empty")
    sep = sep or sniff_separator(lines[first:])
    if sep is None:
        raise InputError(path, "cannot find the column separator (expected comma, semicolon or "
                         "tab between at least two header columns)", line=first + 1)
    try:
        records = _records(lines[first:], sep)
    except csv.Error as exc:
        raise InputError(path, f"malformed delimited text ({exc}): a quote left open or text "
                         "after a closing quote; a truncated file?") from None
    header = [c.strip() for c in records[0][1]]
    check_width(path, header, line=first + 1)
    rows = [(line + first, cells) for line, cells in records[1:]]
    return header, rows, sep


def check_width(path, header: list[str], line: int | None = None) -> None:
    """Refuse a header of more than :data:`MAX_COLUMNS` named columns (trailing empty cells are
    separators at the line end and do not count)."""
    named = next((i + 1 for i in range(len(header) - 1, -1, -1) if header[i].strip()), 0)
    if named > MAX_COLUMNS:
        raise InputError(path, f"the header row has {named:,} columns, more than the {MAX_COLUMNS:,} a lab "
                         "table may have: a damaged line or the wrong separator?", line=line)


def _head_text(head: bytes) -> str | None:
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the 8 KiB head is still UTF-8
        text = head[:exc.start].decode("utf-8") if exc.start > len(head) - 4 else head.decode("latin-1")
    return text.lstrip("\ufeff")


def _header_roles(head: bytes) -> tuple[list[P.HeaderField], set[str]] | None:
    text = _head_text(head)
    if text is None or text.lstrip().startswith(("/*", "$", "<")):
        return None
    lines = split_lines(text)
    if len(head) >= 8192 and len(lines) > 1:
        lines = lines[:-1]  # the last line of a full head may be cut
    lines = [line for line in lines if line.strip()]
    sep = sniff_separator(lines)
    if sep is None:
        return None
    try:
        header = _records(lines[:1], sep)[0][1]
    except (csv.Error, IndexError):
        return None
    fields = [P.split_header(h) for h in header if h.strip()]
    return fields, {P.column_role(f) for f in fields}


def sniff(head: bytes, name: str = "") -> bool:
    """A delimited header with a lab value: a known property (CaCO3, TOC, ...) or a column in a
    mass-fraction unit, or three or more element/oxide columns. A depth column is not required
    to claim the table: reading it then refuses a missing depth by name, rather than the user
    meeting the list of every format. Tables of other kinds with a depth column (e.g. a list
    of spectra with ``mid_depth_mm``) are not claimed; a lab table of only unknown, unit-less
    properties needs ``--format lab-csv``.

    IODP LIMS exports are left to ``lab_iodp`` (their ``Core`` is a core number, not an id).
    """
    parsed = _header_roles(head)
    if parsed is None or lab_rules.is_iodp_lims(parsed[0]):
        return False
    fields, _roles = parsed
    has_value = any(P.column_role(f) == P.PROPERTY and (
        P.is_known_property(f.name) or P.unit_key(f.unit) in P.VALUE_UNITS) for f in fields)
    # a table of element concentrations is a lab table even without a depth column: claimed,
    # so that reading it says what is missing rather than listing every format
    concentrations = sum(P.column_role(f) == P.PROPERTY and lab_rules.is_concentration(f.name) for f in fields)
    return has_value or concentrations >= 3


#: Ingest options that belong to spectrum readers (and the lab options only the plain-table
#: reader uses): ingest passes one option set to every reader of a mixed folder, so lab readers
#: read past these instead of refusing them.
SPECTRA_OPTIONS = frozenset({"calibration", "section_top_mm", "section_top_mm_override", "depth_unit", "units"})


def check_options(options: dict, allowed: set[str], fmt: str) -> None:
    """Refuse options no reader knows (a typo should not pass silently)."""
    unknown = sorted(set(options) - allowed - SPECTRA_OPTIONS)
    if unknown:
        raise ConfigError(f"reader {fmt!r} does not take option(s) {unknown}; lab readers take "
                          "core, depth_unit, decimal, sep, ignore_columns (and read past "
                          f"{sorted(SPECTRA_OPTIONS)})")


def read(path, *, source: str | None = None, raw: bytes | None = None, core: str | None = None,
         depth_unit: str | None = None, decimal: str | None = None, sep: str | None = None,
         ignore_columns=(), units=None, **options) -> LabTable:
    """Read a plain lab table.

    Options: ``core`` (the core id when the table has no core column, or to override it),
    ``depth_unit`` (for depth headers without a unit), ``decimal`` ("." or ","; default: ","
    with ";" separators, else "." unless a tab table only has decimal commas), ``sep`` (force a
    separator), ``ignore_columns`` (headers to leave out, e.g. a text column), ``units`` (of
    element/oxide columns without one: ``"ppm"`` or ``"Ca=ppm,Fe=wt%"``). A units row right
    under the header (``,,ppm,mass%``) gives the columns' units.
    """
    check_options(options, set(), FORMAT)
    text = read_text(path, raw)
    header, rows, sep = parse_delimited(path, text, sep=sep)
    decimal = decimal or _guess_decimal(sep, rows)
    meta = {"format": FORMAT, "separator": {"\t": "tab"}.get(sep, sep), "decimal": decimal}
    if rows and (row_units := lab_rules.units_row(header, rows[0][1])) is not None:
        # units written as the first row under the header: "Cu" over "ppm" is "Cu [ppm]"
        header = [f"{h} [{u}]" if h.strip() and u and not P.split_header(h).unit else h
                  for h, u in zip(header, row_units)]
        meta["units_row"] = f"line {rows[0][0]}"
        rows = rows[1:]
    return table_from_cells(path, header, rows, source=source, decimal=decimal, core=core,
                            depth_unit=depth_unit, ignore_columns=ignore_columns, metadata=meta,
                            units=units)
