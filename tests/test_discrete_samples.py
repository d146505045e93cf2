"""Spectra of discrete lab samples (ITRAX ``sumspectra_<sample>.spe``) joined to their lab rows (issue 12, item 12).

Such a spectrum is stored with its ``sample_id``, ``depth_scale`` ``sample`` and the depth of
the lab row of the same sample (no file gives it one of its own), in a scan of its own; the lab
row is paired with it by sample id, never by depth. Tested on files written here and on the real
sum spectra of ``../shared/fixtures/real/itraxBook_CD166_19_(2020)/calibration_samples/`` (skipped
when absent).
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import xrfhub
from xrfhub.errors import InputError
from xrfhub.readers import itrax_spe
from xrfhub.records import DEPTH_SAMPLE
from xrfhub.samples import AlignParams

from conftest import SHARED
from test_itrax_readers import itrax_spe_bytes

REAL = SHARED / "fixtures" / "real" / "itraxBook_CD166_19_(2020)"
SUMS = REAL / "calibration_samples" / "sumspectra"
DFL = ("[detector parameters]\r\nkeV/channel 2 = 0.01026700\r\nenergy offset 2 = -0.00993069\r\n\r\n"
       "[Fit cluster]\r\ntube selector = 2\r\nkV = 30\r\nmA = 30\r\n")


@pytest.fixture
def real():
    if not SUMS.is_dir():
        pytest.skip(f"real ITRAX folder not found at {REAL} (it lives in ../shared beside the checkout)")
    return REAL


def _counts(seed):
    return np.random.default_rng(seed).integers(0, 400, 2048).astype(np.uint32)


def _sum_spectra(folder, ids, seed=0):
    """ITRAX sum spectra of discrete samples as Q-Spec writes them: placeholder section name and position."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, sid in enumerate(ids):
        (folder / f"sumspectra_{sid}.spe").write_bytes(itrax_spe_bytes(_counts(seed + i), position="0.000000"))
    (folder / "settings.dfl").write_text(DFL)


def _lab(path, rows):
    path.write_text("core,SampleID,top_mm,bottom_mm,CaCO3 [wt%]\n"
                    + "".join(f"GC1,{sid},{top},{top + 10},{v}\n" for sid, top, v in rows))


def _hub_samples(store):
    s = xrfhub.open(store, "samples", index=False)
    return {int(line): (str(st), str(r), [int(x) for x in m if x >= 0])
            for line, st, r, m in zip(s["line"].values, s["match_status"].values, s["match_reason"].values,
                                      s["matched_spectrum"].values)}


def test_written_sum_spectra_stored_with_sample_id_and_lab_depth(tmp_path):
    _sum_spectra(tmp_path / "in" / "sums", ["S-07", "s-12"])
    _lab(tmp_path / "in" / "lab.csv", [("S-07", 330, 12.5), ("S-12", 1020, 30.1), ("S-99", 2000, 5.0)])
    store = tmp_path / "store"
    report = xrfhub.ingest([tmp_path / "in"], store, core="GC1", align=AlignParams(tube_kv=30.0))
    assert report.n_spectra == 2 and report.n_samples == 3 and not report.skipped
    assert any("depth 335 mm from the lab row of sample 'S-07' (in/lab.csv line 2)" in w for w in report.warnings)
    ds = xrfhub.open(store, index=False)
    got = {str(sid): (float(d), str(sc), str(run), str(sec))
           for sid, d, sc, run, sec in zip(ds["sample_id"].values, ds["depth_mm"].values, ds["depth_scale"].values,
                                          ds["run"].values, ds["section"].values)}
    assert got == {"S-07": (335.0, DEPTH_SAMPLE, "sample-S-07", ""), "s-12": (1025.0, DEPTH_SAMPLE, "sample-s-12", "")}
    assert np.isnan(ds["position_mm"].values).all()  # no position in a section: it is no scan point
    assert set(ds["calibration_source"].values.astype(str)) == {"settings.dfl"}
    rows = list(ds["sample_id"].values.astype(str))
    lab = _hub_samples(store)
    assert lab[2] == ("matched", "paired by sample id 'S-07': the sample's own spectrum (not by depth)",
                      [rows.index("S-07")])
    assert lab[3][0] == "matched" and lab[3][2] == [rows.index("s-12")]  # case ignored
    # S-99 has no spectrum, and sample spectra are never paired by depth
    assert lab[4] == ("unmatched", "no scan points to pair by depth: the core's spectra are discrete samples', "
                                   "paired with the lab rows of their own sample id only", [])
    assert xrfhub.validate(store).ok
    # the lab row's own spectrum is its mean spectrum
    s = xrfhub.open(store, "samples", index=False)
    line = list(s["line"].values).index(2)
    np.testing.assert_array_equal(s["mean_spectrum"].values[line], ds["counts"].values[rows.index("S-07")])


