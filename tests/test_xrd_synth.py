"""Simulated diffraction patterns: Bragg positions, the ramp's physics, noise, ALS, CIF mixtures."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymatgen")
from scipy.signal import find_peaks  # noqa: E402

from xrfhub.errors import InputError  # noqa: E402
from xrfhub.synth import xrd  # noqa: E402
from xrfhub.synth import xrd_structures as xs  # noqa: E402

CIF_DIR = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "xrd" / "references"
needs_cifs = pytest.mark.skipif(not CIF_DIR.is_dir(), reason="shared CIF fixtures not present")


def bragg(d, wavelength):
    return math.degrees(2 * math.asin(wavelength / (2 * d)))


@pytest.fixture(scope="module")
def ramp():
    return xrd.pressure_ramp(n_patterns=20, n_points=1500, transition=10, seed=3)


@pytest.fixture(scope="module")
def hydro_raw():
    return xrd.hydrothermal(n_per_combo=2, seed=5)


def test_import_is_lazy():
    code = "import sys, xrfhub.synth.xrd; assert 'pymatgen' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rock_salt_200_where_bragg_puts_it(ramp):
    step = ramp.two_theta[1] - ramp.two_theta[0]
    signal = ramp.intensity[0] - ramp.background[0]
    expected = bragg(ramp.scan["a_cubic_A"][0] / 2, ramp.wavelength)
    near = np.abs(ramp.two_theta - expected) < 0.3
    found = ramp.two_theta[near][np.argmax(signal[near])]
    assert abs(found - expected) <= 2 * step
    assert 12.5 < expected < 13.5  # a ~4.28 A at 0.4843 A


def test_calcite_104_strongest_near_29_4_for_cu():
    refl = xs.reflections(xs.calcite(), xrd.CU_KALPHA1, 60.0, "calcite")
    tt = np.arange(10.0, 60.0, 0.01)
    prof = xs.phase_profiles(refl, tt, refl.lattice[None], np.array([[0, 0, 0.05 ** 2]]), 0.5)
    a, c = 4.988, 17.061
    d104 = 1 / math.sqrt(4 / 3 * 1 / a ** 2 + 16 / c ** 2)
    assert abs(tt[np.argmax(prof[0])] - bragg(d104, xrd.CU_KALPHA1)) <= 0.02
    assert abs(tt[np.argmax(prof[0])] - 29.40) < 0.03


def test_reflection_shares_add_up_to_pymatgen_sticks():
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
    s = xs.calcite()
    refl = xs.reflections(s, 0.6199, 30.0, "calcite")
    sticks = XRDCalculator(wavelength=0.6199).get_pattern(s, two_theta_range=(0, 30.0))
    assert refl.intensity.sum() == pytest.approx(sticks.y.sum() / 100, rel=1e-9)
    assert refl.hkl.shape[0] == sum(f["multiplicity"] for h in sticks.hkls for f in h)


def test_strained_cubic_matches_pymatgen_rb1_structure():
    """The ramp's high-pressure phase (strained cubic hkl) = pymatgen's R-3m rB1 cell."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
    lam, a, stretch = 0.4843, 4.0, 0.03
    refl = xs.reflections(xs.rock_salt(4.29), lam, 30.0)
    axis = np.ones(3) / math.sqrt(3)
    lat = xs.strained(refl.lattice[None] * (a / 4.29), stretch * (np.outer(axis, axis)[None]
                                                                - np.eye(3) / 3))
    ours = xs.two_theta_deg(refl.d_spacings(lat)[0], lam)
    ours = np.unique(np.round(ours[ours < 25.5], 4))
    theirs = XRDCalculator(wavelength=lam).get_pattern(xs.rb1(a, stretch),
                                                       two_theta_range=(0, 25.5))
    np.testing.assert_allclose(ours, np.round(np.sort(theirs.x), 4), atol=2e-4)


