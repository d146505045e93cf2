"""Lab tables kept as Excel workbooks (``lab-xlsx``): read as their CSV export would be.

A lab's CaCO3 or ICP results usually live in a spreadsheet; before this reader every workbook
was taken for an Avaatech export and refused ("no sheet looks like an Avaatech export").
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import run_cli, write_corpus
from fuzzing import _XLSX_HEAD, workbook_bytes
from xrfhub import readers
from xrfhub.errors import InputError, StoreError
from xrfhub.readers import avaatech_xlsx, lab_xlsx

HEAD = ["Core", "Depth top (cm)", "Depth bottom (cm)", "CaCO3 [%]", "TOC [%]"]
ROWS = [["PS75-056-1", 1, 2, 21.3, 0.4], ["PS75-056-1", 5, 6, 25.1, 0.5], ["SO264-09-2", 11, 12, 18.2, 0.3]]


def _book(tmp_path, sheets, name="lab.xlsx"):
    path = tmp_path / name
    path.write_bytes(workbook_bytes(sheets))
    return path


def test_a_lab_workbook_is_detected_as_one_and_an_avaatech_workbook_is_not(tmp_path):
    lab = _book(tmp_path, {"Notes": [["measured by coulometry"]], "CaCO3": [["Cores of cruise PS75"], [], HEAD, *ROWS]})
    export = _book(tmp_path, {"10kV": [_XLSX_HEAD, ["s0", "C-1", "0100", 5.0, None, 10, 5.0, 0, 10.0, 1000, 30, 2]]},
                   name="export.xlsx")
    assert readers.detect(lab, raw=lab.read_bytes()) is lab_xlsx
    assert readers.detect(lab) is lab_xlsx  # without the bytes at hand, detection reads the file
    assert readers.detect(export, raw=export.read_bytes()) is avaatech_xlsx


def test_the_table_sheet_is_read_with_title_rows_above_and_excel_row_numbers(tmp_path):
    path = _book(tmp_path, {"Notes": [["measured by coulometry"]], "CaCO3": [["Cores of cruise PS75"], [], HEAD, *ROWS]})
    table = lab_xlsx.read(path)
    s = table.samples
    assert s["core"].tolist() == ["PS75-056-1", "PS75-056-1", "SO264-09-2"]
    assert s["top_mm"].tolist() == [10.0, 50.0, 110.0] and s["bottom_mm"].tolist() == [20.0, 60.0, 120.0]
    assert np.allclose(s["CaCO3"], [21.3, 25.1, 18.2]) and np.allclose(s["TOC"], [0.4, 0.5, 0.3])
    assert s["line"].tolist() == [4, 5, 6]  # the rows Excel shows: title, blank, header above
    assert table.metadata["sheet"] == "CaCO3" and table.metadata["skipped_sheets"] == "Notes"
    assert table.metadata["header_row"] == "3"


def test_a_units_row_under_the_header_gives_the_units(tmp_path):
    rows = [["core", "depth", "Ca", "Fe", "Sr"], ["", "cm", "ppm", "mass%", "ppm"],
            ["SO264-09-2", 11.5, 1200, 3.1, 250], ["SO264-09-2", 13.5, 1300, 2.9, 260]]
    table = lab_xlsx.read(_book(tmp_path, {"ICP": rows}))
    s = table.samples
    assert s["mid_mm"].tolist() == [115.0, 135.0]
    assert np.allclose(s["Ca"], [0.12, 0.13]) and np.allclose(s["Fe"], [3.1, 2.9])  # wt%
    assert table.metadata["units_row"] == "row 2"


def test_concentrations_without_a_unit_are_refused_naming_the_sheet(tmp_path):
    rows = [["core", "depth_cm", "Ca", "Fe", "Sr"], ["SO264-09-2", 11.5, 1200, 3.1, 250]]
    path = _book(tmp_path, {"ICP": rows})
    with pytest.raises(InputError, match="sheet 'ICP'.*--units") as err:
        lab_xlsx.read(path)
    assert str(path) in str(err.value)
    assert np.allclose(lab_xlsx.read(path, units="Ca=ppm,Sr=ppm,Fe=wt%").samples["Fe"], [3.1])


def test_a_table_without_depth_says_so_with_its_sheet(tmp_path):
    path = _book(tmp_path, {"Data": [["Core", "CaCO3 [%]"], ["PS75-056-1", 20.0]]})
    with pytest.raises(InputError, match=r"sheet 'Data'.*no depth column"):
        lab_xlsx.read(path)


def test_two_table_sheets_are_refused_not_merged(tmp_path):
    path = _book(tmp_path, {"2019": [HEAD, *ROWS[:1]], "2020": [HEAD, *ROWS[1:]]})
    with pytest.raises(InputError, match=r"sheets '2019', '2020' each hold a lab table"):
        lab_xlsx.read(path)


def test_a_workbook_of_neither_kind_says_what_was_looked_for(tmp_path):
    from xrfhub.errors import UnknownFormatError

    path = _book(tmp_path, {"Sheet1": [["name", "colour"], ["a", "red"]]})
    with pytest.raises(UnknownFormatError, match=r"an Excel workbook, but no sheet holds a table xrfhub reads: "
                                                 r"expected a lab table .*or an Avaatech export.*sheets: 'Sheet1'"):
        readers.detect(path)
    with pytest.raises(InputError, match=r"lab table .*or an Avaatech export.*sheets: 'Sheet1'"):
        lab_xlsx.read(path)  # --format lab-xlsx says the same


def test_a_workbook_without_a_table_in_a_folder_is_passed_over_and_named(tmp_path):
    import xrfhub

    corpus = write_corpus(tmp_path / "corpus", cores=("PS75-056-1",), kv30_core=None)
    _book(corpus.scans / "PS75-056-1", {"Log": [["section", "length"], ["1", 100]]}, name="core log.xlsx")
    _book(corpus.scans / "PS75-056-1", {"CaCO3": [HEAD, *ROWS[:2]]}, name="carbonate.xlsx")
    report = xrfhub.ingest([corpus.scans], tmp_path / "hub", progress=False)
    assert report.n_spectra == 20 and report.n_samples == 2
    assert report.ignored == ["scans/PS75-056-1/core log.xlsx"]


def test_ingest_a_lab_workbook_beside_scans_and_refuse_a_bad_one(tmp_path):
    import xrfhub

    corpus = write_corpus(tmp_path / "corpus")
    store = tmp_path / "hub"
    xrfhub.ingest([corpus.scans], store, progress=False)
    bad = _book(tmp_path, {"Data": [["Core", "CaCO3 [%]"], ["PS75-056-1", 20.0]]}, name="bad.xlsx")
    done = run_cli("ingest", bad, "--store", store, check=False)
    assert done.returncode == 2 and "bad.xlsx, sheet 'Data'" in done.stderr and "no depth column" in done.stderr
    with pytest.raises(StoreError, match="holds no 'samples'"):  # nothing stored
        xrfhub.open(store, "samples")
    good = _book(tmp_path, {"CaCO3": [HEAD, *ROWS]})
    run_cli("ingest", good, "--store", store)
    samples = xrfhub.open(store, "samples")
    got = samples.sel(core="PS75-056-1")
    assert got["source"].values.tolist() == ["lab.xlsx", "lab.xlsx"] and got["line"].values.tolist() == [2, 3]
    assert np.allclose(got["CaCO3"].values, [21.3, 25.1])
    assert (got["match_status"].values == "matched").all()


def test_old_and_open_document_spreadsheets_are_named_with_the_fix(tmp_path):
    from xrfhub.errors import UnknownFormatError

    xls = tmp_path / "lab.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    ods = tmp_path / "lab.ods"
    ods.write_bytes(b"PK\x03\x04" + bytes(26) + b"mimetypeapplication/vnd.oasis.opendocument.spreadsheetPK")
    for path, what in ((xls, r"Excel 97-2003 workbook \(.xls\)"), (ods, r"OpenDocument spreadsheet \(.ods\)")):
        with pytest.raises(UnknownFormatError, match=what + ".*save it as .xlsx or CSV"):
            readers.detect(path)
