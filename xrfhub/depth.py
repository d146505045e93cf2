"""Depth scales beyond core depth: the composite depth from a user's affine table.

Core depth is section top + position (the readers compute it). A composite depth ties cores
of one site together; it exists only when the user supplies a table of per-core offsets (and
optional scales), and is then ``depth * scale + offset``. Nothing here guesses one.
"""
from __future__ import annotations

import csv
import math
from os import PathLike

import numpy as np
import pandas as pd

from .errors import ConfigError, InputError


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
