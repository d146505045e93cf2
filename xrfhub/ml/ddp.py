"""Training on several processes with torch DDP, when ``xrfhub train`` runs under ``torchrun``.

    torchrun --standalone --nproc_per_node 2 -m xrfhub_cli train max --store hub --out run ...

``torchrun`` starts one process per rank and sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``;
:func:`start` joins them into one process group (NCCL with one GPU per local rank when there are
enough GPUs, else gloo). Every rank builds the same batches in the same order from the same seed, and the engine
gives each rank a disjoint slice of every global batch (:func:`share`), weighting its loss by the
slice's share so that the averaged gradients are those of the whole batch in one process: the
same global batch and seed give the same loss curve on 1 or N processes. Only rank 0 writes.

This module is torch-free: it reads torchrun's environment, or a process group something else
already started, so ``import xrfhub``, :mod:`xrfhub.ml.training` and the CLI never import torch.
Joining, waiting and wrapping need torch and live in :mod:`xrfhub.ml.torchddp`, the process-group
backend a plugin that trains under torchrun names as its ``distributed`` attribute (MAX does);
``xrfhub train`` reaches it only through such a plugin.
"""
from __future__ import annotations

import os

from ..errors import ConfigError


def launched() -> bool:
    """Whether this process is one of several ranks started by ``torchrun`` (WORLD_SIZE > 1)."""
    return env_int("WORLD_SIZE", 1) > 1


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r}: expected an integer (set by torchrun)") from None


def rank_world() -> tuple[int, int]:
    """``(rank, world size)``: of the process group when one is running, else from torchrun's
    environment, else ``(0, 1)``."""
    import sys

    torch = sys.modules.get("torch")  # only ask torch when something already imported it
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return env_int("RANK", 0), env_int("WORLD_SIZE", 1)


def is_writer() -> bool:
    """Rank 0 (or a single process): the one process that writes run folders and stores."""
    return rank_world()[0] == 0


def active() -> bool:
    """Whether a process group of more than one rank is running."""
    import sys

    torch = sys.modules.get("torch")
    return (torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized()
            and torch.distributed.get_world_size() > 1)


def share(total: int, rank: int, world: int) -> tuple[int, int]:
    """``[lo, hi)``: rank ``rank``'s contiguous slice of a global batch of ``total`` rows. The
    first ``total % world`` ranks take one row more; a rank may get none (a last, small batch)."""
    base, extra = divmod(total, world)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)
