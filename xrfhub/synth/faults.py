"""Known instrument faults injected into generated spectra, to test quality control.

Each function returns new counts for the rows it is given; what it does is physical enough for
the check it exercises, and no more: a tube that is off gives next to no counts, a throughput
drop thins every count with the same probability, an air gap adds Ar K-alpha and K-beta
(argon makes up ~1 % of air and fluoresces strongly at 10 kV), a swapped anode is a spectrum
simulated with another tube, a calibration shift moves every count by whole channels while the
stated calibration stays.
"""
from __future__ import annotations

import numpy as np

from . import composition as comp
from . import physics as phys


def tube_off(rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
    """Detector noise only: a count here and there."""
    return rng.poisson(0.002, size=counts.shape).astype(np.uint32)


def throughput_drop(rng: np.random.Generator, counts: np.ndarray, drop: float = 0.6) -> np.ndarray:
    """Every count kept with probability ``1 - drop`` (binomial thinning keeps Poisson statistics)."""
    return rng.binomial(counts.astype(np.int64), 1.0 - drop).astype(np.uint32)


def air_gap(rng: np.random.Generator, counts: np.ndarray, gain_kev: float, offset_kev: float,
            fraction: float = 0.03) -> np.ndarray:
    """Add Ar K-alpha (2.957 keV) and K-beta (3.19 keV) holding ``fraction`` of the spectrum's counts."""
    import xraylib as xrl

    energy = offset_kev + gain_kev * np.arange(counts.shape[1])
    out = counts.astype(np.float64)
    total = counts.sum(axis=1, keepdims=True)
    for line, share in ((xrl.KL3_LINE, 0.88), (xrl.KM3_LINE, 0.12)):
        e = xrl.LineEnergy(18, line)
        sigma = float(phys.DEFAULT_INSTRUMENT.fwhm_kev(e)) / 2.3548
        shape = np.exp(-0.5 * ((energy - e) / sigma) ** 2)
        shape /= shape.sum()
        out += fraction * share * total * shape[None, :]
    return rng.poisson(out).astype(np.uint32)


def other_anode(rng: np.random.Generator, weights: np.ndarray, film_um: np.ndarray, kv: float, filter: str,
                total_counts: np.ndarray, gain_kev: float, offset_kev: float, anode: str = "Mo") -> np.ndarray:
    """Spectra of the same sediment measured with another tube anode, scaled to ``total_counts``."""
    instrument = phys.Instrument(anode=anode)
    exc = phys.excitation(float(kv), filter, instrument)
    basis = phys.detector_basis(exc.src_energy, exc.src_width, gain_kev, offset_kev)
    lam = phys.expected_counts(exc, weights, film_um, np.ones(len(weights)), basis,
                               film_weights=comp.SEAWATER_ELEMENTS)
    lam *= (np.asarray(total_counts, dtype=float) / lam.sum(axis=1))[:, None]
    return rng.poisson(lam).astype(np.uint32)


def calibration_shift(counts: np.ndarray, channels: int) -> np.ndarray:
    """Every count moved up by ``channels`` (the stated energy scale no longer fits)."""
    out = np.zeros_like(counts)
    if channels >= 0:
        out[:, channels:] = counts[:, :counts.shape[1] - channels]
    else:
        out[:, :channels] = counts[:, -channels:]
    return out
