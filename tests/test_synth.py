"""The synthetic corpus: layout, file formats, determinism, realism and lab values."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from xrfhub.synth import (CorpusTruth, SpeMeta, SpeStyle, generate_corpus, pangaea_event,
                          plot_mean_vs_reference, realism_correlation, simulate_spectra,
                          write_spe)
from xrfhub.synth import composition as comp

SPACE_NAME = re.compile(r"^(?P<core>\S+)_(?P<sec>\d{3,6}) +(?P<pos>\d+\.\d)mm +\d+s +(?P<kv>\d+)kV "
                        r"+\d+uA \S+ +\d+\.\dmm Run\d+ Rep\d+ Sett \w+\.spe$")


def parse_spe(path: Path) -> tuple[dict[str, list[str]], np.ndarray]:
    """A few lines of test-local parsing: ``$KEY:`` then value lines; counts after ``$DATA:``."""
    lines = path.read_bytes().decode("ascii").splitlines()
    header: dict[str, list[str]] = {}
    key = None
    for i, line in enumerate(lines):
        if line.startswith("$") and line.endswith(":"):
            key = line[1:-1]
            header[key] = []
            if key == "DATA":
                first, last = map(int, lines[i + 1].split())
                counts = np.array(" ".join(lines[i + 2:]).split(), dtype=np.int64)
                assert counts.size == last - first + 1
                return header, counts
        else:
            header[key].append(line)
    raise AssertionError(f"{path}: no $DATA:")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, CorpusTruth]:
    out = tmp_path_factory.mktemp("tiny")
    return out, generate_corpus(out, "tiny", seed=0)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "truth.json"}


def test_layout_and_both_name_schemes(tiny):
    out, truth = tiny
    runs = sorted(p.relative_to(out / "scans").as_posix() for p in (out / "scans").glob("*/*"))
    assert len({r.split("/")[0] for r in runs}) == 3
    assert any(r.endswith("/Run 1 at  10kV") for r in runs)
    assert any(r.endswith("/Run 2 at  30kV") for r in runs)
    assert any(re.search(r"/Run 3 at  10kV_\d+-\d+cm$", r) for r in runs)
    names = [p.name for p in (out / "scans").rglob("*.spe")]
    assert len(names) == truth.n_spectra
    bang = [n for n in names if "!" in n]
    space = [n for n in names if "!" not in n]
    assert bang and space
    assert all(len(n[:-4].split("!")) == 17 for n in bang)
    assert all(SPACE_NAME.match(n) for n in space), [n for n in space if not SPACE_NAME.match(n)][:3]
    # depth rule: section token (4 digits cm / 5 digits mm) + position = the true depth
    for core in truth.cores.values():
        for scan in core.scans:
            for d, tok in zip(scan.depths_mm, scan.section_tokens):
                top = int(tok) * (10 if len(tok) <= 4 else 1)
                assert top in [int(t) for t in core.section_tops_mm]
                assert 0 < d - top <= core.section_length_mm


def test_spe_header_and_counts_parse(tiny):
    out, truth = tiny
    seen_heads, seen_crlf = set(), set()
    for core in truth.cores.values():
        if not core.has_scan:
            continue
        path = next((out / "scans" / core.core / core.scans[0].folder).glob("*.spe"))
        header, counts = parse_spe(path)
        assert counts.shape == (2048,) and counts.sum() > 1e5
        assert header["SPEC_ID"] == [path.name[:-4]]
        assert re.fullmatch(r"\d\d-\d\d-\d{4} \d\d:\d\d:\d\d", header["DATE_MEA"][0])
        assert len(header["MEAS_TIM"][0].split()) == 2
        seen_heads.add(core.head)
        seen_crlf.add(b"\r\n" in path.read_bytes())
        if core.head == "new":
            for key in ("Core_ID", "Section_ID", "X_Position", "Depth", "TotalCPS", "ACC_VOLT",
                        "TUBE_CUR", "ENER_FIT", "MCA_CAL"):
                assert key in header, key
            offset, gain = map(float, header["ENER_FIT"][0].split())
            assert gain == pytest.approx(core.gain_kev, abs=1e-6) and 0.0199 <= gain <= 0.0201
            assert header["MCA_CAL"][0] == "2" and header["MCA_CAL"][1].endswith(" keV")
            x = float(header["X_Position"][0].replace(",", "."))
            assert x == float(header["Depth"][0].replace(",", "."))
            if core.decimal_comma:
                assert "," in header["X_Position"][0]
        else:
            assert set(header) == {"SPEC_ID", "SPEC_REM", "DATE_MEA", "MEAS_TIM", "DATA"}
        # Fe K-alpha (6.40 keV) sits where the file's calibration says
        fe = int(round((6.40 - core.offset_kev) / core.gain_kev))
        assert abs(int(np.argmax(counts[290:350])) + 290 - fe) <= 2
    assert seen_heads == {"new", "old"} and seen_crlf == {True, False}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = generate_corpus(tmp_path / "a", "tiny", seed=3)
    generate_corpus(tmp_path / "b", "tiny", seed=3)
    generate_corpus(tmp_path / "c", "tiny", seed=4)
    da, db, dc = (_digest(tmp_path / k) for k in "abc")
    assert da == db and len(da) == a.n_spectra + 2
    assert da != dc


def test_realism_correlation_against_real_mean():
    rng = np.random.default_rng(11)
    blocks = []
    for _ in range(8):
        hist = comp.simulate_core(rng, 3000.0, comp.random_style(rng))
        depth = np.arange(10.0, 3000.0, 60.0)
        dry, water = hist.at(depth)
        film = rng.gamma(2.0, 5.0, depth.size)
        import datetime as dt
        dates = [dt.datetime(2015, 1, 1)] * depth.size
        counts, _real, _rate = simulate_spectra(rng, comp.element_weights(dry, water), film, 10,
                                                "No-Filter", 150, 10, dates, 0.02, 0.0)
        blocks.append(counts)
    spectra = np.concatenate(blocks)
    r = realism_correlation(spectra)
    assert r >= 0.95, r
    # a flat or shifted spectrum must fail the same criterion
    assert realism_correlation(np.roll(spectra, 40, axis=1)) < 0.95


def test_plot_mean_vs_reference(tmp_path, tiny):
    out, _ = tiny
    files = sorted((out / "scans").glob("*/Run 1 at  10kV/*.spe"))[:50]
    spectra = np.stack([parse_spe(p)[1] for p in files])
    png = plot_mean_vs_reference(spectra, tmp_path / "mean.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lab_files_formats_and_values(tiny):
    out, truth = tiny
    tab = (out / "lab" / "pangaea_export.tab").read_text().splitlines()
    assert tab[0] == "/* DATA DESCRIPTION:"
    end = tab.index("*/")
    assert all(re.match(r"^(\w[\w() ]*:\t|\t)", line) for line in tab[1:end])
    assert tab[end + 1].split("\t") == ["Event", "Depth sed [m]", "CaCO3 [%]", "TOC [%]"]
    rows = [line.split("\t") for line in tab[end + 2:]]
    assert all("/" in r[0] for r in rows if not r[0].startswith("GeoB"))
    flags = {v[0] for r in rows for v in r[2:] if v and v[0] in "?/*"}
    assert flags  # quality prefixes occur
    csv = (out / "lab" / "lab_slices.csv").read_text().splitlines()
    assert csv[0] == "core,top_cm,bottom_cm,CaCO3_wt%,TOC_wt%"
    csv_cores = {line.split(",")[0] for line in csv[1:]}
    tab_cores = {r[0] for r in rows}
    scanned = {c.core for c in truth.cores.values() if c.has_scan}
    assert scanned <= csv_cores | {c for c in scanned if pangaea_event(c) in tab_cores}
    assert truth.no_scan_core in csv_cores and truth.no_scan_core not in scanned
    for line in csv[1:]:
        top, bottom = map(float, line.split(",")[1:3])
        assert bottom - top == pytest.approx(1.0)
    lab = [s for c in truth.cores.values() for s in c.lab]
    assert len(lab) == truth.n_lab_samples == len(rows) + len(csv) - 1
    assert any(not s["within_scan"] for s in lab if truth.cores[s["core"]].has_scan)
    caco3 = np.array([s["CaCO3"] for s in lab])
    toc = np.array([s["TOC"] for s in lab])
    assert caco3.min() >= 0 and caco3.max() <= 100
    assert toc.min() > 0 and np.median(toc) < 2.0
    # measured = truth + small noise
    err = np.array([s["CaCO3"] - s["CaCO3_true"] for s in lab])
    assert np.abs(np.median(err)) < 0.5 and np.std(err) < 3.0


def test_truth_json_roundtrip(tiny):
    out, truth = tiny
    back = CorpusTruth.from_json(out / "truth.json")
    assert back.n_spectra == truth.n_spectra
    assert back.cores.keys() == truth.cores.keys()
    core = next(iter(back.cores.values()))
    assert core.depths_10kv_mm == truth.cores[core.core].depths_10kv_mm


def test_benchmark_spec_has_held_out_high_toc_cores():
    from xrfhub.synth.corpus import SIZES, _spec_for
    spec = SIZES["benchmark"]
    assert spec.n_cores >= 40 and spec.n_held_out == 3
    rng = np.random.default_rng(0)
    normal = [comp.random_style(rng).organic for _ in range(200)]
    high = [comp.random_style(rng, high_toc=True).organic for _ in range(50)]
    assert np.median(high) > 2 * np.median(normal)
    assert _spec_for(3000)[1].n_cores >= 3
    with pytest.raises(ValueError, match="unknown corpus size"):
        _spec_for("huge")


def test_write_spe_styles(tmp_path):
    import datetime as dt
    counts = np.arange(2048, dtype=np.uint32)
    meta = SpeMeta(core="SO264-09-2", section="0100", position_mm=15.0,
                   date=dt.datetime(2019, 2, 20, 9, 55, 32))
    p = write_spe(tmp_path / "x.spe", counts, meta,
                  SpeStyle(head="old", newline="\r\n", per_line=8))
    raw = p.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n")
    header, back = parse_spe(p)
    assert np.array_equal(back, counts)
    assert header["DATE_MEA"] == ["02-20-2019 09:55:32"] and "X_Position" not in header


def test_a_change_in_the_physics_changes_counts_not_which_core_is_which(tmp_path, monkeypatch):
    """numpy's Poisson sampler takes more or fewer draws as the expected counts move, and those
    follow floating-point physics that library versions change: the cores' stream must not care."""
    from xrfhub.synth import corpus

    first = corpus.generate_corpus(tmp_path / "a", size="tiny", seed=3)
    corpus._flux_per_ua_s.cache_clear()
    monkeypatch.setattr(corpus, "REFERENCE_TOTAL_COUNTS", corpus.REFERENCE_TOTAL_COUNTS * 1.01)
    try:
        second = corpus.generate_corpus(tmp_path / "b", size="tiny", seed=3)
    finally:
        corpus._flux_per_ua_s.cache_clear()
    assert [c.lab for c in first.cores.values()] == [c.lab for c in second.cores.values()]
    assert [s.depths_mm for c in first.cores.values() for s in c.scans] == \
        [s.depths_mm for c in second.cores.values() for s in c.scans]
    spe = sorted((tmp_path / "a" / "scans").rglob("*.spe"))[0]
    assert spe.read_bytes() != (tmp_path / "b" / spe.relative_to(tmp_path / "a")).read_bytes()
