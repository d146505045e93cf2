"""Cross-conformal calibration over folds of whole training cores (``--interval-method cross-conformal-cores``).

Why: split conformal holds a quarter of the cores apart (4 of 14 on a 16-core store, 1-2 on a
small one), and between-core differences, not the number of pairs, set the interval: with so few
cores the one that happens to be drawn decides (docs/results.md). Here the labelled training
cores are split (seeded) into ``FOLDS`` groups of whole cores; the plugin is trained once per
fold without that fold's cores, and those cores are scored by that fold's model. Every training
core then contributes out-of-fold scores, while the run's own model trains on all of them.

This is the K-fold cross-conformal construction of Vovk (2015, "Cross-conformal predictors") and
Barber, Candès, Ramdas & Tibshirani (2021, "Predictive inference with the jackknife+"), with groups
of cores as the folds. Our interval is the full model's prediction plus or minus the quantile of
the out-of-fold scores (the "CV" interval of Barber et al., not CV+): its guarantee is
approximate (fold models see 1/FOLDS fewer cores than the full one, so their residuals are, if
anything, larger), which is why coverage on held-out cores is measured and reported. The score and
weighting are then chosen leaving one core out, as in :func:`xrfhub.ml.intervals.select`, now over
every training core. Cost: FOLDS extra trainings.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from . import intervals
from ..errors import ConfigError

FOLDS = 5
FOLDS_DIR = "cross-conformal-folds"  # removed once the folds are scored
OUT_OF_FOLD_FILE = "out_of_fold.json"


def fold_cores(pool, *, seed: int, folds: int = FOLDS) -> list[list[str]]:
    """Whole cores in ``min(folds, cores)`` seeded groups of near-equal size."""
    pool = sorted(set(map(str, pool)))
    if len(pool) < 3:
        raise ConfigError(f"--interval-method {intervals.METHOD_CV} needs at least 3 labelled cores outside the "
                          f"held-out ones; the store has {len(pool)}: {', '.join(pool) or 'none'}")
    order = np.random.default_rng([int(seed), 13]).permutation(len(pool))
    k = min(int(folds), len(pool))
    return [sorted(pool[i] for i in order[j::k]) for j in range(k)]


def calibrate(plugin, store, out, *, stage: str, config, target: str, init, holdout, seed: int,
              notes=(), progress: bool = False) -> tuple[intervals.Calibration, list[list[str]], dict]:
    """Train the plugin once per fold (without the fold's cores and the held-out ones), score the
    fold's labelled pairs with it, and calibrate on all those out-of-fold scores. Also returns the
    folds and the out-of-fold predictions (``{"y", "pred", "cores"}``, as a cross-fitted plugin
    reports them), from which training scores each training core as a held-out core is scored."""
    from .loaders import labelled_samples

    if not hasattr(plugin, "predictor"):
        raise ConfigError(f"plugin {plugin.name!r} offers no predictor(run_dir); calibrated intervals need one")
    pool = [c for c in intervals.labelled_cores(store, target) if c not in set(holdout)]
    folds = fold_cores(pool, seed=seed)
    root = Path(out) / FOLDS_DIR
    ys, preds, cores, scales = [], [], [], []
    try:
        for i, fold in enumerate(folds):
            fold_out = root / f"fold{i}"
            plugin.train(store, stage=stage, out=fold_out, config=config, target=target, init=init,
                         holdout_cores=tuple(holdout) + tuple(fold), progress=progress)
            predictor = plugin.predictor(fold_out)
            x, y, c, _ = labelled_samples(store, target, cores=fold)
            if len(y) == 0:
                continue
            ys.append(y)
            preds.append(np.asarray(predictor(x), dtype=np.float64))
            cores.append(c)
            scale_fn = getattr(predictor, "scale", None)
            scales.append(None if scale_fn is None else np.asarray(scale_fn(x), dtype=np.float64))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if not ys:
        raise ConfigError(f"--interval-method {intervals.METHOD_CV}: no labelled {target} pairs outside the "
                          "held-out cores")
    scale = None if any(s is None for s in scales) else np.concatenate(scales)
    y, pred, core = np.concatenate(ys), np.concatenate(preds), np.concatenate(cores)
    cal = intervals.from_predictions(y, pred, core, target, notes, method=intervals.METHOD_CV, scale=scale)
    return cal, folds, {"y": y.tolist(), "pred": pred.tolist(), "cores": [str(c) for c in core]}


def from_out_of_fold(out_of_fold: dict, target: str) -> intervals.Calibration:
    """Cross-conformal calibration on a cross-fitted plugin's own out-of-fold predictions."""
    note = ("calibrated on the out-of-fold predictions of every labelled core outside the held-out ones; each "
            "fold model chose its epoch on the cores it scores, so the interval may be a little narrow")
    return intervals.from_predictions(out_of_fold["y"], out_of_fold["pred"], out_of_fold["cores"], target, [note],
                                      method=intervals.METHOD_CV)


def score_cores(metrics: dict, out_of_fold: dict, folds) -> None:
    """Score each training core on the predictions of the fold model that never saw it, as a cross-fitted
    plugin does, into ``metrics`` (``out_of_fold_by_core``, ``interpolation_r2``): a figure from the
    training cores alone, on which two models, or two recipes, may be compared without the test set."""
    from .metrics import by_core, interpolation_r2

    fold_of = {str(c): i for i, fold in enumerate(folds) for c in fold}
    trained_on = {c: [o for o in fold_of if fold_of[o] != fold_of[c]] for c in fold_of}
    per_core = by_core(out_of_fold["y"], out_of_fold["pred"], out_of_fold["cores"], trained_on)
    metrics["out_of_fold_by_core"], metrics["interpolation_r2"] = per_core, interpolation_r2(per_core)


def save_out_of_fold(run_dir, target: str, out_of_fold: dict, folds) -> None:
    """Keep a run's out-of-fold predictions and folds beside it (``out_of_fold.json``), so that
    runs of several models can later be averaged and calibrated together (:mod:`xrfhub.ml.ensemble`)."""
    body = {"target": target, "y": [float(v) for v in out_of_fold["y"]],
            "pred": [float(v) for v in out_of_fold["pred"]], "cores": [str(c) for c in out_of_fold["cores"]],
            "folds": [[str(c) for c in fold] for fold in (folds or [])]}
    (Path(run_dir) / OUT_OF_FOLD_FILE).write_text(json.dumps(body))


def load_out_of_fold(run_dir) -> dict:
    """What :func:`save_out_of_fold` kept, or a ConfigError saying how to train a run that has it."""
    path = Path(run_dir) / OUT_OF_FOLD_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: the run has no out-of-fold predictions ({OUT_OF_FOLD_FILE}), so a mean with "
                          f"it cannot be calibrated; train it cross-fitted (MAX: --set folds=4) or with "
                          f"--interval-method {intervals.METHOD_CV} (a run trained before this file was kept: train "
                          "it again), or predict the mean without --interval")
    return json.loads(path.read_text())
