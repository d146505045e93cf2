"""ITRAX readers: raw ``Lnnnnnn.spe`` spectra, Q-Spec ``Results.txt`` tables and their side files
(``settings.dfl``, ``document.txt``), on the real files when ../shared/fixtures is there and on
files written here byte by byte in the same layout otherwise."""
from __future__ import annotations

import math
import re
import shutil

import numpy as np
import pytest

from conftest import spe_text
from xrfhub.errors import InputError
from xrfhub.readers import (avaatech_spe, itrax_meta, itrax_results, itrax_spe, lab_pangaea, mca_amptek,
                            mca_spec)
from xrfhub.records import Calibration

SPE = "xrf/itrax_L000676.spe"
RESULTS = "xrf/itrax_CD166_19_S1_Results.txt"
DFL = "xrf/itrax_Results_settings.dfl"
XRF_DOC = "xrf/itrax_CD166_19_S1_xrf_document.txt"
RAD_DOC = "xrf/itrax_CD166_19_S1_rad_document.txt"


# --------------------------------------------------------------------------- writers (byte by byte)


#: A calibration for synthetic spectra with nothing beside them (the header's is a placeholder).
CAL = Calibration(0.0102, -0.01, "option")


def itrax_spe_bytes(counts, *, position="707.540018", section="section", channels=None, declared=None,
                    position_unit="mm", first_channel=1) -> bytes:
    """An ITRAX .spe: header records ended by a bare CR, then CRLF channel rows numbered from 1."""
    declared = len(counts) if declared is None else declared
    records = [
        ("Date:", "22-Sep-20", ""), ("Time:", "8:08 PM", ""), ("Section name:", section, ""),
        ("Position", position, position_unit), ("E0", "0.000000", "keV"), ("E1", "1.000000", "keV/channel"),
        ("Tube anode:", "Mo", ""), ("Tube voltage:", "30", "kV"), ("Tube current:", "30", "mA"),
        ("number_mca_channels", f"{declared:.6f}", "no:"), ("livetime", "13.480499", "seconds"),
        ("runtime", "15.000049", "seconds"), ("input_count_rate", "44598.496007", "cps"),
        ("channel", "content", ""),
    ]
    records = [(k, v, u) for k, v, u in records if v is not None]
    head = b"".join(f"{k}\t{v}\t{u}\t\r".encode() for k, v, u in records)
    channels = np.arange(first_channel, first_channel + len(counts)) if channels is None else channels
    rows = b"".join(f"{ch:.3f}\t{c:.3f}\r\n".encode() for ch, c in zip(channels, counts))
    return head + rows


def results_bytes(rows, *, quantity="peakarea", lines=("Ca", "Fe", "Mo inc", "Mo coh"), folder="CORE9_S2") -> bytes:
    """A Q-Spec result table: 2 preamble lines, TAB header and rows each ending in a TAB, CRLF."""
    head = ["filename", "position (mm)", "sample surface", "validity", "E-gain", "E-offset", "cps", "MSE",
            *lines, "Dt"]
    out = [f"C:\\Data\\{folder}\\XRF data     06-Oct-20  re-evaluated data", quantity, "\t".join(head) + "\t"]
    for name, pos, valid, areas in rows:
        cells = [f"C:\\Data\\{folder}\\XRF data\\{name}", f"{pos}", "6.40", f"{valid}", "0.010267", "-0.009931",
                 "22415", "1.26", *[str(a) for a in areas], "0.107"]
        out.append("\t".join(cells) + "\t")
    return ("\r\n".join(out) + "\r\n").encode()


def small_results(tmp_path, name="Results.txt", **kw):
    rows = [("L000000.spe", 10.5, 1, (100, 50, 900, 300)), ("L000001.spe", 11.5, 0, (0, 0, 0, 0)),
            ("L000002.spe", 12.5, 1, (120, -3, 950, 310))]
    path = tmp_path / name
    path.write_bytes(results_bytes(rows, **kw))
    return path


@pytest.fixture
def counts():
    return np.random.default_rng(7).poisson(20, 2048)


# --------------------------------------------------------------------------- real fixtures: .spe


