"""The NeXus archive form of a core: exact round trip, both validators, xarray view, damage."""
from __future__ import annotations

import hashlib
import math
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xrfhub.errors import StoreError
from xrfhub.records import (Calibration, CoreRecord, Process, SourceFile, SpectraBlock, Spectrum,
                            scan_name)
from xrfhub.store.layout import SPECTRUM_COORDS
from xrfhub.kinds import read_core, write_core
from xrfhub.store.nexus import array_checksums, read_core_summary
from xrfhub.store.nxvalidate import nxcheck, schema_path, validate_core_file

SHA = "ab" * 32


def _spectra(n, channels, *, section="0100", kv=10.0, seed=0, run="Run1", replicate=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        out.append(Spectrum(
            counts=rng.poisson(20, channels).astype(np.uint32) * (i + 1), core="PS1234-1",
            section=section, section_top_mm=1000.0, position_mm=12.5 + 2 * i,
            depth_mm=1012.5 + 2 * i, run=run, replicate=replicate, tube_kv=kv,
            tube_ma=math.nan if i == 1 else 0.25, live_time_s=10.0, real_time_s=10.7 + i,
            filter="Pd-thick" if kv > 20 else "", slit_dc_mm=10.0, slit_cc_mm=12.0,
            date=f"2019-03-0{1 + i % 3}T10:{i:02d}:00" if i != 2 else "",
            calibration=Calibration(0.0201 + 1e-5 * i, -0.01, "header:$MCA_CAL") if i != 3
            else Calibration(0.02, 0.0, "default"),
            instrument="avaatech", detector="XR-100 Amptek", valid=i != 2, source="PS1234.spe",
            header=f"$SPEC_ID:\nPS1234-1 {section} Überprüfung µm {i}\n$MEAS_TIM:\n10 11",
            warnings=("calibration from default",) if i == 3 else ()))
    return out


def _record(*, with_scans=True, with_lab=True) -> CoreRecord:
    scans = {}
    if with_scans:
        for block in (SpectraBlock.from_spectra(_spectra(6, 2048)),
                      SpectraBlock.from_spectra(_spectra(4, 1024, kv=30.0, seed=1)),
                      SpectraBlock.from_spectra(_spectra(3, 1024, section="A-1", kv=10.5, seed=2))):
            scans[block.coords["scan"].iloc[0]] = block
    rec = CoreRecord(core="PS1234-1", scans=scans, igsn="IEAWI0001",
                     sources=[SourceFile("PS1234.spe", "/data/raw/PS1234.spe", SHA, "avaatech_spe",
                                         123_456),
                              SourceFile("lab.tab", "/data/lab/lab.tab", "cd" * 32, "pangaea", 999)])
    if with_lab:
        rec.lab = pd.DataFrame({
            "core": ["PS1234-1"] * 3, "top_mm": [1000.0, 1020.0, math.nan],
            "bottom_mm": [1010.0, 1030.0, math.nan], "mid_mm": [1005.0, 1025.0, 1040.0],
            "line": [12, 13, 14], "CaCO3": [41.5, math.nan, 12.25], "TOC": [0.8, 1.1, 0.3],
            "source": ["lab.tab"] * 3})
        rec.lab_flags = pd.DataFrame({"CaCO3": ["", "/", "?"], "TOC": ["*", "", ""]})
        rec.lab_units = {"CaCO3": "%", "TOC": "wt%"}
    rec.processes = [
        Process("ingest", "xrfhub", "0.1.0", "2024-05-01T12:00:00+00:00",
                {"files": ["PS1234.spe"], "replace": False}, {}),
        Process("alignment", "xrfhub.align", "0.1.0", "2024-05-01T12:00:01+00:00",
                {"method": "mean", "window_mm": 10.0},
                {"matched_depth_mm": np.array([1012.5, 1014.5]), "n_matched": np.array([2, 0]),
                 "sample_of_spectrum": np.array([[0, 1], [1, -1]], dtype=np.int32)}),
    ]
    return rec


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    path = tmp_path_factory.mktemp("nexus") / "PS1234-1.nxs"
    rec = _record()
    write_core(path, rec)
    return path, rec


def assert_records_equal(a: CoreRecord, b: CoreRecord):
    assert (a.core, a.igsn) == (b.core, b.igsn)
    assert list(a.scans) == list(b.scans)
    for name in a.scans:
        assert b.scans[name].counts.dtype == np.uint32
        np.testing.assert_array_equal(a.scans[name].counts, b.scans[name].counts)
        pd.testing.assert_frame_equal(a.scans[name].coords, b.scans[name].coords)
    pd.testing.assert_frame_equal(a.lab, b.lab)
    pd.testing.assert_frame_equal(a.lab_flags, b.lab_flags)
    assert a.lab_units == b.lab_units
    assert a.sources == b.sources
    assert [(p.name, p.program, p.version, p.date, p.parameters) for p in a.processes] == \
           [(p.name, p.program, p.version, p.date, p.parameters) for p in b.processes]
    for pa, pb in zip(a.processes, b.processes):
        assert list(pa.data) == list(pb.data)
        for key in pa.data:
            assert pb.data[key].dtype == pa.data[key].dtype
            np.testing.assert_array_equal(pa.data[key], pb.data[key])


def test_round_trip_is_exact(written):
    path, rec = written
    back = read_core(path)
    assert_records_equal(rec, back)
    assert set(back.scans["scan_0100_Run1_10kV_rep0"].coords.columns) >= set(SPECTRUM_COORDS)
    assert back.scans["scan_0100_Run1_30kV_rep0"].n_channels == 1024


def test_both_validators_accept_a_written_file(written):
    path, _ = written
    assert validate_core_file(path) == []
    n_errors, report = nxcheck(path)
    assert n_errors == 0, report
    # one application-definition run per scan entry plus the base-class run
    assert report.count("Total number of errors: 0") == 4
    assert report.count("Application Definition: NXxrf_core_scan") == 3


def test_plain_nxcheck_command_checks_a_scan_entry_first(written):
    """`nxcheck -a schemas/NXxrf_core_scan.nxdl.xml FILE` (DESIGN's criterion) passes."""
    exe = Path(sys.executable).with_name("nxcheck")
    if not exe.exists():
        pytest.skip("the nxcheck command is not installed beside this Python")
    out = subprocess.run([str(exe), str(path := written[0]), "-a", str(schema_path())],
                         capture_output=True, text=True, timeout=120).stdout
    assert "Path: /scan_0100_Run1_10kV_rep0" in out, out
    assert "Total number of errors: 0" in out, out
    assert path.exists()


def test_file_structure_follows_the_definition(written):
    path, rec = written
    with h5py.File(path) as f:
        assert list(f)[-1] == "core" and f.attrs["default"] == "scan_0100_Run1_10kV_rep0"
        assert f.attrs["creator"].startswith("xrfhub ")
        e = f["scan_0100_Run1_10kV_rep0"]
        assert e["definition"][()].decode() == "NXxrf_core_scan"
        # the scanner's local time has no zone: kept as written, not passed off as NX_DATE_TIME
        assert "start_time" not in e
        assert e["local_start_time"][()].decode() == "2019-03-01T10:00:00"
        assert e["instrument/source/anode_material"][()].decode() == "unknown"
        np.testing.assert_array_equal(e["instrument/source/voltage"][()], np.full(6, 10.0))
        assert e["instrument/source/voltage"].attrs["units"] == "kV"
        assert e["instrument/slit/y_gap"].attrs["units"] == "mm"
        data = e["data"]
        assert data.attrs["signal"] == "counts"
        assert list(data.attrs["axes"]) == ["depth", "energy"]
        assert (data.attrs["depth_indices"], data.attrs["energy_indices"]) == (0, 1)
        counts = data["counts"]
        assert counts.dtype == np.uint32 and counts.attrs["units"] == "counts"
        assert counts.attrs["interpretation"] == "spectrum"
        assert counts.compression == "gzip" and counts.shuffle and counts.chunks == (6, 2048)
        assert data["depth"].attrs["units"] == "mm" and data["energy"].attrs["units"] == "keV"
        # nominal energy = median of the non-default calibrations (gain 0.0201..0.02015)
        np.testing.assert_allclose(data["energy"][:3], -0.01 + np.median(
            [0.0201, 0.02011, 0.02012, 0.02014, 0.02015]) * np.arange(3))
        # a section token with a dash gives a NeXus-safe entry name; the scan name is kept
        odd = f["scan_A_1_Run1_10p5kV_rep0"]
        assert odd["entry_identifier"][()].decode() == "scan_A-1_Run1_10p5kV_rep0"
        table = f["core/sources"]
        assert table["checksum"].asstr()[0] == SHA and table["algorithm"][()].decode() == "sha256"
        assert f["core/lab/CaCO3"].attrs["units"] == "wt%"
        assert f["core/lab/CaCO3"].attrs["unit_as_written"] == "%"
        assert f["core/alignment/parameters/type"][()].decode() == "application/json"


def test_xarray_sees_named_dimensions(written):
    path, rec = written
    block = rec.scans["scan_0100_Run1_10kV_rep0"]
    with xr.open_dataset(path, engine="h5netcdf", group="scan_0100_Run1_10kV_rep0/data") as ds:
        assert ds["counts"].dims == ("depth", "energy")
        assert ds.sizes == {"depth": 6, "energy": 2048}
        np.testing.assert_array_equal(ds["depth"].values, block.coords["depth_mm"].to_numpy())
        np.testing.assert_array_equal(ds["counts"].values, block.counts)
        assert ds["position"].dims == ("depth",)
        assert ds["energy"].attrs["units"] == "keV"
    with xr.open_dataset(path, engine="h5netcdf", group="core/lab") as lab:
        assert lab["CaCO3"].dims == ("sample",)
        np.testing.assert_array_equal(lab["TOC"].values, [0.8, 1.1, 0.3])


def test_summary_reads_no_counts(written):
    path, _ = written
    s = read_core_summary(path)
    assert s["core"] == "PS1234-1" and s["igsn"] == "IEAWI0001"
    assert s["scans"]["scan_0100_Run1_10kV_rep0"] == {
        "n_spectra": 6, "n_channels": 2048, "depth_min_mm": 1012.5, "depth_max_mm": 1022.5}
    assert s["n_spectra"] == 13 and s["depth_range_mm"] == (1012.5, 1022.5)
    assert s["n_lab_samples"] == 3 and s["sources"] == ["PS1234.spe", "lab.tab"]


def test_checksums_hash_values_not_compression(written, tmp_path):
    path, rec = written
    sums = array_checksums(path)
    counts = rec.scans["scan_0100_Run1_10kV_rep0"].counts
    assert sums["scan_0100_Run1_10kV_rep0/data/counts"] == \
        hashlib.sha256(counts.astype("<u4").tobytes()).hexdigest()
    plain = tmp_path / "plain.nxs"
    write_core(plain, rec, compression=None)
    assert array_checksums(plain) == sums  # same values, no filters: same digests
    changed = _record()
    changed.scans["scan_0100_Run1_10kV_rep0"].counts[3, 100] += 1
    write_core(plain, changed)
    diff = {k for k, v in array_checksums(plain).items() if sums[k] != v}
    assert diff == {"scan_0100_Run1_10kV_rep0/data/counts"}


def test_removing_a_required_field_fails_both_validators(written, tmp_path):
    bad = tmp_path / "bad.nxs"
    bad.write_bytes(written[0].read_bytes())
    with h5py.File(bad, "a") as f:
        del f["scan_0100_Run1_30kV_rep0/instrument/source/voltage"]
    n_errors, report = nxcheck(bad)
    assert n_errors >= 1
    assert "voltage" in report and "required field is not in the NeXus file" in report
    problems = validate_core_file(bad)
    assert any("instrument/source/voltage" in p and "30kV" in p for p in problems), problems


def test_wrong_definition_and_broken_depth_order_are_reported(written, tmp_path):
    bad = tmp_path / "bad.nxs"
    bad.write_bytes(written[0].read_bytes())
    with h5py.File(bad, "a") as f:
        depth = f["scan_0100_Run1_10kV_rep0/data/depth"]
        depth[2], depth[3] = depth[3], depth[2]
        f["scan_0100_Run1_10kV_rep0/data/counts"].attrs["units"] = "cps"
    problems = validate_core_file(bad)
    assert any("not strictly increasing at point 3" in p for p in problems), problems
    assert any("@units must be 'counts'" in p for p in problems), problems
    # nxcheck has no notion of ordering; a wrong enumerated value is what it can catch
    with h5py.File(bad, "a") as f:
        src = f["scan_0100_Run1_10kV_rep0/instrument/source"]
        del src["probe"]
        src["probe"] = "neutron"
    n_errors, report = nxcheck(bad)
    assert n_errors >= 1 and "not a member of the enumerated list" in report


def test_lab_only_core_round_trips_and_validates(tmp_path):
    rec = _record(with_scans=False)
    path = tmp_path / "lab_only.nxs"
    write_core(path, rec)
    assert_records_equal(rec, read_core(path))
    assert validate_core_file(path) == []
    n_errors, report = nxcheck(path)
    assert n_errors == 0 and "only base classes checked" in report
    s = read_core_summary(path)
    assert s["scans"] == {} and s["depth_range_mm"] is None and s["n_lab_samples"] == 3


def test_core_without_lab_or_processes(tmp_path):
    rec = _record(with_lab=False)
    rec.processes, rec.igsn = [], ""
    path = tmp_path / "bare.nxs"
    write_core(path, rec)
    back = read_core(path)
    assert_records_equal(rec, back)
    assert back.lab.empty and back.lab_units == {} and back.processes == []
    assert validate_core_file(path) == [] and nxcheck(path)[0] == 0


def test_partial_last_chunk_is_stored_as_standard_gzip(tmp_path):
    """Chunks compressed by xrfhub decode with HDF5's own filters, including the edge chunk."""
    rng = np.random.default_rng(7)
    block = SpectraBlock.from_spectra(_spectra(3, 64))
    n = 1030
    counts = rng.integers(0, 2**32 - 1, size=(n, 64), dtype=np.uint32)
    coords = pd.concat([block.coords.iloc[[0]]] * n, ignore_index=True)
    coords["depth_mm"] = np.arange(n) * 0.5
    rec = CoreRecord(core="C1", scans={"scan_x": SpectraBlock(counts, coords)})
    path = tmp_path / "c1.nxs"
    write_core(path, rec, level=6)
    with h5py.File(path) as f:
        ds = f["scan_x/data/counts"]
        assert ds.chunks == (1024, 64) and ds.compression_opts == 6
        np.testing.assert_array_equal(ds[1020:], counts[1020:])
    assert_records_equal(rec, read_core(path))


def test_writer_refuses_depths_that_do_not_increase(tmp_path):
    rec = _record(with_lab=False)
    block = rec.scans["scan_0100_Run1_10kV_rep0"]
    block.coords.loc[4, "depth_mm"] = block.coords.loc[3, "depth_mm"]
    with pytest.raises(StoreError, match=r"bad\.nxs: scan 'scan_0100_Run1_10kV_rep0'.*strictly"):
        write_core(tmp_path / "bad.nxs", rec)


def test_truncated_file_raises_store_error_naming_it(written, tmp_path):
    cut = tmp_path / "cut.nxs"
    data = written[0].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match="cut.nxs"):
        read_core(cut)
    with pytest.raises(StoreError, match="cut.nxs"):
        read_core_summary(cut)
    assert validate_core_file(cut) and "cut.nxs" in validate_core_file(cut)[0]


