"""What the MAX regressor's head reads (``pool``): the cls token, or the mean of the patch tokens
(MAE's fine-tuning default), on a real tiny regressor (CPU, 512 channels)."""
from __future__ import annotations

import pytest
import torch

from xrfhub.errors import ConfigError
from xrfhub_max.config import MaxConfig
from xrfhub_max.model import MaxRegressor

from test_max_engine import CONFIG, peak_spectra


def test_mean_pool_reads_the_patch_tokens_and_loads_the_same_weights():
    x, _ = peak_spectra(4, seed=2)
    x = torch.as_tensor(x).float()
    torch.manual_seed(0)
    cls = MaxRegressor(CONFIG.replace(pool="cls")).eval()
    mean = MaxRegressor(CONFIG.replace(pool="mean")).eval()
    mean.load_state_dict(cls.state_dict())  # no new weights: a checkpoint of either loads into the other
    with torch.no_grad():
        tokens = cls.encoder(x)
        assert torch.allclose(cls(x), cls.head(tokens[:, 0]).squeeze(-1))
        assert torch.allclose(mean(x), cls.head(tokens[:, 1:].mean(dim=1)).squeeze(-1), atol=1e-6)
        assert not torch.allclose(mean(x), cls(x))


def test_pool_is_checked_and_the_presets_say_theirs():
    with pytest.raises(ConfigError, match="pool must be one of"):
        MaxConfig.from_preset("tiny").replace(pool="max")
    assert MaxConfig.from_preset("base").pool == "cls"  # the published MAX reads its cls token
    assert MaxConfig.from_preset("tiny").pool == "mean"  # chosen on validation (docs/results.md)
    assert MaxConfig.from_preset("tiny").with_overrides({"pool": "cls"}).pool == "cls"
