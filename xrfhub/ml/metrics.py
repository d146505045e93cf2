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
