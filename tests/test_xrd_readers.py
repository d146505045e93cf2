"""Diffraction readers: text patterns, NeXus patterns, pattern labels, and the 2-theta/q axis.

Every example file is written here (bytes on disk stated in the test), plus the seven measured
lab patterns of ../shared/fixtures/xrd when that folder exists.
"""
from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from xrfhub import readers, xrdaxis
from xrfhub.errors import InputError, UnknownFormatError
from xrfhub.readers import lab_csv, xrd_labels, xrd_nexus, xrd_text
from xrfhub.records import CU_KALPHA1_A, DiffractionPatterns

XRD_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "xrd"

# first three intensities of each measured pattern, and what its third column is
REAL = {
    "LiMnO2": ((1943, 1889, 1867), None),
    "Mn2O3+LiF": ((1845, 1869, 1909), "background"),
    "Mn2O3": ((2157, 2128, 2111), None),
    "MnO": ((2001, 2008, 2022), None),
    "MnO2": ((2155, 2106, 2086), "background"),
    "TiO2+MnO": ((1838, 1805, 1774), None),
    "TiO2": ((1696, 1700, 1688), None),
}


def _write(path: Path, text: str, eol: str = "\n") -> Path:
    path.write_bytes(text.replace("\n", eol).encode())
    return path


def _rows(n=20, start=10.0, step=0.5, sep="\t", third=None, fmt="{:.2f}") -> str:
    out = []
    for i in range(n):
        intensity = 100 + 10 * i
        cells = [fmt.format(start + step * i), str(intensity)]
        if third == "sigma":
            cells.append(f"{math.sqrt(intensity):.3f}")
        elif third == "background":
            cells.append(str(95 + 9 * i))
        elif third == "small":
            cells.append("0.5")
        out.append(sep.join(cells))
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the axis


def test_bragg_conversions_agree_with_a_known_reflection():
    # Si (111), d = 3.1356 A, reflects at 28.44 deg with Cu K-alpha1
    two_theta = 2 * math.degrees(math.asin(CU_KALPHA1_A / (2 * 3.1356)))
    assert two_theta == pytest.approx(28.443, abs=1e-3)
    assert xrdaxis.d_spacing(two_theta, CU_KALPHA1_A) == pytest.approx(3.1356, rel=1e-9)
    q = xrdaxis.two_theta_to_q(two_theta, CU_KALPHA1_A)
    assert q == pytest.approx(2 * math.pi / 3.1356, rel=1e-9)
    assert xrdaxis.q_to_two_theta(q, CU_KALPHA1_A) == pytest.approx(two_theta, rel=1e-12)
    grid = np.linspace(5, 150, 50)
    back = xrdaxis.q_to_two_theta(xrdaxis.two_theta_to_q(grid, 0.4843), 0.4843)
    np.testing.assert_allclose(back, grid, rtol=1e-12)
    unreachable = xrdaxis.q_to_two_theta(np.array([1.0, 4 * math.pi / 0.4843 * 1.01]), 0.4843)
    assert np.isfinite(unreachable[0]) and np.isnan(unreachable[1])
    assert math.isinf(xrdaxis.d_spacing(0.0, 1.0))
    with pytest.raises(ValueError):
        xrdaxis.two_theta_to_q(10.0, 0.0)


def test_resample_is_linear_inside_and_nan_outside():
    x = np.array([10.0, 11.0, 13.0, 14.0])
    y = np.vstack([2 * x + 1, -x])
    grid = np.array([9.0, 10.0, 10.5, 12.0, 13.9, 14.0, 14.5])
    out = xrdaxis.resample(x, y, grid)
    assert out.shape == (2, 7)
    np.testing.assert_allclose(out[:, 1:6], np.vstack([2 * grid[1:6] + 1, -grid[1:6]]), rtol=1e-12)
    assert np.isnan(out[:, [0, 6]]).all()
    one = xrdaxis.resample(x, y[0], grid)
    assert one.shape == (7,) and one[3] == pytest.approx(25.0)
    with pytest.raises(ValueError):
        xrdaxis.resample(x[::-1], y, grid)


# --------------------------------------------------------------------------- text patterns


