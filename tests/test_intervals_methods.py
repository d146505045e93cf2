"""The interval methods beyond the original pooled split conformal (``xrfhub.ml.intervals``,
``xrfhub.ml.crossconformal``): core-weighted quantiles, relative and log scores, the choice leaving
one calibration core out, and cross-conformal calibration over folds of whole cores.

The arithmetic is checked on generated numbers whose truth is known; the store path on the
16-core generated store of ``tests/test_intervals.py`` (its fixture), over several seeds.
"""
import json

import numpy as np
import pytest

from xrfhub.ml import crossconformal, intervals, training
from xrfhub.errors import ConfigError

from test_intervals import LEVEL, _train, store  # noqa: F401  (the module-scoped store fixture)


def test_core_weighted_quantile_counts_each_core_once():
    # core A: 90 small scores; core B: 10 large ones. Pooled, A's pairs decide; weighted, B weighs half.
    scores = np.r_[np.linspace(0, 1, 90), np.linspace(10, 11, 10)]
    cores = np.array(["A"] * 90 + ["B"] * 10)
    assert intervals.conformal_quantile(scores, 0.8) <= 1.0
    q = intervals.core_weighted_quantile(scores, cores, 0.8)
    assert 10.0 <= q <= 11.0  # 0.8 of the weight reaches into core B
    assert intervals.core_weighted_quantile(scores, cores, 0.4) <= 1.0
    with pytest.raises(ConfigError, match="needs at least 9 calibration pairs"):
        intervals.core_weighted_quantile(scores[:8], cores[:8], 0.9)


@pytest.mark.parametrize("score", ["absolute", "relative", "log"])
def test_a_value_lies_in_the_band_exactly_when_its_score_is_within_the_quantile(score):
    rng = np.random.default_rng(1)
    pred = rng.uniform(0, 80, 500)
    y = np.clip(pred * np.exp(rng.normal(0, 0.3, 500)), 0, 100)
    offset = intervals._offset(pred)
    s = intervals.pair_scores(y, pred, score, offset=offset)
    q = float(np.quantile(s, 0.7))
    lower, upper = intervals.band(pred, q, score, offset=offset)
    inside = (y >= lower - 1e-9) & (y <= upper + 1e-9)
    assert np.array_equal(inside, s <= q + 1e-12)
    assert (lower >= 0).all() and (upper <= 100).all()


def _cores(rng, n_cores, multiplicative):
    """Exchangeable cores: each core its own level; errors proportional to the value (or not)."""
    ys, preds, names = [], [], []
    for k in range(n_cores):
        level = rng.uniform(5, 60)
        y = np.clip(level + rng.normal(0, level / 5, 30), 0.5, 99)
        err = y * rng.normal(0, 0.15, 30) if multiplicative else rng.normal(0, 3, 30)
        ys.append(y), preds.append(y + err), names.append(np.full(30, f"C{k}"))
    return np.concatenate(ys), np.concatenate(preds), np.concatenate(names)


def test_the_choice_prefers_a_score_that_fits_multiplicative_errors_and_reaches_nominal_on_new_cores():
    rng = np.random.default_rng(2)
    covered, n, chosen = 0.0, 0, []
    for trial in range(30):
        y, pred, cores = _cores(rng, 8, multiplicative=True)
        cal = intervals.from_predictions(y, pred, cores, "CaCO3", method=intervals.METHOD_CORES)
        chosen.append(cal.score)
        ty, tpred, _ = _cores(rng, 4, multiplicative=True)  # new cores drawn like the calibration ones
        lower, upper = cal.interval(tpred, LEVEL)
        got = intervals.coverage(ty, lower, upper)
        covered, n = covered + got["coverage"] * got["n"], n + got["n"]
        assert cal.method == intervals.METHOD_CORES and len(cal.selection) == 6
    assert sum(c in ("relative", "log") for c in chosen) >= 24  # the absolute score rarely fits these errors
    assert abs(covered / n - LEVEL) <= 0.03, covered / n


def test_with_one_calibration_core_the_original_method_is_used_and_said():
    rng = np.random.default_rng(3)
    y = rng.uniform(10, 20, 40)
    cal = intervals.from_predictions(y, y + rng.normal(0, 1, 40), ["A"] * 40, "CaCO3", method=intervals.METHOD_CORES)
    assert cal.method == intervals.METHOD and cal.score == "absolute" and "fewer than 2 calibration cores" in cal.notes[0]


def test_a_chosen_calibration_round_trips_through_its_file(tmp_path):
    rng = np.random.default_rng(4)
    y, pred, cores = _cores(rng, 6, multiplicative=True)
    cal = intervals.from_predictions(y, pred, cores, "CaCO3", method=intervals.METHOD_CORES)
    cal.save(tmp_path)
    again = intervals.Calibration.load(tmp_path)
    assert (again.method, again.score, again.weighting, again.offset) == (cal.method, cal.score, cal.weighting,
                                                                          cal.offset)
    np.testing.assert_array_equal(again.interval(pred, 0.8), cal.interval(pred, 0.8))
    assert again.describe(0.9)["method"] == "split-conformal-cores" and again.selection == cal.selection
    body = json.loads((tmp_path / intervals.CALIBRATION_FILE).read_text())
    body["method"] = "bootstrap"
    (tmp_path / intervals.CALIBRATION_FILE).write_text(json.dumps(body))
    with pytest.raises(ConfigError, match="not a split-conformal calibration"):
        intervals.Calibration.load(tmp_path)
    with pytest.raises(ConfigError, match="--interval-method: expected one of"):
        intervals.check_method("jackknife")


