"""Predictions in the store: versioned runs, kept in NeXus (NXprocess) and the Zarr hub.

A run's values live in each core's NeXus file as an NXprocess named ``prediction_<run>``,
keyed by (scan, depth) so they stay attached to their spectra when a core later gains spectra;
the hub's ``predictions/<run>`` group is rebuilt from them like every other kind. Opening
``predictions`` without ``run=`` gives, per target, the most recent run. Runs over diffraction
patterns are kept the same way, keyed by (series, pattern id): see ``predictions_diffraction``.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import numpy as np
import xarray as xr

from . import __version__
from .errors import StoreError
from .records import CoreRecord, Process
from .store import layout

PREFIX = "prediction_"
#: Coordinates copied from the spectra group so predictions query like spectra.
KEPT_COORDS = ("core", "depth_mm", "section", "position_mm", "scan", "run", "replicate", "tube_kv", "source",
               "valid")


def new_run_id(plugin: str, targets) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")[:-3]
    name = f"{plugin}-{'-'.join(targets)}-{stamp}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def attach(records: dict[str, CoreRecord], spectra_coords, values: dict[str, np.ndarray], run_id: str,
           provenance: dict, bounds: dict | None = None) -> set[str]:
    """Add one run's values (aligned with the rows of ``spectra_coords``) to the core records."""
    cores = spectra_coords["core"].to_numpy().astype(str)
    scans = spectra_coords["scan"].to_numpy().astype(str)
    depths = spectra_coords["depth_mm"].to_numpy(dtype=float)
    predicted = np.zeros(len(cores), dtype=bool)
    for v in values.values():
        predicted |= np.isfinite(np.asarray(v, dtype=float))
    changed = set()
    stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")  # orders runs of one second
    for core in sorted(set(cores[predicted])):
        rows = np.flatnonzero((cores == core) & predicted)
        data = {"scan": scans[rows].astype(object), "depth_mm": depths[rows]}
        data.update({f"value_{t}": np.asarray(v, dtype=np.float32)[rows] for t, v in values.items()})
        data.update(bound_columns(bounds, rows))
        records[core].processes.append(Process(
            f"{PREFIX}{run_id}", str(provenance.get("plugin", "xrfhub")), str(provenance.get("version", __version__)),
            stamp, {"run_id": run_id, "targets": sorted(values), **provenance}, data))
        changed.add(core)
    return changed


def runs_in(records: dict[str, CoreRecord]) -> dict[str, dict]:
    """Run id -> its parameters, over all cores."""
    runs: dict[str, dict] = {}
    for rec in records.values():
        for p in rec.processes:
            if p.name.startswith(PREFIX):
                runs.setdefault(p.parameters["run_id"], {**p.parameters, "date": p.date})
    return runs


def run_datasets(records: dict[str, CoreRecord], spectra: dict, spectra_ds: dict[int, xr.Dataset]):
    """The hub datasets of every run, rows aligned with the spectra group they predicted."""
    from .predictions_diffraction import KIND as DIFFRACTION, run_datasets as diffraction_runs
    from .predictions_elements import KIND as ELEMENTS, run_datasets as element_runs

    out = {}
    for run_id, params in sorted(runs_in(records).items()):
        if params.get("kind") in (DIFFRACTION, ELEMENTS):
            continue
        n_ch = int(params.get("channels", max(spectra, key=lambda n: len(spectra[n]))))
        coords = spectra[n_ch].coords
        key_index = {(c, s, round(d, 6)): i for i, (c, s, d) in enumerate(
            zip(coords["core"].astype(str), coords["scan"].astype(str), coords["depth_mm"].astype(float)))}
        targets = params["targets"]
        values = {t: np.full(len(coords), np.nan, dtype=np.float32) for t in targets}
        for core, rec in records.items():
            for p in rec.processes:
                if p.name != f"{PREFIX}{run_id}":
                    continue
                for s, d, i in zip(p.data["scan"], p.data["depth_mm"], range(len(p.data["scan"]))):
                    row = key_index.get((core, str(s), round(float(d), 6)))
                    if row is not None:
                        for t in targets:
                            values[t][row] = p.data[f"value_{t}"][i]
        base = spectra_ds[n_ch]
        ds = xr.Dataset({t: ((layout.SPECTRUM,), v, {"run": run_id, "long_name": f"predicted {t}",
                                                      "units": params.get("units", {}).get(t, "wt%")})
                         for t, v in values.items()},
                        coords={c: base[c].variable for c in KEPT_COORDS if c in base.coords})
        add_bounds(ds, records, run_id, params, key_index)
        ds.attrs.update({"kind": "predictions", "run": run_id, "created": params["date"],
                         "spectra_group": layout.spectra_group(n_ch),
                         "provenance": json.dumps(params, sort_keys=True, default=str)})
        out[layout.predictions_group(run_id)] = ds
    out.update(diffraction_runs(records))
    out.update(element_runs(records))
    return out


