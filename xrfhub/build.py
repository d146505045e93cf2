"""Writing a store generation from per-core records: NeXus files, the Zarr hub, the manifest.

``ingest`` and ``rebuild`` both end here. The hub is a pure function of the core records (the
NeXus files), which is what lets ``xrfhub rebuild`` regenerate it and lets alignment be redone
whenever scans or lab tables change.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from . import __version__, diffraction, predictions
from .align import align_samples, mean_spectra
from .records import DEPTH_SECTION_RELATIVE, CoreRecord, Process, SpectraBlock
from .store import hub, layout, nexus
from .store.generations import Generation, Store, link_or_copy, now_iso, write_json_atomic


MAX_WARNINGS = 1000


@dataclass(frozen=True)
class AlignParams:
    """How lab samples are paired with spectra (DESIGN section 5)."""

    method: str = "window"
    window_mm: float = 5.0
    tolerance_mm: float = 5.0
    tube_kv: float | None = 10.0
    #: spectra left out by their QC flag (xrfhub.qc.store.POLICIES): "exclude" bad and suspect, "strict"
    #: also indeterminate, "keep" none; nothing is left out where `xrfhub qc` never ran
    qc: str = "exclude"


def core_file_name(core: str, taken: set[str]) -> str:
    """A portable file name for a core id; ids that differ only in odd characters stay apart."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", core) or "core"
    name, i = stem, 1
    while f"{layout.NEXUS_DIR}/{name}{layout.NEXUS_SUFFIX}" in taken:
        i += 1
        name = f"{stem}~{i}"
    return f"{layout.NEXUS_DIR}/{name}{layout.NEXUS_SUFFIX}"


def load_records(gen: Generation, cores=None, progress: bool = False) -> dict[str, CoreRecord]:
    """Read the NeXus files of a generation back into records (all cores, or ``cores``)."""
    manifest = gen.manifest()
    items = [(c, info) for c, info in sorted(manifest["cores"].items()) if cores is None or c in cores]
    if progress and len(items) > 1:
        from tqdm import tqdm

        items = tqdm(items, desc="read NeXus", unit="core")
    return {c: nexus.read_core(gen.path / info["file"]) for c, info in items}


def write_generation(store: Store, current: Generation | None, records: dict[str, CoreRecord],
                     changed: set[str], sources: dict, *, history=(), align: AlignParams = AlignParams(),
                     core_map: dict | None = None, event: dict | None = None,
                     warnings: list[str] = (), progress: bool = False) -> Generation:
    """Write a complete new generation and commit it; ``changed`` cores get new NeXus files."""
    old = current.manifest() if current else {"cores": {}}
    if old.get("alignment") and old["alignment"] != asdict(align):
        changed = changed | {c for c, r in records.items() if not r.lab.empty}
    gen = store.new_generation()
    spectra = concat_spectra(records)
    samples_ds, per_core_alignment, align_summary = _align(records, spectra, align)
    stamp = now_iso()
    for core_id in changed:
        if core_id in records and core_id in per_core_alignment:
            rec = records[core_id]
            rec.processes = [p for p in rec.processes if p.name != "alignment"]
            rec.processes.append(Process("alignment", "xrfhub", __version__, stamp, asdict(align),
                                         per_core_alignment[core_id]))
    _save_history(store, current, old, history)

    # The archive and the hub are written from the same records, independently: in two threads,
    # since compression (zlib, blosc) and file I/O release the GIL. Plain threads, not
    # dask.delayed: delayed walks its arguments looking for collections, and walking every
    # record of a large ingest cost seconds.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="xrfhub-write") as pool:
        archive = pool.submit(_write_archive, gen, current, records, changed, old, progress)
        written = pool.submit(_write_hub, gen, records, spectra, samples_ds, sources)
        cores_manifest = archive.result()
        written.result()
    hub.finalize(gen.hub_path, records)  # core/run UUIDs, consolidated metadata: after every write
    manifest = {
        "generation": gen.name, "parent": current.name if current else None, "created": stamp,
        "xrfhub_version": __version__, "sources": sources, "cores": cores_manifest,
        "kinds": hub.groups(gen.hub_path), "alignment": asdict(align), "alignment_summary": align_summary,
        "core_map": core_map or old.get("core_map", {}),
        # what ingests had to say, newest last, kept for `xrfhub info` (bounded: a store lives long)
        "warnings": (list(old.get("warnings", [])) + list(warnings))[-MAX_WARNINGS:],
        "history": old.get("history", []) + list(history),
    }

    write_json_atomic(gen.path / layout.MANIFEST, manifest)
    store.commit(gen)
    store.log({**(event or {}), "generation": gen.name, "xrfhub_version": __version__,
               "cores": sorted(changed), "date": stamp})
    return gen


