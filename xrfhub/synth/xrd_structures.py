"""Crystal structures, their reflection lists and the peak profiles drawn from them.

Peak positions and intensities come from a kept library (pymatgen's ``XRDCalculator``: structure
factors from tabulated atomic scattering factors, Lorentz-polarisation factor), never from typed
peak lists. pymatgen is imported inside functions so that ``import xrfhub`` stays light.

pymatgen merges symmetry-equivalent (and accidentally coincident) reflections into one stick.
To model what a real sample does to single reflections - anisotropic strain that splits a peak,
preferred orientation that favours some directions, few crystallites that light up some spots
only - each stick is spread back over the individual reciprocal-lattice points (h k l) that fall
on it, with equal shares. The share is exact for symmetry-equivalent reflections and an
approximation for accidental coincidences (e.g. cubic 333/511), which only matters once a
distortion separates them. The hkl are indices of the reference lattice, so a strained lattice
gives every reflection's new d-spacing exactly (atoms keep their fractional positions).
Intensities are kept at their reference values under strain (form-factor and Lorentz changes of
a few per cent of d are ignored).

The reflections become profiles with :func:`render_peaks` (area-normalised pseudo-Voigt peaks
with Caglioti widths, convolved in Fourier space) and :func:`phase_profiles` (adds strain,
zero shift and the K-alpha2 doublet).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from os import PathLike
from pathlib import Path

import numpy as np

from ..errors import InputError

#: Published cells and Wyckoff positions (space group, a, c, [(species, position)]).
#: Calcite: R-3c hexagonal setting (Maslen et al. 1995 type values); rhenium: P6_3/mmc, 2c.
CALCITE = ("R-3c", 4.988, 17.061, [("Ca", (0, 0, 0)), ("C", (0, 0, 0.25)),
                                    ("O", (0.2578, 0, 0.25))])
RHENIUM = ("P6_3/mmc", 2.761, 4.456, [("Re", (1 / 3, 2 / 3, 0.25))])

#: La-bastnaesite LaCO3F, P-62c, a 7.12, c 9.76, Z = 6. The cell is published; the atom
#: positions below are APPROXIMATE (a chemically sensible model, not a refinement): La on 6g
#: at x = 0.34 (La-F 2.4 A to F on 2a), F on 2a and 4f in the La-F layers at z = 0, 1/2, and
#: the carbonate groups between them at z = 1/4, 3/4 as flat CO3 triangles around C on the
#: three-fold axes (2b, 2c, 2d) with C-O 1.28 A; the triangles around 2c point the other way,
#: which is what doubles c (with all triangles alike the cell would be P-62m with c/2).
#: Peak positions are right (they follow the cell); relative intensities are only indicative.
_R_CO = 1.28 / 7.12  # C-O distance in fractions of a
BASTNAESITE = ("P-62c", 7.12, 9.76, [
    ("La", (0.34, 0.0, 0.0)),
    ("F", (0.0, 0.0, 0.0)), ("F", (1 / 3, 2 / 3, 0.0)),
    ("C", (0.0, 0.0, 0.25)), ("C", (1 / 3, 2 / 3, 0.25)), ("C", (2 / 3, 1 / 3, 0.25)),
    ("O", (_R_CO, 0.0, 0.25)), ("O", (1 / 3 - _R_CO, 2 / 3, 0.25)),
    ("O", (2 / 3 + _R_CO, 1 / 3, 0.25)),
])

#: Ferropericlase (Mg0.2Fe0.8)O, rock salt Fm-3m, one disordered Mg/Fe site (4a) and O (4b).
ROCK_SALT_A = 4.29

NOTES = {
    "calcite": "R-3c a 4.988 c 17.061 A; Ca 6b (0,0,0), C 6a (0,0,1/4), O 18e (0.2578,0,1/4)",
    "rhenium": "P6_3/mmc a 2.761 c 4.456 A; Re 2c (1/3,2/3,1/4)",
    "La-bastnaesite": "P-62c a 7.12 c 9.76 A; atom positions APPROXIMATE (see "
                      "xrd_structures.BASTNAESITE)",
    "rock-salt": "(Mg0.2Fe0.8)O Fm-3m a 4.29 A; (Fe0.8Mg0.2) 4a, O 4b",
    "rB1": "rhombohedral R-3m distortion of the rock salt (rB1, as in FeO at high pressure): "
           "the cubic cell stretched along [111] at constant volume, atoms on 3a/3b",
}


def library_version() -> str:
    """The name and version of the diffraction library, for provenance in ``meta``."""
    from importlib.metadata import PackageNotFoundError, version
    for dist in ("pymatgen-core", "pymatgen"):
        try:
            return f"pymatgen {version(dist)} (XRDCalculator)"
        except PackageNotFoundError:
            continue
    return "pymatgen (version unknown)"


def _from_spacegroup(spec):
    from pymatgen.core import Lattice, Structure
    group, a, c, sites = spec
    return Structure.from_spacegroup(group, Lattice.hexagonal(a, c), [s for s, _ in sites],
                                     [p for _, p in sites])


@lru_cache(maxsize=16)
def _cached_rock_salt(a: float):
    # pymatgen builds the 192 Fm-3m operations in ~2 s; the ramp asks for the same cell again
    from pymatgen.core import Lattice, Structure
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [{"Fe": 0.8, "Mg": 0.2}, "O"],
                                     [(0, 0, 0), (0.5, 0.5, 0.5)])


def calcite():
    """Calcite CaCO3 (30 atoms in the hexagonal cell)."""
    return _from_spacegroup(CALCITE)


def rhenium():
    """Rhenium metal, hcp."""
    return _from_spacegroup(RHENIUM)


def la_bastnaesite():
    """La-bastnaesite LaCO3F with approximate atom positions (see ``BASTNAESITE``)."""
    return _from_spacegroup(BASTNAESITE)


def rock_salt(a: float = ROCK_SALT_A):
    """(Mg0.2Fe0.8)O in the rock-salt structure, Mg/Fe disordered on one site."""
    return _cached_rock_salt(float(a)).copy()


def rb1(a_cubic: float, stretch: float):
    """The rhombohedral (R-3m) high-pressure form of the rock salt, hexagonal setting.

    ``stretch`` is the strain along the cubic [111] of a volume-preserving (to first order)
    deformation ``stretch * (n n^T - I/3)``; 0 gives back the cubic cell (c/a = sqrt 6).
    """
    from pymatgen.core import Lattice, Structure
    a_hex = a_cubic / math.sqrt(2) * (1 - stretch / 3)
    c_hex = a_cubic * math.sqrt(3) * (1 + 2 * stretch / 3)
    return Structure.from_spacegroup("R-3m", Lattice.hexagonal(a_hex, c_hex),
                                     [{"Fe": 0.8, "Mg": 0.2}, "O"], [(0, 0, 0), (0, 0, 0.5)])


NAMED = {"calcite": calcite, "rhenium": rhenium, "La-bastnaesite": la_bastnaesite,
         "rock-salt": rock_salt}


def named_structure(name: str):
    """One of the built-in structures by name (``NAMED``)."""
    if name not in NAMED:
        raise ValueError(f"unknown phase {name!r}: expected one of {sorted(NAMED)}")
    return NAMED[name]()


def load_cif(path: str | PathLike):
    """Read a crystal structure from a CIF file; a file that is not one raises InputError."""
    import warnings
    from pymatgen.core import Structure
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such CIF file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns about rounded occupancies etc.
            return Structure.from_file(path)
    except Exception as exc:  # pymatgen raises many types; report them as bad input
        raise InputError(path, f"cannot read a crystal structure from this CIF ({exc}); "
                               "expected a CIF with cell, space group and atom sites") from exc


@dataclass(frozen=True)
class Reflections:
    """Individual reflections of one phase: indices, intensity shares and reference lattice.

    ``intensity`` is integrated intensity (structure factor squared times Lorentz-polarisation
    at the reference angle), scaled so that the strongest merged peak is 1.
    """

    name: str
    hkl: np.ndarray         # (R, 3) int, indices in the reference lattice
    intensity: np.ndarray   # (R,) float
    lattice: np.ndarray     # (3, 3) rows a, b, c in angstrom (cartesian)
    wavelength: float

    def d_spacings(self, lattices: np.ndarray | None = None) -> np.ndarray:
        """d (angstrom) of every reflection in the reference lattice (R,) or in each of a stack
        of lattices (N, 3, 3) -> (N, R)."""
        if lattices is None:
            return 1.0 / np.linalg.norm(self.hkl @ np.linalg.inv(self.lattice).T, axis=-1)
        recip = np.transpose(np.linalg.inv(lattices), (0, 2, 1))          # rows a*, b*, c*
        g = np.einsum("rk,nkj->nrj", self.hkl.astype(float), recip)
        return 1.0 / np.linalg.norm(g, axis=-1)

    def normals(self) -> np.ndarray:
        """Unit scattering vectors (R, 3) in the cartesian frame of the reference lattice."""
        g = self.hkl @ np.linalg.inv(self.lattice).T
        return g / np.linalg.norm(g, axis=1, keepdims=True)


def two_theta_deg(d: np.ndarray, wavelength: float) -> np.ndarray:
    """Bragg angle 2-theta in degrees; NaN where the reflection is out of reach."""
    s = wavelength / (2.0 * np.asarray(d, dtype=float))
    with np.errstate(invalid="ignore"):
        return np.degrees(2.0 * np.arcsin(np.where(s <= 1.0, s, np.nan)))


def reflections(structure, wavelength: float, two_theta_max: float, name: str = "",
                two_theta_min: float = 0.0) -> Reflections:
    """Reflections of ``structure`` up to ``two_theta_max`` (degrees) at ``wavelength`` (A).

    pymatgen's stick pattern gives the merged intensities; every reciprocal-lattice point on a
    stick gets an equal share (see the module docstring).
    """
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
    two_theta_max = min(float(two_theta_max), 179.0)
    pattern = XRDCalculator(wavelength=wavelength).get_pattern(
        structure, scaled=True, two_theta_range=(two_theta_min, two_theta_max))
    sticks_tt = np.asarray(pattern.x, dtype=float)
    sticks_i = np.asarray(pattern.y, dtype=float) / 100.0
    matrix = np.array(structure.lattice.matrix, dtype=float)
    hkl = _points_in_sphere(matrix, wavelength / (2 * math.sin(math.radians(two_theta_max) / 2)))
    tt = two_theta_deg(1.0 / np.linalg.norm(hkl @ np.linalg.inv(matrix).T, axis=1), wavelength)
    # assign each point to the nearest stick; points that sit on no stick have zero intensity
    order = np.argsort(sticks_tt)
    sticks_tt, sticks_i = sticks_tt[order], sticks_i[order]
    j = np.clip(np.searchsorted(sticks_tt, tt), 1, max(len(sticks_tt) - 1, 1))
    left = np.clip(j - 1, 0, len(sticks_tt) - 1)
    right = np.clip(j, 0, len(sticks_tt) - 1)
    nearest = np.where(np.abs(tt - sticks_tt[left]) <= np.abs(tt - sticks_tt[right]), left, right)
    on_stick = np.abs(tt - sticks_tt[nearest]) < 1e-3
    hkl, nearest = hkl[on_stick], nearest[on_stick]
    counts = np.bincount(nearest, minlength=len(sticks_tt))
    share = sticks_i[nearest] / counts[nearest]
    return Reflections(name=name, hkl=hkl.astype(np.int32), intensity=share, lattice=matrix,
                       wavelength=float(wavelength))


def _points_in_sphere(matrix: np.ndarray, d_min: float) -> np.ndarray:
    """All integer (h, k, l) except 0 with d >= d_min for the lattice ``matrix``."""
    lengths = np.linalg.norm(matrix, axis=1)
    hmax = np.floor(lengths / d_min).astype(int) + 1
    grids = np.meshgrid(*[np.arange(-m, m + 1) for m in hmax], indexing="ij")
    hkl = np.stack([g.ravel() for g in grids], axis=1)
    g = np.linalg.norm(hkl @ np.linalg.inv(matrix).T, axis=1)
    keep = (g > 0) & (g <= 1.0 / d_min * (1 + 1e-9))
    return hkl[keep]


def strained(lattice: np.ndarray, strains: np.ndarray) -> np.ndarray:
    """Lattices (N, 3, 3) after strain tensors ``strains`` (N, 3, 3): every cell vector a
    becomes (I + E) a. ``lattice`` is one (3, 3) matrix (rows a, b, c) or one per strain."""
    strains = np.asarray(strains, dtype=float)
    lattice = np.broadcast_to(np.asarray(lattice, dtype=float), strains.shape)
    return np.einsum("nij,nkj->nik", lattice, np.eye(3) + strains)


def random_strains(rng: np.random.Generator, n: int, isotropic_sd: float,
                   deviatoric_sd: float) -> np.ndarray:
    """Symmetric strain tensors (n, 3, 3): an isotropic part and a traceless random part."""
    iso = rng.normal(0.0, isotropic_sd, n)[:, None, None] * np.eye(3)
    m = rng.normal(0.0, deviatoric_sd, (n, 3, 3))
    dev = (m + np.transpose(m, (0, 2, 1))) / 2
    dev -= np.trace(dev, axis1=1, axis2=2)[:, None, None] * np.eye(3) / 3
    return iso + dev


def march_dollase(normals: np.ndarray, directions: np.ndarray, r: np.ndarray) -> np.ndarray:
    """March-Dollase preferred-orientation weights (N, R).

    ``normals`` (R, 3) unit scattering vectors, ``directions`` (N, 3) unit texture axes,
    ``r`` (N,) the March parameter (1 = random powder, < 1 plates, > 1 needles along the axis).
    """
    cos2 = (directions @ normals.T) ** 2
    r = np.asarray(r, dtype=float)[:, None]
    return (r ** 2 * cos2 + (1.0 - cos2) / r) ** -1.5


def random_directions(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit vectors (n, 3) uniform on the sphere."""
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# ------------------------------------------------------------------ reflections to profiles

