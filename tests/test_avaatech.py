"""The Avaatech .spe reader, on files written byte by byte for each variant of the format."""
import math

import numpy as np
import pytest

from xrfhub.errors import InputError
from xrfhub.readers import avaatech_spe, detect

COUNTS = np.arange(2048, dtype=np.uint32) * 3 % 997

SPACE_NAME = "PS75-056-1_0100   15.0mm  10s  10kV 150uA No-Filter   0.0mm Run1 Rep0 Sett Low"
BANG_NAME = "SO264-09-2!00150!X!25.0!06-14-2012!10:11:12!20!30!1000!25.0!0.0!Pd-Thick!10.0!12.0!2!1!Sett High"


def _data(counts=COUNTS, per_line=8):
    rows = [" ".join(f"{c:>8d}" for c in counts[i:i + per_line]) for i in range(0, len(counts), per_line)]
    return ["$DATA:", f"0 {len(counts) - 1}", *rows]


def new_head(name=SPACE_NAME, *, x="15.0", extra=(), counts=COUNTS, per_line=8):
    return [
        "$SPEC_ID:", name, "$SPEC_REM:", "Avaatech XRF head 2 / SDD", "$DATE_MEA:", "06-14-2012 10:11:12",
        "$MEAS_TIM:", "10 12", "$Core_ID:", "PS75-056-1", "$Section_ID:", "0100", "$X_Position:", x,
        "$Y_Position:", "0.0", "$Depth:", x, "$Run_ID:", "1", "$Replicate_ID:", "0", "$Slit_DC:", "10.0",
        "$Slit_CC:", "12.0", "$TotalCPS:", "123456", "$ACC_VOLT:", "10", "$TUBE_CUR:", "0.150",
        "$FILTER:", "No-Filter", "$ENER_FIT:", "0.001 0.0201", "$MCA_CAL:", "2", "1.000000E-003 2.010000E-002 keV",
        *extra, *_data(counts, per_line),
    ]


def old_head(name=SPACE_NAME, counts=COUNTS, per_line=1):
    return ["$SPEC_ID:", name, "$SPEC_REM:", "", "$DATE_MEA:", "03-02-2009 08:00:00", "$MEAS_TIM:", "10 11",
            *_data(counts, per_line)]


def write(tmp_path, lines, name=SPACE_NAME, eol="\n", encoding="ascii"):
    path = tmp_path / f"{name}.spe"
    path.write_bytes((eol.join(lines) + eol).encode(encoding))
    return path


def test_new_head_space_name(tmp_path):
    path = write(tmp_path, new_head())
    assert detect(path) is avaatech_spe
    (s,) = avaatech_spe.read(path)
    np.testing.assert_array_equal(s.counts, COUNTS)
    assert s.counts.dtype == np.uint32
    assert (s.core, s.section, s.section_top_mm, s.position_mm, s.depth_mm) == ("PS75-056-1", "0100", 1000.0, 15.0, 1015.0)
    assert (s.run, s.replicate, s.tube_kv, s.tube_ma) == ("Run1", 0, 10.0, 0.15)
    assert (s.live_time_s, s.real_time_s, s.slit_dc_mm, s.slit_cc_mm, s.total_cps) == (10, 12, 10, 12, 123456)
    assert s.date == "2012-06-14T10:11:12"
    assert s.calibration.source == "header:$MCA_CAL"
    assert s.calibration.gain_kev == pytest.approx(0.0201) and s.calibration.offset_kev == pytest.approx(0.001)
    assert s.detector == "Avaatech XRF head 2 / SDD"
    assert "$SPEC_ID:" in s.header and s.warnings == ()


def test_old_head_takes_metadata_from_the_name_and_default_calibration(tmp_path):
    (s,) = avaatech_spe.read(write(tmp_path, old_head()))
    assert (s.core, s.depth_mm, s.tube_kv, s.tube_ma, s.live_time_s, s.filter) == (
        "PS75-056-1", 1015.0, 10.0, 0.15, 10.0, "No-Filter")
    assert s.calibration.source == "default" and s.calibration.gain_kev == 0.02
    assert math.isnan(s.total_cps)
    np.testing.assert_array_equal(s.counts, COUNTS)


def test_depth_rule_example_from_the_design():
    # `PS75-056-1_0100   15.0mm ...` -> 1000 mm section top + 15 mm
    assert avaatech_spe.section_top_mm("0100", "x", "f") == 1000.0
    assert avaatech_spe.section_top_mm("01000", "x", "f") == 1000.0
    assert avaatech_spe.section_top_mm("150", "x", "f") == 1500.0
    with pytest.raises(InputError, match="3-4 digits"):
        avaatech_spe.section_top_mm("12", "x", "f")


def test_bang_name_scheme(tmp_path):
    lines = old_head(BANG_NAME)
    (s,) = avaatech_spe.read(write(tmp_path, lines, name=BANG_NAME))
    assert (s.core, s.section, s.section_top_mm, s.position_mm, s.depth_mm) == ("SO264-09-2", "00150", 150.0, 25.0, 175.0)
    assert (s.tube_kv, s.tube_ma, s.live_time_s, s.filter, s.run, s.replicate) == (30.0, 1.0, 10.0, "Pd-Thick", "Run2", 1)  # header $MEAS_TIM wins
    assert (s.slit_dc_mm, s.slit_cc_mm) == (10.0, 12.0)


