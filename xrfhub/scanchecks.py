"""Checks of each scan an ingest adds, before anything is written: one channel count, unique
depths, depths increasing with measurement time.

A scan is judged with the scan of the same key already in the store (its channel count and its
depths), so an append cannot slip a duplicate depth or a different detector into a stored scan.
Every complaint names the file as the user gave it.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from .errors import InputError
from .records import CoreRecord, SpectraBlock, Spectrum, scan_name


def check_scans(spectra: list[Spectrum], records: dict[str, CoreRecord],
                 paths: dict[str, str]) -> list[tuple[str, InputError]]:
    """Per scan: one channel count, unique depths, depth increasing with measurement time.

    Returns (store name, error naming the file as the user gave it) per offending file.
    """
    bad: list[tuple[str, InputError]] = []
    by_scan: dict[tuple, list[Spectrum]] = defaultdict(list)
    for s in spectra:
        by_scan[s.scan_key].append(s)
    for key, points in by_scan.items():
        existing = existing_scan(records, key)
        n_ch = existing.n_channels if existing is not None else _majority([p.n_channels for p in points])
        for p in points:
            if p.n_channels != n_ch:
                bad.append((p.source, InputError(p.source, f"{p.n_channels} channels, but scan {key[0]} "
                                                 f"{scan_label(key)} has {n_ch}", field="$DATA")))
        depths: dict[float, str] = {}
        if existing is not None:
            depths = dict(zip(existing.coords["depth_mm"].round(6), existing.coords["source"]))
        for p in sorted(points, key=lambda s: s.source):
            d = round(p.depth_mm, 6)
            if d in depths:
                bad.append((p.source, InputError(p.source, f"depth {p.depth_mm:g} mm already measured in scan "
                                                 f"{key[0]} {scan_label(key)} by {depths[d]}: duplicate depth",
                                                 field="depth")))
            else:
                depths[d] = p.source
        dated = sorted((p for p in points if p.date), key=lambda s: (s.date, s.source))
        if len(dated) == len(points):
            for a, b in zip(dated, dated[1:]):
                if b.depth_mm < a.depth_mm:
                    bad.append((b.source, InputError(
                        b.source, f"non-monotonic depths in scan {key[0]} {scan_label(key)}: measured at "
                                  f"{b.date} at {b.depth_mm:g} mm, after {a.source} ({a.date}) at "
                                  f"{a.depth_mm:g} mm", field="depth")))
    first: dict[str, InputError] = {}
    for name, err in bad:  # one complaint per file: the first says enough
        first.setdefault(name, InputError(paths.get(name, name), err.reason, line=err.line, field=err.field))
    return list(first.items())


def scan_label(key) -> str:
    _core, section, run, kv, rep = key
    return f"(section {section or '-'}, {run or 'no run'}, {kv:g} kV, replicate {rep})"


def _majority(values):
    vals, counts = np.unique(values, return_counts=True)
    return int(vals[np.argmax(counts)])


def existing_scan(records, key) -> SpectraBlock | None:
    rec = records.get(key[0])
    return rec.scans.get(scan_name(key)) if rec is not None else None
