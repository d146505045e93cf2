"""The model side of xrfhub: plugins, training, prediction, intervals, evaluation.

    >>> from xrfhub.ml import training
    >>> training.train("baseline", "hub/", stage="train", out="runs/caco3", target="CaCO3")  # doctest: +SKIP

The store's core (``xrfhub``: ingest, queries, validation, QC, exports, prediction runs as
stored) never imports this package; this package builds on it. What lives here: the plugin
registry and the commands' entry points (``registry``, ``training``), feeding models from the
store (``loaders``, ``chunkreader``, ``transforms``; ``torchdata`` and ``torchddp`` for torch, ``ddp`` for torchrun's ranks),
intervals (``intervals``, ``crossconformal``), metrics, voltage checks, saliency, predictions on
a dask cluster (``cluster``) and the evaluation protocol (``evaluation``). Only ``torchdata`` and
``torchddp`` import torch, and only plugins import them: ``import xrfhub.ml`` stays torch-free.
"""
from __future__ import annotations

import importlib
import importlib.util


def __getattr__(name):
    # a submodule named as an attribute (``xrfhub.ml.loaders.select_rows``, as the README writes
    # it): imported on first use, as ``xrfhub`` does for its own submodules
    if importlib.util.find_spec(f"{__name__}.{name}") is None:
        raise AttributeError(f"module 'xrfhub.ml' has no attribute {name!r}") from None
    return importlib.import_module(f"{__name__}.{name}")
