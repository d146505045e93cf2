"""Line-name unification and the Avaatech element readers (bAXIL CSV, Excel workbook)."""
from __future__ import annotations

import math
import zipfile

import numpy as np
import pytest

from xrfhub.errors import InputError
from xrfhub.lines import default_line, element_of, is_line, unify_line
from xrfhub.readers import avaatech_spe, avaatech_xlsx, baxil_csv, lab_csv, lab_iodp, lab_pangaea

from conftest import spe_text

BAXIL = "xrf/avaatech_baxil_ZUG18-7_10kV_raw.csv"
WORKBOOK = "xrf/avaatech_export_example_two_energies.xlsx"


# --------------------------------------------------------------------------- line names


@pytest.mark.parametrize("written, unified", [
    ("Ca Ka", "Ca-Ka"), ("Ca-Ka", "Ca-Ka"), ("Ca_Ka", "Ca-Ka"), ("CaKa", "Ca-Ka"), ("ca-ka", "Ca-Ka"),
    ("Ca K-alpha", "Ca-Ka"), ("Ca Kα", "Ca-Ka"), ("Ca", "Ca-Ka"), ("P -Ka", "P-Ka"), ("K -Ka", "K-Ka"),
    ("SKa", "S-Ka"), ("CoKa", "Co-Ka"), ("Sc", "Sc-Ka"), ("Fe Kb1", "Fe-Kb1"), ("Sn", "Sn-Ka"),
    ("Sb", "Sb-La"), ("Ba", "Ba-La"), ("Pb", "Pb-La"), ("I", "I-La"), ("La", "La-La"), ("Pb-Lb1", "Pb-Lb1"),
    ("Mo inc", "Mo-inc"), ("Mo coh", "Mo-coh"), ("Mo_Inc", "Mo-inc"), ("Rh-La-Inc", "Rh-La-inc"),
    ("Rh-Ka-Coh", "Rh-Ka-coh"), ("Fe a*2", "Fe-Ka+Ka"), ("Fe a+b", "Fe-Ka+Kb"),
])
def test_unify_line_spellings(written, unified):
    assert unify_line(written) == unified
    assert unify_line(unified) == unified  # unified names are a fixed point
    assert element_of(written) == unified.split("-")[0]


@pytest.mark.parametrize("text", ["", "S1", "Dt", "MSE", "cps", "Ka", "Xx-Ka", "Ca Kz", "Ca K", "validity"])
def test_unify_line_refuses_non_lines(text):
    with pytest.raises(ValueError):
        unify_line(text)
    assert not is_line(text)


def test_bare_element_rule_switches_between_tin_and_antimony():
    assert [default_line(e) for e in ("Al", "Fe", "Zr", "Sn", "Sb", "Ba", "W", "U")] == \
        ["Ka", "Ka", "Ka", "Ka", "La", "La", "La", "La"]


# --------------------------------------------------------------------------- sniffing


def _pangaea() -> bytes:
    return b"/* DATA DESCRIPTION:\nCitation:\tA (2024): B\n*/\nEvent\tDepth sed [m]\tCaCO3 [%]\nX\t0.1\t12\n"


def test_sniff_claims_only_its_own_content(tmp_path, fixtures_dir):
    baxil = (fixtures_dir / BAXIL).read_bytes()[:8192]
    book = (fixtures_dir / WORKBOOK).read_bytes()[:8192]
    spe = spe_text("PS75-056-1", "0100", 15.0, counts=np.arange(16)).encode()
    lab = b"core,depth_m,CaCO3 [%]\nPS75-056-1,0.015,12.5\n"
    others = {"spe": spe, "pangaea": _pangaea(), "lab": lab}

    assert baxil_csv.sniff(baxil, "ZUG18-7_10kV_raw.csv")
    assert avaatech_xlsx.sniff(book, "example.xlsx")
    assert avaatech_xlsx.sniff(book, "renamed.bin")  # the zip's own part names say xl/
    assert not baxil_csv.sniff(book, "example.xlsx")
    assert not avaatech_xlsx.sniff(baxil, "x.xlsx")
    for name, head in others.items():
        assert not baxil_csv.sniff(head, f"{name}.csv"), name
        assert not avaatech_xlsx.sniff(head, f"{name}.xlsx"), name
    # the readers already registered must not claim the bAXIL table or the workbook
    for module in (avaatech_spe, lab_pangaea, lab_iodp, lab_csv):
        assert not module.sniff(baxil, "ZUG18-7_10kV_raw.csv"), module.FORMAT
        assert not module.sniff(book, "example.xlsx"), module.FORMAT


