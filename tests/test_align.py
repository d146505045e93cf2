"""Depth alignment of lab samples to spectra (xrfhub.align)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xrfhub.align import Alignment, align_samples, mean_spectra
from xrfhub.depth import composite_depth, read_affine_table
from xrfhub.errors import ConfigError, InputError, StoreError

NAN = np.nan


def spectra_table(rows):
    """rows: (core, depth_mm, tube_kv, valid)"""
    return pd.DataFrame(rows, columns=["core", "depth_mm", "tube_kv", "valid"])


def samples_table(rows):
    """rows: (core, top_mm, bottom_mm, mid_mm)"""
    return pd.DataFrame(rows, columns=["core", "top_mm", "bottom_mm", "mid_mm"])


def idx(alignment, i):
    return alignment.indices[i].tolist()


@pytest.fixture
def one_core():
    # core A: 10 kV spectra at 0..20 mm (rows 0..20), 30 kV at the same depths (rows 21..41)
    rows = [("A", float(d), 10.0, True) for d in range(21)]
    rows += [("A", float(d), 30.0, True) for d in range(21)]
    return spectra_table(rows)


# ------------------------------------------------------------------------------- window

def test_window_includes_both_edges_and_only_10kv(one_core):
    a = align_samples(one_core, samples_table([("A", NAN, NAN, 10.0)]))
    assert idx(a, 0) == list(range(5, 16))  # 5.0 and 15.0 mm are exactly 5 mm away: in
    assert a.counts.tolist() == [11]
    assert a.status.tolist() == ["matched"] and a.reason.tolist() == [""]
    assert (a.method, a.window_mm, a.tube_kv) == ("window", 5.0, 10.0)


def test_window_edges_survive_decimal_rounding():
    sp = spectra_table([("A", 7.3, 10, True), ("A", 12.3, 10, True), ("A", 17.3, 10, True),
                        ("A", 17.31, 10, True), ("A", 7.29, 10, True)])
    a = align_samples(sp, samples_table([("A", NAN, NAN, 12.3)]))
    assert idx(a, 0) == [0, 1, 2]


def test_window_excludes_invalid_spectra(one_core):
    sp = one_core.copy()
    sp.loc[[8, 12], "valid"] = False
    a = align_samples(sp, samples_table([("A", NAN, NAN, 10.0)]))
    assert idx(a, 0) == [5, 6, 7, 9, 10, 11, 13, 14, 15]


def test_window_at_other_voltage_and_width(one_core):
    a = align_samples(one_core, samples_table([("A", NAN, NAN, 10.0)]), tube_kv=30,
                      window_mm=1.0)
    assert idx(a, 0) == [21 + 9, 21 + 10, 21 + 11]
    assert a.window_mm == 1.0 and a.tube_kv == 30.0


def test_mid_depth_taken_from_interval_centre(one_core):
    a = align_samples(one_core, samples_table([("A", 8.0, 12.0, NAN)]), window_mm=1.0)
    assert idx(a, 0) == [9, 10, 11]


def test_replicates_at_same_depths_are_all_used_and_averaged():
    # two 10 kV runs sharing depths, rows interleaved on purpose; one 30 kV run
    sp = spectra_table([("A", 0.0, 10, True), ("A", 0.0, 10, True), ("A", 4.0, 10, True),
                        ("A", 4.0, 10, True), ("A", 0.0, 30, True), ("A", 9.0, 10, True)])
    counts = np.array([[1, 2], [3, 4], [5, 6], [7, 8], [1000, 1000], [99, 99]], np.uint32)
    a = align_samples(sp, samples_table([("A", NAN, NAN, 2.0)]), window_mm=2.0)
    assert idx(a, 0) == [0, 1, 2, 3]
    np.testing.assert_allclose(mean_spectra(counts, a), [[4.0, 5.0]])


def test_window_unmatched_reason(one_core):
    a = align_samples(one_core, samples_table([("A", NAN, NAN, 40.0), ("A", NAN, NAN, NAN)]))
    assert a.status.tolist() == ["unmatched", "unmatched"]
    assert a.reason[0] == "no valid 10 kV spectrum within ±5 mm of 40 mm"
    assert a.reason[1] == "sample has no depth"
    assert a.counts.tolist() == [0, 0] and idx(a, 0) == []


# ----------------------------------------------------------------------------- interval

def test_interval_is_half_open(one_core):
    a = align_samples(one_core, samples_table([("A", 4.0, 7.0, NAN), ("A", 4.5, 7.5, 6.0)]),
                      method="interval")
    assert idx(a, 0) == [4, 5, 6]  # 7.0 is the bottom: out
    assert idx(a, 1) == [5, 6, 7]
    assert a.method == "interval"


def test_interval_without_interval_is_unmatched_with_reason(one_core):
    s = samples_table([("A", NAN, NAN, 10.0), ("A", 6.0, 6.0, NAN), ("A", 30.0, 40.0, NAN),
                       ("A", 8.0, 5.0, NAN)])
    a = align_samples(one_core, s, method="interval")
    assert a.status.tolist() == ["unmatched"] * 4
    assert a.reason.tolist() == ["sample has no interval (top/bottom)",
                                 "empty interval [6, 6) mm",
                                 "no valid 10 kV spectrum in [30, 40) mm",
                                 "empty interval [8, 5) mm"]


# ------------------------------------------------------------------------------ nearest

def test_nearest_takes_nearest_depth_with_its_replicates():
    sp = spectra_table([("A", 0.0, 10, True), ("A", 10.0, 10, True), ("A", 20.0, 10, True),
                        ("A", 10.0, 10, True), ("A", 11.0, 10, False), ("A", 10.5, 30, True)])
    s = samples_table([("A", NAN, NAN, 10.4), ("A", NAN, NAN, 15.0), ("A", NAN, NAN, 26.0),
                       ("A", NAN, NAN, 25.0)])
    a = align_samples(sp, s, method="nearest")
    assert idx(a, 0) == [1, 3]  # 10.0 mm twice; 11.0 is invalid, 10.5 is 30 kV
    assert idx(a, 1) == [1, 3]  # tie between 10 and 20 mm: the shallower
    assert idx(a, 2) == [] and a.status[2] == "unmatched"
    assert a.reason[2] == "nearest valid 10 kV spectrum is 6 mm from 26 mm (tolerance 5 mm)"
    assert idx(a, 3) == [2]  # exactly at the tolerance: in
    b = align_samples(sp, s, method="nearest", tolerance_mm=0.3)
    assert b.counts.tolist() == [0, 0, 0, 0]
    assert b.tolerance_mm == 0.3


# --------------------------------------------------------------- voltages, scans, reports

def test_no_scan_wrong_voltage_all_invalid():
    sp = spectra_table([("A", 1.0, 10, True), ("B", 1.0, 30, True), ("B", 2.0, 50, True),
                        ("C", 1.0, 10, False)])
    s = samples_table([("A", NAN, NAN, 1.0), ("B", NAN, NAN, 1.0), ("C", NAN, NAN, 1.0),
                       ("D", NAN, NAN, 1.0), ("D", NAN, NAN, 2.0), (None, NAN, NAN, 1.0)])
    a = align_samples(sp, s)
    assert a.status.tolist() == ["matched", "unmatched", "unmatched", "no-scan", "no-scan",
                                 "no-scan"]
    assert a.reason[1] == "no 10 kV spectra (core has 30, 50 kV)"
    assert a.reason[2] == "all 10 kV spectra are flagged invalid or have no depth"
    assert a.reason[3] == "core has no scanned spectra"
    assert a.reason[5] == "sample has no core id"
    summary = a.summary()
    assert (summary["n_samples"], summary["matched"], summary["unmatched"],
            summary["no-scan"]) == (6, 1, 2, 3)
    assert summary["cores_without_scan"] == ["D"]
    rep = a.report()
    assert list(rep["status"]) == list(a.status)
    assert rep["indices"][0] == (0,) and rep["n_spectra"].tolist() == [1, 0, 0, 0, 0, 0]
    assert rep["core"].tolist()[:5] == ["A", "B", "C", "D", "D"]


def test_any_single_voltage_when_tube_kv_is_none():
    sp = spectra_table([("A", 1.0, 30, True), ("A", 2.0, 30, True),
                        ("B", 1.0, 10, True), ("B", 1.0, 30, True),
                        ("C", 1.0, NAN, True), ("C", 1.0, 50, False)])  # invalid: ignored
    s = samples_table([("A", NAN, NAN, 1.5), ("B", NAN, NAN, 1.0), ("C", NAN, NAN, 1.0)])
    a = align_samples(sp, s, tube_kv=None, window_mm=1.0)
    assert idx(a, 0) == [0, 1]
    assert a.status[1] == "unmatched"
    assert a.reason[1] == ("core has valid spectra at several tube voltages (10, 30 kV); "
                           "choose one with tube_kv")
    assert idx(a, 2) == [4]  # unknown voltage is a voltage of its own
    assert a.parameters["tube_kv"] is None


def test_overlapping_intervals_same_core_only():
    s = samples_table([
        ("A", 0.0, 10.0, NAN), ("A", 5.0, 15.0, NAN),      # overlap
        ("A", 20.0, 30.0, NAN), ("A", 30.0, 40.0, NAN),    # touch: no overlap
        ("B", 0.0, 100.0, NAN), ("B", 10.0, 20.0, NAN), ("B", 30.0, 40.0, NAN),  # nested
        ("C", 0.0, 10.0, NAN), ("D", 5.0, 15.0, NAN),      # other cores
        ("A", NAN, NAN, 7.0),                              # no interval: never overlapping
    ])
    a = align_samples(spectra_table([("A", 1.0, 10, True)]), s)
    assert a.overlapping.tolist() == [True, True, False, False, True, True, True, False,
                                      False, False]
    assert a.summary()["overlapping"] == 5


def test_duplicates_same_core_same_depth():
    s = samples_table([("A", NAN, NAN, 7.0), ("A", NAN, NAN, 7.0), ("B", NAN, NAN, 7.0),
                       ("A", 0.0, 10.0, 5.0), ("A", 0.0, 10.0, 5.0), ("A", 2.0, 8.0, 5.0),
                       ("A", NAN, NAN, NAN), ("A", NAN, NAN, NAN)])
    a = align_samples(spectra_table([("A", 7.0, 10, True)]), s)
    assert a.duplicate.tolist() == [True, True, False, True, True, False, False, False]
    assert a.summary()["duplicates"] == 4
    # both duplicates are still matched to the same spectra
    assert idx(a, 0) == idx(a, 1) == [0]


def test_matches_brute_force_on_random_cores():
    rng = np.random.default_rng(42)
    n = 600
    sp = pd.DataFrame({"core": rng.choice(["A", "B", "C"], n),
                       "depth_mm": np.round(rng.uniform(0, 200, n), 1),
                       "tube_kv": rng.choice([10.0, 30.0], n),
                       "valid": rng.random(n) > 0.1})
    m = 80
    mid = np.round(rng.uniform(-10, 210, m), 1)
    s = pd.DataFrame({"core": rng.choice(["A", "B", "C", "Z"], m), "top_mm": mid - 3,
                      "bottom_mm": mid + 3, "mid_mm": mid})
    ok = sp.valid & (sp.tube_kv == 10)
    for method in ("window", "interval", "nearest"):
        a = align_samples(sp, s, method=method, window_mm=4.0, tolerance_mm=2.0)
        for i, row in s.iterrows():
            pool = sp[ok & (sp.core == row.core)]
            if method == "window":
                hit = pool[(pool.depth_mm - row.mid_mm).abs() <= 4.0 + 1e-9]
            elif method == "interval":
                hit = pool[(pool.depth_mm >= row.top_mm) & (pool.depth_mm < row.bottom_mm)]
            else:
                gap = (pool.depth_mm - row.mid_mm).abs()
                if len(pool) and gap.min() <= 2.0 + 1e-9:
                    best = pool.depth_mm[gap == gap.min()].min()
                    hit = pool[pool.depth_mm == best]
                else:
                    hit = pool.iloc[:0]
            assert idx(a, i) == sorted(hit.index.tolist()), (method, i)
        assert (a.status == "no-scan").sum() == (s.core == "Z").sum()


def test_parameters_are_validated():
    sp, s = spectra_table([("A", 1.0, 10, True)]), samples_table([("A", NAN, NAN, 1.0)])
    with pytest.raises(ConfigError, match="window, interval, nearest"):
        align_samples(sp, s, method="closest")
    with pytest.raises(ConfigError, match="window_mm"):
        align_samples(sp, s, window_mm=-1)
    with pytest.raises(ConfigError, match="tolerance_mm"):
        align_samples(sp, s, tolerance_mm=float("nan"))
    with pytest.raises(ConfigError, match="tube_kv"):
        align_samples(sp, s, tube_kv="ten")
    with pytest.raises(ConfigError, match="depth_mm"):
        align_samples(sp.drop(columns="depth_mm"), s)


def test_aligns_on_another_depth_scale(one_core):
    sp = one_core.assign(composite_depth_mm=one_core.depth_mm + 100.0)
    a = align_samples(sp, samples_table([("A", NAN, NAN, 110.0)]), window_mm=1.0,
                      depth="composite_depth_mm")
    assert idx(a, 0) == [9, 10, 11] and a.parameters["depth"] == "composite_depth_mm"


def test_empty_tables():
    a = align_samples(spectra_table([]), samples_table([]))
    assert len(a) == 0 and a.summary()["n_samples"] == 0
    flat, offsets = a.to_ragged()
    assert flat.size == 0 and offsets.tolist() == [0]


# -------------------------------------------------------------------------------- ragged

def test_ragged_round_trip(one_core):
    s = samples_table([("A", NAN, NAN, 10.0), ("A", NAN, NAN, 99.0), ("Q", NAN, NAN, 1.0),
                       ("A", NAN, NAN, 0.0), ("A", NAN, NAN, 0.0)])
    a = align_samples(one_core, s, window_mm=2.0)
    flat, offsets = a.to_ragged()
    assert flat.dtype == np.int64 and offsets.dtype == np.int64
    assert offsets.tolist() == [0, 5, 5, 5, 8, 11]
    assert flat.tolist() == [8, 9, 10, 11, 12, 0, 1, 2, 0, 1, 2]
    b = Alignment.from_ragged(flat, offsets, status=a.status, reason=a.reason,
                              overlapping=a.overlapping, duplicate=a.duplicate, core=a.core,
                              **{k: v for k, v in a.parameters.items()})
    assert [x.tolist() for x in b.indices] == [x.tolist() for x in a.indices]
    assert b.counts.tolist() == a.counts.tolist()
    assert b.summary() == a.summary()
    pd.testing.assert_frame_equal(b.report(), a.report())
    with pytest.raises(StoreError, match="offsets"):
        Alignment.from_ragged(flat, [0, 5, 3, 11], method="window", window_mm=5,
                              tolerance_mm=5, tube_kv=10, status=["x"] * 3, reason=[""] * 3)


# -------------------------------------------------------------------------- mean spectra

class CountingArray:
    """An in-memory array that records every non-empty read (what dask asks the source for)."""

    def __init__(self, data):
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim
        self.reads = []

    def __getitem__(self, key):
        out = self.data[key]
        if out.size:
            self.reads.append(key)
        return out


def _random_case(seed=3, n=1000, channels=64):
    rng = np.random.default_rng(seed)
    sp = pd.DataFrame({"core": np.repeat(["A", "B"], n // 2),
                       "depth_mm": np.tile(np.arange(n // 2, dtype=float), 2),
                       "tube_kv": 10.0, "valid": rng.random(n) > 0.1})
    s = pd.DataFrame({"core": ["A", "A", "B", "B", "X", "A"],
                      "mid_mm": [3.0, 3.0, 250.0, 497.0, 1.0, 900.0]})
    counts = rng.integers(0, 5000, size=(n, channels)).astype(np.uint32)
    return sp, s, counts


def _direct_mean(counts, a):
    out = np.full((len(a), counts.shape[1]), np.nan, np.float32)
    for i, ix in enumerate(a.indices):
        if ix.size:
            out[i] = counts[ix].astype(np.float64).mean(axis=0)
    return out


def test_mean_spectra_numpy_equals_direct_computation():
    sp, s, counts = _random_case()
    a = align_samples(sp, s)
    got = mean_spectra(counts, a, chunk_rows=64)
    assert got.dtype == np.float32 and got.shape == (6, 64)
    np.testing.assert_allclose(got, _direct_mean(counts, a), rtol=1e-6)
    assert np.isnan(got[4]).all() and np.isnan(got[5]).all()  # no scan; out of range
    assert not np.isnan(got[:4]).any()
    np.testing.assert_array_equal(got[0], got[1])


def test_mean_spectra_dask_reads_each_needed_chunk_once():
    da = pytest.importorskip("dask.array")
    sp, s, counts = _random_case()
    a = align_samples(sp, s)
    source = CountingArray(counts)
    lazy = da.from_array(source, chunks=(100, 64), meta=np.empty((0, 0), np.uint32))
    got = mean_spectra(lazy, a)
    np.testing.assert_allclose(got, _direct_mean(counts, a), rtol=1e-6)
    needed = sorted({int(i) // 100 for i in np.concatenate(a.indices)})
    read = [(k[0].start // 100) for k in source.reads]
    assert sorted(read) == needed  # each needed chunk exactly once, none other
    assert all(k[0].stop - k[0].start == 100 for k in source.reads)


def test_mean_spectra_from_zarr_and_xarray(tmp_path):
    zarr = pytest.importorskip("zarr")
    xr = pytest.importorskip("xarray")
    da = pytest.importorskip("dask.array")
    sp, s, counts = _random_case(seed=5)
    z = zarr.create_array(str(tmp_path / "c.zarr"), shape=counts.shape, chunks=(128, 64),
                          dtype="uint32")
    z[:] = counts
    a = align_samples(sp, s, method="nearest")
    expected = _direct_mean(counts, a)
    np.testing.assert_allclose(mean_spectra(z, a), expected, rtol=1e-6)
    arr = xr.DataArray(da.from_zarr(z), dims=("spectrum", "channel"))
    np.testing.assert_allclose(mean_spectra(arr, a), expected, rtol=1e-6)


def test_mean_spectra_rejects_mismatched_counts():
    sp, s, counts = _random_case()
    a = align_samples(sp, s)
    with pytest.raises(ConfigError, match="spectra"):
        mean_spectra(counts[:10], a)


# ------------------------------------------------------------------------ composite depth

def test_composite_depth_affine_per_core():
    table = pd.DataFrame({"core": ["A", "B"], "offset_mm": [100.0, -5.0], "scale": [1.0, 1.1]})
    core = np.array(["A", "B", "C", "A"], dtype=object)
    got = composite_depth(core, np.array([0.0, 10.0, 3.0, 2.5]), table)
    np.testing.assert_allclose(got, [100.0, 6.0, NAN, 102.5])
    assert np.isnan(composite_depth(core, np.zeros(4), None)).all()
    no_scale = composite_depth(core, np.ones(4), table.drop(columns="scale"))
    np.testing.assert_allclose(no_scale, [101.0, -4.0, NAN, 101.0])
    with pytest.raises(ConfigError, match="more than once"):
        composite_depth(core, np.ones(4), pd.concat([table, table]))


def test_read_affine_table(tmp_path):
    p = tmp_path / "affine.csv"
    p.write_text("# composite splice\ncore,offset_mm,scale,note\nA,100,,top\nB,-5.5,1.1,x\n")
    t = read_affine_table(p)
    assert t["core"].tolist() == ["A", "B"]
    np.testing.assert_allclose(t["offset_mm"], [100.0, -5.5])
    np.testing.assert_allclose(t["scale"], [1.0, 1.1])
    q = tmp_path / "affine_cm.csv"
    q.write_text("core;offset_cm\r\nPS75-056-1;12,5\r\n", newline="")
    np.testing.assert_allclose(read_affine_table(q)["offset_mm"], [125.0])


@pytest.mark.parametrize("text, line, field", [
    ("core,offset_mm\nA,1\nB,abc\n", 3, "offset_mm"),
    ("core,offset_mm\nA,1\nA,2\n", 3, "core"),
    ("core,offset_mm,scale\nA,1,0\n", 2, "scale"),
    ("core,offset_mm\n,1\n", 2, "core"),
    ("core,depth\nA,1\n", 1, "offset_mm"),
    ("name,offset_mm\nA,1\n", 1, "core"),
    ("core,offset_mm\nA\n", 2, None),
])
def test_read_affine_table_names_line_and_field(tmp_path, text, line, field):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(InputError) as err:
        read_affine_table(p)
    assert err.value.path == str(p)
    assert (err.value.line, err.value.field) == (line, field)


def test_read_affine_table_missing_or_empty(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_affine_table(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("\n# only a comment\n")
    with pytest.raises(InputError, match="empty"):
        read_affine_table(tmp_path / "empty.csv")
    (tmp_path / "head.csv").write_text("core,offset_mm\n")
    with pytest.raises(InputError, match="no rows"):
        read_affine_table(tmp_path / "head.csv")
