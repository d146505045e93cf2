"""``xrfhub evaluate --target phase|phases``: diffraction classifiers compared on held-out series.

One small real store: three simulated pressure ramps (24 patterns x 300 points, "low" -> "high"
at pattern 12) on one grid and three hydrothermal series (phase sets over three phases) on
another. Models run with the ``tiny`` presets.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

import xrfhub
from xrfhub.errors import ConfigError

from conftest import run_cli

pytest.importorskip("torch")

from xrfhub.ml.evaluation.classification import ClassifyConfig, evaluate  # noqa: E402
from xrfhub.ml.evaluation.classification_report import paired, ramp_table, run_table  # noqa: E402

RAMP_N, TRANSITION = 24, 12


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from xrfhub.synth.xrd import hydrothermal, pressure_ramp, write_xy

    root = tmp_path_factory.mktemp("xrdeval")
    for k in range(3):
        ramp = pressure_ramp(n_patterns=RAMP_N, n_points=300, transition=TRANSITION, seed=k)
        write_xy(dataclasses.replace(ramp, pattern_id=[f"r{k}_{i:02d}" for i in range(RAMP_N)]), root / f"ramp{k}")
        hydro = hydrothermal(n_per_combo=3, two_theta=(4.0, 30.0, 0.1), seed=10 + k)
        write_xy(dataclasses.replace(hydro, pattern_id=[f"h{k}_{i:02d}" for i in range(len(hydro))]),
                 root / f"hydro{k}")
    hub = root / "hub"
    xrfhub.ingest([root / f"ramp{k}" for k in range(3)], hub, wavelength=0.4843, scan_coord="pressure_step")
    xrfhub.ingest([root / f"hydro{k}" for k in range(3)], hub, wavelength=0.6199)
    from xrfhub_xrd.plugin import diffraction_grids

    grids = {}
    for grid in diffraction_grids(hub):
        grids["hydro" if "phase_present" in xrfhub.open(hub, "diffraction", grid=grid) else "ramp"] = grid
    return hub, grids


@pytest.fixture(scope="module")
def phases_report(store, tmp_path_factory):
    hub, grids = store
    out = tmp_path_factory.mktemp("eval") / "phases"
    summary = evaluate(hub, ["hydro2"], out, quick=True, target="phases", sets={"grid": grids["hydro"]},
                       progress=False)
    return out, summary


def test_phase_sets_compare_multitask_with_binary_on_raw_and_als_inputs(phases_report):
    out, summary = phases_report
    runs = pd.read_csv(out / "runs.csv")
    # 2 models x 2 inputs x 2 seeds, every one scored on the 21 held-out patterns only
    assert len(runs) == 8 and set(runs["n_test"]) == {21}
    assert set(runs["model"]) == {"mtl-phase:mode=multitask", "mtl-phase:mode=binary"}
    assert set(runs["input"]) == {"raw", "als"} and set(runs["seed"]) == {0, 1}
    assert {"f1:calcite", "f1:rhenium", "f1:La-bastnaesite"} <= set(runs.columns)
    for score in ("accuracy", "macro_f1", "exact_match", "ranked_recall", "ranked_exact"):
        assert runs[score].between(0, 1).all(), score
    assert (runs["exact_match"] <= runs["accuracy"]).all()
    # the cells are real runs: their models predict and their held-out scores are the plugin's
    cell = out / "cells" / "mtl-phase_mode-binary" / "als" / "s1" / "run"
    run = json.loads((cell / "run.json").read_text())
    assert run["config"]["mode"] == "binary" and run["config"]["baseline"] == "als" and run["config"]["seed"] == 1
    assert run["holdout_cores"] == ["hydro2"] and "hydro2" not in run["metrics"]["split"]["training_series"]
    held = pd.read_csv(cell / "held_out_predictions.csv", keep_default_na=False)
    assert len(held) == 21 and set(held["series"]) == {"hydro2"}
    row = runs[(runs["model"] == "mtl-phase:mode=binary") & (runs["input"] == "als") & (runs["seed"] == 1)].iloc[0]
    assert row["exact_match"] == pytest.approx(np.mean(held["true"] == held["predicted"]))
    # summary: mean and sd over seeds, paired comparisons, pictures, markdown
    table = pd.read_csv(out / "summary.csv")
    assert len(table) == 4 and set(table["seeds"]) == {2}
    mean = runs.groupby(["model", "input"])["macro_f1"].mean()
    for _, r in table.iterrows():
        assert r["macro_f1_mean"] == pytest.approx(mean[r["model"], r["input"]])
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert len(comparisons) == 4  # binary vs multitask at each input; als vs raw for each model
    assert (out / "f1.png").stat().st_size > 5000 and (out / "confusion.png").stat().st_size > 5000
    text = summary.read_text()
    assert "hydro2" in text and "![f1](f1.png)" in text and "Paired comparisons" in text


def test_resume_skips_finished_cells_and_other_settings_are_refused(store, phases_report):
    hub, grids = store
    out, _ = phases_report
    victim = out / "cells" / "mtl-phase_mode-multitask" / "raw" / "s0" / "result.json"
    before = json.loads(victim.read_text())
    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("result.json") if p != victim}
    victim.unlink()
    evaluate(hub, ["hydro2"], out, quick=True, target="phases", sets={"grid": grids["hydro"]}, progress=False)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # only the missing cell ran again
    after = json.loads(victim.read_text())
    assert after["metrics"]["held_out"] == before["metrics"]["held_out"]  # same seed, same model
    with pytest.raises(ConfigError, match="other settings"):
        evaluate(hub, ["hydro1"], out, quick=True, target="phases", sets={"grid": grids["hydro"]}, progress=False)


def test_ramps_report_confidence_beside_accuracy_and_the_boundary(store, tmp_path):
    hub, grids = store
    summary = evaluate(hub, ["ramp2"], tmp_path / "r", quick=True, target="phase", progress=False,
                       sets={"grid": grids["ramp"], "models": "panosc-binned,spectra1d:arch=fcnn",
                             "inputs": "raw", "seeds": "0"})
    ramps = pd.read_csv(tmp_path / "r" / "ramps.csv")
    assert len(ramps) == 2 and set(ramps["series"]) == {"ramp2"} and set(ramps["true_boundary"]) == {TRANSITION}
    assert (ramps["boundary_error"] == ramps["boundary"] - ramps["true_boundary"]).all()
    assert ramps["confidence"].between(0, 1).all() and ramps["accuracy"].between(0, 1).all()
    runs = pd.read_csv(tmp_path / "r" / "runs.csv")
    assert set(runs["n_test"]) == {RAMP_N} and {"f1:low", "f1:high"} <= set(runs.columns)
    assert (tmp_path / "r" / "ramps.png").is_file()
    text = summary.read_text()
    assert "confidence beside accuracy" in text and "![ramps](ramps.png)" in text


def test_paired_verdicts_follow_the_seeds():
    runs = pd.DataFrame({"model": ["a"] * 3 + ["b"] * 3, "input": ["raw"] * 6, "seed": [0, 1, 2] * 2,
                         "macro_f1": [0.5, 0.6, 0.7, 0.6, 0.65, 0.9]})
    (row,) = paired(runs)
    assert row["difference"] == pytest.approx(0.35 / 3) and row["min"] == pytest.approx(0.05)
    assert "better in every seed" in row["verdict"]
    runs.loc[5, "macro_f1"] = 0.1
    assert "no consistent difference" in paired(runs)[0]["verdict"]


def test_tables_read_the_plugins_metrics():
    result = {"cell": "m/raw/s0", "model": "m", "input": "raw", "seed": 0,
              "metrics": {"held_out": {"n": 4, "accuracy": 0.75, "macro_f1": 0.5, "f1": {"x": 0.5}},
                          "ramp_report": [{"series": "s", "n": 4, "patterns": {"held_out": 4}, "accuracy": 0.75,
                                           "confidence": 1.0, "single_switch": True, "switches": 1, "boundary": 3,
                                           "true_boundary": 2},
                                          {"series": "t", "n": 4, "patterns": {"training": 4}, "confidence": 1.0,
                                           "single_switch": True, "switches": 1, "boundary": 2,
                                           "true_boundary": 2}]}}
    runs, ramps = run_table([result]), ramp_table([result])
    assert runs.loc[0, "f1:x"] == 0.5 and np.isnan(runs.loc[0, "exact_match"])
    assert list(ramps["series"]) == ["s"] and ramps.loc[0, "boundary_error"] == 1  # training ramps left out


def test_phase_macro_f1_is_over_the_phases_that_occur():
    from xrfhub_xrd.report import phase_scores

    t = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    p = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0]])  # phase 2: never true, never predicted
    s = phase_scores(t, p, ["a", "b", "c"], proba=p * 0.9)
    f1_a, f1_b = 2 * 2 / (2 * 2 + 1), 2 * 1 / (2 * 1 + 1)
    assert s["f1"]["c"] == 0 and s["phases_seen"] == 2
    assert s["macro_f1"] == pytest.approx((f1_a + f1_b) / 2)
    runs = run_table([{"cell": "m/raw/s0", "model": "m", "input": "raw", "seed": 0, "metrics": {"held_out": s}}])
    assert runs.loc[0, "macro_f1"] == pytest.approx(s["macro_f1"]) and "f1:c" not in runs


def test_bad_requests_are_refused_before_training(store, tmp_path):
    hub, grids = store
    with pytest.raises(ConfigError, match="not on this diffraction grid"):
        evaluate(hub, ["nope"], tmp_path / "a", quick=True, sets={"grid": grids["hydro"]}, progress=False)
    with pytest.raises(ConfigError, match="predicts phase, not 'phases'"):
        evaluate(hub, ["hydro2"], tmp_path / "b", quick=True, sets={"grid": grids["hydro"], "models": "spectra1d"},
                 progress=False)
    with pytest.raises(ConfigError, match="inputs"):
        evaluate(hub, ["hydro2"], tmp_path / "c", sets={"grid": grids["hydro"], "inputs": "cooked"}, progress=False)
    with pytest.raises(ConfigError, match="plugin\\[:key=value"):
        ClassifyConfig(models=("mtl-phase:binary",)).validate()
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_evaluates_phase_sets(store, tmp_path):
    hub, grids = store
    result = run_cli("evaluate", "--store", str(hub), "--holdout-cores", "hydro0", "--out", str(tmp_path / "cli"),
                     "--target", "phases", "--quick", "--set", f"grid={grids['hydro']}", "--set", "seeds=0",
                     "--set", "models=mtl-phase", "--set", "inputs=raw")
    assert "summary.md" in result.stdout and len(pd.read_csv(tmp_path / "cli" / "runs.csv")) == 1
    bad = run_cli("evaluate", "--store", str(hub), "--holdout-cores", "hydro0", "--out", str(tmp_path / "x"),
                  "--target", "phases", "--set", "inputs=cooked", check=False)
    assert bad.returncode != 0 and "inputs" in bad.stderr + bad.stdout
