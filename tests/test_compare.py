"""`xrfhub compare`: two prediction runs of a store, core by core (xrfhub.compare)."""
import numpy as np
import pandas as pd
import pytest

import xrfhub
from conftest import run_cli, write_corpus
from xrfhub.compare import compare_runs
from xrfhub.errors import ConfigError
from xrfhub.ml import training

CORES = ("PS75-056-1", "SO264-09-2", "PS97-065-2", "M77-117-1")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A four-core store predicted by two log-ratio calibrations (one ratio, and every ratio), each
    with its 0.9 cross-conformal interval; the last core held out of both."""
    root = tmp_path_factory.mktemp("compare")
    corpus = write_corpus(root / "corpus", cores=CORES, kv30_core=None)
    xrfhub.ingest([corpus.scans, corpus.lab], root / "hub", progress=False)
    ids = []
    for form in ("alr", "mlc"):
        training.train("logratio", root / "hub", stage="train", out=root / form, target="CaCO3",
                       holdout_cores=[CORES[-1]], sets={"form": form}, progress=False,
                       interval_method="cross-conformal-cores")
        ids.append(training.predict(root / "hub", root / form, progress=False, interval=0.9))
    return root / "hub", ids


def test_each_core_is_compared_on_the_spectra_both_runs_predicted(two_runs, tmp_path):
    hub, (a, b) = two_runs
    table = compare_runs(hub, a, b)
    assert {k: table.attrs[k] for k in ("run_a", "run_b", "target")} == {"run_a": a, "run_b": b, "target": "CaCO3"}
    assert sorted(table["core"]) == sorted(CORES)
    diffs = table["median_difference"].abs().to_numpy()
    assert np.all(diffs[:-1] >= diffs[1:])  # the largest disagreement first
    # one core by hand, from the store as a user reads it
    ra = xrfhub.open(hub, "predictions", run=a, index=False)
    rb = xrfhub.open(hub, "predictions", run=b, index=False)
    core = ra["core"].values.astype(str) == CORES[0]
    va, vb = ra["CaCO3"].values[core], rb["CaCO3"].values[core]
    row = table.set_index("core").loc[CORES[0]]
    assert row["n_spectra"] == np.isfinite(va).sum() == 20
    assert row["median_difference"] == pytest.approx(np.median(va - vb))
    assert row["median_a"] == pytest.approx(np.median(va)) and row["median_b"] == pytest.approx(np.median(vb))
    apart = (ra["CaCO3_lower"].values[core] > rb["CaCO3_upper"].values[core]) | \
        (rb["CaCO3_lower"].values[core] > ra["CaCO3_upper"].values[core])
    assert row["intervals_apart"] == pytest.approx(apart.mean())
    assert set(table["lab_samples"]) == {5}  # write_corpus: five lab depths per core
    # each run's training-side figure, read from its run folder, to choose between them on
    import json

    figures = [json.loads((hub.parent / form / "run.json").read_text())["metrics"]["interpolation_r2"]
               for form in ("alr", "mlc")]
    assert [table.attrs["interpolation_r2_a"], table.attrs["interpolation_r2_b"]] == figures
    # the command prints the same table and draws it; training run folders name their latest predictions
    out = run_cli("compare", hub, hub.parent / "alr", hub.parent / "mlc", "--png", tmp_path / "cmp.png",
                  "--csv", tmp_path / "cmp.csv")
    assert f"CaCO3, A = {a}, B = {b}" in out.stdout and out.stdout.count("\n") == 2 + len(CORES) + 3
    assert f"inside their fold model's range: A {figures[0]:.3f}, B {figures[1]:.3f}" in out.stdout
    assert (tmp_path / "cmp.png").stat().st_size > 5000
    saved = pd.read_csv(tmp_path / "cmp.csv")
    assert list(saved["core"]) == list(table["core"])


def test_comparisons_that_mean_nothing_are_refused(two_runs):
    hub, (a, b) = two_runs
    training.train("logratio", hub, stage="train", out=hub.parent / "unpredicted", target="CaCO3",
                   holdout_cores=[CORES[-1]], progress=False)
    with pytest.raises(ConfigError, match="not .* with itself"):
        compare_runs(hub, a, a)
    with pytest.raises(ConfigError, match="--target TOC: runs .* both predict CaCO3"):
        compare_runs(hub, a, b, target="TOC")
    with pytest.raises(xrfhub.errors.StoreError, match="no prediction run 'nope'; runs: "):
        compare_runs(hub, a, "nope")
    with pytest.raises(ConfigError, match="holds no predictions of the run in .*: `xrfhub predict --run"):
        compare_runs(hub, a, hub.parent / "unpredicted")
    refused = run_cli("compare", hub, a, "nope", check=False)
    assert refused.returncode != 0 and f"no prediction run 'nope'; runs: " in refused.stderr
