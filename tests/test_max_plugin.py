"""MAX through the plugin registry, on a real synthetic store: train, predict, saliency, errors."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import xrfhub
from xrfhub.ml import registry, training
from xrfhub.errors import ConfigError

pytest.importorskip("torch")

HOLDOUT = None


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from xrfhub.synth import generate_corpus

    root = tmp_path_factory.mktemp("maxstore")
    # four scanned cores: the fine-tune learns from two or three (with two, one core's matrix
    # decides what a new core looks like, and beating the mean on it is luck)
    truth = generate_corpus(root / "corpus", size={"n_cores": 4, "length_m": (1.2, 1.6), "lab_spacing_mm": 50.0,
                                                   "n_30kv": 1, "n_50kv": 0}, seed=3)
    xrfhub.ingest([root / "corpus" / "scans", *sorted((root / "corpus" / "lab").iterdir())], root / "hub")
    scanned = sorted(c for c, t in truth.cores.items() if t.has_scan)
    return root / "hub", scanned


FAST = {"batch": "64", "warmup_epochs": "1"}


@pytest.fixture(scope="module")
def pretrained(store, tmp_path_factory):
    hub, cores = store
    out = tmp_path_factory.mktemp("runs") / "pre"
    training.train("max", hub, stage="pretrain", out=out, config="tiny", sets=FAST, epochs=3,
                   holdout_cores=[cores[-1]], progress=False)
    return out


def test_pretraining_writes_a_complete_run_and_its_loss_falls(pretrained):
    for name in ("best.safetensors", "config.json", "metrics.jsonl", "loss.png", "reconstruction.png", "run.json"):
        assert (pretrained / name).is_file(), name
    losses = [json.loads(line)["train_loss"] for line in (pretrained / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert not list(pretrained.glob("*.pt")) and not list(pretrained.glob("*.pkl"))  # no pickle


def test_finetune_inherits_holdout_beats_the_mean_and_predicts_into_the_store(store, pretrained, tmp_path):
    hub, cores = store
    out = tmp_path / "ft"
    summary = training.train("max", hub, stage="finetune", out=out, target="CaCO3", init=pretrained, epochs=40,
                             sets={"batch": "16", "finetune_lr": "1e-3"}, progress=False)
    run = json.loads((out / "run.json").read_text())
    assert run["holdout_cores"] == [cores[-1]] and run["config"]["width"] == 128  # inherited
    held = summary.metrics["held_out"]
    assert held["n"] > 10 and set(held) >= {"r2", "r2_vs_training_mean", "rmse"}
    assert held["r2_vs_training_mean"] > 0  # beats predicting the training mean on unseen cores
    run_id = training.predict(hub, out)
    preds = xrfhub.open(hub, "predictions")
    spectra = xrfhub.open(hub, index=False)
    assert preds.sizes["spectrum"] == spectra.sizes["spectrum"]
    sel = preds.sel(core=cores[0], depth_mm=slice(0, 200))
    kv = sel["tube_kv"].values
    assert np.isfinite(sel["CaCO3"].values[kv == 10]).all() and np.isnan(sel["CaCO3"].values[kv != 10]).all()
    assert xrfhub.open(hub, "predictions", run=run_id).attrs["run"] == run_id
    assert xrfhub.validate(hub, nxcheck=False).ok
    result = training.saliency(hub, out, tmp_path / "sal.png")
    table = np.loadtxt(result["csv"], delimiter=",", skiprows=1)
    assert table.shape == (2048, 2) and result["png"].is_file()


def test_holdout_conflicting_with_init_is_refused(store, pretrained, tmp_path):
    hub, cores = store
    with pytest.raises(ConfigError, match="conflicts with the cores held out"):
        training.train("max", hub, stage="finetune", out=tmp_path / "x", target="CaCO3", init=pretrained,
                       holdout_cores=[cores[0]], progress=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"sets": {"widht": "3"}}, "unknown config key 'widht'.*keys: channels"),
    ({"sets": {"mask_ratio": "lots"}}, "mask_ratio.*expected float"),
    ({"config": "huge"}, "unknown preset 'huge'.*tiny"),
    ({"stage": "distill"}, "no stage 'distill'"),
])
def test_bad_configurations_are_refused(store, tmp_path, kwargs, message):
    hub, _ = store
    args = {"stage": "pretrain", "out": tmp_path / "bad", "progress": False, **kwargs}
    with pytest.raises(ConfigError, match=message):
        training.train("max", hub, **args)


def test_unknown_plugin_lists_the_installed_ones():
    with pytest.raises(ConfigError, match="unknown plugin 'maxx'.*max"):
        registry.load("maxx")


USER_PLUGIN = '''
"""A user's own model: ridge regression on the mean matched spectra."""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import xrfhub
from xrfhub.ml.loaders import labelled_samples, select_rows
from xrfhub.ml.registry import Predictions, RunSummary


