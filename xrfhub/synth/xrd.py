"""Simulated powder-diffraction patterns computed from crystal structures.

Three generators, each returning :class:`SimulatedPatterns` (a plain data record):

- :func:`pressure_ramp`: a look-alike of the PaNOSC high-pressure ramp (DESIGN section 7):
  (Mg0.2Fe0.8)O rock salt compressed along a nominal Birch-Murnaghan equation of state, turning
  into the rhombohedral rB1 form (the cubic cell stretched along [111]) at ``transition``;
- :func:`hydrothermal`: micro-XRD of hydrothermal fluids (document 001): La-bastnaesite,
  calcite and rhenium, alone and mixed, with weak signal, a liquid (water) background, preferred
  orientation, few crystallites, peak shifts and detector/diamond artefacts, raw or preprocessed;
- :func:`from_cifs`: lab Cu K-alpha patterns of random 1..k phase mixtures of CIF structures, to
  train a classifier for the measured patterns in fixtures/xrd.

Peak positions and intensities come from pymatgen (see :mod:`.xrd_structures`); this module
turns reflections into profiles (area-normalised pseudo-Voigt, Caglioti width), adds background
and counting noise, and offers the preprocessing: :func:`als_baseline` (Eilers' asymmetric least
squares) and :func:`mask_ranges`. Every random choice draws from ``numpy.random.default_rng(seed)``.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np

from ..errors import InputError
from . import xrd_structures as xs
from .xrd_structures import caglioti_fwhm, phase_profiles, render_peaks  # noqa: F401 (re-export)

CU_KALPHA1 = 1.5406
CU_KALPHA2 = 1.54439
DIAMOND_A = 3.5671  # diamond anvils/windows: their reflections are what masking removes


@dataclass
class SimulatedPatterns:
    """A stack of N patterns on one 2-theta grid, with their truth.

    ``phases`` is a multi-hot (N, K) over ``phase_names`` (for the ramp the two classes "low"
    and "high"); ``labels`` joins the present names with ';'. ``scan`` holds per-pattern
    coordinates (e.g. ``pressure_step``); ``background`` is the smooth background that was
    added (truth for baseline methods), ``meta`` what was simulated and with which library.
    """

    two_theta: np.ndarray            # (P,) degrees
    intensity: np.ndarray            # (N, P) float32
    wavelength: float                # angstrom
    pattern_id: list[str]
    phase_names: tuple[str, ...]
    phases: np.ndarray               # (N, K) bool
    scan: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    background: np.ndarray | None = None  # (N, P) float32

    def __post_init__(self):
        n, p = self.intensity.shape
        if self.two_theta.shape != (p,) or len(self.pattern_id) != n:
            raise ValueError("two_theta must have one value per column and pattern_id one per row")
        if self.phases.shape != (n, len(self.phase_names)):
            raise ValueError("phases must be (N, len(phase_names))")

    def __len__(self) -> int:
        return self.intensity.shape[0]

    @property
    def labels(self) -> list[str]:
        """Per pattern the present phases (or the class) joined with ';'."""
        return [";".join(n for n, on in zip(self.phase_names, row) if on) for row in self.phases]


# -------------------------------------------------------------------- noise and preprocessing

def counting_noise(clean: np.ndarray, rng: np.random.Generator, read_noise: float = 0.0,
                   ) -> np.ndarray:
    """Poisson counts of the expected counts ``clean`` plus Gaussian read noise (float32)."""
    counts = rng.poisson(np.maximum(clean, 0.0)).astype(np.float64)
    if read_noise > 0:
        counts += rng.normal(0.0, read_noise, counts.shape)
    return counts.astype(np.float32)


def als_baseline(y: np.ndarray, lam: float = 1e5, p: float = 0.002, niter: int = 10,
                 ) -> np.ndarray:
    """Asymmetric-least-squares baseline (Eilers & Boelens 2005) of one pattern (P,) or of
    each row of (N, P).

    Minimises sum w_i (y_i - z_i)^2 + lam sum (second difference of z)^2, with weights ``p``
    above the current baseline and 1 - p below it, re-weighted ``niter`` times. The penalty
    matrix is built with scipy.sparse and solved as a symmetric banded system.
    """
    from scipy import sparse
    from scipy.linalg import solveh_banded
    arr = np.asarray(y, dtype=float)
    if arr.ndim not in (1, 2) or arr.shape[-1] < 3 or not np.isfinite(arr).all():
        raise ValueError("als_baseline needs finite values, shape (P,) or (N, P) with P >= 3")
    if not (lam > 0 and 0 < p < 1 and niter >= 1):
        raise ValueError("als_baseline needs lam > 0, 0 < p < 1 and niter >= 1")
    rows = np.atleast_2d(arr)
    n_pts = rows.shape[1]
    d = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(n_pts - 2, n_pts))
    dtd = (d.T @ d).tocsr()
    penalty = np.zeros((3, n_pts))  # upper banded storage for solveh_banded
    penalty[0, 2:] = lam * dtd.diagonal(2)
    penalty[1, 1:] = lam * dtd.diagonal(1)
    penalty[2] = lam * dtd.diagonal(0)
    out = np.empty_like(rows)
    for i, row in enumerate(rows):
        w = np.ones(n_pts)
        for _ in range(niter):
            ab = penalty.copy()
            ab[2] += w
            z = solveh_banded(ab, w * row, check_finite=False)
            w = np.where(row > z, p, 1.0 - p)
        out[i] = z
    return out[0] if arr.ndim == 1 else out


def mask_ranges(two_theta: np.ndarray, y: np.ndarray, ranges, fill: float | None = 0.0,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Mask the 2-theta ``ranges`` [(lo, hi), ...] of pattern(s) ``y`` (..., P).

    Returns (masked copy, mask (P,) bool). ``fill`` replaces masked points; ``None`` bridges
    each masked stretch by linear interpolation instead (what a baseline fit wants).
    """
    tt = np.asarray(two_theta, dtype=float)
    mask = np.zeros(tt.shape, dtype=bool)
    for lo, hi in ranges:
        mask |= (tt >= lo) & (tt <= hi)
    out = np.array(y, dtype=float, copy=True)
    if mask.any():
        if fill is not None:
            out[..., mask] = fill
        elif not mask.all():
            flat = out.reshape(-1, tt.size)
            for row in flat:
                row[mask] = np.interp(tt[mask], tt[~mask], row[~mask])
    return out, mask


