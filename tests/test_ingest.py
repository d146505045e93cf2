"""Ingest into a real store (NeXus + Zarr on disk), read back through the public API."""
import json
import os

import numpy as np
import pytest
import xarray as xr

import xrfhub
from xrfhub.errors import InputError, StoreError, StoreLockedError
from xrfhub.readers import avaatech_spe
from xrfhub.store import layout
from xrfhub.store.catalog import Catalog
from xrfhub.store.generations import Store

from conftest import spe_stem, spe_text, synthetic_counts, write_corpus


def _ingest(corpus, store, **kw):
    return xrfhub.ingest([corpus.scans, corpus.files["pangaea"]], store, **kw)


def _state(store):
    """Everything a reader sees, for before/after comparisons."""
    ds = xrfhub.open(store, index=False)
    return (Store(store).current().name, ds["counts"].values.copy(), ds["depth_mm"].values.copy(),
            ds["core"].values.copy())


def test_ingest_round_trip_is_bit_exact(corpus, tmp_path):
    store = tmp_path / "hub"
    report = _ingest(corpus, store)
    assert report.n_spectra == 60 and report.n_samples == 11 and report.generation == "g000001"
    ds = xrfhub.open(store)
    assert ds.sizes == {"spectrum": 60, "channel": 2048}
    assert ds["counts"].dtype == np.uint32 and ds["counts"].chunks is not None  # lazy, dask
    for key, path in corpus.files.items():
        if key == "pangaea":
            continue
        core, kv, depth = key.split("/")
        row = ds.sel(core=core, depth_mm=float(depth))
        row = row.isel(spectrum=np.flatnonzero(row["tube_kv"].values == float(kv)))
        assert row.sizes["spectrum"] == 1
        (expected,) = avaatech_spe.read(path)
        np.testing.assert_array_equal(row["counts"].values[0], expected.counts)
        assert row["source"].values[0].endswith(path.name)
    assert set(ds["energy"].attrs.items()) >= {("units", "keV")}
    for name in ("core", "section", "position_mm", "depth_mm", "run", "replicate", "live_time_s", "tube_kv",
                 "tube_ma", "energy_gain_kev", "energy_offset_kev", "source"):
        assert name in ds.coords


def test_selection_by_core_and_depth_as_typed(corpus, tmp_path):
    store = tmp_path / "hub"
    _ingest(corpus, store)
    ds = xrfhub.open(store)
    sub = ds.sel(core="PS75-056-1", depth_mm=slice(100, 150))
    assert sorted(set(sub["depth_mm"].values)) == [105.0, 115.0, 125.0, 135.0, 145.0]
    assert set(sub["core"].values) == {"PS75-056-1"} and set(sub["tube_kv"].values) == {10.0, 30.0}
    assert ds.sel(core="SO264-09-2").sizes["spectrum"] == 20
    assert len(ds.sel(core="SO264-09-2")["depth_mm"]) == 20  # coordinates subset too


def test_samples_are_aligned_with_the_mean_matched_spectrum(corpus, tmp_path):
    store = tmp_path / "hub"
    _ingest(corpus, store)
    samples = xrfhub.open(store, "samples")
    spectra = xrfhub.open(store, index=False)
    assert samples.sizes["sample"] == 11
    s = samples.sel(core="PS75-056-1", depth_mm=15.0)
    assert float(s["CaCO3"].values[0]) == pytest.approx(20 + 10 * np.sin(15 / 50), abs=0.01)
    assert s["match_status"].values[0] == "matched" and int(s["match_count"].values[0]) == 1
    rows = s["matched_spectrum"].values[0]
    rows = rows[rows >= 0]
    assert spectra["depth_mm"].values[rows].tolist() == [15.0] and spectra["tube_kv"].values[rows].tolist() == [10.0]
    np.testing.assert_allclose(s["mean_spectrum"].values[0], spectra["counts"].values[rows].mean(0))
    far = samples.sel(core="PS75-056-1", depth_mm=500.0)
    assert far["match_status"].values[0] == "unmatched" and np.isnan(far["mean_spectrum"].values[0]).all()
    lonely = samples.sel(core="PS75/999-9")
    assert lonely["match_status"].values[0] == "no-scan"
    assert lonely["CaCO3_flag"].values[0] == "?" and lonely["TOC_flag"].values[0] == "/"
    assert np.isnan(lonely["TOC"].values[0]) and lonely["CaCO3"].values[0] == 12.5
    assert samples["CaCO3"].attrs["units"] == "wt%"
    assert samples["lab_core"].sel(sample=0).item() == "PS75/056-1"