@dataclass
class RidgeConfig:
    alpha: float = 1.0


class Ridge:
    name = "ridge"
    description = "ridge regression on normalised spectra"
    stages = ("train",)
    targets = ("*",)
    config = RidgeConfig
    presets = {}

    def train(self, store, *, stage, out, config, target=None, init=None, holdout_cores=(), progress=True):
        x, y, _, _ = labelled_samples(store, target, exclude_cores=holdout_cores)
        x = x / x.sum(1, keepdims=True)
        w = np.linalg.solve(x.T @ x + config.alpha * np.eye(x.shape[1]), x.T @ (y - y.mean()))
        Path(out).mkdir(parents=True, exist_ok=True)
        np.save(Path(out) / "w.npy", np.append(w, y.mean()))
        (Path(out) / "run.json").write_text(json.dumps({"plugin": "ridge", "stage": stage, "target": target}))
        return RunSummary(Path(out), "ridge", stage, target, {"n": int(len(y))})

    def predict(self, store, run_dir, *, progress=True):
        wb = np.load(Path(run_dir) / "w.npy")
        ds = xrfhub.open(store, index=False)
        counts = ds["counts"].values.astype(float)
        values = (counts / counts.sum(1, keepdims=True)) @ wb[:-1] + wb[-1]
        return Predictions(ds.attrs["group"], {"TOC": values.astype("float32")}, {"model": "ridge"})


ridge = Ridge()
'''


def test_a_users_plugin_file_trains_and_predicts_through_the_same_commands(store, tmp_path):
    from conftest import run_cli

    hub, _ = store
    path = tmp_path / "my_model.py"
    path.write_text(USER_PLUGIN)
    out = tmp_path / "ridge-run"
    run_cli("train", "ridge", "--plugin", path, "--store", hub, "--target", "TOC", "--out", out,
            "--set", "alpha=0.5")
    run_cli("predict", "--store", hub, "--run", out)
    preds = xrfhub.open(hub, "predictions")
    assert "TOC" in preds and np.isfinite(preds["TOC"].values).all()
    assert "ridge" in run_cli("runs", hub).stdout
    bad = run_cli("train", "ridgy", "--plugin", path, "--store", hub, "--out", out, check=False)
    assert bad.returncode == 2 and "defines no plugin named 'ridgy'" in bad.stderr and "ridge" in bad.stderr


def test_a_killed_pretraining_resumes(store, tmp_path):
    hub, _ = store
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "xrfhub_cli", "train", "max", "--store", str(hub), "--stage", "pretrain",
           "--config", "tiny", "--epochs", "6", "--set", "batch=64", "--set", "warmup_epochs=1", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not metrics.exists() or len(metrics.read_text().splitlines()) < 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(metrics.read_text().splitlines())
    assert 2 <= done < 6
    subprocess.run(cmd + ["--resume"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    epochs = [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()]
    assert epochs == [1, 2, 3, 4, 5, 6]
