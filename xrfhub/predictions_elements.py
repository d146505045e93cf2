"""Predictions over element-table points: a run file each, rebuilt per run in the hub.

A model that calibrates the vendors' element tables (the ``logratio`` plugin on a store of ITRAX
``Results.txt`` or bAXIL tables, which may hold no spectra) predicts every point of the
``elements`` group. Its values are keyed by (core, source file, spectrum name, depth), never by
row number, so they stay attached to their points when the store later gains tables; they live
in the run's own NeXus file (``runs/<run>.nxs``, ``store.nxrun``) like spectra predictions, and
the hub group ``predictions/<run>`` is rebuilt from it over the ``point`` dimension, row for row
aligned with ``elements`` (whenever a core holding tables changes, like ``elements`` itself).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import xarray as xr

from . import __version__
from .errors import StoreError
from .records import CoreRecord
from .store import layout

KIND = "elements"
GROUP = "elements"
#: Per-point coordinates copied into a run's hub group, so predictions query like the table.
KEPT_COORDS = ("core", "depth_mm", "section", "position_mm", "run", "replicate", "tube_kv", "source", "spectrum",
               "valid")


def point_rows(records: dict[str, CoreRecord]) -> pd.DataFrame:
    """The per-point coordinates of the ``elements`` group, in the hub's row order (as
    ``elements.elements_dataset`` concatenates the tables: cores sorted, tables as stored)."""
    parts = [t.points.assign(source=t.source, core=core) for core in sorted(records) for t in records[core].elements]
    if not parts:
        return pd.DataFrame({"core": pd.Series(dtype=object), "source": pd.Series(dtype=object),
                             "depth_mm": pd.Series(dtype=float), "spectrum": pd.Series(dtype=object)})
    rows = pd.concat(parts, ignore_index=True)
    if "spectrum" not in rows:
        rows["spectrum"] = ""
    rows["spectrum"] = rows["spectrum"].fillna("").astype(str)
    return rows


def _keys(cores, sources, spectra, depths) -> list[tuple]:
    return [(str(c), str(s), str(p), round(float(d), 6)) for c, s, p, d in zip(cores, sources, spectra, depths)]


def run_dataset(records: dict[str, CoreRecord], run) -> xr.Dataset:
    """The hub dataset of one run file over element points, rows aligned with ``elements``."""
    params = {**run.parameters, "date": run.date}
    rows = point_rows(records)
    index = {k: i for i, k in enumerate(_keys(rows["core"], rows["source"], rows["spectrum"], rows["depth_mm"]))}
    where = np.array([index.get(k, -1) for k in _keys(run.keys["core"], run.keys["source"], run.keys["spectrum"],
                                                      run.keys["depth_mm"])], dtype=np.int64)
    keep = where >= 0
    values = {}
    for name, arr in sorted(run.values.items()):
        values[name] = np.full(len(rows), np.nan, dtype=np.float32)
        values[name][where[keep]] = np.asarray(arr, dtype=np.float32)[keep]
    coords = {}
    for col in KEPT_COORDS:
        if col in rows:
            v = rows[col].to_numpy()
            coords[col] = ((layout.POINT,), v if v.dtype.kind in "fiub" else
                           np.array(["" if x is None or x != x else str(x) for x in v], dtype=object))
    ds = xr.Dataset({t: ((layout.POINT,), v, {"run": run.run_id, "long_name": f"predicted {t}",
                                               "units": params.get("units", {}).get(t, "")})
                     for t, v in values.items()}, coords=coords)
    ds.attrs.update({"kind": "predictions", "run": run.run_id, "created": params["date"], "elements_group": GROUP,
                     "provenance": json.dumps(params, sort_keys=True, default=str)})
    return ds


def write_run(store, values: dict[str, np.ndarray], *, group: str, plugin: str, provenance: dict,
              run_id: str | None = None, wait: float = 0.0) -> str:
    """Write one run's values (over the rows of ``elements``) as a run file and one hub group."""
    from .runwrite import commit_run, new_run_id
    from .store import catalog
    from .kinds.elements import KIND as ELEMENTS_KIND
    from .store.cores import load_records
    from .store.generations import Store
    from .store.nxrun import RunFile

    store = store if isinstance(store, Store) else Store(store)
    run_id = run_id or new_run_id(plugin, sorted(values))
    with store.writer(wait=wait):
        current = store.current()
        if current is None:
            raise StoreError(f"{store.root}: the store is empty; nothing to predict on")
        holders = {c for c, s in catalog.Catalog(current.path).cores().items() if s.get("n_points")}
        records = load_records(current, [ELEMENTS_KIND], cores=holders)  # their tables only, of the cores holding tables
        rows = point_rows(records)
        if not len(rows) or any(len(v) != len(rows) for v in values.values()):
            raise StoreError(f"predictions do not match the points of {group}; the store changed since "
                             "prediction began: run predict again")
        predicted = np.zeros(len(rows), dtype=bool)
        for v in values.values():
            predicted |= np.isfinite(np.asarray(v, dtype=float))
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")  # orders runs of one second
        parameters = {**provenance, "plugin": plugin, "kind": KIND, "group": group, "targets": sorted(values)}
        keys = pd.DataFrame({"core": rows["core"].astype(str).to_numpy(dtype=object)[predicted],
                             "source": rows["source"].astype(str).to_numpy(dtype=object)[predicted],
                             "spectrum": rows["spectrum"].astype(str).to_numpy(dtype=object)[predicted],
                             "depth_mm": rows["depth_mm"].to_numpy(dtype=float)[predicted]})
        run = RunFile(run_id, plugin, str(provenance.get("version", __version__)), stamp, parameters, keys,
                      {k: np.asarray(v, dtype=np.float32)[predicted] for k, v in values.items()})
        commit_run(store, current, run, lambda: run_dataset(records, run), len(rows))
    return run_id
