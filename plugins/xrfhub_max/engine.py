"""The MAX training engine: pre-training and fine-tuning loops, independent of the store.

``pretrain`` and ``finetune`` take a model, a ``MaxConfig``, a source of training batches (and
optionally validation batches) and a run directory, and run the published recipe: AdamW with no
weight decay on biases, norms and tokens (as MAE), linear warm-up then cosine decay per step,
gradient-norm clipping, bf16 autocast on CUDA (fp32 elsewhere; never fp16, which would need a
gradient scaler), everything seeded. Each epoch writes metrics, the loss curve and a pickle-free
checkpoint (see ``checkpoint.py``); ``resume=True`` continues after the last finished epoch and
reproduces an uninterrupted run.

A batch source is either an iterable that can be iterated once per epoch (a list, a torch
DataLoader) or a callable ``source(epoch) -> iterable``, so the caller controls per-epoch shuffling
(a ``DistributedSampler`` in a DataLoader gets ``set_epoch`` called). The iterable must have a
length (the schedule is per step). Pre-training batches are raw spectra ``(B, channels)``;
fine-tuning batches are ``(spectra, targets)`` pairs; numpy arrays or torch tensors either way.
The engine scales spectra with a ``Transform`` on the device.

Distributed training: wrap the model with ``wrap=`` (e.g. ``xrfhub.ml.torchddp.wrap``) inside a
``torchrun`` process group; losses are averaged over ranks and only rank 0 writes files. With
``split_batches=True`` every rank is given the same global batches and takes its own slice of
each (``xrfhub.ml.ddp.share``); its loss is weighted by the slice's share of the batch and the masks
are drawn for the whole batch, so N ranks reproduce one process's steps (same seed, same batch).
"""
from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from torch import nn
from tqdm.auto import tqdm

from xrfhub.ml.ddp import share
from xrfhub.errors import ConfigError
from xrfhub.ml.torchdata import pick_device

from . import checkpoint as ckpt
from .config import MaxConfig
from .transforms import Transform

log = logging.getLogger(__name__)

BatchSource = Iterable[Any] | Callable[[int], Iterable[Any]]


@dataclass
class FitResult:
    """What a training run leaves besides its run directory.

    On return the model holds the weights of ``best_epoch`` (lowest validation loss, or lowest
    training loss without validation). For fine-tuning, ``predictions`` and ``targets`` are the
    validation set's, in the target's own units.
    """

    run_dir: Path
    history: list[dict[str, Any]]
    best_epoch: int | None
    best_loss: float | None
    predictions: np.ndarray | None = None
    targets: np.ndarray | None = None


# -- pieces of the recipe --------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices only: biases, norm scales and the cls/mask tokens are left alone (MAE)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim <= 1 or name.endswith(("cls_token", "mask_token"))
        (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, config: MaxConfig, lr: float,
                    layer_decay: float = 1.0) -> torch.optim.AdamW:
    """AdamW with the fused kernel where torch has one for the device (fewer passes over
    the parameters), else the multi-tensor one; ``layer_decay`` < 1 scales each layer's rate
    (``layer_decay.py``, fine-tuning only)."""
    if layer_decay != 1.0:
        from .layer_decay import decayed_groups

        groups = decayed_groups(model.named_parameters(), config.depth, layer_decay, config.weight_decay)
    else:
        groups = param_groups(model, config.weight_decay)
    try:
        return torch.optim.AdamW(groups, lr=lr, betas=config.betas, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=lr, betas=config.betas)


def learning_rate(progress: float, base_lr: float, min_lr: float, warmup: float,
                  total: float) -> float:
    """Linear warm-up over ``warmup`` epochs, then half-cosine to ``min_lr`` at ``total``.

    ``progress`` is the fractional epoch (epoch + step / steps_per_epoch), so the rate moves
    every step, as in MAE.
    """
    if progress < warmup:
        return base_lr * progress / warmup
    span = max(total - warmup, 1e-12)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * (progress - warmup) / span))


#: Warm-up never takes more than this share of a run's epochs: the published 10 of 100 epochs,
#: so a short run (``--epochs 3``) still reaches its learning rate and decays, instead of
#: spending every step warming up.
MAX_WARMUP_FRACTION = 0.1


