"""Lab-table readers: PANGAEA text export, plain CSV and IODP LIMS CSV.

Every example file is written here byte by byte, so the tests say exactly what is on disk.
"""
from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from xrfhub.errors import ConfigError, InputError
from xrfhub.readers import lab_cells, lab_csv, lab_iodp, lab_pangaea

READERS = {"pangaea": lab_pangaea, "lab-csv": lab_csv, "iodp": lab_iodp}
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"

PANGAEA = (
    "/* DATA DESCRIPTION:\n"
    "Citation:\tDoe, J (2010): Carbonate and organic carbon of sediment core PS75/056-1. PANGAEA\n"
    "Project(s):\tPolarstern\n"
    "Event(s):\tPS75/056-1 * LATITUDE: -55.158330 * LONGITUDE: -114.788330 * ELEVATION: -3581.0 m"
    " * METHOD/DEVICE: Gravity corer (Kiel type) (SL)\n"
    "Parameter(s):\tEvent label (Event)\n"
    "\tDepth, sediment/rock [m] (Depth sed) * GEOCODE\n"
    "\tCalcium carbonate [%] (CaCO3) * METHOD/DEVICE: Calculated\n"
    "\tCarbon, organic, total [%] (TOC) * METHOD/DEVICE: Element analyser CHN, LECO\n"
    "License:\tCreative Commons Attribution 3.0 Unported (CC-BY-3.0)\n"
    "Size:\t12 data points\n"
    "*/\n"
    "Event\tDepth sed [m]\tCaCO3 [%]\tTOC [%]\n"
    "PS75/056-1\t0.05\t45.2\t0.61\n"
    "PS75/056-1\t0.15\t?38.0\t0.55\n"
    "PS75/056-1\t0.25\t/12.0\t*0.48\n"
    "PS75/056-1\t0.35\t\t0.40\n"
)

CSV_COMMA = (
    "core_id,top_cm,bottom_cm,CaCO3_wt%,TOC [mg/g],Water content [%],comment\n"
    "SO264-09-2,0,2,45.2,6.1,55.0,top\n"
    "SO264-09-2,10,12,38.0,5.5,50.1,\n"
    '"SO264-09-2",20,22.5,,4.8,49.0,"bioturbated, dark"\n'
)

CSV_SEMICOLON = (
    "Core ID;Depth [m];CaCO3 (wt.%);TOC (%)\n"
    "GeoB 12345-1;0,05;45,2;0,61\n"
    "GeoB 12345-1;0,15;38;0,55\n"
)

IODP = (
    "Exp,Site,Hole,Core,Type,Sect,A/W,Top offset on section (cm),Bottom offset on section (cm),"
    "Top depth CSF-A (m),Bottom depth CSF-A (m),Calcium carbonate (wt%),Inorganic carbon (wt%),"
    "Total organic carbon (wt%),Timestamp (UTC),Text ID\n"
    "339,U1385,A,1,H,2,W,10,12,1.60,1.62,45.3,5.44,0.61,2011-12-01 10:00:00,CARB123\n"
    "339,U1385,A,1,H,3,W,50,52,3.50,3.52,50.1,6.01,0.55,2011-12-01 10:05:00,\n"
    "339,U1385,B,2,H,1,W,0,2,10.25,10.27,40.0,4.80,0.70,2011-12-01 10:10:00,CARB125\n"
)

SPE = "$SPEC_ID:\nPS75-056-1_0100   15.0mm  10s  10kV\n$DATA:\n0 2047\n" + "12\n" * 40


