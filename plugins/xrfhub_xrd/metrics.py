"""Scores of diffraction classifiers, numpy only: accuracy, confusion, F1, and 003's ramp check.

Class predictions are ``(N,)`` labels; phase predictions are ``(N, K)`` 0/1 presence matrices,
scored per phase. ``ramp_confidence`` is source document 003's "confidence" for an ordered
series (a pressure ramp): did the predictions switch class exactly once, and where. It says
nothing about whether the switch sits at the right pattern, so report it next to
``accuracy`` against real labels (``ramp_report`` does both).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def accuracy(y_true, y_pred) -> float:
    """Fraction of exact matches (for ``(N, K)`` presence: of all pattern-phase entries)."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    _same_shape(t, p)
    return float(np.mean(t == p)) if t.size else float("nan")


def confusion_matrix(y_true, y_pred, labels=None) -> np.ndarray:
    """``(C, C)`` counts, row = true class, column = predicted class, in ``labels`` order
    (default: the sorted union of both)."""
    t, p = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    _same_shape(t, p)
    labels = np.unique(np.concatenate([t, p])) if labels is None else np.asarray(labels)
    position = {label: i for i, label in enumerate(labels.tolist())}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for a, b in zip(t.tolist(), p.tolist()):
        if a in position and b in position:
            matrix[position[a], position[b]] += 1
    return matrix


@dataclass(frozen=True)
class ClassScores:
    """Per class (or per phase) precision, recall, F1 and support (true count), in ``labels``
    order; 0 where a ratio has nothing to divide by."""

    labels: list
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray

    @property
    def macro_f1(self) -> float:
        return float(np.mean(self.f1))


def precision_recall_f1(y_true, y_pred, labels=None) -> ClassScores:
    """Per-class scores for ``(N,)`` labels, or per-phase scores for ``(N, K)`` presence."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    _same_shape(t, p)
    if t.ndim == 2:
        t, p = t.astype(bool), p.astype(bool)
        tp = (t & p).sum(0)
        fp = (~t & p).sum(0)
        fn = (t & ~p).sum(0)
        labels = list(range(t.shape[1])) if labels is None else list(labels)
    else:
        if labels is None:
            labels = np.unique(np.concatenate([t.ravel(), p.ravel()]))
        matrix = confusion_matrix(t, p, labels)
        tp = np.diag(matrix)
        fp = matrix.sum(0) - tp
        fn = matrix.sum(1) - tp
        labels = np.asarray(labels).tolist()
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return ClassScores(labels, precision, recall, f1, (tp + fn).astype(np.int64))


def f1_score(y_true, y_pred, labels=None, average: str | None = None):
    """F1 per class/phase (``average=None``) or their unweighted mean (``"macro"``)."""
    scores = precision_recall_f1(y_true, y_pred, labels)
    if average is None:
        return scores.f1
    if average == "macro":
        return scores.macro_f1
    raise ValueError(f"average must be None or 'macro', got {average!r}")


def ranked_recall(y_true, proba) -> dict:
    """Threshold-free scores of phase identification, as a phase-search program is read: for a
    pattern with ``n`` true phases, take its ``n`` most probable phases. ``ranked_recall``: the
    share of true phases found that way, averaged over patterns; ``ranked_exact``: the share of
    patterns whose ``n`` most probable phases are exactly the true ones. Patterns with no true
    phase are left out (``ranked_n`` counts the patterns scored)."""
    t, prob = np.asarray(y_true).astype(bool), np.asarray(proba, dtype=np.float64)
    _same_shape(t, prob)
    n_true = t.sum(axis=1)
    keep = n_true > 0
    if not keep.any():
        return {"ranked_recall": float("nan"), "ranked_exact": float("nan"), "ranked_n": 0}
    order = np.argsort(-prob[keep], axis=1, kind="stable")
    top = np.arange(t.shape[1])[None, :] < n_true[keep, None]  # rank positions within n
    picked = np.zeros_like(t[keep])
    np.put_along_axis(picked, order, top, axis=1)
    found = (picked & t[keep]).sum(axis=1)
    return {"ranked_recall": float(np.mean(found / n_true[keep])),
            "ranked_exact": float(np.mean(found == n_true[keep])), "ranked_n": int(keep.sum())}


@dataclass(frozen=True)
class RampConfidence:
    """003's check of predictions along an ordered ramp.

    ``single_switch``: the predictions change class exactly once. ``switches``: how many times
    the class changes. ``off_step``: the fewest predictions that would have to change for the
    series to switch class exactly once (0 when ``single_switch``, 1 when all predictions
    agree); ``boundary``: the index of the first pattern after the switch of that best step
    (None when all predictions agree). ``confidence`` = 1 - off_step / N, our reading of 003's
    garbled P_conf = 1 - N_f/N: 1 exactly when ``single_switch``.
    """

    single_switch: bool
    boundary: int | None
    switches: int
    off_step: int
    confidence: float


def ramp_confidence(y_pred) -> RampConfidence:
    """Score predicted classes ``(N,)`` ordered along the ramp (e.g. increasing pressure)."""
    p = np.asarray(y_pred).ravel()
    n = len(p)
    if n < 2:
        raise ValueError(f"a ramp needs at least 2 predictions, got {n}")
    switches = int(np.count_nonzero(p[1:] != p[:-1]))
    labels, codes = np.unique(p, return_inverse=True)
    if len(labels) == 1:  # one change of any single prediction would make the one switch
        return RampConfidence(False, None, 0, 1, 1.0 - 1.0 / n)
    onehot = np.eye(len(labels), dtype=np.int64)[codes]
    seen = np.cumsum(onehot, axis=0)[:-1]  # seen[b - 1, c]: class c among p[:b], b = 1..n-1
    steps = np.arange(1, n)
    off, boundary = n + 1, None
    for a in range(len(labels)):  # p[:b] all class a, p[b:] all class c
        for c in range(len(labels)):
            if a == c:
                continue
            wrong = (steps - seen[:, a]) + (n - steps - (seen[-1, c] + onehot[-1, c] - seen[:, c]))
            i = int(np.argmin(wrong))
            if wrong[i] < off:
                off, boundary = int(wrong[i]), int(steps[i])
    return RampConfidence(switches == 1, boundary, switches, off, 1.0 - off / n)


def ramp_report(y_pred, y_true=None) -> dict:
    """``ramp_confidence`` as a dict, with ``accuracy`` against ``y_true`` when given (and the
    true boundary, the index where the true labels first change)."""
    report = asdict(ramp_confidence(y_pred))
    if y_true is not None:
        t = np.asarray(y_true).ravel()
        report["accuracy"] = accuracy(t, np.asarray(y_pred).ravel())
        change = np.flatnonzero(t[1:] != t[:-1])
        report["true_boundary"] = int(change[0]) + 1 if len(change) else None
    return report


def _ratio(numerator, denominator) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator),
                     where=denominator > 0)


def _same_shape(t: np.ndarray, p: np.ndarray) -> None:
    if t.shape != p.shape:
        raise ValueError(f"true and predicted labels differ in shape: {t.shape} vs {p.shape}")
