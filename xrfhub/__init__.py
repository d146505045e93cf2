"""xrfhub: a FAIR home for XRF core-scanner spectra, lab measurements and model predictions.

    >>> import xrfhub
    >>> xrfhub.ingest(["scans/", "lab/cores.tab"], "hub/")        # doctest: +SKIP
    >>> ds = xrfhub.open("hub/")                                  # doctest: +SKIP
    >>> ds.sel(core="PS75-056-1", depth_mm=slice(100, 500))       # doctest: +SKIP

``import xrfhub`` stays light (no torch, submodules load on first use): ingest and queries
work without any ML stack. The model side (plugins, training, intervals, evaluation) is
:mod:`xrfhub.ml`, which builds on this package and is never imported by it.
"""
from __future__ import annotations

import importlib
import importlib.util

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
        # a submodule named as an attribute (``xrfhub.predictions.list_runs``): imported on first use,
        # like the names above, so ``import xrfhub`` stays light whatever the modules import
        if importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'xrfhub' has no attribute {name!r}") from None
        return importlib.import_module(f"{__name__}.{name}")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