def caglioti_fwhm(two_theta: np.ndarray, u: float | np.ndarray = 0.0,
                  v: float | np.ndarray = 0.0, w: float | np.ndarray = 0.003) -> np.ndarray:
    """Peak FWHM in degrees, FWHM^2 = U tan^2(theta) + V tan(theta) + W (deg^2)."""
    t = np.tan(np.radians(np.asarray(two_theta, dtype=float) / 2))
    return np.sqrt(np.maximum(u * t * t + v * t + w, 1e-8))


def render_peaks(two_theta: np.ndarray, centres: np.ndarray, areas: np.ndarray,
                 uvw=(0.0, 0.0, 0.003), eta: float | np.ndarray = 0.5,
                 n_segments: int = 8) -> np.ndarray:
    """Sum of area-normalised pseudo-Voigt peaks on a uniform 2-theta grid: (N, R) -> (N, P).

    Widths follow Caglioti rows ``uvw`` (N, 3) (or one row), Lorentz fraction ``eta`` (N,)
    or scalar; NaN centres and zero areas are skipped. The peaks are spread onto the grid
    (linear split between the two nearest points, which keeps each centre exact) and convolved
    with the profile in Fourier space, where both the Gaussian and the Lorentzian have closed
    forms: no truncated tails, and the cost does not grow with the number of reflections. The
    width changes with angle by blending ``n_segments`` convolutions, each with the width at
    its segment centre, with hat-function weights.
    """
    from scipy.fft import irfft, next_fast_len, rfft, rfftfreq
    tt = np.asarray(two_theta, dtype=float)
    centres = np.atleast_2d(np.asarray(centres, dtype=float))
    n, r = centres.shape
    p = tt.size
    areas = np.broadcast_to(areas, (n, r))
    uvw = np.broadcast_to(np.asarray(uvw, dtype=float).reshape(-1, 3), (n, 3))
    eta = np.broadcast_to(np.asarray(eta, dtype=float).reshape(-1), (n,))[:, None]
    step = (tt[-1] - tt[0]) / (p - 1)
    knots = np.linspace(tt[0], tt[-1], max(1, n_segments))
    widths = caglioti_fwhm(knots[None, :], uvw[:, :1], uvw[:, 1:2], uvw[:, 2:3])  # (N, S)
    margin = int(math.ceil(20 * widths.max() / step))   # peaks this far outside still leak in
    p_ext = p + 2 * margin
    pos = (centres - tt[0]) / step + margin
    ok = np.isfinite(pos) & (pos >= 0) & (pos < p_ext - 1) & (areas != 0)
    i0 = np.floor(np.where(ok, pos, 0)).astype(np.int64)
    frac = np.where(ok, pos, 0) - i0
    base = np.arange(n)[:, None] * p_ext + i0
    a = np.where(ok, areas, 0.0) / step                     # area -> density on the grid
    hist = (np.bincount(base.ravel(), (a * (1 - frac)).ravel(), n * p_ext)
            + np.bincount((base + 1).ravel(), (a * frac).ravel(), n * p_ext))
    length = next_fast_len(p_ext + 2 * margin, real=True)  # zero padding against wrap-around
    spectrum = rfft(hist.reshape(n, p_ext), n=length, axis=1)
    f = rfftfreq(length, d=step)[None, :]
    out = np.zeros((n, p))
    hats = np.eye(len(knots))
    for s in range(len(knots)):
        hat = np.interp(tt, knots, hats[s]) if len(knots) > 1 else np.ones(p)
        cols = np.flatnonzero(hat > 0)
        w = widths[:, s:s + 1]
        kernel = ((1 - eta) * np.exp(-(math.pi * f * w) ** 2 / (4 * math.log(2)))
                  + eta * np.exp(-math.pi * w * f))
        conv = irfft(spectrum * kernel, n=length, axis=1)
        out[:, cols] += hat[cols] * conv[:, margin + cols]
    return out


