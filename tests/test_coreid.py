"""Core-id normalisation, a user's core map and matching lab ids to store cores."""
from __future__ import annotations

import pytest

from xrfhub import coreid
from xrfhub.coreid import CoreMap, match_cores, normalise
from xrfhub.errors import InputError


@pytest.mark.parametrize("variants", [
    ["PS75/056-1", "PS75-056-1", "ps75_56_1", "PS 75.56 1", "PS75-56-1", " PS75/056-1 "],
    ["GeoB 12345-1", "GEOB12345-1", "geob_12345_1"],
    ["SO264-09-2", "SO264-9-2", "so264_09_2"],
])
def test_normalise_merges_spellings(variants):
    assert len({normalise(v) for v in variants}) == 1


def test_normalise_key_and_distinct_ids():
    assert normalise("PS75/056-1") == "PS-75-56-1"
    assert normalise("339-U1385A") == "339-U-1385-A"
    # token boundaries are kept: these are different cores
    assert normalise("PS75-56-1") != normalise("PS7-556-1")
    assert normalise("PS75-056-1") != normalise("PS75-056-2")
    assert normalise("U1385A") != normalise("U1385B")
    assert normalise("") == ""


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_core_map_from_csv_lab_scan(tmp_path):
    f = write(tmp_path / "map.csv", "# my cores\nlab_core,scan_core\nPS75/056-1,PS75-056-1_XRF\n"
              "Site A,SITEA-2019\n")
    cmap = CoreMap.from_csv(f)
    assert len(cmap) == 2
    assert cmap.get("PS75/056-1") == "PS75-056-1_XRF"
    assert cmap.get("ps75-56-1") == "PS75-056-1_XRF"  # the map is looked up by key as well
    assert cmap.get("Site A") == "SITEA-2019"
    assert cmap.get("nothing") is None


def test_core_map_from_to_semicolon_crlf_bom(tmp_path):
    f = tmp_path / "map.txt"
    f.write_bytes(b"\xef\xbb\xbffrom;to\r\nA1;CORE-A1\r\nB2;CORE-B2\r\n")
    cmap = CoreMap.from_csv(f)
    assert cmap.pairs == {"A1": "CORE-A1", "B2": "CORE-B2"}


@pytest.mark.parametrize("text, line, words", [
    ("a,b\nX,Y\n", 1, "lab_core,scan_core"),
    ("lab_core,scan_core\nX,\n", 2, "both"),
    ("lab_core,scan_core\nX,Y\nX,Z\n", 3, "mapped twice"),
    ("lab_core,scan_core\n", None, "no rows"),
    ("\n# only a comment\n", None, "empty"),
])
def test_core_map_bad_files(tmp_path, text, line, words):
    f = write(tmp_path / "map.csv", text)
    with pytest.raises(InputError) as info:
        CoreMap.from_csv(f)
    assert info.value.line == line and words in info.value.reason
    assert str(f) in str(info.value)


def test_core_map_missing_and_binary(tmp_path):
    with pytest.raises(InputError, match="not found"):
        CoreMap.from_csv(tmp_path / "absent.csv")
    f = tmp_path / "bin.csv"
    f.write_bytes(bytes(range(256)))
    with pytest.raises(InputError, match="binary"):
        CoreMap.from_csv(f)


def test_core_map_same_pair_twice_is_fine(tmp_path):
    f = write(tmp_path / "map.csv", "lab_core,scan_core\nX,Y\nX,Y\n")
    assert CoreMap.from_csv(f).pairs == {"X": "Y"}


def test_match_exact_normalised_and_unmatched():
    scans = ["PS75-056-1", "PS75-074-3", "GeoB12345-1"]
    labs = ["PS75/056-1", "PS75-074-3", "GeoB 12345-1", "PS97/093-2", "PS75/056-1"]
    result = match_cores(labs, scans)
    assert result.cores == {"PS75/056-1": "PS75-056-1", "PS75-074-3": "PS75-074-3",
                            "GeoB 12345-1": "GeoB12345-1", "PS97/093-2": None}
    assert result.how["PS75-074-3"] == "exact"
    assert result.how["PS75/056-1"] == "normalised"
    assert result.unmatched == ["PS97/093-2"]
    assert "PS97/093-2: no matching core" in result.report()
    assert result.matched == {k: v for k, v in result.cores.items() if v}


def test_exact_beats_normalised_and_ambiguous_is_reported():
    scans = ["PS75/056-1", "PS75-056-1"]  # both normalise to PS-75-56-1
    result = match_cores(["PS75-056-1", "ps75_056_1"], scans)
    assert result.cores["PS75-056-1"] == "PS75-056-1"
    assert result.how["PS75-056-1"] == "exact"
    assert result.cores["ps75_056_1"] is None
    assert result.how["ps75_056_1"] == "ambiguous"
    assert result.ambiguous["ps75_056_1"] == ["PS75/056-1", "PS75-056-1"]
    assert result.unmatched == ["ps75_056_1"]
    assert "ambiguous" in result.report()


def test_map_wins_over_exact_and_resolves_ambiguity(tmp_path):
    f = write(tmp_path / "map.csv", "lab_core,scan_core\nA,B\nps75_056_1,PS75/056-1\nQ,NOT-THERE\n")
    cmap = CoreMap.from_csv(f)
    result = match_cores(["A", "ps75_056_1", "Q"], ["A", "B", "PS75/056-1", "PS75-056-1"], cmap)
    assert result.cores["A"] == "B" and result.how["A"] == "map"
    assert result.cores["ps75_056_1"] == "PS75/056-1" and result.how["ps75_056_1"] == "map"
    assert result.cores["Q"] is None and result.how["Q"] == "map-target-missing"
    assert result.unmatched == ["Q"]


def test_map_target_matched_by_key():
    cmap = CoreMap({"lab-1": "ps75_056_1"})
    result = match_cores(["lab-1"], ["PS75-056-1"], cmap)
    assert result.cores == {"lab-1": "PS75-056-1"} and result.how["lab-1"] == "map"


@pytest.mark.parametrize("name, cores, expected", [
    ("itraxBook_CD166_19_(2020)/calibration_samples/calibration_data.csv", {"CD166_19", "GC1-2"}, {"CD166_19"}),
    ("lab/cd166-19_benchtop.csv", {"CD166_19"}, {"CD166_19"}),       # spelt otherwise, same key
    ("lab/CD166_190_benchtop.csv", {"CD166_19"}, set()),             # another number
    ("CD166_19/lab.csv", {"CD166_19", "CD166"}, {"CD166_19"}),       # CD166 is inside CD166_19
    ("PS75-056-1 and SO264-09-2/lab.csv", {"PS75-056-1", "SO264-09-2"}, {"PS75-056-1", "SO264-09-2"}),
    ("A/12/lab.csv", {"A", "12"}, set()),                            # one-token ids name nothing
])
def test_named_in_path(name, cores, expected):
    assert set(coreid.named_in_path(name, cores)) == expected