def test_two_columns_without_header_crlf(tmp_path):
    path = _write(tmp_path / "MnO.xy", _rows(), eol="\r\n")
    p = xrd_text.read(path)
    assert isinstance(p, DiffractionPatterns)
    assert p.pattern_ids == ["MnO"] and p.intensity.shape == (1, 20)
    assert p.two_theta[0] == 10.0 and p.two_theta[-1] == 19.5
    assert p.intensity[0, :3].tolist() == [100, 110, 120]
    assert p.extra is None and p.extra_kind == ""
    assert (p.wavelength, p.wavelength_source, p.axis) == (CU_KALPHA1_A, "assumed", "2theta")
    assert p.lines == [1] and p.source == "MnO.xy"


@pytest.mark.parametrize("header, sep, kind", [
    ("2theta intensity esd\n", " ", "uncertainty"),
    ("# 2Theta (deg)\tI\tsigma\n", "\t", "uncertainty"),
    ("tth,counts,background\n", ",", "background"),
    ("2theta;I;bkg\n", ";", "background"),
])
def test_header_names_the_third_column(tmp_path, header, sep, kind):
    third = "sigma" if kind == "uncertainty" else "background"
    path = _write(tmp_path / "p.dat", "# a comment\n; another\n" + header + _rows(sep=sep, third=third))
    p = xrd_text.read(path)
    assert p.extra_kind == kind and p.metadata["extra_kind_source"] == "header"
    assert p.extra.shape == (1, 20)
    assert p.extra[0, 0] == pytest.approx(10.0 if kind == "uncertainty" else 95.0)
    assert p.lines == [4]


@pytest.mark.parametrize("third, kind", [("sigma", "uncertainty"), ("small", "uncertainty"),
                                         ("background", "background")])
def test_third_column_without_header_is_guessed_from_values(tmp_path, third, kind):
    p = xrd_text.read(_write(tmp_path / "p.xye", _rows(third=third)))
    assert p.extra_kind == kind and p.metadata["extra_kind_source"] == "guessed from the values"
    forced = xrd_text.read(tmp_path / "p.xye", third_column="background")
    assert forced.extra_kind == "background" and forced.metadata["extra_kind_source"] == "option"


def test_decimal_commas_and_trailing_separators(tmp_path):
    text = "".join(f"{10 + i},25\t{100 + i},5\t\n" for i in range(12))
    p = xrd_text.read(_write(tmp_path / "eu.xy", text))
    assert p.two_theta[0] == 10.25 and p.intensity[0, 0] == 100.5


def test_decreasing_axis_is_reversed_with_its_intensities(tmp_path):
    lines = [f"{30 - 0.5 * i:.1f} {i}" for i in range(15)]
    p = xrd_text.read(_write(tmp_path / "down.xy", "\n".join(lines) + "\n"))
    assert np.all(np.diff(p.two_theta) > 0)
    assert p.two_theta[0] == 23.0 and p.intensity[0, 0] == 14 and p.intensity[0, -1] == 0
    assert p.metadata["axis_reversed"] == "true"


def test_q_axis_is_converted_with_the_wavelength(tmp_path):
    q = np.round(np.linspace(1.0, 5.0, 21), 3)
    body = "".join(f"{v:.3f} {100 + i}\n" for i, v in enumerate(q))
    p = xrd_text.read(_write(tmp_path / "q.dat", "q I\n" + body), wavelength=0.4843)
    assert (p.axis, p.wavelength, p.wavelength_source) == ("q", 0.4843, "option")
    np.testing.assert_allclose(p.two_theta, 2 * np.degrees(np.arcsin(q * 0.4843 / (4 * np.pi))), rtol=1e-12)
    # the wavelength may come from the file; q in 1/nm is divided by 10
    nm = _write(tmp_path / "qnm.dat", "# lambda = 0.04843 nm\nQ (1/nm) I\n" +
                "".join(f"{10 * v:.2f} {i}\n" for i, v in enumerate(q)))
    p2 = xrd_text.read(nm)
    assert p2.wavelength == pytest.approx(0.4843) and p2.wavelength_source == "file"
    np.testing.assert_allclose(p2.two_theta, p.two_theta, rtol=1e-9)
    assert p2.metadata["q_unit"] == "1/nm"
    # a header-less file read as q by option
    p3 = xrd_text.read(_write(tmp_path / "bare.dat", body), axis="q", wavelength=0.4843)
    np.testing.assert_allclose(p3.two_theta, p.two_theta)