# --------------------------------------------------------------------------- real bAXIL export


def test_baxil_fixture(fixtures_dir):
    table = baxil_csv.read(fixtures_dir / BAXIL)
    pts = table.points
    assert len(pts) == 416
    for column in ("core", "section", "section_top_mm", "position_mm", "depth_mm", "tube_kv", "run",
                   "replicate", "valid", "source", "spectrum", "live_time_s", "real_time_s", "tube_ma", "date",
                   "filter", "slit_dc_mm", "slit_cc_mm", "depth_rule", "file_line"):
        assert column in pts, column
    assert len(table.lines) == 20
    assert table.lines[:4] == ["Mg-Ka", "Al-Ka", "Si-Ka", "P-Ka"]
    assert {"Ca-Ka", "Fe-Ka", "K-Ka", "Rh-La-inc", "Rh-La-coh", "Ba-La"} <= set(table.lines)
    assert sorted(table.values) == ["area", "area_std", "chi2", "cps", "cps_std"]
    assert all(v.shape == (416, 20) for v in table.values.values())

    first, last = pts.iloc[0], pts.iloc[-1]
    assert (first.core, first.section, first.run, first.replicate) == ("ZUG18-7", "0", "Run1", 0)
    assert (first.section_top_mm, first.position_mm, first.depth_mm) == (0.0, 50.0, 50.0)
    assert (first.tube_kv, first.tube_ma, first.live_time_s, first.real_time_s) == (10.0, 1.5, 30.0, 44.0)
    assert first.date == "2019-02-20T09:54:32" and first["filter"] == "No-Filter" and first.file_line == 2
    assert first.spectrum.startswith("ZUG18-7!0!0!  50.0!2019-02-20!09-54-32!") and bool(first.valid)
    assert (last.depth_mm, last.file_line, last.date) == (880.0, 417, "2019-02-20T17:45:21")
    assert pts["depth_mm"].is_monotonic_increasing and (pts["tube_kv"] == 10).all()
    assert (pts["depth_rule"] == "section top + X").all() and "section top" in table.metadata["depth_rule"]

    col = table.lines.index
    assert table.values["area"][0, col("Ca-Ka")] == 433453
    assert table.values["area_std"][0, col("Ca-Ka")] == 763
    assert table.values["cps"][0, col("Ca-Ka")] == pytest.approx(14448.44)
    assert table.values["chi2"][0, col("Ca-Ka")] == pytest.approx(9.4)
    assert table.values["area"][-1, col("Ca-Ka")] == 2521914
    assert table.values["area"][0, col("Rh-La-coh")] == 419238
    assert table.values["cps_std"][-1, col("Ba-La")] == pytest.approx(11.16)

    # negative areas stay as written and are flagged
    assert table.values["area"][0, col("V-Ka")] == -2443
    assert table.flags[0, col("V-Ka")] == "negative" and table.flags[0, col("Ca-Ka")] == ""
    assert (table.flags == "negative").sum() == 784 == (table.values["area"] < 0).sum()
    assert (table.flags[:, col("Ni-Ka")] == "negative").sum() == 405


def test_baxil_core_from_file_wins_over_option(fixtures_dir):
    table = baxil_csv.read(fixtures_dir / BAXIL, core="OTHER", source="zug.csv")
    assert set(table.points["core"]) == {"ZUG18-7"}
    assert set(table.points["source"]) == {"zug.csv"} and table.source == "zug.csv"


# --------------------------------------------------------------------------- real workbook


