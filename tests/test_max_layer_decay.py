"""Layer-wise learning-rate decay of the MAX fine-tune (``xrfhub_max.layer_decay``), on a real
tiny regressor trained with the real engine (CPU, 512 channels)."""
from __future__ import annotations

import pytest
import torch

from xrfhub.errors import ConfigError
from xrfhub_max.config import MaxConfig
from xrfhub_max.engine import build_optimizer, finetune, in_memory_batches
from xrfhub_max.layer_decay import layer_id, lr_scale
from xrfhub_max.model import MaxRegressor

from test_max_engine import CONFIG, peak_spectra


def test_each_layer_gets_decay_to_the_power_of_its_distance_from_the_head():
    config = CONFIG.replace(depth=4, layer_decay=0.5)
    model = MaxRegressor(config)
    assert layer_id("encoder.patch_embed.proj.weight", 4) == 0 == layer_id("encoder.cls_token", 4)
    assert layer_id("encoder.blocks.0.attn.qkv.weight", 4) == 1 and layer_id("encoder.blocks.3.mlp.fc2.bias", 4) == 4
    assert layer_id("encoder.norm.weight", 4) == 5 == layer_id("head.weight", 4)
    assert lr_scale("head.bias", 4, 0.5) == 1.0 and lr_scale("encoder.blocks.3.norm1.weight", 4, 0.5) == 0.5
    assert lr_scale("encoder.patch_embed.proj.weight", 4, 0.5) == 0.5 ** 5
    optimizer = build_optimizer(model, config, 1e-3, config.layer_decay)
    by_param = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert set(by_param) == {id(p) for p in named.values()}  # every parameter, once
    for name, p in named.items():
        group = by_param[id(p)]
        assert group["lr_scale"] == pytest.approx(lr_scale(name, 4, 0.5)), name
        assert group["weight_decay"] == (0.0 if p.ndim <= 1 or name.endswith("cls_token") else config.weight_decay)
    plain = build_optimizer(model, config, 1e-3, 1.0)
    assert all(g.get("lr_scale", 1.0) == 1.0 for g in plain.param_groups)


def test_layer_decay_is_checked():
    for bad in (0.0, 1.5, -0.2):
        with pytest.raises(ConfigError, match="layer_decay must be in"):
            MaxConfig.from_preset("tiny").replace(layer_decay=bad)


def test_the_fine_tune_moves_deep_layers_less_by_the_decay(tmp_path):
    """Same seed, same batches: with decay 0.5 over a 2-block encoder the patch embedding trains at
    1/8 of the rate, so Adam moves it ~8x less than without decay, while the head moves alike."""
    x, y = peak_spectra(192, seed=1)
    moved = {}
    for decay in (1.0, 0.5):
        config = CONFIG.replace(depth=2, epochs=1, layer_decay=decay, weight_decay=0.0)
        torch.manual_seed(0)
        model = MaxRegressor(config)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        train = in_memory_batches(x, y, batch_size=32, seed=0)
        finetune(model, config, train, None, tmp_path / f"d{decay}", progress=False)
        moved[decay] = {n: float((p.detach() - before[n]).abs().mean()) for n, p in model.named_parameters()}
    embed = moved[0.5]["encoder.patch_embed.proj.weight"] / moved[1.0]["encoder.patch_embed.proj.weight"]
    head = moved[0.5]["head.weight"] / moved[1.0]["head.weight"]
    assert embed < 0.25, embed  # 1/8 of the rate (Adam steps scale with the rate)
    assert head > 0.5, head
