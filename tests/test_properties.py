"""Header grammar, canonical property names and unit conversion (xrfhub.properties)."""
from __future__ import annotations

import pytest

from xrfhub import properties as P
from xrfhub.errors import InputError


@pytest.mark.parametrize("text, name, unit, comment", [
    ("CaCO3 [%]", "CaCO3", "%", ""),
    ("Depth sed [m]", "Depth sed", "m", ""),
    ("TOC [%] (Element analyser, LECO)", "TOC", "%", "Element analyser, LECO"),
    ("Calcium carbonate (wt%)", "Calcium carbonate", "wt%", ""),
    ("Top offset on section (cm)", "Top offset on section", "cm", ""),
    ("top_cm", "top", "cm", ""),
    ("depth_m", "depth", "m", ""),
    ("CaCO3_wt%", "CaCO3", "wt%", ""),
    ("TOC_wt_pct", "TOC", "wt_pct", ""),
    ("mid_depth_mm", "mid_depth", "mm", ""),
    ("depth_ft", "depth", "ft", ""),       # after a depth name a short suffix is a unit
    ("depth_top", "depth_top", "", ""),    # ... unless it is a depth word itself
    ("top_depth_cm", "top_depth", "cm", ""),
    ("core_id", "core_id", "", ""),       # "id" is not a unit: the name stays whole
    ("Sample_label", "Sample_label", "", ""),
    ('" CaCO3 [%]"', "CaCO3", "%", ""),  # quotes and spaces around a cell
    ("TOC", "TOC", "", ""),
])
def test_split_header(text, name, unit, comment):
    field = P.split_header(text)
    assert (field.name, field.unit, field.comment) == (name, unit, comment)


@pytest.mark.parametrize("header, canonical", [
    ("CaCO3 [%]", "CaCO3"), ("CaCO3_wt%", "CaCO3"), ("Calcium carbonate (wt%)", "CaCO3"),
    ("CaCO3 (wt.%)", "CaCO3"), ("carbonate", "CaCO3"), ("Carbonate (wt%)", "CaCO3"),
    ("TOC", "TOC"), ("Corg [%]", "TOC"), ("Total organic carbon (wt%)", "TOC"), ("C org", "TOC"),
    ("Carbon, organic, total [%]", "TOC"), ("c_org_wt%", "TOC"),
    ("TC [%]", "TC"), ("Total carbon (wt%)", "TC"), ("Carbon, total [%]", "TC"),
    ("TN [%]", "TN"), ("Total nitrogen", "TN"), ("N [%]", "TN"),
    ("TIC [%]", "TIC"), ("Inorganic carbon (wt%)", "TIC"),
    ("opal [%]", "opal"), ("bSiO2 [%]", "opal"), ("Biogenic silica (wt%)", "opal"),
    ("TS [%]", "TS"), ("Total sulfur (wt%)", "TS"),
    # unknown names are kept, sanitised, never dropped
    ("Water content [%]", "Water_content"), ("Fe_ppm", "Fe"), ("Grain size > 63 µm [%]", "Grain_size_63_\u03bcm"),
])
def test_canonical_property(header, canonical):
    field = P.split_header(header)
    assert P.column_role(field) == P.PROPERTY
    assert P.canonical_property(field.name) == canonical


@pytest.mark.parametrize("header, role", [
    ("Event", P.CORE), ("Core ID", P.CORE), ("core", P.CORE), ("Site/Hole", P.CORE),
    ("Sample label", P.SAMPLE_ID), ("sample_id", P.SAMPLE_ID),
    ("Depth sed [m]", P.MID), ("depth_cm", P.MID), ("Depth [m]", P.MID), ("mid (cm)", P.MID),
    ("Depth top [m]", P.TOP), ("top_cm", P.TOP), ("Top [cm]", P.TOP),
    ("Depth bot [m]", P.BOTTOM), ("bottom_cm", P.BOTTOM), ("Bottom [cm]", P.BOTTOM),
    ("Age [ka BP]", P.ANCILLARY), ("Latitude", P.ANCILLARY), ("Date/Time", P.ANCILLARY),
    ("Depth comp [mcd]", P.ANCILLARY),
])
def test_column_role(header, role):
    assert P.column_role(P.split_header(header)) == role


@pytest.mark.parametrize("unit, factor", [
    ("%", 1.0), ("wt%", 1.0), ("wt.%", 1.0), ("wt. %", 1.0), ("weight %", 1.0), ("Wt-%", 1.0),
    ("g/kg", 0.1), ("mg/g", 0.1), ("ppm", 1e-4), ("mg/kg", 1e-4), ("µg/g", 1e-4),
    ("\u03bcg/g", 1e-4), ("ug/g", 1e-4), ("g/g", 100.0),
])
def test_value_factor(unit, factor):
    assert P.value_factor(unit, path="x.csv", field="f") == pytest.approx(factor)


def test_value_conversion_numbers():
    # 452 mg/g of carbonate is 45.2 wt%; 6100 ppm of TOC is 0.61 wt%
    assert 452 * P.value_factor("mg/g", path="x", field="f") == pytest.approx(45.2)
    assert 6100 * P.value_factor("ppm", path="x", field="f") == pytest.approx(0.61)


@pytest.mark.parametrize("unit, factor", [("m", 1000.0), ("cm", 10.0), ("mm", 1.0),
                                          ("mbsf", 1000.0), (" CM ", 10.0)])
def test_depth_factor(unit, factor):
    assert P.depth_factor(unit, path="x.csv", field="f") == factor


def test_unknown_value_unit_names_file_field_and_known_units():
    with pytest.raises(InputError) as info:
        P.value_factor("counts", path="/data/lab.csv", field="Fe [counts]")
    err = info.value
    assert err.path == "/data/lab.csv" and err.field == "Fe [counts]"
    assert "counts" in err.reason and "wt%" in err.reason and "ppm" in err.reason
    assert "/data/lab.csv" in str(err)


def test_unknown_depth_unit_lists_known_units():
    with pytest.raises(InputError) as info:
        P.depth_factor("ft", path="lab.csv", field="depth_ft")
    assert info.value.field == "depth_ft"
    assert all(u in info.value.reason for u in ("m", "cm", "mm"))


def test_sanitise():
    assert P.sanitise(" Water  content (bulk) ") == "Water_content_bulk"
    assert P.sanitise("Opal/%") == "Opal_pct"
    assert P.sanitise("!!!") == ""
