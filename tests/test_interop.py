"""Outside tools on what the store writes: pynxtools and nexusformat on the NeXus files, plain
xarray on the hub, the PANGAEA table read back by ``xrfhub ingest``, rocrate-validator on the
RO-Crate, and the identifiers that tie them together."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
import zarr

import xrfhub
from conftest import run_cli, write_corpus
from xrfhub import identifiers
from xrfhub.errors import InputError
from xrfhub.ingestion import ingest
from xrfhub.predictions import write_run
from xrfhub.store import hub, pynxcheck
from xrfhub.store.generations import Store
from xrfhub.store.nexus import scan_entries
from xrfhub.store.nxvalidate import nxcheck


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """Two scanned cores (10 and 30 kV), a lab-only core, lab samples, a bAXIL element table
    and one prediction run."""
    root = tmp_path_factory.mktemp("interop")
    corpus = write_corpus(root / "corpus")
    spectrum = "PS75-056-1!0000!0!{x}!2019-02-20!09-54-32!30!10!1500!{x}!0.0!No-Filter!2.0!12.0!Run1!Rep0!Sett Low.spe"
    baxil = root / "baxil.csv"
    baxil.write_text('" Spectrum" ," Live time" ," Ca-Ka Area" ," Ca-Ka AreaStd" ," Fe-Ka Area" \n' + "".join(
        f'"{spectrum.format(x=x)}",30,{100 + x},10,{50 - x / 2}\n' for x in (10.0, 12.0, 14.0, 16.0, 20.0, 50.0, 56.0)))
    path = root / "store"
    ingest([corpus.scans, corpus.lab, baxil], path)
    spectra = xrfhub.open(path, "spectra", index=False)
    # a stand-in model: any deterministic function of the spectra will do for storage tests
    total = spectra["counts"].sum("channel").values.astype(float)
    write_run(path, {"CaCO3": (total / total.max() * 40).astype(np.float32)},
              group="spectra/ch2048", plugin="test-linear", provenance={"note": "test"})
    return path


def _generation(store) -> Path:
    return Store(store).current().path


def _nexus_files(store) -> list[Path]:
    return sorted((_generation(store) / "nexus").glob("*.nxs"))


@pytest.fixture(scope="module")
def defs(tmp_path_factory) -> Path:
    pytest.importorskip("pynxtools")
    return pynxcheck.definitions_tree(tmp_path_factory.mktemp("nexus-defs") / "definitions")


# ------------------------------------------------------------------------------ NeXus files
def test_pynx_validates_every_entry_of_every_file(store, defs):
    files = _nexus_files(store)
    assert len(files) == 3  # two scanned cores and the lab-only core
    reports = pynxcheck.validate_many(files, defs)  # what `pynx validate` runs, one process
    for path in files:
        report = reports[path]
        assert report.ok, f"{path.name}:\n{report.output}"
        with h5py.File(path) as f:
            expected = scan_entries(f)
        assert sorted(report.valid_entries) == sorted(expected), report.output
        assert report.checked_nothing == (not expected)  # the lab-only core has no scan entry


def test_pynx_reports_what_the_definition_forbids(store, defs, tmp_path):
    """The check can fail: a time without a zone, a missing required field, an untyped index.
    This one runs the `pynx validate` command itself."""
    bad = tmp_path / "bad.nxs"
    shutil.copyfile(_nexus_files(store)[0], bad)
    with h5py.File(bad, "r+") as f:
        entry = f[scan_entries(f)[0]]
        entry.create_dataset("start_time", data="2019-03-01T10:00:00", dtype=h5py.string_dtype())
        del entry["data/run"]
        entry["data"].attrs["depth_indices"] = "zero"
    report = pynxcheck.validate(bad, defs)
    assert not report.ok
    text = "\n".join(report.findings)
    assert "timezone aware" in text and "data/run hasn't been supplied" in text and "NOT valid" in text
    assert "depth_indices" in text


def test_nexusformat_agrees(store):
    for path in _nexus_files(store):
        n_errors, report = nxcheck(path)
        assert n_errors == 0, report


def test_nxvalidate_command_finds_nothing_on_any_scan_entry(store):
    """nexusformat's `nxvalidate -a OUR_NXDL -p /ENTRY FILE`, as an outsider types it."""
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("nxvalidate")
    if not exe.exists():
        pytest.skip("the nxvalidate command is not installed beside this Python")
    nxdl = Path(__file__).resolve().parents[1] / "schemas" / "NXxrf_core_scan.nxdl.xml"
    path = next(p for p in _nexus_files(store) if p.stem == "PS75-056-1")
    with h5py.File(path) as f:
        entries = scan_entries(f)
    assert len(entries) == 4  # two sections at 10 kV, two at 30 kV
    for entry in entries:
        out = subprocess.run([str(exe), "-a", str(nxdl), "-p", f"/{entry}", str(path)],
                             capture_output=True, text=True).stdout
        assert "Total number of warnings: 0" in out and "Total number of errors: 0" in out, out


