"""Diffraction patterns as the store keeps them: blocks of patterns on one 2-theta grid.

Readers give one :class:`~xrfhub.records.DiffractionPatterns` per source file; the store keeps
the patterns of a series (its "core": a sample, a pressure ramp, an experiment) grouped by grid,
*as measured*: patterns on different grids are never interpolated on ingest. A grid is named by
its first and last angle and point count, plus a digest of the exact values so that two grids
that merely look alike stay apart. Resampling onto a common grid happens only when asked (see
``xrfhub.open(store, "diffraction", grid=...)``), and is recorded in the result's attributes.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .records import DiffractionPatterns

#: Per-pattern columns every block has (besides scan coordinates, which vary by source).
PATTERN_COLUMNS = ("pattern_id", "source", "line", "wavelength", "wavelength_source", "axis", "extra_kind")


def grid_id(two_theta: np.ndarray) -> str:
    """A readable, exact name for a 2-theta grid, e.g. ``tth9.56-25.55n4023-1a2b3c4d``."""
    tt = np.ascontiguousarray(two_theta, dtype=np.float64)
    digest = hashlib.sha256(tt.tobytes()).hexdigest()[:8]
    return f"tth{tt[0]:.4g}-{tt[-1]:.4g}n{tt.size}-{digest}"


@dataclass
class DiffractionBlock:
    """Patterns of one series on one grid: ``intensity`` (pattern x two_theta) and per-pattern
    ``coords`` (``PATTERN_COLUMNS`` plus one float column per scan coordinate); ``extra`` is the
    optional third column (NaN for patterns that had none)."""

    two_theta: np.ndarray
    intensity: np.ndarray
    coords: pd.DataFrame
    extra: np.ndarray | None = None
    scan_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.coords)

    @property
    def grid(self) -> str:
        return grid_id(self.two_theta)

    @classmethod
    def from_patterns(cls, p: DiffractionPatterns) -> "DiffractionBlock":
        n = len(p.pattern_ids)
        lines = list(p.lines) + [0] * (n - len(p.lines))
        coords = pd.DataFrame({
            "pattern_id": list(map(str, p.pattern_ids)), "source": [p.source] * n,
            "line": np.asarray(lines[:n], dtype=np.int64), "wavelength": np.full(n, float(p.wavelength)),
            "wavelength_source": [p.wavelength_source] * n, "axis": [p.axis] * n,
            "extra_kind": [p.extra_kind or ""] * n})
        for name, values in sorted(p.scan.items()):
            coords[name] = np.asarray(values, dtype=np.float64)
        extra = None if p.extra is None else np.asarray(p.extra, dtype=np.float32)
        return cls(np.asarray(p.two_theta, dtype=np.float64), np.asarray(p.intensity, dtype=np.float32), coords,
                   extra, sorted(p.scan))

    @staticmethod
    def concat(blocks: list["DiffractionBlock"]) -> "DiffractionBlock":
        """Blocks on the same grid, one after the other; scan columns are the union (NaN where absent)."""
        if not blocks:
            raise ValueError("no diffraction blocks to concatenate")
        grid = blocks[0].two_theta
        if any(not np.array_equal(b.two_theta, grid) for b in blocks[1:]):
            raise ValueError("diffraction blocks on different grids cannot be concatenated")
        coords = pd.concat([b.coords for b in blocks], ignore_index=True)
        if any(b.extra is not None for b in blocks):
            extra = np.concatenate([b.extra if b.extra is not None else np.full(b.intensity.shape, np.nan, np.float32)
                                    for b in blocks])
        else:
            extra = None
        names = sorted({n for b in blocks for n in b.scan_names})
        return DiffractionBlock(grid, np.concatenate([b.intensity for b in blocks]), coords, extra, names)


def by_grid(blocks: list[DiffractionBlock]) -> dict[str, DiffractionBlock]:
    """Blocks grouped (and concatenated) by grid, in order of first appearance."""
    groups: dict[str, list[DiffractionBlock]] = {}
    for b in blocks:
        groups.setdefault(b.grid, []).append(b)
    return {g: DiffractionBlock.concat(bs) for g, bs in groups.items()}


def series_of(source_name: str, explicit: str | None = None) -> str:
    """The series (store "core") a pattern file belongs to: ``--core`` when given, else the
    folder the file sits in (``ramp/ramp_0001.xy`` -> ``ramp``), else the file's stem."""
    if explicit:
        return explicit
    parts = str(source_name).replace("\\", "/").split("/")
    if len(parts) > 1:
        return parts[-2]
    stem = parts[-1]
    return stem.rsplit(".", 1)[0] if "." in stem else stem


