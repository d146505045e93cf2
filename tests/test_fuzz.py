"""Fuzzing the readers: mutated real and synthetic files give records or an InputError naming the
file, never another exception and never a hang (helpers in tests/fuzzing.py; the 10,000-case run
per reader is benchmarks/fuzz.py). Below the fuzz properties, one regression case per bug the
fuzzer found, as the minimal input that used to break the reader."""
from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzzing
from fuzzing import Seed, check_case, run_case
from xrfhub.coreid import normalise
from xrfhub.errors import InputError
from xrfhub.readers import (avaatech_spe, avaatech_xlsx, baxil_csv, itrax_meta, itrax_spe, lab_csv, lab_iodp, mca,
                            mca_amptek, mca_spec)

# openpyxl warns about mutated cells (a date serial of inf) before the reader sees them
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:openpyxl")

CI = settings(max_examples=30, derandomize=True, database=None, deadline=dt.timedelta(seconds=fuzzing.HANG_S),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=True)


@pytest.mark.parametrize("reader", fuzzing.READERS)
@CI
@given(data=st.data())
def test_reader_survives_mutated_files(reader, data, tmp_path_factory):
    seed, mutated = data.draw(fuzzing.cases(reader), label="case")
    assert run_case(reader, seed, mutated, tmp_path_factory.getbasetemp()) in ("error", "parsed")


@settings(CI, max_examples=60)
@given(case=st.sampled_from([s for s in fuzzing.all_seeds() if not s.target]).flatmap(
    lambda s: st.tuples(st.just(s), fuzzing.mutations(s))))
def test_parse_one_survives_mutated_files(case, tmp_path_factory):
    seed, mutated = case
    assert run_case("parse_one", seed, mutated, tmp_path_factory.getbasetemp()) in ("error", "parsed")


@pytest.mark.parametrize("reader", fuzzing.READERS)
def test_every_seed_parses_unmutated(reader, tmp_path):
    """The seeds are valid files of their format: mutations start from something the reader reads."""
    for seed in fuzzing.seeds(reader):
        assert run_case(reader, seed, seed.files[seed.mutated], tmp_path) == "parsed", seed.label


def test_mutations_change_the_bytes():
    seed = fuzzing.seeds("lab_csv")[1]
    drawn = set()

    @settings(max_examples=50, derandomize=True, database=None)
    @given(fuzzing.mutations(seed))
    def collect(data):
        drawn.add(data)

    collect()
    assert len(drawn) > 40  # 50 draws, nearly all different


# --------------------------------------------------------------------------- the oracle can fail


class _Reader:
    FORMAT = "fake"

    def __init__(self, action):
        self.action = action

    def read(self, path, **_):
        return self.action(path)


def _raise(exc):
    def action(path):
        raise InputError(path, "bad") if exc is InputError else exc("x")
    return action


def test_oracle_refuses_other_exceptions_hangs_and_unnamed_files(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"x")
    assert check_case(_Reader(lambda p: [1]), path) == "parsed"
    assert check_case(_Reader(_raise(InputError)), path) == "error"
    with pytest.raises(fuzzing.FuzzFailure, match="KeyError"):
        check_case(_Reader(_raise(KeyError)), path)
    with pytest.raises(fuzzing.FuzzFailure, match="does not name the file"):
        check_case(_Reader(lambda p: (_ for _ in ()).throw(InputError("other.txt", "bad"))), path)
    with pytest.raises(fuzzing.FuzzFailure, match="hang"):
        check_case(_Reader(lambda p: time.sleep(5)), path, timeout=0.2)

    def swallows(p):  # a reader's broad except must not hide the alarm
        try:
            time.sleep(5)
        except Exception:  # noqa: BLE001
            raise InputError(p, "swallowed") from None
    with pytest.raises(fuzzing.FuzzFailure, match="hang"):
        check_case(_Reader(swallows), path, timeout=0.2)


# --------------------------------------------------------------------------- regressions


def _regression(reader, name, data: bytes, options=None, side=None):
    return pytest.param(reader, Seed("regression", name, {name: data, **(side or {})}, options or {}), id=f"{reader}")


