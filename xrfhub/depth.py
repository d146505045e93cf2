"""Depth scales: section tops from a user's sections table, and composite depths from an affine table.

A point is measured at a position in a section. Its depth in the core is section top +
position, but the top is not always in the file: an IODP sample name gives the section's
number, not its depth. ``--sections FILE`` (:func:`read_sections_table`) gives the tops, for
every vendor, on the depth scale its header names (CSF-A, CCSF/composite, or depth below the
core top); without it such depths stay section-relative and are recorded as such.

Core depth is section top + position (the readers compute it). A composite depth ties cores
of one site together; it exists only when the user supplies a table of per-core offsets (and
optional scales), and is then ``depth * scale + offset``. Nothing here guesses one.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from os import PathLike

import numpy as np
import pandas as pd

from .errors import ConfigError, InputError
from .records import DEPTH_SAMPLE, DEPTH_SECTION_RELATIVE, SpectraBlock


def composite_depth(core: np.ndarray, depth_mm: np.ndarray,
                    table: pd.DataFrame | None) -> np.ndarray:
    """Composite depth ``depth_mm * scale + offset_mm`` by each value's core.

    ``table`` has columns ``core``, ``offset_mm`` and optionally ``scale`` (default 1), one row
    per core (see :func:`read_affine_table`). Cores not in the table, and every value when
    ``table`` is None, get NaN: a composite depth only ever comes from the user's table.
    """
    depth = np.asarray(depth_mm, dtype=np.float64)
    core = np.asarray(core, dtype=object)
    if core.shape != depth.shape:
        raise ConfigError(f"core {core.shape} and depth_mm {depth.shape} must have one shape")
    out = np.full(depth.shape, np.nan)
    if table is None or len(table) == 0:
        return out
    missing = [c for c in ("core", "offset_mm") if c not in table.columns]
    if missing:
        raise ConfigError(f"the affine table lacks column(s) {', '.join(missing)}; "
                          "expected core, offset_mm and optionally scale")
    names = table["core"].astype(str)
    if names.duplicated().any():
        twice = sorted(set(names[names.duplicated()]))
        raise ConfigError(f"the affine table gives core(s) {', '.join(twice)} more than once")
    offset = pd.to_numeric(table["offset_mm"], errors="coerce").to_numpy(dtype=np.float64)
    scale = (pd.to_numeric(table["scale"], errors="coerce").fillna(1.0).to_numpy(np.float64)
             if "scale" in table.columns else np.ones(len(table)))
    pos = pd.Index(names).get_indexer(pd.Index(core.ravel()))
    pos = pos.reshape(depth.shape)
    hit = pos >= 0
    out[hit] = depth[hit] * scale[pos[hit]] + offset[pos[hit]]
    return out


_OFFSET_UNITS = {"offset_mm": 1.0, "offset_cm": 10.0, "offset_m": 1000.0}


def read_affine_table(path: str | PathLike) -> pd.DataFrame:
    """Read a user's affine depth table: CSV with header ``core,offset_mm[,scale]``.

    ``offset_cm`` or ``offset_m`` are accepted instead of ``offset_mm`` (converted to mm);
    ``;`` or TAB separators (then decimal commas too), ``#`` comment lines and extra columns
    are allowed. Returns columns ``core``, ``offset_mm``, ``scale`` (1 where not given).
    Raises :class:`~xrfhub.errors.InputError` naming the line and field of any bad value.
    """
    try:
        raw = open(path, "rb").read()
    except OSError as exc:
        raise InputError(path, f"cannot read the affine table: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = [(k + 1, ln) for k, ln in enumerate(text.splitlines())
             if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InputError(path, "the affine table is empty; expected a header "
                         "core,offset_mm[,scale]")
    head_line, head = lines[0]
    sep = max((",", ";", "\t"), key=head.count)
    header = [h.strip().lower() for h in next(csv.reader([head], delimiter=sep))]
    if "core" not in header:
        raise InputError(path, f"no 'core' column in header {header}; expected "
                         "core,offset_mm[,scale]", line=head_line, field="core")
    unit_col = next((h for h in _OFFSET_UNITS if h in header), None)
    if unit_col is None:
        raise InputError(path, f"no offset column in header {header}; expected offset_mm "
                         "(or offset_cm, offset_m)", line=head_line, field="offset_mm")
    i_core, i_off = header.index("core"), header.index(unit_col)
    i_scale = header.index("scale") if "scale" in header else None
    rows, seen = [], {}
    for number, line in lines[1:]:
        cells = next(csv.reader([line], delimiter=sep))
        if len(cells) <= max(i_core, i_off):
            raise InputError(path, f"expected {len(header)} fields, found {len(cells)}",
                             line=number)
        core = cells[i_core].strip()
        if not core:
            raise InputError(path, "empty core id", line=number, field="core")
        if core in seen:
            raise InputError(path, f"core {core!r} already given on line {seen[core]}",
                             line=number, field="core")
        seen[core] = number
        offset = _number(path, cells[i_off], number, unit_col, sep) * _OFFSET_UNITS[unit_col]
        scale = 1.0
        if i_scale is not None and i_scale < len(cells) and cells[i_scale].strip():
            scale = _number(path, cells[i_scale], number, "scale", sep)
            if scale <= 0:
                raise InputError(path, f"scale must be > 0, got {scale:g}", line=number,
                                 field="scale")
        rows.append((core, offset, scale))
    if not rows:
        raise InputError(path, "the affine table has a header but no rows", line=head_line)
    return pd.DataFrame(rows, columns=["core", "offset_mm", "scale"])


def _number(path, text: str, line: int, field: str, sep: str) -> float:
    t = text.strip()
    if sep != ",":
        t = t.replace(",", ".")
    try:
        value = float(t)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(path, f"expected a finite number, got {text.strip()!r}", line=line,
                         field=field)
    return value


# ---------------------------------------------------------------------------- section tops

#: Depth scales a sections table's header may name, as recorded (IODP depth scale names; a
#: composite scale by any of its names). A header naming none gives ``core`` depths: the
#: section tops are then depths below the top of the core.
_SCALES = (("ccsf-a", "CCSF-A"), ("ccsf-d", "CCSF-D"), ("ccsf", "CCSF"), ("csf-a", "CSF-A"), ("csf-b", "CSF-B"),
           ("wsf", "WSF"), ("mbsf", "mbsf"), ("mcd", "mcd"), ("composite", "composite"), ("rmcd", "rmcd"))
_LENGTH_UNITS = {"mm": 1.0, "cm": 10.0, "m": 1000.0}
_CORE_HEADERS = ("core", "core_id", "core id", "coreid")
_SECTION_HEADERS = ("section", "sect", "section_id", "section id", "section number", "sec")
_IODP_PARTS = ("exp", "site", "hole", "core", "type")


def section_key(section) -> str:
    """A section id as matched: upper case, leading zeros dropped (``01`` = ``1``, ``cc`` = ``CC``)."""
    text = str(section).strip().upper()
    return text.lstrip("0") or ("0" if text else "") if text.isdigit() else text


@dataclass
class SectionTable:
    """Section tops of cores, read from a user's table (``--sections FILE``).

    ``tops`` maps (normalised core id, section key) to the section top in mm on ``scale``
    (``CSF-A``, ``CCSF``, ``composite``, ``core`` ...). Core ids match as the lab tables do
    (:func:`xrfhub.coreid.normalise`), sections by :func:`section_key`. The same table serves
    every vendor: anything carrying (core, section, position in the section) can be placed.
    """

    source: str
    scale: str
    tops: dict[tuple[str, str], float]
    unit: str = "mm"

    @property
    def cores(self) -> set[str]:
        return {c for c, _ in self.tops}

    def covers(self, core: str) -> bool:
        from .coreid import normalise

        return normalise(core) in self.cores

    def top_mm(self, core: str, section: str) -> float | None:
        """The section's top in mm, or None when the table does not give it."""
        from .coreid import normalise

        return self.tops.get((normalise(core), section_key(section)))

    def sections_of(self, core: str) -> list[str]:
        from .coreid import normalise

        key = normalise(core)
        return sorted(s for c, s in self.tops if c == key)

    def describe(self) -> dict:
        return {"table": self.source, "scale": self.scale, "unit": self.unit, "n_sections": len(self.tops)}


