"""The ``diffraction`` kind: one group ``diffraction/<grid>`` per 2-theta grid, patterns of every series.

Grids are rewritten whole, and only when a series holding patterns changed, arrived or went.
``open`` picks a grid (default: the last) or resamples every grid onto one (``grid="common"``,
``"common:ID"``; recorded in the result's attributes).
"""
from __future__ import annotations

import shutil

from ..store import hub, layout, nexus, nxdiffraction
from .base import BaseKind, indexed, open_group


def series(plan) -> dict:
    """The records of the series (cores) holding patterns, in core order."""
    return {c: plan.records[c] for c in sorted(plan.summaries) if plan.summaries[c].get("diffraction")}


def touched(plan) -> bool:
    """Whether the write changes the patterns: a series holding them (before or after) changed or went."""
    return plan.full or any((plan.summaries.get(c) or {}).get("diffraction")
                            or (plan.old_summaries.get(c) or {}).get("diffraction") for c in plan.changed_or_gone)


def holding_patterns(records) -> dict:
    """The records that hold diffraction patterns (from the index for core files not read)."""
    from ..store.cores import LazyRecords

    if isinstance(records, LazyRecords):
        loaded = records.loaded
        return {c: records[c] for c in records if (c in loaded and records[c].diffraction)
                or (c not in loaded and records.summaries[c].get("diffraction"))}
    return records


class Diffraction(BaseKind):
    name = "diffraction"
    reader_kinds = ("diffraction", "diffraction-labels")

    def merge(self, records, batch) -> set[str]:
        """Patterns join their series; labels the series that hold the patterns they name."""
        from .. import diffraction

        mine = batch.of(self)
        changed = diffraction.merge_patterns(records, [p for p in mine if p.kind == "diffraction"], batch.core)
        labels = [p for p in mine if p.kind == "diffraction-labels"]
        if labels:  # only the series holding patterns can own labels: read just those
            changed |= diffraction.merge_labels(holding_patterns(records), labels)
        return changed

    def to_nexus(self, f, record, *, compression, level) -> None:
        """One NXdata ``diffraction_NNNN`` per grid, and the labels, in the core entry
        (``store.nxdiffraction``)."""
        if record.diffraction or not record.pattern_labels.empty:
            nxdiffraction.write(nexus.core_entry(f, record), record.diffraction, record.pattern_labels, compression, level)

    def from_nexus(self, f, record) -> None:
        record.diffraction, record.pattern_labels = nxdiffraction.read(nexus.core_entry(f))

    def changed(self, plan) -> set[str]:
        if not touched(plan):
            return set()
        grids = {g for s in (*plan.summaries.values(), *plan.old_summaries.values())
                 for g in (s.get("diffraction") or {})}
        return {f"{self.name}/{g}" for g in grids}

    def write(self, plan, groups: set[str]) -> None:
        if not groups:
            return
        from ..diffraction import hub_datasets

        shutil.rmtree(plan.gen.hub_path / self.name, ignore_errors=True)  # grids are written whole
        for group, dds in hub_datasets(series(plan)).items():
            n = max(1, min(layout.SPECTRA_CHUNK_ROWS, dds.sizes[layout.PATTERN]))
            hub.write_table(plan.gen.hub_path, group, dds, {"intensity": (n, dds.sizes[layout.TWO_THETA])})

    def pick(self, hub_path, groups, *, grid=None, **_options) -> str:
        from ..errors import StoreError

        if grid is None:
            return groups[-1]
        want = f"{self.name}/{grid}"
        if want not in groups:
            raise StoreError(f"no diffraction grid {grid!r}; grids: {', '.join(groups)}")
        return want

    def open(self, hub_path, present, *, index=True, grid=None, **options):
        if grid is None or grid.split(":", 1)[0] != "common":
            return indexed(open_group(hub_path, self.pick(hub_path, present[self.name], grid=grid)), index)
        from ..diffraction import on_common_grid
        from ..errors import StoreError

        groups = present[self.name]
        datasets = [open_group(hub_path, g) for g in groups]
        onto = grid.partition(":")[2]
        if not onto:
            return on_common_grid(datasets)
        axes = {ds.attrs.get("grid", g.split("/", 1)[1]): ds for g, ds in zip(groups, datasets)}
        if onto not in axes:
            raise StoreError(f"grid {grid!r}: no diffraction grid {onto!r}; grids: {', '.join(axes)}")
        return on_common_grid(datasets, axes[onto]["two_theta"].values)


KIND = Diffraction()
