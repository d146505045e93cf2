"""MAX fine-tuned on a percentage's log-ratio (``--set target_transform=logit``)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from xrfhub.errors import ConfigError

torch = pytest.importorskip("torch")

from xrfhub_max import engine  # noqa: E402
from xrfhub_max.config import PRESETS  # noqa: E402
from xrfhub_max.model import MaxRegressor  # noqa: E402


def test_the_logit_target_maps_wt_percent_there_and_back():
    y = np.array([0.0, 0.3, 12.5, 50.0, 97.0, 100.0])
    z = engine.to_target_space(y, "logit")
    assert np.all(np.isfinite(z)) and z[3] == pytest.approx(0.0) and np.all(np.diff(z) > 0)
    np.testing.assert_allclose(engine.from_target_space(z, "logit"), y, atol=1e-9)
    assert engine.from_target_space(np.array([-1e6, 1e6]), "logit") == pytest.approx([-0.5, 100.5])  # (-c, 100 + c)
    np.testing.assert_array_equal(engine.to_target_space(y, "none"), y)


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.uniform(5, 95, n).astype(np.float32)
    x = rng.poisson(50 + 2 * y[:, None] * np.exp(-0.5 * ((np.arange(2048) - 185) / 4.0) ** 2)).astype(np.float32)
    return x, y


def test_a_logit_fine_tune_keeps_its_statistics_in_target_space_and_predicts_in_wt_percent(tmp_path):
    config = PRESETS["tiny"].replace(epochs=2, target_transform="logit", batch=8)
    x, y = _data()
    batches = engine.in_memory_batches(x, y, 8, seed=0)
    model = MaxRegressor(config)
    engine.finetune(model, config, batches, None, tmp_path / "run", progress=False)
    stats = json.loads((tmp_path / "run" / "target_stats.json").read_text())
    assert stats["transform"] == "logit"
    assert stats["mean"] == pytest.approx(engine.to_target_space(y.astype(np.float64), "logit").mean(), rel=1e-6)
    pred = engine.predict(model, engine.in_memory_batches(x, None, 8, shuffle=False), engine.Transform(config.transform), stats)
    raw = engine.predict(model, engine.in_memory_batches(x, None, 8, shuffle=False), engine.Transform(config.transform))
    np.testing.assert_allclose(pred, engine.from_target_space(raw * stats["std"] + stats["mean"], "logit"), rtol=1e-5)
    assert np.all((pred > -0.5) & (pred < 100.5))  # a percentage, whatever the network outputs
    np.testing.assert_allclose(engine.normalised_targets(y, stats) * stats["std"] + stats["mean"],
                               engine.to_target_space(y.astype(np.float64), "logit"))


def test_logit_refuses_targets_that_are_no_percentage_and_the_published_head(tmp_path):
    config = PRESETS["tiny"].replace(epochs=2, target_transform="logit", batch=8)
    x, y = _data()
    with pytest.raises(ConfigError, match="target_transform=logit is for percentages"):
        engine.finetune(MaxRegressor(config), config, engine.in_memory_batches(x, y * 3, 8), None,
                        tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # refused before anything was written
    with pytest.raises(ConfigError, match="published head"):
        PRESETS["tiny"].replace(head="sigmoid100", target_transform="logit")
    with pytest.raises(ConfigError, match="target_transform must be one of"):
        PRESETS["tiny"].replace(target_transform="log")
