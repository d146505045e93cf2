"""Formats users hand over with IODP data (issue 12, item 16): Bruker UXD and RAW v4 diffraction
patterns, portable-XRF exports. Each is tested on the real file (``../shared/fixtures/real/
iodp_SOD-Laboratory/``, skipped when absent) and on files the test writes."""
from __future__ import annotations

import numpy as np
import pytest

import xrfhub
from xrfhub import readers
from xrfhub.errors import InputError, NotStored
from xrfhub.readers import pxrf_export, xrd_raw4, xrd_uxd

from conftest import SHARED
from fuzzing import pxrf_csv_bytes, raw4_bytes, uxd_bytes

IODP = SHARED / "fixtures" / "real" / "iodp_SOD-Laboratory"
XRD = IODP / "XRD" / "U1587A_2H3_66_67_CYL11802171"
PXRF = IODP / "PXRF"


@pytest.fixture
def iodp():
    if not IODP.is_dir():
        pytest.skip(f"real IODP files not found at {IODP} (they live in ../shared beside the checkout)")
    return IODP


# ---------------------------------------------------------------------------- diffraction


def test_real_uxd_and_raw4_are_the_same_pattern(iodp, tmp_path):
    alone = tmp_path / "export.uxd"  # beside its .raw it is not stored (next test); alone it is read
    alone.write_bytes(XRD.with_suffix(".uxd").read_bytes())
    uxd = xrd_uxd.read(alone)
    raw = xrd_raw4.read(XRD.with_suffix(".raw"))
    for p in (uxd, raw):
        assert p.pattern_ids == ["U1587A_2H3_66_67_CYL11802171"]
        assert (p.wavelength, p.wavelength_source) == (1.5406, "file")
        assert p.intensity.shape == (1, 8006) and p.two_theta[0] == 4.0
    assert np.array_equal(uxd.intensity, raw.intensity)  # every count, value for value
    assert np.abs(uxd.two_theta - raw.two_theta).max() < 1e-3  # the UXD rounds the step to 0.008245
    assert raw.two_theta[-1] == pytest.approx(70.0003, abs=1e-3)
    assert uxd.intensity[0, :3].tolist() == [7381, 7565, 7380]
    assert readers.detect(XRD.with_suffix(".uxd")).FORMAT == "bruker-uxd"
    assert readers.detect(XRD.with_suffix(".raw")).FORMAT == "bruker-raw4"


def test_real_xrd_folder_stores_the_raw_once(iodp, tmp_path):
    report = xrfhub.ingest([IODP / "XRD"], tmp_path / "store")
    assert report.added == ["XRD/U1587A_2H3_66_67_CYL11802171.raw"]
    assert [n for n, _ in report.noted] == ["XRD/U1587A_2H3_66_67_CYL11802171.uxd"]
    assert xrfhub.validate(tmp_path / "store").ok


def test_written_uxd_wavelength_option_and_export_alone(tmp_path):
    path = tmp_path / "p.uxd"
    path.write_bytes(uxd_bytes(40, raw_name="p.raw"))
    p = xrd_uxd.read(path)  # names a .raw that is not beside it: read
    assert p.two_theta[1] == pytest.approx(10.02) and p.wavelength_source == "file"
    assert xrd_uxd.read(path, wavelength=0.7093).wavelength == 0.7093
    (tmp_path / "p.raw").write_bytes(raw4_bytes(np.arange(40.0)))
    with pytest.raises(NotStored, match="text export of p.raw"):
        xrd_uxd.read(path)
    path.write_bytes(uxd_bytes(40, wl="nine"))
    with pytest.raises(InputError, match="expected a number") as err:
        xrd_uxd.read(path)
    assert err.value.field == "_WL1"
    path.write_bytes(uxd_bytes(40).replace(b"_WL1 = 1.5406", b"_WL2 = 1.5"))
    with pytest.raises(InputError, match="--wavelength"):
        xrd_uxd.read(path)