def _preprocess(two_theta, raw, ranges, als):
    """Baseline removal with the masked stretches bridged, then the masks set to zero."""
    bridged, _ = mask_ranges(two_theta, raw, ranges, fill=None)
    flat = raw - als_baseline(bridged, **als)
    masked, _ = mask_ranges(two_theta, flat, ranges, fill=0.0)
    return masked.astype(np.float32)


def _grid(two_theta) -> np.ndarray:
    lo, hi, step = (float(v) for v in two_theta)
    if not (0 < lo < hi < 180 and 0 < step < hi - lo):
        raise ValueError(f"two_theta must be (start, stop, step) in degrees, got {two_theta}")
    return np.round(lo + step * np.arange(int(round((hi - lo) / step)) + 1), 10)


def _smooth_background(rng, tt, n, level, low_angle=(0.0, 1.0), decay=(2.0, 8.0)):
    """Per-pattern smooth backgrounds (n, P): a gentle Chebyshev slope around ``level`` plus a
    low-angle exponential rise (air scatter, sample holder)."""
    u = 2 * (tt - tt[0]) / (tt[-1] - tt[0]) - 1
    basis = np.stack([np.ones_like(u), u, 2 * u * u - 1, 4 * u ** 3 - 3 * u])
    coef = np.column_stack([np.ones(n), rng.normal(0, 0.15, n), rng.normal(0, 0.06, n),
                            rng.normal(0, 0.03, n)])
    rise = rng.uniform(*low_angle, n)[:, None] * np.exp(
        -(tt - tt[0])[None, :] / rng.uniform(*decay, n)[:, None])
    level = np.reshape(level, (-1, 1))
    return level * np.maximum(coef @ basis + rise, 0.05)


