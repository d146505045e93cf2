"""How close synthetic spectra are to real ones: the reference mean spectrum and a plot.

The reference is the per-channel mean (and std) of raw counts over the 44,168 real 10 kV
Avaatech spectra MAX was pre-trained on (see ``xrfhub/data/PROVENANCE.md``). Realism is the
Pearson correlation of log(mean + 1) over channels 25-600 (0.5-12 keV).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

REALISM_CHANNELS = slice(25, 601)
REFERENCE_CSV = Path(__file__).resolve().parent.parent / "data" / "xpt_spe_channel_mean_std.csv"


def reference_mean_std() -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of raw counts per channel (2048,) of the real 10 kV reference set."""
    table = np.loadtxt(REFERENCE_CSV, delimiter=",", skiprows=1)
    return table[:, 2], table[:, 3]


def realism_correlation(spectra: np.ndarray, channels: slice = REALISM_CHANNELS) -> float:
    """Pearson r of log(mean + 1) of ``spectra`` (n, 2048) against the reference mean."""
    spectra = np.asarray(spectra, dtype=np.float64)
    mean = spectra.mean(axis=0) if spectra.ndim == 2 else spectra
    ref, _ = reference_mean_std()
    return float(np.corrcoef(np.log(mean[channels] + 1.0), np.log(ref[channels] + 1.0))[0, 1])


def plot_mean_vs_reference(spectra: np.ndarray, path: str | Path, gain_kev: float = 0.02) -> Path:
    """Save a PNG of the mean synthetic spectrum against the real reference (log and linear)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spectra = np.asarray(spectra, dtype=np.float64)
    mean = spectra.mean(axis=0) if spectra.ndim == 2 else spectra
    ref, ref_std = reference_mean_std()
    energy = np.arange(ref.size) * gain_kev
    r = realism_correlation(mean)
    fig, (ax_log, ax_lin) = plt.subplots(2, 1, figsize=(12, 8))
    ax_log.semilogy(energy, ref + 1, label="real mean (44,168 spectra, 10 kV)")
    ax_log.semilogy(energy, mean + 1, label=f"synthetic mean (n={spectra.shape[0] if spectra.ndim == 2 else 1})")
    ax_log.axvspan(energy[REALISM_CHANNELS.start], energy[REALISM_CHANNELS.stop - 1], color="0.9")
    ax_log.set(xlim=(0, 22), ylabel="counts + 1", title=f"log mean spectrum, r = {r:.4f} over channels 25-600")
    ax_lin.plot(energy, ref, label="real mean")
    ax_lin.fill_between(energy, ref - ref_std, ref + ref_std, alpha=0.2, label="real +-1 std")
    ax_lin.plot(energy, mean, label="synthetic mean")
    ax_lin.set(xlim=(0.5, 12), xlabel="energy (keV)", ylabel="counts")
    for ax in (ax_log, ax_lin):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
