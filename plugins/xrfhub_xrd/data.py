"""Diffraction patterns and labels as the classifiers take them: checked, prepared, augmented.

Numpy (and scipy for the baseline) only. Patterns are ``(N, P)`` intensities on one 2-theta grid
``(P,)`` in degrees; labels are class labels ``(N,)`` or a multi-hot ``(N, K)`` phase-presence
matrix. Bad arrays raise :class:`~xrfhub.errors.InputError` naming the array (``field``) and
what was expected; ``source`` names where the arrays came from (a store path, a file), or
``<arrays>`` when they were handed over in memory.
"""
from __future__ import annotations

import numpy as np

from xrfhub.errors import InputError

from xrfhub.synth.xrd import als_baseline  # one implementation, shared with the simulator

ARRAYS = "<arrays>"


def check_patterns(intensity, two_theta, source: str = ARRAYS) -> tuple[np.ndarray, np.ndarray]:
    """``intensity`` as float32 ``(N, P)`` and ``two_theta`` as float64 ``(P,)``, validated."""
    x = np.asarray(intensity)
    grid = np.asarray(two_theta)
    if x.ndim != 2 or x.shape[0] < 1:
        raise InputError(source, f"expected intensity as (patterns, points), got shape {x.shape}",
                         field="intensity")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(source, f"expected real numbers, got dtype {x.dtype}", field="intensity")
    if grid.ndim != 1 or grid.shape[0] != x.shape[1]:
        raise InputError(source, f"expected one 2-theta value per point ({x.shape[1]}), got "
                         f"shape {grid.shape}", field="two_theta")
    grid = grid.astype(np.float64)
    if x.shape[1] < 2 or not np.all(np.isfinite(grid)) or not np.all(np.diff(grid) > 0):
        raise InputError(source, "expected at least 2 finite, strictly increasing 2-theta "
                         "values (degrees)", field="two_theta")
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise InputError(source, f"pattern {row} holds NaN or infinite intensities; drop or "
                         "interpolate them first", field="intensity")
    return x, grid


def encode_classes(labels, n_patterns: int, source: str = ARRAYS) -> tuple[np.ndarray, list]:
    """Class labels ``(N,)`` -> (indices into ``classes``, ``classes`` sorted as np.unique)."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n_patterns:
        raise InputError(source, f"expected one class label per pattern ({n_patterns}), got "
                         f"shape {y.shape}", field="labels")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise InputError(source, "class labels must be integers or strings", field="labels")
        y = y.astype(np.int64)
    elif y.dtype.kind not in "iuUb":
        raise InputError(source, f"class labels must be integers or strings, got dtype {y.dtype}",
                         field="labels")
    classes, index = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise InputError(source, f"need at least 2 classes to train a classifier, got "
                         f"{classes.tolist()}", field="labels")
    return index.astype(np.int64), [c.item() for c in classes]


def check_multihot(labels, n_patterns: int, source: str = ARRAYS) -> np.ndarray:
    """Phase presence ``(N, K)`` of 0/1 (or booleans) -> float32."""
    y = np.asarray(labels)
    if y.ndim != 2 or y.shape[0] != n_patterns or y.shape[1] < 1:
        raise InputError(source, f"expected a multi-hot (patterns={n_patterns}, phases) matrix, "
                         f"got shape {y.shape}", field="labels")
    if y.dtype.kind not in "biuf" or not np.all((y == 0) | (y == 1)):
        raise InputError(source, "phase presence must be 0/1 (absent/present)", field="labels")
    return y.astype(np.float32)


def minmax(x: np.ndarray) -> np.ndarray:
    """Each pattern mapped to [0, 1]; a flat pattern becomes zeros (nothing to scale)."""
    low = x.min(axis=1, keepdims=True)
    span = x.max(axis=1, keepdims=True) - low
    return ((x - low) / np.where(span > 0, span, 1.0)).astype(np.float32)


def prepare(x: np.ndarray, config) -> np.ndarray:
    """The deterministic part of the recipe: optional ALS background removal, then scaling.

    Applied the same way at training and at prediction, so a fitted model takes raw patterns.
    """
    if config.baseline == "als":
        x = (x - als_baseline(x, config.als_lambda, config.als_p, config.als_iterations)).astype(np.float32)
    if config.scaling == "minmax":
        x = minmax(x)
    return x.astype(np.float32)


def noisy_copies(x: np.ndarray, y: np.ndarray, copies: int, noise: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The training set of 003: the patterns plus ``copies`` copies of each with U[0,1)*noise.

    The noise is added after scaling, so it is a fraction of each pattern's range. Originals
    come first, then copy 1 of every pattern, copy 2, ...; labels follow.
    """
    if copies == 0:
        return x, y
    extra = x[None] + rng.random((copies, *x.shape), dtype=np.float32) * np.float32(noise)
    xs = np.concatenate([x, extra.reshape(-1, x.shape[1])])
    ys = np.concatenate([y] + [y] * copies)
    return xs.astype(np.float32), ys
