"""The stream's own Zarr chunk reads: same rows, values and order as dask's, on arrays on disk.

Arrays are real Zarr v3 arrays written by zarr (the hub's codec and other layouts), several
chunks long with a partial last chunk, so every path of the reader is taken.
"""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import dask.array as da
import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from xrfhub.errors import StoreError
from xrfhub.ml.chunkreader import ChunkReader
from xrfhub.ml.loaders import BatchStream, read_rows
from xrfhub.ml.transforms import SpectrumTransform

N, WIDTH, CHUNK = 5000, 64, 512  # ten chunks, the last one partial


def _write(path, compressors, *, drop_chunk: int | None = None):
    data = np.random.default_rng(3).poisson(40, (N, WIDTH)).astype(np.uint32)
    z = zarr.create_array(str(path), shape=data.shape, chunks=(CHUNK, WIDTH), dtype="uint32",
                          compressors=compressors, fill_value=0)
    z[:] = data
    if drop_chunk is not None:  # an absent chunk reads as the fill value
        z[drop_chunk * CHUNK:(drop_chunk + 1) * CHUNK] = 0
        data[drop_chunk * CHUNK:(drop_chunk + 1) * CHUNK] = 0
    return zarr.open_array(str(path), mode="r"), data


@pytest.fixture
def hub_like(tmp_path):
    """The hub's layout: Blosc lz4 behind a byte shuffle."""
    return _write(tmp_path / "counts.zarr", [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")])


def _epoch(stream):
    xs, ys, rs = zip(*stream)
    return np.concatenate(xs), (None if ys[0] is None else np.concatenate(ys)), np.concatenate(rs)


@pytest.mark.parametrize("compressors", [[BloscCodec(cname="lz4", shuffle="shuffle")], None, [ZstdCodec()]],
                         ids=["blosc", "uncompressed", "zstd-through-zarr"])
def test_own_reads_match_dask_reads_batch_for_batch(tmp_path, compressors):
    z, data = _write(tmp_path / "a.zarr", compressors, drop_chunk=2)
    assert ChunkReader.of(z) is not None
    rows = np.flatnonzero(np.arange(N) % 7 != 3)  # partial chunks everywhere
    targets = np.arange(N) * 0.5
    transform = SpectrumTransform("instance")
    kw = dict(rows=rows, batch_size=100, mode="stream", seed=5, targets=targets, transform=transform,
              buffer_chunks=3)
    ours = BatchStream(z, **kw)
    ours.set_epoch(2)
    theirs = BatchStream(da.from_zarr(z), reader="dask", **kw)
    theirs.set_epoch(2)
    x, y, r = _epoch(ours)
    x2, y2, r2 = _epoch(theirs)
    np.testing.assert_array_equal(r, r2)  # same shuffle
    np.testing.assert_array_equal(x, x2)  # same values, bit for bit
    np.testing.assert_array_equal(y, targets[r])
    assert x.dtype == np.float32 and sorted(r.tolist()) == rows.tolist()
    np.testing.assert_array_equal(x, transform(data[r]))


def test_untransformed_stream_yields_counts_as_float32(hub_like):
    z, data = hub_like
    rows = np.arange(N)
    x, _, r = _epoch(BatchStream(z, rows, batch_size=256, mode="stream", shuffle=False))
    np.testing.assert_array_equal(r, rows)  # no shuffle: store order
    np.testing.assert_array_equal(x, data.astype(np.float32))


def test_each_row_once_and_seeded_order_with_pool_or_inline(hub_like):
    z, _ = hub_like
    rows = np.flatnonzero(np.arange(N) % 3 != 0)
    orders = []
    for threads in (1, 2, 3):
        stream = BatchStream(z, rows, batch_size=64, mode="stream", seed=11, threads=threads)
        stream.set_epoch(4)
        _, _, r = _epoch(stream)
        assert sorted(r.tolist()) == rows.tolist()
        orders.append(r)
    np.testing.assert_array_equal(orders[0], orders[1])
    np.testing.assert_array_equal(orders[0], orders[2])
    stream.set_epoch(5)
    assert not np.array_equal(_epoch(stream)[2], orders[0])


def test_a_given_client_reads_through_dask(hub_like):
    z, data = hub_like
    rows = np.arange(0, N, 2)
    # dask takes any concurrent.futures executor where it takes a distributed Client
    with ThreadPoolExecutor(2) as client:
        stream = BatchStream(da.from_zarr(z), rows, batch_size=128, mode="stream", client=client, seed=1)
        assert stream._chunk_reader() is None
        x, _, r = _epoch(stream)
        memory = BatchStream(da.from_zarr(z), rows, batch_size=128, mode="memory", client=client)
        xm, _, rm = _epoch(memory)
    np.testing.assert_array_equal(x, data[r].astype(np.float32))
    np.testing.assert_array_equal(xm, data[rm].astype(np.float32))
    ours = BatchStream(z, rows, batch_size=128, mode="stream", seed=1)
    np.testing.assert_array_equal(_epoch(ours)[2], r)


def test_arrays_in_other_stores_are_read_through_the_store(hub_like):
    z, data = hub_like
    memory = zarr.create_array(zarr.storage.MemoryStore(), shape=data.shape, chunks=(CHUNK, WIDTH),
                               dtype="uint32", compressors=[BloscCodec(cname="lz4", shuffle="shuffle")])
    memory[:] = data
    rows = np.arange(1, N, 3)
    x, _, r = _epoch(BatchStream(memory, rows, batch_size=200, mode="stream", seed=2))
    assert sorted(r.tolist()) == rows.tolist()
    np.testing.assert_array_equal(x, data[r].astype(np.float32))


def test_read_rows_in_any_order(hub_like):
    z, data = hub_like
    reader = ChunkReader.of(z)
    rows = np.array([4999, 3, 700, 701, 3000, 0, 4600])
    for threads in (1, 2):
        got = read_rows(z, rows, reader=reader, threads=threads)
        assert got.dtype == np.uint32
        np.testing.assert_array_equal(got, data[rows])
    np.testing.assert_array_equal(read_rows(z, np.arange(N), reader=reader, threads=2), data)
    memory = BatchStream(z, rows, batch_size=4, mode="memory")
    x, _, r = _epoch(memory)
    np.testing.assert_array_equal(x, data[r].astype(np.float32))


def test_transform_into_out_is_the_same_transform():
    x = np.random.default_rng(0).poisson(50, (32, 16)).astype(np.uint32)
    x[3] = 9  # a flat spectrum
    before = x.copy()
    for t in (SpectrumTransform("instance"), SpectrumTransform("log"), SpectrumTransform("none"),
              SpectrumTransform("channel").fit([x])):
        out = np.full(x.shape, np.nan, dtype=np.float32)
        assert t(x, out=out) is out
        np.testing.assert_array_equal(out, t(x))
        np.testing.assert_array_equal(x, before)  # the counts are left alone


def test_a_damaged_chunk_fails_the_stream_loudly(tmp_path):
    z, _ = _write(tmp_path / "bad.zarr", [BloscCodec(cname="lz4", shuffle="shuffle")])
    (tmp_path / "bad.zarr" / "c" / "4" / "0").write_bytes(b"not a blosc frame at all, sorry" * 4)
    with pytest.raises(StoreError, match="chunk c/4/0 .* cannot be decoded"):
        list(BatchStream(z, np.arange(N), mode="stream", shuffle=False))


def test_leaving_a_stream_early_leaves_no_thread_behind(hub_like):
    z, _ = hub_like
    before = threading.active_count()
    for _ in range(3):
        for i, _batch in enumerate(BatchStream(z, np.arange(N), batch_size=32, mode="stream", buffer_chunks=1)):
            if i == 2:
                break
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before