def test_real_spe_counts_header_and_placeholder_calibration(fixtures_dir, tmp_path):
    path = tmp_path / "L000676.spe"
    shutil.copy(fixtures_dir / SPE, path)
    with pytest.raises(InputError, match="--core"):
        itrax_spe.read(path)  # nothing beside it names the section, the header's is the default
    # the header's E0/E1 (0 keV, 1 keV/channel) is a placeholder: refused, never stored at 360 keV
    with pytest.raises(InputError, match=r"placeholder \(E0 0 keV, E1 1 keV/channel\).*Results.txt.*--gain"):
        itrax_spe.read(path, core="CD166_19")
    (s,) = itrax_spe.read(path, core="CD166_19", calibration=Calibration(0.0103, -0.01, "option"))
    assert s.counts.dtype == np.uint32 and s.n_channels == 2048
    assert s.counts[:40].sum() == 0 and s.counts[40] == 1  # row "41.000<TAB>1.000"
    assert s.counts[-3:].tolist() == [51, 54, 0]  # rows 2046, 2047, 2048
    assert int(s.counts.sum()) == 586272
    assert s.position_mm == pytest.approx(707.540018) and s.depth_mm == pytest.approx(707.540018)
    assert (s.tube_kv, s.tube_ma) == (30.0, 30.0)
    assert s.live_time_s == pytest.approx(13.480499) and s.real_time_s == pytest.approx(15.000049)
    assert s.total_cps == pytest.approx(44598.496007)
    assert s.date == "2020-09-22T20:08:00" and s.instrument == "itrax" and s.valid
    assert s.calibration == Calibration(0.0103, -0.01, "option")
    assert any("section top unknown, 0 used" in w for w in s.warnings)
    assert "Tube anode:\tMo" in s.header


def test_real_spe_takes_dfl_calibration_beside_it(fixtures_dir, tmp_path):
    path = tmp_path / "L000676.spe"
    shutil.copy(fixtures_dir / SPE, path)
    shutil.copy(fixtures_dir / DFL, tmp_path / "Results_settings.dfl")
    (s,) = itrax_spe.read(path, core="CD166_19", section_top_mm_override=1000)
    assert s.calibration == Calibration(0.01026698, -0.00993069, "settings.dfl")
    assert s.depth_mm == pytest.approx(1707.540018)
    assert not any("placeholder" in w or "section top" in w for w in s.warnings)


def test_dfl_calibration_applies_to_zero_based_channels(fixtures_dir):
    """Gaussian fits of K, Ca, Ti and Fe K-alpha sit where the .dfl scale puts them when the first
    row is channel 0; with the file's 1-based numbers they would all sit one channel off."""
    curve_fit = pytest.importorskip("scipy.optimize").curve_fit
    (s,) = itrax_spe.read(fixtures_dir / SPE, core="CD166_19")  # the fixture folder holds the .dfl
    assert s.calibration.source == "settings.dfl"
    c = s.counts.astype(float)
    gain, offset = s.calibration.gain_kev, s.calibration.offset_kev

    def peak(x, a, mu, sigma, b0, b1):
        return a * np.exp(-0.5 * ((x - mu) / sigma) ** 2) + b0 + b1 * (x - mu)

    misses = []
    for kev in (3.3129, 3.6905, 4.5088, 6.4004):  # K, Ca, Ti, Fe K-alpha (weighted a1/a2)
        expected = (kev - offset) / gain
        x = np.arange(round(expected) - 10, round(expected) + 11)
        p, _ = curve_fit(peak, x, c[x], p0=[c[x].max(), expected, 5, c[x].min(), 0])
        misses.append(p[1] - expected)
    assert np.all(np.abs(misses) < 0.3), misses


def test_real_spe_matched_in_results_table(fixtures_dir, tmp_path):
    path = tmp_path / "L000676.spe"
    shutil.copy(fixtures_dir / SPE, path)
    shutil.copy(fixtures_dir / RESULTS, tmp_path / "Results.txt")
    shutil.copy(fixtures_dir / DFL, tmp_path / "Results_settings.dfl")
    (s,) = itrax_spe.read(path, section_top_mm_override=0)
    assert s.calibration == Calibration(0.010267, -0.009931, "Results.txt")  # the row beats the .dfl
    assert s.position_mm == pytest.approx(707.54)  # the table's position
    assert (s.core, s.section) == ("CD166_19", "S1")  # from the table's Windows paths
    assert s.valid