def test_workbook_fixture(fixtures_dir):
    path = fixtures_dir / WORKBOOK
    with pytest.raises(InputError, match="--core") as err:
        avaatech_xlsx.read(path)  # CoreID is 0 in every row: the software's placeholder
    assert err.value.field == "10kV!CoreID" and err.value.line == 2

    table = avaatech_xlsx.read(path, core="PEACH")
    pts = table.points
    assert len(pts) == 166
    assert list(pts["sheet"].value_counts().sort_index()) == [83, 83]
    assert sorted(set(pts["tube_kv"])) == [10.0, 30.0]
    k10, k30 = pts["tube_kv"] == 10, pts["tube_kv"] == 30
    assert set(pts.loc[k10, "run"]) == {"Run1"} and set(pts.loc[k30, "run"]) == {"Run2"}
    assert pts.loc[k10, "replicate"].value_counts().to_dict() == {0: 77, 1: 3, 2: 3}
    assert (pts["core"] == "PEACH").all() and (pts["spectrum"] == "Peach").all()
    # CoreDepth equals X Position-mm with section 0: millimetres
    assert "mm" in table.metadata["core_depth_unit"]
    assert pts["depth_mm"].min() == pytest.approx(157.3) and pts["depth_mm"].max() == pytest.approx(917.3)
    assert np.allclose(pts["depth_mm"], pts["position_mm"]) and (pts["section_top_mm"] == 0).all()
    first, first30 = pts.iloc[0], pts.iloc[83]
    assert (first.tube_ma, first["filter"], first.live_time_s, first.real_time_s) == (0.2, "No-Filter", 10.0, 11.0)
    assert first.date == "2026-07-27T11:19:41" and first.sheet_row == 2
    assert (first30.tube_ma, first30["filter"], first30.date) == (0.125, "Pd-Thin", "2026-07-27T11:50:08")

    assert len(table.lines) == 32 and sorted(table.values) == ["area", "area_std", "chi2"]
    col = table.lines.index
    assert {"Rh-La", "Rh-La-inc", "Ba-La", "Rh-Ka-inc", "Rh-Ka-coh", "Pb-La", "Y-Ka", "P-Ka"} <= set(table.lines)
    area = table.values["area"]
    assert area[0, col("Mg-Ka")] == 90 and area[0, col("Si-Ka")] == 4400
    assert area[83, col("Mo-Ka")] == 2374 and area[83, col("Rh-Ka-inc")] == 9316 and area[83, col("Pb-La")] == 551
    assert table.values["area_std"][82, col("Ba-La")] == 187  # header 'Ba-La AreaStd ' (stray space)
    assert table.values["chi2"][0, col("Al-Ka")] == pytest.approx(1.0)
    # lines a sheet lacks are NaN there; Mn and Fe are fitted on both sheets
    assert np.isnan(area[:83, col("Zr-Ka")]).all() and np.isnan(area[83:, col("Ca-Ka")]).all()
    assert np.isfinite(area[:, col("Fe-Ka")]).all() and np.isfinite(area[:, col("Mn-Ka")]).all()
    assert (table.flags == "negative").sum() == 223 == (area < 0).sum()
    assert table.flags[3, col("Rh-La-inc")] == "negative" and area[3, col("Rh-La-inc")] == -24502


# --------------------------------------------------------------------------- small bAXIL files

_FIELDS = "CORE-1!{section}!0!{x}!2019-02-20!09-54-32!30!10!1500!{x}!0.0!No-Filter!2.0!12.0!Run1!Rep0!Sett Low.spe"


def _baxil(rows, *, header='" Spectrum" ," Live time" ," Ca-Ka Area" ," Ca-Ka AreaStd" ," Fe-Ka Area" \n',
           section="0100") -> bytes:
    body = "".join(f"{_FIELDS.format(section=section, x=x)},30,{ca},{sd},{fe}\n" for x, ca, sd, fe in rows)
    return (header + body).encode()


def test_baxil_small_file_section_token_and_override(tmp_path):
    path = tmp_path / "batch.csv"
    path.write_bytes(_baxil([("5.0", "100", "10", "-7"), ("15.0", "120", "11", "30")]))
    table = baxil_csv.read(path)
    assert table.lines == ["Ca-Ka", "Fe-Ka"] and sorted(table.values) == ["area", "area_std"]
    assert list(table.points["section_top_mm"]) == [1000.0, 1000.0]  # "0100": 100 cm
    assert list(table.points["depth_mm"]) == [1005.0, 1015.0]
    assert table.values["area"].tolist() == [[100.0, -7.0], [120.0, 30.0]]
    assert math.isnan(table.values.get("cps", np.full(1, np.nan))[0])
    assert table.flags.tolist() == [["", "negative"], ["", ""]]

    moved = baxil_csv.read(path, raw=path.read_bytes(), section_top_mm_override=250.0)
    assert list(moved.points["depth_mm"]) == [255.0, 265.0]
    assert (moved.points["depth_rule"] == "section_top_mm_override + X").all()


