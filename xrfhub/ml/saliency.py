"""Saliency pictures that do not invent lines: peaks named only within the detector resolution.

A saliency curve (one value per channel, see the plugins' ``saliency``) has maxima where the model
looks. Naming a maximum after the nearest emission line, however far, turns noise and artefacts
into chemistry ("Zn K-alpha" for a maximum 0.12 keV away). Here a maximum is named after a line
only when it lies within the detector's resolution of it, the FWHM at the line's energy: closer
than that the two cannot be told apart, farther they can, so the maximum is labelled by its
energy instead. When several lines lie within the resolution (Ti K-alpha and Ba L-alpha at
4.5 keV), all are named. The principal lines of sediment geochemistry are drawn as references
at their own energies, whatever the curve does.

Resolution model: a silicon drift detector, electronic noise and Fano statistics in quadrature,
FWHM(E)^2 = noise^2 + 2.3548^2 * F * eps * E with noise 0.10 keV, F = 0.115, eps = 3.65 eV per
electron-hole pair: 155 eV at Mn K-alpha, typical of core scanners (the synthetic instrument of
``xrfhub.synth`` uses the same numbers).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: Elements a sediment geochemist reads from a core scan, with the shell they are read from.
REFERENCE_ELEMENTS = {
    "Al": "K", "Si": "K", "P": "K", "S": "K", "Cl": "K", "K": "K", "Ca": "K", "Ti": "K", "Cr": "K",
    "Mn": "K", "Fe": "K", "Ni": "K", "Cu": "K", "Zn": "K", "Br": "K", "Rb": "K", "Sr": "K", "Y": "K",
    "Zr": "K", "Ba": "L", "Pb": "L", "Rh": "K",
}
#: Always labelled first on the reference axis: the lines a reader looks for first.
MAJOR = ("Ca Kα", "Fe Kα", "K Kα", "Ti Kα", "Si Kα", "Mn Kα", "Sr Kα", "Zr Kα", "Br Kα", "Rb Kα")

NOISE_FWHM_KEV = 0.10
FANO = 0.115
PAIR_ENERGY_KEV = 0.00365


def detector_fwhm_kev(energy_kev, noise_fwhm_kev: float = NOISE_FWHM_KEV, fano: float = FANO):
    """Energy resolution (FWHM, keV) of a silicon drift detector at ``energy_kev``."""
    e = np.maximum(np.asarray(energy_kev, dtype=float), 0.0)
    return np.sqrt(noise_fwhm_kev ** 2 + 2.3548 ** 2 * fano * PAIR_ENERGY_KEV * e)


def reference_lines(max_kev: float = 40.0, *, betas: bool = True) -> dict[str, float]:
    """Principal lines (``"Ca Kα"`` -> keV) of the reference elements a ``max_kev`` tube excites.

    K-alpha (and K-beta) of the K-read elements, L-alpha (and L-beta) of Ba and Pb; a line is kept
    only when its absorption edge lies below ``max_kev`` (the tube cannot excite it otherwise).
    """
    import xraylib

    families = {"K": (("α", xraylib.KA1_LINE), ("β", xraylib.KB1_LINE)),
                "L": (("α", xraylib.LA1_LINE), ("β", xraylib.LB1_LINE))}
    edges = {"K": xraylib.K_SHELL, "L": xraylib.L3_SHELL}
    out = {}
    for element, shell in REFERENCE_ELEMENTS.items():
        z = xraylib.SymbolToAtomicNumber(element)
        try:
            if xraylib.EdgeEnergy(z, edges[shell]) >= max_kev:
                continue
            for greek, code in families[shell][: 2 if betas else 1]:
                out[f"{element} {shell}{greek}"] = float(xraylib.LineEnergy(z, code))
        except ValueError:  # xraylib has no such line for this element
            continue
    return dict(sorted(out.items(), key=lambda item: item[1]))


def name_peak(energy_kev: float, lines: dict[str, float]) -> str | None:
    """The lines within the detector resolution of ``energy_kev`` (nearest first, joined by
    " / "), or None when no line is that close: the peak is then known by its energy only.

    Alpha lines outrank beta lines (a beta line carries ~10-20 % of its alpha's intensity): a
    beta line is named only when no alpha line is within the resolution (Fe K-beta at 7.06 keV),
    not beside one (K K-beta under Ca K-alpha at 3.6-3.7 keV).
    """
    close = sorted((abs(e - energy_kev), name) for name, e in lines.items()
                   if abs(e - energy_kev) <= float(detector_fwhm_kev(e)))
    alphas = [item for item in close if "α" in item[1]]
    return " / ".join(name for _, name in (alphas or close)) or None


def salient_peaks(energy: np.ndarray, saliency: np.ndarray, *, top: int = 8,
                  lines: dict[str, float] | None = None) -> list[tuple[float, str | None]]:
    """The ``top`` highest maxima of ``saliency``, in energy order, each with its line name
    (or None). Maxima closer than the detector resolution are one peak (the higher one)."""
    from scipy.signal import find_peaks

    energy, saliency = np.asarray(energy, dtype=float), np.asarray(saliency, dtype=float)
    if len(energy) < 3:
        return []
    step = float(np.median(np.diff(energy)))
    distance = max(1, int(round(float(detector_fwhm_kev(np.median(energy))) / step)))
    peaks, _ = find_peaks(saliency, distance=distance)
    peaks = sorted(peaks[np.argsort(saliency[peaks])[::-1][:top]])
    lines = reference_lines(float(energy[-1])) if lines is None else lines
    return [(float(energy[p]), name_peak(float(energy[p]), lines)) for p in peaks]


def plot_saliency(energy: np.ndarray, saliency: np.ndarray, path, *, top: int = 8, title: str = "",
                  max_kev: float | None = None) -> list[tuple[float, str | None]]:
    """Saliency against energy: reference lines at their energies, the ``top`` salient peaks
    marked and named only within the detector resolution. Returns the peaks ``(keV, name)``.

    ``max_kev`` (the tube voltage) bounds the plot: no fluorescence exists above it.
    """
    from ..plots import pyplot, save_figure

    energy, saliency = np.asarray(energy, dtype=float), np.asarray(saliency, dtype=float)
    if max_kev is not None:
        keep = energy <= max_kev
        energy, saliency = energy[keep], saliency[keep]
    lines = reference_lines(float(energy[-1]))
    peaks = salient_peaks(energy, saliency, top=top, lines=lines)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 4.6))
    ax.plot(energy, saliency, lw=0.9, color="C0", label="saliency (mean over spectra)")
    lo, hi = float(energy[0]), float(energy[-1])
    labelled = _spread_labels(lines, lo, hi)
    for name, e in lines.items():
        if not lo <= e <= hi:
            continue
        alpha_line = "α" in name
        ax.axvline(e, color="0.55" if alpha_line else "0.75", lw=0.6, ls=":", zorder=0)
        if name in labelled:
            ax.text(e, 1.01, name, transform=ax.get_xaxis_transform(), rotation=90, ha="center",
                    va="bottom", fontsize=7, color="0.25" if alpha_line else "0.5")
    ymax = float(np.nanmax(saliency)) if len(saliency) else 1.0
    for e, name in peaks:
        value = float(np.interp(e, energy, saliency))
        ax.plot([e], [value], "v", color="C3", ms=5)
        ax.annotate(name or f"{e:.2f} keV", (e, value), textcoords="offset points", xytext=(0, 6),
                    ha="center", va="bottom", rotation=90, fontsize=8,
                    color="C3" if name else "0.2", style="normal" if name else "italic")
    ax.plot([], [], "v", color="C3", ms=5, label="salient peak: named within the detector FWHM "
                                                  "of a line, else its energy")
    ax.plot([], [], ":", color="0.55", label="reference emission lines (dotted)")
    margin = 0.012 * (hi - lo)  # peak labels at the very ends stay clear of the axes
    ax.set(xlabel="energy (keV)", ylabel="mean normalised |dMSE/d input| (0-1)", xlim=(lo - margin, hi + margin),
           ylim=(0, ymax * 1.45 if ymax > 0 else 1.0))
    ax.set_title(title, pad=44)
    ax.legend(fontsize=8, loc="upper right", framealpha=0.9)
    save_figure(fig, path)
    return peaks


def _spread_labels(lines: dict[str, float], lo: float, hi: float, min_gap: float = 0.013) -> set[str]:
    """Names of the reference lines to label, major lines first, no two closer than ``min_gap``
    of the axis (labels would overprint); the others are drawn unlabelled."""
    span = max(hi - lo, 1e-9)
    order = sorted(lines, key=lambda n: (n not in MAJOR, MAJOR.index(n) if n in MAJOR else 0,
                                         "β" in n, lines[n]))
    chosen: list[float] = []
    names = set()
    for name in order:
        x = (lines[name] - lo) / span
        if 0 <= x <= 1 and all(abs(x - c) >= min_gap for c in chosen):
            chosen.append(x)
            names.add(name)
    return names


def write_saliency(energy, values, out, *, top: int = 8, title: str = "", max_kev: float | None = None) -> dict:
    """The CSV (energy, saliency) beside ``out`` and the PNG; what ``xrfhub saliency`` writes."""
    out = Path(out)
    table = out.with_suffix(".csv")
    np.savetxt(table, np.column_stack([energy, values]), delimiter=",", header="energy_kev,saliency",
               comments="", fmt="%.6g")
    peaks = plot_saliency(energy, values, out, top=top, max_kev=max_kev, title=title)
    return {"png": out, "csv": table, "peaks": peaks}
