"""``xrfhub.open``: the store as lazy xarray datasets, indexed by core and depth.

The store may be a local folder or an fsspec URL (``s3://bucket/hub``, ``file:///...``):
only the pointer and the hub are read, never written, so object storage works for readers.
"""
from __future__ import annotations

import os

import xarray as xr

from . import kinds
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
    ``ds.sel(core="PS75-056-1", depth_mm=slice(100, 500))`` works as typed. The kind's own
    module (``xrfhub.kinds``) picks and opens the group; this resolves the store and the kind.
    """
    gen, _ = resolve(store)
    hub_path = _join(gen, layout.HUB)
    registered = kinds.registry()
    present = hub.groups(hub_path, kinds=tuple(registered))
    if kind is None:
        if "spectra" in present:
            kind = "spectra"
        elif len(present) == 1:
            kind = next(iter(present))
        else:
            raise StoreError(f"{os.fspath(store)}: holds kinds {sorted(present) or 'none'}; "
                             "name one: xrfhub.open(store, KIND)")
    if kind not in registered:
        raise StoreError(f"unknown kind {kind!r}; kinds are {', '.join(registered)}")
    if kind not in present:
        raise StoreError(f"{os.fspath(store)}: holds no {kind!r} (present: {', '.join(sorted(present)) or 'none'})")
    return registered[kind].open(hub_path, present, index=index, run=run, channels=channels, grid=grid)