def place_positions(table: SectionTable, core, section, position_mm) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Depths of many points by the table: ``top + position``, for rows whose core it covers.

    Returns (section_top_mm, depth_mm, rows the table covers but whose section it lacks).
    Rows of cores the table does not cover get NaN in both arrays (the caller keeps their own).
    """
    core = np.asarray(core, dtype=object)
    section = np.asarray(section, dtype=object)
    pos = np.asarray(position_mm, dtype=np.float64)
    top = np.full(pos.shape, np.nan)
    missing = []
    cache: dict[tuple[str, str], float | None] = {}
    for i, (c, s) in enumerate(zip(core, section)):
        key = (str(c), str(s))
        if key not in cache:
            cache[key] = table.top_mm(*key) if table.covers(key[0]) else math.nan
        value = cache[key]
        if value is None:
            missing.append(i)
        else:
            top[i] = value
    return top, top + pos, missing


def read_sections_table(path: str | PathLike) -> SectionTable:
    """Read ``--sections FILE``: one row per section with its core, section and top depth.

    Columns: a core id (``core``), or IODP's split columns ``Exp, Site, Hole, Core, Type``
    (joined to ``397-U1587A-2H``); a section (``section``/``Sect``); and a top depth whose unit
    is in the header (``top_cm``, ``top (m)``, ``Top depth CSF-A (m)``, ``top [mm]``). The
    depth scale is read from that header (``CSF-A``, ``CCSF``, ``composite`` ...), else the
    tops are taken as depths below the core top (scale ``core``). Comma, semicolon or TAB
    separated; UTF-8, UTF-16 or Latin-1; ``#`` lines are comments; other columns are ignored.
    """
    try:
        raw = open(path, "rb").read()
    except OSError as exc:
        raise InputError(path, f"cannot read the sections table: {exc.strerror or exc}") from None
    text = _decode_table(raw)
    lines = [(k + 1, ln) for k, ln in enumerate(text.splitlines())
             if ln.strip() and not ln.lstrip().startswith("#")]
    expected = "expected a header with core (or Exp,Site,Hole,Core,Type), section and a top depth with its unit"
    if not lines:
        raise InputError(path, f"the sections table is empty; {expected}")
    head_line, head = lines[0]
    sep = max((",", ";", "\t"), key=head.count)
    header = [h.strip() for h in next(csv.reader([head], delimiter=sep))]
    low = [h.lower() for h in header]
    i_sec = next((low.index(h) for h in _SECTION_HEADERS if h in low), None)
    i_top, unit, scale = _top_column(path, header, head_line)
    if i_sec is None:
        raise InputError(path, f"no section column in header {header}; {expected}", line=head_line, field="section")
    parts = None
    if all(p in low for p in _IODP_PARTS):
        parts = [low.index(p) for p in _IODP_PARTS]
    else:
        i_core = next((low.index(h) for h in _CORE_HEADERS if h in low), None)
        if i_core is None:
            raise InputError(path, f"no core column in header {header}; {expected}", line=head_line, field="core")
    from .coreid import normalise

    tops: dict[tuple[str, str], float] = {}
    seen: dict[tuple[str, str], int] = {}
    for number, line in lines[1:]:
        cells = [c.strip() for c in next(csv.reader([line], delimiter=sep))]
        need = max([i_sec, i_top] + (parts or [i_core]))
        if len(cells) <= need:
            raise InputError(path, f"expected {len(header)} fields, found {len(cells)}", line=number)
        if parts:
            exp, site, hole, core_no, ctype = (cells[i] for i in parts)
            core = f"{exp}-{site}{hole}-{core_no}{ctype}"
        else:
            core = cells[i_core]
        if not core.strip("-"):
            raise InputError(path, "empty core id", line=number, field="core")
        section = cells[i_sec]
        if not section:
            raise InputError(path, "empty section", line=number, field=header[i_sec])
        top = _number(path, cells[i_top], number, header[i_top], sep) * _LENGTH_UNITS[unit]
        key = (normalise(core), section_key(section))
        if key in seen:
            raise InputError(path, f"core {core!r} section {section!r} already given on line {seen[key]}",
                             line=number, field=header[i_sec])
        seen[key] = number
        tops[key] = top
    if not tops:
        raise InputError(path, "the sections table has a header but no rows", line=head_line)
    return SectionTable(str(path), scale, tops, unit)


def _decode_table(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


_UNIT_IN_HEADER = re.compile(r"(?:[\(\[]\s*(mm|cm|m)\s*[\)\]]|[_ ](mm|cm|m))\s*$", re.IGNORECASE)


def _top_column(path, header: list[str], line: int) -> tuple[int, str, str]:
    """(index, unit, scale) of the top-depth column: a header with 'top' and a length unit."""
    tops = [i for i, h in enumerate(header) if "top" in h.lower() and "bottom" not in h.lower()]
    if not tops:
        raise InputError(path, f"no top depth column in header {header}; expected e.g. 'top_cm' or "
                               "'Top depth CSF-A (m)'", line=line, field="top")
    for i in tops:
        m = _UNIT_IN_HEADER.search(header[i])
        if m:
            unit = (m.group(1) or m.group(2)).lower()
            low = header[i].lower()
            scale = next((name for token, name in _SCALES if token in low), "core")
            return i, unit, scale
    raise InputError(path, f"top depth column {header[tops[0]]!r} gives no unit; write it in the header, e.g. "
                           "'top (m)', 'top_cm' or 'Top depth CSF-A (m)'", line=line, field=header[tops[0]])


def place_spectra(spectra: list["Spectrum"], table: SectionTable, paths: dict[str, str]) -> list[tuple[str, InputError]]:
    """Section tops from the user's table: depth = top + position, on the table's scale.

    Returns (store name, error) for spectra of a core the table covers but whose section it
    lacks: placing some sections of a core and not others would mix two depth scales.
    """
    # spectra of discrete samples have no position in a section: a sections table never places them
    scan = [s for s in spectra if s.depth_scale != DEPTH_SAMPLE]
    top, depth, missing = place_positions(table, [s.core for s in scan], [s.section for s in scan],
                                          [s.position_mm for s in scan])
    spectra = scan
    lacking = set(missing)
    bad: dict[str, InputError] = {}
    for i, s in enumerate(spectra):
        if i in lacking:
            known = ", ".join(table.sections_of(s.core)) or "none"
            bad.setdefault(s.source, InputError(
                paths.get(s.source, s.source), f"core {s.core} section {s.section!r} is not in the sections table "
                f"{table.source} (its sections of this core: {known})", field="section"))
        elif not np.isnan(top[i]):
            s.section_top_mm, s.depth_mm, s.depth_scale = float(top[i]), float(depth[i]), table.scale
    return list(bad.items())


def place_stored_scans(records: dict, table: SectionTable) -> set[str]:
    """Stored scans of cores the table covers get its section tops too (ingest --sections again)."""
    changed = set()
    for core_id in [c for c in records if table.covers(c)]:  # only those cores' files are read
        rec = records[core_id]
        for name, block in list(rec.scans.items()):
            c = block.coords
            top, depth, missing = place_positions(table, c["core"].to_numpy(), c["section"].to_numpy(),
                                                  c["position_mm"].to_numpy())
            ok = ~np.isnan(top)
            if missing or not ok.any():
                continue  # a stored section the table lacks keeps the depths it has
            same = (c["depth_scale"].to_numpy() == table.scale) & np.isclose(c["depth_mm"].to_numpy(float), depth)
            if same[ok].all():
                continue
            coords = c.copy()
            coords.loc[ok, "section_top_mm"] = top[ok]
            coords.loc[ok, "depth_mm"] = depth[ok]
            coords.loc[ok, "depth_scale"] = table.scale
            rec.scans[name] = SpectraBlock(block.counts, coords)
            changed.add(core_id)
    return changed


def section_relative_warnings(records: dict, changed: set[str]) -> list[str]:
    """One warning per changed core whose depths are section-relative (its section tops unknown)."""
    out = []
    for core_id in sorted(changed & set(records)):
        scans = records[core_id].scans.values()
        rel = [b.coords for b in scans if (b.coords["depth_scale"] == DEPTH_SECTION_RELATIVE).any()]
        if rel:
            n = sum(int((c["depth_scale"] == DEPTH_SECTION_RELATIVE).sum()) for c in rel)
            secs = sorted({str(x) for c in rel for x in c["section"]})
            out.append(f"core {core_id}: {n} spectra in section(s) {', '.join(secs)} have section-relative depths "
                       "(the files give section numbers, not section tops); pass --sections FILE (core, section, "
                       "top depth with its unit) to place them in the core")
    return out
