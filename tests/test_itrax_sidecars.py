"""Q-Spec settings (``.dfl``) that do not belong to a spectrum are not applied silently (issue 12, item 11).

A ``.dfl`` states no date, sample or section; what it shares with a spectrum's header is the
fit's tube (``[Fit cluster] kV``/``mA``), and its file name may name the run. Tested on the real
``CD166_19_(2020)_SETTINGS.dfl`` and spectra of ``../shared/fixtures/real/itraxBook_CD166_19_(2020)/``
(skipped when absent) and on files written here. (``document.txt`` is checked the same way in
``test_itrax_folder.py``.)
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from xrfhub.errors import InputError
from xrfhub.readers import itrax_spe
from xrfhub.readers.itrax_spe import _settings_run_name

from conftest import SHARED
from test_itrax_readers import itrax_spe_bytes

REAL = SHARED / "fixtures" / "real" / "itraxBook_CD166_19_(2020)"
REAL_DFL = REAL / "CD166_19_(2020)_SETTINGS.dfl"
REAL_SPE = REAL / "CD166_19_S1" / "CD166_19_S1" / "XRF data" / "L000000.spe"


@pytest.fixture
def real():
    if not REAL.is_dir():
        pytest.skip(f"real ITRAX folder not found at {REAL} (it lives in ../shared beside the checkout)")
    return REAL


@pytest.fixture
def counts():
    return np.random.default_rng(3).integers(0, 500, 2048).astype(np.uint32)


def _dfl(kv=30, ma=30, gain="0.01026700") -> str:
    return (f"[detector parameters]\r\nkeV/channel 2 = {gain}\r\nenergy offset 2 = -0.00993069\r\n\r\n"
            f"[Fit cluster]\r\ntube selector = 2\r\nkV = {kv}\r\nmA = {ma}\r\n")


def _scan_folder(root, name="GC2_S1"):
    folder = root / "run" / name / "XRF data"
    folder.mkdir(parents=True)
    return folder


@pytest.mark.parametrize("name, run", [("CD166_19_(2020)_SETTINGS.dfl", "CD166_19_(2020)"), ("settings.dfl", ""),
                                       ("Results_ settings.dfl", ""), ("WV17-2 settings.dfl", "WV17-2")])
def test_settings_run_name(name, run):
    assert _settings_run_name(name) == run


def test_written_settings_of_another_tube_voltage_not_used(tmp_path, counts):
    """A settings.dfl beside the spectrum, fitted for 45 kV; the header says 30 kV."""
    folder = _scan_folder(tmp_path)
    (folder / "L000000.spe").write_bytes(itrax_spe_bytes(counts, section="GC2_S1", position="40"))
    (folder / "settings.dfl").write_text(_dfl(kv=45))
    with pytest.raises(InputError) as err:
        itrax_spe.read(folder / "L000000.spe")
    assert "placeholder" in err.value.reason and "--gain" in err.value.reason
    assert "disagrees with the spectrum's header: settings.dfl" in err.value.reason
    # the run's settings above agree with the header: used, and the stray one is named in a warning
    (tmp_path / "run" / "GC2_run_settings.dfl").write_text(_dfl(gain="0.0102"))
    (s,) = itrax_spe.read(folder / "L000000.spe")
    assert s.calibration.gain_kev == pytest.approx(0.0102) and "folder above" in s.calibration.source
    assert any("settings.dfl was fitted for tube voltage 45 kV, the spectrum's header (L000000.spe) says 30 kV" in w
               and "not used" in w for w in s.warnings)
    # the same for the tube current
    (folder / "settings.dfl").write_text(_dfl(ma=50))
    (s,) = itrax_spe.read(folder / "L000000.spe")
    assert any("tube current 50 mA" in w and "30 mA" in w for w in s.warnings)
    # one that agrees is used beside the spectrum, without a word
    (folder / "settings.dfl").write_text(_dfl(gain="0.0105"))
    (s,) = itrax_spe.read(folder / "L000000.spe")
    assert s.calibration.gain_kev == pytest.approx(0.0105) and s.calibration.source == "settings.dfl"
    assert not any("not used" in w or "names the run" in w for w in s.warnings)


def test_written_settings_named_for_another_run_warned(tmp_path, counts):
    folder = _scan_folder(tmp_path)
    (folder / "L000000.spe").write_bytes(itrax_spe_bytes(counts, section="GC2_S1", position="40"))
    (tmp_path / "run" / "WV17-2_SETTINGS.dfl").write_text(_dfl())
    (s,) = itrax_spe.read(folder / "L000000.spe")
    assert s.calibration.gain_kev == pytest.approx(0.010267)  # used: a name is weaker than a number
    assert any("WV17-2_SETTINGS.dfl names the run 'WV17-2', the spectrum L000000.spe is of core 'GC2' section 'S1'"
               in w for w in s.warnings)
    # a name that is the spectrum's core (with more after it) agrees
    (tmp_path / "run" / "WV17-2_SETTINGS.dfl").rename(tmp_path / "run" / "GC2_(2021)_SETTINGS.dfl")
    (s,) = itrax_spe.read(folder / "L000000.spe")
    assert not any("names the run" in w for w in s.warnings)


def test_real_settings_checked_against_real_spectra(real, tmp_path):
    # in its own folder tree the run's settings agree with the S1 spectra: used, no disagreement
    (s,) = itrax_spe.read(REAL_SPE)
    assert "folder above" in s.calibration.source
    assert not any("not used" in w or "names the run" in w for w in s.warnings)
    # the same spectrum in another core's folder, under the real settings: named both, still used
    folder = _scan_folder(tmp_path)
    shutil.copy(REAL_SPE, folder / "L000000.spe")
    shutil.copy(REAL_DFL, tmp_path / "run" / REAL_DFL.name)
    (s,) = itrax_spe.read(folder / "L000000.spe")
    assert s.core == "GC2" and s.calibration.gain_kev == pytest.approx(0.010267)
    assert any("CD166_19_(2020)_SETTINGS.dfl names the run 'CD166_19_(2020)', the spectrum L000000.spe is of core "
               "'GC2'" in w for w in s.warnings)
    # the real settings edited to another tube voltage, beside the real spectrum: not used, refused
    text = REAL_DFL.read_bytes().replace(b"kV = 30", b"kV = 40")
    assert text != REAL_DFL.read_bytes()
    (tmp_path / "run" / REAL_DFL.name).unlink()
    (folder / "settings.dfl").write_bytes(text)
    with pytest.raises(InputError, match=r"disagrees with the spectrum's header: settings\.dfl "
                                         r"\(fitted for tube voltage 40 kV, the spectrum's header says 30 kV\)"):
        itrax_spe.read(folder / "L000000.spe")


def test_real_results_with_settings_of_another_tube_not_used(real, tmp_path):
    """S2's real Results.txt and document.txt (30 kV, 30 mA) beside a settings file fitted for 45 kV."""
    from xrfhub.readers import itrax_results

    folder = tmp_path / "CD166_19_S2"
    shutil.copytree(REAL / "CD166_19_S2" / "CD166_19_S2", folder)
    (folder / "settings.dfl").write_text(_dfl(kv=45))
    table = itrax_results.read(folder / "Results.txt")
    assert "settings.dfl was fitted for tube voltage 45 kV, document.txt says 30 kV: settings.dfl not used" in \
        table.metadata["warnings"]
    assert "settings" not in table.metadata and set(table.points["tube_kv"]) == {30.0}
    (folder / "settings.dfl").write_text(_dfl())  # one that agrees is recorded as the scan's settings
    table = itrax_results.read(folder / "Results.txt")
    assert table.metadata["settings"] == "settings.dfl" and "not used" not in table.metadata.get("warnings", "")
