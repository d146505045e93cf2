"""Feeding models from the store: row selection and chunk-wise batch streams.

Random single-row reads from Zarr cost ~0.5 ms each, whole-chunk reads are 50-100x cheaper per
spectrum (DESIGN section 8). So a stream reads whole chunks, shuffles inside a buffer of chunks,
and cuts batches; when the selection fits in memory it is loaded once and shuffled exactly.
Chunks of the hub's plain layout are decoded here, straight into numpy buffers, by a small
thread pool that also applies the transform (:class:`ChunkReader`; the transforms live in
:mod:`xrfhub.ml.transforms`); other arrays, and any read on a dask.distributed client, go
through dask. Nothing here imports torch: :mod:`xrfhub.ml.torchdata` wraps these streams as
torch datasets.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import dask
import numpy as np
import xarray as xr

from .. import api
from .chunkreader import BufferPool, ChunkReader, Inline
from ..errors import ConfigError
from ..store import layout
from .transforms import SpectrumTransform


# ---------------------------------------------------------------------------- selection


#: How training and prediction treat QC-flagged spectra unless told otherwise (see ``qc_policy``).
_QC_POLICY: contextvars.ContextVar[str] = contextvars.ContextVar("xrfhub_qc_policy", default="exclude")


@contextlib.contextmanager
def qc_policy(policy: str):
    """Within the block, ``select_rows`` leaves out the QC flags of ``policy`` ("exclude": bad and
    suspect, the default; "strict": also indeterminate; "keep": none). ``xrfhub train --keep-flagged``."""
    from ..qc.store import POLICIES

    if policy not in POLICIES:
        raise ConfigError(f"unknown QC policy {policy!r}; policies: {', '.join(POLICIES)}")
    token = _QC_POLICY.set(policy)
    try:
        yield
    finally:
        _QC_POLICY.reset(token)


def select_rows(ds: xr.Dataset, *, cores=None, exclude_cores=None, tube_kv: float | None = 10.0,
                valid_only: bool = True, where: dict | None = None, qc: str | None = None) -> np.ndarray:
    """Row numbers of ``ds`` (a spectra or samples dataset) that pass every filter, sorted.

    ``cores``/``exclude_cores`` select whole cores (hold-out is by core, never by row);
    ``tube_kv`` keeps one voltage (None: any); ``where`` maps any 1-D coordinate to a value or a
    list of accepted values. With ``valid_only``, rows whose ``qc_flag`` the QC policy leaves out
    are dropped too (``qc``, default the current :func:`qc_policy`: bad and suspect).
    """
    dim = next(d for d in (layout.SPECTRUM, layout.SAMPLE, layout.PATTERN, layout.POINT) if d in ds.dims)
    keep = np.ones(ds.sizes[dim], dtype=bool)
    core = ds["core"].values.astype(str) if "core" in ds.coords else None
    if cores is not None:
        keep &= np.isin(core, list(cores))
    if exclude_cores:
        keep &= ~np.isin(core, list(exclude_cores))
    if tube_kv is not None and "tube_kv" in ds.coords:
        keep &= np.isclose(ds["tube_kv"].values.astype(float), float(tube_kv))
    if valid_only and "valid" in ds.coords:
        keep &= ds["valid"].values.astype(bool)
    if valid_only and "qc_flag" in ds.coords:
        from ..qc.store import left_out

        keep &= ~left_out(ds["qc_flag"].values, qc or _QC_POLICY.get())
    for name, accepted in (where or {}).items():
        if name not in ds.variables:
            raise ConfigError(f"cannot select on {name!r}: not a coordinate of the store "
                              f"(have: {', '.join(sorted(str(c) for c in ds.coords))})")
        values = ds[name].values
        keep &= np.isin(values, accepted if isinstance(accepted, (list, tuple, set)) else [accepted])
    return np.flatnonzero(keep)


# ---------------------------------------------------------------------------- batch streams


@dataclass
class BatchStream:
    """Batches of (transformed) rows of one array of the store, epoch after epoch.

    ``mode="memory"`` loads the selected rows once and shuffles them exactly; ``"stream"``
    reads ``buffer_chunks`` whole blocks at a time (ahead of use), visiting blocks in a random
    order and shuffling inside that buffer (a block is one dask block of :func:`counts_array`,
    several Zarr chunks); ``"auto"`` picks memory when the selection needs less than
    ``memory_limit`` bytes. ``targets`` (one value per row of the array) travel with their rows.
    Iterating yields ``(x, y, rows)``: float32 inputs, targets (or None) and row numbers.

    Reads: ``reader="auto"`` decodes the Zarr chunks itself on ``threads`` threads, which also
    apply the (row-wise) transform, when the array is the hub's Zarr array (:func:`hub_counts`)
    and no ``client`` is given; otherwise, or with ``reader="dask"``, blocks are computed
    by dask, on ``client`` (a dask.distributed Client, or any executor dask accepts) when given,
    else with ``scheduler``. The two readers yield the same batches for the same seed. Our
    reader keeps its three float32 buffers between epochs (3 x ``buffer_chunks`` blocks: 384 MB
    with the defaults at 2048 channels): fresh ones cost their page faults on every epoch.
    """

    array: object  # a dask array (rows x channels) from the hub, or anything sliceable
    rows: np.ndarray
    batch_size: int = 256
    shuffle: bool = True
    transform: SpectrumTransform | None = None
    targets: np.ndarray | None = None
    mode: str = "auto"
    buffer_chunks: int = 4
    memory_limit: int = 2 * 1024**3
    seed: int = 0
    drop_last: bool = False
    epoch: int = 0
    scheduler: str = "threads"  # dask scheduler for block reads ("synchronous" in forked workers)
    client: object | None = None  # a dask.distributed Client: block reads run on its workers
    reader: str = "auto"  # "auto": our own chunk reads where the array allows; "dask": always dask
    threads: int | None = None  # decoding threads of our reader (None: min(4, cores); 1: no pool)
    block_chunks: int = 4  # Zarr chunks per dask block when ``array`` is a Zarr array
    _cache: np.ndarray | None = field(default=None, repr=False)
    _buffers: "BufferPool | None" = field(default=None, repr=False)
    _zarr: object | None = field(default=None, repr=False)

    def __post_init__(self):
        import zarr

        if isinstance(self.array, zarr.Array):  # our chunk reader where it can, dask blocks otherwise
            import dask.array as da

            self._zarr = self.array
            self.array = da.from_zarr(self.array, chunks=(self.array.chunks[0] * self.block_chunks,
                                                          *self.array.shape[1:]))
        if self.mode not in ("auto", "memory", "stream"):
            raise ConfigError(f"loader mode {self.mode!r}: choose auto, memory or stream")
        if self.reader not in ("auto", "dask"):
            raise ConfigError(f"loader reader {self.reader!r}: choose auto or dask")
        self.rows = np.asarray(self.rows, dtype=np.int64)
        if self.mode == "auto":
            width = int(np.prod(self.array.shape[1:])) if len(self.array.shape) > 1 else 1
            need = len(self.rows) * width * 4
            self.mode = "memory" if need <= self.memory_limit else "stream"

    def __len__(self) -> int:
        n = len(self.rows)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle differently each epoch, reproducibly (as DistributedSampler does)."""
        self.epoch = epoch

    def _rng(self):
        return np.random.default_rng([self.seed, self.epoch])

    def _chunk_reader(self) -> "ChunkReader | None":
        """Our own chunk reader when no client is given and the array allows it, else None (dask)."""
        if self.client is not None or not isinstance(self.scheduler, str) or self.reader == "dask":
            return None
        return ChunkReader.of(self._zarr) if self._zarr is not None else None

    def _threads(self) -> int:
        if self.scheduler == "synchronous":  # a forked worker: one reader thread is its share
            return 1
        return self.threads or min(4, os.cpu_count() or 1)

    def _emit(self, x: np.ndarray, rows: np.ndarray, transformed: bool = False):
        y = None if self.targets is None else self.targets[rows]
        if self.transform is not None and not transformed:
            x = self.transform(x)
        return x.astype(np.float32, copy=False), y, rows

    def __iter__(self):
        if len(self.rows) == 0:
            return
        if self.mode == "memory":
            yield from self._iter_memory()
        else:
            yield from self._iter_stream()

    def _iter_memory(self):
        if self._cache is None:
            scheduler = self.client if self.client is not None else self.scheduler
            self._cache = read_rows(self.array, self.rows, scheduler,
                                    reader=self._chunk_reader(), threads=self._threads())
        order = self._rng().permutation(len(self.rows)) if self.shuffle else np.arange(len(self.rows))
        for start in range(0, len(order), self.batch_size):
            take = order[start:start + self.batch_size]
            if self.drop_last and len(take) < self.batch_size:
                return
            yield self._emit(self._cache[take], self.rows[take])

    def _chunk_plan(self) -> list[np.ndarray]:
        # shuffle whole Zarr chunks where we know them (the finest unit a read costs the same
        # for), dask blocks otherwise: the same order whichever reader then reads the rows
        size = _row_chunk(self._zarr if self._zarr is not None else self.array)
        chunk_of = self.rows // size
        bounds = np.flatnonzero(np.diff(chunk_of)) + 1
        groups = np.split(self.rows, bounds)
        if self.shuffle:
            self._rng().shuffle(groups)
        return groups

    def _iter_stream(self):
        groups = self._chunk_plan()
        buffers = [groups[i:i + self.buffer_chunks] for i in range(0, len(groups), self.buffer_chunks)]
        reader = self._chunk_reader()
        if reader is None:
            scheduler = self.client if self.client is not None else self.scheduler
            yield from self._cut(_prefetch(lambda part: _read_groups(self.array, part, scheduler), buffers))
            return
        # the readers decode and transform whole chunks into recycled float32 buffers: the
        # consumer only gathers its batches (copies), so a buffer is free again once cut.
        # One buffer read ahead measured as fast as two here, for one buffer less of memory.
        shape = (max(len(g) for g in groups) * self.buffer_chunks, *self.array.shape[1:])
        if self._buffers is None or self._buffers.shape != shape:  # kept from epoch to epoch
            self._buffers = BufferPool(shape)
        pool = self._buffers
        threads = self._threads()
        with ThreadPoolExecutor(threads) if threads > 1 else Inline() as executor:
            def read(part):
                rows = np.concatenate(part)
                out = pool.take(len(rows))
                return reader.read(rows, out, self.transform, executor), rows

            yield from self._cut(_prefetch(read, buffers, depth=1), transformed=True, recycle=pool.give)

    def _cut(self, buffers, transformed: bool = False, recycle=None):
        """Batches from a sequence of ``(x, rows)`` buffers, shuffled inside each buffer."""
        rng = self._rng()
        carry_x, carry_rows = None, None
        for x, rows in buffers:
            # gather each batch straight from the buffer (one copy per row); the few rows left
            # from the previous buffer join the first batch instead of being copied with it
            order = rng.permutation(len(rows)) if self.shuffle else np.arange(len(rows))
            start = 0
            if carry_x is not None and len(carry_rows):
                need = self.batch_size - len(carry_rows)
                take = order[:need]
                carry_x = np.concatenate([carry_x, x[take]])
                carry_rows = np.concatenate([carry_rows, rows[take]])
                start = len(take)
                if len(carry_rows) < self.batch_size:
                    if recycle is not None:
                        recycle(x)
                    continue
                yield self._emit(carry_x, carry_rows, transformed)
            full = start + (len(order) - start) // self.batch_size * self.batch_size
            for i in range(start, full, self.batch_size):
                take = order[i:i + self.batch_size]
                yield self._emit(x[take], rows[take], transformed)
            rest = order[full:]
            carry_x, carry_rows = x[rest], rows[rest]
            if recycle is not None:  # every batch and the carry are copies: the buffer is free
                recycle(x)
        if carry_x is not None and len(carry_rows) and not self.drop_last:
            yield self._emit(carry_x, carry_rows, transformed)


