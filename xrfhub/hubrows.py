"""Where every row of a row-indexed hub group comes from, so a write reads and writes only the change.

The hub keeps cores in a stable order: by the generation that first stored them (the
``placement`` NXprocess in the core's file; none, i.e. 0, for the cores of a store's first
ingest and of stores written before this order existed, which were sorted by core id), then
by core id. New cores therefore land after every existing row, and an append rewrites only the
last partial chunk and adds new ones (``store.rows``). A changed core keeps its place; the rows
from it on are rewritten (the unchanged ones among them are read back from the parent's hub,
never from NeXus).

A *layout* is the list of (core, rows) of a group in hub order. ``RowSource`` assembles the
values of any range of rows of the new group from two places: the parent's group (unchanged
cores) and ``fresh(core)`` (changed cores, from their records).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import zarr

Layout = list[tuple[str, int]]


def hub_order(summaries: dict[str, dict]) -> list[str]:
    """Cores in hub order: the generation that first stored them, then id."""
    return sorted(summaries, key=lambda c: (int(summaries[c].get("sequence", 0)), c))


def starts(layout: Layout) -> tuple[dict[str, int], int]:
    """First row of each core in a layout, and the layout's total rows."""
    out, row = {}, 0
    for core, n in layout:
        out[core] = row
        row += n
    return out, row


def first_change(old: Layout, new: Layout, changed: set[str]) -> int:
    """The first row at which ``new`` may differ from ``old`` (rows before it are kept as they are)."""
    row = 0
    for (c_old, n_old), (c_new, n_new) in zip(old, new):
        if c_old != c_new or n_old != n_new or c_old in changed:
            return row
        row += n_old
    return row


class RowSource:
    """Raw arrays (name -> numpy, rows first) of rows ``[a, b)`` of a group's new layout."""

    def __init__(self, layout: Layout, changed: set[str], fresh: Callable[[str], dict[str, np.ndarray]],
                 old_group=None, old_starts: dict[str, int] | None = None,
                 adjust: Callable[[str, dict[str, np.ndarray]], None] | None = None):
        self.layout = layout
        self.changed = changed
        self.fresh = fresh
        self.old = zarr.open_group(old_group[0], path=old_group[1], mode="r") if old_group else None
        self.old_starts = old_starts or {}
        self.adjust = adjust
        self._cache: dict[str, dict[str, np.ndarray]] = {}

    def rows(self, a: int, b: int, names: list[str]) -> dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
        row = 0
        for core, n in self.layout:
            lo, hi = max(a, row), min(b, row + n)
            if lo < hi:
                if core in self.changed or self.old is None or core not in self.old_starts:
                    if core not in self._cache:
                        self._cache = {core: self.fresh(core)}  # one core at a time: memory bounded by a core
                    piece = {k: v[lo - row:hi - row] for k, v in self._cache[core].items() if k in parts}
                else:
                    s = self.old_starts[core] + lo - row
                    piece = {k: _plain(self.old[k][s:s + hi - lo]) for k in names}
                    if self.adjust is not None:
                        self.adjust(core, piece)
                for k in names:
                    parts[k].append(piece[k])
            row += n
        return {k: np.concatenate(v) if v else None for k, v in parts.items()}

    def old_attrs(self, name: str) -> dict:
        if self.old is None or name not in self.old:
            return {}
        return {k: v for k, v in self.old[name].attrs.items() if k != "_FillValue"}


def _plain(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "T" or values.dtype.kind == "U":
        return values.astype(object)
    return values