def _multi_hot(n, combos, names):
    hot = np.zeros((n, len(names)), dtype=bool)
    for i, combo in enumerate(combos):
        hot[i, list(combo)] = True
    return hot


# ------------------------------------------------------------------------------ generators

#: Nominal equation of state of (Mg0.2Fe0.8)O for the ramp look-alike (third-order
#: Birch-Murnaghan; K0 and K0' typical of FeO-rich ferropericlase, not fitted to data).
RAMP_EOS = {"a0_A": xs.ROCK_SALT_A, "K0_GPa": 160.0, "K0_prime": 4.0}


def _bm3_scale(pressure, k0, k0p):
    """Linear compression a/a0 at ``pressure`` (GPa) from a third-order Birch-Murnaghan EOS."""
    x = np.linspace(0.45, 1.0, 5501)                      # V/V0
    p = 1.5 * k0 * (x ** (-7 / 3) - x ** (-5 / 3)) * (1 + 0.75 * (k0p - 4) * (x ** (-2 / 3) - 1))
    return np.interp(pressure, p[::-1], x[::-1]) ** (1 / 3)


def pressure_ramp(n_patterns: int = 349, n_points: int = 4023, transition: int = 185,
                  seed: int = 0, *, wavelength: float = 0.4843,
                  two_theta: tuple[float, float] = (9.56, 25.55),
                  pressure_gpa: tuple[float, float] = (2.0, 100.0),
                  stretch: tuple[float, float] = (0.012, 0.03), peak_counts: float = 4000.0,
                  background_counts: float = 800.0, read_noise: float = 3.0,
                  ) -> SimulatedPatterns:
    """A look-alike of the PaNOSC (Mg0.2Fe0.8)O pressure ramp: classes "low" and "high".

    Pressure rises monotonically (random increments) over ``pressure_gpa``; the cubic lattice
    follows ``RAMP_EOS``. From pattern ``transition`` on, the cell is stretched along [111]
    by ``stretch`` (growing linearly from the first to the second value): the rB1
    (R-3m) form, which splits 111, 220, 311 and 222 while 200 stays single. Widths grow with
    pressure (non-hydrostatic stress), the signal fades a little (thinning sample) and the
    diamond-anvil background drifts; counts are Poisson plus Gaussian read noise.
    """
    if n_patterns < 2 or not 0 < transition < n_patterns:
        raise ValueError(f"need n_patterns >= 2 and 0 < transition < n_patterns, got "
                         f"{n_patterns} and {transition}")
    if n_points < 16:
        raise ValueError(f"n_points must be at least 16, got {n_points}")
    rng = np.random.default_rng(seed)
    tt = np.linspace(two_theta[0], two_theta[1], n_points)
    steps = rng.gamma(20.0, 1.0, n_patterns - 1)
    frac = np.concatenate([[0.0], np.cumsum(steps)]) / steps.sum()
    pressure = pressure_gpa[0] + (pressure_gpa[1] - pressure_gpa[0]) * frac
    scale = _bm3_scale(pressure, RAMP_EOS["K0_GPa"], RAMP_EOS["K0_prime"])
    idx = np.arange(n_patterns)
    high = idx >= transition
    s = np.where(high, stretch[0] + (stretch[1] - stretch[0])
                 * (idx - transition) / max(n_patterns - 1 - transition, 1), 0.0)
    axis = np.ones(3) / math.sqrt(3)
    cubic = xs.rock_salt(RAMP_EOS["a0_A"])
    d_min = wavelength / (2 * math.sin(math.radians(tt[-1] / 2)))
    grow = max(1.0, float(np.max(scale * (1 + 2 * s / 3))))
    refl = xs.reflections(cubic, wavelength, float(xs.two_theta_deg(0.97 * d_min / grow,
                                                                    wavelength)), "rock-salt")
    lattices = xs.strained(refl.lattice[None] * scale[:, None, None],
                           s[:, None, None] * (np.outer(axis, axis) - np.eye(3) / 3))
    width = 0.03 + 0.035 * frac                               # FWHM at low angle, degrees
    uvw = np.column_stack([np.full(n_patterns, 0.004), np.zeros(n_patterns), width ** 2])
    crystal = xs.phase_profiles(refl, tt, lattices, uvw, 0.4)
    drift = np.exp(np.cumsum(rng.normal(0.0, 0.01, n_patterns)))
    crystal *= (peak_counts * (1 - 0.3 * frac) * drift / crystal.max(axis=1))[:, None]
    level = background_counts * np.exp(np.cumsum(rng.normal(0.0, 0.01, n_patterns)))
    hump = np.exp(-0.5 * ((tt - 17.0) / 4.0) ** 2)
    background = (_smooth_background(rng, tt, n_patterns, level, (0.3, 0.8), (2.0, 5.0))
                  + 0.25 * level[:, None] * hump)
    intensity = counting_noise(crystal + background, rng, read_noise)
    return SimulatedPatterns(
        two_theta=tt, intensity=intensity, wavelength=float(wavelength),
        pattern_id=[f"ramp_{i:04d}" for i in idx], phase_names=("low", "high"),
        phases=np.column_stack([~high, high]),
        scan={"pressure_step": idx, "pressure_gpa": pressure, "stretch_111": s,
              "a_cubic_A": RAMP_EOS["a0_A"] * scale},
        background=background.astype(np.float32),
        meta={"kind": "pressure_ramp", "library": xs.library_version(), "seed": seed,
              "structures": {"low": xs.NOTES["rock-salt"], "high": xs.NOTES["rB1"]},
              "equation_of_state": dict(RAMP_EOS, form="Birch-Murnaghan 3rd order, nominal"),
              "transition": int(transition), "stretch": tuple(stretch),
              "profile": "pseudo-Voigt eta 0.4, FWHM^2 = 0.004 tan^2(theta) + W(pressure)",
              "noise": f"Poisson + Gaussian read noise sd {read_noise}"})