def test_same_files_twice_add_nothing(corpus, tmp_path):
    store = tmp_path / "hub"
    _ingest(corpus, store)
    before = _state(store)
    report = _ingest(corpus, store)
    assert report.generation is None and len(report.unchanged) == 61 and not report.added
    after = _state(store)
    assert before[0] == after[0]
    np.testing.assert_array_equal(before[1], after[1])


def test_changed_file_refused_unless_replace_and_history_kept(corpus, tmp_path):
    store = tmp_path / "hub"
    _ingest(corpus, store)
    before = _state(store)
    path = corpus.files["SO264-09-2/10/15"]
    path.write_text(spe_text("SO264-09-2", "0000", 15.0, minute=1, counts=np.full(2048, 7, np.uint32)))
    with pytest.raises(InputError, match="changed since it was ingested.*--replace"):
        _ingest(corpus, store)
    assert _state(store)[0] == before[0]
    report = _ingest(corpus, store, replace=True)
    assert len(report.replaced) == 1 and report.generation == "g000002"
    ds = xrfhub.open(store)
    row = ds.sel(core="SO264-09-2", depth_mm=15.0)
    np.testing.assert_array_equal(row["counts"].values[0], np.full(2048, 7))
    assert ds.sizes["spectrum"] == 60
    manifest = xrfhub.api.manifest(store)
    saved = [h for h in manifest["history"] if "saved_as" in h]
    assert saved and (store / saved[0]["saved_as"]).exists()
    old = xrfhub.kinds.read_core(store / saved[0]["saved_as"])
    np.testing.assert_array_equal(old.scans["scan_0000_Run1_10kV_rep0"].counts, before[1][np.flatnonzero(
        (before[3] == "SO264-09-2"))][:10])


def test_new_core_is_appended_and_old_files_are_reused(corpus, tmp_path):
    store = tmp_path / "hub"
    _ingest(corpus, store)
    gen1 = Store(store).current()
    more = write_corpus(tmp_path / "more", cores=("GeoB1234-5",), seed=3, kv30_core=None)
    report = xrfhub.ingest([more.scans], store)
    assert report.cores == ["GeoB1234-5"] and report.n_spectra == 20
    gen2 = Store(store).current()
    old_file = gen1.path / "nexus" / "PS75-056-1.nxs"
    new_file = gen2.path / "nexus" / "PS75-056-1.nxs"
    assert os.stat(old_file).st_ino == os.stat(new_file).st_ino  # hard link, not a rewrite
    ds = xrfhub.open(store)
    assert ds.sizes["spectrum"] == 80 and ds.sel(core="GeoB1234-5").sizes["spectrum"] == 20


def test_lab_table_before_the_scans_is_matched_later(corpus, tmp_path):
    store = tmp_path / "hub"
    xrfhub.ingest([corpus.files["pangaea"]], store)
    assert xrfhub.open(store).sizes["sample"] == 11  # the only kind present
    xrfhub.ingest([corpus.scans], store)
    samples = xrfhub.open(store, "samples")
    assert set(samples["core"].values) == {"PS75-056-1", "SO264-09-2", "PS75/999-9"}
    assert (samples["match_status"].values == "matched").sum() == 8
    manifest = xrfhub.api.manifest(store)
    assert "PS75_056-1" not in json.dumps(manifest["cores"])  # the lab-only file is gone