def _peak_count(two_theta, signal, centre, half_width=0.5):
    near = np.abs(two_theta - centre) < half_width
    smooth = np.convolve(signal[near], np.ones(3) / 3, mode="same")
    peaks, _ = find_peaks(smooth, prominence=0.25 * smooth.max())
    return len(peaks)


def test_ramp_compresses_and_splits_after_transition(ramp):
    tt = ramp.two_theta
    a = ramp.scan["a_cubic_A"]
    assert np.all(np.diff(a) < 0) and np.all(np.diff(ramp.scan["pressure_gpa"]) > 0)
    positions = []
    for i in range(len(ramp)):
        signal = ramp.intensity[i] - ramp.background[i]
        win = (tt > 12.5) & (tt < 15.0)   # the 200 peak, which rB1 does not split
        positions.append(tt[win][np.argmax(signal[win])])
    assert positions[-1] - positions[0] > 1.0          # ~8 % compression of d at 100 GPa
    assert np.all(np.diff(positions) >= -2 * (tt[1] - tt[0]))
    assert ramp.labels[:10] == ["low"] * 10 and ramp.labels[10:] == ["high"] * 10
    for i, n_expected in ((0, 1), (9, 1), (19, 2)):
        signal = ramp.intensity[i] - ramp.background[i]
        centre = bragg(a[i] / math.sqrt(3), ramp.wavelength)   # cubic 111
        assert _peak_count(tt, signal, centre) == n_expected, i


def test_seeded_runs_repeat_and_seeds_differ(ramp):
    again = xrd.pressure_ramp(n_patterns=20, n_points=1500, transition=10, seed=3)
    np.testing.assert_array_equal(again.intensity, ramp.intensity)
    other = xrd.pressure_ramp(n_patterns=20, n_points=1500, transition=10, seed=4)
    assert not np.array_equal(other.intensity, ramp.intensity)
    h1 = xrd.hydrothermal(n_per_combo=1, seed=1, phases=("rhenium", "calcite"))
    h2 = xrd.hydrothermal(n_per_combo=1, seed=1, phases=("rhenium", "calcite"))
    h3 = xrd.hydrothermal(n_per_combo=1, seed=2, phases=("rhenium", "calcite"))
    np.testing.assert_array_equal(h1.intensity, h2.intensity)
    assert not np.array_equal(h1.intensity, h3.intensity)


def test_counting_noise_is_poisson():
    rng = np.random.default_rng(0)
    clean = np.full((50, 4000), 400.0)
    noisy = xrd.counting_noise(clean, rng)
    assert noisy.dtype == np.float32
    assert noisy.mean() == pytest.approx(400.0, rel=0.005)
    assert noisy.var() / noisy.mean() == pytest.approx(1.0, abs=0.03)
    with_read = xrd.counting_noise(clean, rng, read_noise=10.0)
    assert with_read.var() == pytest.approx(400.0 + 100.0, rel=0.03)


def test_ramp_noise_is_counting_noise(ramp):
    tt = ramp.two_theta
    flat = (tt > 15.2) & (tt < 17.0)   # between 200 and 220 for the first patterns
    resid = (ramp.intensity[:5] - ramp.background[:5])[:, flat]
    expected_var = ramp.background[:5][:, flat].mean() + 3.0 ** 2
    assert resid.var() == pytest.approx(expected_var, rel=0.15)


def test_als_removes_smooth_background():
    x = np.linspace(0, 1, 3000)
    background = 800 + 400 * np.exp(-x / 0.3) + 150 * np.sin(2 * np.pi * x * 0.8)
    peaks = sum(h * np.exp(-0.5 * ((x - c) / 0.0015) ** 2)
                for c, h in ((0.1, 900), (0.33, 400), (0.5, 1500), (0.72, 300), (0.9, 700)))
    est = xrd.als_baseline(background + peaks)
    assert np.abs(est - background).max() < 0.02 * 1500
    assert np.sqrt(np.mean((est - background) ** 2)) < 5.0
    rows = np.stack([background + peaks, background])
    np.testing.assert_allclose(xrd.als_baseline(rows)[0], est)
    with pytest.raises(ValueError):
        xrd.als_baseline(np.array([1.0, np.nan, 2.0, 3.0]))


