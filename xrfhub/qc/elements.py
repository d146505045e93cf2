"""Quality checks of element points (vendor peak-fit tables: bAXIL, ITRAX Results, Avaatech workbooks).

The same questions as for spectra, asked of what the table holds: throughput from the vendor's
total count rate (bAXIL ``Throughput``, ITRAX ``cps``) or the summed areas over the live time;
dead time from ITRAX's ``Dt`` or real and live time; Ar K-alpha's share of the summed areas;
the tube's coherent/incoherent scatter ratio (``Rh-La-coh``/``Rh-La-inc``, ``Mo-coh``/``Mo-inc``);
principal elements; replicates; and the vendor's own verdicts: ITRAX validity (0 is bad), the
fit's MSE (ITRAX) and each line's chi-square (bAXIL) against the run's median.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .params import QCParams
from .verdicts import (BAD, SUSPECT, Verdicts, groups_in_order, high_excess, identity_mismatch,
                       judge_throughput, log_anomalies, replicate_sets, replicate_spread)

GROUP_KEYS = ("source", "core", "run", "tube_kv", "replicate")
IDENTITY_COLUMNS = ("tube_ma", "filter")
#: Lines that are not sediment elements: scatter peaks, sum peaks, Ar, ITRAX's S1-S3 slots.
_NOT_ELEMENT = ("-coh", "-inc", "+", "Ar-")


def _is_element(line: str) -> bool:
    return "-" in line and not any(tag in line for tag in _NOT_ELEMENT)


def check(ds, params: QCParams) -> tuple[Verdicts, pd.DataFrame]:
    """Judge every point of an ``elements`` dataset (numpy-backed); returns verdicts and series."""
    points = pd.DataFrame({name: ds[name].values for name in ds.coords if ds[name].dims == ("point",)})
    n = len(points)
    v = Verdicts(n)
    lines = [str(x) for x in ds["line"].values]
    area = np.asarray(ds["area"].values, dtype=float) if "area" in ds else np.full((n, len(lines)), np.nan)
    elem_cols = [i for i, ln in enumerate(lines) if _is_element(ln)]
    summed = np.nansum(np.where(area[:, elem_cols] > 0, area[:, elem_cols], 0.0), axis=1) if elem_cols else np.zeros(n)
    series = {"throughput_cps": _throughput_cps(points, summed), "throughput_ratio": np.full(n, np.nan),
              "scatter_ratio": _scatter_ratio(lines, area),
              "ar_fraction": _line(lines, area, "Ar-Ka") / np.where(summed > 0, summed, np.nan)}
    order = points["depth_mm"].to_numpy(dtype=float)
    keys = [k for k in GROUP_KEYS if k in points]
    groups = groups_in_order(points[keys], order)

    valid = points["valid"].to_numpy().astype(bool) if "valid" in points else np.ones(n, bool)
    if "validity" in points or "valid" in points:
        v.judge(np.ones(n, bool))
        v.flag(~valid, BAD, "vendor_invalid")
    cps = series["throughput_cps"]
    v.lack(~np.isfinite(cps), "throughput")
    dead = _dead_fraction(points)
    v.lack(~np.isfinite(dead), "dead_time")
    for rows in groups:
        judge_throughput(v, params, rows, cps, series)
        d = dead[rows]
        ok = np.isfinite(d)
        if ok.any():
            v.judge(rows[ok])
            v.flag(rows[ok & (d - np.nanmedian(d) > params.dead_time_excess)], SUSPECT, "dead_time")
            v.flag(rows[ok & (d >= params.dead_time_max)], BAD, "dead_time")
        live = rows[valid[rows]]  # the vendor's invalid points do not set the run's levels
        if live.size < 3:
            continue
        bad, judged = log_anomalies(series["scatter_ratio"][live], params.window, params.anomaly_k,
                                    params.scatter_min_rel)
        v.judge(live[judged])
        v.flag(live[bad], SUSPECT, "scatter_ratio")
        bad, judged = high_excess(series["ar_fraction"][live], params.window, params.anomaly_k, params.ar_min_rel,
                                  params.ar_min_fraction)
        v.judge(live[judged])
        v.flag(live[bad], SUSPECT, "air_gap")
        principal = _principal(area, elem_cols, live, params.principal_elements)
        for col in principal:
            bad, judged = log_anomalies(area[live, col] / np.maximum(summed[live], 1e-12), params.window,
                                        params.anomaly_k, params.element_min_rel)
            v.judge(live[judged])
            v.flag(live[bad], SUSPECT, "element_anomaly")
        _fit_quality(v, params, ds, points, lines, live, principal)
    v.flag(identity_mismatch(points, groups_in_order(points[[k for k in ("source", "core", "run", "tube_kv")
                                                             if k in points]], order), IDENTITY_COLUMNS),
           BAD, "identity")
    _replicates(v, params, points, cps, area, summed, elem_cols)
    return v, pd.DataFrame(series)


def _line(lines, area, name) -> np.ndarray:
    return area[:, lines.index(name)] if name in lines else np.full(area.shape[0], np.nan)


def _throughput_cps(points: pd.DataFrame, summed: np.ndarray) -> np.ndarray:
    for col in ("throughput_cps", "cps", "total_cps"):
        if col in points and np.issubdtype(points[col].dtype, np.number):
            return points[col].to_numpy(dtype=float)
    if "live_time_s" in points:
        live = points["live_time_s"].to_numpy(dtype=float)
        return np.where(live > 0, summed / np.where(live > 0, live, 1.0), np.nan)
    return np.full(len(points), np.nan)


def _dead_fraction(points: pd.DataFrame) -> np.ndarray:
    if "dead_time" in points and np.issubdtype(points["dead_time"].dtype, np.number):
        return points["dead_time"].to_numpy(dtype=float)
    if "live_time_s" in points and "real_time_s" in points:
        live = points["live_time_s"].to_numpy(dtype=float)
        real = points["real_time_s"].to_numpy(dtype=float)
        return np.where(real > 0, 1.0 - live / np.where(real > 0, real, 1.0), np.nan)
    return np.full(len(points), np.nan)


def _scatter_ratio(lines, area) -> np.ndarray:
    """Coherent / incoherent scatter of the first tube line that has both peaks."""
    for ln in lines:
        if ln.endswith("-coh") and ln[:-4] + "-inc" in lines:
            coh, inc = _line(lines, area, ln), _line(lines, area, ln[:-4] + "-inc")
            return np.where(inc > 0, coh / np.where(inc > 0, inc, 1.0), np.nan)
    return np.full(area.shape[0], np.nan)


def _principal(area, elem_cols, rows, k) -> list[int]:
    if not elem_cols or rows.size == 0:
        return []
    sub = area[np.ix_(rows, elem_cols)]
    seen = np.isfinite(sub).any(axis=0)  # lines a table never measured have no median
    med = np.full(len(elem_cols), np.nan)
    med[seen] = np.nanmedian(sub[:, seen], axis=0)
    ranked = [elem_cols[i] for i in np.argsort(-np.nan_to_num(med, nan=-np.inf)) if np.isfinite(med[i]) and med[i] > 0]
    return ranked[:k]


def _fit_quality(v, p: QCParams, ds, points, lines, rows, principal) -> None:
    if "chi2" in ds:  # bAXIL: each line's fit chi-square against the run's median for that line
        # (chi-square grows with a peak's counts, so lines are compared with themselves, not a constant)
        chi2 = np.asarray(ds["chi2"].values, dtype=float)[rows]
        sub = chi2  # every line: a bad fit shows in the line it misfits, often a minor one
        med = np.nanmedian(sub, axis=0)
        ratio = sub / np.where(med > 0, med, np.nan)
        worst = np.nanmax(np.where(np.isfinite(ratio), ratio, -np.inf), axis=1)
        ok = np.isfinite(worst)
        v.lack(rows[~ok], "chi2")
        v.judge(rows[ok])
        v.flag(rows[ok & (worst > p.chi2_ratio)], SUSPECT, "fit_chi2")
    if "mse" in points and np.issubdtype(points["mse"].dtype, np.number):  # ITRAX
        mse = points["mse"].to_numpy(dtype=float)[rows]
        ok = np.isfinite(mse)
        v.lack(rows[~ok], "mse")
        v.judge(rows[ok])
        med = np.nanmedian(mse) if ok.any() else np.nan
        v.flag(rows[ok & (mse > p.mse_ratio * med)], SUSPECT, "fit_mse")


def _replicates(v, p: QCParams, points, cps, area, summed, elem_cols) -> None:
    need = {"core", "tube_kv", "depth_mm"}
    if not need <= set(points) or "replicate" not in points:
        return
    rep_id = points.get("run", pd.Series([""] * len(points))).astype(str) + "#" + points["replicate"].astype(str)
    sets = replicate_sets(points[["core", "tube_kv"]], points["depth_mm"].to_numpy(dtype=float), rep_id.to_numpy())
    if not sets:
        return
    worst = np.nan_to_num(replicate_spread(cps, sets))
    all_rows = np.concatenate(sets)
    for col in _principal(area, elem_cols, all_rows, 3):
        frac = area[:, col] / np.where(summed > 0, summed, np.nan)
        worst = np.maximum(worst, np.nan_to_num(replicate_spread(frac, sets)))
    v.flag(worst > p.replicate_rel, SUSPECT, "replicate")