def _bad_file(corpus, kind):
    folder = corpus.scans / "SO264-09-2" / "Run 1 at  10kV"
    path = folder / f"{spe_stem('SO264-09-2', '0000', 300.0)}.spe"
    rng = np.random.default_rng(1)
    if kind == "truncated":
        path.write_text(spe_text("SO264-09-2", "0000", 300.0, minute=50, counts=synthetic_counts(rng, 5))[:-2000])
        return path, "counts, expected 2048"
    if kind == "garbled":
        path.write_bytes(b"$SPEC_ID:\n\x00\xff\x13garbage" * 50)
        return path, "binary"
    if kind == "channels":
        path.write_text(spe_text("SO264-09-2", "0000", 300.0, minute=50, counts=synthetic_counts(rng, 5, 1024)))
        return path, "1024 channels, but scan SO264-09-2"
    if kind == "duplicate":
        path = folder / "copy of 15 mm.spe"
        path.write_text(spe_text("SO264-09-2", "0000", 15.0, minute=50, counts=synthetic_counts(rng, 5)))
        return path, "duplicate depth"
    if kind == "non-monotonic":
        path.write_text(spe_text("SO264-09-2", "0000", 3.0, minute=50, counts=synthetic_counts(rng, 5)))
        return path, "non-monotonic depths"
    if kind == "unit":
        text = spe_text("SO264-09-2", "0000", 300.0, minute=50, counts=synthetic_counts(rng, 5))
        path.write_text(text.replace("$TUBE_CUR:\n0.150", "$TUBE_CUR:\n150 parsecs"))
        return path, "unknown unit 'parsecs'"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "garbled", "channels", "duplicate", "non-monotonic", "unit"])
def test_bad_input_is_refused_and_the_store_unchanged(corpus, tmp_path, kind):
    store = tmp_path / "hub"
    xrfhub.ingest([corpus.files["pangaea"]], store)
    gen = Store(store).current().name
    path, message = _bad_file(corpus, kind)
    with pytest.raises(InputError, match=message) as err:
        _ingest(corpus, store)
    assert path.name in str(err.value)
    assert Store(store).current().name == gen
    assert "spectra" not in xrfhub.store.hub.groups(Store(store).current().hub_path)
    report = _ingest(corpus, store, skip_bad=True)
    assert [os.path.basename(s[0]) for s in report.skipped] == [path.name]
    assert xrfhub.open(store).sizes["spectrum"] == 60


def test_second_writer_gets_a_clear_message(corpus, tmp_path):
    store = Store(tmp_path / "hub")
    with store.writer():
        with pytest.raises(StoreLockedError, match="another xrfhub process is writing.*--wait"):
            _ingest(corpus, store.root)
        with pytest.raises(StoreLockedError):
            _ingest(corpus, store.root, wait=0.3)
    _ingest(corpus, store.root)


def test_reader_of_an_empty_or_missing_store(tmp_path):
    with pytest.raises(StoreError, match="not an xrfhub store"):
        xrfhub.open(tmp_path / "nothing")


def test_nexus_files_show_named_dimensions_in_xarray(corpus, tmp_path):
    store = tmp_path / "hub"
    _ingest(corpus, store)
    path = Store(store).current().path / "nexus" / "SO264-09-2.nxs"
    ds = xr.open_dataset(path, engine="h5netcdf", group="scan_0000_Run1_10kV_rep0/data")
    assert ds["counts"].dims == ("depth", "energy")
    assert ds["depth"].attrs["units"] == "mm" and ds["energy"].attrs["units"] == "keV"


def test_validate_and_rebuild(corpus, tmp_path):
    store = tmp_path / "hub"
    _ingest(corpus, store)
    report = xrfhub.validate(store)
    assert report.ok, report.text()
    before = xrfhub.open(store, index=False).load()
    samples_before = xrfhub.open(store, "samples", index=False).load()
    gen = xrfhub.rebuild(store)
    assert gen.name == "g000002"
    after = xrfhub.open(store, index=False).load()
    xr.testing.assert_identical(before, after)
    xr.testing.assert_identical(samples_before, xrfhub.open(store, "samples", index=False).load())
    # every group of the hub, read raw: arrays bit-exact, attributes equal except timestamps
    old_hub, new_hub = (_hub_contents(store / "generations" / g / "hub.zarr") for g in ("g000001", "g000002"))
    assert old_hub.keys() == new_hub.keys() and {"spectra/ch2048", "samples", "sources"} <= old_hub.keys()
    for group, (attrs, arrays) in old_hub.items():
        assert attrs == new_hub[group][0], group
        assert arrays.keys() == new_hub[group][1].keys(), group
        for name, (arr_attrs, values) in arrays.items():
            new_attrs, new_values = new_hub[group][1][name]
            assert arr_attrs == new_attrs, (group, name)
            assert values.dtype == new_values.dtype and values.shape == new_values.shape, (group, name)
            assert values.tobytes() == new_values.tobytes() if values.dtype.kind in "biuf" \
                else values.tolist() == new_values.tolist(), (group, name)
    assert xrfhub.validate(store, nxcheck=False).ok