def test_baxil_stray_spaces_and_semicolons(tmp_path):
    path = tmp_path / "eu.csv"
    header = '"Spectrum ";"  Ca-Ka   Area ";" Ca-Ka AreaStd";" Fe-Ka Area  "\n'
    row = _FIELDS.format(section="00000", x="7.5")
    path.write_bytes(f'{header}{row};1234,5;12;-3,25\n'.encode())
    table = baxil_csv.read(path)
    assert table.lines == ["Ca-Ka", "Fe-Ka"]
    assert table.values["area"].tolist() == [[1234.5, -3.25]]
    assert table.points["depth_mm"].tolist() == [7.5]


def test_baxil_missing_core_needs_option(tmp_path):
    path = tmp_path / "nocore.csv"
    path.write_bytes(_baxil([("5.0", "1", "1", "1")]).replace(b"CORE-1!", b"!"))
    with pytest.raises(InputError, match="--core") as err:
        baxil_csv.read(path)
    assert err.value.line == 2 and str(path) in str(err.value)
    assert list(baxil_csv.read(path, core="GIVEN-1").points["core"]) == ["GIVEN-1"]


@pytest.mark.parametrize("content, line, field, match", [
    (b'" Sample" ," Ca-Ka Area" \nx,1\n', 1, "Spectrum", "no 'Spectrum' column"),
    (b'" Spectrum" ," Ca-Ka Area" \nCORE!0100!0!5.0!x,1\n', 2, "Spectrum", "17 '!'-separated"),
    (b'" Spectrum" ," Ca-Ka Area" \njust a name,1\n', 2, "Spectrum", "carries no metadata"),
    (b'" Spectrum" ," Ca-Ka Area" \n', 1, None, "no data rows"),
    (b'" Spectrum" ," Live time" \nCORE!0100!0!5.0!!!!!!5.0!!!!!!!,30\n', 1, "Area", "nothing to read"),
    (b'', None, None, "empty"),
    (b'\x00\x01\x02garbage\xff' * 40, None, None, "binary"),
])
def test_baxil_bad_input(tmp_path, content, line, field, match):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=match) as err:
        baxil_csv.read(path)
    assert err.value.line == line and err.value.field == field
    assert err.value.path == str(path)


def test_baxil_non_numeric_area_names_line_and_column(tmp_path):
    path = tmp_path / "text.csv"
    path.write_bytes(_baxil([("5.0", "100", "10", "3"), ("15.0", "n.d.x", "11", "30")]))
    with pytest.raises(InputError, match=r"area of Ca-Ka.*'n\.d\.x'") as err:
        baxil_csv.read(path)
    assert (err.value.line, err.value.field) == (3, "Ca-Ka Area")


