"""The ``samples`` kind: lab samples aligned with spectra, computed one core at a time.

Lab rows are paired with scan spectra by depth (``xrfhub.align``); a lab row whose sample has
its own spectrum (a discrete sample's, ``depth_scale`` ``sample``) is paired with that spectrum
by sample id instead (:func:`pair_by_sample_id`).

Alignment pairs a core's samples with that core's spectra only, so it is computed per core and
redone only for the cores whose scans or lab rows changed; the rows of the other cores are kept
from the parent's hub (their ``matched_spectrum`` shifted when rows before them moved). The
match table's width and the set of lab properties are the store's (from the core index), so a
core's rows look the same whichever write produced them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import xarray as xr

from .align import align_samples, mean_spectra
from .records import DEPTH_SAMPLE, DEPTH_SECTION_RELATIVE, CoreRecord, SpectraBlock
from .store import layout

SAMPLE_COORDS = ("core", "lab_core", "depth_mm", "top_mm", "bottom_mm", "mid_mm", "source", "line")


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


def align_core(rec: CoreRecord, block: SpectraBlock | None, first_row: int, params: AlignParams):
    """One core's samples paired with its spectra in ``block`` (rows from ``first_row`` of the group).

    Returns raw arrays (name -> values, one row per sample; ``matched_spectrum`` as a list of
    global row arrays), the NXprocess data for the core's file, and what QC left out
    (``{"qc_ran": bool, "left_out": {flag: n}}``). ``block`` holds the core's rows of the
    spectra group with at least ``core, scan, depth_mm, tube_kv, valid, depth_scale``.
    """
    lab = rec.lab.assign(core=rec.core).reset_index(drop=True)
    if block is not None and len(block):
        coords = block.coords.reset_index(drop=True)
        table = coords[["core", "depth_mm", "tube_kv", "valid"]]
        valid = table["valid"].to_numpy(bool)
        own = np.zeros(len(coords), bool)  # spectra of discrete samples: paired by sample id only
        points = len(coords) > 0  # whether the core has scan points (not only discrete samples' spectra)
        if "depth_scale" in coords:
            scale = coords["depth_scale"].astype(str).to_numpy()
            own = valid & (scale == DEPTH_SAMPLE)
            points = bool((scale != DEPTH_SAMPLE).any())
            # lab depths are core depths: a section-relative spectrum is never paired with them, nor
            # is a discrete sample's spectrum (it has no depth; its own lab rows take it by id)
            valid = valid & (scale != DEPTH_SECTION_RELATIVE) & (scale != DEPTH_SAMPLE)
        qc_left, qc = _left_out_by_qc(rec, block, params.qc)
        table = table.assign(valid=valid & ~qc_left)
        own &= ~qc_left
        counts = block.counts
    else:
        table = pd.DataFrame({"core": pd.Series(dtype=object), "depth_mm": pd.Series(dtype=float),
                              "tube_kv": pd.Series(dtype=float), "valid": pd.Series(dtype=bool)})
        counts = np.zeros((0, 1), np.uint32)
        qc_left, qc = np.zeros(0, bool), {"qc_ran": False, "left_out": {}}
        own, points = np.zeros(0, bool), False
    result = align_samples(table, lab[["core", "top_mm", "bottom_mm", "mid_mm"]], method=params.method,
                           window_mm=params.window_mm, tolerance_mm=params.tolerance_mm, tube_kv=params.tube_kv)
    if own.any() and "sample_id" in lab:
        pair_by_sample_id(result, lab["sample_id"].fillna("").astype(str).to_numpy(),
                          _sample_ids(rec, block.coords.reset_index(drop=True)), own,
                          block.coords["tube_kv"].to_numpy(dtype=float), params.tube_kv)
        if not points:  # the depth rule's reason would blame depths the samples do have
            reason = np.asarray(result.reason, dtype=object)
            left = (np.asarray(result.status) == "unmatched") & ~np.char.startswith(
                np.asarray(result.reason, dtype=str), "the sample's own spectrum")
            reason[left] = ("no scan points to pair by depth: the core's spectra are discrete samples', "
                            "paired with the lab rows of their own sample id only")
            result.reason = reason.astype(str)
    means = mean_spectra(counts, result) if block is not None else None
    raw = {
        "core": lab["core"].to_numpy(dtype=object),
        "lab_core": (lab["lab_core"].astype(str) if "lab_core" in lab else lab["core"]).to_numpy(dtype=object),
        "depth_mm": lab["mid_mm"].to_numpy(dtype=float), "top_mm": lab["top_mm"].to_numpy(dtype=float),
        "bottom_mm": lab["bottom_mm"].to_numpy(dtype=float), "mid_mm": lab["mid_mm"].to_numpy(dtype=float),
        "source": lab["source"].astype(str).to_numpy(dtype=object),
        "line": lab["line"].to_numpy(dtype=np.int64),
        "match_status": np.asarray(result.status).astype(object),
        "match_reason": np.asarray(result.reason).astype(object),
        "match_count": np.asarray(result.counts).astype(np.int64),
        "overlapping": np.asarray(result.overlapping, dtype=bool),
        "duplicate": np.asarray(result.duplicate, dtype=bool),
    }
    for p in rec.lab_flags.columns:
        raw[p] = lab[p].to_numpy(dtype=float)
        raw[f"{p}_flag"] = rec.lab_flags[p].fillna("").astype(str).to_numpy(dtype=object)
    raw["_matched"] = [np.asarray(idx, dtype=np.int64) + first_row for idx in result.indices]
    if means is not None:
        raw["mean_spectrum"] = means.astype(np.float32)
    depth = table["depth_mm"].to_numpy()
    flat = [depth[idx] for idx in result.indices]
    process = {
        "sample_mid_mm": lab["mid_mm"].to_numpy(dtype=float),
        "match_count": np.asarray(result.counts).astype(np.int64),
        "matched_depth_mm": np.concatenate(flat) if flat else np.zeros(0),
        "matched_offsets": np.cumsum([0] + [len(f) for f in flat]).astype(np.int64),
        # spectra of this core that QC left out of the alignment (their depths)
        "qc_left_out_depth_mm": depth[qc_left].astype(float),
    }
    return raw, process, qc


def pair_by_sample_id(result, lab_ids, spectrum_ids, own, tube_kv=None, align_kv=None) -> int:
    """Pair lab rows with the spectra of their own discrete sample, by sample id; returns how many.

    A lab row whose ``sample_id`` equals (case and surrounding blanks ignored) the ``sample_id``
    of spectra flagged in ``own`` (valid spectra of ``depth_scale`` ``sample``) is paired with
    those spectra alone: the sample's own spectrum measured the very material of the lab row,
    so scan points near its depth are not averaged in. As for pairing by depth, only spectra at
    the alignment's tube voltage ``align_kv`` count (None: any); a sample whose own spectra are
    all at another voltage is unmatched, the reason naming it. The match reason of a paired row
    says it was paired by id (for these rows ``match_reason`` is not empty although they are
    matched). ``result`` is changed in place.
    """
    by_id: dict[str, list[int]] = {}
    for i in np.flatnonzero(own):
        key = str(spectrum_ids[i]).strip().lower()
        if key:
            by_id.setdefault(key, []).append(int(i))
    reason = np.asarray(result.reason, dtype=object)
    status = np.asarray(result.status, dtype=object)
    paired = 0
    for j, sid in enumerate(lab_ids):
        rows = by_id.get(str(sid).strip().lower())
        if not rows:
            continue
        at_kv = [i for i in rows if align_kv is None or tube_kv is None or abs(tube_kv[i] - align_kv) <= 1e-6]
        if not at_kv:
            kvs = ", ".join(sorted({f"{tube_kv[i]:g} kV" for i in rows}))
            result.indices[j] = np.zeros(0, dtype=np.int64)
            result.counts[j] = 0
            status[j] = "unmatched"
            reason[j] = (f"the sample's own spectrum (sample id {str(sid).strip()!r}) is at {kvs}, the alignment "
                         f"pairs {align_kv:g} kV (--align-kv)")
            continue
        result.indices[j] = np.asarray(at_kv, dtype=np.int64)
        result.counts[j] = len(at_kv)
        status[j] = "matched"
        reason[j] = f"paired by sample id {str(sid).strip()!r}: the sample's own spectrum (not by depth)"
        paired += 1
    result.reason, result.status = reason.astype(str), status.astype(str)
    return paired


def _sample_ids(rec: CoreRecord, coords: pd.DataFrame) -> np.ndarray:
    """``sample_id`` of each row of a core's block, from the block or else from the core's scans
    (the block holds each scan's rows in the scan's own order, under its ``scan`` name)."""
    if "sample_id" in coords:
        return coords["sample_id"].fillna("").astype(str).to_numpy(dtype=object)
    scans = coords["scan"].astype(str).to_numpy()
    out = np.full(len(scans), "", dtype=object)
    for name in pd.unique(scans):
        rows = np.flatnonzero(scans == name)
        stored = rec.scans.get(name)
        if stored is not None and len(stored) == rows.size and "sample_id" in stored.coords:
            out[rows] = stored.coords["sample_id"].fillna("").astype(str).to_numpy(dtype=object)
    return out


def _left_out_by_qc(rec: CoreRecord, block: SpectraBlock, policy: str):
    """Which of the core's spectra its QC flags leave out under ``policy``, and how many per flag."""
    from .qc.store import left_out, spectra_flags

    got = spectra_flags({rec.core: rec}, block)
    if got is None:
        left_out([], policy)  # an unknown policy is refused even where QC never ran
        return np.zeros(len(block), bool), {"qc_ran": False, "left_out": {}}
    flags = got[0]
    leave = left_out(flags, policy)
    return leave, {"qc_ran": True,
                   "left_out": {str(f): int(n) for f, n in zip(*np.unique(flags[leave], return_counts=True))}}


