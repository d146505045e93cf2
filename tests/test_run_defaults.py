"""Defaults that work: warm-up scaled to the epochs, refused core names and run folders, runs that
say when they have no test set, a baseline that shows progress and says when NMF did not converge."""
import json

import numpy as np
import pytest

import xrfhub
from xrfhub.ml import training
from xrfhub.errors import ConfigError

from test_intervals import LINEAR_PLUGIN


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from xrfhub.synth import generate_corpus

    root = tmp_path_factory.mktemp("defaults")
    generate_corpus(root / "corpus", size="tiny", seed=3)
    xrfhub.ingest([root / "corpus" / "scans", *sorted((root / "corpus" / "lab").iterdir())], root / "hub")
    cores = sorted(set(xrfhub.open(root / "hub", "spectra", index=False)["core"].values.astype(str)))
    (root / "lin.py").write_text(LINEAR_PLUGIN)
    return root / "hub", cores, str(root / "lin.py")


# ---------------------------------------------------------------------------- schedule


def test_warmup_never_takes_more_than_a_tenth_of_the_epochs():
    pytest.importorskip("torch")
    from xrfhub_max.config import PRESETS
    from xrfhub_max.engine import learning_rate, warmup_epochs

    tiny = PRESETS["tiny"]
    assert warmup_epochs(tiny.replace(epochs=100), "pretrain") == 10.0  # the published recipe, untouched
    assert warmup_epochs(tiny.replace(epochs=3), "pretrain") == pytest.approx(0.3)
    assert warmup_epochs(tiny.replace(epochs=3, warmup_epochs=0.1), "pretrain") == pytest.approx(0.1)
    assert warmup_epochs(tiny.replace(epochs=40, finetune_warmup=0.5), "finetune") == pytest.approx(4.0)
    # a 3-epoch run reaches its learning rate at 0.3 epochs and ends at min_lr
    assert learning_rate(0.3, 1e-4, 0.0, warmup_epochs(tiny.replace(epochs=3), "pretrain"), 3) == pytest.approx(1e-4)
    assert learning_rate(3.0, 1e-4, 0.0, 0.3, 3) == pytest.approx(0.0, abs=1e-12)


