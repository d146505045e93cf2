"""The Avaatech reader gives exactly what it gave before it was sped up, on every dialect.

``tests/data/avaatech_dialects_golden.json`` was written by the reader before the fast path
(see ``tests/avaatech_dialect_cases.py``): every Spectrum field (floats bit for bit, the counts
by sha256) or the refusal message, per dialect and name scheme, real-head layouts and broken
files. Besides the golden outcomes, the counts and metadata are checked against what was
written, so a golden file recorded from a wrong reader would not pass either.
"""
import json

import numpy as np
import pytest

from avaatech_dialect_cases import DIALECTS, GOLDEN, _counts, _meta, outcome, real_files, write_cases
from xrfhub.readers import avaatech_spe
from xrfhub.sources import Candidate, parse_one, sha256_of

GOLDEN_OUTCOMES = json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return write_cases(tmp_path_factory.mktemp("dialects"))


def test_every_case_has_a_golden_outcome(cases):
    assert set(cases) == {k for k in GOLDEN_OUTCOMES if not k.startswith("real:")}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("scheme", ["space", "bang"])
def test_dialect_reads_as_before(cases, dialect, scheme):
    case = f"{dialect}-{scheme}"
    assert outcome(cases[case]) == GOLDEN_OUTCOMES[case]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("scheme", ["space", "bang"])
def test_dialect_counts_and_metadata_are_what_was_written(cases, dialect, scheme):
    k = DIALECTS.index(dialect) * 2 + (scheme == "bang")
    meta = _meta(k)
    (s,) = avaatech_spe.read(cases[f"{dialect}-{scheme}"])
    assert s.counts.dtype == np.uint32 and np.array_equal(s.counts, _counts(k))
    assert (s.core, s.section, s.position_mm) == (meta.core, meta.section, meta.position_mm)
    assert (s.tube_kv, s.tube_ma, s.filter, s.run, s.replicate) == (
        meta.kv, meta.current_ua / 1000, meta.filter, f"Run{meta.run}", meta.replicate)
    assert s.date == meta.date.isoformat() and s.live_time_s == meta.live_s
    assert s.real_time_s == pytest.approx(meta.real_s, abs=0.051)  # written with one decimal
    if dialect in ("old", "all4"):
        assert s.calibration.source == "default"  # an old head writes no calibration
    else:
        assert s.calibration.gain_kev == pytest.approx(meta.gain_kev)
        assert s.calibration.offset_kev == pytest.approx(meta.offset_kev)


@pytest.mark.parametrize("case", sorted(k for k in GOLDEN_OUTCOMES if not k.startswith(("real:", "bad-"))))
def test_every_layout_reads_as_before(cases, case):
    """Every readable case, the dialects again and the real-head layouts (CRLF with ORTEC blocks
    after the counts, IODP blank lines, floats, BOM, latin-1, CR-only and mixed line ends)."""
    assert outcome(cases[case]) == GOLDEN_OUTCOMES[case]


@pytest.mark.parametrize("case", sorted(k for k in GOLDEN_OUTCOMES if k.startswith("bad-")))
def test_broken_files_are_refused_with_the_same_message(cases, case):
    assert "error" in GOLDEN_OUTCOMES[case]
    assert outcome(cases[case]) == GOLDEN_OUTCOMES[case]


def test_real_iodp_file_reads_as_before():
    files = real_files()
    if not files:
        pytest.skip("shared/fixtures/real/iodp_SOD-Laboratory is not there")
    for path in files:
        assert outcome(path) == GOLDEN_OUTCOMES[f"real:{path.name}"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_fingerprint_is_of_the_bytes_parsed(cases, dialect):
    """sources reads each file once: the sha256 is of the very bytes the reader parsed."""
    path = cases[f"{dialect}-space"]
    parsed = parse_one(Candidate(path, path.name, True))
    assert parsed.error is None and parsed.source.sha256 == sha256_of(path.read_bytes())
    assert parsed.source.size == path.stat().st_size
    assert np.array_equal(parsed.records[0].counts, avaatech_spe.read(path)[0].counts)


@pytest.mark.parametrize("remark, line", [("NaI(Tl) 3x3", 4), ("CsI", 4), ("BGO crystal", 4), ("LaBr3 probe", 4),
                                          ("CeBr", 4), ("NGR System 3", 4), ("natural_gamma logger", 4),
                                          ("natural gamma", 4), ("SDD only", None), ("natural\ngamma", None),
                                          ("NaIve", None), ("sodium NaI-free", 4)])
def test_gamma_refusal_by_one_scan_is_the_per_line_one(tmp_path, remark, line):
    """refuse_gamma_text pre-screens the whole header; refusals still name the line, and a
    'natural' / 'gamma' split over two lines is still no match."""
    from xrfhub.errors import InputError
    from xrfhub.readers.not_xrf import refuse_gamma_text

    header = f"$SPEC_ID:\nx\n$SPEC_REM:\n{remark}\n$DATE_MEA:\n06-14-2012 10:11:12"
    if line is None:
        refuse_gamma_text(header, tmp_path / "x.spe")
        return
    with pytest.raises(InputError, match="not an XRF spectrum") as err:
        refuse_gamma_text(header, tmp_path / "x.spe")
    assert err.value.line == line
