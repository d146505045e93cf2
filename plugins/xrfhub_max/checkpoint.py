"""The run directory of a MAX training run: checkpoints, metrics and run metadata, pickle-free.

A run directory holds
  ``config.json``          the MaxConfig (``MaxConfig.from_dict`` reads it back);
  ``transform.json``       the input scaling (``Transform.from_dict``);
  ``target_stats.json``    fine-tuning only: mean/std the targets were z-scored with;
  ``model.safetensors``    weights after the last finished epoch;
  ``optimizer.safetensors`` AdamW moments of that epoch (tensors; its hyper-parameters sit in
                           the trainer state);
  ``trainer_state.json``   epoch, step, best epoch, RNG states as lists: what ``resume`` needs;
  ``best.safetensors``     weights of the best epoch;
  ``metrics.jsonl`` / ``metrics.csv``  one row per epoch; ``loss.png`` the curves.

Every file is replaced atomically (written beside, then ``os.replace``), so a run killed at any
moment leaves the previous complete version of each file. The weights and optimizer files carry
their epoch in their metadata; the trainer state is written last and ``load_checkpoint`` refuses a
set whose epochs disagree (a kill between two replacements), naming the files.
"""
from __future__ import annotations

import csv
import io
import json
import os
import random
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save
from torch import nn

from xrfhub.errors import StoreError

MODEL_FILE = "model.safetensors"
BEST_FILE = "best.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "trainer_state.json"
CONFIG_FILE = "config.json"
TRANSFORM_FILE = "transform.json"
TARGET_STATS_FILE = "target_stats.json"
METRICS_JSONL = "metrics.jsonl"
METRICS_CSV = "metrics.csv"


# -- atomic files ----------------------------------------------------------------------------
def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    tmp = _tmp(path)
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError) as e:
        raise StoreError(f"{path}: cannot read the run file ({e})") from e


def save_tensors(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor],
                 metadata: Mapping[str, Any] | None = None) -> None:
    """Write tensors as safetensors (contiguous CPU copies), atomically."""
    path = Path(path)
    tmp = _tmp(path)
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    # serialised in memory and written by us: safetensors' own file writer creates mode 0600
    data = save(flat, metadata={k: str(v) for k, v in (metadata or {}).items()})
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            return {k: fh.get_tensor(k) for k in fh.keys()}, dict(fh.metadata() or {})
    except Exception as e:  # OSError, or safetensors' own error type on a bad header
        raise StoreError(f"{path}: not a readable safetensors file ({e})") from e


# -- model weights ---------------------------------------------------------------------------
def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside a DistributedDataParallel / compiled wrapper."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


def save_weights(model: nn.Module, path: str | os.PathLike, **metadata: Any) -> None:
    save_tensors(path, unwrap(model).state_dict(), metadata)


def load_weights(model: nn.Module, path: str | os.PathLike) -> dict[str, str]:
    """Load weights saved by ``save_weights`` into ``model``; returns the file's metadata."""
    tensors, meta = load_tensors(path)
    try:
        unwrap(model).load_state_dict(tensors)
    except RuntimeError as e:
        raise StoreError(f"{path}: weights do not fit this model ({e})") from e
    return meta


