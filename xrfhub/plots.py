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
#: K-beta lines strong enough in sediment spectra to be mistaken for another element's K-alpha.
MARKED_BETA = ("K", "Ca", "Ti", "Fe")


def line_energy(element: str, line: str = "KA") -> float:
    """Emission line energy in keV (xraylib); ``line`` is ``KA``, ``KB``, ``LA`` or ``LB``."""
    import xraylib

    code = {"KA": xraylib.KA1_LINE, "KB": xraylib.KB1_LINE, "LA": xraylib.LA1_LINE,
            "LB": xraylib.LB1_LINE}[line]
    return float(xraylib.LineEnergy(xraylib.SymbolToAtomicNumber(element), code))


def element_lines(max_kev: float = 40.0, *, beta: bool = False) -> dict[str, float]:
    """Line name (``"Fe Kα"``) -> energy in keV for the marked lines below ``max_kev``.

    ``beta`` adds the K-beta lines of :data:`MARKED_BETA`, which a reader of a spectrum
    would otherwise take for unexplained peaks (Ca Kβ at 4.01 keV, Fe Kβ at 7.06 keV).
    """
    pairs = list(MARKED_LINES.items()) + ([(el, "KB") for el in MARKED_BETA] if beta else [])
    lines = {f"{el} {ln[0]}{'α' if ln[1] == 'A' else 'β'}": line_energy(el, ln) for el, ln in pairs}
    return {k: v for k, v in lines.items() if 0 < v <= max_kev}


