"""One write's plan for the hub: which groups change, decided once, and where their rows come from.

``HubPlan`` computes the row layout of every spectra group (``hubrows``: which cores, from which
row the new group differs from its parent's), then asks every kind (``xrfhub.kinds``) which of
its groups the change touches: ``changed_groups``. Each kind is then handed the changed groups it
owns and writes only those; every other group stays the hard link ``build`` made of the parent's.
Row groups (``spectra/ch<N>``, runs over spectra, their ``qc`` flags, ``samples``, ``sources``)
are written from their first changed row (``store.rows``); whole groups (``elements``,
``diffraction/<grid>`` and runs over them) are rewritten when a core holding them changed. See
``build`` for the generation around it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
import zarr

from . import kinds
from .hubrows import Layout, first_change, hub_order, starts
from .kinds.base import exists
from .store import layout, rows


def _channels(summary: dict) -> dict[int, int]:
    out: dict[int, int] = {}
    for s in summary.get("scans", {}).values():
        out[int(s["channels"])] = out.get(int(s["channels"]), 0) + int(s["n"])
    return out


@dataclass
class RowLayout:
    """The rows of one spectra group, new and in the parent: cores in hub order and their row counts."""

    new: Layout
    new_starts: dict[str, int]
    old_starts: dict[str, int]  # {} when the parent has no such group
    first: int  # the first row at which the new group differs from the parent's (0: no parent)
    total: int
    old_total: int
    has_old: bool = False


class HubPlan:
    """One write of the hub: the change (``changed`` cores, ``runs``) against the parent's hub.

    ``changed_groups`` is every hub group the write changes (written, rewritten or removed),
    computed once from the index summaries before anything is written; ``write`` hands each
    kind its own. ``per_core_alignment`` and ``alignment_summary`` are what the samples kind
    learnt (for the cores' NeXus files and the manifest).
    """

    def __init__(self, gen, current, records, summaries, old_summaries, changed, full, align, runs, progress=False):
        self.gen, self.current, self.records = gen, current, records
        self.summaries, self.old_summaries = summaries, old_summaries
        self.changed, self.full, self.align, self.runs = frozenset(changed), full, align, dict(runs)
        self.old_hub = current.hub_path if (current is not None and not full) else None
        self.new_order, self.old_order = hub_order(summaries), hub_order(old_summaries)
        #: changed cores and cores that went: what decides whether a whole group is rewritten
        self.changed_or_gone = self.changed | (set(old_summaries) - set(summaries))
        self.alignment_summary = None
        self.per_core_alignment: dict[str, dict] = {}
        self._memo: dict[str, object] = {}
        counts = sorted({n for s in summaries.values() for n in _channels(s)}
                        | {n for s in old_summaries.values() for n in _channels(s)})
        self.layouts: dict[int, RowLayout] = {n: self._layout(n) for n in counts}
        self.changed_groups: frozenset[str] = frozenset(
            g for kind in kinds.registry().values() for g in kind.changed(self))

    def exists(self, group: str) -> bool:
        """Whether the parent's hub (none on a full write) holds ``group``."""
        return exists(self.old_hub, group)

    def memo(self, key: str, make):
        """A value computed once per write (e.g. the elements dataset, which QC flags follow too)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def _layout(self, n_ch: int) -> RowLayout:
        new = [(c, _channels(self.summaries[c]).get(n_ch, 0)) for c in self.new_order]
        new = [(c, n) for c, n in new if n]
        old = [(c, _channels(self.old_summaries[c]).get(n_ch, 0)) for c in self.old_order]
        old = [(c, n) for c, n in old if n]
        new_starts, total = starts(new)
        old_starts, old_total = starts(old)
        has_old = self.exists(layout.spectra_group(n_ch))
        first = first_change(old, new, self.changed) if has_old else 0
        return RowLayout(new, new_starts, old_starts if has_old else {}, first, total, old_total, has_old)

    # ------------------------------------------------------------------ the whole write

    def write(self, sources_new: dict, all_sources: dict | None) -> dict[str, dict]:
        """Write the changed groups, kind by kind in registry order, then the sources table.

        Returns the alignment NXprocess data of each realigned core.
        """
        for kind in kinds.registry().values():
            mine = {g for g in self.changed_groups if kind.owns(g)}
            if mine:
                kind.write(self, mine)
        self._sources(sources_new, all_sources)
        return self.per_core_alignment

    # ------------------------------------------------------------------ sources

    def _sources(self, sources_new: dict, all_sources: dict | None):
        group = "sources"
        cols = ("sha256", "format", "kind", "size", "ingested")
        has_old = self.exists(group)
        if all_sources is not None or not has_old:
            everything = all_sources if all_sources is not None else sources_new
            names = sorted(everything, key=lambda n: (int(everything[n].get("generation", 0)), n))
            table = {n: everything[n] for n in names}
            rows.write_group(None, self.gen.hub_path, group, 0, len(names), lambda s, _n=None: _sources_ds(table, cols),
                             row_dim="source", chunked={}, default_rows=layout.COORD_CHUNK_ROWS,
                             attrs={"kind": "sources"})
            return
        if not sources_new:
            return
        old = zarr.open_group(self.old_hub, path=group)
        old_total = old["name"].shape[0]
        fresh_names = sorted(sources_new)
        replaced = set(fresh_names)
        old_names = np.asarray(old["name"][:]).astype(object) if replaced else None
        hit = np.flatnonzero([str(n) in replaced for n in old_names]) if old_names is not None else []
        first = int(hit[0]) if len(hit) else old_total
        total = old_total - len(hit) + len(fresh_names)

        def rows_from(start, _names=None):
            table = {}
            part = {c: np.asarray(old[c][start:old_total]) for c in ("name", *cols)}
            part = {c: v.astype(object) if v.dtype.kind in "TU" else v for c, v in part.items()}
            for i, name in enumerate(str(n) for n in part["name"]):
                if name not in replaced:
                    table[name] = {c: (part[c][i].item() if hasattr(part[c][i], "item") else part[c][i]) for c in cols}
            for name in fresh_names:
                table[name] = sources_new[name]
            return _sources_ds(table, cols)

        rows.write_group(self.old_hub, self.gen.hub_path, group, first, total, rows_from, row_dim="source",
                         chunked={}, default_rows=layout.COORD_CHUNK_ROWS, attrs={"kind": "sources"})

def _sources_ds(table: dict, cols) -> xr.Dataset:
    names = list(table)
    data = {c: (("source",), np.array([table[n].get(c, 0 if c == "size" else "") for n in names],
                                      dtype=np.int64 if c == "size" else object)) for c in cols}
    return xr.Dataset(data, coords={"name": (("source",), np.array(names, dtype=object))}, attrs={"kind": "sources"})