def test_written_raw4_layout_and_refusals(tmp_path):
    counts = np.arange(50.0) * 3
    path = tmp_path / "p.raw"
    path.write_bytes(raw4_bytes(counts, start=5.0, step=0.05, wavelength=0.7093, sample="GC1_12"))
    p = xrd_raw4.read(path)
    assert p.pattern_ids == ["GC1_12"] and p.wavelength == pytest.approx(0.7093)
    assert np.array_equal(p.intensity[0], counts) and p.two_theta[-1] == pytest.approx(5 + 49 * 0.05)
    with pytest.raises(InputError, match="truncated"):
        xrd_raw4.read(path, raw=path.read_bytes()[:-10])
    with pytest.raises(InputError, match="several ranges are not read"):
        xrd_raw4.read(path, raw=path.read_bytes() + b"\0" * 16)
    with pytest.raises(InputError, match="0..180"):
        xrd_raw4.read(path, raw=raw4_bytes(counts, start=175.0, step=1.0))
    with pytest.raises(InputError, match="wavelength 0 angstrom"):
        xrd_raw4.read(path, raw=raw4_bytes(counts, wavelength=0.0))


# ---------------------------------------------------------------------------- portable XRF


def test_real_vanta_export_in_ppm_by_closure(iodp):
    t = pxrf_export.read(PXRF / "ExportData-10-13-2019.csv")
    assert len(t.points) == 11  # 12 readings, the Cal Check kept apart
    first = t.points.iloc[0]
    assert (first["core"], first["section"], first["half"], first["text_id"]) == ("385-U1545A-11H", "5", "W",
                                                                                   "CYL10365541")
    assert first["position_mm"] == 600 and first["depth_mm"] == 600
    mg = t.lines.index("Mg")
    assert t.values["concentration"][0, mg] == pytest.approx(2.439685)  # 24396.85 ppm
    assert "Cal Check (line 2)" in t.metadata["qc_rows"]
    assert "the Unit column says %, but every reading sums to 1,000,000: values read as ppm" in t.metadata["warnings"]
    # depths are section offsets: said by the depth scale (ingest warns per core), never a top of 0
    assert set(t.points["depth_scale"]) == {"section-relative"} and t.points["section_top_mm"].isna().all()


def test_real_geoexploration_reads_its_oxides_in_percent_and_says_why(iodp):
    # no unit anywhere, and the readings do not close (36-54 %: carbonate sediment without its
    # CO2 and water); but they report major oxides, which as ppm would leave 99.99 % of the sample
    # unreported: read as %, said
    t = pxrf_export.read(PXRF / "GeoExploration.tsv", section_top_mm_override=0)
    assert "major oxides (MgO, Al2O3, SiO2, K2O) and each sums to 36-54: read as %" in t.metadata["warnings"]
    assert pxrf_export.read(PXRF / "GeoExploration.tsv", units="%", section_top_mm_override=0).values[
        "concentration"][0, t.lines.index("SiO2")] == pytest.approx(18.1759)
    t = pxrf_export.read(PXRF / "GeoExploration.tsv", units="%", section_top_mm_override=0)
    assert len(t.points) == 7 and set(t.points["core"]) == {"397-U1587B-22X"}
    assert t.points["position_mm"].tolist() == [200, 400, 600, 1100, 1160, 1280, 1400]
    sio2 = t.lines.index("SiO2")
    assert t.values["concentration"][0, sio2] == pytest.approx(18.1759)
    assert np.isfinite(t.values["concentration_err"][0, sio2])
    assert t.metadata["qc_rows"].count("BCR-2") == 2  # standards measured before and after


def test_real_pxrf_folder_ingests_and_validates(iodp, tmp_path):
    report = xrfhub.ingest([PXRF], tmp_path / "store")
    assert report.n_points == 18 and len(report.cores) == 12
    assert any("QC row(s) kept apart" in w for w in report.warnings)
    assert xrfhub.validate(tmp_path / "store").ok


def test_written_vanta_utf16_and_utf8(tmp_path):
    for utf16 in (True, False):
        path = tmp_path / f"e{int(utf16)}.csv"
        path.write_bytes(pxrf_csv_bytes(utf16=utf16))
        assert readers.detect(path).FORMAT == "pxrf-export"
        t = pxrf_export.read(path, core="GC9")
        assert len(t.points) == 4 and set(t.points["core"]) == {"GC9"}
        assert t.points["position_mm"].tolist() == [50, 150, 250, 350]
        fe = t.lines.index("Fe")
        assert np.isnan(t.values["concentration"][2, fe]) and t.flags[2, fe] == "nd"
    # readings that do not close at 10^6 and no unit anywhere: refused
    lines = pxrf_csv_bytes(utf16=False).decode().splitlines()
    lines[0] = lines[0].replace(",LE", ",Zr")
    lines[2:] = [row.rsplit(",", 1)[0] + ",150.00" for row in lines[2:]]  # Zr 150: no longer a closure
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="--units"):
        pxrf_export.read(path)