def test_a_file_without_core_entry_is_refused(tmp_path):
    path = tmp_path / "other.nxs"
    with h5py.File(path, "w") as f:
        f.attrs["NX_class"] = "NXroot"
    with pytest.raises(StoreError, match="other.nxs: not an xrfhub core file"):
        read_core(path)


def test_scan_name_matches_records(written):
    key = ("PS1234-1", "A-1", "Run1", 10.5, 0)
    assert scan_name(key) in read_core(written[0]).scans


@pytest.mark.slow
def test_write_speed_10000_spectra(tmp_path):
    rng = np.random.default_rng(3)
    template = SpectraBlock.from_spectra(_spectra(1, 2048)).coords
    records = []
    for c in range(4):
        scans = {}
        for k in range(2):
            coords = pd.concat([template] * 1250, ignore_index=True)
            coords["depth_mm"] = np.arange(1250) * 2.0
            scans[f"scan_{k}"] = SpectraBlock(rng.poisson(30, (1250, 2048)).astype(np.uint32), coords)
        records.append(CoreRecord(core=f"C{c}", scans=scans))
    start = time.perf_counter()
    for c, rec in enumerate(records):
        write_core(tmp_path / f"C{c}.nxs", rec)
    elapsed = time.perf_counter() - start
    assert elapsed < 4.0, f"writing 10,000 x 2048 spectra took {elapsed:.2f} s"
