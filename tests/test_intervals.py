"""Calibrated intervals (split conformal over whole calibration cores), through the generic path.

The conformal arithmetic is checked on exchangeable numbers (coverage within a point of nominal);
the store path with a user's plugin file (any regression plugin with a ``predictor`` gets intervals)
on a generated store of 16 cores, one of them shifted (much higher TOC than any other: exchangeability
broken on purpose). Coverage over several seeds is measured, not assumed.
"""
import json

import numpy as np
import pytest

import xrfhub
from xrfhub.ml import intervals, training
from xrfhub.errors import ConfigError

LEVEL = 0.9

# ---------------------------------------------------------------------------- the arithmetic


def test_conformal_quantile_reaches_nominal_coverage_on_exchangeable_scores():
    rng = np.random.default_rng(0)
    n_cal, trials = 49, 4000
    hits = []
    for _ in range(trials):
        cal = np.abs(rng.standard_t(3, n_cal))  # heavy tails: no normality assumed
        test = np.abs(rng.standard_t(3, 20))
        hits.append(np.mean(test <= intervals.conformal_quantile(cal, LEVEL)))
    # theory: level <= coverage <= level + 1/(n+1); 4000 trials leave ~0.2 points of noise
    assert LEVEL - 0.005 <= float(np.mean(hits)) <= LEVEL + 1 / (n_cal + 1) + 0.005


def test_too_few_calibration_pairs_for_the_level_are_refused():
    assert intervals.min_pairs(0.9) == 9 and intervals.min_pairs(0.95) == 19
    intervals.conformal_quantile(np.arange(9.0), 0.9)
    with pytest.raises(ConfigError, match="needs at least 9 calibration pairs; the calibration cores hold 8"):
        intervals.conformal_quantile(np.arange(8.0), 0.9)
    for bad in (0, 1, 1.5, -0.1):
        with pytest.raises(ConfigError, match="between 0 and 1"):
            intervals.check_level(bad)


def test_interval_is_clipped_to_the_physical_range_and_keeps_nan():
    cal = intervals.Calibration("CaCO3", list(np.linspace(0, 10, 19)), ["A"])
    lower, upper = cal.interval(np.array([3.0, 50.0, np.nan, 97.0]), 0.9)
    assert lower[0] == 0 and upper[3] == 100 and np.isnan(lower[2]) and np.isnan(upper[2])
    assert upper[1] - 50 == pytest.approx(cal.half_width(0.9)) == pytest.approx(50 - lower[1])


def test_normalised_score_scales_the_half_width():
    y, pred, scale = np.array([1.0, 2.0, 4.0]), np.array([0.0, 0.0, 0.0]), np.array([1.0, 2.0, 4.0])
    scores, kind = intervals.nonconformity(y, pred, scale)
    assert kind == "normalised" and np.allclose(scores, 1.0)
    with pytest.raises(ConfigError, match="positive and finite"):
        intervals.nonconformity(y, pred, np.array([1.0, 0.0, 1.0]))


def test_calibration_cores_are_whole_seeded_and_leave_two_to_train():
    pool = [f"C{i}" for i in range(8)]
    a, b = intervals.choose_cores(pool, seed=1), intervals.choose_cores(pool, seed=1)
    assert a == b and len(a) == 2 and set(a) <= set(pool)
    assert intervals.choose_cores(["A", "B", "C"], seed=0) and len(intervals.choose_cores(["A", "B", "C"], seed=0)) == 1
    with pytest.raises(ConfigError, match="at least 3 labelled cores"):
        intervals.choose_cores(["A", "B"], seed=0)


# ---------------------------------------------------------------------------- through a store

