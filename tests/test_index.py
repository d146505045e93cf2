"""CoreDepthIndex: label selection by core and depth on the hub's row dimension."""
from __future__ import annotations

import pickle
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

from xrfhub.errors import ConfigError, StoreError
from xrfhub.index import (CoreDepthIndex, NotInIndexError, drop_core_depth_index,
                          with_core_depth_index)

A, B, C = "PS75-056-1", "GeoB1234-5", "SO264-09-2"

# Hand-made table: core A scanned at 10 and 30 kV (shared depths), B unsorted with a NaN depth,
# A again later in the store (non-contiguous), C a single point.
ROWS = [  # (core, depth_mm, tube_kv, run)
    (A, 1000.0, 10, 1),  # 0
    (A, 1005.0, 10, 1),  # 1
    (A, 1010.0, 10, 1),  # 2
    (A, 1015.0, 10, 1),  # 3
    (A, 1005.0, 30, 2),  # 4
    (A, 1015.0, 30, 2),  # 5
    (B, 100.0, 10, 1),   # 6
    (B, 200.0, 10, 1),   # 7
    (B, 150.0, 10, 1),   # 8
    (A, 1020.0, 10, 3),  # 9
    (C, 500.0, 10, 1),   # 10
    (B, np.nan, 10, 1),  # 11
]
N_CHANNEL = 8


def make_dataset(core_dtype=str, chunks=5) -> xr.Dataset:
    """Rows above with dask counts[spectrum, channel]; counts[i, :] == i * 100 + channel."""
    core, depth, kv, run = zip(*ROWS)
    counts = np.arange(len(ROWS))[:, None] * 100 + np.arange(N_CHANNEL)[None, :]
    return xr.Dataset(
        {"counts": (("spectrum", "channel"), da.from_array(counts, chunks=(chunks, N_CHANNEL)))},
        coords={
            "core": ("spectrum", np.array(core, dtype=core_dtype)),
            "depth_mm": ("spectrum", np.array(depth), {"units": "mm"}),
            "tube_kv": ("spectrum", np.array(kv)),
            "run": ("spectrum", np.array(run)),
            "channel": np.arange(N_CHANNEL),
        },
    )


@pytest.fixture(params=[str, object], ids=["unicode", "object"])
def ds(request) -> xr.Dataset:
    return with_core_depth_index(make_dataset(request.param))