def test_the_wavelength_option_wins_over_the_file(tmp_path):
    path = _write(tmp_path / "w.xy", "# Wavelength: 0.7093 A\n" + _rows())
    assert xrd_text.read(path).wavelength == 0.7093
    p = xrd_text.read(path, wavelength=1.5406)
    assert (p.wavelength, p.wavelength_source, p.metadata["wavelength_file"]) == (1.5406, "option", "0.7093")


def test_scan_coordinate_comes_from_the_file_name(tmp_path):
    p = xrd_text.read(_write(tmp_path / "ramp_0185.xy", _rows()), scan_coord="pressure_step",
                      core="ignored", calibration=None, section_top_mm_override=None)
    assert p.scan == {"pressure_step": np.array([185.0])}
    assert xrd_text.read(_write(tmp_path / "p_12.5GPa.dat", _rows()), scan_coord="p").scan["p"][0] == 12.5
    with pytest.raises(InputError, match="has none") as err:
        xrd_text.read(_write(tmp_path / "MnO.xy", _rows()), scan_coord="pressure_step")
    assert err.value.field == "scan_coord"


@pytest.mark.parametrize("text, line, match", [
    (_rows(n=5), 1, "at least 10"),
    (_rows(n=12) + "bad\t5\n", 13, "expected a number"),
    ("10.0\t5\n" + _rows(start=10.5).replace("\t110\n", "\t1x0\n"), 3, "expected a number"),
    (_rows(n=12) + "16.0\t1\t2\n", 13, "row has 3 column"),
    (_rows(n=3) + "11.0\t1\n" + _rows(n=10, start=12.0), 4, "11 repeats line 3"),
    (_rows(n=3) + "10.5\t1\n" + _rows(n=10, start=12.0), 4, "goes back from 11 to 10.5"),
    (_rows(n=12) + "16.5\tnan\n", 13, "not finite"),
    (_rows(n=12) + "16.5\tinf\n", 13, "not finite"),
    ("10 1 2 3\n" * 12, 1, "expected 2 or 3 columns"),
    (_rows(n=12) + "190\t5\n", 13, "outside 0..180"),
    ("2theta I esd\n" + _rows(n=12, third="sigma").replace("\t11.402\n", "\t-1\n"), 5, "negative"),
])
def test_bad_text_patterns_name_the_line(tmp_path, text, line, match):
    path = _write(tmp_path / "bad.xy", text)
    with pytest.raises(InputError, match=match) as err:
        xrd_text.read(path)
    assert err.value.line == line and err.value.path == str(path)


def test_bad_q_and_wavelength_options(tmp_path):
    q = _write(tmp_path / "q.dat", "q I\n" + "".join(f"{1 + i} {i}\n" for i in range(12)))
    with pytest.raises(InputError, match="cannot be reached") as err:
        xrd_text.read(q, wavelength=1.5406)  # 4 pi / 1.5406 = 8.16: q = 9 on line 10 is beyond
    assert err.value.line == 10
    with pytest.raises(InputError, match="wavelength") as err:
        xrd_text.read(q, wavelength=-1)
    assert err.value.field == "wavelength"
    with pytest.raises(InputError, match="not a positive"):
        xrd_text.read(_write(tmp_path / "w.xy", "# wavelength = 0 A\n" + _rows()))
    with pytest.raises(InputError, match="binary"):
        xrd_text.read(tmp_path / "n.xy", raw=b"\x00\x01" * 50)


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_lab_patterns(name):
    path = XRD_FIXTURES / f"{name}.xy"
    if not path.is_file():
        pytest.skip(f"{path} not found (measured patterns live in ../shared/fixtures/xrd)")
    assert readers.detect(path) is xrd_text
    p = xrd_text.read(path, source=path.name)
    first, third = REAL[name]
    assert p.pattern_ids == [name] and p.source == path.name
    assert p.two_theta.size == 9001 and p.intensity.shape == (1, 9001)
    assert (p.two_theta[0], p.two_theta[1], p.two_theta[-1]) == (10.0, 10.01, 100.0)
    np.testing.assert_allclose(np.diff(p.two_theta), 0.01, atol=1e-9)
    assert tuple(p.intensity[0, :3]) == first
    assert p.extra_kind == (third or "")
    assert (p.wavelength, p.wavelength_source) == (CU_KALPHA1_A, "assumed")


def test_real_background_columns():
    path = XRD_FIXTURES / "MnO2.xy"
    if not path.is_file():
        pytest.skip("measured patterns not found")
    p = xrd_text.read(path)
    assert (p.extra[0, 0], p.extra[0, -1]) == (2085, 1638)


