"""Per-core scores of out-of-fold predictions (``xrfhub.ml.metrics.by_core``).

A held-out core is scored on its own, so a recipe is judged on its training cores the same way:
each core's R2, RMSE and bias, and whether its values lie inside the range of the cores its
model trained on (interpolation cores, the only kind an ``auto`` draw holds out).
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mean_squared_error, r2_score

from xrfhub.ml.metrics import by_core, interpolation_r2


def _pairs():
    rng = np.random.default_rng(3)
    cores = np.repeat(["low", "mid", "high"], 20)
    y = np.concatenate([rng.uniform(0, 10, 20), rng.uniform(5, 50, 20), rng.uniform(40, 95, 20)])
    pred = y + rng.normal(0, 2, 60) + np.where(cores == "high", -30.0, 0.0)
    return y, pred, cores


def test_each_core_is_scored_as_sklearn_scores_it_alone():
    y, pred, cores = _pairs()
    per = by_core(y, pred, cores)
    assert sorted(per) == ["high", "low", "mid"] and all(isinstance(k, str) for k in per)
    for core, row in per.items():
        m = cores == core
        assert row["n"] == 20
        assert row["r2"] == pytest.approx(r2_score(y[m], pred[m]))
        assert row["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y[m], pred[m])))
        assert row["bias"] == pytest.approx(np.mean(pred[m] - y[m]))
        assert "inside_training_range" not in row  # nothing said about the models
    assert per["high"]["bias"] < -25 and abs(per["low"]["bias"]) < 2


def test_interpolation_cores_are_those_inside_the_range_their_model_trained_on():
    y, pred, cores = _pairs()
    # one core per fold: each model trained on the two other cores
    trained_on = {c: [o for o in ("low", "mid", "high") if o != c] for c in ("low", "mid", "high")}
    per = by_core(y, pred, cores, trained_on)
    # "mid" (5-50) lies inside low+high (0-95); "low" and "high" reach past the others' range
    assert {c: row["inside_training_range"] for c, row in per.items()} == {"low": False, "mid": True, "high": False}
    assert interpolation_r2(per) == pytest.approx(per["mid"]["r2"])
    # the extrapolated core's failure does not enter the figure; nor does anything without a range
    assert interpolation_r2(by_core(y, pred, cores)) is None


def test_with_an_interval_each_core_says_how_much_of_it_the_interval_holds():
    y, pred, cores = _pairs()
    per = by_core(y, pred, cores, lower=pred - 5, upper=pred + 5)
    for core, row in per.items():
        m = cores == core
        assert row["interval_coverage"] == pytest.approx(np.mean(np.abs(y[m] - pred[m]) <= 5))
    assert per["high"]["interval_coverage"] == 0.0 and per["low"]["interval_coverage"] > 0.9  # 30 wt% off
    assert "interval_coverage" not in by_core(y, pred, cores)["low"]


def test_the_run_summary_names_each_held_out_core_worst_first(tmp_path):
    from xrfhub.ml.registry import RunSummary

    y, pred, cores = _pairs()
    metrics = {"held_out": {"n": 60, "r2": 0.5, "rmse": 17.0},
               "held_out_by_core": by_core(y, pred, cores, lower=pred - 5, upper=pred + 5)}
    lines = RunSummary(tmp_path, "max", "finetune", "CaCO3", metrics).headline()
    first = lines[1].split(": ", 1)[1].split("), ")[0]  # the worst core, listed first
    assert lines[1].startswith("  by core, R2 (bias, 0.9 coverage): ") and first.startswith("high ")
    assert first.endswith("covered 0.00") and lines[1].index("high") < lines[1].index("low")
    plain = {"held_out": metrics["held_out"], "held_out_by_core": by_core(y, pred, cores)}
    assert RunSummary(tmp_path, "x", "train", "CaCO3", plain).headline()[1].startswith("  by core, R2 (bias): ")


def test_the_run_summary_reads_the_cores_worst_first_and_marks_extrapolated_ones(tmp_path):
    from xrfhub.ml.registry import RunSummary

    y, pred, cores = _pairs()
    trained_on = {c: [o for o in ("low", "mid", "high") if o != c] for c in ("low", "mid", "high")}
    metrics = {"validation_by_core": by_core(y, pred, cores, trained_on),
               "held_out": {"n": 12, "r2": 0.8123, "rmse": 1.234, "interval_90": {"n": 12, "coverage": 0.75,
                                                                                  "mean_width": 4.56}}}
    lines = RunSummary(tmp_path, "max", "finetune", "CaCO3", metrics).headline()
    assert lines[0] == "held-out CaCO3: R2 0.812, RMSE 1.23 over 12 pairs"
    assert lines[1] == "  0.9 interval: covers 0.75 of them, mean width 4.56"
    assert lines[2].startswith("training cores out of fold, R2 (bias): high ")  # the worst first
    assert lines[2].index("*") < lines[2].index(", low") and lines[2].endswith("trained on")  # high: beyond
    assert len(lines) == 3  # no fit.png in the folder, so no picture line
