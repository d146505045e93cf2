"""Drift correction across instrument states (tube, head, date), fitted where one material was scanned twice.

Core scanners change: a tube is replaced (another anode, or the same anode aged), a detector head
is swapped, the instrument is serviced. Intensities of one element then shift by a factor that
log-ratios do not cancel (each line shifts by its own factor, through the tube spectrum and the
detector's efficiency). Where the same sediment was measured in two states (a section scanned
again after the change, a standard run in both) the factor can be measured per line:

1. points are grouped into **instrument states** by what the files say: the columns of
   ``STATE_COLUMNS`` present in the store (instrument, detector/head, tube anode, filter, voltage),
   and the user's ``date_breaks`` (dates of a tube or head change: the files rarely say it);
2. points of the same core whose depths agree within ``tolerance_mm`` but lie in different states
   are pairs of the same material; per line, the median of ln(I_state / I_reference) over those
   pairs is the state's correction (medians: robust to a crack or a gap in one of the scans);
3. the reference is the state with the most points, or the user's; a state that shares no
   material with the reference is left uncorrected and the record says so.

Applied at load time (training pairs and prediction alike) when the plugin's ``drift=true``, and
recorded in the run (``drift.json`` and ``run.json``).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from xrfhub.errors import ConfigError

#: Point coordinates that name an instrument state, where the store has them.
STATE_COLUMNS = ("instrument", "detector", "tube_anode", "filter", "tube_kv")
DRIFT_FILE = "drift.json"


def instrument_states(points: pd.DataFrame, date_breaks=()) -> tuple[np.ndarray, list[str]]:
    """A state label per point and the columns it was built from."""
    used = [c for c in STATE_COLUMNS if c in points.columns]
    labels = pd.Series([""] * len(points), index=points.index, dtype=object)
    for c in used:
        labels = labels + f"{c}=" + points[c].astype(str) + ";"
    if date_breaks:
        if "date" not in points.columns:
            raise ConfigError("date_breaks given but the store's points carry no date")
        dates = pd.to_datetime(points["date"], errors="coerce", utc=True)
        try:
            breaks = sorted(pd.Timestamp(b, tz="UTC") for b in date_breaks)
        except ValueError as exc:
            raise ConfigError(f"config key 'date_breaks': expected ISO dates (2019-03-01), got {date_breaks!r} "
                              f"({exc})") from None
        period = np.searchsorted(np.array([b.value for b in breaks]), dates.map(lambda d: d.value if pd.notna(d)
                                                                              else -1).to_numpy(), side="right")
        period = np.where(dates.notna().to_numpy(), period, -1)
        labels = labels + pd.Series([f"period={p}" if p >= 0 else "period=undated" for p in period], index=points.index)
        used.append("date")
    return labels.str.rstrip(";").to_numpy(dtype=object), used


def fit_correction(areas, core, depth, states, *, reference: str = "", tolerance_mm: float = 0.5,
                   lines=()) -> dict:
    """Per state and line, ln(I_state / I_reference) from points of the same material in both states."""
    areas = np.asarray(areas, dtype=np.float64)
    core = np.asarray(core).astype(str)
    depth = np.asarray(depth, dtype=np.float64)
    states = np.asarray(states).astype(str)
    names, counts = np.unique(states, return_counts=True)
    ref = reference or str(names[np.argmax(counts)])
    if ref not in names:
        raise ConfigError(f"drift reference state {ref!r} is not among the store's states: {', '.join(names)}")
    logs = np.log(np.where(np.isfinite(areas) & (areas > 0), areas, np.nan))
    factors, pairs, uncorrected = {}, {}, []
    ref_rows = np.flatnonzero(states == ref)
    for state in names:
        if state == ref:
            continue
        diffs = []
        for c in np.unique(core[states == state]):
            mine = np.flatnonzero((states == state) & (core == c))
            theirs = ref_rows[core[ref_rows] == c]
            if not len(theirs):
                continue
            order = theirs[np.argsort(depth[theirs])]
            pos = np.clip(np.searchsorted(depth[order], depth[mine]), 1, max(len(order) - 1, 1))
            left, right = order[np.maximum(pos - 1, 0)], order[np.minimum(pos, len(order) - 1)]
            nearest = np.where(np.abs(depth[left] - depth[mine]) <= np.abs(depth[right] - depth[mine]), left, right)
            close = np.abs(depth[nearest] - depth[mine]) <= tolerance_mm
            diffs.append(logs[mine[close]] - logs[nearest[close]])
        d = np.concatenate(diffs) if diffs else np.zeros((0, areas.shape[1]))
        pairs[state] = int(len(d))
        if not len(d):
            uncorrected.append(state)
            continue
        with warnings.catch_warnings():  # a line never detected in either state has no factor: left at 1
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(d, axis=0)
        factors[state] = np.where(np.isfinite(med), med, 0.0).tolist()
    return {"reference": ref, "tolerance_mm": float(tolerance_mm), "lines": list(lines),
            "points_per_state": {str(n): int(k) for n, k in zip(names, counts)},
            "pairs_per_state": pairs, "log_factors": factors, "uncorrected_states": uncorrected,
            "method": "per line, median ln(I_state / I_reference) over points of one core within tolerance_mm "
                      "of each other in both states"}


def apply_correction(areas, states, correction: dict) -> np.ndarray:
    """Intensities divided by their state's factor (states without one are left as they are)."""
    out = np.array(areas, dtype=np.float64, copy=True)
    states = np.asarray(states).astype(str)
    for state, logs in correction["log_factors"].items():
        rows = states == state
        if rows.any():
            out[rows] = out[rows] / np.exp(np.asarray(logs, dtype=np.float64))[None, :]
    return out


def save(correction: dict, folder) -> Path:
    path = Path(folder) / DRIFT_FILE
    path.write_text(json.dumps(correction, indent=1))
    return path


def load(folder) -> dict:
    return json.loads((Path(folder) / DRIFT_FILE).read_text())