HYDRO_PHASES = ("La-bastnaesite", "calcite", "rhenium")
DEFAULT_ALS = {"lam": 1e5, "p": 0.002, "niter": 10}


def hydrothermal_artefacts(wavelength: float, two_theta) -> list[tuple[float, float]]:
    """The 2-theta ranges a preprocessing step masks for :func:`hydrothermal`: a detector gap
    (38-39.5 % of the range) and +-0.25 deg around the diamond reflections in range."""
    tt = _grid(two_theta)
    span = tt[-1] - tt[0]
    ranges = [(tt[0] + 0.38 * span, tt[0] + 0.395 * span)]
    for hkl2 in (3, 8, 11):           # diamond 111, 220, 311
        c = float(xs.two_theta_deg(DIAMOND_A / math.sqrt(hkl2), wavelength))
        if tt[0] < c < tt[-1]:
            ranges.append((c - 0.25, c + 0.25))
    return ranges


def hydrothermal(n_per_combo: int = 15, phases=HYDRO_PHASES, preprocess: bool = False,
                 seed: int = 0, *, wavelength: float = 0.6199, two_theta=(4.0, 30.0, 0.01),
                 signal_counts=(40.0, 1200.0), liquid_counts=(200.0, 2000.0),
                 texture_prob: float = 0.5, few_crystallites_prob: float = 0.5,
                 strain_sd: float = 0.004, deviatoric_sd: float = 0.0015,
                 artefact_prob: float = 0.5, read_noise: float = 2.0,
                 mask=None, als: dict | None = None) -> SimulatedPatterns:
    """Micro-XRD of hydrothermal fluids: every non-empty combination of ``phases``, each
    ``n_per_combo`` times (multi-label truth), at 20 keV by default.

    Distortions, drawn per pattern: weak crystalline signal (strongest peak ``signal_counts``
    over a water background of ``liquid_counts``: S(q) humps at 2.0 and 2.9 1/A), peak
    shifts (isotropic + deviatoric lattice strain per phase), March-Dollase preferred
    orientation (r in 0.5..2 about a random axis, with ``texture_prob``), few crystallites
    (gamma-distributed per-reflection intensities, with ``few_crystallites_prob``), widths and
    Lorentz fractions, a detector gap and diamond reflections (with ``artefact_prob``).
    ``preprocess`` returns the patterns after :func:`als_baseline` removal (``als`` options,
    masked stretches bridged for the fit) and zeroed ``mask`` ranges (default
    :func:`hydrothermal_artefacts`). The same seed gives the same raw patterns either way.
    """
    phases = tuple(phases)
    unknown = [p for p in phases if p not in xs.NAMED]
    if not phases or unknown or n_per_combo < 1:
        raise ValueError(f"phases must be names from {sorted(xs.NAMED)} (got {unknown or phases})"
                         f" and n_per_combo >= 1 (got {n_per_combo})")
    rng = np.random.default_rng(seed)
    tt = _grid(two_theta)
    combos = [c for k in range(1, len(phases) + 1)
              for c in itertools.combinations(range(len(phases)), k)]
    combos = [c for c in combos for _ in range(n_per_combo)]
    n, p = len(combos), tt.size
    hot = _multi_hot(n, combos, phases)
    uvw = np.column_stack([rng.uniform(0, 0.01, n), np.zeros(n), rng.uniform(0.02, 0.07, n) ** 2])
    eta = rng.uniform(0.2, 0.7, n)
    weight = np.exp(rng.uniform(math.log(0.15), 0.0, (n, len(phases)))) * hot
    weight /= weight.max(axis=1, keepdims=True)
    texture = rng.random(n) < texture_prob
    few = rng.random(n) < few_crystallites_prob
    crystal = np.zeros((n, p))
    tt_ref = float(tt[-1]) * 1.03 + 0.5
    for k, name in enumerate(phases):
        refl = xs.reflections(xs.named_structure(name), wavelength, tt_ref, name)
        r_count = refl.hkl.shape[0]
        lattices = xs.strained(refl.lattice, xs.random_strains(rng, n, strain_sd, deviatoric_sd))
        mult = np.ones((n, r_count))
        r = np.exp(rng.uniform(math.log(0.5), math.log(2.0), n))
        md = xs.march_dollase(refl.normals(), xs.random_directions(rng, n), r)
        mult = np.where(texture[:, None], mult * md, mult)
        shape = rng.uniform(0.3, 3.0, n)[:, None]
        spots = rng.gamma(shape, 1.0 / shape, (n, r_count))
        mult = np.where(few[:, None], mult * spots, mult)
        rows = hot[:, k]
        prof = xs.phase_profiles(refl, tt, lattices[rows], uvw[rows], eta[rows], mult[rows])
        crystal[rows] += weight[rows, k, None] * prof / prof.max(axis=1, keepdims=True)
    signal = np.exp(rng.uniform(*np.log(signal_counts), n))
    crystal *= (signal / crystal.max(axis=1))[:, None]
    q = 4 * math.pi * np.sin(np.radians(tt / 2)) / wavelength
    water = np.exp(-0.5 * ((q - 2.0) / 0.35) ** 2) + 0.45 * np.exp(-0.5 * ((q - 2.9) / 0.5) ** 2)
    liquid = rng.uniform(*liquid_counts, n)
    background = liquid[:, None] * water + _smooth_background(rng, tt, n, 0.3 * liquid)
    ranges = hydrothermal_artefacts(wavelength, two_theta)
    diamond = np.zeros((n, p))
    for lo, hi in ranges[1:]:
        on = rng.random(n) < artefact_prob
        height = rng.uniform(0.5, 20.0, n) * signal * on
        diamond += height[:, None] * np.exp(-0.5 * ((tt - (lo + hi) / 2) / 0.01) ** 2)
    gap = np.where((tt >= ranges[0][0]) & (tt <= ranges[0][1]), 0.02, 1.0)
    intensity = counting_noise((crystal + background + diamond) * gap, rng, read_noise)
    mask = ranges if mask is None else [tuple(m) for m in mask]
    if preprocess:
        intensity = _preprocess(tt, intensity, mask, dict(DEFAULT_ALS, **(als or {})))
    return SimulatedPatterns(
        two_theta=tt, intensity=intensity, wavelength=float(wavelength),
        pattern_id=[f"hydro_{i:04d}" for i in range(n)], phase_names=phases, phases=hot,
        scan={"pattern": np.arange(n)}, background=background.astype(np.float32),
        meta={"kind": "hydrothermal", "library": xs.library_version(), "seed": seed,
              "preprocessed": bool(preprocess), "mask_ranges": mask,
              "als": dict(DEFAULT_ALS, **(als or {})) if preprocess else None,
              "structures": {ph: xs.NOTES[ph] for ph in phases},
              "approximate_positions": [ph for ph in phases if ph == "La-bastnaesite"],
              "truth": {"signal_counts": signal, "liquid_counts": liquid, "texture": texture,
                        "few_crystallites": few, "phase_weight": weight}})