def latest_per_target(hub_path, groups: list[str]) -> xr.Dataset:
    """One dataset with, per target, the values of the most recent run that predicted it."""
    from .store import hub

    runs = sorted((hub.open_group(hub_path, g) for g in groups), key=lambda d: d.attrs["created"])
    if not runs:
        raise StoreError("the store holds no predictions")
    merged = runs[-1].copy()
    sources = {}
    for ds in runs:  # later runs overwrite earlier ones, target by target
        if _rows_of(ds) != _rows_of(merged):  # another spectra group, or diffraction patterns
            continue
        for name in ds.data_vars:
            if name.endswith(("_lower", "_upper")) and name.rsplit("_", 1)[0] in ds.data_vars:
                continue  # bounds go with their target, below
            merged[name] = ds[name]
            sources[name] = ds.attrs["run"]
            for bound in (f"{name}_lower", f"{name}_upper"):  # never another run's bounds around these values
                if bound in ds.data_vars:
                    merged[bound], sources[bound] = ds[bound], ds.attrs["run"]
                elif bound in merged.data_vars:
                    merged = merged.drop_vars(bound)
    merged.attrs = {"kind": "predictions", "runs": json.dumps(sources, sort_keys=True)}
    return merged


def _rows_of(ds: xr.Dataset) -> tuple:
    """What a run's rows are: (row dimension, count, the group they belong to)."""
    dim = next((d for d in (layout.SPECTRUM, layout.PATTERN, layout.POINT) if d in ds.dims), layout.SPECTRUM)
    return dim, ds.sizes.get(dim, 0), ds.attrs.get("diffraction_group", ds.attrs.get("elements_group", ""))


def list_runs(store) -> list[dict]:
    """The prediction runs of a store, oldest first."""
    from . import api
    from .predictions_diffraction import n_predicted
    from .store import hub

    gen, _ = api.resolve(store)
    hub_path = f"{gen}/{layout.HUB}"
    groups = hub.groups(hub_path).get("predictions", [])
    out = []
    for g in groups:
        ds = hub.open_group(hub_path, g)
        params = json.loads(ds.attrs.get("provenance", "{}"))
        targets = json.loads(ds.attrs["targets"]) if "targets" in ds.attrs else \
            params.get("targets", sorted(ds.data_vars))
        out.append({"run": ds.attrs["run"], "created": ds.attrs["created"], "targets": targets,
                    "plugin": params.get("plugin", ""), "run_dir": params.get("run_dir", ""),
                    "kind": params.get("kind", "spectra"), "n_predicted": n_predicted(ds)})
    return sorted(out, key=lambda r: r["created"])