def warmup_epochs(config: MaxConfig, stage: str) -> float:
    """Warm-up length in epochs of ``stage`` ("pretrain" or "finetune"): the configured one
    (``warmup_epochs``, or the ``finetune_warmup`` fraction), capped at 10 % of ``config.epochs``."""
    asked = config.warmup_epochs if stage == "pretrain" else config.finetune_warmup * config.epochs
    return min(float(asked), MAX_WARMUP_FRACTION * config.epochs)


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA (no gradient scaler needed); plain fp32 on other devices."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(value: Any, device: torch.device) -> torch.Tensor:
    tensor = torch.as_tensor(value)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def in_memory_batches(x: np.ndarray, y: np.ndarray | None = None, batch_size: int = 256,
                      shuffle: bool = True, seed: int = 0) -> Callable[[int], list]:
    """A batch source over arrays in memory: ``source(epoch)`` is the epoch's list of batches,
    shuffled by ``(seed, epoch)`` so every epoch differs and every run repeats."""
    x = np.asarray(x)
    y = None if y is None else np.asarray(y)

    def source(epoch: int) -> list:
        order = (np.random.default_rng([seed, epoch]).permutation(len(x)) if shuffle
                 else np.arange(len(x)))
        chunks = [order[i:i + batch_size] for i in range(0, len(x), batch_size)]
        return [x[c] if y is None else (x[c], y[c]) for c in chunks]

    return source


def _epoch_batches(source: BatchSource, epoch: int) -> Iterable[Any]:
    batches = source(epoch) if callable(source) else source
    sampler = getattr(batches, "sampler", None)
    if hasattr(sampler, "set_epoch"):  # DistributedSampler: a different shard order per epoch
        sampler.set_epoch(epoch)
    return batches


def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _local(batch, split: bool):
    """This rank's part of a global batch: ``(part, rows, n)``; ``rows`` is ``(lo, hi, total)``
    for the task (None when batches are not split) and ``n`` the rows that count. A rank whose
    share is empty (a last batch smaller than the world) runs its model on one row weighted 0:
    DDP needs a backward from every rank."""
    if not split:
        return batch, None, None
    rank, world = _rank_world()
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    total = len(first)
    lo, hi = share(total, rank, world)
    part = slice(lo, hi) if hi > lo else slice(0, 1)
    taken = tuple(b[part] for b in batch) if isinstance(batch, (tuple, list)) else batch[part]
    return taken, (part.start, part.stop, total), hi - lo


def _global_mean(total: torch.Tensor, count: int) -> float:
    """Mean of per-sample losses summed over this rank and, when distributed, all ranks."""
    pair = torch.stack([total.detach().double(), total.new_tensor(count, dtype=torch.float64)])
    if _rank_world()[1] > 1:
        torch.distributed.all_reduce(pair)
    return float(pair[0] / pair[1]) if pair[1] > 0 else float("nan")


# -- what is learned ---------------------------------------------------------------------------
class _Reconstruction:
    """Pre-training: masked-patch MSE; masks drawn from a generator saved in checkpoints."""

    kind = "autoencoder"

    def __init__(self, transform: Transform, device: torch.device, seed: int):
        self.transform, self.device, self.seed = transform, device, seed
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def spectra(self, batch):
        return batch[0] if isinstance(batch, (tuple, list)) else batch

    def loss(self, net: nn.Module, batch, training: bool, generator=None, rows=None) -> tuple[Any, int]:
        x = self.transform(to_device(self.spectra(batch), self.device))
        generator = self.generator if training else generator
        if rows is None:
            loss, _, _ = net(x, generator=generator)
        else:  # a slice of a global batch: its rows of the masks drawn for the whole batch
            lo, hi, total = rows
            n = ckpt.unwrap(net).encoder.num_patches
            noise = torch.rand(total, n, device=x.device, generator=generator)[lo:hi]
            loss, _, _ = net(x, noise=noise)
        return loss, x.shape[0]

    def validation_generator(self) -> torch.Generator:
        # the same masks every epoch, so validation losses are comparable across epochs
        return torch.Generator(device=self.device).manual_seed(self.seed + 1)


#: The ``c`` of the "logit" target, ln((y + c) / (100 - y + c)) in wt%: keeps 0 and 100 wt% finite
#: (+-5.3) and barely moves the values between (the logratio plugin's offset for closed parts).
LOGIT_C = 0.5


def to_target_space(y, name: str, log=np.log):
    """Targets as the fine-tune regresses them (``config.target_transform``); ``log=torch.log``
    for tensors."""
    if name == "logit":
        return log((y + LOGIT_C) / (100.0 - y + LOGIT_C))
    return y


