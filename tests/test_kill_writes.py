"""SIGKILL anywhere in the append path and in a prediction run write: the store opens and holds the
old or the new state, nothing half (issue 13). Same machinery as tests/test_faults.py."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import xrfhub
import xrfhub.predictions
from xrfhub.store import layout
from xrfhub.store.generations import Store

from conftest import write_corpus
from kill_wrapper import APPEND_POINTS, RUN_POINTS
from test_faults import _batch, _same, _state

DRIVER = str(Path(__file__).with_name("run_write_driver.py"))


@pytest.fixture
def base(tmp_path):
    first = write_corpus(tmp_path / "first")
    store = tmp_path / "base"
    xrfhub.ingest([first.scans, first.files["pangaea"]], store)
    return store


def _kill(tmp_path, base, points, job) -> dict:
    jobs = []
    for i, point in enumerate(points):
        store = tmp_path / f"k{i:02d}"
        shutil.copytree(base, store)
        jobs.append({"point": point, **job(store), "log": str(tmp_path / f"k{i:02d}.log"),
                     "witness": str(tmp_path / f"k{i:02d}.witness")})
    status = _batch(tmp_path, jobs)
    for i, point in enumerate(points):
        assert status[i] == -9, f"{point}: not killed (exit {status[i]}): {Path(jobs[i]['log']).read_text()[-2000:]}"
        assert Path(jobs[i]["witness"]).exists(), point
    return {point: tmp_path / f"k{i:02d}" for i, point in enumerate(points)}, jobs


def test_killed_append_leaves_the_old_or_the_new_store(tmp_path, base):
    more = write_corpus(tmp_path / "more", cores=("GeoB1", "GeoB2"), seed=5, kv30_core=None)
    argv = ["ingest", str(more.scans), "--store"]
    done = tmp_path / "done"
    shutil.copytree(base, done)
    xrfhub.ingest([more.scans], done)
    before, after = _state(base), _state(done)
    stores, jobs = _kill(tmp_path, base, list(APPEND_POINTS), lambda s: {"argv": [*argv, str(s)]})
    for point, store in stores.items():
        seen = _state(store)
        want = before if APPEND_POINTS[point] == "before" else after
        assert _same(seen, want), f"kill at {point}: the reader does not see the {APPEND_POINTS[point]} state"
        assert xrfhub.validate(store, nxcheck=False).ok, point
    reruns = [{**job, "point": None, "log": job["log"] + ".rerun"} for job in jobs]
    status = _batch(tmp_path, reruns)
    for i, (point, store) in enumerate(stores.items()):
        assert status[i] == 0, Path(reruns[i]["log"]).read_text()[-2000:]
        assert _same(_state(store), after), point
        assert xrfhub.validate(store, nxcheck=False).ok


def test_killed_run_write_leaves_no_run_or_the_whole_run(tmp_path, base):
    n = xrfhub.open(base, index=False).sizes["spectrum"]
    values = tmp_path / "values.npy"
    np.save(values, np.linspace(10, 20, n))
    parent = Store(base).current().name
    stores, jobs = _kill(tmp_path, base, list(RUN_POINTS),
                         lambda s: {"script": DRIVER, "argv": [str(s), str(values), "run1"]})
    for point, store in stores.items():
        gen = Store(store).current()
        assert xrfhub.open(store, index=False).sizes["spectrum"] == n  # opens
        runs = [r["run"] for r in xrfhub.predictions.list_runs(store)] if "predictions" in xrfhub.api.manifest(store)["kinds"] \
            else []
        if RUN_POINTS[point] == "before":
            assert gen.name == parent and runs == [], point
        else:
            assert runs == ["run1"], point
            p = xrfhub.open(store, "predictions", run="run1", index=False)
            np.testing.assert_array_equal(p["CaCO3"].values, np.linspace(10, 20, n).astype(np.float32))
        assert xrfhub.validate(store, nxcheck=False).ok, point
    reruns = [{**job, "point": None, "log": job["log"] + ".rerun"} for job in jobs]
    status = _batch(tmp_path, reruns)
    for i, (point, store) in enumerate(stores.items()):
        if RUN_POINTS[point] == "after":
            continue  # the run is already there: the same id again is refused below
        assert status[i] == 0, Path(reruns[i]["log"]).read_text()[-2000:]
        p = xrfhub.open(store, "predictions", run="run1", index=False)
        np.testing.assert_array_equal(p["CaCO3_upper"].values, np.linspace(11, 21, n).astype(np.float32))
        assert (Store(store).current().path / layout.run_file("run1")).exists()
