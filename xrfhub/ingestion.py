"""``xrfhub ingest``: source files in, a new committed store generation out.

The steps, each with one job: find and fingerprint the files (``sources``), decide what is new,
known or changed against the store's manifest, parse (in parallel through dask), check each scan
(channel count, depths), merge into per-core records, and hand them to ``build`` which writes
the generation and commits it. Everything before the commit happens in a folder no reader
follows, so a refused or crashed ingest leaves the store as it was.
"""
from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from . import __version__, coreid, diffraction, kinds
from .build import AlignParams, write_generation
from .kinds import samples as kinds_samples
from .calibrate import apply_folder_models, default_warning, record_calibration
from .depth import (composite_depth, place_positions, place_spectra, place_stored_scans, read_affine_table,
                    read_sections_table, section_relative_warnings)
from .discrete import place_sample_spectra
from .errors import InputError
from .records import Calibration, CoreRecord, LabTable, Process, SpectraBlock, Spectrum
from .scanchecks import check_scans
from .sources import Parsed, content_identity, find, parse_all, with_cores_from_paths
from .store.catalog import Catalog
from .store.cores import LazyRecords
from .store.generations import Store, now_iso


#: an ingest of more files than this goes in batches of whole folders, one generation each, so
#: that its memory is bounded by a batch (the spectra of some cores), not by the whole corpus
BATCH_FILES = 20_000
#: What a lab table's reader notes in its metadata that a user must read at ingest (and that is
#: kept in the core's ingest process): its core taken from its path
#: (``sources.with_cores_from_paths``), a depth unit taken from its samples' thickness, an
#: interval read from one cell, oxides read as % from their totals, columns left out, and
#: properties taken as wt% by convention.
SAID_OF_TABLES = ("core_from_path", "assumed_depth_unit", "depth_interval", "oxide_units", "left_out",
                  "assumed_units")


def _batches(cands: list, limit: int) -> list[list]:
    """Candidates cut into batches of whole folders, each of at most ``limit`` files where a
    folder allows (a folder, often one core, is never split: its calibration, its sections and
    its replicates are decided together)."""
    folders: dict[str, list] = {}
    for c in cands:
        folders.setdefault(c.name.rsplit("/", 1)[0] if "/" in c.name else "", []).append(c)
    out: list[list] = [[]]
    for _folder, items in folders.items():
        if out[-1] and len(out[-1]) + len(items) > limit:
            out.append([])
        out[-1].extend(items)
    return out