def _row_chunk(array) -> int:
    chunks = getattr(array, "chunks", None)
    if chunks and isinstance(chunks[0], tuple):  # dask: chunk sizes per axis
        return int(chunks[0][0])
    if chunks:
        return int(chunks[0])
    return layout.SPECTRA_CHUNK_ROWS


def _read_groups(array, groups: list[np.ndarray], scheduler="threads") -> tuple[np.ndarray, np.ndarray]:
    """Read the blocks holding ``groups`` (row sets of one block each) in parallel, keep their rows.

    ``scheduler`` is a dask scheduler name or a dask.distributed Client.
    """
    size = _row_chunk(array)
    spans = [(int(g[0] // size) * size, min(int(g[0] // size) * size + size, array.shape[0])) for g in groups]
    blocks = dask.compute(*[array[a:b] for a, b in spans], scheduler=scheduler) if hasattr(array, "dask") \
        else [np.asarray(array[a:b]) for a, b in spans]
    out = np.empty((sum(len(g) for g in groups), *array.shape[1:]), dtype=array.dtype)
    pos = 0
    for block, g, (a, b) in zip(blocks, groups, spans):
        whole = len(g) == b - a  # rows are sorted and unique: all of the chunk
        out[pos:pos + len(g)] = block if whole else np.asarray(block)[g - a]
        pos += len(g)
    return out, np.concatenate(groups)


def read_rows(array, rows: np.ndarray, scheduler="threads", *, reader: "ChunkReader | None" = None,
              threads: int = 1) -> np.ndarray:
    """Gather ``rows`` of a chunked array (in the array's dtype), reading each chunk once.

    With a ``reader`` (see :meth:`ChunkReader.of`) the chunks are decoded on ``threads``
    threads; otherwise blocks go through dask with ``scheduler`` (a name or a Client).
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return np.zeros((0, *array.shape[1:]), dtype=array.dtype)
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    out = np.empty((len(rows), *array.shape[1:]), dtype=array.dtype)
    if reader is not None:
        with ThreadPoolExecutor(threads) if threads > 1 else Inline() as executor:
            reader.read(sorted_rows, out, None, executor)
        if np.any(np.diff(order) != 1):  # rows were not in store order: put them back in theirs
            out[order] = out.copy()
        return out
    size = _row_chunk(array)
    groups = np.split(sorted_rows, np.flatnonzero(np.diff(sorted_rows // size)) + 1)
    pos = 0
    for i in range(0, len(groups), 16):
        x, _ = _read_groups(array, groups[i:i + 16], scheduler)
        out[order[pos:pos + len(x)]] = x
        pos += len(x)
    return out


def _prefetch(read, items, depth: int = 2):
    """Run ``read`` on items in a background thread, ``depth`` ahead of the consumer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(value) -> bool:
        # a consumer that stopped early reads no more: give up instead of blocking forever
        while not stop.is_set():
            try:
                q.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in items:
                if stop.is_set() or not put(read(item)):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
            put(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            got = q.get()
            if got is done:
                return
            if isinstance(got, BaseException):
                raise got
            yield got
    finally:
        stop.set()


# ---------------------------------------------------------------------------- from a store


def counts_array(store, group: str | None = None, *, chunks_per_block: int = 4):
    """The counts of a spectra group as a dask array whose blocks span several Zarr chunks.

    A block is the unit a :class:`BatchStream` shuffles (four blocks a buffer: 16k rows
    shuffled together). Read through dask (on a client), one block is one contiguous Zarr read
    that zarr decompresses concurrently: ~2.5x the throughput of one task per chunk here. The
    array's blocks are what a :class:`BatchStream` given :func:`hub_counts` uses too; given the
    Zarr array itself, a stream without a client decodes its chunks itself (:class:`ChunkReader`,
    ~2x the dask path's throughput).
    """
    import dask.array as da

    z = hub_counts(store, group)
    return da.from_zarr(z, chunks=(z.chunks[0] * chunks_per_block, z.shape[1]))


def hub_counts(store, group: str | None = None):
    """The counts of a spectra group as its Zarr array (what :class:`BatchStream` reads fastest)."""
    import zarr

    gen, _ = api.resolve(store)
    hub_path = f"{gen}/{layout.HUB}"
    if group is None:
        group = api.open(store, "spectra", index=False).attrs["group"]
    return zarr.open_array(hub_path, path=f"{group}/counts", mode="r")


def spectra_stream(store, *, cores=None, exclude_cores=None, tube_kv: float | None = 10.0, where=None,
                   transform: SpectrumTransform | None = None, **kw) -> BatchStream:
    """A stream over the store's spectra (for pre-training and prediction)."""
    ds = api.open(store, "spectra", index=False)
    rows = select_rows(ds, cores=cores, exclude_cores=exclude_cores, tube_kv=tube_kv, where=where)
    return BatchStream(hub_counts(store, ds.attrs["group"]), rows, transform=transform, **kw)


def labelled_samples(store, target: str, *, cores=None, exclude_cores=None):
    """Mean matched spectra and target values of the lab samples that have both (fine-tuning)."""
    ds = api.open(store, "samples", index=False)
    if target not in ds:
        props = [v for v in ds.data_vars if f"{v}_flag" in ds.data_vars]
        raise ConfigError(f"the store has no lab property {target!r}; it has: {', '.join(props) or 'none'}")
    rows = select_rows(ds, cores=cores, exclude_cores=exclude_cores, tube_kv=None, valid_only=False)
    y = ds[target].values.astype(np.float64)
    ok = np.isfinite(y[rows]) & (ds["match_status"].values[rows] == "matched")
    rows = rows[ok]
    return ds["mean_spectrum"].values[rows], y[rows], ds["core"].values[rows].astype(str), rows


def split_pairs(store, target: str, *, exclude_cores=(), seed: int = 0, val_fraction: float = 0.2,
                by: str = "pairs"):
    """The labelled pairs outside ``exclude_cores`` and a seeded train/validation mask.

    Returns ``(x, y, cores, is_val)``. ``by="pairs"`` draws pairs (each part gets at least one:
    every fifth pair is validation when the draw leaves either side empty). ``by="cores"`` draws
    whole training cores (``val_fraction`` of them, at least one, keeping the training range as
    the calibration draw does), so that what chooses the epoch is, like the held-out cores, a
    core the model never saw: pairs of a core the model trains on score 0.98-0.996 for every
    model (docs/results.md), which chooses nothing. With fewer than three training cores it
    falls back to pairs; ``cores[is_val]`` then shares cores with training, which callers report.
    What every plugin's ``train`` splits by.
    """
    if by not in ("pairs", "cores"):
        raise ConfigError(f"the validation split is by 'pairs' or 'cores', not {by!r}")
    x, y, cores, _ = labelled_samples(store, target, exclude_cores=exclude_cores)
    if len(y) < 2:
        raise ConfigError(f"fewer than 2 labelled {target} samples outside the held-out cores")
    pool = sorted(set(cores))
    if by == "cores" and len(pool) >= 3:
        from .intervals import choose_cores

        val = choose_cores(pool, seed=seed, fraction=val_fraction, values={c: y[cores == c] for c in pool},
                           stream=13)
        return x, y, cores, np.isin(cores, val)
    is_val = np.random.default_rng(seed).random(len(y)) < val_fraction
    if is_val.all() or not is_val.any():
        is_val = np.arange(len(y)) % 5 == 0
    return x, y, cores, is_val


def split_summary(cores, is_val) -> dict:
    """How a split came out, for a run's metrics: validation cores, and whether any also trained."""
    val, fit = set(map(str, cores[is_val])), set(map(str, cores[~is_val]))
    return {"validation_cores": sorted(val), "validation_shares_training_cores": bool(val & fit)}


def predict_spectra(store, predict, *, tube_kv: float | None = 10.0, batch_size: int = 256,
                    progress: bool = True) -> tuple[str, np.ndarray]:
    """Apply ``predict`` (raw float32 counts -> one value per row) to every valid spectrum of
    one voltage, batch by batch (never all spectra in memory); other rows get NaN.

    Returns the spectra group predicted and the values over its rows, ready for
    :class:`xrfhub.ml.registry.Predictions`. Inside :func:`xrfhub.ml.cluster.predicting_on` the same
    batches are computed on a dask.distributed cluster instead.
    """
    ds = api.open(store, "spectra", index=False)
    rows = select_rows(ds, tube_kv=tube_kv)
    if len(rows) == 0:
        raise ConfigError(f"the store has no valid {tube_kv:g} kV spectra to predict" if tube_kv is not None
                          else "the store has no valid spectra to predict")
    from . import cluster

    session = cluster.active()
    if session is not None:  # `predict --scheduler`: the same batches, computed on the cluster's workers
        return ds.attrs["group"], cluster.predict_rows(session, predict_block, store, ds.attrs["group"], rows, predict,
                                                       ds.sizes[layout.SPECTRUM], batch_size=batch_size,
                                                       progress=progress)
    stream = BatchStream(hub_counts(store, ds.attrs["group"]), rows, batch_size=batch_size, shuffle=False,
                         mode="stream")
    values = np.full(ds.sizes[layout.SPECTRUM], np.nan, dtype=np.float32)
    batches = stream
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(stream, total=len(stream), desc="predict", unit="batch")
    for x, _y, got in batches:
        values[got] = predict(x)
    return ds.attrs["group"], values


def predict_block(store, group: str, rows: np.ndarray, batch_size: int, predict) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, values)`` of ``predict`` over some rows of a spectra group, in the batches
    :func:`predict_spectra` makes of them: a cluster worker's share of a prediction."""
    stream = BatchStream(hub_counts(store, group), rows, batch_size=batch_size, shuffle=False, mode="stream",
                         threads=1)  # on a worker, the worker's threads are the parallelism
    got_rows, got_values = [rows[:0]], [np.zeros(0, np.float32)]
    for x, _y, got in stream:
        got_rows.append(got)
        got_values.append(np.asarray(predict(x), dtype=np.float32))
    return np.concatenate(got_rows), np.concatenate(got_values)
