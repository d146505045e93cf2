"""`xrfhub predict --scheduler`: the model runs on a dask.distributed cluster's workers, this
process writes the one run, and the run equals the one-process run value for value.

The cluster runs in this process (``processes=False``, as the ingest test's): a real scheduler,
workers and the real transfers of the pickled model (cloudpickle bytes, scattered), without the
start-up cost of worker processes.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import xrfhub
from xrfhub.ml import training
from xrfhub.ml.cluster import block_plan, connect
from xrfhub.errors import ConfigError
from xrfhub.predictions import list_runs

from conftest import run_cli

distributed = pytest.importorskip("distributed")
pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from xrfhub.synth import generate_corpus

    root = tmp_path_factory.mktemp("clusterstore")
    truth = generate_corpus(root / "corpus", size="tiny", seed=5)
    xrfhub.ingest([root / "corpus" / "scans", *sorted((root / "corpus" / "lab").iterdir())], root / "hub")
    scanned = sorted(c for c, t in truth.cores.items() if t.has_scan)
    return root / "hub", scanned


@pytest.fixture(scope="module")
def baseline_run(store, tmp_path_factory):
    hub, cores = store
    out = tmp_path_factory.mktemp("clusterruns") / "baseline"
    # small batches: many blocks, and an NMF solved per batch shows any batch that differs
    training.train("baseline", hub, stage="train", out=out, target="CaCO3", config="published",
                   sets={"batch": "32"}, holdout_cores=[cores[-1]], progress=False)
    return out


@pytest.fixture(scope="module")
def client():
    with distributed.Client(processes=False, n_workers=2, threads_per_worker=2, dashboard_address=None) as c:
        yield c


def _values(hub, run_id, target="CaCO3"):
    return xrfhub.open(hub, "predictions", run=run_id)[target].values


def test_blocks_hold_whole_batches_and_every_row_once():
    rows = np.arange(1000) * 3
    blocks = block_plan(rows, 32, slots=4)
    assert len(blocks) > 1 and all(len(b) % 32 == 0 for b in blocks[:-1])
    np.testing.assert_array_equal(np.concatenate(blocks), rows)


def test_baseline_on_a_cluster_writes_the_same_run_value_for_value(store, baseline_run, client):
    hub, _ = store
    here = training.predict(hub, baseline_run, progress=False)
    there = training.predict(hub, baseline_run, progress=False, client=client)
    assert here != there
    a, b = _values(hub, here), _values(hub, there)
    assert np.isfinite(a).sum() > 100  # the 10 kV spectra were predicted
    np.testing.assert_array_equal(a, b)  # NaN where not predicted, in both
    runs = {r["run"]: r for r in list_runs(hub)}
    assert set(runs) == {here, there}
    computed = json.loads(xrfhub.open(hub, "predictions", run=there).attrs["provenance"])["computed_on"]
    assert computed["blocks"] > 1 and computed["dask_workers"] >= 1
    assert "computed_on" not in json.loads(xrfhub.open(hub, "predictions", run=here).attrs["provenance"])


def test_a_local_cluster_object_is_accepted(store, baseline_run):
    hub, _ = store
    here = training.predict(hub, baseline_run, progress=False)
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=3,
                                  dashboard_address=":0") as cluster:
        there = training.predict(hub, baseline_run, progress=False, client=cluster)
    np.testing.assert_array_equal(_values(hub, here), _values(hub, there))


def test_tiny_max_on_a_cluster_writes_the_same_run(store, client, tmp_path):
    pytest.importorskip("torch")
    hub, cores = store
    out = tmp_path / "max"
    training.train("max", hub, stage="finetune", out=out, target="CaCO3", config="tiny", epochs=1,
                   sets={"batch": "16", "width": "32", "depth": "1", "heads": "2"},
                   holdout_cores=[cores[-1]], progress=False)
    here = training.predict(hub, out, progress=False)
    there = training.predict(hub, out, progress=False, client=client)
    a, b = _values(hub, here), _values(hub, there)
    assert np.isfinite(a).sum() > 100
    np.testing.assert_array_equal(a, b)


def test_an_unreachable_scheduler_is_refused_and_nothing_is_written(store, baseline_run):
    hub, _ = store
    before = [r["run"] for r in list_runs(hub)]
    result = run_cli("predict", "--store", hub, "--run", baseline_run, "--scheduler", "tcp://127.0.0.1:9",
                     check=False, env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert result.returncode == 2, result.stderr
    assert "--scheduler tcp://127.0.0.1:9: cannot reach a dask scheduler there" in result.stderr
    assert "Traceback" not in result.stderr
    assert [r["run"] for r in list_runs(hub)] == before
    with pytest.raises(ConfigError, match="expected a dask scheduler address"):
        connect(42)


@pytest.mark.slow
def test_worker_processes_give_the_same_runs(store, baseline_run, tmp_path):
    """Workers in their own processes: the model really travels as bytes to another interpreter
    (the baseline's scikit-learn model and a torch MAX), and the store is read there."""
    pytest.importorskip("torch")
    hub, cores = store
    out = tmp_path / "max"
    training.train("max", hub, stage="finetune", out=out, target="CaCO3", config="tiny", epochs=1,
                   sets={"batch": "16", "width": "32", "depth": "1", "heads": "2"},
                   holdout_cores=[cores[-1]], progress=False)
    here = [training.predict(hub, run, progress=False) for run in (baseline_run, out)]
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                  dashboard_address=":0") as cluster:
        there = [training.predict(hub, run, progress=False, client=cluster.scheduler_address)
                 for run in (baseline_run, out)]
    for a, b in zip(here, there):
        np.testing.assert_array_equal(_values(hub, a), _values(hub, b))
    assert json.loads(xrfhub.open(hub, "predictions", run=there[0]).attrs["provenance"])["computed_on"][
        "dask_workers"] >= 1
