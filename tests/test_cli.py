"""The command line as a user runs it: fresh processes, exit codes, messages, files written.

Killed ingests, concurrent writers and damaged stores are tested in test_faults.py.
"""
import pandas as pd
import xarray as xr

from conftest import run_cli


def test_ingest_info_validate_query_end_to_end(corpus, tmp_path):
    store = tmp_path / "hub"
    out = run_cli("ingest", corpus.scans, corpus.files["pangaea"], "--store", store)
    assert "60 spectra, 11 lab samples" in out.stdout
    info = run_cli("info", store).stdout
    assert "PS75-056-1" in info and "40 spectra" in info and "lab samples: 11" in info and "2 unmatched" in info
    assert "lab cores without scans: PS75/999-9" in info
    assert "warnings (1)" in info and "PS75/999-9" in info  # the lab core with no scan, kept and reported
    assert "store is valid" in run_cli("validate", store).stdout
    run_cli("query", store, "--core", "PS75-056-1", "--depth", "100:150", "--out", tmp_path / "sel.csv")
    table = pd.read_csv(tmp_path / "sel.csv")
    assert len(table) == 10 and set(table["depth_mm"]) == {105, 115, 125, 135, 145}
    assert list(table.columns[:2]) == ["core", "depth_mm"] and "ch0000" not in table
    run_cli("query", store, "--core", "SO264-09-2", "--out", tmp_path / "sel.parquet", "--counts")
    wide = pd.read_parquet(tmp_path / "sel.parquet")
    assert len(wide) == 20 and wide.filter(like="ch").shape[1] == 2048
    run_cli("query", store, "--depth", "0:20", "--out", tmp_path / "sel.nc")
    nc = xr.open_dataset(tmp_path / "sel.nc", engine="h5netcdf")
    assert nc.sizes["spectrum"] == 6  # 5 and 15 mm of two cores, 10 and 30 kV of one
    run_cli("query", store, "--kind", "samples", "--out", tmp_path / "samples.csv")
    assert len(pd.read_csv(tmp_path / "samples.csv")) == 11


def test_bad_input_exits_non_zero_with_the_file_named(corpus, tmp_path):
    store = tmp_path / "hub"
    bad = corpus.scans / "PS75-056-1" / "Run 1 at  10kV" / "broken.spe"
    bad.write_text("$SPEC_ID:\nPS75-056-1_0000   3.0mm\n$DATA:\n0 2047\n1 2 3\n")
    result = run_cli("ingest", corpus.scans, "--store", store, check=False)
    assert result.returncode == 2
    assert "broken.spe" in result.stderr and "found 3 counts, expected 2048" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (store / "generations").exists() or not any((store / "generations").iterdir())
    ok = run_cli("ingest", corpus.scans, "--store", store, "--skip-bad")
    assert "skipped" in ok.stdout and "broken.spe" in ok.stdout


def test_unknown_file_named_explicitly_lists_known_formats(tmp_path):
    odd = tmp_path / "notes.txt"
    odd.write_text("hello, these are my notes\n")
    result = run_cli("ingest", odd, "--store", tmp_path / "hub", check=False)
    assert result.returncode == 2 and "notes.txt" in result.stderr and "avaatech-spe" in result.stderr
