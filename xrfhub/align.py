"""Depth alignment: pair lab samples with the scanner spectra measured at their depth.

Every depth scale is kept (DESIGN section 5): the position in the section (mm), the core depth
(section top + position) and, only when the user gives an affine table, the composite depth
(``depth * scale + offset`` per core, see :func:`xrfhub.depth.composite_depth`). Alignment runs on one of
them, the core depth by default (``depth="depth_mm"``); samples must be given on the same scale.

Three ways to pair a sample with spectra (all on valid spectra of one tube voltage):

``"window"`` (default, MAX's pairing)
    every spectrum within ``window_mm`` of the sample's mid-depth, both edges included.
``"interval"``
    every spectrum inside the sample's interval ``[top, bottom)``; a sample without an
    interval is unmatched (reason given), never guessed.
``"nearest"``
    the spectrum nearest to the mid-depth if it lies within ``tolerance_mm``; on a tie between
    two depths the shallower wins.

Replicates and repeated runs at the same voltage share depths: all of them that fall in the
window (or interval, or at the nearest depth) are used, so the sample's spectrum is their mean.
Depths are compared with a tolerance of ``DEPTH_EPS_MM`` so that decimal depths such as
``12.3 - 5.0`` still hit a spectrum at exactly ``7.3``.

Nothing is refused: unmatched samples, samples of cores that were never scanned, overlapping
sample intervals and duplicated depths are reported per sample in an :class:`Alignment`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import ConfigError, StoreError

METHODS = ("window", "interval", "nearest")
STATUSES = ("matched", "unmatched", "no-scan")

#: depths closer than this (mm) count as equal: absorbs float rounding of decimal depths
DEPTH_EPS_MM = 1e-6
#: tube voltages closer than this (kV) count as equal
KV_ATOL = 1e-6


@dataclass(eq=False)
class Alignment:
    """Which spectra each lab sample was paired with, how, and what went wrong.

    Arrays have one entry per sample, in the order of the samples table. ``indices[i]`` holds
    row numbers into the spectra table (the spectrum index in the store), sorted ascending.
    ``status`` is one of ``STATUSES``; ``reason`` says why a sample is not matched ("" if it
    is). ``core`` (optional) keeps the sample's core id for reports; ``depth`` names the depth
    scale that was aligned on.
    """

    method: str
    window_mm: float
    tolerance_mm: float
    tube_kv: float | None
    indices: list[np.ndarray]
    counts: np.ndarray
    status: np.ndarray
    reason: np.ndarray
    overlapping: np.ndarray
    duplicate: np.ndarray
    core: np.ndarray | None = None
    depth: str = "depth_mm"

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def parameters(self) -> dict:
        """The settings of this alignment, as recorded in the store's provenance."""
        return {"method": self.method, "window_mm": float(self.window_mm),
                "tolerance_mm": float(self.tolerance_mm),
                "tube_kv": None if self.tube_kv is None else float(self.tube_kv),
                "depth": self.depth}

    def report(self) -> pd.DataFrame:
        """One row per sample: core, status, reason, number and indices of paired spectra."""
        n = len(self)
        core = self.core if self.core is not None else np.full(n, "", dtype=object)
        return pd.DataFrame({
            "sample": np.arange(n), "core": core, "status": self.status, "reason": self.reason,
            "n_spectra": self.counts, "indices": [tuple(ix.tolist()) for ix in self.indices],
            "overlapping": self.overlapping, "duplicate": self.duplicate})

    def summary(self) -> dict:
        """Counts per status, overlapping and duplicated samples, cores without a scan."""
        out = {"n_samples": len(self)} | {s: int(np.sum(self.status == s)) for s in STATUSES}
        out["overlapping"] = int(np.sum(self.overlapping))
        out["duplicates"] = int(np.sum(self.duplicate))
        cores = [] if self.core is None else self.core[self.status == "no-scan"]
        out["cores_without_scan"] = sorted({c for c in cores if isinstance(c, str) and c})
        return out | self.parameters

    def to_ragged(self) -> tuple[np.ndarray, np.ndarray]:
        """``(flat, offsets)``, int64: sample i used ``flat[offsets[i]:offsets[i + 1]]``."""
        offsets = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(self.counts, out=offsets[1:])
        flat = (np.concatenate(self.indices).astype(np.int64, copy=False)
                if len(self) else np.zeros(0, dtype=np.int64))
        return flat, offsets

    @classmethod
    def from_ragged(cls, flat, offsets, *, method: str, window_mm: float, tolerance_mm: float,
                    tube_kv: float | None, status, reason, overlapping=None, duplicate=None,
                    core=None, depth: str = "depth_mm") -> "Alignment":
        """Rebuild an alignment from the store's ragged arrays (see :meth:`to_ragged`)."""
        flat = np.asarray(flat, dtype=np.int64)
        offsets = np.asarray(offsets, dtype=np.int64)
        if (offsets.ndim != 1 or offsets.size == 0 or offsets[0] != 0
                or offsets[-1] != flat.size or np.any(np.diff(offsets) < 0)):
            raise StoreError(f"alignment offsets do not describe {flat.size} indices: they must "
                             "start at 0, never decrease and end at the number of indices")
        n = offsets.size - 1
        status, reason = np.asarray(status, dtype=str), np.asarray(reason, dtype=str)
        overlapping = np.zeros(n, bool) if overlapping is None else np.asarray(overlapping, bool)
        duplicate = np.zeros(n, bool) if duplicate is None else np.asarray(duplicate, bool)
        for name, arr in (("status", status), ("reason", reason),
                          ("overlapping", overlapping), ("duplicate", duplicate)):
            if arr.shape != (n,):
                raise StoreError(f"alignment {name} has shape {arr.shape}, expected ({n},)")
        return cls(method=method, window_mm=float(window_mm), tolerance_mm=float(tolerance_mm),
                   tube_kv=None if tube_kv is None else float(tube_kv),
                   indices=np.split(flat, offsets[1:-1]), counts=np.diff(offsets),
                   status=status, reason=reason, overlapping=overlapping, duplicate=duplicate,
                   core=None if core is None else np.asarray(core, dtype=object), depth=depth)


