"""Quality checks of raw spectra: features measured from the counts, then judged per run group.

Everything is measured in energy windows on each spectrum's own calibration (gain, offset), as
net peak areas: counts in a window of +-0.6 FWHM around the line minus the continuum estimated
from two side windows of the same width. Line energies and edges come from xraylib. Detector
resolution follows Fano statistics plus electronic noise (an SDD, ~150 eV at Mn K-alpha).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

from .params import QCParams
from .verdicts import (BAD, SUSPECT, Verdicts, groups_in_order, high_excess, identity_mismatch,
                       judge_throughput, log_anomalies, rare_values, replicate_sets, replicate_spread, robust_reference)

#: Tube anodes core scanners use (Avaatech Rh, ITRAX Mo or Cr, others Ag, W, Cu).
ANODES = ("Cr", "Cu", "Mo", "Rh", "Ag", "W")
#: Lines whose windows may hold a principal element (K-alpha; excited when the edge is below kV).
ELEMENT_LINES = ("Al", "Si", "P", "S", "Cl", "K", "Ca", "Ti", "Mn", "Fe", "Cu", "Zn", "Br", "Rb", "Sr", "Zr")
#: Peaks whose positions check the energy scale: the strongest of these per spectrum.
CALIBRATION_PEAKS = ("Fe", "Ca")
#: Identity columns that must agree within a run group (the voltage defines the group).
IDENTITY_COLUMNS = ("tube_ma", "filter", "detector", "instrument")
GROUP_KEYS = ("core", "run", "tube_kv", "replicate")
ROWS_PER_PASS = 2048
#: Ag L-alpha (2.984 keV) cannot be told from Ar K-alpha (2.957 keV): an air gap, not a tube swap
AR_CONFUSION_KEV = 0.08
MIN_REPLICATE_COUNTS = 2000.0  # net counts: below, Poisson noise alone is > 2 %  # spectra measured at once (bounds memory: a cumulative sum per row)


def fwhm_kev(energy) -> np.ndarray:
    """Silicon drift detector resolution: 100 eV electronic noise and Fano 0.115 in quadrature."""
    e = np.maximum(np.asarray(energy, dtype=float), 0.0)
    return np.sqrt(0.10 ** 2 + 2.3548 ** 2 * 0.115 * 0.00365 * e)


@lru_cache(maxsize=None)
def k_alpha(symbol: str) -> tuple[float, float]:
    """(rate-weighted K-alpha energy, K edge) in keV, from xraylib."""
    import xraylib as xrl

    z = xrl.SymbolToAtomicNumber(symbol)
    e1, e2 = xrl.LineEnergy(z, xrl.KL3_LINE), xrl.LineEnergy(z, xrl.KL2_LINE)
    r1, r2 = xrl.RadRate(z, xrl.KL3_LINE), xrl.RadRate(z, xrl.KL2_LINE)
    return (e1 * r1 + e2 * r2) / (r1 + r2), xrl.EdgeEnergy(z, xrl.K_SHELL)


@lru_cache(maxsize=None)
def l_alpha(symbol: str) -> tuple[float, float]:
    """(L-alpha1 energy, L3 edge) in keV, from xraylib."""
    import xraylib as xrl

    z = xrl.SymbolToAtomicNumber(symbol)
    return xrl.LineEnergy(z, xrl.L3M5_LINE), xrl.EdgeEnergy(z, xrl.L3_SHELL)


@lru_cache(maxsize=None)
def ar_k_alpha() -> float:
    return k_alpha("Ar")[0]


def anode_line(anode: str, kv: float) -> tuple[str, float] | None:
    """The anode line a tube at ``kv`` sends most strongly: K-alpha if excited, else L-alpha."""
    e_ka, edge_k = k_alpha(anode)
    if math.isfinite(kv) and kv > 1.05 * edge_k:
        return "Ka", e_ka
    e_la, edge_l = l_alpha(anode)
    if (not math.isfinite(kv) or kv > edge_l) and e_la > 1.5:
        return "La", e_la
    return None


def compton_kev(energy: float, angle_deg: float) -> float:
    return energy / (1.0 + energy / 510.99895 * (1.0 - math.cos(math.radians(angle_deg))))


class _Windows:
    """Window sums over many spectra at once, each on its own linear energy scale."""

    def __init__(self, counts: np.ndarray, gain: np.ndarray, offset: np.ndarray):
        self.cs = np.zeros((counts.shape[0], counts.shape[1] + 1))
        np.cumsum(counts, axis=1, out=self.cs[:, 1:])
        self.gain, self.offset = gain, offset
        self.n_ch = counts.shape[1]
        self.rows = np.arange(counts.shape[0])

    def gross(self, lo, hi) -> tuple[np.ndarray, np.ndarray]:
        """(counts, channels) in [lo, hi] keV per row."""
        i0 = np.clip(np.ceil((lo - self.offset) / self.gain), 0, self.n_ch).astype(np.int64)
        i1 = np.clip(np.floor((hi - self.offset) / self.gain) + 1, 0, self.n_ch).astype(np.int64)
        i1 = np.maximum(i1, i0)
        return self.cs[self.rows, i1] - self.cs[self.rows, i0], (i1 - i0).astype(float)

    def net(self, energy: float, width_fwhm: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
        """(net area, gross) of a peak at ``energy``: window minus the side-window continuum."""
        w = width_fwhm * float(fwhm_kev(energy))
        gross, n = self.gross(energy - w, energy + w)
        left, nl = self.gross(energy - 2 * w, energy - w - 1e-9)
        right, nr = self.gross(energy + w + 1e-9, energy + 2 * w)
        density = (left + right) / np.maximum(nl + nr, 1.0)
        return gross - density * n, gross


def measure(counts: np.ndarray, coords: pd.DataFrame, params: QCParams) -> pd.DataFrame:
    """Per-spectrum features (one row per spectrum), measured ``ROWS_PER_PASS`` rows at a time."""
    parts = [_measure_part(np.asarray(counts[i:i + ROWS_PER_PASS]), coords.iloc[i:i + ROWS_PER_PASS], params)
             for i in range(0, len(coords), ROWS_PER_PASS)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _measure_part(counts: np.ndarray, coords: pd.DataFrame, params: QCParams) -> pd.DataFrame:
    gain = coords["energy_gain_kev"].to_numpy(dtype=float)
    offset = coords["energy_offset_kev"].to_numpy(dtype=float)
    kv = coords["tube_kv"].to_numpy(dtype=float)
    win = _Windows(counts, gain, offset)
    total = win.cs[:, -1]
    out = {"total_counts": total}
    out["ar_net"] = win.net(ar_k_alpha())[0]
    for anode in ANODES:
        for kind, (energy, edge) in (("Ka", k_alpha(anode)), ("La", l_alpha(anode))):
            if kind == "La" and energy < 1.5:
                continue
            net, gross = win.net(energy)
            excited = ~np.isfinite(kv) | (kv > (1.05 * edge if kind == "Ka" else edge))
            out[f"{anode}_{kind}_net"] = np.where(excited, net, np.nan)
            out[f"{anode}_{kind}_gross"] = np.where(excited, gross, np.nan)
            if kind == "Ka":  # incoherent (Compton) scatter of the K-alpha: a broad peak below it
                e_c = compton_kev(energy, params.scatter_angle_deg)
                w = 1.5 * float(fwhm_kev(e_c)) + (energy - e_c) * 0.5
                inc, _ = win.gross(e_c - w, e_c + w)
                out[f"{anode}_Ka_inc"] = np.where(excited, inc, np.nan)
    for el in ELEMENT_LINES:
        energy, edge = k_alpha(el)
        excited = ~np.isfinite(kv) | (kv > edge)
        out[f"{el}_net"] = np.where(excited, win.net(energy)[0], np.nan)
    shift = np.full(len(coords), np.nan)
    best = np.zeros(len(coords))
    for el in CALIBRATION_PEAKS:
        energy, _ = k_alpha(el)
        net = out[f"{el}_net"]
        pos = _peak_position(counts, gain, offset, energy)
        use = np.isfinite(net) & (net > best) & np.isfinite(pos)
        shift[use] = pos[use] - energy
        best[use] = net[use]
    out["peak_shift_kev"] = np.where(best >= params.min_peak_counts, shift, np.nan)
    return pd.DataFrame(out)


def _peak_position(counts: np.ndarray, gain: np.ndarray, offset: np.ndarray, energy: float,
                   search_kev: float = 0.2) -> np.ndarray:
    """Energy of the highest point near ``energy`` (3-channel smoothing, parabola on the log)."""
    n, n_ch = counts.shape
    if n == 0:
        return np.zeros(0)
    half = int(math.ceil(search_kev / max(float(np.nanmedian(gain)), 1e-4)))
    centre = np.round((energy - offset) / gain)
    idx = centre[:, None] + np.arange(-half - 1, half + 2)[None, :]
    inside = (idx >= 0) & (idx < n_ch) & np.isfinite(idx)
    idx = np.clip(np.nan_to_num(idx), 0, n_ch - 1).astype(np.int64)
    y = np.take_along_axis(counts, idx, axis=1).astype(float)
    y[~inside] = 0.0
    sm = y[:, :-2] + 2 * y[:, 1:-1] + y[:, 2:]  # smoothed, one shorter at each end
    k = np.argmax(sm[:, 1:-1], axis=1) + 1
    rows = np.arange(n)
    a, b, c = (np.log(np.maximum(sm[rows, k + d], 1.0)) for d in (-1, 0, 1))
    denom = a - 2 * b + c
    frac = np.where(denom < 0, 0.5 * (a - c) / np.where(denom < 0, denom, -1.0), 0.0)
    channel = idx[rows, k + 1] + np.clip(frac, -1, 1)
    pos = offset + gain * channel
    return np.where(inside.all(axis=1), pos, np.nan)


def run_anode(features: pd.DataFrame, rows: np.ndarray, kv: float) -> str | None:
    """The anode of a run group: the candidate whose strongest line holds the most net counts."""
    best, score = None, 0.0
    total = features["total_counts"].to_numpy()[rows]
    for anode in ANODES:
        line = anode_line(anode, kv)
        if line is None:
            continue
        col = f"{anode}_{line[0]}_net"
        if col not in features:
            continue
        frac = np.nanmedian(features[col].to_numpy()[rows] / np.maximum(total, 1.0))
        if np.isfinite(frac) and frac > score:
            best, score = anode, frac
    return best


def check(features: pd.DataFrame, coords: pd.DataFrame, params: QCParams) -> tuple[Verdicts, pd.DataFrame]:
    """Judge every spectrum; returns the verdicts and the series the checks used (for pictures)."""
    n = len(coords)
    v = Verdicts(n)
    live = coords["live_time_s"].to_numpy(dtype=float)
    real = coords["real_time_s"].to_numpy(dtype=float)
    kv_all = coords["tube_kv"].to_numpy(dtype=float)
    total = features["total_counts"].to_numpy(dtype=float) if n else np.zeros(0)
    has_live = np.isfinite(live) & (live > 0)
    v.lack(~has_live, "live_time")
    cps = np.where(has_live, total / np.where(has_live, live, 1.0), np.nan)
    series = {"throughput_cps": cps, "throughput_ratio": np.full(n, np.nan), "scatter_ratio": np.full(n, np.nan),
              "ar_fraction": features["ar_net"].to_numpy() / np.maximum(total, 1.0) if n else np.zeros(0),
              "peak_shift_kev": features["peak_shift_kev"].to_numpy() if n else np.zeros(0),
              "anode": np.full(n, "", dtype=object)}
    order = coords["depth_mm"].to_numpy(dtype=float)
    groups = groups_in_order(coords[list(GROUP_KEYS)], order)
    off = np.zeros(n, bool)
    for rows in groups:
        off[judge_throughput(v, params, rows, cps, series)] = True
    _dead_time(v, params, groups, live, real, has_live)
    alive = ~off & (total > 0)
    principal: dict[str, np.ndarray] = {}
    for rows in groups:
        rows_alive = rows[alive[rows]]
        if rows_alive.size == 0:
            continue
        kv = float(np.nanmedian(kv_all[rows])) if np.isfinite(kv_all[rows]).any() else math.nan
        anode = run_anode(features, rows_alive, kv)
        _anode_check(v, params, features, rows_alive, total, kv, anode, series)
        _scatter(v, params, features, rows_alive, total, kv, anode, series)
        _air_gap(v, params, rows_alive, series)
        _elements(v, params, features, rows_alive, total, principal)
        _calibration(v, params, rows_alive, series)
    v.flag(identity_mismatch(coords, groups_in_order(coords[["core", "run", "tube_kv"]], order), IDENTITY_COLUMNS),
           BAD, "identity")
    # the voltage defines the groups above, so a stray voltage inside a run is looked for per run
    v.flag(rare_values(kv_all, groups_in_order(coords[["core", "run"]], order)), BAD, "identity")
    _replicates(v, params, coords, cps, features, total, alive)
    return v, pd.DataFrame(series)


def _dead_time(v, p: QCParams, groups, live, real, has_live) -> None:
    has_real = np.isfinite(real) & (real > 0)
    v.lack(~has_real, "real_time")
    both = has_live & has_real
    dead = np.where(both, 1.0 - live / np.where(has_real, real, 1.0), np.nan)
    for rows in groups:
        d = dead[rows]
        ok = np.isfinite(d)
        if not ok.any():
            continue
        v.judge(rows[ok])
        v.flag(rows[ok & (d - np.nanmedian(d) > p.dead_time_excess)], SUSPECT, "dead_time")
        v.flag(rows[ok & (d >= p.dead_time_max)], BAD, "dead_time")


def _anode_check(v, p: QCParams, features, rows, total, kv, anode, series) -> None:
    if anode is None:
        v.lack(rows, "tube_line")
        return
    series["anode"][rows] = anode
    bad = np.zeros(rows.size, bool)
    judged = np.zeros(rows.size, bool)
    for other in ANODES:
        line = anode_line(other, kv)
        if line is None or (other != anode and abs(line[1] - ar_k_alpha()) < AR_CONFUSION_KEV):
            continue
        frac = features[f"{other}_{line[0]}_net"].to_numpy()[rows] / np.maximum(total[rows], 1.0)
        ok = np.isfinite(frac)
        level = robust_reference(frac, p.window, ~ok)
        if other == anode:
            judged |= ok
            bad |= ok & (frac < level / p.anode_ratio)
        else:  # another anode's line appears: only where it rises well above its usual level, and
            # is a line at all: a few counts at a weak line's energy pass the level test by chance
            # (one clean spectrum in a few hundred), never a Poisson significance of 5 sigma
            floor = np.nanmedian(np.abs(frac - level)) * 6 + 1e-4
            net = features[f"{other}_{line[0]}_net"].to_numpy()[rows]
            gross = features[f"{other}_{line[0]}_gross"].to_numpy()[rows]
            z = net / np.sqrt(gross + np.maximum(gross - net, 0) + 1.0)  # var(net) = var(gross) + var(background)
            bad |= ok & (frac > p.anode_ratio * np.maximum(level, 0) + floor) & (z > p.anode_z)
    v.judge(rows[judged])
    v.flag(rows[bad], BAD, "anode")


def _scatter(v, p: QCParams, features, rows, total, kv, anode, series) -> None:
    if anode is None:
        return
    kind = anode_line(anode, kv)[0]
    if kind == "Ka":  # coherent / incoherent scatter of the tube's K-alpha
        ratio = features[f"{anode}_Ka_gross"].to_numpy()[rows] / np.maximum(features[f"{anode}_Ka_inc"].to_numpy()[rows], 1.0)
    else:  # L lines: coherent and Compton peaks closer than the resolution: the line's share of all counts
        ratio = features[f"{anode}_La_gross"].to_numpy()[rows] / np.maximum(total[rows], 1.0)
    series["scatter_ratio"][rows] = ratio
    bad, judged = log_anomalies(ratio, p.window, p.anomaly_k, p.scatter_min_rel)
    v.judge(rows[judged])
    v.flag(rows[bad], SUSPECT, "scatter_ratio")


def _air_gap(v, p: QCParams, rows, series) -> None:
    bad, judged = high_excess(series["ar_fraction"][rows], p.window, p.anomaly_k, p.ar_min_rel, p.ar_min_fraction)
    v.judge(rows[judged])
    v.flag(rows[bad], SUSPECT, "air_gap")


def _elements(v, p: QCParams, features, rows, total, principal) -> None:
    medians = {}
    for el in ELEMENT_LINES:
        net = features[f"{el}_net"].to_numpy()[rows]
        if np.isfinite(net).any():
            medians[el] = np.nanmedian(net)
    ranked = sorted((m, el) for el, m in medians.items() if np.isfinite(m) and m > 0)[::-1]
    for _m, el in ranked[:p.principal_elements]:
        frac = features[f"{el}_net"].to_numpy()[rows] / np.maximum(total[rows], 1.0)
        bad, judged = log_anomalies(frac, p.window, p.anomaly_k, p.element_min_rel)
        v.judge(rows[judged])
        v.flag(rows[bad], SUSPECT, "element_anomaly")
        principal.setdefault(el, np.full(len(total), np.nan))[rows] = frac


def _calibration(v, p: QCParams, rows, series) -> None:
    shift = series["peak_shift_kev"][rows]
    ok = np.isfinite(shift)
    v.lack(rows[~ok], "calibration_peak")
    v.judge(rows[ok])
    v.flag(rows[ok & (np.abs(shift) > p.peak_shift_kev) & (np.abs(shift) <= p.peak_shift_bad_kev)], SUSPECT,
           "calibration_drift")
    v.flag(rows[ok & (np.abs(shift) > p.peak_shift_bad_kev)], BAD, "calibration_drift")


def _replicates(v, p: QCParams, coords, cps, features, total, alive) -> None:
    keys = coords[["core", "tube_kv"]]
    rep_id = coords["run"].astype(str) + "#" + coords["replicate"].astype(str)
    sets = replicate_sets(keys, coords["depth_mm"].to_numpy(dtype=float), rep_id.to_numpy())
    if not sets:
        return
    sets = [s[alive[s]] for s in sets]
    spread = replicate_spread(cps, sets)
    worst = np.where(np.isfinite(spread), spread, 0.0)
    for el in ("Ca", "Fe", "K", "Si", "Ti"):
        if f"{el}_net" in features:
            net = features[f"{el}_net"].to_numpy()
            frac = np.where(net > MIN_REPLICATE_COUNTS, net / np.maximum(total, 1.0), np.nan)
            s = replicate_spread(frac, sets)
            worst = np.maximum(worst, np.where(np.isfinite(s), s, 0.0))
    v.flag(worst > p.replicate_rel, SUSPECT, "replicate")
