"""The ``elements`` kind: the vendors' peak-fit tables of every core, one group over ``point`` x ``line``.

The group is small (a table per core section) and its lines are the union over every table, so
it is rewritten whole, and only when a core holding points changed, arrived or went.
"""
from __future__ import annotations

import hashlib
import shutil

import numpy as np

from ..records import CoreRecord, ElementTable
from ..store import hub, nexus, nxelements
from .base import BaseKind, indexed, open_group

GROUP = "elements"


def holders(plan) -> dict:
    """The records of the cores holding element points, in core order."""
    return {c: plan.records[c] for c in sorted(plan.summaries) if plan.summaries[c].get("n_points")}


def dataset(plan):
    """The new ``elements`` dataset (None without points), built once per write."""
    from ..elements import elements_dataset

    return plan.memo(GROUP, lambda: elements_dataset(holders(plan)))


def touched(plan) -> bool:
    """Whether the write changes the points: a core holding them (before or after) changed or went."""
    return plan.full or any((plan.summaries.get(c) or {}).get("n_points")
                            or (plan.old_summaries.get(c) or {}).get("n_points") for c in plan.changed_or_gone)


class Elements(BaseKind):
    name = "elements"
    reader_kinds = ("elements",)

    def identity(self, parsed) -> str | None:
        """Where the table's points sit (core, section, run, replicate, position): a renamed copy
        of a table that names other sections is new data."""
        points = parsed.records.points
        cols = [c for c in ("core", "section", "run", "replicate", "position_mm") if c in points]
        where = repr(points[cols].to_numpy().tolist())
        return hashlib.sha256(where.encode("utf-8")).hexdigest()[:16]

    def merge(self, records, batch) -> set[str]:
        """Each element table split by core, the parts attached to the core records."""
        changed = set()
        for p in batch.of(self):
            table = p.records
            cores = table.points["core"].astype(str).to_numpy()
            for core_id in sorted(set(cores)):
                sel = cores == core_id
                part = ElementTable(table.source, table.points[sel].reset_index(drop=True), list(table.lines),
                                    {q: np.asarray(v)[sel] for q, v in table.values.items()},
                                    None if table.flags is None else np.asarray(table.flags)[sel],
                                    dict(table.metadata))
                rec = records.setdefault(core_id, CoreRecord(core_id))
                rec.elements.append(part)
                rec.sources.append(p.source)
                changed.add(core_id)
        return changed

    def to_nexus(self, f, record, *, compression, level) -> None:
        """One NXdata ``elements_NNNN`` per table in the core entry (``store.nxelements``)."""
        nxelements.write(nexus.core_entry(f, record), record.elements)

    def from_nexus(self, f, record) -> None:
        record.elements = nxelements.read(nexus.core_entry(f))

    def changed(self, plan) -> set[str]:
        return {GROUP} if touched(plan) else set()

    def write(self, plan, groups: set[str]) -> None:
        if GROUP not in groups:
            return
        shutil.rmtree(plan.gen.hub_path / GROUP, ignore_errors=True)
        ds = dataset(plan)
        if ds is not None:
            hub.write_table(plan.gen.hub_path, GROUP, ds)

    def open(self, hub_path, present, *, index=True, **options):
        from ..qc.store import join_flags  # per-point quality flags as coordinates, when `xrfhub qc` ran

        group = self.pick(hub_path, present[self.name], **options)
        return indexed(join_flags(open_group(hub_path, group), hub_path, present, group), index)


KIND = Elements()
