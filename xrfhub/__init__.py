"""xrfhub: a FAIR home for XRF core-scanner spectra, lab measurements and model predictions.

    >>> import xrfhub
    >>> xrfhub.ingest(["scans/", "lab/cores.tab"], "hub/")        # doctest: +SKIP
    >>> ds = xrfhub.open("hub/")                                  # doctest: +SKIP
    >>> ds.sel(core="PS75-056-1", depth_mm=slice(100, 500))       # doctest: +SKIP

``import xrfhub`` stays light (no torch, submodules load on first use): ingest and queries
work without any ML stack.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "open": ("xrfhub.api", "open"),
    "ingest": ("xrfhub.ingestion", "ingest"),
    "rebuild": ("xrfhub.build", "rebuild"),
    "info": ("xrfhub.summary", "info"),
    "validate": ("xrfhub.validation", "validate"),
    "query": ("xrfhub.selection", "query"),
    "Store": ("xrfhub.store.generations", "Store"),
    "XrfhubError": ("xrfhub.errors", "XrfhubError"),
    "InputError": ("xrfhub.errors", "InputError"),
    "StoreError": ("xrfhub.errors", "StoreError"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'xrfhub' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