# ---------------------------------------------------------------------------------- matching

def align_samples(spectra: pd.DataFrame, samples: pd.DataFrame, *, method: str = "window",
                  window_mm: float = 5.0, tolerance_mm: float = 5.0,
                  tube_kv: float | None = 10.0, depth: str = "depth_mm") -> Alignment:
    """Pair each lab sample with spectra of its core by depth.

    Parameters
    ----------
    spectra : one row per spectrum, row position = spectrum index in the store. Columns
        ``core``, ``depth`` (default ``depth_mm``), ``tube_kv`` (needed unless every core has
        one voltage and ``tube_kv=None``; NaN = unknown), ``valid`` (optional, default True).
    samples : one row per lab sample: ``core`` (already the store's core ids), ``top_mm``,
        ``bottom_mm``, ``mid_mm`` (NaN where unknown; a missing mid-depth is taken from the
        interval's centre).
    method : ``"window"``, ``"interval"`` or ``"nearest"`` (see the module docstring).
    window_mm : half-width of the window (``"window"``), edges included.
    tolerance_mm : largest distance to the nearest spectrum (``"nearest"``).
    tube_kv : pair only with spectra of this voltage. ``None``: per core, the one voltage its
        valid spectra have; a core scanned at several voltages is then unmatched (say which).
    depth : the spectra column to align on (``"depth_mm"`` or ``"composite_depth_mm"``).
    """
    method, window_mm, tolerance_mm, tube_kv = _check_parameters(
        method, window_mm, tolerance_mm, tube_kv)
    sp_core, sp_depth, sp_kv, sp_valid = _spectra_columns(spectra, depth, tube_kv)
    sa_core, top, bottom, mid = _sample_columns(samples)
    codes, _ = pd.factorize(pd.Series(np.concatenate([sp_core, sa_core]), dtype=object))
    sp_code, sa_code = codes[:sp_core.size], codes[sp_core.size:]
    n_cores = int(codes.max()) + 1 if codes.size else 0

    usable = (sp_code >= 0) & sp_valid & np.isfinite(sp_depth)
    kvs_all = _voltages_by_core(sp_code, sp_kv, sp_code >= 0)
    chosen, ambiguous = _voltage_per_core(sp_code, sp_kv, usable, n_cores, tube_kv)
    ck = chosen[sp_code]
    # NaN (unknown voltage) equals itself: with tube_kv=None it is a voltage of its own
    at_kv = ((np.isclose(sp_kv, ck, rtol=0.0, atol=KV_ATOL) | (np.isnan(sp_kv) & np.isnan(ck)))
             & ~ambiguous[sp_code])
    candidate = usable & at_kv

    # candidates sorted by (core, depth): each core's spectra are one sorted slice
    cand = np.flatnonzero(candidate)
    order = cand[np.lexsort((sp_depth[cand], sp_code[cand]))]
    sorted_depth = sp_depth[order]
    bounds = np.searchsorted(sp_code[order], np.arange(n_cores + 1))

    n = sa_core.size
    lo, hi = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    gap = np.full(n, np.nan)  # "nearest": distance to the nearest candidate
    by_core = np.argsort(sa_code, kind="stable")
    groups = np.searchsorted(sa_code[by_core], np.arange(n_cores + 1))
    for c in range(n_cores):
        who = by_core[groups[c]:groups[c + 1]]
        start, stop = bounds[c], bounds[c + 1]
        if who.size == 0 or stop == start:
            continue
        d = sorted_depth[start:stop]
        if method == "window":
            a = np.searchsorted(d, mid[who] - window_mm - DEPTH_EPS_MM, "left")
            b = np.searchsorted(d, mid[who] + window_mm + DEPTH_EPS_MM, "right")
        elif method == "interval":
            a = np.searchsorted(d, top[who] - DEPTH_EPS_MM, "left")
            b = np.searchsorted(d, bottom[who] - DEPTH_EPS_MM, "left")
        else:
            a, b, gap[who] = _nearest(d, mid[who], tolerance_mm)
        ok = np.isfinite(mid[who]) if method != "interval" else (
            np.isfinite(top[who]) & np.isfinite(bottom[who]))
        b = np.where(ok, np.maximum(a, b), a)
        lo[who], hi[who] = a + start, b + start

    indices = [np.sort(order[a:b]) for a, b in zip(lo.tolist(), hi.tolist())]
    counts = (hi - lo).astype(np.int64)
    status = np.where(counts > 0, "matched", "unmatched").astype("<U9")
    reason = np.full(n, "", dtype=object)
    has_scan = np.zeros(n_cores + 1, bool)  # last slot: samples without a core id
    has_scan[np.unique(sp_code[sp_code >= 0])] = True
    n_usable = np.bincount(sp_code[usable], minlength=n_cores)
    for i in np.flatnonzero(counts == 0):
        c = int(sa_code[i])
        if not has_scan[c]:
            status[i] = "no-scan"
            reason[i] = "sample has no core id" if c < 0 else "core has no scanned spectra"
            continue
        reason[i] = _unmatched_reason(
            method, c, i, tube_kv, chosen, ambiguous, kvs_all, n_usable,
            top, bottom, mid, window_mm, tolerance_mm, gap, bounds)
    return Alignment(method=method, window_mm=window_mm, tolerance_mm=tolerance_mm,
                     tube_kv=tube_kv, indices=indices, counts=counts, status=status,
                     reason=reason.astype(str), overlapping=_overlapping(sa_code, top, bottom),
                     duplicate=_duplicated(sa_code, top, bottom, mid), core=sa_core,
                     depth=depth)


