"""Spectra of discrete lab samples: their depth is their lab row's, found by sample id.

A spectrum of a discrete sample (an ITRAX ``sumspectra_<sample>.spe``; ``depth_scale``
``sample``) is no point of a scan: its file gives no depth, only the sample's id. The lab table
of the same samples does give one, so at ingest each such spectrum takes the depth of the lab
row with the same core and ``sample_id`` (case and surrounding blanks ignored): the row's
mid-depth, else the middle of its top and bottom, else its top. It keeps ``depth_scale``
``sample`` (a depth borrowed from its lab row, never a scan position), its position in a
section stays unknown (NaN), and the lab rows are later paired with it by id
(:func:`xrfhub.samples.pair_by_sample_id`), not by depth.

The lab rows are looked for in the lab tables of the same ingest, then in the store. A spectrum
whose sample no lab row names, or names with no depth, or names at two depths, is refused with
a message that says which: the store keeps depths that are finite and distinct within a scan,
and a made-up depth would be stored as a fact.
"""
from __future__ import annotations

import math

import numpy as np

from . import coreid
from .errors import InputError
from .records import DEPTH_SAMPLE

#: How many of a core's lab sample ids a refusal lists.
_SHOWN_IDS = 8


def place_sample_spectra(spectra, tables, records, paths: dict[str, str], cmap=None) -> list[tuple[str, InputError]]:
    """Depths of the discrete-sample spectra in ``spectra`` from their lab rows (changed in place).

    ``tables`` are the :class:`~xrfhub.records.LabTable` objects of this ingest (cores as
    written, matched to the spectra's cores like lab tables are), ``records`` the store's cores
    (their ``lab`` already under the store's ids). Returns ``(store name, error)`` per spectrum
    that cannot be placed, like the other placement checks of ingest.
    """
    own = [s for s in spectra if s.depth_scale == DEPTH_SAMPLE]
    if not own:
        return []
    cores = sorted({s.core for s in own})
    rows: dict[str, list[tuple[str, float, str]]] = {}  # core -> [(sample id, depth, where)]
    for table in tables:
        samples = table.samples
        if "sample_id" not in samples or not len(samples):
            continue
        written = samples["core"].astype(str).to_numpy()
        found = coreid.match_cores(sorted(set(written)), cores, cmap)
        target = [found.cores.get(c) or c for c in written]
        for core, sid, depth, line in zip(target, samples["sample_id"].fillna("").astype(str), _depths(samples),
                                          samples["line"]):
            rows.setdefault(core, []).append((sid, depth, f"{table.source} line {int(line)}"))
    for core in cores:
        rec = records.get(core)
        lab = rec.lab if rec is not None else None
        if lab is not None and len(lab) and "sample_id" in lab:
            source = lab["source"].astype(str) if "source" in lab else ["the store"] * len(lab)
            for sid, depth, src, line in zip(lab["sample_id"].fillna("").astype(str), _depths(lab), source,
                                             lab["line"]):
                rows.setdefault(core, []).append((sid, depth, f"{src} line {int(line)}"))
    bad: list[tuple[str, InputError]] = []
    for s in own:
        key = s.sample_id.strip().lower()
        hits = [r for r in rows.get(s.core, []) if r[0].strip().lower() == key]
        where = paths.get(s.source, s.source)
        if not hits:
            ids = sorted({r[0] for r in rows.get(s.core, []) if r[0]})
            have = (f"its lab rows name the samples {', '.join(ids[:_SHOWN_IDS])}"
                    f"{f' and {len(ids) - _SHOWN_IDS} more' if len(ids) > _SHOWN_IDS else ''}" if ids
                    else "no lab row of it has a sample id")
            bad.append((s.source, InputError(
                where, f"spectrum of the discrete sample {s.sample_id!r}: no lab row of core {s.core} has that sample "
                       f"id ({have}); its depth comes from the lab row of the same sample, so ingest the lab table "
                       "that names it (a sample id column) with it or before it", field="sample_id")))
            continue
        depths = sorted({round(h[1], 6) for h in hits if math.isfinite(h[1])})
        if not depths:
            bad.append((s.source, InputError(
                where, f"spectrum of the discrete sample {s.sample_id!r}: its lab row ({hits[0][2]}) gives no depth",
                field="sample_id")))
        elif len(depths) > 1:
            bad.append((s.source, InputError(
                where, f"spectrum of the discrete sample {s.sample_id!r}: lab rows of that sample give different "
                       f"depths ({'; '.join(f'{h[1]:g} mm at {h[2]}' for h in hits)})", field="sample_id")))
        else:
            s.depth_mm = float(depths[0])
            s.warnings = (*s.warnings, f"depth {depths[0]:g} mm from the lab row of sample {s.sample_id!r} "
                                       f"({hits[0][2]}): a discrete sample's spectrum, depth_scale 'sample'")
    return bad


def _depths(samples) -> np.ndarray:
    """Each lab row's depth: its mid-depth, else the middle of top and bottom, else its top."""
    n = len(samples)
    col = (lambda name: samples[name].to_numpy(dtype=float) if name in samples else np.full(n, np.nan))
    mid, top, bottom = col("mid_mm"), col("top_mm"), col("bottom_mm")
    return np.where(np.isfinite(mid), mid, np.where(np.isfinite(top) & np.isfinite(bottom), (top + bottom) / 2, top))
