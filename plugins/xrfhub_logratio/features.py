"""Element intensities for log-ratio calibration: from the store's element tables or from spectra.

Two sources of intensities, one shape (samples x lines, non-negative floats):

- **element tables** (``elements`` kind: bAXIL, Avaatech workbook, ITRAX Results): the vendor's
  fitted peak areas. Lab samples are paired with table points by depth exactly as spectra are
  (:func:`xrfhub.align.align_samples`, window around the mid-depth) and the paired points'
  areas are averaged.
- **spectra** without a table: the net area of each line's peak, integrated over a window of
  ``+-half_width_kev`` around its energy (xraylib's K-alpha1 / L-alpha1) minus a straight
  background through two flanking windows of the same width. Crude next to a full peak fit,
  but deterministic, cheap, and the same code at training and prediction.

Log-ratios need positive intensities; a zero (below detection) is replaced by half the smallest
positive value of that line among the training points (multiplicative replacement, as usual for
compositional data), and how many were replaced is recorded.
"""
from __future__ import annotations

import re

import numpy as np

from xrfhub.errors import ConfigError

#: Lines a 10 kV core scan measures well (Avaatech/ITRAX practice): the default for spectra.
DEFAULT_ELEMENTS = ("Al", "Si", "S", "Cl", "K", "Ca", "Ti", "Mn", "Fe")
#: Unified element-line names (``Ca-Ka``, ``Ba-La``); scatter, sum and unnamed peaks do not match.
_ELEMENT_LINE = re.compile(r"^([A-Z][a-z]?)-(K|L|M)[a-z]\d?$")
#: Lines never used as element intensities: argon is air between foil and sediment, not sediment.
EXCLUDED = ("Ar",)


def line_energy(element: str) -> tuple[float, str]:
    """Energy (keV) of the line a core scanner measures for ``element``: K-alpha1 up to Sn, L-alpha1 beyond."""
    import xraylib

    try:
        z = xraylib.SymbolToAtomicNumber(element)
    except ValueError:
        raise ConfigError(f"unknown element symbol {element!r} in the log-ratio plugin's elements") from None
    if z <= 50:
        return float(xraylib.LineEnergy(z, xraylib.KA1_LINE)), f"{element}-Ka"
    return float(xraylib.LineEnergy(z, xraylib.LA1_LINE)), f"{element}-La"


def element_lines(lines, wanted=()) -> list[str]:
    """The element lines of a table to use: ``wanted`` (element symbols or line names) or every
    fluorescence line except the excluded ones (scatter and sum peaks never qualify)."""
    lines = [str(x) for x in lines]
    if wanted:
        out = []
        for w in wanted:
            hit = [x for x in lines if x == w or (_ELEMENT_LINE.match(x) and x.split("-")[0] == w)]
            if not hit:
                raise ConfigError(f"element {w!r} is not a line of the store's element table; lines: {', '.join(lines)}")
            out.append(hit[0])
        return out
    return [x for x in lines if _ELEMENT_LINE.match(x) and x.split("-")[0] not in EXCLUDED]


# ---------------------------------------------------------------------------- spectra -> peak areas


class PeakAreas:
    """Net peak areas of fixed lines on a fixed energy axis: (spectra x channels) -> (spectra x lines)."""

    def __init__(self, energy, elements=DEFAULT_ELEMENTS, half_width_kev: float = 0.12):
        self.energy = np.asarray(energy, dtype=np.float64)
        if self.energy.ndim != 1 or len(self.energy) < 8 or not np.all(np.diff(self.energy) > 0):
            raise ConfigError("peak integration needs an increasing energy axis (keV per channel) for the spectra")
        if not half_width_kev > 0:
            raise ConfigError(f"config key 'half_width_kev': expected a positive number, got {half_width_kev!r}")
        self.half_width = float(half_width_kev)
        self.elements = tuple(elements)
        self.lines, self.centres, self._weights = [], [], []
        top = self.energy[-1]
        for element in self.elements:
            centre, line = line_energy(element)
            if centre + 3 * self.half_width > top:
                raise ConfigError(f"{line} at {centre:.2f} keV lies beyond the spectra's energy axis (up to {top:.2f} keV)")
            self.lines.append(line)
            self.centres.append(centre)
            self._weights.append(self._window(centre))
        self.weights = np.stack(self._weights, axis=1)  # channels x lines

    def _window(self, centre: float) -> np.ndarray:
        """Channel weights: +1 in the peak window, minus the mean of the two flanking windows scaled
        to the peak window's width (a straight background under the peak)."""
        e, w = self.energy, self.half_width
        peak = (e >= centre - w) & (e <= centre + w)
        left = (e >= centre - 3 * w) & (e < centre - w)
        right = (e > centre + w) & (e <= centre + 3 * w)
        if not peak.any() or not left.any() or not right.any():
            raise ConfigError(f"the window of +-{w} keV at {centre:.3f} keV holds no channel: widen half_width_kev")
        out = peak.astype(np.float64)
        out[left] -= 0.5 * peak.sum() / left.sum()
        out[right] -= 0.5 * peak.sum() / right.sum()
        return out

    def __call__(self, counts) -> np.ndarray:
        x = np.asarray(counts, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.energy):
            raise ConfigError(f"spectra of {len(self.energy)} channels expected, got shape {x.shape}")
        return np.maximum(x @ self.weights, 0.0)  # a net area below zero is no peak: zero, replaced later

    def describe(self) -> dict:
        return {"method": "net peak area: window sum minus a straight background from two flanking windows",
                "half_width_kev": self.half_width,
                "lines": {line: round(c, 4) for line, c in zip(self.lines, self.centres)},
                "energies_from": "xraylib LineEnergy (K-alpha1 up to Sn, L-alpha1 beyond)"}