def fit(raw: dict, props: list[str], width: int, n_ch: int | None) -> dict[str, np.ndarray]:
    """A core's raw arrays made to the store's columns: every property, the store's match width."""
    n = len(raw["core"])
    out = {k: v for k, v in raw.items() if not k.startswith("_") and k not in props
           and not k.endswith("_flag")}
    for p in props:
        out[p] = raw.get(p, np.full(n, np.nan))
        out[f"{p}_flag"] = raw.get(f"{p}_flag", np.full(n, "", dtype=object))
    matched = np.full((n, width), -1, dtype=np.int64)
    for i, idx in enumerate(raw["_matched"]):
        matched[i, :len(idx)] = idx
    out["matched_spectrum"] = matched
    if n_ch:
        out["mean_spectrum"] = raw.get("mean_spectrum", np.zeros((n, n_ch), np.float32)).astype(np.float32)
    else:
        out.pop("mean_spectrum", None)
    return out


def dataset(arrays: dict[str, np.ndarray], props: list[str], units: dict[str, str], n_ch: int | None,
            params: AlignParams) -> xr.Dataset:
    """The ``samples`` group from the raw arrays of its rows."""
    dim = layout.SAMPLE
    long = {"core": "core id in the store", "lab_core": "core id as written in the lab table",
            "depth_mm": "sample mid-depth", "top_mm": "sample top", "bottom_mm": "sample bottom",
            "mid_mm": "sample mid-depth", "source": "lab table", "line": "line in the lab table"}
    coords = {}
    for name in SAMPLE_COORDS:
        attrs = {"long_name": long[name]}
        if name.endswith("_mm"):
            attrs = {"units": "mm", **attrs}
        coords[name] = ((dim,), arrays[name], attrs)
    data = {}
    for p in props:
        data[p] = ((dim,), arrays[p], {"units": "wt%", "unit_as_written": units.get(p, "")})
        data[f"{p}_flag"] = ((dim,), arrays[f"{p}_flag"],
                             {"long_name": f"quality flag of {p} ('' ok, '?' questionable, '/' invalid, '*' unknown)"})
    data["match_status"] = ((dim,), arrays["match_status"], {})
    data["match_reason"] = ((dim,), arrays["match_reason"], {})
    data["match_count"] = ((dim,), arrays["match_count"], {"long_name": "spectra averaged"})
    data["overlapping"] = ((dim,), arrays["overlapping"], {})
    data["duplicate"] = ((dim,), arrays["duplicate"], {})
    group = layout.spectra_group(n_ch) if n_ch else ""
    data["matched_spectrum"] = ((dim, layout.MATCH), arrays["matched_spectrum"],
                                {"long_name": "rows of the spectra group averaged (-1: none)", "spectra_group": group})
    if n_ch:
        data["mean_spectrum"] = ((dim, layout.CHANNEL), arrays["mean_spectrum"],
                                 {"units": "counts", "long_name": "mean of the matched spectra"})
    return xr.Dataset(data, coords=coords, attrs=group_attrs(n_ch, params))