def _nearest(d: np.ndarray, q: np.ndarray, tolerance_mm: float):
    """Slice bounds of the spectra at the depth nearest to each query, and that distance."""
    j = np.searchsorted(d, q, "left")
    below = d[np.clip(j - 1, 0, d.size - 1)]
    above = d[np.clip(j, 0, d.size - 1)]
    gap_below = np.where(j > 0, q - below, np.inf)
    gap_above = np.where(j < d.size, above - q, np.inf)
    take_below = gap_below <= gap_above  # tie: the shallower depth
    nearest = np.where(take_below, below, above)
    gap = np.where(take_below, gap_below, gap_above)
    # all spectra at that depth (replicates, repeated runs)
    a = np.searchsorted(d, nearest - DEPTH_EPS_MM, "left")
    b = np.searchsorted(d, nearest + DEPTH_EPS_MM, "right")
    b = np.where(gap <= tolerance_mm + DEPTH_EPS_MM, b, a)
    return a, b, gap


def _unmatched_reason(method, c, i, tube_kv, chosen, ambiguous, kvs_all, n_usable,
                      top, bottom, mid, window_mm, tolerance_mm, gap, bounds) -> str:
    """Why sample ``i`` (of core code ``c``, which has spectra) got no spectrum."""
    present = kvs_all.get(c, [])
    if tube_kv is None:
        if ambiguous[c]:
            return (f"core has valid spectra at several tube voltages ({_kv_list(present)}); "
                    "choose one with tube_kv")
        if n_usable[c] == 0:
            return "no valid spectra with a depth"
    elif not any(abs(k - tube_kv) <= KV_ATOL for k in present):
        return f"no {_kv_text(tube_kv)} spectra (core has {_kv_list(present)})"
    kv = _kv_text(chosen[c])
    if bounds[c + 1] == bounds[c]:
        return f"all {kv} spectra are flagged invalid or have no depth"
    if method == "interval":
        t, b = top[i], bottom[i]
        if not (math.isfinite(t) and math.isfinite(b)):
            return "sample has no interval (top/bottom)"
        if b <= t:
            return f"empty interval [{t:g}, {b:g}) mm"
        return f"no valid {kv} spectrum in [{t:g}, {b:g}) mm"
    if not math.isfinite(mid[i]):
        return "sample has no depth"
    if method == "window":
        return f"no valid {kv} spectrum within ±{window_mm:g} mm of {mid[i]:g} mm"
    return (f"nearest valid {kv} spectrum is {gap[i]:.3g} mm from {mid[i]:g} mm "
            f"(tolerance {tolerance_mm:g} mm)")