def _write_archive(gen, current, records, changed, old, progress) -> dict[str, dict]:
    """NeXus files of the new generation: rewritten for changed cores, hard-linked otherwise."""
    cores_manifest: dict[str, dict] = {}
    taken: set[str] = set()
    items = sorted(records.items())
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="write NeXus", unit="core")
    for core_id, rec in items:
        if core_id not in changed and core_id in old["cores"]:
            rel = old["cores"][core_id]["file"]
            link_or_copy(current.path / rel, gen.path / rel)
        else:
            rel = old["cores"].get(core_id, {}).get("file") or core_file_name(core_id, taken | _files(old))
            nexus.write_core(gen.path / rel, rec)
        taken.add(rel)
        cores_manifest[core_id] = _core_summary(rec, rel)
    return cores_manifest


def _write_hub(gen, records, spectra, samples_ds, sources) -> None:
    """Every kind of the Zarr hub, from the records."""
    spectra_ds = {n_ch: hub.write_spectra(gen.hub_path, block) for n_ch, block in spectra.items()}
    for group, ds in predictions.run_datasets(records, spectra, spectra_ds).items():
        hub.write_table(gen.hub_path, group, ds)
    if samples_ds is not None:
        chunked = {}
        if "mean_spectrum" in samples_ds:
            chunked["mean_spectrum"] = (min(1024, max(1, samples_ds.sizes["sample"])), samples_ds.sizes["channel"])
        hub.write_table(gen.hub_path, "samples", samples_ds, chunked)
    elements = _elements_dataset(records)
    if elements is not None:
        hub.write_table(gen.hub_path, "elements", elements)
    from .qc.store import hub_datasets as qc_datasets  # per-point quality flags, when `xrfhub qc` ran

    for group, ds in qc_datasets(records, spectra, spectra_ds, elements).items():
        hub.write_table(gen.hub_path, group, ds)
    for group, ds in diffraction.hub_datasets(records).items():
        rows = max(1, min(layout.SPECTRA_CHUNK_ROWS, ds.sizes[layout.PATTERN]))
        hub.write_table(gen.hub_path, group, ds, {"intensity": (rows, ds.sizes[layout.TWO_THETA])})
    hub.write_table(gen.hub_path, "sources", hub.sources_dataset(sources))


def _elements_dataset(records: dict[str, CoreRecord]) -> xr.Dataset | None:
    """All element tables over ``point`` x ``line``: lines are the union, NaN where a table lacks one."""
    tables = [t for c in sorted(records) for t in records[c].elements]
    if not tables:
        return None
    lines = sorted({ln for t in tables for ln in t.lines}, key=_line_order)
    quantities = sorted({q for t in tables for q in t.values})
    n = sum(len(t.points) for t in tables)
    data = {q: np.full((n, len(lines)), np.nan) for q in quantities}
    flags = np.full((n, len(lines)), "", dtype=object)
    row = 0
    for t in tables:
        cols = [lines.index(ln) for ln in t.lines]
        rows = slice(row, row + len(t.points))
        for q, v in t.values.items():
            data[q][rows, cols] = v
        if t.flags is not None:
            flags[rows, cols] = t.flags
        row += len(t.points)
    points = pd.concat([t.points.assign(source=t.source) for t in tables], ignore_index=True)
    coords = {}
    for col in points.columns:
        values = points[col].to_numpy()
        if points[col].dtype.kind in "fiub":
            coords[col] = ((layout.POINT,), values)
        else:
            coords[col] = ((layout.POINT,), np.array(["" if v is None or v != v else str(v) for v in values],
                                                     dtype=object))
    coords["line"] = ((layout.LINE,), np.array(lines, dtype=object), {"long_name": "emission line"})
    variables = {q: ((layout.POINT, layout.LINE), v, {"long_name": f"{q} (vendor peak fit)"})
                 for q, v in data.items()}
    variables["flags"] = ((layout.POINT, layout.LINE), flags, {"long_name": "'negative' where the area is < 0"})
    return xr.Dataset(variables, coords=coords, attrs={"kind": "elements"})


def _line_order(line: str):
    from .lines import atomic_number, element_of

    try:
        return (atomic_number(element_of(line)), line)
    except (ValueError, KeyError):
        return (999, line)


def _files(manifest) -> set[str]:
    return {info["file"] for info in manifest.get("cores", {}).values()}


def _save_history(store: Store, current: Generation | None, old: dict, history) -> None:
    """Keep the NeXus files that held replaced sources, so the old versions stay available."""
    if current is None:
        return
    for entry in history:
        core_id = entry.get("core")
        if core_id and core_id in old["cores"]:
            store.history_dir.mkdir(exist_ok=True)
            src = current.path / old["cores"][core_id]["file"]
            link_or_copy(src, store.history_dir / f"{Path(src).stem}.{current.name}{layout.NEXUS_SUFFIX}")
            entry["saved_as"] = f"{layout.HISTORY}/{Path(src).stem}.{current.name}{layout.NEXUS_SUFFIX}"