LINEAR_PLUGIN = '''
"""A user's regression plugin: ridge on log-ratios of 64 energy bands; offers predictor()."""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xrfhub.ml.loaders import labelled_samples, predict_spectra
from xrfhub.ml.registry import Predictions, RunSummary


@dataclass
class LinConfig:
    alpha: float = 1e-3
    seed: int = 0


def features(x):
    bands = np.asarray(x, dtype=float).reshape(len(x), 64, -1).sum(2) + 1.0
    return np.log(bands / bands.sum(1, keepdims=True))


class Lin:
    name = "lin"
    description = "ridge on band log-ratios"
    stages = ("train",)
    targets = ("*",)
    config = LinConfig
    presets = {}

    def train(self, store, *, stage, out, config, target=None, init=None, holdout_cores=(), progress=True):
        x, y, _, _ = labelled_samples(store, target, exclude_cores=holdout_cores)
        f = features(x)
        mu, sd = f.mean(0), f.std(0) + 1e-9
        z = (f - mu) / sd
        w = np.linalg.solve(z.T @ z + config.alpha * len(y) * np.eye(z.shape[1]), z.T @ (y - y.mean()))
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / "lin.npz", w=w, mu=mu, sd=sd, b=y.mean())
        (out / "run.json").write_text(json.dumps({"plugin": "lin", "stage": stage, "target": target,
                                                  "config": {"seed": config.seed}, "holdout_cores": list(holdout_cores)}))
        return RunSummary(out, "lin", stage, target, {"n": int(len(y))})

    def predictor(self, run_dir):
        p = dict(np.load(Path(run_dir) / "lin.npz"))
        return lambda x: ((features(x) - p["mu"]) / p["sd"]) @ p["w"] + p["b"]

    def predict(self, store, run_dir, *, progress=True):
        target = json.loads((Path(run_dir) / "run.json").read_text())["target"]
        group, values = predict_spectra(store, self.predictor(run_dir), progress=False)
        return Predictions(group, {target: values}, {"model": "lin"})


lin = Lin()
'''


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from xrfhub.synth import generate_corpus

    root = tmp_path_factory.mktemp("ivstore")
    spec = {"n_cores": 16, "length_m": (1.2, 1.5), "lab_spacing_mm": 30.0, "n_30kv": 0, "n_50kv": 0, "n_held_out": 1}
    truth = generate_corpus(root / "corpus", size=spec, seed=5)
    xrfhub.ingest([root / "corpus" / "scans", *sorted((root / "corpus" / "lab").iterdir())], root / "hub")
    normal = sorted(c for c, t in truth.cores.items() if t.has_scan and not t.held_out)
    (root / "lin.py").write_text(LINEAR_PLUGIN)
    return root / "hub", normal, truth.held_out[0], str(root / "lin.py")


def _train(store, out, target, holdout, seed, **kw):
    hub, _, _, plugin = store
    return training.train("lin", hub, stage="train", out=out, plugin_from=plugin, target=target,
                          holdout_cores=holdout, sets={"seed": str(seed)}, progress=False, **kw)


@pytest.mark.slow
def test_caco3_coverage_on_held_out_cores_over_seeds_is_near_nominal(store, tmp_path):
    """Each seed holds out another core and draws 4 of the 14 other cores for calibration; the
    coverage of the 0.9 interval, pooled over 8 seeds, must lie within 0.1 of nominal. (With only 2
    calibration cores, on an 8-core store, it was 0.78: docs/results.md.)"""
    _, normal, _, _ = store
    covered, n, widths = 0.0, 0, []
    for seed in range(8):
        held = normal[seed % len(normal)]
        s = _train(store, tmp_path / f"s{seed}", "CaCO3", [held], seed, calibration_cores=["auto"],
                   interval_method="split-conformal")
        run = json.loads((tmp_path / f"s{seed}" / "run.json").read_text())
        cal = run["calibration_cores"]
        assert held not in cal and run["holdout_cores"] == [held] and len(cal) == 4
        assert s.metrics["calibration"]["cores"] == cal and s.metrics["calibration"]["n"] > 100
        iv = s.metrics["held_out"]["interval_90"]
        covered += iv["coverage"] * iv["n"]
        n += iv["n"]
        widths.append(iv["mean_width"])
    assert abs(covered / n - LEVEL) <= 0.1, covered / n
    assert all(w > 0 for w in widths)
    assert s.metrics["calibration"]["method"] == "split-conformal"


