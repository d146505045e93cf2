"""Predictions over diffraction patterns: kept per series in NeXus, rebuilt per run in the hub.

A run of a diffraction classifier predicts every pattern of one grid (``diffraction/<grid>``).
Its values are keyed by (series, pattern id), never by row number, so they stay attached to
their patterns when a series later gains patterns; they live in the run's own NeXus file
(``runs/<run>.nxs``, see ``store.nxrun``) with key arrays ``core``, ``pattern_id`` and one
``value_<name>`` per variable, and the hub group ``predictions/<run>`` is rebuilt from it over
the ``pattern`` dimension, row for row aligned with ``diffraction/<grid>``.

Variables are what the plugin returned: class strings (``""`` where a pattern was not
predicted), 0/1 presence over phases as int8 (``-1`` where not predicted) or floats (NaN).
2-D variables run over ``phase``, named by the run's ``phases`` parameter.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import xarray as xr

from . import __version__
from .diffraction import PATTERN_COLUMNS
from .errors import StoreError
from .records import CoreRecord
from .store import layout

KIND = "diffraction"
GROUP_PREFIX = "diffraction/"
PHASE = "phase"
#: Per-pattern coordinates copied into a run's hub group (scan coordinates are added too).
KEPT_COORDS = ("core", "pattern_id", "source")


def is_diffraction_group(group: str) -> bool:
    return str(group).startswith(GROUP_PREFIX)


def pattern_rows(records: dict[str, CoreRecord], grid: str) -> pd.DataFrame:
    """The per-pattern coordinates of ``diffraction/<grid>``, in the hub's row order (series
    sorted, each series' block as stored), with the series as ``core``."""
    parts = []
    for core_id in sorted(records):
        block = records[core_id].diffraction.get(grid)
        if block is not None:
            parts.append(block.coords.assign(core=core_id))
    if not parts:
        return pd.DataFrame({"core": pd.Series(dtype=object), "pattern_id": pd.Series(dtype=object)})
    rows = pd.concat(parts, ignore_index=True)
    rows["pattern_id"] = rows["pattern_id"].astype(str)
    return rows


def _scan_columns(rows: pd.DataFrame) -> list[str]:
    return [c for c in rows.columns if c not in PATTERN_COLUMNS and c != "core"]


def _stored(values: np.ndarray) -> np.ndarray:
    """Strings as object arrays (variable-length UTF-8 in NeXus), presence as int8, scores as float32."""
    if values.dtype.kind in "OUS":
        return values.astype(str).astype(object)
    if values.dtype.kind in "iub":
        return values.astype(np.int8)
    return values.astype(np.float32)