_SPE_NAME = "PS75-056-1_0100   15.0mm  10s  10kV.spe"
_SPE = "$SPEC_ID:\n{sid}\n$Replicate_ID:\n{rep}\n$DATA:\n0 3\n1 2 3 4\n"
_CSV_HEAD = "core_id,top_cm,bottom_cm,CaCO3_wt%\n"
_AMPTEK = "<<PMCA SPECTRUM>>\nLIVE_TIME - 1\n<<CALIBRATION>>\nLABEL - keV\n15 {e}\n65 1.3\n<<DATA>>\n1\n2\n<<END>>\n"
_AMPTEK_MCAC = "<<PMCA SPECTRUM>>\nLIVE_TIME - 1\n<<DATA>>\n1\n2\n<<END>>\n<<DP5 CONFIGURATION>>\nMCAC={n};\n" \
               "<<DP5 CONFIGURATION END>>\n"
_SPEC = "#S 1 x\n#@MCA %16C\n#@CHANN {chann}\n#@CALIB {calib}\n@A 1 2 3\n"

REGRESSIONS = [
    # OverflowError: int(float('inf')) on a #@CHANN value
    _regression("mca_spec", f"{fuzzing._MCA_NAME}.mca", _SPEC.format(chann="inf 0 2 1", calib="0 0.02 0").encode()),
    # LinAlgError from a quadratic #@CALIB fit over non-finite coefficients
    _regression("mca_spec", f"{fuzzing._MCA_NAME}.mca", _SPEC.format(chann="3 0 2 1", calib="0 nan 1e-6").encode()),
    # OverflowError: a replicate of hundreds of digits overflowed float and int()
    _regression("avaatech_spe", _SPE_NAME, _SPE.format(sid="x", rep="9" * 400).encode()),
    # ValueError: int('²') after str.isdigit() accepted a superscript, in a section token and a run
    _regression("avaatech_spe", "a.spe", _SPE.format(sid="CORE_0²00   15.0mm", rep="0").encode()),
    _regression("avaatech_spe", "CORE!0100!0!15!!!10!10!150!15!0!F!1!1!²!0!S.spe", _SPE.format(sid="x", rep="0").encode()),
    # ValueError: int() of a 5,000-digit '$DATA:' channel bound (Python's int digit limit)
    _regression("avaatech_spe", _SPE_NAME, f"$SPEC_ID:\nx\n$DATA:\n0 {'9' * 5000}\n1 2\n".encode()),
    # LinAlgError: Amptek calibration points with inf/nan
    _regression("mca_amptek", f"{fuzzing._MCA_NAME}.mca", _AMPTEK.format(e="-inf").encode()),
    # ValueError: int('²') / a 5,000-digit MCAC
    _regression("mca_amptek", f"{fuzzing._MCA_NAME}.mca", _AMPTEK_MCAC.format(n="²").encode()),
    _regression("mca_amptek", f"{fuzzing._MCA_NAME}.mca", _AMPTEK_MCAC.format(n="9" * 5000).encode()),
    # ValueError: int(nan) on an ITRAX header 'number_mca_channels  nan'
    _regression("itrax_spe", "L000001.spe", fuzzing.itrax_spe_bytes(np.arange(8)).replace(b"8.000000", b"nan"),
                {"core": "C"}),
    # ValueError: int('²') on the year of a document.txt beside the spectrum
    _regression("itrax_spe", "L000001.spe", fuzzing.itrax_spe_bytes(np.arange(8)), {"core": "C"},
                side={"document.txt": fuzzing._DOCUMENT.replace(b"2020", "²⁰".encode("latin-1", "replace"))}),
    # hang: trailing empty header cells removed one slice at a time (quadratic: 40 s for 100 kB)
    _regression("baxil_csv", "b.csv", b'" Spectrum" ," Ca-Ka Area"' + b"," * 100_000 + b"\n"),
    _regression("baxil_csv", "b.csv", ('" Spectrum" ," Ca-Ka Area"\n' + fuzzing._BANG.format(x=5.0) + ",1"
                                       + "," * 100_000 + "\n").encode()),
    # hang: the same in the lab tables' header trimming, and IODP's bookkeeping list (110 s)
    _regression("lab_csv", "l.csv", (_CSV_HEAD.rstrip() + "," * 100_000 + "\nA,0,1,2\n").encode()),
    _regression("lab_csv", "l.csv", (_CSV_HEAD.rstrip() + ",1" * 50_000 + "\nA,0,1,2\n").encode()),
    _regression("lab_iodp", "i.csv", fuzzing.IODP_OFFSETS.replace("(wt%)", "(wt%)" + ",1" * 50_000, 1).encode()),
    _regression("lab_pangaea", "p.tab", fuzzing.PANGAEA.replace("TOC [%]\n", "TOC [%]" + "\t" * 100_000 + "\n").encode()),
]


@pytest.mark.parametrize("reader,seed", REGRESSIONS)
def test_regression_inputs(reader, seed, tmp_path):
    assert run_case(reader, seed, seed.files[seed.name], tmp_path) in ("error", "parsed")


