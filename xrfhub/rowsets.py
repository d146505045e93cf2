"""Array helpers behind :class:`xrfhub.index.CoreDepthIndex`: rows as integer sets.

Each works on plain numpy arrays (row codes per core, sorted depths, row numbers), so the
index class keeps only xarray's protocol and the selection rules, and these can be tested and
timed alone.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def frozen(values: np.ndarray) -> np.ndarray:
    """A read-only view: the coordinates handed to xarray share memory with the index, so an
    in-place edit of ``ds.core.values`` must fail rather than silently desynchronise them."""
    view = np.asarray(values).view()
    view.flags.writeable = False
    return view


def factorize(core: np.ndarray) -> tuple[np.ndarray, list]:
    """Integer code per row and the distinct core names in order of first appearance.

    Fixed-width strings go run by run: the hub concatenates cores, so there are few runs and
    a vectorised neighbour comparison is far cheaper than hashing every row.
    """
    core = np.asarray(core)
    if core.dtype.kind not in "UST" or len(core) == 0:
        codes, names = pd.factorize(np.asarray(core, dtype=object), use_na_sentinel=False)
        return codes.astype(np.intp), list(names)
    starts = np.concatenate([[0], np.flatnonzero(core[1:] != core[:-1]) + 1])
    run_codes, names = pd.factorize(core[starts].astype(object), use_na_sentinel=False)
    lengths = np.diff(np.concatenate([starts, [len(core)]]))
    return np.repeat(run_codes, lengths).astype(np.intp), list(names)


def best_depths(depths: np.ndarray, values: np.ndarray, method: str,
                 tolerance: float | None) -> np.ndarray:
    """For each label, the depth of this core the method picks (NaN when there is none).

    Ties under ``nearest`` go to the shallower depth, so results do not depend on row order.
    """
    out = np.full(len(values), np.nan)
    if len(depths) == 0:
        return out
    right = np.searchsorted(depths, values, "left")  # first depth >= value
    left = np.searchsorted(depths, values, "right") - 1  # last depth <= value
    has_left, has_right = left >= 0, right < len(depths)
    below = np.where(has_left, depths[np.clip(left, 0, None)], np.nan)
    above = np.where(has_right, depths[np.clip(right, None, len(depths) - 1)], np.nan)
    if method == "pad":
        out = below
    elif method == "backfill":
        out = above
    else:
        take_above = ~has_left | (has_right & (above - values < values - below))
        out = np.where(take_above, above, below)
    if tolerance is not None:
        out = np.where(np.abs(out - values) <= tolerance, out, np.nan)
    return out


def sorted_union(pieces: list[np.ndarray], already_sorted: bool = False) -> np.ndarray:
    if not pieces:
        return np.empty(0, dtype=np.intp)
    rows = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    if already_sorted:
        return rows
    return np.unique(rows)  # sorted (store order) and each row once


def compact(rows: np.ndarray) -> slice | np.ndarray:
    """A slice when the rows are contiguous: cheaper than fancy indexing for dask and zarr."""
    if len(rows) == 0:
        return slice(0, 0)
    first, last = int(rows[0]), int(rows[-1])
    if last - first + 1 == len(rows):
        return slice(first, last + 1)
    return rows