def label_lines(ax, lines: dict[str, float], *, fontsize: float = 7, color: str = "0.3", top: float = 0.99,
                tier_step: float = 0.13) -> list:
    """Mark emission lines with dotted verticals and rotated names that never overlap.

    Names go in tiers below the top of the axes: a name whose neighbour on the left is closer
    than the height of one rotated letter (plus a margin) moves down one tier. Returns the
    text artists, so that callers and tests can check their extents.
    """
    fig = ax.figure
    x0, x1 = ax.get_xlim()
    width_pt = ax.get_position().width * fig.get_figwidth() * 72
    min_sep = 1.5 * fontsize * (x1 - x0) / width_pt  # data units of one rotated text line, plus air
    last_in_tier: list[float] = []
    texts = []
    for name, e in sorted(lines.items(), key=lambda kv: kv[1]):
        if not x0 <= e <= x1:
            continue
        tier = next((i for i, last in enumerate(last_in_tier) if e - last >= min_sep), len(last_in_tier))
        if tier == len(last_in_tier):
            last_in_tier.append(e)
        last_in_tier[tier] = e
        ax.axvline(e, color="0.6", lw=0.5, ls=":")
        texts.append(ax.text(e, top - tier * tier_step, name, rotation=90, fontsize=fontsize, va="top",
                             ha="center", color=color, transform=ax.get_xaxis_transform(),
                             bbox=dict(facecolor="white", edgecolor="none", pad=0.3, alpha=0.8)))
    return texts


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
                 max_kev: float | None = None, legend_title: str | None = None) -> Path:
    """A few spectra on a log scale with the emission lines of sediment elements marked.

    Line names are staggered so that close lines (Ba Lα and Ti Kα near 4.5 keV) stay legible,
    and the legend sits outside the axes so that it hides neither a name nor a peak.
    """
    plt = pyplot()
    fig = spectra_figure(energy, counts, labels, title=title, max_kev=max_kev, legend_title=legend_title)
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def spectra_figure(energy: np.ndarray, counts: np.ndarray, labels: list[str], *, title: str = "",
                   max_kev: float | None = None, legend_title: str | None = None):
    """The figure of :func:`plot_spectra`, left open (tests measure where its names fall)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(12, 5.5), dpi=110)
    for row, label in zip(np.atleast_2d(counts), labels):
        ax.semilogy(energy, np.maximum(row, 0.5), lw=0.8, label=label)
    top = max_kev or float(energy[np.flatnonzero(np.atleast_2d(counts).max(0) > 0)].max(initial=energy[-1]))
    ymax = float(np.atleast_2d(counts).max())
    # head room above the highest peak for three tiers of line names (log axis: a factor)
    ax.set(xlim=(float(energy[0]), top), ylim=(0.5, ymax * 60), xlabel="energy (keV)",
           ylabel="counts per channel", title=title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title=legend_title,
              title_fontsize=8, frameon=False)
    fig.tight_layout()  # fix the axes' size before the names are spaced by it
    label_lines(ax, element_lines(top, beta=True))
    return fig


def roi_counts(energy: np.ndarray, counts: np.ndarray, centre_kev: float, half_width_kev: float = 0.15) -> np.ndarray:
    """Counts summed in a window around a line: a first look, not a peak fit."""
    sel = np.abs(energy - centre_kev) <= half_width_kev
    return np.asarray(counts)[:, sel].sum(axis=1)


def plot_profile(depth_mm: np.ndarray, series: dict[str, np.ndarray], lab_depth_mm: np.ndarray | None,
                 lab: dict[str, np.ndarray], path, *, title: str = "", units: dict[str, str] | None = None) -> Path:
    """Down-core panels, depth downwards: scanner series as lines, lab values as dots.

    ``units`` gives each series its unit (``"counts"``); a series whose values reach 10^4 is
    shown in thousands or millions, said in its label, so ticks never read 200000 400000.
    """
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    units = units or {}
    panels = list(series) + list(lab)
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 7), dpi=110, sharey=True)
    axes = np.atleast_1d(axes)
    order = np.argsort(depth_mm)
    for ax, name in zip(axes, series):
        values = np.asarray(series[name], dtype=float)[order]
        power = _thousands_power(values)
        unit = units.get(name, "")
        if power:
            unit = f"10{_superscript(power)} {unit}".strip()
        ax.plot(values / 10.0 ** power, np.asarray(depth_mm)[order], lw=0.8)
        ax.set_xlabel(f"{name} ({unit})" if unit else name)
    for ax, name in zip(axes[len(series):], lab):
        ax.plot(lab[name], lab_depth_mm, "o", ms=3, color="C3")
        ax.set_xlabel(f"{name} (wt%, lab)")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(4))
    axes[0].set_ylabel("depth (mm)")
    axes[0].invert_yaxis()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def _thousands_power(values: np.ndarray) -> int:
    """3, 6, ... when values reach 10^4: the power of ten to show them in; else 0."""
    top = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0
    return 3 * int(np.log10(top) // 3) if top >= 1e4 else 0


def _superscript(n: int) -> str:
    return str(n).translate(str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻"))


def plot_ramp(two_theta: np.ndarray, intensity: np.ndarray, labels, path, *, title: str = "",
              scan: tuple[str, np.ndarray] | None = None, wavelength_a: float | None = None,
              intensity_unit: str = "as in the files") -> Path:
    """Diffraction patterns along a scan: an image (scan x 2-theta) and three patterns.

    ``scan`` is the scan coordinate (name, one value per pattern, e.g. the pressure step); without
    it the y axis is the pattern's place in scan order. Each row of the image is scaled to its own
    maximum, which the colour bar says; the line plots keep the intensities as measured.
    """
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.5, 7.5), sharex=True, height_ratios=[2, 1])
    scaled = intensity / np.maximum(np.nanmax(intensity, axis=1, keepdims=True), 1e-12)
    n = len(intensity)
    if scan is not None:
        scan_name, scan_values = scan[0], np.asarray(scan[1], dtype=float)
        lo, hi = float(scan_values[0]), float(scan_values[-1])
        half = (hi - lo) / max(n - 1, 1) / 2
        extent_y, ylabel = (lo - half, hi + half), scan_name.replace("_", " ")
        at = lambda i: lo + (hi - lo) * i / max(n - 1, 1)  # noqa: E731 - row i's centre on the axis
    else:
        scan_values, extent_y, ylabel = np.arange(n, dtype=float), (-0.5, n - 0.5), "pattern (scan order)"
        at = float
    image = top.imshow(scaled, aspect="auto", origin="lower", cmap="viridis",
                       extent=[two_theta[0], two_theta[-1], *extent_y])
    bar = fig.colorbar(image, ax=top, pad=0.01)
    bar.set_label("intensity / pattern maximum")
    labels = np.asarray(labels).astype(str)
    changes = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    for c in changes:
        top.axhline((at(c - 1) + at(c)) / 2, color="w", ls="--", lw=1)
    top.set_ylabel(ylabel)
    where = f", λ = {wavelength_a:g} Å" if wavelength_a is not None else ""
    top.set_title(title or f"diffraction patterns along the scan{where} (dashed: label change)")
    for i in np.unique(np.linspace(0, n - 1, 3).astype(int)):
        where_i = f"{ylabel} {scan_values[i]:g}" if scan is not None else f"pattern {i}"
        bottom.plot(two_theta, intensity[i], lw=0.8, label=f"{where_i} ({labels[i] or 'unlabelled'})")
    bottom.set_xlabel("2θ (degrees)")
    bottom.set_ylabel(f"intensity ({intensity_unit})")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    # the line panel has no colour bar: give it the same width as the image above
    fig.canvas.draw()
    pos, img_pos = bottom.get_position(), top.get_position()
    bottom.set_position([pos.x0, pos.y0, img_pos.width, pos.height])
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
