"""MAX training engine on synthetic spectra (CPU, tiny model, 512 channels to stay fast)."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from safetensors import safe_open

from xrfhub.errors import ConfigError, StoreError
from xrfhub_max import checkpoint as ckpt
from xrfhub_max.config import MaxConfig
from xrfhub_max.engine import (finetune, in_memory_batches, learning_rate, param_groups,
                               pretrain, reconstruction_png)
from xrfhub_max.model import MaxAutoencoder, MaxRegressor
from xrfhub_max.transforms import Transform

CHANNELS = 512
CONFIG = MaxConfig.from_preset("tiny").replace(channels=CHANNELS, epochs=2, warmup_epochs=0.5,
                                               lr=1e-3, finetune_lr=1e-3, seed=3)


def peak_spectra(n: int, seed: int = 0):
    """Poisson counts of three Gaussian emission peaks on a background; the target is the
    first peak's share of the peak area in percent (a 'CaCO3-like' quantity)."""
    rng = np.random.default_rng(seed)
    channel = np.arange(CHANNELS)
    centres = np.array([80.0, 220.0, 390.0]) + rng.normal(0, 1.5, (n, 3))
    amps = rng.uniform(40, 400, (n, 3))
    mean = (amps[:, :, None] * np.exp(-0.5 * ((channel - centres[:, :, None]) / 6) ** 2)).sum(1)
    counts = rng.poisson(mean + 15).astype(np.float32)
    return counts, (100 * amps[:, 0] / amps.sum(1)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    x, y = peak_spectra(512)
    return x, y


def sources(x, y=None, seed=0, n_train=448, batch_size=64):
    """Training batches from the first ``n_train`` spectra, validation from the last 64."""
    train = in_memory_batches(x[:n_train], None if y is None else y[:n_train],
                              batch_size=batch_size, seed=seed)
    val = in_memory_batches(x[448:], None if y is None else y[448:], batch_size=64,
                            shuffle=False)
    return train, val


def new_autoencoder(config=CONFIG):
    torch.manual_seed(config.seed)
    return MaxAutoencoder(config)


# -- recipe pieces -------------------------------------------------------------------------------
def test_learning_rate_warms_up_linearly_then_decays_by_cosine():
    lr = lambda p: learning_rate(p, 1e-4, 0.0, warmup=10, total=100)  # noqa: E731
    assert lr(0) == 0 and math.isclose(lr(5), 5e-5) and math.isclose(lr(10), 1e-4)
    assert math.isclose(lr(55), 5e-5) and lr(100) < 1e-12
    assert all(lr(a) >= lr(b) for a, b in zip(range(10, 100), range(11, 101)))


def test_no_weight_decay_on_biases_norms_and_tokens():
    model = MaxAutoencoder(CONFIG)
    decay, no_decay = param_groups(model, 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    skipped = {names[id(p)] for p in no_decay["params"]}
    assert "encoder.cls_token" in skipped and "decoder.mask_token" in skipped
    assert "encoder.norm.weight" in skipped and "encoder.blocks.0.attn.qkv.bias" in skipped
    assert all(p.ndim >= 2 for p in decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(names)


# -- pre-training --------------------------------------------------------------------------------
def test_pretraining_loss_falls_and_the_run_dir_is_complete(tmp_path, data):
    x, _ = data
    train, val = sources(x)
    config = CONFIG.replace(epochs=4)
    model = new_autoencoder(config)
    result = pretrain(model, config, train, val, tmp_path / "run", progress=False)
    losses = [row["train_loss"] for row in result.history]
    assert len(losses) == 4 and losses[-1] < 0.6 * losses[0], losses
    vals = [row["val_loss"] for row in result.history]
    assert vals[-1] < vals[0]
    assert result.best_epoch == 1 + int(np.argmin(vals))
    run = tmp_path / "run"
    for name in ("model.safetensors", "best.safetensors", "optimizer.safetensors",
                 "trainer_state.json", "config.json", "transform.json", "metrics.jsonl",
                 "metrics.csv", "loss.png"):
        assert (run / name).is_file(), name
    assert MaxConfig.from_dict(json.loads((run / "config.json").read_text())) == config
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert set(rows[0]) >= {"train_loss", "val_loss", "lr", "spectra_per_s", "seconds"}
    with open(run / "metrics.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 4
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pretraining_on_clr_inputs_saves_the_scaling_it_trained_on(tmp_path, data):
    # a fine-tune or predict reads transform.json: a run pre-trained on clr inputs must say so
    x, _ = data
    train, val = sources(x, n_train=128)
    result = pretrain(new_autoencoder(), CONFIG.replace(epochs=1, transform="clr"), train, val, tmp_path,
                      progress=False)
    assert np.isfinite(result.history[-1]["train_loss"])
    assert json.loads((tmp_path / "transform.json").read_text())["kind"] == "clr"


def test_checkpoints_are_pickle_free(tmp_path, data):
    x, _ = data
    train, _ = sources(x, n_train=128)
    pretrain(new_autoencoder(), CONFIG.replace(epochs=1), train, None, tmp_path, progress=False)
    for path in sorted(tmp_path.iterdir()):
        head = path.read_bytes()[:2]
        assert head[:1] != b"\x80" and not head.startswith(b"PK"), f"{path.name} looks pickled"
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as fh:
                assert len(list(fh.keys())) > 0
        elif path.suffix == ".json":
            json.loads(path.read_text())
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    assert state["epoch"] == 1 and isinstance(state["rng"]["torch"], list)


class Killed(Exception):
    pass


def test_resume_after_a_kill_reproduces_the_uninterrupted_run(tmp_path, data):
    x, _ = data
    train, val = sources(x, seed=5, n_train=256)

    straight = new_autoencoder()
    pretrain(straight, CONFIG, train, val, tmp_path / "straight", progress=False)

    def dies_in_epoch_two(epoch):
        if epoch == 1:
            raise Killed  # the process dies after epoch 1 was checkpointed
        return train(epoch)

    with pytest.raises(Killed):
        pretrain(new_autoencoder(), CONFIG, dies_in_epoch_two, val, tmp_path / "resumed",
                 progress=False)
    assert json.loads((tmp_path / "resumed" / "trainer_state.json").read_text())["epoch"] == 1
    # a fresh process: a model with other initial weights, resumed from the run dir
    resumed = MaxAutoencoder(CONFIG)
    result = pretrain(resumed, CONFIG, train, val, tmp_path / "resumed", resume=True,
                      progress=False)
    assert [r["epoch"] for r in result.history] == [1, 2]
    a, _ = ckpt.load_tensors(tmp_path / "straight" / "model.safetensors")
    b, _ = ckpt.load_tensors(tmp_path / "resumed" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    straight_rows = [json.loads(s) for s in
                     (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert math.isclose(straight_rows[-1]["val_loss"], result.history[-1]["val_loss"],
                        rel_tol=1e-5)


def test_resume_refuses_a_changed_configuration_or_mixed_epochs(tmp_path, data):
    x, _ = data
    train, _ = sources(x, n_train=64)
    config = CONFIG.replace(epochs=1)
    pretrain(new_autoencoder(), config, train, None, tmp_path, progress=False)
    with pytest.raises(ConfigError, match="mask_ratio"):
        pretrain(new_autoencoder(), config.replace(mask_ratio=0.7), train, None, tmp_path,
                 resume=True, progress=False)
    # weights from another epoch than the trainer state: a kill between two file replacements
    ckpt.save_weights(new_autoencoder(), tmp_path / ckpt.MODEL_FILE, epoch=7)
    with pytest.raises(StoreError, match="different epochs"):
        pretrain(new_autoencoder(), config.replace(epochs=2), train, None, tmp_path,
                 resume=True, progress=False)


def test_reconstruction_png(tmp_path, data):
    x, _ = data
    model = new_autoencoder()
    energy = np.arange(CHANNELS) * 0.02
    path = reconstruction_png(model, x[:8], tmp_path / "recon.png", energy,
                              transform=Transform("instance"), n=3)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert path.stat().st_size > 10_000


# -- fine-tuning ---------------------------------------------------------------------------------
def test_regressor_learns_a_simple_target(tmp_path, data):
    x, y = data
    train, val = sources(x, y, batch_size=32)
    config = CONFIG.replace(epochs=6, depth=2)  # a 2-block encoder learns this in seconds
    torch.manual_seed(0)
    model = MaxRegressor(config)
    result = finetune(model, config, train, val, tmp_path, progress=False)
    stats = json.loads((tmp_path / "target_stats.json").read_text())
    assert math.isclose(stats["mean"], float(y[:448].mean()), rel_tol=1e-5)
    assert math.isclose(stats["std"], float(y[:448].std()), rel_tol=1e-4)
    pred, true = result.predictions, result.targets
    assert pred.shape == (64,) and np.allclose(true, y[448:])
    r2 = 1 - ((pred - true) ** 2).sum() / ((true - true.mean()) ** 2).sum()
    assert r2 > 0.8, r2  # predictions are de-normalised to wt%, so R2 is in target units
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]


def test_regressor_starts_from_pretrained_encoder(tmp_path, data):
    x, y = data
    auto = new_autoencoder()
    pretrain(auto, CONFIG.replace(epochs=1), sources(x, n_train=128)[0], None, tmp_path / "pre",
             progress=False)
    regressor = MaxRegressor.from_autoencoder(auto)
    saved, _ = ckpt.load_tensors(tmp_path / "pre" / "best.safetensors")
    for name, value in regressor.encoder.state_dict().items():
        assert torch.equal(value, saved[f"encoder.{name}"]), name
