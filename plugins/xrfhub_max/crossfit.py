"""Cross-fitting MAX by whole cores (``--set folds=K``): K fine-tunes, one model.

Why: one fine-tune keeps three sets of labelled cores apart (training, the validation core that
chooses the epoch, the calibration cores of the interval). On a store of 6-10 cores that leaves
3-5 cores to learn from, the epoch is chosen on one core, and the interval's width is read off one
or two cores, so it cannot know how far a new core's bias may fall (issue 16: 90 % intervals that
covered 18-36 % of a small store's held-out pairs).

Here the labelled cores outside the held-out ones are dealt, seeded, into K folds of whole cores
(:func:`xrfhub.ml.crossconformal.fold_cores`). Fold ``i``'s model fine-tunes on the other folds
and chooses its epoch on fold ``i``, and it predicts fold ``i``'s pairs: every labelled core gets
an out-of-fold prediction, from a model that never trained on it. The run's prediction is the mean
of the K fold models (an ensemble; each saw (K-1)/K of the cores), and the run reports its
out-of-fold predictions so that :mod:`xrfhub.ml.training` calibrates the interval on every
labelled core (the cross-conformal "CV" interval of Barber et al. 2021, around the ensemble mean).
The out-of-fold residuals come from the cores that chose each fold model's epoch, so they are a
little optimistic; held-out cores are scored and reported as always.

Layout of a cross-fitted run folder: ``folds.json`` (the folds, their cores, epochs and the
out-of-fold predictions) and ``folds/fold<i>/``, each a complete fine-tune run of the model.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xrfhub.errors import ConfigError
from xrfhub.ml import crossconformal
from xrfhub.ml.metrics import by_core, interpolation_r2, regression_metrics

FOLDS_FILE = "folds.json"
FOLDS_DIR = "folds"
MIN_CORES = 3  # two folds of one core each teach nothing about a third


def member_dirs(run_dir) -> list[Path]:
    """The folders of a run's models: the fold models of a cross-fitted run, in fold order, or
    the run folder itself."""
    index = Path(run_dir) / FOLDS_FILE
    if not index.is_file():
        return [Path(run_dir)]
    return [Path(run_dir) / f["run"] for f in json.loads(index.read_text())["folds"]]


def fit(plugin, x, y, cores, *, target, config, out: Path, init, progress, resume) -> tuple[dict, list, dict]:
    """Fine-tune one model per fold; returns the run's metrics, the fold models (``FittedRegressor``)
    and the out-of-fold predictions ``{"y", "pred", "cores"}``."""
    pool = sorted(set(map(str, cores)))
    if len(pool) < MIN_CORES:  # the plugin falls back to one model before this
        raise ConfigError(f"folds={config.folds} needs at least {MIN_CORES} labelled cores, got {len(pool)}")
    groups = crossconformal.fold_cores(pool, seed=config.seed, folds=config.folds)
    oof = np.full(len(y), np.nan)
    members, folds = [], []
    for i, group in enumerate(groups):
        held = np.isin(cores, group)
        rel = f"{FOLDS_DIR}/fold{i}"
        fitted = plugin.fit_pairs(x[~held], y[~held], x[held], y[held], target=target, config=config,
                                  out=out / rel, init=init, progress=progress, resume=resume)
        oof[held] = fitted.predict(x[held])
        members.append(fitted)
        folds.append({"run": rel, "cores": list(group), "best_epoch": fitted.best_epoch,
                      "validation": regression_metrics(y[held], oof[held], fitted.train_mean)})
    out_of_fold = {"y": y.tolist(), "pred": oof.tolist(), "cores": [str(c) for c in cores]}
    (out / FOLDS_FILE).write_text(json.dumps({"folds": folds, "out_of_fold": out_of_fold}, indent=1))
    metrics = {"target": target, "validation_split": "folds", "folds": len(groups),
               "best_epoch": [f["best_epoch"] for f in folds],
               "fold_cores": [f["cores"] for f in folds],
               # every pair scored by the fold model that never trained on its core
               "validation": regression_metrics(y, oof, float(np.mean(y)))}
    # the same pairs core by core, as a held-out core is scored: which cores the model misses,
    # and how it does on those inside the range it trained on (docs/results.md, eighth pass)
    trained_on = {c: [o for o in pool if o not in group] for group in groups for c in group}
    metrics["validation_by_core"] = by_core(y, oof, cores, trained_on)
    metrics["interpolation_r2"] = interpolation_r2(metrics["validation_by_core"])
    return metrics, members, out_of_fold


def mean_predictor(predictors):
    """The ensemble: the mean of the members' predictions."""
    def predict(spectra):
        return np.mean([np.asarray(p(spectra), dtype=np.float64) for p in predictors], axis=0)
    return predict