TIMESTAMPS = {"created", "updated", "date_written", "file_time"}


def _hub_contents(hub_path):
    """group -> (attributes without timestamps, {array: (attributes, values)}) for every group."""
    import zarr

    out = {}

    def visit(group, path):
        arrays = {name: ({k: v for k, v in a.attrs.items() if k not in TIMESTAMPS}, a[...])
                  for name, a in group.arrays()}
        if arrays:
            out[path] = ({k: v for k, v in group.attrs.items() if k not in TIMESTAMPS}, arrays)
        for name, sub in group.groups():
            visit(sub, f"{path}/{name}".lstrip("/"))

    visit(zarr.open_group(hub_path, mode="r"), "")
    return out


def test_composite_depth_from_an_affine_table_persists(corpus, tmp_path):
    store = tmp_path / "hub"
    table = tmp_path / "affine.csv"
    table.write_text("core,offset_mm,scale\nPS75-056-1,1000,1.0\n")
    xrfhub.ingest([corpus.scans], store, composite_table=table)
    ds = xrfhub.open(store, index=False)
    mine = ds["core"].values == "PS75-056-1"
    np.testing.assert_allclose(ds["composite_depth_mm"].values[mine], ds["depth_mm"].values[mine] + 1000)
    assert np.isnan(ds["composite_depth_mm"].values[~mine]).all()  # no table row: no composite depth
    more = corpus.scans / "PS75-056-1" / "Run 1 at  10kV" / f"{spe_stem('PS75-056-1', '0010', 99.0)}.spe"
    more.write_text(spe_text("PS75-056-1", "0010", 99.0, minute=30, counts=synthetic_counts(np.random.default_rng(2), 5)))
    xrfhub.ingest([corpus.scans], store)  # no table this time: the core keeps its scale
    ds = xrfhub.open(store)
    assert float(ds.sel(core="PS75-056-1", depth_mm=199.0)["composite_depth_mm"].values[0]) == 1199.0
    bad = tmp_path / "bad.csv"
    bad.write_text("core,offset_mm\nPS75-056-1,lots\n")
    with pytest.raises(InputError, match="bad.csv"):
        xrfhub.ingest([corpus.scans], store, composite_table=bad)


def test_a_store_opens_from_an_fsspec_url(corpus, tmp_path):
    store = tmp_path / "hub"
    _ingest(corpus, store)
    ds = xrfhub.open(f"file://{store}")
    assert ds.sizes["spectrum"] == 60 and ds.sel(core="SO264-09-2").sizes["spectrum"] == 20
    samples = xrfhub.open(f"file://{store}", "samples")
    assert samples.sizes["sample"] == 11