def from_target_space(z, name: str):
    """Predictions in target space back in the target's units (wt% for "logit")."""
    if name == "logit":
        r = np.exp(np.clip(z, -50.0, 50.0))
        return (r * (100.0 + LOGIT_C) - LOGIT_C) / (1.0 + r)
    return z


def normalised_targets(y, stats: dict) -> np.ndarray:
    """Targets as the model is trained to output them: in target space, z-scored with ``stats``."""
    return (to_target_space(np.asarray(y, dtype=np.float64), stats.get("transform", "none"))
            - stats["mean"]) / stats["std"]


class _Regression:
    """Fine-tuning: MSE on z-scored targets; training batches mixed up when ``mixup`` > 0."""

    kind = "regressor"

    def __init__(self, transform: Transform, device: torch.device, mean: float, std: float,
                 mixup: float = 0.0, seed: int = 0, target_transform: str = "none"):
        self.transform, self.device, self.mean, self.std = transform, device, mean, std
        self.target_transform = target_transform
        self.generator = None
        self.mixup, self.rng = mixup, np.random.default_rng([seed, 7])  # the mixing draws, seeded

    def loss(self, net: nn.Module, batch, training: bool, generator=None, rows=None) -> tuple[Any, int]:
        x, y = batch
        x = to_device(x, self.device).float()
        y = to_target_space(to_device(y, self.device).float().reshape(-1), self.target_transform, log=torch.log)
        y = (y - self.mean) / self.std
        if training and self.mixup > 0 and len(y) > 1:
            x, y = self._mix(x, y)
        x = self.transform(x)
        pred = net(x)
        return nn.functional.mse_loss(pred.float(), y), x.shape[0]

    def _mix(self, x, y):
        """Each pair mixed with another pair of the batch (raw counts, z-scored targets alike)."""
        n = len(y)
        lam = torch.as_tensor(self.rng.beta(self.mixup, self.mixup, n), dtype=x.dtype, device=x.device)
        other = torch.as_tensor(self.rng.permutation(n), device=x.device)
        return lam[:, None] * x + (1 - lam[:, None]) * x[other], lam * y + (1 - lam) * y[other]

    def validation_generator(self):
        return None


# -- the loop ----------------------------------------------------------------------------------
def pretrain(model: nn.Module, config: MaxConfig, train: BatchSource,
             val: BatchSource | None = None, run_dir: str | Path = "max-run", *,
             transform: Transform | None = None, resume: bool = False, progress: bool = True,
             wrap: Callable[[nn.Module], nn.Module] | None = None, split_batches: bool = False) -> FitResult:
    """Pre-train a ``MaxAutoencoder`` with the recipe of ``config`` (lr ``config.lr``, warm-up
    ``warmup_epochs(config, "pretrain")``: at most 10 % of the epochs).

    ``transform`` defaults to ``Transform(config.transform)``; a channel transform without
    statistics is fitted on the training spectra first. ``resume=False`` starts over in
    ``run_dir``, replacing its files.
    """
    run_dir = Path(run_dir)
    transform = _prepare_transform(config, transform, run_dir, resume,
                                   lambda: (b for b in _epoch_batches(train, 0)))
    device = pick_device(config.device)
    task = _Reconstruction(transform, device, config.seed)
    return _fit(task, model, config, train, val, run_dir, config.lr, warmup_epochs(config, "pretrain"),
                resume, progress, wrap, split_batches)


