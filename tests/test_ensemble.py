"""`xrfhub predict --run A --run B`: the mean of two trained runs, calibrated on their out-of-fold
predictions (xrfhub.ml.ensemble).

On a real ingested four-core store (one core held out of every run): a cross-fitted MAX fine-tune
(one epoch per fold) and a cross-conformal log-ratio calibration. The mean must be the mean of
what each run predicts on its own, its interval must come from the mean of the runs' out-of-fold
predictions of the same pairs, and runs that cannot be averaged honestly are refused.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import xrfhub
from conftest import FOUR_CORES, run_cli
from xrfhub.errors import ConfigError
from xrfhub.ml import crossconformal, ensemble, intervals, training

pytest.importorskip("torch")

HELD = "SO264-10-2"


@pytest.fixture(scope="module")
def runs(four_core_store, tmp_path_factory):
    """Two regression runs of the same test core, each with out-of-fold predictions, and their own
    prediction runs (with a 0.9 interval)."""
    root = tmp_path_factory.mktemp("mean")
    hub = four_core_store
    training.train("max", hub, stage="finetune", out=root / "max", config="tiny", target="CaCO3", epochs=1,
                   holdout_cores=[HELD], sets={"batch": "8", "folds": "3", "seed": "4"}, progress=False)
    training.train("logratio", hub, stage="train", out=root / "mlc", target="CaCO3", holdout_cores=[HELD],
                   interval_method="cross-conformal-cores", progress=False)
    ids = [training.predict(hub, root / name, progress=False, interval=0.9) for name in ("max", "mlc")]
    return hub, root, ids


def _values(hub, run_id, name="CaCO3"):
    return np.asarray(xrfhub.open(hub, "predictions", run=run_id, index=False)[name].values, dtype=np.float64)


def test_each_kind_of_out_of_fold_run_keeps_its_pairs_and_folds(runs):
    _, root, _ = runs
    for name in ("max", "mlc"):
        kept = crossconformal.load_out_of_fold(root / name)
        assert kept["target"] == "CaCO3" and len(kept["y"]) == len(kept["pred"]) == len(kept["cores"]) == 12
        assert HELD not in kept["cores"] and np.isfinite(kept["pred"]).all()
        assert sorted(c for fold in kept["folds"] for c in fold) == sorted(set(FOUR_CORES) - {HELD})
    folds = json.loads((root / "max" / "folds.json").read_text())["out_of_fold"]  # the plugin's own record
    assert folds["pred"] == pytest.approx(crossconformal.load_out_of_fold(root / "max")["pred"])


def test_the_mean_is_the_mean_of_each_run_and_its_interval_comes_from_their_out_of_fold_mean(runs):
    hub, root, (a, b) = runs
    run_id = ensemble.predict(hub, [root / "max", root / "mlc"], progress=False, interval=0.9)
    va, vb, mean = _values(hub, a), _values(hub, b), _values(hub, run_id)
    both = np.isfinite(va) & np.isfinite(vb)
    assert both.sum() > 50 and np.allclose(mean[both], (va[both] + vb[both]) / 2, atol=1e-4)
    assert np.array_equal(np.isfinite(mean), np.isfinite(va) | np.isfinite(vb))
    # the calibration by hand: pair the runs' out-of-fold predictions core by core, in store order
    parts = [crossconformal.load_out_of_fold(root / name) for name in ("max", "mlc")]
    by_pair = [{(c, round(y, 6)): p for c, y, p in zip(k["cores"], k["y"], k["pred"])} for k in parts]
    keys = list(by_pair[0])
    assert len(keys) == 12 and set(keys) == set(by_pair[1])  # one pair per (core, lab value) here
    y = np.array([k[1] for k in keys])
    half = np.array([abs(by_pair[0][k] - by_pair[1][k]) / 2 for k in keys])  # the runs' spread
    floor = np.median(half)
    pred = [(by_pair[0][k] + by_pair[1][k]) / 2 for k in keys]
    cal = intervals.from_predictions(y, pred, [k[0] for k in keys], "CaCO3", method=intervals.METHOD_CV,
                                     scale=half + floor, score="normalised")
    at, _ = ensemble.raised_level(y, pred, [k[0] for k in keys], "normalised", "pairs", 0.9, scale=half + floor)
    ds = xrfhub.open(hub, "predictions", run=run_id, index=False)
    provenance = json.loads(ds.attrs["provenance"])
    described = provenance["interval"]
    assert described["quantile_level"] == pytest.approx(at) and at >= 0.9 and described["level"] == 0.9
    assert described["half_width"] == pytest.approx(cal.half_width(at)) and described["score"] == "normalised"
    assert described["spread_floor"] == pytest.approx(floor)
    assert described["n_calibration"] == 12 and described["method"] == intervals.METHOD_CV
    assert provenance["plugins"] == ["max", "logratio"] and provenance["weights"] == "equal"
    # each spectrum's bounds, by hand from the two runs' values
    lower, upper = (np.asarray(ds[f"CaCO3_{s}"].values, dtype=np.float64) for s in ("lower", "upper"))
    scale = np.abs(va - vb)[both] / 2 + floor if cal.score == "normalised" else None
    want = cal.interval(mean[both], at, scale)
    assert np.allclose(lower[both], want[0], atol=1e-3) and np.allclose(upper[both], want[1], atol=1e-3)
    ok = np.isfinite(mean)
    assert np.all(lower[ok] <= mean[ok] + 1e-4) and np.all(mean[ok] <= upper[ok] + 1e-4)
    assert np.array_equal(np.isfinite(lower), ok)
    # the same mean and interval over any spectra, e.g. the held-out core's lab pairs
    from xrfhub.ml import registry
    from xrfhub.ml.loaders import labelled_samples

    hx = labelled_samples(hub, "CaCO3", cores=[HELD])[0]
    each = [registry.load(p).predictor(root / d)(hx) for p, d in (("max", "max"), ("logratio", "mlc"))]
    mean_predictor = ensemble.predictor([root / "max", root / "mlc"])
    assert np.allclose(mean_predictor(hx), np.mean(each, axis=0))
    calibrated = ensemble.calibrate([root / "max", root / "mlc"], 0.9)
    assert calibrated.describe(0.9)["half_width"] == pytest.approx(described["half_width"])
    held_scale = np.abs(each[0] - each[1]) / 2 + floor
    assert np.allclose(calibrated.interval(mean_predictor.each(hx), 0.9),
                       cal.interval(np.mean(each, axis=0), at, held_scale))


def test_the_level_is_raised_until_each_core_left_out_is_covered_as_asked():
    """Cores whose errors are mostly a bias of their own: the pooled quantile at 0.9 covers a core
    left out less than 0.9, so the mean's quantile is taken higher, and covers the held-out cores
    of the same kind better; exchangeable pairs keep (about) the nominal level."""
    rng = np.random.default_rng(3)

    def corpus(n_cores, bias_sd):
        cores = np.repeat([f"C{i}" for i in range(n_cores)], 40)
        bias = np.repeat(rng.normal(0, bias_sd, n_cores), 40)
        y = rng.uniform(20, 60, len(cores))
        each = [y + bias + rng.normal(0, 1, len(y)) + s for s in (-0.5, 0.5)]
        return y, each, cores

    y, each, cores = corpus(8, 3.0)
    calibrated = ensemble.calibrate_pairs(y, each, cores, "CaCO3", intervals.METHOD_CV, level=0.9)
    at = calibrated.quantile_level
    assert at > 0.9 and calibrated.describe(0.9)["quantile_level"] == at
    trial = intervals.leave_one_core_out(y, ensemble._mean(each), cores, "normalised", "pairs", at,
                                         scale=ensemble.spread(each) + calibrated.floor)
    lower_trial = intervals.leave_one_core_out(y, ensemble._mean(each), cores, "normalised", "pairs", at - 0.01,
                                               scale=ensemble.spread(each) + calibrated.floor)
    assert trial["coverage"] >= 0.9 - 1e-9 > lower_trial["coverage"]  # the lowest level that reaches it
    new_cores = [corpus(2, 3.0) for _ in range(20)]  # new cores drawn the same way
    nominal = ensemble.Calibrated(calibrated.calibration, None, calibrated.floor)  # the same score at 0.9
    covered, plain = ([np.mean((hy >= lo) & (hy <= up)) for hy, heach, _ in new_cores
                       for lo, up in [cal.interval(heach, 0.9)]] for cal in (calibrated, nominal))
    assert np.mean(covered) > np.mean(plain)
    with pytest.raises(ConfigError, match="calibrated for a 0.9 interval"):
        calibrated.interval(each, 0.8)
    y, each, cores = corpus(8, 0.0)  # no bias per core: nothing to raise, or hardly
    assert ensemble.calibrate_pairs(y, each, cores, "CaCO3", intervals.METHOD_CV, level=0.9).quantile_level <= 0.91
    # split-conformal keeps the pooled absolute score at the level asked, as for one model
    plain_cal = ensemble.calibrate_pairs(y, each, cores, "CaCO3", intervals.METHOD, level=0.9)
    assert plain_cal.quantile_level is None and plain_cal.calibration.score == "absolute"


def test_the_spread_scale_widens_the_interval_where_the_runs_disagree():
    each = [np.array([10.0, 10.0, 10.0, np.nan]), np.array([10.0, 16.0, np.nan, np.nan])]
    assert np.allclose(ensemble.spread(each), [0.0, 3.0, 0.0, 0.0])  # one run alone: no spread
    cal = intervals.Calibration("CaCO3", [1.0] * 20, ["A", "B"], score="normalised")
    lower, upper = ensemble.Calibrated(cal, None, floor=0.5).interval(each, 0.9)
    assert np.allclose(upper[:3] - lower[:3], [1.0, 7.0, 1.0]) and np.isnan(lower[3])


def test_the_command_writes_the_mean_prints_its_training_side_figure_and_compares(runs):
    hub, root, (a, _) = runs
    out = run_cli("predict", "--store", hub, "--run", root / "max", "--run", root / "mlc", "--interval", "0.9")
    assert "wrote prediction run mean-CaCO3-" in out.stdout and "predicted" in out.stdout
    run_id = out.stdout.split("wrote prediction run ")[1].split()[0]
    listed = run_cli("runs", hub).stdout
    assert f"{run_id}" in listed and "plugin mean" in listed and str((root / "max").resolve()) in listed
    table = xrfhub.compare.compare_runs(hub, a, run_id)
    assert table.attrs["run_b"] == run_id and len(table) == len(FOUR_CORES)
    stored = json.loads(xrfhub.open(hub, "predictions", run=run_id, index=False).attrs["provenance"])
    assert table.attrs["interpolation_r2_b"] == stored["interpolation_r2"]
    if stored["interpolation_r2"] is not None:
        assert f"the mean {stored['interpolation_r2']:.3f} (max " in out.stdout


def test_runs_that_cannot_be_averaged_honestly_are_refused(runs):
    hub, root, _ = runs
    training.train("logratio", hub, stage="train", out=root / "other-test-core", target="CaCO3",
                   holdout_cores=[FOUR_CORES[0]], progress=False)
    training.train("logratio", hub, stage="train", out=root / "plain", target="CaCO3", holdout_cores=[HELD],
                   progress=False)
    with pytest.raises(ConfigError, match="hold out different test cores"):
        ensemble.predict(hub, [root / "max", root / "other-test-core"], progress=False)
    with pytest.raises(ConfigError, match="same run is named twice"):
        ensemble.predict(hub, [root / "max", root / "max"], progress=False)
    with pytest.raises(ConfigError, match="no out-of-fold predictions .*cross-conformal-cores"):
        ensemble.predict(hub, [root / "max", root / "plain"], progress=False, interval=0.9)
    before = len(xrfhub.predictions.list_runs(hub))
    ensemble.predict(hub, [root / "max", root / "plain"], progress=False)  # without an interval it needs none
    assert len(xrfhub.predictions.list_runs(hub)) == before + 1
    refused = run_cli("predict", "--store", hub, "--run", root / "max", "--run", root / "other-test-core", check=False)
    assert refused.returncode != 0 and "error:" in refused.stderr and "--holdout-cores" in refused.stderr
    assert len(xrfhub.predictions.list_runs(hub)) == before + 1  # nothing written by a refusal


def test_out_of_fold_pairs_are_matched_core_by_core_whatever_the_order_of_the_folds(tmp_path):
    """A cross-fitted run lists its pairs in store order, a cross-conformal one fold by fold: the
    mean pairs them core by core, and refuses runs scored on other pairs or other lab values."""
    y = {"A": [1.0, 2.0, 3.0], "B": [10.0, 11.0], "C": [20.0, 21.0]}
    store_order = [(c, v) for c in ("A", "B", "C") for v in y[c]]
    by_fold = [(c, v) for c in ("C", "A", "B") for v in y[c]]
    for name, pairs, shift, folds in (("one", store_order, 0.5, [["A"], ["B"], ["C"]]),
                                      ("two", by_fold, -1.5, [["A", "B"], ["C"]])):
        (tmp_path / name).mkdir()
        crossconformal.save_out_of_fold(tmp_path / name, "CaCO3",
                                        {"y": [v for _, v in pairs], "pred": [v + shift for _, v in pairs],
                                         "cores": [c for c, _ in pairs]}, folds)
    oof, trained_on = ensemble.mean_out_of_fold([tmp_path / "one", tmp_path / "two"], "CaCO3")
    assert oof["cores"] == [c for c, _ in store_order] and oof["y"] == [v for _, v in store_order]
    assert np.allclose(np.subtract(oof["pred"], oof["y"]), -0.5)  # (+0.5 - 1.5) / 2 on every pair
    # a core is scored by the fold models of both runs: inside the reach of the cores both trained on
    assert trained_on == {"A": ["C"], "B": ["C"], "C": ["A", "B"]}
    (tmp_path / "three").mkdir()
    crossconformal.save_out_of_fold(tmp_path / "three", "CaCO3", {"y": [v + 1 for _, v in store_order],
                                                                  "pred": [v for _, v in store_order],
                                                                  "cores": [c for c, _ in store_order]}, [])
    with pytest.raises(ConfigError, match="different lab values for the same training cores"):
        ensemble.mean_out_of_fold([tmp_path / "one", tmp_path / "three"], "CaCO3")
    (tmp_path / "four").mkdir()
    crossconformal.save_out_of_fold(tmp_path / "four", "CaCO3", {"y": [1.0], "pred": [1.0], "cores": ["A"]}, [])
    with pytest.raises(ConfigError, match="scored out of fold on different training pairs"):
        ensemble.mean_out_of_fold([tmp_path / "one", tmp_path / "four"], "CaCO3")