def _core_summary(rec: CoreRecord, rel: str) -> dict:
    depths = [b.coords["depth_mm"].to_numpy() for b in rec.scans.values()]
    all_d = np.concatenate(depths) if depths else np.array([])
    return {
        "file": rel,
        "scans": {name: {"n": len(b), "channels": b.n_channels,
                         "counts_sha256": hub.array_sha256(b.counts)} for name, b in sorted(rec.scans.items())},
        "n_spectra": int(all_d.size),
        "depth_min_mm": float(all_d.min()) if all_d.size else None,
        "depth_max_mm": float(all_d.max()) if all_d.size else None,
        "n_samples": int(len(rec.lab)),
        # what depth_mm means in this core, and its sections: info says when depths are
        # section-relative (two sections then share depths)
        "depth_scales": sorted({str(v) for b in rec.scans.values() for v in b.coords["depth_scale"]}),
        "sections": sorted({str(v) for b in rec.scans.values() for v in b.coords["section"]}),
        **({"diffraction": {grid: len(b) for grid, b in rec.diffraction.items()},
            "n_labels": int(len(rec.pattern_labels))} if rec.diffraction else {}),
    }


def concat_spectra(records: dict[str, CoreRecord]) -> dict[int, SpectraBlock]:
    """All scans of all cores, grouped by channel count, in store order (core, scan, depth)."""
    by_channels: dict[int, list[SpectraBlock]] = {}
    for core_id in sorted(records):
        for name in sorted(records[core_id].scans):
            block = records[core_id].scans[name]
            by_channels.setdefault(block.n_channels, []).append(block)
    return {n: SpectraBlock.concat(blocks) for n, blocks in sorted(by_channels.items())}


def _align(records, spectra: dict[int, SpectraBlock], params: AlignParams):
    """Pair every lab sample with spectra; returns the samples dataset and per-core NXprocess data."""
    labs = [r.lab.assign(core=c) for c, r in sorted(records.items()) if not r.lab.empty]
    if not labs:
        return None, {}, {}
    lab = pd.concat(labs, ignore_index=True)
    flags = pd.concat([r.lab_flags for c, r in sorted(records.items()) if not r.lab.empty], ignore_index=True)
    units: dict[str, str] = {}
    for r in records.values():
        for k, v in r.lab_units.items():
            units.setdefault(k, v)
    n_ch = max(spectra, key=lambda n: len(spectra[n])) if spectra else None
    if n_ch is not None:
        block = spectra[n_ch]
        table = block.coords[["core", "depth_mm", "tube_kv", "valid"]]
        if "depth_scale" in block.coords and (block.coords["depth_scale"] == DEPTH_SECTION_RELATIVE).any():
            # lab depths are core depths: a section-relative spectrum is never paired with them
            table = table.assign(valid=table["valid"].to_numpy(bool)
                                 & (block.coords["depth_scale"] != DEPTH_SECTION_RELATIVE).to_numpy())
        counts = block.counts
    else:
        table = pd.DataFrame({"core": pd.Series(dtype=object), "depth_mm": pd.Series(dtype=float),
                              "tube_kv": pd.Series(dtype=float), "valid": pd.Series(dtype=bool)})
        counts = np.zeros((0, 1), np.uint32)
    table, qc_left, qc_summary = _leave_out_flagged(records, spectra.get(n_ch), table, params.qc)
    result = align_samples(table, lab[["core", "top_mm", "bottom_mm", "mid_mm"]], method=params.method,
                           window_mm=params.window_mm, tolerance_mm=params.tolerance_mm, tube_kv=params.tube_kv)
    means = mean_spectra(counts, result) if n_ch is not None else np.zeros((len(lab), 0), np.float32)
    ds = _samples_dataset(lab, flags, units, result, means, n_ch, params)

    per_core = {}
    depth = table["depth_mm"].to_numpy()
    for core_id in sorted(set(lab["core"])):
        rows = np.flatnonzero(lab["core"].to_numpy() == core_id)
        flat = [depth[result.indices[i]] for i in rows]
        offsets = np.cumsum([0] + [len(f) for f in flat]).astype(np.int64)
        per_core[core_id] = {
            "sample_mid_mm": lab["mid_mm"].to_numpy(dtype=float)[rows],
            "match_count": np.asarray(result.counts)[rows].astype(np.int64),
            "matched_depth_mm": np.concatenate(flat) if flat else np.zeros(0),
            "matched_offsets": offsets,
            # spectra of this core that QC left out of the alignment (their depths)
            "qc_left_out_depth_mm": depth[qc_left & (table["core"].to_numpy() == core_id)].astype(float),
        }
    return ds, per_core, {**result.summary(), "qc": qc_summary}