def test_folds_are_whole_seeded_cores():
    pool = [f"C{i}" for i in range(14)]
    folds = crossconformal.fold_cores(pool, seed=0)
    assert folds == crossconformal.fold_cores(pool, seed=0) and len(folds) == 5
    assert sorted(c for f in folds for c in f) == sorted(pool) and {len(f) for f in folds} == {2, 3}
    with pytest.raises(ConfigError, match="at least 3 labelled cores"):
        crossconformal.fold_cores(["A", "B"], seed=0)


def test_cross_conformal_refuses_calibration_cores_and_leaves_nothing(store, tmp_path):
    _, normal, _, _ = store
    with pytest.raises(ConfigError, match="calibrates on every training core"):
        _train(store, tmp_path / "x", "CaCO3", [normal[0]], 0, calibration_cores=["auto"],
               interval_method="cross-conformal-cores")
    with pytest.raises(ConfigError, match="no calibration cores; add --calibration-cores"):
        _train(store, tmp_path / "y", "CaCO3", [normal[0]], 0, interval_method="split-conformal-cores")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.slow
def test_cross_conformal_caco3_coverage_on_held_out_cores_over_seeds(store, tmp_path):
    """Each seed holds out another core; the five folds of the other 15 cores calibrate. Pooled
    over 8 seeds (8 test cores) the 0.9 interval must cover within 5 points of nominal. The issue's
    2 points are held over 42 cores by the six-store test below: one store's cores cannot pin it
    down. This one was 0.905 where it was built and 0.931 on a fresh machine (2026-12-04; numpy
    2.4.6 and xraylib 4.3.0 both times, the cause not found), within 2 points in one environment
    only."""
    hub, normal, _, _ = store
    covered, n = 0.0, 0
    for seed in range(8):
        held = normal[seed % len(normal)]
        s = _train(store, tmp_path / f"s{seed}", "CaCO3", [held], seed, interval_method="cross-conformal-cores")
        run = json.loads((tmp_path / f"s{seed}" / "run.json").read_text())
        cal = intervals.Calibration.load(tmp_path / f"s{seed}")
        assert cal.method == "cross-conformal-cores" and held not in cal.cores and len(cal.cores) == 15
        assert "calibration_cores" not in run and not (tmp_path / f"s{seed}" / crossconformal.FOLDS_DIR).exists()
        folds = s.metrics["calibration"]["folds"]
        assert sorted(c for f in folds for c in f) == cal.cores
        iv = s.metrics["held_out"]["interval_90"]
        covered, n = covered + iv["coverage"] * iv["n"], n + iv["n"]
    assert abs(covered / n - LEVEL) <= 0.05, covered / n


#: the six generated stores of docs/results.md ("measured again on today's generator"): generator
#: seeds 5, 11 and 12, with 16 cores (8 held out in turn) and 8 cores (6 in turn)
STORES = [(n_cores, corpus_seed, n_runs) for corpus_seed in (5, 11, 12) for n_cores, n_runs in ((16, 8), (8, 6))]


@pytest.mark.slow
def test_cross_conformal_covers_new_cores_within_two_points_over_six_stores(tmp_path):
    """The issue's goal, CaCO3 coverage within 2 points of nominal on held-out cores, measured where
    it can be: over the 42 held-out cores of six generated stores, each core weighing the same.
    One store's 6-8 cores cannot pin it down (0.78-0.98 a store, docs/results.md): the error is
    mostly one bias per core, so a core is covered nearly whole or hardly at all."""
    import xrfhub
    from xrfhub.synth import generate_corpus

    from test_intervals import LINEAR_PLUGIN

    plugin = tmp_path / "lin.py"
    plugin.write_text(LINEAR_PLUGIN)
    per_core = []
    for n_cores, corpus_seed, n_runs in STORES:
        root = tmp_path / f"c{n_cores}-{corpus_seed}"
        spec = {"n_cores": n_cores, "length_m": (1.2, 1.5), "lab_spacing_mm": 30.0, "n_30kv": 0, "n_50kv": 0,
                "n_held_out": 1}
        truth = generate_corpus(root / "corpus", size=spec, seed=corpus_seed)
        xrfhub.ingest([root / "corpus" / "scans", *sorted((root / "corpus" / "lab").iterdir())], root / "hub")
        normal = sorted(c for c, t in truth.cores.items() if t.has_scan and not t.held_out)
        for seed in range(n_runs):
            s = _train((root / "hub", normal, None, str(plugin)), root / f"s{seed}", "CaCO3",
                       [normal[seed % len(normal)]], seed, interval_method="cross-conformal-cores")
            per_core.append(s.metrics["held_out"]["interval_90"]["coverage"])
    assert len(per_core) == 42
    assert abs(np.mean(per_core) - LEVEL) <= 0.02, np.mean(per_core)