def test_mask_ranges_fill_and_bridge():
    tt = np.arange(10.0, 11.0, 0.1)
    y = np.arange(10.0) ** 2
    filled, mask = xrd.mask_ranges(tt, y, [(10.25, 10.45)], fill=0.0)
    assert mask.sum() == 2 and np.all(filled[mask] == 0) and np.all(filled[~mask] == y[~mask])
    bridged, _ = xrd.mask_ranges(tt, y, [(10.25, 10.45)], fill=None)
    np.testing.assert_allclose(bridged[[3, 4]], [4 + (25 - 4) / 3, 4 + 2 * (25 - 4) / 3])


def test_march_dollase_is_normalised():
    rng = np.random.default_rng(1)
    normals = xs.random_directions(rng, 20000)
    axis = np.array([[0.0, 0.0, 1.0]])
    for r in (0.5, 1.0, 1.8):
        w = xs.march_dollase(normals, axis, np.array([r]))
        assert w.mean() == pytest.approx(1.0, rel=0.02)
        assert w[0, np.argmax(np.abs(normals[:, 2]))] == pytest.approx(r ** -3, rel=0.01)


def test_hydrothermal_combinations_and_preprocessing(hydro_raw):
    h = hydro_raw
    assert len(h) == 7 * 2 and h.phases.sum(axis=0).tolist() == [8, 8, 8]
    assert set(h.labels) == {"La-bastnaesite", "calcite", "rhenium", "La-bastnaesite;calcite",
                             "La-bastnaesite;rhenium", "calcite;rhenium",
                             "La-bastnaesite;calcite;rhenium"}
    pre = xrd.hydrothermal(n_per_combo=2, seed=5, preprocess=True)
    _, mask = xrd.mask_ranges(h.two_theta, h.intensity[0], h.meta["mask_ranges"])
    assert mask.any() and np.all(pre.intensity[:, mask] == 0)
    hump = (h.two_theta > 10) & (h.two_theta < 13) & ~mask   # the water peak
    noise = np.sqrt(h.background[:, hump].mean(axis=1))
    assert np.all(np.median(h.intensity[:, hump], axis=1) > 100)
    assert np.all(np.abs(np.median(pre.intensity[:, hump], axis=1)) < 3 * noise)


def test_hydrothermal_rhenium_101_visible_after_preprocessing():
    h = xrd.hydrothermal(n_per_combo=6, seed=11, phases=("rhenium",), preprocess=True,
                         few_crystallites_prob=0.0, signal_counts=(800.0, 1200.0))
    a, c = 2.761, 4.456
    d101 = 1 / math.sqrt(4 / 3 / a ** 2 + 1 / c ** 2)
    centre = bragg(d101, h.wavelength)
    near = np.abs(h.two_theta - centre) < 0.15    # allows the simulated strain
    assert np.all(h.intensity[:, near].max(axis=1) > 0.3 * h.meta["truth"]["signal_counts"])