def test_parse_on_forked_workers_stores_the_same(corpus, tmp_path, monkeypatch):
    """Files parsed by forked workers (in shares, records sent back) give the very store an
    in-process parse gives: same spectra, same order, same sources."""
    import subprocess
    import sys

    monkeypatch.setenv("XRFHUB_PARSE_PROCESSES", "1")
    alone = tmp_path / "alone"
    _ingest(corpus, alone)
    # in a fresh process: this one runs zarr's event-loop thread by now, and with other threads
    # running the workers are (rightly) not forked; the count is forced, so even 60 files fork
    forked = tmp_path / "forked"
    script = (
        "import sys, xrfhub\n"
        "from xrfhub import sources\n"
        "calls = []\n"
        "real = sources._parse_forked\n"
        "sources._parse_forked = lambda *a, **k: calls.append(a[3]) or real(*a, **k)\n"
        "xrfhub.ingest(sys.argv[1:3], sys.argv[3])\n"
        "assert calls == [3], calls\n")
    env = {**os.environ, "XRFHUB_PARSE_PROCESSES": "3"}
    subprocess.run([sys.executable, "-c", script, str(corpus.scans), str(corpus.files["pangaea"]), str(forked)],
                   check=True, env=env)
    a, b = xrfhub.open(alone, index=False), xrfhub.open(forked, index=False)
    assert a.sizes == b.sizes
    for name in a.variables:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    from xrfhub.store.catalog import Catalog

    kept = ("sha256", "format", "kind", "size", "path", "identity")
    src_a, src_b = (Catalog(Store(s).current().path).all_sources() for s in (alone, forked))
    assert {n: [v.get(k) for k in kept] for n, v in src_a.items()} == \
        {n: [v.get(k) for k in kept] for n, v in src_b.items()}
    assert xrfhub.validate(forked, nxcheck=False).ok


def _nexus_fields(store) -> dict:
    """Every NeXus dataset of the current generation, by file and path, as bytes (ingest time and
    the ingest run's uuid left out: they differ between two ingests by design)."""
    import h5py

    out = {}
    for f in sorted((Store(store).current().path / layout.NEXUS_DIR).glob("*.nxs")):
        with h5py.File(f, "r") as h5:
            def visit(name, obj, f=f):
                if isinstance(obj, h5py.Dataset) and not name.endswith(("/date", "/run_uuid")):
                    value = obj[()]
                    out[f.name, name] = value.tobytes() if isinstance(value, np.ndarray) and value.dtype != object \
                        else repr(value)
            h5.visititems(visit)
    return out


def _with_plain_cores(corpus, tmp_path) -> list[str]:
    """The corpus (two cores with lab samples) and two more cores with none."""
    more = write_corpus(tmp_path / "more", cores=("GeoB1", "GeoB2"), seed=4, kv30_core=None)
    return [str(corpus.scans), str(more.scans), str(corpus.files["pangaea"])]


def test_nexus_files_written_beside_the_hub_are_the_same(corpus, tmp_path):
    """With a second process allowed, the NeXus files of cores without lab samples are written by a
    forked child while the hub is written: the same files (every dataset), the same hub."""
    import subprocess
    import sys

    script = (
        "import sys, xrfhub\n"
        "from xrfhub import build\n"
        "real = build._nexus_beside\n"
        "def spy(*a):\n"
        "    child, cores = real(*a)\n"
        "    print(child is not None, sorted(cores))\n"
        "    return child, cores\n"
        "build._nexus_beside = spy\n"
        "xrfhub.ingest(sys.argv[1:-1], sys.argv[-1])\n")
    inputs = _with_plain_cores(corpus, tmp_path)
    stores, said = {}, {}
    for count in ("1", "2"):
        stores[count] = tmp_path / f"w{count}"
        done = subprocess.run([sys.executable, "-c", script, *inputs, str(stores[count])], check=True, capture_output=True, text=True,
                              env={**os.environ, "XRFHUB_WRITE_PROCESSES": count})
        said[count] = done.stdout.strip()
    cores = Catalog(Store(stores["2"]).current().path).cores()
    plain = sorted(c for c, s in cores.items() if not s.get("n_samples") and s.get("scans"))
    assert plain == ["GeoB1", "GeoB2"]  # cores with lab samples stay with the parent (alignment first)
    assert said == {"1": "False []", "2": f"True {plain}"}
    assert _nexus_fields(stores["1"]) == _nexus_fields(stores["2"])
    a, b = xrfhub.open(stores["1"], index=False), xrfhub.open(stores["2"], index=False)
    for name in a.variables:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert xrfhub.validate(stores["2"]).ok


