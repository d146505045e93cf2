"""Training on several processes with torch DDP, when ``xrfhub train`` runs under ``torchrun``.

    torchrun --standalone --nproc_per_node 2 -m xrfhub_cli train max --store hub --out run ...

``torchrun`` starts one process per rank and sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``;
:func:`start` joins them into one process group (NCCL with one GPU per local rank when there are
enough GPUs, else gloo). Every rank builds the same batches in the same order from the same seed, and the engine
gives each rank a disjoint slice of every global batch (:func:`share`), weighting its loss by the
slice's share so that the averaged gradients are those of the whole batch in one process: the
same global batch and seed give the same loss curve on 1 or N processes. Only rank 0 writes.

Reading env variables needs no torch; everything else imports it lazily, so ``import xrfhub``
(and :mod:`xrfhub.ml.training`) stay free of torch.
"""
from __future__ import annotations

import os

from ..errors import ConfigError


def launched() -> bool:
    """Whether this process is one of several ranks started by ``torchrun`` (WORLD_SIZE > 1)."""
    return _env_int("WORLD_SIZE", 1) > 1


def _env_int(name: str, default: int) -> int:
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
    return _env_int("RANK", 0), _env_int("WORLD_SIZE", 1)


def is_writer() -> bool:
    """Rank 0 (or a single process): the one process that writes run folders and stores."""
    return rank_world()[0] == 0


def active() -> bool:
    """Whether a process group of more than one rank is running."""
    import sys

    torch = sys.modules.get("torch")
    return (torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized()
            and torch.distributed.get_world_size() > 1)


def start() -> bool:
    """Join torchrun's process group (once); returns whether this call started it (and so
    :func:`stop` should end it)."""
    if not launched():  # one process: nothing to join, and torch-free plugins never import torch
        return False
    import torch
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return False
    if not dist.is_available():
        raise ConfigError("torchrun started several ranks but this torch has no torch.distributed")
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise ConfigError(f"WORLD_SIZE is {os.environ['WORLD_SIZE']} but {name} is not set: start distributed "
                              "training with torchrun (e.g. torchrun --standalone --nproc_per_node 2 -m xrfhub_cli "
                              "train ...)")
    local = _env_int("LOCAL_WORLD_SIZE", _env_int("WORLD_SIZE", 1))
    if torch.cuda.is_available() and torch.cuda.device_count() >= local:
        torch.cuda.set_device(_env_int("LOCAL_RANK", 0))  # "cuda" then means this rank's GPU
        dist.init_process_group("nccl")
    else:  # CPU, or fewer GPUs than ranks here (NCCL wants one GPU per rank): gloo works with both
        dist.init_process_group("gloo")
    return True


def describe() -> dict:
    """What ``run.json`` records of a distributed run."""
    import torch.distributed as dist

    return {"ranks": dist.get_world_size(), "backend": str(dist.get_backend()), "launcher": "torchrun",
            "batches": "every rank a contiguous slice of each global batch, loss weighted by its share"}


def barrier() -> None:
    if active():
        import torch.distributed as dist

        dist.barrier()


def stop() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model):
    """``model`` in DistributedDataParallel (on this rank's GPU when there is one). Buffers are
    not re-broadcast every step: the models' buffers are fixed (positions)."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    import inspect

    device = next(model.parameters()).device
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" \
        else None
    # newer torch renamed the option (and warns on the old name)
    sync = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters \
        else "broadcast_buffers"
    return DistributedDataParallel(model, device_ids=ids, **{sync: False})


def share(total: int, rank: int, world: int) -> tuple[int, int]:
    """``[lo, hi)``: rank ``rank``'s contiguous slice of a global batch of ``total`` rows. The
    first ``total % world`` ranks take one row more; a rank may get none (a last, small batch)."""
    base, extra = divmod(total, world)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)
