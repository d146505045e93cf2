"""MAX cross-fitted by whole cores (``--set folds=K``): one model per fold, their mean the run's model.

On a real ingested store of four cores (one held out), a one-epoch tiny fine-tune per fold: the
folds must partition the labelled cores, every pair must be scored by a model that never trained
on its core, the run's predictions (training, ``predict``, intervals) must be the mean of its fold
models; too few cores fall back to one model and say so; meaningless settings are refused.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import FOUR_CORES
from xrfhub.errors import ConfigError

torch = pytest.importorskip("torch")

CORES = FOUR_CORES
HELD = "SO264-10-2"
SETS = {"batch": "8", "folds": "3", "seed": "4"}


@pytest.fixture(scope="module")
def store(four_core_store):
    return four_core_store


@pytest.fixture(scope="module")
def run(store, tmp_path_factory):
    from xrfhub.ml import training

    out = tmp_path_factory.mktemp("runs") / "caco3"
    summary = training.train("max", store, stage="finetune", out=out, config="tiny", target="CaCO3", epochs=1,
                             holdout_cores=[HELD], sets=SETS, progress=False)
    return out, summary


def _fold_model(run_dir, fold: int):
    """One fold model, loaded by hand from its folder (not through the plugin's ensemble)."""
    from xrfhub_max import checkpoint as ckpt
    from xrfhub_max import engine
    from xrfhub_max.model import MaxRegressor
    from xrfhub_max.plugin import MaxRunConfig
    from xrfhub_max.transforms import Transform

    config = json.loads((run_dir / "run.json").read_text())["config"]
    config = MaxRunConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})
    folder = run_dir / "folds" / f"fold{fold}"
    model = MaxRegressor(config)
    ckpt.load_weights(model, folder / ckpt.BEST_FILE)
    transform = Transform.from_dict(ckpt.read_json(folder / ckpt.TRANSFORM_FILE))
    stats = ckpt.read_json(folder / ckpt.TARGET_STATS_FILE)
    return lambda x: engine.predict(model.eval(), [np.asarray(x, dtype=np.float32)], transform, stats)


def test_the_folds_partition_the_labelled_cores_and_every_pair_is_scored_out_of_fold(run):
    out, summary = run
    folds = json.loads((out / "folds.json").read_text())
    cores = [set(f["cores"]) for f in folds["folds"]]
    assert len(cores) == 3 and all(len(c) == 1 for c in cores)
    assert set().union(*cores) == set(CORES) - {HELD}
    for f in folds["folds"]:
        assert (out / f["run"] / "best.safetensors").is_file()
    oof = folds["out_of_fold"]
    assert len(oof["y"]) == len(oof["pred"]) == len(oof["cores"]) == 12 and HELD not in oof["cores"]
    assert np.isfinite(oof["pred"]).all()
    metrics = summary.metrics
    assert metrics["validation_split"] == "folds" and metrics["folds"] == 3 and len(metrics["best_epoch"]) == 3
    assert metrics["validation"]["n"] == 12 and metrics["held_out"]["n"] == 4
    # the out-of-fold pairs, core by core, with whether each lay inside its model's training range
    by_core = metrics["validation_by_core"]
    assert sorted(by_core) == sorted(set(CORES) - {HELD}) and sum(r["n"] for r in by_core.values()) == 12
    assert all("inside_training_range" in r and np.isfinite(r["bias"]) for r in by_core.values())
    inside = [r["r2"] for r in by_core.values() if r["inside_training_range"]]
    assert metrics["interpolation_r2"] == (pytest.approx(np.mean(inside)) if inside else None)
    assert json.loads((out / "metrics.json").read_text())["validation_by_core"] == by_core
    assert (out / "fit.png").read_bytes()[:4] == b"\x89PNG"  # out of fold beside the held-out core


