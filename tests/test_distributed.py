"""A real dask.distributed Client, when a user gives one: ingest parses on its workers and the
loader reads blocks through it, with the same results as without it.

The cluster runs in this process (``processes=False``): a real scheduler and worker, without
the start-up cost of worker processes.
"""
from __future__ import annotations

import numpy as np
import pytest

import xrfhub
from xrfhub.ml.loaders import counts_array, select_rows, spectra_stream

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as c:
        yield c


def test_ingest_on_a_client_gives_the_same_store(corpus, tmp_path, client):
    here = xrfhub.ingest([corpus.root], tmp_path / "here")
    there = xrfhub.ingest([corpus.root], tmp_path / "there", client=client)
    assert there.n_spectra == here.n_spectra == corpus.n_spectra
    a, b = xrfhub.open(tmp_path / "here", index=False), xrfhub.open(tmp_path / "there", index=False)
    np.testing.assert_array_equal(a["counts"].values, b["counts"].values)
    assert list(a["core"].values) == list(b["core"].values)


def test_loader_reads_through_a_client_batch_for_batch(corpus, tmp_path, client):
    store = tmp_path / "hub"
    xrfhub.ingest([corpus.root], store)
    counts = xrfhub.open(store, index=False)["counts"].values
    rows = select_rows(xrfhub.open(store, index=False), tube_kv=None)
    for mode in ("stream", "memory"):
        ours = spectra_stream(store, tube_kv=None, batch_size=16, mode=mode, seed=3)
        theirs = spectra_stream(store, tube_kv=None, batch_size=16, mode=mode, seed=3, client=client)
        assert ours._chunk_reader() is not None and theirs._chunk_reader() is None
        got_ours, got_theirs = list(ours), list(theirs)
        assert len(got_ours) == len(got_theirs)
        for (x1, _, r1), (x2, _, r2) in zip(got_ours, got_theirs):
            np.testing.assert_array_equal(r1, r2)
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(x2, counts[r2].astype(np.float32))
        assert sorted(np.concatenate([r for _, _, r in got_theirs]).tolist()) == rows.tolist()
    assert counts_array(store).shape == counts.shape
