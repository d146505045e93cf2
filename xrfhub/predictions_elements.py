"""Predictions over element-table points: kept per core in NeXus, rebuilt per run in the hub.

A model that calibrates the vendors' element tables (the ``logratio`` plugin on a store of ITRAX
``Results.txt`` or bAXIL tables, which may hold no spectra) predicts every point of the
``elements`` group. Its values are keyed by (source file, spectrum name, depth), never by row
number, so they stay attached to their points when the store later gains tables; they live in each
core's NeXus file as an NXprocess ``prediction_<run>`` like spectra predictions, and the hub group
``predictions/<run>`` is rebuilt from them over the ``point`` dimension, row for row aligned with
``elements``.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import xarray as xr

from . import __version__
from .errors import StoreError
from .records import CoreRecord, Process
from .store import layout

KIND = "elements"
GROUP = "elements"
#: Per-point coordinates copied into a run's hub group, so predictions query like the table.
KEPT_COORDS = ("core", "depth_mm", "section", "position_mm", "run", "replicate", "tube_kv", "source", "spectrum",
               "valid")


def point_rows(records: dict[str, CoreRecord]) -> pd.DataFrame:
    """The per-point coordinates of the ``elements`` group, in the hub's row order (as
    ``build._elements_dataset`` concatenates the tables: cores sorted, tables as stored)."""
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


def attach(records: dict[str, CoreRecord], rows: pd.DataFrame, values: dict[str, np.ndarray], run_id: str,
           parameters: dict) -> set[str]:
    """Add one run's values (aligned with ``rows``) to the core records as NXprocesses."""
    from .predictions import PREFIX

    cores = rows["core"].to_numpy().astype(str)
    predicted = np.zeros(len(rows), dtype=bool)
    for v in values.values():
        predicted |= np.isfinite(np.asarray(v, dtype=float))
    stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")  # orders runs of one second
    changed = set()
    for core in sorted(set(cores[predicted])):
        mine = np.flatnonzero((cores == core) & predicted)
        data = {"source": rows["source"].to_numpy()[mine].astype(str).astype(object),
                "spectrum": rows["spectrum"].to_numpy()[mine].astype(str).astype(object),
                "depth_mm": rows["depth_mm"].to_numpy(dtype=float)[mine]}
        data.update({f"value_{t}": np.asarray(v, dtype=np.float32)[mine] for t, v in values.items()})
        records[core].processes.append(Process(
            f"{PREFIX}{run_id}", str(parameters.get("plugin", "xrfhub")), str(parameters.get("version", __version__)),
            stamp, {"run_id": run_id, **parameters}, data))
        changed.add(core)
    return changed


def run_datasets(records: dict[str, CoreRecord]) -> dict[str, xr.Dataset]:
    """The hub datasets of every run over element-table points, rows aligned with ``elements``."""
    from .predictions import PREFIX, runs_in

    out = {}
    runs = {r: p for r, p in runs_in(records).items() if p.get("kind") == KIND}
    if not runs:
        return out
    rows = point_rows(records)
    index = {k: i for i, k in enumerate(_keys(rows["core"], rows["source"], rows["spectrum"], rows["depth_mm"]))}
    for run_id, params in sorted(runs.items()):
        targets = list(params["targets"])
        values = {t: np.full(len(rows), np.nan, dtype=np.float32) for t in targets}
        for core, rec in records.items():
            for p in rec.processes:
                if p.name != f"{PREFIX}{run_id}":
                    continue
                keys = _keys([core] * len(p.data["depth_mm"]), p.data["source"], p.data["spectrum"], p.data["depth_mm"])
                for i, key in enumerate(keys):
                    row = index.get(key)
                    if row is not None:
                        for t in targets:
                            values[t][row] = p.data[f"value_{t}"][i]
        coords = {}
        for col in KEPT_COORDS:
            if col in rows:
                v = rows[col].to_numpy()
                coords[col] = ((layout.POINT,), v if v.dtype.kind in "fiub" else
                               np.array(["" if x is None or x != x else str(x) for x in v], dtype=object))
        ds = xr.Dataset({t: ((layout.POINT,), v, {"run": run_id, "long_name": f"predicted {t}",
                                                   "units": params.get("units", {}).get(t, "")})
                         for t, v in values.items()}, coords=coords)
        ds.attrs.update({"kind": "predictions", "run": run_id, "created": params["date"], "elements_group": GROUP,
                         "provenance": json.dumps(params, sort_keys=True, default=str)})
        out[layout.predictions_group(run_id)] = ds
    return out


def write_run(store, values: dict[str, np.ndarray], *, group: str, plugin: str, provenance: dict,
              run_id: str | None = None, wait: float = 0.0) -> str:
    """Write one run's values (over the rows of ``elements``) as a new store generation."""
    from .build import AlignParams, load_records, write_generation
    from .predictions import new_run_id
    from .store.generations import Store

    store = store if isinstance(store, Store) else Store(store)
    run_id = run_id or new_run_id(plugin, sorted(values))
    with store.writer(wait=wait):
        current = store.current()
        if current is None:
            raise StoreError(f"{store.root}: the store is empty; nothing to predict on")
        manifest = current.manifest()
        records = load_records(current)
        rows = point_rows(records)
        if not len(rows) or any(len(v) != len(rows) for v in values.values()):
            raise StoreError(f"predictions do not match the points of {group}; the store changed since "
                             "prediction began: run predict again")
        parameters = {**provenance, "plugin": plugin, "kind": KIND, "group": group, "targets": sorted(values)}
        changed = attach(records, rows, values, run_id, parameters)
        write_generation(store, current, records, changed, manifest["sources"],
                         align=AlignParams(**manifest.get("alignment", {})), core_map=manifest.get("core_map"),
                         event={"action": "predict", "run": run_id, "plugin": plugin})
    return run_id
