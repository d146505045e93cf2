"""``--holdout-cores auto`` and the extrapolation warning, on a real ingested store.

Five cores with lab values; one of them (the carbonate ooze) reaches far above the others. A seeded
draw of test cores must never take it (every model would extrapolate there), must be the same for
one seed whatever the plugin or stage, and a run that names it as its test core must say that its
scores measure extrapolation.
"""
import json

import numpy as np
import pytest

import xrfhub
from conftest import run_cli, write_corpus
from test_intervals import LINEAR_PLUGIN
from xrfhub.errors import ConfigError
from xrfhub.ml import training

CORES = ("PS75-056-1", "SO264-09-2", "PS75-057-1", "SO264-10-2", "PS75-058-1")
OOZE = "SO264-10-2"


def _lift(table, event: str, by: float) -> str:
    """The PANGAEA table with ``by`` added to one event's CaCO3 column."""
    lines = []
    for line in table.splitlines():
        cells = line.split("\t")
        if cells[0] == event and len(cells) == 4:
            cells[2] = f"{float(cells[2]) + by:.2f}"
        lines.append("\t".join(cells))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("holdout-auto")
    corpus = write_corpus(root / "corpus", cores=CORES, kv30_core=None)
    table = corpus.files["pangaea"]
    table.write_text(_lift(table.read_text(), OOZE.replace("-", "/", 1), 55.0))
    xrfhub.ingest([corpus.scans, table], root / "hub", progress=False)
    (root / "lin.py").write_text(LINEAR_PLUGIN)
    return root / "hub", str(root / "lin.py")


def test_the_draw_is_seeded_and_never_takes_the_core_that_spans_the_range(store):
    hub, _ = store
    draws = {seed: training.draw_holdout_cores(hub, seed) for seed in range(30)}
    assert all(len(d) == 1 and d[0] in CORES for d in draws.values())  # a fifth of five cores
    assert not any(OOZE in d for d in draws.values())
    assert len({d for d in draws.values()}) >= 3  # the seed moves it among the others
    assert training.draw_holdout_cores(hub, 7) == draws[7]


def test_auto_holds_out_the_drawn_cores_says_which_and_a_child_run_inherits_them(store, tmp_path):
    hub, plugin = store
    out = tmp_path / "first"
    shown = run_cli("train", "lin", "--plugin", plugin, "--store", hub, "--target", "CaCO3",
                    "--holdout-cores", "auto", "--set", "seed=3", "--out", out)
    drawn = training.draw_holdout_cores(hub, 3)
    assert f"held out (the test set): {', '.join(drawn)}" in shown.stdout
    assert json.loads((out / "run.json").read_text())["holdout_cores"] == list(drawn)
    child = training.train("lin", hub, stage="train", out=tmp_path / "child", plugin_from=plugin, target="CaCO3",
                           init=out, holdout_cores=["auto"], progress=False)
    assert child.holdout_cores == drawn


def test_a_test_core_beyond_the_training_range_is_named_as_extrapolation(store, tmp_path):
    hub, plugin = store
    s = training.train("lin", hub, stage="train", out=tmp_path / "ooze", plugin_from=plugin, target="CaCO3",
                       holdout_cores=[OOZE], progress=False)
    far = [w for w in s.warnings if "extrapolation" in w]
    assert len(far) == 1 and OOZE in far[0] and "outside the range the training cores span" in far[0]
    reach = json.loads((tmp_path / "ooze" / "run.json").read_text())["held_out_range"]
    lo, hi = reach["training_range"]
    assert reach["cores"][OOZE]["outside"] == reach["cores"][OOZE]["n"] > 0 and reach["cores"][OOZE]["min"] > hi
    inside = training.train("lin", hub, stage="train", out=tmp_path / "inside", plugin_from=plugin,
                            target="CaCO3", holdout_cores=[CORES[0]], progress=False)
    assert not any("extrapolation" in w for w in inside.warnings)


def test_auto_needs_three_labelled_cores(corpus, tmp_path):
    hub = tmp_path / "hub"
    xrfhub.ingest([corpus.scans, corpus.files["pangaea"]], hub, progress=False)  # two labelled cores
    (tmp_path / "lin.py").write_text(LINEAR_PLUGIN)
    with pytest.raises(ConfigError, match="needs at least 3 cores with lab values .* has 2"):
        training.train("lin", hub, stage="train", out=tmp_path / "run", plugin_from=str(tmp_path / "lin.py"),
                       target="CaCO3", holdout_cores=["auto"], progress=False)
    assert not (tmp_path / "run").exists()


def test_predict_counts_and_records_the_predictions_beyond_the_training_values(store, tmp_path):
    hub, plugin = store
    run = tmp_path / "ooze"
    training.train("lin", hub, stage="train", out=run, plugin_from=plugin, target="CaCO3", holdout_cores=[OOZE],
                   progress=False)
    lo, hi = json.loads((run / "run.json").read_text())["training_range"]["CaCO3"]
    shown = run_cli("predict", "--store", hub, "--run", run)
    preds = xrfhub.open(hub, "predictions")
    reach = json.loads(preds.attrs["provenance"])["training_range"]["CaCO3"]
    v = preds["CaCO3"].values
    v = v[np.isfinite(v)]
    assert reach == {"range": [lo, hi], "n": int(v.size), "beyond": int(((v < lo) | (v > hi)).sum())}
    assert reach["beyond"] > 0  # the ooze core's spectra lie far above every training core
    assert f"{reach['beyond']} of {reach['n']} CaCO3 predictions lie beyond" in shown.stderr
