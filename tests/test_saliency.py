"""Saliency that does not invent lines: per-channel gradients free of the patch grid, peaks named
only within the detector resolution of a line, reference lines drawn, each energy printed once."""
from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import write_corpus
from xrfhub.ml.saliency import detector_fwhm_kev, name_peak, reference_lines, salient_peaks


def test_detector_resolution_is_that_of_a_silicon_drift_detector():
    assert detector_fwhm_kev(5.899) == pytest.approx(0.155, abs=0.003)  # Mn K-alpha
    assert detector_fwhm_kev(1.0) < detector_fwhm_kev(10.0)


def test_reference_lines_follow_the_tube_voltage():
    ten = reference_lines(10.0)
    assert ten["Ca Kα"] == pytest.approx(3.69, abs=0.01) and ten["Fe Kα"] == pytest.approx(6.40, abs=0.01)
    assert "Ca Kβ" in ten and "Ba Lα" in ten
    assert "Sr Kα" not in ten  # the Sr K edge (16.1 keV) lies above a 10 kV tube
    assert "Sr Kα" in reference_lines(30.0)


def test_a_peak_is_named_only_within_the_detector_resolution():
    lines = reference_lines(10.0)
    assert name_peak(3.70, lines) == "Ca Kα"
    assert name_peak(6.40, lines) == "Fe Kα"
    assert name_peak(7.06, lines) == "Fe Kβ"  # a beta line is named where no alpha line is near
    assert name_peak(10.20, lines) is None  # 0.35 keV from Pb L-alpha: not that line, just 10.20 keV
    assert name_peak(9.16, lines) is None   # a patch-edge maximum of issue 16: no line within 0.25 keV
    both = name_peak(4.49, lines)           # Ti K-alpha and Ba L-alpha are closer than the resolution
    assert both is not None and set(both.split(" / ")) == {"Ti Kα", "Ba Lα"}
    for energy in np.arange(1.0, 10.0, 0.01):  # whatever is named lies within the FWHM of each name
        for name in (name_peak(energy, lines) or "").split(" / "):
            if name:
                assert abs(lines[name] - energy) <= detector_fwhm_kev(lines[name])


def test_salient_peaks_are_one_per_resolution_element():
    energy = np.arange(2048) * 0.02
    curve = np.exp(-0.5 * ((energy - 3.69) / 0.05) ** 2) + 0.6 * np.exp(-0.5 * ((energy - 9.16) / 0.05) ** 2)
    curve += 0.01 * np.sin(energy * 40)  # ripple: must not become peaks of its own among the top
    peaks = salient_peaks(energy[:500], curve[:500], top=2)
    assert [(round(e, 2), n) for e, n in peaks] == [(3.68, "Ca Kα"), (9.16, None)] or \
        [(round(e, 1), n) for e, n in peaks] == [(3.7, "Ca Kα"), (9.2, None)]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    pytest.importorskip("torch")
    import xrfhub
    from xrfhub.ml import training

    root = tmp_path_factory.mktemp("saliency")
    corpus = write_corpus(root / "corpus")
    store = root / "hub"
    xrfhub.ingest([corpus.scans, corpus.files["pangaea"]], store, progress=False)
    out = root / "ft"
    training.train("max", store, stage="finetune", out=out, config="tiny", target="CaCO3", epochs=2,
                   sets={"batch": "8"}, progress=False)
    return store, out


def grid_share(values: np.ndarray, patch: int = 16) -> float:
    """Share of the curve's variance that repeats with the patch grid (0: none, 1: all)."""
    folded = values[: len(values) // patch * patch].reshape(-1, patch)
    return float(np.var(folded.mean(0)) / np.var(values))


@pytest.mark.slow  # a store, a fine-tune and 16 gradient passes: ~1 min on a loaded 2-core machine
def test_shifted_grids_remove_the_patch_pattern(run):
    from xrfhub_max.plugin import plugin

    store, out = run
    plain, n = plugin.saliency(store, out, shifts=1)
    averaged, _ = plugin.saliency(store, out)
    assert n > 0 and plain.shape == averaged.shape == (2048,)
    window = slice(50, 500)  # 1-10 keV: where 10 kV spectra have counts
    assert grid_share(plain[window]) > 0.2  # a plain gradient follows the patch grid ...
    assert grid_share(averaged[window]) < 0.05  # ... the average over every grid offset does not


@pytest.mark.slow
def test_the_command_names_each_peak_once_and_draws_the_picture(run, tmp_path):
    from click.testing import CliRunner

    from xrfhub_cli.main import cli

    store, out = run
    png = tmp_path / "sal.png"
    result = CliRunner().invoke(cli, ["saliency", "--store", str(store), "--run", str(out), "--out", str(png)])
    assert result.exit_code == 0, result.output
    line = next(l for l in result.output.splitlines() if l.startswith("salient peaks:"))
    assert not re.search(r"(\d+\.\d\d) keV \(\1 keV\)", line)  # issue 17: "0.20 keV (0.20 keV)"
    lines = reference_lines(10.0)
    for item in line.split(": ", 1)[1].split(", "):
        named = re.fullmatch(r"(.+) \((\d+\.\d\d) keV\)", item)
        if named:  # every name is a line within the resolution of the printed energy
            for name in named.group(1).split(" / "):
                assert abs(lines[name] - float(named.group(2))) <= detector_fwhm_kev(lines[name]) + 0.01
        else:
            assert re.fullmatch(r"\d+\.\d\d keV", item)
    assert png.stat().st_size > 10_000 and png.with_suffix(".csv").is_file()