def rows_of(result: xr.Dataset) -> list[int]:
    """Original row numbers of a selection, read back from the counts (loads them)."""
    return [int(v) for v in result.counts.values[:, 0] // 100]


def assert_rows(result: xr.Dataset, expected: list[int]) -> None:
    assert rows_of(result) == expected
    assert result.sizes["spectrum"] == len(expected)
    # every row coordinate was subset together with the data
    for name in ("core", "depth_mm", "tube_kv", "run"):
        assert len(result[name]) == len(expected)
    assert list(result.core.values) == [ROWS[i][0] for i in expected]
    np.testing.assert_array_equal(result.depth_mm.values, [ROWS[i][1] for i in expected])
    assert list(result.tube_kv.values) == [ROWS[i][2] for i in expected]
    assert list(result.run.values) == [ROWS[i][3] for i in expected]


# -- the selection forms ----------------------------------------------------------------------

def test_index_is_installed_on_both_coordinates(ds):
    assert isinstance(ds.xindexes["core"], CoreDepthIndex)
    assert ds.xindexes["core"] is ds.xindexes["depth_mm"]
    assert "channel" in ds.xindexes  # the other dimension keeps its own index


def test_core_and_depth_range_is_inclusive(ds):
    assert_rows(ds.sel(core=A, depth_mm=slice(1005, 1015)), [1, 2, 3, 4, 5])


def test_core_alone_returns_all_its_rows_in_store_order(ds):
    assert_rows(ds.sel(core=A), [0, 1, 2, 3, 4, 5, 9])
    assert_rows(ds.sel(core=B), [6, 7, 8, 11])  # the NaN-depth row is reachable by core


def test_several_cores_come_back_in_store_order(ds):
    assert_rows(ds.sel(core=[C, B]), [6, 7, 8, 10, 11])
    assert_rows(ds.sel(core=np.array([A, C])), [0, 1, 2, 3, 4, 5, 9, 10])
    assert_rows(ds.sel(core=[]), [])
    assert_rows(ds.sel(core=[], depth_mm=1000.0), [])


def test_depth_range_across_all_cores(ds):
    assert_rows(ds.sel(depth_mm=slice(100, 500)), [6, 7, 8, 10])
    assert_rows(ds.sel(depth_mm=slice(None, 150)), [6, 8])
    assert_rows(ds.sel(core=A, depth_mm=slice(1015, None)), [3, 5, 9])


def test_reversed_depth_range_is_empty(ds):
    result = ds.sel(core=A, depth_mm=slice(1015, 1005))
    assert_rows(result, [])
    assert result.counts.shape == (0, N_CHANNEL)


def test_exact_depth_keeps_every_row_at_it(ds):
    result = ds.sel(core=A, depth_mm=1015.0)
    assert_rows(result, [3, 5])  # the 10 kV and the 30 kV run
    assert "spectrum" in result.dims


def test_list_of_depths(ds):
    assert_rows(ds.sel(core=A, depth_mm=[1020, 1000, 1000]), [0, 9])


def test_nearest_depth_within_core(ds):
    assert_rows(ds.sel(core=A, depth_mm=1013.0, method="nearest"), [3, 5])
    # a tie between 1010 and 1015 goes to the shallower depth
    assert_rows(ds.sel(core=A, depth_mm=1012.5, method="nearest"), [2])
    assert_rows(ds.sel(core=A, depth_mm=5000.0, method="nearest"), [9])
    assert_rows(ds.sel(core=B, depth_mm=170.0, method="nearest"), [8])  # NaN row ignored


def test_pad_and_backfill(ds):
    assert_rows(ds.sel(core=A, depth_mm=1003.0, method="pad"), [0])
    assert_rows(ds.sel(core=A, depth_mm=1003.0, method="backfill"), [1, 4])
    assert_rows(ds.sel(core=A, depth_mm=1005.0, method="ffill"), [1, 4])


def test_nearest_without_core_resolves_per_core(ds):
    # A -> 1000 (row 0), B -> 150 (row 8), C -> 500 (row 10)
    assert_rows(ds.sel(depth_mm=160.0, method="nearest"), [0, 8, 10])
    assert_rows(ds.sel(depth_mm=160.0, method="nearest", tolerance=20), [8])


def test_dataarray_selection_keeps_coordinates(ds):
    counts = ds.counts.sel(core=B, depth_mm=slice(100, 160))
    assert counts.dims == ("spectrum", "channel")
    np.testing.assert_array_equal(counts.values[:, 0], [600, 800])
    assert list(counts.run.values) == [1, 1]
    assert isinstance(counts.xindexes["core"], CoreDepthIndex)


def test_other_dimension_is_left_alone(ds):
    result = ds.sel(core=C, channel=slice(2, 4))
    assert result.counts.shape == (1, 3)
    np.testing.assert_array_equal(result.counts.values, [[1002, 1003, 1004]])


def test_attributes_follow_selection(ds):
    assert ds.sel(core=A).depth_mm.attrs == {"units": "mm"}


# -- positional selection and chaining --------------------------------------------------------

def test_isel_keeps_the_index(ds):
    head = ds.isel(spectrum=slice(0, 6))
    assert isinstance(head.xindexes["core"], CoreDepthIndex)
    assert_rows(head.sel(core=A, depth_mm=1005.0), [1, 4])
    with pytest.raises(KeyError, match=B):
        head.sel(core=B)


def test_isel_with_reordering_array_then_sel_keeps_subset_order(ds):
    picked = ds.isel(spectrum=[9, 0, 6])
    assert_rows(picked.sel(core=A), [9, 0])


def test_isel_boolean_mask(ds):
    masked = ds.isel(spectrum=ds.tube_kv.values == 30)
    assert_rows(masked.sel(core=A), [4, 5])


def test_isel_scalar_drops_the_index(ds):
    one = ds.isel(spectrum=3)
    assert "core" not in one.xindexes
    assert one.core.item() == A and one.depth_mm.item() == 1015.0


def test_chained_selection(ds):
    assert_rows(ds.sel(core=A).sel(depth_mm=slice(1005, 1010)), [1, 2, 4])
    assert_rows(ds.sel(depth_mm=slice(100, 1000)).sel(core=A), [0])


def test_concat_rename_roll_pickle(ds):
    joined = xr.concat([ds.sel(core=C), ds.sel(core=A, depth_mm=1015.0)], dim="spectrum")
    assert isinstance(joined.xindexes["core"], CoreDepthIndex)
    assert rows_of(joined.sel(depth_mm=slice(500, 1015))) == [10, 3, 5]

    renamed = ds.rename(core="site", spectrum="row")
    assert renamed.sel(site=C).sizes["row"] == 1

    rolled = ds.roll(spectrum=1, roll_coords=True)
    assert rows_of(rolled.sel(core=B)) == [11, 6, 7, 8]  # row 11 wrapped to the front

    restored = pickle.loads(pickle.dumps(ds))
    assert_rows(restored.sel(core=A, depth_mm=1015.0), [3, 5])


def test_equal_selections_align_and_different_ones_say_why(ds):
    doubled = ds.sel(core=A) + ds.sel(core=A)
    np.testing.assert_array_equal(doubled.counts.values, 2 * ds.sel(core=A).counts.values)
    with pytest.raises(NotImplementedError, match="drop_core_depth_index"):
        _ = ds.sel(core=A) + ds.sel(core=B)


# -- laziness ---------------------------------------------------------------------------------

def test_selection_does_not_compute_dask_counts(ds):
    loads = []

    def record(block):
        loads.append(block.shape)
        return block

    counted = ds.counts.data.map_blocks(record, meta=ds.counts.data._meta)
    lazy = ds.assign(counts=ds.counts.copy(data=counted))
    with dask.config.set(scheduler="synchronous"):
        result = lazy.sel(core=A, depth_mm=slice(1005, 1015)).sel(core=A)
        assert loads == []
        assert isinstance(result.counts.data, da.Array)
        assert result.counts.chunks is not None
        np.testing.assert_array_equal(result.counts.values[:, 0], [100, 200, 300, 400, 500])
    assert loads  # the data were read only when asked for


# -- errors -----------------------------------------------------------------------------------

def test_unknown_core_names_it_and_lists_known_ones(ds):
    with pytest.raises(KeyError) as info:
        ds.sel(core="PS75-056-2")
    message = str(info.value)
    assert "'PS75-056-2'" in message and A in message and B in message
    assert "Did you mean" in message
    assert isinstance(info.value, NotInIndexError) and isinstance(info.value, StoreError)


def test_unknown_core_in_list(ds):
    with pytest.raises(KeyError, match="'nope'"):
        ds.sel(core=[A, "nope"])


def test_missing_exact_depth_suggests_nearest(ds):
    with pytest.raises(KeyError, match=f"1013 not found in core '{A}'; try method='nearest'"):
        ds.sel(core=A, depth_mm=1013.0)
    with pytest.raises(KeyError, match="tolerance"):
        ds.sel(core=A, depth_mm=1013.0, method="nearest", tolerance=1.0)


@pytest.mark.parametrize("labels, options, match", [
    ({"core": A, "depth_mm": slice(1000, 1010)}, {"method": "nearest"}, "slice"),
    ({"core": A, "depth_mm": 1000.0}, {"method": "linear"}, "linear"),
    ({"core": slice(A, B)}, {}, "not a slice"),
    ({"depth_mm": "deep"}, {}, "number"),
    ({"depth_mm": slice("a", "b")}, {}, "numbers"),
    ({"depth_mm": slice(0, 10, 2)}, {}, "step"),
])
def test_malformed_labels_raise_config_error(ds, labels, options, match):
    with pytest.raises(ConfigError, match=match):
        ds.sel(labels, **options)


def test_with_core_depth_index_validates_its_input():
    plain = make_dataset()
    with pytest.raises(ConfigError, match="no variable"):
        with_core_depth_index(plain, depth="depth_cm")
    with pytest.raises(ConfigError, match="not over dim='sample'"):
        with_core_depth_index(plain, dim="sample")
    # a depth that is a data variable gets promoted to a coordinate
    promoted = with_core_depth_index(plain.reset_coords("depth_mm"), dim="spectrum")
    assert_rows(promoted.sel(core=C), [10])


def test_set_xindex_directly_guesses_roles():
    direct = make_dataset().set_xindex(["depth_mm", "core"], CoreDepthIndex)
    assert_rows(direct.sel(core=B, depth_mm=200), [7])


def test_float32_depths_match_typed_labels():
    plain = make_dataset()
    plain = plain.assign_coords(depth_mm=plain.depth_mm.astype(np.float32) + np.float32(0.1))
    indexed = with_core_depth_index(plain)
    assert rows_of(indexed.sel(core=A, depth_mm=1015.1)) == [3, 5]
    assert rows_of(indexed.sel(core=A, depth_mm=slice(1010.1, 1015.1))) == [2, 3, 5]


# -- writing and pandas -----------------------------------------------------------------------

def test_to_netcdf_after_sel_and_reindex_on_open(ds, tmp_path):
    path = tmp_path / "a.nc"
    ds.sel(core=A, depth_mm=slice(1005, 1015)).to_netcdf(path, engine="h5netcdf")
    with xr.open_dataset(path, engine="h5netcdf", chunks={}) as back:
        reopened = with_core_depth_index(back)
        np.testing.assert_array_equal(reopened.sel(depth_mm=1005.0).counts.values[:, 0],
                                      [100, 400])


def test_zarr_roundtrip_reindexes_lazily(tmp_path):
    path = tmp_path / "hub.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's notes on fixed-width strings and consolidation
        make_dataset().to_zarr(path, mode="w")
        opened = with_core_depth_index(xr.open_zarr(path))
        result = opened.sel(core=B, depth_mm=slice(100, 160))
        assert isinstance(result.counts.data, da.Array)
        np.testing.assert_array_equal(result.counts.values[:, 0], [600, 800])


def test_to_dataframe_after_dropping_the_index(ds):
    selected = ds.sel(core=A, depth_mm=1015.0)
    # xarray leaves indexed coordinates out of to_dataframe's columns: drop the index first
    frame = drop_core_depth_index(selected)[["counts"]].to_dataframe()
    assert frame.shape == (2 * N_CHANNEL, 5)  # counts, core, depth_mm, tube_kv, run
    assert set(frame["core"]) == {A}
    assert sorted(set(frame["tube_kv"])) == [10, 30]
    assert drop_core_depth_index(selected).xindexes.keys() == {"channel"}
    assert drop_core_depth_index(drop_core_depth_index(selected)).sizes == selected.sizes


# -- scale ------------------------------------------------------------------------------------

def test_million_rows_match_brute_force():
    rng = np.random.default_rng(20260101)
    n = 1_000_000
    names = np.array([f"CORE-{i:03d}" for i in range(100)])
    # cores concatenated in runs, each core split into two runs, plus a few scattered rows
    run_cores = np.concatenate([names, names[::-1]])
    core = np.repeat(run_cores, n // len(run_cores))
    scatter = rng.choice(n, 1000, replace=False)
    core[scatter] = rng.choice(names, 1000)
    depth = np.round(rng.uniform(0, 20_000, n), 0)  # 1 mm steps: many shared depths
    big = with_core_depth_index(xr.Dataset(
        {"row": ("spectrum", np.arange(n))},
        coords={"core": ("spectrum", core), "depth_mm": ("spectrum", depth)}))

    def check(expected_mask, **labels):
        got = big.sel(**labels)
        np.testing.assert_array_equal(got.row.values, np.flatnonzero(expected_mask))
        assert len(got.core) == len(got.row)

    x, y = names[7], names[42]
    check((core == x) & (depth >= 100) & (depth <= 5000), core=x, depth_mm=slice(100, 5000))
    check(core == x, core=x)
    check((core == x) | (core == y), core=[y, x])
    check((depth >= 1000) & (depth <= 1003), depth_mm=slice(1000, 1003))
    shared = depth[np.flatnonzero(core == y)[10]]
    check((core == y) & (depth == shared), core=y, depth_mm=shared)
    check(depth == shared, depth_mm=shared)

    in_core = depth[core == x]
    target = 12_345.4
    nearest = in_core[np.argmin(np.abs(in_core - target))]
    check((core == x) & (depth == nearest), core=x, depth_mm=target, method="nearest")
