"""Row groups of the hub written by the change: keep the chunks before it, rewrite from its first chunk.

Every row-indexed group (spectra, samples, predictions over spectra, sources) keeps its rows in a
stable order in which new rows go last (see ``build``: cores by the generation that first stored
them). A write that changes rows from row ``first`` on hard-links the parent's group (done for the
whole hub by ``build``), then, array by array, resizes it and rewrites only the chunks from the
one holding row ``first``: an append writes the partial last chunk and the new ones. The block
checksums ``xrfhub validate`` reads are kept for the untouched blocks and computed for the new
ones only. The result is byte for byte what writing the whole group afresh gives (tested), which
is why ``xrfhub rebuild`` still regenerates the hub exactly.

zarr's local store writes every key to a temporary file and renames it, so rewriting a chunk
replaces the hard link in the new generation and never touches the parent's file.
"""
from __future__ import annotations

import json
from typing import Callable

import numpy as np
import xarray as xr
import zarr

from . import hub

#: ``rows_from(start, names)``: the dataset of rows ``start`` to the end of the new group; ``names``
#: (None: all) are the arrays that will be read, others may hold placeholders of the right shape
RowsFrom = Callable[[int, "list[str] | None"], xr.Dataset]


def chunk_rows(name: str, var: xr.Variable, chunked: dict[str, tuple], row_dim: str, default: int) -> int | None:
    """Rows per chunk of a row-indexed variable (None for variables without the row dimension)."""
    if not var.dims or var.dims[0] != row_dim:
        return None
    return int(chunked[name][0]) if name in chunked else default


def write_group(old_hub, new_hub, group: str, first: int, total: int, rows_from: RowsFrom, *,
                row_dim: str, chunked: dict[str, tuple], default_rows: int, attrs: dict,
                linked: tuple[str, tuple[str, ...]] | None = None) -> int:
    """Make ``new_hub/group`` hold ``total`` rows of which ``[0, first)`` are the parent's.

    Returns the first row rewritten (0 when the group was written afresh). The group is
    rewritten whole when the parent has none, or when its arrays differ in name, dtype or
    any dimension other than the rows (a new lab property, a wider match table).
    ``linked`` = (another group, coordinate names): those coordinates are not written but are
    that group's own arrays, hard-linked (see :func:`link_coordinates`); ``rows_from`` leaves them out.
    """
    written = _write_group(old_hub, new_hub, group, first, total, rows_from, row_dim=row_dim, chunked=chunked,
                           default_rows=default_rows, attrs=attrs, skip=linked[1] if linked else ())
    if linked:
        link_coordinates(new_hub, linked[0], group, linked[1])
    return written


def link_coordinates(hub_path, source: str, group: str, names) -> None:
    """Make coordinates ``names`` of ``group`` the arrays of group ``source``, file for file.

    A prediction run's group carries the spectra's key coordinates so it queries like them; they
    are the very chunk files of the spectra group (hard links, as between generations), so a
    run costs its values, not a copy of a million coordinates. The data variables name them in
    their ``coordinates`` attribute (CF), as xarray writes it.
    """
    import shutil
    from pathlib import Path

    from .files import link_tree

    for name in names:
        shutil.rmtree(Path(hub_path) / group / name, ignore_errors=True)
        link_tree(Path(hub_path) / source / name, Path(hub_path) / group / name)
    g = zarr.open_group(hub_path, path=group, mode="r+")
    src = zarr.open_group(hub_path, path=source, mode="r")
    sums, blocks = json.loads(g.attrs.get("checksums", "{}")), json.loads(g.attrs.get("block_checksums", "{}"))
    src_sums, src_blocks = json.loads(src.attrs.get("checksums", "{}")), json.loads(src.attrs.get("block_checksums", "{}"))
    for name in names:
        sums[name] = src_sums[name]
        if name in src_blocks:
            blocks[name] = src_blocks[name]
    for name, arr in g.arrays():
        if name not in names:
            arr.attrs["coordinates"] = " ".join(names)
    write_attrs(g, {"checksums": json.dumps(sums, sort_keys=True), "block_checksums": json.dumps(blocks, sort_keys=True)})


def _write_group(old_hub, new_hub, group, first, total, rows_from, *, row_dim, chunked, default_rows, attrs,
                 skip) -> int:
    existing = _existing(old_hub, group) if first > 0 else None
    if existing:
        existing = {k: v for k, v in existing.items() if k not in skip}
        # each array from its own chunk boundary: counts from the last 1024-row chunk, not from the
        # coordinates' 16384-row one (``rows_from(start, names)`` may leave other arrays as stubs)
        bounds: dict[int, list[str]] = {}
        for name, rows in _rows_per_array(existing, row_dim).items():
            bounds.setdefault(_floor(first, rows), []).append(name)
        tails = {b: rows_from(b, names) for b, names in sorted(bounds.items())}
        start = min(tails)
        if all(_compatible(existing, t, row_dim) for t in tails.values()):
            _append(new_hub, group, existing, tails, first, total, row_dim, attrs)
            return start
    ds = rows_from(0, None)
    ds.attrs.update(attrs)
    full_chunks = {}
    for name, var in ds.variables.items():
        rows = chunk_rows(name, var, chunked, row_dim, default_rows)
        if rows is not None:
            full_chunks[name] = (max(1, rows), *var.shape[1:])
    hub.write_table(new_hub, group, ds, full_chunks)
    return 0