def test_written_sum_spectrum_of_a_later_ingest_finds_the_stored_lab_row(tmp_path):
    _lab(tmp_path / "lab.csv", [("S-07", 330, 12.5)])
    store = tmp_path / "store"
    xrfhub.ingest([tmp_path / "lab.csv"], store, core="GC1")
    _sum_spectra(tmp_path / "sums", ["S-07"])
    report = xrfhub.ingest([tmp_path / "sums"], store, core="GC1", align=AlignParams(tube_kv=30.0))
    assert report.n_spectra == 1 and any("depth 335 mm from the lab row of sample 'S-07' (lab.csv line 2)" in w
                                         for w in report.warnings)
    assert _hub_samples(store)[2][:2] == ("matched", "paired by sample id 'S-07': the sample's own spectrum "
                                                     "(not by depth)")
    assert xrfhub.validate(store).ok


def test_written_scan_points_and_sample_spectra_kept_apart(tmp_path):
    """A core scanned at 330-340 mm and a discrete sample of 330-340 mm: the sample's lab row takes
    only its own spectrum, another lab row at that depth takes only the scan points."""
    scan = tmp_path / "in" / "GC1" / "XRF data"
    scan.mkdir(parents=True)
    for i, pos in enumerate((330, 335, 340)):
        (scan / f"L{i:06d}.spe").write_bytes(itrax_spe_bytes(_counts(10 + i), section="GC1", position=f"{pos}"))
    (scan / "settings.dfl").write_text(DFL)
    _sum_spectra(tmp_path / "in" / "sums", ["S-07"])
    _lab(tmp_path / "in" / "lab.csv", [("S-07", 330, 12.5), ("S-08", 330, 13.0)])
    store = tmp_path / "store"
    xrfhub.ingest([tmp_path / "in"], store, core="GC1", section_top_mm=0.0, align=AlignParams(tube_kv=30.0))
    ds = xrfhub.open(store, index=False)
    scale = ds["depth_scale"].values.astype(str)
    own = int(np.flatnonzero(scale == DEPTH_SAMPLE)[0])
    points = sorted(int(i) for i in np.flatnonzero(scale != DEPTH_SAMPLE))
    assert ds["depth_mm"].values[own] == 335.0 and len(points) == 3
    lab = _hub_samples(store)
    assert lab[2][0] == "matched" and lab[2][2] == [own]
    assert lab[3] == ("matched", "", points)
    assert xrfhub.validate(store).ok
    # a query by depth gets both kinds; depth_scale tells them apart
    assert sorted(xrfhub.open(store, index=False)["depth_scale"].values.astype(str)) == ["core"] * 3 + ["sample"]


def test_written_sample_spectrum_at_another_voltage_is_unmatched_with_reason(tmp_path):
    _sum_spectra(tmp_path / "in" / "sums", ["S-07"])
    _lab(tmp_path / "in" / "lab.csv", [("S-07", 330, 12.5)])
    store = tmp_path / "store"
    xrfhub.ingest([tmp_path / "in"], store, core="GC1", align=AlignParams(tube_kv=10.0))
    assert _hub_samples(store)[2] == ("unmatched", "the sample's own spectrum (sample id 'S-07') is at 30 kV, the "
                                                   "alignment pairs 10 kV (--align-kv)", [])


def test_written_refusals(tmp_path):
    _sum_spectra(tmp_path / "in" / "sums", ["S-07"])
    path = tmp_path / "in" / "sums" / "sumspectra_S-07.spe"
    # no core: the header's Section name is the placeholder and its Sample name the software's
    with pytest.raises(InputError, match=r"discrete sample 'S-07': the file names no core .*pass --core"):
        itrax_spe.read(path)
    (s,) = itrax_spe.read(path, core="GC1")
    assert (s.core, s.sample_id, s.depth_scale) == ("GC1", "S-07", DEPTH_SAMPLE) and np.isnan(s.depth_mm)
    # no lab row of that sample: refused, the store unchanged
    _lab(tmp_path / "in" / "lab.csv", [("S-08", 330, 12.5)])
    store = tmp_path / "store"
    with pytest.raises(InputError, match=r"no lab row of core GC1 has that sample id \(its lab rows name the "
                                         r"samples S-08\)"):
        xrfhub.ingest([tmp_path / "in"], store, core="GC1")
    report = xrfhub.ingest([tmp_path / "in"], store, core="GC1", skip_bad=True)
    assert report.n_spectra == 0 and report.n_samples == 1 and len(report.skipped) == 1
    # two lab rows of the sample at different depths: refused, naming both
    _lab(tmp_path / "two.csv", [("S-07", 330, 12.5), ("S-07", 500, 12.5)])
    with pytest.raises(InputError, match=r"give different depths \(335 mm at two.csv line 2; 505 mm at two.csv line 3"):
        xrfhub.ingest([tmp_path / "two.csv", tmp_path / "in" / "sums"], tmp_path / "store2", core="GC1")