def test_real_scan_folder_layout(fixtures_dir, tmp_path):
    """Section folder with document.txt, Results.txt and settings.dfl; spectra in 'XRF data'."""
    section = tmp_path / "CD166_19_S1"
    (section / "XRF data").mkdir(parents=True)
    shutil.copy(fixtures_dir / SPE, section / "XRF data" / "L000676.spe")
    shutil.copy(fixtures_dir / RESULTS, section / "Results.txt")
    shutil.copy(fixtures_dir / XRF_DOC, section / "document.txt")
    shutil.copy(fixtures_dir / DFL, section / "settings.dfl")
    (s,) = itrax_spe.read(section / "XRF data" / "L000676.spe", core="CD166/19", section_top_mm_override=250)
    assert (s.core, s.section) == ("CD166/19", "S1")
    assert s.depth_mm == pytest.approx(957.54)
    assert s.calibration.source == "Results.txt"
    assert s.warnings == ()


# --------------------------------------------------------------------------- real fixtures: tables


def test_real_results_table(fixtures_dir, tmp_path):
    path = tmp_path / "Results.txt"
    shutil.copy(fixtures_dir / RESULTS, path)
    shutil.copy(fixtures_dir / XRF_DOC, tmp_path / "CD166_19_S1_xrf_document.txt")
    shutil.copy(fixtures_dir / RAD_DOC, tmp_path / "CD166_19_S1_rad_document.txt")
    table = itrax_results.read(path, source="cores/Results.txt", section_top_mm_override=500)
    pts = table.points
    assert len(pts) == 1283 and table.values["area"].shape == (1283, len(table.lines))
    assert int((~pts["valid"]).sum()) == 51
    assert np.all(table.values["area"][~pts["valid"].to_numpy()] == 0)
    assert pts["position_mm"].min() == pytest.approx(31.54) and pts["position_mm"].max() == pytest.approx(1313.54)
    assert pts["depth_mm"].min() == pytest.approx(531.54) and pts["depth_mm"].max() == pytest.approx(1813.54)
    assert np.allclose(np.diff(pts["position_mm"]), 1.0)
    assert set(pts["core"]) == {"CD166_19"} and set(pts["section"]) == {"S1"}
    assert np.all(pts["energy_gain_kev"] == 0.010267) and np.all(pts["energy_offset_kev"] == -0.009931)
    assert {"Ca-Ka", "Fe-Ka", "Ba-La", "Mo-inc", "Mo-coh"} <= set(table.lines) and "Dt" not in table.lines
    row = pts.index[pts["spectrum"] == "L000676.spe"][0]
    area = dict(zip(table.lines, table.values["area"][row]))
    assert (area["Ca-Ka"], area["Fe-Ka"], area["Mo-inc"], area["Mo-coh"]) == (207722, 38597, 25712, 9895)
    assert pts.loc[row, "cps"] == 44598 and pts.loc[row, "mse"] == pytest.approx(1.71)
    assert pts.loc[row, "position_mm"] == pytest.approx(707.54)
    assert dict(zip(table.lines, table.values["area"][0]))["Ca-Ka"] == 59965
    assert pts.loc[0, "dead_time"] == pytest.approx(0.107) and pts.loc[0, "file_line"] == 4
    # the XRF document, not the radiograph run's: 30 kV / 30 mA, 15 s exposure, 1 mm step
    assert set(pts["tube_kv"]) == {30.0} and set(pts["tube_ma"]) == {30.0} and set(pts["real_time_s"]) == {15.0}
    assert table.metadata["tube_source"] == "CD166_19_S1_xrf_document.txt"
    assert table.metadata["step_mm"] == "1" and table.metadata["tube_anode"] == "Mo"
    assert set(pts["date"]) == {"2020-09-22T22:00:00"}
    assert table.source == "cores/Results.txt" and set(pts["source"]) == {"cores/Results.txt"}


def test_real_results_without_side_files(fixtures_dir, tmp_path):
    path = tmp_path / "result.txt"
    shutil.copy(fixtures_dir / RESULTS, path)
    table = itrax_results.read(path)
    assert np.isnan(table.points["tube_kv"]).all() and table.metadata["tube_source"] == ""
    # section S1's top is in no file: positions stay section-relative, never placed at a made-up 0
    assert np.isnan(table.points["section_top_mm"]).all() and set(table.points["depth_scale"]) == {"section-relative"}
    assert table.points["depth_mm"].iloc[0] == pytest.approx(31.54)
    assert table.metadata["section_name"] == "CD166_19_S1"  # from the preamble path
    shutil.copy(fixtures_dir / DFL, tmp_path / "settings.dfl")
    table = itrax_results.read(path)
    assert set(table.points["tube_kv"]) == {30.0} and table.metadata["tube_source"] == "settings.dfl"