def test_a_three_epoch_pretraining_warms_up_then_decays(store, tmp_path):
    pytest.importorskip("torch")
    hub, cores, _ = store
    micro = {"width": "32", "depth": "1", "heads": "2", "decoder_width": "32", "decoder_depth": "1",
             "decoder_heads": "2", "batch": "64", "pretrain_spectra": "192"}
    training.train("max", hub, stage="pretrain", out=tmp_path / "pre", config="tiny", sets=micro, epochs=3,
                   holdout_cores=[cores[-1]], progress=False)
    rows = [json.loads(line) for line in (tmp_path / "pre" / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in rows]
    # the lr of each epoch's last step: past the peak after epoch 1 (warm-up 0.3 epochs), then decaying
    assert len(lrs) == 3 and 5e-5 < lrs[0] < 1e-4 and lrs[0] > lrs[1] > lrs[2]


# ---------------------------------------------------------------------------- refusals


def test_unknown_holdout_core_is_refused_with_the_known_cores_and_nothing_is_written(store, tmp_path):
    from conftest import run_cli

    hub, cores, plugin = store
    typo = cores[0][:-1] + ("9" if cores[0][-1] != "9" else "8")
    out = tmp_path / "run"
    bad = run_cli("train", "lin", "--plugin", plugin, "--store", hub, "--target", "CaCO3", "--out", out,
                  "--holdout-cores", typo, check=False)
    assert bad.returncode != 0 and f"--holdout-cores: {typo} (did you mean {cores[0]}" in bad.stderr
    assert all(c in bad.stderr for c in cores) and not out.exists()
    with pytest.raises(ConfigError, match="NOPE-1 not in the store"):
        training.train("lin", hub, stage="train", out=out, plugin_from=plugin, target="CaCO3",
                       holdout_cores=["NOPE-1"], progress=False)
    assert not out.exists()


def test_a_run_without_held_out_cores_says_it_has_no_test_set(store, tmp_path):
    from conftest import run_cli

    hub, _, plugin = store
    result = run_cli("train", "lin", "--plugin", plugin, "--store", hub, "--target", "CaCO3", "--out", tmp_path / "r")
    assert "warning: no held-out cores" in result.stderr
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert any("no held-out cores" in w for w in run["warnings"])
    assert any("no held-out cores" in w for w in run["metrics"]["warnings"])


def test_an_existing_run_folder_is_refused_unless_resume_or_overwrite(store, tmp_path):
    from conftest import run_cli

    hub, cores, plugin = store
    out = tmp_path / "r"
    args = ("train", "lin", "--plugin", plugin, "--store", hub, "--target", "CaCO3", "--out", out,
            "--holdout-cores", cores[-1])
    run_cli(*args)
    before = (out / "lin.npz").read_bytes()
    again = run_cli(*args, "--set", "alpha=5", check=False)
    assert again.returncode != 0 and "already exists and is not empty" in again.stderr and "--overwrite" in again.stderr
    assert (out / "lin.npz").read_bytes() == before  # untouched
    run_cli(*args, "--set", "alpha=5", "--overwrite")
    assert (out / "lin.npz").read_bytes() != before
    # --overwrite never deletes a folder that is not a training run
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.txt").write_text("keep me")
    bad = run_cli("train", "lin", "--plugin", plugin, "--store", hub, "--target", "CaCO3", "--out", other,
                  "--overwrite", check=False)
    assert bad.returncode != 0 and "holds no run" in bad.stderr and (other / "thesis.txt").read_text() == "keep me"


def test_a_refused_target_leaves_no_folder(store, tmp_path):
    from conftest import run_cli

    hub, cores, _ = store
    out = tmp_path / "bl"
    bad = run_cli("train", "baseline", "--store", hub, "--out", out, "--holdout-cores", cores[-1], check=False)
    assert bad.returncode != 0 and "needs --target" in bad.stderr and not out.exists()
    bad = run_cli("train", "baseline", "--store", hub, "--out", out, "--target", "Nope", check=False)
    assert bad.returncode != 0 and "no lab property 'Nope'" in bad.stderr and not out.exists()


def test_the_baseline_shows_progress_and_warns_when_nmf_does_not_converge(store, tmp_path):
    from conftest import run_cli

    hub, cores, _ = store
    result = run_cli("train", "baseline", "--store", hub, "--target", "CaCO3", "--out", tmp_path / "bl",
                     "--holdout-cores", cores[-1], "--set", "max_iter=3")
    assert "baseline" in result.stderr and "stage" in result.stderr  # the tqdm bar
    assert "warning: NMF did not converge in 3 iterations" in result.stderr
    run = json.loads((tmp_path / "bl" / "run.json").read_text())
    assert run["metrics"]["model"]["nmf_converged"] is False and any("NMF" in w for w in run["warnings"])
    # after the metrics, the lines a person reads: the test set's scores and the picture
    held = run["metrics"]["held_out"]
    assert f"held-out CaCO3: R2 {held['r2']:.3f}, RMSE {held['rmse']:.3g} over {held['n']} pairs" in result.stdout
    assert f"picture: {tmp_path / 'bl' / 'fit.png'}" in result.stdout and (tmp_path / "bl" / "fit.png").is_file()
    with pytest.warns(RuntimeWarning, match="NMF did not converge"):
        training.train("baseline", hub, stage="train", out=tmp_path / "bl2", target="CaCO3",
                       holdout_cores=[cores[-1]], sets={"max_iter": "3"}, progress=False)
    assert np.isfinite(run["metrics"]["validation"]["rmse"])