def test_bang_name_as_bAXIL_writes_it(tmp_path):
    name = "ZUG18-7!0!0!  50.0!2019-02-20!09-54-32!30!10!1500!50.0!0.0!No-Filter!2.0!12.0!Run1!Rep0!Sett Low"
    (s,) = avaatech_spe.read(write(tmp_path, [x for x in old_head(name) if x != "$DATE_MEA:" and
                                              x != "03-02-2009 08:00:00"], name=name))
    assert (s.core, s.section_top_mm, s.depth_mm, s.run, s.replicate) == ("ZUG18-7", 0.0, 50.0, "Run1", 0)
    assert (s.tube_kv, s.tube_ma, s.date) == (10.0, 1.5, "2019-02-20T09:54:32")


def test_crlf_decimal_commas_and_one_count_per_line(tmp_path):
    lines = new_head(x="15,0", per_line=1)
    lines = [line.replace("0.150", "0,150") for line in lines]
    (s,) = avaatech_spe.read(write(tmp_path, lines, eol="\r\n"))
    assert s.position_mm == 15.0 and s.tube_ma == 0.15
    np.testing.assert_array_equal(s.counts, COUNTS)


def test_keys_in_any_order_and_trailing_ortec_blocks(tmp_path):
    lines = new_head()
    head, data = lines[:lines.index("$DATA:")], lines[lines.index("$DATA:"):]
    pairs = [head[i:i + 2] for i in range(0, 18 * 2, 2)]  # single-line values only
    shuffled = [x for pair in reversed(pairs) for x in pair] + head[36:]
    (s,) = avaatech_spe.read(write(tmp_path, shuffled + data + ["$ROI:", "0", "$PRESETS:", "Live Time", "10"]))
    assert s.depth_mm == 1015.0 and s.tube_kv == 10.0
    np.testing.assert_array_equal(s.counts, COUNTS)


def test_position_disagreement_warns_and_x_wins(tmp_path):
    lines = new_head()
    lines[lines.index("$Depth:") + 1] = "16.0"
    (s,) = avaatech_spe.read(write(tmp_path, lines))
    assert s.position_mm == 15.0
    assert any("disagrees" in w for w in s.warnings)


def test_degenerate_calibration_falls_back_to_default(tmp_path):
    lines = new_head()
    lines[lines.index("$MCA_CAL:") + 2] = "0.0 0.0 keV"
    lines[lines.index("$ENER_FIT:") + 1] = "0 1"
    (s,) = avaatech_spe.read(write(tmp_path, lines))
    assert s.calibration.source == "default"


def test_calibration_option_overrides(tmp_path):
    from xrfhub.records import Calibration

    (s,) = avaatech_spe.read(write(tmp_path, new_head()), calibration=Calibration(0.03, 0.0, "option"))
    assert s.calibration == Calibration(0.03, 0.0, "option")


@pytest.mark.parametrize("damage, match, line", [
    (lambda ls: ls[:-100], "found 1248 counts, expected 2048", None),
    (lambda ls: ls[:ls.index("$DATA:") + 1], "expected 'first last' channel", None),
    (lambda ls: ls[:ls.index("$DATA:") + 3] + ["   12x4" + ls[ls.index("$DATA:") + 3][7:]] + ls[ls.index("$DATA:") + 4:],
     "expected an integer count, found '12x4", 43),
    (lambda ls: [x for x in ls if x != "$DATA:"], "no \\$DATA", None),
    (lambda ls: ["garbage before the header"] + ls, "expected a '\\$KEY:' line", 1),
])
def test_bad_files_name_file_and_line(tmp_path, damage, match, line):
    path = write(tmp_path, damage(new_head()))
    with pytest.raises(InputError, match=match) as err:
        avaatech_spe.read(path)
    assert str(path) in str(err.value)
    if line is not None:
        assert err.value.line == line


def test_unknown_unit_is_refused_naming_the_field(tmp_path):
    lines = new_head()
    lines[lines.index("$TUBE_CUR:") + 1] = "150 furlongs"
    with pytest.raises(InputError, match="unknown unit 'furlongs'") as err:
        avaatech_spe.read(write(tmp_path, lines))
    assert err.value.field == "$TUBE_CUR"


def test_units_on_header_values_are_converted(tmp_path):
    lines = new_head()
    lines[lines.index("$TUBE_CUR:") + 1] = "150 uA"
    lines[lines.index("$X_Position:") + 1] = "1.5 cm"
    (s,) = avaatech_spe.read(write(tmp_path, lines))
    assert s.tube_ma == pytest.approx(0.15) and s.position_mm == pytest.approx(15.0)


def test_negative_count_refused(tmp_path):
    counts = COUNTS.astype(np.int64)
    counts[5] = -3
    with pytest.raises(InputError, match="channel 5 is -3"):
        avaatech_spe.read(write(tmp_path, new_head(counts=counts)))


def test_missing_section_is_a_clear_error(tmp_path):
    name = "nocore 15.0mm 10s 10kV"
    lines = [x for x in old_head(name)]
    with pytest.raises(InputError, match="core id|section"):
        avaatech_spe.read(write(tmp_path, lines, name=name))


def test_binary_input_refused(tmp_path):
    path = tmp_path / "x.spe"
    path.write_bytes(b"$SPEC_ID:\n\x00\x01\x02" * 10)
    with pytest.raises(InputError, match="binary"):
        avaatech_spe.read(path)


def test_sniff_rejects_other_formats():
    assert not avaatech_spe.sniff(b"/* DATA DESCRIPTION:\nCitation:\tx\n", "a.tab")
    assert not avaatech_spe.sniff(b"ScanName\tL000676\r\nchannel\tcontent\r\n", "L000676.spe")
    assert avaatech_spe.sniff(b"\xef\xbb\xbf$SPEC_ID:\r\nx\r\n", "x.txt")
