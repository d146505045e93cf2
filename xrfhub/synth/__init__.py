"""Synthetic XRF core-scanner corpus: physically grounded spectra, lab tables and their truth.

The project's embedded default data (``xrfhub demo``): raw Avaatech ``.spe`` folders, a
PANGAEA-style and a CSV lab table, generated from a forward model of tube, sediment and
detector (``physics``) driven by down-core sediment histories (``composition``).

Public API::

    generate_corpus(out_dir, size="demo", seed=0) -> CorpusTruth
    write_spe(path, counts, meta: SpeMeta, style=SpeStyle())
    plot_mean_vs_reference(spectra, path); realism_correlation(spectra)
"""
from __future__ import annotations

from .corpus import SIZES, CorpusSpec, CorpusTruth, CoreTruth, ScanTruth, generate_corpus, simulate_spectra
from .lab_writer import pangaea_event, write_lab_csv, write_pangaea_tab
from .realism import plot_mean_vs_reference, realism_correlation, reference_mean_std
from .spe_writer import SpeMeta, SpeStyle, bang_name, space_name, spe_text, write_spe
from .xrd import SimulatedPatterns, als_baseline, from_cifs, hydrothermal, pressure_ramp, write_xy

__all__ = ["generate_corpus", "CorpusTruth", "CoreTruth", "ScanTruth", "CorpusSpec", "SIZES",
           "simulate_spectra", "write_spe", "spe_text", "SpeMeta", "SpeStyle", "space_name",
           "bang_name", "write_pangaea_tab", "write_lab_csv", "pangaea_event",
           "plot_mean_vs_reference", "realism_correlation", "reference_mean_std",
           "SimulatedPatterns", "pressure_ramp", "hydrothermal", "from_cifs", "write_xy", "als_baseline"]
