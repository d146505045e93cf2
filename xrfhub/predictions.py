"""Predictions in the store: versioned runs, each its own NeXus file plus one hub group.

A run writes ``runs/<run>.nxs`` (``store.nxrun``: NXprocess with the model, its config, the
sha256 of the inputs, and the values keyed by (core, scan, depth), so they stay attached to
their spectra when the store later grows) and the hub group ``predictions/<run>``; nothing else
of the store is touched: the archival core files are never rewritten to add derived data, and
the rest of the generation is hard-linked. ``xrfhub rebuild`` places every run's values onto the
hub's rows from the run files. Opening ``predictions`` without ``run=`` gives, per target, the
most recent run (``kinds.predictions``, which also places runs in the hub). Runs over
diffraction patterns are keyed by (series, pattern id): see ``predictions_diffraction``. Stores written before run files existed kept runs as NXprocesses
``prediction_<run>`` in the core files; ``migrate_runs`` moves them out on ``rebuild``.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np

from . import __version__, runwrite
from .errors import StoreError
from .kinds.predictions import KEPT_COORDS, spectra_run_dataset
from .kinds.predictions import latest_per_target  # noqa: F401 - kept importable from predictions
from .runwrite import new_run_id  # noqa: F401 - kept importable from predictions
from .store import layout

#: how stores written before run files named a run kept in a core file
PREFIX = "prediction_"


def list_runs(store) -> list[dict]:
    """The prediction runs of a store, oldest first."""
    from .predictions_diffraction import n_predicted
    from .store import hub
    from .store.generations import resolve

    gen, _ = resolve(store)
    hub_path = f"{gen}/{layout.HUB}"
    groups = hub.groups(hub_path).get("predictions", [])
    out = []
    for g in groups:
        ds = hub.open_group(hub_path, g)
        params = json.loads(ds.attrs.get("provenance", "{}"))
        targets = json.loads(ds.attrs["targets"]) if "targets" in ds.attrs else \
            params.get("targets", sorted(ds.data_vars))
        out.append({"run": ds.attrs["run"], "created": ds.attrs["created"], "targets": targets,
                    "plugin": params.get("plugin", ""), "run_dir": params.get("run_dir") or " + ".join(params.get("runs", [])),
                    "kind": params.get("kind", "spectra"), "n_predicted": n_predicted(ds)})
    return sorted(out, key=lambda r: r["created"])


def write_run(store, values: dict[str, np.ndarray], *, group: str, plugin: str, provenance: dict,
              run_id: str | None = None, wait: float = 0.0, bounds: dict | None = None,
              extra: dict[str, np.ndarray] | None = None) -> str:
    """Write one prediction run (values over the rows of spectra ``group``) as a run file and one group.

    ``values`` maps each target to one value per row of ``group`` (NaN where not predicted);
    ``bounds`` (target -> (lower, upper) over the same rows) are an interval kept beside the
    values as ``<target>_lower``/``<target>_upper``, its method and level in
    ``provenance["interval"]``; ``extra`` maps any other per-row arrays to keep beside them. All are
    stored, keyed and rebuilt exactly like the values. Values over the patterns of a
    ``diffraction/<grid>`` group go to ``predictions_diffraction``, over the points of
    ``elements`` to ``predictions_elements``.
    """
    from .predictions_diffraction import is_diffraction_group, write_run as write_diffraction_run

    if is_diffraction_group(group):
        return write_diffraction_run(store, {**values, **(extra or {})}, group=group, plugin=plugin,
                                     provenance=provenance, run_id=run_id, wait=wait)
    from .predictions_elements import GROUP as ELEMENTS, write_run as write_elements_run

    if group == ELEMENTS:  # values over element-table points (e.g. a log-ratio calibration of ITRAX tables)
        return write_elements_run(store, values, group=group, plugin=plugin, provenance=provenance,
                                  run_id=run_id, wait=wait)
    import pandas as pd

    from .store import catalog
    from .store.generations import Store
    from .store.nxrun import RunFile

    store = store if isinstance(store, Store) else Store(store)
    targets = sorted(values)
    extra = {**(extra or {}), **bound_arrays(bounds)}
    every = {**{k: np.asarray(v, dtype=np.float32) for k, v in values.items()},
             **{k: np.asarray(v, dtype=np.float32) for k, v in (extra or {}).items()}}
    if set(values) & set(extra or {}):
        raise StoreError(f"extra arrays {sorted(set(values) & set(extra))} have the names of targets")
    run_id = run_id or runwrite.new_run_id(plugin, targets)
    n_ch = int(group.rsplit("ch", 1)[1])
    with store.writer(wait=wait):
        current = store.current()
        if current is None:
            raise StoreError(f"{store.root}: the store is empty; nothing to predict on")
        import zarr

        try:
            g = zarr.open_group(current.hub_path, path=group, mode="r")
        except (FileNotFoundError, zarr.errors.GroupNotFoundError):
            raise StoreError(f"{store.root}: no group {group} to predict on") from None
        total = g["core"].shape[0]
        if any(len(v) != total for v in every.values()):
            raise StoreError(f"predictions do not match the rows of {group}; the store changed since "
                             "prediction began: run predict again")
        coords = {c: np.asarray(g[c][:]) for c in ("core", "scan", "depth_mm")}  # the keys of the values
        coords = {c: v.astype(object) if v.dtype.kind in "TU" else v for c, v in coords.items()}
        predicted = np.zeros(total, dtype=bool)
        for v in values.values():
            predicted |= np.isfinite(v)
        cores = coords["core"].astype(str)
        summaries = catalog.Catalog(current.path).cores()
        inputs = {c: runwrite.hub_digest(summaries.get(c, {}), n_ch) for c in sorted(set(cores[predicted]))}
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")  # orders runs of one second
        params = {**provenance, "plugin": plugin, "channels": n_ch, "targets": targets,
                  "extra": sorted(extra or {}), "kind": "spectra", "group": group}
        keys = pd.DataFrame({"core": coords["core"][predicted], "scan": coords["scan"][predicted],
                             "depth_mm": coords["depth_mm"][predicted].astype(float)})
        run = RunFile(run_id, plugin, str(provenance.get("version", __version__)), stamp, params, keys,
                      {k: v[predicted] for k, v in every.items()}, inputs)
        shown = {k: np.where(predicted, v, np.nan).astype(np.float32) for k, v in every.items()}
        runwrite.commit_run(store, current, run, lambda: spectra_run_dataset(run, n_ch, shown), total,
                            linked=(group, KEPT_COORDS))
    return run_id


def bound_arrays(bounds: dict | None) -> dict[str, np.ndarray]:
    """An interval's bounds (target -> (lower, upper)) as the per-row arrays a run keeps."""
    out = {}
    for t, (lower, upper) in (bounds or {}).items():
        out[f"{t}_lower"] = np.asarray(lower, dtype=np.float32)
        out[f"{t}_upper"] = np.asarray(upper, dtype=np.float32)
    return out