def _empty(dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    if dtype.kind in "OUS":
        return np.full(shape, "", dtype=object)
    if dtype.kind in "iub":
        return np.full(shape, -1, dtype=np.int8)
    return np.full(shape, np.nan, dtype=np.float32)


def run_dataset(records: dict[str, CoreRecord], run) -> xr.Dataset:
    """The hub dataset of one diffraction run file, rows aligned with its grid's group."""
    params = {**run.parameters, "date": run.date}
    rows = pattern_rows(records, params["grid"])
    index = {key: i for i, key in enumerate(zip(rows["core"].astype(str), rows["pattern_id"].astype(str)))}
    where = np.array([index.get((str(c), str(pid)), -1) for c, pid in
                      zip(run.keys["core"], run.keys["pattern_id"])], dtype=np.int64)
    keep = where >= 0
    found: dict[str, np.ndarray] = {}
    for name, arr in sorted(run.values.items()):
        arr = _stored(np.asarray(arr))
        found[name] = _empty(arr.dtype, (len(rows), *arr.shape[1:]))
        found[name][where[keep]] = arr[keep]
    return _dataset(run.run_id, params, rows, found)


def _dataset(run_id: str, params: dict, rows: pd.DataFrame, found: dict[str, np.ndarray]) -> xr.Dataset:
    dims1 = (layout.PATTERN,)
    coords = {}
    for col in (*KEPT_COORDS, *_scan_columns(rows)):
        if col in rows:
            values = rows[col].to_numpy()
            coords[col] = (dims1, values.astype(object) if values.dtype.kind in "OUS" else values)
    phases = list(params.get("phases") or [])
    if phases:
        coords[PHASE] = ((PHASE,), np.array(phases, dtype=object))
    data = {}
    for name, arr in found.items():
        dims = dims1 if arr.ndim == 1 else (layout.PATTERN, PHASE)
        data[name] = (dims, arr, {"run": run_id, "long_name": _long_name(name, params)})
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({"kind": "predictions", "run": run_id, "created": params["date"],
                     "diffraction_group": params.get("group", f"{GROUP_PREFIX}{params['grid']}"),
                     "targets": json.dumps(list(params.get("targets", []))),
                     "provenance": json.dumps(params, sort_keys=True, default=str)})
    return ds


def _long_name(name: str, params: dict) -> str:
    targets = list(params.get("targets", []))
    for t in targets:
        if name == t:
            return f"predicted {t}"
        if name.startswith(f"{t}_"):
            return f"{name[len(t) + 1:]} of the predicted {t}"
    return name


def n_predicted(ds: xr.Dataset) -> int:
    """Patterns with a prediction in a run's hub group."""
    counts = [0]
    for name in ds.data_vars:
        v = np.asarray(ds[name].values)
        if v.dtype.kind in "OUS":
            done = v != ""
        elif v.dtype.kind in "iub":
            done = v >= 0
        else:
            done = np.isfinite(v)
        counts.append(int(done.reshape(len(v), -1).all(axis=1).sum()) if v.size else 0)
    return max(counts)


def write_run(store, values: dict[str, np.ndarray], *, group: str, plugin: str, provenance: dict,
              run_id: str | None = None, wait: float = 0.0) -> str:
    """Write one run's values (over the rows of ``diffraction/<grid>``) as a run file and one hub group.

    ``provenance["target"]`` names the target variable (the others, e.g. ``<target>_confidence``,
    are reported beside it); ``provenance["phases"]`` names the columns of 2-D variables.
    """
    from .runwrite import commit_run, new_run_id
    from .store import catalog
    from .kinds.diffraction import KIND as DIFFRACTION_KIND
    from .store.cores import load_records
    from .store.generations import Store
    from .store.nxrun import RunFile

    store = store if isinstance(store, Store) else Store(store)
    grid = group[len(GROUP_PREFIX):]
    target = str(provenance.get("target") or next(iter(values)))
    if target not in values:
        raise StoreError(f"predictions of {plugin!r} name target {target!r} but hold only {', '.join(values)}")
    phases = list(provenance.get("phases") or [])
    for name, v in values.items():
        if np.ndim(v) == 2 and np.shape(v)[1] != len(phases):
            raise StoreError(f"prediction {name!r} has {np.shape(v)[1]} columns but the run names "
                             f"{len(phases)} phases; give provenance['phases']")
        if np.ndim(v) not in (1, 2):
            raise StoreError(f"prediction {name!r}: expected one value or one row of phases per pattern")
    run_id = run_id or new_run_id(plugin, [target])
    with store.writer(wait=wait):
        current = store.current()
        if current is None:
            raise StoreError(f"{store.root}: the store is empty; nothing to predict on")
        holders = [c for c, s in catalog.Catalog(current.path).cores().items() if grid in s.get("diffraction", {})]
        records = load_records(current, [DIFFRACTION_KIND], cores=set(holders))  # their patterns only
        rows = pattern_rows(records, grid)
        if not len(rows) or any(len(v) != len(rows) for v in values.values()):
            raise StoreError(f"predictions do not match the patterns of {group}; the store changed since "
                             "prediction began: run predict again")
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")  # orders runs of one second
        parameters = {**provenance, "plugin": plugin, "kind": KIND, "grid": grid, "group": group,
                      "targets": [target], "variables": sorted(values), "phases": phases}
        keys = pd.DataFrame({"core": rows["core"].astype(str).to_numpy(dtype=object),
                             "pattern_id": rows["pattern_id"].astype(str).to_numpy(dtype=object)})
        run = RunFile(run_id, plugin, str(provenance.get("version", __version__)), stamp, parameters, keys,
                      {k: _stored(np.asarray(v)) for k, v in values.items()})
        commit_run(store, current, run, lambda: run_dataset(records, run), len(rows))
    return run_id
