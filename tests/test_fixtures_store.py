"""Real instrument files (../shared/fixtures) through the whole store: ingest, open, validate.

Skips with a reason when the fixtures folder is absent (it lives beside the checkout).
"""
import shutil

import numpy as np
import pytest
import xarray as xr

import xrfhub
from xrfhub.errors import InputError


def test_baxil_export_into_the_elements_kind(fixtures_dir, tmp_path):
    store = tmp_path / "hub"
    report = xrfhub.ingest([fixtures_dir / "xrf" / "avaatech_baxil_ZUG18-7_10kV_raw.csv"], store)
    assert report.n_points == 416
    el = xrfhub.open(store)  # the only kind present
    assert el.attrs["kind"] == "elements" and el.sizes["point"] == 416
    sel = el.sel(core="ZUG18-7", depth_mm=slice(50, 54))
    assert sel["area"].sel(line="Ca-Ka").values.tolist() == [433453.0, 2028344.0, 3062781.0]
    assert (el["flags"].values == "negative").sum() == 784  # negative areas kept and flagged
    assert (el["area"].values < 0).sum() == 784
    assert xrfhub.validate(store).ok
    before = xrfhub.open(store, index=False).load()
    xrfhub.rebuild(store)
    xr.testing.assert_identical(before, xrfhub.open(store, index=False).load())


def test_workbook_needs_a_core_id(fixtures_dir, tmp_path):
    book = fixtures_dir / "xrf" / "avaatech_export_example_two_energies.xlsx"
    with pytest.raises(InputError, match="--core"):
        xrfhub.ingest([book], tmp_path / "hub")
    xrfhub.ingest([book], tmp_path / "hub", core="PEACH-1")
    el = xrfhub.open(tmp_path / "hub", "elements")
    assert el.sizes["point"] == 166 and set(el["tube_kv"].values) == {10.0, 30.0}


def test_itrax_folder(fixtures_dir, tmp_path):
    folder = tmp_path / "CD166_19_S1"
    folder.mkdir()
    for name, target in (("itrax_CD166_19_S1_Results.txt", "Results.txt"),
                         ("itrax_CD166_19_S1_xrf_document.txt", "document.txt"),
                         ("itrax_Results_settings.dfl", "Results_settings.dfl")):
        shutil.copy(fixtures_dir / "xrf" / name, folder / target)
    store = tmp_path / "hub"
    report = xrfhub.ingest([folder], store, section_top_mm=500.0)
    assert report.n_points == 1283
    el = xrfhub.open(store, "elements")
    assert int((~el["valid"].values).sum()) == 51
    assert el["depth_mm"].values.min() == pytest.approx(531.54) and el["tube_kv"].values[0] == 30.0
    assert xrfhub.validate(store).ok


def test_itrax_spectrum_with_its_settings(fixtures_dir, tmp_path):
    folder = tmp_path / "scan"
    folder.mkdir()
    shutil.copy(fixtures_dir / "xrf" / "itrax_L000676.spe", folder / "L000676.spe")
    shutil.copy(fixtures_dir / "xrf" / "itrax_Results_settings.dfl", folder / "Results_settings.dfl")
    store = tmp_path / "hub"
    xrfhub.ingest([folder / "L000676.spe"], store, core="CD166_19", section_top_mm=0.0)
    ds = xrfhub.open(store)
    assert ds.sizes["spectrum"] == 1 and int(ds["counts"].values.sum()) == 586_272
    assert ds["calibration_source"].values[0] == "settings.dfl"
    assert ds["energy_gain_kev"].values[0] == pytest.approx(0.01026698)


def test_unrecognised_fixture_is_named(fixtures_dir, tmp_path):
    with pytest.raises(InputError, match="unrecognised content") as err:
        xrfhub.ingest([fixtures_dir / "xrf" / "itrax_CD166_19_S1_rad_document.txt"], tmp_path / "hub")
    assert "rad_document" in str(err.value)
    assert not np.any([p.name == "store.json" and p.read_text().count('"current": "g') for p in tmp_path.rglob("*")])