def finetune(model: nn.Module, config: MaxConfig, train: BatchSource,
             val: BatchSource | None = None,
             run_dir: str | Path = "max-finetune", *, transform: Transform | None = None,
             target_stats: dict[str, float] | None = None, resume: bool = False,
             progress: bool = True,
             wrap: Callable[[nn.Module], nn.Module] | None = None, split_batches: bool = False,
             stop_epoch: int | None = None) -> FitResult:
    """Fine-tune a ``MaxRegressor`` on ``(spectra, target)`` batches (lr ``config.finetune_lr``,
    warm-up ``config.finetune_warmup`` of the epochs, layer-wise decay ``config.layer_decay``).

    ``stop_epoch`` (without ``val``): train the schedule of ``config.epochs`` epochs up to that
    epoch and keep its weights: a refit at an epoch chosen elsewhere.

    Targets are z-scored with ``target_stats`` (``{"mean", "std"}``; computed from the training
    batches when None) saved as ``target_stats.json``. Returns the validation predictions of the
    best epoch, de-normalised (None without ``val``).
    """
    if stop_epoch is not None and (val is not None or not 1 <= stop_epoch <= config.epochs):
        # refused before anything is written to run_dir
        raise ConfigError(f"stop_epoch {stop_epoch} needs no validation and 1..{config.epochs}")
    run_dir = Path(run_dir)
    transform = _prepare_transform(config, transform, run_dir, resume,
                                   lambda: (x for x, _ in _epoch_batches(train, 0)))
    stats_path = run_dir / ckpt.TARGET_STATS_FILE
    if resume and stats_path.is_file():
        target_stats = ckpt.read_json(stats_path)
    elif target_stats is None:
        target_stats = target_statistics(_epoch_batches(train, 0), config.target_transform)
    if _rank_world()[0] == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        ckpt.write_json(stats_path, target_stats)
    device = pick_device(config.device)
    task = _Regression(transform, device, float(target_stats["mean"]),
                       float(target_stats["std"]), config.mixup, config.seed, target_stats.get("transform", "none"))
    result = _fit(task, model, config, train, val, run_dir, config.finetune_lr,
                  warmup_epochs(config, "finetune"), resume, progress, wrap, split_batches, config.layer_decay,
                  stop_epoch)
    if val is not None:
        result.predictions, result.targets = predict(model, val, transform, target_stats,
                                                     with_targets=True)
    return result


def target_statistics(batches: Iterable[Any], transform: str = "none") -> dict[str, float]:
    """Mean and population std of the targets in ``(x, y)`` batches (std 0 -> 1), in the target
    space of ``transform`` (named in the result, so that predictions are mapped back)."""
    y = np.concatenate([np.asarray(torch.as_tensor(t).float()).reshape(-1) for _, t in batches])
    if y.size == 0:
        raise ConfigError("fine-tuning needs at least one target value")
    if not np.isfinite(y).all():
        raise ConfigError("fine-tuning targets contain NaN or infinite values; drop them first")
    if transform == "logit" and (y.min() < 0 or y.max() > 100):  # before finetune writes anything
        raise ConfigError(f"target_transform=logit is for percentages (0-100); the targets run "
                          f"{y.min():g}-{y.max():g}: use target_transform=none")
    y = to_target_space(y.astype(np.float64), transform)
    std = float(y.std())
    out = {"mean": float(y.mean()), "std": std if std > 0 else 1.0, "count": int(y.size)}
    return out | ({"transform": transform} if transform != "none" else {})


@torch.no_grad()
def predict(model: nn.Module, batches: BatchSource, transform: Transform,
            target_stats: dict[str, float] | None = None, *, with_targets: bool = False):
    """Regressor outputs over ``batches`` (spectra, or ``(spectra, target)`` pairs), in target
    units when ``target_stats`` is given. With ``with_targets``, also the targets."""
    device = next(model.parameters()).device
    model.eval()
    preds, targets = [], []
    for batch in _epoch_batches(batches, 0):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        with autocast(device):
            out = model(transform(to_device(x, device))).float()
        preds.append(out.cpu().numpy())
        if with_targets:
            targets.append(np.asarray(torch.as_tensor(batch[1]).float()).reshape(-1))
    pred = np.concatenate(preds) if preds else np.zeros(0, np.float32)
    if target_stats is not None:
        pred = from_target_space(pred * target_stats["std"] + target_stats["mean"],
                                 target_stats.get("transform", "none")).astype(np.float32)
    if with_targets:
        return pred, (np.concatenate(targets) if targets else np.zeros(0, np.float32))
    return pred


def _prepare_transform(config, transform, run_dir: Path, resume: bool, spectra) -> Transform:
    path = run_dir / ckpt.TRANSFORM_FILE
    if resume and path.is_file():
        return Transform.from_dict(ckpt.read_json(path))
    transform = transform or Transform(config.transform)
    if transform.needs_fit:
        log.info("fitting channel statistics on the training spectra")
        transform.fit(spectra())
    return transform