def test_each_held_out_core_is_scored_on_its_own_with_or_without_calibration(store, tmp_path):
    _, normal, _, _ = store
    held = normal[:2]
    s = _train(store, tmp_path / "cal", "CaCO3", held, 0, calibration_cores=["auto"])
    per, pooled = s.metrics["held_out_by_core"], s.metrics["held_out"]
    assert sorted(per) == sorted(held) and sum(r["n"] for r in per.values()) == pooled["n"]
    covered = sum(r["interval_coverage"] * r["n"] for r in per.values()) / pooled["n"]
    assert covered == pytest.approx(pooled["interval_90"]["coverage"])
    assert json.loads((tmp_path / "cal" / "metrics.json").read_text())["held_out_by_core"] == per
    assert any(line.startswith("  by core, R2 (bias, 0.9 coverage): ") for line in s.headline())
    # without calibration: no interval, the same per-core scores, and the plugin's own metrics kept
    plain = _train(store, tmp_path / "plain", "CaCO3", held, 0)
    run = json.loads((tmp_path / "plain" / "run.json").read_text())
    assert sorted(run["metrics"]["held_out_by_core"]) == sorted(held) and run["metrics"]["n"] > 100
    assert plain.metrics["held_out_by_core"] == run["metrics"]["held_out_by_core"]
    assert not any("interval_coverage" in r for r in plain.metrics["held_out_by_core"].values())


def test_a_shifted_core_breaks_exchangeability_and_the_run_says_so(store, tmp_path):
    _, _, shifted, _ = store
    s = _train(store, tmp_path / "toc", "TOC", [shifted], 0, calibration_cores=["auto"])
    iv = s.metrics["held_out"]["interval_90"]
    assert iv["coverage"] < LEVEL - 0.2  # its TOC lies far above every calibration core's
    assert any("exchangeab" in w and shifted in w for w in s.warnings)
    # the picture: calibration cores beside the held-out core and its intervals
    fig = (tmp_path / "toc" / "fit.png").read_bytes()
    assert fig[:4] == b"\x89PNG" and len(fig) > 10_000


@pytest.mark.slow
def test_predict_with_interval_stores_bounds_beside_the_values(store, tmp_path):
    from conftest import run_cli

    hub, normal, _, plugin = store
    out = tmp_path / "run"
    run_cli("train", "lin", "--plugin", plugin, "--store", hub, "--target", "CaCO3", "--out", out,
            "--holdout-cores", normal[0], "--calibration-cores", ",".join(normal[1:3]))
    run_cli("predict", "--store", hub, "--run", out, "--interval", "0.9")
    preds = xrfhub.open(hub, "predictions")
    v, lo, hi = (preds[k].values for k in ("CaCO3", "CaCO3_lower", "CaCO3_upper"))
    ok = np.isfinite(v)
    inside = np.clip(v[ok], 0, 100)  # a linear model may predict below 0 wt%; bounds are clipped to 0-100
    assert ok.sum() > 100 and (lo[ok] <= inside + 1e-4).all() and (hi[ok] >= inside - 1e-4).all()
    assert np.isnan(lo[~ok]).all() and (lo[ok] >= 0).all() and (hi[ok] <= 100).all()
    attrs = preds["CaCO3_lower"].attrs
    assert attrs["interval_method"] == "split-conformal" and attrs["interval_level"] == 0.9
    from xrfhub.predictions import list_runs

    run_id = list_runs(hub)[-1]["run"]
    assert list_runs(hub)[-1]["targets"] == ["CaCO3"]  # the bounds are not targets
    prov = json.loads(xrfhub.open(hub, "predictions", run=run_id).attrs["provenance"])
    assert prov["interval"]["calibration_cores"] == sorted(normal[1:3]) and prov["interval"]["level"] == 0.9
    # the bounds live in the NeXus files too: a rebuilt hub has them
    run_cli("rebuild", hub)
    again = xrfhub.open(hub, "predictions")
    np.testing.assert_array_equal(again["CaCO3_upper"].values, hi)
    # a later run without an interval does not inherit the earlier run's bounds
    run_cli("predict", "--store", hub, "--run", out)
    latest = xrfhub.open(hub, "predictions")
    assert "CaCO3" in latest and "CaCO3_lower" not in latest and "CaCO3_upper" not in latest


