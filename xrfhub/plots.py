"""Pictures people would rather look at than read: spectra with their lines, down-core profiles."""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: Elements a sediment geochemist looks for, with the line that identifies each.
MARKED_LINES = {
    "Al": "KA", "Si": "KA", "P": "KA", "S": "KA", "Cl": "KA", "K": "KA", "Ca": "KA", "Ti": "KA",
    "Mn": "KA", "Fe": "KA", "Ni": "KA", "Cu": "KA", "Zn": "KA", "Br": "KA", "Rb": "KA", "Sr": "KA",
    "Zr": "KA", "Ba": "LA", "Pb": "LA", "Rh": "KA",
}


def line_energy(element: str, line: str = "KA") -> float:
    """Emission line energy in keV (xraylib); ``line`` is ``KA``, ``KB``, ``LA`` or ``LB``."""
    import xraylib

    code = {"KA": xraylib.KA1_LINE, "KB": xraylib.KB1_LINE, "LA": xraylib.LA1_LINE,
            "LB": xraylib.LB1_LINE}[line]
    return float(xraylib.LineEnergy(xraylib.SymbolToAtomicNumber(element), code))


def element_lines(max_kev: float = 40.0) -> dict[str, float]:
    lines = {f"{el} {ln[0]}{'α' if ln[1] == 'A' else 'β'}": line_energy(el, ln) for el, ln in MARKED_LINES.items()}
    return {k: v for k, v in lines.items() if 0 < v <= max_kev}


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi: int = 110):
    """Lay out, write and close ``fig`` (figures left open pile up in long evaluations); returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


def plot_spectra(energy: np.ndarray, counts: np.ndarray, labels: list[str], path, *, title: str = "",
                 max_kev: float | None = None) -> Path:
    """A few spectra on a log scale with the emission lines of sediment elements marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 5), dpi=110)
    for row, label in zip(np.atleast_2d(counts), labels):
        ax.semilogy(energy, np.maximum(row, 0.5), lw=0.8, label=label)
    top = max_kev or float(energy[np.flatnonzero(np.atleast_2d(counts).max(0) > 0)].max(initial=energy[-1]))
    ymax = float(np.atleast_2d(counts).max()) * 2
    for name, e in element_lines(top).items():
        if e < top:
            ax.axvline(e, color="0.6", lw=0.5, ls=":")
            ax.text(e, ymax, name, rotation=90, fontsize=7, va="top", ha="right", color="0.3")
    ax.set(xlim=(float(energy[0]), top), ylim=(0.5, ymax * 1.1), xlabel="energy (keV)", ylabel="counts",
           title=title)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def roi_counts(energy: np.ndarray, counts: np.ndarray, centre_kev: float, half_width_kev: float = 0.15) -> np.ndarray:
    """Counts summed in a window around a line: a first look, not a peak fit."""
    sel = np.abs(energy - centre_kev) <= half_width_kev
    return np.asarray(counts)[:, sel].sum(axis=1)


def plot_profile(depth_mm: np.ndarray, series: dict[str, np.ndarray], lab_depth_mm: np.ndarray | None,
                 lab: dict[str, np.ndarray], path, *, title: str = "") -> Path:
    """Down-core panels, depth downwards: scanner series as lines, lab values as dots."""
    plt = pyplot()
    panels = list(series) + list(lab)
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 7), dpi=110, sharey=True)
    axes = np.atleast_1d(axes)
    order = np.argsort(depth_mm)
    for ax, name in zip(axes, series):
        ax.plot(np.asarray(series[name])[order], np.asarray(depth_mm)[order], lw=0.8)
        ax.set_xlabel(name)
    for ax, name in zip(axes[len(series):], lab):
        ax.plot(lab[name], lab_depth_mm, "o", ms=3, color="C3")
        ax.set_xlabel(f"{name} (wt%, lab)")
    axes[0].set_ylabel("depth (mm)")
    axes[0].invert_yaxis()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_ramp(two_theta: np.ndarray, intensity: np.ndarray, labels, path, *, title: str = "") -> Path:
    """Diffraction patterns along a scan: an image (pattern x 2-theta) and three patterns."""
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True, height_ratios=[2, 1])
    scaled = intensity / np.maximum(np.nanmax(intensity, axis=1, keepdims=True), 1e-12)
    top.imshow(scaled, aspect="auto", origin="lower", cmap="viridis",
               extent=[two_theta[0], two_theta[-1], -0.5, len(intensity) - 0.5])
    labels = np.asarray(labels).astype(str)
    changes = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    for c in changes:
        top.axhline(c - 0.5, color="w", ls="--", lw=1)
    top.set_ylabel("pattern (scan order)")
    top.set_title(title or "diffraction patterns along the scan (dashed: label change)")
    for i in np.unique(np.linspace(0, len(intensity) - 1, 3).astype(int)):
        bottom.plot(two_theta, intensity[i], lw=0.8, label=f"pattern {i} ({labels[i] or 'unlabelled'})")
    bottom.set_xlabel("2-theta (degrees)")
    bottom.set_ylabel("intensity")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
