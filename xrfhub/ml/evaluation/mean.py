"""The mean of MAX and the log-ratio calibration in the evaluation: what `xrfhub predict --run A --run B` gives.

The README's tour ends with that mean (docs/results.md, twelfth pass), so the evaluation scores it
beside the models it averages. It fits nothing: each of its cells reads the two finished cells it
averages (same split, same seed, same pairs) and scores their per-pair mean on the same held-out
cores. Its interval is calibrated on the mean of the two models' predictions of the same
calibration cores (:func:`xrfhub.ml.ensemble.calibrate_pairs`), as `predict --interval` calibrates
the mean on out-of-fold pairs.
"""
from __future__ import annotations

import numpy as np

from ...errors import ConfigError
from ..metrics import regression_metrics

MODEL = "mean"
PARTS = ("max", "logratio")


def _stale(key: str, field: str) -> ConfigError:
    return ConfigError(f"cells/{key}: finished by an older xrfhub, without {field!r}, which the mean of "
                       f"{' and '.join(PARTS)} needs; run the evaluation again with --restart")


def amount_result(keys: list[str], parts: list[dict]) -> dict:
    """The mean of the finished data-amount cells ``keys`` (their results ``parts``; one per model,
    same split and seed)."""
    first = parts[0]
    for key, part in zip(keys, parts):
        if part["test_index"] != first["test_index"]:
            raise ConfigError(f"cells/{key} was scored on other test pairs than cells/{keys[0]}")
    pred = np.mean([np.asarray(p["pred"], dtype=np.float64) for p in parts], axis=0)
    y = np.asarray(first["y"], dtype=np.float64)
    result = {"n_train": first["n_train"], "n_val": first["n_val"], "lr": None, "epochs": None, "best_epoch": None,
              "seconds": round(sum(p["seconds"] for p in parts), 2), "parts": keys,
              "test": regression_metrics(y, pred, first["train_mean"]), "test_index": first["test_index"],
              "y": y.tolist(), "pred": pred.tolist(), "train_mean": first["train_mean"], "val": {}}
    if all("val_pred" in p for p in parts):  # older cells kept no validation predictions
        val = np.mean([np.asarray(p["val_pred"], dtype=np.float64) for p in parts], axis=0)
        result["val"] = regression_metrics(np.asarray(first["val_y"], dtype=np.float64), val, first["train_mean"])
    return result


def interval_result(keys: list[str], parts: list[dict], target: str, method: str, level: float) -> dict:
    """The mean of the finished interval cells ``keys`` (results ``parts``; same training,
    calibration and test cores), with its own interval calibrated on the mean of their
    calibration-core predictions."""
    from .. import ensemble, intervals

    for key, part in zip(keys, parts):
        if "calibration_pairs" not in part:
            raise _stale(key, "calibration_pairs")
    first = parts[0]
    cal = first["calibration_pairs"]
    for key, part in zip(keys[1:], parts[1:]):
        if part["calibration_cores"] != first["calibration_cores"] or part["cores"] != first["cores"]:
            raise ConfigError(f"cells/{key} was calibrated or tested on other cores than cells/{keys[0]}")
    calibrated = ensemble.calibrate_pairs(cal["y"], [np.asarray(p["calibration_pairs"]["pred"]) for p in parts],
                                          cal["cores"], target, method,
                                          [f"calibrated on the mean of {' and '.join(PARTS)}"], level=level)
    each = [np.asarray(p["pred"], dtype=np.float64) for p in parts]
    y = np.asarray(first["y"], dtype=np.float64)
    pred = np.mean(each, axis=0)
    lower, upper = calibrated.interval(each, level)
    described = calibrated.describe(level)
    return {"n_train": first["n_train"], "n_val": first["n_val"], "n_calibration": first["n_calibration"],
            "lr": None, "epochs": None, "calibration_cores": first["calibration_cores"], "parts": keys,
            "seconds": round(sum(p["seconds"] for p in parts), 2), "val": {}, "train_mean": first["train_mean"],
            "test": regression_metrics(y, pred, first["train_mean"]),
            **intervals.held_out(y, lower, upper, first["cores"], level, described),
            "y": first["y"], "pred": pred.tolist(), "cores": first["cores"]}
