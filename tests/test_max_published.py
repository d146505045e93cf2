"""Importing the published MAX weights (MAE layout, ``--init FILE.pth`` or a Hugging Face cache).

The checkpoints are written here by an independent model in the published layout
(``tests/mae_reference.py``); the imported model must compute what that model computes.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from mae_reference import RefMAE  # noqa: E402
from xrfhub.errors import ConfigError  # noqa: E402
from xrfhub_max import published  # noqa: E402
from xrfhub_max.model import MaxAutoencoder, MaxRegressor  # noqa: E402
from xrfhub_max.plugin import MaxRunConfig, plugin  # noqa: E402

HEADS = {"heads": 4, "decoder_heads": 2}


def spectra(n=6, seed=0) -> np.ndarray:
    """Raw counts shaped like real 10 kV spectra: Poisson around the authors' channel means."""
    mean = pd.read_csv(published.STATS_CSV)["mean_counts"].to_numpy()
    return np.random.default_rng(seed).poisson(mean * np.random.default_rng(seed + 1).uniform(0.5, 1.5, (n, 1))
                                               ).astype(np.float32)


def authors_scaling(x: np.ndarray) -> torch.Tensor:
    """The authors' Normalize with their statistics, written here from the CSV (std 0 -> 1)."""
    table = pd.read_csv(published.STATS_CSV)
    std = np.where(table["std_counts"] > 0, table["std_counts"], 1.0)
    return torch.from_numpy(((x - table["mean_counts"].to_numpy()) / std).astype(np.float32))


@pytest.fixture
def finetuned(tmp_path):
    ref = RefMAE(regressor=True).randomise(1).eval()
    path = tmp_path / "xpt_finetuned_CaCO3.pth"
    torch.save(ref.state_dict(), path)
    return ref, path


@pytest.fixture
def pretrained(tmp_path):
    ref = RefMAE().randomise(2).eval()
    path = tmp_path / "mae_vit_pretrained.pth"
    torch.save({"model": ref.state_dict(), "epoch": 99}, path)  # MAE's training checkpoint wrapping
    return ref, path


def imported(path, kind):
    config = MaxRunConfig(**{**plugin.import_config(path), **HEADS})
    model = (MaxRegressor if kind == "regressor" else MaxAutoencoder)(config)
    state, source = published.read_state(path)
    record = published.load_into(model, state, source)
    return config, model.eval(), record


def test_the_shapes_give_the_architecture(finetuned, pretrained):
    config = plugin.import_config(finetuned[1])
    assert config == {"width": 32, "patch": 16, "channels": 2048, "depth": 2, "mlp_ratio": 4.0,
                      "transform": "channel", "head": "sigmoid100"}
    config = plugin.import_config(pretrained[1])
    assert config["decoder_width"] == 16 and config["decoder_depth"] == 1 and config["head"] == "linear"


def test_imported_regressor_predicts_what_the_published_model_predicts(finetuned, tmp_path):
    from xrfhub_max import checkpoint as ckpt
    from xrfhub_max import engine

    ref, path = finetuned
    config, model, record = imported(path, "regressor")
    assert record["mapped"] == len(model.state_dict()) and record["head"].startswith("published fc.0")
    x = spectra()
    with torch.no_grad():
        native = ref(authors_scaling(x)).numpy()
    transform = published.transform_for(config)
    ours = engine.predict(model, [x], transform, {"mean": 0.0, "std": 1.0})
    assert np.allclose(ours, native, atol=1e-4), (ours, native)
    assert native.std() > 0.1  # the test can fail: predictions differ between spectra
    # and the imported weights, saved and loaded natively as a run's checkpoint, predict the same
    ckpt.save_weights(model, tmp_path / "best.safetensors")
    again = MaxRegressor(config)
    ckpt.load_weights(again, tmp_path / "best.safetensors")
    assert np.allclose(engine.predict(again.eval(), [x], transform, {"mean": 0.0, "std": 1.0}), native, atol=1e-4)


def test_imported_autoencoder_reconstructs_as_the_published_one(pretrained):
    ref, path = pretrained
    config, model, record = imported(path, "autoencoder")
    assert record["mapped"] == len(model.state_dict()) and not record["ignored"]
    x = authors_scaling(spectra(4))
    shuffle = torch.rand(4, 128, generator=torch.Generator().manual_seed(0)).argsort(dim=1)
    with torch.no_grad():
        native = ref.reconstruct(x, shuffle)
        ours = model.decoder(model.encoder(x, shuffle[:, :64]), shuffle.argsort(dim=1))
    assert torch.allclose(ours, native, atol=1e-4)


def test_a_pretrained_checkpoint_gives_a_regressor_its_encoder(pretrained):
    _, path = pretrained
    _, model, record = imported(path, "regressor")
    assert "decoder_pred.weight" in record["ignored"] and record["fresh"] == ["head.bias", "head.weight"]
    assert record["head"].startswith("fresh")


def hf_cache(root, files: dict[str, bytes], repo="dispink/xpt", revision="0123456789abcdef0123456789abcdef01234567"):
    """A Hugging Face hub cache as huggingface_hub lays it out: blobs, a snapshot of links, refs/main."""
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(revision)
    for name, data in files.items():
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(exist_ok=True)
        blob.write_bytes(data)
        link = folder / "snapshots" / revision / name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    return folder