def test_interval_refusals(store, tmp_path):
    from conftest import run_cli

    hub, normal, _, plugin = store
    plain = tmp_path / "plain"
    run_cli("train", "lin", "--plugin", plugin, "--store", hub, "--target", "CaCO3", "--out", plain,
            "--holdout-cores", normal[0])
    bad = run_cli("predict", "--store", hub, "--run", plain, "--interval", "0.9", check=False)
    assert bad.returncode != 0 and "trained without calibration cores" in bad.stderr
    both = run_cli("train", "lin", "--plugin", plugin, "--store", hub, "--target", "CaCO3", "--out",
                   tmp_path / "both", "--holdout-cores", normal[0], "--calibration-cores", normal[0], check=False)
    assert both.returncode != 0 and "calibrates or tests, never both" in both.stderr
    assert not (tmp_path / "both").exists()
    cal = tmp_path / "cal"
    run_cli("train", "lin", "--plugin", plugin, "--store", hub, "--target", "CaCO3", "--out", cal,
            "--holdout-cores", normal[0], "--calibration-cores", normal[1])
    level = run_cli("predict", "--store", hub, "--run", cal, "--interval", "1.5", check=False)
    assert level.returncode != 0 and "between 0 and 1" in level.stderr
    high = run_cli("predict", "--store", hub, "--run", cal, "--interval", "0.999", check=False)
    assert high.returncode != 0 and "needs at least 999 calibration pairs" in high.stderr


def test_the_evaluation_pools_coverage_over_seeds_and_names_broken_cores(tmp_path):
    """The report's interval section from cell results as ``xrfhub evaluate --interval`` writes them:
    coverage pooled over seeds by test pairs, min/max per seed, broken cores listed."""
    from xrfhub.ml.evaluation.intervals_report import interval_section, interval_table
    from xrfhub.ml.evaluation.protocol import EvalConfig

    rng = np.random.default_rng(0)
    results = []
    for seed, (n, shift) in enumerate([(40, 0.0), (60, 3.0)]):
        y = rng.normal(20, 2, n)
        pred = y + rng.normal(shift, 1, n)
        cal = intervals.calibrate(lambda x: x[:, 0] + rng.normal(0, 1, len(x)), y[:, None], y, ["A"] * n, "CaCO3")
        lower, upper = cal.interval(pred, LEVEL)
        cores = np.array(["H"] * n)
        results.append({"kind": "interval", "target": "CaCO3", "model": "max", "seed": seed, "n_calibration": n,
                        "calibration_cores": ["A"], "test": {"r2": 0.5, "rmse": 1.0},
                        "interval": {**cal.describe(LEVEL), **intervals.coverage(y, lower, upper)},
                        "notes": intervals.exchangeability_notes(y, lower, upper, cores, LEVEL)})
    runs, summary = interval_table(results)
    cov = [r["interval"]["coverage"] for r in results]
    assert summary["coverage"].iloc[0] == pytest.approx((cov[0] * 40 + cov[1] * 60) / 100)
    assert summary["coverage_min"].iloc[0] == min(cov) and len(runs) == 2
    text = interval_section(results, tmp_path, EvalConfig().replace(interval="0.9"))
    assert "| CaCO3 | max | 0.9 | absolute/pairs | 2 |" in text and (tmp_path / "intervals.csv").is_file()
    assert cov[1] < 0.5 and "held-out core H" in text  # the shifted seed breaks exchangeability and says so


@pytest.mark.slow
def test_max_calibration_cores_chosen_at_pretraining_are_inherited_and_calibrate_the_fine_tune(store, tmp_path):
    pytest.importorskip("torch")
    hub, normal, _, _ = store
    micro = {"width": "32", "depth": "1", "heads": "2", "decoder_width": "32", "decoder_depth": "1",
             "decoder_heads": "2", "batch": "64", "pretrain_spectra": "256"}
    training.train("max", hub, stage="pretrain", out=tmp_path / "pre", config="tiny", sets=micro, epochs=1,
                   holdout_cores=[normal[0]], calibration_cores=["auto"], progress=False)
    pre = json.loads((tmp_path / "pre" / "run.json").read_text())
    assert pre["holdout_cores"] == [normal[0]] and len(pre["calibration_cores"]) == 4
    s = training.train("max", hub, stage="finetune", out=tmp_path / "ft", target="CaCO3", init=tmp_path / "pre",
                       epochs=3, sets={"batch": "32"}, progress=False)
    ft = json.loads((tmp_path / "ft" / "run.json").read_text())
    assert ft["calibration_cores"] == pre["calibration_cores"] and ft["holdout_cores"] == [normal[0]]
    cal = intervals.Calibration.load(tmp_path / "ft")
    assert cal.cores == pre["calibration_cores"] and cal.n == s.metrics["calibration"]["n"] > 100
    assert 0 <= s.metrics["held_out"]["interval_90"]["coverage"] <= 1
    assert not any("seen by the pre-training" in w for w in s.warnings)  # chosen at pre-training: never seen