def _overlapping(code: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """True for samples whose interval [top, bottom) overlaps another sample of the same core."""
    out = np.zeros(code.size, bool)
    has = (code >= 0) & np.isfinite(top) & np.isfinite(bottom) & (bottom > top)
    idx = np.flatnonzero(has)
    if idx.size < 2:
        return out
    idx = idx[np.lexsort((top[idx], code[idx]))]
    c, t, b = code[idx], top[idx], bottom[idx]
    for s, e in _runs(c):
        tt, bb = t[s:e], b[s:e]
        # sorted by top: k overlaps an earlier sample iff its top lies above the deepest bottom
        # so far, and a later one iff the next top lies above its bottom
        deepest_before = np.r_[-np.inf, np.maximum.accumulate(bb)[:-1]]
        hit = (tt < deepest_before - DEPTH_EPS_MM) | np.r_[tt[1:] < bb[:-1] - DEPTH_EPS_MM, False]
        out[idx[s:e]] = hit
    return out


def _duplicated(code, top, bottom, mid) -> np.ndarray:
    """True for samples whose core and depth (top, bottom, mid) occur more than once."""
    known = (code >= 0) & (np.isfinite(top) | np.isfinite(bottom) | np.isfinite(mid))
    key = pd.DataFrame({"c": code, "t": np.round(top, 6), "b": np.round(bottom, 6),
                        "m": np.round(mid, 6)})
    return key.duplicated(keep=False).to_numpy() & known


def _runs(sorted_codes: np.ndarray):
    edges = (np.flatnonzero(np.diff(sorted_codes)) + 1).tolist()
    return zip([0] + edges, edges + [sorted_codes.size])


def _voltage_per_core(code, kv, usable, n_cores: int, tube_kv):
    """Voltage each core is paired at and whether it is ambiguous (last slot: no core id)."""
    chosen = np.full(n_cores + 1, np.nan if tube_kv is None else tube_kv)
    ambiguous = np.zeros(n_cores + 1, bool)
    if tube_kv is None:
        for c, kvs in _voltages_by_core(code, kv, usable).items():
            chosen[c] = kvs[0] if len(kvs) == 1 else np.nan
            ambiguous[c] = len(kvs) > 1
    return chosen, ambiguous


def _voltages_by_core(code: np.ndarray, kv: np.ndarray, mask: np.ndarray) -> dict[int, list]:
    pairs = pd.DataFrame({"c": code[mask], "k": np.round(kv[mask], 6)}).drop_duplicates()
    out: dict[int, list] = {}
    for c, k in zip(pairs["c"].tolist(), pairs["k"].tolist()):
        out.setdefault(int(c), []).append(float(k))
    return {c: sorted(v, key=lambda x: (math.isnan(x), x)) for c, v in out.items()}


def _kv_text(kv: float) -> str:
    return "unknown-voltage" if math.isnan(kv) else f"{kv:g} kV"


def _kv_list(kvs: list) -> str:
    return ", ".join("unknown" if math.isnan(k) else f"{k:g}" for k in kvs) + " kV"


def _check_parameters(method, window_mm, tolerance_mm, tube_kv):
    if method not in METHODS:
        raise ConfigError(f"unknown alignment method {method!r}; "
                          f"choose one of {', '.join(METHODS)}")
    checks = [("window_mm", window_mm, "a finite distance >= 0 mm", 0.0),
              ("tolerance_mm", tolerance_mm, "a finite distance >= 0 mm", 0.0)]
    if tube_kv is not None:
        checks.append(("tube_kv", tube_kv, "a positive voltage in kV or None", 1e-9))
    for name, value, what, least in checks:
        try:
            ok = math.isfinite(float(value)) and float(value) >= least
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"{name} must be {what}, got {value!r}")
    return (method, float(window_mm), float(tolerance_mm),
            None if tube_kv is None else float(tube_kv))


