"""One write's plan for the hub: which groups change, from which row, and where their rows come from.

Row groups (``spectra/ch<N>``, ``predictions/<run>`` over spectra, ``samples``, ``sources``) are
written from their first changed row (``store.rows``); whole groups (``elements``,
``diffraction/<grid>`` and runs over patterns) are rewritten only when a core holding them
changed. See ``build`` for the generation around it.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from . import samples as samples_kind
from .hubrows import RowSource, first_change, hub_order, starts
from .records import SpectraBlock
from .store import hub, layout, nxrun, rows

KEPT_COORDS = ("core", "depth_mm", "section", "position_mm", "scan", "run", "replicate", "tube_kv", "source",
               "valid")


def _channels(summary: dict) -> dict[int, int]:
    out: dict[int, int] = {}
    for s in summary.get("scans", {}).values():
        out[int(s["channels"])] = out.get(int(s["channels"]), 0) + int(s["n"])
    return out


def _exists(hub_path, group: str) -> bool:
    try:
        zarr.open_group(hub_path, path=group, mode="r")
        return True
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return False


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


class HubPlan:
    def __init__(self, gen, current, records, summaries, old_summaries, changed, full, align, runs, progress=False):
        self.gen, self.current, self.records = gen, current, records
        self.summaries, self.old_summaries = summaries, old_summaries
        self.changed, self.full, self.align, self.runs = set(changed), full, align, dict(runs)
        self.old_hub = current.hub_path if (current is not None and not full) else None
        self.alignment_summary = None
        self.layouts: dict[int, tuple] = {}

    # ------------------------------------------------------------------ the whole write

    def write(self, sources_new: dict, all_sources: dict | None) -> dict[str, dict]:
        new_order, old_order = hub_order(self.summaries), hub_order(self.old_summaries)
        groups = sorted({n for s in self.summaries.values() for n in _channels(s)}
                        | {n for s in self.old_summaries.values() for n in _channels(s)})
        for n_ch in groups:
            self._spectra(n_ch, new_order, old_order)
        for run_id, entry in sorted(self.runs.items()):
            if entry.get("kind", "spectra") == "spectra":
                self._spectra_run(run_id, entry)
        for n_ch in groups:
            self._qc_spectra(n_ch)
        per_core = self._samples(new_order, old_order)
        self._sources(sources_new, all_sources)
        self._whole_kinds()
        return per_core

    # ------------------------------------------------------------------ spectra

    def _spectra(self, n_ch, new_order, old_order):
        group = layout.spectra_group(n_ch)
        new = [(c, _channels(self.summaries[c]).get(n_ch, 0)) for c in new_order]
        new = [(c, n) for c, n in new if n]
        old = [(c, _channels(self.old_summaries[c]).get(n_ch, 0)) for c in old_order]
        old = [(c, n) for c, n in old if n]
        new_starts, total = starts(new)
        old_starts, old_total = starts(old)
        has_old = self.old_hub is not None and _exists(self.old_hub, group)
        first = first_change(old, new, self.changed) if has_old else 0
        self.layouts[n_ch] = (new, new_starts, old_starts if has_old else {}, first, total)
        if not new:
            shutil.rmtree(self.gen.hub_path / group, ignore_errors=True)
            return
        if has_old and first == old_total == total:
            return
        source = RowSource(new, self.changed, lambda c: spectra_raw(self.records[c], n_ch),
                           (self.old_hub, group) if has_old else None, old_starts)
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

        rows.write_group(self.old_hub if has_old else None, self.gen.hub_path, group, first, total, rows_from,
                         row_dim=layout.SPECTRUM, chunked={"counts": (layout.SPECTRA_CHUNK_ROWS, n_ch)},
                         default_rows=layout.COORD_CHUNK_ROWS, attrs={"kind": "spectra", "n_channels": n_ch})

    # ------------------------------------------------------------------ prediction runs over spectra

    def _spectra_run(self, run_id, entry):
        n_ch = int(entry["channels"])
        if n_ch not in self.layouts:
            return
        new, new_starts, old_starts, first, total = self.layouts[n_ch]
        group = layout.predictions_group(run_id)
        has_old = self.old_hub is not None and _exists(self.old_hub, group)
        if has_old and first == total and zarr.open_group(self.old_hub, path=group)["core"].shape[0] == total:
            return
        path = self.gen.path / entry["file"]
        meta = nxrun.read(path, cores=[])
        names = sorted(meta.values)
        def fresh(core):
            mine = spectra_raw(self.records[core], n_ch)
            run = nxrun.read(path, cores=[core])
            index = {(str(s), round(float(d), 6)): i for i, (s, d) in
                     enumerate(zip(run.keys.get("scan", []), run.keys.get("depth_mm", [])))}
            at = np.array([index.get((str(s), round(float(d), 6)), -1)
                           for s, d in zip(mine["scan"], mine["depth_mm"])], dtype=np.int64)
            out = {}
            for name in names:
                v = np.full(len(at), np.nan, dtype=np.float32)
                v[at >= 0] = np.asarray(run.values[name], dtype=np.float32)[at[at >= 0]]
                out[name] = v
            return out

        values = RowSource(new, self.changed, fresh, (self.old_hub, group) if has_old else None, old_starts)

        def rows_from(start, _names=None):
            return spectra_run_dataset(meta, n_ch, values.rows(start, total, names))

        rows.write_group(self.old_hub if has_old else None, self.gen.hub_path, group, first, total, rows_from,
                         row_dim=layout.SPECTRUM, chunked={}, default_rows=layout.COORD_CHUNK_ROWS, attrs={},
                         linked=(layout.spectra_group(n_ch), KEPT_COORDS))

    # ------------------------------------------------------------------ quality flags over spectra

    def _qc_spectra(self, n_ch):
        """``qc/spectra_ch<N>``: rows aligned with the spectra group, written from its first change."""
        from .qc import store as qc_store

        target = layout.spectra_group(n_ch)
        group = qc_store.group_for(target)
        new, new_starts, old_starts, first, total = self.layouts[n_ch]
        if not new or not any(s.get("qc") for s in self.summaries.values()):
            shutil.rmtree(self.gen.hub_path / group, ignore_errors=True)
            return
        has_old = self.old_hub is not None and _exists(self.old_hub, group)
        if has_old and first == total and zarr.open_group(self.old_hub, path=group)["qc_flag"].shape[0] == total:
            return
        provenance = next((p for c in sorted(self.changed & set(self.summaries)) if self.summaries[c].get("qc")
                           for p in [qc_store.provenance_of(self.records[c])] if p), None)
        if provenance is None:  # no changed core was checked: the thresholds are the parent group's
            provenance = dict(zarr.open_group(self.old_hub, path=group).attrs).get("provenance", "{}") if has_old \
                else next(p for c in sorted(self.summaries) if self.summaries[c].get("qc")
                          for p in [qc_store.provenance_of(self.records[c])] if p)
        coord_names = ["core", "depth_mm", "scan", "source", "tube_kv"]
        names = ["qc_flag", "qc_reasons", *qc_store.SERIES]
        spectra = RowSource(new, self.changed, lambda c: spectra_raw(self.records[c], n_ch),
                            (self.old_hub, target) if has_old else None, old_starts)

        def fresh(core):
            raw = spectra_raw(self.records[core], n_ch)
            block = SpectraBlock(raw["counts"], pd.DataFrame({k: raw[k] for k in ("core", "scan", "depth_mm")}))
            return qc_store.core_spectra_rows(self.records[core], block)

        values = RowSource(new, self.changed, fresh, (self.old_hub, group) if has_old else None, old_starts)
        rows.write_group(self.old_hub if has_old else None, self.gen.hub_path, group, first, total,
                         lambda start, _n=None: qc_store.spectra_group_dataset(
                             target, spectra.rows(start, total, coord_names), values.rows(start, total, names),
                             provenance),
                         row_dim=layout.SPECTRUM, chunked={}, default_rows=layout.COORD_CHUNK_ROWS, attrs={})

    # ------------------------------------------------------------------ samples

    def _samples(self, new_order, old_order) -> dict[str, dict]:
        lab_new = [c for c in new_order if self.summaries[c].get("n_samples")]
        group = "samples"
        if not lab_new:
            shutil.rmtree(self.gen.hub_path / group, ignore_errors=True)
            self.alignment_summary = {}
            return {}
        totals = {n: lay[4] for n, lay in self.layouts.items()}
        n_ch = max(totals, key=lambda n: totals[n]) if totals else None
        props, units = [], {}
        for c in lab_new:
            for p in self.summaries[c].get("lab_properties", []):
                if p not in props:
                    props.append(p)
            for p, u in self.summaries[c].get("lab_units", {}).items():
                units.setdefault(p, u)
        has_old = self.old_hub is not None and _exists(self.old_hub, group)
        old_attrs = dict(zarr.open_group(self.old_hub, path=group).attrs) if has_old else {}
        old_props = [p for p in props if has_old and p in zarr.open_group(self.old_hub, path=group)]
        same_shape = (has_old and old_attrs.get("spectra_group", "") == (layout.spectra_group(n_ch) if n_ch else "")
                      and old_props == props
                      and set(props) == {k[:-5] for k, _ in zarr.open_group(self.old_hub, path=group).arrays()
                                         if k.endswith("_flag")})
        realign = set(lab_new) if not same_shape else {c for c in lab_new if c in self.changed}
        if n_ch is not None:
            _lay, new_starts, old_starts, _f, _t = self.layouts[n_ch]
            moved = {c for c in lab_new if c not in realign and new_starts.get(c) != old_starts.get(c, new_starts.get(c))}
        else:
            new_starts, old_starts, moved = {}, {}, set()
        computed, per_core = {}, {}
        for c in sorted(realign):
            rec = self.records[c]
            block = None
            if n_ch is not None and c in new_starts:
                raw = spectra_raw(rec, n_ch)
                block = SpectraBlock(raw["counts"], pd.DataFrame({k: raw[k] for k in (
                    "core", "scan", "depth_mm", "tube_kv", "valid", "depth_scale")}))
            arrays, process, qc = samples_kind.align_core(rec, block, new_starts.get(c, 0), self.align)
            computed[c] = arrays
            per_core[c] = process
            self.summaries[c]["max_match"] = int(max((len(i) for i in arrays["_matched"]), default=0))
            self.summaries[c]["qc_alignment"] = qc
        width = max(1, max(int(self.summaries[c].get("max_match", 0)) for c in lab_new))
        if has_old and zarr.open_group(self.old_hub, path=group)["matched_spectrum"].shape[1] != width:
            same_shape = False
        if not same_shape and realign != set(lab_new):
            return self._samples_all(new_order, old_order)  # a wider match table: every row anew
        new = [(c, int(self.summaries[c]["n_samples"])) for c in lab_new]
        old = [(c, int(self.old_summaries[c]["n_samples"])) for c in old_order
               if self.old_summaries[c].get("n_samples")]
        total = sum(n for _, n in new)
        first = first_change(old, new, realign | moved) if same_shape else 0

        def adjust(core, piece):
            shift = new_starts.get(core, 0) - old_starts.get(core, 0)
            if shift and "matched_spectrum" in piece:
                m = piece["matched_spectrum"]
                piece["matched_spectrum"] = np.where(m >= 0, m + shift, m)

        source = RowSource(new, realign, lambda c: samples_kind.fit(computed[c], props, width, n_ch),
                           (self.old_hub, group) if same_shape else None, starts(old)[0], adjust)
        names = samples_kind.variable_names(props, n_ch)
        rows.write_group(self.old_hub if same_shape else None, self.gen.hub_path, group, first, total,
                         lambda s, _n=None: samples_kind.dataset(source.rows(s, total, names), props, units, n_ch,
                                                                self.align),
                         row_dim=layout.SAMPLE, chunked={"mean_spectrum": (layout.SPECTRA_CHUNK_ROWS, n_ch or 1)},
                         default_rows=layout.COORD_CHUNK_ROWS, attrs=samples_kind.group_attrs(n_ch, self.align))
        qc = {"qc_ran": False, "left_out": {}}
        for c in lab_new:  # what QC left out, summed over the cores (kept per core in the index)
            mine = self.summaries[c].get("qc_alignment") or {}
            qc["qc_ran"] = qc["qc_ran"] or bool(mine.get("qc_ran"))
            for flag, n in mine.get("left_out", {}).items():
                qc["left_out"][flag] = qc["left_out"].get(flag, 0) + int(n)
        self.alignment_summary = samples_kind.summary(hub.open_group(self.gen.hub_path, group), self.align, qc)
        return per_core

    def _samples_all(self, new_order, old_order):
        self.changed |= {c for c in new_order if self.summaries[c].get("n_samples")}
        return self._samples(new_order, old_order)

    # ------------------------------------------------------------------ sources

    def _sources(self, sources_new: dict, all_sources: dict | None):
        group = "sources"
        cols = ("sha256", "format", "kind", "size", "ingested")
        has_old = self.old_hub is not None and _exists(self.old_hub, group)
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

    # ------------------------------------------------------------------ whole kinds

    def _whole_kinds(self):
        from .diffraction import hub_datasets
        from .elements import elements_dataset
        from .qc.store import group_for as qc_group_for
        from .qc.store import hub_datasets as qc_hub_datasets

        touched = self.full or any(
            (self.summaries.get(c) or {}).get("n_points") or (self.old_summaries.get(c) or {}).get("n_points")
            or (self.summaries.get(c) or {}).get("diffraction") or (self.old_summaries.get(c) or {}).get("diffraction")
            for c in self.changed | (set(self.old_summaries) - set(self.summaries)))
        if not touched:
            return
        holders = {c: self.records[c] for c in sorted(self.summaries) if self.summaries[c].get("n_points")}
        ds = elements_dataset(holders)
        shutil.rmtree(self.gen.hub_path / "elements", ignore_errors=True)
        shutil.rmtree(self.gen.hub_path / qc_group_for("elements"), ignore_errors=True)
        if ds is not None:
            hub.write_table(self.gen.hub_path, "elements", ds)
            for group, qds in qc_hub_datasets(holders, {}, {}, ds).items():  # the points' quality flags
                hub.write_table(self.gen.hub_path, group, qds)
        series = {c: self.records[c] for c in sorted(self.summaries) if self.summaries[c].get("diffraction")}
        shutil.rmtree(self.gen.hub_path / "diffraction", ignore_errors=True)
        for group, dds in hub_datasets(series).items():
            n = max(1, min(layout.SPECTRA_CHUNK_ROWS, dds.sizes[layout.PATTERN]))
            hub.write_table(self.gen.hub_path, group, dds, {"intensity": (n, dds.sizes[layout.TWO_THETA])})
        from .predictions_diffraction import run_dataset as pattern_run
        from .predictions_elements import run_dataset as point_run

        for run_id, entry in sorted(self.runs.items()):
            kind = entry.get("kind")
            if kind not in ("diffraction", "elements"):
                continue
            shutil.rmtree(self.gen.hub_path / layout.predictions_group(run_id), ignore_errors=True)
            run = nxrun.read(self.gen.path / entry["file"])
            ds = pattern_run(series, run) if kind == "diffraction" else point_run(holders, run)
            dim = layout.PATTERN if kind == "diffraction" else layout.POINT
            rows.write_group(None, self.gen.hub_path, layout.predictions_group(run_id), 0,
                             ds.sizes[dim], lambda _s, _n=None, ds=ds: ds, row_dim=dim, chunked={},
                             default_rows=layout.COORD_CHUNK_ROWS, attrs={})


def spectra_run_dataset(run: nxrun.RunFile, n_ch: int, values: dict) -> xr.Dataset:
    """The hub group of a run over ``spectra/ch<n_ch>``: its values (NaN where not predicted).

    The spectra's key coordinates (``KEPT_COORDS``, so predictions query like spectra) are not
    part of it: every write links them from the spectra group (``rows.link_coordinates``).
    """
    params = run.parameters
    attrs = {"kind": "predictions", "run": run.run_id, "created": run.date,
             "spectra_group": layout.spectra_group(n_ch),
             "provenance": json.dumps({**params, "date": run.date}, sort_keys=True, default=str)}
    data = {t: ((layout.SPECTRUM,), np.asarray(values[t], dtype=np.float32), _run_attrs(run.run_id, t, params))
            for t in sorted(values)}
    return xr.Dataset(data, attrs=attrs)


def _run_attrs(run_id: str, name: str, params: dict) -> dict:
    """A run variable's attributes: a target, an interval bound of one, or another array beside them."""
    units = params.get("units", {})
    targets = set(params.get("targets", [name]))
    base, _, side = name.rpartition("_")
    interval = params.get("interval")
    if name in targets:
        return {"run": run_id, "units": units.get(name, "wt%"), "long_name": f"predicted {name}"}
    if interval and side in ("lower", "upper") and base in targets:
        return {"run": run_id, "units": units.get(base, "wt%"),
                "long_name": f"{side} bound of the {float(interval['level']):g} interval of {base}",
                "interval_method": interval["method"], "interval_level": float(interval["level"]),
                "interval_score": interval.get("score", "")}
    return {"run": run_id, "units": units.get(name, "wt%"), "long_name": f"{name} (beside the predictions)"}


def _sources_ds(table: dict, cols) -> xr.Dataset:
    names = list(table)
    data = {c: (("source",), np.array([table[n].get(c, 0 if c == "size" else "") for n in names],
                                      dtype=np.int64 if c == "size" else object)) for c in cols}
    return xr.Dataset(data, coords={"name": (("source",), np.array(names, dtype=object))}, attrs={"kind": "sources"})
