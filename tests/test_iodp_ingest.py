"""Avaatech spectra as written aboard an IODP expedition, and an ingest that never surprises (issue 12).

Each rule is tried on the real file (``../shared/fixtures/real/iodp_SOD-Laboratory/XRF``: a
``.spe`` whose header leaves ``$Core_ID:``/``$Section_ID:`` at the placeholder ``0``, and the
bAXIL model beside it) and on files the tests write, so the rule is general.
"""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import xrfhub
from xrfhub import coreid
from xrfhub.depth import read_sections_table
from xrfhub.errors import InputError
from xrfhub.readers import avaatech_spe, baxil_axml

from conftest import SHARED, spe_text, synthetic_counts

REAL = SHARED / "fixtures" / "real" / "iodp_SOD-Laboratory" / "XRF"
SECTIONS_CSV = ("Exp,Site,Hole,Core,Type,Sect,Top depth CSF-A (m),Bottom depth CSF-A (m)\n"
                "397,U1587,A,2,H,1,3.9,5.4\n397,U1587,A,2,H,2,5.4,6.9\n")
FE_KA_KEV = 6.404


def run_cli(*args, check=True):
    """The real CLI, in-process (click's runner): exit code, stdout and stderr as a user sees them.

    In-process because a fresh interpreter per call costs seconds on a loaded machine; the
    command, its option parsing and its error handling are the same code.
    """
    from click.testing import CliRunner

    from xrfhub_cli.main import cli

    result = CliRunner().invoke(cli, [str(a) for a in args])
    result.returncode = result.exit_code
    if check and result.exit_code != 0:
        raise AssertionError(f"xrfhub {' '.join(map(str, args))} exited {result.exit_code}\n{result.output}"
                             f"\n{result.exception!r}")
    return result


def real_spe() -> Path:
    if not REAL.is_dir():
        pytest.skip(f"real IODP fixtures not found at {REAL} (they live in ../shared beside the checkout)")
    return next(REAL.glob("*.spe"))


def real_axml() -> Path:
    real_spe()
    return next(REAL.glob("*.axml"))


def copy_real(folder: Path, *, model: bool = True, sections=("1",)) -> Path:
    """The real spectrum (renamed to each of ``sections``) and, if asked, its bAXIL model."""
    folder.mkdir(parents=True, exist_ok=True)
    spe = real_spe()
    for sec in sections:
        shutil.copy(spe, folder / spe.name.replace("2H-1-A", f"2H-{sec}-A"))
    if model:
        shutil.copy(real_axml(), folder)
    return folder


def fe_peak_kev(ds) -> float:
    """Energy of the strongest channel between 5.9 and 6.9 keV on each spectrum's own scale."""
    counts = np.asarray(ds["counts"].values[0], dtype=float)
    energy = ds["energy_offset_kev"].values[0] + ds["energy_gain_kev"].values[0] * np.arange(counts.size)
    window = (energy > 5.9) & (energy < 6.9)
    return float(energy[window][np.argmax(counts[window])])


# ----------------------------------------------------------------- 1. placeholders never decide


def test_real_file_identity_comes_from_its_iodp_sample_name():
    (s,) = avaatech_spe.read(real_spe())
    assert (s.core, s.section, s.half, s.sample_id) == ("397-U1587A-2H", "1", "A", "SHLF11796791")
    assert s.position_mm == 10.0 and s.depth_mm == 10.0 and s.depth_scale == "section-relative"
    assert np.isnan(s.section_top_mm)  # unknown, never a made-up 0


