"""Writing a store generation: the change goes into the NeXus files, the index and the Zarr hub.

``ingest``, ``rebuild`` and prediction runs end here. A write hard-links the parent generation
(NeXus files, index files, run files, every hub chunk) and writes only what changed: the NeXus
files of changed cores, their index files, the sources they brought, and per hub group the rows
from the first changed one (``hubrows``, ``store.rows``): appending a core writes its rows and
one partial chunk per array, whatever the store holds. Groups that are not row-appended
(elements, diffraction grids and their runs) are rewritten only when a core holding them
changed. ``rebuild`` writes everything afresh from the NeXus files (masters and runs) and gives
the same bytes, which is the test that the incremental path is right.
"""
from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path

import numpy as np

from . import __version__, identifiers, kinds
from .kinds import load_records  # noqa: F401 - kept importable from build
from .elements import elements_dataset  # noqa: F401 - kept importable from build
from .hubplan import HubPlan
from .records import CoreRecord, Process, SpectraBlock
from .samples import AlignParams
from .store import catalog, hub, layout, nxrun
from .store.files import link_tree
from .store.nxrun import migrate_runs, run_entry
from .store.generations import Generation, Store, link_or_copy, now_iso, write_json_atomic

MAX_WARNINGS = 1000
#: NXprocess that records the generation which first stored a core (its place in the hub order)
PLACEMENT = "placement"
PREDICTION_PREFIX = "prediction_"

__all__ = ["AlignParams", "core_file_name", "load_records", "write_generation", "rebuild", "concat_spectra",
           "link_tree"]


