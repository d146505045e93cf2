"""Lab tables and single-point files as users hand them over (issue 12, items 13-15).

Tested on the real ITRAX calibration tables (``../shared/fixtures/real/itraxBook_CD166_19_(2020)/
calibration_samples/``, skipped when absent) and on files the tests write.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xrfhub
from xrfhub.errors import InputError
from xrfhub.readers import avaatech_spe, lab_csv, lab_rules
from xrfhub.sources import Candidate, parse_one

from conftest import SHARED, run_cli
from test_mca_readers import amptek_bytes

CAL = SHARED / "fixtures" / "real" / "itraxBook_CD166_19_(2020)" / "calibration_samples"
ICP = CAL / "calibration_data.csv"
BENCHTOP = CAL / "CD166_19_benchtop.csv"


@pytest.fixture
def cal():
    if not ICP.is_file():
        pytest.skip(f"real calibration tables not found at {CAL} (they live in ../shared beside the checkout)")
    return CAL


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------- item 13


def test_real_icp_table_needs_core_depth_unit_and_units(cal):
    with pytest.raises(InputError, match="no core column"):
        lab_csv.read(ICP)
    # its depths (330-340, ...) are 10-unit slices: a 1 cm slice in mm, 10 cm in cm, 10 m in m,
    # so they are read in mm; its element columns have no unit, and its 'weight' and 'Dilution'
    # columns say they are concentrations in a digest: refused, saying so
    with pytest.raises(InputError, match=r"concentrations without a unit \(Ag, Al, B.*never taken as wt%.*--units"
                                         r".*'weight', 'tare', 'Dilution'.*solution") as info:
        lab_csv.read(ICP, core="CD166_19")
    assert "depth" not in str(info.value)
    table = lab_csv.read(ICP, core="CD166_19", units="mg/kg")
    assert table.metadata["assumed_depth_unit"].startswith("taken as mm")
    # the weighing columns are not lab values: left out, not stored as wt%
    assert not {"weight", "tare", "wet", "dry", "Dilution"} & set(table.samples.columns)
    assert table.metadata["left_out"].startswith("weight, tare, wet, dry, Dilution: no unit")
    assert len(table.samples) == 60 and set(table.samples["core"]) == {"CD166_19"}
    first = table.samples.iloc[0]
    assert (first["sample_id"], first["top_mm"], first["bottom_mm"]) == ("B14", 330, 340)
    assert first["Ca"] == pytest.approx(502.972e-4)  # mg/kg -> wt%
    assert table.units["Ca"] == "mg/kg" and "--units" in table.metadata["unit:Ca"]
    # QC rows kept apart, not refused: two blanks and three MESS-4 reference measurements
    assert [(r["line"], r["qc"], r["label"]) for r in table.qc] == [
        (62, "blank", "BLANK"), (63, "blank", "BLANK"), (64, "standard", "MESS-4"), (65, "standard", "MESS-4"),
        (66, "standard", "MESS-4")]
    assert table.qc[0]["values"]["SampleID"] == "B24" and table.qc[2]["values"]["Ca"] == "28.461"
    assert table.metadata["qc_rows"] == "5 QC row(s) kept apart: BLANK (lines 62, 63), MESS-4 (lines 64, 65, 66)"


def test_real_icp_ingest_reports_qc_and_keeps_them(cal, tmp_path):
    store = tmp_path / "store"
    report = xrfhub.ingest([ICP], store, core="CD166_19", depth_unit="mm", units="ppm")
    assert report.n_samples == 60
    assert any("5 QC row(s) kept apart" in w for w in report.warnings)
    sources = xrfhub.store.generations.Store(store).current().manifest()["sources"]
    assert [r["label"] for r in sources["calibration_data.csv"]["qc_rows"]] == ["BLANK"] * 2 + ["MESS-4"] * 3
    assert xrfhub.validate(store).ok


def test_real_benchtop_reads_its_unnamed_interval_column_and_censored_values(cal):
    # column 1 has no name and holds '33-34' (the sample's interval), column 2 no name and the
    # measurement time; 'ND' is no value, '<0.0001' is below the detection limit
    with pytest.raises(InputError, match="no core column") as info:
        lab_csv.read(BENCHTOP)
    assert "depth" not in str(info.value)
    table = lab_csv.read(BENCHTOP, core="CD166_19")
    first = table.samples.iloc[0]
    assert (first["top_mm"], first["bottom_mm"], first["mid_mm"]) == (330, 340, 335)  # cm: 1 cm slices
    assert table.metadata["assumed_depth_unit"].startswith("taken as cm")
    assert "column 1 (no name)" in table.metadata["depth_interval"]
    assert "unnamed column 2" in table.metadata["ignored_columns"]
    assert first["Ca"] == 33 and table.units["Ca"] == "mass%" and table.units["Cu"] == "ppm"
    censored = table.flags["Cu"] == "<0.0001"
    assert censored.sum() > 0 and table.samples.loc[censored, "Cu"].isna().all()
    # the ICP table of the same samples, read in mm, lands on the same depths
    icp = lab_csv.read(ICP, core="CD166_19", units="mg/kg").samples
    assert set(icp["top_mm"]) & set(table.samples["top_mm"])


def test_real_benchtop_ingest_says_what_it_assumed_and_keeps_it_with_the_data(cal, tmp_path):
    import h5py, json

    store = tmp_path / "store"
    report = xrfhub.ingest([BENCHTOP], store, core="CD166_19")
    assert report.n_samples == 57
    said = [w for w in report.warnings if w.startswith("CD166_19_benchtop.csv: assumed depth unit: taken as cm")]
    assert len(said) == 1
    nexus = next(store.glob("generations/*/nexus/CD166_19.nxs"))
    with h5py.File(nexus) as f:
        params = json.loads(f["core/ingest/parameters/data"][()])
    assert params["read_as"]["CD166_19_benchtop.csv"]["assumed_depth_unit"].startswith("taken as cm")
    assert xrfhub.validate(store).ok


def test_written_units_row_and_units_option(tmp_path):
    path = write(tmp_path, "bench.csv",
                 "core,depth_cm,Ca,Fe,Zr\n,,mass%,mass%,ppm\nA,10,20.5,3.1,150\nA,11,ND,2.9,160\n")
    table = lab_csv.read(path)
    assert table.units == {"Ca": "mass%", "Fe": "mass%", "Zr": "ppm"}
    assert table.metadata["units_row"] == "line 2"
    np.testing.assert_allclose(table.samples["Zr"], [0.015, 0.016])
    assert np.isnan(table.samples["Ca"][1])
    # no units at all (and a total no rock has): refused, then per-column and default units fill
    # only what is missing
    path = write(tmp_path, "plain.csv", "core,depth_cm,Ca,Fe,SiO2,TOC\nA,10,20.5,3.1,500,0.4\n")
    with pytest.raises(InputError, match=r"without a unit \(Ca, Fe, SiO2\)") as err:
        lab_csv.read(path)
    assert err.value.field == "Ca"
    table = lab_csv.read(path, units="ppm,Ca=wt%,SiO2=%")
    assert table.units == {"Ca": "wt%", "Fe": "ppm", "SiO2": "%", "TOC": ""}  # TOC: wt% by convention
    assert table.samples["Fe"][0] == pytest.approx(3.1e-4)
    with pytest.raises(InputError, match="unknown unit 'furlongs'"):
        lab_csv.read(path, units="furlongs")


@pytest.mark.parametrize("cell, kind", [
    ("BLANK", "blank"), ("Procedural blank 2", "blank"), ("blk-3", "blank"), ("STD", "standard"),
    ("CRM", "standard"), ("MESS-4", "standard"), ("NIST 2702", "standard"), ("PACS-3", "standard"),
    ("SRM1646a", "standard"), ("B14 dup", "duplicate"), ("DUP", "duplicate"), ("B14-duplicate", "duplicate"),
    ("B14", ""), ("330", ""), ("Standing", ""), ("W1", ""), ("Reflux", ""),
])
def test_qc_kinds(cell, kind):
    assert lab_rules.qc_kind([cell]) == kind


def test_written_qc_rows_and_bad_depth_still_refused(tmp_path):
    text = "core,sample,top_cm,bottom_cm,CaCO3 [%]\nA,s1,0,1,40\nA,s1 dup,0,1,41\nSTD,,,,50\nA,s2,1,2,38\n"
    table = lab_csv.read(write(tmp_path, "qc.csv", text))
    assert list(table.samples["sample_id"]) == ["s1", "s2"]
    assert [(r["line"], r["qc"]) for r in table.qc] == [(3, "duplicate"), (4, "standard")]
    with pytest.raises(InputError, match="depth is 'ten'") as err:
        lab_csv.read(write(tmp_path, "bad.csv", "core,top_cm,bottom_cm,CaCO3 [%]\nA,ten,11,40\n"))
    assert err.value.line == 2
    with pytest.raises(InputError, match="all 1 rows are QC rows"):
        lab_csv.read(write(tmp_path, "only.csv", "core,top_cm,bottom_cm,CaCO3 [%]\nBLANK,,,0.1\n"))


def test_lab_table_takes_core_from_ingest(tmp_path):
    path = write(tmp_path, "lab.csv", "depth_cm,CaCO3 [%]\n10,40\n20,41\n")
    report = xrfhub.ingest([path], tmp_path / "store", core="GC1")
    assert report.n_samples == 2 and report.cores == ["GC1"]


# ---------------------------------------------------------------------------- item 14


@pytest.mark.parametrize("header", ["sample depth (cm)", "Depth in core [cm]", "Sample_Depth (cm)", "mid depth_cm"])
def test_depth_headers_recognised(tmp_path, header):
    path = write(tmp_path, "lab.csv", f"core,{header},CaCO3 [%]\nA,10,40\n")
    assert lab_csv.read(path).samples["mid_mm"][0] == 100


def test_water_depth_is_not_a_sample_depth(tmp_path):
    path = write(tmp_path, "lab.csv", "core,water depth (m),CaCO3 [%]\nA,4000,40\n")
    with pytest.raises(InputError, match="no depth column"):
        lab_csv.read(path)


def test_lab_looking_table_without_depth_says_so_briefly(tmp_path):
    path = write(tmp_path, "elements.csv", "sample,Ca,Fe,Ti,Zr,Sr,Rb,K,Mn\nA,1,2,3,4,5,6,7,8\n")
    parsed = parse_one(Candidate(path, path.name, True))
    assert parsed.error is not None and "no depth column" in parsed.error.reason
    assert "known formats" not in str(parsed.error) and len(str(parsed.error)) < 500


@pytest.mark.slow
def test_cli_depth_unit_option(tmp_path):
    path = write(tmp_path, "lab.csv", "core,depth,CaCO3 [%]\nA,10,40\n")
    bad = run_cli("ingest", path, "--store", tmp_path / "s", check=False)
    assert bad.returncode == 2 and "--depth-unit" in bad.stderr
    run_cli("ingest", path, "--store", tmp_path / "s", "--depth-unit", "cm")
    assert xrfhub.info(tmp_path / "s")["cores"]["A"]["n_samples"] == 1


# ---------------------------------------------------------------------------- item 15

ORTEC_HEAD = "$SPEC_ID:\n{spec_id}\n$SPEC_REM:\nDET# 1\nDETDESC# {det}\n$MEAS_TIM:\n300 310\n$DATA:\n0 7\n"


def test_ortec_float_counts_and_depth_option(tmp_path):
    path = write(tmp_path, "point.spe", ORTEC_HEAD.format(spec_id="Sample 1", det="SDD")
                 + "0.\n0.\n5.\n12.000\n40.\n33.\n10.\n2.\n")
    with pytest.raises(InputError, match="--depth"):
        avaatech_spe.read(path, core="X")
    (s,) = avaatech_spe.read(path, core="X", depth_mm=15.0)
    assert s.counts.tolist() == [0, 0, 5, 12, 40, 33, 10, 2] and s.depth_mm == 15.0
    bad = write(tmp_path, "half.spe", ORTEC_HEAD.format(spec_id="Sample 1", det="SDD") + "0.\n0.5\n" + "1\n" * 6)
    with pytest.raises(InputError, match="expected an integer count, found '0.5'"):
        avaatech_spe.read(bad, core="X", depth_mm=15.0)


@pytest.mark.parametrize("spec_id, det", [("NGR System 3 - 397-U1587A-2H-1", "NGR3 3x5"),
                                          ("Sample 1", "NaI(Tl) 3x3 detector"), ("Sample 1", "LaBr3 probe")])
def test_ortec_gamma_spectrum_refused_before_core_questions(tmp_path, spec_id, det):
    path = write(tmp_path, "ngr.spe", ORTEC_HEAD.format(spec_id=spec_id, det=det) + "0.\n" * 8)
    with pytest.raises(InputError, match="not an XRF spectrum") as err:
        avaatech_spe.read(path)  # no core, no depth: the detector is what is wrong
    assert err.value.line in (2, 5)
    if spec_id.startswith("NGR"):  # as a user meets it: exit 2, nothing stored
        result = run_cli("ingest", path, "--store", tmp_path / "s", check=False)
        assert result.returncode == 2 and "not an XRF spectrum" in result.stderr


@pytest.mark.slow
def test_cli_depth_for_amptek_mca(tmp_path):
    counts = np.random.default_rng(1).integers(0, 50, 1024).astype(np.uint32)
    path = tmp_path / "point.mca"
    path.write_bytes(amptek_bytes(counts))
    bad = run_cli("ingest", path, "--store", tmp_path / "s", "--core", "GC1", check=False)
    assert bad.returncode == 2 and "--depth" in bad.stderr
    run_cli("ingest", path, "--store", tmp_path / "s", "--core", "GC1", "--depth", "123.5")
    rows = xrfhub.query(tmp_path / "s", tmp_path / "out.csv", kind="spectra")
    assert rows == 1


def test_real_itrax_folder_as_handed_over_lacks_only_the_icp_units(cal, tmp_path):
    # the folder's name (itraxBook_CD166_19_(2020)) and the benchtop file's name both name the one
    # scanned core: the lab tables and sum spectra take it; what no file says (the ICP table's
    # units) is the only refusal
    with pytest.raises(InputError) as info:
        xrfhub.ingest([CAL.parent], tmp_path / "store")
    refused = [info.value, *info.value.others]
    assert [Path(e.path).name for e in refused] == ["calibration_data.csv"]
    assert "concentrations without a unit" in refused[0].reason and "core" not in refused[0].reason
    assert not (tmp_path / "store" / "generations").exists() or not any((tmp_path / "store" / "generations").iterdir())
    report = xrfhub.ingest([CAL.parent], tmp_path / "store", units="mg/kg", skip_bad=True)
    assert report.n_samples == 60 + 57 and report.n_spectra == 104
    assert sum("core from path: 'CD166_19'" in w for w in report.warnings) == 2  # the two lab tables
    assert [Path(name).name for name, _ in report.skipped] == ["sumspectra_cd166-102.spe", "sumspectra_cd166-33.spe"]


def test_major_oxides_without_a_unit_are_read_as_percent_from_their_totals(tmp_path):
    text = "core,depth_cm,SiO2,Al2O3,CaO,Zr\nA,1,55.1,14.2,8.0,0.02\nA,2,48.3,12.9,15.5,0.018\nA,BLANK,0.1,0.01,0.02,0\n"
    table = lab_csv.read(write(tmp_path, "majors.csv", text))
    assert table.samples["SiO2"].iloc[0] == pytest.approx(55.1)
    assert "each sums to 77-77: read as %" in table.metadata["oxide_units"]
    assert table.metadata["unit:SiO2"] == "% (read from the oxide total)"
    # totals far from a rock's (ppm-sized numbers), or no major oxide: asked for, as before
    for bad in ("core,depth_cm,SiO2,Al2O3\nA,1,550,142\n", "core,depth_cm,Ca,Fe,Zr\nA,1,30,4,0.02\n"):
        with pytest.raises(InputError, match="concentrations without a unit"):
            lab_csv.read(write(tmp_path, "majors.csv", bad))
    # a --units for all (meant for a folder's other tables) gives way, and says so; one for the
    # column does not
    table = lab_csv.read(write(tmp_path, "majors.csv", text), units="ppm")
    assert table.units["SiO2"] == "%" and table.metadata["oxide_units"].startswith("--units ppm not used: ")
    assert lab_csv.read(write(tmp_path, "majors.csv", text), units="ppm,SiO2=ppm").units["SiO2"] == "ppm"