def from_cifs(paths, n_patterns: int, wavelength: float = CU_KALPHA1,
              two_theta=(10.0, 100.0, 0.01), max_phases: int = 2, seed: int = 0, *,
              kalpha2: bool = True, fwhm=(0.06, 0.5), strain_sd: float = 0.003,
              deviatoric_sd: float = 0.001, zero_shift: float = 0.03,
              texture_prob: float = 0.3, peak_counts=(2000.0, 40000.0),
              background_counts=(200.0, 2500.0), read_noise: float = 0.0,
              ) -> SimulatedPatterns:
    """Random 1..``max_phases`` mixtures of the CIF structures ``paths`` (phase names = file
    stems), lab-diffractometer style, to train a classifier for measured patterns.

    Per pattern: phases and their scales (strongest phase 1, others 0.1-1), lattice strain
    per phase (peak shifts), a 2-theta zero shift, peak width (FWHM ``fwhm`` range at low
    angle, growing with tan(theta)), Lorentz fraction, mild preferred orientation, the Cu
    K-alpha2 doublet (``kalpha2``), a smooth background with a low-angle rise (sometimes an
    amorphous hump) and Poisson noise.
    """
    paths = [Path(pth) for pth in paths]
    names = tuple(pth.stem for pth in paths)
    if not paths or n_patterns < 1 or not 1 <= max_phases <= len(paths):
        raise ValueError("from_cifs needs at least one CIF, n_patterns >= 1 and "
                         f"1 <= max_phases <= number of CIFs (got {len(paths)}, {n_patterns}, "
                         f"{max_phases})")
    for i, name in enumerate(names):
        if name in names[:i]:
            raise InputError(paths[i], f"two CIF files share the phase name {name!r}; "
                                          "give every phase a distinct file name")
    rng = np.random.default_rng(seed)
    tt = _grid(two_theta)
    n, p, k_all = n_patterns, tt.size, len(paths)
    combos = [tuple(rng.choice(k_all, rng.integers(1, max_phases + 1), replace=False))
              for _ in range(n)]
    hot = _multi_hot(n, combos, names)
    w0 = rng.uniform(*fwhm, n)
    uvw = np.column_stack([rng.uniform(0, 1.0, n) * w0 ** 2, np.zeros(n), w0 ** 2])
    eta = rng.uniform(0.2, 0.8, n)
    shift = rng.uniform(-zero_shift, zero_shift, n)
    weight = rng.uniform(0.1, 1.0, (n, k_all)) * hot
    weight /= weight.max(axis=1, keepdims=True)
    doublet = (CU_KALPHA2 / CU_KALPHA1, 0.5) if kalpha2 else None
    tt_ref = min(float(tt[-1]) * 1.03 + 1.0, 179.0)
    crystal = np.zeros((n, p))
    for k, path in enumerate(paths):
        rows = hot[:, k]
        m = int(rows.sum())
        if m == 0:
            continue
        refl = xs.reflections(xs.load_cif(path), wavelength, tt_ref, names[k])
        lattices = xs.strained(refl.lattice, xs.random_strains(rng, m, strain_sd, deviatoric_sd))
        textured = rng.random(m) < texture_prob
        md = xs.march_dollase(refl.normals(), xs.random_directions(rng, m),
                              rng.uniform(0.7, 1.3, m))
        mult = np.where(textured[:, None], md, 1.0)
        prof = xs.phase_profiles(refl, tt, lattices, uvw[rows], eta[rows], mult, shift[rows],
                                 doublet)
        crystal[rows] += weight[rows, k, None] * prof / prof.max(axis=1, keepdims=True)
    crystal *= (rng.uniform(*peak_counts, n) / crystal.max(axis=1))[:, None]
    level = rng.uniform(*background_counts, n)
    background = _smooth_background(rng, tt, n, level, (0.0, 1.2), (2.0, 10.0))
    amorphous = rng.random(n) < 0.3
    centre, sd = rng.uniform(18, 30, n)[:, None], rng.uniform(3, 6, n)[:, None]
    background += ((amorphous * rng.uniform(0.1, 0.5, n) * level)[:, None]
                   * np.exp(-0.5 * ((tt[None, :] - centre) / sd) ** 2))
    intensity = counting_noise(crystal + background, rng, read_noise)
    return SimulatedPatterns(
        two_theta=tt, intensity=intensity, wavelength=float(wavelength),
        pattern_id=[f"mix_{i:05d}" for i in range(n)], phase_names=names, phases=hot,
        scan={"pattern": np.arange(n)}, background=background.astype(np.float32),
        meta={"kind": "from_cifs", "library": xs.library_version(), "seed": seed,
              "cif_files": [str(pth) for pth in paths], "kalpha2": doublet,
              "max_phases": max_phases,
              "truth": {"phase_weight": weight, "fwhm_low_angle": w0, "zero_shift": shift}})


