"""What a diffraction training run reports: scores per split, ramp checks, one picture.

Numpy and matplotlib only. Class targets get accuracy, macro and per-class F1 and a confusion
matrix; phase targets (presence matrices) get entry accuracy, exact-match rate, macro and
per-phase F1 and a 2x2 confusion per phase. A series with a scan coordinate (a pressure ramp)
gets 003's ramp check along its scan order (``metrics.ramp_report``), with the boundary given
both as an index and as the scan value there.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import metrics as m


def class_scores(y_true, y_pred, classes) -> dict:
    """Scores of class predictions; ``classes`` (the model's) plus any true class fix the order."""
    t, p = np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)
    if not len(t):
        return {"n": 0}
    labels = sorted({*map(str, classes), *t.tolist()})
    scores = m.precision_recall_f1(t, p, labels)
    return {"n": int(len(t)), "accuracy": m.accuracy(t, p), "macro_f1": scores.macro_f1,
            "f1": dict(zip(labels, scores.f1.tolist())),
            "confusion": {"labels": labels, "matrix": m.confusion_matrix(t, p, labels).tolist(),
                          "rows": "true class", "columns": "predicted class"}}


def phase_scores(y_true, y_pred, phases, proba=None) -> dict:
    """Scores of presence predictions ``(N, K)`` over ``phases``; with the probabilities
    ``proba`` also the ranked scores of ``metrics.ranked_recall`` (threshold-free)."""
    t, p = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    if not len(t):
        return {"n": 0}
    scores = m.precision_recall_f1(t, p)
    ranked = {} if proba is None else m.ranked_recall(t, proba)
    confusion = {ph: [[int((~t[:, k] & ~p[:, k]).sum()), int((~t[:, k] & p[:, k]).sum())],
                      [int((t[:, k] & ~p[:, k]).sum()), int((t[:, k] & p[:, k]).sum())]]
                 for k, ph in enumerate(phases)}
    # macro F1 over the phases that occur (true or predicted): a phase absent from both has no
    # F1 to speak of, and counting it as 0 would make a 40-phase library score near 0 on 7 patterns
    seen = (t | p).any(axis=0)
    macro = float(np.mean(scores.f1[seen])) if seen.any() else float("nan")
    return {"n": int(len(t)), "accuracy": m.accuracy(t, p), "exact_match": float(np.mean((t == p).all(axis=1))),
            "macro_f1": macro, "phases_seen": int(seen.sum()), "f1": dict(zip(phases, scores.f1.tolist())), **ranked,
            "confusion": {"per_phase": confusion, "layout": "[[true absent: predicted absent, present], "
                                                            "[true present: predicted absent, present]]"}}


def held_out_table(ds, held, classes_true, pred, proba, classes, phases, top: int = 3, scan: str | None = None):
    """One row per held-out pattern: series, id, true and predicted label, and the ``top`` most
    probable classes or phases with their probabilities (``"MnO 0.97; TiO2 0.41"``).

    ``classes_true`` are the true classes (class targets); for phase targets (``phases`` given)
    the predicted label is the present phases joined by ``;`` as in the store's labels. A
    ``scan`` coordinate (e.g. ``pressure_step``) becomes a column, so a ramp can be redrawn.
    """
    import pandas as pd

    rows = np.flatnonzero(held)
    names = [str(p) for p in (phases if phases is not None else classes)]
    order = np.argsort(-proba[rows], axis=1, kind="stable")[:, :top]
    ranked = ["; ".join(f"{names[k]} {proba[r, k]:.2f}" for k in ks) for r, ks in zip(rows, order)]
    if phases is not None:
        predicted = [";".join(n for n, on in zip(names, pred[r]) if on) for r in rows]
    else:
        predicted = [str(pred[r]) for r in rows]
    extra = {} if scan is None else {scan: np.asarray(ds[scan].values, dtype=float)[rows]}
    return pd.DataFrame({"series": ds["core"].values[rows].astype(str), "pattern_id": ds["pattern_id"].values[rows].astype(str),
                         **extra,
                         "true": ds["label"].values[rows].astype(str) if classes_true is None
                         else np.asarray(classes_true)[rows].astype(str),
                         "predicted": predicted, f"top{top}": ranked})


