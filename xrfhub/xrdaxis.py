"""The diffraction axis: 2-theta, q and d-spacing, and putting patterns on a common grid.

Bragg's law ties the three views of one reflection together for a wavelength lambda
(angstrom): ``q = 4 pi sin(theta) / lambda`` (1/angstrom), ``d = lambda / (2 sin(theta))``
(angstrom), with ``theta`` half the scattering angle 2-theta. Files write q or 2-theta; the
store keeps 2-theta in degrees (the axis the classifiers were published on) and records the
wavelength, so that q and d can always be recomputed.

Pure functions on numpy arrays (scalars work too). They do not validate user input: the
readers do that first, so that a message can name the file and line.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["q_to_two_theta", "two_theta_to_q", "d_spacing", "resample"]


def _check_wavelength(wavelength: float) -> float:
    value = float(wavelength)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"wavelength must be a positive number of angstrom, got {wavelength!r}")
    return value


def q_to_two_theta(q, wavelength: float):
    """2-theta (degrees) of momentum transfer ``q`` (1/angstrom): ``2 asin(q lambda / 4 pi)``.

    A q beyond ``4 pi / lambda`` cannot be reached at this wavelength: its 2-theta is NaN
    (check with ``q <= 4 * pi / wavelength`` before converting if that must be an error).
    """
    lam = _check_wavelength(wavelength)
    ratio = np.asarray(q, dtype=np.float64) * (lam / (4.0 * math.pi))
    with np.errstate(invalid="ignore"):
        out = np.degrees(2.0 * np.arcsin(ratio))
    return out if out.ndim else float(out)


def two_theta_to_q(two_theta, wavelength: float):
    """Momentum transfer q (1/angstrom) at scattering angle ``two_theta`` (degrees)."""
    lam = _check_wavelength(wavelength)
    theta = np.radians(np.asarray(two_theta, dtype=np.float64) / 2.0)
    out = 4.0 * math.pi * np.sin(theta) / lam
    return out if out.ndim else float(out)


def d_spacing(two_theta, wavelength: float):
    """Lattice spacing d (angstrom) that reflects at ``two_theta`` (degrees); inf at 0."""
    lam = _check_wavelength(wavelength)
    theta = np.radians(np.asarray(two_theta, dtype=np.float64) / 2.0)
    with np.errstate(divide="ignore"):
        out = lam / (2.0 * np.sin(theta))
    return out if out.ndim else float(out)


def resample(two_theta, intensity, grid) -> np.ndarray:
    """Intensity (one pattern, or patterns x points) carried onto ``grid`` by linear interpolation.

    ``two_theta`` is the measured axis (increasing); points of ``grid`` outside its range get
    NaN rather than an extrapolated value, so that a common grid wider than one measurement
    shows where that measurement has no data. The interpolation weights are computed once and
    applied to every row, so thousands of patterns on one source grid cost one search.
    """
    x = np.asarray(two_theta, dtype=np.float64)
    y = np.asarray(intensity, dtype=np.float64)
    g = np.asarray(grid, dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise ValueError("two_theta must be a 1-D axis of at least 2 points")
    if y.shape[-1] != x.size:
        raise ValueError(f"intensity has {y.shape[-1]} points per pattern, two_theta {x.size}")
    if not np.all(np.diff(x) > 0):
        raise ValueError("two_theta must be strictly increasing")
    flat = g.ravel()
    right = np.clip(np.searchsorted(x, flat, side="right"), 1, x.size - 1)
    left = right - 1
    weight = (flat - x[left]) / (x[right] - x[left])
    out = y[..., left] * (1.0 - weight) + y[..., right] * weight
    outside = (flat < x[0]) | (flat > x[-1]) | np.isnan(flat)
    out[..., outside] = np.nan
    return out.reshape(y.shape[:-1] + g.shape)