def test_entries_carry_stable_uuids(store):
    path = next(p for p in _nexus_files(store) if p.stem == "PS75-056-1")
    with h5py.File(path) as f:
        core = f["core"]
        assert core["entry_identifier_uuid"][()].decode() == identifiers.core_uuid("PS75-056-1")
        for name in scan_entries(f):
            e = f[name]
            scan = e["entry_identifier"][()].decode()
            assert e["entry_identifier_uuid"][()].decode() == identifiers.scan_uuid("PS75-056-1", scan)
            assert e["sample/core_uuid"][()].decode() == identifiers.core_uuid("PS75-056-1")
            assert e["data/counts"].attrs["interpretation"] == "spectrum"
        assert not [g for g in core if g.startswith("prediction_")]  # derived data lives in run files
    runs = sorted((_generation(store) / "runs").glob("*.nxs"))
    assert len(runs) == 1
    with h5py.File(runs[0]) as f:
        run_id = f["entry/entry_identifier"][()].decode()
        assert f["entry/title"][()].decode() == run_id == runs[0].stem
        assert f["entry/entry_identifier_uuid"][()].decode() == identifiers.run_uuid(run_id)


# ------------------------------------------------------------------------------ Zarr hub
def test_plain_xarray_opens_every_group_without_warning(store):
    hub_path = _generation(store) / "hub.zarr"
    groups = [g for gs in hub.groups(hub_path).values() for g in gs] + ["sources"]
    assert {"spectra/ch2048", "samples"} <= set(groups) and any(g.startswith("predictions/") for g in groups)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for g in groups:
            ds = xr.open_zarr(hub_path, group=g)
            assert ds.sizes
        tree = xr.open_datatree(hub_path, engine="zarr")
    assert "/spectra/ch2048" in tree.groups
    attrs = zarr.open_group(hub_path, mode="r").attrs
    assert json.loads(attrs["core_uuids"])["SO264-09-2"] == identifiers.core_uuid("SO264-09-2")
    run_group = next(g for g in groups if g.startswith("predictions/"))
    run = zarr.open_group(hub_path, path=run_group, mode="r").attrs
    assert run["run_uuid"] == identifiers.run_uuid(run["run"])


def test_documented_plain_xarray_selection(store):
    """The snippet of docs/nexus.md: a core and a depth range with plain xarray."""
    hub_path = _generation(store) / "hub.zarr"
    ds = xr.open_zarr(hub_path, group="spectra/ch2048")
    rows = (ds.core == "PS75-056-1") & (ds.depth_mm >= 20) & (ds.depth_mm <= 60)
    sel = ds.isel(spectrum=rows.values)
    ours = xrfhub.open(store).sel(core="PS75-056-1", depth_mm=slice(20, 60))
    assert sel.sizes["spectrum"] == ours.sizes["spectrum"] > 0
    np.testing.assert_array_equal(np.sort(sel.depth_mm.values), np.sort(ours.depth_mm.values))


