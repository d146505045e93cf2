"""The ``spectra`` kind: one hub group ``spectra/ch<N>`` per channel count, rows appended by the change.

Rows are the cores' scans in hub order (``hubrows``); a write rewrites a group from its first
changed row only (``store.rows``), and leaves a group whose rows did not change alone. Its row
layouts (``HubPlan.layouts``) are shared with the kinds whose rows follow the spectra (runs over
spectra, their QC flags, the samples' matched spectra).
"""
from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pandas as pd

from ..hubrows import RowSource
from ..records import SpectraBlock
from ..store import hub, layout, nxscan, rows
from .base import BaseKind, indexed, open_group


def spectra_raw(rec, n_ch: int) -> dict[str, np.ndarray]:
    """A core's rows of ``spectra/ch<n_ch>``: its scans of that channel count, by scan name."""
    blocks = [rec.scans[n] for n in sorted(rec.scans) if rec.scans[n].n_channels == n_ch]
    block = SpectraBlock.concat(blocks)
    out = {}
    for name, (dtype, _u, _l) in layout.SPECTRUM_COORDS.items():
        v = block.coords[name].to_numpy()
        out[name] = v.astype(object) if dtype == "str" else v.astype(dtype)
    out["counts"] = block.counts.astype(np.uint32, copy=False)
    return out


class Spectra(BaseKind):
    name = "spectra"
    reader_kinds = ("spectra", "spectra+samples")

    def identity(self, parsed) -> str | None:
        """An Avaatech file's *name* carries its core, section and position: a renamed copy that
        names another section is new data, so where its spectra sit is part of its identity."""
        spectra = parsed.records if parsed.kind == "spectra" else parsed.records.spectra
        where = repr([(s.core, s.section, s.run, s.tube_kv, s.replicate, round(s.position_mm, 6)) for s in spectra])
        return hashlib.sha256(where.encode("utf-8")).hexdigest()[:16]

    # ------------------------------------------------------------------ write

    def merge(self, records, batch) -> set[str]:
        """Each scan's new spectra join its block (a new scan is a new block), sorted by depth."""
        from collections import defaultdict

        from ..records import CoreRecord, scan_name

        by_scan: dict[tuple, list] = defaultdict(list)
        for s in batch.spectra:
            by_scan[s.scan_key].append(s)
        changed = set()
        for key, points in by_scan.items():
            rec = records.setdefault(key[0], CoreRecord(key[0]))
            block = SpectraBlock.from_spectra(points)
            name = scan_name(key)
            if name in rec.scans:
                block = SpectraBlock.concat([rec.scans[name], block])
            order = np.argsort(block.coords["depth_mm"].to_numpy(), kind="stable")
            rec.scans[name] = SpectraBlock(block.counts[order], block.coords.iloc[order].reset_index(drop=True))
            changed.add(key[0])
        return changed

    def check_nexus(self, path, record) -> None:
        nxscan.check(path, record)

    def to_nexus(self, f, record, *, compression, level) -> None:
        """One NXxrf_core_scan entry per scan (``store.nxscan``)."""
        nxscan.write(f, record, compression, level)

    def from_nexus(self, f, record) -> None:
        record.scans = nxscan.read(f)

    def changed(self, plan) -> set[str]:
        out = set()
        for n_ch, lay in plan.layouts.items():
            if lay.new and not (lay.has_old and lay.first == lay.old_total == lay.total):
                out.add(layout.spectra_group(n_ch))
            elif not lay.new and lay.has_old:  # its last rows went: the group goes
                out.add(layout.spectra_group(n_ch))
        return out

    def write(self, plan, groups: set[str]) -> None:
        for n_ch, lay in sorted(plan.layouts.items()):
            group = layout.spectra_group(n_ch)
            if group in groups:
                self._write(plan, n_ch, lay, group)

    def _write(self, plan, n_ch, lay, group):
        if not lay.new:
            shutil.rmtree(plan.gen.hub_path / group, ignore_errors=True)
            return
        total = lay.total
        source = RowSource(lay.new, plan.changed, lambda c: spectra_raw(plan.records[c], n_ch),
                           (plan.old_hub, group) if lay.has_old else None, lay.old_starts)
        names = [*layout.SPECTRUM_COORDS, "counts"]

        def rows_from(start, wanted=None):
            counts = wanted is None or "counts" in wanted
            raw = source.rows(start, total, names if counts else names[:-1])
            if not counts:  # a stub that costs no memory: only the coordinates are read from here
                raw["counts"] = np.broadcast_to(np.zeros((1, n_ch), np.uint32), (total - start, n_ch))
            head = source.rows(0, min(layout.SPECTRA_CHUNK_ROWS, total), ["energy_gain_kev", "energy_offset_kev"])
            coords = pd.DataFrame({k: raw[k] for k in layout.SPECTRUM_COORDS})
            gain, offset = hub.nominal_calibration(pd.DataFrame(head))
            return hub.spectra_dataset(SpectraBlock(raw["counts"], coords), gain, offset)

        rows.write_group(plan.old_hub if lay.has_old else None, plan.gen.hub_path, group, lay.first, total,
                         rows_from, row_dim=layout.SPECTRUM, chunked={"counts": (layout.SPECTRA_CHUNK_ROWS, n_ch)},
                         default_rows=layout.COORD_CHUNK_ROWS, attrs={"kind": "spectra", "n_channels": n_ch})

    # ------------------------------------------------------------------ open

    def pick(self, hub_path, groups, *, channels=None, **_options) -> str:
        """``channels`` picks a group; by default the one with the most spectra."""
        from ..errors import StoreError

        if channels is not None:
            want = layout.spectra_group(channels)
            if want not in groups:
                raise StoreError(f"no spectra with {channels} channels; present: {', '.join(groups)}")
            return want
        if len(groups) == 1:
            return groups[0]
        sizes = {g: hub.open_group(hub_path, g).sizes[layout.SPECTRUM] for g in groups}
        return max(sizes, key=sizes.get)

    def open(self, hub_path, present, *, index=True, **options):
        from ..qc.store import join_flags  # per-point quality flags as coordinates, when `xrfhub qc` ran

        group = self.pick(hub_path, present[self.name], **options)
        return indexed(join_flags(open_group(hub_path, group), hub_path, present, group), index)


KIND = Spectra()
