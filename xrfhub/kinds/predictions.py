"""The ``predictions`` kind: one group ``predictions/<run>`` per prediction run, placed from its run file.

A run over spectra follows its spectra group row for row (written from the first changed row, its
key coordinates hard-linked from the spectra group); a run over element points or diffraction
patterns is rewritten with the group it predicts on. ``open`` picks a run (``run=``) or gives,
per target, the most recent run's value (``latest_per_target``). Writing a new run is
``xrfhub.predictions`` (``runwrite``): it adds one group and touches nothing else.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import xarray as xr
import zarr

from ..hubrows import RowSource
from ..store import hub, layout, nxrun, rows
from . import diffraction as diffraction_kind
from . import elements as elements_kind
from .base import BaseKind, indexed, open_group
from .spectra import spectra_raw

#: the spectra's key coordinates a run over spectra carries (linked from the spectra group)
KEPT_COORDS = ("core", "depth_mm", "section", "position_mm", "scan", "run", "replicate", "tube_kv", "source",
               "valid")
#: what a run's rows are, by the run's kind: the kind its rows follow, their dimension
OVER = {"elements": (elements_kind, layout.POINT), "diffraction": (diffraction_kind, layout.PATTERN)}


class Predictions(BaseKind):
    name = "predictions"
    reader_kinds = ()

    def changed(self, plan) -> set[str]:
        out = set()
        for run_id, entry in sorted(plan.runs.items()):
            group = layout.predictions_group(run_id)
            kind = entry.get("kind", "spectra")
            if kind == "spectra":
                lay = plan.layouts.get(int(entry["channels"]))
                if lay is None:
                    continue
                if not (plan.exists(group) and lay.first == lay.total
                        and zarr.open_group(plan.old_hub, path=group)["core"].shape[0] == lay.total):
                    out.add(group)
            elif kind in OVER and OVER[kind][0].touched(plan):
                out.add(group)
        return out

    def write(self, plan, groups: set[str]) -> None:
        for run_id, entry in sorted(plan.runs.items()):
            group = layout.predictions_group(run_id)
            if group not in groups:
                continue
            kind = entry.get("kind", "spectra")
            if kind == "spectra":
                self._spectra_run(plan, run_id, entry, group)
            else:
                self._whole_run(plan, entry, group, kind)

    def _whole_run(self, plan, entry, group, kind):
        """A run over element points or diffraction patterns, placed on every row afresh."""
        from ..predictions_diffraction import run_dataset as pattern_run
        from ..predictions_elements import run_dataset as point_run

        shutil.rmtree(plan.gen.hub_path / group, ignore_errors=True)
        run = nxrun.read(plan.gen.path / entry["file"])
        ds = pattern_run(diffraction_kind.series(plan), run) if kind == "diffraction" \
            else point_run(elements_kind.holders(plan), run)
        dim = OVER[kind][1]
        rows.write_group(None, plan.gen.hub_path, group, 0, ds.sizes[dim], lambda _s, _n=None, ds=ds: ds,
                         row_dim=dim, chunked={}, default_rows=layout.COORD_CHUNK_ROWS, attrs={})

    def _spectra_run(self, plan, run_id, entry, group):
        n_ch = int(entry["channels"])
        lay = plan.layouts[n_ch]
        total = lay.total
        has_old = plan.exists(group)
        path = plan.gen.path / entry["file"]
        meta = nxrun.read(path, cores=[])
        names = sorted(meta.values)

        def fresh(core):
            mine = spectra_raw(plan.records[core], n_ch)
            run = nxrun.read(path, cores=[core])
            index = {(str(s), round(float(d), 6)): i for i, (s, d) in
                     enumerate(zip(run.keys.get("scan", []), run.keys.get("depth_mm", [])))}
            at = np.array([index.get((str(s), round(float(d), 6)), -1)
                           for s, d in zip(mine["scan"], mine["depth_mm"])], dtype=np.int64)
            out = {}
            for name in names:
                v = np.full(len(at), np.nan, dtype=np.float32)
                v[at >= 0] = np.asarray(run.values[name], dtype=np.float32)[at[at >= 0]]
                out[name] = v
            return out

        values = RowSource(lay.new, plan.changed, fresh, (plan.old_hub, group) if has_old else None, lay.old_starts)

        def rows_from(start, _names=None):
            return spectra_run_dataset(meta, n_ch, values.rows(start, total, names))

        rows.write_group(plan.old_hub if has_old else None, plan.gen.hub_path, group, lay.first, total, rows_from,
                         row_dim=layout.SPECTRUM, chunked={}, default_rows=layout.COORD_CHUNK_ROWS, attrs={},
                         linked=(layout.spectra_group(n_ch), KEPT_COORDS))

    # ------------------------------------------------------------------ open

    def pick(self, hub_path, groups, *, run=None, **_options) -> str:
        from ..errors import StoreError

        if run is None:
            return groups[-1]
        want = layout.predictions_group(run)
        if want not in groups:
            runs = ", ".join(g.split("/", 1)[1] for g in groups)
            raise StoreError(f"no prediction run {run!r}; runs: {runs}")
        return want

    def open(self, hub_path, present, *, index=True, run=None, **options):
        groups = present[self.name]
        if run is None and len(groups) > 1:
            ds = latest_per_target(hub_path, groups)
        else:
            ds = open_group(hub_path, self.pick(hub_path, groups, run=run))
        return indexed(ds, index)


KIND = Predictions()


def spectra_run_dataset(run: nxrun.RunFile, n_ch: int, values: dict) -> xr.Dataset:
    """The hub group of a run over ``spectra/ch<n_ch>``: its values (NaN where not predicted).

    The spectra's key coordinates (``KEPT_COORDS``, so predictions query like spectra) are not
    part of it: every write links them from the spectra group (``rows.link_coordinates``).
    """
    params = run.parameters
    attrs = {"kind": "predictions", "run": run.run_id, "created": run.date,
             "spectra_group": layout.spectra_group(n_ch),
             "provenance": json.dumps({**params, "date": run.date}, sort_keys=True, default=str)}
    data = {t: ((layout.SPECTRUM,), np.asarray(values[t], dtype=np.float32), _run_attrs(run.run_id, t, params))
            for t in sorted(values)}
    return xr.Dataset(data, attrs=attrs)


def _run_attrs(run_id: str, name: str, params: dict) -> dict:
    """A run variable's attributes: a target, an interval bound of one, or another array beside them."""
    units = params.get("units", {})
    targets = set(params.get("targets", [name]))
    base, _, side = name.rpartition("_")
    interval = params.get("interval")
    if name in targets:
        return {"run": run_id, "units": units.get(name, "wt%"), "long_name": f"predicted {name}"}
    if interval and side in ("lower", "upper") and base in targets:
        return {"run": run_id, "units": units.get(base, "wt%"),
                "long_name": f"{side} bound of the {float(interval['level']):g} interval of {base}",
                "interval_method": interval["method"], "interval_level": float(interval["level"]),
                "interval_score": interval.get("score", "")}
    return {"run": run_id, "units": units.get(name, "wt%"), "long_name": f"{name} (beside the predictions)"}