def test_each_pair_is_predicted_by_the_model_of_its_own_fold(run, store):
    from xrfhub.ml.loaders import labelled_samples

    out, _ = run
    folds = json.loads((out / "folds.json").read_text())
    oof = folds["out_of_fold"]
    for i, fold in enumerate(folds["folds"]):
        x, _, cores, _ = labelled_samples(store, "CaCO3", cores=fold["cores"])
        mine = [p for p, c in zip(oof["pred"], oof["cores"]) if c in fold["cores"]]
        # fit_pairs clips to 0-100 wt%
        assert np.allclose(mine, np.clip(_fold_model(out, i)(x), 0, 100), atol=1e-4)


def test_the_run_predicts_with_the_mean_of_its_fold_models(run, store, tmp_path):
    import shutil

    from xrfhub.ml import registry
    from xrfhub.ml.loaders import labelled_samples

    # this toy store's cores carry the same lab values, so its fold models hardly differ: shift one
    # fold's target statistics in a copy, so that a mean over fewer models would show
    out = tmp_path / "run"
    shutil.copytree(run[0], out)
    stats_file = out / "folds" / "fold1" / "target_stats.json"
    stats = json.loads(stats_file.read_text())
    stats_file.write_text(json.dumps({**stats, "mean": stats["mean"] + 30.0}))
    x, _, _, _ = labelled_samples(store, "CaCO3", cores=[HELD])
    each = np.array([_fold_model(out, i)(x) for i in range(3)])
    assert np.ptp(each, axis=0).min() > 20  # fold 1 now predicts 30 wt% more
    plugin = registry.load("max")
    assert np.allclose(plugin.predictor(out)(x), each.mean(0), atol=1e-3)
    from xrfhub_max.plugin import _batch_predictor

    assert np.allclose(_batch_predictor(plugin.members(out)[2])(np.asarray(x, np.float32)), each.mean(0), atol=1e-3)


def test_intervals_come_from_the_out_of_fold_predictions_without_calibration_cores(run, store):
    import xrfhub
    from xrfhub.ml import training
    from xrfhub.ml.intervals import METHOD_CV, Calibration

    out, summary = run
    cal = Calibration.load(out)
    assert cal.method == METHOD_CV and cal.n == 12 and set(cal.cores) == set(CORES) - {HELD}
    assert summary.metrics["calibration"]["folds"] and "interval_90" in summary.metrics["held_out"]
    run_id = training.predict(store, out, interval=0.9, progress=False)
    ds = xrfhub.open(store, "predictions", run=run_id)
    ok = np.isfinite(ds["CaCO3"].values)
    assert ok.any()
    lower, upper = ds["CaCO3_lower"].values[ok], ds["CaCO3_upper"].values[ok]
    assert (lower <= ds["CaCO3"].values[ok]).all() and (ds["CaCO3"].values[ok] <= upper).all()


def test_saliency_of_a_cross_fitted_run_is_its_fold_models_mean(run, store):
    from xrfhub.ml import registry

    out, _ = run
    saliency, n = registry.load("max").saliency(store, out, cores=[HELD], shifts=2, limit=4)
    assert n == 4 and saliency.shape == (2048,) and np.isfinite(saliency).all() and saliency.max() > 0


def test_too_few_cores_for_folds_fine_tune_one_model_and_say_so(store, tmp_path):
    from xrfhub.ml import training

    out = tmp_path / "few"
    summary = training.train("max", store, stage="finetune", out=out, config="tiny", target="CaCO3", epochs=1,
                             holdout_cores=list(CORES[:2]), sets=SETS, progress=False)
    assert not (out / "folds.json").exists() and (out / "best.safetensors").is_file()
    assert summary.metrics["folds_fallback"] == sorted(CORES[2:])
    assert any("one model was fine-tuned" in n for n in summary.warnings)


@pytest.mark.parametrize("sets, match", [({"folds": "1"}, "at least 2"),
                                         ({"folds": "3", "refit": "true", "val_split": "cores"}, "choose one")])
def test_meaningless_fold_settings_are_refused(store, tmp_path, sets, match):
    from xrfhub.ml import training

    with pytest.raises(ConfigError, match=match):
        training.train("max", store, stage="finetune", out=tmp_path / "bad", config="tiny", target="CaCO3",
                       epochs=1, sets=sets, progress=False)
    assert not (tmp_path / "bad").exists()
