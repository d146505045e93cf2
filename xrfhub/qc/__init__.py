"""Quality control: a flag and reason codes for every spectrum and every element point.

``xrfhub qc STORE`` measures each spectrum (throughput, dead time, Ar, tube scatter, a known
peak's position, the tube's lines, principal elements, replicates) and each element point
(the same where the vendor table allows, plus the vendor's own fit quality), judges them within
their run and writes the result as a new generation: an NXprocess ``qc`` per core and hub
groups ``qc/<spectra or elements group>`` that ``xrfhub.open`` joins as the coordinates
``qc_flag`` and ``qc_reasons``.

Modules: ``params`` (thresholds), ``verdicts`` (combining checks, rolling statistics),
``spectra`` and ``elements`` (the checks), ``store`` (reading and writing), ``figure``.
"""
from __future__ import annotations

from .params import QCParams
from .verdicts import FLAGS, REASONS

__all__ = ["FLAGS", "QCParams", "REASONS"]