def test_iodp_sample_names_parse_generally():
    p = coreid.parse_iodp_sample("397-U1587A-2H-1-A_SHLF11796791")
    assert (p.core, p.section, p.half, p.text_id) == ("397-U1587A-2H", "1", "A", "SHLF11796791")
    odp = coreid.parse_iodp_sample("178-1098A-12X-CC-W")  # ODP numeric site, core catcher, working half
    assert (odp.core, odp.section, odp.half) == ("178-1098A-12X", "CC", "W")
    chikyu = coreid.parse_iodp_sample("370-C0023A-05R-03")
    assert (chikyu.core, chikyu.section, chikyu.half) == ("370-C0023A-5R", "3", "")
    for not_iodp in ("PS75-056-1", "0", "", "GeoB12345-1", "397-U1587A-2H"):
        assert coreid.parse_iodp_sample(not_iodp) is None
    assert coreid.is_placeholder("0") and coreid.is_placeholder(" - ") and coreid.is_placeholder("")
    assert not coreid.is_placeholder("0000")  # a real section top (0 cm) in the Avaatech scheme


def _written(tmp_path, name: str, core="0", section="0", run="1", rep="0") -> Path:
    text = spe_text("X", "0100", 25.0, counts=synthetic_counts(np.random.default_rng(0), 10))
    text = (text.replace("$Core_ID:\nX", f"$Core_ID:\n{core}").replace("$Section_ID:\n0100", f"$Section_ID:\n{section}")
            .replace("$Run_ID:\n1", f"$Run_ID:\n{run}").replace("$Replicate_ID:\n0", f"$Replicate_ID:\n{rep}"))
    text = text.replace(text.split("\n")[1], name)  # $SPEC_ID as the file name
    path = tmp_path / f"{name}.spe"
    path.write_text(text)
    return path


def test_written_placeholders_defer_to_the_name_and_refuse_without_one(tmp_path):
    (s,) = avaatech_spe.read(_written(tmp_path, "PS75-056-1_0100   25.0mm  10s  10kV 150uA No-Filter   0.0mm Run1 "
                                                 "Rep0 Sett Low"))
    assert (s.core, s.section, s.depth_mm, s.depth_scale) == ("PS75-056-1", "0100", 1025.0, "core")
    (iodp,) = avaatech_spe.read(_written(tmp_path, "401-U1609B-3H-4-W_SHLF1!0!0!  25.0!2024-01-01!10-00-00!10!10!150!"
                                                    "25.0!0.0!None!10.0!12.0!Run1!Rep0!Sett Low", section="-"))
    assert (iodp.core, iodp.section, iodp.half, iodp.sample_id) == ("401-U1609B-3H", "4", "W", "SHLF1")
    lonely = _written(tmp_path, "nothing here")
    with pytest.raises(InputError, match=r"no core id .*placeholder '0'.*pass --core"):
        avaatech_spe.read(lonely)


# ----------------------------------------------------------------- 2. --core wins


def test_core_option_wins_over_the_file(tmp_path):
    (s,) = avaatech_spe.read(real_spe(), core="MY-CORE")
    assert s.core == "MY-CORE" and s.section == "1"
    written = _written(tmp_path, "PS75-056-1_0100   25.0mm  10s  10kV 150uA No-Filter   0.0mm Run1 Rep0 Sett Low",
                       core="PS75-056-1")
    report = xrfhub.ingest([written], tmp_path / "hub", core="OTHER")
    assert report.cores == ["OTHER"]


# ----------------------------------------------------------------- 3 + 4. sections