def write_xy(patterns: SimulatedPatterns, folder: str | PathLike, *, header: bool = False,
             third_column: str | None = None, sep: str = "\t") -> list[Path]:
    """Write one text pattern per file (``<pattern_id>.xy``: 2-theta, intensity and optionally
    a third column, ``"sigma"`` = sqrt(counts) or ``"background"`` = the true background) and
    ``labels.csv`` (pattern_id,label with phases joined by ';'). Returns the pattern paths."""
    if third_column not in (None, "sigma", "background"):
        raise ValueError("third_column must be None, 'sigma' or 'background', "
                         f"got {third_column!r}")
    if third_column == "background" and patterns.background is None:
        raise ValueError("these patterns carry no background to write")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, pid in enumerate(patterns.pattern_id):
        cols = [patterns.two_theta, patterns.intensity[i].astype(float)]
        if third_column == "sigma":
            cols.append(np.sqrt(np.maximum(patterns.intensity[i], 1.0)))
        elif third_column == "background":
            cols.append(patterns.background[i])
        head = ""
        if header:
            head = (f"# simulated by xrfhub ({patterns.meta.get('kind', '')}), wavelength "
                    f"{patterns.wavelength} A, label {patterns.labels[i]}\n"
                    f"# two_theta_deg{sep}intensity" + (f"{sep}{third_column}" if third_column
                                                        else "") + "\n")
        body = np.column_stack(cols)
        path = folder / f"{pid}.xy"
        with open(path, "w", newline="\n") as fh:
            fh.write(head)
            np.savetxt(fh, body, fmt=["%.4f"] + ["%.3f"] * (len(cols) - 1), delimiter=sep)
        written.append(path)
    with open(folder / "labels.csv", "w", newline="\n") as fh:
        fh.write("pattern_id,label\n")
        fh.writelines(f"{pid},{lab}\n" for pid, lab in zip(patterns.pattern_id, patterns.labels))
    return written


__all__ = ["SimulatedPatterns", "pressure_ramp", "hydrothermal", "from_cifs", "write_xy",
           "als_baseline", "mask_ranges", "counting_noise", "render_peaks", "phase_profiles",
           "caglioti_fwhm", "hydrothermal_artefacts", "CU_KALPHA1", "CU_KALPHA2",
           "HYDRO_PHASES", "RAMP_EOS"]