def _fit(task, model: nn.Module, config: MaxConfig, train: BatchSource,
         val: BatchSource | None, run_dir: Path, base_lr: float, warmup: float, resume: bool,
         progress: bool, wrap, split: bool = False, layer_decay: float = 1.0,
         stop_epoch: int | None = None) -> FitResult:
    rank, world = _rank_world()
    main = rank == 0
    device = task.device
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)
    model.to(device)
    optimizer = build_optimizer(model, config, base_lr, layer_decay)
    generators = {"mask": task.generator} if task.generator is not None else {}

    done, step, best_epoch, best_loss = 0, 0, None, None
    if resume and ckpt.has_checkpoint(run_dir):
        _check_same_config(run_dir, config)
        state = ckpt.load_checkpoint(run_dir, model, optimizer)
        ckpt.set_rng_state(state["rng"], generators)
        done, step = state["epoch"], state["step"]
        best_epoch, best_loss = state["best_epoch"], state["best_loss"]
        log.info("resuming %s after epoch %d", run_dir, done)
    if main:
        ckpt.write_json(run_dir / ckpt.CONFIG_FILE, config.to_dict())
        ckpt.write_json(run_dir / ckpt.TRANSFORM_FILE, task.transform.to_dict())
    metrics = ckpt.MetricsLog(run_dir, keep_through_epoch=done) if main else None
    net = wrap(model) if wrap is not None else model

    for epoch in range(done, stop_epoch or config.epochs):
        batches = _epoch_batches(train, epoch)
        if not hasattr(batches, "__len__"):
            raise ConfigError("the training batch source must have a length (a list, a "
                              "DataLoader, or a callable returning one)")
        n_steps = len(batches)
        if n_steps == 0:
            raise ConfigError("the training batch source yielded no batches")
        net.train()
        total, seen, lr = torch.zeros((), device=device), 0, base_lr
        bar = tqdm(batches, total=n_steps, desc=f"epoch {epoch + 1}/{config.epochs}",
                   unit="batch", leave=False, disable=not (progress and main))
        start = time.perf_counter()
        for i, batch in enumerate(bar):
            lr = learning_rate(epoch + i / n_steps, base_lr, config.min_lr, warmup,
                               config.epochs)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            part, rows, share_n = _local(batch, split)
            with autocast(device, config.amp):
                loss, size = task.loss(net, part, training=True, rows=rows)
            optimizer.zero_grad(set_to_none=True)
            if rows is None:
                loss.backward()
            else:  # DDP averages over ranks: weight by this slice's share of the global batch
                size = share_n
                (loss * (size * world / rows[2])).backward()
            if config.clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            total += loss.detach() * size
            seen += size
            step += 1
            if i % 10 == 0 or i == n_steps - 1:  # .item() syncs the GPU: not every step
                bar.set_postfix(loss=f"{loss.item():.4f}",
                                spectra_s=f"{seen / (time.perf_counter() - start):.0f}")
        seconds = time.perf_counter() - start
        train_loss = _global_mean(total, seen)
        val_loss = evaluate(task, net, val, config.amp, split) if val is not None else None
        row = {"epoch": epoch + 1, "step": step, "train_loss": train_loss, "val_loss": val_loss,
               "lr": lr, "spectra_per_s": seen / seconds, "seconds": seconds}
        score = val_loss if val is not None else train_loss
        improved = best_loss is None or score < best_loss
        if stop_epoch is not None:  # the epoch was chosen before: keep it, whatever its loss
            improved = epoch + 1 == stop_epoch
        if improved:
            best_epoch, best_loss = epoch + 1, score
        if main:
            if improved:
                ckpt.save_weights(model, run_dir / ckpt.BEST_FILE, epoch=epoch + 1,
                                  loss=score)
            ckpt.save_checkpoint(run_dir, model, optimizer, {
                "kind": task.kind, "epoch": epoch + 1, "step": step,
                "best_epoch": best_epoch, "best_loss": best_loss,
                "rng": ckpt.rng_state(generators)})
            metrics.append(row)
            ckpt.loss_png(metrics.rows, run_dir / "loss.png", kind=task.kind)
        log.info("epoch %d: %s", epoch + 1, row)

    if _rank_world()[1] > 1:
        torch.distributed.barrier()  # rank 0 has written best.safetensors
    if (run_dir / ckpt.BEST_FILE).is_file():
        ckpt.load_weights(model, run_dir / ckpt.BEST_FILE)
    history = list(metrics.rows) if metrics is not None else []
    return FitResult(run_dir, history, best_epoch, best_loss)