def test_real_second_section_ingests_and_queries_never_mix_sections(tmp_path):
    folder = copy_real(tmp_path / "XRF", sections=("1", "2"))
    lab = tmp_path / "lab.csv"  # a sample at 1 cm (the positions' value) and one at 391 cm (section 1 on CSF-A)
    lab.write_text("core,depth_cm,CaCO3 [%]\n397-U1587A-2H,1.0,50\n397-U1587A-2H,391.0,40\n")
    hub = tmp_path / "hub"
    report = xrfhub.ingest([folder, lab], hub, align=xrfhub.build.AlignParams(tube_kv=30.0))
    assert report.n_spectra == 2 and report.cores == ["397-U1587A-2H"]
    # section-relative spectra are never paired with lab (core) depths
    assert xrfhub.info(hub)["matches"]["matched"] == 0
    assert any("section-relative depths" in w and "--sections" in w for w in report.warnings)
    ds = xrfhub.open(hub, index=False)
    assert sorted(ds["section"].values) == ["1", "2"] and set(ds["depth_scale"].values) == {"section-relative"}
    assert ds["depth_mm"].attrs["depth_scale"] == "section-relative"
    info = run_cli("info", hub).stdout
    assert "depth scale: section-relative (sections 1, 2)" in info
    bad = run_cli("query", hub, "--core", "397-U1587A-2H", "--depth", "0:20", "--out", tmp_path / "q.csv",
                  check=False)
    assert bad.returncode == 2 and "sections 1, 2 share these depths" in bad.stderr
    one = xrfhub.query(hub, tmp_path / "q.csv", core="397-U1587A-2H", depth="0:20", section="2")
    assert one == 1
    # the tops arrive later: the stored sections are placed, on the table's scale
    tops = tmp_path / "sections.csv"
    tops.write_text(SECTIONS_CSV)
    xrfhub.ingest([folder], hub, sections=tops, align=xrfhub.build.AlignParams(tube_kv=30.0))
    ds = xrfhub.open(hub, index=False)
    assert sorted(ds["depth_mm"].values) == [3910.0, 5410.0] and set(ds["depth_scale"].values) == {"CSF-A"}
    assert xrfhub.info(hub)["matches"]["matched"] == 1
    assert xrfhub.query(hub, tmp_path / "q.csv", core="397-U1587A-2H", depth="3900:6000") == 2
    assert "store is valid" in run_cli("validate", hub).stdout


