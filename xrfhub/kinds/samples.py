"""The ``samples`` kind: lab samples of every core, aligned to the spectra they were cut beside.

One group ``samples`` over ``sample`` (and ``channel`` for the mean spectra). Alignment
(``xrfhub.samples``, ``align``) is redone only for cores whose scans or lab rows changed; rows of
other cores are read back from the parent's group, their ``matched_spectrum`` shifted when
spectra rows before them moved. The group is left alone when no lab core changed or moved.
"""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import zarr

from .. import samples as samples_kind
from ..hubrows import RowSource, first_change, starts
from ..records import SpectraBlock
from ..store import hub, layout, nexus, nxlab, rows
from .base import BaseKind
from .spectra import spectra_raw

GROUP = "samples"
#: ingest options lab readers take (the rest describe spectra)
LAB_OPTIONS = frozenset({"core", "depth_unit", "units"})


def _lab_cores(plan) -> list[str]:
    return [c for c in plan.new_order if plan.summaries[c].get("n_samples")]


def _spectra_channels(plan):
    """The spectra group the samples are matched to: the one with the most rows (None: no spectra)."""
    totals = {n: lay.total for n, lay in plan.layouts.items()}
    return max(totals, key=lambda n: totals[n]) if totals else None


def _properties(plan, lab_new) -> tuple[list[str], dict]:
    props, units = [], {}
    for c in lab_new:
        for p in plan.summaries[c].get("lab_properties", []):
            if p not in props:
                props.append(p)
        for p, u in plan.summaries[c].get("lab_units", {}).items():
            units.setdefault(p, u)
    return props, units


def _same_shape(plan, n_ch, props) -> bool:
    """Whether the parent's group can keep its rows: same spectra group, same properties."""
    if not plan.exists(GROUP):
        return False
    old = zarr.open_group(plan.old_hub, path=GROUP)
    old_props = [p for p in props if p in old]
    return (dict(old.attrs).get("spectra_group", "") == (layout.spectra_group(n_ch) if n_ch else "")
            and old_props == props
            and set(props) == {k[:-5] for k, _ in old.arrays() if k.endswith("_flag")})


def _moved(plan, n_ch, cores) -> set[str]:
    """Lab cores whose spectra rows start elsewhere than in the parent's group."""
    if n_ch is None:
        return set()
    lay = plan.layouts[n_ch]
    return {c for c in cores if lay.new_starts.get(c) != lay.old_starts.get(c, lay.new_starts.get(c))}


def scan_cores(records) -> list[str]:
    """Cores holding scans; from the index for cores whose files were not read."""
    from ..store.cores import LazyRecords

    if isinstance(records, LazyRecords):
        loaded = records.loaded
        return sorted(c for c in records if (records[c].scans if c in loaded
                                             else records.summaries[c].get("n_spectra", 0)))
    return sorted(c for c, r in records.items() if r.scans)


def append_lab(rec, samples: pd.DataFrame, flags: pd.DataFrame, units: dict) -> None:
    """Add lab rows (and their value flags and units) to a core record."""
    rec.lab = pd.concat([rec.lab, samples], ignore_index=True) if not rec.lab.empty else samples.reset_index(drop=True)
    rec.lab_flags = (pd.concat([rec.lab_flags, flags], ignore_index=True) if not rec.lab_flags.empty
                     else flags.reset_index(drop=True))
    for prop, unit in units.items():
        rec.lab_units.setdefault(prop, unit)
    for prop in rec.lab_flags.columns:
        rec.lab_flags[prop] = rec.lab_flags[prop].fillna("").astype(object)