def test_regression_workbook_row_number_beyond_excel(tmp_path):
    """openpyxl fills the gap up to <row r="18446744073709551616"> with empty rows: it never ended."""
    raw = fuzzing.workbook_bytes({"10kV": [fuzzing._XLSX_HEAD, ["s", "C", "0100", 5, None, 10, 5, 0, 1, 2, 3, 4]]})
    import io
    import zipfile
    src = zipfile.ZipFile(io.BytesIO(raw))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as book:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                body = body.replace(b'r="2"', b'r="18446744073709551616"').replace(b'2"', b'18446744073709551616"')
            book.writestr(item.filename, body)
    path = tmp_path / "rows.xlsx"
    path.write_bytes(out.getvalue())
    with pytest.raises(InputError, match="more rows than Excel allows"):
        fuzzing.check_case(avaatech_xlsx, path) and avaatech_xlsx.read(path)


def test_regression_error_messages_name_line_and_field(tmp_path):
    spe = tmp_path / _SPE_NAME
    spe.write_text(_SPE.format(sid="x", rep="9" * 400))
    with pytest.raises(InputError, match="out of range") as err:
        avaatech_spe.read(spe)
    assert (err.value.line, err.value.field) == (4, "$Replicate_ID")
    spe.write_text(_SPE.format(sid="x", rep="1.5"))
    with pytest.raises(InputError, match="replicate '1.5' is not a whole number"):
        avaatech_spe.read(spe)
    wide = tmp_path / "wide.csv"
    wide.write_text(_CSV_HEAD.rstrip() + ",1" * 2000 + "\nA,0,1,2\n")
    with pytest.raises(InputError, match="2,004 columns, more than the 1,000"):
        lab_csv.read(wide)
    with pytest.raises(InputError, match="more than the 1,000"):
        lab_iodp.read(wide)
    amptek = tmp_path / "a.mca"
    amptek.write_text(_AMPTEK.format(e="nan"))
    with pytest.raises(InputError, match="expected 'channel energy'") as err:
        mca_amptek.read(amptek, core="C", depth_mm=1.0)
    assert (err.value.line, err.value.field) == (5, "<<CALIBRATION>>")
    spec = tmp_path / "s.mca"
    spec.write_text(_SPEC.format(chann="nan 0 2 1", calib="0 0.02 0"))
    with pytest.raises(InputError, match="#@CHANN n first last") as err:
        mca_spec.read(spec, core="C", depth_mm=1.0)
    assert err.value.line == 3


def test_regression_itrax_nan_count_is_refused_not_cast(tmp_path):
    """'nan' passed the whole-number test (every comparison with nan is False) and became a
    garbage uint32 count, with only a RuntimeWarning."""
    path = tmp_path / "L000001.spe"
    path.write_bytes(fuzzing.itrax_spe_bytes(np.arange(8)).replace(b"4.000\t3.000", b"4.000\tnan"))
    with pytest.raises(InputError, match="count nan is not a whole number") as err:
        itrax_spe.read(path, core="C")
    assert err.value.field == "content"


def test_regression_trailing_separators_still_dropped_quickly(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(_CSV_HEAD.rstrip() + "," * 100_000 + "\nA,0,1,2" + "," * 100_000 + "\n")
    start = time.perf_counter()
    table = lab_csv.read(path)
    assert time.perf_counter() - start < 1.0
    assert list(table.samples["CaCO3"]) == [2.0] and table.samples["mid_mm"].tolist() == [5.0]
    cells = baxil_csv._drop_trailing_empty(["a", "", "b", "", " "] + [""] * 100_000, keep=1)
    assert cells == ["a", "", "b"]


def test_regression_linear_fit_and_core_ids_with_odd_numbers():
    assert mca.linear_fit(np.array([1.0, 2.0]), np.array([1e308, -1e308]), "x").degenerate
    assert mca.linear_fit(np.array([1.0, np.inf]), np.array([1.0, 2.0]), "x").degenerate
    assert mca.linear_fit(np.array([10.0, 20.0]), np.array([0.2, 0.4]), "x").gain_kev == pytest.approx(0.02)
    assert normalise("PS75/056-1") == "PS-75-56-1"
    assert normalise("C" + "9" * 5000).endswith("9" * 10)  # int() refuses 5,000 digits: kept as written
    doc = itrax_meta.parse_document(fuzzing._DOCUMENT.replace(b"2020", b"\xb2"), "document.txt")
    assert doc.date == "" and doc.tube_kv == 30.0