def test_real_documents(fixtures_dir):
    xrf = itrax_meta.parse_document((fixtures_dir / XRF_DOC).read_bytes(), fixtures_dir / XRF_DOC)
    assert (xrf.tube_kv, xrf.tube_ma, xrf.exposure_s, xrf.step_mm) == (30.0, 30.0, 15.0, 1.0)
    assert (xrf.start_mm, xrf.stop_mm) == (31.5, 1314.1) and xrf.xrf_on and xrf.tube_anode == "Mo"
    assert xrf.section_name == "CD166_19_S1" and xrf.date == "2020-09-22T22:00:00"
    assert xrf.position_of(676) == pytest.approx(707.5)
    rad = itrax_meta.parse_document((fixtures_dir / RAD_DOC).read_bytes(), fixtures_dir / RAD_DOC)
    assert not rad.xrf_on and rad.tube_kv == 0 and rad.step_mm == pytest.approx(0.2)
    assert rad.section_name == "CD166_19_S1_RAD"


def test_real_dfl(fixtures_dir):
    dfl = itrax_meta.parse_dfl((fixtures_dir / DFL).read_bytes(), fixtures_dir / DFL)
    assert dfl.tube_index() == "2" and dfl.tube() == (30.0, 30.0)
    assert dfl.calibration() == Calibration(0.01026698, -0.00993069, "settings.dfl")
    assert {"Ca", "Fe", "Ba", "Pb"} <= set(dfl.elements()) and "Mo" not in dfl.elements()
    assert dfl.get("extra lines", "L0") == "Fe a*2"


def test_real_files_sniff(fixtures_dir):
    heads = {name: (fixtures_dir / name).read_bytes()[:8192] for name in (SPE, RESULTS, DFL, XRF_DOC)}
    assert itrax_spe.sniff(heads[SPE]) and not avaatech_spe.sniff(heads[SPE])
    assert itrax_results.sniff(heads[RESULTS]) and not itrax_spe.sniff(heads[RESULTS])
    for name in (DFL, XRF_DOC):
        assert not any(m.sniff(heads[name]) for m in (itrax_spe, itrax_results, mca_amptek, mca_spec))


# --------------------------------------------------------------------------- synthetic files


def test_synthetic_spe_with_results_row_invalid(tmp_path, counts):
    small_results(tmp_path)
    path = tmp_path / "L000001.spe"
    path.write_bytes(itrax_spe_bytes(counts, position="11.500000"))
    (s,) = itrax_spe.read(path, section_top_mm_override=100)
    assert not s.valid  # validity 0 in the table
    assert (s.core, s.section, s.depth_mm) == ("CORE9", "S2", 111.5)
    assert np.array_equal(s.counts, counts)


def test_spe_position_from_document_when_header_lacks_it(fixtures_dir, tmp_path, counts):
    path = tmp_path / "L000010.spe"
    path.write_bytes(itrax_spe_bytes(counts, position=""))
    shutil.copy(fixtures_dir / XRF_DOC, tmp_path / "document.txt")
    (s,) = itrax_spe.read(path, calibration=CAL)
    assert s.position_mm == pytest.approx(41.5)  # start 31.5 + 10 x 1 mm
    assert (s.core, s.section) == ("CD166_19", "S1")


def test_spe_without_position_names_what_to_pass(tmp_path, counts):
    path = tmp_path / "L000010.spe"
    path.write_bytes(itrax_spe_bytes(counts, position=""))
    with pytest.raises(InputError, match="Results.txt") as err:
        itrax_spe.read(path, core="X")
    assert err.value.path == str(path) and err.value.field == "Position"


def test_spe_option_calibration_wins(tmp_path, counts):
    small_results(tmp_path)
    path = tmp_path / "L000000.spe"
    path.write_bytes(itrax_spe_bytes(counts))
    (s,) = itrax_spe.read(path, calibration=Calibration(0.0102, -0.01, "whatever"))
    assert s.calibration == Calibration(0.0102, -0.01, "option")


def test_spe_header_section_name_used_unless_default(tmp_path, counts):
    path = tmp_path / "L000003.spe"
    path.write_bytes(itrax_spe_bytes(counts, section="GC07_Sec2"))
    (s,) = itrax_spe.read(path, calibration=CAL)
    assert (s.core, s.section) == ("GC07", "Sec2")


