"""Predictions on a ``dask.distributed`` cluster: the workers compute, this process writes.

``xrfhub predict --scheduler ADDRESS`` (or ``training.predict(..., client=...)``) runs the
plugin's own ``predict`` here, unchanged; only the model applications that
:func:`xrfhub.ml.loaders.predict_spectra` makes are sent out. The selected rows are cut into blocks
of whole prediction batches (so every batch holds the same spectra as in one process, and a model
whose output depends on its batch, e.g. an NMF solved per batch, gives the same values); the
plugin's predictor is pickled once (cloudpickle), scattered to every worker once, and unpickled
once per worker; each task opens the store read-only at the path it was given (a local path the
workers share, or an fsspec URL) and returns its rows' values. The client gathers them and the
single existing writer (:func:`xrfhub.predictions.write_run`) commits one run, so a failure on any
worker leaves the store untouched.

Workers must be able to import xrfhub and the plugin (they unpickle its model) and to read the
store at the same path as the client.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import math
import threading
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError

#: The client that :func:`xrfhub.ml.loaders.predict_spectra` sends its batches to, when one is set.
_ACTIVE: contextvars.ContextVar["Session | None"] = contextvars.ContextVar("xrfhub_cluster", default=None)


@dataclass
class Session:
    """A client predictions are sent to, and how many model applications went through it."""

    client: object
    used: int = 0
    blocks: int = 0
    workers: set = field(default_factory=set)


def connect(where, *, timeout: float | None = None):
    """A ``distributed.Client`` for ``where`` and whether we opened it (and must close it).

    ``where`` is a scheduler address (``tcp://host:8786``), a cluster object (``LocalCluster``
    or anything with a ``scheduler_address``) or a Client, used as it is. An address that cannot
    be reached is refused with a ConfigError naming it, before anything is computed or written.
    ``timeout`` (seconds) defaults to dask's ``distributed.comm.timeouts.connect``.
    """
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise ConfigError(f"a dask scheduler was given but dask.distributed is not installed ({exc})") from None
    if isinstance(where, Client):
        return where, False
    if hasattr(where, "scheduler_address"):
        return Client(where), True
    if not isinstance(where, str) or not where.strip():
        raise ConfigError(f"--scheduler: expected a dask scheduler address such as tcp://host:8786, got {where!r}")
    kwargs = {} if timeout is None else {"timeout": timeout}
    try:
        return Client(where.strip(), **kwargs), True
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise ConfigError(f"--scheduler {where}: cannot reach a dask scheduler there ({type(exc).__name__}: "
                          f"{exc}); start one (`dask scheduler`, then `dask worker ADDRESS` on each machine) "
                          "or leave --scheduler out to run in this process") from None


@contextlib.contextmanager
def predicting_on(client):
    """Send the model applications of :func:`xrfhub.ml.loaders.predict_spectra` to ``client``
    inside this block; yields the :class:`Session` (what went through it)."""
    session = Session(client)
    token = _ACTIVE.set(session)
    try:
        yield session
    finally:
        _ACTIVE.reset(token)


def active() -> Session | None:
    """The session predictions go to now, or None (predict in this process)."""
    return _ACTIVE.get()


def block_plan(rows: np.ndarray, batch_size: int, slots: int) -> list[np.ndarray]:
    """Cut ``rows`` into blocks of whole batches: about four blocks per worker thread, so a
    slow worker does not hold the rest up, and never a batch split between two blocks."""
    rows = np.asarray(rows, dtype=np.int64)
    n_batches = math.ceil(len(rows) / batch_size)
    per_block = max(1, math.ceil(n_batches / max(1, 4 * slots)))
    step = per_block * batch_size
    return [rows[i:i + step] for i in range(0, len(rows), step)]


# --------------------------------------------------------------------------- on a worker
_MODELS: dict[str, object] = {}  # unpickled predictors in this worker, by digest of their bytes
_MODELS_LOCK = threading.Lock()
_KEEP = 2  # predictors kept per worker (a run and its interval scale predict one after the other)


def _predictor(payload: bytes, digest: str):
    with _MODELS_LOCK:  # several worker threads start at once: unpickle the model once
        fn = _MODELS.get(digest)
        if fn is None:
            import cloudpickle

            fn = cloudpickle.loads(payload)
            while len(_MODELS) >= _KEEP:
                _MODELS.pop(next(iter(_MODELS)))
            _MODELS[digest] = fn
        return fn


def _run_block(apply, store, group: str, rows: np.ndarray, batch_size: int, payload: bytes, digest: str):
    """``apply(store, group, rows, batch_size, predict)`` on one block, with the worker's copy
    of the predictor; returns the rows, their values and the worker's address."""
    got, values = apply(store, group, rows, batch_size, _predictor(payload, digest))
    return got, values, _worker_name()


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"


# --------------------------------------------------------------------------- on the client
def predict_rows(session: Session, apply, store, group: str, rows: np.ndarray, predict, n_rows: int, *,
                 batch_size: int, progress: bool) -> np.ndarray:
    """Apply ``predict`` to ``rows`` of ``group`` on the session's cluster; values over all
    ``n_rows`` rows of the group (NaN where not predicted).

    ``apply(store, group, block_rows, batch_size, predict) -> (rows, values)`` is what a worker
    runs on its block (:func:`xrfhub.ml.loaders.predict_block`: it reads and batches as in one process).
    """
    import cloudpickle
    from distributed import as_completed

    client = session.client
    try:
        payload = cloudpickle.dumps(predict)
    except Exception as exc:  # noqa: BLE001 - any pickling failure means the model cannot travel
        raise ConfigError(f"the plugin's predictor cannot be sent to the dask workers ({type(exc).__name__}: "
                          f"{exc}); predict without --scheduler") from None
    digest = hashlib.sha256(payload).hexdigest()
    shipped = client.scatter(payload, broadcast=True, hash=False)  # once per worker, not once per task
    slots = max(1, sum(client.nthreads().values()))
    blocks = block_plan(rows, batch_size, slots)
    futures = [client.submit(_run_block, apply, str(store), group, block, batch_size, shipped, digest,
                             key=f"xrfhub-predict-{digest[:12]}-{i}", pure=False)
               for i, block in enumerate(blocks)]
    values = np.full(n_rows, np.nan, dtype=np.float32)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(rows), desc="predict (cluster)", unit="spectrum")
    try:
        for future in as_completed(futures):
            got, block_values, worker = future.result()
            values[got] = block_values
            session.workers.add(worker)
            if bar is not None:
                bar.update(len(got))
    finally:
        if bar is not None:
            bar.close()
        client.cancel(futures + [shipped])
    session.used += 1
    session.blocks += len(blocks)
    return values
