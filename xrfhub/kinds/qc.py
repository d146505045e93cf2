"""The ``qc`` kind: ``qc/<judged group>``, quality flags with rows aligned to the group they judge.

``qc/spectra_ch<N>`` follows its spectra group row for row and is written from its first
changed row; ``qc/elements`` follows the elements group and is rewritten with it. The flags
themselves live in each core's NXprocess ``qc`` (``qc.store``); ``spectra`` and ``elements``
join them on open.
"""
from __future__ import annotations

import shutil

import pandas as pd
import zarr

from ..hubrows import RowSource
from ..records import SpectraBlock
from ..store import hub, layout, rows
from . import elements as elements_kind
from .base import BaseKind
from .spectra import spectra_raw


class QC(BaseKind):
    name = "qc"
    reader_kinds = ()

    def changed(self, plan) -> set[str]:
        from ..qc.store import group_for

        out = set()
        for n_ch, lay in plan.layouts.items():
            group = group_for(layout.spectra_group(n_ch))
            has_old = plan.exists(group)
            if not lay.new or not any(s.get("qc") for s in plan.summaries.values()):
                if has_old:  # no rows or no QC left: the group goes
                    out.add(group)
                continue
            if not (has_old and lay.first == lay.total
                    and zarr.open_group(plan.old_hub, path=group)["qc_flag"].shape[0] == lay.total):
                out.add(group)
        group = group_for(elements_kind.GROUP)
        if elements_kind.touched(plan) and (plan.exists(group) or any(s.get("qc") for s in plan.summaries.values())):
            out.add(group)
        return out

    def write(self, plan, groups: set[str]) -> None:
        from ..qc.store import group_for

        for n_ch, lay in sorted(plan.layouts.items()):
            if group_for(layout.spectra_group(n_ch)) in groups:
                self._spectra(plan, n_ch, lay)
        group = group_for(elements_kind.GROUP)
        if group in groups:
            from ..qc.store import hub_datasets

            shutil.rmtree(plan.gen.hub_path / group, ignore_errors=True)
            ds = elements_kind.dataset(plan)
            if ds is not None:  # the points' quality flags
                for name, qds in hub_datasets(elements_kind.holders(plan), {}, {}, ds).items():
                    hub.write_table(plan.gen.hub_path, name, qds)

    def _spectra(self, plan, n_ch, lay):
        """``qc/spectra_ch<N>``: rows aligned with the spectra group, written from its first change."""
        from ..qc import store as qc_store

        target = layout.spectra_group(n_ch)
        group = qc_store.group_for(target)
        total = lay.total
        if not lay.new or not any(s.get("qc") for s in plan.summaries.values()):
            shutil.rmtree(plan.gen.hub_path / group, ignore_errors=True)
            return
        has_old = plan.exists(group)
        provenance = next((p for c in sorted(plan.changed & set(plan.summaries)) if plan.summaries[c].get("qc")
                           for p in [qc_store.provenance_of(plan.records[c])] if p), None)
        if provenance is None:  # no changed core was checked: the thresholds are the parent group's
            provenance = dict(zarr.open_group(plan.old_hub, path=group).attrs).get("provenance", "{}") if has_old \
                else next(p for c in sorted(plan.summaries) if plan.summaries[c].get("qc")
                          for p in [qc_store.provenance_of(plan.records[c])] if p)
        coord_names = ["core", "depth_mm", "scan", "source", "tube_kv"]
        names = ["qc_flag", "qc_reasons", *qc_store.SERIES]
        spectra = RowSource(lay.new, plan.changed, lambda c: spectra_raw(plan.records[c], n_ch),
                            (plan.old_hub, target) if has_old else None, lay.old_starts)

        def fresh(core):
            raw = spectra_raw(plan.records[core], n_ch)
            block = SpectraBlock(raw["counts"], pd.DataFrame({k: raw[k] for k in ("core", "scan", "depth_mm")}))
            return qc_store.core_spectra_rows(plan.records[core], block)

        values = RowSource(lay.new, plan.changed, fresh, (plan.old_hub, group) if has_old else None, lay.old_starts)
        rows.write_group(plan.old_hub if has_old else None, plan.gen.hub_path, group, lay.first, total,
                         lambda start, _n=None: qc_store.spectra_group_dataset(
                             target, spectra.rows(start, total, coord_names), values.rows(start, total, names),
                             provenance),
                         row_dim=layout.SPECTRUM, chunked={}, default_rows=layout.COORD_CHUNK_ROWS, attrs={})


KIND = QC()