def _spectra_columns(spectra: pd.DataFrame, depth: str, tube_kv):
    need = ["core", depth] + (["tube_kv"] if tube_kv is not None else [])
    missing = [c for c in need if c not in spectra.columns]
    if missing:
        raise ConfigError(f"the spectra table lacks column(s) {', '.join(missing)}; "
                          f"alignment needs {', '.join(need)} (and optionally valid)")
    n = len(spectra)
    core = spectra["core"].to_numpy(dtype=object)
    dep = pd.to_numeric(spectra[depth], errors="coerce").to_numpy(dtype=np.float64)
    kv = (pd.to_numeric(spectra["tube_kv"], errors="coerce").to_numpy(dtype=np.float64)
          if "tube_kv" in spectra.columns else np.full(n, np.nan))
    valid = (spectra["valid"].fillna(False).to_numpy(dtype=bool)
             if "valid" in spectra.columns else np.ones(n, bool))
    return core, dep, kv, valid


def _sample_columns(samples: pd.DataFrame):
    if "core" not in samples.columns:
        raise ConfigError("the samples table lacks column core; alignment needs core and "
                          "mid_mm or top_mm/bottom_mm")
    n = len(samples)

    def col(name):
        if name not in samples.columns:
            return np.full(n, np.nan)
        return pd.to_numeric(samples[name], errors="coerce").to_numpy(dtype=np.float64)

    top, bottom, mid = col("top_mm"), col("bottom_mm"), col("mid_mm")
    centre = (top + bottom) / 2.0
    mid = np.where(np.isfinite(mid), mid, centre)
    return samples["core"].to_numpy(dtype=object), top, bottom, mid


