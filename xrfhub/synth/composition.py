"""Sediment composition down a core: end-members, down-core histories and lab values.

A marine sediment is modelled as a mixture of a few end-members whose proportions drift with
depth: biogenic carbonate (CaCO3 with Sr), biogenic opal, marine organic matter (C, N, S, P and
the Br that marine organic matter binds), terrigenous clay/silt (average shale: Al, Si, K, Ti, Fe
and the lithophile trace elements), minor authigenic phases (Mn oxyhydroxide, pyrite, barite),
and pore water (sea water, the source of most Cl and Br). The dry proportions follow smooth
orbital-style cycles plus mean-reverting random walks; the water content decreases with depth
(compaction). CaCO3 and TOC lab values are read off the same history, so spectra and lab values
share one truth.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xraylib as xrl

from .physics import EL_INDEX, ELEMENTS

#: Dry end-members in the order of the columns of ``CoreHistory.dry``.
END_MEMBERS = ("carbonate", "opal", "organic", "terrigenous", "mn_oxide", "pyrite", "barite")

#: Carbon mass fraction of marine organic matter (Redfield-like, C:H:O:N ~ 106:263:110:16)
ORGANIC_CARBON = 0.36


def _oxides_to_elements(oxides: dict[str, float], trace_ppm: dict[str, float]) -> dict[str, float]:
    """Element mass fractions from oxide wt% (the way rock analyses are reported) and ppm."""
    out: dict[str, float] = {}
    for formula, pct in oxides.items():
        parsed = xrl.CompoundParser(formula)
        for z, frac in zip(parsed["Elements"], parsed["massFractions"]):
            sym = xrl.AtomicNumberToSymbol(z)
            out[sym] = out.get(sym, 0.0) + pct / 100.0 * frac
    for sym, ppm in trace_ppm.items():
        out[sym] = out.get(sym, 0.0) + ppm * 1e-6
    return out


def _vector(fractions: dict[str, float]) -> np.ndarray:
    v = np.zeros(len(ELEMENTS))
    for sym, f in fractions.items():
        v[EL_INDEX[sym]] += f
    return v / v.sum()


# Post-Archean average shale (major oxides, wt%) and typical trace contents (ppm).
_TERRIGENOUS = _oxides_to_elements(
    {"SiO2": 62.8, "TiO2": 1.0, "Al2O3": 18.9, "Fe2O3": 7.2, "MnO": 0.11, "MgO": 2.2,
     "CaO": 1.3, "Na2O": 1.2, "K2O": 2.6, "P2O5": 0.16, "H2O": 1.5},
    {"V": 150, "Cr": 110, "Ni": 55, "Cu": 50, "Zn": 85, "Rb": 160, "Sr": 200, "Y": 27,
     "Zr": 210, "Ba": 650, "Pb": 20})
_CARBONATE = _oxides_to_elements({"CaCO3": 98.5, "MgCO3": 1.3}, {"Sr": 1500})
_OPAL = _oxides_to_elements({"SiO2": 90.0, "H2O": 10.0}, {"Al": 2000})
_ORGANIC = {"C": ORGANIC_CARBON, "H": 0.07, "O": 0.48, "N": 0.06, "S": 0.012, "P": 0.008,
            "Br": 0.004, "Cu": 1e-4, "Ni": 1e-4, "Zn": 1.5e-4}
_MN_OXIDE = _oxides_to_elements({"MnO2": 90.0, "H2O": 10.0}, {"Ni": 5000, "Cu": 3000})
_PYRITE = _oxides_to_elements({"FeS2": 100.0}, {})
_BARITE = _oxides_to_elements({"BaSO4": 100.0}, {"Sr": 10000})
# Sea water, salinity 35: the pore water of the wet sediment.
_SEAWATER = _oxides_to_elements({"H2O": 96.5}, {"Cl": 19400, "Na": 10800, "S": 905, "Mg": 1290,
                                                "Ca": 412, "K": 399, "Br": 67})

END_MEMBER_ELEMENTS = np.stack([_vector(d) for d in (_CARBONATE, _OPAL, _ORGANIC, _TERRIGENOUS,
                                                     _MN_OXIDE, _PYRITE, _BARITE)])
SEAWATER_ELEMENTS = _vector(_SEAWATER)


@dataclass(frozen=True)
class CoreStyle:
    """Where a core comes from, as mean dry proportions and how strongly they swing."""

    carbonate: float = 0.10      # mean CaCO3 fraction of the dry sediment
    opal: float = 0.10
    organic: float = 0.006       # organic matter (TOC = ORGANIC_CARBON x organic)
    swing: float = 1.0           # amplitude of glacial/interglacial cycles (logit units)
    cycle_m: float = 3.0         # main cycle length in metres (sedimentation rate x 100 kyr)
    water_top: float = 0.55      # water mass fraction at the core top
    water_bottom: float = 0.35


def random_style(rng: np.random.Generator, high_toc: bool = False) -> CoreStyle:
    """A plausible core: mostly carbonate-poor clays, some carbonate oozes, some opal-rich."""
    kind = rng.choice(["clay", "carbonate", "siliceous", "margin"], p=[0.45, 0.22, 0.18, 0.15])
    carb = {"clay": 0.04, "carbonate": 0.45, "siliceous": 0.05, "margin": 0.08}[kind]
    opal = {"clay": 0.05, "carbonate": 0.05, "siliceous": 0.35, "margin": 0.06}[kind]
    org = {"clay": 0.004, "carbonate": 0.003, "siliceous": 0.007, "margin": 0.012}[kind]
    carb = float(np.clip(carb * rng.lognormal(0, 0.5), 0.005, 0.85))
    opal = float(np.clip(opal * rng.lognormal(0, 0.4), 0.01, 0.7))
    org = float(np.clip(org * rng.lognormal(0, 0.35), 0.001, 0.05))
    if high_toc:  # above the 0.05 every other core is clipped to: a shift, not the tail of the others
        org = float(rng.uniform(0.05, 0.08))
    water_top = float(rng.uniform(0.45, 0.65))
    return CoreStyle(carbonate=carb, opal=opal, organic=org, swing=float(rng.uniform(0.5, 1.5)),
                     cycle_m=float(rng.uniform(1.5, 6.0)), water_top=water_top,
                     water_bottom=float(water_top - rng.uniform(0.08, 0.2)))


def _ar1(rng: np.random.Generator, n: int, step_mm: float, corr_mm: float, sd: float,
         size: int = 1) -> np.ndarray:
    """Mean-reverting random walk (AR(1)) sampled every ``step_mm``; stationary std ``sd``.

    Computed as white noise convolved (by FFT) with the AR(1) impulse response phi^k, truncated
    where it has decayed below 1e-4, with a warm-up so the series starts stationary.
    """
    phi = np.exp(-step_mm / corr_mm)
    k = int(np.ceil(np.log(1e-4) / np.log(phi))) if phi > 0 else 1
    k = max(k, 1)
    eps = rng.normal(0.0, sd * np.sqrt(1 - phi * phi), size=(size, n + k))
    h = phi ** np.arange(k)
    m = 1 << int(np.ceil(np.log2(n + 2 * k)))
    x = np.fft.irfft(np.fft.rfft(eps, m, axis=1) * np.fft.rfft(h, m)[None, :], m, axis=1)
    return x[:, k:k + n]


@dataclass
class CoreHistory:
    """The true sediment of one core on a 1 mm grid.

    ``dry``: (n, len(END_MEMBERS)) mass fractions of the dry sediment (rows sum to 1);
    ``water``: (n,) pore-water mass fraction of the wet sediment.
    """

    depth_mm: np.ndarray
    dry: np.ndarray
    water: np.ndarray

    def at(self, depth_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dry fractions and water content at the given depths (nearest grid point)."""
        i = np.clip(np.rint(depth_mm - self.depth_mm[0]).astype(int), 0, self.depth_mm.size - 1)
        return self.dry[i], self.water[i]

    def slice_mean(self, top_mm: np.ndarray, bottom_mm: np.ndarray) -> np.ndarray:
        """Mean dry fractions over each slice [top, bottom) (what a lab sample homogenises)."""
        c = np.vstack([np.zeros((1, self.dry.shape[1])), np.cumsum(self.dry, axis=0)])
        lo = np.clip(np.rint(top_mm - self.depth_mm[0]).astype(int), 0, self.depth_mm.size - 1)
        hi = np.clip(np.rint(bottom_mm - self.depth_mm[0]).astype(int), lo + 1, self.depth_mm.size)
        return (c[hi] - c[lo]) / (hi - lo)[:, None]


