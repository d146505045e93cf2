"""The Lee et al. (2022) baseline plugin on a real synthetic store: train, grid search, predict, persistence."""
import csv
import json

import numpy as np
import pytest

import xrfhub
from xrfhub.ml import training
from xrfhub.errors import ConfigError, InputError
from xrfhub.ml.loaders import labelled_samples
from xrfhub.ml.metrics import regression_metrics

pytest.importorskip("sklearn")

from xrfhub_baseline.model import NmfSvr, closure, from_log, log_target, rbf_decision  # noqa: E402
from xrfhub_baseline.plugin import BaselineConfig, published_settings  # noqa: E402

RUN_KEYS = {"plugin", "stage", "target", "store", "holdout_cores", "init", "config", "metrics", "xrfhub_version",
            "created", "plugin_source", "qc", "training_range", "held_out_range"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from xrfhub.synth import generate_corpus

    root = tmp_path_factory.mktemp("blstore")
    truth = generate_corpus(root / "corpus", size="tiny", seed=3)
    xrfhub.ingest([root / "corpus" / "scans", *sorted((root / "corpus" / "lab").iterdir())], root / "hub")
    scanned = sorted(c for c, t in truth.cores.items() if t.has_scan)
    return root / "hub", scanned


@pytest.fixture(scope="module")
def caco3_run(store, tmp_path_factory):
    hub, cores = store
    out = tmp_path_factory.mktemp("blruns") / "caco3"
    summary = training.train("baseline", hub, stage="train", out=out, target="CaCO3", config="published",
                             holdout_cores=[cores[-1]], progress=False)
    return out, summary


def test_published_caco3_run_is_complete_and_beats_the_training_mean_on_unseen_cores(store, caco3_run):
    hub, cores = store
    out, summary = caco3_run
    run = json.loads((out / "run.json").read_text())
    assert set(run) == RUN_KEYS and run["plugin"] == "baseline" and run["holdout_cores"] == [cores[-1]]
    hyper = summary.metrics["hyperparameters"]
    assert (hyper["n_components"], hyper["C"], hyper["gamma"]) == (4, 100.0, 1000.0)
    assert "published for CaCO3" in hyper["source"]
    _, y, _, _ = labelled_samples(hub, "CaCO3", exclude_cores=[cores[-1]])
    _, held_y, _, _ = labelled_samples(hub, "CaCO3", cores=[cores[-1]])
    m = summary.metrics
    assert m["training"]["n"] + m["validation"]["n"] == len(y) and 0.1 < m["validation"]["n"] / len(y) < 0.35
    assert m["held_out"]["n"] == len(held_y) > 10
    for part in ("training", "validation", "held_out"):
        assert set(m[part]) == {"n", "r2", "r2_vs_training_mean", "rmse"} and m[part]["rmse"] > 0
    assert m["held_out"]["r2_vs_training_mean"] > 0  # beats predicting the training mean on an unseen core
    assert m["validation"]["r2"] > 0.5
    assert json.loads((out / "metrics.json").read_text()) == m
    assert not [p for p in out.iterdir() if p.suffix in (".pkl", ".pickle", ".joblib", ".pt")]  # no pickle
    with np.load(out / "model.npz", allow_pickle=False) as arrays:
        assert arrays["components"].shape == (4, 2048) and arrays["dual_coef"].dtype == np.float64


def test_toc_uses_its_own_published_settings(store, tmp_path):
    hub, cores = store
    summary = training.train("baseline", hub, stage="train", out=tmp_path / "toc", target="TOC",
                             holdout_cores=[cores[-1]], sets={"max_iter": "300"}, progress=False)
    hyper = summary.metrics["hyperparameters"]
    assert (hyper["n_components"], hyper["C"], hyper["gamma"]) == (13, 10.0, 1000.0)
    assert "published for TOC" in hyper["source"]
    assert summary.metrics["held_out"]["n"] > 10 and np.isfinite(summary.metrics["validation"]["rmse"])
    assert NmfSvr.load(tmp_path / "toc").components.shape == (13, 2048)
    # no calibration cores, so the picture shows the held-out core alone
    assert (tmp_path / "toc" / "fit.png").read_bytes()[:4] == b"\x89PNG"


def test_other_targets_borrow_the_caco3_settings_and_say_so():
    assert published_settings("toc")[:3] == (13, 10.0, 1000.0)  # names match case-insensitively
    k, c, g, source = published_settings("TC")
    assert (k, c, g) == (4, 100.0, 1000.0) and "no published settings for 'TC'" in source and "CaCO3" in source


def test_grid_search_folds_are_whole_training_cores_and_pick_the_best_candidate(store, tmp_path):
    hub, cores = store
    out = tmp_path / "grid"
    sets = {"grid": "true", "grid_components": "2,3", "grid_C": "10,100", "grid_gamma": "1,1000", "folds": "10",
            "max_iter": "500"}
    summary = training.train("baseline", hub, stage="train", out=out, target="CaCO3", sets=sets,
                             holdout_cores=[cores[0]], progress=False)
    hyper = summary.metrics["hyperparameters"]
    grid = hyper["grid"]
    folds = grid["test_cores_by_fold"]
    tested = [core for fold in folds for core in fold]
    assert len(tested) == len(set(tested))  # no core in two folds
    assert sorted(tested) == sorted(cores[1:]) and cores[0] not in tested  # never the held-out core
    assert grid["folds"] == len(cores) - 1 == 2 and "asked for 10" in hyper["source"]
    assert grid["rows"] == summary.metrics["training"]["n"]  # the training part only: no validation rows
    with open(out / "grid.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 == grid["candidates"] and {"fold1", "fold2"} <= set(rows[0])
    best = max(rows, key=lambda r: float(r["mean_r2_log"]))
    assert (int(best["n_components"]), float(best["C"]), float(best["gamma"])) == \
        (hyper["n_components"], hyper["C"], hyper["gamma"])
    assert NmfSvr.load(out).n_components == hyper["n_components"]


def test_predictions_go_into_the_store_for_every_10kv_spectrum(store, caco3_run):
    hub, cores = store
    out, _ = caco3_run
    run_id = training.predict(hub, out, progress=False)
    preds = xrfhub.open(hub, "predictions")
    spectra = xrfhub.open(hub, index=False)
    assert preds.attrs["run"] == run_id and run_id.startswith("baseline-CaCO3-")
    values = preds["CaCO3"].values
    kv = preds["tube_kv"].values
    assert np.isfinite(values[kv == 10]).all() and np.isnan(values[kv != 10]).all() and (kv != 10).any()
    assert values[kv == 10].min() >= 0 and values[kv == 10].max() <= 100
    provenance = json.loads(preds.attrs["provenance"])
    assert provenance["hyperparameters"]["n_components"] == 4 and len(provenance["model_sha256"]) == 64
    # the stored values are the model's own predictions of those spectra (batching changes nothing)
    rows = np.flatnonzero(spectra["tube_kv"].values == 10)[:40]
    direct = NmfSvr.load(out).predict(spectra["counts"].values[rows]).astype(np.float32)
    np.testing.assert_array_equal(values[rows], direct)
    assert xrfhub.validate(hub, nxcheck=False).ok


def test_transforms_close_the_spectrum_and_log_the_target():
    x = np.array([[1.0, 3.0, 0.0, 4.0], [0.0, 0.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    closed = closure(x)
    np.testing.assert_allclose(closed[0], [0.125, 0.375, 0.0, 0.5])
    assert not closed[1].any() and np.isfinite(closed).all()  # an empty spectrum gives zeros, not NaN
    np.testing.assert_array_equal(closure(7 * x), closed)  # counting time does not matter
    np.testing.assert_allclose(log_target([0.0, 1.0, np.e, 50.0]), [np.log(0.01), 0.0, 1.0, np.log(50.0)])
    np.testing.assert_allclose(from_log([np.log(12.5), 6.0, -50.0]), [12.5, 100.0, np.exp(-50.0)])


def _toy_data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    parts = rng.random((n, 3))
    basis = rng.random((3, 64)) * np.array([[1.0], [0.5], [2.0]])
    counts = rng.poisson(2000 * parts @ basis).astype(np.float32)
    y = 40 * parts[:, 0] / parts.sum(1)
    return counts, y


def test_save_and_load_without_pickle_predict_exactly_the_same(tmp_path):
    from sklearn.svm import SVR

    counts, y = _toy_data()
    model = NmfSvr(3, C=10.0, gamma=50.0, max_iter=2000).fit(counts[:45], y[:45])
    model.save(tmp_path / "m")
    again = NmfSvr.load(tmp_path / "m")
    np.testing.assert_array_equal(again.predict(counts[45:]), model.predict(counts[45:]))
    assert again.params() == model.params()
    # the array-only SVR is sklearn's SVR
    features = model.features(counts[:45])
    svr = SVR(C=10.0, gamma=50.0).fit(features, log_target(y[:45]))
    test = model.features(counts[45:])
    np.testing.assert_allclose(rbf_decision(test, model.support_vectors, model.dual_coef, model.intercept, 50.0),
                               svr.predict(test), rtol=0, atol=1e-9)
    # spectra predicted one by one or together give the same weights (exact NNLS, no batch-wide stopping rule)
    np.testing.assert_array_equal(model.features(counts[45:]),
                                  np.vstack([model.features(counts[i:i + 1]) for i in range(45, 60)]))
    # a tampered file is refused, naming it
    arrays = tmp_path / "m" / "model.npz"
    arrays.write_bytes(arrays.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(InputError, match="model.npz.*sha256"):
        NmfSvr.load(tmp_path / "m")


def test_regression_metrics_match_sklearn():
    from sklearn.metrics import mean_squared_error, r2_score

    rng = np.random.default_rng(1)
    y = rng.random(50) * 30
    pred = y + rng.normal(0, 3, 50)
    m = regression_metrics(y, pred, train_mean=12.0)
    assert m["n"] == 50 and m["r2"] == pytest.approx(r2_score(y, pred), abs=1e-12)
    assert m["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, pred)), rel=1e-12)
    assert m["r2_vs_training_mean"] == pytest.approx(1 - np.sum((y - pred) ** 2) / np.sum((y - 12.0) ** 2))
    assert regression_metrics([5.0, 5.0], [5.0, 5.0], 4.0)["r2"] == r2_score([5.0, 5.0], [5.0, 5.0]) == 1.0
    assert regression_metrics([1.0], [2.0], 0.0) == {"n": 1}


def test_the_max_plugin_reports_with_the_shared_metrics():
    pytest.importorskip("torch")
    import xrfhub_max.plugin as max_plugin

    assert max_plugin.regression_metrics is regression_metrics and not hasattr(max_plugin, "_r2_metrics")


@pytest.mark.parametrize("kwargs, message", [
    ({"sets": {"n_componets": "4"}}, "unknown config key 'n_componets'.*keys: n_components"),
    ({"sets": {"C": "lots"}}, "'C'.*expected float"),
    ({"sets": {"folds": "1"}}, "'folds'.*at least 2"),
    ({"sets": {"gamma": "-1"}}, "'gamma'.*positive"),
    ({"sets": {"grid": "true", "n_components": "4"}}, "grid=true searches.*grid_components"),
    ({"config": "tuned"}, "unknown preset 'tuned'.*published"),
    ({"stage": "pretrain"}, "no stage 'pretrain'"),
    ({"target": None}, "needs --target"),
    ({"target": "Opal"}, "no lab property 'Opal'"),
])
def test_bad_configurations_are_refused(store, tmp_path, kwargs, message):
    hub, _ = store
    args = {"stage": "train", "out": tmp_path / "bad", "target": "CaCO3", "progress": False, **kwargs}
    with pytest.raises(ConfigError, match=message):
        training.train("baseline", hub, **args)


def test_config_defaults_are_the_published_recipe():
    cfg = BaselineConfig()
    assert (cfg.n_components, cfg.C, cfg.gamma, cfg.grid, cfg.folds, cfg.max_iter) == (None, None, None, False, 10,
                                                                                       10000)
    assert 4 in cfg.grid_components and 13 in cfg.grid_components
    assert 10.0 in cfg.grid_C and 100.0 in cfg.grid_C and 1000.0 in cfg.grid_gamma