def write(tmp_path: Path, name: str, text: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


def assert_nan(value):
    assert math.isnan(value)


# --------------------------------------------------------------------------- PANGAEA


def test_pangaea_reads_values_flags_and_metadata(tmp_path):
    table = lab_pangaea.read(write(tmp_path, "PS75-056-1_carb.tab", PANGAEA))
    s, f = table.samples, table.flags
    assert table.source == "PS75-056-1_carb.tab"
    assert list(s["core"]) == ["PS75/056-1"] * 4
    np.testing.assert_allclose(s["mid_mm"], [50, 150, 250, 350])
    assert s["top_mm"].isna().all() and s["bottom_mm"].isna().all()
    assert list(s["line"]) == [13, 14, 15, 16]
    assert table.properties == ["CaCO3", "TOC"]
    np.testing.assert_allclose(s["CaCO3"].iloc[[0, 1]], [45.2, 38.0])
    assert_nan(s["CaCO3"].iloc[2])  # "/" = not valid: dropped, flagged
    assert_nan(s["CaCO3"].iloc[3])  # empty cell
    np.testing.assert_allclose(s["TOC"], [0.61, 0.55, 0.48, 0.40])
    assert list(f["CaCO3"]) == ["", "?", "/", ""]
    assert list(f["TOC"]) == ["", "", "*", ""]
    assert table.units == {"CaCO3": "%", "TOC": "%"}
    assert table.metadata["format"] == "pangaea"
    assert table.metadata["Citation"].startswith("Doe, J (2010)")
    assert table.metadata["Parameter(s)"].count("\n") == 3
    assert list(f.index) == list(s.index)


def test_pangaea_crlf_bom_trailing_tabs_latin1(tmp_path):
    text = PANGAEA.replace("Doe, J", "Müller, J").replace("\n", "\t\r\n")
    text = text.replace("/* DATA DESCRIPTION:\t", "/* DATA DESCRIPTION:").replace("*/\t", "*/")
    raw = b"\xef\xbb\xbf" + text.encode("utf-8")
    table = lab_pangaea.read(write(tmp_path, "a.tab", raw))
    assert table.metadata["Citation"].startswith("Müller")
    np.testing.assert_allclose(table.samples["mid_mm"], [50, 150, 250, 350])
    assert list(table.flags["CaCO3"]) == ["", "?", "/", ""]
    latin = lab_pangaea.read(write(tmp_path, "b.tab", PANGAEA.replace("Doe, J", "Müller, J"),
                                   encoding="latin-1"))
    assert latin.metadata["Citation"].startswith("Müller")
    assert len(latin.samples) == 4


def test_pangaea_top_bottom_without_event_column(tmp_path):
    text = PANGAEA.split("*/\n")[0] + (
        "*/\n"
        "Depth sed [m]\tDepth top [m]\tDepth bot [m]\tCaCO3 [%]\tAge [ka BP]\n"
        "0.05\t0.04\t0.06\t45.2\t1.2\n"
        "0.16\t0.15\t0.19\t38.0\t2.5\n")
    table = lab_pangaea.read(write(tmp_path, "c.tab", text))
    s = table.samples
    assert list(s["core"]) == ["PS75/056-1", "PS75/056-1"]  # from the Event(s) record
    np.testing.assert_allclose(s["top_mm"], [40, 150])
    np.testing.assert_allclose(s["bottom_mm"], [60, 190])
    np.testing.assert_allclose(s["mid_mm"], [50, 170])  # (top+bot)/2, not Depth sed
    assert table.properties == ["CaCO3"]
    assert "Age [ka BP]" in table.metadata["ignored_columns"]


def test_pangaea_several_events_and_no_event_column(tmp_path):
    head = PANGAEA.split("*/\n")[0].replace(
        " * METHOD/DEVICE: Gravity corer (Kiel type) (SL)\n",
        " * METHOD/DEVICE: Gravity corer (Kiel type) (SL)\n\tPS75/074-3 * LATITUDE: -57.0\n")
    text = head + "*/\nDepth sed [m]\tCaCO3 [%]\n0.05\t45.2\n"
    path = write(tmp_path, "d.tab", text)
    with pytest.raises(InputError) as info:
        lab_pangaea.read(path)
    assert "2 events" in info.value.reason and "core=" in info.value.reason
    table = lab_pangaea.read(path, core="PS75/074-3")
    assert list(table.samples["core"]) == ["PS75/074-3"]


@pytest.mark.parametrize("mutate, words, line, field", [
    (lambda t: t.replace("*/\n", ""), "never closed", None, None),
    (lambda t: t.replace("TOC [%]", "TOC [parsecs]"), "unknown unit 'parsecs'", None, "TOC [parsecs]"),
    (lambda t: t.replace("0.15\t?38.0", "0.15\tabc"), "'abc' is not a number", 14, "CaCO3 [%]"),
    (lambda t: t.replace("Depth sed [m]", "Label"), "no depth column", None, None),
    (lambda t: t.split("Event\tDepth")[0], "no data table", None, None),
    (lambda t: t.split("PS75/056-1\t0.05")[0], "no data rows", None, None),
    (lambda t: t.replace("PS75/056-1\t0.25", "\t0.25"), "core id is empty", 15, "Event"),
    (lambda t: t.replace("\t0.40\n", "\t0.40\t9\t9\n"), "extra", 16, None),
])
def test_pangaea_errors(tmp_path, mutate, words, line, field):
    path = write(tmp_path, "bad.tab", mutate(PANGAEA))
    with pytest.raises(InputError) as info:
        lab_pangaea.read(path)
    err = info.value
    assert words in err.reason
    assert err.path == str(path)
    if line is not None:
        assert err.line == line
    if field is not None:
        assert err.field == field


def test_pangaea_truncated_files(tmp_path):
    raw = PANGAEA.encode()
    cut = raw[: raw.index(b"0.48") + 2]  # cut inside the last-but-one row: "*0." then EOF
    table = lab_pangaea.read(write(tmp_path, "t.tab", cut))
    # the cut row keeps what it had: a partial number is still a number, the rest is empty
    assert len(table.samples) == 3
    cut = raw[: raw.index(b"Event\tDepth") - 5]  # cut inside the description
    with pytest.raises(InputError, match="never closed"):
        lab_pangaea.read(write(tmp_path, "t2.tab", cut))


# --------------------------------------------------------------------------- plain CSV


def test_csv_comma_top_bottom_units_and_unknown_property(tmp_path):
    table = lab_csv.read(write(tmp_path, "lab.csv", CSV_COMMA))
    s, f = table.samples, table.flags
    assert list(s["core"]) == ["SO264-09-2"] * 3
    np.testing.assert_allclose(s["top_mm"], [0, 100, 200])
    np.testing.assert_allclose(s["bottom_mm"], [20, 120, 225])
    np.testing.assert_allclose(s["mid_mm"], [10, 110, 212.5])
    assert list(s["line"]) == [2, 3, 4]
    assert table.properties == ["CaCO3", "TOC", "Water_content"]
    np.testing.assert_allclose(s["TOC"], [0.61, 0.55, 0.48])  # mg/g -> wt%
    np.testing.assert_allclose(s["CaCO3"].iloc[:2], [45.2, 38.0])
    assert_nan(s["CaCO3"].iloc[2])
    assert table.units == {"CaCO3": "wt%", "TOC": "mg/g", "Water_content": "%"}
    assert (f.to_numpy() == "").all()
    assert table.metadata["ignored_columns"] == "comment"
    assert table.metadata["separator"] == ","


def test_csv_semicolon_decimal_comma(tmp_path):
    table = lab_csv.read(write(tmp_path, "lab.csv", CSV_SEMICOLON))
    s = table.samples
    assert list(s["core"]) == ["GeoB 12345-1"] * 2
    np.testing.assert_allclose(s["mid_mm"], [50, 150])
    np.testing.assert_allclose(s["CaCO3"], [45.2, 38.0])
    np.testing.assert_allclose(s["TOC"], [0.61, 0.55])
    assert table.metadata["decimal"] == ","


def test_csv_tab_crlf_bom_flags_ppm_and_sample_id(tmp_path):
    text = ("Event\tSample label\tDepth [cm]\tCorg [ppm]\tbSiO2 [%]\t\r\n"
            "PS97/093-2\tS1\t5\t6100\t?12.5\t\r\n"
            "\t\t\t\t\t\r\n"  # a blank row is skipped
            "PS97/093-2\tS2\t15\t5500\t/3\t\r\n")
    table = lab_csv.read(write(tmp_path, "lab.txt", b"\xef\xbb\xbf" + text.encode()))
    s = table.samples
    assert list(s["sample_id"]) == ["S1", "S2"]
    assert list(s["line"]) == [2, 4]
    np.testing.assert_allclose(s["mid_mm"], [50, 150])
    np.testing.assert_allclose(s["TOC"], [0.61, 0.55])
    assert s["opal"].iloc[0] == 12.5 and math.isnan(s["opal"].iloc[1])
    assert list(table.flags["opal"]) == ["?", "/"]


def test_csv_tab_with_decimal_commas_is_detected(tmp_path):
    text = "core\tdepth_m\tCaCO3 [%]\nA\t0,5\t12,5\nA\t1,5\t13\n"
    table = lab_csv.read(write(tmp_path, "lab.tsv", text))
    np.testing.assert_allclose(table.samples["mid_mm"], [500, 1500])
    np.testing.assert_allclose(table.samples["CaCO3"], [12.5, 13])


def test_csv_core_and_depth_unit_options(tmp_path):
    path = write(tmp_path, "lab.csv", "depth,CaCO3,TOC\n10,45,0.6\n20,40,0.5\n")
    with pytest.raises(InputError, match="no core column"):
        lab_csv.read(path)
    with pytest.raises(InputError, match="depth column has no unit") as info:
        lab_csv.read(path, core="A")
    assert info.value.field == "depth"
    table = lab_csv.read(path, core="A", depth_unit="cm")
    np.testing.assert_allclose(table.samples["mid_mm"], [100, 200])
    assert table.units == {"CaCO3": "", "TOC": ""}
    assert "taken as wt%" in table.metadata["assumed_units"]
    # spectrum options of a mixed ingest are read past; a misspelt option is refused
    lab_csv.read(path, core="A", depth_unit="cm", calibration=None, section_top_mm_override=5.0)
    with pytest.raises(ConfigError, match="depth_units"):
        lab_csv.read(path, core="A", depth_units="cm")


def test_csv_ignore_columns_and_duplicate_synonyms(tmp_path):
    text = "core,depth_m,TOC [%],Corg [%],d13C [per mil PDB]\nA,1,0.5,0.6,-22\n"
    path = write(tmp_path, "lab.csv", text)
    with pytest.raises(InputError, match="unknown unit 'per mil PDB'"):
        lab_csv.read(path)
    table = lab_csv.read(path, ignore_columns=["d13C [per mil PDB]"])
    assert table.properties == ["TOC", "TOC_2"]
    assert table.metadata["column:TOC_2"] == "Corg [%]"
    assert table.samples["TOC_2"].iloc[0] == 0.6


@pytest.mark.parametrize("text, words, line, field", [
    ("core,CaCO3 [%]\nA,1\n", "no depth column", None, None),
    ("core,top_cm,CaCO3 [%]\nA,1,2\n", "incomplete", None, "top_cm"),
    ("core,depth_m,CaCO3 [%]\nA,1,2\nA,2,x3\n", "'x3' is not a number", 3, "CaCO3 [%]"),
    ("core,depth_m,CaCO3 [%]\nA,,2\n", "depth is empty", 2, "depth_m"),
    ("core,depth_m,CaCO3 [%]\nA,?1,2\n", "depth is '?1'", 2, "depth_m"),
    ("core,top_cm,bottom_cm,CaCO3 [%]\nA,1,2,3\nA,5,4,3\n", "above top", 3, "bottom_cm"),
    ("core,depth_ft,CaCO3 [%]\nA,1,2\n", "unknown depth unit 'ft'", None, "depth_ft"),
    ("core,Depth [ft],CaCO3 [%]\nA,1,2\n", "unknown depth unit 'ft'", None, "Depth [ft]"),
    ("core,depth_m,CaCO3 [%]\n", "no data rows", None, None),
    ("core,depth_m,CaCO3 [%],,TOC\nA,1,2,9,3\n", "has no name", None, "column 4"),  # numbers under no name
    ("core,depth_m,CaCO3 [%]\nA,1,2,7\n", "extra", 2, None),
    ("core,depth_m,CaCO3 [%]\nA,1,inf\n", "not a number", 2, "CaCO3 [%]"),
    ("core,depth_m,CaCO3 [%]\nA,1,\"1,5\"\n", "decimal comma?", 2, "CaCO3 [%]"),
])
def test_csv_errors(tmp_path, text, words, line, field):
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(InputError) as info:
        lab_csv.read(path)
    err = info.value
    assert words in err.reason, err.reason
    assert err.path == str(path)
    if line is not None:
        assert err.line == line
    if field is not None:
        assert err.field == field


def test_csv_garbage_empty_and_missing(tmp_path):
    rng = random.Random(7)
    garbage = bytes(rng.randrange(256) for _ in range(4096))
    with pytest.raises(InputError, match="binary"):
        lab_csv.read(write(tmp_path, "g.csv", garbage))
    with pytest.raises(InputError, match="empty"):
        lab_csv.read(write(tmp_path, "e.csv", "\n\n"))
    with pytest.raises(InputError, match="not found"):
        lab_csv.read(tmp_path / "absent.csv")
    with pytest.raises(InputError, match="separator"):
        lab_csv.read(write(tmp_path, "one.csv", "just one column\n1\n"))


def test_csv_truncated_file(tmp_path):
    raw = CSV_COMMA.encode()
    cut = raw[: raw.index(b"dark")]  # cut inside the quoted last cell
    with pytest.raises(InputError, match="quote left open"):
        lab_csv.read(write(tmp_path, "t.csv", cut))
    cut = raw[: raw.index(b"38.0") + 1]  # cut after a digit: the row reads, with what it has
    table = lab_csv.read(write(tmp_path, "t2.csv", cut))
    assert len(table.samples) == 2 and table.samples["CaCO3"].iloc[1] == 3.0


# --------------------------------------------------------------------------- IODP


def test_iodp_hole_ids_csfa_depths_and_sample_ids(tmp_path):
    table = lab_iodp.read(write(tmp_path, "carb.csv", IODP))
    s = table.samples
    assert list(s["core"]) == ["339-U1385A", "339-U1385A", "339-U1385B"]
    np.testing.assert_allclose(s["top_mm"], [1600, 3500, 10250])
    np.testing.assert_allclose(s["bottom_mm"], [1620, 3520, 10270])
    np.testing.assert_allclose(s["mid_mm"], [1610, 3510, 10260])
    assert list(s["line"]) == [2, 3, 4]
    assert list(s["sample_id"]) == ["CARB123", "339-U1385A-1H-3-W 50-52", "CARB125"]
    assert table.properties == ["CaCO3", "TIC", "TOC"]
    np.testing.assert_allclose(s["CaCO3"], [45.3, 50.1, 40.0])
    assert table.units["CaCO3"] == "wt%"
    assert "Timestamp (UTC)" in table.metadata["ignored_columns"]
    assert table.metadata["depth_scale"] == "CSF-A"
    assert set(lab_iodp.read(write(tmp_path, "carb2.csv", IODP), core="X").samples["core"]) == {"X"}


def test_iodp_bottom_from_offsets_and_errors(tmp_path):
    lines = IODP.splitlines()
    no_bottom = "\n".join(",".join(c for j, c in enumerate(line.split(",")) if j != 10)
                          for line in lines) + "\n"
    table = lab_iodp.read(write(tmp_path, "a.csv", no_bottom))
    np.testing.assert_allclose(table.samples["bottom_mm"], [1620, 3520, 10270])
    no_depth = "\n".join(",".join(c for j, c in enumerate(line.split(",")) if j not in (9, 10))
                         for line in lines) + "\n"
    with pytest.raises(InputError, match="Top depth CSF-A"):
        lab_iodp.read(write(tmp_path, "b.csv", no_depth))
    bad = IODP.replace("3.50,3.52", "3.50,x")
    with pytest.raises(InputError) as info:
        lab_iodp.read(write(tmp_path, "c.csv", bad))
    assert info.value.line == 3 and info.value.field == "Bottom depth CSF-A (m)"
    upside_down = IODP.replace("3.50,3.52", "3.50,3.40")
    with pytest.raises(InputError, match="above top") as info:
        lab_iodp.read(write(tmp_path, "d.csv", upside_down))
    assert info.value.line == 3 and info.value.field == "Bottom depth CSF-A (m)"


# --------------------------------------------------------------------------- sniffing

EXAMPLES = {"pangaea": PANGAEA, "lab-csv": CSV_COMMA, "iodp": IODP}
OTHERS = {
    "csv-semicolon": ("lab-csv", CSV_SEMICOLON),
    "spe": (None, SPE),
    "baxil": (None, '" Spectrum" ," Sample" ," User" ," Live time" ," Mg-Ka Area"\n'
                    '"a!b!c" ,"s" ,"u" ,10 ,5\n'),
    "itrax": (None, "C:\\Data\\XRF data\t06-Oct-20\nPeakarea\nfilename\tposition (mm)\tvalidity"
                    "\tFe\nL000000.spe\t31.54\t1\t19786\n"),
    "max-info": (None, "dirname,core,mid_depth_mm\n0,PS75-056-1,1015.0\n"),
    "unknown-values-only": (None, "core,depth_cm,Water content\nA,1,50\n"),
    "mca": (None, "<<PMCA SPECTRUM>>\nTAG - live_data_1\n<<DATA>>\n1\n2\n<<END>>\n"),
    "xy": (None, "10.00\t123\r\n10.01\t130\r\n"),
}


@pytest.mark.parametrize("fmt", list(EXAMPLES))
@pytest.mark.parametrize("example", list(EXAMPLES))
def test_sniff_accepts_own_format_only(fmt, example):
    head = EXAMPLES[example].encode()[:8192]
    assert READERS[fmt].sniff(head, "whatever.txt") is (fmt == example)


@pytest.mark.parametrize("name", list(OTHERS))
def test_sniff_on_other_content(name):
    owner, text = OTHERS[name]
    head = text.encode()[:8192]
    for fmt, reader in READERS.items():
        assert reader.sniff(head, "x.tab") is (fmt == owner), fmt


def test_sniff_ignores_file_name_and_binary():
    head = PANGAEA.encode()
    assert lab_pangaea.sniff(head, "data.csv") and not lab_csv.sniff(head, "data.csv")
    assert not lab_pangaea.sniff(CSV_COMMA.encode(), "data.tab")
    rng = random.Random(3)
    garbage = bytes(rng.randrange(256) for _ in range(8192))
    assert not any(r.sniff(garbage, "x.csv") for r in READERS.values())
    assert not any(r.sniff(b"", "x.csv") for r in READERS.values())


def test_sniff_handles_a_full_head_cut_mid_line():
    long_csv = CSV_COMMA + "SO264-09-2,30,32,40.0,4.5,48.0,ok\n" * 400
    head = long_csv.encode()[:8192]
    assert lab_csv.sniff(head, "x") and not lab_iodp.sniff(head, "x")
    long_iodp = IODP + IODP.splitlines()[1] + "\n" * 1 + (IODP.splitlines()[2] + "\n") * 200
    assert lab_iodp.sniff(long_iodp.encode()[:8192], "x")


@pytest.mark.fixtures
def test_real_instrument_files_are_not_lab_tables():
    folder = FIXTURES / "xrf"
    if not folder.is_dir():
        pytest.skip(f"fixtures folder {folder} not present")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    assert files
    for path in files:
        head = path.read_bytes()[:8192]
        assert not any(r.sniff(head, path.name) for r in READERS.values()), path.name


def test_reader_interface():
    for fmt, reader in READERS.items():
        assert reader.FORMAT == fmt and reader.KIND == "samples" and reader.DESCRIPTION


def test_every_fact_a_table_lacks_is_named_in_one_refusal(tmp_path):
    # an ICP export as labs keep it: no core column, depths and concentrations without units
    path = write(tmp_path, "icp.csv", "top,bot,SampleID,Ca,Fe\n330,340,B14,502.97,18.3\n430,440,A29,476.87,24.5\n")
    with pytest.raises(InputError) as info:
        lab_csv.read(path)
    message = str(info.value)
    # a 10-unit slice is 1 cm only in mm: the depth unit is not asked for (see the next test)
    for part in ("no core column", "concentrations without a unit (Ca, Fe)"):
        assert part in message
    path = write(tmp_path, "icp.csv", "top,bot,SampleID,Ca,Fe\n330,332,B14,502.97,18.3\n430,434,A29,476.87,24.5\n")
    with pytest.raises(InputError) as info:
        lab_csv.read(path)
    message = str(info.value)
    # 2 and 4 units (median 3): a slice of 2-50 mm in mm and in cm: the unit is asked for
    for part in ("no core column", "depth column has no unit ('top') (its samples' median thickness (3) is a "
                 "core slice of 2-50 mm in mm and in cm)", "concentrations without a unit (Ca, Fe)"):
        assert part in message
    assert lab_csv.read(path, core="C1", depth_unit="mm", units="mg/kg").samples["core"].unique().tolist() == ["C1"]


@pytest.mark.parametrize("rows, unit, mid", [
    ("0,1,5\n1,2,6\n", "cm", [5, 15]),            # 1-unit slices: 1 cm
    ("0,10,5\n10,20,6\n", "mm", [5, 15]),          # 10-unit slices: 1 cm in mm
    ("1.00,1.02,5\n1.02,1.04,6\n", "m", [1010, 1030]),  # 0.02-unit slices: 2 cm in m
])
def test_a_depth_interval_without_a_unit_is_read_in_the_unit_that_makes_it_a_core_slice(tmp_path, rows, unit, mid):
    table = lab_csv.read(write(tmp_path, "lab.csv", "top,bottom,CaCO3 [%]\n" + rows), core="A")
    np.testing.assert_allclose(table.samples["mid_mm"], mid)
    assert table.metadata["assumed_depth_unit"].startswith(f"taken as {unit}:")
    # said otherwise, the user wins, and nothing is assumed
    given = lab_csv.read(write(tmp_path, "lab.csv", "top,bottom,CaCO3 [%]\n" + rows), core="A", depth_unit="mm")
    assert "assumed_depth_unit" not in given.metadata


def test_a_mid_depth_without_a_unit_is_still_asked_for(tmp_path):
    # one depth per sample says nothing of its unit: no slice to measure
    with pytest.raises(InputError, match="depth column has no unit"):
        lab_csv.read(write(tmp_path, "lab.csv", "depth,CaCO3 [%]\n10,5\n20,6\n"), core="A")


def test_unnamed_columns_are_read_by_what_they_hold(tmp_path):
    text = ",,Ca,Fe\n,,wt%,wt%\n10-11,2024-03-12 13:35,20,3\n12-13,2024-03-12 13:47,<0.5,ND\nBLANK,,0.1,0.01\n"
    table = lab_csv.read(write(tmp_path, "bench.csv", text), core="A")
    np.testing.assert_allclose(table.samples["top_mm"], [100, 120])  # 1-unit slices: cm
    assert np.isnan(table.samples["Ca"].iloc[1]) and table.flags["Ca"].iloc[1] == "<0.5"
    assert [r["label"] for r in table.qc] == ["BLANK"]
    assert table.metadata["ignored_columns"] == "unnamed column 2"
    # a column of numbers under no name is still refused: what its numbers are is not known
    with pytest.raises(InputError, match="column 2 has no name"):
        lab_csv.read(write(tmp_path, "bench.csv", ",,Ca [wt%],Fe [wt%]\n10-11,5,20,3\n"), core="A")


def test_a_unitless_column_that_is_no_lab_property_is_left_out_not_taken_as_wt_percent(tmp_path):
    table = lab_csv.read(write(tmp_path, "lab.csv", "core,depth_cm,CaCO3,weight,Dilution\nA,1,45,0.2051,100\n"))
    assert "CaCO3" in table.samples and not {"weight", "Dilution"} & set(table.samples.columns)
    assert table.metadata["left_out"].startswith("weight, Dilution: no unit")
    kept = lab_csv.read(write(tmp_path, "lab.csv", "core,depth_cm,CaCO3,opal2\nA,1,45,3\n"), units="opal2=wt%")
    assert kept.samples["opal2"].iloc[0] == 3


def test_censored_cells(tmp_path):
    assert lab_cells.parse_value("<0.0001")[1] == "<0.0001" and np.isnan(lab_cells.parse_value("<0.0001")[0])
    assert lab_cells.parse_value("> 5000")[1] == ">5000"
    assert lab_cells.parse_value("<LOD")[1] == "<" and lab_cells.parse_value("b.d.l.")[1] == "<"
    assert lab_cells.parse_value("< LOD")[1] == "<"
    assert lab_cells.parse_value("<") is None and lab_cells.parse_value("<<5") is None
    assert lab_cells.parse_value("<ND") is None and lab_cells.parse_value("<?5") is None  # no limit given
    assert lab_cells.parse_value("<0,5", ",")[1] == "<0,5"


def test_a_depth_column_of_ranges_is_an_interval_in_its_unit(tmp_path):
    table = lab_csv.read(write(tmp_path, "lab.csv", "core,Depth [cm],CaCO3 [%]\nA,33-34,40\nA,43 - 44,41\nA,BLANK,0\n"))
    np.testing.assert_allclose(table.samples["top_mm"], [330, 430])
    np.testing.assert_allclose(table.samples["bottom_mm"], [340, 440])
    assert "assumed_depth_unit" not in table.metadata  # the header gives cm
    assert table.metadata["depth_interval"].startswith("column 2 ('Depth [cm]') holds each sample's interval")
    assert [r["label"] for r in table.qc] == ["BLANK"]
    # a depth column mixing ranges and single depths is no interval: the single depth is refused as before
    with pytest.raises(InputError, match="depth is '33-34'"):
        lab_csv.read(write(tmp_path, "lab.csv", "core,Depth [cm],CaCO3 [%]\nA,33-34,40\nA,43,41\n"))


def test_thousands_separators_and_bracketed_units_rows(tmp_path):
    assert lab_cells.parse_value("1,234.5")[0] == 1234.5 and lab_cells.parse_value("12,345")[0] == 12345
    assert lab_cells.parse_value("1,2345") is None  # not grouped by three: no number
    assert lab_cells.parse_value("1,5", ",")[0] == 1.5  # with decimal commas a comma is the decimal mark
    text = 'core,depth_cm,Ca,Zr\n,,(wt%),[ppm]\nA,10,20.5,"1,210"\n'
    table = lab_csv.read(write(tmp_path, "lab.csv", text))
    assert table.units == {"Ca": "wt%", "Zr": "ppm"} and table.samples["Zr"][0] == pytest.approx(0.121)
