"""xrfhub: a FAIR home for XRF core-scanner spectra, lab measurements and model predictions.

``import xrfhub`` stays light (no torch): ingest and queries work without any ML stack.
"""
from __future__ import annotations

__version__ = "0.1.0"
