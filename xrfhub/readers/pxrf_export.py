"""Portable-XRF exports on core sections: element concentrations at section offsets.

Handheld analysers (Olympus Vanta, Bruker/Thermo ``GeoExploration`` mode) export one row per
reading. Two layouts, found by their column names, never by position:

* CSV, often UTF-16 (Vanta ``ExportData-*.csv``): ``Date, Time, Reading, Mode, Unit, Run Number,
  Sample Name, Text_ID, Offset for SHLF, Comment`` then one column per element and ``LE`` (the
  light-element balance). The ``Sample Name`` is an IODP sample (``385-U1545A-11H-5-W-60``:
  expedition, hole, core, section, half, offset in cm).
* TSV (``GeoExploration.tsv``): element/oxide columns each followed by ``<name> Err``, and
  ``Sample Type, Expedition, Site & Hole, Core/Section, TextID, Top Offset (cm)``.

Each reading becomes a point of an ``elements`` table: core ``<expedition>-<hole>-<core>``
(``--core`` wins), the section as a coordinate, ``position_mm`` = the section offset, and
``depth_mm`` = section top (``--section-top``, else 0: depths are section-relative, said in a
warning) + offset. Values are stored as ``concentration`` in wt% (``concentration_err`` from the
``Err`` columns); ``ND`` and ``< LOD`` are NaN, flagged ``nd`` / ``<LOD``.

Units: a header unit wins; else the readings' closure: when every reading's columns (with the
``LE`` balance) sum to 10^6 the unit is ppm, to 100 it is %; a ``Unit`` column that disagrees is
named in a warning. Readings that report major oxides (SiO2, Al2O3, ...) and each sum to 20-105
are in % (as ppm the sample would be 99.98 % unreported elements), said in a warning. Otherwise
``--units`` must say (``--units %``): a concentration is never taken as wt% by default. Rows that are not samples (``Mode`` ``Cal Check``, ``Sample Type``
``Standard``, no sample identity) are QC rows: kept apart in ``metadata['qc_rows']`` and reported.
"""
from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .. import properties as P
from ..coreid import parse_iodp_sample
from ..errors import InputError
from ..records import ElementTable, on_depth_scale
from . import lab_rules
from .lab_csv import _records, sniff_separator, split_lines

FORMAT = "pxrf-export"
KIND = "elements"
DESCRIPTION = "Portable-XRF export (Vanta CSV / GeoExploration TSV: Text_ID, section offsets, concentrations)"

_CLOSURE = {"ppm": 1e6, "%": 100.0}
_CLOSURE_TOLERANCE = 0.01
_MISSING = {"nd": "nd", "<lod": "<LOD", "": ""}