def core_file_name(core: str, taken: set[str]) -> str:
    """A portable file name for a core id; ids that differ only in odd characters stay apart."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", core) or "core"
    name, i = stem, 1
    while f"{layout.NEXUS_DIR}/{name}{layout.NEXUS_SUFFIX}" in taken:
        i += 1
        name = f"{stem}~{i}"
    return f"{layout.NEXUS_DIR}/{name}{layout.NEXUS_SUFFIX}"


def write_generation(store: Store, current: Generation | None, records, changed: set[str], sources: dict, *,
                     history=(), align: AlignParams = AlignParams(), core_map: dict | None = None,
                     event: dict | None = None, warnings=(), progress: bool = False, full: bool = False,
                     run_files: dict | None = None, rewrite: set[str] = frozenset()) -> Generation:
    """Write a new generation holding the change and commit it.

    ``records`` maps core ids to records and must hold every core in ``changed`` (a core in
    ``changed`` but not in ``records`` is removed); ``sources`` are the new or replaced source
    entries (all of them with ``full``). ``full`` rewrites every file from ``records`` (rebuild);
    ``run_files`` (rebuild of an old store) are runs to write as files; ``rewrite`` the cores whose
    NeXus files a full write must write anew (the others are linked).
    """
    parent = catalog.Catalog(current.path if current else None)
    old_manifest = parent.manifest
    full = full or (current is not None and not parent.split)
    old_summaries = parent.cores()
    if full and current is not None and not parent.split:  # an old store: every record is needed once
        records = {c: records[c] for c in list(records)}
    old_align = old_manifest.get("alignment")
    if old_align and old_align != asdict(align):
        changed = changed | {c for c, s in old_summaries.items() if s.get("n_samples") and c in records}
    gen = store.new_generation()
    stamp = now_iso()
    present = set(records) if full else (set(old_summaries) | set(records)) - (set(changed) - set(records))
    changed = set(changed) if not full else set(records)
    summaries = {c: s for c, s in old_summaries.items() if c in present and c not in changed}
    taken = {s["file"] for s in summaries.values()}
    files = {}
    for core in sorted(changed & present):
        rec = records[core]
        seq = int(old_summaries.get(core, {}).get("sequence", 0)) if core in old_summaries else (
            0 if current is None or not old_summaries else gen.number)
        if full:
            seq = _placement(rec)
        elif seq and not any(p.name == PLACEMENT for p in rec.processes):
            rec.processes.append(Process(PLACEMENT, "xrfhub", __version__, stamp, {"sequence": seq}))
        rel = old_summaries.get(core, {}).get("file") or core_file_name(core, taken)
        taken.add(rel)
        files[core] = rel
        summaries[core] = {**core_summary(rec, rel), "sequence": seq}
    _save_history(store, current, old_summaries, history)

    if current is not None and not full:
        link_tree(current.hub_path, gen.hub_path)
        if (current.path / layout.RUNS_DIR).exists():
            link_tree(current.path / layout.RUNS_DIR, gen.path / layout.RUNS_DIR)
        for core, s in summaries.items():
            if core not in changed:
                link_or_copy(current.path / s["file"], gen.path / s["file"])
    elif current is not None and (current.path / layout.RUNS_DIR).exists():
        link_tree(current.path / layout.RUNS_DIR, gen.path / layout.RUNS_DIR)

    carried = dict(old_manifest.get("runs", {}))
    for run_id, run in (run_files or {}).items():  # rebuild of an old store: runs moved out of core files
        nxrun.write(gen.path / layout.run_file(run_id), run, identifiers.run_uuid(run_id))
        carried[run_id] = run_entry(run)
    items = sorted(changed & present)
    linked = {c for c in items if full and current is not None and (current.path / files[c]).exists()
              and c not in rewrite}
    # cores without lab samples need nothing from the hub write (alignment): their NeXus files
    # can be written by a second process meanwhile
    beside, early = _nexus_beside(gen, records, files, [c for c in items if c not in linked
                                                        and not summaries[c].get("n_samples")], summaries)
    try:
        plan = HubPlan(gen, current, records, summaries, old_summaries, changed, full, align, carried, progress)
        per_core_alignment = plan.write(sources, sources if full else None)
        items = [c for c in items if c not in early]
        if progress and len(items) > 1:
            from tqdm import tqdm

            items = tqdm(items, desc="write NeXus", unit="core")
        for core in items:
            rec = records[core]
            if core in per_core_alignment:
                rec.processes = [p for p in rec.processes if p.name != "alignment"]
                rec.processes.append(Process("alignment", "xrfhub", __version__, stamp, asdict(align),
                                             per_core_alignment[core]))
            if core in linked:
                link_or_copy(current.path / files[core], gen.path / files[core])
            else:
                kinds.write_core(gen.path / files[core], rec)
    except BaseException:
        if beside is not None:
            beside.cancel()
        raise
    if beside is not None:
        beside.join()
    hub.finalize(gen.hub_path, summaries)  # core/run UUIDs, consolidated metadata: after every hub write
    # hints, verified against the index when read; a first write of an old store hints them all
    catalog.write_identity_hints(store.root, {**(parent.all_sources() if full and parent.path else {}), **sources})
    catalog.write(gen.path, parent, {**{c: summaries.get(c) for c in changed},
                                     **{c: None for c in set(old_summaries) - present}},
                  _with_generation(sources, gen.number, full), full=full)
    manifest = {
        "generation": gen.name, "parent": current.name if current else None, "created": stamp,
        "xrfhub_version": __version__, "index": catalog.INDEX_VERSION,
        "n_cores": len(summaries), "kinds": hub.groups(gen.hub_path, kinds.names()), "alignment": asdict(align),
        "alignment_summary": plan.alignment_summary if plan.alignment_summary is not None
        else old_manifest.get("alignment_summary", {}),
        "core_map": core_map or old_manifest.get("core_map", {}),
        "runs": carried,
        # what ingests had to say, newest last, kept for `xrfhub info` (bounded: a store lives long)
        "warnings": (list(old_manifest.get("warnings", [])) + list(warnings))[-MAX_WARNINGS:],
        "history": old_manifest.get("history", []) + list(history),
    }
    write_json_atomic(gen.path / layout.MANIFEST, manifest)
    store.commit(gen)
    store.log({**(event or {}), "generation": gen.name, "xrfhub_version": __version__,
               "cores": sorted(changed), "hub_groups": sorted(plan.changed_groups), "date": stamp})
    return gen


#: spectra below which a second NeXus writer costs more than it saves (a fork of a large
#: process takes tens of ms; a core file ~0.45 ms per spectrum)
BESIDE_MIN_SPECTRA = 500


def _nexus_beside(gen: Generation, records, files: dict[str, str], cores: list[str], summaries: dict):
    """Start writing ``cores``' NeXus files in a forked child, to overlap the hub write.

    Returns the child (None when it would not pay, see ``forking.usable_processes``;
    ``XRFHUB_WRITE_PROCESSES=1`` forbids it) and the cores it writes. The files are the bytes
    this process would write: same records, same writer.
    """
    from .forking import Beside, usable_processes

    n = sum(int(s["n"]) for c in cores for s in summaries[c].get("scans", {}).values())
    if not cores or usable_processes(n, BESIDE_MIN_SPECTRA, "XRFHUB_WRITE_PROCESSES") < 2:
        return None, set()
    return Beside(_write_cores, gen.path, records, files, cores), set(cores)


def _write_cores(root: Path, records, files: dict[str, str], cores: list[str]) -> None:
    from .forking import orphaned

    for core in cores:
        if orphaned():  # the writer was killed: its generation will never be committed
            raise SystemExit(1)
        kinds.write_core(root / files[core], records[core])


def _placement(rec: CoreRecord) -> int:
    p = next((p for p in rec.processes if p.name == PLACEMENT), None)
    return int(p.parameters.get("sequence", 0)) if p else 0


def _with_generation(sources: dict, number: int, full: bool) -> dict:
    """New source entries remember the generation that stored them (their place in ``sources``)."""
    if full:
        return dict(sources)
    return {n: {**info, "generation": number} for n, info in sources.items()}


def core_summary(rec: CoreRecord, rel: str) -> dict:
    """What the index keeps of a core, so a later write decides without reading its file."""
    depths = [b.coords["depth_mm"].to_numpy() for b in rec.scans.values()]
    all_d = np.concatenate(depths) if depths else np.array([])
    out = {
        "file": rel,
        "scans": {name: {"n": len(b), "channels": b.n_channels,
                         "counts_sha256": hub.array_sha256(b.counts)} for name, b in sorted(rec.scans.items())},
        "n_spectra": int(all_d.size),
        "depth_min_mm": float(all_d.min()) if all_d.size else None,
        "depth_max_mm": float(all_d.max()) if all_d.size else None,
        "n_samples": int(len(rec.lab)),
        "sources": sorted({s.name for s in rec.sources}),
        "lab_properties": [str(p) for p in rec.lab_flags.columns],
        "lab_units": {str(k): str(v) for k, v in rec.lab_units.items()},
        "n_points": int(sum(len(t.points) for t in rec.elements)),
        "qc": any(p.name == "qc" for p in rec.processes),  # `xrfhub qc` judged this core
        # what depth_mm means in this core, and its sections: info says when depths are
        # section-relative (two sections then share depths)
        "depth_scales": sorted({str(v) for b in rec.scans.values() for v in b.coords["depth_scale"]}),
        "sections": sorted({str(v) for b in rec.scans.values() for v in b.coords["section"]}),
        **({"diffraction": {grid: len(b) for grid, b in rec.diffraction.items()},
            "n_labels": int(len(rec.pattern_labels))} if rec.diffraction else {}),
    }
    return out


def _save_history(store: Store, current: Generation | None, old: dict, history) -> None:
    """Keep the NeXus files that held replaced sources, so the old versions stay available."""
    if current is None:
        return
    for entry in history:
        core_id = entry.get("core")
        if core_id and core_id in old:
            store.history_dir.mkdir(exist_ok=True)
            src = current.path / old[core_id]["file"]
            link_or_copy(src, store.history_dir / f"{Path(src).stem}.{current.name}{layout.NEXUS_SUFFIX}")
            entry["saved_as"] = f"{layout.HISTORY}/{Path(src).stem}.{current.name}{layout.NEXUS_SUFFIX}"


def concat_spectra(records: dict[str, CoreRecord]) -> dict[int, SpectraBlock]:
    """All scans of all cores, grouped by channel count, in hub order (placement, core, scan, depth)."""
    by_channels: dict[int, list[SpectraBlock]] = {}
    for core_id in sorted(records, key=lambda c: (_placement(records[c]), c)):
        for name in sorted(records[core_id].scans):
            block = records[core_id].scans[name]
            by_channels.setdefault(block.n_channels, []).append(block)
    return {n: SpectraBlock.concat(blocks) for n, blocks in sorted(by_channels.items())}


def rebuild(store, *, progress: bool = False) -> Generation:
    """Regenerate the Zarr hub and the index from the NeXus files (masters and runs).

    Stores written before runs had their own files are migrated: prediction NXprocesses are
    moved out of the core files into ``runs/<run>.nxs``.
    """
    from .errors import StoreError

    store = store if isinstance(store, Store) else Store(store)
    with store.writer():
        current = store.current()
        if current is None:
            raise StoreError(f"{store.root}: the store is empty; nothing to rebuild")
        parent = catalog.Catalog(current.path)
        manifest = parent.manifest
        records = load_records(current, progress=progress)
        run_files, moved = migrate_runs(records)
        align = AlignParams(**manifest.get("alignment", {}))
        return write_generation(store, current, records, set(records), parent.all_sources(), align=align,
                                core_map=manifest.get("core_map"), event={"action": "rebuild"},
                                progress=progress, full=True, run_files=run_files, rewrite=moved)
