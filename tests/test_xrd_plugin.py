"""The diffraction classifiers as plugins: trained from a real store, predicting into it.

One small store for the module: two simulated pressure ramps (24 patterns x 300 points each,
"low" -> "high" at pattern 12, ``pressure_step`` as scan coordinate) on one grid, and a small
hydrothermal set (phase sets over three phases) on another. Recipes run with tiny settings.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import xrfhub
from xrfhub.ml import registry, training
from xrfhub.api import resolve
from xrfhub.errors import ConfigError
from xrfhub.predictions import list_runs
from xrfhub.store import nxrun
from xrfhub.kinds import read_core
from xrfhub.store.nxvalidate import validate_core_file

from conftest import run_cli

pytest.importorskip("torch")

from xrfhub_xrd.plugin import diffraction_grids  # noqa: E402
from xrfhub_xrd.recipes import Fitted  # noqa: E402

MODULE = "xrfhub_xrd.plugin"
RAMP_N, TRANSITION = 24, 12
TINY_1D = {"arch": "fcnn", "iterations": "30", "fcnn_hidden": "32", "copies": "1"}
RUN_KEYS = {"plugin", "stage", "target", "store", "holdout_cores", "init", "grid", "phases", "config", "metrics",
            "xrfhub_version", "created", "plugin_source", "resampling", "qc"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from xrfhub.synth.xrd import hydrothermal, pressure_ramp, write_xy

    root = tmp_path_factory.mktemp("xrdplugin")
    for series, seed in (("ramp_a", 0), ("ramp_b", 1)):
        ramp = pressure_ramp(n_patterns=RAMP_N, n_points=300, transition=TRANSITION, seed=seed)
        ramp = dataclasses.replace(ramp, pattern_id=[f"{series}_{i:02d}" for i in range(RAMP_N)])
        write_xy(ramp, root / series)
    write_xy(hydrothermal(n_per_combo=3, two_theta=(4.0, 30.0, 0.1), seed=2), root / "hydro")
    hub = root / "hub"
    xrfhub.ingest([root / "ramp_a", root / "ramp_b"], hub, wavelength=0.4843, scan_coord="pressure_step")
    xrfhub.ingest([root / "hydro"], hub, wavelength=0.6199)
    grids = {}
    for grid in diffraction_grids(hub):
        ds = xrfhub.open(hub, "diffraction", grid=grid)
        grids["hydro" if "phase_present" in ds else "ramp"] = grid
    return hub, grids


def _train(name, hub, out, **kw):
    kw.setdefault("progress", False)
    return training.train(name, hub, stage="train", out=out, plugin_from=MODULE, **kw)


def _patterns(hub, grid):
    ds = xrfhub.open(hub, "diffraction", grid=grid)
    return ds, ds["intensity"].values, ds["two_theta"].values


@pytest.fixture(scope="module")
def ramp_run(store, tmp_path_factory):
    hub, grids = store
    out = tmp_path_factory.mktemp("runs") / "spectra1d"
    summary = _train("spectra1d", hub, out, target="phase", holdout_cores=["ramp_b"],
                     sets={**TINY_1D, "grid": grids["ramp"]})
    return out, summary


def test_ramp_run_holds_out_a_series_and_reports_accuracy_and_the_boundary(store, ramp_run):
    hub, grids = store
    out, summary = ramp_run
    run = json.loads((out / "run.json").read_text())
    assert set(run) == RUN_KEYS and run["plugin"] == "spectra1d" and run["plugin_source"] == MODULE
    assert run["holdout_cores"] == ["ramp_b"] and run["grid"] == grids["ramp"] and run["target"] == "phase"
    assert run["config"]["arch"] == "fcnn" and run["config"]["iterations"] == 30 and run["config"]["val_fraction"] == 0.2
    m = summary.metrics
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(m))
    # the held-out series is scored and never trained on; the rest is split 80/20 per class
    assert m["split"]["training_series"] == ["ramp_a"]
    assert m["split"]["held_out"] == RAMP_N == m["held_out"]["n"]
    assert m["split"]["training"] + m["split"]["validation"] == RAMP_N and m["split"]["validation"] == 4
    assert all(p.startswith("ramp_a_") for p in m["split"]["validation_patterns"])
    fitted = Fitted.load(out)
    assert fitted.info["training_patterns"] == 2 * m["split"]["training"]  # the curves + 1 noisy copy each
    for part in ("validation", "held_out"):
        s = m[part]
        assert set(s) == {"n", "accuracy", "macro_f1", "f1", "confusion"}
        assert s["confusion"]["labels"] == ["high", "low"] and np.sum(s["confusion"]["matrix"]) == s["n"]
        assert 0 <= s["macro_f1"] <= 1
    assert m["held_out"]["accuracy"] >= 0.75
    # the ramp check along pressure_step, per series, with the true boundary at the transition
    ramps = {r["series"]: r for r in m["ramp_report"]}
    assert set(ramps) == {"ramp_a", "ramp_b"}
    b = ramps["ramp_b"]
    assert b["scan_coord"] == "pressure_step" and b["n"] == RAMP_N and b["patterns"] == {"held_out": RAMP_N}
    assert b["true_boundary"] == TRANSITION and b["true_boundary_scan"] == TRANSITION
    assert b["accuracy"] == pytest.approx(m["held_out"]["accuracy"])
    assert 0 < b["confidence"] <= 1 and (b["boundary"] is None or 0 < b["boundary"] < RAMP_N)
    assert m["figure"] == "ramp.png" and (out / "ramp.png").stat().st_size > 1000


def test_ramp_predictions_land_in_the_store_and_match_the_fitted_model(store, ramp_run):
    hub, grids = store
    out, _ = ramp_run
    run_id = training.predict(hub, out, progress=False)
    pred = xrfhub.open(hub, "predictions", run=run_id)
    ds, x, tt = _patterns(hub, grids["ramp"])
    fitted = Fitted.load(out)
    assert pred.sizes["pattern"] == 2 * RAMP_N
    assert list(pred["pattern_id"].values) == list(ds["pattern_id"].values)
    assert list(pred["core"].values) == list(ds["core"].values)
    np.testing.assert_array_equal(pred["pressure_step"].values, ds["pressure_step"].values)
    assert list(pred["phase"].values) == list(fitted.predict(x, tt))
    np.testing.assert_allclose(pred["phase_confidence"].values, fitted.predict_proba(x, tt).max(axis=1), rtol=1e-6)
    assert pred.attrs["diffraction_group"] == f"diffraction/{grids['ramp']}"
    assert json.loads(pred.attrs["provenance"])["holdout_cores"] == ["ramp_b"]
    listed = {r["run"]: r for r in list_runs(hub)}
    assert listed[run_id]["targets"] == ["phase"] and listed[run_id]["n_predicted"] == 2 * RAMP_N
    assert listed[run_id]["plugin"] == "spectra1d" and listed[run_id]["kind"] == "diffraction"
    # kept in the run's own NeXus file, keyed by (series, pattern id); the series' file is untouched
    gen, _ = resolve(hub)
    gen_dir = hub / "generations" / gen.rsplit("/", 1)[1]
    nxs = gen_dir / "nexus" / "ramp_b.nxs"
    assert validate_core_file(nxs) == []
    assert not [p for p in read_core(nxs).processes if p.name.startswith("prediction_")]
    run = nxrun.read(gen_dir / "runs" / f"{run_id}.nxs", cores=["ramp_b"])
    assert list(run.keys["pattern_id"]) == [f"ramp_b_{i:02d}" for i in range(RAMP_N)]
    assert list(run.values["phase"]) == list(pred["phase"].values[RAMP_N:])
    run_cli("rebuild", hub)
    again = xrfhub.open(hub, "predictions", run=run_id)
    assert list(again["phase"].values) == list(pred["phase"].values)


def test_same_seed_gives_the_same_predictions_and_epochs_set_the_passes(store, tmp_path):
    hub, grids = store
    sets = {**TINY_1D, "grid": grids["ramp"], "seed": "3"}
    runs = [_train("spectra1d", hub, tmp_path / f"r{i}", sets=sets, epochs=12) for i in range(2)]
    other = _train("spectra1d", hub, tmp_path / "other", sets={**sets, "seed": "4"}, epochs=12)
    assert runs[0].metrics["fit"]["steps"] == 12
    plugin = registry.load("spectra1d", MODULE)
    p0, p1 = (plugin.predict(hub, tmp_path / f"r{i}", progress=False) for i in range(2))
    assert p0.group == f"diffraction/{grids['ramp']}"
    assert list(p0.values["phase"]) == list(p1.values["phase"])
    np.testing.assert_array_equal(p0.values["phase_confidence"], p1.values["phase_confidence"])
    assert runs[0].metrics["split"] == runs[1].metrics["split"]
    assert other.metrics["split"]["validation_patterns"] != runs[0].metrics["split"]["validation_patterns"]


@pytest.mark.parametrize("name", ["panosc-binned", "panosc-binned-learned"])
def test_binned_models_train_and_predict_through_the_store(store, tmp_path, name):
    hub, grids = store
    summary = _train(name, hub, tmp_path / name, config="tiny", holdout_cores=["ramp_a"],
                     sets={"grid": grids["ramp"]})
    m = summary.metrics
    assert m["split"]["training_series"] == ["ramp_b"] and m["held_out"]["n"] == RAMP_N
    assert {r["series"] for r in m["ramp_report"]} == {"ramp_a", "ramp_b"}
    assert json.loads((tmp_path / name / "run.json").read_text())["config"]["bins"] == 5
    run_id = training.predict(hub, tmp_path / name, progress=False)
    pred = xrfhub.open(hub, "predictions", run=run_id)
    _, x, tt = _patterns(hub, grids["ramp"])
    fitted = Fitted.load(tmp_path / name)
    assert fitted.model_name == name
    assert list(pred["phase"].values) == list(fitted.predict(x, tt))
    np.testing.assert_allclose(pred["phase_confidence"].values, fitted.predict_proba(x, tt).max(axis=1), rtol=1e-6)


def test_mtl_phase_writes_presence_per_phase(store, tmp_path):
    hub, grids = store
    out = tmp_path / "mtl"
    summary = _train("mtl-phase", hub, out, target="phases", config="tiny", sets={"grid": grids["hydro"]})
    ds, x, tt = _patterns(hub, grids["hydro"])
    phases = list(ds["phase"].values)
    m = summary.metrics
    assert m["phases"] == phases == ["La-bastnaesite", "calcite", "rhenium"] and m["ramp_report"] == []
    assert m["split"]["training"] + m["split"]["validation"] == ds.sizes["pattern"] == 21
    v = m["validation"]
    assert set(v["f1"]) == set(phases) and set(v["confusion"]["per_phase"]) == set(phases)
    assert all(np.sum(c) == v["n"] for c in v["confusion"]["per_phase"].values())
    assert 0 <= v["exact_match"] <= v["accuracy"] <= 1 and "held_out" not in m
    assert m["figure"] == "confusion.png" and (out / "confusion.png").is_file()
    run_id = training.predict(hub, out, progress=False)
    pred = xrfhub.open(hub, "predictions", run=run_id)
    fitted = Fitted.load(out)
    assert pred["phases"].dims == ("pattern", "phase") and list(pred["phase"].values) == phases
    np.testing.assert_array_equal(pred["phases"].values, fitted.predict(x, tt))
    proba = fitted.predict_proba(x, tt)
    np.testing.assert_allclose(pred["phases_probability"].values, proba, rtol=1e-6)
    np.testing.assert_allclose(pred["phases_confidence"].values, np.maximum(proba, 1 - proba).min(axis=1), rtol=1e-6)
    assert set(np.unique(pred["phases"].values)) <= {0, 1}
    # without run=: the latest run per target; runs over other rows (the ramp grid) stay out
    latest = xrfhub.open(hub, "predictions")
    assert "phases" in latest and "phase_confidence" not in latest


def test_bad_target_grid_and_cores_are_config_errors(store, tmp_path):
    hub, grids = store
    out = tmp_path / "bad"
    with pytest.raises(ConfigError, match="cannot predict 'phases'"):
        _train("spectra1d", hub, out, target="phases")
    with pytest.raises(ConfigError, match="phase-set labels"):
        _train("mtl-phase", hub, out, sets={"grid": grids["ramp"]})
    with pytest.raises(ConfigError, match=r"no diffraction grid 'tth1-2n3-nope'.*grids: "):
        _train("spectra1d", hub, out, sets={"grid": "tth1-2n3-nope"})
    with pytest.raises(ConfigError, match="no such series"):
        _train("spectra1d", hub, out, sets={"grid": grids["ramp"]}, holdout_cores=["ramp_z"])
    with pytest.raises(ConfigError, match="val_fraction"):
        _train("spectra1d", hub, out, sets={"val_fraction": "1.5"})
    with pytest.raises(ConfigError, match="arch"):
        _train("spectra1d", hub, out, sets={"arch": "mlp"})
    plugin = registry.load("spectra1d", MODULE)
    with pytest.raises(ConfigError, match="no --init"):
        plugin.train(hub, stage="train", out=out, config=registry.build_config(plugin), init=tmp_path)
    assert not (out / "run.json").exists()


def test_configs_are_the_published_defaults_plus_store_fields():
    from xrfhub_xrd.config import BinnedVoteConfig, MultiTaskConfig

    plugin = registry.load("panosc-binned", MODULE)
    cfg = registry.build_config(plugin, None, {"epochs": "9", "grid": "g", "seed": "2"})
    assert cfg.model_config("panosc-binned") == BinnedVoteConfig(iterations=9, seed=2)
    assert registry.build_config(plugin).model_config("panosc-binned") == BinnedVoteConfig()
    mtl = registry.load("mtl-phase", MODULE)
    cfg = registry.build_config(mtl, None, {"epochs": "4", "channels": "8,16", "task_weights": "1,2,1"})
    assert cfg.model_config("mtl-phase") == MultiTaskConfig(epochs=4, channels=(8, 16), task_weights=(1.0, 2.0, 1.0))
    assert registry.config_fields(mtl)["val_fraction"][1] == 0.2
    with pytest.raises(ConfigError, match="epochs"):
        registry.build_config(plugin, None, {"epochs": "0"})


def test_cli_trains_and_predicts_spectra1d(store, tmp_path):
    hub, grids = store
    out = tmp_path / "cli"
    run_cli("train", "spectra1d", "--plugin", MODULE, "--store", hub, "--target", "phase", "--set", "arch=fcnn",
            "--set", "iterations=20", "--set", f"grid={grids['ramp']}", "--holdout-cores", "ramp_b", "--out", out)
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["iterations"] == 20 and run["holdout_cores"] == ["ramp_b"]
    result = run_cli("predict", "--store", hub, "--run", out)
    run_id = result.stdout.split("prediction run ", 1)[1].split()[0]
    pred = xrfhub.open(hub, "predictions", run=run_id)
    _, x, tt = _patterns(hub, grids["ramp"])
    assert list(pred["phase"].values) == list(Fitted.load(out).predict(x, tt))
    assert run_id in run_cli("runs", hub).stdout


def test_common_grid_run_trains_on_one_grid_and_scores_and_predicts_another(tmp_path):
    """Series measured on different grids: train on one, hold out the other, resampled onto the
    training axis on demand (recorded); the store keeps both as measured and gets predictions
    for both grids."""
    from xrfhub.synth.xrd import hydrothermal, write_xy

    for series, step, seed in (("fine", 0.1, 3), ("coarse", 0.13, 4)):
        sim = hydrothermal(n_per_combo=3, two_theta=(4.0, 30.0, step), seed=seed)
        write_xy(dataclasses.replace(sim, pattern_id=[f"{series}_{i:02d}" for i in range(len(sim))]),
                 tmp_path / series)
    hub = tmp_path / "hub"
    xrfhub.ingest([tmp_path / "fine", tmp_path / "coarse"], hub, wavelength=0.6199)
    grids = {str(xrfhub.open(hub, "diffraction", grid=g)["core"].values[0]): g for g in diffraction_grids(hub)}
    assert len(grids) == 2
    out = tmp_path / "mtl"
    with pytest.raises(ConfigError, match="no diffraction grid 'nope'"):
        _train("mtl-phase", hub, out, target="phases", config="tiny", sets={"grid": "common:nope"})
    summary = _train("mtl-phase", hub, out, target="phases", config="tiny", holdout_cores=["coarse"],
                     sets={"grid": f"common:{grids['fine']}"})
    run = json.loads((out / "run.json").read_text())
    assert run["grid"] == f"common:{grids['fine']}"
    assert sorted(run["resampling"]["resampled_from"]) == sorted(grids.values())
    held = summary.metrics["held_out"]
    assert held["n"] == 21 and summary.metrics["split"]["training_series"] == ["fine"]
    assert 0 <= held["ranked_exact"] <= held["ranked_recall"] <= 1 and held["ranked_n"] == 21
    fitted = Fitted.load(out)
    assert len(fitted.two_theta) == 261  # the fine grid's axis
    ids = training.predict(hub, out, progress=False).split(", ")
    assert len(ids) == 2
    by_grid = {}
    for run_id in ids:
        pred = xrfhub.open(hub, "predictions", run=run_id)
        by_grid[str(pred["core"].values[0])] = pred
    ds, x, tt = _patterns(hub, grids["fine"])
    np.testing.assert_array_equal(by_grid["fine"]["phases"].values, fitted.predict(x, tt))
    coarse = xrfhub.open(hub, "diffraction", grid=grids["coarse"])
    assert by_grid["coarse"]["phases"].shape == (coarse.sizes["pattern"], 3)
    assert coarse.sizes["two_theta"] == 201  # kept as measured


def test_unmeasured_angles_take_the_patterns_background_level():
    from xrfhub_xrd.plugin import fill_unmeasured

    x = np.array([[np.nan, 5.0, 2.0, np.nan], [1.0, 2.0, 3.0, 4.0], [np.nan] * 4])
    np.testing.assert_array_equal(fill_unmeasured(x), [[2, 5, 2, 2], [1, 2, 3, 4], [0, 0, 0, 0]])
    assert fill_unmeasured(x[1:2]) is not None and np.isnan(x[0, 0])  # the input is left as it was
