"""An ITRAX core folder as the scanner and Q-Spec leave it (issue 12, items 7-11).

Each rule is tested on the real folder ``../shared/fixtures/real/itraxBook_CD166_19_(2020)/``
(skipped when absent) and on files the test writes, so that it holds for other folders of the
same kind.
"""
from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest

import xrfhub
from xrfhub.errors import InputError, NotStored
from xrfhub.readers import itrax_meta, itrax_results, itrax_spe
from xrfhub.records import Calibration

from conftest import SHARED
from test_itrax_readers import itrax_spe_bytes
from fuzzing import results_bytes

REAL = SHARED / "fixtures" / "real" / "itraxBook_CD166_19_(2020)"
S1 = REAL / "CD166_19_S1"
REP1 = S1 / "CD166_19_S1_REP1"


@pytest.fixture
def real():
    if not REAL.is_dir():
        pytest.skip(f"real ITRAX folder not found at {REAL} (it lives in ../shared beside the checkout)")
    return REAL


@pytest.fixture
def counts():
    return np.random.default_rng(0).integers(0, 500, 2048).astype(np.uint32)


def _manifest(store):
    gen = xrfhub.store.generations.Store(store).current()
    return gen.manifest()


# ---------------------------------------------------------------------------- the whole folder


def test_real_folder_ingests_whole_and_validates(real, tmp_path):
    """Ingest of the whole folder: 99 replicate spectra (from the zip) and the 5 raw spectra of S1's
    section folder (calibrated by the run's settings above them), 99 + 1494 points, one core."""
    store = tmp_path / "store"
    report = xrfhub.ingest([real], store, skip_bad=True)
    assert report.n_spectra == 99 + 5  # the zipped REP1 spectra once each, and S1's five
    assert report.n_points == 99 + 1494  # REP1's Results.txt (not result.txt too) + S2's Results.txt
    assert report.cores == ["CD166_19"]
    noted = dict(report.noted)
    assert any(k.endswith("CD166_19_S1/sumspectra.spe") and "sum spectrum" in v for k, v in noted.items())
    assert any(k.endswith("result.txt") and "superseded by Results.txt" in v for k, v in noted.items())
    # no scan point is refused: the section folder's placeholder-only spectra take the run's settings;
    # the discrete samples' sum spectra take the core the folder names, and are skipped because no
    # lab row names their samples (see test_discrete_samples.py); the ICP table lacks its units
    skipped = dict(report.skipped)
    assert not [k for k in skipped if k.endswith(".spe") and "/sumspectra_" not in k]
    assert sorted(k.rsplit("/", 1)[1] for k, v in skipped.items() if "no lab row of core CD166_19" in v) == [
        "sumspectra_cd166-102.spe", "sumspectra_cd166-33.spe"]
    assert [k.rsplit("/", 1)[1] for k, v in skipped.items() if "without a unit" in v] == ["calibration_data.csv"]
    assert report.n_samples == 57  # the benchtop table, its interval read from its unnamed column
    assert any("CD166_19_(2020)_SETTINGS.dfl" in w for w in report.warnings)
    assert xrfhub.validate(store).ok
    # what is not stored is remembered with its reason: a second ingest changes nothing
    sources = _manifest(store)["sources"]
    note = next(v for k, v in sources.items() if k.endswith("REP1/result.txt"))
    assert note["kind"] == "not stored" and "superseded" in note["note"]
    again = xrfhub.ingest([real], store, skip_bad=True)
    assert again.generation is None and not again.noted


# ---------------------------------------------------------------------------- item 7: sum spectra


def test_real_section_sum_spectrum_is_not_a_point(real):
    path = S1 / "CD166_19_S1" / "sumspectra.spe"
    with pytest.raises(NotStored, match="section's sum spectrum"):
        itrax_spe.read(path)


