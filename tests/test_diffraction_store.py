"""The ``diffraction`` kind in the store: ingest, NeXus archive, Zarr hub, labels, queries."""
from __future__ import annotations

import numpy as np
import pytest

import xrfhub
from xrfhub.errors import InputError
from xrfhub.records import CU_KALPHA1_A
from xrfhub.kinds import read_core
from xrfhub.store.nxvalidate import validate_core_file

from conftest import run_cli


def _pattern(tt, centre, seed):
    rng = np.random.default_rng(seed)
    return 50 + 1000 * np.exp(-0.5 * ((tt - centre) / 0.05) ** 2) + rng.normal(0, 1, tt.size)


def _write_ramp(folder, n=6, tt=None, switch=3, header=False):
    folder.mkdir(parents=True, exist_ok=True)
    tt = np.linspace(10, 20, 201) if tt is None else tt
    for i in range(n):
        y = _pattern(tt, 12 + (0.5 if i >= switch else 0.0), i)
        head = "# 2theta intensity\n" if header else ""
        (folder / f"ramp_{i:04d}.xy").write_text(head + "".join(f"{a:.4f} {b:.3f}\n" for a, b in zip(tt, y)))
    labels = folder.parent / f"{folder.name}_labels.csv"
    labels.write_text("pattern_id,class\n" + "".join(f"ramp_{i:04d},{'high' if i >= switch else 'low'}\n"
                                                     for i in range(n)))
    return tt, labels


def test_patterns_and_labels_round_trip_through_nexus_and_zarr(tmp_path):
    tt, labels = _write_ramp(tmp_path / "ramp")
    hub = tmp_path / "hub"
    xrfhub.ingest([tmp_path / "ramp", labels], hub, wavelength=0.4843, scan_coord="pressure_step")
    ds = xrfhub.open(hub, "diffraction")
    assert ds.sizes == {"pattern": 6, "two_theta": 201}
    np.testing.assert_allclose(ds["two_theta"].values, tt)
    assert list(ds["label"].values) == ["low"] * 3 + ["high"] * 3
    assert set(ds["core"].values) == {"ramp"}
    assert np.allclose(ds["wavelength"].values, 0.4843) and set(ds["wavelength_source"].values) == {"option"}
    np.testing.assert_array_equal(ds["pressure_step"].values, np.arange(6))
    peak = ds["two_theta"].values[ds["intensity"].values.argmax(axis=1)]
    assert np.allclose(peak[:3], 12, atol=0.06) and np.allclose(peak[3:], 12.5, atol=0.06)
    # the archive holds the same, valid, and reads back exactly
    gen, _ = xrfhub.api.resolve(hub)
    (nxs,) = list((tmp_path / "hub").glob("generations/*/nexus/ramp.nxs"))
    assert validate_core_file(nxs) == []
    rec = read_core(nxs)
    (block,) = rec.diffraction.values()
    np.testing.assert_array_equal(block.intensity, ds["intensity"].values)
    assert list(rec.pattern_labels["label"]) == list(ds["label"].values)


def test_two_grids_stay_apart_and_a_rebuild_is_identical(tmp_path):
    _write_ramp(tmp_path / "a", n=3)
    _write_ramp(tmp_path / "b", n=2, tt=np.linspace(9, 21, 301))
    hub = tmp_path / "hub"
    xrfhub.ingest([tmp_path / "a", tmp_path / "b"], hub)
    grids = xrfhub.store.hub.groups(xrfhub.api.resolve(hub)[0] + "/hub.zarr")["diffraction"]
    assert len(grids) == 2
    with pytest.raises(xrfhub.errors.StoreError, match="grid"):
        xrfhub.open(hub, "diffraction", grid="nope")
    sizes = sorted(xrfhub.open(hub, "diffraction", grid=g.split("/", 1)[1]).sizes["pattern"] for g in grids)
    assert sizes == [2, 3]
    one = xrfhub.open(hub, "diffraction", grid=grids[0].split("/", 1)[1])
    assert set(one["wavelength_source"].values) == {"assumed"} and np.allclose(one["wavelength"], CU_KALPHA1_A)
    before = one["intensity"].values
    run_cli("rebuild", hub)
    after = xrfhub.open(hub, "diffraction", grid=grids[0].split("/", 1)[1])["intensity"].values
    np.testing.assert_array_equal(before, after)


def test_labels_for_unknown_patterns_are_refused_and_nothing_is_written(tmp_path):
    _write_ramp(tmp_path / "ramp", n=3)
    hub = tmp_path / "hub"
    xrfhub.ingest([tmp_path / "ramp"], hub)
    gen = xrfhub.api.resolve(hub)[0]
    bad = tmp_path / "bad_labels.csv"
    bad.write_text("pattern_id,class\nramp_0000,low\nramp_0099,high\n")
    with pytest.raises(InputError, match="ramp_0099") as err:
        xrfhub.ingest([bad], hub)
    assert err.value.line == 3
    assert xrfhub.api.resolve(hub)[0] == gen  # the store did not move


def test_phase_sets_become_a_presence_matrix(tmp_path):
    _write_ramp(tmp_path / "mix", n=4)
    labels = tmp_path / "phases.csv"
    labels.write_text("pattern_id,phases\nramp_0000,calcite\nramp_0001,calcite;rhenium\n"
                      "ramp_0002,rhenium\nramp_0003,calcite+La-bastnaesite\n")
    hub = tmp_path / "hub"
    xrfhub.ingest([tmp_path / "mix", labels], hub)
    ds = xrfhub.open(hub, "diffraction")
    assert list(ds["phase"].values) == ["La-bastnaesite", "calcite", "rhenium"]
    np.testing.assert_array_equal(ds["phase_present"].values.astype(int),
                                  [[0, 1, 0], [0, 1, 1], [0, 0, 1], [1, 1, 0]])


def test_common_grid_only_on_demand_and_recorded(tmp_path):
    _write_ramp(tmp_path / "a", n=2)  # 10-20 deg, 0.05 step
    _write_ramp(tmp_path / "b", n=2, tt=np.linspace(9, 21, 481))  # 9-21 deg, 0.025 step
    hub = tmp_path / "hub"
    xrfhub.ingest([tmp_path / "a", tmp_path / "b"], hub)
    common = xrfhub.open(hub, "diffraction", grid="common")
    assert common.sizes["pattern"] == 4
    tt = common["two_theta"].values
    assert tt[0] == pytest.approx(10) and tt[-1] == pytest.approx(20) and np.diff(tt).min() == pytest.approx(0.025)
    assert common.attrs["resampling"].startswith("linear") and len(common.attrs["resampled_from"]) == 2
    peak = tt[np.nanargmax(common["intensity"].values, axis=1)]
    assert np.allclose(peak, 12, atol=0.06)
    assert not np.isnan(common["intensity"].values).any()