def phase_profiles(refl: Reflections, two_theta: np.ndarray, lattices: np.ndarray,
                   fwhm_uvw: np.ndarray, eta: np.ndarray | float, multipliers=None,
                   zero_shift: np.ndarray | float = 0.0, kalpha2: tuple[float, float] | None = None,
                   ) -> np.ndarray:
    """Profiles (N, P) of one phase in N lattices (N, 3, 3), widths from per-pattern Caglioti
    (U, V, W) rows ``fwhm_uvw`` (N, 3), intensities times ``multipliers`` (N, R) when given.
    ``kalpha2`` = (wavelength ratio, intensity ratio) adds the K-alpha2 doublet."""
    centres = two_theta_deg(refl.d_spacings(lattices), refl.wavelength)
    centres = centres + np.reshape(zero_shift, (-1, 1))
    areas = refl.intensity[None, :] * (1.0 if multipliers is None else multipliers)
    areas = np.broadcast_to(areas, centres.shape)
    if kalpha2 is not None:
        ratio, share = kalpha2
        s = np.sin(np.radians(centres / 2)) * ratio
        with np.errstate(invalid="ignore"):
            c2 = np.degrees(2 * np.arcsin(np.where(s <= 1, s, np.nan)))
        centres = np.concatenate([centres, c2], axis=1)
        areas = np.concatenate([areas, share * areas], axis=1)
    return render_peaks(two_theta, centres, areas, fwhm_uvw, eta)