# ---------------------------------------------------------------------------- mean spectra

def mean_spectra(counts, alignment: Alignment, *, chunk_rows: int = 1024) -> np.ndarray:
    """Mean of the paired spectra of every sample: float32 ``(n_samples, channels)``.

    ``counts`` is ``(n_spectra, channels)``: a numpy array, a dask array (e.g. the hub's
    ``counts`` opened with xarray), an xarray DataArray or a chunked array such as
    ``zarr.Array``. Only row blocks holding a needed spectrum are read, each exactly once,
    block after block (dask and zarr along their own row chunks, numpy by ``chunk_rows``), so
    the whole array never sits in memory. Unmatched samples get a row of NaN.
    """
    if hasattr(counts, "dims") and hasattr(counts, "data"):  # xarray DataArray
        counts = counts.data
    shape = tuple(getattr(counts, "shape", ()))
    if len(shape) != 2:
        raise ConfigError(f"counts must be 2-D (spectrum, channel), got shape {shape}")
    if int(chunk_rows) < 1:
        raise ConfigError(f"chunk_rows must be >= 1, got {chunk_rows!r}")
    n_rows, n_ch = shape
    flat, offsets = alignment.to_ragged()
    n = len(alignment)
    if flat.size and (flat.min() < 0 or flat.max() >= n_rows):
        raise ConfigError(f"the alignment uses spectrum {int(flat.max())} but counts holds "
                          f"{n_rows} spectra: pass the counts the alignment was made against")
    sums = np.zeros((n, n_ch), dtype=np.float64)
    owner = np.repeat(np.arange(n), np.diff(offsets))
    by_row = np.lexsort((owner, flat))
    rows, owner = flat[by_row], owner[by_row]
    edges = _row_blocks(counts, n_rows, int(chunk_rows))
    block_of = np.searchsorted(edges, rows, "right") - 1
    for blk, s, e in _block_runs(block_of):
        r0, r1 = int(edges[blk]), int(edges[blk + 1])
        block = _read_rows(counts, r0, r1)
        local, who = rows[s:e] - r0, owner[s:e]
        o = np.argsort(who, kind="stable")
        local, who = local[o], who[o]
        first = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
        sums[who[first]] += np.add.reduceat(block[local].astype(np.float64), first, axis=0)
    number = np.diff(offsets).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (sums / number[:, None]).astype(np.float32)
    out[number == 0] = np.nan
    return out


def _row_blocks(arr, n_rows: int, chunk_rows: int) -> np.ndarray:
    """Row boundaries ``[0, ..., n_rows]`` of the blocks to read ``arr`` by."""
    chunks = getattr(arr, "chunks", None)
    if isinstance(chunks, tuple) and chunks and isinstance(chunks[0], tuple):  # dask
        return np.r_[0, np.cumsum(chunks[0])].astype(np.int64)
    if isinstance(chunks, tuple) and chunks and isinstance(chunks[0], (int, np.integer)):
        step = int(chunks[0])  # zarr / h5py: regular chunks
    else:
        step = chunk_rows
    return np.r_[np.arange(0, n_rows, max(step, 1)), n_rows].astype(np.int64)


def _block_runs(block_of: np.ndarray):
    """(block, start, end) for each run of equal block numbers in a sorted array."""
    if block_of.size == 0:
        return []
    return ((block_of[s], s, e) for s, e in _runs(block_of))


def _read_rows(arr, r0: int, r1: int) -> np.ndarray:
    part = arr[r0:r1]
    if hasattr(part, "compute"):
        part = part.compute()
    return np.asarray(part)


# --------------------------------------------------------------------------- composite depth