@pytest.mark.parametrize("mutate, message, line, field", [
    (lambda b: b.replace(b"channel\tcontent\t\t\r", b""), "channel<TAB>content", None, None),
    (lambda b: b[: b.rindex(b"\r\n", 0, len(b) - 2) + 2], "declares 2048", None, "number_mca_channels"),
    (lambda b: re.sub(rb"\r\n5\.000\t[0-9.]+", b"\r\n5.000\t1.500", b), "whole number", 19, "content"),
    (lambda b: b.replace(b"\r\n5.000\t", b"\r\n6.000\t", 1), "channel numbers", 19, "channel"),
    (lambda b: re.sub(rb"\r\n7\.000\t[0-9.]+", b"\r\n7.000\tabc", b), "expected a number", 21, "content"),
    (lambda b: b.replace(b"707.540018\tmm", b"707.5\tfurlong"), "unknown length unit", None, "Position"),
    (lambda b: b.replace(b"Tube voltage:\t30", b"Tube voltage:\tthirty"), "expected a number", 8, "tube voltage"),
    (lambda b: b"\x00\x01\x02" + b, "binary", None, None),
])
def test_spe_bad_input(tmp_path, counts, mutate, message, line, field):
    path = tmp_path / "L000000.spe"
    path.write_bytes(mutate(itrax_spe_bytes(counts)))
    with pytest.raises(InputError, match=message) as err:
        itrax_spe.read(path, core="X")
    assert err.value.path == str(path)
    assert (err.value.line, err.value.field) == (line, field)


def test_spe_zero_based_channels_accepted(tmp_path, counts):
    path = tmp_path / "L000000.spe"
    path.write_bytes(itrax_spe_bytes(counts, first_channel=0))
    assert np.array_equal(itrax_spe.read(path, core="X", calibration=CAL)[0].counts, counts)


def test_synthetic_results_table(tmp_path):
    path = small_results(tmp_path, name="CORE9_S2_Results.txt")
    table = itrax_results.read(path, core="CORE9")
    assert table.lines == ["Ca-Ka", "Fe-Ka", "Mo-inc", "Mo-coh"]
    assert table.points["valid"].tolist() == [True, False, True]
    assert table.points["spectrum"].tolist() == ["L000000.spe", "L000001.spe", "L000002.spe"]
    assert table.values["area"][2].tolist() == [120, -3, 950, 310]
    assert table.flags[2].tolist() == ["", "negative", "", ""] and table.flags[0].tolist() == [""] * 4
    assert table.points["section"].tolist() == ["S2"] * 3 and table.points["file_line"].tolist() == [4, 5, 6]


@pytest.mark.parametrize("mutate, message, line, field", [
    (lambda b: b.replace(b"\t900\t", b"\tn/a\t", 1), "expected a number", 4, "Mo inc"),
    (lambda b: b.replace(b"\t0.107\t\r\nC:", b"\r\nC:", 1), "cells", 4, None),
    (lambda b: b.replace(b"\tvalidity", b"\tvalid"), "'validity'", 3, "validity"),
    (lambda b: b.replace(b"peakarea", b"concentration"), "unknown quantity", 2, None),
    (lambda b: b.split(b"\r\n", 3)[3], "filename", None, None),
    (lambda b: b"\x00" * 10 + b, "binary", None, None),
])
def test_results_bad_input(tmp_path, mutate, message, line, field):
    path = small_results(tmp_path)
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(InputError, match=message) as err:
        itrax_results.read(path)
    assert err.value.path == str(path) and (err.value.line, err.value.field) == (line, field)


def test_results_unknown_column_kept_as_written(tmp_path):
    path = small_results(tmp_path, lines=("Ca", "Fe", "S1", "Mo coh"))
    table = itrax_results.read(path)
    assert table.lines == ["Ca-Ka", "Fe-Ka", "S1", "Mo-coh"]
    assert "'S1' is not a known line name" in table.metadata["warnings"]


def test_split_section_name():
    assert itrax_meta.split_section_name("CD166_19_S1") == ("CD166_19", "S1")
    assert itrax_meta.split_section_name("GC07-Section3") == ("GC07", "Section3")
    assert itrax_meta.split_section_name("CD166_19") == ("CD166_19", "")
    assert itrax_meta.split_section_name("WV17-2-D1", core="WV17-2") == ("WV17-2", "D1")
    assert itrax_meta.split_section_name("CD166_19_S1", core="CD166/19") == ("CD166/19", "S1")


