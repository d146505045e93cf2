"""How far a regression run reaches beyond the lab values it was trained on.

A calibration model is trusted between the lab values it learnt from. Two places need that range:
training, where a held-out core beyond it scores extrapolation rather than a new core like the
others (and says so), and prediction, where the values beyond it are counted and recorded in the
run's provenance, so that a geochemist knows how many predicted depths are extrapolated and where
the bounds lie (``ds.CaCO3 > hi``). The range is that of the training cores' matched lab values.
"""
from __future__ import annotations

import numpy as np

from ..errors import StoreError


def training_range(values: dict, excluded) -> tuple[float, float] | None:
    """Smallest and largest lab value over the cores outside ``excluded``; ``values``: core ->
    its matched lab values of one property (:func:`~xrfhub.ml.intervals.core_values`)."""
    parts = [np.asarray(v, dtype=np.float64).ravel() for c, v in values.items() if c not in set(excluded)]
    train = np.concatenate(parts) if parts else np.zeros(0)
    train = train[np.isfinite(train)]
    return (float(train.min()), float(train.max())) if train.size else None


def held_out_reach(values: dict, target: str, holdout, span) -> tuple[dict, list[str]]:
    """Per held-out core, how many of its lab values (``values``, as for :func:`training_range`)
    lie outside ``span`` (the training range), and a warning for each core that has any."""
    lo, hi = span
    record, notes = {"training_range": [lo, hi], "cores": {}}, []
    for core in holdout:
        v = np.asarray(values.get(core, np.zeros(0)), dtype=np.float64).ravel()
        v = v[np.isfinite(v)]
        if not v.size:
            continue
        outside = int(((v < lo) | (v > hi)).sum())
        record["cores"][core] = {"n": int(v.size), "outside": outside, "min": float(v.min()), "max": float(v.max())}
        if outside:
            notes.append(f"held-out core {core}: {outside} of its {v.size} lab {target} values ({v.min():.4g}-"
                         f"{v.max():.4g}) lie outside the range the training cores span ({lo:.4g}-{hi:.4g}); its "
                         "scores measure extrapolation, which no calibration model is trusted for")
    return record, notes


def beyond(values: dict, ranges: dict) -> dict:
    """For each predicted target with a training range: the range, and how many finite
    predictions lie beyond it (what a prediction run records in its provenance)."""
    found = {}
    for target, (lo, hi) in ranges.items():
        if target not in values:
            continue
        v = np.asarray(values[target], dtype=np.float64)
        v = v[np.isfinite(v)]
        found[target] = {"range": [float(lo), float(hi)], "n": int(v.size), "beyond": int(((v < lo) | (v > hi)).sum())}
    return found


def prediction_note(store, run_id: str) -> str:
    """One line per target: how many predictions of run ``run_id`` lie beyond the training values."""
    import json

    from .. import api

    try:
        attrs = api.open(store, "predictions", run=run_id, index=False).attrs
    except StoreError:
        return ""
    reach = json.loads(attrs.get("provenance", "{}")).get("training_range", {})
    return "\n".join(
        f"{r['beyond']} of {r['n']} {target} predictions lie beyond the lab values the model was trained on "
        f"({r['range'][0]:.4g}-{r['range'][1]:.4g}): extrapolated, trust them less"
        for target, r in reach.items() if r["beyond"])