class Samples(BaseKind):
    name = "samples"
    reader_kinds = ("samples", "spectra+samples")

    def reader_options(self, options: dict) -> dict:
        return {k: v for k, v in options.items() if k in LAB_OPTIONS}

    def merge(self, records, batch) -> set[str]:
        """Lab samples join the store's cores, ids matched by normalisation or the user's core map;
        a lab core matching no scanned core is kept as a lab-only core, and the batch says so."""
        from .. import coreid
        from ..records import CoreRecord

        changed = set()
        scanned = scan_cores(records)
        for parsed, table in batch.tables:
            samples = table.samples.copy()
            flags = table.flags.copy()
            written = samples["core"].astype(str).to_numpy()
            result = coreid.match_cores(sorted(set(written)), scanned, batch.cmap)
            target = np.array([result.cores.get(c) or c for c in written], dtype=object)
            for c in result.unmatched:
                batch.warnings.append(f"{parsed.source.name}: lab core {c!r} matches no scanned core; kept as a "
                                      "lab-only core (give --core-map to map it)")
            samples.insert(0, "lab_core", written)
            samples["core"] = target
            samples["source"] = parsed.source.name
            for core_id in sorted(set(target)):
                sel = target == core_id
                rec = records.setdefault(core_id, CoreRecord(core_id))
                append_lab(rec, samples[sel], flags[sel], table.units)
                rec.sources.append(parsed.source)
                changed.add(core_id)
        return changed

    def to_nexus(self, f, record, *, compression, level) -> None:
        """``lab`` and ``lab_flags`` in the core entry (``store.nxlab``)."""
        nxlab.write(nexus.core_entry(f, record), record)

    def from_nexus(self, f, record) -> None:
        nxlab.read(nexus.core_entry(f), record)

    def changed(self, plan) -> set[str]:
        lab_new = _lab_cores(plan)
        if plan.full or not plan.exists(GROUP):
            return {GROUP} if plan.full or lab_new else set()
        if not lab_new:  # the last lab samples went
            return {GROUP}
        n_ch = _spectra_channels(plan)
        old = [(c, int(plan.old_summaries[c]["n_samples"])) for c in plan.old_order
               if plan.old_summaries[c].get("n_samples")]
        new = [(c, int(plan.summaries[c]["n_samples"])) for c in lab_new]
        if (old != new or set(lab_new) & plan.changed or _moved(plan, n_ch, lab_new)
                or not _same_shape(plan, n_ch, _properties(plan, lab_new)[0])):
            return {GROUP}
        return set()

    def write(self, plan, groups: set[str]) -> None:
        if GROUP in groups:
            plan.per_core_alignment.update(self._write(plan, plan.changed))

    def _write(self, plan, changed: set[str]) -> dict[str, dict]:
        """Write the group; the alignment NXprocess data of each realigned core."""
        lab_new = _lab_cores(plan)
        if not lab_new:
            shutil.rmtree(plan.gen.hub_path / GROUP, ignore_errors=True)
            plan.alignment_summary = {}
            return {}
        n_ch = _spectra_channels(plan)
        props, units = _properties(plan, lab_new)
        has_old = plan.exists(GROUP)
        same_shape = _same_shape(plan, n_ch, props)
        realign = set(lab_new) if not same_shape else {c for c in lab_new if c in changed}
        if n_ch is not None:
            new_starts, old_starts = plan.layouts[n_ch].new_starts, plan.layouts[n_ch].old_starts
            moved = {c for c in _moved(plan, n_ch, lab_new) if c not in realign}
        else:
            new_starts, old_starts, moved = {}, {}, set()
        computed, per_core = {}, {}
        for c in sorted(realign):
            rec = plan.records[c]
            block = None
            if n_ch is not None and c in new_starts:
                raw = spectra_raw(rec, n_ch)
                block = SpectraBlock(raw["counts"], pd.DataFrame({k: raw[k] for k in (
                    "core", "scan", "depth_mm", "tube_kv", "valid", "depth_scale")}))
            arrays, process, qc = samples_kind.align_core(rec, block, new_starts.get(c, 0), plan.align)
            computed[c] = arrays
            per_core[c] = process
            plan.summaries[c]["max_match"] = int(max((len(i) for i in arrays["_matched"]), default=0))
            plan.summaries[c]["qc_alignment"] = qc
        width = max(1, max(int(plan.summaries[c].get("max_match", 0)) for c in lab_new))
        if has_old and zarr.open_group(plan.old_hub, path=GROUP)["matched_spectrum"].shape[1] != width:
            same_shape = False
        if not same_shape and realign != set(lab_new):  # a wider match table: every row anew
            return self._write(plan, changed | set(lab_new))
        new = [(c, int(plan.summaries[c]["n_samples"])) for c in lab_new]
        old = [(c, int(plan.old_summaries[c]["n_samples"])) for c in plan.old_order
               if plan.old_summaries[c].get("n_samples")]
        total = sum(n for _, n in new)
        first = first_change(old, new, realign | moved) if same_shape else 0

        def adjust(core, piece):
            shift = new_starts.get(core, 0) - old_starts.get(core, 0)
            if shift and "matched_spectrum" in piece:
                m = piece["matched_spectrum"]
                piece["matched_spectrum"] = np.where(m >= 0, m + shift, m)

        source = RowSource(new, realign, lambda c: samples_kind.fit(computed[c], props, width, n_ch),
                           (plan.old_hub, GROUP) if same_shape else None, starts(old)[0], adjust)
        names = samples_kind.variable_names(props, n_ch)
        rows.write_group(plan.old_hub if same_shape else None, plan.gen.hub_path, GROUP, first, total,
                         lambda s, _n=None: samples_kind.dataset(source.rows(s, total, names), props, units, n_ch,
                                                                plan.align),
                         row_dim=layout.SAMPLE, chunked={"mean_spectrum": (layout.SPECTRA_CHUNK_ROWS, n_ch or 1)},
                         default_rows=layout.COORD_CHUNK_ROWS, attrs=samples_kind.group_attrs(n_ch, plan.align))
        qc = {"qc_ran": False, "left_out": {}}
        for c in lab_new:  # what QC left out, summed over the cores (kept per core in the index)
            mine = plan.summaries[c].get("qc_alignment") or {}
            qc["qc_ran"] = qc["qc_ran"] or bool(mine.get("qc_ran"))
            for flag, n in mine.get("left_out", {}).items():
                qc["left_out"][flag] = qc["left_out"].get(flag, 0) + int(n)
        plan.alignment_summary = samples_kind.summary(hub.open_group(plan.gen.hub_path, GROUP), plan.align, qc)
        return per_core


KIND = Samples()