def ramp_reports(cores, scan, scan_name: str, y_true, y_pred, roles) -> list[dict]:
    """003's ramp check per series that has ``scan`` values (finite) for at least 2 patterns.

    Every pattern of the series is ordered by its scan value; ``y_true`` holds "" for unlabelled
    patterns (accuracy is then over the labelled ones, and the true boundary only when all
    are labelled); ``roles`` says per pattern "training", "validation", "held_out" or "unlabelled".
    """
    out = []
    cores = np.asarray(cores).astype(str)
    for core in sorted(set(cores)):
        rows = np.flatnonzero((cores == core) & np.isfinite(scan))
        if len(rows) < 2:
            continue
        rows = rows[np.argsort(scan[rows], kind="stable")]
        pred, true = np.asarray(y_pred)[rows].astype(str), np.asarray(y_true)[rows].astype(str)
        labelled = true != ""
        report = m.ramp_report(pred, true if labelled.all() else None)
        if not labelled.all() and labelled.any():
            report["accuracy"] = m.accuracy(true[labelled], pred[labelled])
        values = scan[rows]
        report["boundary_scan"] = None if report["boundary"] is None else float(values[report["boundary"]])
        if report.get("true_boundary") is not None:
            report["true_boundary_scan"] = float(values[report["true_boundary"]])
        kinds, counts = np.unique(np.asarray(roles)[rows], return_counts=True)
        out.append({"series": core, "scan_coord": scan_name, "n": int(len(rows)),
                    "patterns": dict(zip(kinds.tolist(), counts.tolist())), **report,
                    "_order": (values, pred, true)})
    return out


def figure(path: Path, *, title: str, ramps: list[dict], scores: dict | None, classes) -> Path | None:
    """Predicted class along the scan for ramps, otherwise the confusion matrix of ``scores``."""
    from xrfhub.plots import pyplot, save_figure

    plt = pyplot()
    if ramps:
        fig, axes = plt.subplots(len(ramps), 1, figsize=(7, 2.2 * len(ramps) + 0.6), squeeze=False)
        order = [str(c) for c in classes]
        for ax, r in zip(axes[:, 0], ramps):
            values, pred, true = r["_order"]
            level = {c: i for i, c in enumerate(order)}
            ax.plot(values, [level.get(c, np.nan) for c in pred], "o", ms=4, label="predicted")
            labelled = true != ""
            ax.plot(values[labelled], [level.get(c, np.nan) for c in true[labelled]], "x", ms=5,
                    color="k", label="label")
            if r["boundary_scan"] is not None:
                ax.axvline(r["boundary_scan"], ls="--", color="C3", lw=1, label="predicted boundary")
            ax.set_yticks(range(len(order)), order)
            ax.set_ylim(-0.5, len(order) - 0.5)
            ax.set_title(f"{r['series']}: accuracy {r.get('accuracy', float('nan')):.2f}, "
                         f"confidence {r['confidence']:.2f}", fontsize=9)
            ax.set_xlabel(r["scan_coord"])
        axes[0, 0].legend(fontsize=7, loc="best")
    elif scores and scores.get("n"):
        confusion = scores["confusion"]
        if "matrix" in confusion:
            matrix, rows, cols = np.asarray(confusion["matrix"]), confusion["labels"], confusion["labels"]
            ylabel, xlabel = "true", "predicted"
        else:
            rows = list(confusion["per_phase"])
            matrix = np.array([np.ravel(confusion["per_phase"][ph]) for ph in rows])
            cols, ylabel, xlabel = ["TN", "FP", "FN", "TP"], "phase", "outcome"
        fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(cols), 1.0 + 0.6 * len(rows)))
        ax.imshow(matrix, cmap="Blues")
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    else:
        return None
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def public(ramps: list[dict]) -> list[dict]:
    """The ramp reports without the arrays kept for the picture."""
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in ramps]
