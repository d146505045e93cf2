"""Generic MCA readers: Amptek ``.mca`` and SPEC/PyMca ``#@MCA`` files, written here byte by byte
from the format descriptions (no real file of either is in the fixtures)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from xrfhub.errors import InputError
from xrfhub.readers import mca_amptek, mca_spec
from xrfhub.records import DEFAULT_CALIBRATION, Calibration


@pytest.fixture
def counts():
    return np.random.default_rng(11).poisson(30, 1024).astype(np.uint32)


def amptek_bytes(counts, *, calibration=((150, 3.0), (650, 13.0), (900, 18.0)), label="keV", mcac=None,
                 end=True, extra_status=True) -> bytes:
    """An Amptek DppMCA file: tag lines, optional calibration, one count per line, CRLF."""
    lines = ["<<PMCA SPECTRUM>>", "TAG - live_data", "DESCRIPTION -", "GAIN - 20", "THRESHOLD - 0",
             "LIVE_MODE - 0", "PRESET_TIME - 60", "LIVE_TIME - 59.872", "REAL_TIME - 60.000",
             "START_TIME - 06/15/2016 10:49:33", "SERIAL_NUMBER - 12345"]
    if calibration:
        lines += ["<<CALIBRATION>>", f"LABEL - {label}"] + [f"{c} {e}" for c, e in calibration]
    lines += ["<<ROI>>", "100 200", "<<DATA>>"] + [str(int(c)) for c in counts]
    if end:
        lines.append("<<END>>")
        lines += ["<<DP5 CONFIGURATION>>", "RESC=Y;    Reset to factory default",
                  f"MCAC={len(counts) if mcac is None else mcac};    MCA/MCS channels", "<<DP5 CONFIGURATION END>>"]
        if extra_status:
            lines += ["<<DPP STATUS>>", "Device Type: DP5", "Serial Number: 12345", "Firmware: 6.06.07",
                      "<<DPP STATUS END>>"]
    return ("\r\n".join(lines) + "\r\n").encode()


def spec_array(values, fmt="%.4f") -> str:
    """An @A array as PyMca writes it: 16 values a line, a trailing backslash continues it."""
    out = "@A "
    for start in range(0, len(values), 16):
        out += "".join(fmt % v + " " for v in values[start:start + 16])
        if start + 16 < len(values):
            out += "\\"
        out += "\n"
    return out


def spec_bytes(arrays, *, calib="0 0.02 0", chann=None, ctime="#@CTIME 10 9.5 10\n") -> bytes:
    text = "#F test.mca\n#D Thu Jun 15 10:49:33 2023\n\n"
    for scan, values in enumerate(arrays, start=1):
        n = len(values) if chann is None else chann
        text += (f"#S {scan} point {scan}\n#D Thu Jun 15 10:5{scan}:00 2023\n#@MCA %16C\n"
                 f"#@CHANN {n} 0 {n - 1} 1\n" + (f"#@CALIB {calib}\n" if calib else "") + ctime
                 + spec_array(values) + "\n")
    return text.encode()


# --------------------------------------------------------------------------- Amptek


def test_amptek_reads_counts_times_and_fitted_calibration(tmp_path, counts):
    path = tmp_path / "sample.mca"
    path.write_bytes(amptek_bytes(counts, calibration=((150, 3.01), (650, 12.98), (900, 18.02))))
    (s,) = mca_amptek.read(path, core="PS75-056-1", depth_mm=123.5, source="mca/sample.mca")
    assert np.array_equal(s.counts, counts) and s.counts.dtype == np.uint32
    assert (s.live_time_s, s.real_time_s, s.date) == (59.872, 60.0, "2016-06-15T10:49:33")
    gain, offset = np.polyfit([150, 650, 900], [3.01, 12.98, 18.02], 1)
    assert s.calibration.source == "header:<<CALIBRATION>>"
    assert s.calibration.gain_kev == pytest.approx(gain, rel=1e-12)
    assert s.calibration.offset_kev == pytest.approx(offset, abs=1e-12)
    assert (s.core, s.depth_mm, s.position_mm, s.section_top_mm) == ("PS75-056-1", 123.5, 123.5, 0.0)
    assert s.detector == "Amptek DP5 #12345" and s.instrument == "amptek-mca" and s.source == "mca/sample.mca"
    assert "LIVE_TIME - 59.872" in s.header and "MCAC=1024" in s.header and "\n17\n" not in s.header
    assert s.warnings == ()


def test_amptek_exact_line_and_ev_label(tmp_path, counts):
    path = tmp_path / "a.mca"
    path.write_bytes(amptek_bytes(counts, calibration=((100, 2010.0), (600, 12010.0)), label="eV"))
    (s,) = mca_amptek.read(path, core="C", depth_mm=1)
    assert s.calibration.gain_kev == pytest.approx(0.02) and s.calibration.offset_kev == pytest.approx(0.01)


def test_amptek_without_calibration_uses_default_with_warning(tmp_path, counts):
    path = tmp_path / "a.mca"
    path.write_bytes(amptek_bytes(counts, calibration=None, extra_status=False))
    (s,) = mca_amptek.read(path, core="C", depth_mm=1)
    assert s.calibration == DEFAULT_CALIBRATION and any("--calibration" in w for w in s.warnings)
    assert s.detector == "Amptek #12345"  # from SERIAL_NUMBER when there is no DPP STATUS
    (s,) = mca_amptek.read(path, core="C", depth_mm=1, calibration=Calibration(0.01, 0.1, "cli"))
    assert s.calibration == Calibration(0.01, 0.1, "option") and s.warnings == ()


def test_amptek_depth_from_file_name(tmp_path, counts):
    path = tmp_path / "PS75-056-1_0100   15.0mm  10s  30kV 1000uA.mca"
    path.write_bytes(amptek_bytes(counts))
    (s,) = mca_amptek.read(path)
    assert (s.core, s.section, s.section_top_mm, s.position_mm, s.depth_mm) == ("PS75-056-1", "0100", 1000.0,
                                                                                15.0, 1015.0)
    assert (s.tube_kv, s.tube_ma) == (30.0, 1.0)
    (s,) = mca_amptek.read(path, section_top_mm_override=2000)
    assert s.depth_mm == 2015.0
    lone = tmp_path / "point   15.0mm.mca"
    lone.write_bytes(amptek_bytes(counts))
    (s,) = mca_amptek.read(lone, core="K")
    assert s.depth_mm == 15.0 and any("section top unknown, 0 used" in w for w in s.warnings)


def test_amptek_needs_core_and_depth(tmp_path, counts):
    path = tmp_path / "a.mca"
    path.write_bytes(amptek_bytes(counts))
    with pytest.raises(InputError, match="--core") as err:
        mca_amptek.read(path, depth_mm=10)
    assert err.value.path == str(path) and err.value.field == "core"
    with pytest.raises(InputError, match="depth_mm") as err:
        mca_amptek.read(path, core="C")
    assert err.value.field == "depth_mm"
    with pytest.raises(InputError, match="number"):
        mca_amptek.read(path, core="C", depth_mm="ten")


@pytest.mark.parametrize("build, message, line, field", [
    (lambda c: amptek_bytes(c).replace(b"<<END>>\r\n", b"<<END>>\r\nstray text\r\n"), "text outside", 1045, None),
    (lambda c: amptek_bytes(c).split(b"<<DATA>>")[0], "no <<DATA>> block", None, None),
    (lambda c: amptek_bytes(c, end=False), "not closed by <<END>>", 1043, "<<DATA>>"),
    (lambda c: amptek_bytes(c).replace(b"<<DATA>>\r\n", b"<<DATA>>\r\n1.5\r\n"), "whole number", 20, "<<DATA>>"),
    (lambda c: amptek_bytes(c).replace(b"<<DATA>>\r\n", b"<<DATA>>\r\nlots\r\n"), "integer count", 20, "<<DATA>>"),
    (lambda c: amptek_bytes(c, mcac=2048), "MCAC=2048", 1047, "MCAC"),
    (lambda c: amptek_bytes(c, label="furlong"), "unknown calibration unit", 13, "LABEL"),
    (lambda c: amptek_bytes(c).replace(b"LIVE_TIME - 59.872", b"LIVE_TIME - soon"), "expected a number", 8,
     "LIVE_TIME"),
    (lambda c: amptek_bytes(c).replace(b"150 3.0", b"150"), "channel energy", 14, "<<CALIBRATION>>"),
    (lambda c: b"<<PMCA SPECTRUM>>\r\n\x00\xff\x13" * 50, "binary", None, None),
    (lambda c: b"TAG - x\r\n" + amptek_bytes(c), "<<PMCA SPECTRUM>>", 1, None),
])
def test_amptek_bad_input(tmp_path, counts, build, message, line, field):
    path = tmp_path / "bad.mca"
    path.write_bytes(build(counts))
    with pytest.raises(InputError, match=message) as err:
        mca_amptek.read(path, core="C", depth_mm=5)
    assert err.value.path == str(path) and (err.value.line, err.value.field) == (line, field)


def test_amptek_sniff():
    assert mca_amptek.sniff(b"\xef\xbb\xbf<<PMCA SPECTRUM>>\r\nTAG - x\r\n")
    assert not mca_amptek.sniff(b"$SPEC_ID:\nx\n") and not mca_amptek.sniff(b"#F x\n#S 1 y\n")


# --------------------------------------------------------------------------- SPEC / PyMca


def test_spec_reads_every_array_with_its_scan(tmp_path, counts):
    second = counts[::-1].copy()
    path = tmp_path / "run.mca"
    path.write_bytes(spec_bytes([counts, second]))
    spectra = mca_spec.read(path, core="C", depth_mm=[10.0, 11.0], section_top_mm_override=5)
    assert len(spectra) == 2
    assert np.array_equal(spectra[0].counts, counts) and np.array_equal(spectra[1].counts, second)
    assert [s.depth_mm for s in spectra] == [10.0, 11.0] and [s.position_mm for s in spectra] == [5.0, 6.0]
    assert [s.run for s in spectra] == ["S1", "S2"]
    assert [s.date for s in spectra] == ["2023-06-15T10:51:00", "2023-06-15T10:52:00"]
    s = spectra[0]
    assert (s.live_time_s, s.real_time_s) == (9.5, 10.0)
    assert s.calibration == Calibration(pytest.approx(0.02), pytest.approx(0.0), "header:#@CALIB")
    assert "#@CHANN 1024 0 1023 1" in s.header and s.instrument == "spec-mca"


def test_spec_file_level_header_and_first_channel_offset(tmp_path):
    values = np.arange(8)
    text = ("#F x\n#@CALIB 0.1 0.01 0\n\n#S 1 a\n#@MCA %16C\n#@CHANN 8 100 107 1\n" + spec_array(values, "%d"))
    path = tmp_path / "x.mca"
    path.write_text(text)
    (s,) = mca_spec.read(path, core="C", depth_mm=1)
    # E = 0.1 + 0.01 * (100 + i): the scale starts at the first channel the header names
    assert s.calibration.gain_kev == pytest.approx(0.01) and s.calibration.offset_kev == pytest.approx(1.1)
    assert np.array_equal(s.counts, values)


def test_spec_quadratic_calibration_linearised_with_warning(tmp_path, counts):
    path = tmp_path / "q.mca"
    path.write_bytes(spec_bytes([counts], calib="0.01 0.02 1e-7"))
    (s,) = mca_spec.read(path, core="C", depth_mm=1)
    ch = np.arange(counts.size)
    gain, offset = np.polyfit(ch, 0.01 + 0.02 * ch + 1e-7 * ch ** 2, 1)
    assert s.calibration.gain_kev == pytest.approx(gain) and s.calibration.offset_kev == pytest.approx(offset)
    assert any("quadratic" in w for w in s.warnings)


def test_spec_identity_calibration_is_not_an_energy_scale(tmp_path, counts):
    path = tmp_path / "u.mca"
    path.write_bytes(spec_bytes([counts], calib="0 1 0"))
    (s,) = mca_spec.read(path, core="C", depth_mm=1)
    assert s.calibration == DEFAULT_CALIBRATION and any("not an energy scale" in w for w in s.warnings)


def test_spec_several_spectra_need_one_depth_each(tmp_path, counts):
    path = tmp_path / "CORE_0010   5.0mm.mca"
    path.write_bytes(spec_bytes([counts, counts]))
    with pytest.raises(InputError, match="2 depths"):
        mca_spec.read(path)
    with pytest.raises(InputError, match="1 depth"):
        mca_spec.read(path, depth_mm=3.0)
    assert [s.depth_mm for s in mca_spec.read(path, depth_mm=(1, 2))] == [1.0, 2.0]
    assert {s.core for s in mca_spec.read(path, depth_mm=(1, 2))} == {"CORE"}


@pytest.mark.parametrize("build, message, line, field", [
    (lambda c: spec_bytes([c], chann=2048), "declares 2048", 10, "#@CHANN"),
    (lambda c: spec_bytes([c]).rstrip().rsplit(b"\n", 1)[0] + b"\n", "ends inside an @A array", 72, "@A"),
    (lambda c: re.sub(rb"@A \S+", b"@A 2.5000", spec_bytes([c]), count=1), "whole number", 10, "@A"),
    (lambda c: re.sub(rb"@A \S+", b"@A -4", spec_bytes([c]), count=1), "whole number", 10, "@A"),
    (lambda c: re.sub(rb"@A \S+", b"@A x1", spec_bytes([c]), count=1), "expected a count", 10, "@A"),
    (lambda c: spec_bytes([c]).replace(b"#@CALIB 0", b"#@CALIB zero"), "expected numbers", 8, "#@CALIB"),
    (lambda c: spec_bytes([c]).replace(b"#@CHANN 1024 0", b"#@CHANN 1024.5 0"), "whole numbers", 7, "#@CHANN"),
    (lambda c: b"#F x\n#S 1 a\n#@MCA %16C\n#@CHANN 4 0 3 1\n", "no MCA data", None, None),
    (lambda c: b"#F x\n" + b"\x00\x9f" * 100, "binary", None, None),
])
def test_spec_bad_input(tmp_path, counts, build, message, line, field):
    path = tmp_path / "bad.mca"
    path.write_bytes(build(counts))
    with pytest.raises(InputError, match=message) as err:
        mca_spec.read(path, core="C", depth_mm=1)
    assert err.value.path == str(path) and (err.value.line, err.value.field) == (line, field)


def test_spec_sniff():
    assert mca_spec.sniff(b"#F x.mca\n#D now\n\n#S 1 a\n#@MCA %16C\n")
    assert mca_spec.sniff(b"#S 1 a\n@A 1 2 3\n")
    assert not mca_spec.sniff(b"#S 1 ascan\n#L x y\n1 2\n")  # a SPEC scan without MCA data
    assert not mca_spec.sniff(b"# a comment\n@A 1 2\n") and not mca_spec.sniff(b"<<PMCA SPECTRUM>>\n")