@dataclass
class IngestReport:
    """What an ingest did; printed by the CLI and returned to Python callers."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) with --skip-bad
    ignored: list[str] = field(default_factory=list)  # unrecognised files met while walking folders
    noted: list[tuple[str, str]] = field(default_factory=list)  # (file, why) recognised, not stored by design
    cores: list[str] = field(default_factory=list)  # cores whose content changed
    n_spectra: int = 0
    n_samples: int = 0
    n_points: int = 0  # element-table points
    generation: str | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"ingested {len(self.added)} new and {len(self.replaced)} replaced file(s): "
                 f"{self.n_spectra} spectra, {self.n_samples} lab samples, {self.n_points} element-table points, "
                 f"{len(self.cores)} core(s) changed"]
        if self.unchanged:
            lines.append(f"{len(self.unchanged)} file(s) already in the store, unchanged: skipped")
        if self.ignored:
            lines.append(f"{len(self.ignored)} unrecognised file(s) in folders ignored: "
                         + ", ".join(self.ignored[:5]) + (" ..." if len(self.ignored) > 5 else ""))
        for name, reason in self.noted:
            lines.append(f"not stored {name}: {reason}")
        for name, reason in self.skipped:
            lines.append(f"skipped {name}: {reason}")
        lines.extend(f"warning: {w}" for w in self.warnings[:20])
        if len(self.warnings) > 20:
            lines.append(f"... and {len(self.warnings) - 20} more warnings (xrfhub info)")
        lines.append(f"store generation: {self.generation or 'unchanged'}")
        return "\n".join(lines)


def ingest(paths, store, *, format: str | None = None, core_map=None, skip_bad: bool = False,
           replace: bool = False, wait: float = 0.0, calibration: Calibration | None = None,
           core: str | None = None, section_top_mm: float | None = None,
           align: AlignParams | None = None, composite_table=None, client=None,
           wavelength: float | None = None, scan_coord: str | None = None, sections=None,
           init: bool = False, depth_mm: float | None = None, depth_unit: str | None = None,
           units: str | None = None, progress: bool = False) -> IngestReport:
    """Ingest files and folders into ``store`` (created if missing); see the module docstring.

    ``calibration`` is a :class:`Calibration` or the path of a bAXIL model (``.axml``) that
    calibrates every spectrum; ``sections`` the path of a sections table (core, section, top
    depth; :func:`xrfhub.depth.read_sections_table`) placing sections in their cores. A folder
    that holds files but no store is refused unless ``init``.

    Raises :class:`~xrfhub.errors.InputError` for bad input (unless ``skip_bad``) and
    :class:`~xrfhub.errors.StoreLockedError` when another writer holds the store.
    """
    store = store if isinstance(store, Store) else Store(store)
    store.check_folder(init)
    report = IngestReport()
    cands = find(paths)
    cmap = coreid.CoreMap.from_csv(core_map) if core_map else None
    model = None
    if calibration is not None and not isinstance(calibration, Calibration):
        from .readers import baxil_axml

        model = baxil_axml.read(calibration)
        calibration = model.calibration
    section_table = read_sections_table(sections) if sections is not None else None
    options = {k: v for k, v in {"calibration": calibration, "core": core,
                                  "section_top_mm_override": section_top_mm, "wavelength": wavelength,
                                  "scan_coord": scan_coord, "depth_mm": depth_mm, "depth_unit": depth_unit,
                                  "units": units}.items() if v is not None}

    user_map = cmap

    def one_batch(part, composite_part) -> None:
        """Ingest one batch of candidates as one generation (the whole ingest when it is small)."""
        nonlocal cmap
        # where this batch's entries start in the report's lists: each batch's log entry says only
        # what that batch did (a corpus of many batches would otherwise log every name again each time)
        first_warning, first_skipped, first_noted = len(report.warnings), len(report.skipped), len(report.noted)
        current = store.current()
        # the index, not the NeXus files: sources by folder, one small summary per core
        index = Catalog(current.path if current else None)
        manifest = index.manifest
        known = _Known(index)
        # the user's core map persists, so lab cores that arrive before their scans still find them
        cmap = coreid.CoreMap({**manifest.get("core_map", {}), **(user_map.pairs if user_map else {})})
        parsed = parse_all(part, format_name=format, options=options, client=client, progress=progress)
        parsed = with_cores_from_paths(  # the cores, only if some file lacks its own
            parsed, part, lambda: {s.core for p in parsed if p.records is not None for s in _spectra_of(p)}
            | set(index.cores()), format, options)

        new: list[Parsed] = []
        replaced: list[Parsed] = []
        # identity by content: the same data under another path is already stored (the index
        # finds it by one small bucket per file; this ingest's own files are checked here)
        this_ingest: dict[str, str] = {}
        noted: list[Parsed] = []
        refused: list[InputError] = []
        for p in parsed:
            old = known.get(p.source.name)
            ident = content_identity(p) if p.error is None and not p.ignored else ""
            twin = (this_ingest.get(ident) or index.stored_as(ident)) if old is None and ident else None
            if p.ignored:
                report.ignored.append(p.source.name)
            elif old is not None and old["sha256"] == p.source.sha256:
                report.unchanged.append(p.source.name)
            elif p.note:  # recognised, deliberately not stored: say why, remember it in the manifest
                report.noted.append((p.source.name, p.note))
                noted.append(p)
            elif p.error is not None:
                refused.append(p.error)
            elif twin is not None:
                report.unchanged.append(p.source.name)
                report.warnings.append(f"{p.source.name}: same content as {twin}, already stored: skipped")
            elif old is not None and not replace:
                refused.append(InputError(p.source.path, f"changed since it was ingested as {p.source.name!r} "
                                          f"(sha256 {old['sha256'][:12]}... -> {p.source.sha256[:12]}...); "
                                          "pass --replace to store the new version (the old one is kept "
                                          "in the history)"))
            elif old is not None:
                replaced.append(p)
            else:
                new.append(p)
                this_ingest.setdefault(ident, p.source.name)
        for i, err in enumerate(refused):  # every file was read first: a refusal names all the bad ones
            _refuse_or_skip(err, skip_bad, report, also=refused[i + 1:])
        models = [p.records for p in parsed if p.kind == "calibration" and p.error is None and not p.ignored]
        if not new and not replaced and composite_part is None and section_table is None:
            return

        records = kinds.lazy_records(current, index.cores())  # a core's file is read only if the change needs it
        replaced_names = {p.source.name for p in replaced}
        history = _drop_replaced(records, replaced_names, known)
        spectra = [s for p in new + replaced for s in _spectra_of(p)]
        paths = {p.source.name: p.source.path for p in new + replaced}
        if core:  # --core wins over whatever a file says
            for s in spectra:
                s.core = core
        calibrated, cal_warnings = apply_folder_models(spectra, paths, models) if calibration is None else ({}, [])
        report.warnings.extend(cal_warnings)
        bad = place_sample_spectra(spectra, [t for p in new + replaced for t in _tables_of(p)], records, paths, cmap)
        bad += place_spectra(spectra, section_table, paths) if section_table is not None else []
        bad = bad or check_scans(spectra, records, paths)
        while bad:
            if not skip_bad:
                _refuse_or_skip(bad[0][1], skip_bad, report, also=[err for _name, err in bad[1:]])
            drop = {name for name, _ in bad}
            for name, err in bad:
                report.skipped.append((name, err.reason))
            new = [p for p in new if p.source.name not in drop]
            replaced = [p for p in replaced if p.source.name not in drop]
            spectra = [s for s in spectra if s.source not in drop]
            bad = check_scans(spectra, records, paths)
        if not new and not replaced and composite_part is None and section_table is None:
            return

        if section_table is not None:  # element points placed by the table (or refused) before they merge
            element_parsed = _place_element_points([p for p in new + replaced if p.kind == "elements"],
                                                   section_table, skip_bad, report)
            kept = {p.source.name for p in element_parsed}
            new = [p for p in new if p.kind != "elements" or p.source.name in kept]
            replaced = [p for p in replaced if p.kind != "elements" or p.source.name in kept]
        tables = [(p, t) for p in new + replaced for t in _tables_of(p)]
        for p in new + replaced:
            report.warnings.extend(f"{p.source.name}: {w}" for w in p.warnings)
            if p.kind == "samples" and getattr(p.records, "qc", None):  # kept in the manifest, see below
                report.warnings.append(f"{p.source.name}: {p.records.metadata.get('qc_rows', '')}; "
                                       "not stored as samples, listed with the source in the manifest")
            if p.kind == "samples":  # what a lab table's reader assumed or left out, said where it is seen
                report.warnings.extend(f"{p.source.name}: {k.replace('_', ' ')}: {p.records.metadata[k]}"
                                       for k in SAID_OF_TABLES if p.records.metadata.get(k))
            if p.kind == "elements":  # what an element table's reader noted (units, QC rows, depth scale)
                report.warnings.extend(f"{p.source.name}: {p.records.metadata[k]}" for k in ("qc_rows", "warnings")
                                       if p.records.metadata.get(k))
            if p.kind == "spectra+samples":  # a MAX data set: its provided pairs vs the +-5 mm rule
                report.warnings.extend(f"{p.source.name}: {w}" for w in p.records.check_paired())
        # every kind joins its part of the batch to the core records (spectra first: lab tables
        # match their cores against the scanned ones)
        batch = kinds.Batch(parsed=new + replaced, spectra=spectra, tables=tables, core=core, cmap=cmap,
                            warnings=report.warnings)
        changed = set()
        for kind in kinds.registry().values():
            changed |= kind.merge(records, batch)
        if section_table is not None:
            changed |= place_stored_scans(records, section_table)
        model_sources = {p.source.name: p.source for p in parsed if p.kind == "calibration" and p.error is None}
        if model is not None:
            calibrated = {model.source: [s.source for s in spectra]}
        record_calibration(records, spectra, calibrated, [*models, *([model] if model else [])], model_sources)
        if section_table is not None:
            _record_sections(records, section_table, changed)
        changed |= _rehome_lab_only(records, cmap)
        if composite_part is not None:
            changed |= _apply_composite(records, read_affine_table(composite_part), str(composite_part))
        _refresh_composite(records, changed)
        stamp = now_iso()
        by_core = _sources_by_core(new + replaced)
        said = {p.source.name: {k: p.records.metadata[k] for k in SAID_OF_TABLES if p.records.metadata.get(k)}
                for p in new + replaced if p.kind == "samples"}
        for core_id in sorted(changed & set(records)):
            rec = records[core_id]
            fresh = {s.name for s in by_core.get(core_id, [])}
            rec.sources = [s for s in rec.sources if s.name not in replaced_names or s.name in fresh]
            rec.sources.extend(by_core.get(core_id, []))
            rec.processes.append(Process(
                "ingest", "xrfhub", __version__, stamp,
                {"sources": sorted(s.name for s in by_core.get(core_id, [])),
                 "replaced": sorted(replaced_names & {s.name for s in by_core.get(core_id, [])}),
                 "options": {k: str(v) for k, v in options.items()}, "format": format or "auto",
                 # the assumptions a reader made, kept with the data they shaped
                 **({"read_as": read_as} if (read_as := {s.name: said[s.name] for s in rec.sources
                                                         if said.get(s.name)}) else {})}))
        fresh_sources = {}
        for p in new + replaced:
            fresh_sources[p.source.name] = {"sha256": p.source.sha256, "format": p.source.format, "kind": p.kind,
                                            "size": p.source.size, "path": p.source.path, "ingested": stamp,
                                            "identity": content_identity(p)}
            if p.kind == "samples" and getattr(p.records, "qc", None):
                fresh_sources[p.source.name]["qc_rows"] = p.records.qc
        for p in noted:
            fresh_sources[p.source.name] = {"sha256": p.source.sha256, "format": p.source.format,
                                            "kind": "not stored", "size": p.source.size, "path": p.source.path,
                                            "ingested": stamp, "note": p.note}
        report.added.extend(p.source.name for p in new)
        report.replaced.extend(p.source.name for p in replaced)
        report.n_spectra += len(spectra)
        report.n_samples += sum(len(t.samples) for _, t in tables)
        report.n_points += sum(len(p.records.points) for p in new + replaced if p.kind == "elements")
        report.cores = sorted(set(report.cores) | changed)
        report.warnings.extend(f"{s.source}: {w}" for s in spectra for w in s.warnings)
        report.warnings.extend(filter(None, [default_warning(spectra)]))
        report.warnings.extend(section_relative_warnings(records, changed))
        gen = write_generation(store, current, records, changed, fresh_sources, history=history,
                               align=align or AlignParams(),
                               core_map=cmap.pairs, warnings=report.warnings[first_warning:],
                               event={"action": "ingest", "added": [p.source.name for p in new],
                                      "replaced": [p.source.name for p in replaced],
                                      "skipped": report.skipped[first_skipped:], "not_stored": report.noted[first_noted:],
                                      "date": stamp},
                               progress=progress)
        report.generation = gen.name
        return

    fresh_folder = not store.root.exists()
    try:
        with store.writer(wait=wait):
            batches = _batches(cands, BATCH_FILES)
            start = store.current()
            store.pinned = start.name if (start is not None and len(batches) > 1) else None
            try:
                for i, part in enumerate(batches):
                    one_batch(part, composite_table if i == len(batches) - 1 else None)
            except BaseException:
                if len(batches) > 1:  # refused (or interrupted) half way: the store as it was before
                    store.roll_back(start)
                raise
            finally:
                store.pinned = None
    except BaseException:
        if fresh_folder and store.current() is None:  # a refused first ingest leaves no empty store behind
            shutil.rmtree(store.root, ignore_errors=True)
        raise
    return report


class _Known:
    """Sources the store holds, looked up by name in the index (only the buckets asked for are read)."""

    def __init__(self, index: Catalog):
        self.index = index

    def get(self, name: str):
        return self.index.source(name)

    def __getitem__(self, name: str):
        found = self.index.source(name)
        if found is None:
            raise KeyError(name)
        return found


def _lab_only(records) -> list[str]:
    if isinstance(records, LazyRecords):
        loaded = records.loaded
        return sorted(c for c in records if ((not records[c].scans and not records[c].lab.empty) if c in loaded
                                             else (not records.summaries[c].get("n_spectra", 0)
                                                   and records.summaries[c].get("n_samples", 0))))
    return sorted(c for c, r in records.items() if not r.scans and not r.lab.empty)


def _holding(records, names: set[str]) -> list[str]:
    """Cores that hold any of the source ``names`` (the index lists each core's sources)."""
    if isinstance(records, LazyRecords):
        prefixes = tuple(f"{n}/" for n in names)
        return sorted(c for c in records if c in records.loaded or any(
            s in names or s.startswith(prefixes) for s in records.summaries[c].get("sources", [])))
    return sorted(records)


def _record_sections(records: dict[str, CoreRecord], table, changed: set[str]) -> None:
    for core_id in sorted(changed & set(records)):
        if table.covers(core_id):
            rec = records[core_id]
            rec.processes = [p for p in rec.processes if p.name != "section_depths"]
            rec.processes.append(Process("section_depths", "xrfhub", __version__, now_iso(),
                                         {**table.describe(), "sections": table.sections_of(core_id)}))


def _place_element_points(parsed: list[Parsed], table, skip_bad: bool, report) -> list[Parsed]:
    """The sections table applied to element-table points (any vendor's section + position)."""
    kept = []
    for p in parsed:
        pts = p.records.points
        if not {"core", "section", "position_mm"} <= set(pts.columns):
            kept.append(p)
            continue
        top, depth, missing = place_positions(table, pts["core"].astype(str).to_numpy(),
                                              pts["section"].astype(str).to_numpy(), pts["position_mm"].to_numpy())
        if missing:
            row = pts.iloc[missing[0]]
            known = ", ".join(table.sections_of(str(row["core"]))) or "none"
            _refuse_or_skip(InputError(p.source.path, f"core {row['core']} section {row['section']!r} is not in the "
                                       f"sections table {table.source} (its sections of this core: {known})",
                                       field="section"), skip_bad, report)
            continue
        ok = ~np.isnan(top)
        if ok.any():
            pts = pts.copy()
            pts.loc[ok, "section_top_mm"] = top[ok]
            pts.loc[ok, "depth_mm"] = depth[ok]
            pts["depth_scale"] = pts["depth_scale"] if "depth_scale" in pts else "core"
            pts.loc[ok, "depth_scale"] = table.scale
            p.records.points = pts
        kept.append(p)
    return kept


def _apply_composite(records: dict[str, CoreRecord], table, source: str) -> set[str]:
    """Composite depths of the cores the user's affine table names, recorded as an NXprocess."""
    changed = set()
    for core_id in sorted(set(table["core"]) & set(records)):
        rec = records[core_id]
        row = table[table["core"] == core_id].iloc[0]
        for name, block in rec.scans.items():
            coords = block.coords.copy()
            coords["composite_depth_mm"] = composite_depth(coords["core"].to_numpy(), coords["depth_mm"].to_numpy(),
                                                           table)
            rec.scans[name] = SpectraBlock(block.counts, coords)
        rec.processes = [p for p in rec.processes if p.name != "composite_depth"]
        rec.processes.append(Process("composite_depth", "xrfhub", __version__, now_iso(),
                                     {"table": source, "offset_mm": float(row["offset_mm"]),
                                      "scale": float(row.get("scale", 1.0))}))
        changed.add(core_id)
    return changed


def _refresh_composite(records: dict[str, CoreRecord], changed: set[str]) -> None:
    """Spectra added to a core that has a composite scale get their composite depth too."""
    for core_id in sorted(changed & set(records)):
        rec = records[core_id]
        proc = next((p for p in rec.processes if p.name == "composite_depth"), None)
        if proc is None:
            continue
        scale, offset = proc.parameters.get("scale", 1.0), proc.parameters["offset_mm"]
        for name, block in rec.scans.items():
            coords = block.coords.copy()
            coords["composite_depth_mm"] = coords["depth_mm"].to_numpy(dtype=float) * scale + offset
            rec.scans[name] = SpectraBlock(block.counts, coords)


def _refuse_or_skip(err: InputError, skip_bad: bool, report: IngestReport, also=()) -> None:
    """Skip the file (``--skip-bad``), or refuse the ingest naming it and ``also`` the others refused."""
    if not skip_bad:
        err.others = tuple(also)
        raise err
    report.skipped.append((err.path, err.reason))


# ---------------------------------------------------------------------------- scans


def _drop_replaced(records: dict[str, CoreRecord], names: set[str], known: dict) -> list[dict]:
    """Remove what replaced sources contributed; return the history entries to record."""
    history = []
    for core_id in _holding(records, names):
        rec = records[core_id]
        touched = False
        for scan, block in list(rec.scans.items()):
            src = block.coords["source"].astype(str)
            # a folder source (a MAX data set) names its spectra "<folder name>/<file>"
            keep = ~(src.isin(names) | src.str.startswith(tuple(f"{n}/" for n in names))).to_numpy()
            if not keep.all():
                touched = True
                if keep.any():
                    rec.scans[scan] = SpectraBlock(block.counts[keep], block.coords[keep].reset_index(drop=True))
                else:
                    del rec.scans[scan]
        kept = [t for t in rec.elements if t.source not in names]
        if len(kept) != len(rec.elements):
            rec.elements, touched = kept, True
        if not rec.lab.empty and "source" in rec.lab:
            src = rec.lab["source"].astype(str)
            keep = ~(src.isin(names) | src.str.startswith(tuple(f"{n}/" for n in names))).to_numpy()
            if not keep.all():
                touched = True
                rec.lab = rec.lab[keep].reset_index(drop=True)
                rec.lab_flags = rec.lab_flags[keep].reset_index(drop=True)
        touched = diffraction.drop_sources(rec, names) or touched
        if touched:
            history.append({"core": core_id, "sources": sorted(names & {s.name for s in rec.sources})})
    for name in names:
        history.append({"source": name, "old_sha256": known[name]["sha256"]})
    return history


# ---------------------------------------------------------------------------- lab tables


def _rehome_lab_only(records: dict[str, CoreRecord], cmap) -> set[str]:
    """Lab samples that arrived before their scans move to the scanned core once it exists."""
    scan_cores = kinds_samples.scan_cores(records)
    lab_only = _lab_only(records)
    if not lab_only or not scan_cores:
        return set()
    result = coreid.match_cores(lab_only, scan_cores, cmap)
    changed = set()
    for core_id in lab_only:
        target = result.cores.get(core_id)
        if target and target != core_id:
            src = records.pop(core_id)
            lab = src.lab.copy()
            lab["core"] = target
            kinds_samples.append_lab(records[target], lab, src.lab_flags, src.lab_units)
            records[target].sources.extend(src.sources)
            records[target].processes.extend(src.processes)
            changed |= {target}
            changed.add(core_id)  # its file disappears from the new generation
    return changed


def _spectra_of(p: Parsed) -> list[Spectrum]:
    if p.kind == "spectra":
        return p.records
    if p.kind == "spectra+samples":
        return p.records.spectra
    return []


def _tables_of(p: Parsed) -> list[LabTable]:
    if p.kind == "samples":
        return [p.records]
    if p.kind == "spectra+samples":
        return list(p.records.tables)
    return []


def _sources_by_core(parsed: list[Parsed]) -> dict[str, list]:
    """Spectra sources per core (lab sources are attached where their samples land)."""
    out: dict[str, list] = defaultdict(list)
    for p in parsed:
        for c in {s.core for s in _spectra_of(p)}:
            out[c].append(p.source)
    return out
