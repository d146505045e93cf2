"""``xrfhub query``: rows of a store selection written to CSV, Parquet or NetCDF."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from . import api
from .errors import InputError
from .index import drop_core_depth_index
from .store.layout import SPECTRUM_COORDS

FORMATS = {".csv": "csv", ".parquet": "parquet", ".nc": "netcdf"}


def parse_depth_range(text: str | None) -> slice | None:
    """``"100:500"`` -> slice(100.0, 500.0) (inclusive); ``":500"`` and ``"100:"`` are open."""
    if not text:
        return None
    parts = text.split(":")
    if len(parts) != 2:
        raise InputError("--depth", f"expected START:STOP in mm (e.g. 100:500), got {text!r}")
    try:
        lo, hi = (float(p) if p.strip() else None for p in parts)
    except ValueError:
        raise InputError("--depth", f"expected numbers in mm, got {text!r}") from None
    return slice(lo, hi)


def select(store, kind: str = "spectra", core=None, depth: slice | None = None, section=None,
           **where) -> xr.Dataset:
    """Rows of one kind by core, depth range and section.

    A depth selection never mixes two sections at one depth: where depths are
    section-relative (no ``--sections`` table placed them), rows of two sections of one core
    share depths, so such a selection must name its section, or it is refused.
    """
    ds = api.open(store, kind)
    sel = {}
    if core:
        sel["core"] = core
    if depth is not None:
        sel["depth_mm"] = depth
    if sel:
        ds = ds.sel(**sel)
    if section is not None:
        if "section" not in ds.coords and "section" not in ds:
            raise InputError("--section", f"the {kind!r} rows carry no section")
        wanted = [section] if isinstance(section, str) else list(section)
        keep = np.isin(np.asarray(ds["section"].values).astype(str), wanted)
        ds = ds.isel({ds["section"].dims[0]: np.flatnonzero(keep)})
    if depth is not None:
        _refuse_mixed_sections(ds)
    for name, value in where.items():
        if value is not None:
            ds = ds.where(ds[name] == value, drop=True) if name not in ds.indexes else ds.sel({name: value})
    return ds


def _refuse_mixed_sections(ds: xr.Dataset) -> None:
    """Refuse a depth selection whose rows of one core come from two sections on section-relative depths."""
    if "depth_scale" not in ds or "section" not in ds or "core" not in ds:
        return
    scale = np.asarray(ds["depth_scale"].values).astype(str)
    rel = scale == "section-relative"
    if not rel.any():
        return
    core = np.asarray(ds["core"].values).astype(str)[rel]
    section = np.asarray(ds["section"].values).astype(str)[rel]
    for c in dict.fromkeys(core):
        secs = sorted(set(section[core == c]))
        if len(secs) > 1:
            raise InputError("--depth", f"core {c} has section-relative depths (no --sections table placed its "
                                        f"sections), so sections {', '.join(secs)} share these depths; name one "
                                        "with --section, or ingest a sections table with --sections FILE")


def to_table(ds: xr.Dataset, *, counts: bool = False, units: str = "none") -> pd.DataFrame:
    """One row per spectrum (or sample) with its coordinates; counts as ``ch0000...`` if asked.

    ``units`` says how a column's unit (its ``units`` attribute) reaches a table that has no
    attributes: ``"suffix"`` names the column ``CaCO3_wt%``, ``"none"`` leaves names as they are.
    """
    row_dim = next(d for d in ("spectrum", "sample", "point", "pattern") if d in ds.dims)
    ds = drop_core_depth_index(ds)
    names = [n for n, v in ds.variables.items() if v.dims == (row_dim,)]
    first = [n for n in ("core", "depth_mm") if n in names]
    known = [n for n in SPECTRUM_COORDS if n in names and n not in first]
    names = first + known + sorted(set(names) - set(first) - set(known))
    table = pd.DataFrame({name: np.asarray(ds[name].values) for name in names})
    if units == "suffix":
        table.columns = [_with_unit(name, ds[name].attrs.get("units")) for name in names]
    if counts and "counts" in ds:
        values = np.asarray(ds["counts"].values)
        width = len(str(values.shape[1] - 1))
        table = pd.concat([table, pd.DataFrame(values, columns=[f"ch{i:0{width}d}" for i in range(values.shape[1])])],
                          axis=1)
    return table


def _with_unit(name: str, unit) -> str:
    """``CaCO3`` + ``wt%`` -> ``CaCO3_wt%``; a name that already ends in its unit stays."""
    if not unit or name.endswith(f"_{unit}") or name.endswith(f"_{unit.replace('%', 'pct')}"):
        return name
    return f"{name}_{unit}"


#: Ways to carry units into CSV and Parquet: a suffix on the name, a row under the header, nothing.
CSV_UNITS = ("suffix", "row", "none")


def query(store, out, *, kind: str = "spectra", core=None, depth: str | slice | None = None,
          counts: bool = False, section=None, units: str = "suffix") -> int:
    """Write a selection to ``out`` (format from its suffix); returns the number of rows.

    A selection with no rows is refused with what the store holds for the cores asked
    (their depth ranges), rather than written as an empty file. ``units`` (CSV and Parquet):
    ``suffix`` (``CaCO3_wt%``), ``row`` (a second header row of units, CSV only) or ``none``.
    NetCDF keeps units as attributes.
    """
    if units not in CSV_UNITS:
        raise InputError("--units-as", f"expected one of {', '.join(CSV_UNITS)}, got {units!r}")
    out = Path(out)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise InputError(out, f"unknown output format {out.suffix!r}; use one of {', '.join(FORMATS)}")
    depth = parse_depth_range(depth) if isinstance(depth, str) else depth
    ds = select(store, kind, core=core, depth=depth, section=section)
    if not any(ds.sizes.get(d, 0) for d in ("spectrum", "sample", "point", "pattern")):
        raise InputError("--depth", _empty_selection(store, kind, core, depth))
    if fmt == "netcdf":
        ds = drop_core_depth_index(ds)
        if not counts and "counts" in ds:
            ds = ds.drop_vars("counts")
        ds = ds.load()
        for name, var in list(ds.variables.items()):
            if var.dtype.kind in "OT":
                ds[name] = (var.dims, np.array([str(v) for v in var.values.ravel()]).reshape(var.shape), var.attrs)
        ds.attrs = {k: str(v) for k, v in ds.attrs.items()}
        ds.to_netcdf(out, engine="h5netcdf")
        return int(ds.sizes.get("spectrum", ds.sizes.get("sample", 0)))
    if units == "row" and fmt != "csv":
        raise InputError("--units-as", "a units row exists only in CSV; use --units-as suffix for Parquet")
    table = to_table(ds, counts=counts, units="suffix" if units == "suffix" else "none")
    if fmt == "csv" and units == "row":
        unit_row = [str(ds[c].attrs.get("units", "")) if c in ds.variables else
                    ("counts" if c.startswith("ch") else "") for c in table.columns]
        with open(out, "w", encoding="utf-8", newline="") as fh:
            table.head(0).to_csv(fh, index=False)
            pd.DataFrame([unit_row], columns=table.columns).to_csv(fh, index=False, header=False)
            table.to_csv(fh, index=False, header=False)
    elif fmt == "csv":
        table.to_csv(out, index=False)
    else:
        table.to_parquet(out, index=False)
    return len(table)


def _empty_selection(store, kind: str, core, depth: slice | None) -> str:
    """Why a query found nothing, with the depth range of each core asked for (or of all)."""
    full = api.open(store, kind, index=False)
    asked = [core] if isinstance(core, str) else list(core or [])
    cores = np.asarray(full["core"].values).astype(str)
    depths = np.asarray(full["depth_mm"].values, dtype=float) if "depth_mm" in full else None
    shown = asked or sorted(set(cores))
    parts = []
    for c in shown[:20]:
        here = cores == c
        if depths is None or not here.any():
            parts.append(f"{c}: {'no rows' if not here.any() else f'{int(here.sum())} rows'}")
        else:
            parts.append(f"{c}: {np.nanmin(depths[here]):g}-{np.nanmax(depths[here]):g} mm")
    wanted = "" if depth is None else f" in depth {depth.start if depth.start is not None else ''}:" \
                                      f"{depth.stop if depth.stop is not None else ''} mm"
    more = f" (and {len(shown) - 20} more cores)" if len(shown) > 20 else ""
    return f"no {kind} rows{wanted}; the store holds " + "; ".join(parts) + more