# ---------------------------------------------------------------------------- element tables -> pairs


def table_pairs(store, target: str, *, lines=(), window_mm: float = 5.0, cores=None, exclude_cores=None):
    """Mean element-table areas of the lab samples paired by depth, with their target values.

    Returns ``(areas, y, cores, line_names, info)``; pairing is :func:`xrfhub.align.align_samples`
    with the ``window`` method on valid points (one voltage per core).
    """
    import pandas as pd

    import xrfhub
    from xrfhub.align import align_samples
    from xrfhub.ml.loaders import select_rows

    el = xrfhub.open(store, "elements", index=False)
    samples = xrfhub.open(store, "samples", index=False)
    if target not in samples:
        props = [v for v in samples.data_vars if f"{v}_flag" in samples.data_vars]
        raise ConfigError(f"the store has no lab property {target!r}; it has: {', '.join(props) or 'none'}")
    use = element_lines(el["line"].values, lines)
    col = [list(el["line"].values.astype(str)).index(x) for x in use]
    points = pd.DataFrame({"core": el["core"].values.astype(str), "depth_mm": el["depth_mm"].values.astype(float),
                           "tube_kv": el["tube_kv"].values.astype(float) if "tube_kv" in el.coords else np.nan,
                           "valid": el["valid"].values.astype(bool) if "valid" in el.coords else True})
    table = pd.DataFrame({name: samples[name].values for name in ("core", "top_mm", "bottom_mm", "mid_mm")
                          if name in samples.coords or name in samples})
    table["core"] = table["core"].astype(str)
    rows = select_rows(samples, cores=cores, exclude_cores=exclude_cores, tube_kv=None, valid_only=False)
    y_all = samples[target].values.astype(np.float64)
    rows = rows[np.isfinite(y_all[rows])]
    if not len(rows):
        raise ConfigError(f"no lab {target} values in the selected cores")
    # tube_kv=None: per core the one voltage its valid points have (a core at several is unmatched, and says so)
    alignment = align_samples(points, table.iloc[rows].reset_index(drop=True), method="window",
                              window_mm=window_mm, tube_kv=None)
    area = el["area"].values[:, col].astype(np.float64)
    keep, means = [], []
    for i, idx in enumerate(alignment.indices):
        if len(idx):
            keep.append(i)
            means.append(np.nanmean(area[idx], axis=0))
    if not keep:
        raise ConfigError(f"no lab {target} sample lies within {window_mm} mm of an element-table point "
                          f"(reasons: {'; '.join(sorted(set(alignment.reason)))[:300]})")
    keep = np.asarray(keep)
    info = {"pairing": f"element-table points within +-{window_mm} mm of the sample's mid-depth, areas averaged",
            "n_samples": int(len(rows)), "n_paired": int(len(keep))}
    return (np.asarray(means), y_all[rows][keep], table["core"].values[rows][keep].astype(str), use, info)


# ---------------------------------------------------------------------------- zeros and log-ratios


def zero_floors(areas: np.ndarray) -> np.ndarray:
    """Per line: half the smallest positive (finite) area, the value that replaces zeros."""
    a = np.where(np.isfinite(areas) & (areas > 0), areas, np.inf)
    low = a.min(axis=0)
    return np.where(np.isfinite(low), 0.5 * low, np.nan)


def replace_zeros(areas: np.ndarray, floors: np.ndarray) -> tuple[np.ndarray, int]:
    """Areas with non-positive or missing values set to the line's floor; also how many were set."""
    a = np.asarray(areas, dtype=np.float64)
    bad = ~(np.isfinite(a) & (a > 0))
    return np.where(bad, floors[None, :], a), int(bad.sum())


def alr(areas: np.ndarray, denominator: int) -> np.ndarray:
    """Additive log-ratios ln(I_j / I_D) for every line j except the denominator D."""
    logs = np.log(areas)
    return np.delete(logs - logs[:, [denominator]], denominator, axis=1)