def element_weights(dry: np.ndarray, water: np.ndarray) -> np.ndarray:
    """Element mass fractions (n, len(ELEMENTS)) of the wet sediment."""
    dry_el = dry @ END_MEMBER_ELEMENTS
    return (1.0 - water)[:, None] * dry_el + water[:, None] * SEAWATER_ELEMENTS[None, :]


def simulate_core(rng: np.random.Generator, length_mm: float, style: CoreStyle) -> CoreHistory:
    """Draw one core's history: cycles + random walks in log-ratio space, then softmax."""
    depth = np.arange(0.0, float(length_mm) + 1.0, 1.0)
    n = depth.size
    period = style.cycle_m * 1000.0
    phase = rng.uniform(0, 2 * np.pi, 3)
    climate = (np.sin(2 * np.pi * depth / period + phase[0])
               + 0.5 * np.sin(2 * np.pi * depth / (0.41 * period) + phase[1])
               + 0.35 * np.sin(2 * np.pi * depth / (0.23 * period) + phase[2]))
    walk = _ar1(rng, n, 1.0, corr_mm=400.0, sd=0.35, size=6)
    short = _ar1(rng, n, 1.0, corr_mm=15.0, sd=0.12, size=6)
    terr = 1.0 - style.carbonate - style.opal - style.organic
    base = np.log(np.array([style.carbonate, style.opal, style.organic, terr,
                            8e-4, 4e-3, 1.5e-3]) / terr)
    # interglacials: more carbonate and opal, glacials: more terrigenous input
    loading = np.array([1.2, 0.8, 0.5, 0.0, 0.3, -0.2, 0.6]) * style.swing
    logits = base[:, None] + loading[:, None] * climate[None, :]
    logits[[0, 1, 2, 4, 5, 6]] += walk + short
    logits -= logits.max(axis=0, keepdims=True)
    dry = np.exp(logits).T
    dry /= dry.sum(axis=1, keepdims=True)
    frac = depth / max(depth[-1], 1.0)
    water = style.water_top + (style.water_bottom - style.water_top) * np.sqrt(frac)
    water = np.clip(water + 0.03 * _ar1(rng, n, 1.0, 200.0, 1.0)[0], 0.2, 0.8)
    return CoreHistory(depth_mm=depth, dry=dry, water=water)


def lab_values(rng: np.random.Generator, history: CoreHistory, top_mm: np.ndarray,
               bottom_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """True and measured CaCO3 and TOC (wt% of dry sediment) of 1-cm-style lab slices.

    Measured = true slice mean + element-analyser noise: TOC +-0.02 wt% + 3 %, CaCO3 (from total
    minus organic carbon) +-0.5 wt% + 2 %; values clipped to what the instrument reports.
    """
    mean = history.slice_mean(top_mm, bottom_mm)
    caco3 = 100.0 * mean[:, 0]
    toc = 100.0 * ORGANIC_CARBON * mean[:, 2]
    caco3_m = caco3 + rng.normal(0, 1, caco3.size) * np.hypot(0.5, 0.02 * caco3)
    toc_m = toc + rng.normal(0, 1, toc.size) * np.hypot(0.02, 0.03 * toc)
    return caco3, toc, np.clip(caco3_m, 0.0, 100.0), np.clip(toc_m, 0.01, None)
