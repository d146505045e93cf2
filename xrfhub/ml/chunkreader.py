"""Whole Zarr chunks of the hub decoded straight into numpy buffers, for the batch streams.

:class:`ChunkReader` reads the chunks of a row-chunked 2-D array (the hub's counts) and decodes
them on the calling thread with the GIL released, so a small thread pool decodes several at
once and applies the transform while the data is in cache. It handles only the codec chain
the hub writes (``bytes`` then Blosc, or nothing) and verifies it from the array's metadata;
any other array is read through zarr. :class:`BufferPool` recycles the float32 buffers the
reads fill; :class:`Inline` is the one-thread executor.
"""
from __future__ import annotations

import os
import sys
import threading
from collections import deque
from concurrent.futures import Future

import numpy as np

from ..errors import StoreError

#: Rows transformed at a time inside a decoded chunk: 1 MB of float32 at 2048 channels, which
#: stays in L2 while the transform's passes run over it (measured on one thread: 64 rows 5.9,
#: 128 rows 6.0, 256 rows 6.4 us a spectrum decoded and transformed; a 16k-row buffer at once
#: transformed at half the speed of 256-row batches).
_PIECE_ROWS = 128


class Inline:
    """An executor that runs each task at once in the calling thread (``threads=1``)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - re-raised by result(), as a pool's would be
            future.set_exception(exc)
        return future


class BufferPool:
    """Float32 stream buffers, handed back once cut and reused.

    A fresh 100+ MB buffer costs its page faults (the kernel zeroes every page) on each fill:
    1.4 us per 8 KB spectrum measured here against 0.7 us to fill a reused one, a fifth of the
    whole decode-and-transform work. The prefetch depth bounds how many exist (depth + 2: one
    being cut, ``depth`` waiting, one being filled).
    """

    def __init__(self, shape: tuple):
        self.shape = shape
        self._free: deque = deque()  # append/pop are atomic: producer and consumer share it

    def take(self, n: int) -> np.ndarray:
        try:
            buf = self._free.pop()
        except IndexError:
            buf = np.empty(self.shape, dtype=np.float32)
        return buf[:n]

    def give(self, x: np.ndarray) -> None:
        self._free.append(x if x.base is None else x.base)


class ChunkReader:
    """Whole Zarr chunks of a 2-D row-chunked array, decoded straight into numpy buffers.

    On this machine zarr's own reads ran at ~160k spectra/s (its async dispatch, a decode
    buffer per chunk and a copy into the result) where Blosc alone decodes ~380k/s on one
    thread. For the layout the hub writes (Zarr v3, chunks spanning every channel, a ``bytes``
    codec then Blosc or nothing) the chunk bytes are read here and Blosc decodes them on the
    calling thread with the GIL released, so several chunks decode at once. Any other codec
    chain is decoded by zarr, a chunk at a time (correct, slower).
    """

    def __init__(self, z):
        self.z = z
        self.rows_per_chunk = int(z.chunks[0])
        self.n_rows, self.width = int(z.shape[0]), int(z.shape[1])
        self.dtype = np.dtype(z.dtype)
        self._blosc = self._raw = None
        self._local = threading.local()  # a decode buffer per thread, reused chunk after chunk
        meta = z.metadata
        codecs = list(getattr(meta, "codecs", ()))
        if getattr(meta, "zarr_format", None) != 3 or not codecs:
            return
        from zarr.codecs import BloscCodec, BytesCodec

        endian = getattr(codecs[0], "endian", None)
        plain = isinstance(codecs[0], BytesCodec) and (
            self.dtype.itemsize == 1 or endian is None or endian.value == sys.byteorder)
        rest = codecs[1:]
        if not plain or len(rest) > 1 or (rest and not isinstance(rest[0], BloscCodec)):
            return
        self._raw = self._chunk_bytes_reader(z)
        self._blosc = bool(rest) and self._raw is not None

    @classmethod
    def of(cls, array) -> "ChunkReader | None":
        """A reader for a 2-D Zarr array chunked by whole rows, else None."""
        import zarr

        z = array if isinstance(array, zarr.Array) else None
        if z is None or len(z.shape) != 2 or z.chunks[1] != z.shape[1]:
            return None
        return cls(z)

    @staticmethod
    def _chunk_bytes_reader(z):
        """A function chunk index -> its stored bytes (None when absent: all fill value), or None
        where the store is not a local folder (zarr then reads and decodes, a chunk at a time)."""
        from zarr.storage import LocalStore

        if not isinstance(z.store, LocalStore):
            return None
        key = lambda i: z.metadata.encode_chunk_key((i, 0))  # noqa: E731
        # plain file reads of the chunk files (public: the store's root, the array's path, the
        # metadata's chunk key encoding): ~4x cheaper than a trip through zarr's event loop
        root = os.path.join(str(z.store.root), z.path)

        def read_file(i):
            try:
                with open(os.path.join(root, key(i)), "rb") as f:
                    return f.read()
            except FileNotFoundError:
                return None
        return read_file

    def chunk(self, i: int) -> np.ndarray:
        """The rows of chunk ``i``, in a per-thread buffer valid until this thread's next call."""
        lo, hi = i * self.rows_per_chunk, min((i + 1) * self.rows_per_chunk, self.n_rows)
        if self._raw is None:
            return np.asarray(self.z[lo:hi])
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = self._local.buf = np.empty((self.rows_per_chunk, self.width), dtype=self.dtype)
        raw = self._raw(i)
        try:
            if raw is None:
                buf.fill(self.z.fill_value)
            elif self._blosc:
                from numcodecs import blosc

                blosc.decompress(raw, buf)  # edge chunks are stored whole too
            else:
                buf.reshape(-1).view(np.uint8)[:] = np.frombuffer(raw, dtype=np.uint8)
        except (RuntimeError, ValueError) as exc:
            raise StoreError(f"chunk {self.z.metadata.encode_chunk_key((i, 0))} of {self.z.store_path} "
                             f"cannot be decoded ({exc}); `xrfhub validate` names the cores it holds") from exc
        return buf[:hi - lo]

    def read(self, rows: np.ndarray, out: np.ndarray, transform, executor) -> np.ndarray:
        """Fill ``out`` with ``rows`` (runs of sorted rows, one chunk's run after another),
        transformed when ``transform`` is given (else converted to ``out``'s dtype); one task
        per chunk on ``executor``. Returns ``out``."""
        size = self.rows_per_chunk
        bounds = np.flatnonzero(np.diff(rows // size)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(rows)]])
        tasks = [executor.submit(self._fill, rows[a:b], out[a:b], transform) for a, b in zip(starts, ends)]
        for task in tasks:
            task.result()
        return out

    def _fill(self, rows: np.ndarray, out: np.ndarray, transform) -> None:
        chunk = int(rows[0]) // self.rows_per_chunk
        block = self.chunk(chunk)
        local = rows - chunk * self.rows_per_chunk
        whole = len(rows) == len(block)  # sorted, unique rows: all of the chunk
        for a in range(0, len(rows), _PIECE_ROWS):
            src = block[a:a + _PIECE_ROWS] if whole else block[local[a:a + _PIECE_ROWS]]
            if transform is None:
                np.copyto(out[a:a + _PIECE_ROWS], src, casting="unsafe")
            else:
                transform(src, out=out[a:a + _PIECE_ROWS])