# --------------------------------------------------------------------------- NeXus


def _patterns(n: int, scan: bool, rng, *, extra_kind="uncertainty", wavelength_source="file") -> DiffractionPatterns:
    tt = np.linspace(9.56, 25.55, 50)
    return DiffractionPatterns(
        source="sim", pattern_ids=[f"ramp_{i:03d}" for i in range(n)], two_theta=tt,
        intensity=rng.random((n, tt.size)) * 1000, wavelength=0.4843, wavelength_source=wavelength_source,
        extra=rng.random((n, tt.size)) if extra_kind else None, extra_kind=extra_kind,
        scan={"pressure_step": np.arange(n, dtype=np.float64) * 2} if scan else {})


def test_nexus_round_trip_one_pattern(tmp_path):
    rng = np.random.default_rng(0)
    original = _patterns(1, False, rng, extra_kind="background", wavelength_source="assumed")
    path = xrd_nexus.write_nexus_patterns(tmp_path / "one.nxs", original)
    with h5py.File(path) as h5:
        assert h5["entry/data"].attrs["signal"] == "intensity"
        assert h5["entry/data/intensity"].ndim == 1
        assert h5["entry/instrument/monochromator"].attrs["NX_class"] == "NXmonochromator"
    assert readers.detect(path) is xrd_nexus
    back = xrd_nexus.read(path)
    assert back.pattern_ids == ["ramp_000"]
    np.testing.assert_array_equal(back.two_theta, original.two_theta)
    np.testing.assert_array_equal(back.intensity, original.intensity)
    np.testing.assert_array_equal(back.extra, original.extra)
    assert back.extra_kind == "background" and back.scan == {}
    assert (back.wavelength, back.wavelength_source) == (0.4843, "assumed")  # assumed stays assumed


def test_nexus_round_trip_scan(tmp_path):
    rng = np.random.default_rng(1)
    original = _patterns(7, True, rng)
    path = xrd_nexus.write_nexus_patterns(tmp_path / "ramp.nxs", original)
    back = xrd_nexus.read(path, source="ramp.nxs", core="x", calibration=None)
    assert back.pattern_ids == original.pattern_ids and back.source == "ramp.nxs"
    np.testing.assert_array_equal(back.intensity, original.intensity)
    np.testing.assert_array_equal(back.extra, original.extra)
    np.testing.assert_array_equal(back.scan["pressure_step"], original.scan["pressure_step"])
    assert (back.wavelength, back.wavelength_source, back.extra_kind) == (0.4843, "file", "uncertainty")
    assert xrd_nexus.read(path, wavelength=0.5).wavelength_source == "option"


def _foreign_nexus(path: Path, *, axis="polar_angle", units="degree", values=None, legacy=False,
                   wavelength=("wavelength", 0.04843, "nm")) -> Path:
    """A NeXus file as another program might write it: several entries, one 1-D pattern each."""
    values = np.linspace(40.0, 10.0, 31) if values is None else values
    with h5py.File(path, "w") as h5:
        for k in range(3):
            entry = h5.create_group(f"scan{k}")
            entry.attrs["NX_class"] = "NXentry"
            mono = entry.create_group("instrument/monochromator")
            mono.attrs["NX_class"] = "NXmonochromator"
            ds = mono.create_dataset(wavelength[0], data=wavelength[1])
            ds.attrs["units"] = wavelength[2]
            entry.create_dataset("sample/temperature", data=300.0 + 10 * k)
            data = entry.create_group("data")
            data.attrs["NX_class"] = "NXdata"
            counts = data.create_dataset("counts", data=np.arange(values.size, dtype=float) + 100 * k)
            ax = data.create_dataset(axis, data=values)
            ax.attrs["units"] = units
            if legacy:
                counts.attrs["signal"] = 1
                counts.attrs["axes"] = axis
            else:
                data.attrs["signal"] = "counts"
                data.attrs["axes"] = axis
            other = entry.create_group("xrf")  # an XRF spectrum beside it: not a pattern
            other.attrs.update({"NX_class": "NXdata", "signal": "counts", "axes": "energy"})
            other.create_dataset("counts", data=np.ones(20))
            other.create_dataset("energy", data=np.arange(20.0))
    return path


