"""``xrfhub.open``: the store as lazy xarray datasets, indexed by core and depth.

The store may be a local folder or an fsspec URL (``s3://bucket/hub``, ``file:///...``):
only the pointer and the hub are read, never written, so object storage works for readers.
"""
from __future__ import annotations

import os

import xarray as xr

from .errors import StoreError
from .store import hub, layout
from .store.generations import resolve as resolve_current


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


def resolve(store) -> tuple[str, dict]:
    """The current generation's folder (path or URL) and its pointer, read once."""
    return resolve_current(store)


def manifest(store) -> dict:
    """The current generation's whole manifest (its split index merged in)."""
    from .store.catalog import load

    gen, _ = resolve(store)
    return load(gen)


def open(store, kind: str | None = None, *, run: str | None = None, channels: int | None = None,
         grid: str | None = None, index: bool = True) -> xr.Dataset:
    """Open one kind of the store as a lazy :class:`xarray.Dataset` (dask arrays).

    ``kind`` defaults to ``"spectra"`` when present, otherwise the only kind present. Spectra of
    several channel counts are separate groups: ``channels`` picks one (default: the largest
    group). ``run`` picks a prediction run (default: per target, the most recent); ``grid`` a
    diffraction grid (default: the last; "common": every grid resampled onto one, recorded;
    "common:ID": every grid resampled onto grid ID's axis). The
    result is indexed by core and depth where it has both, so
    ``ds.sel(core="PS75-056-1", depth_mm=slice(100, 500))`` works as typed.
    """
    gen, _ = resolve(store)
    hub_path = _join(gen, layout.HUB)
    present = hub.groups(hub_path)
    if kind is None:
        if "spectra" in present:
            kind = "spectra"
        elif len(present) == 1:
            kind = next(iter(present))
        else:
            raise StoreError(f"{os.fspath(store)}: holds kinds {sorted(present) or 'none'}; "
                             "name one: xrfhub.open(store, KIND)")
    if kind not in layout.KINDS:
        raise StoreError(f"unknown kind {kind!r}; kinds are {', '.join(layout.KINDS)}")
    if kind not in present:
        raise StoreError(f"{os.fspath(store)}: holds no {kind!r} (present: {', '.join(sorted(present)) or 'none'})")
    if kind == "diffraction" and grid is not None and grid.split(":", 1)[0] == "common":
        from .diffraction import on_common_grid

        datasets = [_open_group(hub_path, g) for g in present[kind]]
        onto = grid.partition(":")[2]
        if not onto:
            return on_common_grid(datasets)
        axes = {ds.attrs.get("grid", g.split("/", 1)[1]): ds for g, ds in zip(present[kind], datasets)}
        if onto not in axes:
            raise StoreError(f"grid {grid!r}: no diffraction grid {onto!r}; grids: {', '.join(axes)}")
        return on_common_grid(datasets, axes[onto]["two_theta"].values)
    group = _pick_group(kind, present[kind], hub_path, run=run, channels=channels, grid=grid)
    ds = _open_group(hub_path, group)
    if kind == "predictions" and run is None and len(present[kind]) > 1:
        from .predictions import latest_per_target

        ds = latest_per_target(hub_path, present[kind])
    if kind in ("spectra", "elements"):  # per-point quality flags as coordinates, when `xrfhub qc` ran
        from .qc.store import join_flags

        ds = join_flags(ds, hub_path, present, group)
    if index and "core" in ds.coords and "depth_mm" in ds.coords:
        from .index import with_core_depth_index

        ds = with_core_depth_index(ds)
    return ds


def _open_group(hub_path, group: str) -> xr.Dataset:
    ds = hub.open_group(hub_path, group)
    ds.attrs["group"] = group
    return ds


def _pick_group(kind, groups, hub_path, *, run, channels, grid) -> str:
    if kind == "spectra":
        if channels is not None:
            want = layout.spectra_group(channels)
            if want not in groups:
                raise StoreError(f"no spectra with {channels} channels; present: {', '.join(groups)}")
            return want
        if len(groups) == 1:
            return groups[0]
        sizes = {g: hub.open_group(hub_path, g).sizes[layout.SPECTRUM] for g in groups}
        return max(sizes, key=sizes.get)
    if kind == "predictions" and run is not None:
        want = layout.predictions_group(run)
        if want not in groups:
            runs = ", ".join(g.split("/", 1)[1] for g in groups)
            raise StoreError(f"no prediction run {run!r}; runs: {runs}")
        return want
    if kind == "diffraction" and grid is not None:
        want = f"diffraction/{grid}"
        if want not in groups:
            raise StoreError(f"no diffraction grid {grid!r}; grids: {', '.join(groups)}")
        return want
    return groups[-1]