@needs_cifs
def test_cif_mixtures_show_their_phases_strongest_peaks(tmp_path):
    names = ["MnO_225", "TiO2_136", "LiF_225", "Mn2O3_206"]
    paths = [CIF_DIR / f"{n}.cif" for n in names]
    sim = xrd.from_cifs(paths, 12, two_theta=(10, 100, 0.01), max_phases=2, seed=7,
                        peak_counts=(20000, 40000), background_counts=(200, 500))
    assert sim.intensity.shape == (12, 9001) and sim.phase_names == tuple(names)
    assert set(sim.phases.sum(axis=1)) <= {1, 2} and 2 in set(sim.phases.sum(axis=1))
    strongest = {}
    for name, path in zip(names, paths):
        refl = xs.reflections(xs.load_cif(path), xrd.CU_KALPHA1, 100.0)
        d = refl.d_spacings()
        tt = xs.two_theta_deg(d, xrd.CU_KALPHA1)
        keys = np.round(tt, 3)
        totals = {k: refl.intensity[keys == k].sum() for k in np.unique(keys)}
        strongest[name] = max(totals, key=totals.get)
    signal = sim.intensity - sim.background
    for i, row in enumerate(sim.phases):
        for k in np.flatnonzero(row):
            near = np.abs(sim.two_theta - strongest[names[k]]) < 0.3
            sigma = np.sqrt(sim.background[i, near].mean())
            assert signal[i, near].max() > 10 * sigma, (i, names[k])
    files = xrd.write_xy(sim, tmp_path, third_column="sigma")
    back = np.loadtxt(files[3], delimiter="\t")
    assert back.shape == (9001, 3)
    np.testing.assert_allclose(back[:, 1], sim.intensity[3], atol=1e-3)
    lines = (tmp_path / "labels.csv").read_text().splitlines()
    assert lines[0] == "pattern_id,label" and lines[4] == f"mix_00003,{sim.labels[3]}"


def test_write_xy_header_and_background(tmp_path, ramp):
    files = xrd.write_xy(ramp, tmp_path, header=True, third_column="background")
    assert len(files) == 20
    text = files[0].read_text()
    assert text.startswith("# simulated by xrfhub (pressure_ramp), wavelength 0.4843 A")
    back = np.loadtxt(files[0], delimiter="\t", comments="#")
    np.testing.assert_allclose(back[:, 2], ramp.background[0], atol=1e-3)
    with pytest.raises(ValueError):
        xrd.write_xy(ramp, tmp_path, third_column="errors")


def test_bad_cif_and_duplicate_names_raise_input_errors(tmp_path):
    bad = tmp_path / "Broken_1.cif"
    bad.write_text("data_broken\n_cell_length_a 4.0\n")
    with pytest.raises(InputError, match="Broken_1.cif"):
        xrd.from_cifs([bad], 2, max_phases=1)
    with pytest.raises(InputError, match="no such CIF"):
        xrd.from_cifs([tmp_path / "missing.cif"], 2, max_phases=1)
    other = tmp_path / "sub"
    other.mkdir()
    (other / "Broken_1.cif").write_text("x")
    with pytest.raises(InputError, match="share the phase name"):
        xrd.from_cifs([bad, other / "Broken_1.cif"], 2)


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="transition"):
        xrd.pressure_ramp(n_patterns=10, transition=10)
    with pytest.raises(ValueError, match="phases"):
        xrd.hydrothermal(phases=("quartz",))


def test_fourier_rendering_matches_direct_pseudo_voigt():
    tt = np.arange(20.0, 40.0, 0.01)
    centres = np.array([[25.003, 31.4567]])
    areas = np.array([[2.0, 1.0]])
    w, eta = 0.12, 0.4
    got = xrd.render_peaks(tt, centres, areas, (0.0, 0.0, w * w), eta)[0]
    x = (tt[None, :] - centres[0][:, None]) / w
    pv = ((1 - eta) * 2 * math.sqrt(math.log(2) / math.pi) * np.exp(-4 * math.log(2) * x * x)
          + eta * (2 / math.pi) / (1 + 4 * x * x)) / w
    want = (areas[0][:, None] * pv).sum(axis=0)
    assert np.abs(got - want).max() < 0.01 * want.max()
    assert got.sum() * 0.01 == pytest.approx(want.sum() * 0.01, rel=1e-3)
    widths = xrd.caglioti_fwhm(np.array([20.0, 80.0]), u=0.02, w=0.002)
    assert widths[1] > widths[0] == pytest.approx(math.sqrt(0.02 * math.tan(math.radians(10)) ** 2
                                                            + 0.002))