def test_sections_table_places_written_avaatech_spectra_and_refuses_missing_sections(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "scans"
    folder.mkdir()
    for sec, pos in (("3", 5.0), ("4", 5.0)):
        name = f"400-U1600A-7H-{sec}-A_SHLF9{sec}!0!0!  {pos}!2024-01-01!10-00-0{sec}!10!10!150!{pos}!0.0!None!10.0!12.0!Run1!Rep0!Sett Low"
        text = spe_text("X", "0100", pos, counts=synthetic_counts(rng, 10)).replace("$Core_ID:\nX", "$Core_ID:\n0")
        (folder / f"{name}.spe").write_text(text.replace("$Section_ID:\n0100", "$Section_ID:\n0").replace(
            text.split("\n")[1], name))
    tops = tmp_path / "tops.csv"
    tops.write_text("core;section;top [cm]\n400-U1600A-7H;03;150\n")  # section 4 missing
    with pytest.raises(InputError, match=r"section '4' is not in the sections table .*sections of this core: 3"):
        xrfhub.ingest([folder], tmp_path / "hub", sections=tops)
    assert not (tmp_path / "hub" / "generations").exists() or not list((tmp_path / "hub").glob("generations/g*"))
    tops.write_text("core;section;top [cm]\n400-U1600A-7H;03;150\n400-U1600A-7H;4;300\n")
    xrfhub.ingest([folder], tmp_path / "hub", sections=tops)
    ds = xrfhub.open(tmp_path / "hub", index=False)
    assert sorted(ds["depth_mm"].values) == [1505.0, 3005.0] and set(ds["depth_scale"].values) == {"core"}


@pytest.mark.parametrize("text, message", [
    ("core,section,top\nA,1,10\n", "gives no unit"),
    ("core,top_cm\nA,10\n", "no section column"),
    ("section,top_cm\n1,10\n", "no core column"),
    ("core,section,top_cm\nA,1,ten\n", "expected a finite number"),
    ("core,section,top_cm\nA,1,10\nA,01,20\n", "already given on line 2"),
])
def test_sections_table_refusals_name_the_problem(tmp_path, text, message):
    path = tmp_path / "tops.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_sections_table(path)


def test_sections_table_scales_and_units(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("Exp,Site,Hole,Core,Type,Sect,Top depth CCSF-A (m)\n397,U1587,A,2,H,1,4.25\n")
    t = read_sections_table(path)
    assert t.scale == "CCSF-A" and t.top_mm("397-U1587A-2H", "01") == 4250.0
    path.write_text("core\tsection\ttop_mm\nGeoB1\t0100\t1000\n")
    t = read_sections_table(path)
    assert t.scale == "core" and t.top_mm("GEOB 1", "100") == 1000.0 and t.top_mm("GeoB1", "2") is None
    path.write_bytes("core,section,top (m)\nA,1,1.5\n".encode("utf-16"))
    assert read_sections_table(path).top_mm("A", "1") == 1500.0


# ----------------------------------------------------------------- 5. calibration


def test_real_baxil_model_beside_the_spectrum_puts_fe_at_6_40_kev(tmp_path):
    model = baxil_axml.read(real_axml())
    assert model.calibration.gain_kev == pytest.approx(0.0203734) and model.calibration.offset_kev == 0.0
    assert "Fe-Ka" in model.lines and "Rh-Ka-inc" in model.lines and model.tube_kv == 30
    hub = tmp_path / "hub"
    report = xrfhub.ingest([copy_real(tmp_path / "XRF")], hub)
    assert not any("default energy scale" in w for w in report.warnings)
    ds = xrfhub.open(hub, index=False)
    assert ds["calibration_source"].values[0] == "baxil:30kVp_XRF2_FixedCalibration_v02.axml"
    assert fe_peak_kev(ds) == pytest.approx(FE_KA_KEV, abs=0.03)
    rec = xrfhub.build.load_records(xrfhub.store.generations.Store(hub).current())["397-U1587A-2H"]
    (proc,) = [p for p in rec.processes if p.name == "energy_calibration"]
    assert proc.parameters["gain_kev"] == pytest.approx(0.0203734) and "Ca-Ka" in proc.parameters["lines"]
    assert any(s.name.endswith(".axml") for s in rec.sources)


def test_real_spectrum_with_calibration_option_and_without_any(tmp_path):
    alone = copy_real(tmp_path / "alone", model=False)
    report = xrfhub.ingest([alone], tmp_path / "plain")
    (warning,) = [w for w in report.warnings if "default energy scale" in w]
    assert warning.startswith("1 spectra use the default energy scale (20 eV/channel")
    plain = xrfhub.open(tmp_path / "plain", index=False)
    assert fe_peak_kev(plain) == pytest.approx(6.28, abs=0.03)  # what the default scale makes of Fe K-alpha
    xrfhub.ingest([alone], tmp_path / "given", calibration=real_axml())
    given = xrfhub.open(tmp_path / "given", index=False)
    assert fe_peak_kev(given) == pytest.approx(FE_KA_KEV, abs=0.03)
    out = run_cli("ingest", alone, "--store", tmp_path / "cli", "--calibration", real_axml()).stdout
    assert "default energy scale" not in out


def test_written_axml_models_and_their_refusals(tmp_path):
    good = tmp_path / "m.axml"
    good.write_text("<?xml version='1.0'?><bAxil><ExperimentalConditions><Excitation><DIRECT_TUBE><XRayTube>"
                    "<Voltage> 10 </Voltage><Anode><Composition> Rh </Composition></Anode></XRayTube></DIRECT_TUBE>"
                    "</Excitation></ExperimentalConditions><Model><Calibration><Zero><Initial>0</Initial>"
                    "<Fitted> -1.5E-002 </Fitted></Zero><Gain><Initial> 2.0E-002 </Initial><Fitted> 1.98E-002 </Fitted>"
                    "</Gain></Calibration><AnalyticalLines><Line><Z> 20 </Z><Label>Ka</Label></Line>"
                    "<Line><Z> 13 </Z><Label>Ka</Label></Line></AnalyticalLines></Model></bAxil>")
    m = baxil_axml.read(good)
    assert (m.calibration.gain_kev, m.calibration.offset_kev, m.tube_kv, m.anode) == (0.0198, -0.015, 10, "Rh")
    assert m.lines == ["Ca-Ka", "Al-Ka"] and m.calibration.source == "baxil:m.axml"
    for text, message in (("<bAxil><Model></Model></bAxil>", "no <Model><Calibration>"),
                          ("<bAxil><Model><Calibration><Zero/></Calibration></Model></bAxil>", "no Gain"),
                          ("<bAxil><Model><Calibration><Gain><Fitted>5</Fitted></Gain></Calibration></Model></bAxil>",
                           "cannot be an energy scale"),
                          ("<bAxil><Model>", "not well-formed XML")):
        good.write_text(text)
        with pytest.raises(InputError, match=message):
            baxil_axml.read(good)


# ----------------------------------------------------------------- 6. header tokens


def test_header_values_written_like_name_tokens(tmp_path):
    path = _written(tmp_path, "PS75-056-1_0100   25.0mm  10s  10kV 150uA No-Filter   0.0mm Run1 Rep0 Sett Low",
                    core="PS75-056-1", section="0100", run="Run3", rep="Rep2")
    (s,) = avaatech_spe.read(path)
    assert (s.run, s.replicate) == ("Run3", 2)
    (s,) = avaatech_spe.read(_written(tmp_path, "PS75-056-1_0100   25.0mm  10s  10kV 150uA No-Filter   0.0mm Run1 "
                                                 "Rep0 Sett Low", core="PS75-056-1", section="0100", run="run 4",
                                      rep="1"))
    assert (s.run, s.replicate) == ("Run4", 1)
    (real,) = avaatech_spe.read(real_spe())
    assert (real.run, real.replicate) == ("Run2", 0)


# ----------------------------------------------------------------- 17-19. identity, --store, exit codes


def test_same_content_under_another_path_is_recognised(tmp_path):
    parent = tmp_path / "iodp"
    copy_real(parent / "XRF")
    hub = tmp_path / "hub"
    first = xrfhub.ingest([parent / "XRF"], hub)
    again = xrfhub.ingest([parent], hub)  # the parent folder: every file under another store name
    assert again.generation is None and len(again.unchanged) == 2 and not again.added
    assert any("same content as XRF/" in w for w in again.warnings)
    renamed = tmp_path / "copy"
    renamed.mkdir()
    spe = next((parent / "XRF").glob("*.spe"))
    shutil.copy(spe, renamed / spe.name)
    assert xrfhub.ingest([renamed], hub).generation is None
    assert first.generation == xrfhub.store.generations.Store(hub).current().name


def test_store_option_is_checked(tmp_path):
    data = copy_real(tmp_path / "XRF")
    result = run_cli("ingest", data, "--store", data, check=False)
    assert result.returncode == 2 and "not an xrfhub store (no store.json)" in result.stderr
    assert "--init" in result.stderr and not (data / "store.json").exists()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    result = run_cli("ingest", data, "--store", a_file, check=False)
    assert result.returncode == 2 and "names an existing file" in result.stderr and "Traceback" not in result.stderr
    run_cli("ingest", data, "--store", data, "--init")
    assert (data / "store.json").exists()
    again = run_cli("ingest", data, "--store", data).stdout  # the store's own files are not data
    assert "2 file(s) already in the store" in again and "store generation: unchanged" in again


def test_misspelled_core_in_query_is_bad_input(tmp_path):
    hub = tmp_path / "hub"
    xrfhub.ingest([copy_real(tmp_path / "XRF")], hub)
    result = run_cli("query", hub, "--core", "397-U1587A-2X", "--out", tmp_path / "q.csv", check=False)
    assert result.returncode == 2 and "Did you mean '397-U1587A-2H'" in result.stderr


def test_info_shows_diffraction_series_with_pattern_counts(tmp_path):
    folder = tmp_path / "ramp"
    folder.mkdir()
    tt = np.linspace(10, 20, 101)
    for i in range(4):
        (folder / f"ramp_{i:04d}.xy").write_text("".join(f"{a:.3f} {100 + i:.1f}\n" for a in tt))
    xrfhub.ingest([folder], tmp_path / "hub", wavelength=0.5)
    info = run_cli("info", tmp_path / "hub").stdout
    assert "diffraction series" in info and "4 pattern(s)" in info


def test_bad_input_doc_lists_these_refusals_as_the_code_words_them():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_bad_input_ingest",
                                                  Path(__file__).resolve().parents[1] / "docs" / "make_bad_input_ingest.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    rows = gen.run_cases()
    assert all(code == 2 for _case, code, _msg in rows)
    assert gen.section_of(gen.OUT.read_text(encoding="utf-8")) == gen.render(rows), \
        "docs/bad-input.md is stale: run python docs/make_bad_input_ingest.py"


def test_sections_table_places_element_table_points_too(fixtures_dir, tmp_path):
    """One mechanism for every vendor: a bAXIL element export's sections are placed by the same table."""
    export = fixtures_dir / "xrf" / "avaatech_baxil_ZUG18-7_10kV_raw.csv"
    if not export.is_file():
        pytest.skip(f"{export} not present")
    tops = tmp_path / "tops.csv"
    tops.write_text("core,section,top_cm\nZUG18-7,0,100\n")
    xrfhub.ingest([export], tmp_path / "hub", sections=tops)
    el = xrfhub.open(tmp_path / "hub", "elements", index=False)
    assert float(el["depth_mm"].values.min()) == 1050.0 and set(el["depth_scale"].values) == {"core"}
    tops.write_text("core,section,top_cm\nZUG18-7,5,100\n")
    with pytest.raises(InputError, match="section '0' is not in the sections table"):
        xrfhub.ingest([export], tmp_path / "hub2", sections=tops)


def test_identity_hints_of_older_stores_are_still_read(tmp_path):
    """Stores written before the hint table kept one file per identity: a copy is still recognised."""
    from xrfhub.store import catalog, layout

    parent = tmp_path / "iodp"
    copy_real(parent / "XRF")
    hub = tmp_path / "hub"
    xrfhub.ingest([parent / "XRF"], hub)
    table = hub / layout.IDENTITIES / catalog.HINTS_DB
    con = sqlite3.connect(table)
    rows = con.execute("SELECT identity, source FROM hint").fetchall()
    con.close()
    assert len(rows) == 2
    table.unlink()  # the store as an older xrfhub left it: one file per identity
    for identity, source in rows:
        hint = catalog.identity_hint(hub, identity)
        hint.parent.mkdir(parents=True, exist_ok=True)
        hint.write_text(source, encoding="utf-8")
    again = xrfhub.ingest([parent], hub)
    assert again.generation is None and len(again.unchanged) == 2 and not again.added
    assert any("same content as XRF/" in w for w in again.warnings)


def test_identity_hints_fall_back_to_files_where_sqlite_fails(tmp_path, monkeypatch):
    """A file system SQLite cannot lock: hints go to one file per identity, and still count."""
    from xrfhub.store import catalog, layout

    def refuse(root, create):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(catalog, "_hints", refuse)
    parent = tmp_path / "iodp"
    copy_real(parent / "XRF")
    hub = tmp_path / "hub"
    xrfhub.ingest([parent / "XRF"], hub)
    assert not (hub / layout.IDENTITIES / catalog.HINTS_DB).exists()
    assert len([p for p in (hub / layout.IDENTITIES).rglob("*") if p.is_file()]) == 2
    again = xrfhub.ingest([parent], hub)
    assert again.generation is None and len(again.unchanged) == 2 and not again.added
    assert any("same content as XRF/" in w for w in again.warnings)
