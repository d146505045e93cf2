"""Regression metrics every model plugin reports the same way (DESIGN section 6).

sklearn's R2 (against the mean of the values scored), the reference code's R2 (against the
*training* mean, which flatters a model when the test set's mean differs: reported under its
own name so nobody mistakes it for the usual one) and RMSE. Plain numpy: no torch, no sklearn.
"""
from __future__ import annotations

import math

import numpy as np


def regression_metrics(y, pred, train_mean: float) -> dict[str, float]:
    """``n``, ``r2`` (as sklearn's ``r2_score``), ``r2_vs_training_mean`` and ``rmse`` of ``pred`` vs ``y``.

    Fewer than two values give only ``n``: an R2 of one value means nothing. A constant ``y``
    scores as sklearn does (1.0 when predicted exactly, else 0.0).
    """
    y = np.asarray(y, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    if y.shape != pred.shape:
        raise ValueError(f"regression_metrics: {len(y)} values but {len(pred)} predictions")
    if len(y) < 2:
        return {"n": int(len(y))}
    sse = float(np.sum((y - pred) ** 2))
    sst = float(np.sum((y - y.mean()) ** 2))
    sst_train = float(np.sum((y - float(train_mean)) ** 2))
    if sst > 0:
        r2 = 1.0 - sse / sst
    else:  # sklearn's force_finite convention for a constant target
        r2 = 1.0 if sse == 0 else 0.0
    return {"n": int(len(y)), "r2": r2,
            "r2_vs_training_mean": 1.0 - sse / sst_train if sst_train > 0 else float("nan"),
            "rmse": math.sqrt(sse / len(y))}


def by_core(y, pred, cores, trained_on: dict | None = None, *, lower=None, upper=None) -> dict[str, dict]:
    """Each core's ``n``, ``r2``, ``rmse`` and ``bias`` (mean prediction minus lab value).

    Why per core: a held-out core is scored on its own, and sklearn's R2 of a core that spans
    little (a carbonate-poor core) is harsh on errors a pooled score hides among cores that span
    much. ``trained_on`` maps a core to the cores the model that predicted it trained on (a
    cross-fit's other folds); each core then says whether its lab values lie inside their range
    (``inside_training_range``): an interpolation core, as the held-out cores an ``auto`` draw takes.
    With an interval's ``lower`` and ``upper`` bounds, each core also says which share of its lab
    values they hold (``interval_coverage``): a core's coverage, not the pool's, is what tells a
    user whether to trust that core's intervals.
    """
    y = np.asarray(y, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    cores = np.asarray(cores).astype(str).ravel()
    inside = None
    if lower is not None and upper is not None:
        inside = (y >= np.asarray(lower, dtype=np.float64).ravel()) & (y <= np.asarray(upper, dtype=np.float64).ravel())
    span = {str(c): (float(y[cores == c].min()), float(y[cores == c].max())) for c in np.unique(cores)}
    out = {}
    for c, (lo, hi) in span.items():
        m = cores == c
        row = {k: v for k, v in regression_metrics(y[m], pred[m], float(np.mean(y))).items()
               if k != "r2_vs_training_mean"}
        row["bias"] = float(np.mean(pred[m] - y[m]))
        if inside is not None:
            row["interval_coverage"] = float(np.mean(inside[m]))
        others = [o for o in (trained_on or {}).get(c, ()) if o in span]
        if others:
            row["inside_training_range"] = bool(min(span[o][0] for o in others) <= lo
                                                and hi <= max(span[o][1] for o in others))
        out[c] = row
    return out


def interpolation_r2(per_core: dict[str, dict]) -> float | None:
    """The mean per-core R2 over the interpolation cores of :func:`by_core` (None without any)."""
    r2 = [row["r2"] for row in per_core.values() if row.get("inside_training_range") and "r2" in row]
    return float(np.mean(r2)) if r2 else None
