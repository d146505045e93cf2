"""The fine-tune's validation split by whole cores (``--set val_split=cores``).

Pairs drawn from the training cores score every model 0.98-0.996 on the 10-core corpora
(docs/results.md), so they cannot choose an epoch for new cores; a validation core the model
never trains on can. These tests check the split itself on a real ingested store.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import FOUR_CORES
from xrfhub.errors import ConfigError
from xrfhub.ml.loaders import split_pairs, split_summary

CORES = FOUR_CORES


@pytest.fixture(scope="module")
def store(four_core_store):
    return four_core_store


def test_by_cores_never_puts_a_core_on_both_sides(store):
    for seed in range(6):
        x, y, cores, is_val = split_pairs(store, "CaCO3", seed=seed, by="cores")
        val, fit = set(cores[is_val]), set(cores[~is_val])
        assert val and fit and not (val & fit)
        assert len(val) == 1 and fit | val == set(CORES)  # 20 % of 4 cores rounds to one
        assert split_summary(cores, is_val) == {"validation_cores": sorted(val),
                                                "validation_shares_training_cores": False}
        assert len(x) == len(y) == len(cores) == 16


def _validation_cores(store, seed):
    _x, _y, cores, is_val = split_pairs(store, "CaCO3", seed=seed, by="cores")
    return tuple(sorted(set(cores[is_val])))


def test_by_cores_depends_on_the_seed_only(store):
    draws = {seed: _validation_cores(store, seed) for seed in range(8)}
    assert draws[3] == _validation_cores(store, 3)
    assert len(set(draws.values())) > 1  # different seeds draw different cores


def test_by_pairs_is_the_split_it_always_was(store):
    x, y, cores, is_val = split_pairs(store, "CaCO3", seed=5)
    assert np.array_equal(is_val, np.random.default_rng(5).random(len(y)) < 0.2)
    assert split_summary(cores, is_val)["validation_shares_training_cores"]


def test_too_few_cores_fall_back_to_pairs_and_say_so(store):
    x, y, cores, is_val = split_pairs(store, "CaCO3", seed=0, by="cores", exclude_cores=CORES[:2])
    assert set(cores) == set(CORES[2:]) and is_val.any() and (~is_val).any()
    assert split_summary(cores, is_val)["validation_shares_training_cores"]


def test_an_unknown_split_is_refused(store):
    with pytest.raises(ConfigError, match="'pairs' or 'cores'"):
        split_pairs(store, "CaCO3", by="core")


def test_max_fine_tune_records_its_validation_cores(store, tmp_path):
    pytest.importorskip("torch")
    import json

    from xrfhub.ml import training

    out = tmp_path / "ft"
    summary = training.train("max", store, stage="finetune", out=out, config="tiny", target="CaCO3", epochs=1,
                             sets={"batch": "8", "val_split": "cores"}, progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["validation_split"] == "cores" and len(metrics["validation_cores"]) == 1
    assert metrics["validation_shares_training_cores"] is False
    assert summary.metrics["validation_cores"] == metrics["validation_cores"]
    assert not any("val_split" in w for w in summary.warnings)
    few = training.train("max", store, stage="finetune", out=tmp_path / "few", config="tiny", target="CaCO3",
                         epochs=1, holdout_cores=list(CORES[:2]), sets={"batch": "8"}, progress=False)
    assert few.metrics["validation_shares_training_cores"] is True
    assert any("fewer than 3 training cores" in w for w in few.warnings)
    with pytest.raises(ConfigError, match="val_split must be 'pairs' or 'cores'"):
        training.train("max", store, stage="finetune", out=tmp_path / "bad", config="tiny", target="CaCO3",
                       epochs=1, sets={"val_split": "core"}, progress=False)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ConfigError, match="refit .* needs val_split=cores"):
        training.train("max", store, stage="finetune", out=tmp_path / "bad2", config="base", target="CaCO3",
                       epochs=1, sets={"refit": "true"}, progress=False)
    assert not (tmp_path / "bad2").exists()


def test_refit_trains_every_training_core_to_the_chosen_epoch(store, tmp_path):
    pytest.importorskip("torch")
    import json

    from xrfhub.ml import training

    out = tmp_path / "refit"
    summary = training.train("max", store, stage="finetune", out=out, config="tiny", target="CaCO3", epochs=3,
                             sets={"batch": "8", "val_split": "cores", "refit": "true"}, progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    chosen = metrics["best_epoch"]
    assert metrics["refit"]["epoch"] == chosen and metrics["refit"]["pairs"] == 16
    def epochs(folder):
        return [json.loads(line)["epoch"] for line in (folder / "metrics.jsonl").read_text().splitlines() if line]

    assert epochs(out / "epoch-choice") == [1, 2, 3]  # the choice ran the whole schedule
    assert epochs(out) == list(range(1, chosen + 1))  # the refit ran it up to the chosen epoch
    assert np.isfinite(summary.metrics["validation"]["rmse"])


def test_a_stop_epoch_with_validation_is_refused(tmp_path):
    pytest.importorskip("torch")
    from xrfhub_max import engine
    from xrfhub_max.config import PRESETS
    from xrfhub_max.model import MaxRegressor

    config = PRESETS["tiny"].replace(epochs=2)
    x = np.ones((4, 2048), np.float32)
    batches = engine.in_memory_batches(x, np.ones(4, np.float32), 4)
    with pytest.raises(ConfigError, match="stop_epoch 3 needs no validation and 1..2"):
        engine.finetune(MaxRegressor(config), config, batches, None, tmp_path / "run", stop_epoch=3, progress=False)
    assert not (tmp_path / "run").exists()  # refused before anything was written