def _floor(row: int, rows: int) -> int:
    return (row // rows) * rows


def _existing(old_hub, group: str) -> dict | None:
    """The parent's arrays of a group: name -> (dims, dtype, shape, chunks); None if absent."""
    try:
        g = zarr.open_group(old_hub, path=group, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return None
    out = {}
    for name, arr in g.arrays():
        out[name] = (tuple(arr.metadata.dimension_names or ()), str(arr.dtype), arr.shape, arr.chunks)
    return out


def _rows_per_array(existing: dict, row_dim: str) -> dict[str, int]:
    return {name: chunks[0] for name, (dims, _dt, _shape, chunks) in existing.items() if dims and dims[0] == row_dim}


def _compatible(existing: dict, tail: xr.Dataset, row_dim: str) -> bool:
    if set(existing) != set(tail.variables):
        return False
    for name, (dims, dtype, shape, _chunks) in existing.items():
        var = tail.variables[name]
        if tuple(var.dims) != dims:
            return False
        if dims and dims[0] == row_dim:
            if tuple(var.shape[1:]) != tuple(shape[1:]):
                return False
            if not _same_kind(var.dtype, dtype):
                return False
    return True


def _same_kind(dtype: np.dtype, stored: str) -> bool:
    if dtype == object or dtype.kind in "OUT":
        return stored.startswith("<U") or "str" in stored.lower() or stored == "object" or "T" in stored
    return np.dtype(dtype) == np.dtype(stored)


def _append(new_hub, group: str, existing: dict, tails: dict[int, xr.Dataset], first: int, total: int,
            row_dim: str, attrs: dict) -> None:
    g = zarr.open_group(new_hub, path=group, mode="r+")
    for name in set(dict(g.arrays())) - set(existing):  # linked coordinates: linked again after
        import shutil
        from pathlib import Path

        shutil.rmtree(Path(new_hub) / group / name, ignore_errors=True)
    old_blocks = json.loads(g.attrs.get("block_checksums", "{}"))
    old_sums = json.loads(g.attrs.get("checksums", "{}"))
    sums, blocks = {}, {}
    for name, (dims, _dtype, shape, chunks) in existing.items():
        arr = g[name]
        rows = chunks[0] if dims and dims[0] == row_dim else None
        tail = tails[_floor(first, rows)] if rows else tails[min(tails)]
        values = tail.variables[name].values
        if not dims or dims[0] != row_dim:  # channel, energy, phase: small, written whole
            if values.shape != tuple(shape):
                arr.resize(values.shape)
            arr[...] = values
            fixed = hub.block_checksums_of({name: tail.variables[name]}, {})  # as a fresh write gives them
            if name in fixed:
                blocks[name] = fixed[name]
                sums[name] = hub.digest_of_blocks(fixed[name]["digests"])
            else:
                sums[name] = hub.array_sha256(values)
            continue
        own = _floor(first, rows)
        part = values
        if arr.shape[0] != total:
            arr.resize((total, *shape[1:]))
        if len(part):
            arr[own:total] = _plain(part)
        if total > rows:
            kept = old_blocks.get(name, {}).get("digests", [])[: own // rows]
            if own // rows > len(kept):  # the parent had one block: its digest was the whole array's
                kept = [old_sums[name][:16]] if own // rows == 1 and name in old_sums else None
            if kept is None:  # cannot happen for groups this module wrote; recompute to stay right
                full = np.asarray(arr[:total])
                kept = [hub.block_digest(full[i:i + rows]) for i in range(0, own, rows)]
            fresh = [hub.block_digest(part[i:i + rows]) for i in range(0, len(part), rows)]
            blocks[name] = {"rows": rows, "digests": kept + fresh}
            sums[name] = hub.digest_of_blocks(blocks[name]["digests"])
        else:
            sums[name] = hub.array_sha256(part if own == 0 else np.asarray(arr[:total]))
    write_attrs(g, {**attrs, "checksums": json.dumps(sums, sort_keys=True),
                    "block_checksums": json.dumps(blocks, sort_keys=True)})


def write_attrs(group, attrs: dict) -> None:
    """The group's attributes, last: an append is complete once its checksums are down."""
    group.attrs.update(attrs)


def _plain(values: np.ndarray) -> np.ndarray:
    """Object strings as str for zarr's string arrays."""
    if values.dtype == object:
        return values.astype(str)
    return values