def test_real_sum_spectra_joined_to_their_lab_rows(real, tmp_path):
    """The real sum spectra of samples cd166-33 and cd166-102 with the run's real settings above
    them, and a lab table naming those samples (the real ICP table names its samples B14, B02:
    no file of the folder says which ICP row is cd166-33, so the real ICP rows are not joined)."""
    sums = tmp_path / "run" / "calibration_samples" / "sumspectra"
    sums.mkdir(parents=True)
    for f in SUMS.glob("*.spe"):
        shutil.copy(f, sums / f.name)
    shutil.copy(REAL / "CD166_19_(2020)_SETTINGS.dfl", tmp_path / "run")
    (tmp_path / "run" / "calibration_samples" / "lab.csv").write_text(
        "SampleID,top_mm,bottom_mm,Ca [mg/kg]\ncd166-33,330,340,502.972\ncd166-102,1020,1030,410.725\n")
    store = tmp_path / "store"
    report = xrfhub.ingest([tmp_path / "run" / "calibration_samples"], store, core="CD166_19",
                           align=AlignParams(tube_kv=30.0))
    assert report.n_spectra == 2 and not report.skipped
    ds = xrfhub.open(store, index=False)
    assert dict(zip(ds["sample_id"].values.astype(str), ds["depth_mm"].values)) == {"cd166-33": 335.0,
                                                                                   "cd166-102": 1025.0}
    assert set(ds["calibration_source"].values.astype(str)) == {"settings.dfl (folder above)"}
    energy = ds["energy"].values
    for row in range(2):  # Fe K-alpha at 6.40 keV with the run's settings, not at "360 keV"
        window = (energy > 6.2) & (energy < 6.6)
        assert energy[window][np.argmax(ds["counts"].values[row][window])] == pytest.approx(6.40, abs=0.03)
    lab = _hub_samples(store)
    rows = list(ds["sample_id"].values.astype(str))
    assert lab[2] == ("matched", "paired by sample id 'cd166-33': the sample's own spectrum (not by depth)",
                      [rows.index("cd166-33")])
    assert lab[3][2] == [rows.index("cd166-102")]
    assert xrfhub.validate(store).ok


@pytest.mark.slow
def test_real_whole_folder_with_core_refuses_sum_spectra_no_lab_row_names(real, tmp_path):
    """The whole real folder with --core: its ICP table names samples B14... and no lab table names
    cd166-33 or cd166-102, so those two are refused with the lab ids listed; the rest is stored."""
    store = tmp_path / "store"
    report = xrfhub.ingest([real], store, core="CD166_19", depth_unit="mm", units="mg/kg", skip_bad=True,
                           align=AlignParams(tube_kv=30.0))
    assert report.n_spectra == 99 + 5 and report.n_samples == 60 + 57  # the ICP table and the benchtop one
    refused = {k.rsplit("/", 1)[1]: v for k, v in report.skipped if "sumspectra_" in k}
    assert sorted(refused) == ["sumspectra_cd166-102.spe", "sumspectra_cd166-33.spe"]
    assert all("no lab row of core CD166_19 has that sample id (its lab rows name the samples A04" in v
               for v in refused.values())
    assert xrfhub.validate(store).ok


def test_written_sections_table_leaves_sample_spectra_alone(tmp_path):
    """A sections table covering the core places its scan points; the discrete sample's spectrum has
    no section and keeps its lab row's depth (it is not refused as a section the table lacks)."""
    scan = tmp_path / "in" / "GC1_S1" / "XRF data"
    scan.mkdir(parents=True)
    for i, pos in enumerate((10, 20)):
        (scan / f"L{i:06d}.spe").write_bytes(itrax_spe_bytes(_counts(20 + i), section="GC1_S1", position=f"{pos}"))
    (scan / "settings.dfl").write_text(DFL)
    _sum_spectra(tmp_path / "in" / "sums", ["S-07"])
    _lab(tmp_path / "in" / "lab.csv", [("S-07", 330, 12.5)])
    (tmp_path / "tops.csv").write_text("core,section,top (cm)\nGC1,S1,100\n")
    store = tmp_path / "store"
    report = xrfhub.ingest([tmp_path / "in"], store, core="GC1", sections=tmp_path / "tops.csv",
                           align=AlignParams(tube_kv=30.0))
    assert report.n_spectra == 3 and not report.skipped
    ds = xrfhub.open(store, index=False)
    got = sorted(zip(ds["depth_scale"].values.astype(str), ds["depth_mm"].values.tolist()))
    assert got == [("core", 1010.0), ("core", 1020.0), ("sample", 335.0)]
    assert xrfhub.validate(store).ok


def test_real_folder_ingested_bare_names_the_table_and_leaves_no_store(real, tmp_path):
    """The whole real folder with no option: the scans, the folder and the benchtop file name the
    core, the benchtop table's unnamed interval is read; what no file says, the ICP table's units,
    is refused (taking them would store a guess): the message names the file and what to write,
    says nothing was stored and how to store the rest (--skip-bad), and no empty store is left."""
    from click.testing import CliRunner

    from xrfhub_cli.main import cli

    store = tmp_path / "store"
    result = CliRunner().invoke(cli, ["ingest", str(real), "--store", str(store)])
    assert result.exit_code == 2, result.output
    assert "calibration_data.csv, field 'Ag': element concentrations without a unit" in result.output
    assert "--units" in result.output and "no core column" not in result.output
    assert "nothing was stored" in result.output and "--skip-bad" in result.output
    assert "fix that file" in result.output and "CD166_19_benchtop.csv" not in result.output
    assert not store.exists()