def group_attrs(n_ch: int | None, params: AlignParams) -> dict:
    return {"kind": "samples", "alignment_method": params.method, "window_mm": params.window_mm,
            "tolerance_mm": params.tolerance_mm, "tube_kv": params.tube_kv if params.tube_kv is not None else "any",
            "spectra_group": layout.spectra_group(n_ch) if n_ch else ""}


def variable_names(props: list[str], n_ch: int | None) -> list[str]:
    names = [*SAMPLE_COORDS, *props, *(f"{p}_flag" for p in props), "match_status", "match_reason",
             "match_count", "overlapping", "duplicate", "matched_spectrum"]
    return names + (["mean_spectrum"] if n_ch else [])


def summary(ds: xr.Dataset, params: AlignParams, qc: dict | None = None) -> dict:
    """Counts per status etc., as ``align.Alignment.summary`` gives, from the written group.

    ``qc`` is what QC left out, summed over the cores (``{"qc_ran", "left_out"}``).
    """
    from .align import STATUSES

    status = np.asarray(ds["match_status"].values).astype(str)
    out = {"n_samples": int(len(status))} | {s: int(np.sum(status == s)) for s in STATUSES}
    out["overlapping"] = int(np.sum(ds["overlapping"].values))
    out["duplicates"] = int(np.sum(ds["duplicate"].values))
    cores = np.asarray(ds["core"].values).astype(str)[status == "no-scan"]
    out["cores_without_scan"] = sorted({c for c in cores if c})
    return out | {"method": params.method, "window_mm": float(params.window_mm),
                  "tolerance_mm": float(params.tolerance_mm),
                  "tube_kv": None if params.tube_kv is None else float(params.tube_kv), "depth": "depth_mm",
                  "qc": {"policy": params.qc, **(qc or {"qc_ran": False, "left_out": {}})}}


__all__ = ["AlignParams", "align_core", "fit", "dataset", "summary", "asdict"]