@pytest.mark.parametrize("legacy", [False, True])
def test_nexus_from_another_program(tmp_path, legacy):
    path = _foreign_nexus(tmp_path / "beamline.h5", legacy=legacy)
    p = xrd_nexus.read(path, scan_coord="temperature")
    assert p.pattern_ids == ["scan0", "scan1", "scan2"]
    assert p.two_theta[0] == 10.0 and p.two_theta[-1] == 40.0  # decreasing axis reversed
    assert p.intensity[1, 0] == 130.0 and p.intensity[1, -1] == 100.0
    assert (p.wavelength, p.wavelength_source) == (pytest.approx(0.4843), "file")
    np.testing.assert_array_equal(p.scan["temperature"], [300.0, 310.0, 320.0])
    assert readers.detect(path) is xrd_nexus


def test_nexus_q_axis_in_inverse_nm(tmp_path):
    q_nm = np.linspace(10.0, 50.0, 21)
    path = _foreign_nexus(tmp_path / "q.nxs", axis="q", units="1/nm", values=q_nm,
                          wavelength=("wavelength", 0.4843, "angstrom"))
    p = xrd_nexus.read(path)
    assert p.axis == "q"
    np.testing.assert_allclose(p.two_theta, xrdaxis.q_to_two_theta(q_nm / 10, 0.4843), rtol=1e-12)


def test_bad_nexus_files(tmp_path):
    with pytest.raises(InputError, match="not a readable HDF5"):
        xrd_nexus.read(_write(tmp_path / "text.nxs", "hello"))
    plain = tmp_path / "energy.nxs"
    with h5py.File(plain, "w") as h5:
        g = h5.create_group("entry/data")
        g.attrs.update({"NX_class": "NXdata", "signal": "counts", "axes": "energy"})
        g.create_dataset("counts", data=np.ones(20))
        g.create_dataset("energy", data=np.arange(20.0))
    with pytest.raises(InputError, match="no NXdata group"):
        xrd_nexus.read(plain)
    assert not xrd_nexus.sniff(plain.read_bytes()[:8192])
    with pytest.raises(UnknownFormatError):
        readers.detect(plain)

    rng = np.random.default_rng(2)
    nan = _patterns(3, True, rng)
    nan.intensity[1, 4] = np.nan
    path = xrd_nexus.write_nexus_patterns(tmp_path / "nan.nxs", nan)
    with pytest.raises(InputError, match=r"index \(1, 4\) is not finite") as err:
        xrd_nexus.read(path)
    assert err.value.field == "/entry/data/intensity"

    two_grids = _foreign_nexus(tmp_path / "grids.h5")
    with h5py.File(two_grids, "a") as h5:
        del h5["scan1/data/polar_angle"]
        h5["scan1/data"].create_dataset("polar_angle", data=np.linspace(41.0, 11.0, 31))
    with pytest.raises(InputError, match="grid differs") as err:
        xrd_nexus.read(two_grids)
    assert err.value.field == "/scan1/data"
    one = xrd_nexus.read(two_grids, nxdata="scan1/data")
    assert one.pattern_ids == ["grids"] and one.two_theta[0] == 11.0

    bad_wl = _foreign_nexus(tmp_path / "wl.h5", wavelength=("wavelength", 1.0, "furlong"))
    with pytest.raises(InputError, match="unit 'furlong'"):
        xrd_nexus.read(bad_wl)

    text_signal = _foreign_nexus(tmp_path / "str.h5")
    with h5py.File(text_signal, "a") as h5:
        del h5["scan0/data/counts"]
        h5["scan0/data"].create_dataset("counts", data=np.array(["a"] * 31, dtype=object), dtype=h5py.string_dtype())
    with pytest.raises(InputError, match="expected numbers") as err:
        xrd_nexus.read(text_signal)
    assert err.value.field == "/scan0/data/counts"


# --------------------------------------------------------------------------- labels


def test_labels_one_class(tmp_path):
    path = _write(tmp_path / "labels.csv", "pattern_id,class,note\nMnO.xy,MnO,ok\ndata/TiO2.xy,TiO2,\n"
                                           "ramp_0185,high\nramp_0185,high\n", eol="\r\n")
    labels = xrd_labels.read(path)
    assert labels.table["pattern_id"].tolist() == ["MnO", "TiO2", "ramp_0185"]
    assert labels.table["label"].tolist() == ["MnO", "TiO2", "high"]
    assert labels.table["line"].tolist() == [2, 3, 4]
    assert labels.multi is False and labels.phases == ["MnO", "TiO2", "high"]
    assert readers.detect(path) is xrd_labels