def test_a_hugging_face_cache_is_read_offline(finetuned, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, path = finetuned
    cache = tmp_path / "hf"
    repo = hf_cache(cache, {"model.pth": path.read_bytes(), "README.md": b"MAX"})
    for init in (cache, repo, repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"):
        found = published.weights_file(init)
        assert found.name == "model.pth" and found.read_bytes() == path.read_bytes()
    assert published.is_published(cache) and not published.is_published(tmp_path / "nowhere")
    hf_cache(cache, {"a.pth": b"1", "b.pth": b"2"}, repo="other/two")
    with pytest.raises(ConfigError, match="2 models"):
        published.weights_file(cache)
    with pytest.raises(ConfigError, match="expected one weights file .* found 2"):
        published.weights_file(cache / "models--other--two")


class Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_refusals_name_the_file_and_what_was_expected(finetuned, tmp_path, capsys):
    _, path = finetuned
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"patch_embed.proj.weight": Payload()}, protocol=2))
    with pytest.raises(ConfigError, match=r"evil\.pth: cannot read it as torch weights with weights_only=True"):
        published.read_state(evil)
    assert "pickled code ran" not in capsys.readouterr().out  # weights_only: nothing was executed
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(3)}, other)
    with pytest.raises(ConfigError, match=r"resnet\.pth: no 'patch_embed.proj.weight'"):
        published.read_state(other)
    state, source = published.read_state(path)
    wide = MaxRegressor(MaxRunConfig(**{**plugin.import_config(path), "width": 64, **HEADS}))
    with pytest.raises(ConfigError, match=r"patch_embed\.proj\.weight -> encoder\.patch_embed\.proj\.weight: "
                                          r"shape \(32, 1, 16\), ours \(64, 1, 16\)"):
        published.load_into(wide, state, source)
    shallow = MaxRegressor(MaxRunConfig(**{**plugin.import_config(path), "depth": 1, **HEADS}))
    with pytest.raises(ConfigError, match=r"blocks\.1\.norm1\.weight -> encoder\.blocks\.1\.norm1\.weight: our model has no"):
        published.load_into(shallow, state, source)
    linear = MaxRegressor(MaxRunConfig(**{**plugin.import_config(path), "head": "linear", **HEADS}))
    with pytest.raises(ConfigError, match="keep head=sigmoid100"):
        published.load_into(linear, state, source)
    state["pos_embed"] = state["pos_embed"] * 2
    with pytest.raises(ConfigError, match="pos_embed: not the fixed 1-D sin-cos table"):
        published.load_into(MaxRegressor(MaxRunConfig(**{**plugin.import_config(path), **HEADS})), state, source)
    two = tmp_path / "two_targets.pth"
    ref = RefMAE(regressor=True)
    ref.fc[0] = torch.nn.Linear(32, 2)
    torch.save(ref.state_dict(), two)
    state, source = published.read_state(two)
    with pytest.raises(ConfigError, match=r"fc\.0\.weight -> head\.weight: shape \(2, 32\), ours \(1, 32\)"):
        published.load_into(MaxRegressor(MaxRunConfig(**{**plugin.import_config(two), **HEADS})), state, source)


@pytest.mark.slow  # a store and two short trainings: ~1 min on a loaded 2-core machine
def test_train_from_the_published_weights_through_the_command(finetuned, pretrained, corpus, tmp_path):
    from click.testing import CliRunner

    import xrfhub
    from xrfhub_cli.main import cli

    store = tmp_path / "hub"
    xrfhub.ingest([corpus.scans, corpus.files["pangaea"]], store, progress=False)
    runner = CliRunner()
    out = tmp_path / "ft"
    result = runner.invoke(cli, ["train", "max", "--store", str(store), "--stage", "finetune", "--target", "CaCO3",
                                 "--init", str(finetuned[1]), "--epochs", "1", "--set", "heads=4",
                                 "--set", "batch=8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["width"] == 32 and config["head"] == "sigmoid100" and config["transform"] == "channel"
    transform = json.loads((out / "transform.json").read_text())
    authors = pd.read_csv(published.STATS_CSV)["mean_counts"].to_numpy()
    assert np.allclose(transform["mean"], authors)  # the authors' statistics travel with the model
    record = json.loads((out / "imported.json").read_text())
    assert record["file"] == str(finetuned[1]) and record["heads"] == [4, 16]
    assert json.loads((out / "run.json").read_text())["init"] == str(finetuned[1])
    assert runner.invoke(cli, ["predict", "--store", str(store), "--run", str(out)]).exit_code == 0
    assert np.isfinite(xrfhub.open(store, "predictions").sel(tube_kv=10)["CaCO3"].values).all()
    pre = tmp_path / "pre"
    result = runner.invoke(cli, ["train", "max", "--store", str(store), "--stage", "pretrain", "--init",
                                 str(pretrained[1]), "--epochs", "1", "--set", "heads=4", "--set", "decoder_heads=2",
                                 "--set", "batch=16", "--set", "warmup_epochs=0", "--out", str(pre)])
    assert result.exit_code == 0, result.output
    assert json.loads((pre / "imported.json").read_text())["mapped"] > 0
