"""Per-point verdicts: what every check said, combined into one flag and a list of reason codes.

A check marks a point *ok* (nothing said), *suspect* or *bad* with a reason code, or says its
inputs are *missing* for that point (a live time, a real time, enough counts ...). The flag is
the worst level any check gave; a point no check could judge, or one with a missing input and
no fault found, is ``indeterminate``: never ``ok``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

FLAGS = ("ok", "suspect", "bad", "indeterminate")
OK, SUSPECT, BAD = 0, 1, 2
#: Separator of the reason codes of one point in ``qc_reasons``.
SEP = ","

#: Reason codes and what they mean (README and ``xrfhub info`` use the same words).
REASONS = {  # in order of precedence: a point's first reason is the most basic fault found
    "tube_off": "throughput near zero: no beam, or nothing under the detector",
    "vendor_invalid": "the vendor software marked the point invalid (ITRAX validity 0)",
    "throughput_low": "counts per live second well below the run's rolling median",
    "throughput_high": "counts per live second well above the run's rolling median",
    "dead_time": "dead time (real - live) / real far above the run's, or near 1",
    "anode": "the tube's lines differ from the run's: another anode or no tube line",
    "identity": "tube current, filter, detector or instrument differ from the rest of the run",
    "calibration_drift": "a known peak sits away from its energy on the stated calibration",
    "air_gap": "Ar K-alpha far above its rolling level: air between foil and sediment",
    "fit_chi2": "vendor peak fit chi-square far above the run's (bAXIL)",
    "fit_mse": "vendor fit MSE far above the run's (ITRAX)",
    "throughput_drift": "the run's rolling median throughput drifted from the run median",
    "scatter_ratio": "tube scatter ratio far from its rolling median",
    "element_anomaly": "a principal element departs from its rolling median",
    "replicate": "replicate scans of the same depth differ by more than the threshold",
    "not_checked": "the point was added after the last `xrfhub qc`",
}
_RANK = {code: i for i, code in enumerate(REASONS)}


class Verdicts:
    """Levels, reasons and missing inputs of ``n`` points, filled check by check."""

    def __init__(self, n: int):
        self.n = n
        self.level = np.zeros(n, dtype=np.int8)
        self.judged = np.zeros(n, dtype=bool)
        self.missing = np.zeros(n, dtype=bool)
        self.reasons: list[list[str]] = [[] for _ in range(n)]

    def _mask(self, which) -> np.ndarray:
        """A boolean mask over the points from a mask or from row numbers."""
        arr = np.asarray(which)
        if arr.dtype == bool and arr.shape == (self.n,):
            return arr
        mask = np.zeros(self.n, dtype=bool)
        mask[arr.astype(np.int64)] = True
        return mask

    def judge(self, which) -> None:
        """These points (mask or row numbers) were judged by a check: its inputs were there."""
        self.judged |= self._mask(which)

    def flag(self, which, level: int, code: str) -> None:
        mask = self._mask(which)
        for i in np.flatnonzero(mask):
            if code not in self.reasons[i]:
                self.reasons[i].append(code)
        self.level[mask] = np.maximum(self.level[mask], level)
        self.judged |= mask

    def lack(self, which, what: str) -> None:
        """An input this check needs is missing for these points: ``missing_<what>``."""
        mask = self._mask(which)
        self.missing |= mask
        code = f"missing_{what}"
        for i in np.flatnonzero(mask):
            if code not in self.reasons[i]:
                self.reasons[i].append(code)

    def flags(self) -> np.ndarray:
        out = np.full(self.n, "ok", dtype=object)
        out[self.missing | ~self.judged] = "indeterminate"
        out[self.level == SUSPECT] = "suspect"
        out[self.level == BAD] = "bad"
        return out

    def reason_strings(self) -> np.ndarray:
        rank = lambda code: _RANK.get(code, len(_RANK))  # noqa: E731 - missing_* inputs come last
        return np.array([SEP.join(sorted(r, key=rank)) for r in self.reasons], dtype=object)


# ---------------------------------------------------------------------------- rolling statistics


def groups_in_order(keys: pd.DataFrame, order: np.ndarray) -> list[np.ndarray]:
    """Row numbers of each group (rows with equal ``keys``), each sorted by ``order``."""
    if len(keys) == 0:
        return []
    codes = keys.astype(str).groupby(list(keys.columns), sort=False).ngroup().to_numpy()
    by_code = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[by_code], np.arange(codes.max() + 2))
    out = []
    for g in range(codes.max() + 1):
        rows = by_code[bounds[g]:bounds[g + 1]]
        out.append(rows[np.argsort(order[rows], kind="stable")])
    return out


def rolling_median(x: np.ndarray, window: int) -> np.ndarray:
    """Centred rolling median ignoring NaN (the ends use the points there are)."""
    return pd.Series(x, dtype=float).rolling(window, center=True, min_periods=1).median().to_numpy()


def robust_reference(x: np.ndarray, window: int, exclude) -> np.ndarray:
    """Rolling median of ``x`` over points not in ``exclude``; gaps filled from neighbours.

    A block of faulty points longer than half the window would otherwise become its own
    reference: they are left out first, so the reference is what the run measured around them.
    """
    clean = np.where(np.asarray(exclude, dtype=bool), np.nan, np.asarray(x, dtype=float))
    ref = rolling_median(clean, window)
    s = pd.Series(ref)
    return s.interpolate(limit_direction="both").to_numpy()


def log_anomalies(x: np.ndarray, window: int, k: float, min_rel: float) -> tuple[np.ndarray, np.ndarray]:
    """Points whose log value departs from the rolling median by > k robust spreads and > log(1+min_rel).

    Returns (anomalous, judged): non-positive or non-finite values are not judged.
    """
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x) & (x > 0)
    if ok.sum() < 3:
        return np.zeros(x.size, bool), np.zeros(x.size, bool)
    lx = np.where(ok, np.log(np.where(ok, x, 1.0)), np.nan)
    dev = lx - rolling_median(lx, window)
    spread = 1.4826 * np.nanmedian(np.abs(dev[ok]))
    spread = max(spread, 1e-3)
    bad = ok & (np.abs(dev) > k * spread) & (np.abs(dev) > np.log1p(min_rel))
    return bad, ok


def high_excess(x: np.ndarray, window: int, k: float, min_rel: float, min_abs: float) -> tuple[np.ndarray, np.ndarray]:
    """One-sided: x above its rolling median by > k spreads, > min_rel x the level and > min_abs."""
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x)
    if ok.sum() < 3:
        return np.zeros(x.size, bool), np.zeros(x.size, bool)
    ref = rolling_median(np.where(ok, x, np.nan), window)
    excess = x - ref
    spread = max(1.4826 * np.nanmedian(np.abs(excess[ok])), 1e-12)
    bad = ok & (excess > k * spread) & (excess > min_rel * np.maximum(ref, 0.0)) & (excess > min_abs)
    return bad, ok


def replicate_sets(keys: pd.DataFrame, depth: np.ndarray, replicate_id: np.ndarray) -> list[np.ndarray]:
    """Sets of rows measured at one depth (same ``keys``) by two or more replicates or runs."""
    d = np.round(np.asarray(depth, dtype=float), 2)
    frame = keys.astype(str).assign(_d=d, _rep=np.asarray(replicate_id).astype(str))
    out = []
    for _, idx in frame.groupby([*keys.columns, "_d"], sort=False).indices.items():
        if len(idx) > 1 and frame["_rep"].iloc[idx].nunique() > 1:
            out.append(np.asarray(idx))
    return out


def replicate_spread(values: np.ndarray, sets: list[np.ndarray]) -> np.ndarray:
    """(max - min) / mean of ``values`` within each replicate set, per row (NaN outside sets)."""
    out = np.full(len(values), np.nan)
    for idx in sets:
        v = np.asarray(values, dtype=float)[idx]
        v = v[np.isfinite(v)]
        if v.size > 1 and np.mean(v) > 0:
            out[idx] = (v.max() - v.min()) / np.mean(v)
    return out


def identity_mismatch(table: pd.DataFrame, groups: list[np.ndarray], columns) -> np.ndarray:
    """Rows whose value in any of ``columns`` differs from the most common one of their group."""
    bad = np.zeros(len(table), dtype=bool)
    for col in columns:
        if col not in table:
            continue
        values = table[col].to_numpy()
        text = np.array(["" if (v is None or (isinstance(v, float) and np.isnan(v))) else
                         (f"{v:.6g}" if isinstance(v, (float, np.floating)) else str(v)) for v in values],
                        dtype=object)
        for rows in groups:
            known = text[rows] != ""
            if known.sum() < 2:
                continue
            mode = pd.Series(text[rows][known]).mode().iloc[0]
            bad[rows[known & (text[rows] != mode)]] = True
    return bad


def rare_values(values: np.ndarray, groups: list[np.ndarray], *, share: float = 0.05, at_most: int = 2,
                min_rows: int = 10) -> np.ndarray:
    """Rows whose value is a stray in its group: held by <= ``at_most`` rows and <= ``share`` of
    a group of at least ``min_rows`` (a 30 kV spectrum inside a 10 kV run)."""
    bad = np.zeros(len(values), dtype=bool)
    text = np.array([f"{v:.6g}" if isinstance(v, (float, np.floating)) else str(v) for v in values], dtype=object)
    for rows in groups:
        if rows.size < min_rows:
            continue
        uniq, inverse, counts = np.unique(text[rows], return_inverse=True, return_counts=True)
        if uniq.size < 2:
            continue
        stray = (counts <= at_most) & (counts <= share * rows.size)
        bad[rows[stray[inverse]]] = True
    return bad


def judge_throughput(v: Verdicts, p, rows: np.ndarray, cps: np.ndarray, series: dict) -> np.ndarray:
    """Counts per live second of one run against its rolling median (spectra and element
    points alike): tube off, low or high throughput, and drift of the median itself. Fills
    ``series["throughput_ratio"]`` and returns the rows judged tube-off (later checks skip them)."""
    x = cps[rows]
    ok = np.isfinite(x)
    if not ok.any():
        return rows[:0]
    run_median = np.nanmedian(x)
    if not run_median > 0:
        v.flag(rows[ok], BAD, "tube_off")
        return rows[ok]
    rough = x / run_median
    ref = robust_reference(x, p.window, ~ok | (rough < p.throughput_bad_ratio) | (rough > p.throughput_high_ratio))
    ratio = x / ref
    series["throughput_ratio"][rows] = ratio
    v.judge(rows[ok])
    off = ok & (ratio < p.tube_off_ratio)
    v.flag(rows[off], BAD, "tube_off")
    v.flag(rows[ok & ~off & (ratio < p.throughput_bad_ratio)], BAD, "throughput_low")
    v.flag(rows[ok & (ratio >= p.throughput_bad_ratio) & (ratio < p.throughput_suspect_ratio)], SUSPECT,
           "throughput_low")
    v.flag(rows[ok & (ratio > p.throughput_high_ratio)], SUSPECT, "throughput_high")
    v.flag(rows[ok & (np.abs(ref / run_median - 1.0) > p.drift_ratio)], SUSPECT, "throughput_drift")
    return rows[off]
