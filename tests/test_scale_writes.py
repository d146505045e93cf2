"""Writes cost the change (issue 13): appends and prediction runs touch only what they change.

Chunk sizes are made small here (16 spectra per counts chunk, 32 rows per coordinate chunk) so
a few dozen spectra span several chunks, as a million do with the real sizes.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

import xrfhub
from xrfhub import build, kinds, predictions
from xrfhub.store import layout, nexus
from xrfhub.store.generations import Store

from conftest import write_corpus


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(layout, "SPECTRA_CHUNK_ROWS", 16)
    monkeypatch.setattr(layout, "COORD_CHUNK_ROWS", 32)


def _hub_files(gen_path: Path) -> dict[str, bytes]:
    hub = gen_path / layout.HUB
    return {str(p.relative_to(hub)): p.read_bytes() for p in sorted(hub.rglob("*")) if p.is_file()}


def _under(gen, run) -> set[str]:
    root = gen.path / layout.HUB
    return {str(p.relative_to(root)) for p in (root / "predictions" / run).rglob("*") if p.is_file()}


def _same_hub(a: Path, b: Path) -> None:
    fa, fb = _hub_files(a), _hub_files(b)
    assert sorted(fa) == sorted(fb)
    differ = [k for k in fa if fa[k] != fb[k]]
    assert not differ, differ


def _rebuild_matches(store: Path) -> None:
    """``xrfhub rebuild`` (everything afresh from the NeXus files) gives the same hub bytes."""
    before = Store(store).current()
    after = xrfhub.rebuild(store)
    _same_hub(before.path, after.path)


@pytest.fixture
def grown(tmp_path, small_chunks):
    first = write_corpus(tmp_path / "first", n_channels=64)
    more = write_corpus(tmp_path / "more", cores=("GeoB1", "GeoB2"), seed=5, kv30_core=None, n_channels=64)
    store = tmp_path / "hub"
    xrfhub.ingest([first.scans, first.files["pangaea"]], store)
    return store, more


def test_append_reads_no_core_file_back_links_old_chunks_and_equals_a_rebuild(grown, monkeypatch):
    store, more = grown
    parent = Store(store).current()
    reads = []
    original = nexus.read_core
    monkeypatch.setattr(nexus, "read_core", lambda path, *a: reads.append((Path(path).name, __import__("traceback").format_stack()[-4:-1])) or original(path, *a))
    lab = more.files["pangaea"].rename(more.lab / "more-cores.tab")
    xrfhub.ingest([more.scans, lab], store)
    # only the lab-only core that gains a sample is read back; no core with scans
    assert [r[0] for r in reads] == ["PS75_999-9.nxs"], reads
    gen = Store(store).current()
    # the parent's core files and every counts chunk before the change are the same inodes
    for f in (parent.path / layout.NEXUS_DIR).iterdir():
        if f.name != "PS75_999-9.nxs":
            assert (gen.path / layout.NEXUS_DIR / f.name).stat().st_ino == f.stat().st_ino
    old_n = xrfhub.open(store, index=False)  # new generation
    chunks = sorted((parent.hub_path / "spectra/ch64/counts/c").rglob("*"))
    chunks = [c for c in chunks if c.is_file()]
    n_parent = 60 // 16  # full chunks of the parent's 60 spectra: kept as they were
    assert len(chunks) == 4
    for c in chunks[:n_parent]:
        rel = c.relative_to(parent.hub_path)
        assert (gen.hub_path / rel).stat().st_ino == c.stat().st_ino, rel
    assert (gen.hub_path / chunks[n_parent].relative_to(parent.hub_path)).stat().st_ino != chunks[n_parent].stat().st_ino
    # the new cores come after the old ones (hub order: generation first stored, then id)
    cores = list(dict.fromkeys(old_n["core"].values.tolist()))
    assert cores == ["PS75-056-1", "SO264-09-2", "GeoB1", "GeoB2"]
    assert xrfhub.validate(store, nxcheck=False).ok
    # the index grew by the change: two new core files, one new source bucket per new folder
    assert len(list((gen.path / layout.INDEX_DIR / "cores").iterdir())) == 5  # + the lab-only core
    _rebuild_matches(store)


def test_changed_core_rewrites_from_its_rows_and_equals_a_rebuild(tmp_path, small_chunks):
    first = write_corpus(tmp_path / "first", n_channels=64)
    more = write_corpus(tmp_path / "more", cores=("GeoB1",), seed=5, kv30_core=None, n_channels=64)
    store = tmp_path / "hub"
    ps75 = first.scans / "PS75-056-1"
    xrfhub.ingest([ps75 / "Run 1 at  10kV", first.scans / "SO264-09-2", first.files["pangaea"]], store)
    xrfhub.ingest([more.scans], store)
    before = xrfhub.open(store, index=False)
    # the first core in the hub order gains a 30 kV run: its rows and every row after it move
    report = xrfhub.ingest([ps75 / "Run 2 at  30kV"], store)
    assert report.cores == ["PS75-056-1"]
    after = xrfhub.open(store, index=False)
    assert after.sizes["spectrum"] == before.sizes["spectrum"] + 20
    assert list(dict.fromkeys(after["core"].values.tolist())) == ["PS75-056-1", "SO264-09-2", "GeoB1"]
    samples = xrfhub.open(store, "samples", index=False)
    matched = samples["matched_spectrum"].values
    core_of = after["core"].values
    for i, c in enumerate(samples["core"].values):  # shifted matches still point at the sample's core
        assert all(core_of[j] == c for j in matched[i] if j >= 0)
    assert xrfhub.validate(store, nxcheck=False).ok
    _rebuild_matches(store)


def test_prediction_run_is_one_file_and_one_group(grown):
    store, more = grown
    parent = Store(store).current()
    ds = xrfhub.open(store, index=False)
    n = ds.sizes["spectrum"]
    values = {"CaCO3": np.linspace(1, 2, n)}
    values["CaCO3"][3] = np.nan  # not predicted
    extra = {"CaCO3_lower": values["CaCO3"] - 0.1, "CaCO3_upper": values["CaCO3"] + 0.1}
    run = predictions.write_run(store, values, group="spectra/ch64", plugin="test", provenance={"model": "m"},
                                extra=extra)
    gen = Store(store).current()
    # no archival file rewritten; every group but the run's is the parent's, file for file
    for f in (parent.path / layout.NEXUS_DIR).iterdir():
        assert (gen.path / layout.NEXUS_DIR / f.name).stat().st_ino == f.stat().st_ino
    kept = set(_hub_files(parent.path))
    assert set(_hub_files(gen.path)) - kept <= {f"predictions/{run}/{k}" for k in
                                               []} | {"predictions/zarr.json"} | _under(gen, run)
    assert {k.split("/")[0] for k in set(_hub_files(gen.path)) - kept} == {"predictions"}
    for k in kept:
        if k != "zarr.json":
            assert (gen.hub_path / k).stat().st_ino == (parent.hub_path / k).stat().st_ino, k
    with h5py.File(gen.path / layout.run_file(run)) as f:
        assert f["entry/process"].attrs["NX_class"] == "NXprocess"
        assert json.loads(f["entry/process/parameters"][()])["model"] == "m"
        assert len(f["entry/values/core"]) == n - 1  # keyed values of the predicted spectra only
        assert set(f["entry/process/inputs/core"].asstr()[:]) == set(ds["core"].values.tolist())
    p = xrfhub.open(store, "predictions", run=run, index=False)
    np.testing.assert_array_equal(p["CaCO3"].values, values["CaCO3"].astype(np.float32))
    # the run's key coordinates are the spectra group's own files (hard links): it costs its values
    assert {"core", "depth_mm", "scan", "tube_kv"} <= set(p.coords)
    np.testing.assert_array_equal(p["depth_mm"].values, ds["depth_mm"].values)
    for f in (gen.hub_path / "spectra/ch64/depth_mm").rglob("*"):
        if f.is_file():
            twin = gen.hub_path / f"predictions/{run}/depth_mm" / f.relative_to(gen.hub_path / "spectra/ch64/depth_mm")
            assert twin.stat().st_ino == f.stat().st_ino
    assert xrfhub.open(store, "predictions", run=run).sel(core="SO264-09-2")["CaCO3"].size > 0
    np.testing.assert_array_equal(p["CaCO3_upper"].values, np.where(np.isnan(values["CaCO3"]), np.nan,
                                                                     extra["CaCO3_upper"]).astype(np.float32))
    # the store grows: the run's group grows with it (NaN for the new spectra), equal to a rebuild
    xrfhub.ingest([more.scans], store)
    p = xrfhub.open(store, "predictions", run=run, index=False)
    assert p.sizes["spectrum"] == xrfhub.open(store, index=False).sizes["spectrum"]
    assert np.isnan(p["CaCO3"].values[n:]).all()
    assert xrfhub.validate(store, nxcheck=False).ok
    _rebuild_matches(store)


def test_old_store_opens_and_rebuild_moves_runs_into_run_files(grown):
    """A store as xrfhub wrote it before: one manifest listing everything, runs in the core files."""
    store, _ = grown
    gen = Store(store).current()
    ds = xrfhub.open(store, index=False)
    manifest = xrfhub.api.manifest(store)
    manifest.pop("index")
    manifest.pop("runs", None)
    shutil.rmtree(gen.path / layout.INDEX_DIR)
    (gen.path / layout.MANIFEST).write_text(json.dumps(manifest))
    core = "SO264-09-2"
    path = gen.path / manifest["cores"][core]["file"]
    rec = kinds.read_core(path)
    rows = np.flatnonzero(ds["core"].values == core)
    from xrfhub.records import Process

    rec.processes.append(Process("prediction_old-run", "baseline", "0.1", "2026-01-01T00:00:00.000+00:00",
                                 {"run_id": "old-run", "targets": ["CaCO3"], "channels": 64},
                                 {"scan": ds["scan"].values[rows].astype(object),
                                  "depth_mm": ds["depth_mm"].values[rows],
                                  "value_CaCO3": np.arange(len(rows), dtype=np.float32)}))
    path.unlink()
    kinds.write_core(path, rec)
    assert xrfhub.open(store, index=False).sizes == ds.sizes  # opens as it is
    new = xrfhub.rebuild(store)
    assert (new.path / layout.run_file("old-run")).exists()
    assert not any(p.name.startswith("prediction_") for p in kinds.read_core(new.path / manifest["cores"][core]["file"]).processes)
    p = xrfhub.open(store, "predictions", run="old-run", index=False)
    np.testing.assert_array_equal(p["CaCO3"].values[rows], np.arange(len(rows), dtype=np.float32))
    assert np.isnan(np.delete(p["CaCO3"].values, rows)).all()
    assert (new.path / layout.INDEX_DIR / "cores").is_dir()
    assert xrfhub.validate(store, nxcheck=False).ok
    _rebuild_matches(store)


def test_large_ingest_goes_in_batches_of_folders_with_the_same_result_and_refusal_rolls_back(tmp_path, monkeypatch):
    """A corpus over ``BATCH_FILES`` files is ingested a few folders at a time (memory bounded by a
    batch): the store ends as one ingest makes it; a bad file in a later batch leaves it as it was."""
    from xrfhub import ingestion

    corpus = write_corpus(tmp_path / "c", cores=("GeoB1", "GeoB2", "GeoB3"), n_channels=64, kv30_core="GeoB2")
    whole, batched = tmp_path / "whole", tmp_path / "batched"
    xrfhub.ingest([corpus.scans, corpus.files["pangaea"]], whole)
    monkeypatch.setattr(ingestion, "BATCH_FILES", 25)  # each run folder (20 files) is a batch of its own
    report = xrfhub.ingest([corpus.scans, corpus.files["pangaea"]], batched)
    # four run folders of 20 files: four batches (the lab table joins the last), four generations
    assert report.generation == "g000004" and report.n_spectra == corpus.n_spectra
    assert sorted(report.cores) == ["GeoB1", "GeoB2", "GeoB3", "PS75/999-9"]  # + the lab-only core
    a, b = xrfhub.open(whole, index=False), xrfhub.open(batched, index=False)
    key = ["core", "scan", "depth_mm"]
    ka = a[key].to_dataframe().reset_index(drop=True)
    kb = b[key].to_dataframe().reset_index(drop=True)
    order_a = ka.sort_values(key).index.to_numpy()
    order_b = kb.sort_values(key).index.to_numpy()
    np.testing.assert_array_equal(a["counts"].values[order_a], b["counts"].values[order_b])
    sa, sb = xrfhub.open(whole, "samples", index=False), xrfhub.open(batched, "samples", index=False)
    np.testing.assert_array_equal(sa["match_count"].values, sb["match_count"].values)
    assert xrfhub.validate(batched, nxcheck=False).ok
    # each batch's log entry names the files that batch added, once (not every batch's so far)
    logged = [e["added"] for e in Store(batched).read_log() if e.get("action") == "ingest"]
    assert len(logged) == 4 and sorted(n for batch in logged for n in batch) == sorted(report.added)

    # a file that cannot be read, in the last folder: refused, and the store is back as it was
    more = write_corpus(tmp_path / "m", cores=("GeoB4", "GeoB5"), n_channels=64, kv30_core=None, seed=3)
    bad = sorted((more.scans / "GeoB5").rglob("*.spe"))[3]
    bad.write_text(bad.read_text().replace("$DATA:", "$DATA-broken:"))
    before = Store(batched).current().name
    with pytest.raises(xrfhub.errors.InputError):
        xrfhub.ingest([more.scans], batched)
    assert Store(batched).current().name == before
    assert sorted(p.name for p in (batched / layout.GENERATIONS).iterdir() if p.name.startswith("g"))[-1] == before
    assert xrfhub.open(batched, index=False).sizes == b.sizes
    # the rolled-back batches left identity hints behind: they name sources the store does not
    # hold, so the same files, repaired, go in as new data (not "already stored")
    assert (batched / layout.IDENTITIES).is_dir()
    bad.write_text(bad.read_text().replace("$DATA-broken:", "$DATA:"))
    again = xrfhub.ingest([more.scans], batched)
    assert not again.unchanged and again.n_spectra == more.n_spectra
    assert sorted(again.cores) == ["GeoB4", "GeoB5"]


def test_open_loads_index_coordinates_and_leaves_other_strings_lazy(grown, monkeypatch):
    """On a large group ``open`` decodes only what indexes rows; file names etc. come when asked."""
    from xrfhub.store import hub

    store, _ = grown
    eager = xrfhub.open(store)
    monkeypatch.setattr(hub, "LAZY_STRINGS_FROM", 0)  # as on a group of a million spectra
    lazy = xrfhub.open(store)
    assert lazy["source"].variable._data is not None and lazy["source"].chunks is not None  # not read yet
    assert lazy["core"].chunks is None and lazy["depth_mm"].chunks is None  # read: they feed the index
    assert lazy["source"].values.dtype == object
    np.testing.assert_array_equal(lazy["source"].values, eager["source"].values)
    one = lazy.sel(core="SO264-09-2", depth_mm=slice(0, 60))
    ref = eager.sel(core="SO264-09-2", depth_mm=slice(0, 60))
    np.testing.assert_array_equal(one["source"].values, ref["source"].values)
    np.testing.assert_array_equal(one["counts"].values, ref["counts"].values)


def test_latest_predictions_are_per_spectrum_so_runs_per_voltage_complement_each_other(grown):
    """A model per voltage gives one run per voltage: opening ``predictions`` shows each spectrum's
    most recent value, so the 10 kV run is not hidden by the later 30 kV one."""
    store, _ = grown
    ds = xrfhub.open(store, index=False)
    kv = ds["tube_kv"].values
    n = ds.sizes["spectrum"]
    ten = np.where(kv == 10, 1.0, np.nan)
    thirty = np.where(kv == 30, 3.0, np.nan)
    a = predictions.write_run(store, {"CaCO3": ten}, group="spectra/ch64", plugin="m10", provenance={},
                              bounds={"CaCO3": (ten - 0.5, ten + 0.5)})
    b = predictions.write_run(store, {"CaCO3": thirty}, group="spectra/ch64", plugin="m30", provenance={})
    p = xrfhub.open(store, "predictions", index=False)
    np.testing.assert_array_equal(p["CaCO3"].values, np.where(kv == 10, 1.0, np.where(kv == 30, 3.0, np.nan)))
    # the 10 kV values keep their interval; the 30 kV run gave none
    np.testing.assert_array_equal(p["CaCO3_lower"].values, np.where(kv == 10, 0.5, np.nan).astype(np.float32))
    assert json.loads(p.attrs["runs"])["CaCO3"] == [a, b]
    # a later run over every spectrum wins everywhere
    c = predictions.write_run(store, {"CaCO3": np.full(n, 7.0)}, group="spectra/ch64", plugin="all", provenance={})
    p = xrfhub.open(store, "predictions", index=False)
    assert (p["CaCO3"].values == 7.0).all() and "CaCO3_lower" not in p  # no value keeps a bound: none shown
    assert json.loads(p.attrs["runs"])["CaCO3"] == [a, b, c]
    assert p.sel(core="SO264-09-2")["CaCO3"].size > 0