# -- optimizer ---------------------------------------------------------------------------------
def optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors (``<param>.<name>``) and JSON values."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_files(optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor],
                         meta: Mapping[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in list(tensors.items()) + list(meta["scalars"].items()):
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


# -- random number generators ------------------------------------------------------------------
def rng_state(generators: Mapping[str, torch.Generator] = ()) -> dict[str, Any]:
    """Python, numpy, torch (CPU, CUDA) and named generator states as JSON lists."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, mt, gauss_next = random.getstate()
    state = {
        "python": [version, list(mt), gauss_next],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state().tolist(),
        "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()]
        if torch.cuda.is_available() else [],
        "generators": {name: g.get_state().tolist() for name, g in dict(generators).items()},
    }
    return state


def set_rng_state(state: Mapping[str, Any],
                  generators: Mapping[str, torch.Generator] = ()) -> None:
    version, mt, gauss_next = state["python"]
    random.setstate((version, tuple(mt), gauss_next))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])
    for name, g in dict(generators).items():
        if name in state["generators"]:
            g.set_state(torch.tensor(state["generators"][name], dtype=torch.uint8))


# -- checkpoints -------------------------------------------------------------------------------
def save_checkpoint(run_dir: str | os.PathLike, model: nn.Module,
                    optimizer: torch.optim.Optimizer, state: Mapping[str, Any]) -> None:
    """Weights, optimizer, then trainer state (``state["epoch"]`` = the epoch just finished)."""
    run_dir = Path(run_dir)
    epoch = state["epoch"]
    tensors, meta = optimizer_to_files(optimizer)
    save_tensors(run_dir / OPTIMIZER_FILE, tensors, {"epoch": epoch})
    save_weights(model, run_dir / MODEL_FILE, epoch=epoch)
    write_json(run_dir / STATE_FILE, {**state, "optimizer": meta})


def has_checkpoint(run_dir: str | os.PathLike) -> bool:
    return (Path(run_dir) / STATE_FILE).is_file()


def load_checkpoint(run_dir: str | os.PathLike, model: nn.Module,
                    optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore weights and optimizer from ``run_dir``; returns the trainer state."""
    run_dir = Path(run_dir)
    state = read_json(run_dir / STATE_FILE)
    weights_meta = load_weights(model, run_dir / MODEL_FILE)
    tensors, opt_meta = load_tensors(run_dir / OPTIMIZER_FILE)
    epochs = {STATE_FILE: str(state["epoch"]), MODEL_FILE: weights_meta.get("epoch"),
              OPTIMIZER_FILE: opt_meta.get("epoch")}
    if len(set(epochs.values())) != 1:
        raise StoreError(f"{run_dir}: the checkpoint files come from different epochs "
                         f"({epochs}); the run was interrupted while saving. Restart it "
                         f"without resume, or restore the files of one epoch.")
    device = next(unwrap(model).parameters()).device
    optimizer_from_files(optimizer, {k: v.to(device) for k, v in tensors.items()},
                         state["optimizer"])
    return state


# -- metrics -----------------------------------------------------------------------------------
class MetricsLog:
    """Per-epoch rows in ``metrics.jsonl`` and ``metrics.csv``, both rewritten atomically."""

    def __init__(self, run_dir: str | os.PathLike, keep_through_epoch: int = 0):
        self.run_dir = Path(run_dir)
        self.rows: list[dict[str, Any]] = []
        path = self.run_dir / METRICS_JSONL
        if keep_through_epoch > 0 and path.is_file():
            with open(path, encoding="utf-8") as fh:
                rows = [json.loads(line) for line in fh if line.strip()]
            # rows logged after the last complete checkpoint are dropped: resume redoes them
            self.rows = [r for r in rows if r["epoch"] <= keep_through_epoch]
        self._write_all()

    def append(self, row: Mapping[str, Any]) -> None:
        self.rows.append(dict(row))
        self._write_all()

    def _write_all(self) -> None:
        write_text(self.run_dir / METRICS_JSONL,
                   "".join(json.dumps(r) + "\n" for r in self.rows))
        columns = list(dict.fromkeys(k for r in self.rows for k in r))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.run_dir / METRICS_CSV, buffer.getvalue() if columns else "")


def loss_png(rows: list[Mapping[str, Any]], path: str | os.PathLike, *, kind: str = "autoencoder") -> None:
    """Training (and validation) loss per epoch, log scale, written atomically.

    ``kind`` says what the loss measures: the masked-patch reconstruction error of pre-training
    (``autoencoder``) or the fine-tune's error on standardised targets (``regressor``), which is
    not in the target's unit.
    """
    fig = loss_figure(rows, kind=kind)
    fig.tight_layout()
    path = Path(path)
    tmp = _tmp(path)
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)


def loss_figure(rows: list[Mapping[str, Any]], *, kind: str = "autoencoder"):
    """The figure of :func:`loss_png` (a matplotlib ``Figure`` on an Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global backend, safe in threads
    from matplotlib.ticker import LogFormatter, MaxNLocator

    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    epochs = [r["epoch"] for r in rows]
    ax.plot(epochs, [r["train_loss"] for r in rows], marker="o", label="train")
    if any(r.get("val_loss") is not None for r in rows):
        ax.plot(epochs, [r.get("val_loss") for r in rows], marker="s", label="validation")
    if all(r["train_loss"] > 0 for r in rows):
        ax.set_yscale("log")
        # plain numbers (2, 0.5) rather than 2x10^0 on the decades and between them
        ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE on standardised targets (z-scores)" if kind == "regressor"
                  else "MSE of the hidden patches (scaled counts)")
    ax.set_title("fine-tuning" if kind == "regressor" else "pre-training (masked reconstruction)", fontsize=10)
    ax.legend()
    ax.grid(alpha=0.3)
    return fig
