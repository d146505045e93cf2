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


def test_a_run_saved_before_pool_existed_resumes_as_cls_only(tmp_path):
    """Run folders written before ``pool`` existed read their heads from the cls token: resuming
    one with pool=cls is allowed, with pool=mean refused (it would change the model mid-run)."""
    import json

    from xrfhub_max import checkpoint as ckpt
    from xrfhub_max.engine import _check_same_config, in_memory_batches, pretrain
    from xrfhub_max.model import MaxAutoencoder

    x, _ = peak_spectra(64, seed=3)
    config = CONFIG.replace(epochs=1, pool="cls")
    pretrain(MaxAutoencoder(config), config, in_memory_batches(x, None, 32), None, tmp_path / "r", progress=False)
    saved = json.loads((tmp_path / "r" / ckpt.CONFIG_FILE).read_text())
    del saved["pool"]
    (tmp_path / "r" / ckpt.CONFIG_FILE).write_text(json.dumps(saved))
    _check_same_config(tmp_path / "r", config.replace(epochs=2))
    with pytest.raises(ConfigError, match="pool"):
        _check_same_config(tmp_path / "r", config.replace(pool="mean"))