# ---------------------------------------------------------------------------- ingest


def merge_patterns(records: dict, parsed: list, series: str | None = None) -> set[str]:
    """Attach parsed pattern files to their series' records; returns the series changed.

    A pattern id must be unique within its series: a second file with the same id is an error
    naming both files (re-ingesting the same file is recognised earlier, by its digest).
    """
    from .errors import InputError
    from .records import CoreRecord

    changed = set()
    for p in parsed:
        patterns = p.records
        core_id = series_of(p.source.name, series)
        rec = records.setdefault(core_id, CoreRecord(core_id))
        block = DiffractionBlock.from_patterns(patterns)
        seen = {pid: src for b in rec.diffraction.values() for pid, src in zip(b.coords["pattern_id"], b.coords["source"])}
        clash = [pid for pid in block.coords["pattern_id"] if pid in seen]
        if clash:
            raise InputError(p.source.path, f"pattern {clash[0]!r} is already in series {core_id!r} (from "
                                            f"{seen[clash[0]]}); give each pattern a unique id or another --core")
        grid = block.grid
        rec.diffraction[grid] = DiffractionBlock.concat([rec.diffraction[grid], block]) if grid in rec.diffraction \
            else block
        rec.sources.append(p.source)
        changed.add(core_id)
    return changed


def merge_labels(records: dict, parsed: list) -> set[str]:
    """Attach each labels table's rows to the series holding those patterns.

    A row naming a pattern the store does not hold is an error naming its line: labels are
    ingested with or after their patterns, so a typo cannot silently label nothing.
    """
    from .errors import InputError

    owner = {}
    for core_id, rec in records.items():
        for block in rec.diffraction.values():
            for pid in block.coords["pattern_id"]:
                owner.setdefault(str(pid), []).append(core_id)
    changed = set()
    for p in parsed:
        table = p.records.table.assign(multi=bool(p.records.multi), source=p.source.name)
        missing = [(pid, line) for pid, line in zip(table["pattern_id"], table["line"]) if str(pid) not in owner]
        if missing:
            pid, line = missing[0]
            raise InputError(p.source.path, f"pattern {pid!r} is not in the store ({len(missing)} such row(s)); "
                                            "ingest the patterns first, or together with their labels",
                             line=int(line))
        for core_id in sorted({c for pid in table["pattern_id"] for c in owner[str(pid)]}):
            rows = table[[core_id in owner[str(pid)] for pid in table["pattern_id"]]]
            rec = records[core_id]
            old = rec.pattern_labels
            if not old.empty:
                old = old[~old["pattern_id"].astype(str).isin(rows["pattern_id"].astype(str))]
            rec.pattern_labels = pd.concat([old, rows], ignore_index=True)[
                ["pattern_id", "label", "multi", "source", "line"]]
            rec.sources.append(p.source)
            changed.add(core_id)
    return changed


def drop_sources(rec, names: set[str]) -> bool:
    """Remove the patterns and labels that replaced sources contributed; True when any were."""
    touched = False
    for grid, block in list(rec.diffraction.items()):
        keep = ~block.coords["source"].astype(str).isin(names).to_numpy()
        if not keep.all():
            touched = True
            if keep.any():
                rec.diffraction[grid] = DiffractionBlock(
                    block.two_theta, block.intensity[keep], block.coords[keep].reset_index(drop=True),
                    None if block.extra is None else block.extra[keep], block.scan_names)
            else:
                del rec.diffraction[grid]
    if not rec.pattern_labels.empty:
        keep = ~rec.pattern_labels["source"].astype(str).isin(names)
        if not keep.all():
            rec.pattern_labels, touched = rec.pattern_labels[keep].reset_index(drop=True), True
    return touched


# ---------------------------------------------------------------------------- the hub


