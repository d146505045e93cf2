"""The training loops of the diffraction recipes, one per model family.

Each loop takes a freshly built module, the prepared training set already on the device
(patterns ``x``, labels ``y``) and its configuration, trains in place and returns the loss
history (one value per iteration or epoch) and a dict of facts worth reporting. Seeding is the
caller's job (``recipes.fit``); nothing here draws from an unseeded source.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from xrfhub.errors import ConfigError
from xrfhub.ml.torchdata import pick_device  # noqa: F401 - shared by the plugins, used as module.pick_device

from .binned import BinnedLearned, BinnedVote, believability
from .multitask import positive_weights, tailored_bce

# elements of the widest activation a chunk may hold (the per-point hidden layer of a binned
# model): bounds memory at ~32 MB a chunk whatever the pattern count
CHUNK_ELEMENTS = 2 ** 23




def adam(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam with L2 weight decay on every parameter, as 003's recipes state it."""
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)


def _steps(n: int, progress: bool, label: str):
    return tqdm(range(n), desc=label, leave=False) if progress else range(n)


def chunk_size(elements_per_pattern: int) -> int:
    return max(1, CHUNK_ELEMENTS // max(1, elements_per_pattern))


def train_vote(model: BinnedVote, x: torch.Tensor, y: torch.Tensor, config,
               progress: bool = False) -> tuple[list[float], dict[str, Any]]:
    """Model A: full-batch cross-entropy over every point, then the bins' believability.

    The full-batch gradient is accumulated over chunks of patterns (exact: the loss is a mean
    over points and the subnets hold no batch statistics), so memory stays bounded.
    """
    optimizer = adam(model, config.lr, config.weight_decay)
    b, m = model.valid.shape
    step = chunk_size(m * b * config.hidden)
    total = int(model.valid.sum()) * x.shape[0]
    history = []
    model.train()
    for _ in _steps(config.iterations, progress, "panosc-binned"):
        optimizer.zero_grad(set_to_none=True)
        running = 0.0
        for start in range(0, x.shape[0], step):
            loss, _ = model.point_loss(x[start:start + step], y[start:start + step])
            (loss / total).backward()
            running += float(loss.detach())
        optimizer.step()
        history.append(running / total)
    model.eval()
    hits = torch.zeros(b, device=x.device)
    counts = torch.zeros(b, device=x.device)
    for start in range(0, x.shape[0], step):
        h, c = model.point_hits(x[start:start + step], y[start:start + step])
        hits += h
        counts += c
    model.set_weights(hits / counts)
    fallback = bool(believability(model.bin_accuracy, model.classes).sum() == 0)
    return history, {"equal_weights_fallback": fallback}


def train_learned(model: BinnedLearned, x: torch.Tensor, y: torch.Tensor, config,
                  progress: bool = False) -> tuple[list[float], dict[str, Any]]:
    """Model B: full-batch BCE over rows (every row carries its pattern's label), stopping at
    loss < ``stop_loss`` or row accuracy > ``stop_accuracy``."""
    optimizer = adam(model, config.lr, config.weight_decay)
    target = y.float()[:, None].expand(-1, model.rows)
    history, stopped = [], None
    model.train()
    for i in _steps(config.iterations, progress, "panosc-binned-learned"):
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
        accuracy = float(((logits.detach() > 0).float() == target).float().mean())
        if history[-1] < config.stop_loss or accuracy > config.stop_accuracy:
            stopped = i + 1
            break
    model.eval()
    return history, {"stopped_at": stopped, "iterations_run": len(history)}


def train_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: int, config,
                     progress: bool = False) -> tuple[list[float], dict[str, Any]]:
    """The 1-D models: full-batch BCE on one logit (two classes) or cross-entropy."""
    optimizer = adam(model, config.lr, config.weight_decay)
    history = []
    model.train()
    for _ in _steps(config.iterations, progress, f"spectra1d/{config.arch}"):
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        if classes == 2:
            loss = F.binary_cross_entropy_with_logits(logits[:, 0], y.float())
        else:
            loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
    model.eval()
    return history, {}


def train_phases(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config,
                 progress: bool = False) -> tuple[list[float], dict[str, Any]]:
    """mtl-phase: AdamW over shuffled mini-batches, tailored (per-task weighted) BCE.

    Positive weights come from the whole training set, once, so every batch uses the same
    balance; the shuffling generator is seeded from ``config.seed``.
    """
    phases = y.shape[1]
    weights = (torch.ones(phases) if config.task_weights is None
               else torch.tensor(config.task_weights, dtype=torch.float32))
    if weights.numel() != phases:
        raise ConfigError(f"task_weights holds {weights.numel()} weights but the labels have "
                          f"{phases} phases")
    weights = weights.to(x.device)
    pos_weight = positive_weights(y) if config.positive_weighting else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    history = []
    model.train()
    for _ in _steps(config.epochs, progress, f"mtl-phase/{config.mode}"):
        order = torch.randperm(x.shape[0], generator=generator).to(x.device)
        total = 0.0
        for start in range(0, x.shape[0], config.batch):
            batch = order[start:start + config.batch]
            optimizer.zero_grad(set_to_none=True)
            loss = tailored_bce(model(x[batch]), y[batch], pos_weight, weights)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        history.append(total / x.shape[0])
    model.eval()
    info = {"positive_weights": None if pos_weight is None else pos_weight.cpu().tolist()}
    return history, info