def test_baxil_truncated_file(tmp_path, fixtures_dir):
    raw = (fixtures_dir / BAXIL).read_bytes()
    path = tmp_path / "cut.csv"
    path.write_bytes(raw[:len(raw) // 2])  # cut in the middle of a row
    with pytest.raises(InputError, match="truncated") as err:
        baxil_csv.read(path)
    assert err.value.line == raw[:len(raw) // 2].count(b"\n") + 1


def test_baxil_csv_with_metadata_columns(tmp_path):
    """Columns (CoreID, SectionID, X Position-mm ...) win over the Spectrum cell, which may be free text."""
    path = tmp_path / "columns.csv"
    path.write_text("Spectrum,CoreID,SectionID,X Position-mm,TubeVoltage-kV,TubeCurrent-uA,RunCount,"
                    "Replicate Nr Count,Ca-Ka Area\n"
                    "sample A,GeoB-1,00500,12.5,30,125,2,Rep1,77\n")
    table = baxil_csv.read(path)
    point = table.points.iloc[0]
    assert (point.core, point.section, point.section_top_mm, point.depth_mm) == ("GeoB-1", "00500", 500.0, 512.5)
    assert (point.tube_kv, point.tube_ma, point.run, point.replicate) == (30.0, 0.125, "Run2", 1)
    assert point.spectrum == "sample A" and table.values["area"].tolist() == [[77.0]]


def test_registered_detection_picks_the_element_readers(fixtures_dir):
    from xrfhub.readers import detect, readers

    if not {baxil_csv.FORMAT, avaatech_xlsx.FORMAT} <= set(readers()):
        pytest.skip("baxil_csv / avaatech_xlsx are not yet listed in xrfhub.readers._MODULES")
    assert detect(fixtures_dir / BAXIL) is baxil_csv
    assert detect(fixtures_dir / WORKBOOK) is avaatech_xlsx


# --------------------------------------------------------------------------- small workbooks


def _workbook(path, sheets: dict[str, list[list]]):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


_HEAD = ["Spectrum ", " CoreID", "SectionID", "CoreDepth", "X Position-mm", "Replicate Nr Count", " Ca-Ka Area ",
         "Ca-Ka AreaStd  "]


def test_workbook_depth_in_cm_and_kv_from_sheet_name(tmp_path):
    rows = [_HEAD] + [["s", "CORE-9", "0100", (1000 + x) / 10, x, "Rep0", 10 * x, 1] for x in (5.0, 15.0, 25.0)]
    path = _workbook(tmp_path / "cm.xlsx", {"Notes": [["free text"]], "at 30 kV": rows})
    table = avaatech_xlsx.read(path)
    assert table.points["depth_mm"].tolist() == pytest.approx([1005.0, 1015.0, 1025.0])
    assert table.points["section_top_mm"].tolist() == pytest.approx([1000.0] * 3)
    assert (table.points["tube_kv"] == 30).all() and (table.points["depth_rule"] == "CoreDepth [cm]").all()
    assert "cm" in table.metadata["core_depth_unit"] and table.metadata["skipped_sheets"] == "Notes"
    assert table.lines == ["Ca-Ka"] and table.values["area"][:, 0].tolist() == [50.0, 150.0, 250.0]
    forced = avaatech_xlsx.read(path, depth_unit="mm")
    assert forced.points["depth_mm"].tolist() == pytest.approx([100.5, 101.5, 102.5])


def test_workbook_bad_cells_and_missing_core(tmp_path):
    rows = [_HEAD, ["s", 0, 0, 5.0, 5.0, "Rep0", "lots", 1]]
    path = _workbook(tmp_path / "bad.xlsx", {"10kV": rows})
    with pytest.raises(InputError, match="--core"):
        avaatech_xlsx.read(path)
    with pytest.raises(InputError, match="area of Ca-Ka") as err:
        avaatech_xlsx.read(path, core="C")
    assert (err.value.line, err.value.field) == (2, "10kV!Ca-Ka Area")


def test_workbook_without_avaatech_sheet(tmp_path):
    path = _workbook(tmp_path / "other.xlsx", {"Data": [["core", "depth", "CaCO3"], ["A", 1, 2]]})
    with pytest.raises(InputError, match="no sheet looks like an Avaatech export.*'Data'"):
        avaatech_xlsx.read(path)


def test_workbook_corrupt_zip(tmp_path, fixtures_dir):
    raw = (fixtures_dir / WORKBOOK).read_bytes()
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(raw[:len(raw) // 2])
    with pytest.raises(InputError, match="not a readable .xlsx workbook"):
        avaatech_xlsx.read(cut)
    fake = tmp_path / "fake.xlsx"
    fake.write_bytes(b"PK\x03\x04" + b"\x00garbage" * 100)
    with pytest.raises(InputError, match="not a readable"):
        avaatech_xlsx.read(fake)
    text = tmp_path / "text.xlsx"
    text.write_bytes(b"Spectrum,Ca-Ka Area\n")
    with pytest.raises(InputError, match="no zip signature"):
        avaatech_xlsx.read(text)


def test_workbook_damaged_sheet_part(tmp_path, fixtures_dir):
    """A valid zip whose worksheet XML is cut off: the sheet parser's error becomes InputError."""
    src = zipfile.ZipFile(fixtures_dir / WORKBOOK)
    path = tmp_path / "damaged.xlsx"
    with zipfile.ZipFile(path, "w") as out:
        for item in src.infolist():
            data = src.read(item.filename)
            out.writestr(item, data[:len(data) // 3] if item.filename == "xl/worksheets/sheet1.xml" else data)
    with pytest.raises(InputError):
        avaatech_xlsx.read(path, core="C")