# ------------------------------------------------------------------------------ PANGAEA
def test_pangaea_export_reads_back_to_the_same_values(store, tmp_path):
    out = tmp_path / "export.tab"
    run_cli("export", store, "--format", "pangaea", "--out", out, "--citation", "Test, A (2026): cores",
            "--licence", "CC-BY-4.0")
    text = out.read_text()
    assert text.startswith("/* DATA DESCRIPTION:\nCitation:\tTest, A (2026): cores")
    assert "DEPTH, sediment/rock [m] (Depth sed)" in text and "CaCO3_pred [%]" in text
    assert f"PS75-056-1 * UUID: {identifiers.core_uuid('PS75-056-1')}" in text

    back = tmp_path / "back"
    run_cli("ingest", out, "--store", back)
    a = xrfhub.open(store, "samples", index=False).load()
    b = xrfhub.open(back, "samples", index=False).load()
    assert list(a.core.values) == list(b.core.values)
    np.testing.assert_allclose(b.mid_mm.values, a.mid_mm.values, rtol=1e-12)
    for prop in ("CaCO3", "TOC"):
        np.testing.assert_allclose(b[prop].values, a[prop].values, rtol=1e-12, equal_nan=True)
        assert list(b[f"{prop}_flag"].values) == list(a[f"{prop}_flag"].values)
    assert set(a[["CaCO3_flag", "TOC_flag"]].to_array().values.ravel()) >= {"?", "/"}  # flags were exercised
    # the prediction column: the mean over each sample's aligned spectra, read back exactly
    pred = xrfhub.open(store, "predictions", index=False)["CaCO3"].values
    matched = a["matched_spectrum"].values
    want = np.array([np.nanmean(pred[r[r >= 0]]) if (r >= 0).any() else np.nan for r in matched])
    assert np.isfinite(want).sum() >= 6
    np.testing.assert_allclose(b["CaCO3_pred"].values, want, rtol=1e-6, equal_nan=True)
    # element intensities: the mean of the bAXIL points within +-5 mm of the sample (window
    # alignment); written for PANGAEA, read past on ingest (they are not lab values)
    header = next(line for line in text.splitlines() if line.startswith("Event\t")).split("\t")
    first = next(line for line in text.splitlines() if line.startswith("PS75-056-1\t0.015")).split("\t")
    assert float(first[header.index("Ca-Ka [counts]")]) == pytest.approx(np.mean([110, 112, 114, 116, 120]))
    assert not any(v.startswith("Ca_Ka") or v.startswith("Ca-Ka") for v in b.data_vars)


# ------------------------------------------------------------------------------ RO-Crate
@pytest.mark.slow
def test_ro_crate_passes_rocrate_validator(store, tmp_path):
    pytest.importorskip("rocrate_validator")
    from xrfhub.export.rocrate_check import validate

    ids = tmp_path / "ids.csv"
    ids.write_text("core,igsn,doi\ndataset,,https://doi.org/10.1594/PANGAEA.999999\nPS75-056-1,IEXYZ0001,\n")
    crate = tmp_path / "crate"
    run_cli("export", store, "--format", "ro-crate", "--out", crate, "--licence", "CC-BY-4.0",
            "--author", "Ann Lab <ann@example.org>", "--identifiers", ids, "--citation", "Test (2026)")
    meta = json.loads((crate / "ro-crate-metadata.json").read_text())
    graph = {e["@id"]: e for e in meta["@graph"]}
    root = graph["./"]
    assert root["identifier"] == "https://doi.org/10.1594/PANGAEA.999999"
    assert root["license"]["@id"] == "https://spdx.org/licenses/CC-BY-4.0"
    for path in _nexus_files(store):
        entity = graph[f"nexus/{path.name}"]
        assert entity["contentSize"] == str(path.stat().st_size)
        import hashlib

        assert entity["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    core = graph[f"#core-{identifiers.core_uuid('PS75-056-1')}"]
    assert core["identifier"] == [identifiers.core_uuid("PS75-056-1"), "igsn:IEXYZ0001"]
    actions = [e for e in graph.values() if e.get("@type") == "CreateAction"]
    assert {a["name"].split()[1] for a in actions} >= {"ingest", "predict"}

    report = validate(crate, tmp_path / "validator")
    stats = report["statistics"]
    assert report["passed"] and not report["issues"], report["issues"]
    assert stats["total_failed_checks"] == 0 and stats["total_passed_checks"] >= 60, stats


def test_bad_identifiers_file_is_refused(tmp_path):
    bad = tmp_path / "ids.csv"
    bad.write_text("core,doi\nPS75-056-1,not-a-doi\n")
    with pytest.raises(InputError, match=r"ids.csv.*line 2.*not a DOI"):
        identifiers.read_identifiers(bad)
    bad.write_text("name,doi\n")
    with pytest.raises(InputError, match="must name 'core'"):
        identifiers.read_identifiers(bad)


def test_ro_crate_refuses_a_non_empty_folder(store, tmp_path):
    out = tmp_path / "crate"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run_cli("export", store, "--format", "ro-crate", "--out", out, check=False)
    assert result.returncode != 0 and "not empty" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_pangaea_reader_reads_past_scanner_intensities(tmp_path):
    """Element intensities in cps beside lab values (as the export writes them) are not lab values."""
    from xrfhub.readers import lab_pangaea

    tab = tmp_path / "el.tab"
    tab.write_text("/* DATA DESCRIPTION:\nEvent(s):\tX1\n*/\nEvent\tDepth sed [m]\tCaCO3 [%]\tCa Ka [cps]\n"
                   "X1\t0.1\t20.5\t1234.5\n")
    table = lab_pangaea.read(tab)
    assert "Ca Ka [cps]" in table.metadata["intensity_columns"]
    assert [c for c in table.samples.columns if c.startswith("Ca")] == ["CaCO3"]