def _decode(raw: bytes) -> str | None:
    """UTF-16 (with or without byte-order mark), UTF-8 or Latin-1 text; None when it is none."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in raw[:200]:
        try:
            return raw.decode("utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-16-le")
        except UnicodeDecodeError:
            return None
    try:
        return raw.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _header(text: str) -> tuple[list[str], str] | None:
    lines = [line for line in split_lines(text)[:20] if line.strip()]
    sep = sniff_separator(lines)
    if sep is None:
        return None
    return [c.strip() for c in _records(lines[:1], sep)[0][1]], sep


def _key(name: str) -> str:
    return P.name_key(name)


def sniff(head: bytes, name: str = "") -> bool:
    """A delimited header with a ``Text_ID``/``TextID`` column and three or more element or
    oxide columns (UTF-16 accepted)."""
    text = _decode(head[:len(head) - (len(head) % 2)] if head[:2] in (b"\xff\xfe", b"\xfe\xff") else head)
    if text is None:
        return False
    try:
        found = _header(text)
    except Exception:  # noqa: BLE001 - a sniffer answers no, it does not raise
        return False
    if found is None:
        return False
    keys = {_key(h) for h in found[0]}
    return "textid" in keys and sum(lab_rules.is_concentration(h) for h in found[0]) >= 3


def _cell_value(text: str) -> tuple[float, str]:
    t = text.strip()
    flag = _MISSING.get(t.lower().replace(" ", ""))
    if flag is not None:
        return math.nan, flag
    if not re.fullmatch(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", t):
        raise ValueError(t)
    value = float(t)
    if not math.isfinite(value):
        raise ValueError(t)
    return value, ""


def read(path, *, source: str | None = None, raw: bytes | None = None, core: str | None = None,
         section_top_mm_override: float | None = None, units=None, **_options) -> ElementTable:
    """Read a portable-XRF export into an :class:`ElementTable` (see the module docstring)."""
    path = Path(path)
    raw = path.read_bytes() if raw is None else raw
    text = _decode(raw)
    if text is None:
        raise InputError(path, "cannot decode the text (expected UTF-16, UTF-8 or Latin-1)")
    try:
        found = _header(text)
        if found is None:
            raise InputError(path, "cannot find the column separator (comma or tab)", line=1)
        header, sep = found
        rows = [(n, cells) for n, cells in _records(split_lines(text), sep)[1:] if any(c.strip() for c in cells)]
    except csv.Error as exc:
        raise InputError(path, f"malformed delimited text ({exc}): a quote left open?") from None
    col = {_key(h): i for i, h in enumerate(header) if h}
    conc = [i for i, h in enumerate(header) if lab_rules.is_concentration(P.split_header(h).name)]
    if "le" in col:
        conc.append(col["le"])  # the light-element balance: part of the closure, kept as a column
    err = {i: col.get(_key(header[i] + " Err")) for i in conc}
    lines = [P.split_header(header[i]).name for i in conc]
    header_units = {i: P.split_header(header[i]).unit for i in conc}

    warnings: list[str] = []
    points, values, errors, flags, qc = [], [], [], [], []
    for number, cells in rows:
        cells = cells + [""] * (len(header) - len(cells))

        def cell(*names):
            return next((cells[col[k]].strip() for k in names if k in col and cells[col[k]].strip()), "")

        where = _identity(cell, core)
        mode = cell("mode", "sampletype")
        if where is None or mode.lower() in ("cal check", "calcheck", "standard", "check", "blank"):
            qc.append({"line": number, "qc": mode or "no sample", "label": cell("samplename", "coresection") or mode})
            continue
        vals, errs, fl = [], [], []
        for i in conc:
            try:
                v, f = _cell_value(cells[i])
                e = _cell_value(cells[err[i]])[0] if err[i] is not None else math.nan
            except ValueError:
                raise InputError(path, f"expected a number, ND or < LOD, found {cells[i].strip()[:20]!r}", line=number,
                                 field=header[i]) from None
            vals.append(v)
            errs.append(e)
            fl.append(f)
        points.append({**where, "file_line": number, "date": " ".join(x for x in (cell("date"), cell("time")) if x)
                       or cell("datetime"), "spectrum": cell("reading", "file"), "unit_column": cell("unit")})
        values.append(vals)
        errors.append(errs)
        flags.append(fl)
    if not points:
        raise InputError(path, f"no sample readings: all {len(qc)} rows are checks/standards or lack a sample id")
    values_a, errors_a = np.array(values, dtype=np.float64), np.array(errors, dtype=np.float64)

    factor = _unit_factors(path, header, conc, header_units, values_a, points, units, warnings)
    values_a *= factor
    errors_a *= factor
    n = len(points)
    frame = pd.DataFrame(points)
    # offsets within IODP sections: section-relative until --sections (or --section-top) places them
    top = math.nan if section_top_mm_override is None else float(section_top_mm_override)
    frame["section_top_mm"] = np.full(n, top)
    frame["depth_mm"], scale = on_depth_scale(top, frame["position_mm"].to_numpy(dtype=float))
    frame["depth_scale"] = scale
    frame["tube_kv"] = np.full(n, math.nan)
    frame["run"] = ""
    frame["replicate"] = np.zeros(n, dtype=np.int32)
    frame["valid"] = True
    frame["source"] = source or path.name
    metadata = {"format": FORMAT, "quantity": "concentration", "unit": "wt%", "lines_are": "elements and oxides"}
    if qc:
        metadata["qc_rows"] = f"{len(qc)} QC row(s) kept apart: " + ", ".join(
            f"{r['label'] or r['qc']} (line {r['line']})" for r in qc)
    if warnings:
        metadata["warnings"] = "; ".join(warnings)
    return ElementTable(source=source or path.name, points=frame, lines=lines,
                        values={"concentration": values_a, "concentration_err": errors_a},
                        flags=np.array(flags, dtype="<U8"), metadata=metadata)


def _identity(cell, core_option: str | None) -> dict | None:
    """Core, section, half, offset and text id of a reading; None when it names no sample."""
    text_id = cell("textid")
    name = cell("samplename")
    sample = parse_iodp_sample(name) if name else None
    if sample is not None:
        core_id, section, half = sample.core, sample.section, sample.half
        offset = cell("offsetforshlf", "topoffsetcm", "topoffset", "offsetcm", "offset") or sample.offset_cm
    elif cell("coresection") and cell("siteandhole", "sitehole") and cell("expedition"):
        core_no, _, section = cell("coresection").partition("/")
        core_id = f"{cell('expedition')}-{cell('siteandhole', 'sitehole').upper()}-{core_no.strip().upper()}"
        section, half = section.strip(), ""
        offset = cell("topoffsetcm", "topoffset", "offsetforshlf", "offsetcm", "offset")
    else:
        return None
    if not offset:
        return None
    try:
        position = float(offset) * 10.0  # offsets are written in cm (IODP convention; the TSV says "(cm)")
    except ValueError:
        return None
    if not (math.isfinite(position) and position >= 0):
        return None
    return {"core": core_option or core_id, "section": section, "half": half, "text_id": text_id,
            "sample": name, "position_mm": position}


def _unit_factors(path, header, conc, header_units, values, points, units, warnings) -> np.ndarray:
    """Factor to wt% per concentration column: header units, else closure, else ``--units``."""
    default, per = lab_rules.parse_units_option(units, path)
    factors = np.ones(len(conc))
    if all(header_units[i] for i in conc):
        return np.array([P.value_factor(header_units[i], path=path, field=header[i]) for i in conc])
    sums = np.nansum(values, axis=1)
    closure = next((u for u, total in _CLOSURE.items()
                    if np.all(np.abs(sums - total) <= _CLOSURE_TOLERANCE * total)), None)
    if closure is not None:
        written = sorted({p["unit_column"] for p in points if p["unit_column"]})
        if written and written != [closure]:
            warnings.append(f"the Unit column says {', '.join(written)}, but every reading sums to "
                            f"{_CLOSURE[closure]:,.0f}: values read as {closure}")
        if default and P.unit_key(default) != P.unit_key(closure):
            warnings.append(f"--units {default} not used: every reading sums to {_CLOSURE[closure]:,.0f} ({closure})")
        return np.full(len(conc), P.value_factor(closure, path=path, field="closure"))
    # major oxides' totals outweigh a --units meant for a folder's other tables (as closure does);
    # per-column units, written for these columns, do not give way
    why = "" if per else lab_rules.oxides_in_percent([P.split_header(header[i]).name for i in conc], sums)
    if why:
        warnings.append(f"--units {default} not used: {why}" if default and P.unit_key(default) != P.unit_key("%")
                        else why)
        return np.full(len(conc), P.value_factor("%", path=path, field="oxide total"))
    for k, i in enumerate(conc):
        name = P.split_header(header[i]).name
        unit = header_units[i] or per.get(name) or default
        if not unit:
            raise InputError(path, f"element concentrations without a unit ({', '.join(header[j] for j in conc[:8])}"
                                   f"{' ...' if len(conc) > 8 else ''}) and readings that do not sum to 100 % or "
                                   "10^6 ppm: never taken as wt%; pass --units (e.g. --units %)", field=header[i])
        factors[k] = P.value_factor(unit, path=path, field=header[i])
    return factors