def test_bad_side_files_raise_with_line():
    with pytest.raises(InputError, match="key = value") as err:
        itrax_meta.parse_dfl(b"[detector parameters]\nkeV/channel 2 = 0.01\ngarbage line\n", "x.dfl")
    assert err.value.line == 3
    doc = (b"Base path:\tSample name:\tSection name\tUser ID\nC:\\x\tA_S1\tA_S1\tMC\nYear\tMonth\tDay\tTime\n"
           b"2020\t09\t22\t22\nXRF\tON\t\t\nXRF voltage and current\tthirty\t  \t30\n")
    with pytest.raises(InputError, match="kV") as err:
        itrax_meta.parse_document(doc, "document.txt")
    assert (err.value.line, err.value.field) == (6, "XRF voltage and current")


# --------------------------------------------------------------------------- sniff matrix


def _amptek() -> bytes:
    return b"<<PMCA SPECTRUM>>\r\nTAG - live_data\r\n<<DATA>>\r\n1\r\n2\r\n<<END>>\r\n"


def _spec() -> bytes:
    return b"#F x.mca\n#D Thu Jun 15 10:49:33 2023\n\n#S 1 test\n#@MCA %16C\n#@CHANN 2 0 1 1\n@A 1 2\n"


def test_sniff_matrix(tmp_path, counts):
    results = small_results(tmp_path).read_bytes()
    samples = {
        "itrax_spe": itrax_spe_bytes(counts)[:8192],
        "avaatech_spe": spe_text("PS75-056-1", "0100", 15.0, counts=counts).encode()[:8192],
        "avaatech_spe_crlf": spe_text("PS75-056-1", "0100", 15.0, counts=counts, eol="\r\n").encode()[:8192],
        "itrax_results": results,
        "mca_amptek": _amptek(),
        "mca_spec": _spec(),
        "pangaea": b"/* DATA DESCRIPTION:\nCitation:\tx\n*/\nEvent\tDepth sed [m]\tCaCO3 [%]\nA\t0.1\t3\n",
    }
    modules = {"itrax_spe": itrax_spe, "itrax_results": itrax_results, "avaatech_spe": avaatech_spe,
               "mca_amptek": mca_amptek, "mca_spec": mca_spec, "pangaea": lab_pangaea}
    for sample, head in samples.items():
        claimed = {name for name, module in modules.items() if module.sniff(head, "x")}
        assert claimed == {sample.removesuffix("_crlf")}, (sample, claimed)


def test_itrax_spe_rejected_by_avaatech_reader(tmp_path, counts):
    path = tmp_path / "L000000.spe"
    path.write_bytes(itrax_spe_bytes(counts))
    with pytest.raises(InputError):
        avaatech_spe.read(path)
    ava = tmp_path / "ava.spe"
    ava.write_text(spe_text("PS75-056-1", "0100", 15.0, counts=counts))
    with pytest.raises(InputError, match="channel<TAB>content"):
        itrax_spe.read(ava)


def test_header_placeholder_calibration_is_refused(tmp_path, counts):
    path = tmp_path / "L000000.spe"
    path.write_bytes(itrax_spe_bytes(counts))
    with pytest.raises(InputError, match="no energy calibration") as err:
        itrax_spe.read(path, core="X")
    assert err.value.field == "E1"
    # a settings file two folders up without a usable calibration is named, not applied
    (tmp_path / "run_SETTINGS.dfl").write_text("[detector parameters]\nkeV/channel 2 = 0.0102\n")
    deep = tmp_path / "core" / "sec"
    deep.mkdir(parents=True)
    (deep / "L000000.spe").write_bytes(itrax_spe_bytes(counts))
    with pytest.raises(InputError, match="run_SETTINGS.dfl in a folder above"):
        itrax_spe.read(deep / "L000000.spe", core="X")


def test_results_position_unit_converted_or_refused(tmp_path):
    path = small_results(tmp_path)
    path.write_bytes(path.read_bytes().replace(b"position (mm)", b"position (cm)"))
    assert itrax_results.read(path).points["position_mm"].tolist() == [105.0, 115.0, 125.0]
    path.write_bytes(path.read_bytes().replace(b"position (cm)", b"position (ft)"))
    with pytest.raises(InputError, match="unknown length unit") as err:
        itrax_results.read(path)
    assert (err.value.line, err.value.field) == (3, "position (ft)")