def test_written_sum_spectrum_is_not_stored_but_points_are(tmp_path, counts):
    section = tmp_path / "GC1_S3"
    data = section / "XRF data"
    data.mkdir(parents=True)
    (data / "L000000.spe").write_bytes(itrax_spe_bytes(counts, position="10.0"))
    (data / "L000001.spe").write_bytes(itrax_spe_bytes(counts, position="11.0"))
    (section / "sumspectra.spe").write_bytes(itrax_spe_bytes(counts, position="0.0"))
    report = xrfhub.ingest([section], tmp_path / "store", calibration=Calibration(0.01, 0.0, "option"))
    assert report.n_spectra == 2 and [n for n, _ in report.noted] == ["GC1_S3/sumspectra.spe"]
    assert "store generation" in report.summary() and "not stored GC1_S3/sumspectra.spe" in report.summary()


# ---------------------------------------------------------------------------- item 8: two evaluations


def test_real_results_and_result_store_one(real):
    newer = itrax_results.read(REP1 / "Results.txt")
    assert len(newer.points) == 99
    with pytest.raises(NotStored, match=r"superseded by Results.txt .*06-Oct-20.*22-Sep-20"):
        itrax_results.read(REP1 / "result.txt")


def test_written_two_evaluations_newer_wins_by_date_not_name(tmp_path):
    old = results_bytes(4).replace(b"06-Oct-20", b"01-Jan-21")  # the older name carries the later date
    (tmp_path / "result.txt").write_bytes(old)
    (tmp_path / "Results.txt").write_bytes(results_bytes(4))
    assert len(itrax_results.read(tmp_path / "result.txt", core="C").points) == 4
    with pytest.raises(NotStored, match="superseded by result.txt"):
        itrax_results.read(tmp_path / "Results.txt", core="C")
    # a table of other points is not superseded: both are kept
    (tmp_path / "result.txt").write_bytes(results_bytes(6).replace(b"06-Oct-20", b"01-Jan-21"))
    (tmp_path / "Results.txt").write_bytes(results_bytes(4).replace(b"L000003", b"L000099"))
    assert len(itrax_results.read(tmp_path / "Results.txt", core="C").points) == 4


# ---------------------------------------------------------------------------- item 9: replicates


def test_real_replicate_folder_is_replicate_of_section(real):
    table = itrax_results.read(REP1 / "Results.txt")
    assert set(table.points["core"]) == {"CD166_19"} and set(table.points["section"]) == {"S1"}
    assert set(table.points["replicate"]) == {1}
    s2 = itrax_results.read(REAL / "CD166_19_S2" / "CD166_19_S2" / "Results.txt")
    assert set(s2.points["core"]) == {"CD166_19"} and set(s2.points["section"]) == {"S2"}
    assert set(s2.points["replicate"]) == {0}


@pytest.mark.parametrize("name, expected", [
    ("CD166_19_S1_REP1", ("CD166_19_S1", 1)), ("GC7-Sec2-rep12", ("GC7-Sec2", 12)),
    ("CORE_S1 Replicate 2", ("CORE_S1", 2)), ("CD166_19_S1", ("CD166_19_S1", 0)), ("REP1", ("REP1", 0)),
])
def test_split_replicate(name, expected):
    assert itrax_meta.split_replicate(name) == expected


# ---------------------------------------------------------------------------- item 10: zipped spectra


def test_real_zip_read_as_its_folder(real, tmp_path):
    report = xrfhub.ingest([REP1], tmp_path / "store")
    assert report.n_spectra == 99 and report.n_points == 99
    sources = _manifest(tmp_path / "store")["sources"]
    zipped = sorted(k for k in sources if "/XRF Data.zip/" in k)
    assert len(zipped) == 99 and zipped[0] == "CD166_19_S1_REP1/XRF Data.zip/XRF data/L000000.spe"


def test_written_zip_takes_side_files_beside_it(tmp_path, counts):
    scan = tmp_path / "CORE9_S2"
    scan.mkdir()
    (scan / "Results.txt").write_bytes(results_bytes(3))
    with zipfile.ZipFile(scan / "XRF Data.zip", "w") as zf:
        for i in range(3):
            zf.writestr(f"XRF data/L{i:06d}.spe", itrax_spe_bytes(counts, position=f"{10.5 + i}"))
    report = xrfhub.ingest([scan], tmp_path / "store")
    assert report.n_spectra == 3 and report.n_points == 3
    spectra = xrfhub.query(tmp_path / "store", tmp_path / "out.csv", kind="spectra")
    assert spectra == 3
    import pandas as pd

    out = pd.read_csv(tmp_path / "out.csv")
    assert set(out["calibration_source"]) == {"Results.txt"} and set(out["section"]) == {"S2"}
    # a damaged zip is refused naming it
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "XRF Data.zip").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(InputError, match="cannot open the zip archive"):
        xrfhub.ingest([tmp_path / "bad"], tmp_path / "store2")


