"""The torch side of training on several processes (torch DDP under ``torchrun``): join the
process group, wait for the other ranks, describe the group, wrap a model.

A plugin that trains under torchrun names this module as its process-group backend
(``distributed = torchddp``); ``xrfhub train`` calls it through the plugin, only when torchrun
launched several ranks (:func:`xrfhub.ml.ddp.launched`). Everything that needs no torch (the
rank, the writer, a batch's share) is in :mod:`xrfhub.ml.ddp`.
"""
from __future__ import annotations

import inspect
import os

import torch  # lazy: only torch plugins import this module; `import xrfhub` never does
import torch.distributed as dist  # lazy: as above
from torch.nn.parallel import DistributedDataParallel  # lazy: as above

from ..errors import ConfigError
from .ddp import active, env_int, launched


def start() -> bool:
    """Join torchrun's process group (once); returns whether this call started it (and so
    :func:`stop` should end it)."""
    if not launched():  # one process: nothing to join
        return False
    if dist.is_available() and dist.is_initialized():
        return False
    if not dist.is_available():
        raise ConfigError("torchrun started several ranks but this torch has no torch.distributed")
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise ConfigError(f"WORLD_SIZE is {os.environ['WORLD_SIZE']} but {name} is not set: start distributed "
                              "training with torchrun (e.g. torchrun --standalone --nproc_per_node 2 -m xrfhub_cli "
                              "train ...)")
    local = env_int("LOCAL_WORLD_SIZE", env_int("WORLD_SIZE", 1))
    if torch.cuda.is_available() and torch.cuda.device_count() >= local:
        torch.cuda.set_device(env_int("LOCAL_RANK", 0))  # "cuda" then means this rank's GPU
        dist.init_process_group("nccl")
    else:  # CPU, or fewer GPUs than ranks here (NCCL wants one GPU per rank): gloo works with both
        dist.init_process_group("gloo")
    return True


def describe() -> dict:
    """What ``run.json`` records of a distributed run."""
    return {"ranks": dist.get_world_size(), "backend": str(dist.get_backend()), "launcher": "torchrun",
            "batches": "every rank a contiguous slice of each global batch, loss weighted by its share"}


def barrier() -> None:
    if active():
        dist.barrier()


def stop() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model):
    """``model`` in DistributedDataParallel (on this rank's GPU when there is one). Buffers are
    not re-broadcast every step: the models' buffers are fixed (positions)."""
    device = next(model.parameters()).device
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" \
        else None
    # newer torch renamed the option (and warns on the old name)
    sync = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters \
        else "broadcast_buffers"
    return DistributedDataParallel(model, device_ids=ids, **{sync: False})