@torch.no_grad()
def evaluate(task, net: nn.Module, batches: BatchSource, amp: bool = True, split: bool = False) -> float:
    """Mean validation loss (per spectrum), averaged over ranks when distributed; with
    ``split`` each rank scores its slice of every (global) batch."""
    net.eval()
    generator = task.validation_generator()
    total, seen = torch.zeros((), device=task.device), 0
    for batch in _epoch_batches(batches, 0):
        part, rows, share_n = _local(batch, split)
        with autocast(task.device, amp):
            loss, size = task.loss(net, part, training=False, generator=generator, rows=rows)
        size = size if rows is None else share_n
        total += loss.detach().float() * size
        seen += size
    net.train()
    if seen == 0 and _rank_world()[1] == 1:
        raise ConfigError("the validation batch source yielded no batches; pass val=None to "
                          "train without validation")
    return _global_mean(total, seen)


def _check_same_config(run_dir: Path, config: MaxConfig) -> None:
    saved = ckpt.read_json(run_dir / ckpt.CONFIG_FILE)
    mine = config.to_dict()
    # a key the saved run predates (e.g. ``pool``) had the dataclass default then
    defaults = MaxConfig().to_dict()
    changed = sorted(k for k in mine if k not in ("epochs", "device") and saved.get(k, defaults.get(k)) != mine[k])
    if changed:
        raise ConfigError(f"cannot resume {run_dir}: the configuration differs from the saved "
                          f"one in {changed}; resume with the same settings or start a new run")


@torch.no_grad()
def reconstruction_png(model: nn.Module, batch: Any, path: str | Path,
                       energy: np.ndarray | None = None, *, transform: Transform | None = None,
                       n: int = 4, seed: int = 0, mask_ratio: float | None = None,
                       labels: list[str] | None = None, max_kev: float | None = None,
                       note: str = "") -> Path:
    """Plot ``n`` spectra of ``batch``: the (scaled) input, the hidden patches shaded, and the
    autoencoder's reconstruction of them. ``energy`` (keV per channel) labels the x axis;
    ``transform`` scales raw counts first (the picture is in the model's input space).

    ``labels`` names each spectrum (core and depth); ``max_kev`` (the tube voltage) ends the x
    axis, since nothing fluoresces above it; ``note`` is printed in red under the title, e.g.
    that the run had too few epochs for the reconstruction to mean much.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    device = next(model.parameters()).device
    x = to_device(batch[0] if isinstance(batch, (tuple, list)) else batch, device)[:n].float()
    x = transform(x) if transform is not None else x
    was_training = model.training
    model.eval()
    _, pred, mask = model(x, mask_ratio=mask_ratio, generator=seed)
    model.train(was_training)
    x, pred, mask = x.cpu().numpy(), pred.float().cpu().numpy(), mask.cpu().numpy()
    patch = pred.shape[-1]
    axis = np.arange(x.shape[1]) if energy is None else np.asarray(energy)
    fig = Figure(figsize=(9, 2.2 * len(x) + (0.4 if note else 0)), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(x), 1, sharex=True, squeeze=False)[:, 0]
    for i, (ax, spectrum, recon, hidden) in enumerate(zip(axes, x, pred, mask)):
        for start, stop in _runs(hidden):  # one shaded span per run of hidden patches
            ax.axvspan(axis[start * patch], axis[min(stop * patch, len(axis) - 1)],
                       color="0.85", lw=0)
        ax.plot(axis, spectrum, color="k", lw=0.8, label="input")
        shown = np.where(np.repeat(hidden, patch) > 0, recon.reshape(-1), np.nan)
        ax.plot(axis, shown, color="tab:red", lw=0.8, label="reconstruction (hidden)")
        ax.set_ylabel("scaled counts")
        if labels is not None and i < len(labels):
            ax.set_title(labels[i], fontsize=9, loc="left")
    handles, names = axes[0].get_legend_handles_labels()
    handles.append(Patch(color="0.85", label="hidden (masked) patches"))
    axes[0].legend(handles=handles, loc="upper right", fontsize=8)
    if energy is not None and max_kev is not None:
        axes[-1].set_xlim(float(axis[0]), min(float(max_kev), float(axis[-1])))
    axes[-1].set_xlabel("channel" if energy is None else "energy (keV)")
    if note:
        fig.suptitle(note, color="tab:red", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    return path


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` index runs where ``flags`` is non-zero."""
    padded = np.concatenate([[0], (flags > 0).astype(int), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[0::2], edges[1::2]))