def test_labels_sets_of_phases(tmp_path):
    path = _write(tmp_path / "phases.tsv", "file\tphases\nMn2O3+LiF.xy\tMn2O3+LiF\nTiO2+MnO.xy\tTiO2 | MnO\n"
                                           "MnO.xy\tMnO\nx.xy\t\"LiF;Mn2O3\"\n")
    labels = xrd_labels.read(path)
    assert labels.multi is True
    assert dict(zip(labels.table["pattern_id"], labels.table["label"])) == {
        "Mn2O3+LiF": "LiF;Mn2O3", "TiO2+MnO": "MnO;TiO2", "MnO": "MnO", "x": "LiF;Mn2O3"}
    assert labels.phases == ["LiF", "Mn2O3", "MnO", "TiO2"]
    assert readers.detect(path) is xrd_labels
    comma = _write(tmp_path / "p.csv", 'pattern,phases\nA,"MnO;TiO2"\nB,LiF\n')
    assert xrd_labels.read(comma).table["label"].tolist() == ["MnO;TiO2", "LiF"]


def test_labels_wide_multi_hot(tmp_path):
    path = _write(tmp_path / "wide.csv", "name,MnO,TiO2,LiF\nA,1,0,0\nB,1,1,0\nC,0,0,0\nD,true,no,yes\n")
    labels = xrd_labels.read(path)
    assert labels.multi is True
    assert labels.table["label"].tolist() == ["MnO", "MnO;TiO2", "", "LiF;MnO"]
    assert readers.detect(path) is xrd_labels


@pytest.mark.parametrize("text, line, match", [
    ("pattern_id,class\nA,x\nB,y\nA,z\n", 4, "line 2"),
    ("pattern_id,class\nA,x\n,y\n", 3, "pattern id is empty"),
    ("pattern_id,class\nA,x\nB,\n", 3, "label is empty"),
    ("id,MnO,TiO2\nA,1,0\nB,2,0\n", 3, "expected 0 or 1"),
    ("sample,value\nA,1\n", 1, "expected a header with a pattern column"),
])
def test_bad_labels_name_the_line(tmp_path, text, line, match):
    path = _write(tmp_path / "labels.csv", text)
    with pytest.raises(InputError, match=match) as err:
        xrd_labels.read(path)
    assert err.value.line == line and err.value.path == str(path)


# --------------------------------------------------------------------------- detection


def test_detection_keeps_readers_apart(tmp_path):
    pattern = _write(tmp_path / "p.csv", "2theta,intensity\n" + _rows(sep=","))
    bare = _write(tmp_path / "bare.txt", _rows(sep=","))
    lab = _write(tmp_path / "lab.csv", "core,depth_cm,CaCO3\nPS75-056-1,5,30.1\nPS75-056-1,15,31.0\n"
                                       "PS75-056-1,25,29.5\nPS75-056-1,35,28.0\nPS75-056-1,45,27.1\n")
    two_numbers = _write(tmp_path / "two.csv", "depth_cm,foo\n" + _rows(sep=","))
    lab_names = _write(tmp_path / "named.csv", "name,top_cm,bottom_cm,class\nA,0,1,x\nB,1,2,y\n")
    spec = _write(tmp_path / "scan.spec", "#F scan.spec\n#S 1 ascan\n#L 2theta I\n" + _rows(sep=" "))
    single = _write(tmp_path / "0.csv", "".join(f"{i}\n" for i in range(30)))
    for path in (pattern, bare):
        assert readers.detect(path) is xrd_text
        assert not lab_csv.sniff(path.read_bytes())
    assert readers.detect(lab) is lab_csv
    for path in (lab, two_numbers, lab_names, spec, single):
        head = path.read_bytes()
        assert not xrd_text.sniff(head, path.name) and not xrd_labels.sniff(head, path.name), path.name
        assert not xrd_nexus.sniff(head, path.name)
    for path in (two_numbers, single):
        with pytest.raises(UnknownFormatError):
            readers.detect(path)
    assert [m.FORMAT for m in readers.readers().values()][-3:] == ["xrd-nexus", "xrd-labels", "xrd-text"]
    assert readers.get("xrd-text").KIND == "diffraction" and readers.get("xrd-labels").KIND == "diffraction-labels"