def latest_per_target(hub_path, groups: list[str]) -> xr.Dataset:
    """One dataset with, per target and per spectrum, the value of the most recent run that predicted it.

    Runs that predicted different rows complement each other (a model per tube voltage: the 10 kV
    run's values stay where the later 30 kV run has none); where two runs predicted the same
    row, the later wins. A value's interval bounds come from the run its value comes from.
    ``attrs["runs"]`` lists, per variable, the runs it draws on, oldest first.
    """
    from ..errors import StoreError

    runs = sorted((hub.open_group(hub_path, g) for g in groups), key=lambda d: d.attrs["created"])
    if not runs:
        raise StoreError("the store holds no predictions")
    last = runs[-1]
    values: dict[str, xr.DataArray] = {}
    sources: dict[str, list[str]] = {}
    for ds in runs:  # oldest first: each later run's values overwrite where it predicted
        if _rows_of(ds) != _rows_of(last):  # another spectra group, or diffraction patterns
            continue
        for name in ds.data_vars:
            if name.endswith(("_lower", "_upper")) and name.rsplit("_", 1)[0] in ds.data_vars:
                continue  # bounds go with their target, below
            new = ds[name]
            predicted = new.notnull() if new.dtype.kind == "f" else xr.ones_like(new, dtype=bool)
            values[name] = new if name not in values else xr.where(predicted, new, values[name], keep_attrs=True)
            sources.setdefault(name, []).append(ds.attrs["run"])
            for bound in (f"{name}_lower", f"{name}_upper"):  # never another run's bounds around a value
                if bound in ds.data_vars:
                    theirs = ds[bound]
                    sources.setdefault(bound, []).append(ds.attrs["run"])
                elif bound in values:
                    theirs = xr.full_like(new, np.nan, dtype=np.float32)
                else:
                    continue
                values[bound] = theirs if bound not in values else xr.where(predicted, theirs, values[bound],
                                                                              keep_attrs=True)
    for bound in [b for b in values if b.endswith(("_lower", "_upper")) and b.rsplit("_", 1)[0] in values]:
        if not bool(values[bound].notnull().any()):  # later runs without intervals replaced every value
            del values[bound]
            sources.pop(bound, None)
    merged = xr.Dataset(values, coords=last.coords)
    merged.attrs = {"kind": "predictions", "runs": json.dumps(sources, sort_keys=True)}
    return merged


def _rows_of(ds: xr.Dataset) -> tuple:
    """What a run's rows are: (row dimension, count, the group they belong to)."""
    dim = next((d for d in (layout.SPECTRUM, layout.PATTERN, layout.POINT) if d in ds.dims), layout.SPECTRUM)
    return dim, ds.sizes.get(dim, 0), ds.attrs.get("diffraction_group", ds.attrs.get("elements_group", ""))