def write_run(store, values: dict[str, np.ndarray], *, group: str, plugin: str, provenance: dict,
              run_id: str | None = None, wait: float = 0.0, bounds: dict | None = None) -> str:
    """Write one prediction run (values over the rows of spectra ``group``) as a new generation.

    ``bounds`` (target -> (lower, upper) over the same rows) are kept beside the values; the
    interval's method and level travel in ``provenance["interval"]``.

    Values over the patterns of a ``diffraction/<grid>`` group go to ``predictions_diffraction``.
    """
    from .predictions_diffraction import is_diffraction_group, write_run as write_diffraction_run

    if is_diffraction_group(group):
        return write_diffraction_run(store, values, group=group, plugin=plugin, provenance=provenance,
                                     run_id=run_id, wait=wait)
    from .predictions_elements import GROUP as ELEMENTS, write_run as write_elements_run

    if group == ELEMENTS:  # values over element-table points (e.g. a log-ratio calibration of ITRAX tables)
        return write_elements_run(store, values, group=group, plugin=plugin, provenance=provenance,
                                  run_id=run_id, wait=wait)
    from .build import AlignParams, load_records, write_generation
    from .store.generations import Store

    store = store if isinstance(store, Store) else Store(store)
    run_id = run_id or new_run_id(plugin, sorted(values))
    with store.writer(wait=wait):
        current = store.current()
        if current is None:
            raise StoreError(f"{store.root}: the store is empty; nothing to predict on")
        manifest = current.manifest()
        records = load_records(current)
        from .build import concat_spectra

        spectra = concat_spectra(records)
        n_ch = int(group.rsplit("ch", 1)[1])
        if n_ch not in spectra or any(len(v) != len(spectra[n_ch]) for v in values.values()):
            raise StoreError(f"predictions do not match the rows of {group}; the store changed since "
                             "prediction began: run predict again")
        changed = attach(records, spectra[n_ch].coords, values, run_id,
                         {**provenance, "plugin": plugin, "channels": n_ch}, bounds)
        write_generation(store, current, records, changed, manifest["sources"],
                         align=AlignParams(**manifest.get("alignment", {})), core_map=manifest.get("core_map"),
                         event={"action": "predict", "run": run_id, "plugin": plugin})
    return run_id


# ---------------------------------------------------------------------------- interval bounds
# Kept apart from the values so that another way of storing per-spectrum arrays can take them
# over: in NeXus they are ``lower_<target>``/``upper_<target>`` beside ``value_<target>``; in the
# hub ``<target>_lower``/``<target>_upper`` variables with the interval's method and level.


def bound_columns(bounds: dict | None, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The NeXus columns of one core's rows of ``bounds`` (target -> (lower, upper))."""
    out = {}
    for t, (lower, upper) in (bounds or {}).items():
        out[f"lower_{t}"] = np.asarray(lower, dtype=np.float32)[rows]
        out[f"upper_{t}"] = np.asarray(upper, dtype=np.float32)[rows]
    return out


def add_bounds(ds: xr.Dataset, records: dict[str, CoreRecord], run_id: str, params: dict, key_index: dict) -> None:
    """Add a run's stored bounds to its hub dataset, rows aligned through ``key_index``."""
    interval = params.get("interval")
    if not interval:
        return
    arrays = {}
    for core, rec in records.items():
        for p in rec.processes:
            if p.name != f"{PREFIX}{run_id}":
                continue
            for key in p.data:
                if not key.startswith(("lower_", "upper_")):
                    continue
                side, t = key.split("_", 1)
                out = arrays.setdefault((t, side), np.full(ds.sizes[layout.SPECTRUM], np.nan, dtype=np.float32))
                for i, (s, d) in enumerate(zip(p.data["scan"], p.data["depth_mm"])):
                    row = key_index.get((core, str(s), round(float(d), 6)))
                    if row is not None:
                        out[row] = p.data[key][i]
    for (t, side), v in sorted(arrays.items()):
        ds[f"{t}_{side}"] = ((layout.SPECTRUM,), v, {
            "run": run_id, "long_name": f"{side} bound of the {interval['level']:g} interval of {t}",
            "units": params.get("units", {}).get(t, "wt%"), "interval_method": interval["method"],
            "interval_level": float(interval["level"]), "interval_score": interval.get("score", "")})
