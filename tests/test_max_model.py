"""MAX model, configuration and input transforms (CPU, tiny sizes; base only on the meta device)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from xrfhub.errors import ConfigError, InputError
from xrfhub_max.config import PRESETS, MaxConfig
from xrfhub_max.model import (MaxAutoencoder, MaxRegressor, count_parameters, random_masking,
                              sincos_positions)
from xrfhub.ml.transforms import SpectrumTransform, channel_stats
from xrfhub_max.transforms import Transform

TINY = MaxConfig.from_preset("tiny")


# -- parameter counts (DESIGN section 6) ---------------------------------------------------------
def test_base_parameter_counts_match_the_published_model():
    config = MaxConfig.from_preset("base")
    with torch.device("meta"):  # shapes only: no 0.5 GB allocation, no initialisation cost
        autoencoder = MaxAutoencoder(config)
        regressor = MaxRegressor(config)
    assert count_parameters(autoencoder) == 110_692_368
    assert count_parameters(regressor) == 85_070_593
    # positional embeddings are frozen buffers, not parameters
    assert not any("pos_embed" in name for name, _ in autoencoder.named_parameters())


def test_tiny_parameter_counts_and_encoder_shared_with_regressor():
    autoencoder = MaxAutoencoder(TINY)
    regressor = MaxRegressor.from_autoencoder(autoencoder)
    assert count_parameters(autoencoder) == 905_104
    assert count_parameters(regressor) == 795_777
    for (name, a), (_, b) in zip(autoencoder.encoder.state_dict().items(),
                                 regressor.encoder.state_dict().items()):
        assert torch.equal(a, b), name


# -- shapes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels,patch", [(2048, 16), (1024, 8), (4096, 32), (320, 16)])
def test_shapes_for_other_channel_counts_and_patch_sizes(channels, patch):
    config = TINY.replace(channels=channels, patch=patch)
    n = channels // patch
    x = torch.randn(3, channels)
    loss, pred, mask = MaxAutoencoder(config)(x, generator=0)
    assert loss.shape == () and torch.isfinite(loss)
    assert pred.shape == (3, n, patch)
    assert mask.shape == (3, n)
    assert MaxRegressor(config)(x).shape == (3,)


def test_sincos_positions_have_a_zero_cls_row_and_unit_rows():
    table = sincos_positions(128, 64)
    assert table.shape == (129, 64)
    assert torch.all(table[0] == 0)
    # sin^2 + cos^2 = 1 for each frequency, so every patch row has squared norm dim / 2
    assert torch.allclose(table[1:].pow(2).sum(1), torch.full((128,), 32.0), atol=1e-5)


# -- masking ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("ratio,hidden", [(0.5, 64), (0.75, 96), (0.3, 39)])
def test_mask_ratio_is_honoured_per_spectrum(ratio, hidden):
    keep, restore, mask = random_masking(5, 128, ratio, "cpu", torch.Generator().manual_seed(1))
    assert keep.shape == (5, 128 - hidden)
    assert mask.sum(1).tolist() == [hidden] * 5
    # the kept indices are exactly the unmasked patches
    for row in range(5):
        assert sorted(keep[row].tolist()) == torch.nonzero(mask[row] == 0).flatten().tolist()
    # restore is the inverse of the shuffle: every spectrum gets its own permutation
    assert not torch.equal(mask[0], mask[1])


def test_masking_is_reproducible_with_a_seed_or_generator():
    torch.manual_seed(0)
    model = MaxAutoencoder(TINY).eval()
    x = torch.randn(4, TINY.channels)
    loss1, pred1, mask1 = model(x, generator=7)
    loss2, pred2, mask2 = model(x, generator=torch.Generator().manual_seed(7))
    _, _, mask3 = model(x, generator=8)
    assert torch.equal(mask1, mask2) and torch.equal(pred1, pred2) and loss1 == loss2
    assert not torch.equal(mask1, mask3)


def test_loss_is_the_mse_over_masked_patches_only():
    torch.manual_seed(0)
    model = MaxAutoencoder(TINY)
    x = torch.randn(2, TINY.channels)
    loss, pred, mask = model(x, generator=3)
    target = x.reshape(2, -1, TINY.patch)
    hidden = mask.bool()
    by_hand = ((pred - target) ** 2)[hidden].mean()
    assert torch.allclose(loss, by_hand, rtol=1e-6)
    # predictions on visible patches do not enter the loss ...
    changed = torch.where(hidden[..., None], pred, pred + 100.0)
    assert torch.allclose(model.loss(x, changed, mask), loss)
    # ... predictions on hidden ones do
    assert model.loss(x, torch.where(hidden[..., None], pred + 1.0, pred), mask) > loss + 0.5


def test_regressor_uses_the_cls_token_and_no_masking():
    torch.manual_seed(0)
    model = MaxRegressor(TINY.replace(pool="cls")).eval()  # the published head; pool=mean: test_max_pool.py
    x = torch.randn(3, TINY.channels)
    with torch.no_grad():
        a, b = model(x), model(x)
    assert torch.equal(a, b)  # no random masking at inference
    with torch.no_grad():
        expected = model.head(model.encoder(x)[:, 0]).squeeze(-1)
    assert torch.allclose(a, expected)


# -- configuration ---------------------------------------------------------------------------------
def test_presets_follow_the_design():
    base, tiny = PRESETS["base"], PRESETS["tiny"]
    assert (base.width, base.depth, base.heads) == (768, 12, 12)
    assert (base.decoder_width, base.decoder_depth, base.decoder_heads) == (512, 8, 16)
    assert (tiny.width, tiny.depth, tiny.heads, tiny.patch) == (128, 4, 4, 16)
    assert (tiny.decoder_width, tiny.decoder_depth, tiny.decoder_heads) == (64, 2, 4)
    assert (base.lr, base.finetune_lr, base.weight_decay, base.clip) == (1e-4, 1e-5, 0.01, 0.5)
    assert base.betas == (0.9, 0.95) and base.batch == 256 and base.epochs == 100
    assert base.num_patches == 128 and base.mask_ratio == 0.5
    # tiny fine-tunes at 3e-4 from the mean patch token, chosen on validation for the README's commands
    # (docs/results.md, issue 16); base keeps the published recipe
    assert (tiny.finetune_lr, tiny.layer_decay, base.layer_decay) == (3e-4, 1.0, 1.0)
    assert (tiny.pool, base.pool) == ("mean", "cls")


def test_overrides_from_strings_take_the_field_type():
    config = TINY.with_overrides({"mask_ratio": "0.7", "epochs": "3", "amp": "false",
                                  "betas": "0.8,0.99", "transform": "log"})
    assert config.mask_ratio == 0.7 and config.epochs == 3 and config.amp is False
    assert config.betas == (0.8, 0.99) and config.transform == "log"
    assert TINY.mask_ratio == 0.5  # frozen: the preset is untouched


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as err:
        TINY.with_overrides({"mask_ration": "0.7"})
    assert "mask_ration" in str(err.value) and "mask_ratio" in str(err.value)
    with pytest.raises(ConfigError, match="unknown MAX preset"):
        MaxConfig.from_preset("huge")


@pytest.mark.parametrize("key,value,expected", [("epochs", "ten", "an integer"),
                                                ("epochs", "2.5", "an integer"),
                                                ("lr", "fast", "a number"),
                                                ("amp", "maybe", "true or false"),
                                                ("betas", "0.9", "two numbers")])
def test_bad_override_value_names_key_and_type(key, value, expected):
    with pytest.raises(ConfigError) as err:
        TINY.with_overrides({key: value})
    assert repr(key) in str(err.value) and expected in str(err.value)


@pytest.mark.parametrize("overrides,message", [({"channels": 2050}, "divisible by patch"),
                                               ({"heads": 3}, "divisible by heads"),
                                               ({"mask_ratio": 1.0}, "mask_ratio"),
                                               ({"mask_ratio": 0.0}, "mask_ratio"),
                                               ({"transform": "sqrt"}, "transform")])
def test_validation_rejects_configurations_that_cannot_run(overrides, message):
    with pytest.raises(ConfigError, match=message):
        TINY.replace(**overrides)


def test_json_and_yaml_round_trip(tmp_path):
    config = TINY.replace(mask_ratio=0.6, betas=(0.8, 0.9))
    assert MaxConfig.from_dict(json.loads(config.to_json())) == config
    path = tmp_path / "max.yaml"
    path.write_text("preset: tiny\nmask_ratio: 0.6\nbetas: [0.8, 0.9]\n")
    assert MaxConfig.from_yaml(path) == config
    path.write_text("preset: tiny\ndepht: 3\n")
    with pytest.raises(ConfigError, match=str(path)):
        MaxConfig.from_yaml(path)
    path.write_text("mask_ratio: [0.5\n")
    with pytest.raises(InputError) as err:
        MaxConfig.from_yaml(path)
    assert err.value.path == str(path)


# -- transforms ------------------------------------------------------------------------------------
def test_instance_norm_of_a_flat_spectrum_is_zeros_not_nan():
    flat = torch.full((2, 64), 37.0)
    out = Transform("instance")(flat)
    assert torch.isfinite(out).all() and torch.all(out == 0)
    assert np.all(Transform("instance")(np.zeros((1, 64))) == 0)


def test_instance_norm_z_scores_each_spectrum_and_matches_numpy():
    x = np.random.default_rng(0).poisson(200, (3, 128)).astype(np.float32)
    t = Transform("instance")
    out = t(torch.from_numpy(x))
    assert torch.allclose(out.mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(out.std(1, correction=0), torch.ones(3), atol=1e-4)
    assert np.allclose(t(x), out.numpy(), atol=1e-5)


def test_channel_zscore_divides_constant_channels_by_one(tmp_path):
    x = np.random.default_rng(0).normal(10, 3, (500, 8)).astype(np.float32)
    x[:, 2] = 0.0
    stats = channel_stats([x[:200], x[200:]])
    assert np.allclose(stats["mean"], x.mean(0), atol=1e-4)
    assert np.allclose(stats["std"], x.std(0), atol=1e-4)
    t = Transform("channel").fit_stats(stats)
    out = t(torch.from_numpy(x))
    assert torch.allclose(out[:, 2], torch.zeros(500))  # (0 - 0) / 1
    assert torch.allclose(out.mean(0)[[0, 1, 3]], torch.zeros(3), atol=1e-4)
    again = Transform.from_dict(json.loads(json.dumps(t.to_dict())))
    assert np.allclose(again(x), out.numpy(), atol=1e-6)
    with pytest.raises(ConfigError, match="fit"):
        Transform("channel")(x)
    with pytest.raises(ConfigError, match="channels"):
        t(np.zeros((1, 9)))


def test_torch_and_numpy_scalings_agree_for_every_kind():
    # one formula: the plugin's torch branch must give what the core (numpy) transform gives
    x = np.random.default_rng(1).poisson(80, (6, 32)).astype(np.float32)
    x[2] = 5.0  # a flat spectrum
    for kind in ("instance", "channel", "log", "clr", "none"):
        core = SpectrumTransform(kind).fit([x])
        plugin = Transform.from_dict(core.to_dict())
        assert np.allclose(plugin(torch.from_numpy(x)).numpy(), core(x), atol=1e-5), kind
        np.testing.assert_array_equal(plugin(x), core(x))


def test_transform_dicts_saved_before_the_merge_still_load():
    # run folders hold transform.json as the MAX plugin wrote it (with eps), and the loaders'
    # transform wrote no eps; both must load into the one implementation with their old values
    mean, std = [1.0, 2.0, 3.0], [0.5, 0.0, 2.0]
    max_saved = {"kind": "channel", "eps": 1e-6, "mean": mean, "std": std}
    loaders_saved = {"kind": "channel", "mean": mean, "std": [0.5, 1.0, 2.0]}
    x = np.array([[2.0, 2.0, 7.0]], dtype=np.float32)
    for saved in (max_saved, loaders_saved):
        for cls in (Transform, SpectrumTransform):
            t = cls.from_dict(saved)
            np.testing.assert_allclose(t(x), [[2.0, 0.0, 2.0]])
    old_instance = Transform.from_dict({"kind": "instance", "eps": 1e-3, "mean": None, "std": None})
    assert old_instance.eps == 1e-3 and old_instance.to_dict()["eps"] == 1e-3


def test_clr_transform_removes_what_scales_a_whole_spectrum():
    # pore water, the foil's water film and tube ageing multiply every line by one factor: clr
    # inputs of a spectrum and of its tenfold must agree where the counts are well above 1
    rng = np.random.default_rng(3)
    x = rng.uniform(200, 5000, (4, 64)).astype(np.float32)
    kept = x.copy()
    t = SpectrumTransform("clr")
    a, b = t(x), t(10 * x)
    np.testing.assert_allclose(a.mean(-1), 0.0, atol=1e-5)           # centred
    np.testing.assert_allclose(a, b, atol=5e-3)  # one offset, removed (log1p: within 1/200)
    np.testing.assert_allclose(a, np.log1p(x) - np.log1p(x).mean(-1, keepdims=True), atol=1e-5)
    out = np.empty_like(x)
    counts = x.astype(np.uint32)  # as the store holds them, scaled straight into a reader's buffer
    assert t(counts, out=out) is out
    np.testing.assert_allclose(out, t(counts), atol=1e-6)
    np.testing.assert_array_equal(x, kept)  # the caller's array is never scaled in place


def test_log_transform_is_log1p_of_counts():
    x = torch.tensor([[0.0, 1.0, np.e - 1, 1000.0]])
    assert torch.allclose(Transform("log")(x), torch.log1p(x))
    assert Transform.from_dict(Transform("log").to_dict()).kind == "log"
    with pytest.raises(ConfigError, match="transform"):
        Transform("sqrt")