def hub_datasets(records: dict) -> dict:
    """One dataset per grid over every series: ``intensity`` (pattern x two_theta), per-pattern
    coordinates, the series as ``core``, and labels: ``label`` (class, or phases joined by ";")
    and, when any labels are sets of phases, ``phase_present`` (pattern x phase)."""
    import xarray as xr

    from .store import layout

    per_grid: dict[str, list[tuple[str, DiffractionBlock]]] = {}
    for core_id in sorted(records):
        for grid, block in records[core_id].diffraction.items():
            per_grid.setdefault(grid, []).append((core_id, block))
    out = {}
    for grid, items in per_grid.items():
        block = DiffractionBlock.concat([b for _, b in items])
        cores = np.concatenate([[c] * len(b) for c, b in items]).astype(object)
        labels, multi = _labels_for(records, items)
        dims = (layout.PATTERN,)
        coords = {"core": (dims, cores, {"long_name": "series (core) id in the store"}),
                  "two_theta": ((layout.TWO_THETA,), block.two_theta, {"units": "degrees",
                                                                        "long_name": "scattering angle 2-theta"})}
        for col in block.coords.columns:
            values = block.coords[col].to_numpy()
            coords[col] = (dims, values.astype(object) if values.dtype.kind in "OUS" else values, {})
        coords["wavelength"][2].update(units="angstrom")
        coords["label"] = (dims, labels, {"long_name": "class, or phases joined by ';' ('' unlabelled)"})
        data = {"intensity": ((layout.PATTERN, layout.TWO_THETA), block.intensity,
                              {"units": "counts", "long_name": "diffracted intensity"})}
        if block.extra is not None:
            data["extra"] = ((layout.PATTERN, layout.TWO_THETA), block.extra, {"long_name": "third column"})
        if multi:
            phases = sorted({ph for lab in labels for ph in str(lab).split(";") if ph})
            present = np.array([[ph in str(lab).split(";") for ph in phases] for lab in labels], dtype=bool)
            present = present.reshape(len(labels), len(phases))
            coords["phase"] = (("phase",), np.array(phases, dtype=object), {})
            data["phase_present"] = ((layout.PATTERN, "phase"), present, {"long_name": "phase in the pattern"})
        out[f"diffraction/{grid}"] = xr.Dataset(data, coords=coords, attrs={"kind": "diffraction", "grid": grid,
                                                                           "labels": "phases" if multi else "class"})
    return out


def _labels_for(records, items) -> tuple[np.ndarray, bool]:
    labels, multi = [], False
    for core_id, block in items:
        table = records[core_id].pattern_labels
        lookup = {}
        if not table.empty:
            lookup = dict(zip(table["pattern_id"].astype(str), table["label"].astype(str)))
            multi = multi or bool(table["multi"].astype(bool).any())
        labels.extend(lookup.get(str(pid), "") for pid in block.coords["pattern_id"])
    return np.array(labels, dtype=object), multi


def on_common_grid(datasets: list, two_theta=None):
    """Every grid's patterns resampled (linearly) onto one grid, concatenated over ``pattern``.

    ``two_theta`` defaults to the finest step of any grid over the range all grids share, so no
    pattern is extrapolated; angles outside a pattern's measured range would be NaN. The result
    records what was done in its attributes (``resampled_from``, ``resampling``): the store
    itself keeps every pattern as measured.
    """
    import xarray as xr

    from .store import layout
    from .xrdaxis import resample

    if two_theta is None:
        lo = max(float(ds["two_theta"].values[0]) for ds in datasets)
        hi = min(float(ds["two_theta"].values[-1]) for ds in datasets)
        if hi <= lo:
            from .errors import ConfigError

            raise ConfigError("the diffraction grids share no 2-theta range; pass two_theta= explicitly")
        step = min(float(np.min(np.diff(ds["two_theta"].values))) for ds in datasets)
        two_theta = np.arange(lo, hi + step / 2, step)
    two_theta = np.asarray(two_theta, dtype=np.float64)
    parts = []
    for ds in datasets:
        src = ds["two_theta"].values
        values = np.asarray(ds["intensity"].values, dtype=np.float64)
        out = resample(src, values, two_theta) if len(values) else np.zeros((0, two_theta.size))
        part = ds.drop_vars([v for v in ("intensity", "extra", "two_theta") if v in ds.variables])
        part = part.drop_dims(layout.TWO_THETA, errors="ignore")
        part["intensity"] = ((layout.PATTERN, layout.TWO_THETA), out.astype(np.float32))
        part = part.assign_coords(grid=((layout.PATTERN,), np.full(len(values), ds.attrs.get("grid", ""), object)))
        parts.append(part)
    merged = xr.concat(parts, dim=layout.PATTERN, join="outer", combine_attrs="drop", data_vars="all")
    merged = merged.assign_coords(two_theta=((layout.TWO_THETA,), two_theta, {"units": "degrees"}))
    merged.attrs = {"kind": "diffraction", "grid": "common", "resampling": "linear interpolation, NaN outside "
                    "each pattern's measured range", "resampled_from": [ds.attrs.get("grid", "") for ds in datasets]}
    return merged