def _leave_out_flagged(records, block, table: pd.DataFrame, policy: str):
    """Mark spectra whose QC flag the policy leaves out as unusable for alignment; say how many."""
    from .qc.store import left_out, spectra_flags

    got = spectra_flags(records, block) if block is not None else None
    if got is None:
        return table, np.zeros(len(table), bool), {"policy": policy, "qc_ran": False, "left_out": {}}
    flags = got[0]
    leave = left_out(flags, policy)
    counts = {str(f): int(n) for f, n in zip(*np.unique(flags[leave], return_counts=True))}
    table = table.assign(valid=table["valid"].to_numpy(dtype=bool) & ~leave)
    return table, leave, {"policy": policy, "qc_ran": True, "left_out": counts}


def _samples_dataset(lab, flags, units, result, means, n_ch, params: AlignParams) -> xr.Dataset:
    dim = layout.SAMPLE
    props = [c for c in flags.columns]
    n = len(lab)
    width = max(1, int(np.max(result.counts, initial=0)))
    matched = np.full((n, width), -1, dtype=np.int64)
    for i, idx in enumerate(result.indices):
        matched[i, :len(idx)] = idx
    coords = {
        "core": ((dim,), lab["core"].to_numpy(dtype=object), {"long_name": "core id in the store"}),
        "lab_core": ((dim,), lab["lab_core"].astype(str).to_numpy(dtype=object) if "lab_core" in lab
                     else lab["core"].to_numpy(dtype=object), {"long_name": "core id as written in the lab table"}),
        "depth_mm": ((dim,), lab["mid_mm"].to_numpy(dtype=float), {"units": "mm", "long_name": "sample mid-depth"}),
        "top_mm": ((dim,), lab["top_mm"].to_numpy(dtype=float), {"units": "mm", "long_name": "sample top"}),
        "bottom_mm": ((dim,), lab["bottom_mm"].to_numpy(dtype=float), {"units": "mm", "long_name": "sample bottom"}),
        "mid_mm": ((dim,), lab["mid_mm"].to_numpy(dtype=float), {"units": "mm", "long_name": "sample mid-depth"}),
        "source": ((dim,), lab["source"].astype(str).to_numpy(dtype=object), {"long_name": "lab table"}),
        "line": ((dim,), lab["line"].to_numpy(dtype=np.int64), {"long_name": "line in the lab table"}),
    }
    data = {}
    for p in props:
        data[p] = ((dim,), lab[p].to_numpy(dtype=float), {"units": "wt%", "unit_as_written": units.get(p, "")})
        data[f"{p}_flag"] = ((dim,), flags[p].fillna("").astype(str).to_numpy(dtype=object),
                             {"long_name": f"quality flag of {p} ('' ok, '?' questionable, '/' invalid, '*' unknown)"})
    data["match_status"] = ((dim,), np.asarray(result.status).astype(object), {})
    data["match_reason"] = ((dim,), np.asarray(result.reason).astype(object), {})
    data["match_count"] = ((dim,), np.asarray(result.counts).astype(np.int64), {"long_name": "spectra averaged"})
    data["overlapping"] = ((dim,), np.asarray(result.overlapping, dtype=bool), {})
    data["duplicate"] = ((dim,), np.asarray(result.duplicate, dtype=bool), {})
    data["matched_spectrum"] = ((dim, layout.MATCH), matched,
                                {"long_name": "rows of the spectra group averaged (-1: none)",
                                 "spectra_group": layout.spectra_group(n_ch) if n_ch else ""})
    if n_ch:
        data["mean_spectrum"] = ((dim, layout.CHANNEL), means.astype(np.float32),
                                 {"units": "counts", "long_name": "mean of the matched spectra"})
    attrs = {"kind": "samples", "alignment_method": params.method, "window_mm": params.window_mm,
             "tolerance_mm": params.tolerance_mm, "tube_kv": params.tube_kv if params.tube_kv is not None else "any",
             "spectra_group": layout.spectra_group(n_ch) if n_ch else ""}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def rebuild(store, *, progress: bool = False) -> Generation:
    """Regenerate the Zarr hub (and manifest) from the current generation's NeXus files."""
    store = store if isinstance(store, Store) else Store(store)
    with store.writer():
        current = store.current()
        if current is None:
            from .errors import StoreError

            raise StoreError(f"{store.root}: the store is empty; nothing to rebuild")
        manifest = current.manifest()
        records = load_records(current, progress=progress)
        align = AlignParams(**manifest.get("alignment", {}))
        return write_generation(store, current, records, set(), manifest["sources"], align=align,
                                core_map=manifest.get("core_map"), event={"action": "rebuild"}, progress=progress)