def test_a_failing_writer_beside_fails_the_ingest_and_stores_nothing(corpus, tmp_path):
    """The forked NeXus writer's error comes back to the ingest: non-zero, the store as it was."""
    import subprocess
    import sys

    store = tmp_path / "store"
    script = (
        "import sys, xrfhub\n"
        "from xrfhub.store import nexus\n"
        "from xrfhub import forking\n"
        "real = nexus.write_core\n"
        "def broken(path, rec, **k):\n"
        "    if forking._PARENT is not None:\n"
        "        raise OSError(28, 'No space left on device')\n"
        "    return real(path, rec, **k)\n"
        "nexus.write_core = broken\n"
        "xrfhub.ingest(sys.argv[1:-1], sys.argv[-1])\n")
    done = subprocess.run([sys.executable, "-c", script, *_with_plain_cores(corpus, tmp_path), str(store)],
                          capture_output=True, text=True, env={**os.environ, "XRFHUB_WRITE_PROCESSES": "2"})
    assert done.returncode != 0 and "No space left on device" in done.stderr, done.stderr[-2000:]
    assert not store.exists() or Store(store).current() is None


def test_fork_rule_allows_tqdm_s_monitor_and_no_other_thread():
    """Commands draw progress bars, and tqdm's monitor thread must not switch forking off for good;
    any other thread (a zarr event loop, a user's) does."""
    import subprocess
    import sys

    script = (
        "import threading, time\n"
        "from tqdm import tqdm\n"
        "from xrfhub.forking import fork_is_safe\n"
        "assert fork_is_safe()\n"
        "bar = tqdm(total=3, disable=False, file=open('/dev/null', 'w'))\n"
        "bar.update(1)\n"
        "assert any(type(t).__name__ == 'TMonitor' for t in threading.enumerate()), threading.enumerate()\n"
        "assert fork_is_safe()\n"
        "stop = threading.Event()\n"
        "threading.Thread(target=stop.wait, daemon=True).start()\n"
        "assert not fork_is_safe()\n"
        "stop.set()\n")
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ, "XRFHUB_WRITE_PROCESSES": ""})


def test_a_refusal_names_every_bad_file_read_not_only_the_first(corpus, tmp_path):
    from pathlib import Path

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.csv").write_text("core,CaCO3 [%]\nPS75-056-1,20\n")  # no depth column
    (bad / "b.csv").write_text("core,depth [cm],CaCO3 [%]\nPS75-056-1,1.5,twenty\n")  # not a number
    with pytest.raises(InputError) as err:
        xrfhub.ingest([corpus.scans, bad], tmp_path / "hub", progress=False)
    named = {Path(e.path).name for e in (err.value, *err.value.others)}
    assert named == {"a.csv", "b.csv"}
    assert not (tmp_path / "hub").exists()
    report = xrfhub.ingest([corpus.scans, bad], tmp_path / "hub", skip_bad=True, progress=False)
    assert sorted(Path(p).name for p, _ in report.skipped) == ["a.csv", "b.csv"] and report.n_spectra == 60


def test_a_lab_table_without_a_core_column_takes_the_one_core_its_path_names(corpus, tmp_path):
    store = tmp_path / "store"
    named = corpus.root / "PS75-056-1 lab" / "caco3.csv"  # the folder names a scanned core
    named.parent.mkdir()
    named.write_text("depth_cm,CaCO3 [%]\n2,40\n5,45\n")
    report = xrfhub.ingest([corpus.scans, named.parent], store)
    assert report.n_samples == 2
    said = [w for w in report.warnings if "core from path: 'PS75-056-1', named by 'PS75-056-1 lab'" in w]
    assert len(said) == 1, report.warnings
    lab = xrfhub.open(store, "samples", index=False)
    assert set(lab["core"].values) == {"PS75-056-1"}
    # in a later ingest the store's cores count too; a path naming no core, or two, is still refused
    for folder, text in (("lab", "caco3.csv"), ("PS75-056-1 vs SO264-09-2", "caco3.csv")):
        path = corpus.root / folder / text
        path.parent.mkdir(exist_ok=True)
        path.write_text("depth_cm,CaCO3 [%]\n3,41\n")
        with pytest.raises(InputError, match="no core column"):
            xrfhub.ingest([path.parent], store)  # walked: the folder's name is part of the path
    path = corpus.root / "so264-09-2_caco3.csv"
    path.write_text("depth_cm,CaCO3 [%]\n3,41\n")
    assert xrfhub.ingest([path], store).n_samples == 1
