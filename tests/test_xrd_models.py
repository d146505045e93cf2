"""Diffraction classifiers (plugins/xrfhub_xrd): module shapes, published sizes, tiny recipes that
must learn toy patterns, seeding, save/load, and the numpy metrics on hand-made examples.

The toy patterns are Gaussian peaks at class- (or phase-) specific 2-theta positions over a
sloped background with noise, P = 400 points over 10-25 deg: separable by design, so a model
that fails them within its small budget is broken.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from xrfhub.errors import ConfigError, InputError
from xrfhub_xrd import metrics
from xrfhub_xrd.binned import bin_layout, believability
from xrfhub_xrd.config import (BinnedVoteConfig, MultiTaskConfig, Spectra1DConfig,
                               config_for)
from xrfhub_xrd.data import als_baseline
from xrfhub_xrd.models import build_model, count_parameters
from xrfhub_xrd.multitask import positive_weights, tailored_bce
from xrfhub_xrd.recipes import Fitted, fit

P = 400
TTH = np.linspace(10.0, 25.0, P)
CLASS_PEAKS = ([12.0, 17.0, 21.0], [13.0, 18.5, 22.0], [11.0, 15.5, 24.0])
PHASE_PEAKS = ([11.0, 15.5, 20.0], [12.5, 17.0, 23.0], [14.0, 19.0, 24.0])


def peaks(rng, centres) -> np.ndarray:
    out = np.zeros(P)
    for c in centres:
        out += rng.uniform(0.5, 1.5) * np.exp(-0.5 * ((TTH - c - rng.normal(0, 0.05)) / 0.12) ** 2)
    return out


def background(rng) -> np.ndarray:
    return 0.2 + 0.01 * (TTH - 10) + rng.normal(0, 0.03, P)


def class_patterns(n: int, seed: int, classes: int = 2):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = np.stack([peaks(rng, CLASS_PEAKS[c]) + background(rng) for c in y])
    return (10 * x).astype(np.float32), y  # counts-like scale: the recipes min-max scale


def phase_patterns(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 3)) < 0.5).astype(np.int64)
    x = np.stack([sum((peaks(rng, PHASE_PEAKS[k]) for k in range(3) if row[k]), np.zeros(P))
                  + background(rng) for row in y])
    return x.astype(np.float32), y


TRAIN = class_patterns(16, seed=0)
HELD_OUT = class_patterns(40, seed=1)

# tiny budgets: each learns the toy within a few seconds on one core
TINY = {
    "panosc-binned": {"iterations": 60, "copies": 2},
    "panosc-binned-learned": {"iterations": 60, "copies": 2},
    "fcnn": {"arch": "fcnn", "iterations": 30, "copies": 2},
    "cnn": {"arch": "cnn", "iterations": 30, "copies": 2},
    "transformer": {"arch": "transformer", "iterations": 30, "copies": 2},
    "lstm": {"arch": "lstm", "iterations": 30, "copies": 2},
    "resnet": {"arch": "resnet", "iterations": 30, "copies": 2},
}
_FITTED: dict[str, Fitted] = {}


def fitted(key: str) -> Fitted:
    """Each tiny model trained once per session on TRAIN (shared by several tests)."""
    if key not in _FITTED:
        name = key if key.startswith("panosc") else "spectra1d"
        _FITTED[key] = fit(name, *TRAIN, TTH, TINY[key])
    return _FITTED[key]


# -- shapes and published sizes --------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["fcnn", "cnn", "transformer", "lstm", "resnet"])
@pytest.mark.parametrize("classes, out", [(2, 1), (3, 3)])
def test_spectra1d_forward_shapes(arch, classes, out):
    torch.manual_seed(0)
    model = build_model("spectra1d", Spectra1DConfig(arch=arch), TTH, classes).eval()
    assert model(torch.rand(5, P)).shape == (5, out)


def test_binned_and_phase_forward_shapes():
    x = torch.rand(4, P)
    index, valid, position = bin_layout(TTH, 15)
    m = index.shape[0]
    vote = build_model("panosc-binned", BinnedVoteConfig(), TTH, 3)
    assert vote(x).shape == (15, 4, m, 3)  # bin-major point logits
    assert vote.vote(x).shape == (4, 3)
    learned = build_model("panosc-binned-learned", config_for("panosc-binned-learned"), TTH, 2)
    assert learned(x).shape == (4, valid.sum(0).min())
    for mode in ("multitask", "binary"):
        model = build_model("mtl-phase", MultiTaskConfig(mode=mode), TTH, 3)
        assert model(x).shape == (4, 3)


def test_published_parameter_counts_at_4023_points():
    with torch.device("meta"):
        fcnn = build_model("spectra1d", Spectra1DConfig(arch="fcnn"), np.arange(4023.0), 2)
        cnn = build_model("spectra1d", Spectra1DConfig(arch="cnn"), np.arange(4023.0), 2)
    # FCNN: LayerNorm(4023) 2*4023 = 8046; Linear 4023*256+256 = 1_030_144; LayerNorm(256) 512;
    # Linear 256*512+512 = 131_584; LayerNorm(512) 1024; Linear 512*64+64 = 32_832;
    # LayerNorm(64) 128; Linear 64*1+1 = 65.  Sum = 1_204_335.
    assert count_parameters(fcnn) == 8046 + 1_030_144 + 512 + 131_584 + 1024 + 32_832 + 128 + 65
    # CNN lengths: 4023 -conv k5 s2-> 2010 -pool2-> 1005 -k3 s2-> 502 -pool3-> 167 -k3-> 165
    # -pool2-> 82, flattened 4*82 = 328. LayerNorm(4023) 8046; conv 64*5+64 = 384, BN 128;
    # conv 64*64*3+64 = 12_352, BN 128; conv 4*64*3+4 = 772, BN 8; LayerNorm(328) 656;
    # Linear 328+1 = 329.  Sum = 22_803 (BatchNorm running statistics are buffers).
    assert count_parameters(cnn) == 8046 + 384 + 128 + 12_352 + 128 + 772 + 8 + 656 + 329


def test_bin_layout_cuts_equal_width_bins():
    index, valid, position = bin_layout(TTH, 15)
    counts = valid.sum(0)
    assert counts.sum() == P and counts.max() - counts.min() <= 1
    assert np.all((position[valid] >= 0) & (position[valid] <= 1))
    first_of_bin_3 = TTH[index[0, 3]]
    assert 13.0 <= first_of_bin_3 < 13.0 + TTH[1] - TTH[0]  # 10 + 3 * (15/15) deg
    with pytest.raises(ConfigError, match="empty"):
        bin_layout(np.linspace(10, 25, 20), 30)


# -- learning --------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", list(TINY))
def test_each_model_learns_a_separable_two_class_problem(key):
    model = fitted(key)
    x, y = HELD_OUT
    assert metrics.accuracy(y, model.predict(x)) >= 0.9
    proba = model.predict_proba(x)
    assert proba.shape == (40, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    assert model.fit_seconds > 0 and len(model.history) >= 1


@pytest.mark.parametrize("name, config", [
    ("spectra1d", {"arch": "fcnn", "iterations": 40, "copies": 2}),
    ("panosc-binned", {"iterations": 60, "copies": 1, "vote": "soft"}),
])
def test_more_than_two_classes(name, config):
    x, y = class_patterns(18, seed=2, classes=3)
    xv, yv = class_patterns(30, seed=3, classes=3)
    labels = np.array(["rocksalt", "spinel", "rutile"])  # any labels: classes come back as given
    model = fit(name, x, labels[y], TTH, config)
    assert model.classes == ["rocksalt", "rutile", "spinel"]
    assert model.predict_proba(xv).shape == (30, 3)
    assert metrics.accuracy(labels[yv], model.predict(xv)) >= 0.9


def test_binned_learned_is_binary_only():
    x, y = class_patterns(6, seed=2, classes=3)
    with pytest.raises(ConfigError, match="exactly 2 classes"):
        fit("panosc-binned-learned", x, y, TTH, {"iterations": 1, "copies": 0})


def test_binned_learned_stops_early_at_the_loss_threshold():
    model = fit("panosc-binned-learned", *TRAIN, TTH, {"stop_loss": 10.0, "copies": 0})
    assert model.info["stopped_at"] == 1 and len(model.history) == 1


def test_believability_weights_follow_the_formula():
    acc = np.array([0.0, 0.5, 0.55, 0.6, 0.8, 1.0])
    expected = np.maximum(0, 1.4337 * acc ** 2 - 0.4337)
    np.testing.assert_allclose(believability(acc), expected)
    assert believability(0.5499) == 0 and believability(1.0) == pytest.approx(1.0)
    assert believability(0.6) == pytest.approx(0.0824, abs=1e-4)
    # more classes (ours): chance 1/C counts as 0.5, so it still gets weight 0 and 1 keeps 1
    assert believability(1 / 3, classes=3) == 0 and believability(1.0, classes=3) == 1.0
    vote = fitted("panosc-binned")
    acc = np.array(vote.info["bin_accuracy"])
    np.testing.assert_allclose(vote.model.weights.numpy(), believability(acc), atol=1e-6)
    # 1-deg bins: those without a peak of either class carry no evidence, those with one do
    flat = [0, 4, 5, 9]  # 10-11, 14-16, 19-20 deg
    assert np.all(vote.model.weights.numpy()[flat] < 0.05)
    assert np.all(vote.model.weights.numpy()[[2, 8, 11]] > 0.1)  # peaks at 12/13, 18.5, 21/22


def test_mtl_learns_three_phases_and_the_binary_baseline_runs():
    x, y = phase_patterns(96, seed=0)
    xv, yv = phase_patterns(60, seed=1)
    model = fit("mtl-phase", x, y, TTH, {"epochs": 10, "batch": 32})
    predicted = model.predict(xv)
    assert predicted.shape == (60, 3) and set(np.unique(predicted)) <= {0, 1}
    assert np.all(metrics.f1_score(yv, predicted) >= 0.9)
    expected_pw = (len(y) - y.sum(0)) / y.sum(0)
    np.testing.assert_allclose(model.info["positive_weights"], expected_pw, rtol=1e-6)
    baseline = fit("mtl-phase", x, y, TTH, {"epochs": 2, "batch": 32, "mode": "binary",
                                            "task_weights": [1.0, 2.0, 1.0]})
    assert baseline.predict_proba(xv).shape == (60, 3)
    # the baseline is the same trunk and heads, with one trunk per phase instead of one shared
    assert (count_parameters(baseline.model) - count_parameters(model.model)
            == 2 * count_parameters(model.model.trunk))


def test_tailored_bce_by_hand():
    y = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    pw = positive_weights(y)
    assert pw.tolist() == [3.0, 1.0]  # 3 negatives / 1 positive; 2 / 2
    loss = tailored_bce(torch.zeros(4, 2), y, pw, torch.tensor([1.0, 2.0]))
    # logits 0: each entry costs log 2, positives times their weight; per-task means
    # (3 + 3) log2 / 4 = 1.5 log2 and 4 log2 / 4 = log2; weighted 1.5 + 2 * 1 = 3.5 log2
    assert float(loss) == pytest.approx(3.5 * math.log(2), rel=1e-6)


# -- seeding and persistence -----------------------------------------------------------------------
@pytest.mark.parametrize("name, config", [
    ("panosc-binned", {"iterations": 5, "copies": 1}),
    ("spectra1d", {"arch": "cnn", "iterations": 5, "copies": 1}),
])
def test_same_seed_same_predictions(name, config):
    state = torch.get_rng_state()
    a = fit(name, *TRAIN, TTH, config).predict_proba(HELD_OUT[0])
    b = fit(name, *TRAIN, TTH, config).predict_proba(HELD_OUT[0])
    c = fit(name, *TRAIN, TTH, {**config, "seed": 1}).predict_proba(HELD_OUT[0])
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone


@pytest.mark.parametrize("key", ["panosc-binned", "panosc-binned-learned", "cnn", "lstm",
                                 "mtl-phase"])
def test_save_and_load_give_identical_outputs(tmp_path, key):
    if key == "mtl-phase":
        x, y = phase_patterns(24, seed=0)
        model = fit("mtl-phase", x, y, TTH, {"epochs": 1, "batch": 8, "mode": "binary"})
    else:
        model, x = fitted(key), HELD_OUT[0]
    model.save(tmp_path / "run")
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"model.safetensors", "fitted.json"}
    meta = json.loads((tmp_path / "run" / "fitted.json").read_text())
    assert meta["model"] == model.model_name and len(meta["two_theta"]) == P
    loaded = Fitted.load(tmp_path / "run")
    assert loaded.config == model.config and loaded.classes == model.classes
    assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_load_refuses_a_folder_without_a_model(tmp_path):
    from xrfhub.errors import StoreError

    with pytest.raises(StoreError, match="not a saved diffraction classifier"):
        Fitted.load(tmp_path)


# -- configuration and input checks ----------------------------------------------------------------
def test_configs_round_trip_through_json_and_reject_bad_values():
    for name in ("panosc-binned", "panosc-binned-learned", "spectra1d", "mtl-phase"):
        config = config_for(name)
        assert config_for(name, json.loads(json.dumps(config.to_dict()))) == config
    assert BinnedVoteConfig().lr == 8e-3 and BinnedVoteConfig().iterations == 700
    assert config_for("panosc-binned-learned").iterations == 550
    assert Spectra1DConfig().noise == pytest.approx(1 / 6)
    with pytest.raises(ConfigError, match="unknown diffraction model"):
        config_for("panosc")
    with pytest.raises(ConfigError, match="unknown Spectra1DConfig key"):
        config_for("spectra1d", {"epochs": 3})
    with pytest.raises(ConfigError, match="arch must be one of"):
        Spectra1DConfig(arch="mlp")
    with pytest.raises(ConfigError, match="divisible"):
        Spectra1DConfig(transformer_width=100, transformer_heads=8)


def test_bad_arrays_name_the_array_at_fault():
    x, y = TRAIN
    with pytest.raises(InputError, match="one 2-theta value per point") as e:
        fit("spectra1d", x, y, TTH[:-1], {"iterations": 1})
    assert e.value.field == "two_theta"
    bad = x.copy()
    bad[3, 7] = np.nan
    with pytest.raises(InputError, match="pattern 3"):
        fit("spectra1d", bad, y, TTH, {"iterations": 1})
    with pytest.raises(InputError, match="at least 2 classes"):
        fit("spectra1d", x, np.zeros(len(x), int), TTH, {"iterations": 1})
    with pytest.raises(InputError, match="one class label per pattern"):
        fit("spectra1d", x, y[:-1], TTH, {"iterations": 1})
    with pytest.raises(InputError, match="0/1"):
        fit("mtl-phase", x, np.full((len(x), 2), 2), TTH, {"epochs": 1})
    with pytest.raises(InputError, match="training grid"):
        fitted("fcnn").predict(x, two_theta=TTH + 0.1)


def test_als_baseline_follows_the_background_under_peaks():
    ramp = 2.0 + 0.05 * (TTH - 10)
    z = als_baseline(ramp + 5 * np.exp(-0.5 * ((TTH - 17) / 0.12) ** 2))
    assert np.max(np.abs(z - ramp)) < 0.05


# -- metrics ---------------------------------------------------------------------------------------
def test_confusion_matrix_and_f1_by_hand():
    t = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    np.testing.assert_array_equal(metrics.confusion_matrix(t, p),
                                  [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    scores = metrics.precision_recall_f1(t, p)
    np.testing.assert_allclose(scores.precision, [1 / 2, 2 / 3, 1])
    np.testing.assert_allclose(scores.recall, [1 / 2, 1, 1 / 2])
    np.testing.assert_allclose(scores.f1, [1 / 2, 0.8, 2 / 3])
    assert metrics.f1_score(t, p, average="macro") == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert metrics.accuracy(t, p) == pytest.approx(4 / 6)
    # per phase: phase 0 tp 1 fp 1 fn 0; phase 1 never present nor predicted -> 0 by convention
    tm = np.array([[1, 0], [0, 0], [1, 0]])
    pm = np.array([[1, 0], [1, 0], [1, 0]])
    np.testing.assert_allclose(metrics.f1_score(tm, pm), [0.8, 0.0])


def test_ramp_confidence_by_hand():
    clean = metrics.ramp_confidence([0, 0, 0, 1, 1, 1])
    assert clean.single_switch and clean.boundary == 3 and clean.confidence == 1.0
    noisy = metrics.ramp_confidence([0, 1, 0, 0, 0, 1, 1, 1])
    assert not noisy.single_switch and noisy.switches == 3
    assert noisy.boundary == 5 and noisy.off_step == 1 and noisy.confidence == 7 / 8
    assert metrics.ramp_confidence(["high", "high", "low"]).boundary == 2
    flat = metrics.ramp_confidence([1, 1, 1])
    assert flat.boundary is None and flat.off_step == 1 and not flat.single_switch
    report = metrics.ramp_report([0, 0, 1, 1, 1], y_true=[0, 0, 0, 1, 1])
    assert report["single_switch"] and report["boundary"] == 2
    assert report["accuracy"] == pytest.approx(0.8) and report["true_boundary"] == 3


def test_metrics_and_configs_load_without_torch():
    code = ("import sys; import xrfhub_xrd.metrics, xrfhub_xrd.config, xrfhub_xrd; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
