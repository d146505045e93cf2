"""Mixup of the MAX fine-tune's pairs (``--set mixup=ALPHA``): mixtures of two pairs' raw counts
and targets, seeded, training batches only; off by default."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from xrfhub.errors import ConfigError
from xrfhub_max.config import MaxConfig
from xrfhub_max.engine import _Regression
from xrfhub_max.transforms import Transform

from test_max_engine import CONFIG, peak_spectra


class _Recorder(torch.nn.Module):
    """A 'model' that keeps what it was given and predicts zeros."""

    def forward(self, x):
        self.seen = x.clone()
        return torch.zeros(len(x))


def _task(mixup, seed=0):
    return _Regression(Transform("none"), torch.device("cpu"), mean=10.0, std=2.0, mixup=mixup, seed=seed)


def test_mixup_mixes_raw_counts_and_targets_alike_on_training_batches_only():
    x, y = peak_spectra(16, seed=4)
    batch = (torch.as_tensor(x).float(), torch.as_tensor(y).float())
    net = _Recorder()
    z = (batch[1] - 10.0) / 2.0
    loss, n = _task(0.4).loss(net, batch, training=True)
    mixed = net.seen
    assert n == 16 and not torch.allclose(mixed, batch[0])
    # every mixed spectrum lies between two of the batch's (a convex mixture of raw counts),
    # and the loss is that of the mixed targets: recover lam from one channel, check the target
    lo, hi = batch[0].min(0).values, batch[0].max(0).values
    assert bool(((mixed >= lo - 1e-4) & (mixed <= hi + 1e-4)).all())
    task = _task(0.4)
    mx, my = task._mix(batch[0], z)
    assert float(loss) == pytest.approx(float(torch.mean(my ** 2)), rel=1e-5)  # zeros predicted
    assert mx.shape == batch[0].shape and my.shape == z.shape
    # seeded: the same seed mixes the same way; validation batches are never mixed
    _task(0.4, seed=1).loss(net, batch, training=True)
    other = net.seen
    assert not torch.allclose(other, mixed)
    _task(0.4, seed=0).loss(net, batch, training=True)
    assert torch.allclose(net.seen, mixed)
    _task(0.4).loss(net, batch, training=False)
    assert torch.allclose(net.seen, batch[0])
    _task(0.0).loss(net, batch, training=True)
    assert torch.allclose(net.seen, batch[0])


def test_mixup_is_checked_and_off_by_default():
    assert MaxConfig.from_preset("tiny").mixup == 0.0 and MaxConfig().mixup == 0.0
    assert MaxConfig.from_preset("tiny").with_overrides({"mixup": "0.4"}).mixup == 0.4
    with pytest.raises(ConfigError, match="mixup must be >= 0"):
        CONFIG.replace(mixup=-1.0)
    assert np.isfinite(CONFIG.replace(mixup=0.2).mixup)