# ---------------------------------------------------------------------------- item 11: side files


def test_real_placeholder_only_takes_the_run_settings_above_or_is_refused(real, tmp_path):
    """The S1 spectra carry only the placeholder; the run's settings sit two folders above."""
    path = S1 / "CD166_19_S1" / "XRF data" / "L000000.spe"
    (s,) = itrax_spe.read(path)
    assert s.calibration.gain_kev == pytest.approx(0.010267) and "folder above" in s.calibration.source
    assert any("CD166_19_(2020)_SETTINGS.dfl" in w for w in s.warnings)
    energy = s.calibration.offset_kev + s.calibration.gain_kev * np.arange(len(s.counts))
    window = (energy > 6.2) & (energy < 6.6)
    assert energy[window][np.argmax(s.counts[window])] == pytest.approx(6.40, abs=0.03)  # Fe K-alpha
    alone = tmp_path / "L000000.spe"  # the same file with no settings anywhere near it
    shutil.copy(path, alone)
    with pytest.raises(InputError, match=r"placeholder \(E0 0 keV, E1 1 keV/channel\).*--gain"):
        itrax_spe.read(alone, core="X")
    (s,) = itrax_spe.read(alone, core="X", calibration=Calibration(0.010267, -0.00993069, "option"))
    assert s.calibration.gain_kev == pytest.approx(0.010267)


def test_real_document_of_another_day_is_not_applied(real, tmp_path):
    """S2's document.txt (17 Sep 2020) beside a spectrum measured on 22 Sep 2020."""
    shutil.copy(S1 / "CD166_19_S1" / "XRF data" / "L000001.spe", tmp_path / "L000001.spe")
    shutil.copy(REAL / "CD166_19_S2" / "CD166_19_S2" / "document.txt", tmp_path / "document.txt")
    (s,) = itrax_spe.read(tmp_path / "L000001.spe", core="X", calibration=Calibration(0.0102, 0, "option"))
    assert any("document.txt is dated 2020-09-17, the spectrum's header 2020-09-22" in w and "not used" in w
               for w in s.warnings)
    assert s.core == "X" and s.section == ""  # S2's section name was not taken from the stray document


def test_written_document_of_another_section_is_not_applied(tmp_path, counts):
    doc = ("Base path:\tSample name:\tSection name\tUser ID\r\nC:\\Data\tGC2\tGC2_S4\tlab\r\n"
           "Year\tMonth\tDay\tTime\r\n2020\t09\t22\t14\r\nXRF\tON\r\nXRF exp. time\t15\ts\r\n"
           "Step size\t1000\tmicrons\r\nStart coordinate\t31.5\tStop coordinate\t131.0\r\n")
    (tmp_path / "document.txt").write_text(doc)
    (tmp_path / "L000000.spe").write_bytes(itrax_spe_bytes(counts, section="GC2_S1", position="40"))
    (s,) = itrax_spe.read(tmp_path / "L000000.spe", calibration=Calibration(0.0102, 0, "option"))
    assert (s.core, s.section) == ("GC2", "S1")
    assert any("names section 'GC2_S4', the spectrum's header 'GC2_S1'" in w for w in s.warnings)
    # a spectrum of the document's own section: used (its exposure becomes the point's)
    (tmp_path / "L000000.spe").write_bytes(itrax_spe_bytes(counts, section="GC2_S4", position="40"))
    (s,) = itrax_spe.read(tmp_path / "L000000.spe", calibration=Calibration(0.0102, 0, "option"))
    assert not any("not used" in w for w in s.warnings)
    assert (s.core, s.section, s.replicate) == ("GC2", "S4", 0)
