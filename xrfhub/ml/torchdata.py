"""Store batches as a torch ``IterableDataset``, for ``DataLoader`` workers and DDP ranks.

Import this module only where torch is wanted (plugins); ``import xrfhub`` does not load it.

    ds = SpectraDataset(store, rows, batch_size=256)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2, pin_memory=True)
    for epoch in range(n):
        ds.set_epoch(epoch)
        for x in loader:
            x = x.to("cuda", non_blocking=True)

Each worker (and each DDP rank) opens the store once, on its first batch, and reads a disjoint
share of the row blocks, so every selected row is seen exactly once per epoch.
"""
from __future__ import annotations

import math

import numpy as np
import torch  # lazy: only plugins import this module; `import xrfhub` never does
from torch.utils.data import IterableDataset, get_worker_info  # lazy: as above

from ..errors import ConfigError
from .loaders import BatchStream, hub_counts
from .transforms import SpectrumTransform


def pick_device(name: str = "auto") -> torch.device:
    """The torch device a config names: "auto" (CUDA when there is one), "cpu" or "cuda"."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but torch sees no CUDA device; "
                          "use device=auto or cpu")
    return torch.device(name)



def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class SpectraDataset(IterableDataset):
    """Batches of rows of a spectra group, transformed to float32 tensors.

    ``rows`` come from :func:`xrfhub.ml.loaders.select_rows`; ``targets`` (one per row of the
    group) make each item an ``(x, y)`` pair. ``mode`` is the :class:`BatchStream` mode.
    """

    def __init__(self, store, rows, *, group: str | None = None, batch_size: int = 256, shuffle: bool = True,
                 seed: int = 0, mode: str = "stream", targets=None, transform: SpectrumTransform | None = None,
                 chunks_per_block: int = 4):
        super().__init__()
        if group is None:  # resolved here, in the parent: workers should only read counts
            from .. import api

            group = api.open(store, "spectra", index=False).attrs["group"]
        self.store, self.group = str(store), group
        self.rows = np.asarray(rows, dtype=np.int64)
        self.batch_size, self.shuffle, self.seed, self.mode = batch_size, shuffle, seed, mode
        self.targets, self.transform, self.chunks_per_block = targets, transform, chunks_per_block
        self.epoch = 0
        self._array = None  # opened lazily: once per worker process

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _share(self, block_rows: int) -> np.ndarray:
        """This worker's rows: whole blocks dealt round-robin over ranks x workers."""
        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        rank, world = _rank_world()
        shard, shards = rank * n_workers + worker, world * n_workers
        return self.rows[(self.rows // block_rows) % shards == shard]

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / self.batch_size)

    def __iter__(self):
        if get_worker_info() is not None:
            import dask

            dask.config.set(scheduler="synchronous")  # the parent's thread pool died with the fork
        if self._array is None:
            self._array = hub_counts(self.store, self.group)
        rows = self._share(int(self._array.chunks[0]) * self.chunks_per_block)
        # in a worker: one reader thread (the workers are the parallelism), no dask thread pool
        scheduler = "synchronous" if get_worker_info() is not None else "threads"
        stream = BatchStream(self._array, rows, batch_size=self.batch_size, shuffle=self.shuffle,
                             transform=self.transform, targets=self.targets, mode=self.mode, seed=self.seed,
                             epoch=self.epoch, scheduler=scheduler, block_chunks=self.chunks_per_block)
        for x, y, _rows in stream:
            x = torch.from_numpy(np.ascontiguousarray(x))
            yield x if y is None else (x, torch.from_numpy(np.asarray(y, dtype=np.float32)))
